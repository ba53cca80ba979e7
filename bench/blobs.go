package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
)

// The blobs figure: one run records blobSteps results of blobBytes each (800 × 256 KiB = 200 MiB
// at full size), with --max-run-bytes raised to let it, and then sleeps; the benchmark
// restarts the manager while it sleeps, and the new manager finishes the run by replaying
// every result, read back from the run's WorkflowRunPayloads. Judged: the run succeeded, no
// object it owns (or the run itself) is over 1 MiB, and neither manager's peak RSS reached
// 512 MiB.

// blobsNamespace holds the blobs figure's run.
const blobsNamespace = "bench-blobs"

// Limits the blobs figure is judged by.
const (
	maxObjectBytes = 1 << 20
	maxManagerRSS  = 512 << 20
)

// blobsFigure is what the blobs figure measured.
type blobsFigure struct {
	// succeeded says the run finished with the output it should.
	succeeded bool
	// recorded is what the run stored in all (status.history.recordedBytes).
	recorded int64
	// objects counts the run and what it owns; largest is the largest of them as JSON.
	objects     int
	largest     int
	largestName string
	// rss is the peak RSS of the manager that recorded and of the one that replayed.
	rss [2]int64
	// took is from the run's create to its success.
	took time.Duration
}

// measureBlobs measures the blobs figure.
func (h *harness) measureBlobs(ctx context.Context, res *results) error {
	if err := h.ensureNamespace(ctx, blobsNamespace); err != nil {
		return err
	}
	c := h.cfg
	budget := []string{fmt.Sprintf("--max-run-bytes=%d", 2*c.blobSteps*c.blobBytes+(64<<20)), "--max-namespace-bytes=-1", "--max-total-bytes=0"}
	f := &res.blobs
	first, err := h.startManager(ctx, budget...)
	if err != nil {
		return err
	}
	start := time.Now()
	run := newRun(blobsNamespace, "blobs", testflows.BlobsName, testflows.BlobsInput{Steps: c.blobSteps, Bytes: c.blobBytes, SleepMillis: 3000})
	if err := h.client.Create(ctx, run); err != nil {
		first.stop()
		return fmt.Errorf("create run %s: %w", run.Name, err)
	}
	err = h.waitRunPhase(ctx, blobsNamespace, run.Name, workflowsv1alpha1.PhaseSleeping)
	f.rss[0], _ = testcluster.PeakRSS(first.PID())
	first.stop()
	if err != nil {
		return err
	}
	h.logf("blobs: %d results of %d bytes recorded in %s; restarting the manager to replay them", c.blobSteps, c.blobBytes, time.Since(start).Round(time.Second))
	second, err := h.startManager(ctx, budget...)
	if err != nil {
		return err
	}
	finished, err := h.waitRun(ctx, blobsNamespace, run.Name, start)
	f.rss[1], _ = testcluster.PeakRSS(second.PID())
	second.stop()
	if err != nil {
		return err
	}
	f.took = finished.Sub(start)
	if err := h.checkBlobs(ctx, run, f); err != nil {
		return err
	}
	h.logf("blobs: succeeded %v after %s, %d MiB recorded; %d objects, the largest %s of %d KiB; manager peak RSS %.0f and %.0f MiB",
		f.succeeded, f.took.Round(time.Second), f.recorded>>20, f.objects, f.largestName, f.largest>>10, mib(f.rss[0]), mib(f.rss[1]))
	return nil
}

// checkBlobs reads the finished run and every object it owns, and records the outcome.
func (h *harness) checkBlobs(ctx context.Context, run *workflowsv1alpha1.WorkflowRun, f *blobsFigure) error {
	if err := h.client.Get(ctx, keyOf(run.Namespace, run.Name), run); err != nil {
		return fmt.Errorf("read run %s: %w", run.Name, err)
	}
	var total int
	f.succeeded = run.Status.Phase == workflowsv1alpha1.PhaseSucceeded && run.Status.Output != nil &&
		json.Unmarshal(run.Status.Output.Raw, &total) == nil && total == h.cfg.blobSteps*h.cfg.blobBytes
	if run.Status.History != nil {
		f.recorded = run.Status.History.RecordedBytes
	}
	f.observe(run.Name, run)
	pages := []client.ObjectList{&workflowsv1alpha1.WorkflowRunSegmentList{}, &workflowsv1alpha1.WorkflowRunPayloadList{}}
	for _, list := range pages {
		cont := ""
		for {
			if err := h.client.List(ctx, list, client.InNamespace(run.Namespace), client.Limit(20), client.Continue(cont)); err != nil {
				return fmt.Errorf("list the objects of run %s: %w", run.Name, err)
			}
			switch l := list.(type) {
			case *workflowsv1alpha1.WorkflowRunSegmentList:
				for i := range l.Items {
					f.observe(l.Items[i].Name, &l.Items[i])
				}
				cont = l.Continue
			case *workflowsv1alpha1.WorkflowRunPayloadList:
				for i := range l.Items {
					f.observe(l.Items[i].Name, &l.Items[i])
				}
				cont = l.Continue
			}
			if cont == "" {
				break
			}
		}
	}
	return nil
}

// observe counts obj and keeps it if it is the largest so far.
func (f *blobsFigure) observe(name string, obj any) {
	b, _ := json.Marshal(obj)
	f.objects++
	if len(b) > f.largest {
		f.largest, f.largestName = len(b), name
	}
}

// waitRunPhase polls run ns/name until it is in phase; a final phase other than it is an error.
func (h *harness) waitRunPhase(ctx context.Context, ns, name string, phase workflowsv1alpha1.RunPhase) error {
	deadline := time.Now().Add(h.cfg.timeout)
	for {
		run := &workflowsv1alpha1.WorkflowRun{}
		if err := h.client.Get(ctx, keyOf(ns, name), run); err != nil {
			return fmt.Errorf("read run %s: %w", name, err)
		}
		if run.Status.Phase == phase {
			return nil
		}
		if run.Status.Phase.IsFinal() {
			return succeeded(run)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("run %s did not reach %s within %s (phase %q)", name, phase, h.cfg.timeout, run.Status.Phase)
		}
		if err := testcluster.Sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}
