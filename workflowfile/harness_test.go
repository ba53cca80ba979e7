package workflowfile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// epoch is when every test run starts.
var epoch = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// harness executes one run of a workflow on the real durable engine, with an in-memory
// journal (round-tripped through JSON like status.journal), a clock the test moves, and an
// in-memory host for events, children and agent turns.
type harness struct {
	t       *testing.T
	wf      durable.Workflow
	input   string
	journal []engine.Entry
	now     time.Time
	host    *memHost
	writes  int
	// logger, when set, receives the handler's log lines.
	logger *slog.Logger
	// hooks are the engine's hooks, as a host sets them.
	hooks engine.Hooks
}

func newHarness(t *testing.T, wf durable.Workflow, input string) *harness {
	t.Helper()
	return newHarnessT(t, wf, input)
}

// newHarnessT is newHarness for any test, fuzz targets included.
func newHarnessT(t *testing.T, wf durable.Workflow, input string) *harness {
	return &harness{t: t, wf: wf, input: input, now: epoch, host: newMemHost()}
}

// execute runs the handler once from the top against the journal so far.
func (h *harness) execute() engine.Outcome {
	h.t.Helper()
	journal := engine.NewJournal(slices.Clone(h.journal))
	out := engine.Execute(context.Background(), h.wf, engine.Execution{
		Run:     durable.RunInfo{Namespace: "team-a", Name: "run-1", UID: "uid-1", WorkflowName: h.wf.Name(), StartedAt: epoch},
		Input:   json.RawMessage(h.input),
		Journal: journal,
		Clock:   func() time.Time { return h.now },
		Recorder: engine.RecorderFunc(func(_ context.Context, j *engine.Journal, _ []engine.Entry) error {
			h.writes++
			raw, err := json.Marshal(j.Entries())
			if err != nil {
				return err
			}
			var entries []engine.Entry
			if err := json.Unmarshal(raw, &entries); err != nil {
				return err
			}
			h.journal = entries
			return nil
		}),
		Host:   h.host,
		Logger: h.logger,
		Hooks:  h.hooks,
	})
	if out.Kind == engine.Completed || out.Kind == engine.Failed || out.Kind == engine.Suspended {
		h.journal = slices.Clone(journal.Entries())
	}
	return out
}

// entry returns the journal entry named name.
func (h *harness) entry(name string) (engine.Entry, bool) {
	for _, e := range h.journal {
		if e.Name == name {
			return e, true
		}
	}
	return engine.Entry{}, false
}

// memHost answers events, children and agent turns from maps the test fills.
type memHost struct {
	mu       sync.Mutex
	events   map[string]json.RawMessage // "type/correlation" -> payload
	children map[string]engine.Result   // child id -> result
	started  map[string]string          // child id -> workflow name
	agents   map[string]engine.Result   // turn id -> result
	requests map[string]durable.AgentRequest
	sends    int // SendEvent calls
}

func newMemHost() *memHost {
	return &memHost{events: map[string]json.RawMessage{}, children: map[string]engine.Result{}, started: map[string]string{},
		agents: map[string]engine.Result{}, requests: map[string]durable.AgentRequest{}}
}

func (m *memHost) FindEvent(_ context.Context, q engine.EventQuery) (engine.EventRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := q.Type + "/" + q.CorrelationID
	p, ok := m.events[key]
	if !ok || slices.Contains(q.Exclude, key) {
		return engine.EventRecord{}, false, nil
	}
	return engine.EventRecord{Ref: key, Payload: p}, true, nil
}

func (m *memHost) SendEvent(_ context.Context, step string, ev engine.OutgoingEvent) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events[ev.Type+"/"+ev.CorrelationID] = ev.Payload
	m.sends++
	return "sent-" + step, nil
}

func (m *memHost) StartChild(_ context.Context, step, workflow string, _ json.RawMessage) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := "child-" + step
	m.started[id] = workflow
	return id, nil
}

func (m *memHost) ChildResult(_ context.Context, id string) (engine.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.children[id]; ok {
		return r, nil
	}
	return engine.Result{Pending: "child " + id}, nil
}

func (m *memHost) StartAgent(_ context.Context, step string, req durable.AgentRequest) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := "turn-" + strings.ReplaceAll(step, "/", "-")
	m.requests[id] = req
	return id, nil
}

func (m *memHost) AgentResult(_ context.Context, id string) (engine.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.agents[id]; ok {
		return r, nil
	}
	return engine.Result{Pending: "agent " + id}, nil
}

// answer finishes every agent turn started so far with text.
func (m *memHost) answer(text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.requests {
		raw, _ := json.Marshal(durable.AgentResult{Text: text})
		m.agents[id] = engine.Result{Done: true, Output: raw}
	}
}

// compileSource compiles one file from text (with optional modules), as a trusted file.
func compileSource(t *testing.T, src string, modules map[string]string) (*workflowfile.Workflow, error) {
	t.Helper()
	return compileWith(t, src, modules, workflowfile.OriginDir, nil)
}

func compileWith(t *testing.T, src string, modules map[string]string, origin workflowfile.Origin, cfg *workflowfile.Config) (*workflowfile.Workflow, error) {
	t.Helper()
	files := map[string]string{"wf.star": src}
	for k, v := range modules {
		files[k] = v
	}
	return workflowfile.CompileBundle(workflowfile.Bundle{Origin: origin, Entry: "wf.star", Files: files}, cfg)
}

// mustCompile compiles src or fails the test.
func mustCompile(t *testing.T, src string) *workflowfile.Workflow {
	t.Helper()
	w, err := compileSource(t, src, nil)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return w
}

// repoWorkflow compiles one of the repository's Starlark examples (docs/examples/starlark: the
// product's examples ported from Python).
func repoWorkflow(t *testing.T, name string) *workflowfile.Workflow {
	t.Helper()
	files, err := workflowfile.LoadDir(filepath.Join("..", "docs", "examples", "starlark"), workflowfile.OriginDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Err != nil {
			t.Fatalf("%s does not load: %v", f.Path, f.Err)
		}
		if f.Workflow.Name() == name {
			return f.Workflow
		}
	}
	t.Fatalf("no workflow file named %q in docs/examples/starlark/", name)
	return nil
}

// writeFile writes a file into dir.
func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return string(b)
}
