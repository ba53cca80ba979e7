package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/runstore"
)

// segmentsOf lists the run's sealed segments from the API server.
func segmentsOf(run *workflowsv1alpha1.WorkflowRun) []workflowsv1alpha1.WorkflowRunSegment {
	GinkgoHelper()
	var list workflowsv1alpha1.WorkflowRunSegmentList
	Expect(k8sClient.List(context.Background(), &list, client.InNamespace(run.Namespace), client.MatchingLabels(runstore.RunSelector(run)))).To(Succeed())
	return list.Items
}

// payloadsOf lists the run's payloads from the API server.
func payloadsOf(run *workflowsv1alpha1.WorkflowRun) []workflowsv1alpha1.WorkflowRunPayload {
	GinkgoHelper()
	var list workflowsv1alpha1.WorkflowRunPayloadList
	Expect(k8sClient.List(context.Background(), &list, client.InNamespace(run.Namespace), client.MatchingLabels(runstore.RunSelector(run)))).To(Succeed())
	return list.Items
}

// jsonSize is the size of obj as the API server stores it.
func jsonSize(obj any) int {
	GinkgoHelper()
	b, err := json.Marshal(obj)
	Expect(err).NotTo(HaveOccurred())
	return len(b)
}

// expectSmallObjects checks that neither the run nor anything it owns comes near etcd's limit.
func expectSmallObjects(run *workflowsv1alpha1.WorkflowRun) {
	GinkgoHelper()
	const limit = 1 << 20
	Expect(jsonSize(run)).To(BeNumerically("<", limit), "the run itself")
	for _, seg := range segmentsOf(run) {
		Expect(jsonSize(seg)).To(BeNumerically("<", limit), "segment %s", seg.Name)
	}
	for _, p := range payloadsOf(run) {
		Expect(jsonSize(p)).To(BeNumerically("<", limit), "payload %s", p.Name)
	}
}

var _ = Describe("A long run", func() {
	It("records 5,000 steps in sealed segments, keeping the run's own object small", func() {
		key := rand.String(8)
		run := createRun("test_steps", stepsInput{Key: key, Steps: 5000})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 6*time.Minute) // a write per step: minutes under -race on a busy machine

		h := done.Status.History
		Expect(h).NotTo(BeNil())
		Expect(h.Entries).To(Equal(int64(5000)))
		Expect(h.Segments).To(BeNumerically(">=", 5000/(runstore.DefaultOpenEntries+runstore.KeepOpen)))
		Expect(len(done.Status.Journal)).To(BeNumerically("<=", runstore.DefaultOpenEntries+runstore.KeepOpen), "only the open part stays in status")
		Expect(h.SealedEntries + int64(len(done.Status.Journal))).To(Equal(int64(5000)))
		Expect(segmentsOf(done)).To(HaveLen(int(h.Segments)))

		entries := journalOf(done)
		for i, e := range entries {
			Expect(e.Name).To(Equal(fmt.Sprintf("step-%d", i+1)))
			Expect(e.State).To(Equal(workflowsv1alpha1.EntryState("Completed")))
		}
		for _, i := range []int{1, 2500, 5000} {
			Expect(callCount(key, fmt.Sprintf("step-%d", i))).To(Equal(1))
		}
		expectSmallObjects(done)
		Expect(manager.reconcileCount(run.Name)).To(BeNumerically("<=", 3), "one execution, not one per step")
	})

	It("replays a sealed journal after a restart without calling recorded steps again", func() {
		key := rand.String(8)
		run := createRun("test_steps", stepsInput{Key: key, Steps: 120, BlockAt: 100})
		Eventually(func() int { return callCount(key, "step-100") }, 60*time.Second).Should(Equal(1))
		Expect(getRun(run).Status.History.Segments).To(BeNumerically(">=", 2))
		restartManager() // a fresh manager reads the segments from the API server
		close(gate(key))
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, time.Minute)
		Expect(journalOf(done)).To(HaveLen(120))
		Expect(callCount(key, "step-1")).To(Equal(1))
		Expect(callCount(key, "step-99")).To(Equal(1))
		Expect(callCount(key, "step-100")).To(Equal(2), "the step in flight at the restart runs again")
	})

	It("records batched steps together and finishes with a complete journal", func() {
		key := rand.String(8)
		run := createRun("test_steps", stepsInput{Key: key, Steps: 300, Batched: true})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, time.Minute)
		Expect(journalOf(done)).To(HaveLen(300))
		Expect(callCount(key, "step-150")).To(Equal(1))
	})
})

