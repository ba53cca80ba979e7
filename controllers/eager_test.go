package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Issue #13, finding 6: an eager start (Execute) and the controller share one execution
// budget, and the controller never waits for a run an eager start holds.
var _ = Describe("Eager start and the controller", func() {
	// reconciled is what the controller's reconcile of the held run returned and how long it took.
	type reconciled struct {
		res  reconcile.Result
		err  error
		took time.Duration
	}

	It("requeues a run an eager start holds instead of waiting, and the run completes once", func() {
		key, name := rand.String(8), "held-"+rand.String(6)
		eagerHolds := make(chan struct{})
		results := make(chan reconciled, 16)
		restartManager(func(o *Options) {
			count := o.wrapRuns
			o.wrapRuns = func(inner reconcile.Reconciler) reconcile.Reconciler {
				inner = count(inner)
				return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
					if req.Name != name {
						return inner.Reconcile(ctx, req)
					}
					<-eagerHolds // let the eager start take the run first
					start := time.Now()
					res, err := inner.Reconcile(ctx, req)
					results <- reconciled{res: res, err: err, took: time.Since(start)}
					return res, err
				})
			}
		})
		DeferCleanup(func() { restartManager() })
		DeferCleanup(func() { closeOnce(gate(key)) })

		run := createNamedRun(name, "test_steps", stepsInput{Key: key, Steps: 3, BlockAt: 2})
		executed := make(chan error, 1)
		go func() {
			_, err := manager.runs.Execute(context.Background(), run)
			executed <- err
		}()
		Eventually(func() int { return callCount(key, "step-2") }, 10*time.Second, 10*time.Millisecond).Should(Equal(1),
			"the eager start executes the run up to its blocking step")
		close(eagerHolds)

		var first reconciled
		Eventually(results, 3*time.Second).Should(Receive(&first), "the controller's reconcile returns while the eager start holds the run")
		Expect(first.err).NotTo(HaveOccurred())
		Expect(first.res.RequeueAfter).To(Equal(busyRequeue))
		Expect(first.took).To(BeNumerically("<", time.Second), "a loose bound: the worker did not wait for the step")
		Expect(callCount(key, "step-2")).To(Equal(1))

		closeOnce(gate(key))
		Eventually(executed, 10*time.Second).Should(Receive(BeNil()))
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 10*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`["step-1-done", "step-2-done", "step-3-done"]`))
		for _, step := range []string{"step-1", "step-2", "step-3"} {
			Expect(callCount(key, step)).To(Equal(1), "%s ran once", step)
		}
		var names []string
		for _, entry := range done.Status.Journal {
			names = append(names, entry.Name)
		}
		Expect(names).To(Equal([]string{"step-1", "step-2", "step-3"}), "the journal shows each step once")
	})
})

// createNamedRun creates a run called name in the default namespace.
func createNamedRun(name, workflow string, input any) *workflowsv1alpha1.WorkflowRun {
	GinkgoHelper()
	return createRun(workflow, input, func(r *workflowsv1alpha1.WorkflowRun) {
		r.ObjectMeta = metav1.ObjectMeta{Name: name, Namespace: "default"}
	})
}

// closeOnce closes ch unless it is closed already.
func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}
