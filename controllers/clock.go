package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// now reads clock, the reconcilers' optional test clock, or the wall clock when it is nil.
func now(clock func() time.Time) time.Time {
	if clock != nil {
		return clock()
	}
	return time.Now()
}

// emit records a Kubernetes Event on obj when the reconciler has a recorder (tests may not).
func emit(events recorder.EventRecorder, obj runtime.Object, eventType, reason, action, note string, args ...any) {
	if events != nil {
		events.Eventf(obj, nil, eventType, reason, action, note, args...)
	}
}
