// Package placement places runs and agent turns on the replicas of a sharded manager
// (--sharding): the Sharder, which the elected replica runs and which writes every object's
// shard label from the ring and the table of package sharding; the gate in front of a
// sharded kind's reconciler, which hands over what the sharder drained; the state every
// replica keeps of the ring (from the shard leases) and of every run (a lean view); and the
// cache and client options that restrict a replica to its shard. A nil *Sharding is the
// single-leader mode, in which every method says what that mode does. Package sharding holds
// the pure parts (ring, table, leases); this package is their controllers.
package placement
