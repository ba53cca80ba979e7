package tracing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/internal/tracing/tracingtest"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/workflowfile/sandbox"
)

// apiKey is the suite's one REST API key, for the default namespace.
const apiKey = "tracing.3c1f0e2d9b8a47c6a5e4d3c2b1a09f8e"

// pause is the traced workflow's sleep: long enough to restart the manager inside it.
const pause = 3 * time.Second

// fetchCalls counts the calls of the traced workflow's first step, which fails its first.
var fetchCalls atomic.Int32

// childWorkflow (traced_child) runs one step.
var childWorkflow = durable.Define("traced_child", func(ctx *durable.Context, in string) (string, error) {
	return durable.Step(ctx, "greet", func(context.Context) (string, error) { return "hello " + in, nil })
})

// prompt is the traced workflow's agent prompt, which no span may carry.
const prompt = "the prompt no trace may hold"

// hookedWorkflow (hooked) serves the webhook traced-hook (unsigned) and runs one step.
var hookedWorkflow = durable.Define("hooked", func(ctx *durable.Context, _ json.RawMessage) (bool, error) {
	return durable.Step(ctx, "handle", func(context.Context) (bool, error) { return true, nil })
}, durable.WithWebhook(durable.WebhookSpec{Slug: "traced-hook", Provider: "none"}))

// outbound receives the traced workflow's store step's request; outboundTraceparent keeps its
// traceparent header.
var (
	outbound            *httptest.Server
	outboundTraceparent atomic.Value
)

// store calls outbound as a Go step calls a service: with the global propagator injecting the
// step's trace context into the request, as an otelhttp transport would.
func store(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, outbound.URL, nil)
	if err != nil {
		return false, err
	}
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusNoContent, resp.Body.Close()
}

// tracedWorkflow (traced) has what a run's trace shows: a step retried once, a second step, a
// sleep, a child run and an agent turn.
var tracedWorkflow = durable.Define("traced", func(ctx *durable.Context, _ struct{}) (string, error) {
	retry := durable.WithRetry(durable.RetryPolicy{MaxAttempts: 3, InitialBackoff: 100 * time.Millisecond})
	if _, err := durable.Step(ctx, "fetch", func(context.Context) (int, error) {
		if fetchCalls.Add(1) == 1 {
			return 0, errors.New("the upstream answered 503")
		}
		return 42, nil
	}, retry); err != nil {
		return "", err
	}
	if _, err := durable.Step(ctx, "store", store); err != nil {
		return "", err
	}
	durable.Logger(ctx).Info("stored, pausing")
	durable.Sleep(ctx, "pause", pause)
	greeting, err := durable.RunWorkflow(ctx, "kid", childWorkflow, "ada")
	if err != nil {
		return "", err
	}
	reply, err := durable.RunAgent(ctx, "ask", durable.AgentRequest{Agent: "helper", Prompt: prompt})
	return greeting + " / " + reply.Text, err
})

// definitionSandbox executes the WorkflowDefinitions' runs in worker processes, as the manager
// does by default (--definition-execution-memory).
var definitionSandbox *sandbox.Pool

// manager is one in-process manager with tracing on, as manager.Run wires it: the controllers
// and the API server, with the tracer provider the OTEL_* variables describe.
type manager struct {
	api      string
	provider *tracing.Provider
	stop     func() error
}

