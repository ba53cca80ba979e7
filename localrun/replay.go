package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// ReplayOptions configure a replay of a recorded journal.
type ReplayOptions struct {
	// Input is the recorded run's JSON input (spec.input); empty means {}. The handler reads
	// it as the run did, so a handler that branches on its input needs the run's own.
	Input json.RawMessage
	// RunID is the run's id (RunInfo.Name and UID); empty: "replay-" + the workflow's name.
	RunID string
	// StartedAt is when the run started (status.startTime), the handler's clock before its
	// first primitive; zero takes the start of the journal's first entry.
	StartedAt time.Time
	// GoSource says that the workflow is Go code compiled into this binary: the call site of
	// a divergence is then read from the handler's Go stack, and the advice names
	// durable.GetVersion.
	GoSource bool
}

// Call is one durable primitive: its kind and name, as a journal entry records it.
type Call struct {
	// Kind is the primitive's kind (Step, Sleep, Event, Child, Agent, Version).
	Kind engine.Kind
	// Name is its name in the journal.
	Name string
}

// String is "step fetch".
func (c Call) String() string { return strings.ToLower(string(c.Kind)) + " " + c.Name }

// Divergence is the first place where new code stops making the calls a journal recorded.
type Divergence struct {
	// Index is the position in the journal of the entry that the new code does not reach
	// (0 for the first entry).
	Index int
	// Expected is the recorded entry's call.
	Expected Call
	// Got is the call the new code makes there; nil when the handler returned or failed
	// instead (End says which).
	Got *Call
	// End says how the handler ended instead of making the expected call: "returned" or
	// "failed: REASON: MESSAGE"; empty when Got is set.
	End string
	// Site is where the new code makes the call Got: "file.star:12:5 in handler", a Go
	// file:line, or empty when the loader cannot tell (Python files, and a handler that
	// ended).
	Site string
	// Advice says how to make the change compatible.
	Advice string
}

// String says what diverged, in one line.
func (d *Divergence) String() string {
	got := d.End
	if d.Got != nil {
		got = d.Got.String()
		if d.Site != "" {
			got += " at " + d.Site
		}
	}
	return fmt.Sprintf("entry %d: the journal recorded %s, the new code %s", d.Index+1, d.Expected, gotWords(d.Got, got))
}

// gotWords phrases what the new code did instead.
func gotWords(call *Call, got string) string {
	if call == nil {
		return got + " instead"
	}
	return "calls " + got
}

// ReplayResult is what a replay found.
type ReplayResult struct {
	// Workflow is the replayed workflow's name, RunID the run's id.
	Workflow, RunID string
	// Entries counts the journal's entries, Matched those the new code made in the same order.
	Entries, Matched int
	// Divergence is the first divergence; nil when the new code is compatible.
	Divergence *Divergence
	// Stop says where the replay stopped when compatible: where the journal ends (the next
	// call the new code makes, which would run for real), at an entry still in flight
	// (a sleep, a wait, a step between retries), or how the handler ended after the last
	// entry.
	Stop string
}

// Compatible reports whether the new code makes the journal's calls in the journal's order.
func (r *ReplayResult) Compatible() bool { return r.Divergence == nil }

// errReplayStop halts a replay where the journal ends: what comes next would run for real.
var errReplayStop = errors.New("the journal ends here")

// errDiverged halts a replay at the first call that differs from the journal.
var errDiverged = errors.New("the call differs from the journal")

// Replay runs w's handler against a recorded journal on the engine, without running anything:
// each call the handler makes is compared with the journal's entry at the same position (kind
// and name), and the replay stops at the first call past the journal's end, at an entry still
// in flight, or at the first difference. Recorded results answer the calls, as they do in the
// manager, so the handler takes the branches the run took. A ctx.get_version call inside
// recorded history is not a difference: it records nothing there (it answers the default
// version), which is how a change is made compatible.
//
// The error is for a replay that could not be done (the engine aborted for another reason);
// a divergence is a result.
func Replay(ctx context.Context, w durable.Workflow, journal []engine.Entry, opts ReplayOptions) (*ReplayResult, error) {
	if w == nil {
		return nil, errors.New("localrun: no workflow to replay")
	}
	id := opts.RunID
	if id == "" {
		id = "replay-" + w.Name()
	}
	input := opts.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	started := opts.StartedAt
	if started.IsZero() {
		started = startOf(journal)
	}
	c := &comparison{journal: journal, goSource: opts.GoSource}
	res := &ReplayResult{Workflow: w.Name(), RunID: id, Entries: len(journal)}
	ex := engine.Execution{
		Run:     durable.RunInfo{Namespace: "replay", Name: id, UID: id, WorkflowName: w.Name(), StartedAt: started},
		Input:   input,
		Journal: engine.NewJournal(replayable(journal)),
		Recorder: engine.RecorderFunc(func(context.Context, *engine.Journal, []engine.Entry) error {
			return errors.New("a replay records nothing")
		}),
		Hooks: engine.Hooks{Reached: c.reached},
	}
	out := engine.Execute(ctx, w, ex)
	res.Matched = c.next
	return res, c.conclude(out, res)
}

