// Package startest runs the tests of Starlark workflow files: `*_test.star` files beside the
// workflows (the manager's loader skips them), whose `test_*(t)` functions start runs of the
// directory's workflows on the manager's engine through localrun, with time skipped, and
// check what the runs did. It is what `centaur test` runs for Starlark.
//
// A test file:
//
//	def test_paid_order(t):
//	    run = t.run("order.star",
//	        input = {"order": "o-1"},
//	        events = [{"event_type": "order.paid", "correlation_id": "o-1", "payload": {"amount": 6}}],
//	        steps = {"charge": {"ok": True}},            # mocked steps: recorded results
//	        agents = {"summarize": "All good."},         # agent turns by name: reply texts
//	        workflows = {"notify": {"sent": True}},      # child workflows by name: outputs
//	    )
//	    t.eq(run.status, "succeeded")
//	    t.eq(run.output["amount"], 6)
//	    t.eq(run.entry("charge")["kind"], "Step")
//
// t.run's FILE is relative to the test file. A run's status is "succeeded", "failed" (see
// run.failure: {"reason", "message"}) or "waiting" (run.waiting_for names the event or agent
// turn no one gave); run.send_event(TYPE, CORRELATION_ID, PAYLOAD) and run.reply_agent(NAME,
// TEXT) return the run again with that given too. run.journal is the journal with
// status.journal's field names; run.skipped the seconds of sleeps and backoffs skipped (to the
// millisecond).
//
// Assertions record a failure at the caller's line and let the test go on: t.eq(got, want),
// t.ne(got, other), t.true(cond), t.contains(container, item), t.fail(message); each takes
// an optional message last. A test passes when it returns with no failure recorded.
package startest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	starlarkjson "go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/localrun"
)

// Result is how one test function ended.
type Result struct {
	// Name is the test function's name, such as test_paid_order.
	Name string
	// Failures are the failed assertions and errors, each "FILE:LINE:COL: message".
	Failures []string
	// Duration is how long the test took.
	Duration time.Duration
}

// Passed reports whether the test recorded no failure.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// Options configure how the workflows under test load.
type Options struct {
	// Load configures the loaders (Python workers for Python children and workflows).
	Load localrun.LoadOptions
}

// IsTestFile reports whether name is a Starlark test file: *_test.star.
func IsTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.star") && !strings.HasPrefix(name, ".")
}

// RunFile runs every test_* function of the test file at path, in name order, and returns one
// Result each. The error is for a file that does not execute (a syntax error, a failing
// top level) or a directory that cannot be loaded.
func RunFile(ctx context.Context, path string, opts Options) ([]Result, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the test file: %w", err)
	}
	s := &suite{ctx: ctx, dir: filepath.Dir(path), opts: opts, dirs: map[string]*localrun.Dir{}}
	defer s.close()
	thread := &starlark.Thread{Name: path}
	predeclared := starlark.StringDict{"json": starlarkjson.Module, "struct": starlark.NewBuiltin("struct", starlarkstruct.Make)}
	globals, err := starlark.ExecFileOptions(&syntax.FileOptions{Set: true, While: true, Recursion: true}, thread, path, src, predeclared)
	if err != nil {
		return nil, fmt.Errorf("%s", describe(err))
	}
	names := globals.Keys()
	sort.Strings(names)
	var results []Result
	for _, name := range names {
		fn, ok := globals[name].(*starlark.Function)
		if !ok || !strings.HasPrefix(name, "test_") {
			continue
		}
		results = append(results, s.runTest(name, fn))
	}
	return results, nil
}

// suite is what the tests of one file share: the loaded workflow directories.
type suite struct {
	ctx  context.Context
	dir  string
	opts Options
	dirs map[string]*localrun.Dir
}

// close stops the Python workers of the loaded directories.
func (s *suite) close() {
	for _, d := range s.dirs {
		d.Close()
	}
}

// runTest calls one test function with a fresh t.
func (s *suite) runTest(name string, fn *starlark.Function) Result {
	start := time.Now()
	t := &tester{suite: s}
	thread := &starlark.Thread{Name: name}
	if fn.NumParams() != 1 {
		t.failures = append(t.failures, fmt.Sprintf("%s: %s must take one parameter, t: def %s(t):", fn.Position(), name, name))
	} else if _, err := starlark.Call(thread, fn, starlark.Tuple{t.value()}, nil); err != nil {
		t.failures = append(t.failures, describe(err))
	}
	return Result{Name: name, Failures: t.failures, Duration: time.Since(start)}
}

