package durable_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// panicLog collects the Panicked hook's calls.
type panicLog struct {
	mu    sync.Mutex
	where []string
	value []any
	stack []string
}

func (p *panicLog) hook(where string, value any, stack []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.where = append(p.where, where)
	p.value = append(p.value, value)
	p.stack = append(p.stack, string(stack))
}

func TestPanicInStepFunctionFailsTheAttempt(t *testing.T) {
	t.Run("retried per the policy", func(t *testing.T) {
		var panics panicLog
		wf := durable.Define("explosive", func(ctx *durable.Context, _ struct{}) (string, error) {
			return durable.Step(ctx, "explode", func(ctx context.Context) (string, error) {
				if durable.StepAttempt(ctx) == 1 {
					panic("kaboom")
				}
				return "survived", nil
			}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Second}))
		})
		h := newHarness(t, wf)
		h.hooks.Panicked = panics.hook

		mustSuspend(t, h.execute(), "explode", epoch.Add(time.Second))
		if e := h.entry("explode"); e.State != engine.StateRetrying || !strings.Contains(e.Error, "panicked") || !strings.Contains(e.Error, "kaboom") {
			t.Fatalf("entry = %+v; want Retrying with an error naming the panic", e)
		}
		if len(panics.where) != 1 || panics.where[0] != `step "explode"` || panics.value[0] != "kaboom" {
			t.Fatalf("Panicked hook calls: where %q value %v; want one for step \"explode\" with kaboom", panics.where, panics.value)
		}
		if !strings.Contains(panics.stack[0], "TestPanicInStepFunctionFailsTheAttempt") {
			t.Errorf("the reported stack does not lead to the panicking function:\n%s", panics.stack[0])
		}
		h.clock.Advance(time.Second)
		mustComplete(t, h.execute(), `"survived"`)
	})

	t.Run("with MaxAttempts 1 the run fails StepFailed", func(t *testing.T) {
		wf := durable.Define("explosive", func(ctx *durable.Context, _ struct{}) (string, error) {
			return durable.Step(ctx, "explode", func(context.Context) (string, error) {
				var m map[string]int
				m["x"] = 1 // a runtime error panics too
				return "", nil
			}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 1}))
		})
		h := newHarness(t, wf)
		f := mustFail(t, h.execute(), engine.ReasonStepFailed)
		if !strings.Contains(f.Message, "panicked") || !strings.Contains(f.Message, "assignment to entry in nil map") {
			t.Errorf("failure message = %q; want it to name the panic", f.Message)
		}
	})
}

func TestPanicInHandlerFailsTheRunWithReasonPanic(t *testing.T) {
	tests := []struct {
		name    string
		handler func()
		want    string
	}{
		{"panic with a string", func() { panic("handler bug") }, "handler bug"},
		{"panic with an error", func() { panic(errors.New("bad state")) }, "bad state"},
		{"nil pointer dereference", func() {
			var p *struct{ n int }
			_ = p.n
		}, "nil pointer dereference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var panics panicLog
			wf := durable.Define("buggy", func(ctx *durable.Context, _ struct{}) (string, error) {
				_, _ = durable.Step(ctx, "before", func(context.Context) (int, error) { return 1, nil })
				tt.handler()
				return "unreachable", nil
			})
			h := newHarness(t, wf)
			h.hooks.Panicked = panics.hook
			f := mustFail(t, h.execute(), engine.ReasonPanic)
			if !strings.Contains(f.Message, "handler panicked") || !strings.Contains(f.Message, tt.want) {
				t.Errorf("failure message = %q; want it to say the handler panicked with %q", f.Message, tt.want)
			}
			if len(panics.where) != 1 || panics.where[0] != "handler" {
				t.Fatalf("Panicked hook calls: %q; want one for the handler", panics.where)
			}
			if !strings.Contains(panics.stack[0], "TestPanicInHandlerFailsTheRunWithReasonPanic") {
				t.Errorf("the reported stack does not lead to the handler:\n%s", panics.stack[0])
			}
		})
	}
}

func TestHandlerCallingGoexitFailsWithHandlerExited(t *testing.T) {
	wf := durable.Define("quitter", func(ctx *durable.Context, _ struct{}) (string, error) {
		runtime.Goexit()
		return "unreachable", nil
	})
	f := mustFail(t, newHarness(t, wf).execute(), engine.ReasonHandlerExited)
	if !strings.Contains(f.Message, "runtime.Goexit") {
		t.Errorf("failure message = %q; want it to name runtime.Goexit", f.Message)
	}
}

func TestHandlerErrorFailsTheRunWithReasonHandlerError(t *testing.T) {
	wf := durable.Define("refuses", func(ctx *durable.Context, _ struct{}) (string, error) {
		return "", errors.New("nothing to do for this customer")
	})
	f := mustFail(t, newHarness(t, wf).execute(), engine.ReasonHandlerError)
	if f.Message != "nothing to do for this customer" {
		t.Errorf("failure message = %q", f.Message)
	}

	// A handler may choose the reason by returning a *engine.Failure.
	wf = durable.Define("chooses", func(ctx *durable.Context, _ struct{}) (string, error) {
		return "", &engine.Failure{Reason: "Rejected", Message: "the order was rejected"}
	})
	mustFail(t, newHarness(t, wf).execute(), "Rejected")
}

