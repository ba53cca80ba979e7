// Package v1alpha1 contains the API types of the workflows.centaur.dev group, eight kinds:
//
//   - WorkflowRun (wfr): one durable execution of a workflow (Go, a workflow file or a
//     definition), its journal kept in its status;
//   - WorkflowRunSegment (wfrs): a sealed, final part of a run's journal;
//   - WorkflowRunPayload (wfrp): a step result too large for the run's journal;
//   - WorkflowDefinition (wfd): a Starlark workflow file kept in a resource (spec.source);
//   - WorkflowSchedule (wfs): starts runs of a workflow on a cron schedule;
//   - WorkflowEvent (wfe): an event that runs waiting for it receive;
//   - WebhookEndpoint (whe): a signed HTTP route that starts runs;
//   - AgentRun (agr): one turn asked of an LLM agent.
//
// +kubebuilder:object:generate=true
// +groupName=workflows.centaur.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "workflows.centaur.dev", Version: "v1alpha1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds this package's kinds to a scheme; main and the test suites call it.
	AddToScheme = SchemeBuilder.AddToScheme
)
