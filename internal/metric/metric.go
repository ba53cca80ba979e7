// Package metric makes the operator's Prometheus metrics and registers each with
// controller-runtime's registry, which the manager serves on its metrics endpoint: the
// engine's (package controllers) and sharding's (package placement) alike.
package metric

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Register adds c to controller-runtime's registry and returns it. It panics on a name
// registered twice: a programming error found at the process's start, never at run time.
func Register[C prometheus.Collector](c C) C {
	metrics.Registry.MustRegister(c)
	return c
}

// CounterVec makes and registers a counter with labels.
func CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return Register(prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

// GaugeVec makes and registers a gauge with labels.
func GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return Register(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

// HistogramVec makes and registers a histogram with labels.
func HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return Register(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels))
}

// Counter makes and registers a counter.
func Counter(name, help string) prometheus.Counter {
	return Register(prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// Gauge makes and registers a gauge.
func Gauge(name, help string) prometheus.Gauge {
	return Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}
