package workflowfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	starlarktime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// ctxValue is the handler's ctx: the durable primitives under the product's names, bound to one
// execution of one run. Each method calls the durable primitive of the same meaning, so a file
// workflow has a Go workflow's journal, guarantees and status.
type ctxValue struct {
	dctx    *durable.Context
	wf      *Workflow
	methods map[string]*starlark.Builtin
}

var _ starlark.HasAttrs = (*ctxValue)(nil)

// ctxMethod is one method of ctx.
type ctxMethod func(c *ctxValue, thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

// ctxMethods are ctx's methods by name; docs/workflow-files.md documents each.
var ctxMethods = map[string]ctxMethod{
	"step":              (*ctxValue).step,
	"parallel":          (*ctxValue).parallel,
	"sleep":             (*ctxValue).sleep,
	"sleep_until":       (*ctxValue).sleepUntil,
	"wait_for_event":    (*ctxValue).waitForEvent,
	"send_event":        (*ctxValue).sendEvent,
	"start_workflow":    (*ctxValue).startWorkflow,
	"wait_for_workflow": (*ctxValue).waitForWorkflow,
	"run_workflow":      (*ctxValue).runWorkflow,
	"start_agent":       (*ctxValue).startAgent,
	"wait_for_agent":    (*ctxValue).waitForAgent,
	"run_agent":         (*ctxValue).runAgent,
	"agent_turn":        (*ctxValue).agentTurn,
	"get_version":       (*ctxValue).getVersion,
	"now":               (*ctxValue).now,
	"log":               (*ctxValue).log,
}

func newCtx(dctx *durable.Context, wf *Workflow) *ctxValue {
	c := &ctxValue{dctx: dctx, wf: wf, methods: make(map[string]*starlark.Builtin, len(ctxMethods))}
	for name, m := range ctxMethods {
		c.methods[name] = starlark.NewBuiltin("ctx."+name, func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if name != "now" && name != "log" {
				if scope, inStep := thread.Local(stepScopeKey).(*stepScope); inStep {
					return nil, &misuseError{msg: fmt.Sprintf("%s cannot be called inside the function of step %q: a step function only does its side effect; call durable primitives from the handler", b.Name(), scope.step)}
				}
			}
			return m(c, thread, b, args, kwargs)
		})
	}
	return c
}

func (c *ctxValue) String() string        { return "<ctx of run " + durable.Info(c.dctx).Name + ">" }
func (c *ctxValue) Type() string          { return "ctx" }
func (c *ctxValue) Freeze()               {}
func (c *ctxValue) Truth() starlark.Bool  { return true }
func (c *ctxValue) Hash() (uint32, error) { return 0, errors.New("unhashable: ctx") }

func (c *ctxValue) Attr(name string) (starlark.Value, error) {
	if m, ok := c.methods[name]; ok {
		return m, nil
	}
	if name == "run" {
		info := durable.Info(c.dctx)
		return starlarkstruct.FromStringDict(starlark.String("run"), starlark.StringDict{
			"namespace":  starlark.String(info.Namespace),
			"name":       starlark.String(info.Name),
			"uid":        starlark.String(info.UID),
			"workflow":   starlark.String(info.WorkflowName),
			"revision":   starlark.String(c.wf.revision),
			"started_at": starlarktime.Time(info.StartedAt),
		}), nil
	}
	return nil, nil
}

