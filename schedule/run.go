package schedule

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// What started a schedule's run (the value of AnnotationScheduleTrigger).
const (
	// TriggerTick: the run is its tick's, started by the schedule.
	TriggerTick = "tick"
	// TriggerBackfill: the run is its tick's, started by a backfill through the REST API.
	TriggerBackfill = "backfill"
	// TriggerManual: the run was started by "trigger now" through the REST API.
	TriggerManual = "manual"
)

// Run names: "<schedule>-<tick in UTC as yyyymmdd-hhmmss>", for example
// "nightly-report-20270328-010000", at most 63 characters so that they serve as label values
// (a run's children carry its name in a label). A schedule name longer than namePrefixLength is
// cut and made unique with a hash.
const (
	tickLayout       = "20060102-150405"
	namePrefixLength = 40
	manualSuffix     = "-manual"
)

// TickRunName returns the name of the run of schedule's tick. Only the schedule and the tick go
// into it, so every manager, after any restart, asks the API server for the same object, and the
// API server lets exactly one create it.
func TickRunName(schedule string, tick time.Time) string {
	return namePrefix(schedule) + "-" + tick.UTC().Format(tickLayout)
}

// ManualRunName returns the name of a run triggered by hand at the second at: two triggers in
// the same second are one run.
func ManualRunName(schedule string, at time.Time) string {
	return TickRunName(schedule, at) + manualSuffix
}

// namePrefix is schedule, cut to namePrefixLength with a hash of the whole when longer.
func namePrefix(schedule string) string {
	if len(schedule) <= namePrefixLength {
		return schedule
	}
	sum := sha256.Sum256([]byte(schedule))
	return strings.TrimRight(schedule[:namePrefixLength-9], "-.") + "-" + hex.EncodeToString(sum[:])[:8]
}

// NewRun returns the run that ws starts for tick, not yet created: named by TickRunName (or
// ManualRunName for a manual trigger), labelled with the schedule and the workflow, annotated
// with the tick and the trigger, with the schedule's workflow and input, and controlled by ws
// (so deleting the schedule deletes its runs, and the schedule's controller sees them).
func NewRun(ws *workflowsv1alpha1.WorkflowSchedule, tick time.Time, trigger string) *workflowsv1alpha1.WorkflowRun {
	name := TickRunName(ws.Name, tick)
	if trigger == TriggerManual {
		name = ManualRunName(ws.Name, tick)
	}
	run := &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ws.Namespace,
			Labels: map[string]string{
				workflowsv1alpha1.LabelSchedule: workflowsv1alpha1.LabelValue(ws.Name),
				workflowsv1alpha1.LabelWorkflow: workflowsv1alpha1.LabelValue(ws.Spec.WorkflowName),
			},
			Annotations: map[string]string{
				workflowsv1alpha1.AnnotationScheduledTime:   tick.UTC().Format(time.RFC3339),
				workflowsv1alpha1.AnnotationScheduleTrigger: trigger,
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ws, workflowsv1alpha1.GroupVersion.WithKind("WorkflowSchedule"))},
		},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: ws.Spec.WorkflowName},
	}
	if ws.Spec.Input != nil {
		run.Spec.Input = &apiextensionsv1.JSON{Raw: append([]byte(nil), ws.Spec.Input.Raw...)}
	}
	return run
}

// TickOf returns the tick a schedule's run belongs to, from its annotation.
func TickOf(run *workflowsv1alpha1.WorkflowRun) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, run.Annotations[workflowsv1alpha1.AnnotationScheduledTime])
	return t, err == nil
}

// IsTickRun reports whether run is a tick's run (started by the schedule or a backfill), as
// opposed to a manual trigger's.
func IsTickRun(run *workflowsv1alpha1.WorkflowRun) bool {
	return run.Annotations[workflowsv1alpha1.AnnotationScheduleTrigger] != TriggerManual
}

// Jitter returns the delay of each tick's start for the schedule with uid: below max, derived
// from the UID and the tick alone, so every replica and restart computes the same delay.
// Delays are whole milliseconds; a max under a millisecond means none.
func Jitter(uid string, max time.Duration) func(time.Time) time.Duration {
	steps := uint64(max / time.Millisecond)
	if steps == 0 {
		return nil
	}
	return func(tick time.Time) time.Duration {
		sum := sha256.Sum256([]byte(uid + "/" + tick.UTC().Format(time.RFC3339)))
		return time.Duration(binary.BigEndian.Uint64(sum[:8])%steps) * time.Millisecond
	}
}

// Admit applies a concurrency policy to a start while active runs of the schedule are in
// flight: whether the run may start, and whether the runs in flight are to be cancelled first.
func Admit(policy workflowsv1alpha1.ConcurrencyPolicy, active int) (start, replace bool) {
	switch {
	case active == 0:
		return true, false
	case policy == workflowsv1alpha1.ConcurrencyForbid:
		return false, false
	case policy == workflowsv1alpha1.ConcurrencyReplace:
		return true, true
	}
	return true, false
}
