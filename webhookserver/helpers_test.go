package webhookserver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// Timeouts of Eventually against the controller.
const (
	waitFor = 15 * time.Second
	pollAt  = 50 * time.Millisecond
)

var (
	seq atomic.Int64
	// sensitive collects every secret and signature the suite sends, so the leak check can
	// grep the cluster for all of them.
	sensitiveMu sync.Mutex
	sensitive   = map[string]bool{}
)

// remember records s as a value that must never be persisted, and returns it. Blank values
// are not worth a check.
func remember(s string) string {
	if strings.TrimSpace(s) == "" {
		return s
	}
	sensitiveMu.Lock()
	defer sensitiveMu.Unlock()
	sensitive[s] = true
	return s
}

// sensitiveValues returns everything remembered so far.
func sensitiveValues() []string {
	sensitiveMu.Lock()
	defer sensitiveMu.Unlock()
	out := make([]string, 0, len(sensitive))
	for s := range sensitive {
		out = append(out, s)
	}
	return out
}

// unique returns prefix with a suite-wide unique suffix: slugs are cluster-wide.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// createNamespace creates the namespace name.
func createNamespace(name string) string {
	Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// newNamespace creates a fresh namespace for one spec.
func newNamespace() string { return createNamespace(unique("wh")) }

// createSecret creates a Secret holding data and remembers its values as sensitive.
func createSecret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(remember(v))
	}
	Expect(k8sClient.Create(context.Background(), s)).To(Succeed())
	return s
}

// endpointSpec is a github endpoint for webhook_echo, signed with key "secret" of secrets.
func endpointSpec(slug string, secrets ...string) workflowsv1alpha1.WebhookEndpointSpec {
	spec := workflowsv1alpha1.WebhookEndpointSpec{
		Slug: slug, WorkflowName: "webhook_echo", Provider: workflowsv1alpha1.ProviderGitHub,
		TriggerKey: "X-GitHub-Delivery", Auth: &workflowsv1alpha1.WebhookAuth{},
	}
	for _, s := range secrets {
		spec.Auth.SecretRefs = append(spec.Auth.SecretRefs, workflowsv1alpha1.SecretKeyRef{Name: s, Key: "secret"})
	}
	return spec
}

// createEndpoint creates a WebhookEndpoint in ns.
func createEndpoint(ns, name string, spec workflowsv1alpha1.WebhookEndpointSpec) *workflowsv1alpha1.WebhookEndpoint {
	ep := &workflowsv1alpha1.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	Expect(k8sClient.Create(context.Background(), ep)).To(Succeed())
	return ep
}

// updateEndpoint applies change to the endpoint's spec, retrying on conflicts.
func updateEndpoint(ep *workflowsv1alpha1.WebhookEndpoint, change func(*workflowsv1alpha1.WebhookEndpointSpec)) {
	Eventually(func() error {
		cur := &workflowsv1alpha1.WebhookEndpoint{}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ep), cur); err != nil {
			return err
		}
		change(&cur.Spec)
		return k8sClient.Update(context.Background(), cur)
	}, waitFor, pollAt).Should(Succeed())
}

// observedReady checks that the controller has observed the endpoint's current generation
// and returns its Ready condition.
func observedReady(g Gomega, ep *workflowsv1alpha1.WebhookEndpoint) metav1.Condition {
	cur := &workflowsv1alpha1.WebhookEndpoint{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ep), cur)).To(Succeed())
	g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
	c := meta.FindStatusCondition(cur.Status.Conditions, workflowsv1alpha1.ConditionReady)
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.ObservedGeneration).To(Equal(cur.Generation))
	return *c
}

// expectReady waits until the endpoint's Ready condition has status and reason, and
// returns it.
func expectReady(ep *workflowsv1alpha1.WebhookEndpoint, status metav1.ConditionStatus, reason string) metav1.Condition {
	GinkgoHelper()
	var cond metav1.Condition
	Eventually(func(g Gomega) {
		cond = observedReady(g, ep)
		g.Expect(cond.Status).To(Equal(status), cond.Message)
		g.Expect(cond.Reason).To(Equal(reason), cond.Message)
	}, waitFor, pollAt).Should(Succeed())
	return cond
}

// getEndpoint reads the endpoint as stored.
func getEndpoint(ep *workflowsv1alpha1.WebhookEndpoint) *workflowsv1alpha1.WebhookEndpoint {
	cur := &workflowsv1alpha1.WebhookEndpoint{}
	Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ep), cur)).To(Succeed())
	return cur
}

