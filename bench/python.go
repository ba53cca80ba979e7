package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
	"github.com/centaur-dev/workflow-operator/runstore"
)

// The Python figures (part of figure files): what the manager's CPython workers add to a run of
// a Python workflow file (testflows.NoopPy, the Python twin of bench-noop) on the same engine.
//
//   - steps/s of bench-noop-py against bench-noop in Go (measureFiles alternates them);
//   - the per-step time of a run of pyLongSteps steps against one of shortSteps, alternating,
//     cfg.repeat times: a worker keeps the run's handler between steps, so a step should cost
//     the same however many came before it;
//   - the cold replay: a run of pyReplaySteps steps sleeps, the manager (and its workers with
//     it) is restarted meanwhile, and the run's first execution on the new manager replays the
//     handler through every recorded step. Timed from the new manager's readiness to the
//     start of the step after the sleep, as its journal records it;
//   - the workers' memory: pyKeptRuns runs of the product's nightly_report.py kept by the
//     workers at their 30 s settle sleep, less what the same workers held idle.

// pythonNamespace holds the runs of the cold replay and of the worker RSS figure.
const pythonNamespace = "bench-python"

// nightlyReport is the product's Python example's workflow and the input the RSS figure gives
// it; settle is its sleep, and how long it lasts.
const (
	nightlyReportName  = "nightly_report"
	nightlyReportInput = `{"channel":"ops","topic":"x"}`
	nightlySettle      = "settle"
	nightlySettleFor   = 30 * time.Second
)

// pythonFigures are the figures of Python workflow files.
type pythonFigures struct {
	// stepsPerSec is the median steps/s of bench-noop-py runs of fileSteps steps (Go's is
	// engineFigures.goFileStepsPerSec).
	stepsPerSec float64
	// longPerStep and shortPerStep are the medians of the time per step of runs of
	// pyLongSteps and shortSteps steps.
	longPerStep, shortPerStep time.Duration
	// replay is the cold replay.
	replay coldReplay
	// kept is the workers' memory holding nightly_report runs.
	kept keptRSS
}

// coldReplay is what the cold replay measured.
type coldReplay struct {
	// fromReady is from the new manager's readiness to the next step's recorded start;
	// fromStart the same from the new manager's process start.
	fromReady, fromStart time.Duration
	// hits and misses are the new manager's handler cache counts, replayed its turns answered
	// from the journal.
	hits, misses, replayed int
	// managerCPU and workerCPU are the CPU time the new manager and its Python workers used
	// from its readiness until the run succeeded; started counts the workers started meanwhile.
	managerCPU, workerCPU time.Duration
	started               int
}

// keptRSS is the workers' resident memory without and with the kept runs.
type keptRSS struct {
	// workers are the manager's Python workers, by pid.
	workers []workerRSS
	// runs is how many runs the workers kept; sinceFirst how long after the first of them
	// reached its sleep the RSS was read (under nightlySettleFor: none had woken yet).
	runs       int
	sinceFirst time.Duration
}

// workerRSS is one worker's VmRSS idle and with the runs.
type workerRSS struct {
	pid        int
	idle, with int64
}

// added is the RSS the runs added over every worker.
func (k keptRSS) added() int64 {
	var sum int64
	for _, w := range k.workers {
		sum += w.with - w.idle
	}
	return sum
}

// measurePython measures the Python figures but steps/s (measureFiles): the per-step ratio with
// manager m, then the cold replay and the workers' memory, each with managers of their own. It
// returns the manager now running.
func (h *harness) measurePython(ctx context.Context, m *managerProc, res *results) (*managerProc, error) {
	if err := h.measurePythonPerStep(ctx, m, res); err != nil {
		return m, err
	}
	m, err := h.measureColdReplay(ctx, m, res)
	if err != nil {
		return m, fmt.Errorf("cold replay: %w", err)
	}
	if m, err = h.measureKeptRSS(ctx, m, res); err != nil {
		return m, fmt.Errorf("worker RSS: %w", err)
	}
	return m, nil
}

