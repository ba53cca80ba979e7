package console_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
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

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// The suite runs a real kube-apiserver and etcd (from bin/k8s), a manager with the
// controllers and the API server exactly as manager.Run wires them (run index included), and
// headless Chromium (browser_test.go) against the console as a person would use it. The HTTP
// specs (http_test.go) check what a browser cannot show: refusals, scopes and cookies.
var (
	testCluster *testcluster.Cluster
	restCfg     *rest.Config
	k8sClient   client.Client
	scheme      = controllers.NewScheme()
	registry    *engine.Registry
	// workflowCatalog is the manager's view of the workflows (Go ones here).
	workflowCatalog *catalog.Catalog
	restSvc         *restapi.Service
	baseURL         string // http://127.0.0.1:PORT, where / is the console
	logs            testenv.LogBuffer
	stopAll         func() error
	seq             atomic.Int64
)

// The suite's API keys: admin acts in default and team-a, teamB only in team-b.
var (
	adminKey = "admin.6b1f0c2d9e8a47f3b5c4d3e2f1a09b8c"
	teamBKey = "team-b.0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	keys     = map[string]restapi.KeyEntry{
		"admin":  {SHA256: restapi.HashKey(adminKey), Namespaces: []string{"default", "team-a"}, DefaultNamespace: "default"},
		"team-b": {SHA256: restapi.HashKey(teamBKey), Namespaces: []string{"team-b"}},
	}
)

// Timeouts of Eventually against the manager.
const (
	waitFor = 20 * time.Second
	pollAt  = 100 * time.Millisecond
)

func TestConsole(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Web Console Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, &logs)), zap.UseDevMode(true)))
	startBrowser() // first: a missing browser is reported before anything else starts
	var err error
	testCluster, err = testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	Expect(err).NotTo(HaveOccurred())
	restCfg = testCluster.Config()
	k8sClient, err = client.New(restCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	ctx := context.Background()
	for _, ns := range []string{"centaur-system", "team-a", "team-b"} {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	writeKeys(keys)
	Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: console.DefaultSecret.Namespace, Name: console.DefaultSecret.Name},
		Data:       map[string][]byte{console.SecretKey: []byte(randomHex(32))},
	})).To(Succeed())

	registry = engine.NewRegistry()
	Expect(workflows.Register(registry)).To(Succeed())
	Expect(registry.Register(releaseWorkflow)).To(Succeed())
	startManager()
})

var _ = AfterSuite(func() {
	stopBrowser()
	if stopAll != nil {
		Expect(stopAll()).To(Succeed())
	}
	if testCluster != nil {
		Expect(testCluster.Stop()).To(Succeed())
	}
	for _, key := range []string{adminKey, teamBKey} {
		Expect(logs.String()).NotTo(ContainSubstring(key), "an API key was logged")
	}
})

// startManager runs the controllers and the API server (webhooks, REST API, console) as
// manager.Run wires them, until the suite ends.
func startManager() {
	mgr, err := ctrl.NewManager(restCfg, testenv.ManagerOptions(scheme))
	Expect(err).NotTo(HaveOccurred())
	table := routes.NewTable()
	workflowCatalog = controllers.NewWorkflowCatalog(mgr, registry, catalog.Options{OperatorNamespace: restapi.DefaultKeysSecret.Namespace})
	ctrls, err := controllers.Setup(mgr, controllers.Options{Workflows: workflowCatalog, MaxConcurrentReconciles: 8, WebhookRoutes: table,
		SecretScope: controllers.SecretScope{"*"}, WebhookSlugGrants: routes.Grants{{Namespace: "*", Slug: "*"}}})
	Expect(err).NotTo(HaveOccurred())
	server := webhookserver.New(webhookserver.Config{
		Addr: "127.0.0.1:0", Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Workflows: workflowCatalog,
		Engine: ctrls.Runs, Logger: logf.Log.WithName("api"),
		APIKeysSecret: restapi.DefaultKeysSecret, Routes: table, Informers: mgr.GetCache(),
	})
	Expect(mgr.Add(server)).To(Succeed())
	restSvc = restapi.Register(http.NewServeMux(), restapi.Deps{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Workflows: workflowCatalog})

	stopAll = testenv.StartManager(mgr)
	baseURL = "http://" + server.Addr().String()
	Eventually(mgr.Elected(), 10*time.Second).Should(BeClosed())
}

// writeKeys replaces the REST API's keys Secret with entries.
func writeKeys(entries map[string]restapi.KeyEntry) {
	GinkgoHelper()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: restapi.DefaultKeysSecret.Namespace, Name: restapi.DefaultKeysSecret.Name}, Data: map[string][]byte{}}
	for id, e := range entries {
		raw, err := json.Marshal(e)
		Expect(err).NotTo(HaveOccurred())
		secret.Data[id] = raw
	}
	err := k8sClient.Update(context.Background(), secret)
	if err != nil {
		Expect(k8sClient.Create(context.Background(), secret)).To(Succeed())
	}
}

// ReleaseInput is the input of the suite's release workflow.
type ReleaseInput struct {
	// Version is what the release publishes.
	Version string `json:"version"`
}

// buildAttempts counts the calls of each release run's build step.
var buildAttempts sync.Map

