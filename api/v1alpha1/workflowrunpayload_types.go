package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxPayloadPartBytes is the most data one WorkflowRunPayload holds (base64 makes it a third
// larger on the wire), far below etcd's request limit of about 1.5 MiB. A larger result is
// split into parts.
const MaxPayloadPartBytes = 512 << 10

// WorkflowRunPayloadSpec is one part of one large result of a run's primitive.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a payload is immutable"
type WorkflowRunPayloadSpec struct {
	// runName is the WorkflowRun that recorded the result (it also owns the payload).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	RunName string `json:"runName"`

	// step is the name of the primitive whose result this is.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Step string `json:"step"`

	// attempt is the step's attempt that produced the result; a later attempt of the same step
	// stores its result under another name, so it never collides with an earlier one.
	// +kubebuilder:validation:Minimum=0
	Attempt int32 `json:"attempt"`

	// part is this object's position among the result's parts, from 0.
	// +kubebuilder:validation:Minimum=0
	Part int32 `json:"part"`

	// parts is how many objects the result was split into.
	// +kubebuilder:validation:Minimum=1
	Parts int32 `json:"parts"`

	// sha256 is the hex SHA-256 digest of the whole result (all parts joined), checked when
	// the result is read back.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256"`

	// data is this part's bytes of the result's JSON text (base64 in YAML and JSON).
	// +kubebuilder:validation:MaxLength=699052
	Data []byte `json:"data"`
}

// WorkflowRunPayload holds a step result too large to keep in the run's journal: the journal
// entry references it (status.journal[].payload, or the same field in a WorkflowRunSegment)
// and replay reads it when the handler reaches the step. Payloads are written once, never
// change, and are owned by the run, so deleting the run deletes them. They are labelled
// workflows.centaur.dev/run=<run>.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=wfrp,categories=centaur
// +kubebuilder:printcolumn:name="Run",type=string,JSONPath=`.spec.runName`
// +kubebuilder:printcolumn:name="Step",type=string,JSONPath=`.spec.step`
// +kubebuilder:printcolumn:name="Attempt",type=integer,JSONPath=`.spec.attempt`
// +kubebuilder:printcolumn:name="Part",type=integer,JSONPath=`.spec.part`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkflowRunPayload struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the result's bytes.
	Spec WorkflowRunPayloadSpec `json:"spec"`
}

// WorkflowRunPayloadList is a list of WorkflowRunPayloads.
//
// +kubebuilder:object:root=true
type WorkflowRunPayloadList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkflowRunPayload `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WorkflowRunPayload{}, &WorkflowRunPayloadList{})
}
