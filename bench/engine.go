package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
	"github.com/centaur-dev/workflow-operator/manager"
	"github.com/centaur-dev/workflow-operator/runstore"
)

// Namespaces of the engine's figures.
const (
	seqNamespace      = "bench-seq"
	parallelNamespace = "bench-parallel"
	sleepNamespace    = "bench-sleep"
)

// engineFigures are the figures of the durable engine itself.
type engineFigures struct {
	// seqStepsPerSec is the median steps/s of one sequential run of seqSteps steps.
	seqStepsPerSec float64
	// shortPerStep, longPerStep and hugePerStep are the time per step of runs of shortSteps,
	// seqSteps (median of the repetitions) and hugeSteps steps.
	shortPerStep, longPerStep, hugePerStep time.Duration
	// batchedStepsPerSec is the median steps/s of a run of batchedSteps batched no-op steps;
	// temporal is its peer's figure.
	batchedStepsPerSec float64
	temporal           temporalFigure
	// goFileStepsPerSec and fileStepsPerSec are the median steps/s of a sequential run of
	// fileSteps steps of bench-noop in Go and of the same workflow as a Starlark file (the
	// Python file's are in pythonFigures).
	goFileStepsPerSec, fileStepsPerSec float64
	// parallelStepsPerSec is completed steps/s of parallelRuns runs of parallelSteps steps.
	parallelStepsPerSec float64
	// timers is how late sleeping runs resumed.
	timers timerFigures
}

// cpuUse is the CPU time processes used for one figure, per step, and the API requests made.
type cpuUse struct {
	figure                          string
	manager, apiserver, etcd, bench time.Duration
	// workers is the CPU time of the manager's Python workers.
	workers  time.Duration
	requests string
	// perStep are the API requests per step by verb and resource ("PUT workflowruns/status").
	perStep map[string]float64
}

