// Package durable is the SDK for writing Centaur workflows in Go: defining a workflow and the
// durable primitives its handler calls. What runs handlers (replaying them against their
// journals, the registry a manager serves) is the host's business and lives in package
// durable/engine; an author needs only this package. Its types are aliases of the one
// implementation both packages share (durable/internal/core, as Temporal's SDK does it), so
// `go doc` shows a struct's fields there: go doc ./durable/internal/core RetryPolicy.
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
// Register it with the manager (workflows.All, or manager.Run(opts, Hello)); each WorkflowRun
// whose spec.workflowName is "hello" runs the handler.
//
// The handler may outlive any process. The engine runs it from the top every time the run is
// woken (after a restart, a sleep, an event) and answers each durable primitive from the run's
// journal when the journal already holds it: a completed step returns its recorded result
// without calling its function again, an elapsed sleep returns at once. The handler therefore
// fast-forwards to where it stopped and goes on from there.
//
// # Durable primitives
//
// Each primitive takes a name, unique within the run, under which the journal records it.
// Calling a name again returns what the journal holds for it; using one name for two kinds of
// primitive fails the run with reason NonDeterministic.
//
// [Step] runs a side effect once and records its JSON-encoded result, which comes back typed.
// Options set a [RetryPolicy], a timeout per attempt ([WithTimeout]) and group commit for cheap,
// idempotent steps ([Batched]: a crash may run the unwritten part of a batch again):
//
//	user, err := durable.Step(ctx, "load-user", func(c context.Context) (User, error) {
//		return api.GetUser(c, in.UserID)
//	}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 5}), durable.WithTimeout(10*time.Second))
//
// [Parallel] runs the functions of several steps at once and records each under its own name:
//
//	pages, err := durable.Parallel(ctx, []durable.Branch[Page]{
//		{Name: "fetch-docs", Fn: fetchDocs},
//		{Name: "fetch-blog", Fn: fetchBlog},
//	})
//
// [Sleep] and [SleepUntil] suspend the run until an absolute wake time recorded in the
// journal; no goroutine and no process waits meanwhile:
//
//	durable.Sleep(ctx, "trial-period", 14*24*time.Hour)
//	durable.SleepUntil(ctx, "at-nine", nineOClock)
//
// [WaitForEvent] suspends the run until a WorkflowEvent of a type and correlation id exists
// (POST /api/workflows/events, or kubectl apply), and returns its payload typed; with
// [WithWaitTimeout] it returns [ErrEventTimeout] once the timeout passes:
//
//	decision, err := durable.WaitForEvent[Decision](ctx, "decision", "approval.decided", in.RequestID,
//		durable.WithWaitTimeout(72*time.Hour))
//	if errors.Is(err, durable.ErrEventTimeout) { ... }
//
// [SendEvent] delivers an event once for the run, however often the handler replays; the runs
// waiting for its type and correlation id resume:
//
//	err := durable.SendEvent(ctx, "request-approval", "approval.requested", in.RequestID, in)
//
// [RunWorkflow] starts a child run and waits for its output; [StartWorkflow] and
// [WaitForWorkflow] do the two halves, so that several children run at once. They take the
// child's [*WorkflowDef] (what [Define] returns; [WorkflowByName] for a workflow file), so the
// input and output are typed. A failed child comes back as a [*ChildError]:
//
//	out, err := durable.RunWorkflow(ctx, "greet-ada", Hello, HelloInput{Name: "Ada"}) // out is a HelloOutput
//
//	child, err := durable.StartWorkflow(ctx, "greet-bob", Hello, HelloInput{Name: "Bob"})
//	// ... other work while the child runs ...
//	out, err := durable.WaitForWorkflow(ctx, child)
//
// [RunAgent] asks an LLM agent for one turn (an AgentRun) and waits for the reply;
// [StartAgent] and [WaitForAgent] are its halves; [AgentTurn] is the short form for the
// default agent, named with [WithTurnName]. A failed turn comes back as an [*AgentError]:
//
//	res, err := durable.RunAgent(ctx, "summarize", durable.AgentRequest{Prompt: "Summarize: " + text})
//	reply, err := durable.AgentTurn(ctx, "Triage this issue: "+title, "github:acme/api:42",
//		durable.WithTurnName("triage"))
//
// Besides the primitives, [Now] is the run's recorded time (the same on every replay),
// [Logger] a logger that stays quiet while the handler replays, [Info] the run's identity and
// [IsReplaying] whether the handler is still answering from the journal:
//
//	deadline := durable.Now(ctx).Add(48 * time.Hour)
//	durable.Logger(ctx).Info("waiting for approval", "until", deadline)
//
// Workflow files call the same primitives as methods of their ctx, under Python's names:
// ctx.step ([Step]), ctx.parallel ([Parallel]), ctx.sleep, ctx.sleep_until, ctx.wait_for_event,
// ctx.send_event, ctx.start_workflow, ctx.wait_for_workflow, ctx.run_workflow, ctx.start_agent,
// ctx.wait_for_agent, ctx.run_agent, ctx.agent_turn, ctx.get_version ([GetVersion], with
// DEFAULT_VERSION for [DefaultVersion]), ctx.now and ctx.log ([Logger]); docs/workflow-files.md
// has the table.
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
//     goroutine returns at once with an error, so a goroutine the handler
//     waits for still finishes; the handler stops at its next primitive or when it returns);
//   - when you change a deployed workflow, keep the names of primitives that running runs
//     have already reached, and put a change of what the handler does under [GetVersion]
//     (see below).
//
// A suspension (a sleep, or a wait for something outside) cannot be swallowed by user code:
// the primitive never returns to the handler, which stops right there until the run is woken.
// Deferred functions in the handler do run when it stops, so do not put side effects in them.
//
// # Changing a workflow with runs in flight
//
// A Go workflow's runs replay the code of the manager that executes them, so a new release
// replays runs that an older one started. [GetVersion] marks where the code changed: a run that
// went past that point on the old code gets [DefaultVersion] and keeps the old branch, every
// other run records the newest version and takes the new one:
//
//	if durable.GetVersion(ctx, "fetch-from-v2-api", durable.DefaultVersion, 1) == durable.DefaultVersion {
//		page, err = durable.Step(ctx, "fetch", fetchV1) // runs that went past here before the change
//	} else {
//		page, err = durable.Step(ctx, "fetch-v2", fetchV2)
//	}
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
