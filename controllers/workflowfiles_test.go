package controllers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/barrierserver"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
)

// revisionGCInterval is short in the suite so that the collection of unused revisions shows.
const revisionGCInterval = 2 * time.Second

// fileMaxSteps bounds the suite's workflow files so that an endless loop stops quickly.
const fileMaxSteps = 2_000_000

// dirLogs holds what the suite's workflow directory watchers logged, as JSON lines.
var dirLogs = &testenv.LogBuffer{}

// dropFile writes a workflow file into the suite's WORKFLOW_DIRS under a unique name and
// returns its WORKFLOW_NAME, which is unique too. text uses %[1]s for the name.
func dropFile(text string) string {
	GinkgoHelper()
	name := "file_" + rand.String(8)
	path := filepath.Join(workflowDir, name+".star")
	Expect(os.WriteFile(path, []byte(fmt.Sprintf(text, name)), 0o644)).To(Succeed())
	DeferCleanup(func() { _ = os.Remove(path) })
	return name
}

// waitLoaded waits until the manager's catalog knows workflow in namespace.
func waitLoaded(namespace, workflow string) {
	GinkgoHelper()
	Eventually(func() bool {
		_, ok := manager.catalog.Lookup(namespace, workflow)
		return ok
	}, 10*time.Second, 50*time.Millisecond).Should(BeTrue(), "workflow %q never loaded", workflow)
}

// createDefinition creates a WorkflowDefinition in the default namespace.
func createDefinition(name, source string) *workflowsv1alpha1.WorkflowDefinition {
	GinkgoHelper()
	def := &workflowsv1alpha1.WorkflowDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       workflowsv1alpha1.WorkflowDefinitionSpec{Source: source},
	}
	Expect(k8sClient.Create(context.Background(), def)).To(Succeed())
	DeferCleanup(func() { _ = k8sClient.Delete(context.Background(), def) })
	return def
}

// definitionReady waits until def's Ready condition has reason and returns def as read then.
func definitionReady(def *workflowsv1alpha1.WorkflowDefinition, reason string) *workflowsv1alpha1.WorkflowDefinition {
	GinkgoHelper()
	fresh := &workflowsv1alpha1.WorkflowDefinition{}
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(def), fresh)).To(Succeed())
		cond := meta.FindStatusCondition(fresh.Status.Conditions, workflowsv1alpha1.ConditionReady)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Reason).To(Equal(reason), "message: %s", cond.Message)
		g.Expect(cond.ObservedGeneration).To(Equal(fresh.Generation))
	}, 15*time.Second, 50*time.Millisecond).Should(Succeed())
	return fresh
}

