package deploycheck

import (
	"context"
	"fmt"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/webhookserver/ledger"
)

// deletedWebhookRunsReachTheLedger creates two webhook runs as the manager does (only it may
// label them, config/policy), one that its TTL deletes and one deleted as kubectl does, and
// waits until the delivery ledger holds both: the manager's ServiceAccount must be allowed to
// create, read and update the ledger's ConfigMaps in its namespace (config/rbac).
func deletedWebhookRunsReachTheLedger(ctx context.Context, t *testing.T, cluster *testcluster.Cluster, admin client.Client) {
	t.Helper()
	cfg := cluster.Config()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: serviceAccount}
	asManager, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	expiring, kept := webhookRun("deploy-hook-expiring", 0), webhookRun("deploy-hook-kept", -1)
	for _, run := range []*workflowsv1alpha1.WorkflowRun{expiring, kept} {
		if err := asManager.Create(ctx, run); err != nil {
			t.Fatalf("create webhook run %s as the manager: %v", run.Name, err)
		}
	}
	waitInLedger(ctx, t, admin, expiring)
	if err := admin.Delete(ctx, kept); err != nil {
		t.Fatal(err)
	}
	waitInLedger(ctx, t, admin, kept)
}

// webhookRun is a run of hello in default labelled as a webhook delivery's, deleted ttl
// seconds after it finished (never when negative).
func webhookRun(name string, ttl int32) *workflowsv1alpha1.WorkflowRun {
	run := &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{workflowsv1alpha1.LabelWebhook: "deploy-hook"}},
		Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hello", Input: &apiextensionsv1.JSON{Raw: []byte(`{"name": "Ada"}`)}},
	}
	if ttl >= 0 {
		run.Spec.TTLSecondsAfterFinished = &ttl
	}
	return run
}

// waitInLedger waits until the delivery ledger in the operator's namespace holds run.
func waitInLedger(ctx context.Context, t *testing.T, admin client.Client, run *workflowsv1alpha1.WorkflowRun) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, "the delivery ledger to hold the deleted webhook run "+run.Name, func() error {
		held, err := ledger.Holds(ctx, admin, operatorNamespace, run.Namespace, run.Name)
		if err != nil || held {
			return err
		}
		return fmt.Errorf("not yet")
	})
}
