package runstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// Options say how the runs' journals are kept: when the open part
// in status is sealed into a WorkflowRunSegment, how large a run's object and a namespace's
// runs may grow, and how much the manager keeps in memory.
type Options struct {
	// OpenEntries and OpenBytes: once the final entries persisted in status.journal (beyond the
	// last few, which stay for kubectl readers) reach this many, or this many bytes as JSON,
	// they are sealed into a segment. Defaults DefaultOpenEntries and DefaultOpenBytes.
	OpenEntries int
	OpenBytes   int
	// MaxObjectBytes bounds a run's object as the engine writes it: input, open journal,
	// output and the rest of its status. Default DefaultMaxObjectBytes.
	MaxObjectBytes int
	// MaxNamespaceBytes bounds what the runs of one namespace store in all (the sum of their
	// status.history.recordedBytes, as the manager's cache sees it); negative means no bound.
	// Default (zero) DefaultMaxNamespaceBytes.
	MaxNamespaceBytes int64
	// CacheBytes bounds the manager's memory of runs: sealed segments, large results, and the
	// runs it wrote last (so that waking a sleeping run needs no read). Default
	// DefaultJournalCacheBytes.
	CacheBytes int64
}

// Defaults of Options.
const (
	DefaultOpenEntries       = 32
	DefaultOpenBytes         = 32 << 10
	DefaultMaxObjectBytes    = 1_300_000
	DefaultMaxNamespaceBytes = 512 << 20
	DefaultJournalCacheBytes = 64 << 20
)

// Sizes of sealing, fixed: they keep every object well below etcd's limit.
const (
	// KeepOpen entries stay in status.journal after a seal, so that `kubectl get wfr -o yaml`
	// shows the run's latest steps.
	KeepOpen = 4
	// segmentMaxEntries and segmentMaxBytes bound one segment; a single larger entry (a result
	// recorded inline by an earlier release) is sealed alone.
	segmentMaxEntries = workflowsv1alpha1.MaxSegmentEntries
	segmentMaxBytes   = 256 << 10
	// maxStatusBytes is the room a run's object keeps for its status beside the input: an
	// input larger than MaxObjectBytes minus this fails the run before anything runs (see
	// Store.InputFailure).
	maxStatusBytes = 256 << 10
	// statusOverhead is what a run's object holds besides its input, journal, output and
	// messages: metadata, times, summary.
	statusOverhead = 8 << 10
	// namespaceUsageTTL is how long a namespace's total is reused before it is summed again.
	namespaceUsageTTL = time.Second
	// memoHorizon: a run that sleeps at most this long is remembered as this manager wrote it,
	// so that waking it needs no read; runs that sleep longer or wait are not kept in memory
	// (see Writer.Suspended).
	memoHorizon = 2 * time.Minute
)

