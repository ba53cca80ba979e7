package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Prometheus metrics of sharding. Each replica reports its own shard; the elected replica
// reports what the sharder did and every live shard's load. The engine's metrics
// (centaur_workflow_runs_in_flight and the others) count, on each replica, the runs of its
// own shard.
var (
	shardInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "centaur_shard_info",
		Help: "1 for the shard this replica holds (its lease's name).",
	}, []string{"shard"})
	ringMembers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "centaur_shard_ring_members",
		Help: "Live shards on the ring, as this replica sees the shard leases.",
	})
	shardHandovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "centaur_shard_handovers_total",
		Help: "Objects this shard handed over after the sharder drained them, by kind (run, turn).",
	}, []string{"kind"})
	sharderAssignments = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "centaur_sharder_assignments_total",
		Help: "Shard labels the sharder wrote, by kind (run, turn) and reason (unassigned: created without one or handed over; orphaned: its shard died).",
	}, []string{"kind", "reason"})
	sharderDrains = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "centaur_sharder_drains_total",
		Help: "Objects the sharder asked a live shard to hand over, by kind (run: rebalancing after a shard joined; turn: following its run).",
	}, []string{"kind"})
	sharderTakeovers = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "centaur_sharder_lease_takeovers_total",
		Help: "Expired shard leases the sharder took over, declaring their shard dead.",
	})
	sharderLoad = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "centaur_sharder_shard_load",
		Help: "Unfinished runs assigned to each live shard, as the sharder counts them.",
	}, []string{"shard"})
)

func init() {
	metrics.Registry.MustRegister(shardInfo, ringMembers, shardHandovers, sharderAssignments, sharderDrains, sharderTakeovers, sharderLoad)
}
