package controllers

import (
	"github.com/centaur-dev/workflow-operator/internal/metric"
	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metrics of agent turns answered by the manager's built-in backends.
var (
	agentTurnsFinished = metric.CounterVec("centaur_agent_turns_finished_total", "Agent turns the manager finished (answered or failed), by agent and phase.", "agent", "phase")
	agentTokens        = metric.CounterVec("centaur_agent_tokens_total", "Tokens the backends reported for succeeded turns, by agent and type (prompt, completion).", "agent", "type")
	agentTurnDuration  = metric.HistogramVec("centaur_agent_turn_duration_seconds", "Time from claiming a turn to the backend's answer or failure, retries included, by agent.",
		prometheus.ExponentialBuckets(0.1, 2, 12), "agent")
)