func (c *ctxValue) AttrNames() []string {
	names := []string{"run"}
	for name := range c.methods {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// logger is the run's replay-quiet logger.
func (c *ctxValue) logger() *slog.Logger { return durable.Logger(c.dctx) }

// step is ctx.step(name, fn, retry=None, timeout=None, batched=False): fn() runs once, on a
// thread of its own, and its JSON result is recorded; on replay the recorded result comes
// back. batched=True groups the step's record with the steps after it (durable.Batched): much
// faster for many small idempotent steps, which may run again after a crash.
func (c *ctxValue) step(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name           string
		fn             starlark.Callable
		retry, timeout starlark.Value = starlark.None, starlark.None
		batched        bool
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "fn", &fn, "retry?", &retry, "timeout?", &timeout, "batched?", &batched); err != nil {
		return nil, err
	}
	opts, err := stepOptions(fmt.Sprintf("%s(%q)", b.Name(), name), retry, timeout, batched)
	if err != nil {
		return nil, err
	}
	run := c.stepRunner()
	raw, err := durable.Step(c.dctx, name, func(sctx context.Context) (json.RawMessage, error) {
		return run(sctx, name, fn)
	}, opts...)
	if err != nil {
		return nil, err
	}
	return fromJSON(raw)
}

// parallel is ctx.parallel(branches, retry=None, timeout=None): branches is a sequence of
// (name, fn) pairs; every fn() runs at once, each on a thread of its own, and is recorded as
// ctx.step(name, fn) would be (durable.Parallel). It returns the results in the branches'
// order. The branches share what their functions use from the handler across threads, so
// those values are frozen first: the handler cannot change them afterwards.
func (c *ctxValue) parallel(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		seq            starlark.Iterable
		retry, timeout starlark.Value = starlark.None, starlark.None
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "branches", &seq, "retry?", &retry, "timeout?", &timeout); err != nil {
		return nil, err
	}
	opts, err := stepOptions(b.Name(), retry, timeout, false)
	if err != nil {
		return nil, err
	}
	branches, err := c.branchesOf(b, seq)
	if err != nil {
		return nil, err
	}
	raws, err := durable.Parallel(c.dctx, branches, opts...)
	if err != nil {
		return nil, err
	}
	results := make([]starlark.Value, len(raws))
	for i, raw := range raws {
		if results[i], err = fromJSON(raw); err != nil {
			return nil, err
		}
	}
	return starlark.NewList(results), nil
}

// branchesOf reads ctx.parallel's (name, fn) pairs into durable branches that run each fn
// as a step function, after freezing it with what it captured.
func (c *ctxValue) branchesOf(b *starlark.Builtin, seq starlark.Iterable) ([]durable.Branch[json.RawMessage], error) {
	run := c.stepRunner()
	var branches []durable.Branch[json.RawMessage]
	iter := seq.Iterate()
	defer iter.Done()
	var pair starlark.Value
	limit := c.wf.cfg.MaxParallelBranches
	for i := 0; iter.Next(&pair); i++ {
		if limit > 0 && i == limit {
			return nil, fmt.Errorf("%s: more than %d branches; each runs on a thread of its own, and this manager allows at most %d in one call: split the work into several calls, or batch items into fewer branches", b.Name(), limit, limit)
		}
		var (
			name string
			fn   starlark.Callable
		)
		t, ok := pair.(starlark.Indexable)
		if _, isString := pair.(starlark.String); !ok || isString || t.Len() != 2 {
			return nil, fmt.Errorf("%s: branches[%d] must be a (name, function) pair such as (\"fetch\", fetch) (for a dict, pass its .items()), got %s", b.Name(), i, pair.Type())
		}
		if err := starlark.UnpackPositionalArgs(fmt.Sprintf("%s: branches[%d]", b.Name(), i), starlark.Tuple{t.Index(0), t.Index(1)}, nil, 2, &name, &fn); err != nil {
			return nil, err
		}
		fn.Freeze()
		branches = append(branches, durable.Branch[json.RawMessage]{Name: name, Fn: func(sctx context.Context) (json.RawMessage, error) {
			return run(sctx, name, fn)
		}})
	}
	return branches, nil
}

// stepRunner returns what runs a step function of this run: on a thread of its own, with the
// run's logger and recorded time, which it reads now, on the handler's goroutine (branches of
// ctx.parallel run elsewhere).
func (c *ctxValue) stepRunner() func(sctx context.Context, name string, fn starlark.Callable) (json.RawMessage, error) {
	logger, now := c.logger(), durable.Now(c.dctx)
	return func(sctx context.Context, name string, fn starlark.Callable) (json.RawMessage, error) {
		return c.wf.callStep(sctx, logger, now, name, fn)
	}
}

