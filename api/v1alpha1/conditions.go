package v1alpha1

// The condition types the operator sets in status.conditions (metav1.Condition), each with
// observedGeneration. The reasons they carry are the Reason constants of this package.
const (
	// ConditionSucceeded is the condition type that tracks a run's outcome, as in Tekton and
	// Knative: Unknown while in flight, True on success, False on failure or cancellation.
	ConditionSucceeded = "Succeeded"
	// ConditionReady is the condition type that says whether an object serves: a
	// WebhookEndpoint serves deliveries, a WorkflowDefinition's revision starts runs, a
	// WorkflowSchedule ticks.
	ConditionReady = "Ready"
)