// conclude fills res from how the execution ended.
func (c *comparison) conclude(out engine.Outcome, res *ReplayResult) error {
	switch {
	case out.Kind == engine.Aborted && errors.Is(out.Err, errDiverged):
		res.Divergence = c.divergence
	case out.Kind == engine.Aborted && errors.Is(out.Err, errReplayStop):
		res.Stop = c.stop
	case out.Kind == engine.Aborted:
		return fmt.Errorf("replay of %s stopped at %q: %w", res.Workflow, out.Current, out.Err)
	case c.next < len(c.journal):
		res.Divergence = &Divergence{Index: c.next, Expected: callOf(c.journal[c.next]), End: ended(out), Advice: c.advice()}
	default:
		res.Stop = "after the last entry the handler " + ended(out)
	}
	return nil
}

// ended says how a handler ended without the replay halting it: "returned", "failed:
// REASON: MESSAGE" or "suspended at NAME".
func ended(out engine.Outcome) string {
	switch out.Kind {
	case engine.Failed:
		return fmt.Sprintf("failed: %s: %s", out.Failure.Reason, lastLine(out.Failure.Message))
	case engine.Suspended:
		return "suspended at " + out.Current
	}
	return "returned"
}

// comparison compares the calls of a handler with a journal, one Reached at a time.
type comparison struct {
	journal  []engine.Entry
	goSource bool
	// next is the position of the journal entry the next call should make.
	next int
	// divergence is the first difference; stop says where the journal ended.
	divergence *Divergence
	stop       string
}

// reached checks the handler's next call against the journal (engine.Hooks.Reached).
func (c *comparison) reached(name string, kind engine.Kind, where func() string) error {
	call := Call{Kind: kind, Name: name}
	if c.next >= len(c.journal) {
		c.stop = fmt.Sprintf("the journal ends; the new code goes on with %s", call)
		return errReplayStop
	}
	want := c.journal[c.next]
	if kind == engine.KindVersion && (want.Kind != kind || want.Name != name) {
		return nil // inside recorded history get_version records nothing: the default version
	}
	if want.Kind != kind || want.Name != name {
		c.divergence = &Divergence{Index: c.next, Expected: callOf(want), Got: &call, Site: c.site(where), Advice: c.advice()}
		return errDiverged
	}
	if want.State != engine.StateCompleted && want.State != engine.StateFailed {
		c.next++
		c.stop = fmt.Sprintf("at %s, %s in the recorded run", call, strings.ToLower(string(want.State)))
		return errReplayStop
	}
	c.next++
	return nil
}

// site is where the handler makes the call: what its loader says, else for Go code the
// handler's frame on this goroutine's stack.
func (c *comparison) site(where func() string) string {
	if s := where(); s != "" {
		return s
	}
	if c.goSource {
		return goCaller()
	}
	return ""
}

// advice says how to make an incompatible change compatible.
func (c *comparison) advice() string {
	if c.goSource {
		return "runs in flight move to new Go code with each release: keep the old calls for them behind durable.GetVersion(ctx, \"CHANGE-ID\", durable.DefaultVersion, 1), or rename nothing a run already recorded"
	}
	return "runs in flight keep replaying the revision they started on (status.workflowRevision), so this file's new revision serves new runs only; to move runs in flight to it, keep the old calls behind ctx.get_version(\"CHANGE-ID\", DEFAULT_VERSION, 1)"
}

// engineFrames are the prefixes of the functions between a Go handler and the Reached hook.
var engineFrames = []string{
	"runtime.",
	"github.com/centaur-dev/workflow-operator/durable.",
	"github.com/centaur-dev/workflow-operator/durable/",
	"github.com/centaur-dev/workflow-operator/localrun.",
}

// goCaller is the file:line of the innermost frame of this goroutine that is neither the
// engine's nor the replay's: the Go handler's call of the primitive.
func goCaller() string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		fr, more := frames.Next()
		if !hasAnyPrefix(fr.Function, engineFrames) && fr.File != "" {
			return fmt.Sprintf("%s:%d in %s", fr.File, fr.Line, fr.Function)
		}
		if !more {
			return ""
		}
	}
}

// hasAnyPrefix reports whether s starts with one of prefixes.
func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// callOf is the call an entry records.
func callOf(e engine.Entry) Call { return Call{Kind: e.Kind, Name: e.Name} }

// replayable is the journal as the engine replays it here: a result read along with its
// payload reference (runstore.ReadJournal with Results) is used as it is, since a replay has
// no payload store.
func replayable(journal []engine.Entry) []engine.Entry {
	out := make([]engine.Entry, len(journal))
	for i, e := range journal {
		if e.Payload != nil && len(e.Result) > 0 {
			e.Payload = nil
		}
		out[i] = e
	}
	return out
}

// startOf is when the recorded run started, as near as its journal tells: its first entry's
// start.
func startOf(journal []engine.Entry) (t time.Time) {
	for _, e := range journal {
		if !e.StartedAt.IsZero() {
			return e.StartedAt
		}
	}
	return t
}
