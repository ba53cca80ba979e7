package console_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
	"github.com/centaur-dev/workflow-operator/webhookserver/runindex"
)

// Figures. These specs measure what the issue sets limits on and print each figure beside its
// limit (also into artifacts/console/figures.txt). Every figure fails its spec past a loose
// bound, ten times the limit (see figure), that catches a broken mechanism (a full list per
// page, a quadratic render) and not a busy machine.
var _ = Describe("The console at scale", Label("browser"), func() {
	It("renders the timeline of a 1,000-step run in under a second", func() {
		name := thousandStepRun()
		path := runPath("default", name)

		v := newVisitor()
		v.signIn(adminKey)
		server := medianOf(5, func() { Expect(v.get(path).status).To(Equal(http.StatusOK)) })

		t := openTab()
		t.signIn(adminKey)
		nav := t.navigationTiming(path)
		Expect(eval[int](t, `document.querySelectorAll("ol.timeline li.entry").length`)).To(Equal(1000))
		Expect(t.text("#h-timeline + p")).To(ContainSubstring("1000 entries, 40 retries"))
		figure("1,000-step run page, served (median of 5)", server, time.Second)
		figure("1,000-step run page in Chromium, until load", nav.load, time.Second)
		figure("1,000-step run page in Chromium, until first paint", nav.paint, time.Second)
	})

	It("keeps the runs page fast with 10,000 runs in a namespace", func() {
		// A console of its own whose index holds 10,000 runs of one namespace, as the watch
		// of a manager with that many runs fills it: one in a hundred failed.
		index := runindex.New()
		heap := heapAfter(func() { fillIndex(index, "default", 10000) })
		base := extraConsole(console.Deps{Index: index})
		v := visitorOf(base)
		v.signIn(adminKey)

		first := medianOf(20, func() { Expect(v.get("/console/runs").body).To(ContainSubstring("50 shown of 10000 runs")) })
		failed := medianOf(20, func() { Expect(v.get("/console/runs?phase=Failed").body).To(ContainSubstring("run-09900")) })
		nothing := medianOf(20, func() {
			Expect(v.get("/console/runs?q=no-such-run").body).To(ContainSubstring("No runs match the filters"))
		})
		deep := v.get("/console/runs")
		for range 100 {
			deep = v.get(olderLink(deep.body))
		}
		Expect(deep.body).To(ContainSubstring("run-04999"), "page 101 starts 5,000 runs down")
		deepest := medianOf(20, func() { v.get(olderLink(deep.body)) })
		figure("runs page of 10,000 runs, newest 50 (median of 20)", first, 100*time.Millisecond)
		figure("runs page of 10,000 runs, phase Failed: 1 in 100 (median of 20)", failed, 100*time.Millisecond)
		figure("runs page of 10,000 runs, a search matching none (median of 20)", nothing, 100*time.Millisecond)
		figure("runs page of 10,000 runs, page 102 (median of 20)", deepest, 100*time.Millisecond)
		figureText("run index memory for 10,000 runs", fmt.Sprintf("%.1f MiB", float64(heap)/(1<<20)), "report")

		t := openTabAt(base)
		t.signIn(adminKey)
		nav := t.navigationTiming("/console/runs")
		figure("runs page of 10,000 runs in Chromium, until load", nav.load, time.Second)
		t.shot("runs-10000")
	})

	It("shows webhook endpoints with their readiness, the URL for the provider and recent deliveries", func() {
		slug, broken := unique("issues"), unique("broken")
		secret := randomHex(16)
		Expect(k8sClient.Create(context.Background(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: slug + "-secret"},
			Data:       map[string][]byte{"secret": []byte(secret)},
		})).To(Succeed())
		ready := createEndpoint(slug, slug+"-secret")
		createEndpoint(broken, "no-such-secret")
		Eventually(func() bool {
			return meta.IsStatusConditionTrue(getEndpoint(ready).Status.Conditions, workflowsv1alpha1.ConditionReady)
		}, waitFor, pollAt).Should(BeTrue())

		body := []byte(`{"action":"opened","issue":{"number":7,"title":"Crash on start"}}`)
		req, err := http.NewRequest(http.MethodPost, baseURL+"/api/webhooks/"+slug, bytes.NewReader(body))
		Expect(err).NotTo(HaveOccurred())
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "issues")
		req.Header.Set("X-GitHub-Delivery", unique("delivery"))
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Body.Close()).To(Succeed())
		Expect(resp.StatusCode).To(Equal(http.StatusAccepted))

		t := openTab()
		t.signIn(adminKey)
		t.open("/console/webhooks")
		Expect(t.text("#wh-" + slug + " h2")).To(ContainSubstring("Ready"))
		Expect(t.text("#wh-" + slug + " code.url")).To(Equal(baseURL + "/api/webhooks/" + slug))
		t.eventuallyTextAfterReload("#wh-"+slug+" tbody", "hello")
		Expect(t.text("#wh-"+slug+" tbody")).To(ContainSubstring("InvalidInput"), "the delivery's run shows its outcome")
		Expect(t.text("#wh-" + broken + " h2")).To(ContainSubstring("Not ready"))
		Expect(t.text("#wh-" + broken)).To(ContainSubstring("SecretNotFound"))
		t.shot("webhooks")
	})
})

