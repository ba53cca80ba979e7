package runstore

import (
	"encoding/json"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// ToAPIJournal converts entries of the engine's journal into status.journal's (or a segment's).
func ToAPIJournal(entries []engine.Entry) []workflowsv1alpha1.JournalEntry {
	out := make([]workflowsv1alpha1.JournalEntry, len(entries))
	for i, e := range entries {
		out[i] = workflowsv1alpha1.JournalEntry{
			Name:       e.Name,
			Kind:       workflowsv1alpha1.EntryKind(e.Kind),
			State:      workflowsv1alpha1.EntryState(e.State),
			Attempts:   int32(e.Attempts),
			StartedAt:  MicroTime(e.StartedAt),
			FinishedAt: MicroTime(e.FinishedAt),
			WakeAt:     MicroTime(e.WakeAt),
			Target:     e.Target,
			Ref:        e.Ref,
			Result:     RawJSON(e.Result),
			Payload:    ToAPIPayload(e.Payload),
			Error:      e.Error,
			ErrorType:  e.ErrorType,
		}
	}
	return out
}

// ToAPIPayload converts the engine's reference to a result stored out of line.
func ToAPIPayload(ref *engine.PayloadRef) *workflowsv1alpha1.PayloadRef {
	if ref == nil {
		return nil
	}
	return &workflowsv1alpha1.PayloadRef{Name: ref.Name, Parts: int32(ref.Parts), Bytes: int64(ref.Bytes), SHA256: ref.SHA256}
}

// FromAPIPayload converts a reference to a result stored out of line for the engine.
func FromAPIPayload(ref *workflowsv1alpha1.PayloadRef) *engine.PayloadRef {
	if ref == nil {
		return nil
	}
	return &engine.PayloadRef{Name: ref.Name, Parts: int(ref.Parts), Bytes: int(ref.Bytes), SHA256: ref.SHA256}
}

// FromAPIJournal converts entries of status.journal (or of a segment) into the engine's.
func FromAPIJournal(entries []workflowsv1alpha1.JournalEntry) []engine.Entry {
	out := make([]engine.Entry, len(entries))
	for i, e := range entries {
		out[i] = engine.Entry{
			Name:       e.Name,
			Kind:       engine.Kind(e.Kind),
			State:      engine.State(e.State),
			Attempts:   int(e.Attempts),
			StartedAt:  fromMicroTime(e.StartedAt),
			FinishedAt: fromMicroTime(e.FinishedAt),
			WakeAt:     fromMicroTime(e.WakeAt),
			Target:     e.Target,
			Ref:        e.Ref,
			Payload:    FromAPIPayload(e.Payload),
			Error:      e.Error,
			ErrorType:  e.ErrorType,
		}
		if e.Result != nil {
			out[i].Result = json.RawMessage(e.Result.Raw)
		}
	}
	return out
}

// MicroTime is t as a status field: nil for the zero time, which means absent.
func MicroTime(t time.Time) *metav1.MicroTime {
	if t.IsZero() {
		return nil
	}
	return &metav1.MicroTime{Time: t}
}

// fromMicroTime reads a status time back; absent is the zero time.
func fromMicroTime(t *metav1.MicroTime) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// RawJSON wraps JSON bytes for a CRD field of any JSON type; empty means absent.
func RawJSON(b []byte) *apiextensionsv1.JSON {
	if len(b) == 0 {
		return nil
	}
	return &apiextensionsv1.JSON{Raw: b}
}
