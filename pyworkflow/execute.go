package pyworkflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/textbound"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// run is the workflow's durable handler: it runs the file's handler in a worker and answers
// each turn of it with the engine's primitives, until the handler returns, raises, or the
// engine suspends the run at one of them.
func (w *Workflow) run(dctx *durable.Context, input json.RawMessage) (json.RawMessage, error) {
	info := durable.Info(dctx)
	pool := w.loader.Pool
	if kills := pool.Kills(info.UID); kills >= w.loader.maxWorkerKills() {
		pool.Forget(info.UID)
		return nil, &engine.Failure{Reason: workflowfile.ReasonExecutionLimit, Message: fmt.Sprintf(
			"the handler's code took down %d Python workers: it ran for more than %s between two ctx primitives (--python-handler-deadline), "+
				"or its worker died while it ran (out of memory?); look for a loop that never awaits a ctx primitive, and move heavy work into a step",
			kills, pool.Config().HandlerDeadline)}
	}
	if err := w.checkInput(input); err != nil {
		return nil, &engine.Failure{Reason: engine.ReasonInvalidInput, Message: err.Error()}
	}
	x := &execution{w: w, dctx: dctx, ctx: engine.ContextOf(dctx), logger: durable.Logger(dctx)}
	return x.run(info, input)
}

// execution is one execution of a Python handler: its session with a worker and the turn the
// handler waits in.
type execution struct {
	w      *Workflow
	dctx   *durable.Context
	ctx    context.Context
	logger *slog.Logger
	sess   *pyworker.Session
	// over is set once the worker's side of the session ended (the handler returned, raised
	// or the worker failed the run), so there is no handler to keep.
	over bool
	// turn holds the calls being answered, whose Site says where the handler's Python code
	// made each (for engine.SetCallSite).
	turn []pyworker.Call
}

// run drives the session to its end.
func (x *execution) run(info durable.RunInfo, input json.RawMessage) (json.RawMessage, error) {
	sess, err := x.w.loader.Pool.Begin(x.ctx, info.UID, x.logger)
	if err != nil {
		engine.Abort(x.dctx, fmt.Errorf("start the handler of workflow file %s: %w", x.w.File(), err))
	}
	x.sess = sess
	defer x.end(info.UID)
	engine.SetCallSite(x.dctx, x.siteOf)
	run := pyworker.RunInfo{Namespace: info.Namespace, Name: info.Name, UID: info.UID, Workflow: info.WorkflowName,
		Revision: x.w.revision, StartedAt: info.StartedAt}
	msg, err := sess.Run(x.ctx, x.w.loadRequest(), run, input, pyEnd(engine.JournalEndOf(x.dctx)))
	var le *pyworker.LoadError
	if errors.As(err, &le) {
		return nil, &engine.Failure{Reason: ReasonRevisionInvalid, Message: fmt.Sprintf(
			"revision %s, which this run started on, no longer loads in the Python worker: %v", x.w.revision, le)}
	}
	for first := true; ; first = false {
		if err != nil {
			x.lost(err)
		}
		switch msg.Op {
		case "turn":
			if msg.Resumed && !first {
				x.lost(fmt.Errorf("Python worker %d resumed a handler in the middle of an execution", sess.PID()))
			}
			if msg.Resumed {
				engine.Resume(x.dctx)
			}
			results, failure := x.answer(msg.Calls)
			if failure != nil {
				return nil, failure
			}
			msg, err = sess.Results(x.ctx, durable.Now(x.dctx), results)
		case "return":
			x.over = true
			if len(msg.Output) == 0 {
				return json.RawMessage("null"), nil
			}
			return msg.Output, nil
		case "raise":
			x.over = true
			return nil, raised(msg.Error)
		case "fail":
			x.over = true
			return nil, &engine.Failure{Reason: msg.Reason, Message: msg.Text}
		default:
			x.lost(fmt.Errorf("Python worker %d answered with %q", sess.PID(), msg.Op))
		}
	}
}

