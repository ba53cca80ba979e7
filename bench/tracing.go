package main

import (
	"context"
	"fmt"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/testflows"
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/internal/tracing/tracingtest"
)

// The tracing figure (issue #27): what tracing costs the engine. The sequential run of
// seqSteps steps and the parallel figure's runs are measured with managers that export their
// spans (OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP receiver inside the benchmark)
// and with managers that do not, alternating, in the same benchmark run; the receiver counts
// the spans it decoded, so that the row shows the traced runs really were exported, one span
// per step attempt and per run.

// tracingNamespace holds the tracing figure's parallel runs (its sequential runs are in
// seqNamespace, as the sequential figure's).
const tracingNamespace = "bench-tracing"

// targetTracing is the bound: tracing on keeps at least 0.9 of the steps/s of
// tracing off.
const targetTracing = 0.9

// tracingFigures are the figures with tracing on and off, each sample in the order measured.
type tracingFigures struct {
	// seqOff and seqOn are the steps/s of the sequential runs; parOff and parOn of the
	// parallel runs.
	seqOff, seqOn, parOff, parOn []float64
	// The manager's CPU time per step in each of those samples.
	seqCPUOff, seqCPUOn, parCPUOff, parCPUOn []time.Duration
	// spans is what the receiver got.
	spans spanCount
}

// spanCount compares the spans the receiver got with the runs the traced managers executed.
type spanCount struct {
	// runs and attempts are the traced runs and their step attempts (each no-op step is
	// attempted once); runSpans and stepSpans the spans received for them.
	runs, attempts, runSpans, stepSpans int
	// untraced counts the spans received for runs the managers without tracing executed.
	untraced int
}

// tracedRun is a run the tracing figure executed: its name, its steps, and whether its
// manager traced.
type tracedRun struct {
	name   string
	steps  int
	traced bool
}

// tracingEnv is the environment of a manager with tracing on (exporting to endpoint) or off
// (endpoint empty). Both clear the traces-only variables, so that the benchmark's own
// environment decides nothing.
func tracingEnv(endpoint string) []string {
	env := []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=", "OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint}
	if endpoint != "" {
		env = append(env, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
	}
	return env
}

