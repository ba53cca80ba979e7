package runstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// Writer is the one place that writes a run's status: the WorkflowRun reconciler makes one
// per execution (Store.NewWriter) and records through it. Once the run's journal is loaded
// it also keeps the journal in its pieces: before each write it seals the final entries the
// run has persisted into a WorkflowRunSegment when there are enough of them, puts the open
// part and the summary into status, and checks the budgets (the object's size, the
// namespace's). It remembers what the API server last returned, so a write that would change
// nothing is skipped.
type Writer struct {
	store *Store
	run   *workflowsv1alpha1.WorkflowRun
	saved workflowsv1alpha1.WorkflowRunStatus
	// journal is the run's whole journal once loaded (nil: status.journal is left as it is).
	journal *engine.Journal
	// sealed is how much of journal is sealed into segments.
	sealed sealedState
	// storedPayloads is set once this execution stored a large result.
	storedPayloads bool
	// sealing delivers the outcome of a seal running beside the last write.
	sealing chan sealResult
	// announcements tell the world (Events, metrics) what the next write records, once it
	// succeeded: a write refused and made again by the next execution is announced once, by
	// that execution.
	announcements []func()
}

// Announce has fn called once the next write succeeded.
func (w *Writer) Announce(fn func()) { w.announcements = append(w.announcements, fn) }

// Run is the run being written: the reconciler edits its status in place, and after each
// write it holds what the API server stored.
func (w *Writer) Run() *workflowsv1alpha1.WorkflowRun { return w.run }

// Payloads stores and loads the run's large results for the engine.
func (w *Writer) Payloads() engine.PayloadStore { return payloadStore{w: w} }

// NewWriter starts writing run, from memo when this manager wrote it last (memo.Run is then
// run).
func (s *Store) NewWriter(run *workflowsv1alpha1.WorkflowRun, memo *Memo) *Writer {
	w := &Writer{store: s, run: run, saved: *run.Status.DeepCopy(), sealed: sealedOf(run)}
	if memo != nil {
		w.journal, w.sealed = memo.journal, memo.sealed
	}
	return w
}

// LoadJournal returns the run's whole journal, reading its sealed segments unless this
// manager holds them already. A segment or payload the run's status counts on that is gone
// or altered is a *engine.Failure (workflowsv1alpha1.ReasonJournalLost): the run cannot be replayed.
func (w *Writer) LoadJournal(ctx context.Context) (*engine.Journal, error) {
	if w.journal == nil {
		journal, err := w.store.loadJournal(ctx, w.run)
		if err != nil {
			return nil, lostFailure(err)
		}
		w.journal = journal
	}
	return w.journal, nil
}

// Write updates the run's status, guarded by its resourceVersion; on success run holds what
// the API server stored, with its new resourceVersion. A write that can never succeed (too large for the API
// server, or over a budget) returns a *engine.Failure and leaves the journal in status as it
// was last written, so that the run can still be failed. Segments are sealed before the
// write; writeStep seals beside it instead.
func (w *Writer) Write(ctx context.Context) error { return w.update(ctx, false) }

// WriteStep is Write for the records of an execution that goes on: a small seal it starts
// runs beside the status write (etcd commits them together), and the next write counts it. A
// crash in between leaves a segment that the next execution finds and adopts.
func (w *Writer) WriteStep(ctx context.Context) error { return w.update(ctx, true) }

// Suspended tells the store that the run, as last written, suspends until wakeAt (zero: it
// waits for something outside). A run that wakes within memoHorizon is remembered, so that
// its next execution needs no read.
func (w *Writer) Suspended(wakeAt, now time.Time) {
	if w.journal == nil || wakeAt.IsZero() || wakeAt.Sub(now) > memoHorizon {
		return
	}
	w.store.keep(&Memo{Run: w.run, journal: w.journal, sealed: w.sealed})
}

// Finished tells the store that the run, as last written, is finished: its memory is dropped
// and the results it stored but never recorded (an execution died in between) are deleted.
func (w *Writer) Finished(ctx context.Context) error {
	w.store.Forget(w.run.UID)
	if w.journal == nil || (!w.storedPayloads && w.journal.Payloads() == 0) {
		return nil
	}
	return w.store.sweepPayloads(ctx, w.run, w.journal)
}

