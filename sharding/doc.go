// Package sharding spreads workflow runs over the manager's replicas: each replica holds a
// coordination.k8s.io Lease as a shard, the shards whose leases are live form a ring, and each
// run is assigned to one shard by consistent hashing with bounded loads, recorded in the run's
// label workflows.centaur.dev/shard. This package holds the parts that know nothing of runs:
//
//   - Ring: consistent hashing of keys onto the live shards (virtual nodes, xxhash), so that a
//     shard joining or leaving moves only the keys that must move.
//   - Table: what every replica knows of the assignments (which shard holds each run, and
//     whether the run is unfinished), the loads that follow from it, and the decisions taken on
//     it: where a new run goes (Place: the first shard on the key's walk of the ring whose load
//     is under (1+Epsilon) times the average, as in Mirrokni, Thorup and Zadimoghaddam's
//     "consistent hashing with bounded loads"), which runs leave an overloaded shard when a
//     shard joins (Rebalance), and which runs lost their shard (Orphans).
//   - Leases: the labels of shard leases, their states (live, expired, released, taken over by
//     the sharder) and the ring they make (Members); Holder keeps this replica's own lease.
//
// Why bounded loads: with plain consistent hashing each shard's share of n runs is binomial,
// so 600 runs over 3 shards miss an even split by more than 10 % about a quarter of the time
// (more with few virtual nodes). A cap of (1+Epsilon) times the average keeps every shard
// within a few percent, while a run still goes to the first shard of its own walk that has
// room, so assignments stay spread by the key and stable as long as shards do not change.
//
// The controllers package adapts this to WorkflowRuns and AgentRuns: it feeds the Table from an
// informer, labels runs at creation, runs the elected sharder that assigns and moves runs, and
// hands runs over between executions when the sharder drains them (docs/scaling.md).
package sharding
