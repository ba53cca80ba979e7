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

// executionBudget bounds the executions running in this process at once, and shares them
// fairly between namespaces. The controller's reconciles and the REST API's eager starts take
// their slots from the same budget, so eager starts never add executions beyond
// --max-concurrent-reconciles.
//
// A namespace alone may take every slot. Once another namespace was refused a slot (within
// contentionWindow), a namespace that holds its fair share (the slots divided among the
// namespaces that hold or want them) gets no more until it is below it again: one tenant's slow
// steps cannot keep the slots from the others for longer than its executions last.
type executionBudget struct {
	mu   sync.Mutex
	size int
	used int
	held map[string]int
	// wanting is when each namespace was last refused a slot for want of a free one.
	wanting map[string]time.Time
	now     func() time.Time
}

// contentionWindow is how long a namespace refused a slot counts as wanting one.
const contentionWindow = 2 * time.Second

// newExecutionBudget returns a budget of n executions (at least one).
func newExecutionBudget(n int) *executionBudget {
	return &executionBudget{size: max(n, 1), held: map[string]int{}, wanting: map[string]time.Time{}, now: time.Now}
}

// tryAcquire takes a slot for a run of namespace when one is free and the namespace is within
// its fair share, and returns its release; it never waits.
func (b *executionBudget) tryAcquire(namespace string) (release func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.used >= b.size {
		b.wanting[namespace] = now
		return nil, false
	}
	if b.held[namespace] >= b.fairShare(namespace, now) {
		return nil, false
	}
	b.used++
	b.held[namespace]++
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.used--
		if b.held[namespace]--; b.held[namespace] == 0 {
			delete(b.held, namespace)
		}
	}, true
}

// fairShare is how many slots namespace may hold now: all of them while no other namespace
// wants one, otherwise an equal part (at least one) among the namespaces that hold or want
// slots.
func (b *executionBudget) fairShare(namespace string, now time.Time) int {
	contending := map[string]bool{namespace: true}
	for ns := range b.held {
		contending[ns] = true
	}
	others := false
	for ns, at := range b.wanting {
		switch {
		case now.Sub(at) > contentionWindow:
			delete(b.wanting, ns)
		case ns != namespace:
			contending[ns], others = true, true
		}
	}
	if !others {
		return b.size
	}
	return max(1, b.size/len(contending))
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
