package controllers

import (
	"context"
	"fmt"
	"slices"

	apiequality "k8s.io/apimachinery/pkg/api/equality"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/runstore"
)

// statusWriter is the one place that writes a run's status. Once the run's journal is loaded
// it also keeps the journal in its pieces: before each write it seals the final entries the
// run has persisted into a WorkflowRunSegment when there are enough of them, puts the open
// part and the summary into status, and checks the budgets (the object's size, the
// namespace's). It remembers what the API server last returned, so a write that would change
// nothing is skipped.
type statusWriter struct {
	store *journalStore
	run   *workflowsv1alpha1.WorkflowRun
	saved workflowsv1alpha1.WorkflowRunStatus
	// journal is the run's whole journal once loaded (nil: status.journal is left as it is).
	journal *durable.Journal
	// sealed is how much of journal is sealed into segments.
	sealed sealedState
	// storedPayloads is set once this execution stored a large result.
	storedPayloads bool
	// pending are the engine's entries the next write persists; persisted, when set, learns
	// of them once it did (events learn who consumed them).
	pending   []durable.Entry
	persisted func(ctx context.Context, entries []durable.Entry)
}

// persisting says which of the engine's entries the next write persists.
func (w *statusWriter) persisting(entries []durable.Entry) { w.pending = entries }

// newStatusWriter starts writing run, from memo when this manager wrote it last.
func (s *journalStore) newStatusWriter(run *workflowsv1alpha1.WorkflowRun, memo *runMemo) *statusWriter {
	w := &statusWriter{store: s, run: run, saved: *run.Status.DeepCopy(), sealed: sealedOf(run)}
	if memo != nil {
		w.journal, w.sealed = memo.journal, memo.sealed
	}
	return w
}

// loadJournal returns the run's whole journal, reading its sealed segments unless this
// manager holds them already.
func (w *statusWriter) loadJournal(ctx context.Context) (*durable.Journal, error) {
	if w.journal == nil {
		journal, err := w.store.loadJournal(ctx, w.run)
		if err != nil {
			return nil, err
		}
		w.journal = journal
	}
	return w.journal, nil
}

// write updates the run's status, guarded by its resourceVersion; on success run holds the
// API server's copy, spec included. A write that can never succeed (too large for the API
// server, or over a budget) returns a *durable.Failure and leaves the journal in status as it
// was last written, so that the run can still be failed.
func (w *statusWriter) write(ctx context.Context) error {
	w.run.Status.ObservedGeneration = w.run.Generation
	if w.journal != nil {
		if err := w.seal(ctx); err != nil {
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
	if err := w.store.client.Status().Update(ctx, w.run); err != nil {
		if tooLarge(err) {
			w.revert()
			return &durable.Failure{Reason: durable.ReasonJournalTooLarge, Message: durable.Truncate(fmt.Sprintf(
				"the API server refused the run's status as too large (%v): return smaller step results or a smaller output, or split the work into child workflows", err), 4096)}
		}
		return err
	}
	w.saved = *w.run.Status.DeepCopy()
	if pending := w.pending; len(pending) > 0 && w.persisted != nil {
		w.pending = nil
		w.persisted(ctx, pending)
	}
	return nil
}

// seal moves the final entries the run has persisted in status.journal (all but the last
// keepOpen) into new segments once they reach OpenEntries entries or OpenBytes bytes. Only
// persisted entries are sealed: an entry not yet written may still be lost with the write and
// come out differently when its step runs again, while a segment never changes.
func (w *statusWriter) seal(ctx context.Context) error {
	w.sealed = sealedOf(&workflowsv1alpha1.WorkflowRun{Status: w.saved})
	persisted := w.saved.Journal
	n := 0
	for n < len(persisted)-keepOpen && isFinal(persisted[n]) {
		n++
	}
	bytes := 0
	for i := range n {
		bytes += w.journal.EntryBytes(w.sealed.entries + i)
	}
	if n == 0 || (n < w.store.opts.OpenEntries && bytes < w.store.opts.OpenBytes) {
		return nil
	}
	for start := 0; start < n; {
		end := w.chunkEnd(start, n)
		held, err := runstore.Seal(ctx, w.store.client, w.store.reader, w.run, w.sealed.segments, int64(w.sealed.entries), persisted[start:end])
		if err != nil {
			return err
		}
		first := w.sealed.entries
		w.store.keepSegment(w.run, w.sealed.segments, cachedSegment{first: first, entries: slices.Clone(w.journal.Entries()[first : first+held])})
		for i := range held {
			w.sealed.bytes += int64(w.journal.EntryBytes(first + i))
		}
		w.sealed.segments++
		w.sealed.entries += held
		start += held
	}
	return nil
}

// chunkEnd is where the segment starting at the persisted open part's entry start ends (that
// entry is the journal's entry w.sealed.entries): at most segmentMaxEntries entries and
// segmentMaxBytes bytes, and at least one entry.
func (w *statusWriter) chunkEnd(start, n int) int {
	end, bytes := start, 0
	for end < n && end-start < segmentMaxEntries {
		size := w.journal.EntryBytes(w.sealed.entries + end - start)
		if end > start && bytes+size > segmentMaxBytes {
			break
		}
		bytes += size
		end++
	}
	return end
}

// isFinal reports whether a persisted entry will never change.
func isFinal(e workflowsv1alpha1.JournalEntry) bool {
	return e.State == workflowsv1alpha1.EntryState(durable.StateCompleted) || e.State == workflowsv1alpha1.EntryState(durable.StateFailed)
}

// syncJournal puts the open part of the journal and the journal's summary into status.
func (w *statusWriter) syncJournal() {
	st := &w.run.Status
	st.Journal = toAPIJournal(w.journal.Entries()[w.sealed.entries:])
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
func (w *statusWriter) recorded() int64 {
	n := int64(len(inputOf(w.run)) + w.journal.Bytes() + w.journal.PayloadBytes())
	if w.run.Status.Output != nil {
		n += int64(len(w.run.Status.Output.Raw))
	}
	return n
}

// checkBudgets fails the run when its object would outgrow what the API server accepts, or
// when it would take its namespace over --max-namespace-bytes.
func (w *statusWriter) checkBudgets(ctx context.Context) error {
	input, open, output, other := w.objectBytes()
	if size := input + open + output + other; size > w.store.opts.MaxObjectBytes {
		return &durable.Failure{Reason: durable.ReasonJournalTooLarge, Message: fmt.Sprintf(
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
func (w *statusWriter) objectBytes() (input, open, output, other int) {
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
// journal: after a failed budget or a refused write, the run can only be failed.
func (w *statusWriter) revert() {
	st := &w.run.Status
	st.Journal, st.JournalBytes, st.History = w.saved.Journal, w.saved.JournalBytes, w.saved.History.DeepCopy()
	w.sealed = sealedOf(&workflowsv1alpha1.WorkflowRun{Status: w.saved})
	w.journal = nil
}