// thousandStepRun makes a finished run whose journal holds 1,000 entries: steps, 20 of them
// retried twice, and a sleep every hundred. Running 1,000 real steps takes the engine about
// 40 s (one status write per step), so the run names an unregistered workflow, the
// controller fails it (a final phase it never touches again), and the spec then writes the
// journal the engine would have written.
func thousandStepRun() string {
	GinkgoHelper()
	ctx := context.Background()
	run := &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: unique("thousand-steps")},
		Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "journal_fixture"},
	}
	Expect(k8sClient.Create(ctx, run)).To(Succeed())
	Eventually(phaseOf("default", run.Name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseFailed))

	run = getRun("default", run.Name)
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	at := start
	journal := make([]workflowsv1alpha1.JournalEntry, 1000)
	for i := range journal {
		e := workflowsv1alpha1.JournalEntry{Name: fmt.Sprintf("item-%04d", i), Kind: "Step", State: "Completed", Attempts: 1}
		took := 20 * time.Millisecond
		switch {
		case i%100 == 99:
			e.Kind, e.Attempts, took = "Sleep", 0, time.Second
		case i%50 == 10:
			e.Attempts, took = 3, 1500*time.Millisecond
		}
		e.StartedAt, e.FinishedAt = microTime(at), microTime(at.Add(took))
		if e.Kind == "Step" {
			e.Result = &apiextensionsv1.JSON{Raw: fmt.Appendf(nil, `{"item":%d,"ok":true}`, i)}
		} else {
			e.WakeAt = e.FinishedAt
		}
		journal[i] = e
		at = at.Add(took + 5*time.Millisecond)
	}
	started, finished := metav1.NewTime(start), metav1.NewTime(at.Truncate(time.Second).Add(time.Second))
	run.Status = workflowsv1alpha1.WorkflowRunStatus{
		Phase: workflowsv1alpha1.PhaseSucceeded, StartedAt: &started, FinishedAt: &finished, Journal: journal,
		Output: &apiextensionsv1.JSON{Raw: []byte(`{"items":1000}`)}, ObservedGeneration: run.Generation,
	}
	Expect(k8sClient.Status().Update(ctx, run)).To(Succeed())
	return run.Name
}

func microTime(t time.Time) *metav1.MicroTime {
	m := metav1.NewMicroTime(t)
	return &m
}

// fillIndex puts n runs of namespace into index, newest last, one in a hundred failed.
func fillIndex(index *runindex.Index, namespace string, n int) {
	epoch := time.Now().Add(-time.Duration(n) * time.Second)
	for i := range n {
		r := runindex.Run{
			Namespace: namespace, Name: fmt.Sprintf("run-%05d", i), Workflow: "hello",
			Phase: workflowsv1alpha1.PhaseSucceeded, CreatedAt: epoch.Add(time.Duration(i) * time.Second),
		}
		r.StartedAt, r.FinishedAt = r.CreatedAt, r.CreatedAt.Add(time.Second)
		if i%100 == 0 {
			r.Phase, r.Reason = workflowsv1alpha1.PhaseFailed, "StepFailed"
		}
		index.Upsert(r)
	}
	index.MarkSynced()
}

