// Command chaos is the crash test: it runs the real manager binary (hack/testmanager) against a
// real control plane whose etcd keeps its data on disk with fsync on, starts many concurrent
// multi-step runs whose every step execution appends a line to a ledger file outside the
// cluster, and kills things for real while they run: the manager with SIGKILL at random
// moments, many times; etcd once (SIGKILL, then a restart on the same data); and, with two
// managers under leader election, the leader; then, with --sharding, replicas each holding a
// shard of the runs, SIGKILLed, stopped and added at random while runs are in flight. Every
// third run is of the ledger workflow's Python twin (a workflow file the managers load from
// --workflow-dirs and run in their CPython workers), and the managers' Python workers are
// SIGKILLed at random moments too, beside the managers' own kills. At the
// end it proves from the ledger and the journals that every run reached its final phase, that
// no completed step ran again (a step ran twice only when it was in flight at a kill or a
// stop: never because a run moved between live replicas), that no run was lost and that no
// step was recorded twice, reports how soon a killed replica's steps ran again elsewhere, and
// prints the counts.
//
// `make chaos` runs the big version; hack/chaos/chaos_test.go runs a small one in `make test`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config is the crash test's workload and kills.
type config struct {
	runs          int
	steps         int
	longEvery     int
	longSteps     int
	longSleep     int
	sleepEvery    int
	sleepMillis   int64
	failEvery     int
	backoffMillis int64
	workMillis    int64
	kills         int
	minUptime     time.Duration
	maxUptime     time.Duration
	etcdDown      time.Duration
	parallelism   int
	// pythonEvery makes every n-th run one of the Python twin (0: none); workerKills is how many
	// of the managers' Python workers are SIGKILLed in each manager's life and between the
	// sharded phase's events.
	pythonEvery int
	workerKills int
	seed        int64
	timeout     time.Duration
	skipEtcd    bool
	skipLeader  bool
	race        bool
	managerBin  string
	workDir     string

	// The sharded phase: shardRuns runs (none: no phase) executed by shardReplicas sharded
	// replicas while shardEvents kills, stops and adds happen; the replicas' lease timings;
	// whether each kill is followed by room for the failover (the lease plus resumeSlack)
	// before the next event, so that every resume after a kill is judged.
	shardRuns, shardReplicas, shardEvents     int
	leaseDuration, renewDeadline, retryPeriod time.Duration
	failoverRoom                              bool
}

// bigConfig is what `make chaos` runs.
func bigConfig() config {
	return config{
		runs: 300, steps: 10, longEvery: 10, longSteps: 150, longSleep: 25,
		sleepEvery: 4, sleepMillis: 1000, failEvery: 5, backoffMillis: 300, workMillis: 20,
		kills: 30, minUptime: 500 * time.Millisecond, maxUptime: 4 * time.Second, etcdDown: 2 * time.Second,
		parallelism: 16, pythonEvery: 3, workerKills: 1, timeout: 10 * time.Minute,
		shardRuns: 300, shardReplicas: 3, shardEvents: 12,
		leaseDuration: 6 * time.Second, renewDeadline: 4 * time.Second, retryPeriod: 500 * time.Millisecond,
		failoverRoom: true,
	}
}

// smallConfig is what `make test` runs: a few runs and kills, one after the other (no room for
// failovers, which would add half a minute).
func smallConfig() config {
	return config{
		runs: 12, steps: 6, longEvery: 4, longSteps: 60, longSleep: 25,
		sleepEvery: 3, sleepMillis: 500, failEvery: 4, backoffMillis: 200, workMillis: 50,
		kills: 3, minUptime: 800 * time.Millisecond, maxUptime: 2500 * time.Millisecond, etcdDown: time.Second,
		parallelism: 4, pythonEvery: 3, workerKills: 1, timeout: 3 * time.Minute,
		shardRuns: 12, shardReplicas: 3, shardEvents: 3,
		leaseDuration: 4 * time.Second, renewDeadline: 3 * time.Second, retryPeriod: 500 * time.Millisecond,
	}
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg, os.Stderr)
	if rep != nil {
		fmt.Println(rep.String())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("chaos: PASS")
}

