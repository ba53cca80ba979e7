package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Prometheus metrics of the WorkflowSchedule controller, served with the others.
var (
	scheduleTicks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "centaur_schedule_ticks_total",
		Help: "Ticks of WorkflowSchedules handled, by workflow, outcome (Started, Skipped) and reason (Scheduled, CaughtUp, AlreadyStarted, Suspended, ConcurrencyForbidden, StartingDeadlineExceeded, NotCaughtUp, MaxCatchUpExceeded, UnknownWorkflow, RunNameTaken).",
	}, []string{"workflow", "outcome", "reason"})
	scheduleLateness = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "centaur_schedule_start_lateness_seconds",
		Help:    "How late a tick's run was created: its creation minus the tick (plus its jitter), by workflow.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
	}, []string{"workflow"})
)

func init() {
	metrics.Registry.MustRegister(scheduleTicks, scheduleLateness)
}
