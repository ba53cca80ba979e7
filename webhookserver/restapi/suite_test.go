package restapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
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

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/limits"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/internal/testpython"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/webhookserver"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// The suite runs a real kube-apiserver and etcd (from bin/k8s via KUBEBUILDER_ASSETS),
// a manager with the controllers, and the API server on a free port; every spec talks HTTP to
// it as curl would.
var (
	testCluster *testcluster.Cluster
	restCfg     *rest.Config
	k8sClient   client.Client
	scheme      = controllers.NewScheme()
	registry    *engine.Registry
	// workflowCatalog is the manager's view of the workflows (Go ones, and the files a spec
	// loads); pythonPool runs its Python files.
	workflowCatalog *catalog.Catalog
	pythonPool      *pyworker.Pool
	runs            *controllers.WorkflowRunReconciler
	elected         <-chan struct{}
	apiURL          string // http://127.0.0.1:PORT/api, as CENTAUR_API_URL
	logs            testenv.LogBuffer
	stopAll         func() error
)

// eagerBound is the suite's eager-start bound, short so that the bound's spec is quick.
const eagerBound = 1500 * time.Millisecond

// The suite's API keys. admin acts in several namespaces (default first); teamB only in team-b.
var (
	adminKey = "admin.5f0c1b9e6a3d47c2b8e1f0a9d3c6b2e7"
	teamBKey = "team-b.9a8b7c6d5e4f30211f2e3d4c5b6a7988"
	keys     = map[string]restapi.KeyEntry{
		"admin":  {SHA256: restapi.HashKey(adminKey), Namespaces: []string{"default", "team-a", "paging", "idem", "measure", "ghost"}, DefaultNamespace: "default"},
		"team-b": {SHA256: restapi.HashKey(teamBKey), Namespaces: []string{"team-b"}},
	}
	suiteNamespaces = []string{"centaur-system", "team-a", "team-b", "paging", "idem", "measure"}
)

func TestRESTAPI(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "REST API Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, &logs)), zap.UseDevMode(true)))
	var err error
	testCluster, err = testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	Expect(err).NotTo(HaveOccurred())
	cfg := testCluster.Config()
	restCfg = cfg
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	ctx := context.Background()
	for _, ns := range suiteNamespaces {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: restapi.DefaultKeysSecret.Namespace, Name: restapi.DefaultKeysSecret.Name}, Data: map[string][]byte{}}
	for id, e := range keys {
		secret.Data[id] = mustJSON(e)
	}
	Expect(k8sClient.Create(ctx, secret)).To(Succeed())

	registry = engine.NewRegistry()
	Expect(workflows.Register(registry)).To(Succeed())
	Expect(registry.Register(slowWorkflow, manyStepsWorkflow)).To(Succeed())

	startManager(cfg)
})

var _ = AfterSuite(func() {
	if stopAll != nil {
		Expect(stopAll()).To(Succeed())
	}
	if pythonPool != nil {
		pythonPool.Close()
	}
	if testCluster != nil {
		Expect(testCluster.Stop()).To(Succeed())
	}
	for _, key := range []string{adminKey, teamBKey} {
		Expect(logs.String()).NotTo(ContainSubstring(key), "an API key was logged")
	}
})

// startManager runs the controllers and the API server (as manager.Run wires them) until the
// suite ends.
func startManager(cfg *rest.Config) {
	mgr, err := ctrl.NewManager(cfg, testenv.ManagerOptions(scheme))
	Expect(err).NotTo(HaveOccurred())
	pythonPool, err = testpython.Pool(pyworker.Config{})
	Expect(err).NotTo(HaveOccurred())
	workflowCatalog = controllers.NewWorkflowCatalog(mgr, registry, catalog.Options{OperatorNamespace: restapi.DefaultKeysSecret.Namespace,
		Python: testpython.Loader(pythonPool)})
	ctrls, err := controllers.Setup(mgr, controllers.Options{Workflows: workflowCatalog, MaxConcurrentReconciles: 8, SecretScope: controllers.SecretScope{"*"}})
	Expect(err).NotTo(HaveOccurred())
	runs, elected = ctrls.Runs, mgr.Elected()
	server := webhookserver.New(serverConfig(mgr.GetClient(), mgr.GetAPIReader(), runs))
	Expect(mgr.Add(server)).To(Succeed())

	stopAll = testenv.StartManager(mgr)
	apiURL = "http://" + server.Addr().String() + "/api"
	Eventually(elected, 10*time.Second).Should(BeClosed())
}

