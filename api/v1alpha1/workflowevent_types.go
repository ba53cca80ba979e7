package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkflowEventSpec is an event that runs can wait for: a type, a correlation id that says which
// runs it concerns, and a payload.
type WorkflowEventSpec struct {
	// type names what happened, for example "approval.decided". A run's wait_for_event
	// matches it together with correlationId.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="type is immutable"
	Type string `json:"type"`

	// correlationId says which runs the event concerns, for example a request id. Only runs
	// waiting on the same type and correlationId resume.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="correlationId is immutable"
	// +optional
	CorrelationID string `json:"correlationId,omitempty"`

	// payload is any JSON value; the waiting run receives it, decoded into its own type.
	// Example: {"decision": "approved", "by": "ada"}.
	// +optional
	Payload *apiextensionsv1.JSON `json:"payload,omitempty"`
}

// MaxEventConsumers bounds status.consumedBy, so that an event many runs receive keeps a
// status of bounded size.
const MaxEventConsumers = 100

// EventConsumer records one run that received the event.
type EventConsumer struct {
	// run is the name of the WorkflowRun, in the event's namespace.
	Run string `json:"run"`
	// step is the name of the run's wait_for_event that received the event.
	Step string `json:"step"`
	// at is when the run recorded the event.
	At metav1.Time `json:"at"`
}

// WorkflowEventStatus says which runs consumed the event and when it expires.
type WorkflowEventStatus struct {
	// consumedBy lists the runs that received the event, oldest first: the first
	// MaxEventConsumers of them (consumers counts them all). The manager (its elected replica)
	// derives it from the runs' journals, where each wait records the event it received,
	// shortly after a run received it; a run deleted later stays listed.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	ConsumedBy []EventConsumer `json:"consumedBy,omitempty"`
	// consumers counts the runs that received the event, listed in consumedBy or not.
	// +optional
	Consumers int32 `json:"consumers,omitempty"`
	// expiresAt is when the manager deletes the event (its creation plus the retention set by
	// --event-retention, 24h by default). Until then a run that reaches its wait late still
	// receives it.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}

// WorkflowEvent delivers an event to the runs in its namespace that wait for its type and
// correlation id, including runs that reach their wait only after the event was created: events
// are kept for a retention period, so an early event is never lost. kubectl apply of a
// WorkflowEvent is the Kubernetes-native way to resume runs; the REST API creates the same.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wfe,categories=centaur
// +kubebuilder:selectablefield:JSONPath=`.spec.type`
// +kubebuilder:selectablefield:JSONPath=`.spec.correlationId`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Correlation",type=string,JSONPath=`.spec.correlationId`
// +kubebuilder:printcolumn:name="Consumers",type=string,JSONPath=`.status.consumedBy[*].run`
// +kubebuilder:printcolumn:name="Expires",type=date,JSONPath=`.status.expiresAt`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkflowEvent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the event: type, correlation id and payload.
	Spec WorkflowEventSpec `json:"spec"`
	// status lists the runs that consumed the event.
	// +optional
	Status WorkflowEventStatus `json:"status,omitempty"`
}

// WorkflowEventList is a list of WorkflowEvents.
//
// +kubebuilder:object:root=true
type WorkflowEventList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkflowEvent `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WorkflowEvent{}, &WorkflowEventList{})
}
