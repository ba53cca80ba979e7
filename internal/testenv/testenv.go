// Package testenv runs the operator's manager inside the test process, for the envtest suites:
// the manager options a suite needs and a way to run a manager in the background and stop it.
// The control plane the suites run against, and every manager that runs as its own process,
// come from internal/testcluster: this package is only what happens in the test's own process.
package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/centaur-dev/workflow-operator/runstore"
)

// ManagerOptions are manager options for a suite: the manager's cache options (lean runs), no
// metrics listener, and controller names may repeat, since specs restart managers in one
// process as a crash and restart would.
func ManagerOptions(scheme *k8sruntime.Scheme) ctrl.Options {
	skip := true
	return ctrl.Options{
		Scheme:     scheme,
		Cache:      runstore.CacheOptions(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: ctrlconfig.Controller{SkipNameValidation: &skip},
	}
}

// managerStopTimeout bounds how long a suite's manager may take to stop.
const managerStopTimeout = 30 * time.Second

// StartManager runs mgr in the background until stop is called; stop cancels it, waits for
// its Start to return and returns Start's error.
func StartManager(mgr ctrl.Manager) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(managerStopTimeout):
			return fmt.Errorf("the manager did not stop within %s", managerStopTimeout)
		}
	}
}

// WaitFor polls check until it succeeds, failing t with check's last error once timeout
// passed: what says what was awaited.
func WaitFor(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
