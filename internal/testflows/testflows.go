// Package testflows holds the workflows the benchmark (bench/) and the crash test (hack/chaos/)
// run in the real manager, through hack/testmanager: no-op steps to measure the engine's cost
// per step, CPU-bound steps and steps that wait on I/O to measure how executions spread over
// sharded replicas, sleeps to measure timer lateness and memory, and a ledger workflow whose
// every step execution appends a line to a file outside the cluster, so the crash test can prove that no
// completed step ran again. bench-noop and the ledger workflow have twins written as workflow
// files (NoopFile in Starlark; NoopPy and LedgerPy in Python), which the benchmark and the crash
// test write into the manager's --workflow-dirs.
package testflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

// Names of the workflows, as runs refer to them in spec.workflowName.
const (
	NoopName    = "bench-noop"
	SleepName   = "bench-sleep"
	BlobsName   = "bench-blobs"
	WebhookName = "bench-webhook"
	LedgerName  = "chaos-ledger"
	// NoopFileName is bench-noop written as a workflow file (NoopFile).
	NoopFileName = "bench-noop-file"
)

// NoopFile is bench-noop as a Starlark workflow file, for the benchmark's figure of what a
// step costs in a file against Go: the same input, step names, results and output. The
// benchmark writes it into a directory it passes to the manager as --workflow-dirs.
const NoopFile = `
WORKFLOW_NAME = "bench-noop-file"

def step_name(i):
    # "s-%04d" % i, as StepName names the steps of bench-noop (Starlark has no widths).
    digits = str(i)
    return "s-" + "0" * max(0, 4 - len(digits)) + digits

def handler(inp, ctx):
    batched = inp.get("batched", False)
    for i in range(inp["steps"]):
        ctx.step(step_name(i), lambda: None, batched = batched)
    return {"steps": inp["steps"]}
`

// LedgerEnv names the environment variable that gives the ledger file's path to the manager.
const LedgerEnv = "CENTAUR_CHAOS_LEDGER"

// All returns the workflows, with the ledger workflow appending to the file at ledgerPath
// (empty: its steps fail, since they have nowhere to record themselves).
func All(ledgerPath string) []durable.Workflow {
	return []durable.Workflow{Noop, Sleep, Blobs, Webhook, Burn, Wait, NewLedgerWorkflow(ledgerPath)}
}

// StepName names step i of the bench and chaos workflows.
func StepName(i int) string { return fmt.Sprintf("s-%04d", i) }

// NoopInput is the input of bench-noop.
type NoopInput struct {
	// Steps is how many no-op steps the run executes.
	Steps int `json:"steps"`
	// Batched makes them batched steps (durable.Batched), recorded together.
	Batched bool `json:"batched,omitempty"`
}

// NoopOutput is the output of bench-noop.
type NoopOutput struct {
	// Steps is how many steps the run executed.
	Steps int `json:"steps"`
}

// Noop executes input.steps steps that do nothing, so a run's time is the engine's: one
// status write per step (per batch, for batched steps) plus the replay around it.
var Noop = durable.Define(NoopName, func(ctx *durable.Context, in NoopInput) (NoopOutput, error) {
	var opts []durable.StepOption
	if in.Batched {
		opts = append(opts, durable.Batched())
	}
	for i := range in.Steps {
		if _, err := durable.Step(ctx, StepName(i), noop, opts...); err != nil {
			return NoopOutput{}, err
		}
	}
	return NoopOutput{Steps: in.Steps}, nil
}, durable.WithDescription("Benchmark: executes input.steps no-op steps, batched or not."))

// noop is a step that does nothing and records no result.
func noop(context.Context) (any, error) { return nil, nil }

// SleepInput is the input of bench-sleep.
type SleepInput struct {
	// SleepMillis is how long the run sleeps.
	SleepMillis int64 `json:"sleepMillis"`
	// Pad makes the input as large as the memory figure needs; the workflow ignores it.
	Pad string `json:"pad,omitempty"`
}

// Sleep sleeps durably, then executes one no-op step named "after": the step's start minus the
// sleep's wake time is how late the timer fired.
var Sleep = durable.Define(SleepName, func(ctx *durable.Context, in SleepInput) (int64, error) {
	durable.Sleep(ctx, "nap", time.Duration(in.SleepMillis)*time.Millisecond)
	if _, err := durable.Step(ctx, "after", noop); err != nil {
		return 0, err
	}
	return in.SleepMillis, nil
}, durable.WithDescription("Benchmark: sleeps input.sleepMillis, then executes one no-op step."))

// BlobsInput is the input of bench-blobs.
type BlobsInput struct {
	// Steps is how many steps record a result of Bytes bytes each.
	Steps int `json:"steps"`
	Bytes int `json:"bytes"`
	// SleepMillis is a durable sleep after the last step, in which the benchmark restarts the
	// manager, so that the run finishes by replaying every result.
	SleepMillis int64 `json:"sleepMillis,omitempty"`
}

// Blob is the result of bench-blobs' step i: n bytes of a letter that depends on i.
func Blob(i, n int) string { return strings.Repeat(string(rune('a'+i%26)), n) }

