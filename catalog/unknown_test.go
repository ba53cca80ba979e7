package catalog_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/centaur-dev/workflow-operator/catalog"
)

// TestUnknownWorkflowErrorSaysTheFix checks the one message of an unknown workflow, in its
// run form and its spec form, and that it matches ErrUnknownWorkflow.
func TestUnknownWorkflowErrorSaysTheFix(t *testing.T) {
	for _, tc := range []struct {
		err  *catalog.UnknownWorkflowError
		want string
	}{
		{&catalog.UnknownWorkflowError{Namespace: "team-a", Name: "nope", Known: []string{"hello", "report"}},
			`workflow "nope" is not known in namespace team-a; known workflows: hello, report`},
		{&catalog.UnknownWorkflowError{Namespace: "team-a", Name: "nope", Known: []string{"hello"}, Field: "spec.workflowName"},
			`workflow "nope" is not known in namespace team-a; fix spec.workflowName (known workflows: hello)`},
		{&catalog.UnknownWorkflowError{Namespace: "team-a", Name: "wf", Restriction: "the workflow file /w/wf.py may be started only in the namespaces its NAMESPACES lists: ops"},
			`workflow "wf" is not known in namespace team-a (the workflow file /w/wf.py may be started only in the namespaces its NAMESPACES lists: ops); known workflows: `},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		wrapped := fmt.Errorf("resolving: %w", tc.err)
		if !errors.Is(wrapped, catalog.ErrUnknownWorkflow) {
			t.Errorf("errors.Is(%v, ErrUnknownWorkflow) = false", wrapped)
		}
	}
}
