package manager_test

import (
	"flag"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/manager"
)

// TestDefaultOptionsAreTheFlagDefaults checks that a program configuring the manager in Go
// starts from what the command line would give it, and that a parsed flag lands in its field.
func TestDefaultOptionsAreTheFlagDefaults(t *testing.T) {
	t.Setenv("WORKFLOW_DIRS", "/etc/centaur/workflows")
	t.Setenv("POD_NAMESPACE", "")
	o := manager.DefaultOptions()
	if o.MaxConcurrentReconciles != 16 || o.APIAddr != ":8088" || o.MaxResultBytes != engine.DefaultMaxResultBytes {
		t.Errorf("defaults: max-concurrent-reconciles %d, api-bind-address %q, max-step-result-bytes %d; want 16, :8088, %d",
			o.MaxConcurrentReconciles, o.APIAddr, o.MaxResultBytes, engine.DefaultMaxResultBytes)
	}
	if o.WorkflowDirs != "/etc/centaur/workflows" || o.OperatorNamespace != manager.DefaultOperatorNamespace {
		t.Errorf("from the environment: workflow dirs %q, operator namespace %q", o.WorkflowDirs, o.OperatorNamespace)
	}

	var parsed manager.Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	manager.BindFlags(fs, &parsed)
	if err := fs.Parse([]string{"--max-concurrent-reconciles=3", "--sharding", "--secret-namespaces=a,b"}); err != nil {
		t.Fatal(err)
	}
	if parsed.MaxConcurrentReconciles != 3 || !parsed.Sharding || parsed.SecretNamespaces != "a,b" {
		t.Errorf("parsed flags: %d %v %q", parsed.MaxConcurrentReconciles, parsed.Sharding, parsed.SecretNamespaces)
	}
}
