package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
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