// update is Write and WriteStep.
func (w *Writer) update(ctx context.Context, beside bool) error {
	w.run.Status.ObservedGeneration = w.run.Generation
	if w.journal != nil {
		if err := w.seal(ctx, beside); err != nil {
			return err
		}
		w.syncJournal()
		if err := w.checkBudgets(ctx); err != nil {
			w.revert()
			return err
		}
	}
	if apiequality.Semantic.DeepEqual(w.run.Status, w.saved) {
		return nil
	}
	err := w.store.putStatus(ctx, w.run)
	if apierrors.IsConflict(err) && w.onlyMetadataChanged(ctx) {
		err = w.store.putStatus(ctx, w.run)
	}
	if err != nil {
		if apierrors.IsConflict(err) {
			w.store.written(w.run)
		}
		if tooLarge(err) {
			w.revert()
			return &engine.Failure{Reason: workflowsv1alpha1.ReasonJournalTooLarge, Message: fmt.Sprintf(
				"the API server refused the run's status as too large (%v): return smaller step results or a smaller output, or split the work into child workflows", textbound.Cut(err.Error(), textbound.LogValue))}
		}
		return err
	}
	w.saved = *w.run.Status.DeepCopy()
	w.store.written(w.run)
	announcements := w.announcements
	w.announcements = nil
	for _, fn := range announcements {
		fn()
	}
	return nil
}

// onlyMetadataChanged reports, after a write refused as a conflict, whether the run changed
// meanwhile only in its metadata (labels or annotations: the sharder's drain and shard labels,
// kubectl label): its spec (generation) and its status are as this writer last saved them. Then
// nobody else recorded anything, and run takes the stored metadata and resourceVersion so that
// the write can be made again; a step that ran is not lost to a label. Anything else (another
// writer's status, a new spec, a failed read) keeps the conflict, and the execution starts again
// from a fresh read.
func (w *Writer) onlyMetadataChanged(ctx context.Context) bool {
	fresh := &workflowsv1alpha1.WorkflowRun{}
	if err := w.store.reader.Get(ctx, client.ObjectKeyFromObject(w.run), fresh); err != nil {
		return false
	}
	if fresh.UID != w.run.UID || fresh.Generation != w.run.Generation || !sameStatus(fresh.Status, w.saved) {
		return false
	}
	status := w.run.Status
	fresh.ObjectMeta.DeepCopyInto(&w.run.ObjectMeta)
	w.run.Status = status
	return true
}

// sameStatus reports whether a and b encode to the same JSON document, whatever the order of
// keys and the spacing (the API server re-encodes free-form JSON, such as step results).
func sameStatus(a, b workflowsv1alpha1.WorkflowRunStatus) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && EqualJSON(ja, jb)
}

// seal moves the final entries the run has persisted in status.journal (all but the last
// KeepOpen) into new segments once they reach OpenEntries entries or OpenBytes bytes, after
// counting a seal that ran beside the previous write. Only persisted entries are sealed: an
// entry not yet written may still be lost with the write and come out differently when its
// step runs again, while a segment never changes. With beside, the new seal runs while the
// caller writes, and the next write counts it.
func (w *Writer) seal(ctx context.Context, beside bool) error {
	if err := w.collectSeal(); err != nil {
		return err
	}
	plan := w.planSeal()
	if len(plan) == 0 {
		return nil
	}
	run := identity(w.run)
	if beside && planBytes(plan) <= w.store.opts.OpenBytes {
		// A small seal (the usual one, of OpenEntries steps) goes beside the write. A large one
		// (a batch) is not worth carrying in the status write once more: it goes first.
		done := make(chan sealResult, 1)
		go func() { done <- executeSeal(ctx, w.store, run, plan) }()
		w.sealing = done
		return nil
	}
	res := executeSeal(ctx, w.store, run, plan)
	w.applySeal(res)
	return res.err
}

// planBytes is the size of the entries a seal writes.
func planBytes(plan []sealChunk) int {
	n := 0
	for _, c := range plan {
		for _, b := range c.bytes {
			n += b
		}
	}
	return n
}

// collectSeal waits for the seal running beside the previous write, if any, and counts what
// it sealed.
func (w *Writer) collectSeal() error {
	if w.sealing == nil {
		return nil
	}
	res := <-w.sealing
	w.sealing = nil
	w.applySeal(res)
	return res.err
}

// sealChunk is one segment a seal writes: persisted entries from the journal's entry first.
type sealChunk struct {
	index   int32
	first   int
	entries []workflowsv1alpha1.JournalEntry
	engine  []engine.Entry
	bytes   []int
}

