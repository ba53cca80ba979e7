package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

var _ = Describe("A run labelled while it executes", func() {
	It("records the step that was running, without running it again", func() {
		key := rand.String(8)
		DeferCleanup(func() { closeOnce(gate(key)) })
		run := createRun("test_steps", stepsInput{Key: key, Steps: 3, BlockAt: 2})
		Eventually(func() int { return callCount(key, "step-2") }, 10*time.Second, 10*time.Millisecond).Should(Equal(1))

		// What the sharder does to drain a run, and kubectl label does: a change of metadata
		// only, which moves the run's resourceVersion under the running step.
		patch := client.MergeFrom(run.DeepCopy())
		labelled := run.DeepCopy()
		labelled.Labels = map[string]string{"team": "payments"}
		Expect(k8sClient.Patch(context.Background(), labelled, patch)).To(Succeed())
		closeOnce(gate(key))

		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 10*time.Second)
		for _, step := range []string{"step-1", "step-2", "step-3"} {
			Expect(callCount(key, step)).To(Equal(1), "%s ran once", step)
		}
		Expect(done.Labels).To(HaveKeyWithValue("team", "payments"))
	})
})

var _ = Describe("A run whose first write is refused", func() {
	It("counts its start once, when the start is recorded", func() {
		key := rand.String(8)
		DeferCleanup(func() { closeOnce(gate(key)) })
		started := func() float64 { return testutil.ToFloat64(runsStarted.WithLabelValues("test_steps")) }
		before := started()
		run := createRun("test_steps", stepsInput{Key: key, Steps: 2, BlockAt: 1})
		Eventually(func() int { return callCount(key, "step-1") }, 10*time.Second, 10*time.Millisecond).Should(Equal(1))

		// Another writer changes the status under the first execution, whose write (the start
		// and the first step) is then refused; the next execution records the start.
		refuseNextWrite(run)
		closeOnce(gate(key))

		waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 10*time.Second)
		Expect(callCount(key, "step-1")).To(Equal(2), "the refused write lost step-1's record, so it ran again")
		Expect(started()-before).To(Equal(1.0), "the start is counted once")
	})

	It("records no StepRetrying Event for a failed attempt whose record was refused", func() {
		key := rand.String(8)
		DeferCleanup(func() { closeOnce(gate(key)) })
		run := createRun("test_retry", retryInput{Key: key, FailTimes: 1, MaxAttempts: 3, BackoffMs: 10, BlockAt: 1})
		Eventually(func() int { return callCount(key, "flaky") }, 10*time.Second, 10*time.Millisecond).Should(Equal(1))

		// The first attempt fails, but another writer changed the status meanwhile: the write
		// that records the failure (and the retry it plans) is refused, and the next execution
		// calls the step again, which succeeds. No retry was ever recorded, so none is announced.
		refuseNextWrite(run)
		closeOnce(gate(key))

		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 10*time.Second)
		Expect(callCount(key, "flaky")).To(Equal(2), "the refused write lost the failed attempt, so the step ran again")
		Expect(entry(done, "flaky").Attempts).To(Equal(int32(1)), "the journal records one attempt")
		Eventually(func(g Gomega) []string { return eventReasons(g, done) }, 10*time.Second).Should(ContainElement("Succeeded"))
		Consistently(func(g Gomega) []string { return eventReasons(g, done) }, 2*time.Second, 200*time.Millisecond).
			ShouldNot(ContainElement("StepRetrying"))
	})
})

// refuseNextWrite changes run's status as another writer would, so that the write of the
// execution in flight, guarded by the resourceVersion it read, is refused.
func refuseNextWrite(run *workflowsv1alpha1.WorkflowRun) {
	GinkgoHelper()
	fresh := &workflowsv1alpha1.WorkflowRun{}
	Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(run), fresh)).To(Succeed())
	patch := client.MergeFrom(fresh.DeepCopy())
	fresh.Status.CurrentStep = "someone-else"
	Expect(k8sClient.Status().Patch(context.Background(), fresh, patch)).To(Succeed())
}
