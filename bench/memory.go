package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
)

// The memory figure reads the manager's resident set size (VmRSS) with no run in the cluster,
// with memoryRuns runs sleeping, and with as many finished, each run with an input of
// memoryInput bytes (64 KiB at full size), which the manager's lean cache leaves out. Each is
// read from a manager started afresh over that state, once it has settled (its CPU use
// stopped), so that the figure is the steady state of the cache and the timers and not the
// garbage of having run the runs.

// memoryNamespace holds the memory figure's runs.
const memoryNamespace = "bench-memory"

// memoryFigures are the manager's RSS, in bytes.
type memoryFigures struct {
	baseline, sleeping, finished int64
}

// measureMemory clears every earlier figure's runs, then measures the three states.
func (h *harness) measureMemory(ctx context.Context, res *results) error {
	if err := h.clearEarlierRuns(ctx); err != nil {
		return err
	}
	if err := h.ensureNamespace(ctx, memoryNamespace); err != nil {
		return err
	}
	f := &res.memory
	var err error
	if f.baseline, err = h.settledRSS(ctx, "idle"); err != nil {
		return err
	}
	if err := h.startSleepers(ctx); err != nil {
		return err
	}
	if f.sleeping, err = h.settledRSS(ctx, "sleeping"); err != nil {
		return err
	}
	if err := h.cancelSleepers(ctx); err != nil {
		return err
	}
	if f.finished, err = h.settledRSS(ctx, "finished"); err != nil {
		return err
	}
	h.logf("memory: idle %.0f MiB, %d runs sleeping %.0f MiB, finished %.0f MiB",
		mib(f.baseline), h.cfg.memoryRuns, mib(f.sleeping), mib(f.finished))
	return nil
}

// settledRSS starts a manager, waits until it has settled and returns its RSS; with
// -profile-dir it also writes the manager's heap profile then, as memory-<state>.heap (compare
// two with go tool pprof -diff_base).
func (h *harness) settledRSS(ctx context.Context, state string) (int64, error) {
	m, err := h.startManager(ctx)
	if err != nil {
		return 0, err
	}
	defer m.stop()
	if err := waitSettled(ctx, m.PID(), h.cfg.timeout); err != nil {
		return 0, err
	}
	window := rssSettledWindow
	if h.cfg.smoke {
		window = time.Second // tiny sizes leave little to return
	}
	rss, err := steadyRSS(ctx, m.PID(), window)
	if err == nil && h.cfg.profileDir != "" {
		err = m.writeHeapProfile(ctx, filepath.Join(h.cfg.profileDir, "memory-"+state+".heap"))
	}
	return rss, err
}

// waitSettled waits until pid used less than 2% of a CPU over a second, twice in a row.
func waitSettled(ctx context.Context, pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	quiet := 0
	last := testcluster.CPUTime(pid)
	for quiet < 2 {
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager kept busy for %s", timeout)
		}
		if err := testcluster.Sleep(ctx, time.Second); err != nil {
			return err
		}
		now := testcluster.CPUTime(pid)
		if now-last < 20*time.Millisecond {
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
	return nil
}

// Steady RSS: once the manager is idle, the Go runtime still returns the memory that start-up
// garbage (every run's input is read once) left behind, a little at a time. steadyRSS waits
// until the RSS stopped shrinking: it dropped less than rssSettledBytes over rssSettledWindow,
// or rssSettledMax passed.
const (
	rssSettledBytes  = 256 << 10
	rssSettledWindow = 10 * time.Second
	rssSettledMax    = 2 * time.Minute
)

// steadyRSS returns pid's RSS once it stopped shrinking over window.
func steadyRSS(ctx context.Context, pid int, window time.Duration) (int64, error) {
	deadline := time.Now().Add(rssSettledMax)
	start, err := testcluster.RSS(pid)
	for err == nil && time.Now().Before(deadline) {
		if err := testcluster.Sleep(ctx, window); err != nil {
			return 0, err
		}
		var now int64
		if now, err = testcluster.RSS(pid); err == nil && start-now < rssSettledBytes {
			return now, nil
		}
		start = now
	}
	return start, err
}

// clearEarlierRuns deletes the runs earlier figures left, so that a figure's manager spends
// nothing on them.
func (h *harness) clearEarlierRuns(ctx context.Context) error {
	for _, ns := range []string{rawNamespace, seqNamespace, parallelNamespace, sleepNamespace, pythonNamespace, blobsNamespace, webhookNamespace, startNamespace} {
		if err := h.deleteRuns(ctx, ns); err != nil {
			return err
		}
	}
	return nil
}

// startSleepers starts memoryRuns runs that sleep for an hour, with a manager, and waits until
// all of them sleep.
func (h *harness) startSleepers(ctx context.Context) error {
	m, err := h.startManager(ctx)
	if err != nil {
		return err
	}
	defer m.stop()
	runs := make([]*workflowsv1alpha1.WorkflowRun, h.cfg.memoryRuns)
	for i := range runs {
		input := testflows.SleepInput{SleepMillis: time.Hour.Milliseconds(), Pad: strings.Repeat("m", h.cfg.memoryInput)}
		runs[i] = newRun(memoryNamespace, fmt.Sprintf("mem-%05d", i), testflows.SleepName, input)
	}
	if err := h.createRuns(ctx, runs, h.cfg.senders); err != nil {
		return err
	}
	return h.waitPhase(ctx, workflowsv1alpha1.PhaseSleeping)
}

// cancelSleepers cancels every sleeping run, with a manager, and waits until all are final.
func (h *harness) cancelSleepers(ctx context.Context) error {
	m, err := h.startManager(ctx)
	if err != nil {
		return err
	}
	defer m.stop()
	runs, err := h.listRuns(ctx, memoryNamespace)
	if err != nil {
		return err
	}
	err = parallel(ctx, len(runs), h.cfg.senders, func(ctx context.Context, i int) error {
		patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"cancel":true}}`))
		if err := h.client.Patch(ctx, &runs[i], patch); err != nil {
			return fmt.Errorf("cancel run %s: %w", runs[i].Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return h.waitPhase(ctx, workflowsv1alpha1.PhaseCancelled)
}

// waitPhase polls until every run of the memory figure is in phase.
func (h *harness) waitPhase(ctx context.Context, phase workflowsv1alpha1.RunPhase) error {
	return h.waitRunsIn(ctx, memoryNamespace, h.cfg.memoryRuns, phase)
}

// waitRunsIn waits until n runs of namespace ns are in phase.
func (h *harness) waitRunsIn(ctx context.Context, ns string, n int, phase workflowsv1alpha1.RunPhase) error {
	deadline := time.Now().Add(h.cfg.timeout)
	for {
		runs, err := h.listRuns(ctx, ns)
		if err != nil {
			return err
		}
		in := 0
		for i := range runs {
			if runs[i].Status.Phase == phase {
				in++
			}
		}
		if in == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d runs of namespace %s reached %s within %s", in, n, ns, phase, h.cfg.timeout)
		}
		if err := testcluster.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}
