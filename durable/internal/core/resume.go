package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// JournalEnd says where a journal ends: how many entries it holds and a digest of the last
// one. A host that keeps a handler alive between executions (a Python worker keeps its
// suspended coroutine) tags it with the JournalEnd its execution left behind, and uses it
// again only when the journal read for the next execution ends at the same place: nobody
// else advanced the run in between, and every write of the execution was persisted.
type JournalEnd struct {
	// Entries is the number of entries, sealed ones included.
	Entries int `json:"n"`
	// Digest identifies the last entry; empty for an empty journal.
	Digest string `json:"d"`
}

// End returns where j ends now.
func (j *Journal) End() JournalEnd {
	if len(j.entries) == 0 {
		return JournalEnd{}
	}
	return JournalEnd{Entries: len(j.entries), Digest: entryDigest(j.entries[len(j.entries)-1])}
}

// entryDigest identifies an entry by what survives a round trip through the API server
// unchanged: its name, kind, state and attempts, its times to the microsecond, what it
// targets and refers to, and its error type. Results and messages are left out, since the
// API server may re-encode them.
func entryDigest(e Entry) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%d\x00%d\x00%d\x00%s\x00%s\x00%s",
		e.Name, e.Kind, e.State, e.Attempts, e.StartedAt.UnixMicro(), e.FinishedAt.UnixMicro(), e.WakeAt.UnixMicro(),
		e.Target, e.Ref, e.ErrorType)
	if e.Payload != nil {
		fmt.Fprintf(h, "\x00%s", e.Payload.Name)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Resume tells the engine that the handler continues where the previous execution of this
// journal suspended it, instead of starting from the top: the host keeps handlers between
// executions and calls Resume, on the handler's goroutine, before the handler's first
// primitive. Every recorded entry then counts as reached (so GetVersion knows that the
// handler stands at the end of its history) and the run's clock stands where a replay of the
// whole journal would have left it. The handler's first primitive is the one it stopped at.
//
// Only a handler that keeps its own execution-scoped state may be resumed: the names of
// unnamed agent turns and the versions GetVersion answered without a record are counted per
// execution by the engine, so such a handler names every turn and remembers its versions.
func Resume(ctx *Context) {
	e := ctx.exec
	if e.onHandler("Resume", "") != nil {
		return
	}
	for i := range e.progress.reached {
		e.progress.reach(i)
	}
	for _, entry := range e.journal.Entries() {
		if entry.final() {
			e.advanceClock(entry.FinishedAt)
		}
	}
}

// JournalEndOf returns where the journal of ctx's execution ends now, entries staged for the
// outcome's write included.
func JournalEndOf(ctx *Context) JournalEnd { return ctx.exec.journal.End() }

// Stopping reports how the execution ends when a primitive halted the handler's goroutine
// (Suspended, Failed or Aborted); ok is false while the handler runs on. A host whose handler
// lives outside the engine reads it in a deferred function, to keep a suspended handler for
// the next execution and drop a failed one.
func Stopping(ctx *Context) (kind OutcomeKind, ok bool) {
	if ctx.exec.stop == nil {
		return 0, false
	}
	return ctx.exec.stop.Kind, true
}

// Yield ends the execution on the handler's goroutine as a suspension that is due at once:
// what the handler recorded so far is persisted with the outcome, and the run is executed
// again right away, from its journal. A host calls it when the process that runs the
// handler's code died or stopped answering: the records made before are valid (a step whose
// worker died is recorded as a failed attempt), and persisting them keeps a deterministic
// crash from repeating forever. why says what happened, for the run's status.
func Yield(ctx *Context, why string) {
	e := ctx.exec
	if e.onHandler("Yield", "") != nil {
		return
	}
	current := ""
	if n := e.journal.Len(); n > 0 {
		current = e.journal.Entries()[n-1].Name
	}
	e.halt(Outcome{Kind: Suspended, Current: current, WakeAt: e.clock(), Waiting: why})
}

// Abort halts the execution on the handler's goroutine without recording anything more: the
// host executes the run again later (with the backoff of a failed reconcile). A host calls it
// when it cannot run the handler's code now at all (its interpreter cannot start, the
// execution's context ended).
func Abort(ctx *Context, err error) {
	e := ctx.exec
	if e.onHandler("Abort", "") != nil {
		return
	}
	e.halt(Outcome{Kind: Aborted, Err: err})
}

// ContextOf returns the context of ctx's execution: it ends when the execution must stop (the
// manager stops, the run's deadline passes). A host whose handler waits on another process
// waits on it too.
func ContextOf(ctx *Context) context.Context { return ctx.exec.ctx }

// Recorded returns the entry the journal of ctx's execution holds under name.
func Recorded(ctx *Context, name string) (Entry, bool) { return ctx.exec.journal.Lookup(name) }