// releaseWorkflow does what a release pipeline does, so that a run's page has every kind of
// journal entry to show: a step that fails twice before it succeeds (retries), a step with a
// result, a sleep, a child run and a final step.
var releaseWorkflow = durable.Define("release", func(ctx *durable.Context, in ReleaseInput) (map[string]string, error) {
	run := durable.Info(ctx).Name
	digest, err := durable.Step(ctx, "build", func(context.Context) (string, error) {
		n, _ := buildAttempts.LoadOrStore(run, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) < 3 {
			return "", errors.New("push to the registry timed out")
		}
		return "sha256:4f2a9c81d04b", nil
	}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 4, InitialBackoff: 200 * time.Millisecond}))
	if err != nil {
		return nil, err
	}
	if _, err := durable.Step(ctx, "test", func(context.Context) (map[string]int, error) {
		return map[string]int{"passed": 214, "failed": 0}, nil
	}); err != nil {
		return nil, err
	}
	durable.Sleep(ctx, "canary", 1500*time.Millisecond)
	greeting, err := durable.RunWorkflow(ctx, "announce", workflows.Hello, workflows.HelloInput{Name: in.Version})
	if err != nil {
		return nil, err
	}
	return durable.Step(ctx, "publish", func(context.Context) (map[string]string, error) {
		return map[string]string{"version": in.Version, "digest": digest, "announcement": greeting.Greeting}, nil
	})
}, durable.WithDescription("Builds (retrying a flaky registry), tests, waits for the canary, announces with a child run and publishes."),
	durable.WithExampleInput(ReleaseInput{Version: "v1.4.2"}))

// startRun starts a run through the REST API's logic as the admin key, and returns its name.
func startRun(workflow string, input any, namespace string) string {
	GinkgoHelper()
	raw, err := json.Marshal(input)
	Expect(err).NotTo(HaveOccurred())
	p, err := restSvc.Authenticate(context.Background(), adminKey)
	Expect(err).NotTo(HaveOccurred())
	run, _, err := restSvc.StartRun(context.Background(), p, restapi.StartRunRequest{WorkflowName: workflow, Input: raw, Namespace: namespace})
	Expect(err).NotTo(HaveOccurred())
	return run.Name
}

// getRun reads a run from the API server.
func getRun(namespace, name string) *workflowsv1alpha1.WorkflowRun {
	GinkgoHelper()
	run := &workflowsv1alpha1.WorkflowRun{}
	Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, run)).To(Succeed())
	return run
}

// phaseOf polls a run's phase, for Eventually.
func phaseOf(namespace, name string) func() workflowsv1alpha1.RunPhase {
	return func() workflowsv1alpha1.RunPhase { return getRun(namespace, name).Status.Phase }
}

// runPath is the console page of a run.
func runPath(namespace, name string) string { return "/console/runs/" + namespace + "/" + name }

// unique returns a name no other spec uses.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// randomHex returns n random bytes, hex encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// visitor is a person's browser without a browser: an HTTP client with a cookie jar that
// does not follow redirects, so specs see every answer.
type visitor struct {
	client *http.Client
	base   string
}

// newVisitor returns a visitor of the suite's console that has not signed in.
func newVisitor() *visitor { return visitorOf(baseURL) }

// visitorOf returns a visitor of the console at base that has not signed in.
func visitorOf(base string) *visitor {
	jar, err := cookiejar.New(nil)
	Expect(err).NotTo(HaveOccurred())
	return &visitor{base: base, client: &http.Client{
		Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is an HTTP answer.
type page struct {
	status int
	header http.Header
	body   string
}

// get fetches path.
func (v *visitor) get(path string) page {
	GinkgoHelper()
	return v.do(http.MethodGet, path, nil, nil)
}

// post sends a form to path, from the console's origin unless header says otherwise.
func (v *visitor) post(path string, form url.Values, header ...string) page {
	GinkgoHelper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {v.base}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return v.do(http.MethodPost, path, strings.NewReader(form.Encode()), h)
}

func (v *visitor) do(method, path string, body io.Reader, header http.Header) page {
	GinkgoHelper()
	req, err := http.NewRequest(method, v.base+path, body)
	Expect(err).NotTo(HaveOccurred())
	for k, vals := range header {
		req.Header[k] = vals
	}
	resp, err := v.client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return page{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// signIn signs the visitor in with key and returns the CSRF token of its session.
func (v *visitor) signIn(key string) string {
	GinkgoHelper()
	p := v.post("/console/sign-in", url.Values{"key": {key}})
	Expect(p.status).To(Equal(http.StatusSeeOther), "body: %s", p.body)
	return v.csrf()
}

// csrf reads the session's CSRF token from a page's forms.
func (v *visitor) csrf() string {
	GinkgoHelper()
	p := v.get("/console/runs")
	Expect(p.status).To(Equal(http.StatusOK), "body: %s", p.body)
	const marker = `name="csrf" value="`
	i := strings.Index(p.body, marker)
	Expect(i).To(BeNumerically(">=", 0), "no CSRF token in the page")
	rest := p.body[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

// extraConsole serves a console of its own, with deps on top of the suite's REST API logic,
// keys and session secret, on a port of its own; it returns the console's address.
func extraConsole(deps console.Deps) string {
	GinkgoHelper()
	deps.REST, deps.Reader, deps.Workflows, deps.Logger = restSvc, k8sClient, workflowCatalog, logf.Log.WithName("extra-console")
	mux := http.NewServeMux()
	console.New(deps).Register(mux)
	srv := httptest.NewServer(mux)
	DeferCleanup(srv.Close)
	return srv.URL
}

// artifactsDir is where the browser specs save screenshots: artifacts/console at the
// repository's root (ignored by git), or $CONSOLE_ARTIFACTS.
func artifactsDir() string {
	if dir := os.Getenv("CONSOLE_ARTIFACTS"); dir != "" {
		return dir
	}
	return "../../artifacts/console"
}
