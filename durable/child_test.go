package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/hosttest"
)

type childInput struct {
	Name string `json:"name"`
}

type childOutput struct {
	Greeting string `json:"greeting"`
}

// greet is the child the parents below start.
var greet = durable.Define("greet", func(ctx *durable.Context, in childInput) (childOutput, error) {
	return childOutput{Greeting: "Hello, " + in.Name + "!"}, nil
})

// childHost is a Host whose child runs finish at once: it runs greet's logic on the input it
// is handed. It remembers what it was asked; with refuse set, any call fails the test.
type childHost struct {
	hosttest.Unavailable
	t       *testing.T
	mu      sync.Mutex
	started []string // "step workflow input"
	refuse  bool
}

func (h *childHost) StartChild(_ context.Context, step, workflowName string, input json.RawMessage) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse {
		h.t.Errorf("the replay started child %q", step)
	}
	h.started = append(h.started, fmt.Sprintf("%s %s %s", step, workflowName, input))
	return "parent-" + step + "|" + string(input), nil
}

func (h *childHost) ChildResult(_ context.Context, id string) (engine.Result, error) {
	if h.refuse {
		h.t.Errorf("the replay asked for child %q", id)
	}
	_, input, _ := strings.Cut(id, "|")
	var in childInput
	if err := json.Unmarshal([]byte(input), &in); err != nil {
		return engine.Result{Done: true, Failure: &engine.Failure{Reason: "InvalidInput", Message: err.Error()}}, nil
	}
	out, err := json.Marshal(childOutput{Greeting: "Hello, " + in.Name + "!"})
	return engine.Result{Done: true, Output: out}, err
}

func TestRunWorkflowTakesATypedHandleAndReturnsTheChildsOutput(t *testing.T) {
	wf := durable.Define("parent", func(ctx *durable.Context, _ struct{}) (string, error) {
		out, err := durable.RunWorkflow(ctx, "greet-ada", greet, childInput{Name: "Ada"})
		return out.Greeting, err // out is a childOutput: no type restated, no "/result" name
	})
	host := &childHost{t: t}
	h := newHarness(t, wf)
	h.host = host
	mustComplete(t, h.execute(), `"Hello, Ada!"`)
	if want := []string{`greet-ada greet {"name":"Ada"}`}; !slices.Equal(host.started, want) {
		t.Errorf("children started: %q; want %q", host.started, want)
	}
	if got, want := names(h.rec.Persisted()), []string{"greet-ada", "greet-ada/result"}; !slices.Equal(got, want) {
		t.Errorf("journal names = %q; want %q", got, want)
	}
}

// fanOut starts a greet child per name, then waits for each, as workflows.FanOut does.
var fanOut = durable.Define("fan_out", func(ctx *durable.Context, names []string) ([]string, error) {
	children := make([]durable.ChildRun[childOutput], len(names))
	for i, name := range names {
		child, err := durable.StartWorkflow(ctx, fmt.Sprintf("hello-%d", i), greet, childInput{Name: name})
		if err != nil {
			return nil, err
		}
		children[i] = child
	}
	var greetings []string
	for _, child := range children {
		out, err := durable.WaitForWorkflow(ctx, child)
		if err != nil {
			return nil, err
		}
		greetings = append(greetings, out.Greeting)
	}
	return greetings, nil
})

// previousReleaseFanOut is the journal the previous release recorded for fan_out with two
// names, whose handler named the waits "hello-N/result" by hand.
const previousReleaseFanOut = `[
 {"name":"hello-0","kind":"Child","state":"Completed","startedAt":"2030-01-02T03:04:05Z","finishedAt":"2030-01-02T03:04:05Z","target":"start greet","ref":"fan-out-run-hello-0"},
 {"name":"hello-1","kind":"Child","state":"Completed","startedAt":"2030-01-02T03:04:05Z","finishedAt":"2030-01-02T03:04:05Z","target":"start greet","ref":"fan-out-run-hello-1"},
 {"name":"hello-0/result","kind":"Child","state":"Completed","startedAt":"2030-01-02T03:04:05Z","finishedAt":"2030-01-02T03:04:06Z","target":"workflow fan-out-run-hello-0","ref":"fan-out-run-hello-0","result":{"greeting":"recorded Ada"}},
 {"name":"hello-1/result","kind":"Child","state":"Completed","startedAt":"2030-01-02T03:04:06Z","finishedAt":"2030-01-02T03:04:06Z","target":"workflow fan-out-run-hello-1","ref":"fan-out-run-hello-1","result":{"greeting":"recorded Grace"}}
]`

func TestChildrenRecordedByThePreviousReleaseReplay(t *testing.T) {
	var recorded []engine.Entry
	if err := json.Unmarshal([]byte(previousReleaseFanOut), &recorded); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, fanOut)
	h.input = json.RawMessage(`["Ada", "Grace"]`)
	h.host = &childHost{t: t, refuse: true}
	h.seed(recorded)
	mustComplete(t, h.execute(), `["recorded Ada", "recorded Grace"]`)
}