var _ = Describe("Workflow files from WORKFLOW_DIRS", func() {
	It("runs a file dropped into the directory without a restart, on the revision it loaded", func() {
		name := dropFile(`
WORKFLOW_NAME = "%[1]s"
Input = dataclass(name = str)
def handler(inp, ctx):
    greeting = ctx.step("greet", lambda: "Hello, " + inp.name + "!")
    return {"greeting": greeting}
`)
		waitLoaded("default", name)
		run := createRun(name, map[string]string{"name": "Ada"})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"greeting": "Hello, Ada!"}`))
		Expect(done.Status.WorkflowRevision).To(HavePrefix(strings.ReplaceAll(name, "_", "-") + "-"))
		Expect(dirLogs.String()).To(ContainSubstring(`"workflow_loaded"`))
		Expect(dirLogs.String()).To(ContainSubstring(done.Status.WorkflowRevision))
	})

	It("reports a syntax error with its line and keeps the other workflows running", func() {
		broken := dropFile("WORKFLOW_NAME = \"%[1]s\"\n\ndef handler(inp, ctx)\n    return 1\n")
		healthy := dropFile("WORKFLOW_NAME = \"%[1]s\"\ndef handler(inp, ctx):\n    return \"fine\"\n")
		waitLoaded("default", healthy)
		Eventually(dirLogs.String, 10*time.Second).Should(And(
			ContainSubstring(`"msg":"workflow_load_failed","file":"`+filepath.Join(workflowDir, broken+".star")),
			MatchRegexp(`"workflow_load_failed","file":"[^"]*`+broken+`\.star","in":"`+broken+`\.star","line":4,"column":1,"reason":"SyntaxError"`)))
		_, loaded := manager.catalog.Lookup("default", broken)
		Expect(loaded).To(BeFalse())
		Expect(outputOf(waitPhase(createRun(healthy, nil), workflowsv1alpha1.PhaseSucceeded, 15*time.Second))).To(MatchJSON(`"fine"`))
		Expect(outputOf(waitPhase(createRun("hello", map[string]string{"name": "Go"}), workflowsv1alpha1.PhaseSucceeded, 15*time.Second))).
			To(MatchJSON(`{"greeting": "Hello, Go!"}`))
	})

	It("records a step's HTTP call once and does not repeat it after a manager restart", func() {
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			fmt.Fprintf(w, `{"ticket": %d}`, hits.Load())
		}))
		defer srv.Close()
		name := dropFile(`
WORKFLOW_NAME = "%[1]s"
def handler(inp, ctx):
    created = ctx.step("open-ticket", lambda: http.post("` + srv.URL + `/tickets", json = {"title": inp.title}).json())
    ctx.wait_for_event("resolved", "ticket.resolved", inp.title)
    return created
`)
		waitLoaded("default", name)
		title := "t-" + rand.String(6)
		run := createRun(name, map[string]string{"title": title})
		waitPhase(run, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		Expect(hits.Load()).To(BeEquivalentTo(1))
		restartManager()
		createEvent("ticket.resolved", title, map[string]bool{"ok": true})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"ticket": 1}`))
		Expect(hits.Load()).To(BeEquivalentTo(1), "the step's HTTP call ran again")
	})

	It("runs ctx.parallel's branches at once and records ctx.get_version's version, through a replay", func() {
		// Each request waits until the other arrived: only branches that run at once succeed.
		srv := barrierserver.New(2, 10*time.Second)
		defer srv.Close()
		name := dropFile(`
WORKFLOW_NAME = "%[1]s"
def fetch(path):
    def get():
        r = http.get("` + srv.URL + `" + path)
        r.raise_for_status()
        return r.text
    return get

def handler(inp, ctx):
    if ctx.get_version("fetch-both", DEFAULT_VERSION, 1) == DEFAULT_VERSION:
        pages = [ctx.step("fetch-docs", fetch("/docs"))]
    else:
        pages = ctx.parallel([("fetch-docs", fetch("/docs")), ("fetch-blog", fetch("/blog"))], retry = 1, timeout = "20s")
    ctx.wait_for_event("published", "pages.published", inp.key)
    return pages
`)
		waitLoaded("default", name)
		key := "k-" + rand.String(6)
		run := createRun(name, map[string]string{"key": key})
		waitPhase(run, workflowsv1alpha1.PhaseWaiting, 20*time.Second)
		createEvent("pages.published", key, map[string]bool{"ok": true})
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`["docs page", "blog page"]`))
		Expect(srv.Hits()).To(Equal(2), "each branch fetched once, and the replay after the event fetched nothing")

		expectVersion(done, "fetch-both", 1)
		for _, step := range []string{"fetch-docs", "fetch-blog"} {
			e := entry(done, step)
			Expect(e.Kind).To(Equal(workflowsv1alpha1.EntryKind("Step")), step)
			Expect(e.State).To(Equal(workflowsv1alpha1.EntryState("Completed")), step)
		}
	})

	It("declares the file's SCHEDULES as WorkflowSchedules, and takes them away with the file", func() {
		name := dropFile(`
WORKFLOW_NAME = "%[1]s"
SCHEDULES = [Schedule(name = "nightly", cron = "0 2 * * *", time_zone = "Europe/Berlin", input = {"topic": "backups"}, catch_up = "None")]
def handler(inp, ctx):
    return inp["topic"]
