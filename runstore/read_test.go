package runstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/runstore"
)

func TestAPageEndsBeforeTheEntryThatWouldPassItsBytes(t *testing.T) {
	big := `"` + strings.Repeat("r", 1<<20) + `"`
	run := &workflowsv1alpha1.WorkflowRun{}
	for i := range 10 {
		run.Status.Journal = append(run.Status.Journal, workflowsv1alpha1.JournalEntry{
			Name: fmt.Sprintf("s-%d", i), Kind: "Step", State: "Completed", Result: &apiextensionsv1.JSON{Raw: []byte(big)}})
	}
	var pages []int
	opts := runstore.ReadOptions{}
	for {
		page, err := runstore.ReadJournal(context.Background(), nil, run, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, len(page.Entries))
		if page.Continue == "" {
			break
		}
		opts.Continue = page.Continue
	}
	if fmt.Sprint(pages) != "[3 3 3 1]" {
		t.Errorf("pages of %v entries; want 10 entries of 1 MiB in pages under the 4 MiB default", pages)
	}
	// A single entry over the budget still makes a page of one, so that reading moves on.
	page, err := runstore.ReadJournal(context.Background(), nil, run, runstore.ReadOptions{MaxBytes: 1024})
	if err != nil || len(page.Entries) != 1 || page.Continue == "" {
		t.Fatalf("%d entries, continue %q, err %v; want one entry and a continue token", len(page.Entries), page.Continue, err)
	}
}