func TestChangedPrimitiveKindFailsNonDeterministic(t *testing.T) {
	// Version 1 of a workflow reached a step called "approval" and then went to sleep.
	v1 := durable.Define("approve", func(ctx *durable.Context, _ struct{}) (string, error) {
		_, _ = durable.Step(ctx, "approval", func(context.Context) (bool, error) { return true, nil })
		durable.Sleep(ctx, "cool-down", time.Hour)
		return "v1", nil
	})
	// Version 2, deployed while the run slept, calls "approval" a Sleep.
	v2 := durable.Define("approve", func(ctx *durable.Context, _ struct{}) (string, error) {
		durable.Sleep(ctx, "approval", time.Minute)
		return "v2", nil
	})
	h := newHarness(t, v1)
	mustSuspend(t, h.execute(), "cool-down", epoch.Add(time.Hour))
	h.wf = v2
	f := mustFail(t, h.execute(), engine.ReasonNonDeterministic)
	for _, want := range []string{`"approval"`, "Step", "Sleep"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("failure message = %q; want it to mention %s", f.Message, want)
		}
	}

	t.Run("within one execution", func(t *testing.T) {
		wf := durable.Define("confused", func(ctx *durable.Context, _ struct{}) (string, error) {
			durable.Sleep(ctx, "x", 0)
			_, _ = durable.Step(ctx, "x", func(context.Context) (int, error) { return 1, nil })
			return "unreachable", nil
		})
		mustFail(t, newHarness(t, wf).execute(), engine.ReasonNonDeterministic)
	})

	t.Run("empty name", func(t *testing.T) {
		wf := durable.Define("anonymous", func(ctx *durable.Context, _ struct{}) (string, error) {
			_, _ = durable.Step(ctx, "", func(context.Context) (int, error) { return 1, nil })
			return "unreachable", nil
		})
		mustFail(t, newHarness(t, wf).execute(), engine.ReasonNonDeterministic)
	})

	t.Run("changed result type", func(t *testing.T) {
		v1 := durable.Define("typed", func(ctx *durable.Context, _ struct{}) (string, error) {
			_, _ = durable.Step(ctx, "id", func(context.Context) (string, error) { return "abc", nil })
			durable.Sleep(ctx, "later", time.Hour)
			return "v1", nil
		})
		v2 := durable.Define("typed", func(ctx *durable.Context, _ struct{}) (string, error) {
			_, _ = durable.Step(ctx, "id", func(context.Context) (int, error) { return 1, nil })
			return "v2", nil
		})
		h := newHarness(t, v1)
		mustSuspend(t, h.execute(), "later", epoch.Add(time.Hour))
		h.wf = v2
		mustFail(t, h.execute(), engine.ReasonNonDeterministic)
	})
}

type greetInput struct {
	Name  string `json:"name"`
	Times int    `json:"times"`
}

func TestInvalidInputFailsWithReasonInvalidInput(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // part of the message; empty: the json decoder's own message
	}{
		{name: "wrong type", input: `{"name": 42}`},
		{name: "unknown field", input: `{"nmae": "ada"}`},
		{name: "not an object", input: `["ada"]`},
		{name: "truncated", input: `{"name": "ada"`},
		{name: "two values", input: `{"name": "ada"} {"name": "bob"}`, want: "unexpected data after the input's JSON value"},
		{name: "stray closing brace", input: `{"name": "ada"}}`, want: "unexpected data after the input's JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				dec := json.NewDecoder(bytes.NewReader([]byte(tt.input)))
				dec.DisallowUnknownFields()
				var in greetInput
				err := dec.Decode(&in)
				if err == nil {
					t.Fatalf("bad case: %s decodes", tt.input)
				}
				tt.want = err.Error()
			}
			called := false
			wf := durable.Define("greet", func(ctx *durable.Context, in greetInput) (string, error) {
				called = true
				return "hello " + in.Name, nil
			})
			h := newHarness(t, wf)
			h.input = []byte(tt.input)
			f := mustFail(t, h.execute(), engine.ReasonInvalidInput)
			if !strings.Contains(f.Message, tt.want) {
				t.Errorf("failure message = %q; want it to contain %q", f.Message, tt.want)
			}
			if called {
				t.Error("the handler ran with an input that does not decode")
			}
		})
	}
}

func TestAbsentInputDecodesToTheZeroValue(t *testing.T) {
	for _, input := range []string{"", "  \n", "null", "{}"} {
		t.Run(fmt.Sprintf("input %q", input), func(t *testing.T) {
			wf := durable.Define("greet", func(ctx *durable.Context, in greetInput) (greetInput, error) {
				return in, nil
			})
			h := newHarness(t, wf)
			if input != "" {
				h.input = []byte(input)
			}
			mustComplete(t, h.execute(), `{"name":"","times":0}`)
		})
	}
}
