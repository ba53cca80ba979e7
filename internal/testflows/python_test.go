package testflows

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
)

// loadPython loads the Python workflow file text as file in real worker processes (the
// machine's python3, the packages of ../../python), the way the manager loads WORKFLOW_DIRS.
// The workers inherit the test's environment when they start.
func loadPython(t *testing.T, file, text string) durable.Workflow {
	t.Helper()
	pkg, err := filepath.Abs("../../python")
	if err != nil {
		t.Fatal(err)
	}
	pool := pyworker.New(pyworker.Config{PackageDir: pkg, Workers: 2, HandlerDeadline: 10 * time.Second, Logger: testr.New(t)})
	t.Cleanup(pool.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := (&pyworkflow.Loader{Pool: pool}).LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].Err != nil {
		t.Fatalf("%s does not load: %+v", file, loaded)
	}
	return loaded[0].Workflow
}

// TestNoopPyDoesWhatNoopDoes holds the benchmark's comparison of a Python file and a Go
// workflow fair: both record the same steps and answer the same output in as many writes,
// batched or not.
func TestNoopPyDoesWhatNoopDoes(t *testing.T) {
	file := loadPython(t, NoopPyFile, NoopPy)
	if file.Name() != NoopPyName {
		t.Errorf("NoopPy is named %q, want %q", file.Name(), NoopPyName)
	}
	for _, input := range []string{`{"steps": 5}`, `{"steps": 5, "batched": true}`} {
		goNames, goOut, goWrites := execute(t, Noop, input)
		pyNames, pyOut, pyWrites := execute(t, file, input)
		if !slices.Equal(goNames, pyNames) || !sameJSON(goOut, pyOut) || goWrites != pyWrites {
			t.Errorf("input %s: Go recorded %v and answered %s in %d writes; the Python file %v, %s in %d writes",
				input, goNames, goOut, goWrites, pyNames, pyOut, pyWrites)
		}
	}
}

// TestNoopPyRests checks the cold-replay variant of bench-noop-py: after its steps it sleeps
// "rest", then runs one more step "after", and answers as without the rest.
func TestNoopPyRests(t *testing.T) {
	wf := loadPython(t, NoopPyFile, NoopPy)
	input, err := json.Marshal(NoopPyInput{NoopInput: NoopInput{Steps: 3}, RestMillis: 2000})
	if err != nil {
		t.Fatal(err)
	}
	store := &memoryStore{}
	out := runToEnd(t, store, wf, input)
	if out.Kind != engine.Completed || !sameJSON(string(out.Output), `{"steps": 3}`) {
		t.Fatalf("the run ended %v with %s (%+v), want completed with 3 steps", out.Kind, out.Output, out.Failure)
	}
	var names []string
	for _, e := range store.entries {
		names = append(names, e.Name)
	}
	if want := []string{StepName(0), StepName(1), StepName(2), "rest", "after"}; !slices.Equal(names, want) {
		t.Errorf("the journal holds %v, want %v", names, want)
	}
}

// TestLedgerPyWorkflow runs chaos-ledger-py until it completes and checks its ledger as
// TestLedgerWorkflow checks the Go workflow's: one line per execution with its attempt, the
// planned failures retried once, the journal holding the execution id of each step's last line;
// and each line names the manager (this process) and the worker that ran it.
func TestLedgerPyWorkflow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	t.Setenv(LedgerEnv, path)
	wf := loadPython(t, LedgerPyFile, LedgerPy)
	if wf.Name() != LedgerPyName {
		t.Errorf("LedgerPy is named %q, want %q", wf.Name(), LedgerPyName)
	}
	in := LedgerInput{Steps: 5, SleepEvery: 2, SleepMillis: 1000, FailEvery: 3, BackoffMillis: 500, WorkMillis: 1}
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	store := &memoryStore{}
	if out := runToEnd(t, store, wf, input); out.Kind != engine.Completed || !sameJSON(string(out.Output), `{"steps": 5}`) {
		t.Fatalf("the run ended %v with %s (%+v), want completed with 5 steps", out.Kind, out.Output, out.Failure)
	}
	lines, err := ReadLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	attempts := map[string][]int{} // step -> the attempts of its executions, in order
	last := map[string]LedgerLine{}
	for _, l := range lines {
		if l.Run != "ns/r" || l.PID != os.Getpid() || l.Worker == 0 || l.Worker == os.Getpid() || l.OK != (l.Attempt > 1 || !in.Fails(stepIndex(l.Step))) {
			t.Errorf("ledger line %+v: want run ns/r, this process as the manager, a worker of its own, and only attempt 1 of a failing step failed", l)
		}
		attempts[l.Step] = append(attempts[l.Step], l.Attempt)
		last[l.Step] = l
	}
	for i := range in.Steps {
		want := []int{1}
		if in.Fails(i) {
			want = []int{1, 2}
		}
		if got := attempts[StepName(i)]; !slices.Equal(got, want) {
			t.Errorf("step %d ran as attempts %v, want %v", i, got, want)
		}
	}
	journal := engine.NewJournal(store.entries)
	for i := range in.Steps {
		e, ok := journal.Lookup(StepName(i))
		var exec string
		if !ok || json.Unmarshal(e.Result, &exec) != nil || exec != last[StepName(i)].Exec || e.Attempts != last[StepName(i)].Attempt {
			t.Errorf("step %d recorded %s after %d attempts, want the last execution %+v", i, e.Result, e.Attempts, last[StepName(i)])
		}
	}
}

// runToEnd executes wf with input until it no longer suspends, moving the clock to each wake
// time, and returns the last outcome.
func runToEnd(t *testing.T, store *memoryStore, wf durable.Workflow, input []byte) engine.Outcome {
	t.Helper()
	now := time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)
	var out engine.Outcome
	for range 20 {
		out = store.execute(wf, engine.Execution{
			Run:   durable.RunInfo{Namespace: "ns", Name: "r", UID: "uid-" + t.Name(), WorkflowName: wf.Name(), StartedAt: now},
			Input: input,
			Clock: func() time.Time { return now },
		})
		if out.Kind != engine.Suspended {
			return out
		}
		now = out.WakeAt
	}
	return out
}

// stepIndex is the index of step name "s-NNNN".
func stepIndex(name string) int {
	var i int
	_, _ = fmt.Sscanf(name, "s-%d", &i)
	return i
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ra, _ := json.Marshal(x)
	rb, _ := json.Marshal(y)
	return string(ra) == string(rb)
}
