package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// The sharded phase: after the single manager's runs finished, cfg.shardReplicas managers run
// with --sharding (each holding a Lease as a shard) and execute a second set of runs while
// replicas are SIGKILLed at random, stopped (SIGTERM, which releases the lease) and added. The
// verifier then holds these runs to the same guarantees, with one more: a move between live
// replicas (a replica joining takes its share by drains) never runs a step again, so the only
// re-executions allowed are those of steps in flight at a kill or a stop. It also measures how
// long after a kill each interrupted step ran again elsewhere: at most the lease duration plus
// one reconcile is the target.

// shardAction is one event of the sharded phase.
type shardAction string

// Events of the sharded phase.
const (
	actionKill   shardAction = "kill"
	actionStop   shardAction = "stop"
	actionAdd    shardAction = "add"
	shardLeaseNS             = leaseNamespace
)

// crashShards runs the sharded phase: it waits for the earlier runs and stops their manager,
// starts cfg.shardReplicas sharded managers, and then, cfg.shardEvents times, creates the next
// batch of runs, waits a random uptime and kills, stops or adds a replica; a killed or stopped
// replica is replaced after a moment, so that two to cfg.shardReplicas+1 replicas run. With
// cfg.failoverRoom (make chaos) the event after a kill waits at least the lease plus
// resumeSlack: room for the failover, so that every step in flight at a kill is judged against
// the bound (see checkResumes) instead of being excused by the next kill.
func (c *chaos) crashShards(ctx context.Context) error {
	if _, err := c.awaitFinal(ctx); err != nil {
		return fmt.Errorf("before the sharded phase: %w", err)
	}
	for _, m := range c.managers {
		if !m.Exited() {
			c.stop(m, "manager")
		}
	}
	c.logf("sharded phase: %d replicas, lease %s, %d runs, %d events", c.cfg.shardReplicas, c.cfg.leaseDuration, c.cfg.shardRuns, c.cfg.shardEvents)
	var live []*manager
	for range c.cfg.shardReplicas {
		m, err := c.startShard()
		if err != nil {
			return err
		}
		live = append(live, m)
	}
	batches := c.cfg.shardEvents + 1
	var room time.Duration
	for event := range c.cfg.shardEvents {
		var err error
		if live, err = c.replaceLost(live); err != nil {
			return err
		}
		if err := c.createShardBatch(ctx, batches); err != nil {
			return err
		}
		if event == 0 {
			if err := c.awaitAssigned(ctx); err != nil {
				return err
			}
		}
		if err := c.live(ctx, live, max(c.uptime(), room)); err != nil {
			return err
		}
		var action shardAction
		if live, action, err = c.shardEvent(ctx, event, live); err != nil {
			return err
		}
		room = 0
		if action == actionKill && c.cfg.failoverRoom {
			room = c.cfg.leaseDuration + resumeSlack
		}
	}
	return c.createShardBatch(ctx, batches)
}

// shardEvent carries out the phase's next event on the live replicas and returns them after it,
// and the event: a SIGKILL (the first event, and about half of the others), a stop, or an add;
// a removal is followed by an add on every other event, or when fewer than two replicas are
// left.
func (c *chaos) shardEvent(ctx context.Context, event int, live []*manager) ([]*manager, shardAction, error) {
	action := actionKill
	switch r := c.rng.IntN(4); {
	case event == 0: // the first event is always a kill
	case r == 2 && len(live) > 2:
		action = actionStop
	case r == 3 && len(live) <= c.cfg.shardReplicas:
		action = actionAdd
	}
	if action == actionAdd {
		m, err := c.startShard()
		return append(live, m), action, err
	}
	victim := live[c.rng.IntN(len(live))]
	live = slices.DeleteFunc(live, func(m *manager) bool { return m == victim })
	if action == actionKill {
		if err := c.kill(victim, "shard "+victim.shard); err != nil {
			return live, action, err
		}
	} else {
		c.stop(victim, "shard "+victim.shard)
	}
	if len(live) < 2 || event%2 == 1 {
		// Replace it a moment later, while its runs move.
		if err := testcluster.Sleep(ctx, c.cfg.leaseDuration/2); err != nil {
			return live, action, err
		}
		m, err := c.startShard()
		return append(live, m), action, err
	}
	return live, action, nil
}

