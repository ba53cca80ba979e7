package controllers

import (
	"encoding/json"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// toAPIJournal converts entries of the engine's journal into status.journal's (or a segment's).
func toAPIJournal(entries []engine.Entry) []workflowsv1alpha1.JournalEntry {
	out := make([]workflowsv1alpha1.JournalEntry, len(entries))
	for i, e := range entries {
		out[i] = workflowsv1alpha1.JournalEntry{
			Name:       e.Name,
			Kind:       workflowsv1alpha1.EntryKind(e.Kind),
			State:      workflowsv1alpha1.EntryState(e.State),
			Attempts:   int32(e.Attempts),
			StartedAt:  microTime(e.StartedAt),
			FinishedAt: microTime(e.FinishedAt),
			WakeAt:     microTime(e.WakeAt),
			Target:     e.Target,
			Ref:        e.Ref,
			Result:     rawJSON(e.Result),
			Payload:    toAPIPayload(e.Payload),
			Error:      e.Error,
			ErrorType:  e.ErrorType,
		}
	}
	return out
}

// toAPIPayload converts the engine's reference to a result stored out of line.
func toAPIPayload(ref *engine.PayloadRef) *workflowsv1alpha1.PayloadRef {
	if ref == nil {
		return nil
	}
	return &workflowsv1alpha1.PayloadRef{Name: ref.Name, Parts: int32(ref.Parts), Bytes: int64(ref.Bytes), SHA256: ref.SHA256}
}

// fromAPIPayload converts a reference to a result stored out of line for the engine.
func fromAPIPayload(ref *workflowsv1alpha1.PayloadRef) *engine.PayloadRef {
	if ref == nil {
		return nil
	}
	return &engine.PayloadRef{Name: ref.Name, Parts: int(ref.Parts), Bytes: int(ref.Bytes), SHA256: ref.SHA256}
}

// fromAPIJournal converts entries of status.journal (or of a segment) into the engine's.
func fromAPIJournal(entries []workflowsv1alpha1.JournalEntry) []engine.Entry {
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
			Payload:    fromAPIPayload(e.Payload),
			Error:      e.Error,
			ErrorType:  e.ErrorType,
		}
		if e.Result != nil {
			out[i].Result = json.RawMessage(e.Result.Raw)
		}
	}
	return out
}

func microTime(t time.Time) *metav1.MicroTime {
	if t.IsZero() {
		return nil
	}
	return &metav1.MicroTime{Time: t}
}

func fromMicroTime(t *metav1.MicroTime) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// rawJSON wraps JSON bytes for a CRD field of any JSON type; empty means absent.
func rawJSON(b []byte) *apiextensionsv1.JSON {
	if len(b) == 0 {
		return nil
	}
	return &apiextensionsv1.JSON{Raw: b}
}