// stepOptions converts the retry, timeout and batched arguments of call (ctx.step or
// ctx.parallel) into step options.
func stepOptions(call string, retry, timeout starlark.Value, batched bool) ([]durable.StepOption, error) {
	var opts []durable.StepOption
	if batched {
		opts = append(opts, durable.Batched())
	}
	if retry != starlark.None {
		policy, err := retryPolicyOf(retry)
		if err != nil {
			return nil, fmt.Errorf("%s: retry: %w", call, err)
		}
		opts = append(opts, durable.WithRetry(policy))
	}
	if timeout != starlark.None {
		d, err := toDuration(timeout)
		if err != nil {
			return nil, fmt.Errorf("%s: timeout: %w", call, err)
		}
		opts = append(opts, durable.WithTimeout(d))
	}
	return opts, nil
}

// sleep is ctx.sleep(name, duration).
func (c *ctxValue) sleep(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name string
		d    starlark.Value
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "duration", &d); err != nil {
		return nil, err
	}
	dur, err := toDuration(d)
	if err != nil {
		return nil, fmt.Errorf("%s(%q): %w", b.Name(), name, err)
	}
	durable.Sleep(c.dctx, name, dur)
	return starlark.None, nil
}

// sleepUntil is ctx.sleep_until(name, when).
func (c *ctxValue) sleepUntil(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name string
		when starlark.Value
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "when", &when); err != nil {
		return nil, err
	}
	t, err := toTime(when)
	if err != nil {
		return nil, fmt.Errorf("%s(%q): %w", b.Name(), name, err)
	}
	durable.SleepUntil(c.dctx, name, t)
	return starlark.None, nil
}

// waitForEvent is ctx.wait_for_event(name, event_type, correlation_id, timeout=None): the
// event's payload, or None once the timeout passed.
func (c *ctxValue) waitForEvent(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name, eventType, correlationID string
		timeout                        starlark.Value = starlark.None
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "event_type", &eventType, "correlation_id", &correlationID, "timeout?", &timeout); err != nil {
		return nil, err
	}
	var opts []durable.WaitOption
	if timeout != starlark.None {
		d, err := toDuration(timeout)
		if err != nil {
			return nil, fmt.Errorf("%s(%q): timeout: %w", b.Name(), name, err)
		}
		opts = append(opts, durable.WithWaitTimeout(d))
	}
	payload, err := durable.WaitForEvent[json.RawMessage](c.dctx, name, eventType, correlationID, opts...)
	if errors.Is(err, durable.ErrEventTimeout) {
		return starlark.None, nil
	}
	if err != nil {
		return nil, err
	}
	return fromJSON(payload)
}

// sendEvent is ctx.send_event(name, event_type, correlation_id="", payload=None): delivers an
// event once for the run, however often the handler replays.
func (c *ctxValue) sendEvent(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name, eventType, correlationID string
		payload                        starlark.Value = starlark.None
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "event_type", &eventType, "correlation_id?", &correlationID, "payload?", &payload); err != nil {
		return nil, err
	}
	raw, err := toJSON(payload, c.wf.cfg.maxValueBytes())
	if err != nil {
		return nil, fmt.Errorf("%s(%q): the payload must be JSON: its %w", b.Name(), name, err)
	}
	if err := durable.SendEvent(c.dctx, name, eventType, correlationID, raw); err != nil {
		return nil, err
	}
	return starlark.None, nil
}

// childArgs unpacks (name, workflow_name, input=None) and encodes the input.
func (c *ctxValue) childArgs(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (name, workflow string, input json.RawMessage, err error) {
	var in starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "workflow_name", &workflow, "input?", &in); err != nil {
		return "", "", nil, err
	}
	if input, err = toJSON(in, c.wf.cfg.maxValueBytes()); err != nil {
		return "", "", nil, fmt.Errorf("%s(%q): the child's input must be JSON: its %w", b.Name(), name, err)
	}
	return name, workflow, input, nil
}

// fileChild is the handle of a child workflow a file names: JSON in, JSON out.
func fileChild(workflow string) *durable.WorkflowDef[json.RawMessage, json.RawMessage] {
	return durable.WorkflowByName[json.RawMessage, json.RawMessage](workflow)
}

