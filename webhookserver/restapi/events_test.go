package restapi_test

import (
	"context"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"

	"path/filepath"

	"github.com/centaur-dev/workflow-operator/catalog"

	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"
)

var _ = Describe("POST /api/workflows/events", func() {
	It("resumes the run waiting for the event", func() {
		run := as[restapi.RunDetail](curlPost("/workflows/runs", adminKey, `{"workflow_name": "approval", "input": {"request_id": "req-rest-1"}, "eager_start": true}`))
		Expect(run.Status).To(Equal("Waiting"))
		Expect(run.WaitingFor).To(ContainSubstring("req-rest-1"))

		r := curlPost("/workflows/events", adminKey, `{"event_type": "approval.decided", "correlation_id": "req-rest-1", "payload": {"decision": "approved", "by": "ada"}}`)
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		ev := as[restapi.Event](r)
		Expect(ev.ID).To(HavePrefix("approval-decided-"))
		Expect(ev.Namespace).To(Equal("default"))
		Expect(ev.Payload).To(MatchJSON(`{"decision": "approved", "by": "ada"}`))

		stored := &workflowsv1alpha1.WorkflowEvent{}
		Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: ev.ID}, stored)).To(Succeed())
		Expect(stored.Spec.Type).To(Equal("approval.decided"))
		Expect(stored.Spec.CorrelationID).To(Equal("req-rest-1"))

		Eventually(statusOf(run.ID, "default"), 10*time.Second, 50*time.Millisecond).Should(Equal("Succeeded"))
		Expect(getRun(run.ID, "default").Output).To(MatchJSON(`{"decision": "approved", "by": "ada"}`))
	})

	It("refuses an event without a type, and namespaces outside the key's scope", func() {
		e := expectError(curlPost("/workflows/events", adminKey, `{"correlation_id": "x"}`), http.StatusBadRequest, apierror.CodeInvalidRequest)
		Expect(e.Message).To(ContainSubstring("event_type is required"))
		expectError(curlPost("/workflows/events", adminKey, `{"event_type": "x"`), http.StatusBadRequest, apierror.CodeMalformedBody)
		expectError(curlPost("/workflows/events", teamBKey, `{"event_type": "x", "namespace": "default"}`), http.StatusForbidden, apierror.CodeForbidden)
	})
})

var _ = Describe("GET /api/workflows", func() {
	It("lists the registered workflows with their example inputs", func() {
		r := send(http.MethodGet, "/workflows", adminKey, "")
		Expect(r.status).To(Equal(http.StatusOK))
		list := as[restapi.WorkflowList](r)
		names := []string{}
		for _, w := range list.Workflows {
			names = append(names, w.Name)
			if w.Name == "hello" {
				Expect(w.Description).NotTo(BeEmpty())
				Expect(w.ExampleInput).To(MatchJSON(`{"name": "Ada"}`))
			}
			if w.Name == "slow" {
				Expect(string(w.ExampleInput)).To(Equal("null"))
			}
		}
		Expect(names).To(Equal(registry.Names()))
	})
})

// loadRepositoryWorkflows serves the repository's workflows/ (the product's Python examples) for
// one spec, as make dev does.
func loadRepositoryWorkflows() {
	(&catalog.Dirs{Paths: []string{filepath.Join("..", "..", "workflows")}, Catalog: workflowCatalog, Logger: logf.Log}).Load()
	DeferCleanup(workflowCatalog.SetFiles, []catalog.Entry(nil))
	for _, name := range []string{"nightly_report", "github_issue_triage"} {
		_, ok := workflowCatalog.Lookup("default", name)
		Expect(ok).To(BeTrue(), "workflows/%s.py did not load", name)
	}
}