// end ends the session when the execution ends: a handler suspended by the engine (or whose
// execution aborted) is kept by the worker for the run's next execution, tagged with where the
// journal ends; anything else is dropped.
func (x *execution) end(uid string) {
	kind, stopped := engine.Stopping(x.dctx)
	keep := stopped && !x.over && (kind == engine.Suspended || kind == engine.Aborted)
	x.sess.End(keep, pyEnd(engine.JournalEndOf(x.dctx)))
	if !stopped {
		x.w.loader.Pool.Forget(uid) // the handler ended: the run is final
	}
}

// lost ends the execution after its worker was lost: a worker that exited (or was killed for
// overrunning the handler deadline) has the run executed again at once from its journal, with
// what was recorded so far kept; anything else (the execution's context ended, no worker could
// start) is tried again later. It does not return.
func (x *execution) lost(err error) {
	var exited *pyworker.WorkerExitedError
	if errors.As(err, &exited) {
		why := fmt.Sprintf("the Python worker exited (%s); executing again from the journal", exited.Reason)
		if exited.Blamed {
			why = fmt.Sprintf("the handler's code took down its Python worker (%s); executing again from the journal", exited.Reason)
		}
		engine.Yield(x.dctx, why)
	}
	engine.Abort(x.dctx, fmt.Errorf("execute the handler of workflow file %s: %w", x.w.File(), err))
}

// raised is the run's failure for an exception that left the handler: its reason is the
// failed primitive's (StepFailed, ChildFailed, AgentFailed) or HandlerError, its message the
// Python traceback.
func raised(e *pyworker.HandlerError) error {
	msg := strings.TrimSpace(e.Traceback)
	if msg == "" {
		msg = e.Type + ": " + e.Message
	}
	reason := engine.ReasonHandlerError
	switch e.Reason {
	case engine.ReasonStepFailed, engine.ReasonChildFailed, engine.ReasonAgentFailed:
		reason = e.Reason
	}
	return &engine.Failure{Reason: reason, Message: msg}
}

// loadRequest is the revision's source, for a worker that has not loaded it.
func (w *Workflow) loadRequest() pyworker.LoadRequest {
	return pyworker.LoadRequest{Digest: w.digest, Revision: w.revision, Dir: w.dir, Bundle: pyBundle(w.bundle)}
}

func pyEnd(e engine.JournalEnd) pyworker.JournalEnd {
	return pyworker.JournalEnd{Entries: e.Entries, Digest: e.Digest}
}

// Which primitives one turn may hold: several steps (run at once, as ctx.parallel runs its
// branches), or starts and waits of children and agent turns (every start first, then the
// waits in order). Anything else must be awaited on its own.
var (
	gatherableSteps = map[string]bool{"step": true}
	gatherableRuns  = map[string]bool{"start_workflow": true, "wait_for_workflow": true, "run_workflow": true,
		"start_agent": true, "wait_for_agent": true, "run_agent": true, "send_event": true}
	knownKinds = map[string]bool{"parallel": true, "sleep": true, "sleep_until": true, "wait_for_event": true, "get_version": true}
)

// checkTurn refuses a turn that awaits primitives together that cannot be.
func checkTurn(calls []pyworker.Call) error {
	for _, c := range calls {
		if !gatherableSteps[c.Kind] && !gatherableRuns[c.Kind] && !knownKinds[c.Kind] {
			return fmt.Errorf("the handler awaited an unknown primitive %q", c.Kind)
		}
	}
	if len(calls) <= 1 {
		return nil
	}
	steps, runs := 0, 0
	for _, c := range calls {
		if gatherableSteps[c.Kind] {
			steps++
		}
		if gatherableRuns[c.Kind] {
			runs++
		}
	}
	if steps == len(calls) || runs == len(calls) {
		return nil
	}
	shown := make([]string, len(calls))
	for i, c := range calls {
		shown[i] = fmt.Sprintf("ctx.%s(%q)", c.Kind, cmpOr(c.Name, c.ChangeID))
	}
	return fmt.Errorf("the handler awaited %s together (asyncio.gather or tasks): a handler may await several ctx.step calls at once, "+
		"or starts and waits of child workflows and agent turns; await ctx.sleep, sleep_until, wait_for_event, parallel and get_version "+
		"on their own, one after another", strings.Join(shown, ", "))
}

