package controllers

import (
	"context"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// Issue #13, finding 3: an error of any length, from a step or from the LLM backend, ends in a
// status, conditions and Events the API server accepts, cut with a note of what was cut.
var _ = Describe("Messages of any length", func() {
	It("fail a run whose step errors with 5 MiB of text, with its Events, after the retries", func() {
		key := rand.String(8)
		run := createRun("test_retry", retryInput{Key: key, FailTimes: 2, MaxAttempts: 2, BackoffMs: 10, Noise: 5 << 20})
		failed := expectFailed(run, "StepFailed", "cut from")
		Expect(callCount(key, "flaky")).To(Equal(2), "retried as configured")
		expectBoundedFailure(failed)
		for _, entry := range failed.Status.Journal {
			Expect(len(entry.Error)).To(BeNumerically("<=", workflowsv1alpha1.MaxEntryErrorLength))
		}
		expectBoundedEvents(failed.UID, "StepRetrying", "Failed")
	})

	It("fail a workflow's agent turn whose backend answers a 3 MiB error, and the run with it", func() {
		useAgents(testAgents(true))
		prompt := "huge error " + rand.String(6)
		huge := strings.Repeat("the model is overloaded; ", 3<<20/25)
		chatServer().script(prompt, chatError(http.StatusBadRequest, huge, "invalid_request_error", "huge"))

		run := createRun("test_agent", map[string]string{"prompt": prompt})
		failed := expectFailed(run, workflowsv1alpha1.ReasonAgentFailed, "the model is overloaded")
		Expect(failed.Status.Error.Message).To(ContainSubstring(workflowsv1alpha1.ReasonUpstreamRejected))
		Expect(failed.Status.Error.Message).To(ContainSubstring("cut from"))
		expectBoundedFailure(failed)
		expectBoundedEvents(failed.UID, "Failed")

		turn := turnOf(failed)
		Expect(turn.Status.Phase).To(Equal(workflowsv1alpha1.AgentFailed))
		Expect(len(turn.Status.Message)).To(BeNumerically("<=", workflowsv1alpha1.MaxMessageLength))
		Expect(len(turn.Status.Error.Message)).To(BeNumerically("<=", workflowsv1alpha1.MaxMessageLength))
		expectBoundedEvents(turn.UID, "Failed")
		Expect(chatServer().requestsFor(prompt)).To(HaveLen(1), "a rejection is not retried")
	})
})

// expectBoundedFailure checks that a failed run's error and Succeeded condition fit the schema.
func expectBoundedFailure(run *workflowsv1alpha1.WorkflowRun) {
	GinkgoHelper()
	Expect(len(run.Status.Error.Message)).To(BeNumerically("<=", workflowsv1alpha1.MaxMessageLength))
	cond := meta.FindStatusCondition(run.Status.Conditions, workflowsv1alpha1.ConditionSucceeded)
	Expect(cond).NotTo(BeNil())
	Expect(cond.Status).To(Equal(metav1.ConditionFalse))
	Expect(cond.Message).To(Equal(run.Status.Error.Message))
}

// expectBoundedEvents waits until the object uid has an Event of each reason and checks that
// every Event about it fits the API server's bound on notes (so none was rejected and lost)
// and says it was cut.
func expectBoundedEvents(uid types.UID, reasons ...string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		var list eventsv1.EventList
		g.Expect(k8sClient.List(context.Background(), &list, client.InNamespace("default"))).To(Succeed())
		seen := map[string]string{}
		for _, ev := range list.Items {
			if ev.Regarding.UID == uid {
				g.Expect(len(ev.Note)).To(BeNumerically("<=", textbound.EventNote))
				seen[ev.Reason] = ev.Note
			}
		}
		for _, reason := range reasons {
			g.Expect(seen).To(HaveKeyWithValue(reason, ContainSubstring("cut from")), "Events: %v", seen)
		}
	}, 15*time.Second, 100*time.Millisecond).Should(Succeed())
}