var _ = Describe("Large results", func() {
	It("stores results over the inline limit as payloads and reads them back when replay reaches them", func() {
		key := rand.String(8)
		run := createRun("test_blobs", blobsInput{Key: key, Bytes: 300 << 10, Steps: 3, SleepMs: 1500})
		waitPhase(run, workflowsv1alpha1.PhaseSleeping, 20*time.Second)
		restartManager() // the new manager has nothing cached: it reads the payload back
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 30*time.Second)
		Expect(outputOf(done)).To(Equal(fmt.Sprint(3 * (300 << 10))))

		blob1 := entry(done, "blob-1")
		Expect(blob1.Payload).NotTo(BeNil())
		Expect(blob1.Payload.Bytes).To(Equal(int64(300<<10 + 2)))
		var got string
		Expect(json.Unmarshal(blob1.Result.Raw, &got)).To(Succeed())
		Expect(got).To(Equal(blob(1, 300<<10)), "ReadJournal resolves the payload")
		Expect(payloadsOf(done)).To(HaveLen(3))
		Expect(done.Status.History.PayloadBytes).To(Equal(int64(3 * (300<<10 + 2))))
		Expect(callCount(key, "blob-1")).To(Equal(1))
		expectSmallObjects(done)
	})

	It("splits a result larger than a payload object into parts", func() {
		run := createRun("test_blobs", blobsInput{Key: rand.String(8), Bytes: 1200 << 10, Steps: 1})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 30*time.Second)
		Expect(entry(done, "blob-1").Payload.Parts).To(Equal(int32(3)))
		Expect(payloadsOf(done)).To(HaveLen(3))
		expectSmallObjects(done)
	})

	It("runs a workflow whose input plus results would have passed 1.5 MiB in one object", func() {
		run := createRun("test_blobs", blobsInput{Key: rand.String(8), Bytes: 200 << 10, Steps: 4, Pad: strings.Repeat("p", 900<<10)})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 30*time.Second)
		Expect(outputOf(done)).To(Equal(fmt.Sprint(4 * (200 << 10))))
		Expect(done.Status.History.RecordedBytes).To(BeNumerically(">", 3<<19), "input plus results")
		expectSmallObjects(done)
	})
})

var _ = Describe("Budgets", func() {
	It("fails a step whose result is over --max-step-result-bytes, without retrying it", func() {
		key := rand.String(8)
		run := createRun("test_blobs", blobsInput{Key: key, Bytes: engine.DefaultMaxResultBytes, Steps: 1})
		failed := expectFailed(run, "StepFailed", fmt.Sprintf("over the limit of %d", engine.DefaultMaxResultBytes))
		Expect(entry(failed, "blob-1").Attempts).To(Equal(int32(1)))
		Expect(callCount(key, "blob-1")).To(Equal(1))
	})

	It("fails a run that would store more than --max-run-bytes with JournalTooLarge", func() {
		key := rand.String(8)
		run := createRun("test_blobs", blobsInput{Key: key, Bytes: 1 << 20, Steps: 10})
		failed := expectFailed(run, "JournalTooLarge", fmt.Sprintf("over the limit of %d", suiteLimits.MaxRunBytes))
		Expect(failed.Status.History.RecordedBytes).To(BeNumerically("<=", suiteLimits.MaxRunBytes))
		Expect(callCount(key, "blob-6")).To(Equal(1), "the step that broke the budget ran once")
		Expect(callCount(key, "blob-7")).To(Equal(0))
	})

	It("fails an input too large to leave room for the status before running anything", func() {
		key := rand.String(8)
		run := createRun("test_blobs", blobsInput{Key: key, Bytes: 1, Steps: 1, Pad: strings.Repeat("p", 1100<<10)})
		expectFailed(run, workflowsv1alpha1.ReasonInputTooLarge, "pass large data by reference")
		Expect(callCount(key, "blob-1")).To(Equal(0))
	})

	It("cuts a huge error message to what the schema allows", func() {
		run := createRun("test_retry", retryInput{Key: rand.String(8), FailTimes: 1, MaxAttempts: 1, NonRetryable: true, Noise: 100 << 10})
		failed := expectFailed(run, "StepFailed", "cut from")
		Expect(len(failed.Status.Error.Message)).To(BeNumerically("<=", workflowsv1alpha1.MaxMessageLength))
	})

	When("the API server refuses a write as too large", func() {
		BeforeEach(func() {
			// Budgets far above what etcd takes, so that the API server is the one to refuse.
			restartManager(func(o *Options) {
				o.Storage.MaxObjectBytes = 10 << 20
				o.Limits.InlineResultBytes = 256 << 10
			})
			DeferCleanup(func() { restartManager() })
		})

		It("fails the run once with JournalTooLarge and never runs the step again", func() {
			key := rand.String(8)
			run := createRun("test_blobs", blobsInput{Key: key, Bytes: 262000, Steps: 1, Pad: strings.Repeat("p", 1350<<10)})
			failed := expectFailed(run, "JournalTooLarge", "refused")
			Expect(failed.Status.Journal).To(BeEmpty(), "the refused entry is not recorded")
			Consistently(func() int { return callCount(key, "blob-1") }, 3*time.Second, 200*time.Millisecond).Should(Equal(1))
			Expect(manager.reconcileCount(run.Name)).To(BeNumerically("<=", 3), "no loop against the limit")
		})
	})
})

