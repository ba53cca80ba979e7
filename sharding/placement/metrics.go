package placement

import "github.com/centaur-dev/workflow-operator/internal/metric"

// Prometheus metrics of sharding. Each replica reports its own shard; the elected replica
// reports what the sharder did and every live shard's load. The engine's metrics
// (centaur_workflow_runs_in_flight and the others) count, on each replica, the runs of its
// own shard.
var (
	shardInfo          = metric.GaugeVec("centaur_shard_info", "1 for the shard this replica holds (its lease's name).", "shard")
	ringMembers        = metric.Gauge("centaur_shard_ring_members", "Live shards on the ring, as this replica sees the shard leases.")
	shardHandovers     = metric.CounterVec("centaur_shard_handovers_total", "Objects this shard handed over after the sharder drained them, by kind (run, turn).", "kind")
	sharderAssignments = metric.CounterVec("centaur_sharder_assignments_total",
		"Shard labels the sharder wrote, by kind (run, turn) and reason (unassigned: created without one or handed over; orphaned: its shard died).", "kind", "reason")
	sharderDrains = metric.CounterVec("centaur_sharder_drains_total",
		"Objects the sharder asked a live shard to hand over, by kind (run: rebalancing after a shard joined; turn: following its run).", "kind")
	sharderTakeovers = metric.Counter("centaur_sharder_lease_takeovers_total", "Expired shard leases the sharder took over, declaring their shard dead.")
	sharderLoad      = metric.GaugeVec("centaur_sharder_shard_load", "Unfinished runs assigned to each live shard, as the sharder counts them.", "shard")
)
