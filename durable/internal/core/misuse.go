package core

import (
	"fmt"
	"runtime"
)

// ReasonMisuse is the reason of a run whose code called a durable primitive where the engine
// cannot make it durable: from a goroutine the handler started, or inside a step's function.
const ReasonMisuse = "Misuse"

// enter guards every durable primitive: see onHandler; on the handler's goroutine it also
// fails the run when the primitive is called inside a step's function, where it would
// record something in the middle of a side effect that may run again.
//
// primitive is the function the author called ("Sleep"); name is the primitive's name.
func (e *execution) enter(primitive, name string) error {
	if err := e.onHandler(primitive, name); err != nil {
		return err
	}
	if e.inStep != "" {
		e.failRun(ReasonMisuse, "%s was called inside the function of step %q: a step's function does its side effect and cannot use durable primitives; call durable.%s from the handler, before or after the step",
			callOf(primitive, name), e.inStep, primitive)
	}
	return nil
}

// onHandler returns a *Failure with reason Misuse, touching nothing else of the execution,
// when the caller is not the handler's goroutine: the run is marked failed (the handler's
// goroutine halts at its next primitive, or when it returns) and the caller gets the error
// back instead of being stopped, so that a goroutine the handler waits for still finishes and
// the manager never crashes. On the handler's goroutine it halts the execution when another
// goroutine marked the run so.
func (e *execution) onHandler(primitive, name string) error {
	if goroutineEntry() != e.handlerEntry {
		f := &Failure{Reason: ReasonMisuse, Message: fmt.Sprintf(
			"%s was called from a goroutine the handler started: the engine replays only the handler's own goroutine, so a primitive elsewhere would be skipped or race; call it from the handler itself (for work in parallel, start child workflows and wait for them)",
			callOf(primitive, name))}
		e.misused.CompareAndSwap(nil, f)
		return f
	}
	e.haltIfMisused()
	return nil
}

// haltIfMisused fails the run when another goroutine called a primitive (see onHandler). Only
// the handler's goroutine may call it.
func (e *execution) haltIfMisused() {
	if f := e.misused.Load(); f != nil {
		e.halt(Outcome{Kind: Failed, Failure: f})
	}
}

// callOf shows a primitive's call the way the author wrote it: durable.Sleep("nap").
func callOf(primitive, name string) string {
	if name == "" {
		return "durable." + primitive + "()"
	}
	return fmt.Sprintf("durable.%s(%q)", primitive, name)
}

// goroutineEntry returns the entry address of the function the calling goroutine was started
// with: the same for every call on one goroutine, and different on a goroutine that another
// function started. It costs about a microsecond (a walk of the stack's return addresses,
// without symbols), where parsing runtime.Stack for a goroutine id costs several.
func goroutineEntry() uintptr {
	var small [128]uintptr // deep enough for Starlark handlers; deeper stacks allocate
	pcs := small[:]
	for {
		n := runtime.Callers(1, pcs)
		if n < len(pcs) {
			// The last frame is runtime.goexit; the one before it is the goroutine's function.
			if n < 2 {
				return 0
			}
			return runtime.FuncForPC(pcs[n-2]).Entry()
		}
		pcs = make([]uintptr, 2*len(pcs))
	}
}
