package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// The raw limits: what the API server does for a plain client with no engine in between,
// measured on the same API server as the figures they bound, interleaved with them, while the
// same manager process runs (its watch sees every raw write, as it sees the engine's). Raw
// objects name a workflow registered nowhere: the manager fails each once (UnknownWorkflow)
// and never touches it again, since status updates do not trigger reconciles; the raw writes
// start after that.

// rawNamespace holds the objects of the raw measurements.
const rawNamespace = "bench-raw"

// rawWorkflow is the spec.workflowName of raw objects.
const rawWorkflow = "bench-raw-object"

// limits are the raw figures.
type limits struct {
	// seqUpdates is sequential status updates/s of one object, changing one small field.
	seqUpdates float64
	// parallelUpdates is status updates/s of parallelism objects at once.
	parallelUpdates float64
	// creates is WorkflowRun creates/s from senders clients.
	creates float64
}

// settledRaw creates raw objects and waits until the manager has failed each of them, so that
// nothing but the raw client writes them from then on.
func (h *harness) settledRaw(ctx context.Context, runs []*workflowsv1alpha1.WorkflowRun) error {
	if err := h.createRuns(ctx, runs, h.cfg.senders); err != nil {
		return err
	}
	if _, err := h.waitAll(ctx, rawNamespace, namesOf(runs), false, 100*time.Millisecond); err != nil {
		return fmt.Errorf("wait for the manager to settle the raw objects: %w", err)
	}
	for _, run := range runs {
		if err := h.client.Get(ctx, keyOf(run.Namespace, run.Name), run); err != nil {
			return fmt.Errorf("read raw object %s: %w", run.Name, err)
		}
	}
	return nil
}

// median runs measure cfg.repeat times and returns the median.
func (h *harness) median(ctx context.Context, what string, measure func(context.Context, int) (float64, error)) (float64, error) {
	values := make([]float64, 0, h.cfg.repeat)
	for i := range h.cfg.repeat {
		v, err := measure(ctx, i)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		values = append(values, v)
	}
	return medianOf(values), nil
}

// rawSequential updates the status of one object seqSteps times in a row, each update sent
// with the resourceVersion the previous one returned: the physical limit of a sequential run,
// one write per step.
func (h *harness) rawSequential(ctx context.Context, m *managerProc, rep int) (float64, error) {
	run := newRun(rawNamespace, fmt.Sprintf("seq-%d", rep), rawWorkflow, map[string]int{"steps": h.cfg.seqSteps})
	if err := h.settledRaw(ctx, []*workflowsv1alpha1.WorkflowRun{run}); err != nil {
		return 0, err
	}
	n := max(h.cfg.seqSteps, 1)
	meter, err := h.startMeter(ctx, m, profileName(rep, "raw-seq"))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := h.updateStatus(ctx, run, n); err != nil {
		return 0, err
	}
	took := time.Since(start)
	return float64(n) / took.Seconds(), meter.stop(ctx, n)
}

// profileName returns name for the first repetition, when the figure is metered, and ""
// (not metered) for the others.
func profileName(rep int, name string) string {
	if rep == 0 {
		return name
	}
	return ""
}

// rawParallel updates parallelism objects at once, each sequentially, as many updates in all
// as the parallel figure records steps.
func (h *harness) rawParallel(ctx context.Context, m *managerProc) (float64, error) {
	p := h.cfg.parallelism
	runs := make([]*workflowsv1alpha1.WorkflowRun, p)
	for i := range runs {
		runs[i] = newRun(rawNamespace, fmt.Sprintf("par-%d", i), rawWorkflow, map[string]int{"steps": h.cfg.parallelSteps})
	}
	if err := h.settledRaw(ctx, runs); err != nil {
		return 0, err
	}
	perObject := max(h.cfg.parallelRuns*h.cfg.parallelSteps/p, 1)
	meter, err := h.startMeter(ctx, m, "raw-parallel")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = parallel(ctx, p, p, func(ctx context.Context, i int) error { return h.updateStatus(ctx, runs[i], perObject) })
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	return float64(perObject*p) / took.Seconds(), meter.stop(ctx, perObject*p)
}

// updateStatus writes run's status n times, changing a small field each time.
func (h *harness) updateStatus(ctx context.Context, run *workflowsv1alpha1.WorkflowRun, n int) error {
	for i := range n {
		run.Status.CurrentStep = fmt.Sprintf("s-%04d", i)
		if err := h.client.Status().Update(ctx, run); err != nil {
			return fmt.Errorf("update the status of %s: %w", run.Name, err)
		}
	}
	return nil
}

// rawCreates creates n runs from writers goroutines, each with input (a webhook delivery's
// envelope, a schedule's input), named batch-<i>: the limit of whatever creates one run per
// request or tick. It returns creates/s and each create's latency.
func (h *harness) rawCreates(ctx context.Context, batch string, n, writers int, input []byte) (float64, durations, error) {
	lat := make(durations, n)
	start := time.Now()
	err := parallel(ctx, n, writers, h.rawCreate(batch, input, lat))
	if err != nil {
		return 0, nil, err
	}
	return float64(n) / time.Since(start).Seconds(), lat, nil
}

// rawCreate returns a function that creates the raw run i of batch, with input, and notes the
// create's latency in lat[i].
func (h *harness) rawCreate(batch string, input []byte, lat durations) func(ctx context.Context, i int) error {
	return func(ctx context.Context, i int) error {
		run := &workflowsv1alpha1.WorkflowRun{
			ObjectMeta: metav1.ObjectMeta{Namespace: rawNamespace, Name: fmt.Sprintf("%s-%06d", batch, i)},
			Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: rawWorkflow, Input: &apiextensionsv1.JSON{Raw: input}},
		}
		t := time.Now()
		if err := h.client.Create(ctx, run); err != nil {
			return fmt.Errorf("create run %s: %w", run.Name, err)
		}
		lat[i] = time.Since(t)
		return nil
	}
}

// medianOf returns the median of values (the mean of the middle two for an even count).
func medianOf(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}
