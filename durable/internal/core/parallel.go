package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// Branch is one step of a Parallel group: its name, unique within the run like any step's,
// its function, and options of its own.
type Branch[T any] struct {
	Name string
	Fn   func(context.Context) (T, error)
	// Options apply to this branch alone, after the options given to Parallel: a branch may
	// retry or time out unlike its siblings.
	Options []StepOption
}

// Parallel runs the functions of several steps at once, one goroutine each, and returns their
// results in the branches' order:
//
//	pages, err := durable.Parallel(ctx, []durable.Branch[Page]{
//		{Name: "fetch-docs", Fn: fetch("https://example.com/docs")},
//		{Name: "fetch-blog", Fn: fetch("https://example.com/blog")},
//	})
//
// Each branch is journalled as an ordinary step under its own name (as if Step had run it),
// so a replay returns the recorded results, a restart runs again only the branches without a
// record, and a workflow that used to run the same steps one by one replays unchanged. The
// options apply to every branch (a Branch's own Options after them); each branch retries on
// its own, and while any branch waits for its next attempt the run sleeps until the earliest
// one is due.
//
// When a branch fails for good, Parallel returns its *StepError (the first such branch in
// order) once every branch has had its attempt; branches still to be retried are not tried
// again. Branch functions follow the rules of step functions: no durable primitives inside.
func Parallel[T any](ctx *Context, branches []Branch[T], opts ...StepOption) ([]T, error) {
	e := ctx.exec
	first := ""
	if len(branches) > 0 {
		first = branches[0].Name
	}
	if err := e.enter("Parallel", first); err != nil {
		return nil, err
	}
	names := make([]string, len(branches))
	fns := make([]func(context.Context) (any, error), len(branches))
	options := make([]stepOptions, len(branches))
	for i, b := range branches {
		names[i], fns[i] = b.Name, func(c context.Context) (any, error) { return b.Fn(c) }
		options[i] = stepOptionsOf(append(slices.Clip(opts), b.Options...))
	}
	raws, err := e.parallel(names, fns, options)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(raws))
	for i, raw := range raws {
		out[i] = decodeStep[T](e, names[i], raw)
	}
	return out, nil
}

// parallel answers each branch from the journal, runs the branches that are due at once,
// records what came of them in order, and then returns the results, the first failure, or
// suspends until the earliest retry. options[i] are the options of branch i.
func (e *execution) parallel(names []string, fns []func(context.Context) (any, error), options []stepOptions) ([]json.RawMessage, error) {
	seen := make(map[string]bool, len(names))
	entries := make([]Entry, len(names))
	results := make([]json.RawMessage, len(names))
	for i, name := range names {
		if seen[name] {
			e.failRun(ReasonNonDeterministic, "durable.Parallel has two branches named %q: every branch needs a name unique within the run", name)
		}
		seen[name] = true
		entries[i], _ = e.lookup(name, KindStep)
		if entries[i].State == StateCompleted {
			e.advanceClock(entries[i].FinishedAt)
			results[i] = e.resultOf(entries[i])
		}
	}
	// A branch that failed for good settles the group the same way on every replay.
	if failed := e.failedBranch(entries); failed != nil {
		return nil, failed
	}
	due := e.dueBranches(entries)
	tries := make([]tried, len(due))
	var wg sync.WaitGroup
	for j, i := range due {
		wg.Go(func() {
			// What stays if the function ends its goroutine (runtime.Goexit) instead of returning.
			now := e.clock()
			tries[j] = tried{err: fmt.Errorf("the function of step %q exited its goroutine (runtime.Goexit): step functions must return", names[i]), started: now, finished: now}
			tries[j] = e.try(names[i], entries[i].Attempts+1, fns[i], options[i].timeout)
		})
	}
	wg.Wait()
	e.haltIfMisused() // a branch function called a primitive
	for j, i := range due {
		entries[i] = e.settle(names[i], entries[i], tries[j], options[i])
		results[i] = tries[j].raw
	}
	if failed := e.failedBranch(entries); failed != nil {
		return nil, failed
	}
	var next *Entry
	for i := range entries {
		if entries[i].State == StateRetrying && (next == nil || entries[i].WakeAt.Before(next.WakeAt)) {
			next = &entries[i]
		}
	}
	if next != nil {
		e.suspend(next.Name, next.WakeAt, "")
	}
	return results, nil
}

// dueBranches lists the branches to run now: those without a record, and those whose next
// attempt is due.
func (e *execution) dueBranches(entries []Entry) []int {
	now := e.clock()
	var due []int
	for i, entry := range entries {
		switch {
		case entry.State == StateCompleted:
		case entry.State == StateRetrying && now.Before(entry.WakeAt):
		default:
			due = append(due, i)
		}
	}
	return due
}

// failedBranch is the error of the first branch that failed for good, or nil.
func (e *execution) failedBranch(entries []Entry) error {
	for _, entry := range entries {
		if entry.State == StateFailed {
			e.advanceClock(entry.FinishedAt)
			return stepErrorOf(entry)
		}
	}
	return nil
}