`)
		waitLoaded("default", name)
		key := types.NamespacedName{Namespace: operatorNamespace, Name: strings.ReplaceAll(name, "_", "-") + "-nightly"}
		Eventually(func(g Gomega) {
			ws := &workflowsv1alpha1.WorkflowSchedule{}
			g.Expect(k8sClient.Get(context.Background(), key, ws)).To(Succeed())
			g.Expect(ws.Spec.WorkflowName).To(Equal(name))
			g.Expect(ws.Spec.Schedule).To(Equal("0 2 * * *"))
			g.Expect(ws.Spec.TimeZone).To(Equal("Europe/Berlin"))
			g.Expect(ws.Spec.Input.Raw).To(MatchJSON(`{"topic": "backups"}`))
			g.Expect(ws.Labels).To(HaveKeyWithValue(workflowsv1alpha1.LabelDeclaredBy, DeclaredByFile))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

		By("a file whose schedule cannot run does not load, and says why")
		bad := dropFile("WORKFLOW_NAME = \"%[1]s\"\nSCHEDULES = [Schedule(cron = \"0 2 * *\")]\ndef handler(inp, ctx):\n    return 1\n")
		Eventually(dirLogs.String, 10*time.Second).Should(MatchRegexp(`"workflow_load_failed","file":"[^"]*` + bad + `\.star".*"reason":"InvalidSchedule"`))

		By("removing the file")
		Expect(os.Remove(filepath.Join(workflowDir, name+".star"))).To(Succeed())
		Eventually(func() bool {
			ws := &workflowsv1alpha1.WorkflowSchedule{}
			err := k8sClient.Get(context.Background(), key, ws)
			return apierrors.IsNotFound(err) || (err == nil && !ws.DeletionTimestamp.IsZero())
		}, 10*time.Second, 50*time.Millisecond).Should(BeTrue())
	})

	It("fails a run whose handler calls http outside a step, naming the file and line", func() {
		name := dropFile("WORKFLOW_NAME = \"%[1]s\"\ndef handler(inp, ctx):\n    return http.get(\"http://127.0.0.1:9/\")\n")
		waitLoaded("default", name)
		expectFailed(createRun(name, nil), "HandlerError", name+".star:3:20: in handler")
	})

	It("fails a run whose handler loops forever instead of holding a worker", func() {
		name := dropFile("WORKFLOW_NAME = \"%[1]s\"\ndef handler(inp, ctx):\n    n = 0\n    while True:\n        n += 1\n")
		waitLoaded("default", name)
		expectFailed(createRun(name, nil), workflowsv1alpha1.ReasonExecutionLimit, fmt.Sprintf("more than %d Starlark steps", fileMaxSteps))
	})
})

