package placement

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// TestSharderQueuesNoEventBeforeItsFirstPass checks that the informers' events (their initial
// lists replay every run of the cluster) queue nothing until the first pass has begun, which
// finds the runs without a live shard itself, in flight first; and that they do after it.
func TestSharderQueuesNoEventBeforeItsFirstPass(t *testing.T) {
	s, err := New(Options{Shard: "a", LeaseNamespace: "centaur-system"})
	if err != nil {
		t.Fatal(err)
	}
	sh := &Sharder{s: s, queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[shardItem]())}
	defer sh.queue.ShutDown()
	unassigned := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r"}}
	sh.runChanged(nil, unassigned)
	if n := sh.queue.Len(); n != 0 {
		t.Fatalf("%d items queued before the first pass, want none", n)
	}
	sh.passing.Store(true)
	sh.runChanged(nil, unassigned)
	if n := sh.queue.Len(); n != 1 {
		t.Fatalf("%d items queued for an unassigned run after the first pass began, want 1", n)
	}
}
