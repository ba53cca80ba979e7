// Package testenv starts the real control plane for the envtest suites: kube-apiserver and etcd
// from bin/k8s (KUBEBUILDER_ASSETS, set by `make test`) with the operator's CRDs installed,
// kube-controller-manager for the suites (and `make dev`) that need garbage collection, and
// gives managers the options a suite needs and a way to run them in the background.
package testenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/runstore"
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

// ControllerManager is a running kube-controller-manager.
type ControllerManager struct {
	proc *testcluster.Process
	dir  string
}

// StartControllerManager runs kube-controller-manager from the assets directory (bin/k8s, or
// KUBEBUILDER_ASSETS) against env's API server, with only the garbage collector and the
// namespace controller: what makes owner references delete what a run owns (segments,
// payloads, child runs) and `kubectl delete namespace` finish, as in a real cluster. Its
// output goes to out (nil drops it). Stop it with Stop.
func StartControllerManager(env *envtest.Environment, out io.Writer) (*ControllerManager, error) {
	bin, err := controllerManagerPath(env)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "centaur-kcm-")
	if err != nil {
		return nil, fmt.Errorf("create a dir for kube-controller-manager: %w", err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeAdminKubeconfig(env, "kube-controller-manager", kubeconfig); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	proc, err := testcluster.StartProcess(testcluster.ProcessOptions{
		Binary: bin,
		Args: []string{
			"--kubeconfig=" + kubeconfig,
			"--controllers=garbage-collector-controller,namespace-controller",
			"--leader-elect=false",
			"--secure-port=0",
			"--concurrent-gc-syncs=10",
		},
		Output: out,
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &ControllerManager{proc: proc, dir: dir}, nil
}

// Stop stops the controller manager and removes its kubeconfig.
func (c *ControllerManager) Stop() error {
	err := c.proc.Stop(10 * time.Second)
	_ = os.RemoveAll(c.dir)
	return err
}

// controllerManagerPath finds kube-controller-manager beside env's kube-apiserver.
func controllerManagerPath(env *envtest.Environment) (string, error) {
	dir := env.BinaryAssetsDirectory
	if dir == "" {
		dir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if api := env.ControlPlane.APIServer; dir == "" && api != nil && api.Path != "" {
		dir = filepath.Dir(api.Path)
	}
	bin := filepath.Join(dir, "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("find kube-controller-manager in %q (run `make control-plane`): %w", dir, err)
	}
	return bin, nil
}

// writeAdminKubeconfig provisions a user of group system:masters on env and writes its
// kubeconfig to path (mode 0600: it holds the user's key).
func writeAdminKubeconfig(env *envtest.Environment, user, path string) error {
	u, err := env.ControlPlane.AddUser(envtest.User{Name: user, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("provision user %s: %w", user, err)
	}
	raw, err := u.KubeConfig()
	if err != nil {
		return fmt.Errorf("render the kubeconfig of %s: %w", user, err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("write the kubeconfig of %s: %w", user, err)
	}
	return nil
}
