package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// Python workers: every manager runs the ledger workflow's Python twin in CPython worker
// processes of its own (its children). The crash test SIGKILLs them at random moments while
// their managers live, as the OOM killer or a crash would: a step function killed mid-way fails
// its attempt (WorkerExited) and is retried by its retry policy, and a handler killed mid-turn
// is executed again from its journal. Workers are killed only once their manager is ready,
// that is, once it has loaded its workflow files: a worker killed while it imports a file at
// start-up leaves that file unloaded until it changes, which is another test.

// live lets managers work for d, SIGKILLing cfg.workerKills of their Python workers at random
// moments meanwhile.
func (c *chaos) live(ctx context.Context, managers []*manager, d time.Duration) error {
	moments := make([]time.Duration, c.cfg.workerKills)
	for i := range moments {
		moments[i] = time.Duration(c.rng.Int64N(int64(d) + 1))
	}
	slices.Sort(moments)
	start := time.Now()
	for _, at := range moments {
		if err := testcluster.Sleep(ctx, time.Until(start.Add(at))); err != nil {
			return err
		}
		c.killWorker(managers)
	}
	return testcluster.Sleep(ctx, time.Until(start.Add(d)))
}

// workerOf is a Python worker process of a manager.
type workerOf struct {
	pid     int
	manager *manager
}

// killWorker SIGKILLs one Python worker, chosen at random among those of the ready managers,
// and records it; without any, it counts a skipped kill.
func (c *chaos) killWorker(managers []*manager) {
	var candidates []workerOf
	for _, m := range managers {
		if m.Exited() || !ready(m) {
			continue
		}
		for _, pid := range pythonWorkers(m.PID()) {
			candidates = append(candidates, workerOf{pid: pid, manager: m})
		}
	}
	if len(candidates) == 0 {
		c.stats.WorkerKillsSkipped++
		return
	}
	victim := candidates[c.rng.IntN(len(candidates))]
	c.killedWorkers[victim.pid] = time.Now()
	if err := syscall.Kill(victim.pid, syscall.SIGKILL); err != nil {
		delete(c.killedWorkers, victim.pid) // it exited meanwhile
		c.stats.WorkerKillsSkipped++
		return
	}
	c.stats.WorkerKills++
	c.logf("SIGKILL python worker pid %d of manager pid %d", victim.pid, victim.manager.PID())
}

// ready reports whether manager m answers its readiness probe: it has loaded its workflow
// files.
func ready(m *manager) bool {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	resp, err := hc.Get(m.Listeners.Probes + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// pythonWorkers returns the pids of the Python worker processes of manager pid.
func pythonWorkers(manager int) []int {
	kids, err := testcluster.ChildrenOf(manager)
	if err != nil {
		return nil
	}
	var pids []int
	for _, k := range kids {
		if strings.HasPrefix(k.Name, "python") {
			pids = append(pids, k.PID)
		}
	}
	return pids
}
