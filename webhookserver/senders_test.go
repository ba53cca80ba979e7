package webhookserver

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// The senders beyond GitHub sign their deliveries with each provider's own published library
// (test/webhook-senders, installed by hack/install-webhook-senders.sh, which `make test`
// runs): what the endpoint accepts is what the provider's code produces, not this package's
// idea of it. Slack publishes no signer, only its verifier: there the test signs and Slack's
// code judges, and the endpoint must judge alike; so for Linear, whose @linear/sdk verifies.

// sendersDir holds the providers' npm libraries and sign.mjs.
var sendersDir = filepath.Join("..", "test", "webhook-senders")

// senderJob is one job for sign.mjs; see its header comment.
type senderJob struct {
	Sender    string `json:"sender"`
	Payload   string `json:"payload"`
	Secret    string `json:"secret"`
	Timestamp int64  `json:"timestamp,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// senderResult is sign.mjs's answer to one job.
type senderResult struct {
	Header string `json:"header"`
	Valid  bool   `json:"valid"`
	Reason string `json:"reason"`
}

// providerLibraries runs the jobs through the providers' libraries with Node, in one process.
func providerLibraries(jobs ...senderJob) []senderResult {
	GinkgoHelper()
	_, err := os.Stat(filepath.Join(sendersDir, "node_modules", ".centaur-lock-sha256"))
	Expect(err).NotTo(HaveOccurred(), "the providers' npm libraries are not installed: run `make webhook-senders` (bash hack/install-webhook-senders.sh)")
	in, err := json.Marshal(jobs)
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command("node", "sign.mjs")
	cmd.Dir = sendersDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), stderr.String())
	var results []senderResult
	Expect(json.Unmarshal(out, &results)).To(Succeed(), string(out))
	Expect(results).To(HaveLen(len(jobs)))
	return results
}

// signedBy is a JSON delivery to slug whose header name carries the value a library made.
func signedBy(slug, name, value string, body []byte, extra ...string) delivery {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(name, remember(value))
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return delivery{slug: slug, header: h, body: body}
}

// hmacEndpoint creates a Secret holding secret and an hmac endpoint with settings, and waits
// until it is Ready.
func hmacEndpoint(ns, slug, secret string, settings workflowsv1alpha1.HMACSettings, change func(*workflowsv1alpha1.WebhookEndpointSpec)) {
	GinkgoHelper()
	createSecret(ns, slug+"-secret", map[string]string{"secret": secret})
	spec := endpointSpec(slug, slug+"-secret")
	spec.Provider, spec.TriggerKey, spec.Auth.HMAC = workflowsv1alpha1.ProviderHMAC, "", &settings
	if change != nil {
		change(&spec)
	}
	expectReady(createEndpoint(ns, slug, spec), metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
}

// expectAcceptedThenDuplicate checks that first starts a run (202) and again answers 200 with
// the same run, and returns the run's name.
func expectAcceptedThenDuplicate(first, again response) string {
	GinkgoHelper()
	Expect(first.status).To(Equal(http.StatusAccepted), string(first.body))
	Expect(again.status).To(Equal(http.StatusOK), string(again.body))
	Expect(again.run().ID).To(Equal(first.run().ID))
	Expect(again.run().Duplicate).To(BeTrue())
	return first.run().ID
}

// expectUnauthorized checks that every answer is the generic 401.
func expectUnauthorized(answers ...response) {
	GinkgoHelper()
	for _, a := range answers {
		expectRefused(a, http.StatusUnauthorized, apierror.CodeUnauthorized)
	}
}

var _ = Describe("Senders beyond GitHub, signed by their own libraries", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("verifies Stripe's Stripe-Signature as the stripe package makes it, retries included, and refuses stale ones", func() {
		slug, secret := unique("stripe"), "whsec_stripe_test_secret"
		hmacEndpoint(ns, slug, secret, workflowsv1alpha1.HMACSettings{Header: "Stripe-Signature", SignatureKey: "v1", TimestampKey: "t",
			SignedTemplate: "{timestamp}.{body}"}, func(s *workflowsv1alpha1.WebhookEndpointSpec) { s.TriggerBodyField = "id" })
		body := []byte(`{"id":"evt_1Q","object":"event","type":"invoice.paid","data":{"object":{"id":"in_1"}}}`)
		now := time.Now().Unix()
		sigs := providerLibraries(
			senderJob{Sender: "stripe", Payload: string(body), Secret: secret, Timestamp: now},
			senderJob{Sender: "stripe", Payload: string(body), Secret: secret, Timestamp: now + 1}, // Stripe's retry: signed anew
			senderJob{Sender: "stripe", Payload: string(body), Secret: "whsec_another_secret", Timestamp: now},
			senderJob{Sender: "stripe", Payload: string(body), Secret: secret, Timestamp: now - 600},
		)
		run := expectAcceptedThenDuplicate(send(signedBy(slug, "Stripe-Signature", sigs[0].Header, body)),
			send(signedBy(slug, "Stripe-Signature", sigs[1].Header, body)))
		changed := []byte(`{"id":"evt_1Q","object":"event","type":"invoice.paid","data":{"object":{"id":"in_2"}}}`)
		expectUnauthorized(
			send(signedBy(slug, "Stripe-Signature", sigs[2].Header, body)),
			send(signedBy(slug, "Stripe-Signature", sigs[0].Header, changed)),
			send(signedBy(slug, "Stripe-Signature", sigs[3].Header, body)),
		)
		Expect(runsOf(ns, slug)).To(HaveLen(1))
		Expect(string(inputOf(ns, run).Webhook.Body)).To(ContainSubstring(`"evt_1Q"`))
		Expect(inputOf(ns, run).Webhook.Headers).NotTo(HaveKey("stripe-signature"))
	})

	It("verifies Slack deliveries as Slack's own verifier judges them, answers its URL verification, and maps retries and form bodies", func() {
		slug, secret := unique("slack"), "8f742231b10e8888abcd99yyyzzz85a5"
		hmacEndpoint(ns, slug, secret, workflowsv1alpha1.HMACSettings{Header: "X-Slack-Signature", Prefix: "v0=",
			TimestampHeader: "X-Slack-Request-Timestamp", SignedTemplate: "v0:{timestamp}:{body}"},
			func(s *workflowsv1alpha1.WebhookEndpointSpec) { s.TriggerBodyField = "event_id" })
		slack := func(key string, at int64, body []byte) (string, string) {
			ts := strconv.FormatInt(at, 10)
			return ts, "v0=" + hex.EncodeToString(hmacSHA256([]byte(key), []byte("v0:"+ts+":"), body))
		}
		event := []byte(`{"token":"x","team_id":"T1","type":"event_callback","event_id":"Ev01","event":{"type":"app_mention","text":"hi"}}`)
		challenge := []byte(`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
		form := []byte("command=%2Fdeploy&text=prod&team_id=T1&trigger_id=13345224609.738474920.8088930838d88f008e0")
		now := time.Now().Unix()
		type attempt struct {
			name, key, contentType string
			at                     int64
			signed, sent           []byte
			extra                  []string
		}
		attempts := []attempt{
			{name: "url verification", key: secret, at: now, signed: challenge},
			{name: "event", key: secret, at: now, signed: event},
			{name: "retry", key: secret, at: now + 60, signed: event, extra: []string{"X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout"}},
			{name: "slash command", key: secret, at: now, signed: form, contentType: "application/x-www-form-urlencoded"},
			{name: "wrong secret", key: "not-the-signing-secret", at: now, signed: event},
			{name: "changed body", key: secret, at: now, signed: event, sent: []byte(`{"type":"event_callback","event_id":"Ev02"}`)},
			{name: "stale", key: secret, at: now - 600, signed: event},
		}
		jobs := make([]senderJob, len(attempts))
		answers := make([]response, len(attempts))
		for i, a := range attempts {
			ts, sig := slack(a.key, a.at, a.signed)
			sent := a.signed
			if a.sent != nil {
				sent = a.sent
			}
			jobs[i] = senderJob{Sender: "slack", Payload: string(sent), Secret: secret, Timestamp: a.at, Signature: sig}
			d := signedBy(slug, "X-Slack-Signature", sig, sent, append([]string{"X-Slack-Request-Timestamp", ts}, a.extra...)...)
			if a.contentType != "" {
				d.header.Set("Content-Type", a.contentType)
			}
			answers[i] = send(d)
		}
		verdicts := providerLibraries(jobs...)
		for i, a := range attempts {
			By(a.name)
			Expect(answers[i].status == http.StatusUnauthorized).To(Equal(!verdicts[i].Valid),
				"Slack's verifier says valid=%v (%s); the endpoint answered %d %s", verdicts[i].Valid, verdicts[i].Reason, answers[i].status, answers[i].body)
		}
		Expect(verdicts[0].Valid && verdicts[1].Valid && verdicts[3].Valid).To(BeTrue(), "Slack's verifier accepts the genuine deliveries")

		Expect(answers[0].status).To(Equal(http.StatusOK))
		Expect(answers[0].header.Get("Content-Type")).To(HavePrefix("application/json"))
		Expect(json.RawMessage(answers[0].body)).To(MatchJSON(`{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}`))
		run := expectAcceptedThenDuplicate(answers[1], answers[2])
		Expect(answers[3].status).To(Equal(http.StatusAccepted), string(answers[3].body))
		expectUnauthorized(answers[4:]...)

		Expect(runsOf(ns, slug)).To(HaveLen(2), "the URL verification starts no run; the retry maps to the event's")
		Expect(string(inputOf(ns, run).Webhook.Body)).To(ContainSubstring(`"Ev01"`))
		Expect(string(inputOf(ns, answers[3].run().ID).Webhook.Body)).To(ContainSubstring(`"command":"/deploy"`))
	})

	It("echoes no challenge on an unsigned endpoint: there a URL verification is a delivery like any other", func() {
		slug := unique("unsigned")
		spec := workflowsv1alpha1.WebhookEndpointSpec{Slug: slug, WorkflowName: "webhook_echo", Provider: workflowsv1alpha1.ProviderNone}
		expectReady(createEndpoint(ns, slug, spec), metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		r := send(delivery{slug: slug, header: h, body: []byte(`{"type":"url_verification","challenge":"echo-me"}`)})
		Expect(r.status).To(Equal(http.StatusAccepted), string(r.body))
		Expect(string(r.body)).NotTo(ContainSubstring("echo-me"))
	})

	It("verifies Shopify's X-Shopify-Hmac-Sha256 as @shopify/shopify-api computes it", func() {
		slug, secret := unique("shopify"), "shpss_shopify_app_secret"
		hmacEndpoint(ns, slug, secret, workflowsv1alpha1.HMACSettings{Header: "X-Shopify-Hmac-Sha256", Encoding: "base64"},
			func(s *workflowsv1alpha1.WebhookEndpointSpec) { s.TriggerKey = "X-Shopify-Webhook-Id" })
		body := []byte(`{"id":820982911946154508,"email":"jon@example.com","total_price":"199.00"}`)
		sigs := providerLibraries(
			senderJob{Sender: "shopify", Payload: string(body), Secret: secret},
			senderJob{Sender: "shopify", Payload: string(body), Secret: "shpss_another_secret"},
		)
		id := []string{"X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "X-Shopify-Topic", "orders/create"}
		expectAcceptedThenDuplicate(send(signedBy(slug, "X-Shopify-Hmac-Sha256", sigs[0].Header, body, id...)),
			send(signedBy(slug, "X-Shopify-Hmac-Sha256", sigs[0].Header, body, id...)))
		expectUnauthorized(
			send(signedBy(slug, "X-Shopify-Hmac-Sha256", sigs[1].Header, body, id...)),
			send(signedBy(slug, "X-Shopify-Hmac-Sha256", sigs[0].Header, []byte(`{"id":820982911946154508,"total_price":"0.00"}`), id...)),
		)
		Expect(runsOf(ns, slug)).To(HaveLen(1))
	})

	It("verifies Linear deliveries as @linear/sdk judges them: the signature and the body's webhookTimestamp", func() {
		slug, secret := unique("linear"), "lin_wh_signing_secret"
		hmacEndpoint(ns, slug, secret, workflowsv1alpha1.HMACSettings{Header: "Linear-Signature", TimestampField: "webhookTimestamp"},
			func(s *workflowsv1alpha1.WebhookEndpointSpec) {
				s.TriggerKey, s.Auth.TimestampTolerance = "Linear-Delivery", &metav1.Duration{Duration: time.Minute}
			})
		issue := func(at time.Time, title string) []byte {
			return []byte(fmt.Sprintf(`{"action":"create","type":"Issue","data":{"id":"2174add1","title":%q},"webhookTimestamp":%d}`, title, at.UnixMilli()))
		}
		now := time.Now()
		type attempt struct {
			name, key    string
			signed, sent []byte
		}
		attempts := []attempt{
			{name: "delivery", key: secret, signed: issue(now, "Crash")},
			{name: "redelivery", key: secret, signed: issue(now, "Crash")},
			{name: "wrong secret", key: "another-secret", signed: issue(now, "Crash")},
			{name: "changed body", key: secret, signed: issue(now, "Crash"), sent: issue(now, "Crash!")},
			{name: "stale", key: secret, signed: issue(now.Add(-10*time.Minute), "Old")},
		}
		jobs := make([]senderJob, len(attempts))
		answers := make([]response, len(attempts))
		for i, a := range attempts {
			sig := hex.EncodeToString(hmacSHA256([]byte(a.key), a.signed))
			sent := a.signed
			if a.sent != nil {
				sent = a.sent
			}
			jobs[i] = senderJob{Sender: "linear", Payload: string(sent), Secret: secret, Signature: sig}
			answers[i] = send(signedBy(slug, "Linear-Signature", sig, sent, "Linear-Delivery", "234d1a4e-b617-4388-90fe-adc3633d6b72", "Linear-Event", "Issue"))
		}
		verdicts := providerLibraries(jobs...)
		for i, a := range attempts {
			By(a.name)
			Expect(answers[i].status == http.StatusUnauthorized).To(Equal(!verdicts[i].Valid),
				"@linear/sdk says valid=%v (%s); the endpoint answered %d %s", verdicts[i].Valid, verdicts[i].Reason, answers[i].status, answers[i].body)
		}
		expectAcceptedThenDuplicate(answers[0], answers[1])
		expectUnauthorized(answers[2:]...)
		Expect(runsOf(ns, slug)).To(HaveLen(1))
	})

	It("verifies GitHub's signature as @octokit/webhooks-methods makes it (the control)", func() {
		slug := unique("octokit")
		readyEndpoint(ns, slug, "octokit-secret")
		body := issueBody(7)
		sigs := providerLibraries(
			senderJob{Sender: "github", Payload: string(body), Secret: "octokit-secret"},
			senderJob{Sender: "github", Payload: string(body), Secret: "another-secret"},
		)
		id := []string{"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-GitHub-Event", "issues"}
		expectAcceptedThenDuplicate(send(signedBy(slug, "X-Hub-Signature-256", sigs[0].Header, body, id...)),
			send(signedBy(slug, "X-Hub-Signature-256", sigs[0].Header, body, id...)))
		expectUnauthorized(
			send(signedBy(slug, "X-Hub-Signature-256", sigs[1].Header, body, id...)),
			send(signedBy(slug, "X-Hub-Signature-256", sigs[0].Header, issueBody(8), id...)),
		)
		Expect(runsOf(ns, slug)).To(HaveLen(1))
	})

	It("compares GitLab's X-Gitlab-Token with the secret, and keeps the token out of the run", func() {
		slug, token := unique("gitlab"), "glpat-like-webhook-token"
		createSecret(ns, slug+"-secret", map[string]string{"secret": token})
		spec := endpointSpec(slug, slug+"-secret")
		spec.Provider, spec.TriggerKey = workflowsv1alpha1.ProviderToken, "X-Gitlab-Event-UUID"
		spec.Auth.Token = &workflowsv1alpha1.TokenSettings{Header: "X-Gitlab-Token"}
		expectReady(createEndpoint(ns, slug, spec), metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		body := []byte(`{"object_kind":"push","ref":"refs/heads/main","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}`)
		id := []string{"X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e"}
		run := expectAcceptedThenDuplicate(send(signedBy(slug, "X-Gitlab-Token", token, body, id...)),
			send(signedBy(slug, "X-Gitlab-Token", token, body, id...)))
		expectUnauthorized(
			send(signedBy(slug, "X-Gitlab-Token", "glpat-like-webhook-toke", body, id...)),
			send(signedBy(slug, "X-Gitlab-Token", token+"x", body, id...)),
		)
		missing := signedBy(slug, "X-Gitlab-Token", token, body, id...)
		missing.header.Del("X-Gitlab-Token")
		expectUnauthorized(send(missing))
		Expect(runsOf(ns, slug)).To(HaveLen(1))
		env := inputOf(ns, run)
		Expect(env.Webhook.Headers).NotTo(HaveKey("x-gitlab-token"))
		Expect(env.Webhook.Header("X-Gitlab-Event")).To(Equal("Push Hook"))
	})

	It("refuses unusable scheme settings: the API server what its rules catch, the controller the rest (InvalidSpec)", func() {
		slug := unique("scheme")
		createSecret(ns, slug+"-secret", map[string]string{"secret": "scheme-secret"})
		tokenless := endpointSpec(slug, slug+"-secret")
		tokenless.Provider = workflowsv1alpha1.ProviderToken
		err := k8sClient.Create(context.Background(), &workflowsv1alpha1.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tokenless"}, Spec: tokenless})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("provider token needs auth.token"))

		both := endpointSpec(slug, slug+"-secret")
		both.TriggerBodyField = "id"
		err = k8sClient.Create(context.Background(), &workflowsv1alpha1.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "both"}, Spec: both})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("set triggerKey (a header) or triggerBodyField, not both"))

		unsigned := endpointSpec(slug, slug+"-secret")
		unsigned.Provider, unsigned.TriggerKey = workflowsv1alpha1.ProviderHMAC, ""
		unsigned.Auth.HMAC = &workflowsv1alpha1.HMACSettings{Header: "X-Sig", TimestampHeader: "X-Ts", SignedTemplate: "{ts}.{body}"}
		cond := expectReady(createEndpoint(ns, slug, unsigned), metav1.ConditionFalse, workflowsv1alpha1.ReasonInvalidSpec)
		Expect(cond.Message).To(ContainSubstring("unknown placeholder {ts}"))
		expectRefused(send(signedBy(slug, "X-Sig", "not-a-signature-of-the-unusable-scheme", []byte(`{}`))), http.StatusServiceUnavailable, apierror.CodeNotReady)
	})

	It("serves a webhook a workflow declares with a preset (HmacAuth.stripe, BodyTriggerKey) as the stripe package signs it", func() {
		secret := "whsec_declared_stripe_secret"
		sigs := providerLibraries(
			senderJob{Sender: "stripe", Payload: `{"id":"evt_declared","type":"charge.succeeded"}`, Secret: secret, Timestamp: time.Now().Unix()},
			senderJob{Sender: "stripe", Payload: `{"id":"evt_declared","type":"charge.succeeded"}`, Secret: secret, Timestamp: time.Now().Unix() - 3600},
		)
		body := []byte(`{"id":"evt_declared","type":"charge.succeeded"}`)
		Eventually(func() string {
			return send(signedBy(stripeHookSlug, "Stripe-Signature", sigs[0].Header, body)).errorCode()
		},
			waitFor, pollAt).Should(Equal(apierror.CodeNotReady), "no Secret yet")
		createSecret(operatorNamespace, "stripe-hook", map[string]string{"signing-secret": secret})
		Eventually(func() int { return send(signedBy(stripeHookSlug, "Stripe-Signature", sigs[0].Header, body)).status },
			waitFor, pollAt).Should(Equal(http.StatusAccepted))
		again := send(signedBy(stripeHookSlug, "Stripe-Signature", sigs[0].Header, body))
		Expect(again.status).To(Equal(http.StatusOK), string(again.body))
		expectUnauthorized(send(signedBy(stripeHookSlug, "Stripe-Signature", sigs[1].Header, body)))
		runs := runsOf(codeNamespace, stripeHookSlug)
		Expect(runs).To(HaveLen(1))
		Expect(runs[0].Spec.WorkflowName).To(Equal("stripe_hooked"))
	})
})
