package runstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Page sizes of ReadJournal.
const (
	// DefaultPageEntries is the page size when ReadOptions.Limit is zero.
	DefaultPageEntries = 500
	// DefaultPageBytes bounds a page's entries (with their results, when loaded) when
	// ReadOptions.MaxBytes is zero: a page ends before the entry that would pass it, so that
	// a reader asking for 500 entries with 4 MiB results each gets a few and a continue token,
	// not 2 GiB in memory.
	DefaultPageBytes = 4 << 20
	// MaxPageEntries is the largest page ReadJournal returns.
	MaxPageEntries = 5000
)

// ErrBadContinue is returned for a continue token ReadJournal did not issue.
var ErrBadContinue = errors.New("the continue token is not one this API issued")

// ReadOptions choose the part of a journal ReadJournal returns.
type ReadOptions struct {
	// Limit is the most entries to return: DefaultPageEntries when zero, at most MaxPageEntries.
	Limit int
	// Continue is the Continue of the previous page; empty starts at the first entry.
	Continue string
	// Results loads the results stored out of line (WorkflowRunPayloads) into the entries'
	// result fields, so that every entry carries its result. Without it such entries carry
	// only their payload reference.
	Results bool
	// MaxBytes bounds the page's entries and the results it loads (DefaultPageBytes when
	// zero); a page holds at least one entry whatever its size.
	MaxBytes int64
}

// JournalPage is part of a run's journal, in the order the run reached its primitives.
type JournalPage struct {
	// Entries are the page's entries.
	Entries []workflowsv1alpha1.JournalEntry
	// First is the position of Entries[0] in the whole journal (0 for the first entry).
	First int64
	// Total counts the entries of the whole journal as the run stood when it was read.
	Total int64
	// Continue reads the next page when passed as ReadOptions.Continue; empty on the last page.
	Continue string
}

// ReadJournal reads a page of run's complete journal: the entries of its sealed
// WorkflowRunSegments in index order, then the open part in run.status.journal, with results
// stored out of line loaded when opts.Results is set. Pass the run as read from the API server
// (not from a manager's cache, which keeps no journal): the page is consistent with it, and a
// continue token stays valid while the run goes on recording, since sealed segments never
// change. A run recorded by a release without segments has its whole journal in status and
// is read the same way. The REST API and the web console read journals with it; kubectl users
// list the segments (see WorkflowRunSegment).
func ReadJournal(ctx context.Context, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, opts ReadOptions) (JournalPage, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = DefaultPageEntries
	}
	limit = min(limit, MaxPageEntries)
	cur, err := parseCursor(opts.Continue)
	if err != nil {
		return JournalPage{}, err
	}
	budget := opts.MaxBytes
	if budget <= 0 {
		budget = DefaultPageBytes
	}
	h := historyOf(run)
	page := JournalPage{First: cur.position, Total: h.SealedEntries + int64(len(run.Status.Journal))}
	var size int64
	for len(page.Entries) < limit && cur.position < page.Total {
		entries, start, err := chunkAt(ctx, reader, run, h, cur)
		if err != nil {
			return JournalPage{}, err
		}
		offset := cur.position - start
		if offset >= int64(len(entries)) {
			cur.segment++ // this segment is done: go on with the next, or the open part
			continue
		}
		want := entries[offset:min(int64(len(entries)), offset+int64(limit-len(page.Entries)))]
		take := withinBudget(want, &size, budget, len(page.Entries) == 0, opts.Results)
		page.Entries = append(page.Entries, take...)
		cur.position += int64(len(take))
		if cur.segment < h.Segments && cur.position == start+int64(len(entries)) {
			cur.segment++
		}
		if len(take) < len(want) {
			break // the next entry would pass the budget
		}
	}
	if cur.position < page.Total {
		page.Continue = cur.String()
	}
	if opts.Results {
		if err := loadResults(ctx, reader, run, page.Entries); err != nil {
			return JournalPage{}, err
		}
	}
	return page, nil
}

// withinBudget returns the longest start of entries whose sizes (results stored out of line
// counted when withResults) keep *size within budget, adding them to *size; the first entry of
// a page is taken whatever its size, so that every page moves on.
func withinBudget(entries []workflowsv1alpha1.JournalEntry, size *int64, budget int64, first, withResults bool) []workflowsv1alpha1.JournalEntry {
	for i := range entries {
		n := entryBytes(&entries[i], withResults)
		if *size+n > budget && !(first && i == 0) {
			return entries[:i]
		}
		*size += n
	}
	return entries
}