// measureTracing alternates managers with tracing on and off, cfg.repeat times each (the order
// flips every repetition, so that a drift of the machine's load hits both alike). Each manager
// executes the parallel figure's runs, created before it starts, then a sequential run of
// seqSteps steps after a warm-up. The spans are counted once every manager stopped (a manager
// exports its last spans when it stops).
func (h *harness) measureTracing(ctx context.Context, res *results) error {
	for _, ns := range []string{seqNamespace, tracingNamespace} {
		if err := h.ensureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	rcv := tracingtest.NewReceiver()
	defer rcv.Close()
	began := time.Now()
	f := &res.tracing
	var runs []tracedRun
	for rep := range h.cfg.repeat {
		for _, on := range []bool{rep%2 == 1, rep%2 == 0} {
			endpoint := ""
			if on {
				endpoint = rcv.URL()
			}
			done, err := h.tracingSample(ctx, f, rep, on, tracingEnv(endpoint))
			runs = append(runs, done...)
			if err != nil {
				return fmt.Errorf("tracing %s: %w", onOff(on), err)
			}
		}
	}
	f.spans = countSpans(rcv.All(), runs)
	h.logf("tracing (%s): sequential %v steps/s on, %v off; parallel %v on, %v off; spans: %d of %d runs, %d of %d step attempts, %d of untraced runs",
		time.Since(began).Round(time.Millisecond), rounded(f.seqOn), rounded(f.seqOff), rounded(f.parOn), rounded(f.parOff),
		f.spans.runSpans, f.spans.runs, f.spans.stepSpans, f.spans.attempts, f.spans.untraced)
	return nil
}

// tracingSample is one manager's share of the tracing figure: the parallel runs, created
// before the manager starts, then a warm-up and the sequential run. It returns the runs it
// executed, also when it failed, and deletes the parallel runs, so that the next manager
// starts on the same state.
func (h *harness) tracingSample(ctx context.Context, f *tracingFigures, rep int, on bool, env []string) ([]tracedRun, error) {
	mode := "tracing-" + onOff(on)
	prefix := fmt.Sprintf("%s-par-%d", mode, rep)
	m, rate, err := h.parallelRun(ctx, tracingNamespace, prefix, fmt.Sprintf("%s-parallel-%d", mode, rep), env)
	defer func() { m.stop() }()
	if err != nil {
		return nil, err
	}
	runs := make([]tracedRun, 0, h.cfg.parallelRuns+2)
	for i := range h.cfg.parallelRuns {
		runs = append(runs, tracedRun{name: fmt.Sprintf("%s-%05d", prefix, i), steps: h.cfg.parallelSteps, traced: on})
	}
	parCPU := h.cpu[len(h.cpu)-1].manager
	warmup := fmt.Sprintf("%s-warmup-%d", mode, rep)
	if _, err := h.sequentialRun(ctx, m, testflows.NoopName, warmup, testflows.NoopInput{Steps: 3}, ""); err != nil {
		return runs, fmt.Errorf("warm up: %w", err)
	}
	n := h.cfg.seqSteps
	name := fmt.Sprintf("%s-seq-%d-%d", mode, n, rep)
	runs = append(runs, tracedRun{name: warmup, steps: 3, traced: on}, tracedRun{name: name, steps: n, traced: on})
	took, err := h.sequentialRun(ctx, m, testflows.NoopName, name, testflows.NoopInput{Steps: n}, fmt.Sprintf("%s-seq-%d", mode, rep))
	if err != nil {
		return runs, err
	}
	seq, seqCPU := float64(n)/took.Seconds(), h.cpu[len(h.cpu)-1].manager
	if on {
		f.parOn, f.parCPUOn, f.seqOn, f.seqCPUOn = append(f.parOn, rate), append(f.parCPUOn, parCPU), append(f.seqOn, seq), append(f.seqCPUOn, seqCPU)
	} else {
		f.parOff, f.parCPUOff, f.seqOff, f.seqCPUOff = append(f.parOff, rate), append(f.parCPUOff, parCPU), append(f.seqOff, seq), append(f.seqCPUOff, seqCPU)
	}
	return runs, h.deleteRuns(ctx, tracingNamespace)
}

// countSpans counts the run and step spans received for runs: a run's span carries its name,
// and its steps' spans share its trace.
func countSpans(spans []tracingtest.Span, runs []tracedRun) spanCount {
	traceOf := map[string]string{} // run name → trace ID
	runSpans := map[string]int{}
	for _, s := range spans {
		if name, ok := s.Attrs[tracing.AttrRunName].(string); ok && s.Attrs[tracing.AttrKind] == nil {
			traceOf[name] = s.TraceID
			runSpans[name]++
		}
	}
	stepSpans := map[string]int{} // trace ID → step spans
	for _, s := range spans {
		if s.Attrs[tracing.AttrKind] == "Step" {
			stepSpans[s.TraceID]++
		}
	}
	var c spanCount
	for _, r := range runs {
		own, steps := runSpans[r.name], stepSpans[traceOf[r.name]]
		if !r.traced {
			c.untraced += own + steps
			continue
		}
		c.runs, c.attempts = c.runs+1, c.attempts+r.steps
		c.runSpans, c.stepSpans = c.runSpans+own, c.stepSpans+steps
	}
	return c
}

// tracingRows are the tracing figure's lines: steps/s on against off, sequential and parallel;
// the manager's CPU per step on and off; and the spans received.
func (r *results) tracingRows() []row {
	c, f := r.cfg, r.tracing
	rows := []row{
		tracingRatioRow(fmt.Sprintf("sequential %d-step run with tracing on (OTLP/HTTP to a local receiver), steps/s (medians of %d, managers alternating with tracing off)", c.seqSteps, len(f.seqOn)), f.seqOn, f.seqOff),
		tracingRatioRow(fmt.Sprintf("completed steps/s, %d runs × %d steps in parallel with tracing on (%d reconcilers; medians of %d, alternating)", c.parallelRuns, c.parallelSteps, c.parallelism, len(f.parOn)), f.parOn, f.parOff),
		tracingCPURow("manager CPU per step with tracing on, sequential run", f.seqCPUOn, f.seqCPUOff),
		tracingCPURow("manager CPU per step with tracing on, parallel runs", f.parCPUOn, f.parCPUOff),
	}
	s := f.spans
	spans := row{figure: "spans the local receiver decoded from the traced runs (run and step spans)", limit: "—", ratio: "—",
		target: "one per run and per step attempt; none from the runs of managers without tracing"}
	if s.runs == 0 {
		spans.measured, spans.met = "not measured", "no"
	} else {
		spans.measured = fmt.Sprintf("%d run spans for %d runs, %d step spans for %d step attempts; %d from untraced runs", s.runSpans, s.runs, s.stepSpans, s.attempts, s.untraced)
		spans.met = yesNo(s.runSpans == s.runs && s.stepSpans == s.attempts && s.untraced == 0)
	}
	return append(rows, spans)
}

// tracingRatioRow is steps/s with tracing on against off, by their medians.
func tracingRatioRow(figure string, on, off []float64) row {
	rw := ratioRow(figure, medianOf(on), "steps/s", medianOf(off), "steps/s with tracing off, same run", targetTracing)
	rw.target = fmt.Sprintf("≥ %.1f of tracing off", targetTracing)
	return rw
}

// tracingCPURow is the manager's CPU per step with tracing on against off, by their medians;
// reported, not judged.
func tracingCPURow(figure string, on, off []time.Duration) row {
	rw := row{figure: figure, limit: "—", ratio: "—", target: "report, beside tracing off", met: "—"}
	if len(on) == 0 || len(off) == 0 {
		rw.measured = "not measured"
		return rw
	}
	mOn, mOff := medianDuration(on), medianDuration(off)
	rw.measured, rw.limit = fmtDur(mOn), fmt.Sprintf("with tracing off: %s", fmtDur(mOff))
	if mOff > 0 {
		rw.ratio = fmt.Sprintf("%.2f×", float64(mOn)/float64(mOff))
	}
	return rw
}

// medianDuration is the median of durations.
func medianDuration(ds []time.Duration) time.Duration {
	values := make([]float64, len(ds))
	for i, d := range ds {
		values[i] = float64(d)
	}
	return time.Duration(medianOf(values))
}
