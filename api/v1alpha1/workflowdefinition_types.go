package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkflowDefinitionSpec holds a workflow file's source.
// +kubebuilder:validation:XValidation:rule="!has(self.modules) || self.modules.all(k, k.matches('^_[A-Za-z0-9_.-]*[.]star$'))",message="module names start with an underscore and end in .star, for example _helpers.star"
type WorkflowDefinitionSpec struct {
	// source is the text of a workflow file: Starlark (Python syntax) that sets
	// WORKFLOW_NAME and defines handler(inp, ctx), and may set DESCRIPTION, EXAMPLE_INPUT,
	// Input = dataclass(...) and WEBHOOKS, exactly as a file in the manager's WORKFLOW_DIRS
	// (docs/workflow-files.md). Its workflow is visible only in this namespace and its runs live
	// here. Changing it makes a new revision: runs already started finish on the revision they
	// started with, new runs take the new one. Its http module cannot reach private, loopback,
	// link-local or cluster addresses unless the operator allows them.
	// Example: "WORKFLOW_NAME = \"greet\"\ndef handler(inp, ctx):\n    return {\"greeting\": \"Hello, \" + inp.name}\n"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	Source string `json:"source"`

	// modules are helper files the source may load() by name, for example
	// load("_helpers.star", "summarize") with the key "_helpers.star". Names start with an
	// underscore and end in .star.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Modules map[string]string `json:"modules,omitempty"`
}

// DefinitionWebhook is the state of one webhook route a definition declares in WEBHOOKS.
type DefinitionWebhook struct {
	// slug is the route's last path segment.
	Slug string `json:"slug"`
	// path is where the provider sends deliveries: /api/webhooks/{slug} on the manager's API.
	Path string `json:"path"`
	// ready is true while the route serves deliveries.
	Ready bool `json:"ready"`
	// reason says why a route does not serve (SecretNotFound, SecretKeyMissing,
	// SlugConflict, ...).
	// +optional
	Reason string `json:"reason,omitempty"`
	// message says what to do about it (at most 32768 characters).
	// +kubebuilder:validation:MaxLength=32768
	// +optional
	Message string `json:"message,omitempty"`
}

// WorkflowDefinitionStatus is what the manager made of the source.
type WorkflowDefinitionStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions hold the Ready condition: True with reason Loaded when new runs of the
	// workflow start on this source; False with the reason the source does not load
	// (SyntaxError, MissingHandler, ...) or is not used (NameConflict), and a message that
	// says where and what to fix.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// workflowName is the source's WORKFLOW_NAME: what runs put in spec.workflowName.
	// +optional
	WorkflowName string `json:"workflowName,omitempty"`

	// revision identifies the source (and its modules); runs record it in
	// status.workflowRevision. Example: "greet-3f9a2c81d04b".
	// +optional
	Revision string `json:"revision,omitempty"`

	// webhooks are the routes the source declares in WEBHOOKS, and whether each is served.
	// +optional
	Webhooks []DefinitionWebhook `json:"webhooks,omitempty"`
}

// WorkflowDefinition is a workflow file kept as a resource, so that a team manages its
// workflows with GitOps like its webhook endpoints: spec.source holds the Starlark source of
// one workflow, which the manager loads without a restart and runs in this namespace only.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wfd,categories=centaur
// +kubebuilder:printcolumn:name="Workflow",type=string,JSONPath=`.status.workflowName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.revision`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkflowDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the source.
	Spec WorkflowDefinitionSpec `json:"spec"`
	// status says whether it loaded, and its revision.
	// +optional
	Status WorkflowDefinitionStatus `json:"status,omitempty"`
}

// WorkflowDefinitionList is a list of WorkflowDefinitions.
//
// +kubebuilder:object:root=true
type WorkflowDefinitionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkflowDefinition `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WorkflowDefinition{}, &WorkflowDefinitionList{})
}
