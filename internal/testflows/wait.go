package testflows

import (
	"context"
	"fmt"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

// WaitName is the workflow of I/O-bound steps (the benchmark's sharding figure of steps that
// wait).
const WaitName = "bench-wait"

// WaitInput is the input of bench-wait.
type WaitInput struct {
	// Steps is how many steps the run executes.
	Steps int `json:"steps"`
	// WaitMillis is how long each step waits inside its function.
	WaitMillis int64 `json:"waitMillis"`
}

// Wait executes input.steps steps that each wait input.waitMillis inside the step's function,
// as a step that calls a slow service does: the step holds one of its replica's executions
// (--max-concurrent-reconciles) for that long while using no CPU, so that the throughput of
// replicas is bounded by their executions, not by the machine's cores. The wait is a timer in
// the step body, not a durable sleep, which would end the execution and free it.
var Wait = durable.Define(WaitName, func(ctx *durable.Context, in WaitInput) (WaitInput, error) {
	return in, runSteps(ctx, in.Steps, func(c context.Context) error {
		return WaitFor(c, time.Duration(in.WaitMillis)*time.Millisecond)
	})
}, durable.WithDescription("Benchmark: executes input.steps steps that each wait input.waitMillis inside the step, as on I/O."))

// WaitFor waits d, or until c ends (then it returns c's error, and the step runs again).
func WaitFor(c context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-c.Done():
		return fmt.Errorf("the step's wait of %s was cut short: %w", d, c.Err())
	}
}
