package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/runstore"
)

// createRun creates a WorkflowRun of workflow with input in the default namespace.
func createRun(workflow string, input any, mutate ...func(*workflowsv1alpha1.WorkflowRun)) *workflowsv1alpha1.WorkflowRun {
	GinkgoHelper()
	run := &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: strings.ReplaceAll(workflow, "_", "-") + "-" + rand.String(6), Namespace: "default"},
		Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: workflow},
	}
	if input != nil {
		raw, err := json.Marshal(input)
		Expect(err).NotTo(HaveOccurred())
		run.Spec.Input = &apiextensionsv1.JSON{Raw: raw}
	}
	for _, m := range mutate {
		m(run)
	}
	Expect(k8sClient.Create(context.Background(), run)).To(Succeed())
	return run
}

// getRun reads run afresh from the API server.
func getRun(run *workflowsv1alpha1.WorkflowRun) *workflowsv1alpha1.WorkflowRun {
	GinkgoHelper()
	fresh := &workflowsv1alpha1.WorkflowRun{}
	Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(run), fresh)).To(Succeed())
	return fresh
}

// waitPhase waits until run reaches phase and returns it as read then.
func waitPhase(run *workflowsv1alpha1.WorkflowRun, phase workflowsv1alpha1.RunPhase, timeout time.Duration) *workflowsv1alpha1.WorkflowRun {
	GinkgoHelper()
	var fresh *workflowsv1alpha1.WorkflowRun
	Eventually(func(g Gomega) {
		fresh = &workflowsv1alpha1.WorkflowRun{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(run), fresh)).To(Succeed())
		g.Expect(fresh.Status.Phase).To(Equal(phase), "error: %+v, waiting for: %q, step: %q", fresh.Status.Error, fresh.Status.WaitingFor, fresh.Status.CurrentStep)
	}, timeout, 20*time.Millisecond).Should(Succeed())
	return fresh
}

// expectFailed waits until run failed and checks the reason and a fragment of the message.
func expectFailed(run *workflowsv1alpha1.WorkflowRun, reason, fragment string) *workflowsv1alpha1.WorkflowRun {
	GinkgoHelper()
	fresh := waitPhase(run, workflowsv1alpha1.PhaseFailed, 20*time.Second)
	Expect(fresh.Status.Error).NotTo(BeNil())
	Expect(fresh.Status.Error.Reason).To(Equal(reason))
	Expect(fresh.Status.Error.Message).To(ContainSubstring(fragment))
	cond := meta.FindStatusCondition(fresh.Status.Conditions, workflowsv1alpha1.ConditionSucceeded)
	Expect(cond).NotTo(BeNil())
	Expect(cond.Status).To(Equal(metav1.ConditionFalse))
	Expect(cond.Reason).To(Equal(reason))
	return fresh
}

func outputOf(run *workflowsv1alpha1.WorkflowRun) string {
	GinkgoHelper()
	Expect(run.Status.Output).NotTo(BeNil())
	return string(run.Status.Output.Raw)
}

// journalOf reads run's whole journal (sealed segments, then status), with every result,
// a page at a time, as the REST API does.
func journalOf(run *workflowsv1alpha1.WorkflowRun) []workflowsv1alpha1.JournalEntry {
	GinkgoHelper()
	var entries []workflowsv1alpha1.JournalEntry
	opts := runstore.ReadOptions{Limit: 1000, Results: true}
	for {
		page, err := runstore.ReadJournal(context.Background(), k8sClient, run, opts)
		Expect(err).NotTo(HaveOccurred())
		Expect(page.First).To(Equal(int64(len(entries))))
		entries = append(entries, page.Entries...)
		if opts.Continue = page.Continue; opts.Continue == "" {
			Expect(entries).To(HaveLen(int(page.Total)))
			return entries
		}
	}
}

// entry returns the journal entry of run named name, wherever it is stored.
func entry(run *workflowsv1alpha1.WorkflowRun, name string) workflowsv1alpha1.JournalEntry {
	GinkgoHelper()
	entries := journalOf(run)
	for _, e := range entries {
		if e.Name == name {
			return e
		}
	}
	Fail(fmt.Sprintf("no journal entry %q in %+v", name, entries))
	return workflowsv1alpha1.JournalEntry{}
}