// serverConfig is the API server's configuration, on a free port of 127.0.0.1.
func serverConfig(c client.Client, reader client.Reader, executor webhookserver.Engine) webhookserver.Config {
	return webhookserver.Config{
		Addr:              "127.0.0.1:0",
		Client:            c,
		Reader:            reader,
		Workflows:         workflowCatalog,
		Engine:            executor,
		Logger:            logf.Log.WithName("api"),
		APIKeysSecret:     restapi.DefaultKeysSecret,
		EagerStartTimeout: eagerBound,
		APIKeyRate:        limits.Rate{PerSecond: -1}, // the specs script their calls; one spec checks the limit
	}
}

// SlowInput is the input of the suite's slow workflow.
type SlowInput struct {
	// Millis is how long its one step takes.
	Millis int `json:"millis"`
}

// ManyInput is the input of steps_many.
type ManyInput struct {
	Steps int `json:"steps"`
	// LargeAt is the step whose result is large enough to be stored out of line.
	LargeAt int `json:"large_at"`
}

// manyStepsWorkflow (steps_many) runs input.steps batched steps, each returning its number, except step
// large_at, which returns 10 KiB: a long journal sealed into segments, with a payload.
var manyStepsWorkflow = durable.Define("steps_many", func(ctx *durable.Context, in ManyInput) (int, error) {
	for i := range in.Steps {
		_, err := durable.Step(ctx, fmt.Sprintf("s-%04d", i), func(context.Context) (any, error) {
			if i == in.LargeAt {
				return strings.Repeat("L", 10<<10), nil
			}
			return i, nil
		}, durable.Batched())
		if err != nil {
			return 0, err
		}
	}
	return in.Steps, nil
})

// napping counts the slow workflow's steps executing right now.
var napping atomic.Int32

// slowWorkflow has one step that takes input.millis: longer than the eager bound, it shows
// that eager start answers in time without cutting the step short.
var slowWorkflow = durable.Define("slow", func(ctx *durable.Context, in SlowInput) (string, error) {
	return durable.Step(ctx, "nap", func(c context.Context) (string, error) {
		napping.Add(1)
		defer napping.Add(-1)
		select {
		case <-time.After(time.Duration(in.Millis) * time.Millisecond):
			return "rested", nil
		case <-c.Done():
			return "", c.Err()
		}
	})
})

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// send makes a request to the API server; path is relative to apiURL, key may be empty.
func send(method, path, key, body string, header ...string) reply {
	GinkgoHelper()
	req, err := http.NewRequest(method, apiURL+path, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	if key != "" {
		req.Header.Set(restapi.APIKeyHeader, key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

// curlPost posts body as `curl -d` does: Content-Type application/x-www-form-urlencoded.
func curlPost(path, key, body string) reply {
	GinkgoHelper()
	return send(http.MethodPost, path, key, body, "Content-Type", "application/x-www-form-urlencoded")
}

// as decodes the reply's JSON body into T.
func as[T any](r reply) T {
	GinkgoHelper()
	var v T
	Expect(json.Unmarshal(r.body, &v)).To(Succeed(), "body: %s", r.body)
	return v
}

// expectError checks that r is an error answer with status and code.
func expectError(r reply, status int, code string) apierror.Detail {
	GinkgoHelper()
	Expect(r.status).To(Equal(status), "body: %s", r.body)
	Expect(r.header.Get("Content-Type")).To(Equal("application/json"))
	e := as[apierror.Body](r).Error
	Expect(e.Code).To(Equal(code), "message: %s", e.Message)
	Expect(e.Message).NotTo(BeEmpty())
	return e
}

// getRun reads a run through the REST API.
func getRun(id, namespace string) restapi.RunDetail {
	GinkgoHelper()
	r := send(http.MethodGet, "/workflows/runs/"+id+"?namespace="+namespace, adminKey, "")
	Expect(r.status).To(Equal(http.StatusOK), "body: %s", r.body)
	return as[restapi.RunDetail](r)
}

// statusOf polls a run's status through the REST API, for Eventually.
func statusOf(id, namespace string) func() string {
	return func() string { return getRun(id, namespace).Status }
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return b
}
