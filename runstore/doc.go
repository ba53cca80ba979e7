// Package runstore keeps a WorkflowRun's journal in the API server, in pieces that each stay
// small however long the run is:
//
//   - status.journal holds the open part: the entries recorded since the last seal, so that a
//     step writes a bounded amount of data at step 20,000 as at step 1;
//   - WorkflowRunSegments hold the sealed parts: final entries, written once, immutable, named
//     from the run and their index (SegmentName) and owned by the run;
//   - WorkflowRunPayloads hold results too large for a journal entry, named from the run, the
//     step and the attempt (PayloadName), split into parts of at most 512 KiB.
//
// Every object a run owns carries the label workflows.centaur.dev/run=<run> and an owner
// reference, so the garbage collector deletes it with the run. Writes are idempotent by name
// and checked by content, so a crash between writing a piece and the status write that counts
// it loses and duplicates nothing.
//
// The WorkflowRun reconciler writes a run through a Writer (Store.NewWriter), the one place
// that writes a run's status: it seals, checks the budgets (the object's size, the
// namespace's) and writes, guarded by the run's resourceVersion. The Store the Writers share
// holds the manager's memory of segments, payloads and the runs it wrote last. The way is
// one-way: reconciler → Writer → Store → API server.
//
// ReadJournal assembles a run's complete journal for readers (the REST API, the web console),
// a page at a time. The package also holds the manager's cache options (LeanRun: the cache
// keeps no inputs, journals or outputs) and a cache bounded in bytes (Cache).
package runstore