// describe is an error with its Starlark position and backtrace when it has them.
func describe(err error) string {
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		return evalErr.Backtrace()
	}
	return err.Error()
}

// tester is a test function's t.
type tester struct {
	suite    *suite
	failures []string
}

// value is t as Starlark sees it.
func (t *tester) value() starlark.Value {
	return starlarkstruct.FromStringDict(starlark.String("t"), starlark.StringDict{
		"run":      starlark.NewBuiltin("t.run", t.run),
		"eq":       starlark.NewBuiltin("t.eq", t.compare(syntax.EQL, "got %s, want %s")),
		"ne":       starlark.NewBuiltin("t.ne", t.compare(syntax.NEQ, "got %s, want anything else than %s")),
		"true":     starlark.NewBuiltin("t.true", t.isTrue),
		"contains": starlark.NewBuiltin("t.contains", t.contains),
		"fail":     starlark.NewBuiltin("t.fail", t.fail),
	})
}

// failf records a failure at the position of the test code that called the assertion.
func (t *tester) failf(thread *starlark.Thread, msg, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	if msg != "" {
		text = msg + ": " + text
	}
	t.failures = append(t.failures, fmt.Sprintf("%s: %s", thread.CallFrame(1).Pos, text))
}

// compare is t.eq or t.ne.
func (t *tester) compare(op syntax.Token, format string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var got, want starlark.Value
		var msg string
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &got, &want, &msg); err != nil {
			return nil, err
		}
		ok, err := starlark.Compare(op, got, want)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Name(), err)
		}
		if !ok {
			t.failf(thread, msg, format, got.String(), want.String())
		}
		return starlark.None, nil
	}
}

// isTrue is t.true(cond, msg?).
func (t *tester) isTrue(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cond starlark.Value
	var msg string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &cond, &msg); err != nil {
		return nil, err
	}
	if !cond.Truth() {
		t.failf(thread, msg, "got %s, want a true value", cond.String())
	}
	return starlark.None, nil
}

// contains is t.contains(container, item, msg?).
func (t *tester) contains(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var container, item starlark.Value
	var msg string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &container, &item, &msg); err != nil {
		return nil, err
	}
	in, err := starlark.Binary(syntax.IN, item, container)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	if !in.Truth() {
		t.failf(thread, msg, "%s does not contain %s", container.String(), item.String())
	}
	return starlark.None, nil
}

// fail is t.fail(message).
func (t *tester) fail(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var msg string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &msg); err != nil {
		return nil, err
	}
	t.failf(thread, "", "%s", msg)
	return starlark.None, nil
}

// spec is what one t.run asked for; send_event and reply_agent run it again with more.
type spec struct {
	file      string
	input     json.RawMessage
	events    []localrun.Event
	agents    map[string]string
	steps     map[string]json.RawMessage
	workflows map[string]json.RawMessage
}

// run is t.run(file, input=None, events=[], steps={}, agents={}, workflows={}).
func (t *tester) run(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var file string
	var input starlark.Value = starlark.None
	var events *starlark.List
	var steps, agents, workflows *starlark.Dict
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "file", &file, "input?", &input, "events?", &events,
		"steps?", &steps, "agents?", &agents, "workflows?", &workflows); err != nil {
		return nil, err
	}
	sp := spec{file: file, agents: map[string]string{}, steps: map[string]json.RawMessage{}, workflows: map[string]json.RawMessage{}}
	var err error
	if input != starlark.None {
		if sp.input, err = toJSON(thread, input, "input"); err != nil {
			return nil, err
		}
	}
	if err := t.unpackEvents(thread, events, &sp); err != nil {
		return nil, err
	}
	if err := eachEntry(thread, steps, "steps", func(name string, raw json.RawMessage) { sp.steps[name] = raw }); err != nil {
		return nil, err
	}
	if err := eachEntry(thread, workflows, "workflows", func(name string, raw json.RawMessage) { sp.workflows[name] = raw }); err != nil {
		return nil, err
	}
	if agents != nil {
		for _, item := range agents.Items() {
			name, ok1 := starlark.AsString(item[0])
			reply, ok2 := starlark.AsString(item[1])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("agents maps turn names to reply texts, got %s: %s", item[0].Type(), item[1].Type())
			}
			sp.agents[name] = reply
		}
	}
	return t.execute(thread, sp)
}

