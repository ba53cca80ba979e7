package core

import (
	"encoding/json"
	"fmt"
)

// DefaultVersion is what GetVersion returns to a run that went past the call on code that did
// not make it yet: the version of the code before the change.
const DefaultVersion = -1

// ReasonUnsupportedVersion is the reason of a run whose recorded version of a change (see
// GetVersion) is one the running code no longer supports.
const ReasonUnsupportedVersion = "UnsupportedVersion"

// GetVersion lets a workflow's code change while runs are in flight, as Temporal's
// workflow.GetVersion does. Put it where the code changes and branch on what it returns:
//
//	v := durable.GetVersion(ctx, "fetch-from-v2-api", durable.DefaultVersion, 1)
//	if v == durable.DefaultVersion {
//		page, err = durable.Step(ctx, "fetch", fetchV1) // what runs started before the change did
//	} else {
//		page, err = durable.Step(ctx, "fetch-v2", fetchV2)
//	}
//
// changeID names the change, unique within the run like every primitive's name. The first run
// to reach the call records maxSupported in its journal (an entry of kind Version named
// changeID) and gets it back on every replay. A run that went past this point before the code
// had the call, one whose journal holds entries the handler has not reached yet but no record
// of changeID, gets DefaultVersion and records nothing, so it replays the branch it took; a run
// started before the change that had not reached this point yet takes the new code. Calling
// GetVersion again with the same changeID later in the run returns the same version.
//
// Raise maxSupported with each further change under the same changeID. Once no run of an old
// version is in flight, raise minSupported to drop its branch: a run whose version lies
// outside [minSupported, maxSupported] fails with reason UnsupportedVersion, naming the change,
// the version and the supported range. minSupported below DefaultVersion or above maxSupported
// fails the run with reason HandlerError.
//
// Like Now, GetVersion may not be called from a goroutine the handler started (that fails the
// run with reason Misuse, and GetVersion returns DefaultVersion); nor inside a step's function.
//
// A workflow file calls it as ctx.get_version(change_id, min_supported, max_supported), with
// DEFAULT_VERSION for DefaultVersion.
func GetVersion(ctx *Context, changeID string, minSupported, maxSupported int) int {
	if ctx.exec.enter("GetVersion", changeID) != nil {
		return DefaultVersion
	}
	return ctx.exec.version(changeID, minSupported, maxSupported)
}

// version answers GetVersion: the version recorded for changeID, DefaultVersion where the
// handler is still inside recorded history, or maxSupported, recorded.
func (e *execution) version(changeID string, minSupported, maxSupported int) int {
	if minSupported < DefaultVersion || minSupported > maxSupported {
		e.failRun(ReasonHandlerError, "durable.GetVersion(%q) supports versions %d to %d: the minimum must be at least DefaultVersion (-1) and at most the maximum", changeID, minSupported, maxSupported)
	}
	live := e.live.Load()
	entry, found := e.lookup(changeID, KindVersion)
	var v int
	switch {
	case found:
		e.advanceClock(entry.FinishedAt)
		raw := e.resultOf(entry)
		if err := json.Unmarshal(raw, &v); err != nil {
			e.failRun(ReasonNonDeterministic, "the recorded version of change %q is %s, not a number", changeID, raw)
		}
	case e.progress.defaulted[changeID] || e.progress.unreached() > 0:
		// The run reached this point before, on code without the change: it is replaying
		// recorded history, which lookup took for new ground.
		e.live.Store(live)
		e.progress.defaulted[changeID] = true
		v = DefaultVersion
	default:
		v = maxSupported
		now := e.clock()
		e.stage(Entry{Name: changeID, Kind: KindVersion, State: StateCompleted, StartedAt: now, FinishedAt: now,
			Result: json.RawMessage(fmt.Sprint(v))}) // written before anything recorded after it
		e.advanceClock(now)
	}
	if v < minSupported || v > maxSupported {
		e.failRun(ReasonUnsupportedVersion, "change %q: the run took version %s, but this code supports versions %d to %d: keep version %d supported until the runs that took it have finished",
			changeID, versionName(v), minSupported, maxSupported, v)
	}
	return v
}

// versionName shows a version, naming DefaultVersion.
func versionName(v int) string {
	if v == DefaultVersion {
		return "-1 (DefaultVersion: it went past this point on code without the change)"
	}
	return fmt.Sprint(v)
}

// replayProgress is how far an execution has come through the journal it started with: which
// of the entries recorded before it the handler has reached. GetVersion tells by it whether
// the handler stands inside recorded history (entries recorded after this point remain) or at
// its end. It also keeps the change ids GetVersion answered with DefaultVersion, which leaves
// no record, so that every call of a change id in one execution gets the same answer.
type replayProgress struct {
	// reached marks the entries recorded before the execution (by index) the handler reached;
	// count is how many are marked.
	reached []bool
	count   int
	// defaulted are the change ids answered with DefaultVersion.
	defaulted map[string]bool
}

// newReplayProgress tracks the progress through a journal of recorded entries.
func newReplayProgress(recorded int) replayProgress {
	return replayProgress{reached: make([]bool, recorded), defaulted: map[string]bool{}}
}

// reach marks the entry at index i of the journal as reached; entries recorded by this
// execution (past the recorded ones) need no mark.
func (p *replayProgress) reach(i int) {
	if i < len(p.reached) && !p.reached[i] {
		p.reached[i] = true
		p.count++
	}
}

// unreached counts the recorded entries the handler has not reached yet.
func (p *replayProgress) unreached() int { return len(p.reached) - p.count }
