// Package managertest prepares what a test of the real manager binary needs: an API server
// with the operator's CRDs and namespace, a client, a kubeconfig file and the binary itself,
// each cleaned up with the test.
package managertest

import (
	"context"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// OperatorNamespace is the namespace the manager runs in (its POD_NAMESPACE).
const OperatorNamespace = "centaur-system"

// Env is a cluster ready for manager processes.
type Env struct {
	// Client reads and writes the cluster with the operator's scheme.
	Client client.Client
	// Kubeconfig is a kubeconfig file for the cluster.
	Kubeconfig string
	// Binary is the manager binary, built from the module's main package.
	Binary string
}

// Start starts a cluster with OperatorNamespace, writes its kubeconfig and builds the
// manager; the cluster stops when the test ends.
func Start(t *testing.T) *Env {
	t.Helper()
	ctx := context.Background()
	cluster, err := testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	k8s, err := client.New(cluster.Config(), client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := &Env{Client: k8s, Kubeconfig: filepath.Join(dir, "kubeconfig"), Binary: filepath.Join(dir, "manager")}
	if err := cluster.WriteKubeconfig(env.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	if err := testcluster.Build(ctx, ".", env.Binary, false); err != nil {
		t.Fatal(err)
	}
	return env
}
