package controllers

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// The suite runs every spec against a real kube-apiserver and etcd started by envtest from
// bin/k8s (KUBEBUILDER_ASSETS, set by `make test`), with kube-controller-manager's garbage
// collector, so that deleting a run deletes what it owns as in a real cluster.
var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	scheme    = NewScheme()
	registry  *durable.Registry
	manager   *testManager
	kcm       *testenv.ControllerManager
)

// suiteLimits are the engine's limits in the suite: a run may store 6 MiB, so that the specs
// of budgets need little data.
var suiteLimits = durable.Limits{MaxRunBytes: 6 << 20}

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var err error
	testEnv, cfg, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	kcm, err = testenv.StartControllerManager(testEnv, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())

	registry = durable.NewRegistry()
	Expect(workflows.Register(registry)).To(Succeed())
	Expect(registry.Register(testWorkflows()...)).To(Succeed())

	manager = startManager()
})

var _ = AfterSuite(func() {
	if manager != nil {
		manager.stop()
	}
	if kcm != nil {
		Expect(kcm.Stop()).To(Succeed())
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// testManager is a running controller manager that a spec can stop and replace, as a crash
// and restart of the operator would.
type testManager struct {
	cancel     context.CancelFunc
	done       chan struct{}
	reconciles sync.Map // request name -> *atomic.Int64
	runs       *WorkflowRunReconciler
	// cache reads the manager's cache, as its reconcilers do.
	cache client.Reader
}

// eventRetention is short in the suite so that the garbage collection of events shows.
const eventRetention = 8 * time.Second

// reconcileCount is how many times the run named name was reconciled by this manager.
func (m *testManager) reconcileCount(name string) int64 {
	v, ok := m.reconciles.Load(name)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// stop cancels the manager and waits until it returned.
func (m *testManager) stop() {
	m.cancel()
	Eventually(m.done, 30*time.Second).Should(BeClosed())
}

// startManager runs a manager with the WorkflowRun controller on the suite's registry and
// options; mutate, when given, changes the options first.
func startManager(mutate ...func(*Options)) *testManager {
	mgr, err := ctrl.NewManager(cfg, testenv.ManagerOptions(scheme))
	Expect(err).NotTo(HaveOccurred())
	tm := &testManager{done: make(chan struct{})}
	count := func(inner reconcile.Reconciler) reconcile.Reconciler {
		return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			v, _ := tm.reconciles.LoadOrStore(req.Name, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			return inner.Reconcile(ctx, req)
		})
	}
	opts := Options{Registry: registry, Limits: suiteLimits, MaxConcurrentReconciles: 8, EventRetention: eventRetention, wrapRuns: count, Agents: testAgentOptions()}
	for _, m := range mutate {
		m(&opts)
	}
	ctrls, err := Setup(mgr, opts)
	Expect(err).NotTo(HaveOccurred())
	tm.runs, tm.cache = ctrls.Runs, mgr.GetClient()
	ctx, cancel := context.WithCancel(context.Background())
	tm.cancel = cancel
	go func() {
		defer GinkgoRecover()
		defer close(tm.done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return tm
}

// restartManager stops the running manager and starts a fresh one, as after a crash; mutate,
// when given, changes the new manager's options.
func restartManager(mutate ...func(*Options)) {
	manager.stop()
	manager = startManager(mutate...)
}
