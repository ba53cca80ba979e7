package main

import (
	"context"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/manager"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
)

// ensureConsoleSecret creates the web console's session secret (console.DefaultSecret, the
// default of --console-secret) with a random session key, unless it exists: sign-ins then
// survive restarts of the manager, as they would in a cluster. Its namespace exists already
// (ensureDevAPIKey creates it). It is what the chart's hook Job does (manager --ensure-secrets).
func ensureConsoleSecret(ctx context.Context, c client.Client) error {
	return manager.EnsureConsoleSecret(ctx, c, logr.Discard(), console.DefaultSecret)
}
