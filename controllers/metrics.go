package controllers

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sigs.k8s.io/controller-runtime/pkg/metrics"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Prometheus metrics of the engine, served with controller-runtime's on the metrics endpoint.
var (
	runsStarted  = counterVec("centaur_workflow_runs_started_total", "Workflow runs the engine started, by workflow.", "workflow")
	runsFinished = counterVec("centaur_workflow_runs_finished_total", "Workflow runs that reached a final phase, by workflow and phase.", "workflow", "phase")
	runsInFlight = register(&inFlightCollector{desc: prometheus.NewDesc(
		"centaur_workflow_runs_in_flight",
		"Workflow runs not yet in a final phase, by workflow, counted from the manager's cache.",
		[]string{"workflow"}, nil)})
	stepDuration = histogramVec("centaur_workflow_step_duration_seconds", "Duration of one attempt of a step's function, by workflow and outcome.",
		prometheus.ExponentialBuckets(0.001, 4, 10), "workflow", "outcome")
	stepAttempts = counterVec("centaur_workflow_step_attempts_total", "Calls of step functions, by workflow and outcome (succeeded, retrying, failed).", "workflow", "outcome")
)

// register adds c to controller-runtime's registry, whose metrics the manager serves, and
// returns it; counterVec, gaugeVec, histogramVec, counter and gauge make and register one
// metric each.
func register[C prometheus.Collector](c C) C {
	metrics.Registry.MustRegister(c)
	return c
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return register(prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return register(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return register(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels))
}

func counter(name, help string) prometheus.Counter {
	return register(prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

func gauge(name, help string) prometheus.Gauge {
	return register(prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

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
