package controllers

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/internal/testpython"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
	"github.com/centaur-dev/workflow-operator/schedule"
	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflowfile/loadprobe"
	"github.com/centaur-dev/workflow-operator/workflowfile/sandbox"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// The suite runs every spec against a real kube-apiserver and etcd from bin/k8s
// (KUBEBUILDER_ASSETS, set by `make test`; etcd without fsync, for speed), with
// kube-controller-manager's garbage collector, so that deleting a run deletes what it owns as
// in a real cluster.
var (
	testCluster *testcluster.Cluster
	cfg         *rest.Config
	k8sClient   client.Client
	scheme      = NewScheme()
	registry    *engine.Registry
	manager     *testManager
	// workflowDir is the suite's WORKFLOW_DIRS: specs drop workflow files into it.
	workflowDir string
)

// operatorNamespace is the suite manager's own namespace, where revisions of WORKFLOW_DIRS
// files are stored.
const operatorNamespace = "centaur-system"

// dirsPollInterval is short so that a dropped file loads quickly.
const dirsPollInterval = 200 * time.Millisecond

// sandboxed is how the suite compiles WorkflowDefinitions: the default egress policy, so that a
// definition cannot reach the suite's local test servers, and loads probed first with 64 MiB.
var sandboxed = &workflowfile.Config{HTTP: workflowfile.NewHTTPClient(&workflowfile.Egress{Deny: workflowfile.DefaultDeniedRanges()}), MaxSteps: fileMaxSteps}

// suiteSandbox executes the definitions' runs, in workers of 64 MiB each, as the manager does.
var suiteSandbox *sandbox.Pool

// suiteLimits are the engine's limits in the suite: a run may store 6 MiB, so that the specs
// of budgets need little data.
var suiteLimits = engine.Limits{MaxRunBytes: 6 << 20}

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var err error
	testCluster, err = testcluster.Start(testcluster.Options{UnsafeNoFsync: true, ControllerManager: true})
	Expect(err).NotTo(HaveOccurred())
	cfg = testCluster.Config()
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	registry = engine.NewRegistry()
	Expect(workflows.Register(registry)).To(Succeed())
	Expect(registry.Register(testWorkflows()...)).To(Succeed())
	workflowDir, err = os.MkdirTemp("", "workflow-files-")
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}})).To(Succeed())

	prober, err := loadprobe.New(64<<20, loadprobe.DefaultTimeout, sandboxed)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(prober.Close)
	sandboxed.Probe = prober.Check
	suiteSandbox, err = sandbox.New(sandbox.Config{Memory: 64 << 20, MaxSteps: fileMaxSteps, Deny: workflowfile.DefaultDeniedRanges()})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(suiteSandbox.Close)

	manager = startManager()
})

var _ = AfterSuite(func() {
	if manager != nil {
		manager.stop()
	}
	if testCluster != nil {
		Expect(testCluster.Stop()).To(Succeed())
	}
	if workflowDir != "" {
		Expect(os.RemoveAll(workflowDir)).To(Succeed())
	}
})

// testManager is a running controller manager that a spec can stop and replace, as a crash
// and restart of the operator would.
type testManager struct {
	cancel     context.CancelFunc
	done       chan struct{}
	reconciles sync.Map // request name -> *atomic.Int64
	runs       *WorkflowRunReconciler
	catalog    *catalog.Catalog
	declared   *DeclaredScheduleReconciler
	// cache reads the manager's cache, as its reconcilers do.
	cache client.Reader
	// python runs the manager's Python workflow files; a restarted manager has a pool of its
	// own, so the handlers the old one kept are gone, as after a real restart.
	python *pyworker.Pool
}

// pythonDeadline bounds the suite's Python handler code between two primitives, short so that
// a handler that never awaits fails its run quickly.
const pythonDeadline = 2 * time.Second

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

// stop cancels the manager and waits until it returned, then stops its Python workers.
func (m *testManager) stop() {
	m.cancel()
	Eventually(m.done, 30*time.Second).Should(BeClosed())
	m.python.Close()
}