// measurePythonPerStep alternates a bench-noop-py run of pyLongSteps steps with one of
// shortSteps steps, cfg.repeat times, and keeps the medians of their time per step.
func (h *harness) measurePythonPerStep(ctx context.Context, m *managerProc, res *results) error {
	var long, short []float64
	for rep := range h.cfg.repeat {
		for _, r := range []struct {
			steps   int
			perStep *[]float64
		}{{h.cfg.pyLongSteps, &long}, {h.cfg.shortSteps, &short}} {
			name := fmt.Sprintf("%s-%d", testflows.NoopPyName, r.steps)
			took, err := h.sequentialRun(ctx, m, testflows.NoopPyName, fmt.Sprintf("%s-%d", name, rep), testflows.NoopInput{Steps: r.steps}, profileName(rep, name))
			if err != nil {
				return err
			}
			*r.perStep = append(*r.perStep, took.Seconds()/float64(r.steps))
		}
	}
	p := &res.python
	p.longPerStep, p.shortPerStep = seconds(medianOf(long)), seconds(medianOf(short))
	h.logf("python: per step %s at %d steps (%v ms), %s at %d (%v ms)", p.longPerStep, h.cfg.pyLongSteps, rounded(scaled(long, 1000)),
		p.shortPerStep, h.cfg.shortSteps, rounded(scaled(short, 1000)))
	return nil
}

// scaled multiplies values by k, for a log line.
func scaled(values []float64, k float64) []float64 {
	out := make([]float64, len(values))
	for i, v := range values {
		out[i] = v * k
	}
	return out
}

// measureColdReplay runs bench-noop-py through pyReplaySteps steps into its rest, stops manager
// m while the run sleeps, waits out the sleep and starts a new manager, whose first execution
// of the run replays the handler in a new worker. It returns the new manager.
func (h *harness) measureColdReplay(ctx context.Context, m *managerProc, res *results) (*managerProc, error) {
	n := h.cfg.pyReplaySteps
	name := fmt.Sprintf("py-replay-%d", n)
	input := testflows.NoopPyInput{NoopInput: testflows.NoopInput{Steps: n}, RestMillis: h.cfg.pyRest.Milliseconds()}
	start := time.Now()
	if err := h.client.Create(ctx, newRun(pythonNamespace, name, testflows.NoopPyName, input)); err != nil {
		return m, fmt.Errorf("create run %s: %w", name, err)
	}
	if err := h.waitRunPhase(ctx, pythonNamespace, name, workflowsv1alpha1.PhaseSleeping); err != nil {
		return m, err
	}
	m.stop()
	rest, err := h.journalEntry(ctx, pythonNamespace, name, "rest")
	if err != nil {
		return m, err
	}
	if rest.WakeAt == nil {
		return m, fmt.Errorf("run %s records its rest without a wake time", name)
	}
	if time.Now().After(rest.WakeAt.Time) {
		return m, fmt.Errorf("the manager took longer to stop than run %s rests (%s): raise -py-rest", name, h.cfg.pyRest)
	}
	// The new manager starts once the rest is over, so that it executes the run at once.
	if err := testcluster.Sleep(ctx, time.Until(rest.WakeAt.Time)+100*time.Millisecond); err != nil {
		return m, err
	}
	next, err := h.startManager(ctx)
	if err != nil {
		return m, err
	}
	f := &res.python.replay
	if _, err := h.waitRun(ctx, pythonNamespace, name, start); err != nil {
		return next, err
	}
	if err := f.useSince(next.PID(), next.readyCPU, next.readyWorkers); err != nil {
		return next, err
	}
	after, err := h.journalEntry(ctx, pythonNamespace, name, "after")
	if err != nil {
		return next, err
	}
	if after.StartedAt == nil || after.StartedAt.Time.Before(rest.WakeAt.Time) {
		return next, fmt.Errorf("run %s records no start of its step after the rest", name)
	}
	f.fromReady, f.fromStart = after.StartedAt.Sub(next.readyAt), after.StartedAt.Sub(next.startedAt)
	if err := h.replayCounts(ctx, next, f); err != nil {
		return next, err
	}
	h.logf("python: cold replay of %d steps: the next step started %s after the new manager was ready (%s after its start); cache hits %d, misses %d, turns replayed %d; %s",
		n, f.fromReady.Round(time.Millisecond), f.fromStart.Round(time.Millisecond), f.hits, f.misses, f.replayed, f.cpuText())
	return next, nil
}

// useSince records the CPU time manager pid and its Python workers used since they had used
// cpu and workers (by pid; a worker started since counts from 0).
func (f *coldReplay) useSince(pid int, cpu time.Duration, workers map[int]time.Duration) error {
	now, err := workersCPU(pid)
	if err != nil {
		return err
	}
	f.managerCPU = testcluster.CPUTime(pid) - cpu
	for w, used := range now {
		before, ok := workers[w]
		if !ok {
			f.started++
		}
		f.workerCPU += used - before
	}
	return nil
}

// cpuText says what CPU the replay took, by process.
func (f *coldReplay) cpuText() string {
	return fmt.Sprintf("CPU from then to the run's end: manager %s, Python workers %s (%d started)", fmtDur(f.managerCPU), fmtDur(f.workerCPU), f.started)
}