var _ = Describe("Workflow files over the REST API", func() {
	BeforeEach(loadRepositoryWorkflows)

	It("lists file workflows beside Go ones, with their source, revision, input fields and webhooks", func() {
		list := as[restapi.WorkflowList](send(http.MethodGet, "/workflows", adminKey, ""))
		Expect(list.Namespace).To(Equal("default"))
		byName := map[string]restapi.WorkflowInfo{}
		for _, w := range list.Workflows {
			byName[w.Name] = w
		}
		report := byName["nightly_report"]
		Expect(report.Source).To(Equal("file"), "the file overrides the Go workflow of the same name")
		Expect(report.Revision).To(HavePrefix("nightly-report-"))
		Expect(report.File).To(HaveSuffix("nightly_report.py"))
		Expect(report.ExampleInput).To(MatchJSON(`{"channel": "", "topic": ""}`), "derived from Input's fields")
		Expect(report.InputFields).To(HaveLen(2))
		Expect(byName["github_issue_triage"].Webhooks).To(ConsistOf(restapi.WebhookInfo{
			Slug: "github-issue-triage", Path: "/api/webhooks/github-issue-triage", Provider: "github", Auth: "github"}))
		Expect(byName["hello"].Source).To(Equal("go"))
	})

	It("starts the product's nightly_report as written, and refuses input that does not fit with the field's name", func() {
		r := curlPost("/workflows/runs", adminKey, `{
			"workflow_name": "nightly_report",
			"input": {"channel": "ops", "topic": "open incidents"},
			"eager_start": true
		}`)
		Expect(r.status).To(Equal(http.StatusCreated), string(r.body))
		run := as[restapi.RunDetail](r)
		Expect(run.Status).To(Equal("Sleeping"), "eager start ran collect and reached the 30 s settle: %+v", run)
		Expect(run.CurrentStep).To(Equal("settle"))
		Expect(run.Steps).To(ContainElement(matchStep("collect", "Step", "Completed", 1)))

		e := expectError(curlPost("/workflows/runs", adminKey, `{"workflow_name": "nightly_report", "input": {"channel": "ops", "items": ["a"]}}`),
			http.StatusBadRequest, apierror.CodeInvalidInput)
		Expect(e.Message).To(ContainSubstring(`unknown field "items": Input declares channel (str), topic (str)`))
	})
})

var _ = Describe("The samples", func() {
	BeforeEach(loadRepositoryWorkflows)

	It("apply as kubectl applies config/samples/, and their runs run", func() {
		ns := "samples-" + rand.String(5)
		Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		paths, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		for _, path := range paths {
			data, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred())
			for _, doc := range strings.Split(string(data), "\n---\n") {
				obj := &unstructured.Unstructured{}
				Expect(yaml.Unmarshal([]byte(doc), &obj.Object)).To(Succeed(), path)
				obj.SetNamespace(ns)
				Expect(k8sClient.Create(context.Background(), obj)).To(Succeed(), path)
			}
		}
		outputs := map[string]string{
			"hello-sample": `{"greeting": "Hello, Ada!"}`,
			"greet-sample": `{"greeting": "Bonjour, Ada!"}`,
		}
		run := func(name string) *workflowsv1alpha1.WorkflowRun {
			fresh := &workflowsv1alpha1.WorkflowRun{}
			Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, fresh)).To(Succeed())
			return fresh
		}
		for name, want := range outputs {
			Eventually(func() workflowsv1alpha1.RunPhase { return run(name).Status.Phase }, 30*time.Second, 100*time.Millisecond).
				Should(Equal(workflowsv1alpha1.PhaseSucceeded), name)
			Expect(run(name).Status.Output.Raw).To(MatchJSON(want))
		}
		Eventually(func() string { return run("nightly-report-sample").Status.CurrentStep }, 30*time.Second).Should(Equal("settle"),
			"the nightly_report sample fits the file's declared input")
	})
})

var _ = Describe("A workflow that starts only from its webhooks, over the REST API", func() {
	It("is refused with 403 forbidden, saying where to send the delivery", func() {
		dir := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(dir, "hooked.star"), []byte(`
WORKFLOW_NAME = "hooked_only"
WEBHOOKS = [WebhookSpec(slug = "hooked-only", auth = "none", webhook_only = True)]
def handler(inp, ctx):
    return 1
`), 0o644)).To(Succeed())
		(&catalog.Dirs{Paths: []string{dir}, Catalog: workflowCatalog, Logger: logf.Log}).Load()
		DeferCleanup(workflowCatalog.SetFiles, []catalog.Entry(nil))
		e := expectError(curlPost("/workflows/runs", adminKey, `{"workflow_name": "hooked_only", "input": {"webhook": {"slug": "hooked-only"}}}`),
			http.StatusForbidden, apierror.CodeForbidden)
		Expect(e.Message).To(ContainSubstring("starts only from its webhooks"))
	})
})
