package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// createEvent creates a WorkflowEvent of eventType for correlationID with payload.
func createEvent(eventType, correlationID string, payload any) *workflowsv1alpha1.WorkflowEvent {
	GinkgoHelper()
	raw, err := json.Marshal(payload)
	Expect(err).NotTo(HaveOccurred())
	ev := &workflowsv1alpha1.WorkflowEvent{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "ev-", Namespace: "default"},
		Spec:       workflowsv1alpha1.WorkflowEventSpec{Type: eventType, CorrelationID: correlationID, Payload: &apiextensionsv1.JSON{Raw: raw}},
	}
	Expect(k8sClient.Create(context.Background(), ev)).To(Succeed())
	return ev
}

// consumerRuns lists the runs that ev's status says consumed it.
func consumerRuns(ev *workflowsv1alpha1.WorkflowEvent) []string {
	GinkgoHelper()
	fresh := &workflowsv1alpha1.WorkflowEvent{}
	Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ev), fresh)).To(Succeed())
	var runs []string
	for _, c := range fresh.Status.ConsumedBy {
		runs = append(runs, c.Run)
	}
	return runs
}

// recordConsumers writes consumers into ev's status, as an earlier manager would have.
func recordConsumers(ev *workflowsv1alpha1.WorkflowEvent, consumers []workflowsv1alpha1.EventConsumer) {
	GinkgoHelper()
	Eventually(func() error {
		fresh := &workflowsv1alpha1.WorkflowEvent{}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ev), fresh); err != nil {
			return err
		}
		fresh.Status.ConsumedBy = consumers
		return k8sClient.Status().Update(context.Background(), fresh)
	}, 10*time.Second).Should(Succeed())
}

// childrenOf lists the child runs of parent.
func childrenOf(parent *workflowsv1alpha1.WorkflowRun) []workflowsv1alpha1.WorkflowRun {
	GinkgoHelper()
	var list workflowsv1alpha1.WorkflowRunList
	Expect(k8sClient.List(context.Background(), &list, client.InNamespace(parent.Namespace),
		client.MatchingLabels{workflowsv1alpha1.LabelParentRun: parent.Name})).To(Succeed())
	return list.Items
}

