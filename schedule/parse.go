// Package schedule computes what a WorkflowSchedule does: when its ticks fall (cron expressions
// and macros in a time zone, daylight-saving changes included, and "@every" intervals anchored
// at the schedule's creation), which due ticks start a run and which are recorded as skipped
// after downtime (Decide), what each tick's run is called and looks like (TickRunName,
// ManualRunName, NewRun), and how the concurrency policy admits a start (Admit).
//
// Those are pure functions of their inputs, so every replica and every restart of the manager
// computes the same ticks, the same names and the same decisions. Three small calls take a
// client (StartRun, Runs, Cancel): the schedule's controller and the REST API both start,
// find and cancel a schedule's runs through them. Cron parsing is github.com/robfig/cron/v3's,
// the library Kubernetes' CronJob controller uses.
package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// SpecError is a schedule or time zone the package cannot use, with the Ready condition's
// reason and a message that says what to fix.
type SpecError struct {
	// Reason is workflowsv1alpha1.ReasonInvalidSchedule or workflowsv1alpha1.ReasonInvalidTimeZone.
	Reason string
	// Message says what is wrong and what would be right.
	Message string
}

func (e *SpecError) Error() string { return e.Message }

// declaredFields names, in a declaration's words, the WorkflowSchedule fields SpecError
// messages tell people to fix.
var declaredFields = strings.NewReplacer("spec.schedule", "its cron", "spec.timeZone", "its time_zone")

// Declared is the same error worded for a schedule declared by a workflow's code or file
// (SCHEDULES, with its cron and time_zone), whose author never sees a WorkflowSchedule's
// spec.schedule and spec.timeZone.
func (e *SpecError) Declared() *SpecError {
	return &SpecError{Reason: e.Reason, Message: declaredFields.Replace(e.Message)}
}

// Schedule is when a WorkflowSchedule's ticks fall.
type Schedule interface {
	// Next returns the first tick strictly after t, or the zero time when there is none
	// within five years.
	Next(t time.Time) time.Time
}

// everyPrefix starts an interval schedule.
const everyPrefix = "@every "

// macros are the cron descriptors, written out as the five fields they stand for, so that the
// daylight-saving rule can look at their minute and hour fields.
var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// Parse reads a schedule: a five-field cron expression or a macro, read in the IANA zone
// timeZone (UTC when empty), or "@every <duration>", whose ticks fall at anchor plus whole
// multiples of the duration (the schedule's creation time, so every replica agrees).
func Parse(expr, timeZone string, anchor time.Time) (Schedule, error) {
	expr = strings.TrimSpace(expr)
	loc, err := LoadZone(timeZone)
	if err != nil {
		return nil, err
	}
	var s Schedule
	if strings.HasPrefix(expr, everyPrefix) {
		s, err = parseEvery(expr, anchor)
	} else {
		s, err = parseCron(expr, loc)
	}
	if err != nil {
		return nil, err
	}
	if s.Next(anchor).IsZero() {
		return nil, invalidSchedule("%q never falls within the next five years (for example the 30th of February)", expr)
	}
	return s, nil
}

// LoadZone returns the location of an IANA zone name; empty means UTC. The manager embeds the
// zone database (time/tzdata), so zones work in a container image that has none.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, &SpecError{Reason: workflowsv1alpha1.ReasonInvalidTimeZone, Message: `time zone "Local" is the manager's own zone and differs between machines; name a zone such as "UTC" or "Europe/Berlin" in spec.timeZone`}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &SpecError{Reason: workflowsv1alpha1.ReasonInvalidTimeZone, Message: fmt.Sprintf(
			"time zone %q is not in the IANA time zone database; fix spec.timeZone with a name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\"", name)}
	}
	return loc, nil
}

// invalidSchedule is a SpecError about spec.schedule; its message ends with what to fix.
func invalidSchedule(format string, args ...any) *SpecError {
	return &SpecError{Reason: workflowsv1alpha1.ReasonInvalidSchedule, Message: fmt.Sprintf(format, args...) + "; fix spec.schedule"}
}

// parseEvery reads "@every <duration>" with the library's parser, refusing what it would
// silently round: durations under a second, and fractions of a second.
func parseEvery(expr string, anchor time.Time) (Schedule, error) {
	d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(expr, everyPrefix)))
	if err != nil || d < time.Second || d%time.Second != 0 {
		return nil, invalidSchedule("%q: @every takes a whole number of seconds, at least 1s, as a Go duration such as \"@every 90s\" or \"@every 6h\"", expr)
	}
	parsed, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, invalidSchedule("%q: %v", expr, err)
	}
	delay, ok := parsed.(cron.ConstantDelaySchedule)
	if !ok {
		return nil, invalidSchedule("%q is not an interval schedule", expr)
	}
	return every{anchor: anchor.Truncate(time.Second), interval: delay.Delay}, nil
}