// replayCounts reads manager m's handler cache counts into f and checks that the replay was
// cold: no kept handler, every step's turn answered from the journal.
func (h *harness) replayCounts(ctx context.Context, m *managerProc, f *coldReplay) error {
	for _, c := range []struct {
		name, filter string
		into         *int
	}{
		{"centaur_python_handler_cache_total", `result="hit"`, &f.hits},
		{"centaur_python_handler_cache_total", `result="miss"`, &f.misses},
		{"centaur_python_replayed_turns_total", "", &f.replayed},
	} {
		v, err := scrapeMetric(ctx, m.metricsURL, c.name, c.filter)
		if err != nil {
			return err
		}
		*c.into = int(v)
	}
	if f.hits != 0 || f.misses == 0 || f.replayed < h.cfg.pyReplaySteps {
		return fmt.Errorf("the replay was not cold: %d cache hits, %d misses, %d turns replayed (want 0, at least 1, at least %d)",
			f.hits, f.misses, f.replayed, h.cfg.pyReplaySteps)
	}
	return nil
}

// journalEntry returns the entry named name of run ns/name's whole journal (sealed segments,
// then status).
func (h *harness) journalEntry(ctx context.Context, ns, run, name string) (workflowsv1alpha1.JournalEntry, error) {
	obj := &workflowsv1alpha1.WorkflowRun{}
	if err := h.client.Get(ctx, keyOf(ns, run), obj); err != nil {
		return workflowsv1alpha1.JournalEntry{}, fmt.Errorf("read run %s: %w", run, err)
	}
	opts := runstore.ReadOptions{Limit: runstore.MaxPageEntries}
	for {
		page, err := runstore.ReadJournal(ctx, h.client, obj, opts)
		if err != nil {
			return workflowsv1alpha1.JournalEntry{}, fmt.Errorf("read the journal of run %s: %w", run, err)
		}
		for _, e := range page.Entries {
			if e.Name == name {
				return e, nil
			}
		}
		if opts.Continue = page.Continue; opts.Continue == "" {
			return workflowsv1alpha1.JournalEntry{}, fmt.Errorf("run %s has no journal entry %q", run, name)
		}
	}
}

// measureKeptRSS stops manager m and starts a fresh one, runs bench-noop-py until each of its
// pyWorkers workers has started, reads their RSS idle, then creates pyKeptRuns nightly_report
// runs, waits until every one sleeps at settle (kept by a worker), reads the workers' RSS again
// and deletes the runs before any wakes. It returns the manager it started.
func (h *harness) measureKeptRSS(ctx context.Context, m *managerProc, res *results) (*managerProc, error) {
	m.stop()
	m, err := h.startManager(ctx)
	if err != nil {
		return m, err
	}
	idle, err := h.startWorkers(ctx, m, "py-idle")
	if err != nil {
		return m, err
	}
	f := &res.python.kept
	if err := h.keepNightlyReports(ctx); err != nil {
		return m, err
	}
	first, err := h.firstSettle(ctx)
	if err != nil {
		return m, err
	}
	// Let the workers finish what the last runs' ends left them, briefly: the first runs
	// wake nightlySettleFor after they slept.
	if err := waitQuiet(ctx, pidsOf(idle), time.Second); err != nil {
		return m, err
	}
	if f.workers, err = workersRSS(m.PID(), idle); err != nil {
		return m, err
	}
	f.runs, f.sinceFirst = h.cfg.pyKeptRuns, time.Since(first)
	if err := h.checkStillSettling(ctx); err != nil {
		return m, err
	}
	if f.sinceFirst >= nightlySettleFor {
		return m, fmt.Errorf("the RSS was read %s after the first run reached its settle sleep: the first runs had woken already", f.sinceFirst.Round(time.Millisecond))
	}
	if err := h.deleteRuns(ctx, pythonNamespace); err != nil {
		return m, err
	}
	h.logf("python: %d nightly_report runs kept at settle (RSS read %s after the first slept) add %.1f MiB over %d workers (%s)",
		f.runs, f.sinceFirst.Round(time.Millisecond), mib(f.added()), len(f.workers), f.describe())
	return m, nil
}

