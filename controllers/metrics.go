package controllers

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/metric"
)

// Prometheus metrics of the engine, served with controller-runtime's on the metrics endpoint.
var (
	runsStarted  = metric.CounterVec("centaur_workflow_runs_started_total", "Workflow runs the engine started, by workflow.", "workflow")
	runsFinished = metric.CounterVec("centaur_workflow_runs_finished_total", "Workflow runs that reached a final phase, by workflow and phase.", "workflow", "phase")
	runsInFlight = metric.Register(&inFlightCollector{desc: prometheus.NewDesc(
		"centaur_workflow_runs_in_flight",
		"Workflow runs not yet in a final phase, by workflow, counted from the manager's cache.",
		[]string{"workflow"}, nil)})
	stepDuration = metric.HistogramVec("centaur_workflow_step_duration_seconds", "Duration of one attempt of a step's function, by workflow and outcome.",
		prometheus.ExponentialBuckets(0.001, 4, 10), "workflow", "outcome")
	stepAttempts = metric.CounterVec("centaur_workflow_step_attempts_total", "Calls of step functions, by workflow and outcome (succeeded, retrying, failed).", "workflow", "outcome")
)

// inFlightCollector counts unfinished runs from the cache at scrape time, so the figure is right
// after a restart (a gauge moved up and down by reconciles would drift).
type inFlightCollector struct {
	desc   *prometheus.Desc
	mu     sync.Mutex
	reader client.Reader
}

// use points the collector at the cache of the running manager.
func (c *inFlightCollector) use(reader client.Reader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reader = reader
}

// Describe implements prometheus.Collector.
func (c *inFlightCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *inFlightCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	reader := c.reader
	c.mu.Unlock()
	if reader == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var runs workflowsv1alpha1.WorkflowRunList
	if err := reader.List(ctx, &runs); err != nil {
		return
	}
	counts := map[string]int{}
	for i := range runs.Items {
		if !runs.Items[i].Status.Phase.IsFinal() {
			counts[runs.Items[i].Spec.WorkflowName]++
		}
	}
	for workflow, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), workflow)
	}
}
