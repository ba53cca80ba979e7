package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/barrierserver"
)

// dropPython writes a Python workflow file into the suite's WORKFLOW_DIRS under a unique name
// and returns its WORKFLOW_NAME, which is unique too. text uses %[1]s for the name.
func dropPython(text string) string {
	GinkgoHelper()
	name := "py_" + rand.String(8)
	path := filepath.Join(workflowDir, name+".py")
	Expect(os.WriteFile(path, []byte(fmt.Sprintf(text, name)), 0o644)).To(Succeed())
	DeferCleanup(func() { _ = os.Remove(path) })
	return name
}

// scratch returns paths of files a spec's Python steps write (marks) and wait for (gates).
func scratch() (marks, gate string) {
	dir := GinkgoT().TempDir()
	return filepath.Join(dir, "marks"), filepath.Join(dir, "gate")
}

// marksOf reads what the steps marked, one line per call of a step function.
func marksOf(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// pythonSteps are step functions the specs' files share: mark appends its name to the marks
// file and returns it; gated does the same, then waits until the gate file exists.
const pythonSteps = `
import os
import time


def mark(inp, name):
    def do():
        with open(inp["marks"], "a") as f:
            f.write(name + "\n")
        return name
    return do


def gated(inp, name):
    def do():
        mark(inp, name)()
        while not os.path.exists(inp["gate"]):
            time.sleep(0.02)
        return name
    return do
`

var _ = Describe("Python workflow files from WORKFLOW_DIRS", func() {
	It("lets a handler catch a step that failed for good and go on", func() {
		name := dropPython(`
from api.workflow_engine import StepFailed

WORKFLOW_NAME = "%[1]s"

class QuotaExceeded(Exception):
    pass

def charge():
    raise QuotaExceeded("no credit left")

async def handler(inp, ctx):
    try:
        await ctx.step("charge", charge, retry=2)
    except StepFailed as e:
        fallback = await ctx.step("invoice", lambda: "invoiced instead")
        return {"failed": e.step, "type": e.error_type, "then": fallback}
    return {"failed": None}
`)
		waitLoaded("default", name)
		done := waitPhase(createRun(name, nil), workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"failed": "charge", "type": "QuotaExceeded", "then": "invoiced instead"}`))
		charge := entry(done, "charge")
		Expect(charge.State).To(Equal(workflowsv1alpha1.EntryState("Failed")))
		Expect(charge.Attempts).To(BeEquivalentTo(2))
		Expect(charge.ErrorType).To(Equal("QuotaExceeded"))
		Expect(done.Status.WorkflowRevision).To(HavePrefix(strings.ReplaceAll(name, "_", "-") + "-"))
		Expect(dirLogs.String()).To(MatchRegexp(`"workflow_loaded","workflow":"` + name + `","file":"[^"]*` + name + `\.py","revision":"[^"]+","language":"python"`))
	})

	It("runs a step killed with its worker again and records it once; a recorded step never runs again", func() {
		name := dropPython(pythonSteps + `
WORKFLOW_NAME = "%[1]s"

async def handler(inp, ctx):
    await ctx.step("first", mark(inp, "first"))
    work = await ctx.step("work", gated(inp, "work"))
    return {"work": work}
`)
		waitLoaded("default", name)
		marks, gate := scratch()
		run := createRun(name, map[string]string{"marks": marks, "gate": gate})
		Eventually(func() string { return marksOf(marks) }, 20*time.Second, 20*time.Millisecond).Should(Equal("first\nwork\n"))
		workers, err := manager.python.Workers(context.Background())
		Expect(err).NotTo(HaveOccurred())
		for _, w := range workers {
			Expect(syscall.Kill(w.PID, syscall.SIGKILL)).To(Succeed())
		}
		Expect(os.WriteFile(gate, nil, 0o644)).To(Succeed())
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 30*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`{"work": "work"}`))
		Expect(marksOf(marks)).To(Equal("first\nwork\nwork\n"), "first was recorded before the kill; work's first call died with its worker")
		Expect(entry(done, "work").Attempts).To(BeEquivalentTo(2))
		Expect(entry(done, "first").Attempts).To(BeEquivalentTo(1))
	})

	It("finishes a run on the revision it started with after the file changes", func() {
		name := dropPython(`
WORKFLOW_NAME = "%[1]s"

async def handler(inp, ctx):
    await ctx.wait_for_event("go", "python.go", inp["key"])
    return await ctx.step("which", lambda: "v1")
`)
		waitLoaded("default", name)
		first, _ := manager.catalog.Lookup("default", name)
		key := "k-" + rand.String(6)
		old := waitPhase(createRun(name, map[string]string{"key": key}), workflowsv1alpha1.PhaseWaiting, 20*time.Second)
		path := filepath.Join(workflowDir, name+".py")
		text, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(path, []byte(strings.Replace(string(text), `"v1"`, `"v2"`, 1)), 0o644)).To(Succeed())
		Eventually(func() string { e, _ := manager.catalog.Lookup("default", name); return e.Revision }, 10*time.Second).ShouldNot(Equal(first.Revision))
		createEvent("python.go", key, nil)
		done := waitPhase(old, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`"v1"`))
		Expect(done.Status.WorkflowRevision).To(Equal(first.Revision))
		key2 := "k-" + rand.String(6)
		fresh := createRun(name, map[string]string{"key": key2})
		waitPhase(fresh, workflowsv1alpha1.PhaseWaiting, 20*time.Second)
		createEvent("python.go", key2, nil)
		Expect(outputOf(waitPhase(fresh, workflowsv1alpha1.PhaseSucceeded, 20*time.Second))).To(MatchJSON(`"v2"`))
	})

	It("reports a syntax error with its file and line, and keeps the other workflows running", func() {
		broken := dropPython("WORKFLOW_NAME = \"%[1]s\"\n\n\nasync def handler(inp, ctx)\n    return 1\n")
		healthy := dropPython("WORKFLOW_NAME = \"%[1]s\"\n\nasync def handler(inp, ctx):\n    return await ctx.step('s', lambda: 'fine')\n")
		waitLoaded("default", healthy)
		Eventually(dirLogs.String, 10*time.Second).Should(MatchRegexp(
			`"workflow_load_failed","file":"` + filepath.Join(workflowDir, broken+".py") + `","in":"[^"]*` + broken + `\.py","line":4,"column":\d+,"reason":"SyntaxError"`))
		_, loaded := manager.catalog.Lookup("default", broken)
		Expect(loaded).To(BeFalse())
		Expect(outputOf(waitPhase(createRun(healthy, nil), workflowsv1alpha1.PhaseSucceeded, 20*time.Second))).To(MatchJSON(`"fine"`))
	})

	It("fails a run whose handler never awaits, and the workers recover", func() {
		name := dropPython(`
WORKFLOW_NAME = "%[1]s"

async def handler(inp, ctx):
    await ctx.step("before", lambda: 1)
    if inp["spin"]:
        while True:
            pass
    return await ctx.step("after", lambda: "fine")
`)
		waitLoaded("default", name)
		spun := expectFailedWithin(createRun(name, map[string]bool{"spin": true}), workflowsv1alpha1.ReasonExecutionLimit, "--python-handler-deadline", time.Minute)
		Expect(entry(spun, "before").Attempts).To(BeEquivalentTo(1))
		Expect(outputOf(waitPhase(createRun(name, map[string]bool{"spin": false}), workflowsv1alpha1.PhaseSucceeded, 20*time.Second))).To(MatchJSON(`"fine"`))
	})

	It("runs three gathered steps at once and records each once", func() {
		barrier := barrierserver.New(3, 20*time.Second)
		defer barrier.Close()
		name := dropPython(`
import asyncio
import urllib.request

WORKFLOW_NAME = "%[1]s"

def fetch(url):
    return lambda: urllib.request.urlopen(url, timeout=30).read().decode()

async def handler(inp, ctx):
    pages = ("docs", "blog", "news")
    return await asyncio.gather(*(ctx.step(p, fetch(inp["url"] + "/" + p)) for p in pages))
`)
		waitLoaded("default", name)
		done := waitPhase(createRun(name, map[string]string{"url": barrier.URL}), workflowsv1alpha1.PhaseSucceeded, 30*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`["docs page", "blog page", "news page"]`))
		Expect(barrier.Hits()).To(Equal(3))
		for _, page := range []string{"docs", "blog", "news"} {
			Expect(entry(done, page).Attempts).To(BeEquivalentTo(1))
		}
	})

	It("fails a replay that diverges from the journal with NonDeterministic", func() {
		name := dropPython(`
import os

WORKFLOW_NAME = "%[1]s"

async def handler(inp, ctx):
    if os.path.exists(inp["flag"]):
        await ctx.sleep("x", 1)
    else:
        await ctx.step("x", lambda: 1)
    await ctx.wait_for_event("go", "python.diverge", inp["key"])
    return "done"
`)
		waitLoaded("default", name)
		flag, key := filepath.Join(GinkgoT().TempDir(), "flag"), "k-"+rand.String(6)
		run := waitPhase(createRun(name, map[string]string{"flag": flag, "key": key}), workflowsv1alpha1.PhaseWaiting, 20*time.Second)
		Expect(os.WriteFile(flag, nil, 0o644)).To(Succeed())
		restartManager() // its workers keep no handler: the run replays from the top
		createEvent("python.diverge", key, nil)
		expectFailed(run, "NonDeterministic", `"x" was recorded as a Step but the handler now calls it as a Sleep`)
	})

	It("does not use a kept handler whose journal did not end where it left it", func() {
		name := dropPython(pythonSteps + `
WORKFLOW_NAME = "%[1]s"

async def handler(inp, ctx):
    await ctx.step("a", mark(inp, "a"))
    c = await ctx.step("c", gated(inp, "c"))
    await ctx.sleep("nap", 0.5)
    return c
`)
		waitLoaded("default", name)
		marks, gate := scratch()
		run := createRun(name, map[string]string{"marks": marks, "gate": gate})
		Eventually(func() string { return marksOf(marks) }, 20*time.Second, 20*time.Millisecond).Should(Equal("a\nc\n"))
		// Another writer changes the run while c runs: c's record is refused, yet the worker
		// keeps the handler, past c, for the run's next execution.
		refuseNextWrite(run)
		Expect(os.WriteFile(gate, nil, 0o644)).To(Succeed())
		done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 30*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`"c"`))
		Expect(marksOf(marks)).To(Equal("a\nc\nc\n"), "c's record was lost with the refused write, so c ran again")
		Expect(entry(done, "c").State).To(Equal(workflowsv1alpha1.EntryState("Completed")), "a stale handler would have gone on past c without recording it")
	})

	It("resumes a kept handler at step 1,000 without replaying anything", func() {
		name := dropPython(`
WORKFLOW_NAME = "%[1]s"

async def handler(inp, ctx):
    for i in range(999):
        await ctx.step(f"s-{i:04d}", lambda: None, batched=True)
    await ctx.sleep("pause", 1)
    return await ctx.step("s-0999", lambda: "last")
`)
		waitLoaded("default", name)
		before := manager.python.Counts()
		done := waitPhase(createRun(name, nil), workflowsv1alpha1.PhaseSucceeded, time.Minute)
		Expect(outputOf(done)).To(MatchJSON(`"last"`))
		after := manager.python.Counts()
		Expect(after.Hits-before.Hits).To(BeNumerically(">=", 1), "the execution after the pause resumed the kept handler")
		Expect(after.ReplayedTurns-before.ReplayedTurns).To(BeZero(), "no turn was answered from the journal: the 1,000 recorded steps were not replayed")
		Expect(done.Status.History.Entries).To(BeEquivalentTo(1001))
	})

	It("lets only the namespaces a file's NAMESPACES lists start it", func() {
		ns := "py-team-" + rand.String(5)
		Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		name := dropPython(`
WORKFLOW_NAME = "%[1]s"
NAMESPACES = ["` + ns + `"]

async def handler(inp, ctx):
    return "allowed"
`)
		waitLoaded(ns, name)
		expectFailed(createRun(name, nil), "UnknownWorkflow", "may be started only in the namespaces its NAMESPACES lists: "+ns)
		allowed := createRun(name, nil, func(r *workflowsv1alpha1.WorkflowRun) { r.Namespace = ns })
		Expect(outputOf(waitPhase(allowed, workflowsv1alpha1.PhaseSucceeded, 20*time.Second))).To(MatchJSON(`"allowed"`))
	})

	It("refuses Python source in a WorkflowDefinition with a reason that says so", func() {
		text, err := os.ReadFile(filepath.Join("..", "workflows", "nightly_report.py"))
		Expect(err).NotTo(HaveOccurred())
		def := createDefinition("python-"+rand.String(5), string(text))
		ready := definitionReady(def, workflowsv1alpha1.ReasonPythonNotSupported)
		Expect(readyMessage(ready)).To(ContainSubstring("a WorkflowDefinition is Starlark"))
	})
})