var _ = Describe("Deleting runs", func() {
	It("leaves no segment, payload or child run behind once 100 runs are deleted", func() {
		ns := "gc-" + rand.String(6)
		Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		runs := make([]*workflowsv1alpha1.WorkflowRun, 100)
		for i := range runs {
			runs[i] = createRun("test_owned", nil, func(r *workflowsv1alpha1.WorkflowRun) { r.Namespace = ns })
		}
		for _, run := range runs {
			waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 2*time.Minute)
		}
		count := func() map[string]int {
			var segs workflowsv1alpha1.WorkflowRunSegmentList
			var pays workflowsv1alpha1.WorkflowRunPayloadList
			var all workflowsv1alpha1.WorkflowRunList
			Expect(k8sClient.List(context.Background(), &segs, client.InNamespace(ns))).To(Succeed())
			Expect(k8sClient.List(context.Background(), &pays, client.InNamespace(ns))).To(Succeed())
			Expect(k8sClient.List(context.Background(), &all, client.InNamespace(ns))).To(Succeed())
			return map[string]int{"segments": len(segs.Items), "payloads": len(pays.Items), "runs": len(all.Items)}
		}
		Expect(count()).To(Equal(map[string]int{"segments": 100, "payloads": 100, "runs": 200}), "each run owns a segment, a payload and a child")

		for _, run := range runs {
			Expect(k8sClient.Delete(context.Background(), run)).To(Succeed())
		}
		Eventually(count, time.Minute, time.Second).Should(Equal(map[string]int{"segments": 0, "payloads": 0, "runs": 0}))
	})
})

var _ = Describe("The manager's cache", func() {
	cachedCopy := func(run *workflowsv1alpha1.WorkflowRun) *workflowsv1alpha1.WorkflowRun {
		GinkgoHelper()
		cached := &workflowsv1alpha1.WorkflowRun{}
		Eventually(func() workflowsv1alpha1.RunPhase {
			Expect(manager.cache.Get(context.Background(), client.ObjectKeyFromObject(run), cached)).To(Succeed())
			return cached.Status.Phase
		}, 5*time.Second).Should(Equal(workflowsv1alpha1.PhaseSucceeded))
		return cached
	}

	It("keeps runs without their input, journal or output", func() {
		run := createRun("hello", map[string]string{"name": strings.Repeat("lean ", 400)})
		waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		cached := cachedCopy(run)
		Expect(runstore.InputDropped(cached)).To(BeTrue(), "a 2 KiB input is not cached")
		Expect(cached.Status.Journal).To(BeEmpty())
		Expect(cached.Status.Output).To(BeNil())
		Expect(cached.Status.Conditions).To(BeEmpty())
		Expect(cached.ManagedFields).To(BeEmpty())
		Expect(cached.Status.History.Entries).To(Equal(int64(1)), "the summary stays")
	})

	It("keeps a small input, so that a new run starts without a read", func() {
		run := createRun("hello", map[string]string{"name": "small"})
		cached := cachedCopy(waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second))
		Expect(cached.Spec.Input.Raw).To(MatchJSON(`{"name":"small"}`))
		Expect(cached.Status.Output).To(BeNil())
	})
})