var _ = Describe("A WorkflowRun applied with the Kubernetes client", func() {
	It("runs hello to Succeeded with its output, condition and journal", func() {
		run := createRun("hello", map[string]string{"name": "Ada"})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"greeting": "Hello, Ada!"}`))

		cond := meta.FindStatusCondition(done.Status.Conditions, workflowsv1alpha1.ConditionSucceeded)
		Expect(cond).NotTo(BeNil(), "kubectl wait --for=condition=Succeeded needs the condition")
		Expect(cond.Status).To(Equal(metav1.ConditionTrue))
		Expect(cond.ObservedGeneration).To(Equal(done.Generation))
		Expect(done.Status.StartedAt).NotTo(BeNil())
		Expect(done.Status.FinishedAt).NotTo(BeNil())

		greet := entry(done, "greet")
		Expect(greet.Kind).To(Equal(workflowsv1alpha1.EntryKind("Step")))
		Expect(greet.State).To(Equal(workflowsv1alpha1.EntryState("Completed")))
		Expect(greet.Attempts).To(Equal(int32(1)))
		Expect(string(greet.Result.Raw)).To(Equal(`"Hello, Ada!"`))
		Expect(done.Status.JournalBytes).To(BeNumerically(">", 0))
		Expect(done.Status.History).NotTo(BeNil())
		Expect(done.Status.History.Entries).To(Equal(int64(1)))
	})

	It("runs many steps in one reconcile, one status write per step", func() {
		key := rand.String(8)
		run := createRun("test_steps", stepsInput{Key: key, Steps: 20})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(journalOf(done)).To(HaveLen(20))
		for i := 1; i <= 20; i++ {
			Expect(callCount(key, fmt.Sprintf("step-%d", i))).To(Equal(1))
		}
		// Creation plus at most a couple of follow-ups: never one reconcile per step.
		Expect(manager.reconcileCount(run.Name)).To(BeNumerically("<=", 3))
	})
})

var _ = Describe("Sleeping", func() {
	It("wakes a 2 s sleep after 2 s and well before 3 s, without a busy loop", func() {
		key := rand.String(8)
		start := time.Now()
		run := createRun("test_sleep", sleepInput{Key: key, Millis: 2000})
		sleeping := waitPhase(run, workflowsv1alpha1.PhaseSleeping, 10*time.Second)
		Expect(sleeping.Status.WakeAt).NotTo(BeNil())
		Expect(sleeping.Status.CurrentStep).To(Equal("nap"))

		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 10*time.Second)
		Expect(time.Since(start)).To(BeNumerically(">=", 2*time.Second))
		nap := entry(done, "nap")
		Expect(nap.State).To(Equal(workflowsv1alpha1.EntryState("Completed")))
		// The run's own record says when it went to sleep and when it ran again: no test
		// polling or API latency in between.
		woke := entry(done, "after").StartedAt.Time
		slept := woke.Sub(nap.StartedAt.Time)
		Expect(slept).To(BeNumerically(">=", 2*time.Second))
		Expect(slept).To(BeNumerically("<", 3*time.Second))
		GinkgoWriter.Printf("2 s sleep: woke after %s\n", slept)
		Expect(done.Status.Output.Raw).To(MatchJSON(`"awake"`))
		Expect(manager.reconcileCount(run.Name)).To(BeNumerically("<=", 5), "a sleep must be a RequeueAfter, not a poll")
	})

	It("never wakes countdown with 3 seconds before the run's start plus 3 s, counted to the microsecond", func() {
		created := time.Now()
		run := createRun("countdown", map[string]int{"seconds": 3})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(time.Since(created)).To(BeNumerically(">=", 3*time.Second))

		Expect(done.Status.StartTime).NotTo(BeNil(), "status.startTime records the start to the microsecond")
		start := done.Status.StartTime.UTC()
		// Rounding the start down to the second would put it before the run existed.
		Expect(start).To(BeTemporally(">=", created.Truncate(time.Microsecond)))
		Expect(done.Status.StartedAt.UTC()).To(Equal(start.Truncate(time.Second)))

		countdown := entry(done, "countdown")
		Expect(countdown.WakeAt.UTC()).To(Equal(start.Add(3*time.Second)), "durable.Now at the start is the recorded start")
		Expect(countdown.StartedAt.UTC()).To(BeTemporally(">=", start))
		Expect(countdown.FinishedAt.UTC()).To(BeTemporally(">=", start.Add(3*time.Second)))
		Expect(done.Status.FinishedAt.UTC()).To(BeTemporally(">=", start.Add(3*time.Second).Truncate(time.Second)))
		var out struct {
			WokeAt time.Time `json:"woke_at"`
		}
		Expect(json.Unmarshal(done.Status.Output.Raw, &out)).To(Succeed())
		Expect(out.WokeAt).To(BeTemporally("==", start.Add(3*time.Second)))
		GinkgoWriter.Printf("countdown 3 s: started %s, woke at %s\n", start.Format(time.RFC3339Nano), countdown.WakeAt.UTC().Format(time.RFC3339Nano))
	})

	It("replays a run started by a release without status.startTime from status.startedAt", func() {
		run := createRun("countdown", map[string]int{"seconds": 2})
		sleeping := waitPhase(run, workflowsv1alpha1.PhaseSleeping, 10*time.Second)
		// What the previous release recorded: startedAt in whole seconds, no startTime.
		sleeping.Status.StartTime = nil
		Expect(k8sClient.Status().Update(context.Background(), sleeping)).To(Succeed())

		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(done.Status.StartTime).To(BeNil())
		var out struct {
			WokeAt time.Time `json:"woke_at"`
		}
		Expect(json.Unmarshal(done.Status.Output.Raw, &out)).To(Succeed())
		// The replay's Now at the start is startedAt; the sleep keeps its recorded wake time.
		Expect(out.WokeAt).To(BeTemporally("==", done.Status.StartedAt.Add(2*time.Second)))
		Expect(entry(done, "countdown").State).To(Equal(workflowsv1alpha1.EntryState("Completed")))
	})
})

var _ = Describe("Restart safety", func() {
	It("never calls a recorded step again after the manager restarts mid-run", func() {
		key := rand.String(8)
		run := createRun("test_steps", stepsInput{Key: key, Steps: 5, BlockAt: 3})
		// Steps 1 and 2 are recorded; step 3 is running when the manager dies.
		Eventually(func() int { return len(getRun(run).Status.Journal) }, 10*time.Second).Should(Equal(2))
		Eventually(func() int { return callCount(key, "step-3") }, 5*time.Second).Should(Equal(1))
		restartManager()
		close(gate(key))

		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(journalOf(done)).To(HaveLen(5))
		Expect(callCount(key, "step-1")).To(Equal(1))
		Expect(callCount(key, "step-2")).To(Equal(1))
		Expect(callCount(key, "step-3")).To(Equal(2), "the step in flight at the crash runs again (at least once)")
		Expect(callCount(key, "step-4")).To(Equal(1))
		Expect(callCount(key, "step-5")).To(Equal(1))
		Expect(outputOf(done)).To(MatchJSON(`["step-1-done","step-2-done","step-3-done","step-4-done","step-5-done"]`))
	})

	It("keeps a sleep's wake time across a restart", func() {
		key := rand.String(8)
		run := createRun("test_sleep", sleepInput{Key: key, Millis: 2500})
		sleeping := waitPhase(run, workflowsv1alpha1.PhaseSleeping, 10*time.Second)
		wake := entry(sleeping, "nap").WakeAt.Time
		restartManager()
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(entry(done, "nap").WakeAt.Time).To(BeTemporally("==", wake))
		Expect(done.Status.FinishedAt.Time).To(BeTemporally(">=", wake.Truncate(time.Second)))
		Expect(callCount(key, "after")).To(Equal(1))
	})

	It("keeps a retry's attempt count and backoff across a restart", func() {
		key := rand.String(8)
		run := createRun("test_retry", retryInput{Key: key, FailTimes: 1, BackoffMs: 2000, MaxAttempts: 3})
		retrying := waitPhase(run, workflowsv1alpha1.PhaseSleeping, 10*time.Second)
		flaky := entry(retrying, "flaky")
		Expect(flaky.State).To(Equal(workflowsv1alpha1.EntryState("Retrying")))
		Expect(flaky.Attempts).To(Equal(int32(1)))
		Expect(flaky.Error).To(ContainSubstring("flaky failure 1"))
		restartManager()
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(entry(done, "flaky").Attempts).To(Equal(int32(2)))
		Expect(outputOf(done)).To(Equal("2"), "the step function saw attempt 2")
		Expect(callCount(key, "flaky")).To(Equal(2))
		Expect(time.Since(flaky.StartedAt.Time)).To(BeNumerically(">=", 2*time.Second))
	})
})

var _ = Describe("Step failures", func() {
	It("retries per policy and records every attempt", func() {
		key := rand.String(8)
		run := createRun("test_retry", retryInput{Key: key, FailTimes: 2, BackoffMs: 100, MaxAttempts: 3})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(entry(done, "flaky").Attempts).To(Equal(int32(3)))
		Expect(callCount(key, "flaky")).To(Equal(3))
	})

	It("fails the run with StepFailed once the attempts are exhausted", func() {
		key := rand.String(8)
		run := createRun("test_retry", retryInput{Key: key, FailTimes: 5, BackoffMs: 50, MaxAttempts: 2})
		failed := expectFailed(run, "StepFailed", "flaky failure 2")
		Expect(entry(failed, "flaky").State).To(Equal(workflowsv1alpha1.EntryState("Failed")))
		Expect(callCount(key, "flaky")).To(Equal(2))
	})

	It("does not retry a non-retryable error", func() {
		key := rand.String(8)
		run := createRun("test_retry", retryInput{Key: key, FailTimes: 5, BackoffMs: 50, MaxAttempts: 5, NonRetryable: true})
		expectFailed(run, "StepFailed", "after 1 attempt")
		Expect(callCount(key, "flaky")).To(Equal(1))
	})

	It("keeps a typed error's type in the journal, and a non-retryable type is not retried", func() {
		key := rand.String(8)
		run := createRun("test_retry", retryInput{Key: key, FailTimes: 5, BackoffMs: 50, MaxAttempts: 5, NonRetryable: true, Typed: true})
		failed := expectFailed(run, "StepFailed", "(error type Flaky)")
		flaky := entry(failed, "flaky")
		Expect(flaky.ErrorType).To(Equal("Flaky"))
		Expect(flaky.Attempts).To(Equal(int32(1)))
		Expect(callCount(key, "flaky")).To(Equal(1))
	})

	It("gives a step function its timeout as a context deadline", func() {
		run := createRun("test_step_timeout", nil)
		expectFailed(run, "StepFailed", "deadline exceeded")
	})

	It("turns a panic in a step or a handler into a failed run, not a crashed manager", func() {
		expectFailed(createRun("test_panic", map[string]string{"where": "step"}), "StepFailed", "boom in a step")
		expectFailed(createRun("test_panic", map[string]string{"where": "handler"}), "Panic", "boom in the handler")
		// The manager still works.
		waitPhase(createRun("hello", map[string]string{"name": "still alive"}), workflowsv1alpha1.PhaseSucceeded, 10*time.Second)
	})
})

var _ = Describe("Primitives called where the engine cannot make them durable", func() {
	It("fails a run that sleeps in a goroutine with reason Misuse instead of finishing without sleeping", func() {
		failed := expectFailed(createRun("test_misuse", nil), "Misuse", `durable.Sleep("nap") was called from a goroutine the handler started`)
		Expect(failed.Status.Output).To(BeNil())
		for _, e := range journalOf(failed) {
			Expect(e.Name).NotTo(Equal("nap"))
		}
		// The manager still works.
		waitPhase(createRun("hello", map[string]string{"name": "still alive"}), workflowsv1alpha1.PhaseSucceeded, 10*time.Second)
	})
})

var _ = Describe("Runs that cannot start", func() {
	It("fails an unknown workflow with the known names", func() {
		failed := expectFailed(createRun("no_such_workflow", nil), "UnknownWorkflow", "no_such_workflow")
		Expect(failed.Status.Error.Message).To(ContainSubstring("hello"))
		Expect(failed.Status.Error.Message).To(ContainSubstring("countdown"))
	})

	It("fails input that does not decode with InvalidInput and the decoder's message", func() {
		expectFailed(createRun("hello", map[string]int{"name": 42}), "InvalidInput", "cannot unmarshal number")
		expectFailed(createRun("hello", map[string]string{"nmae": "typo"}), "InvalidInput", `unknown field "nmae"`)
	})

	It("fails a handler that reuses a name for another kind of primitive", func() {
		expectFailed(createRun("test_nondeterministic", nil), "NonDeterministic", `"x" was recorded as a Step`)
	})
})

var _ = Describe("Lifecycle fields on the spec", func() {
	It("cancels a sleeping run", func() {
		run := createRun("test_sleep", sleepInput{Key: rand.String(8), Millis: 60000})
		waitPhase(run, workflowsv1alpha1.PhaseSleeping, 10*time.Second)
		patch := client.MergeFrom(run.DeepCopy())
		run.Spec.Cancel = true
		Expect(k8sClient.Patch(context.Background(), run, patch)).To(Succeed())
		cancelled := waitPhase(run, workflowsv1alpha1.PhaseCancelled, 10*time.Second)
		cond := meta.FindStatusCondition(cancelled.Status.Conditions, workflowsv1alpha1.ConditionSucceeded)
		Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		Expect(cond.Reason).To(Equal("Cancelled"))
	})

	It("refuses to un-cancel a run", func() {
		run := createRun("test_sleep", sleepInput{Key: rand.String(8), Millis: 60000}, func(r *workflowsv1alpha1.WorkflowRun) { r.Spec.Cancel = true })
		waitPhase(run, workflowsv1alpha1.PhaseCancelled, 10*time.Second)
		fresh := getRun(run)
		fresh.Spec.Cancel = false
		err := k8sClient.Update(context.Background(), fresh)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("cancel cannot be undone"))
	})

	It("fails a run that outlives its timeout", func() {
		run := createRun("test_sleep", sleepInput{Key: rand.String(8), Millis: 60000}, func(r *workflowsv1alpha1.WorkflowRun) {
			r.Spec.Timeout = &metav1.Duration{Duration: time.Second}
		})
		expectFailed(run, "Timeout", "1s")
	})

	It("deletes a finished run after ttlSecondsAfterFinished", func() {
		ttl := int32(1)
		run := createRun("hello", map[string]string{"name": "ttl"}, func(r *workflowsv1alpha1.WorkflowRun) { r.Spec.TTLSecondsAfterFinished = &ttl })
		Eventually(func() bool {
			err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(run), &workflowsv1alpha1.WorkflowRun{})
			return apierrors.IsNotFound(err)
		}, 15*time.Second, 100*time.Millisecond).Should(BeTrue())
	})
})

var _ = Describe("Concurrency", func() {
	It("does not hold up one run behind another's slow step", func() {
		// The bound is the slow step itself, not a wall-clock figure: on a loaded machine the
		// fast run may take seconds, but held behind the slow step it would finish after it.
		slow := createRun("test_slow", sleepInput{Millis: 9000})
		Eventually(func() workflowsv1alpha1.RunPhase { return getRun(slow).Status.Phase }, 5*time.Second).Should(Equal(workflowsv1alpha1.RunPhase("")))
		fast := createRun("hello", map[string]string{"name": "fast"})
		waitPhase(fast, workflowsv1alpha1.PhaseSucceeded, 8*time.Second)
		Expect(getRun(slow).Status.Phase).NotTo(Equal(workflowsv1alpha1.PhaseSucceeded), "the slow step is still running")
		waitPhase(slow, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
	})
})

var _ = Describe("A run's input", func() {
	It("cannot change once the run started: the run fails with InputChanged rather than replay its steps against other input", func() {
		id := "input-" + rand.String(6)
		run := createRun("approval", map[string]string{"request_id": id})
		started := waitPhase(run, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		Expect(started.Status.InputDigest).To(HaveLen(64))
		Expect(k8sClient.Patch(context.Background(), started, client.RawPatch(types.MergePatchType,
			[]byte(`{"spec": {"input": {"request_id": "someone-else"}}}`)))).To(Succeed())
		expectFailed(run, workflowsv1alpha1.ReasonInputChanged, "spec.input changed after the run started")
	})

	It("is the same input however the API server re-encodes it", func() {
		a := &workflowsv1alpha1.WorkflowRun{Spec: workflowsv1alpha1.WorkflowRunSpec{Input: &apiextensionsv1.JSON{Raw: []byte(`{"b": 1, "a": [1.50, "x"]}`)}}}
		b := &workflowsv1alpha1.WorkflowRun{Spec: workflowsv1alpha1.WorkflowRunSpec{Input: &apiextensionsv1.JSON{Raw: []byte(`{"a":[1.50,"x"],"b":1}`)}}}
		Expect(inputDigest(a)).To(Equal(inputDigest(b)))
		b.Spec.Input.Raw = []byte(`{"a":[1.5,"x"],"b":2}`)
		Expect(inputDigest(a)).NotTo(Equal(inputDigest(b)))
	})
})
