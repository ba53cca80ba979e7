// Package v1alpha1 contains the API types of the workflows.centaur.dev group: WorkflowRun, one
// durable execution of a registered Go workflow, and WebhookEndpoint, a signed HTTP route that
// starts runs.
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
