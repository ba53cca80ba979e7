// Package workflows holds the workflows built into the manager binary. Each file defines one
// workflow with durable.Define; Register adds them all to a registry at start-up. Add your own
// workflow here (or in a package of yours) and register it the same way.
package workflows

import (
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// All returns the built-in workflows.
func All() []durable.Workflow {
	return []durable.Workflow{Hello, Countdown, NightlyReport, Approval, FanOut, GitHubIssueTriage}
}

// Register adds the built-in workflows to reg.
func Register(reg *engine.Registry) error {
	return reg.Register(All()...)
}
