package controllers

import "github.com/centaur-dev/workflow-operator/internal/metric"

// Prometheus metrics of the WorkflowSchedule controller, served with the others.
var (
	scheduleTicks = metric.CounterVec("centaur_schedule_ticks_total",
		"Ticks of WorkflowSchedules handled, by workflow, outcome (Started, Skipped) and reason (Scheduled, CaughtUp, AlreadyStarted, Suspended, ConcurrencyForbidden, StartingDeadlineExceeded, NotCaughtUp, MaxCatchUpExceeded, UnknownWorkflow, RunNameTaken).",
		"workflow", "outcome", "reason")
	scheduleLateness = metric.HistogramVec("centaur_schedule_start_lateness_seconds", "How late a tick's run was created: its creation minus the tick (plus its jitter), by workflow.",
		[]float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600}, "workflow")
)