var _ = Describe("Sealing and storing", func() {
	// The pieces a run writes before the status write that counts them: a crash in between
	// leaves them behind, and the next execution writes them again. These specs call the
	// writes directly, twice, as the two executions would.
	var run *workflowsv1alpha1.WorkflowRun
	BeforeEach(func() {
		run = createRun("no_such_workflow_for_sealing", nil)
		expectFailed(run, "UnknownWorkflow", "no_such_workflow_for_sealing")
		run = getRun(run)
	})
	entries := func(names ...string) []workflowsv1alpha1.JournalEntry {
		out := make([]workflowsv1alpha1.JournalEntry, len(names))
		for i, n := range names {
			out[i] = workflowsv1alpha1.JournalEntry{Name: n, Kind: "Step", State: "Completed", Attempts: 1,
				Result: &apiextensionsv1.JSON{Raw: []byte(`{"b":1,"a":"` + n + `"}`)}}
		}
		return out
	}
	ctx := context.Background()

	It("adopts a segment sealed before a crash, and refuses one with other entries", func() {
		n, err := runstore.Seal(ctx, k8sClient, k8sClient, run, 0, 0, entries("a", "b", "c"))
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(3))
		// The same seal again: idempotent, checked by content (the API server reordered keys).
		n, err = runstore.Seal(ctx, k8sClient, k8sClient, run, 0, 0, entries("a", "b", "c", "d"))
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(3), "the segment holds the first three; the fourth goes to the next")
		_, err = runstore.Seal(ctx, k8sClient, k8sClient, run, 0, 0, entries("a", "x", "c"))
		Expect(apierrors.IsConflict(err)).To(BeTrue(), "got %v", err)
	})

	It("refuses to change a sealed segment or a payload", func() {
		_, err := runstore.Seal(ctx, k8sClient, k8sClient, run, 0, 0, entries("a"))
		Expect(err).NotTo(HaveOccurred())
		seg, err := runstore.ReadSegment(ctx, k8sClient, run, 0)
		Expect(err).NotTo(HaveOccurred())
		seg.Spec.Entries[0].Name = "rewritten"
		err = k8sClient.Update(ctx, seg)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("immutable"))

		ref, err := runstore.StorePayload(ctx, k8sClient, k8sClient, run, "s", 1, []byte(`"data"`))
		Expect(err).NotTo(HaveOccurred())
		p := &workflowsv1alpha1.WorkflowRunPayload{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: ref.Name}, p)).To(Succeed())
		p.Spec.Data = []byte(`"other"`)
		Expect(apierrors.IsInvalid(k8sClient.Update(ctx, p))).To(BeTrue())
	})

	It("replaces an orphaned payload of the same attempt and reads back what was recorded", func() {
		_, err := runstore.StorePayload(ctx, k8sClient, k8sClient, run, "s", 1, []byte(`"lost with the crash"`))
		Expect(err).NotTo(HaveOccurred())
		ref, err := runstore.StorePayload(ctx, k8sClient, k8sClient, run, "s", 1, []byte(`"recorded"`))
		Expect(err).NotTo(HaveOccurred())
		data, err := runstore.LoadPayload(ctx, k8sClient, run, ref)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(data)).To(Equal(`"recorded"`))

		other, err := runstore.StorePayload(ctx, k8sClient, k8sClient, run, "s", 2, []byte(`"attempt 2"`))
		Expect(err).NotTo(HaveOccurred())
		Expect(other.Name).NotTo(Equal(ref.Name), "another attempt never collides with an earlier one")
		deleted, err := runstore.SweepPayloads(ctx, k8sClient, k8sClient, run, func(name string) bool { return name == ref.Name })
		Expect(err).NotTo(HaveOccurred())
		Expect(deleted).To(Equal(1))
		_, err = runstore.LoadPayload(ctx, k8sClient, run, other)
		Expect(err).To(MatchError(runstore.ErrLost))
	})
})

// previousRelease loads a run as the release before segments recorded it (journal whole in
// status.journal), from testdata/previous-release: written by that release's own controller
// (commit 15dd691, see the README there).
func previousRelease(name string) (workflowsv1alpha1.WorkflowRunSpec, workflowsv1alpha1.WorkflowRunStatus) {
	GinkgoHelper()
	raw, err := os.ReadFile(filepath.Join("testdata", "previous-release", name+".json"))
	Expect(err).NotTo(HaveOccurred())
	var fixture struct {
		Spec   workflowsv1alpha1.WorkflowRunSpec   `json:"spec"`
		Status workflowsv1alpha1.WorkflowRunStatus `json:"status"`
	}
	Expect(json.Unmarshal(raw, &fixture)).To(Succeed())
	Expect(fixture.Status.History).To(BeNil(), "the previous release kept no summary")
	return fixture.Spec, fixture.Status
}

