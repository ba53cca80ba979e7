package testflows

import (
	"context"
	"runtime"
	"syscall"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

// BurnName is the workflow of CPU-bound steps (the sharding figure of the benchmark).
const BurnName = "bench-burn"

// BurnInput is the input of bench-burn.
type BurnInput struct {
	// Steps is how many steps the run executes.
	Steps int `json:"steps"`
	// CPUMillis is how much CPU time each step burns in the manager.
	CPUMillis int64 `json:"cpuMillis"`
}

// Burn executes input.steps steps that each burn input.cpuMillis of CPU time, measured on the
// thread that runs it: a step costs the same CPU however many others share the core, so the
// throughput of replicas is bounded by the CPU they get.
var Burn = durable.Define(BurnName, func(ctx *durable.Context, in BurnInput) (BurnInput, error) {
	return in, runSteps(ctx, in.Steps, func(context.Context) error {
		BurnCPU(time.Duration(in.CPUMillis) * time.Millisecond)
		return nil
	})
}, durable.WithDescription("Benchmark: executes input.steps steps that each burn input.cpuMillis of CPU."))

// runSteps executes n steps named StepName(0) to StepName(n-1), each running body, and stops
// at the first that fails.
func runSteps(ctx *durable.Context, n int, body func(context.Context) error) error {
	for i := range n {
		if _, err := durable.Step(ctx, StepName(i), func(c context.Context) (any, error) { return nil, body(c) }); err != nil {
			return err
		}
	}
	return nil
}

// sink keeps the burn's arithmetic from being optimised away.
var sink uint64

// BurnCPU spins until the calling thread used d of CPU time (user and system), with the
// goroutine locked to its thread so that the thread's time is the goroutine's.
func BurnCPU(d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	x := sink
	for threadCPU()-start < d {
		for i := range uint64(20000) {
			x = x*6364136223846793005 + i
		}
	}
	sink = x
}

// rusageThread is Linux's RUSAGE_THREAD: the calling thread's usage.
const rusageThread = 1

// threadCPU is the CPU time the calling thread used so far.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