var _ = Describe("WorkflowDefinitions", func() {
	// source is a definition that takes a step, waits for an event and says which version ran.
	source := func(workflow, version string) string {
		return fmt.Sprintf(`
WORKFLOW_NAME = %q
def handler(inp, ctx):
    ctx.step("before", lambda: %q)
    ctx.wait_for_event("go-on", "test.go-on", inp.key)
    return {"version": %q}
`, workflow, version, version)
	}

	It("runs a definition and keeps an in-flight run on its revision while new runs take the new one", func() {
		workflow := "def_" + rand.String(8)
		def := definitionReady(createDefinition("versioned-"+rand.String(5), source(workflow, "v1")), workflowsv1alpha1.ReasonLoaded)
		Expect(def.Status.WorkflowName).To(Equal(workflow))
		v1 := def.Status.Revision
		Expect(v1).NotTo(BeEmpty())

		oldKey, newKey := "old-"+rand.String(5), "new-"+rand.String(5)
		inFlight := createRun(workflow, map[string]string{"key": oldKey})
		waitPhase(inFlight, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		Expect(getRun(inFlight).Status.WorkflowRevision).To(Equal(v1))
		Expect(k8sClient.Get(context.Background(), types.NamespacedName{Namespace: "default", Name: v1}, &appsv1.ControllerRevision{})).
			To(Succeed(), "the revision a run started on is stored in the definition's namespace")

		Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(def), def)).To(Succeed())
		def.Spec.Source = source(workflow, "v2")
		Expect(k8sClient.Update(context.Background(), def)).To(Succeed())
		var v2 string
		Eventually(func() string {
			v2 = definitionReady(def, workflowsv1alpha1.ReasonLoaded).Status.Revision
			return v2
		}, 10*time.Second).ShouldNot(Equal(v1))

		fresh := createRun(workflow, map[string]string{"key": newKey})
		waitPhase(fresh, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		restartManager() // the old revision now comes from its ControllerRevision
		createEvent("test.go-on", oldKey, nil)
		createEvent("test.go-on", newKey, nil)
		Expect(outputOf(waitPhase(inFlight, workflowsv1alpha1.PhaseSucceeded, 15*time.Second))).To(MatchJSON(`{"version": "v1"}`))
		Expect(outputOf(waitPhase(fresh, workflowsv1alpha1.PhaseSucceeded, 15*time.Second))).To(MatchJSON(`{"version": "v2"}`))
		Expect(getRun(fresh).Status.WorkflowRevision).To(Equal(v2))

		By("dropping the old revision once no run needs it, and nothing that only carries its label")
		decoys := labelledDecoyRevisions("default", workflow)
		Eventually(func() bool {
			err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: "default", Name: v1}, &appsv1.ControllerRevision{})
			return apierrors.IsNotFound(err)
		}, 4*revisionGCInterval+10*time.Second, 200*time.Millisecond).Should(BeTrue())
		Expect(k8sClient.Get(context.Background(), types.NamespacedName{Namespace: "default", Name: v2}, &appsv1.ControllerRevision{})).
			To(Succeed(), "the current revision is kept")
		for _, d := range decoys {
			Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(d), &appsv1.ControllerRevision{})).
				To(Succeed(), "%s carries the collector's labels but is not a workflow revision", d.Name)
			Expect(k8sClient.Delete(context.Background(), d)).To(Succeed())
		}
	})

	It("reports a syntax error with its line and column", func() {
		def := definitionReady(createDefinition("broken-"+rand.String(5), "WORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    return (\n"),
			workflowsv1alpha1.ReasonSyntaxError)
		cond := meta.FindStatusCondition(def.Status.Conditions, workflowsv1alpha1.ConditionReady)
		Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		Expect(cond.Message).To(MatchRegexp(`^broken-\w+\.star:4:1: `))
		Expect(def.Status.Revision).To(BeEmpty())
	})

	It("refuses a definition whose load needs a gigabyte, without the manager paying for it", func() {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		def := definitionReady(createDefinition("hog-"+rand.String(5), "WORKFLOW_NAME = \"hog\"\nPAD = \"a\" * ((1 << 30) - 1)\ndef handler(inp, ctx):\n    return len(PAD)\n"),
			workflowsv1alpha1.ReasonMemoryLimitExceeded)
		Expect(meta.FindStatusCondition(def.Status.Conditions, workflowsv1alpha1.ConditionReady).Message).To(ContainSubstring("takes more than 64 MiB of memory"))
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		Expect(after.TotalAlloc-before.TotalAlloc).To(BeNumerically("<", 512<<20), "the gigabyte is allocated by the probe process, not the manager")

		By("loading the next definition as usual")
		workflow := "after_hog_" + rand.String(8)
		definitionReady(createDefinition("after-hog-"+rand.String(5), fmt.Sprintf("WORKFLOW_NAME = %q\ndef handler(inp, ctx):\n    return 1\n", workflow)),
			workflowsv1alpha1.ReasonLoaded)
		Expect(outputOf(waitPhase(createRun(workflow, nil), workflowsv1alpha1.PhaseSucceeded, 15*time.Second))).To(MatchJSON(`1`))
	})

	It("never shadows a workflow of the manager, and is visible only in its namespace", func() {
		def := definitionReady(createDefinition("shadow-"+rand.String(5), "WORKFLOW_NAME = \"hello\"\ndef handler(inp, ctx):\n    return \"tenant\"\n"),
			workflowsv1alpha1.ReasonNameConflict)
		Expect(meta.FindStatusCondition(def.Status.Conditions, workflowsv1alpha1.ConditionReady).Message).To(ContainSubstring("compiled into the manager"))
		Expect(outputOf(waitPhase(createRun("hello", map[string]string{"name": "Ada"}), workflowsv1alpha1.PhaseSucceeded, 15*time.Second))).
			To(MatchJSON(`{"greeting": "Hello, Ada!"}`))

		workflow := "private_" + rand.String(8)
		definitionReady(createDefinition("private-"+rand.String(5), source(workflow, "v1")), workflowsv1alpha1.ReasonLoaded)
		other := "team-" + rand.String(5)
		Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}})).To(Succeed())
		expectFailed(createRun(workflow, nil, func(r *workflowsv1alpha1.WorkflowRun) { r.Namespace = other }),
			"UnknownWorkflow", fmt.Sprintf("workflow %q is not known in namespace %s", workflow, other))
	})

	It("cannot reach 127.0.0.1", func() {
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
		defer srv.Close()
		workflow := "probe_" + rand.String(8)
		definitionReady(createDefinition("probe-"+rand.String(5), fmt.Sprintf(
			"WORKFLOW_NAME = %q\ndef handler(inp, ctx):\n    return ctx.step(\"probe\", lambda: http.get(%q).status, retry = 1)\n", workflow, srv.URL)),
			workflowsv1alpha1.ReasonLoaded)
		expectFailed(createRun(workflow, nil), "StepFailed", "127.0.0.1 is in 127.0.0.0/8, which workflow definitions may not reach")
		Expect(hits.Load()).To(BeZero())
	})

	It("executes in the sandbox: a step that builds a gigabyte kills its worker twice, never the manager, and the run and its revision are quarantined", func() {
		workflow := "hog_" + rand.String(8)
		def := definitionReady(createDefinition("hog-"+rand.String(5), fmt.Sprintf(
			"WORKFLOW_NAME = %q\ndef handler(inp, ctx):\n    return ctx.step(\"hog\", lambda: len(\"a\" * ((1 << 30) - 1)))\n", workflow)),
			workflowsv1alpha1.ReasonLoaded)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		failed := expectFailed(createRun(workflow, nil), workflowsv1alpha1.ReasonQuarantined, "the sandbox process that executed it (memory budget 64 MiB")
		runtime.ReadMemStats(&after)
		Expect(failed.Annotations[workflowsv1alpha1.AnnotationCrashStrikes]).To(Equal("4"), "a death among others, then one alone")
		Expect(after.TotalAlloc-before.TotalAlloc).To(BeNumerically("<", 512<<20), "the gigabyte was the worker's, not the manager's")
		definitionReady(def, workflowsv1alpha1.ReasonQuarantined)

		By("a good run of another definition executes in a new worker")
		good := "good_" + rand.String(8)
		definitionReady(createDefinition("good-"+rand.String(5), source(good, "v1")), workflowsv1alpha1.ReasonLoaded)
		key := "good-" + rand.String(5)
		run := createRun(good, map[string]string{"key": key})
		waitPhase(run, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		createEvent("test.go-on", key, nil)
		Expect(outputOf(waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 15*time.Second))).To(MatchJSON(`{"version": "v1"}`))
	})
})