// awaitAssigned waits until every run created so far has a shard: the replicas hold their
// leases and one of them runs the sharder.
func (c *chaos) awaitAssigned(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var list workflowsv1alpha1.WorkflowRunList
		err := c.client.List(ctx, &list, client.InNamespace(runNamespace))
		unassigned := 0
		for i := range list.Items {
			if list.Items[i].Labels[workflowsv1alpha1.LabelShard] == "" {
				unassigned++
			}
		}
		if err == nil && unassigned == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d runs have no shard a minute after the sharded replicas started (%v)", unassigned, err)
		}
		if err := testcluster.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// replaceLost replaces the live replicas that exited because they lost a lease (see
// noteLeaseLost); a replica that exited for any other reason fails the test.
func (c *chaos) replaceLost(live []*manager) ([]*manager, error) {
	var out []*manager
	for _, m := range live {
		if !m.Exited() {
			out = append(out, m)
			continue
		}
		if !c.noteLeaseLost(m) {
			return nil, fmt.Errorf("replica %s (pid %d) exited by itself (see %s)", m.shard, m.PID(), m.LogFile)
		}
		next, err := c.startShard()
		if err != nil {
			return nil, err
		}
		out = append(out, next)
	}
	return out, nil
}

// Messages of a manager that exits because it could not renew a lease in time.
var leaseLostMessages = []string{"leader election lost", "lost the lease of shard"}

// noteLeaseLost reports whether manager m, which exited by itself, did so because it could not
// renew its shard lease or the leader's lease within the renew deadline: on a machine this busy
// that is the designed reaction (stop at once, the others take the runs over), and the test
// counts it like a kill. It records m as the cause of the steps it left in flight.
func (c *chaos) noteLeaseLost(m *manager) bool {
	if _, known := c.killed[m.PID()]; known {
		return true
	}
	data, err := os.ReadFile(m.LogFile)
	if err != nil || !slices.ContainsFunc(leaseLostMessages, func(msg string) bool { return strings.Contains(string(data), msg) }) {
		return false
	}
	c.killed[m.PID()] = "lease lost by shard " + m.shard
	c.stats.LeaseLosses++
	c.logf("replica %s (pid %d) lost a lease and exited", m.shard, m.PID())
	return true
}

// startShard starts a sharded replica with a name no replica had before.
func (c *chaos) startShard() (*manager, error) {
	c.shards++
	shard := fmt.Sprintf("shard-%02d", c.shards)
	m, err := c.startManager(false, "--sharding", "--shard-name="+shard, "--leader-elect", "--leader-election-namespace="+shardLeaseNS,
		"--lease-duration="+c.cfg.leaseDuration.String(), "--lease-renew-deadline="+c.cfg.renewDeadline.String(),
		"--lease-retry-period="+c.cfg.retryPeriod.String())
	if err != nil {
		return nil, err
	}
	m.shard = shard
	c.stats.ShardAdds++
	c.logf("started replica %s (pid %d)", shard, m.PID())
	return m, nil
}

// stop ends manager m with SIGTERM: it finishes or abandons its executions and releases its
// lease. A step it abandons runs again elsewhere, which the verifier allows for its pid.
func (c *chaos) stop(m *manager, why string) {
	started := time.Now()
	_ = m.Stop(30 * time.Second)
	c.killed[m.PID()] = "stopped " + why
	c.stoppedAt[m.PID()] = started
	if why != "manager" {
		c.stats.ShardStops++
	}
	c.logf("SIGTERM %s pid %d; it stopped after %s", why, m.PID(), time.Since(started).Round(time.Millisecond))
}

// createShardBatch creates the next of batches batches of the sharded phase's runs.
func (c *chaos) createShardBatch(ctx context.Context, batches int) error {
	size := (c.cfg.shardRuns + batches - 1) / batches
	for range size {
		if c.shardRuns == c.cfg.shardRuns {
			return nil
		}
		if err := c.createRun(ctx, fmt.Sprintf("shard-%05d", c.shardRuns), c.workflowOf(c.shardRuns), c.input); err != nil {
			return err
		}
		c.shardRuns++
	}
	return nil
}