var _ = Describe("Waiting for events", func() {
	It("matches an event that arrived before the run reached its wait", func() {
		id := "early-" + rand.String(6)
		createEvent("approval.decided", id, map[string]string{"decision": "approved", "by": "ada"})
		run := createRun("approval", map[string]string{"request_id": id})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"decision": "approved", "by": "ada"}`))
	})

	It("resumes a waiting run when the event arrives, with no reconciles while it waits", func() {
		id := "late-" + rand.String(6)
		run := createRun("approval", map[string]string{"request_id": id})
		waiting := waitPhase(run, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		Expect(waiting.Status.WaitingFor).To(Equal("event approval.decided/" + id))
		Expect(waiting.Status.CurrentStep).To(Equal("decision"))

		before := manager.reconcileCount(run.Name)
		Consistently(func() int64 { return manager.reconcileCount(run.Name) }, 3*time.Second, 200*time.Millisecond).
			Should(BeNumerically("<=", before+1), "a waiting run is woken by a watch, not a poll")

		createEvent("approval.decided", id, map[string]string{"decision": "rejected"})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"decision": "rejected"}`))
		decision := entry(done, "decision")
		Expect(decision.Kind).To(Equal(workflowsv1alpha1.EntryKind("Event")))
		Expect(decision.Ref).NotTo(BeEmpty())
	})

	It("resumes every run waiting on one type and correlation id with one event, and says who consumed it", func() {
		id := "shared-" + rand.String(6)
		a := createRun("approval", map[string]string{"request_id": id})
		b := createRun("approval", map[string]string{"request_id": id})
		waitPhase(a, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		waitPhase(b, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		ev := createEvent("approval.decided", id, map[string]string{"decision": "approved"})
		waitPhase(a, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		waitPhase(b, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Eventually(func() []string { return consumerRuns(ev) }, 10*time.Second).Should(ConsistOf(a.Name, b.Name))
	})

	It("lists at most 100 consumers of one event and counts them all", func() {
		id := "crowd-" + rand.String(6)
		ev := createEvent("test.crowd", id, map[string]string{"crowd": "yes"})
		// 100 consumers recorded earlier fill the list; one more arrives through a receipt.
		earlier := metav1.NewTime(time.Now().Add(-time.Minute)).Rfc3339Copy()
		var recorded []workflowsv1alpha1.EventConsumer
		for i := range workflowsv1alpha1.MaxEventConsumers {
			recorded = append(recorded, workflowsv1alpha1.EventConsumer{Run: fmt.Sprintf("earlier-%03d", i), Step: "wait", At: earlier})
		}
		recordConsumers(ev, recorded)
		finished := metav1.NewMicroTime(time.Now())
		Expect(k8sClient.Create(context.Background(), &workflowsv1alpha1.WorkflowRunSegment{
			ObjectMeta: metav1.ObjectMeta{Name: "crowd-run-" + id + "-0", Namespace: ev.Namespace,
				Labels: map[string]string{workflowsv1alpha1.LabelRun: "crowd-run", workflowsv1alpha1.LabelReceipts: "true"}},
			Spec: workflowsv1alpha1.WorkflowRunSegmentSpec{RunName: "crowd-run", Entries: []workflowsv1alpha1.JournalEntry{
				{Name: "signal", Kind: "Event", State: "Completed", Ref: ev.Name, FinishedAt: &finished},
			}},
		})).To(Succeed())
		Eventually(func() int32 {
			fresh := &workflowsv1alpha1.WorkflowEvent{}
			Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ev), fresh)).To(Succeed())
			return fresh.Status.Consumers
		}, 5*time.Second).Should(BeEquivalentTo(workflowsv1alpha1.MaxEventConsumers + 1))
		Expect(consumerRuns(ev)).To(HaveLen(workflowsv1alpha1.MaxEventConsumers), "the oldest 100 stay listed")
	})

	It("lists a run that consumed the event and was deleted at once", func() {
		id := "gone-" + rand.String(6)
		ev := createEvent("approval.decided", id, map[string]string{"decision": "approved"})
		run := createRun("approval", map[string]string{"request_id": id}, func(r *workflowsv1alpha1.WorkflowRun) {
			r.Spec.TTLSecondsAfterFinished = new(int32) // deleted as soon as it finished
		})
		Eventually(func() bool {
			err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(run), &workflowsv1alpha1.WorkflowRun{})
			return apierrors.IsNotFound(err)
		}, 15*time.Second).Should(BeTrue(), "the run finished and was deleted")
		Eventually(func() []string { return consumerRuns(ev) }, 10*time.Second).Should(Equal([]string{run.Name}))
	})

	It("lists the consumers sealed in segments and keeps those its status lists already", func() {
		id := "sealed-" + rand.String(6)
		ev := createEvent("test.sealed", id, map[string]string{"sealed": "yes"})
		// A consumer recorded earlier (by a previous release, say) whose run is gone: it stays.
		earlier := metav1.NewTime(time.Now().Add(-time.Minute)).Rfc3339Copy()
		recordConsumers(ev, []workflowsv1alpha1.EventConsumer{{Run: "earlier-run", Step: "wait", At: earlier}})
		// A run that sealed its receipt while no manager watched: only the segment holds it.
		finished := metav1.NewMicroTime(time.Now())
		Expect(k8sClient.Create(context.Background(), &workflowsv1alpha1.WorkflowRunSegment{
			ObjectMeta: metav1.ObjectMeta{Name: "sealed-run-" + id + "-0", Namespace: ev.Namespace,
				Labels: map[string]string{workflowsv1alpha1.LabelRun: "sealed-run", workflowsv1alpha1.LabelReceipts: "true"}},
			Spec: workflowsv1alpha1.WorkflowRunSegmentSpec{RunName: "sealed-run", Entries: []workflowsv1alpha1.JournalEntry{
				{Name: "before", Kind: "Step", State: "Completed", FinishedAt: &finished},
				{Name: "signal", Kind: "Event", State: "Completed", Ref: ev.Name, FinishedAt: &finished, Result: &apiextensionsv1.JSON{Raw: []byte(`{"big":"payload"}`)}},
			}},
		})).To(Succeed())
		Eventually(func() []string {
			fresh := &workflowsv1alpha1.WorkflowEvent{}
			Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ev), fresh)).To(Succeed())
			var consumers []string
			for _, c := range fresh.Status.ConsumedBy {
				consumers = append(consumers, c.Run+"/"+c.Step+" at "+c.At.UTC().Format(time.RFC3339))
			}
			return consumers
		}, 5*time.Second).Should(Equal([]string{
			"earlier-run/wait at " + earlier.UTC().Format(time.RFC3339),
			"sealed-run/signal at " + finished.UTC().Format(time.RFC3339),
		}), "oldest first")
	})

	It("ignores an event with another correlation id", func() {
		id := "mine-" + rand.String(6)
		run := createRun("approval", map[string]string{"request_id": id})
		waitPhase(run, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		createEvent("approval.decided", "someone-else-"+id, map[string]string{"decision": "approved"})
		Consistently(func() workflowsv1alpha1.RunPhase { return getRun(run).Status.Phase }, 3*time.Second, 200*time.Millisecond).
			Should(Equal(workflowsv1alpha1.PhaseWaiting))
	})

	It("returns the timeout result, not a failed run, when no event comes in time", func() {
		run := createRun("approval", map[string]string{"request_id": "nobody-" + rand.String(6), "timeout": "1s"})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"decision": "timed_out"}`))
	})

	It("replays the journalled payload after the event object was deleted", func() {
		key := rand.String(8)
		run := createRun("test_event_then_sleep", map[string]string{"key": key})
		waitPhase(run, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		ev := createEvent("test.signal", key, map[string]int{"answer": 42})
		waitPhase(run, workflowsv1alpha1.PhaseSleeping, 15*time.Second)
		Expect(k8sClient.Delete(context.Background(), ev)).To(Succeed())
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"answer": 42}`))
	})

	It("keeps waiting across a manager restart and resumes on the event", func() {
		id := "restart-" + rand.String(6)
		run := createRun("approval", map[string]string{"request_id": id})
		waitPhase(run, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		restartManager()
		createEvent("approval.decided", id, map[string]string{"decision": "approved"})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"decision": "approved"}`))
	})

	It("garbage-collects events after the retention period", func() {
		ev := createEvent("test.retention", "gc-"+rand.String(6), map[string]bool{"ok": true})
		Eventually(func(g Gomega) {
			fresh := &workflowsv1alpha1.WorkflowEvent{}
			g.Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ev), fresh)).To(Succeed())
			g.Expect(fresh.Status.ExpiresAt).NotTo(BeNil())
		}, 10*time.Second).Should(Succeed())
		Eventually(func() bool {
			err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ev), &workflowsv1alpha1.WorkflowEvent{})
			return apierrors.IsNotFound(err)
		}, eventRetention+10*time.Second, 250*time.Millisecond).Should(BeTrue())
	})
})

var _ = Describe("Sending events", func() {
	It("resumes a run waiting for the event another run sends, with one WorkflowEvent however often the sender replays", func() {
		key := rand.String(8)
		waiter := createRun("test_event_then_sleep", map[string]string{"key": key})
		waitPhase(waiter, workflowsv1alpha1.PhaseWaiting, 15*time.Second)

		sender := waitPhase(createRun("test_send_event", map[string]string{"key": key, "type": "test.signal"}), workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		sent := entry(sender, "signal")
		Expect(sent.Kind).To(Equal(workflowsv1alpha1.EntryKind("Event")))
		Expect(sent.Target).To(Equal("send event test.signal/" + key))
		ev := &workflowsv1alpha1.WorkflowEvent{}
		Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: sent.Ref}, ev)).To(Succeed())
		Expect(ev.Spec.Type).To(Equal("test.signal"))
		Expect(ev.Spec.CorrelationID).To(Equal(key))

		done := waitPhase(waiter, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"from": "sender"}`))
		var events workflowsv1alpha1.WorkflowEventList
		Expect(k8sClient.List(context.Background(), &events, client.InNamespace("default"))).To(Succeed())
		n := 0
		for _, e := range events.Items {
			if e.Spec.CorrelationID == key {
				n++
			}
		}
		Expect(n).To(Equal(1))
	})

	It("fails a sender whose event has no type with a message that says so", func() {
		expectFailed(createRun("test_send_event", map[string]string{"key": rand.String(8), "type": ""}), "HandlerError", "the type must be 1 to 253 characters")
	})
})

