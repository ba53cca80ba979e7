package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Prometheus metrics of agent turns answered by the manager's built-in backends.
var (
	agentTurnsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "centaur_agent_turns_finished_total",
		Help: "Agent turns the manager finished (answered or failed), by agent and phase.",
	}, []string{"agent", "phase"})
	agentTokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "centaur_agent_tokens_total",
		Help: "Tokens the backends reported for succeeded turns, by agent and type (prompt, completion).",
	}, []string{"agent", "type"})
	agentTurnDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "centaur_agent_turn_duration_seconds",
		Help:    "Time from claiming a turn to the backend's answer or failure, retries included, by agent.",
		Buckets: prometheus.ExponentialBuckets(0.1, 2, 12),
	}, []string{"agent"})
)

func init() {
	metrics.Registry.MustRegister(agentTurnsFinished, agentTokens, agentTurnDuration)
}
