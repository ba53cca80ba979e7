package restapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/limits"
	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/webhookserver"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

var _ = Describe("the OpenAPI document", func() {
	It("is public and describes every route the REST API serves, and only those", func() {
		r := send(http.MethodGet, "/openapi.json", "", "")
		Expect(r.status).To(Equal(http.StatusOK))
		var doc struct {
			OpenAPI string                                `json:"openapi"`
			Paths   map[string]map[string]json.RawMessage `json:"paths"`
		}
		Expect(json.Unmarshal(r.body, &doc)).To(Succeed())
		Expect(doc.OpenAPI).To(HavePrefix("3."))
		// The webhook route is served by the enclosing webhookserver package, on the same listener.
		served := map[string]bool{"post /api/webhooks/{slug}": true}
		for _, rt := range restapi.Routes() {
			Expect(doc.Paths).To(HaveKey(rt.Path))
			Expect(doc.Paths[rt.Path]).To(HaveKey(strings.ToLower(rt.Method)), "%s %s", rt.Method, rt.Path)
			served[strings.ToLower(rt.Method)+" "+rt.Path] = true
		}
		for path, ops := range doc.Paths {
			for method := range ops {
				Expect(served).To(HaveKey(method+" "+path), "the document describes a route that is not served")
			}
		}
	})
})

var _ = Describe("routing", func() {
	It("answers unknown paths with 404 and wrong methods with 405, as JSON", func() {
		expectError(send(http.MethodGet, "/nope", adminKey, ""), http.StatusNotFound, "not_found")
		r := send(http.MethodDelete, "/workflows/runs", adminKey, "")
		expectError(r, http.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed)
		Expect(r.header.Get("Allow")).To(Equal("POST, GET"))
		expectError(send(http.MethodGet, "/workflows/runs/x/cancel", adminKey, ""), http.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed)
	})

})

var _ = Describe("eager start on a replica that does not execute the run", func() {
	It("leaves the run to the leader's controller and still answers with its first segment", func() {
		cfg := serverConfig(k8sClient, k8sClient, elsewhere{runs})
		// The answer waits for the suite's controller, which sees the run through its watch and
		// may still be working through runs other specs created (the listing's 120, the budget
		// spec's eight 8 s runs): the suite's 1.5 s bound, set for the bound's own spec, is too
		// short for a loaded machine. The answer comes as soon as the run is done, so a longer
		// bound costs nothing when the controller is quick.
		cfg.EagerStartTimeout = 20 * time.Second
		server := webhookserver.New(cfg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = server.Start(ctx) }()
		req, err := http.NewRequest(http.MethodPost, "http://"+server.Addr().String()+"/api/workflows/runs",
			strings.NewReader(`{"workflow_name": "hello", "input": {"name": "Follower"}, "eager_start": true}`))
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set(restapi.APIKeyHeader, adminKey)
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = resp.Body.Close() }()
		Expect(resp.StatusCode).To(Equal(http.StatusCreated))
		var run restapi.RunDetail
		Expect(json.NewDecoder(resp.Body).Decode(&run)).To(Succeed())
		Expect(run.Status).To(Equal("Succeeded"))
		Expect(run.Output).To(MatchJSON(`{"greeting":"Hello, Follower!"}`))
	})
})

