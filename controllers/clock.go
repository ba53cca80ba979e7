package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// now reads clock, the reconcilers' optional test clock, or the wall clock when it is nil.
func now(clock func() time.Time) time.Time {
	if clock != nil {
		return clock()
	}
	return time.Now()
}

// emit records a Kubernetes Event on obj when the reconciler has a recorder (tests may not).
// The note is cut to what the API server accepts (textbound.EventNote): a longer one would be
// rejected and the Event lost, with the whole text in the recorder's log line.
func emit(events recorder.EventRecorder, obj runtime.Object, eventType, reason, action, note string, args ...any) {
	if events != nil {
		events.Eventf(obj, nil, eventType, reason, action, "%s", textbound.Cut(fmt.Sprintf(note, args...), textbound.EventNote))
	}
}

// statusText cuts s to what a message field of the operator's statuses, and a
// metav1.Condition's message, may hold (workflowsv1alpha1.MaxMessageLength).
func statusText(s string) string {
	return textbound.Cut(s, workflowsv1alpha1.MaxMessageLength)
}

// logText cuts text from users or upstream services that a log line quotes.
func logText(s string) string {
	return textbound.Cut(s, textbound.LogValue)
}

// setCondition sets cond in conditions with its message cut to what the schema allows, so a
// long error never makes the status write fail.
func setCondition(conditions *[]metav1.Condition, cond metav1.Condition) {
	cond.Message = statusText(cond.Message)
	meta.SetStatusCondition(conditions, cond)
}

// conditionSays reports whether cond exists and already says status, reason and message as
// setCondition would write them: the controllers announce only a changed condition.
func conditionSays(cond *metav1.Condition, status metav1.ConditionStatus, reason, message string) bool {
	return cond != nil && cond.Status == status && cond.Reason == reason && cond.Message == statusText(message)
}
