package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

// calls counts how often each step function ran, keyed by "key/step", so specs can prove that
// completed steps never run again.
var calls = struct {
	sync.Mutex
	n     map[string]int
	gates map[string]chan struct{}
}{n: map[string]int{}, gates: map[string]chan struct{}{}}

func countCall(key, step string) int {
	calls.Lock()
	defer calls.Unlock()
	calls.n[key+"/"+step]++
	return calls.n[key+"/"+step]
}

func callCount(key, step string) int {
	calls.Lock()
	defer calls.Unlock()
	return calls.n[key+"/"+step]
}

// gate returns the channel a blocking step of key waits on; closing it releases the step.
func gate(key string) chan struct{} {
	calls.Lock()
	defer calls.Unlock()
	if calls.gates[key] == nil {
		calls.gates[key] = make(chan struct{})
	}
	return calls.gates[key]
}

type stepsInput struct {
	Key     string `json:"key"`
	Steps   int    `json:"steps"`
	BlockAt int    `json:"block_at"`
}

type sleepInput struct {
	Key    string `json:"key"`
	Millis int    `json:"millis"`
}

type retryInput struct {
	Key          string `json:"key"`
	FailTimes    int    `json:"fail_times"`
	BackoffMs    int    `json:"backoff_ms"`
	MaxAttempts  int    `json:"max_attempts"`
	NonRetryable bool   `json:"non_retryable"`
}

type sizeInput struct {
	Bytes int `json:"bytes"`
	Steps int `json:"steps"`
}

// testWorkflows are registered next to the built-in ones for the specs.
func testWorkflows() []durable.Workflow {
	return []durable.Workflow{
		durable.Define("test_steps", func(ctx *durable.Context, in stepsInput) ([]string, error) {
			var out []string
			for i := 1; i <= in.Steps; i++ {
				name := fmt.Sprintf("step-%d", i)
				v, err := durable.Step(ctx, name, func(c context.Context) (string, error) {
					countCall(in.Key, name)
					if i == in.BlockAt {
						select {
						case <-gate(in.Key):
						case <-c.Done():
							return "", c.Err()
						}
					}
					return name + "-done", nil
				})
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			return out, nil
		}),
		durable.Define("test_sleep", func(ctx *durable.Context, in sleepInput) (string, error) {
			durable.Sleep(ctx, "nap", time.Duration(in.Millis)*time.Millisecond)
			return durable.Step(ctx, "after", func(context.Context) (string, error) {
				countCall(in.Key, "after")
				return "awake", nil
			})
		}),
		durable.Define("test_retry", func(ctx *durable.Context, in retryInput) (int, error) {
			return durable.Step(ctx, "flaky", func(c context.Context) (int, error) {
				n := countCall(in.Key, "flaky")
				if n <= in.FailTimes {
					err := fmt.Errorf("flaky failure %d", n)
					if in.NonRetryable {
						return 0, durable.NonRetryable(err)
					}
					return 0, err
				}
				return durable.StepAttempt(c), nil
			}, durable.WithRetry(durable.RetryPolicy{
				MaxAttempts: in.MaxAttempts, InitialBackoff: time.Duration(in.BackoffMs) * time.Millisecond,
			}))
		}),
		durable.Define("test_step_timeout", func(ctx *durable.Context, _ struct{}) (string, error) {
			return durable.Step(ctx, "hang", func(c context.Context) (string, error) {
				<-c.Done()
				return "", c.Err()
			}, durable.WithTimeout(200*time.Millisecond), durable.WithRetry(durable.RetryPolicy{MaxAttempts: 1}))
		}),
		durable.Define("test_panic", func(ctx *durable.Context, in struct {
			Where string `json:"where"`
		}) (string, error) {
			if in.Where == "handler" {
				panic("boom in the handler")
			}
			return durable.Step(ctx, "explode", func(context.Context) (string, error) {
				panic("boom in a step")
			}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 1}))
		}),
		durable.Define("test_nondeterministic", func(ctx *durable.Context, _ struct{}) (string, error) {
			if _, err := durable.Step(ctx, "x", func(context.Context) (int, error) { return 1, nil }); err != nil {
				return "", err
			}
			durable.Sleep(ctx, "x", time.Second)
			return "unreachable", nil
		}),
		durable.Define("test_size", func(ctx *durable.Context, in sizeInput) (int, error) {
			total := 0
			for i := 1; i <= in.Steps; i++ {
				s, err := durable.Step(ctx, fmt.Sprintf("blob-%d", i), func(context.Context) (string, error) {
					return strings.Repeat("x", in.Bytes), nil
				})
				if err != nil {
					return 0, err
				}
				total += len(s)
			}
			return total, nil
		}),
		durable.Define("test_event_then_sleep", func(ctx *durable.Context, in struct {
			Key string `json:"key"`
		}) (map[string]any, error) {
			payload, err := durable.WaitForEvent[map[string]any](ctx, "signal", "test.signal", in.Key)
			if err != nil {
				return nil, err
			}
			durable.Sleep(ctx, "linger", 1500*time.Millisecond)
			return payload, nil
		}),
		durable.Define("test_parent", func(ctx *durable.Context, in struct {
			Workflow string          `json:"workflow"`
			Input    json.RawMessage `json:"input"`
			Handle   bool            `json:"handle"`
		}) (json.RawMessage, error) {
			out, err := durable.RunWorkflow[json.RawMessage](ctx, "child", in.Workflow, in.Input)
			var childErr *durable.ChildError
			if in.Handle && errors.As(err, &childErr) {
				return json.Marshal("handled: " + childErr.Reason)
			}
			return out, err
		}),
		durable.Define("test_declared", func(ctx *durable.Context, in struct {
			Name string `json:"name"`
		}) (string, error) {
			return in.Name, nil
		}, durable.WithSchedule(durable.ScheduleSpec{Cron: "0 3 * * *", TimeZone: "Europe/Berlin",
			Input: map[string]string{"name": "Declared"}, ConcurrencyPolicy: "Forbid"})),
		durable.Define("test_slow", func(ctx *durable.Context, in sleepInput) (string, error) {
			return durable.Step(ctx, "slow", func(c context.Context) (string, error) {
				select {
				case <-time.After(time.Duration(in.Millis) * time.Millisecond):
					return "slow done", nil
				case <-c.Done():
					return "", errors.New("interrupted")
				}
			})
		}),
	}
}
