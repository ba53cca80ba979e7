package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/centaur-dev/workflow-operator/internal/testenv"
)

// kubeconfigName names the cluster, user and context in .dev/kubeconfig, so that it merges
// cleanly with other kubeconfigs (envtest calls all three "envtest").
const kubeconfigName = "centaur-dev"

// controlPlane is the dev cluster's etcd and kube-apiserver, run by envtest,
// kube-controller-manager, and their log files.
type controlPlane struct {
	env  *envtest.Environment
	kcm  *testenv.ControllerManager
	logs []*os.File
}

// startGarbageCollector runs kube-controller-manager's garbage collector and namespace
// controller against the control plane, logging to .dev/logs/kube-controller-manager.log; it
// stops with the control plane.
func startGarbageCollector(cp *controlPlane, p paths) error {
	out, err := cp.openLog(p.logs, "kube-controller-manager.log")
	if err != nil {
		return err
	}
	logf("starting kube-controller-manager (garbage collection, namespace deletion)")
	if cp.kcm, err = testenv.StartControllerManager(cp.env, out); err != nil {
		return fmt.Errorf("start kube-controller-manager (see %s): %w", p.logs, err)
	}
	return nil
}

// startControlPlane starts etcd on the persistent data dir p.etcd and kube-apiserver, then
// installs (or updates) the CRDs from p.crds.
//
// Setting Etcd.DataDir is what keeps the data: envtest only deletes a data dir it created itself
// (process.State.DirNeedsCleaning). The API server's cert dir stays envtest's temporary one: it
// must, because envtest only generates the serving CA when that dir has no certificate yet, and
// a kubeconfig cannot be written without the CA. So the CA and client certificates change on
// every start and .dev/kubeconfig is rewritten each time.
func startControlPlane(p paths) (*controlPlane, error) {
	if err := os.MkdirAll(p.etcd, 0o700); err != nil {
		return nil, fmt.Errorf("create the etcd data dir: %w", err)
	}
	cp := &controlPlane{}
	etcdLog, err := cp.openLog(p.logs, "etcd.log")
	if err != nil {
		return nil, err
	}
	apiLog, err := cp.openLog(p.logs, "kube-apiserver.log")
	if err != nil {
		cp.closeLogs()
		return nil, err
	}
	useExistingCluster := false
	cp.env = &envtest.Environment{
		ControlPlane: envtest.ControlPlane{
			Etcd:      &envtest.Etcd{Path: filepath.Join(p.assets, "etcd"), DataDir: p.etcd, Out: etcdLog, Err: etcdLog},
			APIServer: &envtest.APIServer{Path: filepath.Join(p.assets, "kube-apiserver"), Out: apiLog, Err: apiLog},
		},
		BinaryAssetsDirectory: p.assets,
		// Never a cluster from the environment (USE_EXISTING_CLUSTER): this is the dev cluster.
		UseExistingCluster: &useExistingCluster,
		CRDDirectoryPaths:  []string{p.crds},
		// envtest copies this over CRDInstallOptions.ErrorIfPathMissing in Start.
		ErrorIfCRDPathMissing: true,
		// CRDInstallOptions.CleanUpAfterUse stays false: true would delete the CRDs, and with
		// them every run, on Stop.
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  20 * time.Second,
	}
	if _, err := cp.env.Start(); err != nil {
		// Start leaves etcd and kube-apiserver running when a later phase (CRDs) fails.
		cp.stop()
		return nil, fmt.Errorf("start etcd and kube-apiserver (see %s): %w", p.logs, err)
	}
	return cp, nil
}

// openLog truncates and opens dir/name for a control-plane process's output.
func (cp *controlPlane) openLog(dir, name string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the log dir: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("create a log file: %w", err)
	}
	cp.logs = append(cp.logs, f)
	return f, nil
}

// closeLogs closes the log files.
func (cp *controlPlane) closeLogs() {
	for _, f := range cp.logs {
		_ = f.Close()
	}
	cp.logs = nil
}

// stop stops kube-controller-manager, kube-apiserver, then etcd (SIGTERM, SIGKILL after the
// stop timeout). envtest leaves the data dir alone because we supplied it; it removes only its
// temporary cert dir.
func (cp *controlPlane) stop() {
	if cp.kcm != nil {
		if err := cp.kcm.Stop(); err != nil {
			logf("stop kube-controller-manager: %v", err)
		}
	}
	if cp.env != nil {
		if err := cp.env.Stop(); err != nil {
			logf("stop the control plane: %v", err)
		}
	}
	cp.closeLogs()
}

// apiServerURL is the address kubectl talks to.
func (cp *controlPlane) apiServerURL() string {
	return cp.env.Config.Host
}

// writeKubeconfig provisions an admin user (group system:masters) and writes its kubeconfig to
// path with mode 0600: it holds the user's private key.
func (cp *controlPlane) writeKubeconfig(path string) error {
	user, err := cp.env.ControlPlane.AddUser(envtest.User{Name: "dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("provision the admin user: %w", err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("render the admin kubeconfig: %w", err)
	}
	raw, err = renameKubeconfig(raw, kubeconfigName)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, raw, 0o600); err != nil {
		return fmt.Errorf("write the kubeconfig: %w", err)
	}
	return nil
}

// renameKubeconfig rewrites a one-context kubeconfig so that its cluster, user and context are
// all called name, with the default namespace.
func renameKubeconfig(raw []byte, name string) ([]byte, error) {
	in, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("parse the kubeconfig: %w", err)
	}
	current, ok := in.Contexts[in.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("the kubeconfig has no current context %q", in.CurrentContext)
	}
	out := clientcmdapi.NewConfig()
	out.Clusters[name] = in.Clusters[current.Cluster]
	out.AuthInfos[name] = in.AuthInfos[current.AuthInfo]
	out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	out.CurrentContext = name
	data, err := clientcmd.Write(*out)
	if err != nil {
		return nil, fmt.Errorf("serialize the kubeconfig: %w", err)
	}
	return data, nil
}
