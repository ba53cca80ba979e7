package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflowfile/sandbox"
)

// definition is a WorkflowDefinition's bundle of one file.
func definition(src string) workflowfile.Bundle {
	return workflowfile.Bundle{Origin: workflowfile.OriginDefinition, Entry: "wf.star", Files: map[string]string{"wf.star": src}}
}

// compiled compiles src as the manager does, for its revision.
func compiled(t *testing.T, src string) (workflowfile.Bundle, *workflowfile.Workflow) {
	t.Helper()
	b := definition(src)
	w, err := workflowfile.CompileBundle(b, nil)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return b, w
}

// newPool is a pool whose workers may each use memory bytes.
func newPool(t *testing.T, memory uint64) *sandbox.Pool {
	t.Helper()
	p, err := sandbox.New(sandbox.Config{Memory: memory})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// host is the manager's side of an execution: it records what the engine records, in order,
// and answers events from a map.
type host struct {
	mu       sync.Mutex
	recorded []string
	events   map[string]json.RawMessage
	failWith error
	logged   []string
}

func (h *host) execution(input string) engine.Execution {
	return engine.Execution{
		Run:     durable.RunInfo{Namespace: "team-a", Name: "run-1", UID: "uid-1", WorkflowName: "wf", StartedAt: time.Now()},
		Input:   json.RawMessage(input),
		Journal: engine.NewJournal(nil),
		Recorder: engine.RecorderFunc(func(_ context.Context, _ *engine.Journal, changed []engine.Entry) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			for _, e := range changed {
				h.recorded = append(h.recorded, e.Name+":"+string(e.State))
			}
			return h.failWith
		}),
		Host: h,
	}
}

func (h *host) FindEvent(_ context.Context, q engine.EventQuery) (engine.EventRecord, bool, error) {
	p, ok := h.events[q.Type+"/"+q.CorrelationID]
	return engine.EventRecord{Ref: "ev-1", Payload: p}, ok, nil
}
func (h *host) StartChild(context.Context, string, string, json.RawMessage) (string, error) {
	return "", &engine.Failure{Reason: "NoChildren", Message: "this host starts no children"}
}
func (h *host) ChildResult(context.Context, string) (engine.Result, error) {
	return engine.Result{}, nil
}
func (h *host) StartAgent(context.Context, string, durable.AgentRequest) (string, error) {
	return "", errors.New("no agents")
}
func (h *host) AgentResult(context.Context, string) (engine.Result, error) {
	return engine.Result{}, nil
}
func (h *host) SendEvent(context.Context, string, engine.OutgoingEvent) (string, error) {
	return "sent-1", nil
}

const steps = `
WORKFLOW_NAME = "wf"

def handler(inp, ctx):
    a = ctx.step("double", lambda: inp["n"] * 2)
    ev = ctx.wait_for_event("approval", event_type = "approved", correlation_id = inp["id"], timeout = "1h")
    ctx.send_event("tell", event_type = "done", correlation_id = inp["id"], payload = {"a": a})
    return {"a": a, "approved_by": ev["by"]}
`

func TestAnExecutionInAWorkerIsTheEnginesAndTheManagerKeepsItsJournal(t *testing.T) {
	p := newPool(t, 64<<20)
	b, w := compiled(t, steps)
	h := &host{events: map[string]json.RawMessage{"approved/req-7": json.RawMessage(`{"by": "ana"}`)}}
	ex := h.execution(`{"n": 21, "id": "req-7"}`)
	out, death := p.Execute(context.Background(), b, w.Revision(), ex, false)
	if death != nil {
		t.Fatalf("the worker died: %v", death)
	}
	if out.Kind != engine.Completed || string(out.Output) != `{"a":42,"approved_by":"ana"}` {
		t.Fatalf("outcome = %v %s %v %v", out.Kind, out.Output, out.Failure, out.Err)
	}
	var names []string
	for _, e := range ex.Journal.Entries() {
		names = append(names, e.Name+":"+string(e.State))
	}
	if got := strings.Join(names, " "); got != "double:Completed approval:Completed tell:Completed" {
		t.Errorf("the manager's journal = %s", got)
	}
	if len(h.recorded) == 0 || !strings.HasPrefix(h.recorded[0], "double:") {
		t.Errorf("the manager's recorder saw %v", h.recorded)
	}

	By := "executing again replays the journal: no step runs twice"
	h.recorded = nil
	out, death = p.Execute(context.Background(), b, w.Revision(), ex, false)
	if death != nil || out.Kind != engine.Completed || len(h.recorded) != 0 {
		t.Fatalf("%s: outcome %v, death %v, recorded %v", By, out.Kind, death, h.recorded)
	}
}

func TestTheManagersErrorsComeBackAsThemselves(t *testing.T) {
	p := newPool(t, 64<<20)
	b, w := compiled(t, steps)
	conflict := errors.New("the object has been modified; please apply your changes to the latest version")
	h := &host{failWith: conflict}
	out, death := p.Execute(context.Background(), b, w.Revision(), h.execution(`{"n": 1, "id": "x"}`), false)
	if death != nil || out.Kind != engine.Aborted || !errors.Is(out.Err, conflict) {
		t.Fatalf("outcome %v err %v death %v; want Aborted with the recorder's own error", out.Kind, out.Err, death)
	}

	By := "a Failure of the host fails the run in the worker's engine"
	child := `
WORKFLOW_NAME = "wf"

def handler(inp, ctx):
    return ctx.run_workflow("child", "other", {})
`
	b, w = compiled(t, child)
	out, death = p.Execute(context.Background(), b, w.Revision(), (&host{}).execution(`{}`), false)
	if death != nil || out.Kind != engine.Failed || out.Failure == nil || out.Failure.Reason != "NoChildren" {
		t.Fatalf("%s: outcome %v failure %+v death %v", By, out.Kind, out.Failure, death)
	}
}

