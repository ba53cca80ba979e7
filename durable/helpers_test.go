package durable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// epoch is when every test run starts: a whole second, so expected times read plainly.
var epoch = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a wall clock that only moves when a test advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(start time.Time) *fakeClock { return &fakeClock{now: start} }

// Now is the clock's current time; pass it as Execution.Clock.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// memRecorder is an in-memory Recorder that plays the API server: every successful write
// stores a copy of the journal, round-tripped through JSON and truncated to microseconds as
// status.journal is, and nothing else survives an execution. The harness writes through it
// with each outcome too, as the controller does.
type memRecorder struct {
	t  testing.TB
	mu sync.Mutex
	// fail, when set, is asked before each write (n counts calls from 1) and may refuse it.
	fail func(n int, changed []engine.Entry) error

	calls     int
	changed   []engine.Entry   // the last changed entry of each successful write
	snapshots [][]engine.Entry // the persisted journal after each successful write
	maxBytes  int              // the largest journal (as JSON) the recorder was ever handed
}

// Record implements engine.Recorder.
func (r *memRecorder) Record(_ context.Context, journal *engine.Journal, changed []engine.Entry) error {
	if len(changed) == 0 {
		r.t.Errorf("the engine asked to record no change")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	encoded, err := json.Marshal(journal.Entries())
	if err != nil {
		r.t.Errorf("the engine asked to record a journal that does not encode: %v", err)
		return err
	}
	if journal.Bytes() != len(encoded) {
		r.t.Errorf("journal.Bytes() = %d, but the journal encodes to %d bytes", journal.Bytes(), len(encoded))
	}
	r.maxBytes = max(r.maxBytes, len(encoded), journal.Bytes())
	if r.fail != nil {
		if err := r.fail(r.calls, changed); err != nil {
			return err
		}
	}
	var stored []engine.Entry
	if err := json.Unmarshal(encoded, &stored); err != nil {
		r.t.Errorf("decode the persisted journal: %v", err)
		return err
	}
	for i := range stored {
		e := &stored[i]
		e.StartedAt = e.StartedAt.Truncate(time.Microsecond)
		e.FinishedAt = e.FinishedAt.Truncate(time.Microsecond)
		e.WakeAt = e.WakeAt.Truncate(time.Microsecond)
	}
	r.changed = append(r.changed, changed[len(changed)-1])
	r.snapshots = append(r.snapshots, stored)
	return nil
}

// Writes is the number of successful writes.
func (r *memRecorder) Writes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.snapshots)
}

// Calls is the number of times the engine asked to write, failed writes included.
func (r *memRecorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Changed is the last changed entry of each successful write, in order.
func (r *memRecorder) Changed() []engine.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]engine.Entry(nil), r.changed...)
}

// Snapshot is the journal persisted by the n-th successful write (from 1).
func (r *memRecorder) Snapshot(n int) []engine.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return clone(r.snapshots[n-1])
}

// Persisted is the journal as last persisted: all a restarted manager knows about the run.
func (r *memRecorder) Persisted() []engine.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.snapshots) == 0 {
		return nil
	}
	return clone(r.snapshots[len(r.snapshots)-1])
}

// MaxBytes is the size of the largest journal the engine ever asked to record.
func (r *memRecorder) MaxBytes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxBytes
}

func clone(entries []engine.Entry) []engine.Entry {
	out := make([]engine.Entry, len(entries))
	for i, e := range entries {
		e.Result = append(json.RawMessage(nil), e.Result...)
		if len(e.Result) == 0 {
			e.Result = nil
		}
		out[i] = e
	}
	return out
}

// harness runs one workflow run the way the manager does: every execute starts from a fresh
// journal built only from what the recorder persisted, as after a manager restart, so a test
// that passes proves that nothing but persisted state carries a run from one execution to the
// next.
type harness struct {
	t      *testing.T
	wf     durable.Workflow
	clock  *fakeClock
	rec    *memRecorder
	run    durable.RunInfo
	input  json.RawMessage
	limits engine.Limits
	hooks  engine.Hooks
	logger *slog.Logger
	// payloads, when set, stores large results out of line.
	payloads engine.PayloadStore
	// host, when set, answers events, child runs and agent turns.
	host engine.Host

	// journal is the journal the latest execution left behind (what the host would store
	// with the outcome).
	journal *engine.Journal
}

