package console_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/webhookserver/runindex"
)

// These specs check over plain HTTP what a browser does not show: that the console refuses
// what it must refuse, and that a refusal changes nothing.
var _ = Describe("The console over HTTP", func() {
	It("redirects / to the console and the console to sign-in, and serves its assets", func() {
		v := newVisitor()
		p := v.get("/")
		Expect(p.status).To(Equal(http.StatusFound))
		Expect(p.header.Get("Location")).To(Equal("/console/runs"))
		p = v.get("/console/runs?phase=Waiting")
		Expect(p.status).To(Equal(http.StatusSeeOther))
		Expect(p.header.Get("Location")).To(Equal("/console/sign-in?next=%2Fconsole%2Fruns%3Fphase%3DWaiting"))

		p = v.get("/console/sign-in")
		Expect(p.status).To(Equal(http.StatusOK))
		Expect(p.header.Get("Content-Security-Policy")).To(ContainSubstring("script-src 'self'"))
		Expect(p.header.Get("X-Frame-Options")).To(Equal("DENY"))
		Expect(p.body).NotTo(MatchRegexp(`(?i)(src|href)="https?://`), "every asset comes from the console itself")

		css := v.get(assetPath(p.body, "console.css"))
		Expect(css.status).To(Equal(http.StatusOK))
		Expect(css.header.Get("Content-Type")).To(HavePrefix("text/css"))
		Expect(css.header.Get("Cache-Control")).To(ContainSubstring("immutable"))
		Expect(v.get("/console/static/nope.js").status).To(Equal(http.StatusNotFound))
		Expect(v.get("/console/no-such-page").status).To(Equal(http.StatusNotFound))
	})

	It("keeps the REST API and the webhooks where they were", func() {
		v := newVisitor()
		p := v.get("/api/workflows")
		Expect(p.status).To(Equal(http.StatusUnauthorized))
		Expect(p.header.Get("Content-Type")).To(Equal("application/json"))
		Expect(v.get("/api/openapi.json").status).To(Equal(http.StatusOK))
	})

	It("refuses a state change without the session's CSRF token or from another origin, and changes nothing", func() {
		name := startRun("countdown", map[string]int{"seconds": 3600}, "default")
		Eventually(phaseOf("default", name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseSleeping))
		v := newVisitor()
		token := v.signIn(adminKey)
		cancelPath := runPath("default", name) + "/cancel"

		Expect(v.post(cancelPath, url.Values{}).status).To(Equal(http.StatusForbidden))
		Expect(v.post(cancelPath, url.Values{"csrf": {"forged"}}).status).To(Equal(http.StatusForbidden))
		p := v.post(cancelPath, url.Values{"csrf": {token}}, "Origin", "http://evil.example")
		Expect(p.status).To(Equal(http.StatusForbidden))
		Expect(p.body).To(ContainSubstring("not sent from a page of this console"))
		other := newVisitor()
		other.signIn(adminKey)
		Expect(other.post(cancelPath, url.Values{"csrf": {token}}).status).To(Equal(http.StatusForbidden), "a token belongs to one sign-in")
		Consistently(func() bool { return getRun("default", name).Spec.Cancel }, time.Second, pollAt).Should(BeFalse())

		p = v.post(cancelPath, url.Values{"csrf": {token}})
		Expect(p.status).To(Equal(http.StatusSeeOther))
		Expect(p.header.Get("Location")).To(Equal(runPath("default", name) + "?notice=cancel-requested"))
		Eventually(phaseOf("default", name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseCancelled))

		p = v.post(cancelPath, url.Values{"csrf": {token}})
		Expect(p.status).To(Equal(http.StatusSeeOther), "cancelling a cancelled run is fine, as in the REST API")
	})

	It("confines a key to its namespaces, on pages, actions and live streams", func() {
		name := startRun("countdown", map[string]int{"seconds": 3600}, "default")
		Eventually(phaseOf("default", name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseSleeping))
		v := newVisitor()
		token := v.signIn(teamBKey)

		p := v.get("/console/runs")
		Expect(p.status).To(Equal(http.StatusOK))
		Expect(p.body).NotTo(ContainSubstring(name))
		p = v.get("/console/runs?namespace=default")
		Expect(p.status).To(Equal(http.StatusForbidden))
		Expect(p.body).To(ContainSubstring("may not act in namespace"))

		p = v.get(runPath("default", name))
		Expect(p.status).To(Equal(http.StatusForbidden))
		Expect(p.body).To(ContainSubstring("it may act in: team-b"))
		Expect(p.body).NotTo(ContainSubstring("countdown"), "a refused page shows nothing of the run")

		Expect(v.post(runPath("default", name)+"/cancel", url.Values{"csrf": {token}}).status).To(Equal(http.StatusForbidden))
		p = v.post("/console/workflows/hello/runs", url.Values{"csrf": {token}, "namespace": {"default"}, "input": {`{"name":"x"}`}})
		Expect(p.status).To(Equal(http.StatusUnprocessableEntity))
		Expect(p.body).To(ContainSubstring("may not act in namespace"))
		Expect(getRun("default", name).Spec.Cancel).To(BeFalse())

		Expect(v.get(runPath("default", name) + "/live").status).To(Equal(http.StatusForbidden))
		Expect(v.get(runPath("team-b", "no-such-run")).status).To(Equal(http.StatusNotFound))
	})

	It("sends a tampered, expired or foreign cookie to sign in", func() {
		v := newVisitor()
		v.signIn(adminKey)
		u, err := url.Parse(v.base + "/console/")
		Expect(err).NotTo(HaveOccurred())
		cookies := v.client.Jar.Cookies(u)
		Expect(cookies).To(HaveLen(1))
		value := []byte(cookies[0].Value)
		value[len(value)/2] ^= 1
		v.client.Jar.SetCookies(u, []*http.Cookie{{Name: console.CookieName, Value: string(value), Path: "/console/"}})
		p := v.get("/console/runs")
		Expect(p.status).To(Equal(http.StatusSeeOther))
		Expect(p.header.Get("Location")).To(ContainSubstring("why=expired"))
		Expect(p.header.Get("Set-Cookie")).To(ContainSubstring("Max-Age=0"), "the bad cookie is cleared")
	})

	It("ends the sessions of a revoked key within seconds, live streams included", func() {
		tempKey := "temp." + randomHex(16)
		withTemp := map[string]restapi.KeyEntry{"temp": {SHA256: restapi.HashKey(tempKey), Namespaces: []string{"default"}}}
		for id, e := range keys {
			withTemp[id] = e
		}
		writeKeys(withTemp)
		DeferCleanup(writeKeys, keys)
		v := newVisitor()
		Eventually(func() int {
			return v.post("/console/sign-in", url.Values{"key": {tempKey}}).status
		}, waitFor, 500*time.Millisecond).Should(Equal(http.StatusSeeOther))
		Expect(v.get("/console/runs").status).To(Equal(http.StatusOK))

		stream := openStream(v, "/console/runs/live")
		writeKeys(keys)
		Eventually(func() string {
			return v.get("/console/runs").header.Get("Location")
		}, waitFor, 500*time.Millisecond).Should(ContainSubstring("why=refused"))

		// The stream notices at its next update: make one.
		name := startRun("hello", map[string]string{"name": "revoked"}, "default")
		Eventually(phaseOf("default", name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseSucceeded))
		Eventually(stream.events, waitFor).Should(Receive(Equal("signout")))
	})

	It("shows a start form again with the reason when the input is not JSON, and starts nothing", func() {
		v := newVisitor()
		token := v.signIn(adminKey)
		before := runCount("default")
		p := v.post("/console/workflows/hello/runs", url.Values{"csrf": {token}, "namespace": {"default"}, "input": {"{\n  \"name\": Ada\n}"}})
		Expect(p.status).To(Equal(http.StatusUnprocessableEntity))
		Expect(p.body).To(ContainSubstring("The input is not valid JSON"))
		Expect(p.body).To(ContainSubstring("line 2"))
		Expect(p.body).To(ContainSubstring("  &#34;name&#34;: Ada"), "what was typed is kept")
		p = v.post("/console/workflows/no_such_workflow/runs", url.Values{"csrf": {token}, "input": {"{}"}})
		Expect(p.status).To(Equal(http.StatusUnprocessableEntity))
		Consistently(func() int { return runCount("default") }, time.Second, pollAt).Should(Equal(before))
	})

	It("signs in with a key of its own process when the session Secret is missing, and refuses a Secret it cannot use", func() {
		missing := types.NamespacedName{Namespace: "centaur-system", Name: unique("no-such-secret")}
		one, other := extraConsole(console.Deps{Secret: missing}), extraConsole(console.Deps{Secret: missing})
		v := visitorOf(one)
		v.signIn(adminKey)
		Expect(v.get("/console/workflows").status).To(Equal(http.StatusOK))
		Expect(logs.String()).To(ContainSubstring("kubectl -n centaur-system create secret generic " + missing.Name))
		// Another replica without the shared Secret cannot open this replica's cookie: it asks
		// for a new sign-in instead of failing.
		u, err := url.Parse(one + "/console/")
		Expect(err).NotTo(HaveOccurred())
		elsewhere := visitorOf(other)
		target, err := url.Parse(other + "/console/")
		Expect(err).NotTo(HaveOccurred())
		elsewhere.client.Jar.SetCookies(target, v.client.Jar.Cookies(u))
		Expect(elsewhere.get("/console/workflows").header.Get("Location")).To(ContainSubstring("why=expired"))

		short := types.NamespacedName{Namespace: "centaur-system", Name: unique("short-secret")}
		Expect(k8sClient.Create(context.Background(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: short.Namespace, Name: short.Name},
			Data:       map[string][]byte{console.SecretKey: []byte("too-short")},
		})).To(Succeed())
		p := visitorOf(extraConsole(console.Deps{Secret: short})).post("/console/sign-in", url.Values{"key": {adminKey}})
		Expect(p.status).To(Equal(http.StatusServiceUnavailable))
		Expect(p.body).To(ContainSubstring("at least 32 bytes"))
		Expect(p.header.Get("Set-Cookie")).To(BeEmpty())
	})

	It("links a run's page to its trace when a trace URL is configured, and not otherwise", func() {
		name := startRun("hello", map[string]string{"name": "Trace"}, "default")
		Eventually(phaseOf("default", name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseSucceeded))
		sc := tracing.RunSpanContext(getRun("default", name))
		traced := visitorOf(extraConsole(console.Deps{TraceURL: "https://traces.example.com/trace/{trace_id}?span={span_id}"}))
		traced.signIn(adminKey)
		p := traced.get(runPath("default", name))
		Expect(p.status).To(Equal(http.StatusOK))
		Expect(p.body).To(ContainSubstring(`href="https://traces.example.com/trace/` + sc.TraceID().String() + `?span=` + sc.SpanID().String() + `"`))
		Expect(p.body).To(ContainSubstring("open the run's trace"))

		plain := newVisitor()
		plain.signIn(adminKey)
		Expect(plain.get(runPath("default", name)).body).NotTo(ContainSubstring("traces.example.com"))
	})

	It("keeps live streams to their own budget, apart from pages", func() {
		base := extraConsole(console.Deps{Index: runindex.New(), MaxStreams: 2})
		v := visitorOf(base)
		v.signIn(adminKey)
		for range 2 {
			s := openStream(v, "/console/runs/live")
			DeferCleanup(s.close)
		}
		p := v.get("/console/runs/live")
		Expect(p.status).To(Equal(http.StatusServiceUnavailable))
		Expect(p.header.Get("Retry-After")).NotTo(BeEmpty())
		Expect(v.get("/console/runs").status).To(Equal(http.StatusOK), "pages do not wait for streams")
	})
})