// hog builds a gigabyte in a step.
const hog = `
WORKFLOW_NAME = "wf"

def handler(inp, ctx):
    return ctx.step("hog", lambda: len("a" * ((1 << 30) - 1)))
`

func TestAStepThatBuildsAGigabyteKillsItsWorkerNotTheManager(t *testing.T) {
	p := newPool(t, 64<<20)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// A bystander waits in a step on a server that answers only once the hog is done.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = w.Write([]byte(`"late"`))
	}))
	defer srv.Close()
	defer close(release)
	bb, bw := compiled(t, fmt.Sprintf(`
WORKFLOW_NAME = "wf"

def handler(inp, ctx):
    return ctx.step("wait", lambda: http.get(%q).json())
`, srv.URL))
	bystander := make(chan *sandbox.Death, 1)
	go func() {
		_, death := p.Execute(context.Background(), bb, bw.Revision(), (&host{}).execution(`{}`), false)
		bystander <- death
	}()
	time.Sleep(500 * time.Millisecond) // the bystander is in its step

	hb, hw := compiled(t, hog)
	out, death := p.Execute(context.Background(), hb, hw.Revision(), (&host{}).execution(`{}`), false)
	if death == nil {
		t.Fatalf("outcome %v %+v %v; want the worker's death", out.Kind, out.Failure, out.Err)
	}
	// The first line of the worker's standard error says how the allocation failed: the Go
	// runtime's "out of memory", or under -race the race detector's own words.
	if death.Alone || !strings.Contains(death.Error(), "memory budget 64 MiB) died: ") {
		t.Errorf("death = %v (alone %v); want a death among others, with the worker's last words", death, death.Alone)
	}
	if d := <-bystander; d == nil || d.Alone {
		t.Errorf("the bystander's execution ended with %v; want a death among others", d)
	}
	out, death = p.Execute(context.Background(), hb, hw.Revision(), (&host{}).execution(`{}`), true)
	if death == nil || !death.Alone {
		t.Fatalf("executed alone: outcome %v, death %v; want its own death", out.Kind, death)
	}

	By := "the next execution gets a new worker"
	b, w := compiled(t, steps)
	h := &host{events: map[string]json.RawMessage{"approved/r": json.RawMessage(`{"by": "bo"}`)}}
	if out, death := p.Execute(context.Background(), b, w.Revision(), h.execution(`{"n": 1, "id": "r"}`), false); death != nil || out.Kind != engine.Completed {
		t.Fatalf("%s: outcome %v death %v", By, out.Kind, death)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("the manager's side allocated %d MiB; the gigabyte belongs to the worker", grew>>20)
	}
}

// hundredSteps runs 100 steps, each recorded.
const hundredSteps = `
WORKFLOW_NAME = "wf"

def handler(inp, ctx):
    total = 0
    for i in range(100):
        total += ctx.step("add-%d" % i, lambda: i)
    return total
`

// BenchmarkHundredSteps compares an execution of 100 recorded steps in a worker with one in
// the calling process: the cost of the sandbox is a round trip over the pipes per record.
func BenchmarkHundredSteps(b *testing.B) {
	bundle := definition(hundredSteps)
	w, err := workflowfile.CompileBundle(bundle, nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := sandbox.New(sandbox.Config{Memory: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.Run("in-process", func(b *testing.B) {
		for b.Loop() {
			if out := engine.Execute(context.Background(), w, (&host{}).execution(`{}`)); out.Kind != engine.Completed {
				b.Fatal(out.Kind)
			}
		}
	})
	b.Run("sandbox", func(b *testing.B) {
		for b.Loop() {
			if out, death := p.Execute(context.Background(), bundle, w.Revision(), (&host{}).execution(`{}`), false); death != nil || out.Kind != engine.Completed {
				b.Fatal(out.Kind, death)
			}
		}
	})
}

// TestAStepsHTTPCallCarriesTheTraceContextTheManagersHookGivesItsAttempt runs a definition
// whose step calls a server, with a StepStarting hook as the manager's tracing has one: the
// request the worker sends carries the attempt's traceparent, which only the manager knows.
func TestAStepsHTTPCallCarriesTheTraceContextTheManagersHookGivesItsAttempt(t *testing.T) {
	p := newPool(t, 64<<20)
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
		_, _ = w.Write([]byte(`"ok"`))
	}))
	defer srv.Close()
	b, w := compiled(t, fmt.Sprintf(`
WORKFLOW_NAME = "wf"

def handler(inp, ctx):
    return ctx.step("call", lambda: http.get(%q).json())
`, srv.URL))
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	var asked []string
	ex := (&host{}).execution(`{}`)
	ex.Hooks.StepStarting = func(ctx context.Context, step string, attempt int) context.Context {
		asked = append(asked, fmt.Sprintf("%s#%d", step, attempt))
		return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	}
	out, death := p.Execute(context.Background(), b, w.Revision(), ex, false)
	if death != nil || out.Kind != engine.Completed {
		t.Fatalf("outcome %v %+v %v, death %v", out.Kind, out.Failure, out.Err, death)
	}
	if h := <-got; h != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Errorf("the step's request carried traceparent %q, want the hook's span", h)
	}
	if strings.Join(asked, " ") != "call#1" {
		t.Errorf("the manager's hook was asked for %v, want call#1", asked)
	}
}
