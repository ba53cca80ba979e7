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
	Batched bool   `json:"batched,omitempty"`
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
	// Noise lengthens each failure's message by this many characters.
	Noise int `json:"noise,omitempty"`
	// Typed makes each failure a durable.NewError of type "Flaky".
	Typed bool `json:"typed,omitempty"`
	// BlockAt makes that call wait for the key's gate before it returns.
	BlockAt int `json:"block_at,omitempty"`
}

// blobsInput asks test_blobs for steps results of bytes bytes each; with sleep_ms it sleeps
// after the first step, so that the rest of the run replays the results stored so far.
type blobsInput struct {
	Key     string `json:"key"`
	Bytes   int    `json:"bytes"`
	Steps   int    `json:"steps"`
	SleepMs int    `json:"sleep_ms,omitempty"`
	// Pad makes the input as large as a spec needs; the workflow ignores it.
	Pad string `json:"pad,omitempty"`
}

// blob is the result of test_blobs' step i: bytes bytes of a letter that depends on i.
func blob(i, bytes int) string { return strings.Repeat(string(rune('a'+i%26)), bytes) }

// testWorkflows are registered next to the built-in ones for the specs.
func testWorkflows() []durable.Workflow {
	return append(primitiveWorkflows(), []durable.Workflow{
		durable.Define("test_steps", func(ctx *durable.Context, in stepsInput) ([]string, error) {
			var out []string
			var opts []durable.StepOption
			if in.Batched {
				opts = append(opts, durable.Batched())
			}
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
				}, opts...)
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
		durable.Define("test_agent", func(ctx *durable.Context, in struct {
			Prompt string `json:"prompt"`
		}) (string, error) {
			return durable.AgentTurn(ctx, in.Prompt, "")
		}),
		durable.Define("test_retry", func(ctx *durable.Context, in retryInput) (int, error) {
			return durable.Step(ctx, "flaky", func(c context.Context) (int, error) {
				n := countCall(in.Key, "flaky")
				if n == in.BlockAt {
					select {
					case <-gate(in.Key):
					case <-c.Done():
						return 0, c.Err()
					}
				}
				if n <= in.FailTimes {
					err := fmt.Errorf("flaky failure %d%s", n, strings.Repeat("!", in.Noise))
					if in.Typed {
						return 0, durable.NewError("Flaky", err.Error(), in.NonRetryable)
					}
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
		durable.Define("test_blobs", func(ctx *durable.Context, in blobsInput) (int, error) {
			total := 0
			for i := 1; i <= in.Steps; i++ {
				name := fmt.Sprintf("blob-%d", i)
				s, err := durable.Step(ctx, name, func(context.Context) (string, error) {
					countCall(in.Key, name)
					return blob(i, in.Bytes), nil
				})
				if err != nil {
					return 0, err
				}
				if s != blob(i, in.Bytes) {
					return 0, fmt.Errorf("step %s came back with %d bytes that are not its result", name, len(s))
				}
				total += len(s)
				if i == 1 && in.SleepMs > 0 {
					durable.Sleep(ctx, "pause", time.Duration(in.SleepMs)*time.Millisecond)
				}
			}
			return total, nil
		}),
		durable.Define("test_owned", func(ctx *durable.Context, _ struct{}) (json.RawMessage, error) {
			// Enough batched steps for a sealed segment, a result stored out of line, a child.
			for i := range 40 {
				if _, err := durable.Step(ctx, fmt.Sprintf("cheap-%d", i), func(context.Context) (int, error) { return i, nil }, durable.Batched()); err != nil {
					return nil, err
				}
			}
			if _, err := durable.Step(ctx, "large", func(context.Context) (string, error) { return strings.Repeat("x", 8<<10), nil }); err != nil {
				return nil, err
			}
			return durable.RunWorkflow(ctx, "child", durable.WorkflowByName[map[string]string, json.RawMessage]("hello"), map[string]string{"name": "child"})
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
			out, err := durable.RunWorkflow(ctx, "child", durable.WorkflowByName[json.RawMessage, json.RawMessage](in.Workflow), in.Input)
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
		durable.Define("test_send_event", func(ctx *durable.Context, in struct {
			Key  string `json:"key"`
			Type string `json:"type"`
		}) (string, error) {
			if err := durable.SendEvent(ctx, "signal", in.Type, in.Key, map[string]string{"from": "sender"}); err != nil {
				return "", err
			}
			return "sent", nil
		}),
		durable.Define("test_misuse", func(ctx *durable.Context, _ struct{}) (string, error) {
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				durable.Sleep(ctx, "nap", time.Hour) // off the handler's goroutine: fails the run
			}()
			wg.Wait()
			return "finished without sleeping", nil
		}),
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
	}...)
}