// entryBytes is about what an entry weighs in a page: its variable parts and a fixed share.
func entryBytes(e *workflowsv1alpha1.JournalEntry, withResults bool) int64 {
	n := int64(256 + len(e.Name) + len(e.Target) + len(e.Ref) + len(e.Error) + len(e.ErrorType))
	if e.Result != nil {
		n += int64(len(e.Result.Raw))
	}
	if withResults && e.Payload != nil {
		n += e.Payload.Bytes
	}
	return n
}

// chunkAt returns the entries of the sealed segment the cursor is in, or of the open part once
// the cursor is past the sealed segments, with the position of their first entry.
func chunkAt(ctx context.Context, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, h workflowsv1alpha1.JournalHistory, cur cursor) ([]workflowsv1alpha1.JournalEntry, int64, error) {
	if cur.segment >= h.Segments {
		if cur.position < h.SealedEntries {
			return nil, 0, fmt.Errorf("%w: entry %d is in none of the run's %d segments", ErrLost, cur.position, h.Segments)
		}
		return run.Status.Journal, h.SealedEntries, nil
	}
	seg, err := ReadSegment(ctx, reader, run, cur.segment)
	if err != nil {
		return nil, 0, err
	}
	if seg.Spec.FirstEntry > cur.position {
		return nil, 0, fmt.Errorf("%w: segment %d starts at entry %d, after entry %d", ErrLost, cur.segment, seg.Spec.FirstEntry, cur.position)
	}
	return seg.Spec.Entries, seg.Spec.FirstEntry, nil
}

// loadResults puts the results stored out of line into entries.
func loadResults(ctx context.Context, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, entries []workflowsv1alpha1.JournalEntry) error {
	for i := range entries {
		if ref := entries[i].Payload; ref != nil {
			data, err := LoadPayload(ctx, reader, run, *ref)
			if err != nil {
				return fmt.Errorf("read the result of %q: %w", entries[i].Name, err)
			}
			entries[i].Result = &apiextensionsv1.JSON{Raw: data}
		}
	}
	return nil
}

// historyOf is the run's journal summary; a run recorded before segments existed has none.
func historyOf(run *workflowsv1alpha1.WorkflowRun) workflowsv1alpha1.JournalHistory {
	if run.Status.History == nil {
		return workflowsv1alpha1.JournalHistory{}
	}
	return *run.Status.History
}

// cursor is where a page starts: the segment to look in first, and the entry's position.
type cursor struct {
	segment  int32
	position int64
}

// cursorPrefix versions the continue token.
const cursorPrefix = "j1."

// String encodes the cursor as a continue token.
func (c cursor) String() string {
	return fmt.Sprintf("%s%d.%d", cursorPrefix, c.segment, c.position)
}

// parseCursor decodes a continue token; empty is the journal's start.
func parseCursor(token string) (cursor, error) {
	if token == "" {
		return cursor{}, nil
	}
	rest, ok := strings.CutPrefix(token, cursorPrefix)
	seg, pos, ok2 := strings.Cut(rest, ".")
	s, err1 := strconv.ParseInt(seg, 10, 32)
	p, err2 := strconv.ParseInt(pos, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || s < 0 || p < 0 {
		return cursor{}, ErrBadContinue
	}
	return cursor{segment: int32(s), position: p}, nil
}

// RecordsRef reports whether run's journal holds an entry of kind whose ref is ref: the turn or
// child a primitive of the run created. It looks in the open part first, where a recent
// record is, then in the sealed segments from the newest, so that it reads segments only for an
// old record or one that is not there. Pass the run as read from the API server.
func RecordsRef(ctx context.Context, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, kind workflowsv1alpha1.EntryKind, ref string) (bool, error) {
	holds := func(entries []workflowsv1alpha1.JournalEntry) bool {
		for i := range entries {
			if entries[i].Kind == kind && entries[i].Ref == ref {
				return true
			}
		}
		return false
	}
	if holds(run.Status.Journal) {
		return true, nil
	}
	for index := historyOf(run).Segments - 1; index >= 0; index-- {
		seg, err := ReadSegment(ctx, reader, run, index)
		if err != nil {
			return false, err
		}
		if holds(seg.Spec.Entries) {
			return true, nil
		}
	}
	return false, nil
}
