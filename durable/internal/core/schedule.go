package core

import "time"

// ScheduleSpec declares, in the workflow's code, that the workflow runs on a schedule. The
// manager keeps a WorkflowSchedule for each declaration in its schedule namespace
// (--schedule-namespace), creates it at start, updates it when the declaration changes and
// deletes it when the declaration goes; docs/schedules.md describes every field. A schedule
// paused through the REST API stays paused across those updates.
//
//	durable.WithSchedule(durable.ScheduleSpec{
//		Cron:     "0 2 * * *",
//		TimeZone: "Europe/Berlin",
//		Input:    NightlyReportInput{Channel: "#ops"},
//	})
type ScheduleSpec struct {
	// Name tells several schedules of one workflow apart: the WorkflowSchedule is named
	// "<workflow>-<name>" (the workflow's name made DNS-safe). Empty names the first schedule
	// "<workflow>" and later ones "<workflow>-2", "<workflow>-3", ...
	Name string
	// Cron says when: a five-field cron expression ("0 2 * * *"), a macro ("@daily") or
	// "@every <duration>" ("@every 10m").
	Cron string
	// TimeZone is the IANA zone Cron is read in, for example "Europe/Berlin"; empty means UTC.
	TimeZone string
	// Input is every run's input: any value that encodes to JSON, typically the workflow's
	// input type. Nil means no input.
	Input any
	// ConcurrencyPolicy is "Allow" (the default), "Forbid" or "Replace".
	ConcurrencyPolicy string
	// CatchUp is "None", "Latest" (the default) or "All": which ticks missed during downtime run.
	CatchUp string
	// MaxCatchUp bounds how many missed ticks CatchUp "All" runs; zero means 100.
	MaxCatchUp int
	// StartingDeadline is how late a tick may still start; zero means no limit.
	StartingDeadline time.Duration
	// Jitter delays each tick's start by a stable random amount below it; zero means none.
	Jitter time.Duration
}

// WithSchedule declares a schedule that starts the workflow; give it several times for several
// schedules.
func WithSchedule(spec ScheduleSpec) Option {
	return func(o *options) { o.schedules = append(o.schedules, spec) }
}