// answer answers every call of a turn through the engine, which may suspend the execution at
// one of them (it then never returns). The failure is for a turn the engine cannot answer.
func (x *execution) answer(calls []pyworker.Call) ([]pyworker.Result, error) {
	if err := checkTurn(calls); err != nil {
		return nil, &engine.Failure{Reason: engine.ReasonMisuse, Message: err.Error()}
	}
	x.turn = calls
	results := make([]pyworker.Result, len(calls))
	switch {
	case len(calls) == 1 && !gatherableRuns[calls[0].Kind]:
		results[0] = x.single(0, calls[0])
	case gatherableSteps[calls[0].Kind]:
		x.steps(calls, results)
	default:
		x.startsThenWaits(calls, results)
	}
	if durable.IsReplaying(x.dctx) { // every call was answered from recorded history
		x.w.loader.Pool.CountReplayedTurn()
	}
	return results, nil
}

// siteOf is where the handler made the call of the turn being answered that the engine
// journals as name: a call's name, a parallel call's branch, a version's change id, or a
// child's or agent turn's wait (name + "/result"). Asked only by hosts that report call sites,
// so answering a turn costs nothing for it.
func (x *execution) siteOf(name string) string {
	base := strings.TrimSuffix(name, "/result")
	for _, c := range x.turn {
		branch := slices.ContainsFunc(c.Branches, func(b pyworker.Branch) bool { return b.Name == name })
		if c.Name == name || c.Name == base || c.ChangeID == name || branch {
			return c.Site
		}
	}
	return ""
}

// single answers a call awaited on its own (steps, sleeps, event waits, ctx.parallel and
// versions).
func (x *execution) single(i int, c pyworker.Call) pyworker.Result {
	switch c.Kind {
	case "step":
		raw, err := durable.Step(x.dctx, c.Name, x.stepFn(i, -1, c), stepOptions(c)...)
		return resultOf(raw, err)
	case "parallel":
		return x.parallel(i, c)
	case "sleep":
		durable.Sleep(x.dctx, c.Name, time.Duration(c.Seconds*float64(time.Second)))
		return null()
	case "sleep_until":
		t, err := time.Parse(time.RFC3339Nano, c.Until)
		if err != nil {
			return errorResult("ValueError", fmt.Sprintf("ctx.sleep_until(%q): %q is not an RFC 3339 time", c.Name, c.Until))
		}
		durable.SleepUntil(x.dctx, c.Name, t)
		return null()
	case "wait_for_event":
		var opts []durable.WaitOption
		if c.Timeout != nil {
			opts = append(opts, durable.WithWaitTimeout(seconds(c.Timeout)))
		}
		payload, err := durable.WaitForEvent[json.RawMessage](x.dctx, c.Name, c.EventType, c.CorrelationID, opts...)
		if errors.Is(err, durable.ErrEventTimeout) {
			return null()
		}
		return resultOf(payload, err)
	case "get_version":
		v := durable.GetVersion(x.dctx, c.ChangeID, c.MinSupported, c.MaxSupported)
		return pyworker.Result{Value: json.RawMessage(fmt.Sprint(v))}
	}
	return errorResult("TypeError", fmt.Sprintf("ctx.%s cannot be awaited here", c.Kind))
}

// steps answers a turn of several steps: they run at once, each recorded under its own name,
// as ctx.parallel runs its branches. When one fails for good, the others get what they
// recorded; one that waits for its next attempt stays unanswered.
func (x *execution) steps(calls []pyworker.Call, results []pyworker.Result) {
	branches := make([]durable.Branch[json.RawMessage], len(calls))
	for i, c := range calls {
		branches[i] = durable.Branch[json.RawMessage]{Name: c.Name, Fn: x.stepFn(i, -1, c), Options: stepOptions(c)}
	}
	raws, err := durable.Parallel(x.dctx, branches)
	if err == nil {
		for i, raw := range raws {
			results[i] = resultOf(raw, nil)
		}
		return
	}
	for i, c := range calls {
		entry, ok := engine.Recorded(x.dctx, c.Name)
		if !ok || entry.State != engine.StateCompleted && entry.State != engine.StateFailed {
			results[i] = pyworker.Result{Pending: true}
			continue
		}
		raw, err := durable.Step(x.dctx, c.Name, x.stepFn(i, -1, c), stepOptions(c)...) // answered from the journal
		results[i] = resultOf(raw, err)
	}
}