// sealResult is what a seal wrote: the chunks, with how many entries each segment holds (an
// adopted segment may hold fewer than planned, and ends the seal), and the error that
// stopped it.
type sealResult struct {
	chunks []sealChunk
	held   []int
	err    error
}

// planSeal cuts the persisted final entries not sealed yet into chunks, when there are enough
// of them; everything the seal needs is copied, so that it may run beside the engine.
func (w *Writer) planSeal() []sealChunk {
	persisted := w.saved.Journal[w.sealed.entries-sealedOf(&workflowsv1alpha1.WorkflowRun{Status: w.saved}).entries:]
	n, total := 0, 0
	for n < len(persisted)-KeepOpen && persisted[n].State.IsFinal() {
		total += w.journal.EntryBytes(w.sealed.entries + n)
		n++
	}
	if n == 0 || (n < w.store.opts.OpenEntries && total < w.store.opts.OpenBytes) {
		return nil
	}
	var plan []sealChunk
	for start := 0; start < n; {
		c := sealChunk{index: w.sealed.segments + int32(len(plan)), first: w.sealed.entries + start}
		size := 0
		for end := start; end < n && end-start < segmentMaxEntries; end++ {
			b := w.journal.EntryBytes(c.first + end - start)
			if end > start && size+b > segmentMaxBytes {
				break
			}
			size += b
			c.bytes = append(c.bytes, b)
		}
		end := start + len(c.bytes)
		c.entries = persisted[start:end]
		c.engine = slices.Clone(w.journal.Entries()[c.first : c.first+len(c.bytes)])
		plan = append(plan, c)
		start = end
	}
	return plan
}

// executeSeal writes the planned segments in order, stopping at the first error or at an
// adopted segment that holds fewer entries than planned (the next seal goes on from there).
func executeSeal(ctx context.Context, s *Store, run *workflowsv1alpha1.WorkflowRun, plan []sealChunk) sealResult {
	var res sealResult
	for _, c := range plan {
		held, err := Seal(ctx, s.client, s.reader, run, c.index, int64(c.first), c.entries)
		if err != nil {
			res.err = err
			return res
		}
		res.chunks, res.held = append(res.chunks, c), append(res.held, held)
		if held < len(c.entries) {
			return res
		}
	}
	return res
}

// applySeal counts what a seal wrote and keeps the segments in memory.
func (w *Writer) applySeal(res sealResult) {
	for i, c := range res.chunks {
		held := res.held[i]
		w.store.keepSegment(w.run, c.index, cachedSegment{first: c.first, entries: c.engine[:held]})
		for _, b := range c.bytes[:held] {
			w.sealed.bytes += int64(b)
		}
		w.sealed.segments++
		w.sealed.entries += held
	}
}

// identity is a copy of the run's name, namespace and UID: what writing its segments needs,
// safe to use beside the execution that changes the run.
func identity(run *workflowsv1alpha1.WorkflowRun) *workflowsv1alpha1.WorkflowRun {
	return &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: run.Name, Namespace: run.Namespace, UID: run.UID}}
}

// syncJournal puts the open part of the journal and the journal's summary into status.
func (w *Writer) syncJournal() {
	st := &w.run.Status
	st.Journal = ToAPIJournal(w.journal.Entries()[w.sealed.entries:])
	st.JournalBytes = int64(w.journal.Bytes())
	st.History = &workflowsv1alpha1.JournalHistory{
		Segments:      w.sealed.segments,
		SealedEntries: int64(w.sealed.entries),
		SealedBytes:   w.sealed.bytes,
		Entries:       int64(w.journal.Len()),
		Payloads:      int64(w.journal.Payloads()),
		PayloadBytes:  int64(w.journal.PayloadBytes()),
		RecordedBytes: w.recorded(),
	}
}

// recorded is what the run stores in all: input, journal, payloads and output.
func (w *Writer) recorded() int64 {
	n := int64(len(inputOf(w.run)) + w.journal.Bytes() + w.journal.PayloadBytes())
	if w.run.Status.Output != nil {
		n += int64(len(w.run.Status.Output.Raw))
	}
	return n
}

