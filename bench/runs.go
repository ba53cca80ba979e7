package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// newRun builds a run of workflow with input.
func newRun(ns, name, workflow string, input any) *workflowsv1alpha1.WorkflowRun {
	raw, err := json.Marshal(input)
	if err != nil {
		panic(fmt.Sprintf("encode a benchmark input: %v", err)) // inputs are plain structs
	}
	return &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: workflow, Input: &apiextensionsv1.JSON{Raw: raw}},
	}
}

// parallel calls fn(i) for i in [0, n) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// paced calls fn(i) for i in [0, n) at rate calls/s, each in its own goroutine, whatever the
// earlier calls' progress (an open loop, as independent clients behave), and returns the first
// error.
func paced(ctx context.Context, n int, rate float64, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if err := testcluster.Sleep(ctx, time.Until(due)); err != nil {
			break
		}
		wg.Go(func() {
			if err := fn(ctx, i); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// createRuns creates runs on workers goroutines.
func (h *harness) createRuns(ctx context.Context, runs []*workflowsv1alpha1.WorkflowRun, workers int) error {
	return parallel(ctx, len(runs), workers, func(ctx context.Context, i int) error {
		if err := h.client.Create(ctx, runs[i]); err != nil {
			return fmt.Errorf("create run %s: %w", runs[i].Name, err)
		}
		return nil
	})
}

// listRuns lists the runs of ns straight from the API server.
func (h *harness) listRuns(ctx context.Context, ns string) ([]workflowsv1alpha1.WorkflowRun, error) {
	var list workflowsv1alpha1.WorkflowRunList
	if err := h.client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list the runs of %s: %w", ns, err)
	}
	return list.Items, nil
}

// deleteRuns deletes every run of ns and waits until they are gone.
func (h *harness) deleteRuns(ctx context.Context, ns string) error {
	if err := h.client.DeleteAllOf(ctx, &workflowsv1alpha1.WorkflowRun{}, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("delete the runs of %s: %w", ns, err)
	}
	for {
		runs, err := h.listRuns(ctx, ns)
		if err != nil || len(runs) == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the runs of %s to go: %w", ns, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// The benchmark learns that runs finished by polling, not by a watch: a watch would make the
// API server send, and this process decode, every status write of the runs it measures (a
// long run's object grows to hundreds of KiB), adding load that the raw limits do not carry.
// A run's end time comes from the Kubernetes Event "Succeeded" the manager records right after
// the run's final status write: its eventTime has microseconds, and Events are small to poll.
// Reads ask for resourceVersion 0, which the API server answers from its watch cache.

// cachedList asks for a list from the API server's watch cache. Each list needs its own
// options: the client writes the selectors into them.
func cachedList() *client.ListOptions {
	return &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}
}

// succeededAt returns the eventTime of the manager's Succeeded event of each run of ns (only
// of run name, when name is set).
func (h *harness) succeededAt(ctx context.Context, ns, name string) (map[string]time.Time, error) {
	sel := fields.OneTermEqualSelector("reason", "Succeeded")
	if name != "" {
		sel = fields.AndSelectors(sel, fields.OneTermEqualSelector("involvedObject.name", name))
	}
	var events corev1.EventList
	if err := h.client.List(ctx, &events, client.InNamespace(ns), client.MatchingFieldsSelector{Selector: sel}, cachedList()); err != nil {
		return nil, fmt.Errorf("list the Succeeded events of %s: %w", ns, err)
	}
	out := make(map[string]time.Time, len(events.Items))
	for _, ev := range events.Items {
		if ev.InvolvedObject.Kind == "WorkflowRun" && !ev.EventTime.IsZero() {
			out[ev.InvolvedObject.Name] = ev.EventTime.Time
		}
	}
	return out, nil
}

// waitRun waits until run ns/name, created at start, succeeded, and returns when its final
// status write returned (the Succeeded event's time). It looks at the run itself every second,
// to fail fast when it did not succeed.
func (h *harness) waitRun(ctx context.Context, ns, name string, start time.Time) (time.Time, error) {
	deadline := start.Add(h.cfg.timeout)
	lastLook := time.Now()
	for {
		done, err := h.succeededAt(ctx, ns, name)
		if err != nil {
			return time.Time{}, err
		}
		if t, ok := done[name]; ok {
			return t, nil
		}
		if time.Since(lastLook) > time.Second {
			if err := h.checkNotFailed(ctx, ns, name); err != nil {
				return time.Time{}, err
			}
			lastLook = time.Now()
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("run %s did not succeed within %s", name, h.cfg.timeout)
		}
		// The end time is the event's, so polling slower only delays noticing it.
		if err := testcluster.Sleep(ctx, min(max(time.Since(start)/20, 20*time.Millisecond), 500*time.Millisecond)); err != nil {
			return time.Time{}, err
		}
	}
}

// checkNotFailed returns an error when run ns/name ended other than Succeeded.
func (h *harness) checkNotFailed(ctx context.Context, ns, name string) error {
	run := &workflowsv1alpha1.WorkflowRun{}
	err := h.client.Get(ctx, keyOf(ns, name), run, &client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}})
	if err != nil {
		return client.IgnoreNotFound(err)
	}
	if run.Status.Phase.IsFinal() {
		return succeeded(run)
	}
	return nil
}

// waitAll polls the runs of ns every interval until every run named in names is final, and
// returns them. With requireSuccess, a run that did not succeed is an error. Each look lists
// every run of ns: poll a figure's many runs slowly, to keep that cost out of the figure.
func (h *harness) waitAll(ctx context.Context, ns string, names []string, requireSuccess bool, interval time.Duration) ([]workflowsv1alpha1.WorkflowRun, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	deadline := time.Now().Add(h.cfg.timeout)
	for {
		var list workflowsv1alpha1.WorkflowRunList
		if err := h.client.List(ctx, &list, client.InNamespace(ns), cachedList()); err != nil {
			return nil, fmt.Errorf("list the runs of %s: %w", ns, err)
		}
		runs, pending, err := pick(list.Items, want, requireSuccess)
		if err != nil || pending == 0 {
			return runs, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d runs in %s did not finish within %s", pending, len(names), ns, h.cfg.timeout)
		}
		if err := testcluster.Sleep(ctx, interval); err != nil {
			return nil, err
		}
	}
}

// pick returns the runs of items named in want, and how many of those are not final yet.
func pick(items []workflowsv1alpha1.WorkflowRun, want map[string]bool, requireSuccess bool) ([]workflowsv1alpha1.WorkflowRun, int, error) {
	var out []workflowsv1alpha1.WorkflowRun
	final := 0
	for i := range items {
		run := &items[i]
		if !want[run.Name] {
			continue
		}
		out = append(out, *run)
		if !run.Status.Phase.IsFinal() {
			continue
		}
		final++
		if requireSuccess {
			if err := succeeded(run); err != nil {
				return nil, 0, err
			}
		}
	}
	return out, len(want) - final, nil
}

// succeeded returns an error saying why run did not succeed, or nil.
func succeeded(run *workflowsv1alpha1.WorkflowRun) error {
	if run.Status.Phase == workflowsv1alpha1.PhaseSucceeded {
		return nil
	}
	msg := string(run.Status.Phase)
	if run.Status.Error != nil {
		msg += ": " + run.Status.Error.Reason + ": " + run.Status.Error.Message
	}
	return fmt.Errorf("run %s did not succeed: %s", run.Name, msg)
}

// namesOf returns the names of runs.
func namesOf(runs []*workflowsv1alpha1.WorkflowRun) []string {
	names := make([]string, len(runs))
	for i, r := range runs {
		names[i] = r.Name
	}
	return names
}

// keyOf returns the object key of namespace/name.
func keyOf(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

// entry returns the journal entry of run named name.
func entry(run *workflowsv1alpha1.WorkflowRun, name string) (workflowsv1alpha1.JournalEntry, bool) {
	for _, e := range run.Status.Journal {
		if e.Name == name {
			return e, true
		}
	}
	return workflowsv1alpha1.JournalEntry{}, false
}