// heapAfter is how much the live heap grew through f.
func heapAfter(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return after.HeapAlloc - before.HeapAlloc
}

// olderLink is the "Older runs" link of a runs page.
func olderLink(body string) string {
	GinkgoHelper()
	const marker = `" rel="next"`
	end := bytes.Index([]byte(body), []byte(marker))
	Expect(end).To(BeNumerically(">", 0), "the page has no older page")
	start := bytes.LastIndex([]byte(body[:end]), []byte(`href="`)) + len(`href="`)
	return html(body[start:end])
}

// html undoes the escaping of an attribute value.
func html(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("&amp;"), []byte("&")))
}

// medianOf runs f n times and returns the median duration.
func medianOf(n int, f func()) time.Duration {
	took := make([]time.Duration, n)
	for i := range took {
		start := time.Now()
		f()
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	return took[n/2]
}

// figure reports a measured duration beside its limit, and fails the spec past ten times the
// limit: a figure that far off is a broken mechanism, not a slow machine.
func figure(what string, d, limit time.Duration) {
	GinkgoHelper()
	verdict := "met"
	if d > limit {
		verdict = "MISSED"
	}
	figureText(what, d.Round(100*time.Microsecond).String(), fmt.Sprintf("limit %s: %s", limit, verdict))
	Expect(d).To(BeNumerically("<", 10*limit), "%s: %s, ten times its limit of %s or more", what, d, limit)
}

// figureText prints a figure and appends it to artifacts/console/figures.txt.
func figureText(what, value, limit string) {
	line := fmt.Sprintf("%-70s %12s   %s\n", what, value, limit)
	fmt.Fprint(GinkgoWriter, line)
	AddReportEntry("figure", line)
	dir := artifactsDir()
	if os.MkdirAll(dir, 0o755) == nil {
		if f, err := os.OpenFile(filepath.Join(dir, "figures.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			_, _ = fmt.Fprintf(f, "%s  %s", time.Now().UTC().Format(time.RFC3339), line)
			_ = f.Close()
		}
	}
}

// navTiming is the browser's own account of a page load.
type navTiming struct {
	// response is when the document's first byte arrived; paint the first contentful paint;
	// load the load event's end. All from the start of the navigation.
	response, paint, load time.Duration
}

// navigationTiming loads path and reads the Navigation Timing and Paint Timing entries.
func (t *tab) navigationTiming(path string) navTiming {
	GinkgoHelper()
	t.do(chromedp.Navigate(t.base + path))
	raw := eval[[]byte](t, `(() => {
		const n = performance.getEntriesByType("navigation")[0];
		const p = performance.getEntriesByName("first-contentful-paint")[0];
		return {response: n.responseStart, paint: p ? p.startTime : 0, load: n.loadEventEnd};
	})()`)
	var ms struct{ Response, Paint, Load float64 }
	Expect(json.Unmarshal(raw, &ms)).To(Succeed())
	toDur := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	return navTiming{response: toDur(ms.Response), paint: toDur(ms.Paint), load: toDur(ms.Load)}
}

// createEndpoint creates a GitHub WebhookEndpoint for slug in default that starts hello with
// the signing secret in key "secret" of Secret secretName.
func createEndpoint(slug, secretName string) *workflowsv1alpha1.WebhookEndpoint {
	GinkgoHelper()
	ep := &workflowsv1alpha1.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: slug},
		Spec: workflowsv1alpha1.WebhookEndpointSpec{
			Slug: slug, WorkflowName: "hello", Provider: workflowsv1alpha1.ProviderGitHub, TriggerKey: "X-GitHub-Delivery",
			Auth: &workflowsv1alpha1.WebhookAuth{SecretRefs: []workflowsv1alpha1.SecretKeyRef{{Name: secretName, Key: "secret"}}},
		},
	}
	Expect(k8sClient.Create(context.Background(), ep)).To(Succeed())
	return ep
}

// getEndpoint reads an endpoint from the API server.
func getEndpoint(ep *workflowsv1alpha1.WebhookEndpoint) *workflowsv1alpha1.WebhookEndpoint {
	GinkgoHelper()
	cur := &workflowsv1alpha1.WebhookEndpoint{}
	Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ep), cur)).To(Succeed())
	return cur
}