// startWorkers runs one-step bench-noop-py runs named prefix-N, which go to the workers' slots
// by their uids, until manager m has pyWorkers Python workers, and returns their pids with
// their idle RSS.
func (h *harness) startWorkers(ctx context.Context, m *managerProc, prefix string) (map[int]int64, error) {
	for i := 0; ; i++ {
		pids, err := pythonWorkers(m.PID())
		if err != nil {
			return nil, err
		}
		if len(pids) >= h.cfg.pyWorkers {
			if err := waitQuiet(ctx, pids, 5*time.Second); err != nil {
				return nil, err
			}
			idle := map[int]int64{}
			for _, pid := range pids {
				if idle[pid], err = testcluster.RSS(pid); err != nil {
					return nil, err
				}
			}
			return idle, nil
		}
		if i == 30 {
			return nil, fmt.Errorf("manager pid %d has %d Python workers after %d runs, want %d", m.PID(), len(pids), i, h.cfg.pyWorkers)
		}
		name := fmt.Sprintf("%s-%02d", prefix, i)
		if _, err := h.sequentialRun(ctx, m, testflows.NoopPyName, name, testflows.NoopInput{Steps: 1}, ""); err != nil {
			return nil, err
		}
	}
}

// pythonWorkers returns the pids of the Python worker processes of manager pid.
func pythonWorkers(manager int) ([]int, error) {
	kids, err := testcluster.ChildrenOf(manager)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, k := range kids {
		if strings.HasPrefix(k.Name, "python") {
			pids = append(pids, k.PID)
		}
	}
	return pids, nil
}

// waitQuiet waits until the processes pids used less than 1% of a CPU over 200 ms, or for at
// most timeout (the reading is then taken anyway: they are as quiet as they get).
func waitQuiet(ctx context.Context, pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		before := cpuOf(pids)
		if err := testcluster.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
		if cpuOf(pids)-before < 2*time.Millisecond {
			return nil
		}
	}
	return nil
}

// pidsOf returns the pids of a map by pid.
func pidsOf(byPID map[int]int64) []int {
	pids := make([]int, 0, len(byPID))
	for pid := range byPID {
		pids = append(pids, pid)
	}
	return pids
}

// cpuOf sums the CPU time the processes pids used so far.
func cpuOf(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		sum += testcluster.CPUTime(pid)
	}
	return sum
}

