package pyworkflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/hosttest"
	"github.com/centaur-dev/workflow-operator/internal/testpython"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
)

// These tests run Python workflow files in real worker processes (the python3 of the machine,
// the packages of ../python) against the durable engine, with an in-memory journal that plays
// the API server: each execution starts from what was persisted, round-tripped through JSON.

// epoch is when every test run starts.
var epoch = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// newPool starts a pool of real workers for one test.
func newPool(t *testing.T, mutate ...func(*pyworker.Config)) *pyworker.Pool {
	t.Helper()
	dir, err := filepath.Abs("../python")
	if err != nil {
		t.Fatal(err)
	}
	cfg := pyworker.Config{PackageDir: dir, Workers: 2, HandlerDeadline: 5 * time.Second, Logger: testr.New(t)}
	for _, m := range mutate {
		m(&cfg)
	}
	pool := pyworker.New(cfg)
	t.Cleanup(pool.Close)
	return pool
}

// loadFile writes files into a new workflow directory and loads its workflow file entry.
func loadFile(t *testing.T, loader *pyworkflow.Loader, entry string, files map[string]string) (*pyworkflow.Workflow, string) {
	t.Helper()
	dir := t.TempDir()
	testpython.WriteDir(t, dir, files)
	loaded, err := loader.LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range loaded {
		if filepath.Base(f.Path) != entry {
			continue
		}
		if f.Err != nil {
			t.Fatalf("%s does not load: %v", entry, f.Err)
		}
		return f.Workflow, dir
	}
	t.Fatalf("%s is not a workflow file of %s", entry, dir)
	return nil, ""
}

// harness runs one run of a Python workflow the way the manager does.
type harness struct {
	t     *testing.T
	wf    durable.Workflow
	mu    sync.Mutex
	now   time.Time
	run   durable.RunInfo
	input json.RawMessage
	host  engine.Host
	// persisted is the journal as the API server holds it.
	persisted []engine.Entry
	// writes counts successful writes.
	writes int
	// hooks are the engine's hooks, as the manager sets them.
	hooks engine.Hooks
}

func newHarness(t *testing.T, wf durable.Workflow, input string) *harness {
	return &harness{t: t, wf: wf, now: epoch, input: json.RawMessage(input), host: hosttest.Unavailable{},
		run: durable.RunInfo{Namespace: "default", Name: wf.Name() + "-run", UID: "uid-" + t.Name(), WorkflowName: wf.Name(), StartedAt: epoch}}
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

// persist stores the journal as the API server would: JSON, times to the microsecond.
func (h *harness) persist(j *engine.Journal) {
	raw, err := json.Marshal(j.Entries())
	if err != nil {
		h.t.Fatalf("the journal does not encode: %v", err)
	}
	var stored []engine.Entry
	if err := json.Unmarshal(raw, &stored); err != nil {
		h.t.Fatal(err)
	}
	for i := range stored {
		e := &stored[i]
		e.StartedAt, e.FinishedAt, e.WakeAt = e.StartedAt.Truncate(time.Microsecond), e.FinishedAt.Truncate(time.Microsecond), e.WakeAt.Truncate(time.Microsecond)
	}
	h.mu.Lock()
	h.persisted = stored
	h.writes++
	h.mu.Unlock()
}

// execute runs one execution from the persisted journal and persists its outcome's entries.
func (h *harness) execute() engine.Outcome {
	h.t.Helper()
	h.mu.Lock()
	journal := engine.NewJournal(h.persisted)
	h.mu.Unlock()
	out := engine.Execute(context.Background(), h.wf, engine.Execution{
		Run: h.run, Input: h.input, Journal: journal, Clock: h.clock, Host: h.host, Hooks: h.hooks,
		Recorder: engine.RecorderFunc(func(_ context.Context, j *engine.Journal, _ []engine.Entry) error {
			h.persist(j)
			return nil
		}),
	})
	if out.Kind != engine.Aborted && len(out.Unrecorded) > 0 {
		h.persist(journal)
	}
	return out
}

// entry returns the persisted entry named name.
func (h *harness) entry(name string) (engine.Entry, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.persisted {
		if e.Name == name {
			return e, true
		}
	}
	return engine.Entry{}, false
}

func describe(o engine.Outcome) string {
	switch o.Kind {
	case engine.Completed:
		return "Completed with " + string(o.Output)
	case engine.Failed:
		return fmt.Sprintf("Failed: %s: %s", o.Failure.Reason, o.Failure.Message)
	case engine.Suspended:
		return fmt.Sprintf("Suspended at %q until %s (waiting %q)", o.Current, o.WakeAt, o.Waiting)
	}
	return fmt.Sprintf("Aborted: %v", o.Err)
}

func mustComplete(t *testing.T, o engine.Outcome, want string) {
	t.Helper()
	if o.Kind != engine.Completed {
		t.Fatalf("outcome: %s; want Completed with %s", describe(o), want)
	}
	var got, w any
	if err := json.Unmarshal(o.Output, &got); err != nil {
		t.Fatalf("output %s: %v", o.Output, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(w) {
		t.Fatalf("output %s; want %s", o.Output, want)
	}
}

func mustFail(t *testing.T, o engine.Outcome, reason string) *engine.Failure {
	t.Helper()
	if o.Kind != engine.Failed || o.Failure.Reason != reason {
		t.Fatalf("outcome: %s; want Failed with %s", describe(o), reason)
	}
	return o.Failure
}

// agents answers agent turns at once with "reply to <prompt>".
type agents struct {
	hosttest.Unavailable
	mu      sync.Mutex
	prompts map[string]string
}

func (a *agents) StartAgent(_ context.Context, step string, req durable.AgentRequest) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.prompts == nil {
		a.prompts = map[string]string{}
	}
	a.prompts[step] = req.Prompt
	return "turn-" + step, nil
}

func (a *agents) AgentResult(_ context.Context, id string) (engine.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	prompt := a.prompts[id[len("turn-"):]]
	out, _ := json.Marshal(durable.AgentResult{Text: "reply to " + prompt})
	return engine.Result{Done: true, Output: out}, nil
}