func (o Options) withDefaults() Options {
	if o.OpenEntries <= 0 {
		o.OpenEntries = DefaultOpenEntries
	}
	if o.OpenBytes <= 0 {
		o.OpenBytes = DefaultOpenBytes
	}
	if o.MaxObjectBytes <= 0 {
		o.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if o.MaxNamespaceBytes == 0 {
		o.MaxNamespaceBytes = DefaultMaxNamespaceBytes
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultJournalCacheBytes
	}
	return o
}

// Store is the WorkflowRun reconciler's access to runs' journals: segments and payloads
// in the API server, and a memory of them bounded in bytes, shared by the Writers of every
// run this manager executes. It never calls back into a Writer: the reconciler drives a
// Writer, the Writer uses the Store, and the Store talks to the API server.
type Store struct {
	opts   Options
	client client.Client
	reader client.Reader
	// status writes runs' status subresource (see putStatus).
	status rest.Interface
	// memory holds sealed segments (converted for the engine), payloads and the runs this
	// manager wrote last, by cacheKey.
	memory *Cache[cacheKey, any]
	usage  namespaceUsage
}

// cacheKey names what Store.memory holds.
type cacheKey struct {
	kind  string // "segment", "payload" or "run"
	uid   types.UID
	name  string
	index int32
}

// NewStore returns the store of a manager's runs: c writes segments and payloads, reader reads
// past the cache, and status (NewStatusClient) writes runs' status.
func NewStore(opts Options, c client.Client, reader client.Reader, status rest.Interface) *Store {
	opts = opts.withDefaults()
	return &Store{opts: opts, client: c, reader: reader, status: status, memory: NewCache[cacheKey, any](opts.CacheBytes)}
}

// Memo is a run as this manager last wrote it, kept so that the next execution needs no
// read: the API server's copy after the write, and the engine's journal matching it. Run is
// the run to execute; NewWriter takes the rest.
type Memo struct {
	Run     *workflowsv1alpha1.WorkflowRun
	journal *engine.Journal
	sealed  sealedState
}

// keep remembers memo for the run's next execution.
func (s *Store) keep(memo *Memo) {
	size := int64(statusOverhead+memo.journal.Bytes()) + int64(len(inputOf(memo.Run)))
	s.memory.Put(cacheKey{kind: "run", uid: memo.Run.UID}, memo, size)
}

// Recall returns the run as this manager last wrote it when the cache shows that nobody wrote
// it since, and forgets it either way: the caller owns what it got.
func (s *Store) Recall(cached *workflowsv1alpha1.WorkflowRun) *Memo {
	v, ok := s.memory.Take(cacheKey{kind: "run", uid: cached.UID})
	if !ok {
		return nil
	}
	m := v.(*Memo)
	if m.Run.ResourceVersion != cached.ResourceVersion {
		return nil
	}
	return m
}

// written notes that the run's status was written, by this manager or by another writer whose
// write refused ours as a conflict: from then on a stale cached copy of it cannot pass for a
// run nobody started (see Untouched), so its next execution reads it past the cache instead of
// repeating the steps the other writer recorded.
func (s *Store) written(run *workflowsv1alpha1.WorkflowRun) {
	s.memory.Put(cacheKey{kind: "wrote", uid: run.UID}, struct{}{}, 64)
}

// Untouched reports whether the cached copy of a run is the whole run, nobody having written
// its status yet (Untouched) as far as the cache and this manager know.
func (s *Store) Untouched(cached *workflowsv1alpha1.WorkflowRun) bool {
	_, wrote := s.memory.Get(cacheKey{kind: "wrote", uid: cached.UID})
	return !wrote && Untouched(cached)
}

// Forget drops the memory of a run that will not be executed again soon.
func (s *Store) Forget(uid types.UID) {
	s.memory.Delete(cacheKey{kind: "run", uid: uid})
}

// sealedState is how much of a run's journal is sealed into segments.
type sealedState struct {
	segments int32
	entries  int
	bytes    int64
}

// sealedOf reads the sealed state from a run's status.
func sealedOf(run *workflowsv1alpha1.WorkflowRun) sealedState {
	h := run.Status.History
	if h == nil {
		return sealedState{}
	}
	return sealedState{segments: h.Segments, entries: int(h.SealedEntries), bytes: h.SealedBytes}
}

// loadJournal builds the engine's journal of run: its sealed segments, from memory where it
// has them (they never change), then status.journal.
func (s *Store) loadJournal(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) (*engine.Journal, error) {
	sealed := sealedOf(run)
	entries := make([]engine.Entry, 0, sealed.entries+len(run.Status.Journal))
	segments, err := s.segments(ctx, run, sealed.segments)
	if err != nil {
		return nil, err
	}
	for i, seg := range segments {
		if len(entries) != seg.first {
			return nil, fmt.Errorf("%w: segment %d starts at entry %d, not %d", ErrLost, i, seg.first, len(entries))
		}
		entries = append(entries, seg.entries...)
	}
	if len(entries) != sealed.entries {
		return nil, fmt.Errorf("%w: the run's %d segments hold %d entries, its status counts %d", ErrLost, sealed.segments, len(entries), sealed.entries)
	}
	entries = append(entries, FromAPIJournal(run.Status.Journal)...)
	return engine.NewJournal(entries), nil
}

// cachedSegment is a sealed segment as the engine reads it.
type cachedSegment struct {
	first   int
	entries []engine.Entry
}

// segments returns the run's sealed segments 0 to count-1, reading the ones memory lacks: one
// by one when few are missing, with one list otherwise.
func (s *Store) segments(ctx context.Context, run *workflowsv1alpha1.WorkflowRun, count int32) ([]cachedSegment, error) {
	out := make([]cachedSegment, count)
	var missing []int32
	for i := range count {
		if v, ok := s.memory.Get(segmentKey(run, i)); ok {
			out[i] = v.(cachedSegment)
		} else {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	read := map[int32]*workflowsv1alpha1.WorkflowRunSegment{}
	if len(missing) > 2 {
		all, err := ListSegments(ctx, s.reader, run)
		if err != nil {
			return nil, err
		}
		read = all
	}
	for _, i := range missing {
		seg := read[i]
		if seg == nil {
			var err error
			if seg, err = ReadSegment(ctx, s.reader, run, i); err != nil {
				return nil, err
			}
		}
		out[i] = cachedSegment{first: int(seg.Spec.FirstEntry), entries: FromAPIJournal(seg.Spec.Entries)}
		s.keepSegment(run, i, out[i])
	}
	return out, nil
}

// keepSegment remembers a sealed segment of run.
func (s *Store) keepSegment(run *workflowsv1alpha1.WorkflowRun, index int32, seg cachedSegment) {
	size := int64(0)
	for _, e := range seg.entries {
		size += int64(256 + len(e.Name) + len(e.Result) + len(e.Error) + len(e.Target) + len(e.Ref))
	}
	s.memory.Put(segmentKey(run, index), seg, size)
}

func segmentKey(run *workflowsv1alpha1.WorkflowRun, index int32) cacheKey {
	return cacheKey{kind: "segment", uid: run.UID, index: index}
}

// namespaceUsage remembers, for a short while, how much each namespace's runs store.
type namespaceUsage struct {
	mu   sync.Mutex
	sums map[string]usageSum
}

type usageSum struct {
	bytes int64
	at    time.Time
}

// namespaceBytes is the sum of status.history.recordedBytes over the namespace's runs, from
// the manager's cache, at most namespaceUsageTTL old.
func (s *Store) namespaceBytes(ctx context.Context, ns string) (int64, error) {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	if sum, ok := s.usage.sums[ns]; ok && time.Since(sum.at) < namespaceUsageTTL {
		return sum.bytes, nil
	}
	var runs workflowsv1alpha1.WorkflowRunList
	if err := s.client.List(ctx, &runs, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("sum what the runs of namespace %s store: %w", ns, err)
	}
	var total int64
	for i := range runs.Items {
		if h := runs.Items[i].Status.History; h != nil {
			total += h.RecordedBytes
		}
	}
	if s.usage.sums == nil {
		s.usage.sums = map[string]usageSum{}
	}
	s.usage.sums[ns] = usageSum{bytes: total, at: time.Now()}
	return total, nil
}

// checkNamespace fails the run when growing what it stores from before to after bytes would
// take its namespace over --max-namespace-bytes.
func (s *Store) checkNamespace(ctx context.Context, run *workflowsv1alpha1.WorkflowRun, before, after int64) error {
	if s.opts.MaxNamespaceBytes < 0 || after <= before {
		return nil
	}
	used, err := s.namespaceBytes(ctx, run.Namespace)
	if err != nil {
		return err
	}
	if total := used - before + after; total > s.opts.MaxNamespaceBytes {
		return &engine.Failure{Reason: workflowsv1alpha1.ReasonNamespaceBudgetExceeded, Message: fmt.Sprintf(
			"the runs of namespace %s would store %d bytes, over the limit of %d (--max-namespace-bytes): delete finished runs (or set ttlSecondsAfterFinished) or store large data elsewhere",
			run.Namespace, total, s.opts.MaxNamespaceBytes)}
	}
	return nil
}

// payloadStore stores a run's large results as WorkflowRunPayloads, for the engine.
type payloadStore struct{ w *Writer }

// Store implements engine.PayloadStore.
func (p payloadStore) Store(ctx context.Context, step string, attempt int, result json.RawMessage) (engine.PayloadRef, error) {
	run, s := p.w.run, p.w.store
	before := p.w.recorded()
	if err := s.checkNamespace(ctx, run, before, before+int64(len(result))); err != nil {
		return engine.PayloadRef{}, err
	}
	ref, err := StorePayload(ctx, s.client, s.reader, run, step, attempt, result)
	if err != nil {
		return engine.PayloadRef{}, err
	}
	p.w.storedPayloads = true
	s.memory.Put(cacheKey{kind: "payload", uid: run.UID, name: ref.Name + "/" + ref.SHA256}, result, int64(len(result)))
	return *FromAPIPayload(&ref), nil
}

// Load implements engine.PayloadStore; a result that cannot be read back fails the run.
func (p payloadStore) Load(ctx context.Context, ref engine.PayloadRef) (json.RawMessage, error) {
	run, s := p.w.run, p.w.store
	key := cacheKey{kind: "payload", uid: run.UID, name: ref.Name + "/" + ref.SHA256}
	if v, ok := s.memory.Get(key); ok {
		return v.(json.RawMessage), nil
	}
	data, err := LoadPayload(ctx, s.reader, run, *ToAPIPayload(&ref))
	if err != nil {
		return nil, lostFailure(err)
	}
	s.memory.Put(key, json.RawMessage(data), int64(len(data)))
	return data, nil
}

// lostFailure turns ErrLost into the run's failure; other errors stay transient.
func lostFailure(err error) error {
	if errors.Is(err, ErrLost) {
		return &engine.Failure{Reason: workflowsv1alpha1.ReasonJournalLost, Message: err.Error() + ": the run cannot be replayed"}
	}
	return err
}

// InputFailure is the failure of a run whose input leaves no room in its object for the
// status; nil when the input fits.
func (s *Store) InputFailure(run *workflowsv1alpha1.WorkflowRun) *engine.Failure {
	limit := s.opts.MaxObjectBytes - maxStatusBytes
	if input := len(inputOf(run)); input > limit {
		return &engine.Failure{Reason: workflowsv1alpha1.ReasonInputTooLarge, Message: fmt.Sprintf(
			"the input is %d bytes; an input may be at most %d bytes, so that the run's status fits beside it: pass large data by reference", input, limit)}
	}
	return nil
}

// sweepPayloads deletes payloads of the run's that its journal does not refer to: the orphans
// of executions that died between storing a result and recording it.
func (s *Store) sweepPayloads(ctx context.Context, run *workflowsv1alpha1.WorkflowRun, journal *engine.Journal) error {
	keep := map[string]bool{}
	for _, e := range journal.Entries() {
		if e.Payload != nil {
			for _, name := range PartNames(*ToAPIPayload(e.Payload)) {
				keep[name] = true
			}
		}
	}
	_, err := SweepPayloads(ctx, s.client, s.reader, run, func(name string) bool { return keep[name] })
	return err
}

// tooLarge reports whether the API server refused a write for its size: a 413, or etcd's
// request limit.
func tooLarge(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return apierrors.IsRequestEntityTooLargeError(err) || strings.Contains(msg, "request is too large") ||
		strings.Contains(msg, "trying to send message larger than max")
}

// inputOf is the run's JSON input, nil when it has none.
func inputOf(run *workflowsv1alpha1.WorkflowRun) []byte {
	if run.Spec.Input == nil {
		return nil
	}
	return run.Spec.Input.Raw
}