var _ = Describe("Child workflows", func() {
	It("runs children and returns their outputs in order, with owner references and a parent label", func() {
		run := createRun("fan_out", map[string][]string{"names": {"Ada", "Grace", "Linus"}})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"greetings": ["Hello, Ada!", "Hello, Grace!", "Hello, Linus!"]}`))
		children := childrenOf(done)
		Expect(children).To(HaveLen(3))
		for _, c := range children {
			Expect(metav1.IsControlledBy(&c, done)).To(BeTrue())
			Expect(c.Spec.WorkflowName).To(Equal("hello"))
		}
	})

	It("propagates a child's failure as a typed error the parent can let through or handle", func() {
		failing := map[string]any{"workflow": "hello", "input": map[string]string{"name": ""}}
		expectFailed(createRun("test_parent", failing), "ChildFailed", "StepFailed")

		failing["handle"] = true
		done := waitPhase(createRun("test_parent", failing), workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`"handled: StepFailed"`))
	})

	It("makes one child even when the parent loses its record of creating it", func() {
		run := createRun("test_parent", map[string]any{"workflow": "test_sleep", "input": sleepInput{Key: rand.String(8), Millis: 2500}})
		waiting := waitPhase(run, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		Expect(childrenOf(waiting)).To(HaveLen(1))
		// As if the manager died between creating the child and recording it.
		waiting.Status.Journal = nil
		Expect(k8sClient.Status().Update(context.Background(), waiting)).To(Succeed())

		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`"awake"`))
		Expect(childrenOf(done)).To(HaveLen(1), "AlreadyExists means that is my child")
	})

	It("cancels running children when the parent is cancelled", func() {
		run := createRun("test_parent", map[string]any{"workflow": "test_sleep", "input": sleepInput{Key: rand.String(8), Millis: 60000}})
		waitPhase(run, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		Eventually(func() workflowsv1alpha1.RunPhase {
			children := childrenOf(run)
			if len(children) != 1 {
				return ""
			}
			return children[0].Status.Phase
		}, 10*time.Second).Should(Equal(workflowsv1alpha1.PhaseSleeping))

		fresh := getRun(run)
		patch := client.MergeFrom(fresh.DeepCopy())
		fresh.Spec.Cancel = true
		Expect(k8sClient.Patch(context.Background(), fresh, patch)).To(Succeed())
		waitPhase(run, workflowsv1alpha1.PhaseCancelled, 10*time.Second)
		Eventually(func() workflowsv1alpha1.RunPhase { return childrenOf(run)[0].Status.Phase }, 10*time.Second).
			Should(Equal(workflowsv1alpha1.PhaseCancelled))
	})

	It("runs 20 children in parallel", func() {
		names := make([]string, 20)
		want := make([]string, 20)
		for i := range names {
			names[i] = fmt.Sprintf("child%02d", i)
			want[i] = fmt.Sprintf("Hello, child%02d!", i)
		}
		start := time.Now()
		run := createRun("fan_out", map[string][]string{"names": names})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 60*time.Second)
		var out struct {
			Greetings []string `json:"greetings"`
		}
		Expect(json.Unmarshal(done.Status.Output.Raw, &out)).To(Succeed())
		Expect(out.Greetings).To(Equal(want))
		Expect(childrenOf(done)).To(HaveLen(20))
		GinkgoWriter.Printf("fan_out of 20 children took %s\n", time.Since(start))
	})
})