// keepNightlyReports creates pyKeptRuns nightly_report runs and waits until every one sleeps.
func (h *harness) keepNightlyReports(ctx context.Context) error {
	runs := make([]*workflowsv1alpha1.WorkflowRun, h.cfg.pyKeptRuns)
	for i := range runs {
		runs[i] = newRun(pythonNamespace, fmt.Sprintf("nightly-%05d", i), nightlyReportName, json.RawMessage(nightlyReportInput))
	}
	if err := h.createRuns(ctx, runs, h.cfg.senders); err != nil {
		return err
	}
	deadline := time.Now().Add(h.cfg.timeout)
	for {
		// Each look reads every run from the API server's watch cache: a second apart, so as
		// not to slow the runs down.
		var list workflowsv1alpha1.WorkflowRunList
		if err := h.client.List(ctx, &list, client.InNamespace(pythonNamespace), cachedList()); err != nil {
			return fmt.Errorf("list the runs of %s: %w", pythonNamespace, err)
		}
		runs := list.Items
		sleeping := 0
		for i := range runs {
			if !strings.HasPrefix(runs[i].Name, "nightly-") {
				continue
			}
			if runs[i].Status.Phase.IsFinal() {
				return fmt.Errorf("run %s ended %s before its settle sleep: %v", runs[i].Name, runs[i].Status.Phase, succeeded(&runs[i]))
			}
			if runs[i].Status.Phase == workflowsv1alpha1.PhaseSleeping {
				sleeping++
			}
		}
		if sleeping == h.cfg.pyKeptRuns {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d nightly_report runs sleep after %s", sleeping, h.cfg.pyKeptRuns, h.cfg.timeout)
		}
		if err := testcluster.Sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// firstSettle returns the earliest start of a nightly_report run's settle sleep, and checks
// that every run executes the Python file (not the Go workflow of the same name).
func (h *harness) firstSettle(ctx context.Context) (time.Time, error) {
	runs, err := h.listRuns(ctx, pythonNamespace)
	if err != nil {
		return time.Time{}, err
	}
	var first time.Time
	for i := range runs {
		run := &runs[i]
		if !strings.HasPrefix(run.Name, "nightly-") {
			continue
		}
		if !strings.HasPrefix(run.Status.WorkflowRevision, "nightly-report-") {
			return time.Time{}, fmt.Errorf("run %s executes revision %q, not the Python file's", run.Name, run.Status.WorkflowRevision)
		}
		e, ok := entry(run, nightlySettle)
		if !ok || e.StartedAt == nil {
			return time.Time{}, fmt.Errorf("run %s sleeps without a %s entry", run.Name, nightlySettle)
		}
		if first.IsZero() || e.StartedAt.Time.Before(first) {
			first = e.StartedAt.Time
		}
	}
	return first, nil
}

// checkStillSettling fails when a nightly_report run no longer sleeps at settle.
func (h *harness) checkStillSettling(ctx context.Context) error {
	runs, err := h.listRuns(ctx, pythonNamespace)
	if err != nil {
		return err
	}
	for i := range runs {
		if strings.HasPrefix(runs[i].Name, "nightly-") && runs[i].Status.Phase != workflowsv1alpha1.PhaseSleeping {
			return fmt.Errorf("run %s is %s, no longer at its settle sleep, when the RSS was read", runs[i].Name, runs[i].Status.Phase)
		}
	}
	return nil
}

// workersRSS reads the RSS of manager's Python workers now, beside their idle RSS. A worker
// that was not there idle (one died and was replaced) has no baseline: an error.
func workersRSS(manager int, idle map[int]int64) ([]workerRSS, error) {
	pids, err := pythonWorkers(manager)
	if err != nil {
		return nil, err
	}
	slices.Sort(pids)
	var out []workerRSS
	var errs []error
	for _, pid := range pids {
		base, ok := idle[pid]
		if !ok {
			errs = append(errs, fmt.Errorf("python worker %d was started after the idle reading", pid))
			continue
		}
		rss, err := testcluster.RSS(pid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, workerRSS{pid: pid, idle: base, with: rss})
	}
	if len(out) != len(idle) {
		errs = append(errs, fmt.Errorf("%d of the %d idle Python workers are left", len(out), len(idle)))
	}
	return out, errors.Join(errs...)
}

// describe lists each worker's RSS with the runs and idle.
func (k keptRSS) describe() string {
	parts := make([]string, len(k.workers))
	for i, w := range k.workers {
		parts[i] = fmt.Sprintf("%.1f − %.1f MiB", mib(w.with), mib(w.idle))
	}
	return strings.Join(parts, " + ")
}

// pythonRows are the Python figures' lines of the table.
func (r *results) pythonRows() []row {
	c, p := r.cfg, r.python
	perStep := perStepRow(c.pyLongSteps, p.longPerStep, c.shortSteps, p.shortPerStep, targetPyReplay)
	perStep.figure = fmt.Sprintf("per-step time of a %d-step run of the Python file", c.pyLongSteps)
	perStep.limit = fmt.Sprintf("per-step time of a %d-step run of the Python file: %s", c.shortSteps, fmtDur(p.shortPerStep))
	return []row{
		ratioRow(fmt.Sprintf("sequential %d-step run of no-op steps as a Python workflow file, steps/s", c.fileSteps), p.stepsPerSec, "steps/s", r.engine.goFileStepsPerSec,
			"steps/s of the same workflow in Go, same manager", targetPython),
		perStep,
		r.coldReplayRow(),
		r.keptRSSRow(),
	}
}

// coldReplayRow reports the cold replay against its bound.
func (r *results) coldReplayRow() row {
	f := r.python.replay
	rw := row{
		figure: fmt.Sprintf("cold replay of a %d-step Python run, sleeping while the manager restarted (its workers with it): from the new manager's readiness to the next step's recorded start",
			r.cfg.pyReplaySteps),
		limit: "—", ratio: "—", target: fmt.Sprintf("≤ %s", fmtDur(targetColdReplay)),
	}
	if f.misses == 0 {
		rw.measured, rw.met = "not measured", "no"
		return rw
	}
	rw.measured = fmt.Sprintf("%s (%s from the manager's start; %d turns replayed, %d cache misses, %d hits; %s)",
		fmtDur(f.fromReady), fmtDur(f.fromStart), f.replayed, f.misses, f.hits, f.cpuText())
	rw.met = yesNo(f.fromReady <= targetColdReplay)
	return rw
}

// keptRSSRow reports the workers' memory holding the nightly_report runs against its bound.
func (r *results) keptRSSRow() row {
	k := r.python.kept
	rw := row{
		figure: fmt.Sprintf("Python worker RSS with %d runs of the product's nightly_report.py kept at their settle sleep, minus the idle workers' (%d workers: the sum over them)",
			r.cfg.pyKeptRuns, r.cfg.pyWorkers),
		limit: "—", ratio: "—", target: fmt.Sprintf("≤ %d MiB", targetKeptRSS>>20),
	}
	if len(k.workers) == 0 {
		rw.measured, rw.met = "not measured", "no"
		return rw
	}
	rw.measured = fmt.Sprintf("%.1f MiB (VmRSS %s; read %s after the first run slept)", mib(k.added()), k.describe(), fmtDur(k.sinceFirst))
	rw.met = yesNo(k.added() <= targetKeptRSS)
	return rw
}
