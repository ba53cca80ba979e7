package testflows

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// memoryStore keeps a run's journal in memory, as the run's status would.
type memoryStore struct{ entries []engine.Entry }

func (s *memoryStore) Record(_ context.Context, journal *engine.Journal, _ []engine.Entry) error {
	s.entries = append([]engine.Entry(nil), journal.Entries()...)
	return nil
}

// execute runs wf once against the stored journal and stores the journal with the outcome,
// as the controller does.
func (s *memoryStore) execute(wf durable.Workflow, ex engine.Execution) engine.Outcome {
	ex.Journal, ex.Recorder = engine.NewJournal(s.entries), s
	out := engine.Execute(context.Background(), wf, ex)
	if out.Kind != engine.Aborted {
		_ = s.Record(context.Background(), ex.Journal, out.Unrecorded)
	}
	return out
}

// TestLedgerWorkflow runs chaos-ledger through the engine until it completes and checks the
// ledger: one line per execution, the planned failures retried once, and the journal holding
// the execution id of each step's last line.
func TestLedgerWorkflow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	wf := NewLedgerWorkflow(path)
	in := LedgerInput{Steps: 5, SleepEvery: 2, SleepMillis: 1000, FailEvery: 3, BackoffMillis: 500}
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)
	store := &memoryStore{}
	var out engine.Outcome
	for range 20 {
		out = store.execute(wf, engine.Execution{
			Run:   durable.RunInfo{Namespace: "ns", Name: "r", WorkflowName: LedgerName, StartedAt: now},
			Input: input,
			Clock: func() time.Time { return now },
		})
		if out.Kind != engine.Suspended {
			break
		}
		now = out.WakeAt
	}
	if out.Kind != engine.Completed {
		t.Fatalf("the run ended %v (%+v), want completed", out.Kind, out.Failure)
	}
	lines, err := ReadLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	failures := 0
	for i := range in.Steps {
		if in.Fails(i) {
			failures++
		}
	}
	if want := in.Steps + failures; len(lines) != want {
		t.Fatalf("the ledger has %d lines, want %d (one per step, one more per planned failure)", len(lines), want)
	}
	last := map[string]string{}
	for _, l := range lines {
		last[l.Step] = l.Exec
	}
	journal := engine.NewJournal(store.entries)
	for i := range in.Steps {
		e, ok := journal.Lookup(StepName(i))
		var exec string
		if !ok || json.Unmarshal(e.Result, &exec) != nil || exec != last[StepName(i)] {
			t.Errorf("step %d recorded %s, want the last execution %s", i, e.Result, last[StepName(i)])
		}
	}
}

// TestLedgerConcurrentAppends checks that lines appended from many goroutines come back whole.
func TestLedgerConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := l.Append("ns/r", StepName(g*100+i), 1, true); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	lines, err := ReadLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 400 {
		t.Errorf("read %d lines, want 400", len(lines))
	}
}

// TestNoLedger checks that the ledger workflow fails for good without a ledger path.
func TestNoLedger(t *testing.T) {
	out := engine.Execute(context.Background(), NewLedgerWorkflow(""), engine.Execution{
		Input: json.RawMessage(`{"steps":1}`), Recorder: &memoryStore{},
	})
	if out.Kind != engine.Failed {
		t.Errorf("the run ended %v, want failed", out.Kind)
	}
}

// TestBurnCPU checks that a burn uses the CPU time it is asked for, on the calling thread, and
// does not return before it spent it.
func TestBurnCPU(t *testing.T) {
	// The test's own reads of the thread's CPU time must be of the thread that burns.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const burn = 30 * time.Millisecond
	start, before := time.Now(), threadCPU()
	BurnCPU(burn)
	used, took := threadCPU()-before, time.Since(start)
	if used < burn {
		t.Errorf("the burn used %s of CPU, want at least %s", used, burn)
	}
	// The kernel may account a thread's CPU time a scheduler tick (up to 10 ms) ahead of the
	// wall clock, so only a burn that returned well before its time fails here.
	if took < burn-10*time.Millisecond {
		t.Errorf("the burn returned after %s of wall time, before it could have used %s of CPU", took, burn)
	}
}

// TestWaitFor checks that a step's wait lasts its time, and that a cancelled execution cuts it
// short with an error, so that the step is not recorded as done.
func TestWaitFor(t *testing.T) {
	const wait = 50 * time.Millisecond
	start := time.Now()
	if err := WaitFor(context.Background(), wait); err != nil {
		t.Fatalf("a full wait failed: %v", err)
	}
	if took := time.Since(start); took < wait {
		t.Errorf("the wait returned after %s, before its %s", took, wait)
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitFor(c, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled wait returned %v, want context.Canceled", err)
	}
}
