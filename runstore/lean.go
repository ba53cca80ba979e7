package runstore

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// lastApplied is the annotation kubectl apply keeps a copy of the applied object in (input
// included).
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// LeanInputBytes is the largest input the cache keeps: a run that has not started yet can then
// start from its cached copy, without a read.
const LeanInputBytes = 1 << 10

// CacheOptions are the manager's cache options: managed fields are dropped from every cached
// object, and WorkflowRuns are kept lean (see LeanRun).
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&workflowsv1alpha1.WorkflowRun{}: {Transform: LeanRun},
		},
	}
}

// LeanRun is the cache transform of WorkflowRuns. The manager's cache keeps what reconciles,
// watches and indexes read: metadata, the spec (with its input only when it is at most
// LeanInputBytes: see InputDropped), the run's phase, times, position, failure reason and
// journal summary, the journal entries that wait for an event (for the index that wakes them)
// and the receipts of events received (for the events' consumers), without payloads. It drops
// larger inputs, the output, the rest of the journal, the conditions, the failure message,
// managed fields and kubectl's last-applied copy, so that the manager's memory does not grow
// with what runs record.
//
// Readers of the cache therefore never see a run's input, journal or output: executions read
// the run from the API server, and so must every other reader that needs them (the REST API
// and the web console use the manager's API reader and runstore.ReadJournal).
func LeanRun(obj any) (any, error) {
	run, ok := obj.(*workflowsv1alpha1.WorkflowRun)
	if !ok {
		return obj, nil
	}
	run.ManagedFields = nil
	delete(run.Annotations, lastApplied)
	if run.Spec.Input != nil && len(run.Spec.Input.Raw) > LeanInputBytes {
		run.Spec.Input = &apiextensionsv1.JSON{} // empty: dropped (see InputDropped)
	}
	st := &run.Status
	st.Output, st.Conditions = nil, nil
	if st.Error != nil {
		st.Error = &workflowsv1alpha1.RunError{Reason: st.Error.Reason}
	}
	st.Journal = eventEntries(st.Journal)
	return run, nil
}

// InputDropped reports whether the cache dropped the run's input (a cached copy only).
func InputDropped(run *workflowsv1alpha1.WorkflowRun) bool {
	return run.Spec.Input != nil && len(run.Spec.Input.Raw) == 0
}

// Untouched reports whether a cached run is complete as cached: the engine never wrote it (no
// status to drop) and the cache kept its input. Such a run can start from its cached copy.
func Untouched(run *workflowsv1alpha1.WorkflowRun) bool {
	st := &run.Status
	return !InputDropped(run) && st.Phase == "" && st.ObservedGeneration == 0 && st.History == nil && st.StartedAt == nil
}

// eventEntries keeps the entries that wait for an event and the receipts, without results.
func eventEntries(entries []workflowsv1alpha1.JournalEntry) []workflowsv1alpha1.JournalEntry {
	var out []workflowsv1alpha1.JournalEntry
	for _, e := range entries {
		switch {
		case e.Kind == workflowsv1alpha1.EntryKindEvent && e.State == workflowsv1alpha1.EntryStateWaiting:
			out = append(out, workflowsv1alpha1.JournalEntry{Name: e.Name, Kind: e.Kind, State: e.State, Target: e.Target})
		case IsReceipt(e):
			out = append(out, receipt(e))
		}
	}
	return out
}