// checkBudgets fails the run when its object would outgrow what the API server accepts, or
// when it would take its namespace over --max-namespace-bytes.
func (w *Writer) checkBudgets(ctx context.Context) error {
	input, open, output, other := w.objectBytes()
	if size := input + open + output + other; size > w.store.opts.MaxObjectBytes {
		return &engine.Failure{Reason: workflowsv1alpha1.ReasonJournalTooLarge, Message: fmt.Sprintf(
			"the run's object would grow to %d bytes (input %d, open journal %d, output %d), over the %d a write may carry: return smaller step results or a smaller output, or pass large inputs by reference",
			size, input, open, output, w.store.opts.MaxObjectBytes)}
	}
	var before int64
	if w.saved.History != nil {
		before = w.saved.History.RecordedBytes
	}
	return w.store.checkNamespace(ctx, w.run, before, w.run.Status.History.RecordedBytes)
}

// objectBytes estimates the size of the run's object as JSON: its input, the open part of its
// journal, its output, and the rest (metadata and the remaining status, messages included).
func (w *Writer) objectBytes() (input, open, output, other int) {
	input = len(inputOf(w.run))
	for i := w.sealed.entries; i < w.journal.Len(); i++ {
		open += w.journal.EntryBytes(i)
	}
	st := &w.run.Status
	if st.Output != nil {
		output = len(st.Output.Raw)
	}
	other = statusOverhead
	for k, v := range w.run.Annotations {
		other += len(k) + len(v)
	}
	for _, c := range st.Conditions {
		other += len(c.Message)
	}
	if st.Error != nil {
		other += len(st.Error.Message)
	}
	return input, open, output, other
}

// revert puts the journal in status back as it was last written, and stops writing the
// journal: after a failed budget or a refused write, the run can only be failed. What the
// lost records would have announced is dropped with them.
func (w *Writer) revert() {
	st := &w.run.Status
	st.Journal, st.JournalBytes, st.History = w.saved.Journal, w.saved.JournalBytes, w.saved.History.DeepCopy()
	w.sealed = sealedOf(&workflowsv1alpha1.WorkflowRun{Status: w.saved})
	w.journal, w.sealing, w.announcements = nil, nil, nil
}

// NewStatusClient returns a REST client for WorkflowRuns over the manager's connection: what
// NewStore writes runs' status with (see putStatus).
func NewStatusClient(cfg *rest.Config, hc *http.Client) (rest.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.GroupVersion = &workflowsv1alpha1.GroupVersion
	cfg.APIPath = "/apis"
	cfg.ContentType = runtime.ContentTypeJSON
	// client-go's codecs: what turns the API server's error answers into *StatusErrors.
	cfg.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("build a REST client for WorkflowRuns: %w", err)
	}
	return rc, nil
}

// putStatus writes run's status, guarded by its resourceVersion, and takes the new
// resourceVersion from the answer without decoding the rest of it: the API server keeps
// nothing but the status of a status write, and answers with what it stored, which is what
// was sent (a spec changed meanwhile would have changed the resourceVersion, and the write
// would have been refused as a conflict). This spares the manager half the decoding a step
// costs it; the other half is its watch.
func (s *Store) putStatus(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) error {
	run.APIVersion, run.Kind = workflowsv1alpha1.GroupVersion.String(), "WorkflowRun"
	run.ManagedFields = nil // the API server keeps the stored ones; ours would be stale
	body, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("encode run %s: %w", run.Name, err)
	}
	res := s.status.Put().Namespace(run.Namespace).Resource("workflowruns").Name(run.Name).SubResource("status").
		Body(body).Do(ctx)
	if err := res.Error(); err != nil {
		return err // a *StatusError when the API server said why (Result.Raw would not say)
	}
	raw, _ := res.Raw()
	rv, err := resourceVersionOf(raw)
	if err != nil {
		return fmt.Errorf("read the answer to the status write of run %s: %w", run.Name, err)
	}
	run.ResourceVersion = rv
	return nil
}

// resourceVersionOf reads metadata.resourceVersion from an object the API server answered
// with. The API server writes metadata before spec and status, so the object is read only up
// to its metadata: the answer to a status write holds the whole journal, which the writer
// already has.
func resourceVersionOf(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", fmt.Errorf("not a JSON object: %w", errors.Join(err, errors.New("no opening brace")))
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", err
		}
		if key != "metadata" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
			continue
		}
		var meta struct {
			ResourceVersion string `json:"resourceVersion"`
		}
		if err := dec.Decode(&meta); err != nil {
			return "", err
		}
		if meta.ResourceVersion == "" {
			break
		}
		return meta.ResourceVersion, nil
	}
	return "", errors.New("no resourceVersion")
}