var _ = Describe("graceful shutdown", func() {
	It("finishes a request in flight before the server stops", func() {
		cfg := serverConfig(k8sClient, k8sClient, runs)
		// Whether eager start or the suite's controller executes the run, the answer waits for
		// its 3 s step: a window no loaded machine misses.
		cfg.EagerStartTimeout = 10 * time.Second
		server := webhookserver.New(cfg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- server.Start(ctx) }()
		url := "http://" + server.Addr().String() + "/api/workflows/runs"
		// The slow workflow's runs, selected by label: other specs leave runs of several MiB in
		// the namespace, which a loaded machine lists for longer than the request's step.
		slowRuns := func() []string {
			var list workflowsv1alpha1.WorkflowRunList
			Expect(k8sClient.List(context.Background(), &list, client.InNamespace("default"),
				client.MatchingLabels{workflowsv1alpha1.LabelWorkflow: "slow"})).To(Succeed())
			var names []string
			for _, run := range list.Items {
				names = append(names, run.Name)
			}
			return names
		}
		before := slowRuns()

		answered := make(chan int, 1)
		go func() {
			defer GinkgoRecover()
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"workflow_name": "slow", "input": {"millis": 3000}, "eager_start": true}`))
			req.Header.Set(restapi.APIKeyHeader, adminKey)
			resp, err := http.DefaultClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			answered <- resp.StatusCode
		}()
		// The request is in flight once its run exists: eager start then executes the run's
		// 3 s step before it answers (long enough for a loaded machine to see the run first).
		Eventually(slowRuns, 5*time.Second, 10*time.Millisecond).Should(ContainElement(Not(BeElementOf(before))))
		Expect(answered).NotTo(Receive(), "answered before the server was stopped: nothing was in flight")
		cancel()
		Eventually(answered, 5*time.Second).Should(Receive(Equal(http.StatusCreated)))
		Eventually(done, 5*time.Second).Should(Receive(BeNil()))
	})
})

var _ = Describe("Limits of the REST API", func() {
	It("answers 429 with a Retry-After when one key asks too much, and leaves other keys alone", func() {
		cfg := serverConfig(k8sClient, k8sClient, nil)
		cfg.APIKeyRate = limits.Rate{PerSecond: 0.2, Burst: 2}
		srv := httptest.NewServer(webhookserver.New(cfg).Handler())
		defer srv.Close()
		get := func(key string) *http.Response {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/workflows", nil)
			Expect(err).NotTo(HaveOccurred())
			req.Header.Set(restapi.APIKeyHeader, key)
			resp, err := http.DefaultClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			return resp
		}
		Expect(get(adminKey).StatusCode).To(Equal(http.StatusOK))
		Expect(get(adminKey).StatusCode).To(Equal(http.StatusOK))
		refused := get(adminKey)
		Expect(refused.StatusCode).To(Equal(http.StatusTooManyRequests))
		Expect(refused.Header.Get("Retry-After")).To(MatchRegexp(`^[1-5]$`))
		Expect(get(teamBKey).StatusCode).To(Equal(http.StatusOK), "another key has a bucket of its own")
	})

	It("refuses headers larger than 64 KiB", func() {
		req, err := http.NewRequest(http.MethodGet, apiURL+"/workflows", nil)
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set(restapi.APIKeyHeader, adminKey)
		req.Header.Set("X-Padding", strings.Repeat("x", 80<<10))
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusRequestHeaderFieldsTooLarge))
	})
})

// elsewhere is the engine of a replica that executes no run: not the leader, or under sharding
// not the run's shard.
type elsewhere struct{ webhookserver.Engine }

func (elsewhere) Executes(*workflowsv1alpha1.WorkflowRun) bool { return false }

var _ = Describe("quotas", func() {
	// postThrough starts a run through a server whose client passes gate.
	postThrough := func(gate *runquota.Gate, body string) reply {
		GinkgoHelper()
		server := webhookserver.New(serverConfig(gate.Client(k8sClient), k8sClient, runs))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = server.Start(ctx) }()
		Eventually(server.Addr).ShouldNot(BeNil())
		saved := apiURL
		apiURL = "http://" + server.Addr().String() + "/api"
		defer func() { apiURL = saved }()
		return send(http.MethodPost, "/workflows/runs", adminKey, body)
	}
	held := func() int {
		var list workflowsv1alpha1.WorkflowRunList
		Expect(k8sClient.List(context.Background(), &list, client.InNamespace("default"))).To(Succeed())
		return len(list.Items)
	}

	It("answers 429 quota_exceeded with Retry-After when the namespace holds its quota of runs, and creates nothing", func() {
		Expect(k8sClient.Create(context.Background(), &workflowsv1alpha1.WorkflowRun{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "quota-"},
			Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hello"}})).To(Succeed())
		before := held()
		gate := runquota.New(runquota.Limits{NamespaceRuns: before})
		gate.Bind(k8sClient)
		r := postThrough(gate, `{"workflow_name": "hello", "input": {"name": "Over"}}`)
		e := expectError(r, http.StatusTooManyRequests, apierror.CodeQuotaExceeded)
		Expect(e.Message).To(ContainSubstring("namespace default holds"))
		Expect(r.header.Get("Retry-After")).To(Equal("60"))
		Expect(held()).To(Equal(before))
	})

	It("answers 507 storage_full when the cluster's budget of run bytes is spent", func() {
		gate := runquota.New(runquota.Limits{TotalBytes: 1})
		gate.Bind(k8sClient)
		e := expectError(postThrough(gate, `{"workflow_name": "hello", "input": {"name": "Over"}}`), http.StatusInsufficientStorage, apierror.CodeStorageFull)
		Expect(e.Message).To(ContainSubstring("--max-total-bytes"))
	})
})

var _ = Describe("the console's actions and the key's rate limit", func() {
	It("take from the same bucket as the key's REST calls", func() {
		cfg := serverConfig(k8sClient, k8sClient, nil)
		cfg.APIKeyRate = limits.Rate{PerSecond: 0.2, Burst: 2}
		mux := http.NewServeMux()
		service := restapi.Register(mux, restapi.Deps{Client: k8sClient, Reader: k8sClient, Workflows: workflowCatalog,
			KeysSecret: restapi.DefaultKeysSecret, KeyRate: cfg.APIKeyRate, Logger: cfg.Logger})
		ctx := context.Background()
		p, err := service.Authenticate(ctx, adminKey)
		Expect(err).NotTo(HaveOccurred())
		start := func() error {
			_, _, err := service.StartRun(ctx, p, restapi.StartRunRequest{WorkflowName: "hello", Input: []byte(`{"name": "Console"}`)})
			return err
		}
		Expect(start()).To(Succeed())
		Expect(start()).To(Succeed())
		status, detail, _ := restapi.ErrorOf(start(), "start the run")
		Expect(status).To(Equal(http.StatusTooManyRequests))
		Expect(detail.Code).To(Equal(apierror.CodeRateLimited))
		_, err = service.SendEvent(ctx, p, restapi.EventRequest{EventType: "console.test"})
		status, _, _ = restapi.ErrorOf(err, "send the event")
		Expect(status).To(Equal(http.StatusTooManyRequests), "events too")
	})
})
