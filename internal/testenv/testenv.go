// Package testenv starts the real control plane for the envtest suites: kube-apiserver and etcd
// from bin/k8s (KUBEBUILDER_ASSETS, set by `make test`) with the operator's CRDs installed, and
// gives managers the options a suite needs and a way to run them in the background.
package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
)

// Start starts kube-apiserver and etcd with the CRDs of config/crd/bases installed.
func Start() (*envtest.Environment, *rest.Config, error) {
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{crdDir()},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("start envtest (run through `make test` so KUBEBUILDER_ASSETS points at bin/k8s): %w", err)
	}
	return env, cfg, nil
}

// ManagerOptions are manager options for a suite: no metrics listener, and controller names
// may repeat, since specs restart managers in one process as a crash and restart would.
func ManagerOptions(scheme *k8sruntime.Scheme) ctrl.Options {
	skip := true
	return ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: ctrlconfig.Controller{SkipNameValidation: &skip},
	}
}

// crdDir is config/crd/bases of this module, wherever the test runs from.
func crdDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "config", "crd", "bases")
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