func newHarness(t *testing.T, wf durable.Workflow) *harness {
	clock := newFakeClock(epoch)
	return &harness{
		t:     t,
		wf:    wf,
		clock: clock,
		rec:   &memRecorder{t: t},
		run: durable.RunInfo{Namespace: "default", Name: wf.Name() + "-run", UID: "uid-1",
			WorkflowName: wf.Name(), StartedAt: clock.Now()},
	}
}

// execute runs the handler from the top against the persisted journal and returns the outcome,
// after persisting the entries the outcome carries as the host does (a failed write turns the
// outcome into Aborted, as in the controller).
func (h *harness) execute() engine.Outcome {
	h.t.Helper()
	journal := engine.NewJournal(h.rec.Persisted())
	out := engine.Execute(context.Background(), h.wf, engine.Execution{
		Run:      h.run,
		Input:    h.input,
		Journal:  journal,
		Clock:    h.clock.Now,
		Recorder: h.rec,
		Payloads: h.payloads,
		Logger:   h.logger,
		Limits:   h.limits,
		Hooks:    h.hooks,
		Host:     h.host,
	})
	h.journal = journal
	if out.Kind != engine.Aborted && len(out.Unrecorded) > 0 {
		if err := h.rec.Record(context.Background(), journal, out.Unrecorded); err != nil {
			return engine.Outcome{Kind: engine.Aborted, Err: err, Current: out.Unrecorded[len(out.Unrecorded)-1].Name}
		}
	}
	return out
}

// seed persists entries as if an earlier execution (or release) had recorded them.
func (h *harness) seed(entries []engine.Entry) {
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	h.rec.snapshots = append(h.rec.snapshots, clone(entries))
}

// entry returns the persisted entry called name.
func (h *harness) entry(name string) engine.Entry {
	h.t.Helper()
	for _, e := range h.rec.Persisted() {
		if e.Name == name {
			return e
		}
	}
	h.t.Fatalf("no persisted journal entry %q; journal: %+v", name, h.rec.Persisted())
	return engine.Entry{}
}

// describe prints an outcome for failure messages.
func describe(o engine.Outcome) string {
	switch o.Kind {
	case engine.Completed:
		return fmt.Sprintf("Completed with output %s", o.Output)
	case engine.Failed:
		if o.Failure == nil {
			return "Failed without a Failure"
		}
		return fmt.Sprintf("Failed: %s: %s", o.Failure.Reason, o.Failure.Message)
	case engine.Suspended:
		return fmt.Sprintf("Suspended at %q until %s (waiting %q)", o.Current, o.WakeAt, o.Waiting)
	case engine.Aborted:
		return fmt.Sprintf("Aborted at %q: %v", o.Current, o.Err)
	}
	return fmt.Sprintf("unknown outcome %+v", o)
}

// mustComplete fails the test unless the run completed with output JSON-equal to want.
func mustComplete(t *testing.T, o engine.Outcome, want string) {
	t.Helper()
	if o.Kind != engine.Completed {
		t.Fatalf("outcome: %s; want Completed with %s", describe(o), want)
	}
	assertJSONEqual(t, o.Output, want)
}

// mustSuspend fails the test unless the run suspended at current until wakeAt.
func mustSuspend(t *testing.T, o engine.Outcome, current string, wakeAt time.Time) {
	t.Helper()
	if o.Kind != engine.Suspended {
		t.Fatalf("outcome: %s; want Suspended at %q until %s", describe(o), current, wakeAt)
	}
	if o.Current != current || !o.WakeAt.Equal(wakeAt) {
		t.Fatalf("outcome: %s; want Suspended at %q until %s", describe(o), current, wakeAt)
	}
}

// mustFail fails the test unless the run failed with reason, and returns the failure.
func mustFail(t *testing.T, o engine.Outcome, reason string) *engine.Failure {
	t.Helper()
	if o.Kind != engine.Failed || o.Failure == nil {
		t.Fatalf("outcome: %s; want Failed with reason %s", describe(o), reason)
	}
	if o.Failure.Reason != reason {
		t.Fatalf("outcome: %s; want reason %s", describe(o), reason)
	}
	return o.Failure
}

func assertJSONEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("output = %s; want %s", got, want)
	}
}

// assertUniqueNames fails the test when a name appears twice in the journal.
func assertUniqueNames(t *testing.T, entries []engine.Entry) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.Name] {
			t.Errorf("entry %q is recorded twice in %+v", e.Name, entries)
		}
		seen[e.Name] = true
	}
}

// names lists the entries' names in journal order.
func names(entries []engine.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Name
	}
	return out
}