// startManager runs a manager with the WorkflowRun controller on the suite's registry and
// options; mutate, when given, changes the options first.
func startManager(mutate ...func(*Options)) *testManager {
	mgrCfg := rest.CopyConfig(cfg)
	mgrCfg.Wrap(apiRequests.wrap)
	mgr, err := ctrl.NewManager(mgrCfg, testenv.ManagerOptions(scheme))
	Expect(err).NotTo(HaveOccurred())
	tm := &testManager{done: make(chan struct{})}
	dirsLogger := zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, dirLogs)), zap.JSONEncoder())
	count := func(inner reconcile.Reconciler) reconcile.Reconciler {
		return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			v, _ := tm.reconciles.LoadOrStore(req.Name, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			return inner.Reconcile(ctx, req)
		})
	}
	tm.python, err = testpython.Pool(pyworker.Config{HandlerDeadline: pythonDeadline, Logger: dirsLogger.WithName("python")})
	Expect(err).NotTo(HaveOccurred())
	tm.catalog = NewWorkflowCatalog(mgr, registry, catalog.Options{OperatorNamespace: operatorNamespace,
		Trusted: &workflowfile.Config{MaxSteps: fileMaxSteps, CheckSchedule: schedule.CheckDeclaration}, Sandboxed: sandboxed,
		Python: &pyworkflow.Loader{Pool: tm.python, CheckSchedule: schedule.CheckDeclaration}})
	dirs := &catalog.Dirs{Paths: []string{workflowDir}, Catalog: tm.catalog, Interval: dirsPollInterval, Logger: dirsLogger}
	dirs.Load()
	Expect(mgr.Add(dirs)).To(Succeed())
	opts := Options{Workflows: tm.catalog, Limits: suiteLimits, MaxConcurrentReconciles: 8, EventRetention: eventRetention, wrapRuns: count,
		Agents: testAgentOptions(), RevisionGCInterval: revisionGCInterval, UnknownWorkflowGrace: time.Second, SecretScope: SecretScope{"*"},
		schedules: scheduleHooks(), DeclaredSchedules: ScheduleSources{CatalogSchedules(tm.catalog), testDeclared}, Sandbox: suiteSandbox}
	for _, m := range mutate {
		m(&opts)
	}
	ctrls, err := Setup(mgr, opts)
	Expect(err).NotTo(HaveOccurred())
	tm.runs, tm.declared, tm.cache = ctrls.Runs, ctrls.DeclaredSchedules, mgr.GetClient()
	ctx, cancel := context.WithCancel(context.Background())
	tm.cancel = cancel
	go func() {
		defer GinkgoRecover()
		defer close(tm.done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return tm
}

// apiRequests counts the requests the suite's managers send to the API server.
var apiRequests = &requestCounter{}

// requestCounter counts API requests by the namespace they address, as "VERB resource" (a
// subresource after a slash): what a spec asserts a reconcile costs.
type requestCounter struct {
	mu sync.Mutex
	by map[string][]string
}

// wrap counts every request that rt carries.
func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		c.note(req)
		return rt.RoundTrip(req)
	})
}

// note records req under its namespace; requests of no namespace are not counted.
func (c *requestCounter) note(req *http.Request) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	i := slices.Index(parts, "namespaces")
	if i < 0 || len(parts) < i+3 {
		return
	}
	what := req.Method + " " + parts[i+2]
	if len(parts) > i+4 {
		what += "/" + parts[i+4]
	}
	if req.URL.Query().Get("watch") == "true" {
		what = "WATCH " + parts[i+2]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[string][]string{}
	}
	c.by[parts[i+1]] = append(c.by[parts[i+1]], what)
}

// of returns the requests counted so far in namespace.
func (c *requestCounter) of(namespace string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.by[namespace])
}

// roundTripFunc is a function as an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// restartManager stops the running manager and starts a fresh one, as after a crash; mutate,
// when given, changes the new manager's options.
func restartManager(mutate ...func(*Options)) {
	manager.stop()
	manager = startManager(mutate...)
}