// assetPath finds the versioned URL of a static file in a page.
func assetPath(body, name string) string {
	GinkgoHelper()
	i := strings.Index(body, "/console/static/"+name)
	Expect(i).To(BeNumerically(">=", 0), "the page links no %s", name)
	end := strings.IndexByte(body[i:], '"')
	return strings.ReplaceAll(body[i:i+end], "&amp;", "&")
}

// runCount is how many runs a namespace holds.
func runCount(namespace string) int {
	GinkgoHelper()
	var list workflowsv1alpha1.WorkflowRunList
	Expect(k8sClient.List(context.Background(), &list, client.InNamespace(namespace))).To(Succeed())
	return len(list.Items)
}

// eventStream is an open live stream; events receives the name of each event it sends.
type eventStream struct {
	events chan string
	close  func()
}

// openStream opens a live stream as the visitor and reads its events in the background.
func openStream(v *visitor, path string) *eventStream {
	GinkgoHelper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.base+path, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := v.client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	Expect(resp.Header.Get("Content-Type")).To(HavePrefix("text/event-stream"))
	s := &eventStream{events: make(chan string, 100), close: func() { cancel(); _ = resp.Body.Close() }}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				select {
				case s.events <- name:
				default:
				}
			}
		}
	}()
	return s
}