// labelledDecoyRevisions creates ControllerRevisions in ns that carry the labels of workflow
// revisions without being any: one holding a StatefulSet's template, one holding a bundle but
// owned by a controller. An editor may label objects of their namespace so.
func labelledDecoyRevisions(ns, workflow string) []*appsv1.ControllerRevision {
	GinkgoHelper()
	labels := map[string]string{workflowsv1alpha1.LabelRevisionOf: workflow, "app.kubernetes.io/managed-by": "centaur-workflows"}
	template := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-" + rand.String(4) + "-0123456789ab", Labels: labels},
		Data:       k8sruntime.RawExtension{Raw: []byte(`{"spec":{"template":{"$patch":"replace","spec":{"containers":[{"name":"web","image":"nginx"}]}}}}`)},
		Revision:   1,
	}
	// The owner must exist, or the cluster's garbage collector deletes the decoy itself.
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-" + rand.String(4)}}
	Expect(k8sClient.Create(context.Background(), owner)).To(Succeed())
	DeferCleanup(k8sClient.Delete, context.Background(), owner)
	owned := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: owner.Name + "-0123456789ab", Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}}},
		Data:     k8sruntime.RawExtension{Raw: []byte(`{"origin":"definition","entry":"x.star","files":{"x.star":"WORKFLOW_NAME = 1"}}`)},
		Revision: 1,
	}
	for _, d := range []*appsv1.ControllerRevision{template, owned} {
		Expect(k8sClient.Create(context.Background(), d)).To(Succeed())
	}
	return []*appsv1.ControllerRevision{template, owned}
}
