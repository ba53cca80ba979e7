package webhookserver

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/limits"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/internal/testpython"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver/ledger"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// The suite serves the real handler over real HTTP (httptest) in front of a real
// kube-apiserver and etcd from bin/k8s (KUBEBUILDER_ASSETS), with the
// operator's controllers, the WebhookEndpoint controller among them, running in a manager.
var (
	testCluster *testcluster.Cluster
	k8sClient   client.Client
	scheme      = controllers.NewScheme()
	registry    *engine.Registry
	// workflowCatalog is the manager's view of the workflows (Go ones, and the files a spec
	// loads); pythonPool runs its Python files.
	workflowCatalog *catalog.Catalog
	pythonPool      *pyworker.Pool
	table           *routes.Table
	stopMgr         context.CancelFunc
	mgrDone         chan struct{}

	// deliveryLedger is the manager's ledger of deleted webhook runs, in operatorNamespace;
	// every server of the suite asks it. runCache is the manager's cache, whose informer of
	// runs a spec's own ledger follows; serverCfg is what every server is built from.
	deliveryLedger *ledger.Ledger
	runCache       cache.Cache
	serverCfg      Config

	// api serves the handler with no trusted proxy; proxied trusts 127.0.0.0/8, as if a
	// reverse proxy ran on the same host; broken's client cannot write to the API server;
	// limited takes one delivery at a time and two per slug, then one each 5 s; impatient
	// trusts 127.0.0.0/8 (clients are told apart by X-Forwarded-For), waits 300 ms for a body
	// and lets a client fail twice.
	api, proxied, broken, limited, impatient *httptest.Server
)

// slugGrants let the suite's own namespaces (wh-*, from newNamespace) claim any slug, and
// nobody else: specs in namespaces named ungranted-* see the refusal.
var slugGrants = routes.Grants{{Namespace: "wh-*", Slug: "*"}}

// Suite constants.
const (
	// codeNamespace is where code-declared webhooks create runs; their Secret is in the
	// operator's namespace.
	codeNamespace = "code-hooks"
	// operatorNamespace holds the Secrets that declared webhooks name in secret_ref.
	operatorNamespace = "centaur-system"
	// codeSlug is the slug the code_hooked test workflow declares.
	codeSlug = "code-hook"
	// ungrantedPrefix starts the names of namespaces the suite's grants leave out.
	ungrantedPrefix = "ungranted-"
	// flushInterval is short so that delivery counters reach status quickly.
	flushInterval = 300 * time.Millisecond
	// ledgerFlush and ledgerRefresh are short so that deleted runs reach the ledger quickly.
	ledgerFlush, ledgerRefresh = 100 * time.Millisecond, 300 * time.Millisecond
)