// readyEndpoint creates a Secret holding secret and a github endpoint using it, and waits
// until it is Ready.
func readyEndpoint(ns, slug, secret string) *workflowsv1alpha1.WebhookEndpoint {
	createSecret(ns, slug+"-secret", map[string]string{"secret": secret})
	ep := createEndpoint(ns, slug, endpointSpec(slug, slug+"-secret"))
	expectReady(ep, metav1.ConditionTrue, "Ready")
	return ep
}

// httpClient keeps connections open for concurrent specs, as a provider's client would.
var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// delivery is one HTTP request to a webhook.
type delivery struct {
	server  string // base URL; api when empty
	method  string // POST when empty
	slug    string
	query   string
	header  http.Header
	body    []byte
	chunked bool // send without Content-Length
}

// response is what the server answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorCode returns the code of an error answer.
func (r response) errorCode() string {
	var e apierror.Body
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

// run returns the run named by an accepted answer.
func (r response) run() WebhookResponse {
	var out WebhookResponse
	Expect(json.Unmarshal(r.body, &out)).To(Succeed(), string(r.body))
	return out
}

// send performs d.
func send(d delivery) response {
	base := d.server
	if base == "" {
		base = api.URL
	}
	method := d.method
	if method == "" {
		method = http.MethodPost
	}
	url := base + "/api/webhooks/" + d.slug
	if d.query != "" {
		url += "?" + d.query
	}
	var body io.Reader = bytes.NewReader(d.body)
	if d.chunked {
		body = io.MultiReader(bytes.NewReader(d.body)) // hides the length: chunked encoding
	}
	req, err := http.NewRequest(method, url, body)
	Expect(err).NotTo(HaveOccurred())
	for k, vs := range d.header {
		req.Header[k] = vs
	}
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// hmacSHA256 returns the HMAC-SHA256 of the parts under key.
func hmacSHA256(key []byte, parts ...[]byte) []byte {
	mac := hmac.New(sha256.New, key)
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)
}

// githubHeader returns the headers of a GitHub JSON delivery signed with secret.
func githubHeader(secret, deliveryID string, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-GitHub-Event", "issues")
	h.Set("X-GitHub-Delivery", deliveryID)
	h.Set("X-Hub-Signature-256", remember("sha256="+hex.EncodeToString(hmacSHA256([]byte(secret), body))))
	return h
}

// github is a GitHub JSON delivery to slug signed with secret.
func github(slug, secret, deliveryID string, body []byte) delivery {
	return delivery{slug: slug, header: githubHeader(secret, deliveryID, body), body: body}
}

// standardHeader returns Standard Webhooks headers signed with secret ("whsec_" or raw).
func standardHeader(secret, id string, at time.Time, body []byte) http.Header {
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		var err error
		key, err = base64.StdEncoding.DecodeString(rest)
		Expect(err).NotTo(HaveOccurred())
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	sig := base64.StdEncoding.EncodeToString(hmacSHA256(key, []byte(id), []byte("."), []byte(ts), []byte("."), body))
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", ts)
	h.Set("Webhook-Signature", remember("v1,"+sig))
	return h
}

// runsOf lists, past any cache, the runs a slug's deliveries created in ns.
func runsOf(ns, slug string) []workflowsv1alpha1.WorkflowRun {
	var list workflowsv1alpha1.WorkflowRunList
	Expect(k8sClient.List(context.Background(), &list, client.InNamespace(ns),
		client.MatchingLabels{workflowsv1alpha1.LabelWebhook: slug})).To(Succeed())
	return list.Items
}

// issueBody is a small GitHub issues payload.
func issueBody(n int) []byte {
	return []byte(fmt.Sprintf(`{"action":"opened","issue":{"number":%d,"title":"Crash on start"},"repository":{"full_name":"centaur-dev/demo"}}`, n))
}

// expectRefused asserts an error answer with status and code, in the documented JSON shape.
// expectSameAnswer checks that two refusals are one answer (status, code, message and Allow),
// the one given.
func expectSameAnswer(a, b response, status int, code string) {
	GinkgoHelper()
	expectRefused(a, status, code)
	expectRefused(b, status, code)
	Expect(string(a.body)).To(Equal(string(b.body)))
	Expect(a.header.Get("Allow")).To(Equal(b.header.Get("Allow")))
}

func expectRefused(r response, status int, code string) {
	GinkgoHelper()
	Expect(r.status).To(Equal(status), string(r.body))
	Expect(r.header.Get("Content-Type")).To(HavePrefix("application/json"))
	var e apierror.Body
	Expect(json.Unmarshal(r.body, &e)).To(Succeed(), string(r.body))
	Expect(e.Error.Code).To(Equal(code))
	Expect(e.Error.Message).NotTo(BeEmpty())
}