// Blobs records input.steps results of input.bytes bytes each (stored out of line), sleeps,
// and returns the bytes it read back, checking that every result replays as recorded.
var Blobs = durable.Define(BlobsName, func(ctx *durable.Context, in BlobsInput) (int, error) {
	total := 0
	for i := range in.Steps {
		s, err := durable.Step(ctx, StepName(i), func(context.Context) (string, error) { return Blob(i, in.Bytes), nil })
		if err != nil {
			return 0, err
		}
		if len(s) != in.Bytes || (len(s) > 0 && s[0] != Blob(i, 1)[0]) {
			return 0, fmt.Errorf("step %s replayed %d bytes that are not its result", StepName(i), len(s))
		}
		total += len(s)
	}
	durable.Sleep(ctx, "rest", time.Duration(in.SleepMillis)*time.Millisecond)
	return total, nil
}, durable.WithDescription("Benchmark: records input.steps large results, sleeps, and reads them back."))

// Webhook takes any input (a webhook's envelope) and executes one no-op step.
var Webhook = durable.Define(WebhookName, func(ctx *durable.Context, _ json.RawMessage) (string, error) {
	_, err := durable.Step(ctx, "ack", noop)
	return "ok", err
}, durable.WithDescription("Benchmark: the target of signed webhook deliveries; one no-op step."))

// LedgerInput is the input of chaos-ledger. Every field is part of the run's spec, so the crash
// test knows what each run must have done.
type LedgerInput struct {
	// Steps is how many steps the run executes.
	Steps int `json:"steps"`
	// SleepEvery puts a durable sleep of SleepMillis before every SleepEvery-th step (0: none).
	SleepEvery  int   `json:"sleepEvery,omitempty"`
	SleepMillis int64 `json:"sleepMillis,omitempty"`
	// FailEvery makes the first attempt of every FailEvery-th step fail, so that it is retried
	// after BackoffMillis (0: no failures).
	FailEvery     int   `json:"failEvery,omitempty"`
	BackoffMillis int64 `json:"backoffMillis,omitempty"`
	// WorkMillis is how long each step works after it recorded itself in the ledger: the wider
	// this window, the likelier a kill lands between a step's execution and its record.
	WorkMillis int64 `json:"workMillis,omitempty"`
}

// Sleeps reports whether step i is preceded by a sleep.
func (in LedgerInput) Sleeps(i int) bool {
	return in.SleepEvery > 0 && i%in.SleepEvery == in.SleepEvery-1
}

// Fails reports whether the first attempt of step i fails.
func (in LedgerInput) Fails(i int) bool { return in.FailEvery > 0 && i%in.FailEvery == in.FailEvery-1 }

// LedgerOutput is the output of chaos-ledger.
type LedgerOutput struct {
	// Steps is how many steps completed.
	Steps int `json:"steps"`
}

// errPlanned is the error of a step attempt the input told to fail.
var errPlanned = errors.New("planned failure")

// NewLedgerWorkflow returns chaos-ledger appending to the ledger at path. Each step appends its
// line (run, step, attempt and an execution id unique to this process), works for
// input.workMillis and returns the execution id, which the journal records: the crash test then
// checks that the recorded execution is the last one in the ledger, that is, that no step ran
// again once its result was recorded.
func NewLedgerWorkflow(path string) durable.Workflow {
	var ledger *Ledger
	var openErr error
	if path == "" {
		openErr = fmt.Errorf("no ledger: set %s to the ledger file's path", LedgerEnv)
	} else {
		ledger, openErr = OpenLedger(path)
	}
	return durable.Define(LedgerName, func(ctx *durable.Context, in LedgerInput) (LedgerOutput, error) {
		if openErr != nil {
			return LedgerOutput{}, durable.NonRetryable(openErr)
		}
		info := durable.Info(ctx)
		run := info.Namespace + "/" + info.Name
		for i := range in.Steps {
			if in.Sleeps(i) {
				durable.Sleep(ctx, fmt.Sprintf("nap-%04d", i), time.Duration(in.SleepMillis)*time.Millisecond)
			}
			step := StepName(i)
			fn := ledgerStep(ledger, run, step, in.Fails(i), time.Duration(in.WorkMillis)*time.Millisecond)
			retry := durable.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Duration(max(in.BackoffMillis, 1)) * time.Millisecond}
			if _, err := durable.Step(ctx, step, fn, durable.WithRetry(retry)); err != nil {
				return LedgerOutput{}, err
			}
		}
		return LedgerOutput{Steps: in.Steps}, nil
	}, durable.WithDescription("Crash test: steps that append each execution to a ledger file."))
}

// ledgerStep is the function of one ledger step.
func ledgerStep(ledger *Ledger, run, step string, failFirst bool, work time.Duration) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		attempt := durable.StepAttempt(ctx)
		fail := failFirst && attempt == 1
		exec, err := ledger.Append(run, step, attempt, !fail)
		if err != nil {
			return "", err
		}
		select {
		case <-time.After(work):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if fail {
			return "", fmt.Errorf("%w of attempt %d (execution %s)", errPlanned, attempt, exec)
		}
		return exec, nil
	}
}