// startWorkflow is ctx.start_workflow(name, workflow_name, input=None): the child run's id.
func (c *ctxValue) startWorkflow(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	name, workflow, input, err := c.childArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	child, err := durable.StartWorkflow(c.dctx, name, fileChild(workflow), input)
	if err != nil {
		return nil, err
	}
	return starlark.String(child.ID), nil
}

// waitForWorkflow is ctx.wait_for_workflow(name, run_id): the child's output.
func (c *ctxValue) waitForWorkflow(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name, id string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "run_id", &id); err != nil {
		return nil, err
	}
	out, err := durable.WaitForWorkflow(c.dctx, durable.ChildRunByID[json.RawMessage](name, id))
	if err != nil {
		return nil, err
	}
	return fromJSON(out)
}

// runWorkflow is ctx.run_workflow(name, workflow_name, input=None): start and wait.
func (c *ctxValue) runWorkflow(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	name, workflow, input, err := c.childArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	out, err := durable.RunWorkflow(c.dctx, name, fileChild(workflow), input)
	if err != nil {
		return nil, err
	}
	return fromJSON(out)
}

// agentArgs unpacks (name, text, agent, thread_key, instructions, model, temperature,
// max_tokens) into an agent request.
func agentArgs(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (string, durable.AgentRequest, error) {
	var (
		name        string
		req         durable.AgentRequest
		temperature starlark.Value = starlark.None
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "text", &req.Prompt, "agent?", &req.Agent,
		"thread_key?", &req.ThreadKey, "instructions?", &req.Instructions, "model?", &req.Model,
		"temperature?", &temperature, "max_tokens?", &req.MaxTokens); err != nil {
		return "", req, err
	}
	if temperature != starlark.None {
		t, ok := starlark.AsFloat(temperature)
		if !ok {
			return "", req, fmt.Errorf("%s(%q): temperature must be a number, got %s", b.Name(), name, temperature.Type())
		}
		req.Temperature = &t
	}
	return name, req, nil
}

// startAgent is ctx.start_agent(name, text=..., ...): the agent turn's id.
func (c *ctxValue) startAgent(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	name, req, err := agentArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	id, err := durable.StartAgent(c.dctx, name, req)
	if err != nil {
		return nil, err
	}
	return starlark.String(id), nil
}

// waitForAgent is ctx.wait_for_agent(name, turn_id): the agent's reply text.
func (c *ctxValue) waitForAgent(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name, id string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "turn_id", &id); err != nil {
		return nil, err
	}
	res, err := durable.WaitForAgent(c.dctx, name, id)
	if err != nil {
		return nil, err
	}
	return starlark.String(res.Text), nil
}

// runAgent is ctx.run_agent(name, text=..., ...): start a turn and wait for its reply text.
func (c *ctxValue) runAgent(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	name, req, err := agentArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	res, err := durable.RunAgent(c.dctx, name, req)
	if err != nil {
		return nil, err
	}
	return starlark.String(res.Text), nil
}

// agentTurn is ctx.agent_turn(text, thread_key=None, name=None): one turn of the default
// agent, its reply text. Without a name it is named by its order among the run's unnamed turns
// ("agent-turn-1", ...), as durable.AgentTurn names them.
func (c *ctxValue) agentTurn(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var text, threadKey, name string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "text", &text, "thread_key?", &threadKey, "name?", &name); err != nil {
		return nil, err
	}
	var opts []durable.AgentTurnOption
	if name != "" {
		opts = append(opts, durable.WithTurnName(name))
	}
	reply, err := durable.AgentTurn(c.dctx, text, threadKey, opts...)
	if err != nil {
		return nil, err
	}
	return starlark.String(reply), nil
}

// getVersion is ctx.get_version(change_id, min_supported, max_supported): the version of the
// change this run takes (durable.GetVersion); DEFAULT_VERSION for a run that went past the
// call on code without it.
func (c *ctxValue) getVersion(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		changeID                   string
		minSupported, maxSupported int
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "change_id", &changeID, "min_supported", &minSupported, "max_supported", &maxSupported); err != nil {
		return nil, err
	}
	return starlark.MakeInt(durable.GetVersion(c.dctx, changeID, minSupported, maxSupported)), nil
}