// startManager starts a manager against cfg; the caller stops it.
func startManager(t *testing.T, cfg *rest.Config) *manager {
	t.Helper()
	provider, err := tracing.FromEnv(context.Background())
	if err != nil || provider == nil {
		t.Fatalf("tracing from the environment: %v (provider %v)", err, provider)
	}
	scheme := controllers.NewScheme()
	mgr, err := ctrl.NewManager(cfg, testenv.ManagerOptions(scheme))
	if err != nil {
		t.Fatal(err)
	}
	registry := engine.NewRegistry()
	if err := registry.Register(tracedWorkflow, childWorkflow, hookedWorkflow); err != nil {
		t.Fatal(err)
	}
	workflows := controllers.NewWorkflowCatalog(mgr, registry, catalog.Options{OperatorNamespace: restapi.DefaultKeysSecret.Namespace})
	table := routes.NewTable()
	ctrls, err := controllers.Setup(mgr, controllers.Options{Workflows: workflows, MaxConcurrentReconciles: 4, Tracing: provider, Sandbox: definitionSandbox,
		WebhookRoutes: table, CodeWebhookNamespace: "default", Agents: controllers.AgentOptions{ConfigMap: agentsConfig, ConfigTTL: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	server := webhookserver.New(webhookserver.Config{
		Addr: "127.0.0.1:0", Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Workflows: workflows,
		Engine: ctrls.Runs, Logger: logf.Log.WithName("api"), APIKeysSecret: restapi.DefaultKeysSecret, TraceContext: true,
		Routes: table,
	})
	if err := mgr.Add(server); err != nil {
		t.Fatal(err)
	}
	stop := testenv.StartManager(mgr)
	return &manager{api: "http://" + server.Addr().String() + "/api", provider: provider, stop: stop}
}

// shutdown stops the manager and exports its last spans, as manager.Run does on SIGTERM.
func (m *manager) shutdown(t *testing.T) {
	t.Helper()
	if err := m.stop(); err != nil {
		t.Errorf("stop the manager: %v", err)
	}
	if err := m.provider.Shutdown(context.Background()); err != nil {
		t.Errorf("shut the tracer provider down: %v", err)
	}
}

// startRun starts the traced workflow with POST /api/workflows/runs carrying traceparent, and
// returns the run's name.
func startRun(t *testing.T, api, traceparent string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, api+"/workflows/runs", strings.NewReader(`{"workflow_name":"traced","input":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(restapi.APIKeyHeader, apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("start the run: %d %s", resp.StatusCode, body)
	}
	var detail restapi.RunDetail
	if err := json.Unmarshal(body, &detail); err != nil {
		t.Fatal(err)
	}
	return detail.ID
}

// agentsConfig is where the suite's agents are configured: helper answers from chatURL.
var agentsConfig = types.NamespacedName{Namespace: restapi.DefaultKeysSecret.Namespace, Name: "centaur-agents"}

// chatServer answers Chat Completions as a model would, with fixed usage figures.
func chatServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-trace", "object": "chat.completion", "created": time.Now().Unix(), "model": "fake-model-served",
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": "hi"}, "finish_reason": "stop"}},
			"usage":   map[string]any{"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
		})
	}))
}

// managerLog holds the log lines of the managers the specs start.
var managerLog = &testenv.LogBuffer{}

// setUpCluster starts the control plane with the namespace of the API keys, the suite's key
// and its agents (answered by chat), and points the OTLP exporter at rcv.
func setUpCluster(t *testing.T, rcv *tracingtest.Receiver, chat *httptest.Server) (*testcluster.Cluster, client.Client) {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	logf.SetLogger(zap.New(zap.WriteTo(managerLog)))
	cluster, err := testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	c, err := client.New(cluster.Config(), client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: restapi.DefaultKeysSecret.Namespace}}); err != nil {
		t.Fatal(err)
	}
	entry, _ := json.Marshal(restapi.KeyEntry{SHA256: restapi.HashKey(apiKey), Namespaces: []string{"default"}, DefaultNamespace: "default"})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: restapi.DefaultKeysSecret.Namespace, Name: restapi.DefaultKeysSecret.Name},
		Data: map[string][]byte{"tracing": entry}}
	if err := c.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	agents := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: agentsConfig.Namespace, Name: agentsConfig.Name},
		Data: map[string]string{"agents.yaml": "helper:\n  baseURL: " + chat.URL + "/v1\n  model: fake-model\n"}}
	if err := c.Create(ctx, agents); err != nil {
		t.Fatal(err)
	}
	return cluster, c
}

// waitSucceeded waits until the run name in the default namespace succeeded.
func waitSucceeded(t *testing.T, c client.Client, name string, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, "run "+name+" to succeed", func() error {
		run, err := runOf(c, name)
		if err != nil {
			return err
		}
		if run.Status.Phase != workflowsv1alpha1.PhaseSucceeded {
			return fmt.Errorf("the run is %s at %q (%+v)", run.Status.Phase, run.Status.CurrentStep, run.Status.Error)
		}
		return nil
	})
}

// runOf reads the run name in the default namespace.
func runOf(c client.Client, name string) (*workflowsv1alpha1.WorkflowRun, error) {
	run := &workflowsv1alpha1.WorkflowRun{}
	err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, run)
	return run, err
}

// TestTraces runs the specs of traces against one control plane: a run started by a REST call,
// across a restart, with an outbound request from a Go step; and a webhook delivery's run.
func TestTraces(t *testing.T) {
	rcv, chat := tracingtest.NewReceiver(), chatServer()
	defer rcv.Close()
	defer chat.Close()
	outbound = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outboundTraceparent.Store(r.Header.Get("traceparent"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer outbound.Close()
	pool, err := sandbox.New(sandbox.Config{Memory: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	definitionSandbox = pool
	cluster, c := setUpCluster(t, rcv, chat)
	var m *manager
	defer func() {
		if m != nil {
			m.shutdown(t)
		}
	}()
	t.Run("a REST call's run is one trace across a restart", func(t *testing.T) { m = restCallTrace(t, rcv, cluster, c) })
	if m != nil {
		t.Run("a webhook delivery's run continues the delivery's trace", func(t *testing.T) { webhookTrace(t, rcv, m, c) })
		t.Run("a WorkflowDefinition's http call carries its step's traceparent", func(t *testing.T) { definitionTrace(t, rcv, m, c) })
	}
}

// restCallTrace starts a run with a REST call that carries a traceparent, restarts the
// manager while the run sleeps, and checks the one trace the receiver got: the run's span
// under the caller's, two attempts of the retried step, the second step, the sleep, the child
// run and the agent turn under it, each once, with their attributes. It returns the manager
// it restarted, running.
func restCallTrace(t *testing.T, rcv *tracingtest.Receiver, cluster *testcluster.Cluster, c client.Client) *manager {
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	first := startManager(t, cluster.Config())
	name := startRun(t, first.api, "00-"+callerTrace+"-"+callerSpan+"-01")
	testenv.WaitFor(t, 30*time.Second, "the run to sleep", func() error {
		run, err := runOf(c, name)
		if err != nil {
			return err
		}
		if run.Status.CurrentStep != "pause" {
			return fmt.Errorf("the run is at %q (%s)", run.Status.CurrentStep, run.Status.Phase)
		}
		return nil
	})
	first.shutdown(t) // a restart in the middle of the sleep
	before := len(rcv.All())

	second := startManager(t, cluster.Config())
	waitSucceeded(t, c, name, 60*time.Second)
	testenv.WaitFor(t, 10*time.Second, "the run's span", func() error {
		if err := second.provider.ForceFlush(context.Background()); err != nil {
			return err
		}
		if n := len(rcv.Named("run traced")); n != 1 {
			return fmt.Errorf("%d run spans", n)
		}
		return nil
	})

	parent, _ := runOf(c, name)
	if got := parent.Annotations[workflowsv1alpha1.AnnotationTraceparent]; got != "00-"+callerTrace+"-"+callerSpan+"-01" {
		t.Errorf("the run keeps traceparent %q, want the caller's", got)
	}
	if before != 3 {
		t.Errorf("before the restart the receiver got %d spans, want 3 (two attempts of fetch, store): %+v", before, rcv.All())
	}
	checkRunSpan(t, rcv, callerTrace, callerSpan, name)
	runSpan := one(t, rcv, "run traced")
	checkLogs(t, name, callerTrace, runSpan.SpanID)
	checkSteps(t, rcv, runSpan)
	checkSleep(t, rcv, runSpan)
	checkChild(t, rcv, runSpan, runstore.ChildName(parent, "kid"))
	checkAgent(t, rcv, runSpan)
	for _, s := range rcv.All() {
		if s.TraceID != callerTrace {
			t.Errorf("span %q is in trace %s, want the caller's %s", s.Name, s.TraceID, callerTrace)
		}
	}
	if n := len(rcv.All()); n != 11 {
		t.Errorf("got %d spans, want 11 (run, fetch twice, store, pause, kid, kid/result, the child's run and step, ask, ask/result): %+v", n, rcv.All())
	}
	return second
}

// webhookTrace sends a delivery with a traceparent to the hooked workflow's webhook and checks
// that its run's span is the delivery's child, with the run's step under it.
func webhookTrace(t *testing.T, rcv *tracingtest.Receiver, m *manager, c client.Client) {
	const callerTrace, callerSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	var name string
	testenv.WaitFor(t, 30*time.Second, "the webhook to accept a delivery", func() error {
		req, err := http.NewRequest(http.MethodPost, m.api+"/webhooks/traced-hook", strings.NewReader(`{"ok":true}`))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		var accepted webhookserver.WebhookResponse
		if err := json.Unmarshal(body, &accepted); err != nil {
			return err
		}
		name = accepted.ID
		return nil
	})
	testenv.WaitFor(t, 30*time.Second, "the delivery's run span", func() error {
		if err := m.provider.ForceFlush(context.Background()); err != nil {
			return err
		}
		if n := len(rcv.Named("run hooked")); n != 1 {
			return fmt.Errorf("%d run spans", n)
		}
		return nil
	})
	run := one(t, rcv, "run hooked")
	if run.TraceID != callerTrace || run.ParentID != callerSpan || run.Attrs[tracing.AttrRunName] != name {
		t.Errorf("the delivery's run span %+v, want run %q in %s under %s", run, name, callerTrace, callerSpan)
	}
	if step := one(t, rcv, "step handle"); step.ParentID != run.SpanID || step.TraceID != callerTrace {
		t.Errorf("the delivery's step is under %s in %s, want the run's span %s", step.ParentID, step.TraceID, run.SpanID)
	}
}

// checkAgent checks the agent turn's spans: its start and its wait under the run's span, the
// wait with the model and the token counts, and the prompt in no span at all.
func checkAgent(t *testing.T, rcv *tracingtest.Receiver, run tracingtest.Span) {
	t.Helper()
	start, wait := one(t, rcv, "agent ask"), one(t, rcv, "agent ask/result")
	for _, s := range []tracingtest.Span{start, wait} {
		if s.ParentID != run.SpanID || s.Attrs[tracing.AttrKind] != "Agent" {
			t.Errorf("span %q is under %s (kind %v), want the run's %s", s.Name, s.ParentID, s.Attrs[tracing.AttrKind], run.SpanID)
		}
	}
	want := map[string]any{tracing.AttrModel: "fake-model-served", tracing.AttrInputTokens: int64(11), tracing.AttrOutputTokens: int64(7), tracing.AttrTotalTokens: int64(18)}
	for k, v := range want {
		if wait.Attrs[k] != v {
			t.Errorf("the agent turn's attribute %s = %v, want %v", k, wait.Attrs[k], v)
		}
	}
	for _, s := range rcv.All() {
		for k, v := range s.Attrs {
			if str, ok := v.(string); ok && strings.Contains(str, prompt) {
				t.Errorf("span %q carries the prompt in %s", s.Name, k)
			}
		}
	}
}

// one is the one span called name, failing t when there is not exactly one.
func one(t *testing.T, rcv *tracingtest.Receiver, name string) tracingtest.Span {
	t.Helper()
	spans := rcv.Named(name)
	if len(spans) != 1 {
		t.Fatalf("got %d spans %q, want 1: %+v", len(spans), name, spans)
	}
	return spans[0]
}

// checkRunSpan checks the run's span: a child of the caller's, from the run's create to its end.
func checkRunSpan(t *testing.T, rcv *tracingtest.Receiver, callerTrace, callerSpan, name string) {
	t.Helper()
	s := one(t, rcv, "run traced")
	if s.TraceID != callerTrace || s.ParentID != callerSpan {
		t.Errorf("the run span is in %s under %s, want %s under %s", s.TraceID, s.ParentID, callerTrace, callerSpan)
	}
	want := map[string]any{tracing.AttrWorkflow: "traced", tracing.AttrRunName: name, tracing.AttrRunNamespace: "default",
		tracing.AttrRunPhase: string(workflowsv1alpha1.PhaseSucceeded)}
	for k, v := range want {
		if s.Attrs[k] != v {
			t.Errorf("run span attribute %s = %v, want %v", k, s.Attrs[k], v)
		}
	}
	if s.Errored || s.End.Sub(s.Start) < pause {
		t.Errorf("the run span lasts %s (error %v), want at least the sleep of %s and no error", s.End.Sub(s.Start), s.Errored, pause)
	}
}

// checkSteps checks the step attempts: fetch failed once and was retried, store ran once
// (not again after the restart), all under the run's span.
func checkSteps(t *testing.T, rcv *tracingtest.Receiver, run tracingtest.Span) {
	t.Helper()
	fetch := rcv.Named("step fetch")
	if len(fetch) != 2 {
		t.Fatalf("got %d spans of fetch, want its 2 attempts: %+v", len(fetch), fetch)
	}
	failed, retried := fetch[0], fetch[1]
	if failed.Attrs[tracing.AttrAttempt] != int64(1) || failed.Attrs[tracing.AttrWillRetry] != true || !failed.Errored ||
		failed.Attrs[tracing.AttrErrorType] != "*errors.errorString" || failed.StatusDescription != "the upstream answered 503" {
		t.Errorf("the first attempt of fetch: %+v", failed)
	}
	if retried.Attrs[tracing.AttrAttempt] != int64(2) || retried.Attrs[tracing.AttrWillRetry] != false || retried.Errored {
		t.Errorf("the second attempt of fetch: %+v", retried)
	}
	if retried.Start.Before(failed.End.Add(100 * time.Millisecond)) {
		t.Errorf("the retry started %s after the failed attempt, before its backoff of 100ms", retried.Start.Sub(failed.End))
	}
	store := one(t, rcv, "step store")
	if got, want := outboundTraceparent.Load(), "00-"+store.TraceID+"-"+store.SpanID+"-01"; got != want {
		t.Errorf("the store step's request carried traceparent %v, want its attempt's %s", got, want)
	}
	for _, s := range []tracingtest.Span{failed, retried, store} {
		if s.ParentID != run.SpanID || s.Attrs[tracing.AttrKind] != "Step" {
			t.Errorf("span %q (kind %v) is under %s, want the run's span %s", s.Name, s.Attrs[tracing.AttrKind], s.ParentID, run.SpanID)
		}
	}
}

// checkSleep checks the sleep's span: under the run's span, lasting the sleep.
func checkSleep(t *testing.T, rcv *tracingtest.Receiver, run tracingtest.Span) {
	t.Helper()
	s := one(t, rcv, "sleep pause")
	if s.ParentID != run.SpanID || s.Attrs[tracing.AttrKind] != "Sleep" {
		t.Errorf("the sleep's span is under %s (kind %v), want the run's %s", s.ParentID, s.Attrs[tracing.AttrKind], run.SpanID)
	}
	if took := s.End.Sub(s.Start); took < pause-10*time.Millisecond || took > pause+time.Second {
		t.Errorf("the sleep's span lasts %s, want about %s", took, pause)
	}
}

// checkChild checks the child run: the parent's spans of its start and its wait link to the
// child's run span, which is in the same trace under the parent's run span, with its step.
func checkChild(t *testing.T, rcv *tracingtest.Receiver, run tracingtest.Span, child string) {
	t.Helper()
	childRun := one(t, rcv, "run traced_child")
	if childRun.ParentID != run.SpanID || childRun.Attrs[tracing.AttrRunName] != child {
		t.Errorf("the child's run span %+v, want run %s under %s", childRun, child, run.SpanID)
	}
	for _, name := range []string{"child kid", "child kid/result"} {
		s := one(t, rcv, name)
		if s.ParentID != run.SpanID || len(s.Links) != 1 || s.Links[0] != childRun.SpanID || s.Attrs[tracing.AttrChildRun] != child {
			t.Errorf("span %q: under %s, links %v, child %v; want under %s linking %s", name, s.ParentID, s.Links, s.Attrs[tracing.AttrChildRun], run.SpanID, childRun.SpanID)
		}
	}
	if greet := one(t, rcv, "step greet"); greet.ParentID != childRun.SpanID {
		t.Errorf("the child's step is under %s, want the child's run span %s", greet.ParentID, childRun.SpanID)
	}
}

// checkLogs checks that the managers' log lines about run carry its trace and span ids, so
// that a person reading the log finds the run's trace.
func checkLogs(t *testing.T, run, traceID, spanID string) {
	t.Helper()
	lines := 0
	for _, line := range strings.Split(managerLog.String(), "\n") {
		if !strings.Contains(line, `"WorkflowRun":{"name":"`+run+`"`) {
			continue
		}
		lines++
		if !strings.Contains(line, `"trace_id":"`+traceID+`"`) || !strings.Contains(line, `"span_id":"`+spanID+`"`) {
			t.Errorf("a log line about run %s lacks its trace_id %s and span_id %s:\n%s", run, traceID, spanID, line)
		}
	}
	if lines == 0 {
		t.Errorf("no log line about run %s; the log:\n%s", run, managerLog)
	}
}

// definitionTrace creates a WorkflowDefinition whose step calls a server with the http module,
// runs it (in the sandbox's worker process, as tenants' code runs) and checks that the call
// carried the traceparent of the step's span, in the run's trace under the run's span.
func definitionTrace(t *testing.T, rcv *tracingtest.Receiver, m *manager, c client.Client) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("traceparent"):
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ctx := context.Background()
	def := &workflowsv1alpha1.WorkflowDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "traced-definition"},
		Spec: workflowsv1alpha1.WorkflowDefinitionSpec{Source: fmt.Sprintf(
			"WORKFLOW_NAME = \"traced_definition\"\ndef handler(inp, ctx):\n    return ctx.step(\"call\", lambda: http.get(%q).status)\n", srv.URL)}}
	if err := c.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the definition to load", func() error {
		fresh := &workflowsv1alpha1.WorkflowDefinition{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(def), fresh); err != nil {
			return err
		}
		if cond := meta.FindStatusCondition(fresh.Status.Conditions, workflowsv1alpha1.ConditionReady); cond == nil || cond.Reason != workflowsv1alpha1.ReasonLoaded {
			return fmt.Errorf("the definition's Ready condition is %+v", cond)
		}
		return nil
	})
	run := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "traced-definition-1"},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "traced_definition"}}
	if err := c.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	waitSucceeded(t, c, run.Name, 30*time.Second)
	testenv.WaitFor(t, 10*time.Second, "the definition's run span", func() error {
		if err := m.provider.ForceFlush(ctx); err != nil {
			return err
		}
		if n := len(rcv.Named("run traced_definition")); n != 1 {
			return fmt.Errorf("%d run spans", n)
		}
		return nil
	})
	runSpan, step := one(t, rcv, "run traced_definition"), one(t, rcv, "step call")
	if step.ParentID != runSpan.SpanID || step.TraceID != runSpan.TraceID {
		t.Errorf("the definition's step is under %s in %s, want the run's span %s in %s", step.ParentID, step.TraceID, runSpan.SpanID, runSpan.TraceID)
	}
	select {
	case header := <-got:
		if want := "00-" + step.TraceID + "-" + step.SpanID + "-01"; header != want {
			t.Errorf("the definition's http.get carried traceparent %q, want its step's %s", header, want)
		}
	default:
		t.Error("the definition's step never called the server")
	}
}