func TestWebhookServer(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Webhook Server Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var err error
	testCluster, err = testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	Expect(err).NotTo(HaveOccurred())
	cfg := testCluster.Config()
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	registry = engine.NewRegistry()
	Expect(workflows.Register(registry)).To(Succeed())
	Expect(registry.Register(testWorkflows()...)).To(Succeed())
	createNamespace(codeNamespace)
	createNamespace(operatorNamespace)

	table = routes.NewTable()
	mgr, err := ctrl.NewManager(cfg, testenv.ManagerOptions(scheme))
	Expect(err).NotTo(HaveOccurred())
	pythonPool, err = testpython.Pool(pyworker.Config{})
	Expect(err).NotTo(HaveOccurred())
	workflowCatalog = controllers.NewWorkflowCatalog(mgr, registry, catalog.Options{OperatorNamespace: operatorNamespace, Python: testpython.Loader(pythonPool)})
	deliveryLedger = ledger.New(ledger.Config{Namespace: operatorNamespace, Client: mgr.GetClient(), Reader: mgr.GetAPIReader(),
		Logger: logf.Log.WithName("delivery-ledger"), FlushInterval: ledgerFlush, RefreshInterval: ledgerRefresh})
	Expect(mgr.Add(deliveryLedger)).To(Succeed())
	runCache = mgr.GetCache()
	Expect(mgr.Add(deliveryLedger.Keeper(runCache))).To(Succeed())
	_, err = controllers.Setup(mgr, controllers.Options{
		Workflows:                   workflowCatalog,
		BeforeTTLDelete:             deliveryLedger.RecordRun,
		MaxConcurrentReconciles:     4,
		WebhookRoutes:               table,
		CodeWebhookNamespace:        codeNamespace,
		WebhookSlugGrants:           slugGrants,
		SecretScope:                 controllers.SecretScope{"*"},
		WebhookCounterFlushInterval: flushInterval,
	})
	Expect(err).NotTo(HaveOccurred())

	// Every spec sends from loopback, and many send forged deliveries on purpose, so the shared
	// server's budget of failing deliveries per client is far above the default; the
	// "impatient" server below has a tight one for the specs of that limit.
	// As the manager does: deliveries find the run of their trigger key through the index.
	Expect(IndexTriggerKeys(context.Background(), mgr.GetCache())).To(Succeed())
	serverCfg = Config{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Runs: mgr.GetCache(), DeletedRuns: deliveryLedger,
		Workflows: workflowCatalog, Routes: table, Logger: logf.Log.WithName("api"),
		UnverifiedRate: limits.Rate{PerSecond: 100, Burst: 1000}}
	api = httptest.NewServer(New(serverCfg).Handler())
	proxiedCfg := serverCfg
	proxiedCfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	proxied = httptest.NewServer(New(proxiedCfg).Handler())
	brokenCfg := serverCfg
	brokenCfg.Client = failingCreates{mgr.GetClient()}
	broken = httptest.NewServer(New(brokenCfg).Handler())
	limitedCfg := serverCfg
	limitedCfg.MaxInFlightDeliveries, limitedCfg.DeliveryRate = 1, limits.Rate{PerSecond: 0.2, Burst: 2}
	limited = httptest.NewServer(New(limitedCfg).Handler())
	impatientCfg := proxiedCfg
	impatientCfg.BodyReadTimeout, impatientCfg.UnverifiedRate = 300*time.Millisecond, limits.Rate{PerSecond: 0.01, Burst: 2}
	impatient = httptest.NewServer(New(impatientCfg).Handler())

	ctx, cancel := context.WithCancel(context.Background())
	stopMgr, mgrDone = cancel, make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(mgrDone)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	for _, s := range []*httptest.Server{api, proxied, broken, limited, impatient} {
		if s != nil {
			s.Close()
		}
	}
	if stopMgr != nil {
		stopMgr()
		Eventually(mgrDone, 30*time.Second).Should(BeClosed())
	}
	if pythonPool != nil {
		pythonPool.Close()
	}
	if testCluster != nil {
		Expect(testCluster.Stop()).To(Succeed())
	}
})

// failingCreates is a client whose creates fail as when etcd is unavailable.
type failingCreates struct{ client.Client }

// Create fails with 503 ServiceUnavailable.
func (failingCreates) Create(context.Context, client.Object, ...client.CreateOption) error {
	return apierrors.NewServiceUnavailable("etcdserver: request timed out")
}

// testWorkflows are the suite's workflows: webhook_echo takes any envelope; code_hooked also
// declares a webhook in code, and stripe_hooked one with HmacAuth's stripe preset.
func testWorkflows() []durable.Workflow {
	echo := func(_ *durable.Context, in json.RawMessage) (int, error) { return len(in), nil }
	stripe, _ := durable.HmacPreset("stripe", stripeHookSecretRef)
	return []durable.Workflow{
		durable.Define("webhook_echo", echo),
		durable.Define("code_hooked", echo, durable.WithWebhook(durable.WebhookSpec{
			Slug: codeSlug, Provider: "github", TriggerKey: "X-GitHub-Delivery",
		})),
		durable.Define("stripe_hooked", echo, durable.WithWebhook(durable.WebhookSpec{
			Slug: stripeHookSlug, Provider: "stripe", Auth: stripe, TriggerBodyField: "id",
		})),
	}
}

// The webhook stripe_hooked declares, and its secret_ref: a key of a Secret in the operator's
// namespace.
const (
	stripeHookSlug      = "stripe-hook"
	stripeHookSecretRef = "stripe-hook/signing-secret"
)
