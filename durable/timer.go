package durable

import (
	"time"

	"github.com/centaur-dev/workflow-operator/durable/internal/core"
)

// Sleep suspends the run for d. The wake time is recorded in the journal when the sleep is
// first reached, so the sleep spans restarts and is never started over; while the run sleeps
// no goroutine or process waits for it. A zero or negative d returns at once.
func Sleep(ctx *Context, name string, d time.Duration) {
	core.Sleep(ctx, name, d)
}

// SleepUntil suspends the run until the wall-clock time t. A time in the past returns at once.
func SleepUntil(ctx *Context, name string, t time.Time) {
	core.SleepUntil(ctx, name, t)
}
