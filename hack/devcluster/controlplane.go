package main

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// kubeconfigName names the cluster, user and context in .dev/kubeconfig, so that it merges
// cleanly with other kubeconfigs (envtest calls all three "envtest").
const kubeconfigName = "centaur-dev"

// controlPlane is the dev cluster's etcd, kube-apiserver and kube-controller-manager (the same
// starter as the test suites', the benchmark's and the crash test's, with fsync on).
type controlPlane struct {
	cluster *testcluster.Cluster
}

// startControlPlane starts etcd on the persistent data dir p.etcd, kube-apiserver and
// kube-controller-manager's garbage collector and namespace controller, logging to p.logs, then
// installs (or updates) the CRDs from p.crds.
//
// The data dir is kept: the starter deletes only a data dir it created itself. The API server's
// cert dir stays envtest's temporary one: envtest generates the serving CA only when that dir
// has no certificate yet, and a kubeconfig cannot be written without the CA. So the CA and
// client certificates change on every start and .dev/kubeconfig is rewritten each time.
func startControlPlane(p paths) (*controlPlane, error) {
	if err := os.MkdirAll(p.etcd, 0o700); err != nil {
		return nil, fmt.Errorf("create the etcd data dir: %w", err)
	}
	cluster, err := testcluster.Start(testcluster.Options{
		AssetsDir: p.assets, DataDir: p.etcd, LogDir: p.logs, CRDDir: p.crds, ControllerManager: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w (logs in %s)", err, p.logs)
	}
	return &controlPlane{cluster: cluster}, nil
}

// stop stops kube-controller-manager, kube-apiserver, then etcd (SIGTERM, SIGKILL after the
// stop timeout). The data dir stays.
func (cp *controlPlane) stop() {
	if err := cp.cluster.Stop(); err != nil {
		logf("stop the control plane: %v", err)
	}
}

// config is an admin client configuration of the dev cluster.
func (cp *controlPlane) config() *rest.Config { return cp.cluster.Config() }

// apiServerURL is the address kubectl talks to.
func (cp *controlPlane) apiServerURL() string { return cp.cluster.Config().Host }

// writeKubeconfig provisions an admin user and writes its kubeconfig to path with mode 0600: it
// holds the user's private key.
func (cp *controlPlane) writeKubeconfig(path string) error {
	raw, err := cp.cluster.AdminKubeconfig("dev-admin")
	if err != nil {
		return err
	}
	if raw, err = renameKubeconfig(raw, kubeconfigName); err != nil {
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