// now is ctx.now(): the run's recorded time, the same on every replay. Inside a step function
// it is the time the step started from.
func (c *ctxValue) now(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	if scope, inStep := thread.Local(stepScopeKey).(*stepScope); inStep {
		return starlarktime.Time(scope.now), nil
	}
	return starlarktime.Time(durable.Now(c.dctx)), nil
}

// log is ctx.log(message, **fields): one line in the manager's log, written once (not again
// on replay).
func (c *ctxValue) log(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var msg string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, nil, 1, &msg); err != nil {
		return nil, err
	}
	attrs := make([]any, 0, 2*len(kwargs))
	for _, kv := range kwargs {
		key := string(kv[0].(starlark.String))
		if s, ok := starlark.AsString(kv[1]); ok {
			attrs = append(attrs, key, textbound.Cut(s, textbound.LogValue))
		} else if raw, err := toJSON(kv[1], 4*textbound.LogValue); err == nil {
			attrs = append(attrs, key, textbound.JSON(raw, textbound.LogValue))
		} else {
			attrs = append(attrs, key, textbound.Cut(kv[1].String(), textbound.LogValue))
		}
	}
	c.logger().Info(textbound.Cut(msg, textbound.LogValue), attrs...)
	return starlark.None, nil
}

// retryValue is the value of RetryPolicy(...).
type retryValue struct{ policy durable.RetryPolicy }

func (r *retryValue) String() string {
	return fmt.Sprintf("RetryPolicy(max_attempts = %d)", r.policy.MaxAttempts)
}
func (r *retryValue) Type() string          { return "RetryPolicy" }
func (r *retryValue) Freeze()               {}
func (r *retryValue) Truth() starlark.Bool  { return true }
func (r *retryValue) Hash() (uint32, error) { return 0, errors.New("unhashable: RetryPolicy") }

// retryPolicyBuiltin implements RetryPolicy(max_attempts=3, initial_backoff="1s",
// multiplier=2.0, max_backoff="1m"); unset fields take the durable defaults.
func retryPolicyBuiltin(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		p                   durable.RetryPolicy
		initial, maxBackoff starlark.Value = starlark.None, starlark.None
		multiplier          starlark.Value = starlark.None
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "max_attempts?", &p.MaxAttempts, "initial_backoff?", &initial,
		"multiplier?", &multiplier, "max_backoff?", &maxBackoff); err != nil {
		return nil, err
	}
	var err error
	if initial != starlark.None {
		if p.InitialBackoff, err = toDuration(initial); err != nil {
			return nil, fmt.Errorf("%s: initial_backoff: %w", b.Name(), err)
		}
	}
	if maxBackoff != starlark.None {
		if p.MaxBackoff, err = toDuration(maxBackoff); err != nil {
			return nil, fmt.Errorf("%s: max_backoff: %w", b.Name(), err)
		}
	}
	if multiplier != starlark.None {
		m, ok := starlark.AsFloat(multiplier)
		if !ok {
			return nil, fmt.Errorf("%s: multiplier must be a number", b.Name())
		}
		p.Multiplier = m
	}
	return &retryValue{policy: p}, nil
}

// retryPolicyOf accepts RetryPolicy(...) or a number of attempts.
func retryPolicyOf(v starlark.Value) (durable.RetryPolicy, error) {
	switch x := v.(type) {
	case *retryValue:
		return x.policy, nil
	case starlark.Int:
		n, ok := x.Int64()
		if !ok || n < 1 {
			return durable.RetryPolicy{}, fmt.Errorf("a number of attempts must be at least 1, got %s", x)
		}
		return durable.RetryPolicy{MaxAttempts: int(n)}, nil
	}
	return durable.RetryPolicy{}, fmt.Errorf("want RetryPolicy(...) or a number of attempts, got %s", v.Type())
}