var _ = Describe("Upgrading in place", func() {
	It("finishes runs the previous release left sleeping, waiting, retrying and running", func() {
		// The operator is down while it is upgraded: the old release's runs are in etcd as it
		// wrote them; then the new release starts.
		manager.stop()
		create := func(fixture string) *workflowsv1alpha1.WorkflowRun {
			spec, status := previousRelease(fixture)
			run := &workflowsv1alpha1.WorkflowRun{
				ObjectMeta: metav1.ObjectMeta{Name: "upgrade-" + fixture + "-" + rand.String(4), Namespace: "default"},
				Spec:       spec,
			}
			Expect(k8sClient.Create(context.Background(), run)).To(Succeed())
			run.Status = status
			Expect(k8sClient.Status().Update(context.Background(), run)).To(Succeed())
			return run
		}
		sleeping, waiting, retrying, running := create("sleeping"), create("waiting"), create("retrying"), create("running")
		var key struct {
			Key string `json:"key"`
		}
		Expect(json.Unmarshal(retrying.Spec.Input.Raw, &key)).To(Succeed())
		countCall(key.Key, "flaky") // attempt 1 ran under the old release
		Expect(json.Unmarshal(running.Spec.Input.Raw, &key)).To(Succeed())
		runningKey := key.Key
		close(gate(runningKey)) // step 70 was in flight: let it through when it runs again
		manager = startManager()

		// Sleeping and retrying: their wake times passed during the upgrade.
		Expect(outputOf(waitPhase(sleeping, workflowsv1alpha1.PhaseSucceeded, 20*time.Second))).To(MatchJSON(`"awake"`))
		Expect(outputOf(waitPhase(retrying, workflowsv1alpha1.PhaseSucceeded, 20*time.Second))).To(Equal("2"))
		Expect(entry(getRun(retrying), "flaky").Attempts).To(Equal(int32(2)))

		// Running: 69 recorded steps replay from the old journal, which is sealed on the first
		// write; the step in flight and the rest run.
		done := waitPhase(running, workflowsv1alpha1.PhaseSucceeded, 30*time.Second)
		Expect(journalOf(done)).To(HaveLen(80))
		Expect(done.Status.History.Segments).To(BeNumerically(">=", 1))
		Expect(len(done.Status.Journal)).To(BeNumerically("<", 40))
		Expect(callCount(runningKey, "step-1")).To(Equal(0), "recorded by the old release, never run again")
		Expect(callCount(runningKey, "step-69")).To(Equal(0))
		Expect(callCount(runningKey, "step-70")).To(Equal(1))

		// Waiting: the event it waits for arrives after the upgrade.
		var waitKey struct {
			Key string `json:"key"`
		}
		Expect(json.Unmarshal(waiting.Spec.Input.Raw, &waitKey)).To(Succeed())
		Expect(k8sClient.Create(context.Background(), &workflowsv1alpha1.WorkflowEvent{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "upgrade-", Namespace: "default"},
			Spec: workflowsv1alpha1.WorkflowEventSpec{Type: "test.signal", CorrelationID: waitKey.Key,
				Payload: &apiextensionsv1.JSON{Raw: []byte(`{"after":"upgrade"}`)}},
		})).To(Succeed())
		Expect(outputOf(waitPhase(waiting, workflowsv1alpha1.PhaseSucceeded, 20*time.Second))).To(MatchJSON(`{"after":"upgrade"}`))
	})
})

// A replica that executed a run from its cache's copy of a run nobody had started (as two
// replicas of one shard may, for a moment) and whose write another writer's refused must not
// start from that copy again while its cache lags: the other writer recorded steps that the
// copy does not show, and executing them again would repeat them.
var _ = Describe("a status write that another writer's refused", func() {
	It("stops the cache's copy of a run nobody started from passing for the whole run", func() {
		ctx := context.Background()
		hc, err := rest.HTTPClientFor(cfg)
		Expect(err).NotTo(HaveOccurred())
		status, err := runstore.NewStatusClient(cfg, hc)
		Expect(err).NotTo(HaveOccurred())
		store := runstore.NewStore(runstore.Options{}, k8sClient, k8sClient, status)
		created := createRun("hello", map[string]string{"name": "Overtaken"})
		Expect(store.Untouched(created)).To(BeTrue(), "a created run is whole as created")
		// The suite's controller is the other writer: it records the run's step and end.
		waitPhase(created, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)

		w := store.NewWriter(created.DeepCopy(), nil)
		started := metav1.Now()
		w.Run().Status.StartedAt = &started
		w.Run().Status.Phase = workflowsv1alpha1.PhaseRunning
		err = w.Write(ctx)
		Expect(apierrors.IsConflict(err)).To(BeTrue(), "the write from the stale copy is refused: %v", err)
		Expect(store.Untouched(created)).To(BeFalse(), "the stale copy no longer passes for a run nobody started")
	})
})