// parseFlags reads the command line; -small chooses the small workload as the defaults.
func parseFlags(args []string) (config, error) {
	cfg := bigConfig()
	for _, a := range args {
		if a == "-small" || a == "--small" {
			cfg = smallConfig()
		}
	}
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.Bool("small", false, "The small workload of `make test`.")
	fs.IntVar(&cfg.runs, "runs", cfg.runs, "Runs in all, created in batches while the kills go on.")
	fs.IntVar(&cfg.steps, "steps", cfg.steps, "Steps of each run (but the long ones).")
	fs.IntVar(&cfg.longEvery, "long-every", cfg.longEvery, "Every n-th run is a long one, whose journal is sealed into segments while the kills go on (0: none).")
	fs.IntVar(&cfg.longSteps, "long-steps", cfg.longSteps, "Steps of each long run.")
	fs.IntVar(&cfg.longSleep, "long-sleep-every", cfg.longSleep, "A durable sleep before every n-th step of a long run.")
	fs.IntVar(&cfg.sleepEvery, "sleep-every", cfg.sleepEvery, "A durable sleep before every n-th step (0: none).")
	fs.Int64Var(&cfg.sleepMillis, "sleep-ms", cfg.sleepMillis, "Length of those sleeps.")
	fs.IntVar(&cfg.failEvery, "fail-every", cfg.failEvery, "The first attempt of every n-th step fails and is retried (0: none).")
	fs.Int64Var(&cfg.backoffMillis, "backoff-ms", cfg.backoffMillis, "Backoff before a retry.")
	fs.Int64Var(&cfg.workMillis, "work-ms", cfg.workMillis, "How long each step works after it recorded itself in the ledger (widens the window a kill hits).")
	fs.IntVar(&cfg.kills, "kills", cfg.kills, "SIGKILLs of the single manager (the etcd kill and the leader kill come on top).")
	fs.DurationVar(&cfg.minUptime, "min-uptime", cfg.minUptime, "Shortest life of a manager before its kill.")
	fs.DurationVar(&cfg.maxUptime, "max-uptime", cfg.maxUptime, "Longest life of a manager before its kill.")
	fs.DurationVar(&cfg.etcdDown, "etcd-down", cfg.etcdDown, "How long etcd stays dead after its kill.")
	fs.IntVar(&cfg.parallelism, "parallelism", cfg.parallelism, "The managers' --max-concurrent-reconciles.")
	fs.IntVar(&cfg.pythonEvery, "python-every", cfg.pythonEvery, "Every n-th run is one of the ledger workflow's Python twin (0: none).")
	fs.IntVar(&cfg.workerKills, "worker-kills", cfg.workerKills, "SIGKILLs of Python workers in each manager's life, and between the sharded phase's events.")
	fs.IntVar(&cfg.shardRuns, "shard-runs", cfg.shardRuns, "Runs of the sharded phase (0: no sharded phase).")
	fs.IntVar(&cfg.shardReplicas, "shard-replicas", cfg.shardReplicas, "Sharded replicas at the start of the sharded phase.")
	fs.IntVar(&cfg.shardEvents, "shard-events", cfg.shardEvents, "Kills, stops and adds of sharded replicas.")
	fs.DurationVar(&cfg.leaseDuration, "lease-duration", cfg.leaseDuration, "The sharded replicas' --lease-duration (whole seconds).")
	fs.DurationVar(&cfg.renewDeadline, "lease-renew-deadline", cfg.renewDeadline, "The sharded replicas' --lease-renew-deadline.")
	fs.DurationVar(&cfg.retryPeriod, "lease-retry-period", cfg.retryPeriod, "The sharded replicas' --lease-retry-period.")
	fs.BoolVar(&cfg.failoverRoom, "failover-room", cfg.failoverRoom, "After each kill of a sharded replica, wait the lease plus 5 s before the next event, so that every resume is judged.")
	fs.Int64Var(&cfg.seed, "seed", 0, "Seed of the kill schedule (0: from the clock; printed either way).")
	fs.DurationVar(&cfg.timeout, "timeout", cfg.timeout, "Longest wait for every run to finish after the last kill.")
	fs.BoolVar(&cfg.skipEtcd, "skip-etcd-kill", false, "Do not kill etcd.")
	fs.BoolVar(&cfg.skipLeader, "skip-leader-kill", false, "Do not run two managers with leader election.")
	fs.BoolVar(&cfg.race, "race", false, "Build the manager with the race detector; a reported race fails the test.")
	fs.StringVar(&cfg.managerBin, "manager-bin", "", "A prebuilt hack/testmanager binary (default: build it).")
	fs.StringVar(&cfg.workDir, "work-dir", "", "Keep etcd's data, the ledger and the logs here (default: a temporary dir, removed on success).")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.seed == 0 {
		cfg.seed = time.Now().UnixNano()
	}
	if cfg.maxUptime < cfg.minUptime {
		return cfg, fmt.Errorf("-max-uptime %s is below -min-uptime %s", cfg.maxUptime, cfg.minUptime)
	}
	return cfg, nil
}
