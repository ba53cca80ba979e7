package controllers

import (
	"sync"
	"time"
)

// busyRequeue is how soon a reconcile comes back for a run it could not execute now: the run
// is executing in this process already (an eager start), or the execution budget is spent.
// The worker is free meanwhile for other runs.
const busyRequeue = 200 * time.Millisecond

// ErrBudgetSpent is what Execute returns, without executing the run, when every execution of
// the process's budget (--max-concurrent-reconciles) is in use: the controller runs it later.
var ErrBudgetSpent error = budgetSpentError{}

type budgetSpentError struct{}

func (budgetSpentError) Error() string {
	return "every execution this process may run at once (--max-concurrent-reconciles) is in use"
}

// BudgetSpent marks the error for callers that do not import this package: the REST API's
// eager start answers at once when it sees it.
func (budgetSpentError) BudgetSpent() bool { return true }

// executionBudget bounds the executions running in this process at once. The controller's
// reconciles and the REST API's eager starts take their slots from the same budget, so eager
// starts never add executions beyond --max-concurrent-reconciles. A nil budget has no slot.
type executionBudget chan struct{}

// newExecutionBudget returns a budget of n executions (at least one).
func newExecutionBudget(n int) executionBudget {
	return make(executionBudget, max(n, 1))
}

// tryAcquire takes a slot when one is free and returns its release; it never waits.
func (b executionBudget) tryAcquire() (release func(), ok bool) {
	select {
	case b <- struct{}{}:
		return func() { <-b }, true
	default:
		return nil, false
	}
}

// runClaims records which runs an execution in this process holds (the controller's or an
// eager start's), so that one run never executes twice at once here. It never waits: a caller
// that finds the run claimed does something else (the controller requeues, an eager start
// polls the run). No state is kept for runs nobody holds.
type runClaims struct {
	mu   sync.Mutex
	held map[string]struct{}
}

// tryClaim claims key when nobody holds it and returns its release.
func (c *runClaims) tryClaim(key string) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, held := c.held[key]; held {
		return nil, false
	}
	if c.held == nil {
		c.held = map[string]struct{}{}
	}
	c.held[key] = struct{}{}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.held, key)
	}, true
}