// unpackEvents adds t.run's events, each what POST /api/workflows/events takes.
func (t *tester) unpackEvents(thread *starlark.Thread, events *starlark.List, sp *spec) error {
	if events == nil {
		return nil
	}
	for i := range events.Len() {
		raw, err := toJSON(thread, events.Index(i), fmt.Sprintf("events[%d]", i))
		if err != nil {
			return err
		}
		ev, err := localrun.ParseEvent(raw)
		if err != nil {
			return fmt.Errorf("events[%d]: %w", i, err)
		}
		sp.events = append(sp.events, ev)
	}
	return nil
}

// eachEntry calls put with each key of d (a name) and its value as JSON.
func eachEntry(thread *starlark.Thread, d *starlark.Dict, what string, put func(string, json.RawMessage)) error {
	if d == nil {
		return nil
	}
	for _, item := range d.Items() {
		name, ok := starlark.AsString(item[0])
		if !ok {
			return fmt.Errorf("%s is keyed by names, got %s", what, item[0].Type())
		}
		raw, err := toJSON(thread, item[1], fmt.Sprintf("%s[%q]", what, name))
		if err != nil {
			return err
		}
		put(name, raw)
	}
	return nil
}

// execute runs sp on localrun and returns the run as Starlark sees it.
func (t *tester) execute(thread *starlark.Thread, sp spec) (starlark.Value, error) {
	path := sp.file
	if !filepath.IsAbs(path) {
		path = filepath.Join(t.suite.dir, path)
	}
	d, err := t.suite.load(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	w, err := d.File(path)
	if err != nil {
		return nil, err
	}
	opts := localrun.Options{Input: sp.input, Events: sp.events, Journal: mockedSteps(sp.steps)}
	opts.AgentReply = func(turn localrun.AgentTurn) (string, error) {
		if reply, ok := sp.agents[turn.Name]; ok {
			return reply, nil
		}
		return "", &localrun.MissingReplyError{Run: turn.Run, Turn: turn.Name}
	}
	opts.Workflows = func(name string) (durable.Workflow, bool) {
		if out, ok := sp.workflows[name]; ok {
			return engine.DefineRaw(name, func(*durable.Context, json.RawMessage) (json.RawMessage, error) { return out, nil }), true
		}
		return d.Lookup(name)
	}
	res, runErr := localrun.Run(t.suite.ctx, w, opts)
	return t.runValue(thread, sp, res, runErr)
}

// load loads (once) the workflow directory dir.
func (s *suite) load(dir string) (*localrun.Dir, error) {
	if d, ok := s.dirs[dir]; ok {
		return d, nil
	}
	d, err := localrun.LoadDir(s.ctx, dir, s.opts.Load)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	s.dirs[dir] = d
	return d, nil
}

// mockedSteps are the journal entries of mocked steps: completed, with their results, so
// that the engine returns them without calling the steps' functions.
func mockedSteps(steps map[string]json.RawMessage) []engine.Entry {
	names := make([]string, 0, len(steps))
	for name := range steps {
		names = append(names, name)
	}
	sort.Strings(names)
	entries := make([]engine.Entry, 0, len(names))
	for _, name := range names {
		entries = append(entries, engine.Entry{Name: name, Kind: engine.KindStep, State: engine.StateCompleted, Attempts: 1, Result: steps[name]})
	}
	return entries
}

// runValue is the struct t.run returns: status, output, failure, waiting_for, journal,
// skipped, entry(name), send_event(...), reply_agent(...).
func (t *tester) runValue(thread *starlark.Thread, sp spec, res *localrun.Result, runErr error) (starlark.Value, error) {
	status, waiting := "succeeded", ""
	var missingEvent *localrun.MissingEventError
	var missingReply *localrun.MissingReplyError
	switch {
	case errors.As(runErr, &missingEvent):
		status, waiting = "waiting", fmt.Sprintf("event %s/%s", missingEvent.EventType, missingEvent.CorrelationID)
	case errors.As(runErr, &missingReply):
		status, waiting = "waiting", "agent turn "+missingReply.Turn
	case runErr != nil:
		return nil, fmt.Errorf("the run of %s cannot go on: %w", sp.file, runErr)
	case !res.Succeeded():
		status = "failed"
	}
	fields := starlark.StringDict{"status": starlark.String(status), "waiting_for": starlark.String(waiting),
		"output": starlark.None, "failure": starlark.None, "skipped": starlark.Float(math.Round(res.Skipped.Seconds()*1000) / 1000)}
	if len(res.Output) > 0 && status == "succeeded" {
		out, err := fromJSON(thread, res.Output)
		if err != nil {
			return nil, err
		}
		fields["output"] = out
	}
	if res.Failure != nil {
		failure := starlark.NewDict(2)
		_ = failure.SetKey(starlark.String("reason"), starlark.String(res.Failure.Reason))
		_ = failure.SetKey(starlark.String("message"), starlark.String(res.Failure.Message))
		fields["failure"] = failure
	}
	journal, err := journalValue(thread, res)
	if err != nil {
		return nil, err
	}
	fields["journal"] = journal
	fields["entry"] = starlark.NewBuiltin("run.entry", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name string
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &name); err != nil {
			return nil, err
		}
		return entryNamed(journal, name)
	})
	fields["send_event"] = starlark.NewBuiltin("run.send_event", t.sendEvent(sp))
	fields["reply_agent"] = starlark.NewBuiltin("run.reply_agent", t.replyAgent(sp))
	return starlarkstruct.FromStringDict(starlark.String("run"), fields), nil
}

