package schedule

import (
	"slices"
	"time"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// MissedAfter is how late a tick may be when a manager first sees it due and still count as on
// time rather than missed: the slack for a busy manager and API server, far below any downtime.
const MissedAfter = time.Minute

// Action is what to do about a tick.
type Action string

// The actions of an outcome.
const (
	// Start the tick's run.
	Start Action = "Start"
	// Skip the tick (or the stretch of ticks): record it with the reason.
	Skip Action = "Skip"
	// Exists: the tick's run exists already; record the tick as started.
	Exists Action = "Exists"
)

// Window is what Plan decides on: a schedule, the ticks it handled, the time, and the
// schedule's policies.
type Window struct {
	// Schedule is when ticks fall.
	Schedule Schedule
	// After is the last tick handled (status.lastTickTime), or the schedule's creation time:
	// the ticks after it are to be handled.
	After time.Time
	// Now is the current time.
	Now time.Time
	// StartingDeadline is how late a tick may start; zero means no limit.
	StartingDeadline time.Duration
	// CatchUp says which missed ticks run.
	CatchUp workflowsv1alpha1.CatchUpPolicy
	// MaxCatchUp bounds how many missed ticks CatchUpAll runs (DefaultMaxCatchUp when zero).
	MaxCatchUp int
	// Jitter is how long a tick's start is delayed; nil means none.
	Jitter func(tick time.Time) time.Duration
	// Suspended skips every due tick with reason Suspended.
	Suspended bool
	// Blocked, when not empty, is the reason every due tick is skipped for (the workflow is
	// unknown, for example), with BlockedMessage.
	Blocked, BlockedMessage string
	// Started holds the ticks (Unix seconds) whose runs exist already.
	Started map[int64]bool
}

// Outcome is the decision about one tick, or about a stretch of ticks skipped for one reason.
type Outcome struct {
	// Tick is the tick, or the first of the stretch.
	Tick time.Time
	// Last is the last tick of the stretch; Tick for a single tick.
	Last time.Time
	// Count is how many ticks the outcome stands for.
	Count int64
	// Action says what to do.
	Action Action
	// Reason is the CamelCase reason recorded for the tick.
	Reason string
	// Message says more about a skip.
	Message string
	// Late is how late the tick's start is: now minus the tick plus its jitter.
	Late time.Duration
}

// Plan is what to do about the ticks that fell due.
type Plan struct {
	// Outcomes are the decisions, in tick order.
	Outcomes []Outcome
	// Handled is the last tick the outcomes cover; zero when no tick fell due.
	Handled time.Time
	// Next is the first tick not handled yet; zero when the schedule has no further tick.
	Next time.Time
	// NextDue is when Next falls due: Next plus its jitter.
	NextDue time.Time
}

// span is a stretch of consecutive ticks.
type span struct {
	first, last time.Time
	count       int64
}

// add extends the span by tick t.
func (s *span) add(t time.Time) {
	if s.count == 0 {
		s.first = t
	}
	s.last = t
	s.count++
}

// Decide returns the plan for the ticks in (w.After, w.Now]. Each due tick gets exactly one
// outcome: its run exists already, it starts, or it is skipped with a reason. The newest due
// tick is on time unless it is more than MissedAfter late; the others are missed, and
// CatchUp chooses which of them start. Ticks later than StartingDeadline are skipped whatever
// the policy. The concurrency policy is not applied here (see Admit): it depends on the runs in
// flight while the plan is carried out.
func Decide(w Window) Plan {
	keep := 1
	if w.CatchUp == workflowsv1alpha1.CatchUpAll {
		keep = w.maxCatchUp()
	}
	// The ticks that may start are among the newest ones; older ticks are only counted.
	recent, expired, passed, upcoming := scan(w.Schedule, w.After, w.Now, w.StartingDeadline, keep+len(w.Started)+64)
	p := Plan{}
	due, next := w.splitDue(recent)
	switch {
	case len(due) > 0:
		p.Handled = due[len(due)-1]
	case passed.count > 0:
		p.Handled = passed.last
	case expired.count > 0:
		p.Handled = expired.last
	}
	p.Next = upcoming
	if next < len(recent) {
		p.Next = recent[next]
	}
	if !p.Next.IsZero() {
		p.NextDue = p.Next.Add(w.jitter(p.Next))
	}
	p.Outcomes = append(w.olderOutcomes(expired, passed), w.dueOutcomes(due, keep)...)
	slices.SortStableFunc(p.Outcomes, func(a, b Outcome) int { return a.Tick.Compare(b.Tick) })
	p.Outcomes = merge(p.Outcomes)
	return p
}

// maxCatchUp is MaxCatchUp or its default.
func (w Window) maxCatchUp() int {
	if w.MaxCatchUp > 0 {
		return w.MaxCatchUp
	}
	return workflowsv1alpha1.DefaultMaxCatchUp
}

// jitter is the delay of tick's start.
func (w Window) jitter(tick time.Time) time.Duration {
	if w.Jitter == nil {
		return 0
	}
	return w.Jitter(tick)
}

// splitDue returns the ticks of recent whose start (with jitter) is due, and the index of
// the first one that is not.
func (w Window) splitDue(recent []time.Time) ([]time.Time, int) {
	for i, t := range recent {
		if t.Add(w.jitter(t)).After(w.Now) {
			return recent[:i], i
		}
	}
	return recent, len(recent)
}

// olderOutcomes are the outcomes of ticks too old to start: skipped as a stretch, apart from
// those whose runs exist.
func (w Window) olderOutcomes(expired, passed span) []Outcome {
	var out []Outcome
	for unix := range w.Started {
		t := time.Unix(unix, 0).UTC()
		switch {
		case expired.count > 0 && !t.Before(expired.first) && !t.After(expired.last):
			expired.count--
		case passed.count > 0 && !t.Before(passed.first) && !t.After(passed.last):
			passed.count--
		default:
			continue
		}
		out = append(out, Outcome{Tick: t, Last: t, Count: 1, Action: Exists, Reason: workflowsv1alpha1.ReasonAlreadyStarted})
	}
	reason, message := w.skipAll()
	if expired.count > 0 {
		r, m := reason, message
		if r == "" {
			r, m = workflowsv1alpha1.ReasonStartingDeadlineExceeded, w.deadlineMessage()
		}
		out = append(out, Outcome{Tick: expired.first, Last: expired.last, Count: expired.count, Action: Skip, Reason: r, Message: m})
	}
	if passed.count > 0 {
		r, m := reason, message
		if r == "" {
			r, m = w.notCaughtUp()
		}
		out = append(out, Outcome{Tick: passed.first, Last: passed.last, Count: passed.count, Action: Skip, Reason: r, Message: m})
	}
	return out
}

// skipAll returns the reason every due tick is skipped for, if any: suspension or a block.
func (w Window) skipAll() (string, string) {
	switch {
	case w.Suspended:
		return workflowsv1alpha1.ReasonSuspended, "the schedule was suspended (spec.suspend); backfill the tick through the REST API if it should run"
	case w.Blocked != "":
		return w.Blocked, w.BlockedMessage
	}
	return "", ""
}

// deadlineMessage explains a tick skipped for its starting deadline.
func (w Window) deadlineMessage() string {
	return "no manager could start the tick within spec.startingDeadline (" + w.StartingDeadline.String() + ")"
}

// notCaughtUp returns the reason and message of a missed tick that catchUp leaves out.
func (w Window) notCaughtUp() (string, string) {
	switch w.CatchUp {
	case workflowsv1alpha1.CatchUpAll:
		return workflowsv1alpha1.ReasonMaxCatchUpExceeded, "missed while no manager could start it, and older than the spec.maxCatchUp most recent missed ticks that were run"
	case workflowsv1alpha1.CatchUpNone:
		return workflowsv1alpha1.ReasonNotCaughtUp, "missed while no manager could start it; catchUp None runs no missed tick"
	}
	return workflowsv1alpha1.ReasonNotCaughtUp, "missed while no manager could start it; catchUp Latest ran only the most recent missed tick"
}

// dueOutcomes decides each due tick: exists, skipped for everyone (suspended, blocked), past
// its deadline, or a candidate; of the candidates the keep most recent start (catchUp None
// starts only an on-time tick).
func (w Window) dueOutcomes(due []time.Time, keep int) []Outcome {
	out := make([]Outcome, 0, len(due))
	var candidates []int
	reason, message := w.skipAll()
	for i, t := range due {
		o := Outcome{Tick: t, Last: t, Count: 1, Late: w.Now.Sub(t.Add(w.jitter(t)))}
		switch {
		case w.Started[t.Unix()]:
			o.Action, o.Reason = Exists, workflowsv1alpha1.ReasonAlreadyStarted
		case reason != "":
			o.Action, o.Reason, o.Message = Skip, reason, message
		case w.StartingDeadline > 0 && o.Late > w.StartingDeadline:
			o.Action, o.Reason, o.Message = Skip, workflowsv1alpha1.ReasonStartingDeadlineExceeded, w.deadlineMessage()
		default:
			candidates = append(candidates, i)
		}
		out = append(out, o)
	}
	// Under Latest, a missed tick older than a tick whose run exists is caught up already.
	lastExisting := -1
	for i := range out {
		if out[i].Action == Exists && w.CatchUp != workflowsv1alpha1.CatchUpAll {
			lastExisting = i
		}
	}
	for n, i := range candidates {
		o := &out[i]
		onTime := i == len(due)-1 && o.Late <= MissedAfter
		switch {
		case onTime:
			o.Action, o.Reason = Start, workflowsv1alpha1.ReasonScheduled
		case n >= len(candidates)-keep && i > lastExisting && w.CatchUp != workflowsv1alpha1.CatchUpNone:
			o.Action, o.Reason = Start, workflowsv1alpha1.ReasonCaughtUp
		default:
			o.Action = Skip
			o.Reason, o.Message = w.notCaughtUp()
		}
	}
	return out
}

// merge joins neighbouring skips of one reason into one stretch.
func merge(in []Outcome) []Outcome {
	out := in[:0]
	for _, o := range in {
		if n := len(out); n > 0 && o.Action == Skip && out[n-1].Action == Skip && out[n-1].Reason == o.Reason {
			out[n-1].Last = o.Last
			out[n-1].Count += o.Count
			continue
		}
		out = append(out, o)
	}
	return out
}

// scan walks the ticks in (after, now]: it returns the newest keep of them in order, the older
// ones as two stretches (those later than deadline, when one is set, and the rest), and the
// first tick after now.
func scan(s Schedule, after, now time.Time, deadline time.Duration, keep int) (recent []time.Time, expired, passed span, upcoming time.Time) {
	cutoff := time.Time{}
	if deadline > 0 {
		cutoff = now.Add(-deadline)
	}
	if e, ok := s.(every); ok {
		return scanEvery(e, after, now, cutoff, keep)
	}
	ring := make([]time.Time, 0, keep)
	for t := s.Next(after); !t.IsZero(); t = s.Next(t) {
		if t.After(now) {
			return ring, expired, passed, t
		}
		if len(ring) == keep {
			older := ring[0]
			if !cutoff.IsZero() && older.Before(cutoff) {
				expired.add(older)
			} else {
				passed.add(older)
			}
			ring = append(ring[:0], ring[1:]...)
		}
		ring = append(ring, t)
	}
	return ring, expired, passed, time.Time{}
}

// scanEvery is scan for an interval schedule, counting the older ticks instead of walking them,
// so that a long downtime of a frequent schedule costs nothing.
func scanEvery(e every, after, now, cutoff time.Time, keep int) (recent []time.Time, expired, passed span, upcoming time.Time) {
	total := e.count(after, now)
	first := e.Next(after)
	if older := total - int64(keep); older > 0 {
		last := first.Add(time.Duration(older-1) * e.interval)
		var n int64 // how many of the older ticks are later than the deadline
		if !cutoff.IsZero() {
			n = min(e.count(after, cutoff.Add(-time.Nanosecond)), older)
		}
		if n > 0 {
			expired = span{first: first, last: first.Add(time.Duration(n-1) * e.interval), count: n}
		}
		if n < older {
			passed = span{first: first.Add(time.Duration(n) * e.interval), last: last, count: older - n}
		}
		first = last.Add(e.interval)
	}
	for t := first; !t.After(now); t = t.Add(e.interval) {
		recent = append(recent, t)
	}
	return recent, expired, passed, e.Next(now)
}