// parallel answers ctx.parallel: a list of the branches' results, or the first failure.
func (x *execution) parallel(i int, c pyworker.Call) pyworker.Result {
	branches := make([]durable.Branch[json.RawMessage], len(c.Branches))
	for j, b := range c.Branches {
		branches[j] = durable.Branch[json.RawMessage]{Name: b.Name, Fn: x.stepFn(i, j, pyworker.Call{Name: b.Name, Async: b.Async, Timeout: c.Timeout})}
	}
	raws, err := durable.Parallel(x.dctx, branches, stepOptions(pyworker.Call{Retry: c.Retry, Timeout: c.Timeout})...)
	if err != nil {
		return resultOf(nil, err)
	}
	items := make([]json.RawMessage, len(raws))
	for j, raw := range raws {
		items[j] = valueOf(raw)
	}
	list, err := json.Marshal(items)
	if err != nil {
		return errorResult("TypeError", err.Error())
	}
	return pyworker.Result{Value: list}
}

// startsThenWaits answers children and agent turns: every start of the turn first, in call
// order, so that the children and turns run at once, then every wait in call order.
func (x *execution) startsThenWaits(calls []pyworker.Call, results []pyworker.Result) {
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i], results[i] = x.start(c)
	}
	for i, c := range calls {
		if results[i].Error == nil && results[i].Value == nil {
			results[i] = x.wait(c, ids[i])
		}
	}
}

// start makes what c starts and returns its id; the result is set for a call that is only a
// start (or whose start failed), and left empty for a call that waits next.
func (x *execution) start(c pyworker.Call) (string, pyworker.Result) {
	switch c.Kind {
	case "start_workflow", "run_workflow":
		child, err := durable.StartWorkflow(x.dctx, c.Name, fileChild(c.WorkflowName), c.Input)
		if err != nil || c.Kind == "start_workflow" {
			return child.ID, resultOf(jsonString(child.ID), err)
		}
		return child.ID, pyworker.Result{}
	case "start_agent", "run_agent":
		id, err := durable.StartAgent(x.dctx, c.Name, agentRequest(c.Request))
		if err != nil || c.Kind == "start_agent" {
			return id, resultOf(jsonString(id), err)
		}
		return id, pyworker.Result{}
	case "send_event":
		return "", resultOf(nil, durable.SendEvent(x.dctx, c.Name, c.EventType, c.CorrelationID, c.Payload))
	}
	return "", pyworker.Result{}
}

// wait waits for what c waits for: a child's output or an agent's reply text. id is what
// the call started, for run_workflow and run_agent, which journal their waits as
// name + "/result" (as durable.RunWorkflow and durable.RunAgent do).
func (x *execution) wait(c pyworker.Call, id string) pyworker.Result {
	switch c.Kind {
	case "run_workflow", "wait_for_workflow":
		child := durable.ChildRunByID[json.RawMessage](c.Name+"/result", id)
		if c.Kind == "wait_for_workflow" {
			child = durable.ChildRunByID[json.RawMessage](c.Name, c.RunID)
		}
		out, err := durable.WaitForWorkflow(x.dctx, child)
		return resultOf(out, err)
	case "run_agent", "wait_for_agent":
		name := c.Name + "/result"
		if c.Kind == "wait_for_agent" {
			name, id = c.Name, c.TurnID
		}
		res, err := durable.WaitForAgent(x.dctx, name, id)
		return resultOf(jsonString(res.Text), err)
	}
	return null()
}