// measureEngine measures the engine's figures, each beside its raw limit, with one manager
// binary (restarted once, for the parallel figure), and stops it after.
func (h *harness) measureEngine(ctx context.Context, res *results) error {
	if !slices.ContainsFunc([]string{"sequential", "long", "batched", "files", "parallel", "lateness"}, h.cfg.wants) {
		return nil
	}
	// The operator's namespace holds the revisions of the workflow files (figure files).
	for _, ns := range []string{rawNamespace, seqNamespace, parallelNamespace, sleepNamespace, pythonNamespace, manager.DefaultOperatorNamespace} {
		if err := h.ensureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	m, err := h.startManager(ctx)
	if err != nil {
		return err
	}
	defer func() { m.stop() }()
	if _, err := h.sequentialRun(ctx, m, testflows.NoopName, "warmup", testflows.NoopInput{Steps: 3}, ""); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	steps := []struct {
		figure  string
		measure func(context.Context, *managerProc, *results) error
	}{{"sequential", h.measureSequential}, {"long", h.measureLong}, {"batched", h.measureBatched}, {"files", h.measureFiles}}
	for _, s := range steps {
		if h.cfg.wants(s.figure) {
			if err := s.measure(ctx, m, res); err != nil {
				return err
			}
		}
	}
	if h.cfg.wants("files") {
		if m, err = h.measurePython(ctx, m, res); err != nil {
			return fmt.Errorf("python: %w", err)
		}
	}
	if h.cfg.wants("parallel") {
		if m, err = h.measureParallel(ctx, m, res); err != nil {
			return err
		}
	}
	if h.cfg.wants("lateness") {
		return h.measureLateness(ctx, m, res)
	}
	return nil
}

// measureSequential alternates the raw sequential limit with a sequential run of seqSteps
// steps and one of shortSteps steps, cfg.repeat times each, and keeps the medians: steps/s of
// the long run against the limit, and the time per step of both runs.
func (h *harness) measureSequential(ctx context.Context, m *managerProc, res *results) error {
	var raw, rate, long, short []float64
	for rep := range h.cfg.repeat {
		limit, err := h.rawSequential(ctx, m, rep)
		if err != nil {
			return fmt.Errorf("raw sequential updates: %w", err)
		}
		n := h.cfg.seqSteps
		took, err := h.sequentialRun(ctx, m, testflows.NoopName, fmt.Sprintf("seq-%d-%d", n, rep), testflows.NoopInput{Steps: n}, profileName(rep, fmt.Sprintf("seq-%d", n)))
		if err != nil {
			return err
		}
		tookShort, err := h.sequentialRun(ctx, m, testflows.NoopName, fmt.Sprintf("seq-%d-%d", h.cfg.shortSteps, rep), testflows.NoopInput{Steps: h.cfg.shortSteps}, profileName(rep, fmt.Sprintf("seq-%d", h.cfg.shortSteps)))
		if err != nil {
			return err
		}
		raw, rate = append(raw, limit), append(rate, float64(n)/took.Seconds())
		long, short = append(long, took.Seconds()/float64(n)), append(short, tookShort.Seconds()/float64(h.cfg.shortSteps))
	}
	e := &res.engine
	res.limits.seqUpdates, e.seqStepsPerSec = medianOf(raw), medianOf(rate)
	e.longPerStep, e.shortPerStep = seconds(medianOf(long)), seconds(medianOf(short))
	h.logf("sequential: %.0f steps/s against %.0f raw updates/s (%d steps; runs %v, raw %v); per step %s at %d steps, %s at %d",
		e.seqStepsPerSec, res.limits.seqUpdates, h.cfg.seqSteps, rounded(rate), rounded(raw), e.longPerStep, h.cfg.seqSteps, e.shortPerStep, h.cfg.shortSteps)
	return nil
}

// measureLong times one run of hugeSteps steps, for its time per step.
func (h *harness) measureLong(ctx context.Context, m *managerProc, res *results) error {
	n := h.cfg.hugeSteps
	took, err := h.sequentialRun(ctx, m, testflows.NoopName, fmt.Sprintf("seq-%d", n), testflows.NoopInput{Steps: n}, fmt.Sprintf("seq-%d", n))
	if err != nil {
		return err
	}
	res.engine.hugePerStep = seconds(took.Seconds() / float64(n))
	h.logf("long: %d steps in %s, %s per step", n, took.Round(time.Millisecond), res.engine.hugePerStep)
	return nil
}

// measureBatched times runs of batchedSteps batched no-op steps, cfg.repeat times, and runs
// the Temporal peer's local activities as many times, alternating, and keeps the medians.
func (h *harness) measureBatched(ctx context.Context, m *managerProc, res *results) error {
	n := h.cfg.batchedSteps
	var ours, theirs []float64
	for rep := range h.cfg.repeat {
		took, err := h.sequentialRun(ctx, m, testflows.NoopName, fmt.Sprintf("batched-%d-%d", n, rep), testflows.NoopInput{Steps: n, Batched: true}, profileName(rep, fmt.Sprintf("batched-%d", n)))
		if err != nil {
			return err
		}
		ours = append(ours, float64(n)/took.Seconds())
		if h.temporalBin == "" {
			continue
		}
		rate, err := h.runTemporalPeer(ctx, n)
		if err != nil {
			return fmt.Errorf("the Temporal peer: %w", err)
		}
		theirs = append(theirs, rate)
	}
	e := &res.engine
	e.batchedStepsPerSec = medianOf(ours)
	e.temporal = temporalFigure{stepsPerSec: medianOf(theirs), note: h.temporalNote}
	h.logf("batched: %.0f steps/s (%v); Temporal local activities %.0f steps/s (%v)", e.batchedStepsPerSec, rounded(ours), e.temporal.stepsPerSec, rounded(theirs))
	return nil
}

// measureFiles alternates a sequential run of fileSteps steps of bench-noop in Go with one of
// the same workflow as a Starlark file and one as a Python file, cfg.repeat times, and keeps the
// median steps/s of each: what interpreting a workflow file, or running it in a Python worker,
// costs against compiled Go on the same engine. The files run once first, as Go's workflow did
// in the engine's warm-up, and the Python file until every worker has started, so that no run
// of the figure pays for a revision's first store or a worker's start.
func (h *harness) measureFiles(ctx context.Context, m *managerProc, res *results) error {
	n := h.cfg.fileSteps
	if _, err := h.sequentialRun(ctx, m, testflows.NoopFileName, "warmup-file", testflows.NoopInput{Steps: 3}, ""); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	if _, err := h.startWorkers(ctx, m, "warmup-py"); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	var goRates, fileRates, pyRates []float64
	for rep := range h.cfg.repeat {
		for _, w := range []struct {
			workflow string
			rates    *[]float64
		}{{testflows.NoopName, &goRates}, {testflows.NoopFileName, &fileRates}, {testflows.NoopPyName, &pyRates}} {
			name := fmt.Sprintf("%s-%d-%d", w.workflow, n, rep)
			took, err := h.sequentialRun(ctx, m, w.workflow, name, testflows.NoopInput{Steps: n}, profileName(rep, w.workflow))
			if err != nil {
				return err
			}
			*w.rates = append(*w.rates, float64(n)/took.Seconds())
		}
	}
	e := &res.engine
	e.goFileStepsPerSec, e.fileStepsPerSec, res.python.stepsPerSec = medianOf(goRates), medianOf(fileRates), medianOf(pyRates)
	h.logf("files: %.0f steps/s as a Starlark file (%v), %.0f steps/s as a Python file (%v), against %.0f steps/s in Go (%v), %d steps",
		e.fileStepsPerSec, rounded(fileRates), res.python.stepsPerSec, rounded(pyRates), e.goFileStepsPerSec, rounded(goRates), n)
	return nil
}

// seconds converts a float of seconds to a duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// rounded rounds values for a log line.
func rounded(values []float64) []float64 {
	out := make([]float64, len(values))
	for i, v := range values {
		out[i] = float64(int(v*10+0.5)) / 10
	}
	return out
}

// sequentialRun runs one run of workflow (bench-noop or its workflow file) with input and returns the time from its create to its
// success (the manager's Succeeded Event). With a profile name it records the CPU used (and a
// CPU profile, when the profile dir is set) under that name.
func (h *harness) sequentialRun(ctx context.Context, m *managerProc, workflow, name string, input testflows.NoopInput, profile string) (time.Duration, error) {
	meter, err := h.startMeter(ctx, m, profile)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := h.client.Create(ctx, newRun(seqNamespace, name, workflow, input)); err != nil {
		return 0, fmt.Errorf("create run %s: %w", name, err)
	}
	finished, err := h.waitRun(ctx, seqNamespace, name, start)
	if err != nil {
		return 0, err
	}
	if err := meter.stop(ctx, input.Steps); err != nil {
		return 0, err
	}
	return finished.Sub(start), h.checkJournal(ctx, seqNamespace, name, input.Steps)
}

// checkJournal confirms that the run recorded exactly steps entries, reading its whole journal
// (sealed segments and status) as the REST API does.
func (h *harness) checkJournal(ctx context.Context, ns, name string, steps int) error {
	run := &workflowsv1alpha1.WorkflowRun{}
	if err := h.client.Get(ctx, keyOf(ns, name), run); err != nil {
		return fmt.Errorf("read run %s: %w", name, err)
	}
	got, opts := 0, runstore.ReadOptions{Limit: runstore.MaxPageEntries}
	for {
		page, err := runstore.ReadJournal(ctx, h.client, run, opts)
		if err != nil {
			return fmt.Errorf("read the journal of run %s: %w", name, err)
		}
		for i, e := range page.Entries {
			if want := testflows.StepName(got + i); e.Name != want || e.State != "Completed" {
				return fmt.Errorf("run %s records %s %s at entry %d, want %s completed", name, e.Name, e.State, got+i, want)
			}
		}
		got += len(page.Entries)
		if opts.Continue = page.Continue; opts.Continue == "" {
			break
		}
	}
	if got != steps {
		return fmt.Errorf("run %s recorded %d journal entries, want %d", name, got, steps)
	}
	return nil
}

// measureParallel creates parallelRuns runs while no manager runs, then starts a fresh one and
// measures completed steps/s from the first step's start to the last step's end; then the raw
// parallel limit beside the same manager. It returns the manager now running.
func (h *harness) measureParallel(ctx context.Context, m *managerProc, res *results) (*managerProc, error) {
	m.stop()
	m, rate, err := h.parallelRun(ctx, parallelNamespace, "par", "parallel", nil)
	if err != nil {
		return m, err
	}
	res.engine.parallelStepsPerSec = rate
	if res.limits.parallelUpdates, err = h.rawParallel(ctx, m); err != nil {
		return m, fmt.Errorf("raw parallel updates: %w", err)
	}
	h.logf("parallel: %.0f steps/s against %.0f raw updates/s (%d runs x %d steps, %d reconcilers)",
		res.engine.parallelStepsPerSec, res.limits.parallelUpdates, h.cfg.parallelRuns, h.cfg.parallelSteps, h.cfg.parallelism)
	return m, nil
}

// parallelRun creates parallelRuns runs of parallelSteps steps in ns, named prefix-N, while no
// manager runs, then starts a manager with env (startManagerEnv) and returns it, running, with
// the completed steps/s from the first step's start to the last step's end (from the
// journals). The CPU the processes used until the last run succeeded is recorded under
// profile.
func (h *harness) parallelRun(ctx context.Context, ns, prefix, profile string, env []string) (*managerProc, float64, error) {
	n := h.cfg.parallelRuns
	runs := make([]*workflowsv1alpha1.WorkflowRun, n)
	for i := range runs {
		runs[i] = newRun(ns, fmt.Sprintf("%s-%05d", prefix, i), testflows.NoopName, testflows.NoopInput{Steps: h.cfg.parallelSteps})
	}
	if err := h.createRuns(ctx, runs, h.cfg.senders); err != nil {
		return nil, 0, err
	}
	m, err := h.startManagerEnv(ctx, env)
	if err != nil {
		return nil, 0, err
	}
	meter, err := h.startMeter(ctx, m, profile)
	if err != nil {
		return m, 0, err
	}
	done, err := h.waitAll(ctx, ns, namesOf(runs), true, time.Second)
	if err != nil {
		return m, 0, fmt.Errorf("parallel runs: %w", err)
	}
	if err := meter.stop(ctx, n*h.cfg.parallelSteps); err != nil {
		return m, 0, err
	}
	first, last, err := stepWindow(done, h.cfg.parallelSteps)
	if err != nil {
		return m, 0, err
	}
	return m, float64(n*h.cfg.parallelSteps) / last.Sub(first).Seconds(), nil
}

// stepWindow returns the earliest start of a first step and the latest end of a last step
// among runs of steps steps, from their journals.
func stepWindow(runs []workflowsv1alpha1.WorkflowRun, steps int) (first, last time.Time, err error) {
	for i := range runs {
		head, ok1 := entry(&runs[i], testflows.StepName(0))
		tail, ok2 := entry(&runs[i], testflows.StepName(steps-1))
		if !ok1 || !ok2 || head.StartedAt == nil || tail.FinishedAt == nil {
			return first, last, fmt.Errorf("run %s lacks its first or last step", runs[i].Name)
		}
		if first.IsZero() || head.StartedAt.Time.Before(first) {
			first = head.StartedAt.Time
		}
		if tail.FinishedAt.Time.After(last) {
			last = tail.FinishedAt.Time
		}
	}
	return first, last, nil
}

// timerFigures are the lateness of timers: runs created at once, and runs created at a pace
// the machine sustains.
type timerFigures struct {
	// burst is the lateness of sleepRuns runs created at once; burstStart is how long it took
	// until all of them had started (recorded their sleep).
	burst      durations
	burstStart time.Duration
	// paced is the lateness of as many runs created at pacedRate runs/s.
	paced     durations
	pacedRate float64
}

// measureLateness measures timer lateness twice: sleepRuns runs created at once (the figure
// the target is stated for), then as many created at half the rate the parallel figure says
// the machine sustains, which separates the timers' own precision from queueing behind starts.
func (h *harness) measureLateness(ctx context.Context, m *managerProc, res *results) error {
	t := &res.engine.timers
	burst, err := h.sleepers(ctx, m, "sleep-burst", 0)
	if err != nil {
		return err
	}
	if t.burst, t.burstStart, err = lateness(burst); err != nil {
		return err
	}
	// A sleeping run makes about four writes (sleep, step, finish and its create) and two Events.
	t.pacedRate = max(res.engine.parallelStepsPerSec/8, 20)
	paced, err := h.sleepers(ctx, m, "sleep-paced", t.pacedRate)
	if err != nil {
		return err
	}
	if t.paced, _, err = lateness(paced); err != nil {
		return err
	}
	h.logf("lateness of %d timers of %s: created at once (all started within %s) p50 %s, p99 %s; at %.0f runs/s p50 %s, p99 %s",
		h.cfg.sleepRuns, h.cfg.sleepFor, t.burstStart, t.burst.percentile(50), t.burst.percentile(99),
		t.pacedRate, t.paced.percentile(50), t.paced.percentile(99))
	return nil
}

// sleepers creates sleepRuns bench-sleep runs named prefix-N, at once (rate 0) or at rate
// runs/s, waits until all succeeded and returns them.
func (h *harness) sleepers(ctx context.Context, m *managerProc, prefix string, rate float64) ([]workflowsv1alpha1.WorkflowRun, error) {
	meter, err := h.startMeter(ctx, m, prefix)
	if err != nil {
		return nil, err
	}
	runs := make([]*workflowsv1alpha1.WorkflowRun, h.cfg.sleepRuns)
	for i := range runs {
		runs[i] = newRun(sleepNamespace, fmt.Sprintf("%s-%05d", prefix, i), testflows.SleepName, testflows.SleepInput{SleepMillis: h.cfg.sleepFor.Milliseconds()})
	}
	create := func(ctx context.Context, i int) error {
		if err := h.client.Create(ctx, runs[i]); err != nil {
			return fmt.Errorf("create run %s: %w", runs[i].Name, err)
		}
		return nil
	}
	if rate > 0 {
		err = paced(ctx, len(runs), rate, create)
	} else {
		err = parallel(ctx, len(runs), h.cfg.senders, create)
	}
	if err != nil {
		return nil, err
	}
	done, err := h.waitAll(ctx, sleepNamespace, namesOf(runs), true, time.Second)
	if err != nil {
		return nil, fmt.Errorf("sleeping runs: %w", err)
	}
	return done, meter.stop(ctx, len(runs))
}

// lateness returns how late each sleeping run resumed (its step's start minus the sleep's
// recorded wake time), and how long it took until every run had recorded its sleep.
func lateness(runs []workflowsv1alpha1.WorkflowRun) (durations, time.Duration, error) {
	out := make(durations, 0, len(runs))
	var first, last time.Time
	for i := range runs {
		nap, ok1 := entry(&runs[i], "nap")
		after, ok2 := entry(&runs[i], "after")
		if !ok1 || !ok2 || nap.WakeAt == nil || nap.StartedAt == nil || after.StartedAt == nil {
			return nil, 0, fmt.Errorf("run %s lacks its nap or its step", runs[i].Name)
		}
		out = append(out, after.StartedAt.Sub(nap.WakeAt.Time))
		if first.IsZero() || nap.StartedAt.Time.Before(first) {
			first = nap.StartedAt.Time
		}
		if nap.StartedAt.Time.After(last) {
			last = nap.StartedAt.Time
		}
	}
	return out, last.Sub(first), nil
}
