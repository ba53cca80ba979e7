package core

import "time"

// Sleep suspends the run for d. The wake time is recorded in the journal when the sleep is
// first reached, so the sleep spans restarts and is never started over; while the run sleeps
// no goroutine or process waits for it. A zero or negative d returns at once.
func Sleep(ctx *Context, name string, d time.Duration) {
	if ctx.exec.enter("Sleep", name) != nil {
		return
	}
	ctx.exec.timer(name, func(now time.Time) time.Time { return now.Add(d) })
}

// SleepUntil suspends the run until the wall-clock time t. A time in the past returns at once.
func SleepUntil(ctx *Context, name string, t time.Time) {
	if ctx.exec.enter("SleepUntil", name) != nil {
		return
	}
	ctx.exec.timer(name, func(time.Time) time.Time { return t })
}

// timer answers a sleep from the journal, or records its wake time and suspends.
func (e *execution) timer(name string, wakeAt func(now time.Time) time.Time) {
	entry, found := e.lookup(name, KindSleep)
	if found && entry.State == StateCompleted {
		e.advanceClock(entry.FinishedAt)
		return
	}
	now := e.clock()
	if !found {
		entry = Entry{Name: name, Kind: KindSleep, State: StateSleeping, StartedAt: now, WakeAt: wakeAt(now)}
		if entry.WakeAt.After(now) {
			e.stage(entry) // the write that suspends the run persists it
		}
	}
	if now.Before(entry.WakeAt) {
		e.suspend(name, entry.WakeAt, "")
	}
	// The timer is due. Its completion needs no write of its own: replay reaches the same
	// conclusion from the wake time, and the next write persists it. It still counts against
	// the run's budget, since the host stores the journal with the outcome.
	entry.State, entry.FinishedAt = StateCompleted, entry.WakeAt
	e.stage(entry)
	e.advanceClock(entry.WakeAt)
}