// expectFailedWithin is expectFailed with a longer wait, for runs that fail only after
// several executions.
func expectFailedWithin(run *workflowsv1alpha1.WorkflowRun, reason, fragment string, timeout time.Duration) *workflowsv1alpha1.WorkflowRun {
	GinkgoHelper()
	waitPhase(run, workflowsv1alpha1.PhaseFailed, timeout)
	return expectFailed(run, reason, fragment)
}

// readyMessage is the message of a definition's Ready condition.
func readyMessage(def *workflowsv1alpha1.WorkflowDefinition) string {
	for _, c := range def.Status.Conditions {
		if c.Type == workflowsv1alpha1.ConditionReady {
			return c.Message
		}
	}
	return ""
}

var _ = Describe("A workflow that starts only from its webhooks", func() {
	It("fails a run no webhook delivery made, and runs one a delivery made", func() {
		name := dropPython(`
from api.webhooks import WebhookSpec

WORKFLOW_NAME = "%[1]s"
WEBHOOKS = [WebhookSpec(slug="%[1]s".replace("_", "-"), auth="none", webhook_only=True)]

async def handler(inp, ctx):
    return inp["webhook"]["slug"]
`)
		waitLoaded("default", name)
		slug := strings.ReplaceAll(name, "_", "-")
		envelope := map[string]any{"webhook": map[string]any{"slug": slug}}
		expectFailed(createRun(name, envelope), workflowsv1alpha1.ReasonNotStartedByWebhook, "starts only from its webhooks")
		delivered := createRun(name, envelope, func(r *workflowsv1alpha1.WorkflowRun) {
			r.Labels = map[string]string{workflowsv1alpha1.LabelWebhook: slug} // as the manager's webhook server writes it
		})
		Expect(outputOf(waitPhase(delivered, workflowsv1alpha1.PhaseSucceeded, 20*time.Second))).To(MatchJSON(`"` + slug + `"`))
	})
})