// parseCron reads a five-field expression or a macro in loc and chooses how it meets
// daylight-saving changes (see wallClock and zoned).
func parseCron(expr string, loc *time.Location) (Schedule, error) {
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, invalidSchedule("%q: set the time zone in spec.timeZone, not in spec.schedule", expr)
	}
	fields := expr
	if m, ok := macros[expr]; ok {
		fields = m
	} else if strings.HasPrefix(expr, "@") {
		return nil, invalidSchedule("%q is not a macro; use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>", expr)
	}
	f := strings.Fields(fields)
	if len(f) != 5 {
		return nil, invalidSchedule("%q has %d fields; a cron expression has five: minute hour day-of-month month day-of-week, for example \"0 2 * * *\"", expr, len(f))
	}
	parsed, err := cron.ParseStandard(fields)
	if err != nil {
		return nil, invalidSchedule("%q: %v; a cron expression has five fields: minute hour day-of-month month day-of-week, for example \"0 2 * * *\"", expr, err)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, invalidSchedule("%q is not a cron expression", expr)
	}
	copied := *spec
	if strings.HasPrefix(f[0], "*") || strings.HasPrefix(f[1], "*") {
		copied.Location = loc
		return zoned{spec: &copied}, nil
	}
	copied.Location = time.UTC
	return wallClock{spec: &copied, loc: loc}, nil
}

// every ticks at anchor plus whole multiples of interval.
type every struct {
	anchor   time.Time
	interval time.Duration
}

// Next returns the first anchor + k·interval (k ≥ 1) after t.
func (e every) Next(t time.Time) time.Time {
	if t.Before(e.anchor) {
		return e.anchor.Add(e.interval)
	}
	k := t.Sub(e.anchor)/e.interval + 1
	return e.anchor.Add(k * e.interval)
}

// count returns how many ticks fall in (after, until].
func (e every) count(after, until time.Time) int64 {
	if !until.After(after) {
		return 0
	}
	return int64(e.index(until) - e.index(after))
}

// index is how many ticks fall in (anchor, t].
func (e every) index(t time.Time) time.Duration {
	if !t.After(e.anchor) {
		return 0
	}
	return t.Sub(e.anchor) / e.interval
}

// zoned is a cron expression with "*" in its minute or hour field (or @hourly), following the
// zone's clock as it is: it falls every hour that really passes, so an hourly schedule starts
// one run per real hour across both daylight-saving changes. This is cron(8)'s rule for such
// entries, and what robfig/cron computes in the zone.
type zoned struct{ spec *cron.SpecSchedule }

// Next returns the next matching instant after t.
func (z zoned) Next(t time.Time) time.Time { return z.spec.Next(t) }

// wallClock is a cron expression at fixed times of day, read on the zone's wall clock. Its
// ticks are wall-clock times; each becomes the instant the wall clock shows it, with cron(8)'s
// rule for daylight-saving changes: a time the clock skips (02:30 when 02:00 jumps to 03:00)
// falls at the instant of the jump, and a time the clock shows twice (02:30 when 03:00 goes
// back to 02:00) falls the first time only. So a nightly schedule starts exactly one run every
// night, including both nights of a change.
type wallClock struct {
	spec *cron.SpecSchedule // in UTC, which stands for the wall clock
	loc  *time.Location
}

// Next returns the instant of the first wall-clock tick that falls after t. Instants grow with
// wall-clock ticks (a skipped time maps to the jump, a doubled one to its first occurrence), so
// no tick before the wall-clock reading of t can fall after t.
func (w wallClock) Next(t time.Time) time.Time {
	wall := wallTime(t.In(w.loc))
	for range maxDoubledTicks {
		wall = w.spec.Next(wall)
		if wall.IsZero() {
			return time.Time{}
		}
		if at := w.instant(wall); at.After(t) {
			return at
		}
	}
	return time.Time{}
}

// maxDoubledTicks bounds how many wall-clock ticks Next passes over because their first
// occurrence lies before t: the ticks of a doubled hour, at most one a minute.
const maxDoubledTicks = 2 * 60 * 2

// wallTime is t's wall-clock reading, as a UTC time.
func wallTime(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// instant returns the first instant at which the zone's wall clock shows wall, or, when the
// clock skips it, the instant of the skip.
func (w wallClock) instant(wall time.Time) time.Time {
	// The zone's offsets around wall: before and after a change within a day of it.
	_, before := wall.Add(-48 * time.Hour).In(w.loc).Zone()
	_, after := wall.Add(48 * time.Hour).In(w.loc).Zone()
	first := time.Time{}
	for _, off := range []int{before, after} {
		at := wall.Add(-time.Duration(off) * time.Second)
		if wallTime(at.In(w.loc)).Equal(wall) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	if !first.IsZero() {
		return first
	}
	// Skipped: read with the smaller offset it lies after the jump; the jump is where the
	// zone in effect there begins.
	at := wall.Add(-time.Duration(min(before, after)) * time.Second).In(w.loc)
	start, _ := at.ZoneBounds()
	if start.IsZero() {
		return at
	}
	return start
}
