package restapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Event is a delivered event as the REST API shows it.
type Event struct {
	// ID is the WorkflowEvent's name.
	ID string `json:"id"`
	// Namespace is where the event resumes runs.
	Namespace string `json:"namespace"`
	// EventType and CorrelationID say which waiting runs the event resumes.
	EventType     string `json:"event_type"`
	CorrelationID string `json:"correlation_id"`
	// Payload is what the waiting runs receive; null when the request gave none.
	Payload json.RawMessage `json:"payload"`
	// CreatedAt is when the WorkflowEvent was created.
	CreatedAt time.Time `json:"created_at"`
}

// sendEvent answers POST /api/workflows/events (see deliver).
func (a *api) sendEvent(ctx context.Context, c *call) (int, any, error) {
	body, err := readBody(c.w, c.r)
	if err != nil {
		return 0, nil, err
	}
	req, err := DecodeEvent(body)
	if err != nil {
		return 0, nil, decodeFailure(err)
	}
	ev, err := a.deliver(ctx, c.principal, c.r.URL.Query().Get("namespace"), req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, ev, nil
}

// deliver creates a WorkflowEvent in the namespace the principal chooses (queryNS or
// req.Namespace), which resumes the runs of that namespace that wait for its type and
// correlation id, now or later within the event retention.
func (a *api) deliver(ctx context.Context, p Principal, queryNS string, req EventRequest) (Event, error) {
	ns, err := p.Namespace(queryNS, req.Namespace)
	if err != nil {
		return Event{}, err
	}
	ev := NewEvent(ns, req, p.KeyID)
	if err := a.deps.Client.Create(ctx, ev); err != nil {
		return Event{}, fmt.Errorf("create event: %w", err)
	}
	return EventView(ev), nil
}

// NewEvent is the WorkflowEvent an event request asks for in namespace ns, named by the API
// server from its type; keyID, when not empty, records the API key that sent it. The CLI
// creates the same object when it works with a kubeconfig instead of the REST API.
func NewEvent(ns string, req EventRequest, keyID string) *workflowsv1alpha1.WorkflowEvent {
	ev := &workflowsv1alpha1.WorkflowEvent{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: eventNamePrefix(req.EventType),
			Namespace:    ns,
			Annotations:  map[string]string{},
		},
		Spec: workflowsv1alpha1.WorkflowEventSpec{Type: req.EventType, CorrelationID: req.CorrelationID},
	}
	if keyID != "" {
		ev.Annotations[workflowsv1alpha1.AnnotationAPIKeyID] = keyID
	}
	if req.Payload != nil {
		ev.Spec.Payload = &apiextensionsv1.JSON{Raw: req.Payload}
	}
	return ev
}

// EventView is a created WorkflowEvent as the REST API shows it.
func EventView(ev *workflowsv1alpha1.WorkflowEvent) Event {
	v := Event{
		ID: ev.Name, Namespace: ev.Namespace, EventType: ev.Spec.Type, CorrelationID: ev.Spec.CorrelationID,
		CreatedAt: ev.CreationTimestamp.UTC(),
	}
	if ev.Spec.Payload != nil {
		v.Payload = json.RawMessage(ev.Spec.Payload.Raw)
	}
	return v
}

// eventNamePrefix is the generateName of an event: its type made name-safe, so that `kubectl
// get wfe` reads well.
func eventNamePrefix(eventType string) string {
	if slug := nameSlug(eventType, 40); slug != "" {
		return slug + "-"
	}
	return "event-"
}