func TestWorkflowByNameStartsAWorkflowDefinedElsewhere(t *testing.T) {
	file := durable.WorkflowByName[childInput, json.RawMessage]("greet_file")
	wf := durable.Define("parent", func(ctx *durable.Context, _ struct{}) (json.RawMessage, error) {
		return durable.RunWorkflow(ctx, "greet", file, childInput{Name: "Bob"})
	})
	host := &childHost{t: t}
	h := newHarness(t, wf)
	h.host = host
	mustComplete(t, h.execute(), `{"greeting": "Hello, Bob!"}`)
	if want := []string{`greet greet_file {"name":"Bob"}`}; !slices.Equal(host.started, want) {
		t.Errorf("children started: %q; want %q", host.started, want)
	}

	err := engine.NewRegistry().Register(file)
	if err == nil || !strings.Contains(err.Error(), "durable.WorkflowByName") {
		t.Errorf("Register(a WorkflowByName handle) = %v; want an error saying it has no handler", err)
	}
}

func TestWaitForWorkflowWithoutAStartedChildFailsTheRun(t *testing.T) {
	wf := durable.Define("parent", func(ctx *durable.Context, _ struct{}) (childOutput, error) {
		return durable.WaitForWorkflow(ctx, durable.ChildRun[childOutput]{})
	})
	h := newHarness(t, wf)
	h.host = &childHost{t: t}
	f := mustFail(t, h.execute(), engine.ReasonHandlerError)
	if !strings.Contains(f.Message, "ChildRunByID") {
		t.Errorf("failure message %q does not say how to make a ChildRun", f.Message)
	}
}

func TestARunStartsAtMostMaxChildrenChildren(t *testing.T) {
	host := &childHost{t: t}
	h := newHarness(t, fanOut)
	h.host = host
	h.limits.MaxChildren = 3
	h.input = json.RawMessage(`["a", "b", "c"]`)
	mustComplete(t, h.execute(), `["Hello, a!", "Hello, b!", "Hello, c!"]`)

	host = &childHost{t: t}
	h = newHarness(t, fanOut)
	h.host = host
	h.limits.MaxChildren = 3
	h.input = json.RawMessage(`["a", "b", "c", "d", "e"]`)
	f := mustFail(t, h.execute(), engine.ReasonTooManyChildren)
	if !strings.Contains(f.Message, `child "hello-3" would be this run's child number 4, over the limit of 3`) {
		t.Errorf("message %q; want it to name the child and the limit", f.Message)
	}
	if len(host.started) != 3 {
		t.Errorf("children created: %q; want the first 3 only", host.started)
	}
}

func TestChildStartsInALoopAreWrittenTogether(t *testing.T) {
	host := &childHost{t: t}
	h := newHarness(t, fanOut)
	h.host = host
	const n = 100
	input := make([]string, n)
	for i := range input {
		input[i] = fmt.Sprint("n", i)
	}
	h.input, _ = json.Marshal(input)
	out := h.execute()
	if out.Kind != engine.Completed {
		t.Fatalf("outcome %s; want completed", describe(out))
	}
	// The fake clock never reaches the batch delay, so every start waits for the first wait's
	// write: one write for a hundred starts, where each start used to cost its own.
	first := h.rec.Snapshot(1)
	if len(first) < n {
		t.Fatalf("the first write holds %d entries (%q); want the %d starts together", len(first), names(first), n)
	}
	for i, e := range first[:n] {
		if want := fmt.Sprintf("hello-%d", i); e.Name != want || e.Kind != engine.KindChild || e.State != engine.StateCompleted {
			t.Fatalf("entry %d of the first write is %s %q (%s); want the completed start %q", i, e.Kind, e.Name, e.State, want)
		}
	}
	if got, limit := h.rec.Writes(), n+1; got > limit {
		t.Errorf("%d writes for %d starts and waits; want at most %d (one per wait, one for the starts)", got, n, limit)
	}
}

func TestAChildStartLostInACrashIsAnsweredAgainNotRepeated(t *testing.T) {
	host := &childHost{t: t}
	h := newHarness(t, fanOut)
	h.host = host
	h.input = json.RawMessage(`["Ada", "Grace"]`)
	h.rec.fail = func(n int, _ []engine.Entry) error {
		if n == 1 {
			return errors.New("the API server went away")
		}
		return nil
	}
	if out := h.execute(); out.Kind != engine.Aborted {
		t.Fatalf("outcome %s; want aborted by the failed write", describe(out))
	}
	if h.rec.Writes() != 0 {
		t.Fatalf("%d writes succeeded; want none", h.rec.Writes())
	}
	mustComplete(t, h.execute(), `["Hello, Ada!", "Hello, Grace!"]`)
	// The host's create is idempotent by name: the second execution asks again and gets the
	// same child back, and the journal holds each start once.
	want := []string{`hello-0 greet {"name":"Ada"}`, `hello-1 greet {"name":"Grace"}`, `hello-0 greet {"name":"Ada"}`, `hello-1 greet {"name":"Grace"}`}
	if !slices.Equal(host.started, want) {
		t.Errorf("children asked for: %q; want each asked again after the lost write", host.started)
	}
	assertUniqueNames(t, h.rec.Persisted())
	if got, want := names(h.rec.Persisted()), []string{"hello-0", "hello-1", "hello-0/result", "hello-1/result"}; !slices.Equal(got, want) {
		t.Errorf("journal names = %q; want %q", got, want)
	}
}