// stepFn is the function of a step of the turn (call, and branch of a ctx.parallel call, or
// -1): it has the worker run the Python function and returns its JSON result, or its
// exception as a typed error (its class name is the journal's errorType). A worker that dies
// during the call fails the attempt, as a crashed activity worker does in Temporal: the step's
// retry policy decides what comes next.
func (x *execution) stepFn(call, branch int, c pyworker.Call) func(context.Context) (json.RawMessage, error) {
	logger := x.logger
	return func(sctx context.Context) (json.RawMessage, error) {
		raw, failure, err := x.sess.CallStep(sctx, call, branch, durable.StepAttempt(sctx), c.Async)
		switch {
		case failure != nil:
			if failure.Traceback != "" {
				logger.Warn("python_step_failed", "step", c.Name, "attempt", durable.StepAttempt(sctx), "error_type", failure.Type,
					"traceback", textbound.Cut(failure.Traceback, textbound.LogValue))
			}
			return nil, durable.NewError(cmpOr(failure.Type, "Exception"), cmpOr(failure.Message, failure.Type), failure.NonRetryable)
		case err != nil:
			var exited *pyworker.WorkerExitedError
			if errors.As(err, &exited) {
				return nil, durable.NewError("WorkerExited", "the Python worker running the step exited: "+exited.Reason, false)
			}
			if errors.Is(err, context.DeadlineExceeded) && c.Timeout != nil {
				return nil, fmt.Errorf("step %q overran its %s timeout: %w", c.Name, seconds(c.Timeout), err)
			}
			return nil, err
		}
		return raw, nil
	}
}

// stepOptions converts a step call's retry, timeout and batched.
func stepOptions(c pyworker.Call) []durable.StepOption {
	var opts []durable.StepOption
	if c.Batched {
		opts = append(opts, durable.Batched())
	}
	if r := c.Retry; r != nil {
		p := durable.RetryPolicy{InitialBackoff: seconds(r.InitialBackoff), MaxBackoff: seconds(r.MaxBackoff), NonRetryableErrorTypes: r.NonRetryableErrorTypes}
		if r.MaxAttempts != nil {
			p.MaxAttempts = *r.MaxAttempts
		}
		if r.Multiplier != nil {
			p.Multiplier = *r.Multiplier
		}
		opts = append(opts, durable.WithRetry(p))
	}
	if c.Timeout != nil && *c.Timeout > 0 {
		opts = append(opts, durable.WithTimeout(seconds(c.Timeout)))
	}
	return opts
}

// agentRequest converts an agent call's request.
func agentRequest(r *pyworker.AgentDecl) durable.AgentRequest {
	if r == nil {
		return durable.AgentRequest{}
	}
	return durable.AgentRequest{Prompt: r.Prompt, Agent: r.Agent, ThreadKey: r.ThreadKey, Instructions: r.Instructions,
		Model: r.Model, Temperature: r.Temperature, MaxTokens: r.MaxTokens}
}

// fileChild is the handle of a child workflow a file names: JSON in, JSON out.
func fileChild(workflow string) *durable.WorkflowDef[json.RawMessage, json.RawMessage] {
	return durable.WorkflowByName[json.RawMessage, json.RawMessage](workflow)
}

// resultOf is a call's result: its JSON value, or its error as the exception the handler gets.
func resultOf(raw json.RawMessage, err error) pyworker.Result {
	if err == nil {
		return pyworker.Result{Value: valueOf(raw)}
	}
	var stepErr *durable.StepError
	var childErr *durable.ChildError
	var agentErr *durable.AgentError
	switch {
	case errors.As(err, &stepErr):
		return pyworker.Result{Error: &pyworker.CallError{Kind: "step_failed", Step: stepErr.Step, Attempts: stepErr.Attempts,
			Message: stepErr.Message, ErrorType: stepErr.Type}}
	case errors.As(err, &childErr):
		return pyworker.Result{Error: &pyworker.CallError{Kind: "child_failed", Child: childErr.Child, Reason: childErr.Reason, Message: childErr.Message}}
	case errors.As(err, &agentErr):
		return pyworker.Result{Error: &pyworker.CallError{Kind: "agent_failed", Turn: agentErr.Turn, Reason: agentErr.Reason, Message: agentErr.Message}}
	}
	return errorResult("ValueError", err.Error())
}

func errorResult(typ, message string) pyworker.Result {
	return pyworker.Result{Error: &pyworker.CallError{Kind: "error", Type: typ, Message: message}}
}

// valueOf is raw, or JSON null for nothing.
func valueOf(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

func null() pyworker.Result { return pyworker.Result{Value: json.RawMessage("null")} }

func jsonString(s string) json.RawMessage {
	raw, _ := json.Marshal(s)
	return raw
}