// sendEvent is run.send_event(event_type, correlation_id="", payload=None): the run again,
// with one more event.
func (t *tester) sendEvent(sp spec) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var eventType, correlation string
		var payload starlark.Value = starlark.None
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "event_type", &eventType, "correlation_id?", &correlation, "payload?", &payload); err != nil {
			return nil, err
		}
		raw, err := toJSON(thread, payload, "payload")
		if err != nil {
			return nil, err
		}
		next := sp
		next.events = append(append([]localrun.Event(nil), sp.events...), localrun.Event{EventType: eventType, CorrelationID: correlation, Payload: raw})
		return t.execute(thread, next)
	}
}

// replyAgent is run.reply_agent(name, text): the run again, with that turn answered.
func (t *tester) replyAgent(sp spec) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name, text string
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &name, &text); err != nil {
			return nil, err
		}
		next := sp
		next.agents = map[string]string{name: text}
		for k, v := range sp.agents {
			if k != name {
				next.agents[k] = v
			}
		}
		return t.execute(thread, next)
	}
}

// journalValue is the run's journal as a Starlark list of dicts, with status.journal's
// field names.
func journalValue(thread *starlark.Thread, res *localrun.Result) (*starlark.List, error) {
	raw, err := res.JournalJSON()
	if err != nil {
		return nil, err
	}
	v, err := fromJSON(thread, raw)
	if err != nil {
		return nil, err
	}
	list, ok := v.(*starlark.List)
	if !ok {
		return starlark.NewList(nil), nil // a run that recorded nothing: JSON null
	}
	return list, nil
}

// entryNamed returns the journal entry named name.
func entryNamed(journal *starlark.List, name string) (starlark.Value, error) {
	for i := range journal.Len() {
		entry, ok := journal.Index(i).(*starlark.Dict)
		if !ok {
			continue
		}
		if v, found, _ := entry.Get(starlark.String("name")); found && v == starlark.String(name) {
			return entry, nil
		}
	}
	return nil, fmt.Errorf("the journal has no entry %q", name)
}

// toJSON encodes a Starlark value as JSON with the json module's encode.
func toJSON(thread *starlark.Thread, v starlark.Value, what string) (json.RawMessage, error) {
	out, err := starlark.Call(thread, starlarkjson.Module.Members["encode"], starlark.Tuple{v}, nil)
	if err != nil {
		return nil, fmt.Errorf("%s is not JSON: %w", what, err)
	}
	return json.RawMessage(out.(starlark.String)), nil
}

// fromJSON decodes JSON into Starlark values with the json module's decode.
func fromJSON(thread *starlark.Thread, raw []byte) (starlark.Value, error) {
	v, err := starlark.Call(thread, starlarkjson.Module.Members["decode"], starlark.Tuple{starlark.String(raw)}, nil)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", raw, err)
	}
	return v, nil
}
