// Package durable is the workflow SDK and the replay engine of Centaur Workflows.
//
// A workflow is a name, a typed input and a handler:
//
//	var Hello = durable.Define("hello", func(ctx *durable.Context, in HelloInput) (HelloOutput, error) {
//		greeting, err := durable.Step(ctx, "greet", func(context.Context) (string, error) {
//			return "Hello, " + in.Name + "!", nil
//		})
//		return HelloOutput{Greeting: greeting}, err
//	})
//
// The handler may outlive any process. The engine runs it from the top every time the run is
// woken (after a restart, a sleep, an event) and answers each durable primitive from the run's
// journal when the journal already holds it: a completed step returns its recorded result
// without calling its function again, an elapsed sleep returns at once. The handler therefore
// fast-forwards to where it stopped and goes on from there.
//
// # Durable primitives
//
//   - [Step] runs a side effect once and records its JSON-encoded result, with a retry policy
//     and a timeout ([StepOption]). The result comes back typed. Its record is written before
//     the handler reaches its next primitive (or with the run's suspension or end); with
//     [Batched] it is written together with the steps around it (group commit, for cheap and
//     idempotent steps: a crash may run the unwritten part of a batch again).
//   - [Sleep] and [SleepUntil] suspend the run until an absolute wake time recorded in the
//     journal; no goroutine and no process waits meanwhile.
//
// Each primitive is identified by its name, unique within a run. Calling a name again returns
// what the journal holds for it; using one name for two kinds of primitive fails the run with
// reason NonDeterministic.
//
// # The determinism contract
//
// Because the handler is replayed, everything it does outside primitives must make the same
// decisions every time it runs with the same journal:
//
//   - put side effects (HTTP calls, database writes, random numbers, reading the clock) inside
//     a Step; the handler itself only decides what to do next;
//   - use [Now] rather than time.Now for the time, and [Logger] rather than a global logger so
//     that replays stay quiet;
//   - call primitives only from the handler's own goroutine, and never inside a step's
//     function: either fails the run with reason Misuse (a primitive called from another
//     goroutine returns at once, with a *Failure as its error, so a goroutine the handler
//     waits for still finishes; the handler stops at its next primitive or when it returns);
//   - when you change a deployed workflow, keep the names of primitives that running runs
//     have already reached.
//
// A suspension (a sleep, or a wait for something outside) cannot be swallowed by user code:
// the primitive never returns to the handler, which stops right there until the run is woken.
// Deferred functions in the handler do run when it stops, so do not put side effects in them.
//
// # Failures
//
// A step whose function fails is retried according to its [RetryPolicy]: the attempt count and
// the time of the next attempt are recorded, and the wait is a durable sleep. When the attempts
// are exhausted, or the error is marked with [NonRetryable], the step returns a [*StepError];
// the handler may handle it or return it, which fails the run with reason StepFailed. A panic
// in a handler or a step is an error, never a crash of the process running it.
//
// Give the errors you branch on a type with [NewError] (or an ErrorType method on your own
// error type). The type is recorded in the journal with the message, so after replay the
// [*StepError] still matches it:
//
//	var ErrNotFound = durable.NewError("NotFound", "no such user", true) // true: never retried
//
//	_, err := durable.Step(ctx, "load", loadUser)
//	if errors.Is(err, ErrNotFound) { // matches by type, first time and after replay
//		...
//	}
//
// [RetryPolicy].NonRetryableErrorTypes stops retries for the types it lists.
package durable
