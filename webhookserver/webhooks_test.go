package webhookserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhook/envelope"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

var _ = Describe("Signature verification", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("accepts GitHub deliveries signed with the endpoint's secret and refuses bad, missing and wrong signatures", func() {
		slug := unique("gh")
		readyEndpoint(ns, slug, "gh-secret-1")
		body := issueBody(1)

		good := send(github(slug, "gh-secret-1", "d-good", body))
		Expect(good.status).To(Equal(http.StatusAccepted), string(good.body))

		wrong := send(github(slug, "not-the-secret", "d-wrong", body))
		expectRefused(wrong, http.StatusUnauthorized, apierror.CodeUnauthorized)

		bad := github(slug, "gh-secret-1", "d-bad", body)
		bad.header.Set("X-Hub-Signature-256", "sha256=00ff")
		expectRefused(send(bad), http.StatusUnauthorized, apierror.CodeUnauthorized)

		tampered := github(slug, "gh-secret-1", "d-tampered", body)
		tampered.body = issueBody(2) // signed body 1, sends body 2
		expectRefused(send(tampered), http.StatusUnauthorized, apierror.CodeUnauthorized)

		missing := github(slug, "gh-secret-1", "d-missing", body)
		missing.header.Del("X-Hub-Signature-256")
		expectRefused(send(missing), http.StatusUnauthorized, apierror.CodeUnauthorized)

		Expect(runsOf(ns, slug)).To(HaveLen(1))
	})

	It("accepts either of two secrets during a rotation, and only the new one afterwards", func() {
		slug := unique("rot")
		createSecret(ns, "old", map[string]string{"secret": "rotation-old"})
		createSecret(ns, "new", map[string]string{"secret": "rotation-new"})
		ep := createEndpoint(ns, slug, endpointSpec(slug, "old", "new"))
		expectReady(ep, metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)

		Expect(send(github(slug, "rotation-old", "r-1", issueBody(1))).status).To(Equal(http.StatusAccepted))
		Expect(send(github(slug, "rotation-new", "r-2", issueBody(2))).status).To(Equal(http.StatusAccepted))

		updateEndpoint(ep, func(s *workflowsv1alpha1.WebhookEndpointSpec) { s.Auth.SecretRefs = s.Auth.SecretRefs[1:] })
		expectReady(ep, metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		expectRefused(send(github(slug, "rotation-old", "r-3", issueBody(3))), http.StatusUnauthorized, apierror.CodeUnauthorized)
		Expect(send(github(slug, "rotation-new", "r-4", issueBody(4))).status).To(Equal(http.StatusAccepted))
		Expect(runsOf(ns, slug)).To(HaveLen(3))
	})

	It("verifies the generic hmac provider with its header, prefix and encoding", func() {
		slug := unique("hmac")
		createSecret(ns, "hmac", map[string]string{"secret": "hmac-secret"})
		spec := endpointSpec(slug, "hmac")
		spec.Provider = workflowsv1alpha1.ProviderHMAC
		spec.TriggerKey = "X-Request-Id"
		spec.Auth.HMAC = &workflowsv1alpha1.HMACSettings{Header: "X-Shop-Hmac", Prefix: "v1=", Encoding: "base64"}
		expectReady(createEndpoint(ns, slug, spec), metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)

		body := []byte(`{"order":42}`)
		signed := func(secret string) delivery {
			h := http.Header{}
			h.Set("Content-Type", "application/json")
			h.Set("X-Request-Id", "order-42")
			h.Set("X-Shop-Hmac", remember("v1="+base64.StdEncoding.EncodeToString(hmacSHA256([]byte(secret), body))))
			return delivery{slug: slug, header: h, body: body}
		}
		Expect(send(signed("hmac-secret")).status).To(Equal(http.StatusAccepted))
		expectRefused(send(signed("wrong-secret")), http.StatusUnauthorized, apierror.CodeUnauthorized)
		noPrefix := signed("hmac-secret")
		noPrefix.header.Set("X-Shop-Hmac", strings.TrimPrefix(noPrefix.header.Get("X-Shop-Hmac"), "v1="))
		expectRefused(send(noPrefix), http.StatusUnauthorized, apierror.CodeUnauthorized)
		missing := signed("hmac-secret")
		missing.header.Del("X-Shop-Hmac")
		expectRefused(send(missing), http.StatusUnauthorized, apierror.CodeUnauthorized)

		runs := runsOf(ns, slug)
		Expect(runs).To(HaveLen(1))
		Expect(string(runs[0].Spec.Input.Raw)).NotTo(ContainSubstring("x-shop-hmac"), "the hmac header is stripped")
	})

	It("verifies Standard Webhooks signatures, their timestamp, and whsec_ secrets", func() {
		slug := unique("std")
		secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks-key-32-bytes!!"))
		createSecret(ns, "std", map[string]string{"secret": secret})
		spec := endpointSpec(slug, "std")
		spec.Provider = workflowsv1alpha1.ProviderStandardWebhooks
		spec.TriggerKey = "webhook-id"
		expectReady(createEndpoint(ns, slug, spec), metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)

		body := []byte(`{"type":"invoice.paid"}`)
		deliver := func(secret, id string, at time.Time) response {
			return send(delivery{slug: slug, header: standardHeader(secret, id, at, body), body: body})
		}
		Expect(deliver(secret, "msg_1", time.Now()).status).To(Equal(http.StatusAccepted))
		other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-key-another-key-another!!"))
		expectRefused(deliver(other, "msg_2", time.Now()), http.StatusUnauthorized, apierror.CodeUnauthorized)
		expectRefused(deliver(secret, "msg_3", time.Now().Add(-time.Hour)), http.StatusUnauthorized, apierror.CodeUnauthorized)
		noSig := delivery{slug: slug, header: standardHeader(secret, "msg_4", time.Now(), body), body: body}
		noSig.header.Del("Webhook-Signature")
		expectRefused(send(noSig), http.StatusUnauthorized, apierror.CodeUnauthorized)
		Expect(runsOf(ns, slug)).To(HaveLen(1))
	})

	It("accepts unsigned deliveries only on an endpoint that says provider none", func() {
		slug := unique("none")
		spec := workflowsv1alpha1.WebhookEndpointSpec{Slug: slug, WorkflowName: "webhook_echo", Provider: workflowsv1alpha1.ProviderNone}
		expectReady(createEndpoint(ns, slug, spec), metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		h := http.Header{"Content-Type": {"application/json"}}
		Expect(send(delivery{slug: slug, header: h, body: []byte(`{"ping":1}`)}).status).To(Equal(http.StatusAccepted))
		// The same body is the same delivery when there is no trigger key.
		Expect(send(delivery{slug: slug, header: h, body: []byte(`{"ping":1}`)}).status).To(Equal(http.StatusOK))
	})
})

var _ = Describe("GitHub form-encoded deliveries", func() {
	It("decodes the payload field and verifies the signature over the raw form body", func() {
		ns := newNamespace()
		slug := unique("form")
		readyEndpoint(ns, slug, "form-secret")
		payload := `{"action":"labeled","issue":{"number":7,"title":"a & b = c?"}}`
		raw := []byte("payload=" + url.QueryEscape(payload))
		d := github(slug, "form-secret", "form-1", raw)
		d.header.Set("Content-Type", "application/x-www-form-urlencoded")
		r := send(d)
		Expect(r.status).To(Equal(http.StatusAccepted), string(r.body))

		env := inputOf(ns, r.run().ID)
		Expect(env.Webhook.Body).To(MatchJSON(payload))
		sum := sha256.Sum256(raw)
		Expect(env.Webhook.RawBodySHA256).To(Equal(hex.EncodeToString(sum[:])))

		// A signature over the decoded JSON instead of the raw form is refused.
		wrong := github(slug, "form-secret", "form-2", []byte(payload))
		wrong.header.Set("Content-Type", "application/x-www-form-urlencoded")
		wrong.body = raw
		expectRefused(send(wrong), http.StatusUnauthorized, apierror.CodeUnauthorized)
	})
})

var _ = Describe("Duplicate deliveries", func() {
	var ns, slug string
	BeforeEach(func() {
		ns, slug = newNamespace(), unique("dup")
		readyEndpoint(ns, slug, "dup-secret")
	})

	It("answers a redelivery 200 with the run the first delivery created (202)", func() {
		first := send(github(slug, "dup-secret", "delivery-1", issueBody(1)))
		Expect(first.status).To(Equal(http.StatusAccepted))
		again := send(github(slug, "dup-secret", "delivery-1", issueBody(1)))
		Expect(again.status).To(Equal(http.StatusOK))
		Expect(again.run().ID).To(Equal(first.run().ID))
		Expect(again.run().Duplicate).To(BeTrue())
		Expect(first.run().Duplicate).To(BeFalse())
		Expect(send(github(slug, "dup-secret", "delivery-2", issueBody(2))).status).To(Equal(http.StatusAccepted), "another delivery is another run")
		Expect(runsOf(ns, slug)).To(HaveLen(2))
	})

	It("makes exactly one run of 50 concurrent identical deliveries", func() {
		d := github(slug, "dup-secret", "storm-1", issueBody(9))
		statuses := make([]int, 50)
		ids := make([]string, 50)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				r := send(d)
				statuses[i] = r.status
				if r.status < 300 {
					ids[i] = r.run().ID
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		AddReportEntry("50 concurrent identical deliveries", elapsed.String())
		fmt.Fprintf(GinkgoWriter, "50 concurrent identical deliveries took %s\n", elapsed)

		accepted, duplicates := 0, 0
		for _, s := range statuses {
			switch s {
			case http.StatusAccepted:
				accepted++
			case http.StatusOK:
				duplicates++
			}
		}
		Expect(accepted).To(Equal(1), "statuses: %v", statuses)
		Expect(duplicates).To(Equal(49), "statuses: %v", statuses)
		Expect(ids).To(HaveEach(Equal(ids[0])))
		Expect(runsOf(ns, slug)).To(HaveLen(1))
	})
})

// inputOf returns the envelope a run was started with.
func inputOf(ns, name string) envelope.Envelope {
	run := &workflowsv1alpha1.WorkflowRun{}
	Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, run)).To(Succeed())
	var env envelope.Envelope
	Expect(json.Unmarshal(run.Spec.Input.Raw, &env)).To(Succeed())
	return env
}

var _ = Describe("The run a delivery starts", func() {
	var ns, slug string
	BeforeEach(func() {
		ns, slug = newNamespace(), unique("env")
		readyEndpoint(ns, slug, "envelope-secret")
	})

	It("holds the envelope, with lower-cased headers and no credentials", func() {
		body := issueBody(3)
		d := github(slug, "envelope-secret", "env-1", body)
		d.query = "a=1&a=2&b=x"
		d.header.Set("Authorization", remember("Bearer envelope-token"))
		d.header.Set("Cookie", remember("session=envelope-cookie"))
		d.header.Set("X-Api-Key", remember("envelope-api-key"))
		d.header.Set("X-Hub-Signature", remember("sha1=0123456789abcdef0123456789abcdef01234567"))
		d.header.Set("X-Forwarded-For", "203.0.113.7")
		r := send(d)
		Expect(r.status).To(Equal(http.StatusAccepted), string(r.body))

		out := r.run()
		Expect(out.Namespace).To(Equal(ns))
		Expect(out.WorkflowName).To(Equal("webhook_echo"))
		Expect(out.ID).To(Equal(DeliveryRunName(routes.Key{Namespace: ns, Name: slug}, slug, envelope.BodyIdentity(body))),
			"a GitHub delivery is identified by its body (replay protection)")
		Expect(out.StatusURL).To(Equal("/api/workflows/runs/" + out.ID + "?namespace=" + ns))

		run := &workflowsv1alpha1.WorkflowRun{}
		Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: out.ID}, run)).To(Succeed())
		Expect(run.Spec.TTLSecondsAfterFinished).NotTo(BeNil(), "webhook runs get a default TTL, so a flood cannot fill etcd for good")
		Expect(*run.Spec.TTLSecondsAfterFinished).To(BeEquivalentTo(DefaultWebhookRunTTL / time.Second))
		Expect(run.Labels).To(HaveKeyWithValue(workflowsv1alpha1.LabelWorkflow, "webhook_echo"))
		Expect(run.Labels).To(HaveKeyWithValue(workflowsv1alpha1.LabelWebhook, slug))
		Expect(run.Spec.WorkflowName).To(Equal("webhook_echo"))

		w := inputOf(ns, out.ID).Webhook
		Expect(w.Slug).To(Equal(slug))
		Expect(w.Provider).To(Equal("github"))
		Expect(w.Method).To(Equal(http.MethodPost))
		Expect(w.Path).To(Equal("/api/webhooks/" + slug))
		Expect(w.Query).To(Equal(map[string][]string{"a": {"1", "2"}, "b": {"x"}}))
		Expect(w.Body).To(MatchJSON(body))
		sum := sha256.Sum256(body)
		Expect(w.RawBodySHA256).To(Equal(hex.EncodeToString(sum[:])))
		Expect(w.SourceIP).To(Equal("127.0.0.1"), "X-Forwarded-For from an untrusted peer does not count")
		Expect(w.Headers).To(HaveKeyWithValue("x-github-event", "issues"))
		Expect(w.Headers).To(HaveKeyWithValue("x-github-delivery", "env-1"))
		Expect(w.Headers).To(HaveKeyWithValue("content-type", "application/json"))
		for name := range w.Headers {
			Expect(name).To(Equal(strings.ToLower(name)))
		}
		for _, h := range []string{"x-hub-signature-256", "x-hub-signature", "authorization", "cookie", "x-api-key"} {
			Expect(w.Headers).NotTo(HaveKey(h))
		}
	})

	It("takes source_ip from X-Forwarded-For only behind a trusted proxy", func() {
		d := github(slug, "envelope-secret", "env-proxied", issueBody(4))
		d.server = proxied.URL
		d.header.Set("X-Forwarded-For", "198.51.100.9, 127.0.0.1")
		r := send(d)
		Expect(r.status).To(Equal(http.StatusAccepted), string(r.body))
		Expect(inputOf(ns, r.run().ID).Webhook.SourceIP).To(Equal("198.51.100.9"))
	})

	It("leaves no secret or signature in any object the server and the controllers wrote", func() {
		secret := "leak-check-secret-" + unique("s")
		createSecret(ns, "leak", map[string]string{"secret": secret})
		leakSlug := unique("leak")
		expectReady(createEndpoint(ns, leakSlug, endpointSpec(leakSlug, "leak")), metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		for i := range 3 {
			d := github(leakSlug, secret, fmt.Sprintf("leak-%d", i), issueBody(i))
			d.header.Set("Authorization", remember("Bearer leak-token-"+secret))
			Expect(send(d).status).To(Equal(http.StatusAccepted))
		}
		bad := github(leakSlug, "guessed-"+secret, "leak-bad", issueBody(9))
		expectRefused(send(bad), http.StatusUnauthorized, apierror.CodeUnauthorized)
		// Let the runs execute and the counters flush, so their events and status exist too.
		Eventually(func() int64 {
			return getEndpoint(&workflowsv1alpha1.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: leakSlug}}).Status.Deliveries.Accepted
		}, waitFor, pollAt).Should(BeEquivalentTo(3))

		dump := dumpCluster()
		Expect(dump).To(ContainSubstring(leakSlug), "the dump holds the runs")
		for _, s := range sensitiveValues() {
			Expect(dump).NotTo(ContainSubstring(s))
			Expect(dump).NotTo(ContainSubstring(base64.StdEncoding.EncodeToString([]byte(s))))
		}
	})
})

// dumpCluster returns the JSON of every WorkflowRun, Event (core and events.k8s.io),
// WebhookEndpoint and WorkflowEvent in the cluster: everything the API server and the
// controllers wrote.
func dumpCluster() string {
	lists := []client.ObjectList{
		&workflowsv1alpha1.WorkflowRunList{}, &corev1.EventList{}, &eventsv1.EventList{},
		&workflowsv1alpha1.WebhookEndpointList{}, &workflowsv1alpha1.WorkflowEventList{},
	}
	var b strings.Builder
	for _, l := range lists {
		Expect(k8sClient.List(context.Background(), l)).To(Succeed())
		j, err := json.Marshal(l)
		Expect(err).NotTo(HaveOccurred())
		b.Write(j)
	}
	return b.String()
}

var _ = Describe("Refused deliveries", func() {
	var ns, slug string
	BeforeEach(func() {
		ns, slug = newNamespace(), unique("err")
		createSecret(ns, "err", map[string]string{"secret": "error-secret"})
		spec := endpointSpec(slug, "err")
		spec.MaxBodyBytes = 256
		expectReady(createEndpoint(ns, slug, spec), metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
	})
	AfterEach(func() {
		Expect(runsOf(ns, slug)).To(BeEmpty(), "a refused delivery creates no run")
	})

	It("answers a slug nobody serves, and a workflow that declares no webhook, as a known slug answers a sender without its secret", func() {
		known := readyEndpoint(newNamespace(), unique("known"), "known-secret").Spec.Slug
		for _, d := range []delivery{
			github(unique("nobody"), "error-secret", "e-unknown", issueBody(1)),
			github("hello", "error-secret", "e-private", issueBody(1)),
		} {
			forged := github(known, "error-secret", "e-forged", issueBody(1))
			expectSameAnswer(send(d), send(forged), http.StatusUnauthorized, apierror.CodeUnauthorized)

			By("a method, a content type and a size a default endpoint refuses")
			d.method, forged.method = http.MethodGet, http.MethodGet
			expectSameAnswer(send(d), send(forged), http.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed)
			d.method, forged.method = http.MethodPost, http.MethodPost
			d.header.Set("Content-Type", "text/plain")
			forged.header.Set("Content-Type", "text/plain")
			expectSameAnswer(send(d), send(forged), http.StatusUnsupportedMediaType, apierror.CodeUnsupportedMediaType)
			d.header.Set("Content-Type", "application/json")
			forged.header.Set("Content-Type", "application/json")
			d.body = append([]byte(`{"pad":"`), bytes.Repeat([]byte("a"), 1<<20)...)
			forged.body = d.body
			expectSameAnswer(send(d), send(forged), http.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge)
		}
	})

	It("answers 405 with Allow for a method the endpoint does not list", func() {
		d := github(slug, "error-secret", "e-405", issueBody(1))
		d.method = http.MethodPut
		r := send(d)
		expectRefused(r, http.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed)
		Expect(r.header.Get("Allow")).To(Equal("POST"))
		d.method = http.MethodGet
		expectRefused(send(d), http.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed)
	})

	It("answers 415 for a content type the endpoint does not list, or none", func() {
		d := github(slug, "error-secret", "e-415", issueBody(1))
		d.header.Set("Content-Type", "text/plain")
		expectRefused(send(d), http.StatusUnsupportedMediaType, apierror.CodeUnsupportedMediaType)
		d.header.Del("Content-Type")
		expectRefused(send(d), http.StatusUnsupportedMediaType, apierror.CodeUnsupportedMediaType)
	})

	It("answers 413 for a body over the limit, with or without Content-Length", func() {
		big := []byte(`{"pad":"` + strings.Repeat("x", 300) + `"}`)
		d := github(slug, "error-secret", "e-413", big)
		expectRefused(send(d), http.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge)
		d.chunked = true
		expectRefused(send(d), http.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge)
	})

	It("answers 401 for a missing or bad signature", func() {
		d := github(slug, "error-secret", "e-401", issueBody(1))
		d.header.Set("X-Hub-Signature-256", "sha256=not-hex")
		expectRefused(send(d), http.StatusUnauthorized, apierror.CodeUnauthorized)
		d.header.Del("X-Hub-Signature-256")
		expectRefused(send(d), http.StatusUnauthorized, apierror.CodeUnauthorized)
	})

	It("answers 400 for a signed body that is not what its content type says", func() {
		expectRefused(send(github(slug, "error-secret", "e-400", []byte(`{"unterminated":`))), http.StatusBadRequest, apierror.CodeMalformedBody)
		form := github(slug, "error-secret", "e-400-form", []byte("payload=%7Bnot-json"))
		form.header.Set("Content-Type", "application/x-www-form-urlencoded")
		expectRefused(send(form), http.StatusBadRequest, apierror.CodeMalformedBody)
	})

	It("answers 503 while the endpoint is not Ready", func() {
		other := unique("notready")
		ep := createEndpoint(ns, other, endpointSpec(other, "absent-secret"))
		expectReady(ep, metav1.ConditionFalse, workflowsv1alpha1.ReasonSecretNotFound)
		r := send(github(other, "whatever", "e-503", issueBody(1)))
		expectRefused(r, http.StatusServiceUnavailable, apierror.CodeNotReady)
		Expect(r.header.Get("Retry-After")).NotTo(BeEmpty())
		Expect(string(r.body)).NotTo(ContainSubstring("absent-secret"), "an unauthenticated caller learns the reason, not the names")
		Expect(runsOf(ns, other)).To(BeEmpty())
	})

	It("answers 503 when the API server does not take the run, so the provider retries", func() {
		d := github(slug, "error-secret", "e-503-write", issueBody(1))
		d.server = broken.URL
		r := send(d)
		expectRefused(r, http.StatusServiceUnavailable, apierror.CodeUnavailable)
		Expect(r.header.Get("Retry-After")).NotTo(BeEmpty())
		// The retry, once the API server is back, starts the run.
		d.server = api.URL
		Expect(send(d).status).To(Equal(http.StatusAccepted))
		Expect(runsOf(ns, slug)).To(HaveLen(1))
		Expect(k8sClient.DeleteAllOf(context.Background(), &workflowsv1alpha1.WorkflowRun{}, client.InNamespace(ns))).To(Succeed())
		Eventually(func() []workflowsv1alpha1.WorkflowRun { return runsOf(ns, slug) }, waitFor, pollAt).Should(BeEmpty())
	})
})

var _ = Describe("Endpoint status", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("is Ready with the path and the observed generation", func() {
		slug := unique("status")
		ep := readyEndpoint(ns, slug, "status-secret")
		cur := getEndpoint(ep)
		Expect(cur.Status.Path).To(Equal("/api/webhooks/" + slug))
		Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
		Expect(readyMessage(ep)).To(ContainSubstring("webhook_echo"))
	})

	It("says SecretNotFound until the Secret exists, then serves", func() {
		slug := unique("late")
		ep := createEndpoint(ns, slug, endpointSpec(slug, "late-secret"))
		cond := expectReady(ep, metav1.ConditionFalse, workflowsv1alpha1.ReasonSecretNotFound)
		Expect(cond.Message).To(ContainSubstring(`"late-secret"`))
		Expect(cond.Message).To(ContainSubstring("kubectl create secret generic late-secret"))
		Expect(getEndpoint(ep).Status.Path).To(Equal("/api/webhooks/" + slug))

		createSecret(ns, "late-secret", map[string]string{"secret": "late-value"})
		expectReady(ep, metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		Expect(send(github(slug, "late-value", "late-1", issueBody(1))).status).To(Equal(http.StatusAccepted))
	})

	It("says SecretKeyMissing when the Secret lacks the key or it is empty", func() {
		slug := unique("nokey")
		createSecret(ns, "nokey", map[string]string{"token": "nokey-token-value"})
		cond := expectReady(createEndpoint(ns, slug, endpointSpec(slug, "nokey")), metav1.ConditionFalse, workflowsv1alpha1.ReasonSecretKeyMissing)
		Expect(cond.Message).To(ContainSubstring(`no key "secret"`))
		Expect(cond.Message).NotTo(ContainSubstring("token"), "the status lists the Secret's other keys")

		empty := unique("emptykey")
		createSecret(ns, "emptykey", map[string]string{"secret": "  \n"})
		expectReady(createEndpoint(ns, empty, endpointSpec(empty, "emptykey")), metav1.ConditionFalse, workflowsv1alpha1.ReasonSecretKeyMissing)
	})

	It("says SecretInvalid for a whsec_ secret that is not base64", func() {
		slug := unique("badwhsec")
		createSecret(ns, "badwhsec", map[string]string{"secret": "whsec_***not-base64***"})
		spec := endpointSpec(slug, "badwhsec")
		spec.Provider = workflowsv1alpha1.ProviderStandardWebhooks
		expectReady(createEndpoint(ns, slug, spec), metav1.ConditionFalse, workflowsv1alpha1.ReasonSecretInvalid)
	})

	It("says UnknownWorkflow, listing the known ones", func() {
		slug := unique("nowf")
		createSecret(ns, "nowf", map[string]string{"secret": "nowf-secret-value"})
		spec := endpointSpec(slug, "nowf")
		spec.WorkflowName = "no_such_workflow"
		cond := expectReady(createEndpoint(ns, slug, spec), metav1.ConditionFalse, workflowsv1alpha1.ReasonUnknownWorkflow)
		Expect(cond.Message).To(ContainSubstring("no_such_workflow"))
		Expect(cond.Message).To(ContainSubstring("webhook_echo"))
		expectRefused(send(github(slug, "nowf-secret-value", "nowf-1", issueBody(1))), http.StatusServiceUnavailable, apierror.CodeNotReady)
	})

	It("says InvalidSpec for unusable provider settings", func() {
		slug := unique("badhmac")
		createSecret(ns, "badhmac", map[string]string{"secret": "badhmac-secret-value"})
		spec := endpointSpec(slug, "badhmac")
		spec.Provider = workflowsv1alpha1.ProviderHMAC
		spec.Auth.HMAC = &workflowsv1alpha1.HMACSettings{Header: "not a header"}
		expectReady(createEndpoint(ns, slug, spec), metav1.ConditionFalse, workflowsv1alpha1.ReasonInvalidSpec)
	})

	It("stays Ready with one of two secrets, and says which one is missing", func() {
		slug := unique("half")
		createSecret(ns, "half-old", map[string]string{"secret": "half-value"})
		ep := createEndpoint(ns, slug, endpointSpec(slug, "half-old", "half-new"))
		cond := expectReady(ep, metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		Expect(cond.Message).To(ContainSubstring(`"half-new"`))
		Expect(send(github(slug, "half-value", "half-1", issueBody(1))).status).To(Equal(http.StatusAccepted))
	})

	It("counts accepted, duplicate and rejected deliveries in batches", func() {
		slug := unique("count")
		ep := readyEndpoint(ns, slug, "count-secret")
		for i := range 3 {
			Expect(send(github(slug, "count-secret", fmt.Sprintf("c-%d", i), issueBody(i))).status).To(Equal(http.StatusAccepted))
		}
		Expect(send(github(slug, "count-secret", "c-0", issueBody(0))).status).To(Equal(http.StatusOK))
		expectRefused(send(github(slug, "wrong", "c-x", issueBody(0))), http.StatusUnauthorized, apierror.CodeUnauthorized)
		Eventually(func() workflowsv1alpha1.DeliveryCounters { return getEndpoint(ep).Status.Deliveries }, waitFor, pollAt).
			Should(Equal(workflowsv1alpha1.DeliveryCounters{Accepted: 3, Duplicates: 1, Rejected: 1}))
	})
})

// readyMessage returns the message of the endpoint's Ready condition.
func readyMessage(ep *workflowsv1alpha1.WebhookEndpoint) string {
	var msg string
	Eventually(func(g Gomega) { msg = observedReady(g, ep).Message }, waitFor, pollAt).Should(Succeed())
	return msg
}

var _ = Describe("Routes follow endpoints and Secrets", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("moves with the slug, follows Secret changes, and goes with the endpoint", func() {
		slug := unique("move")
		ep := readyEndpoint(ns, slug, "first-value")
		Expect(send(github(slug, "first-value", "m-1", issueBody(1))).status).To(Equal(http.StatusAccepted))

		By("changing the slug")
		moved := unique("moved")
		updateEndpoint(ep, func(s *workflowsv1alpha1.WebhookEndpointSpec) { s.Slug = moved })
		expectReady(ep, metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		expectRefused(send(github(slug, "first-value", "m-2", issueBody(2))), http.StatusUnauthorized, apierror.CodeUnauthorized)
		Expect(send(github(moved, "first-value", "m-3", issueBody(3))).status).To(Equal(http.StatusAccepted))
		Expect(getEndpoint(ep).Status.Path).To(Equal("/api/webhooks/" + moved))

		By("changing the Secret's value")
		secret := &corev1.Secret{}
		Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: slug + "-secret"}, secret)).To(Succeed())
		secret.Data["secret"] = []byte(remember("second-value"))
		Expect(k8sClient.Update(context.Background(), secret)).To(Succeed())
		Eventually(func() int { return send(github(moved, "second-value", "m-4", issueBody(4))).status }, waitFor, pollAt).Should(Equal(http.StatusAccepted))
		expectRefused(send(github(moved, "first-value", "m-5", issueBody(5))), http.StatusUnauthorized, apierror.CodeUnauthorized)

		By("deleting the Secret")
		Expect(k8sClient.Delete(context.Background(), secret)).To(Succeed())
		expectReady(ep, metav1.ConditionFalse, workflowsv1alpha1.ReasonSecretNotFound)
		expectRefused(send(github(moved, "second-value", "m-6", issueBody(6))), http.StatusServiceUnavailable, apierror.CodeNotReady)

		By("deleting the endpoint")
		Expect(k8sClient.Delete(context.Background(), ep)).To(Succeed())
		Eventually(func() int { return send(github(moved, "second-value", "m-7", issueBody(7))).status }, waitFor, pollAt).Should(Equal(http.StatusUnauthorized))
		Expect(runsOf(ns, slug)).To(HaveLen(1))
		Expect(runsOf(ns, moved)).To(HaveLen(2))
	})
})

var _ = Describe("Slug conflicts", func() {
	It("serves the older endpoint; the newer says SlugConflict and takes over when the older goes", func() {
		nsOld, nsNew := newNamespace(), newNamespace()
		slug := unique("shared")
		// Names sort the other way round, so that age, not name, decides.
		older := readyEndpointNamed(nsOld, "z-older", slug, "older-value")
		time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second resolution
		createSecret(nsNew, "newer-secret", map[string]string{"secret": "newer-value"})
		newer := createEndpoint(nsNew, "a-newer", endpointSpec(slug, "newer-secret"))

		cond := expectReady(newer, metav1.ConditionFalse, workflowsv1alpha1.ReasonSlugConflict)
		Expect(cond.Message).To(ContainSubstring("the older WebhookEndpoint in another namespace"))
		Expect(cond.Message).NotTo(ContainSubstring(nsOld), "another tenant's namespace and names stay out of the status")
		Expect(getEndpoint(newer).Status.Path).To(BeEmpty())
		expectReady(older, metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		r := send(github(slug, "older-value", "s-1", issueBody(1)))
		Expect(r.status).To(Equal(http.StatusAccepted))
		Expect(r.run().Namespace).To(Equal(nsOld))
		expectRefused(send(github(slug, "newer-value", "s-2", issueBody(2))), http.StatusUnauthorized, apierror.CodeUnauthorized)

		Expect(k8sClient.Delete(context.Background(), older)).To(Succeed())
		expectReady(newer, metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		r = send(github(slug, "newer-value", "s-3", issueBody(3)))
		Expect(r.status).To(Equal(http.StatusAccepted))
		Expect(r.run().Namespace).To(Equal(nsNew))
	})
})

// readyEndpointNamed is readyEndpoint with an endpoint name of its own.
func readyEndpointNamed(ns, name, slug, secret string) *workflowsv1alpha1.WebhookEndpoint {
	createSecret(ns, name+"-secret", map[string]string{"secret": secret})
	ep := createEndpoint(ns, name, endpointSpec(slug, name+"-secret"))
	expectReady(ep, metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
	return ep
}

var _ = Describe("Webhooks declared in code", func() {
	It("are served in the code-webhook namespace once their Secret exists in the operator's, and no WebhookEndpoint can take them", func() {
		Eventually(func() string { return send(github(codeSlug, "code-value", "k-0", issueBody(0))).errorCode() }, waitFor, pollAt).Should(Equal(apierror.CodeNotReady))

		createSecret(operatorNamespace, "centaur-webhook-"+codeSlug, map[string]string{"secret": "code-value"})
		Eventually(func() int { return send(github(codeSlug, "code-value", "k-1", issueBody(1))).status }, waitFor, pollAt).Should(Equal(http.StatusAccepted))
		Expect(send(github(codeSlug, "code-value", "k-1", issueBody(1))).status).To(Equal(http.StatusOK))
		runs := runsOf(codeNamespace, codeSlug)
		Expect(runs).To(HaveLen(1))
		Expect(runs[0].Spec.WorkflowName).To(Equal("code_hooked"))
		expectRefused(send(github(codeSlug, "wrong", "k-2", issueBody(2))), http.StatusUnauthorized, apierror.CodeUnauthorized)

		By("a WebhookEndpoint claiming the same slug")
		ns := newNamespace()
		createSecret(ns, "takeover-secret", map[string]string{"secret": "takeover-value"})
		ep := createEndpoint(ns, "takeover", endpointSpec(codeSlug, "takeover-secret"))
		cond := expectReady(ep, metav1.ConditionFalse, workflowsv1alpha1.ReasonSlugConflict)
		Expect(cond.Message).To(ContainSubstring(`declared by the manager's workflow "code_hooked"`))
		expectRefused(send(github(codeSlug, "takeover-value", "k-3", issueBody(3))), http.StatusUnauthorized, apierror.CodeUnauthorized)
		Expect(send(github(codeSlug, "code-value", "k-4", issueBody(4))).status).To(Equal(http.StatusAccepted))
		Expect(runsOf(ns, codeSlug)).To(BeEmpty(), "the endpoint took deliveries of the manager's route")
	})
})

var _ = Describe("Who may claim a slug", func() {
	It("refuses a WebhookEndpoint in a namespace the operator has not granted the slug, and lets it take nothing from a granted one", func() {
		granted, slug := newNamespace(), unique("owned")
		readyEndpointNamed(granted, "owner", slug, "owner-value")

		other := createNamespace(unique(ungrantedPrefix + "tenant"))
		createSecret(other, "thief-secret", map[string]string{"secret": "thief-value"})
		thief := createEndpoint(other, "thief", endpointSpec(slug, "thief-secret"))
		cond := expectReady(thief, metav1.ConditionFalse, workflowsv1alpha1.ReasonSlugNotGranted)
		Expect(cond.Message).To(ContainSubstring("--webhook-slug-grants"))
		Expect(getEndpoint(thief).Status.Path).To(BeEmpty())
		expectRefused(send(github(slug, "thief-value", "g-1", issueBody(1))), http.StatusUnauthorized, apierror.CodeUnauthorized)
		Expect(send(github(slug, "owner-value", "g-2", issueBody(2))).run().Namespace).To(Equal(granted))

		By("an ungranted endpoint that is older does not keep a granted one from its slug")
		free := unique("free")
		older := createEndpoint(other, "early", endpointSpec(free, "thief-secret"))
		expectReady(older, metav1.ConditionFalse, workflowsv1alpha1.ReasonSlugNotGranted)
		readyEndpointNamed(newNamespace(), "late", free, "late-value")
	})
})

var _ = Describe("Throughput", func() {
	It("creates runs from deliveries at a rate close to raw creates", func() {
		const n, workers = 100, 8
		ns, slug := newNamespace(), unique("bench")
		readyEndpoint(ns, slug, "bench-secret")

		// Raw creates carry the input a delivery makes, so that both store the same object.
		first := send(github(slug, "bench-secret", "b-first", issueBody(n+1)))
		Expect(first.status).To(Equal(http.StatusAccepted))
		input := &apiextensionsv1.JSON{Raw: mustJSON(inputOf(ns, first.run().ID))}
		raw := func(i int) {
			run := &workflowsv1alpha1.WorkflowRun{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("raw-%d", i)},
				Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "webhook_echo", Input: input},
			}
			Expect(k8sClient.Create(context.Background(), run)).To(Succeed())
		}
		hook := func(i int) {
			Expect(send(github(slug, "bench-secret", fmt.Sprintf("b-%d", i), issueBody(i))).status).To(Equal(http.StatusAccepted))
		}
		// Alternate halves, so that both sides share the load of the runs executing meanwhile.
		var rawRate, hookRate float64
		for half := range 2 {
			rawRate += rate(n/2, workers, half*n/2, raw) / 2
			hookRate += rate(n/2, workers, half*n/2, hook) / 2
		}
		report := fmt.Sprintf("raw creates %.0f/s, webhook deliveries %.0f/s (%.0f%%)", rawRate, hookRate, 100*hookRate/rawRate)
		AddReportEntry("throughput", report)
		fmt.Fprintln(GinkgoWriter, report)
		Expect(hookRate).To(BeNumerically(">", rawRate/4), "a delivery costs about one create; "+report)
	})
})

// mustJSON encodes v.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return b
}

// rate runs do(from..from+n-1) on workers goroutines and returns the calls per second.
func rate(n, workers, from int, do func(i int)) float64 {
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			for i := range work {
				do(i)
			}
		}()
	}
	for i := range n {
		work <- from + i
	}
	close(work)
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

var _ = Describe("What an unauthenticated sender learns", func() {
	It("nothing of how an endpoint verifies, why it is not ready, or what its Secret holds; and credentials in the URL are not stored", func() {
		ns, slug := newNamespace(), unique("quiet")
		spec := endpointSpec(slug, "quiet-a", "quiet-b")
		spec.Provider = workflowsv1alpha1.ProviderHMAC
		spec.Auth.HMAC = &workflowsv1alpha1.HMACSettings{Header: "X-Private-Hmac-Header", Prefix: "v9="}
		ep := createEndpoint(ns, "quiet", spec)

		By("a 503 while the Secret is missing says nothing of it")
		expectReady(ep, metav1.ConditionFalse, workflowsv1alpha1.ReasonSecretNotFound)
		r := send(delivery{slug: slug, header: http.Header{"Content-Type": {"application/json"}}, body: issueBody(1)})
		expectRefused(r, http.StatusServiceUnavailable, apierror.CodeNotReady)
		for _, leak := range []string{"quiet-a", "SecretNotFound", ns} {
			Expect(string(r.body)).NotTo(ContainSubstring(leak))
		}

		By("a Secret without the key: the status does not list the keys it has")
		createSecret(ns, "quiet-a", map[string]string{"other-key-with-a-telling-name": "quiet-unused-value"})
		cond := expectReady(ep, metav1.ConditionFalse, workflowsv1alpha1.ReasonSecretKeyMissing)
		Expect(cond.Message).NotTo(ContainSubstring("other-key-with-a-telling-name"))

		By("a 401 says nothing of the header, the prefix or how many secrets there are")
		createSecret(ns, "quiet-b", map[string]string{"secret": "quiet-value"})
		expectReady(ep, metav1.ConditionTrue, workflowsv1alpha1.ReasonReady)
		r = send(delivery{slug: slug, header: http.Header{"Content-Type": {"application/json"}, "X-Private-Hmac-Header": {"v9=00"}}, body: issueBody(2)})
		expectRefused(r, http.StatusUnauthorized, apierror.CodeUnauthorized)
		for _, leak := range []string{"X-Private-Hmac-Header", "x-private-hmac-header", "v9=", "secrets", "2 "} {
			Expect(string(r.body)).NotTo(ContainSubstring(leak))
		}

		By("a signed delivery whose URL carries a token")
		body := issueBody(3)
		h := http.Header{"Content-Type": {"application/json"}}
		h.Set("X-Private-Hmac-Header", "v9="+hex.EncodeToString(hmacSHA256([]byte("quiet-value"), body)))
		r = send(delivery{slug: slug, header: h, body: body, query: "token=" + remember("URL-TOKEN-VALUE") + "&page=2"})
		Expect(r.status).To(Equal(http.StatusAccepted), string(r.body))
		in := inputOf(ns, r.run().ID)
		Expect(in.Webhook.Query).To(Equal(map[string][]string{"page": {"2"}}))
	})
})

var _ = Describe("Replayed deliveries", func() {
	It("answer a GitHub delivery replayed under a new delivery id with the run it started, unless the owner chose the trigger header", func() {
		ns := newNamespace()
		slug := unique("replayed")
		readyEndpoint(ns, slug, "replay-secret")
		body := issueBody(1)
		first := send(github(slug, "replay-secret", "delivery-1", body))
		Expect(first.status).To(Equal(http.StatusAccepted))
		replay := send(github(slug, "replay-secret", "delivery-forged-2", body))
		Expect(replay.status).To(Equal(http.StatusOK), "a captured body under a fresh X-GitHub-Delivery started a new run")
		Expect(replay.run().ID).To(Equal(first.run().ID))
		third := send(github(slug, "replay-secret", "delivery-3", issueBody(2)))
		Expect(third.status).To(Equal(http.StatusAccepted))

		By("answering a seen trigger key with its run, whatever the body, as the product says")
		time.Sleep(time.Second) // the manager finds the first run in its cache, which follows the API server
		again := send(github(slug, "replay-secret", "delivery-3", issueBody(3)))
		Expect(again.status).To(Equal(http.StatusOK), "a different body under a used X-GitHub-Delivery started a new run")
		Expect(again.run().ID).To(Equal(third.run().ID))
		Expect(runsOf(ns, slug)).To(HaveLen(2))
		for _, run := range runsOf(ns, slug) {
			var indexed workflowsv1alpha1.WorkflowRunList
			Expect(serverCfg.Runs.List(context.Background(), &indexed, client.InNamespace(ns),
				client.MatchingFields{indexTriggerKey: run.Labels[workflowsv1alpha1.LabelTriggerKey]})).To(Succeed(),
				"the trigger key is looked up in the cache's index, not matched against every run")
			Expect(indexed.Items).To(ConsistOf(HaveField("Name", run.Name)))
		}

		byTrigger := unique("by-trigger")
		ep := readyEndpoint(ns, byTrigger, "trigger-secret")
		updateEndpoint(ep, func(s *workflowsv1alpha1.WebhookEndpointSpec) {
			s.ReplayProtection = workflowsv1alpha1.ReplayProtectionTriggerKey
		})
		Eventually(func() int {
			return send(github(byTrigger, "trigger-secret", "t-"+unique("id"), body)).status
		}, waitFor, pollAt).Should(Equal(http.StatusAccepted), "with replayProtection TriggerKey each delivery id starts its own run")
	})
})

var _ = Describe("Limits", func() {
	It("answers 503 with a Retry-After once the deliveries in flight reach the budget, before reading a body", func() {
		ns, slug := newNamespace(), unique("inflight")
		readyEndpoint(ns, slug, "inflight-secret")
		// A delivery whose body never ends holds the one slot.
		pr, pw := io.Pipe()
		defer pw.Close()
		req, err := http.NewRequest(http.MethodPost, limited.URL+"/api/webhooks/"+slug, pr)
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Content-Type", "application/json")
		go func() { _, _ = httpClient.Do(req) }()
		_, _ = pw.Write([]byte(`{"partial":`))

		// The probe is a forged delivery: should it get the slot first, it fails its signature
		// and is charged to the client's unverified budget, never to the slug's rate.
		Eventually(func() int {
			return send(delivery{server: limited.URL, slug: slug, header: githubHeader("wrong-secret", "f-0", issueBody(1)), body: issueBody(1)}).status
		}, waitFor, pollAt).Should(Equal(http.StatusServiceUnavailable), "the slow delivery never took the slot")
		r := send(delivery{server: limited.URL, slug: slug, header: githubHeader("inflight-secret", "f-2", issueBody(2)), body: issueBody(2)})
		expectRefused(r, http.StatusServiceUnavailable, apierror.CodeUnavailable)
		Expect(r.header.Get("Retry-After")).To(Equal("1"))

		Expect(pw.Close()).To(Succeed())
		Eventually(func() int {
			return send(delivery{server: limited.URL, slug: slug, header: githubHeader("inflight-secret", "f-3", issueBody(3)), body: issueBody(3)}).status
		}, waitFor, pollAt).Should(Equal(http.StatusAccepted), "the slot came back when the slow delivery ended")
	})

	It("takes a slot only once a delivery's headers pass", func() {
		ns, slug := newNamespace(), unique("headers")
		readyEndpoint(ns, slug, "headers-secret")
		// Slow bodies behind headers that fail (a content type the endpoint does not take, at a
		// known slug or an unknown one) are refused at once and hold nothing.
		Expect(slowDelivery(limited.URL, slug, "text/plain", "")).To(Equal(http.StatusUnsupportedMediaType))
		Expect(slowDelivery(limited.URL, unique("nobody"), "text/plain", "")).To(Equal(http.StatusUnsupportedMediaType))
		Expect(send(delivery{server: limited.URL, slug: slug, header: githubHeader("headers-secret", "h-1", issueBody(31)), body: issueBody(31)}).status).
			To(Equal(http.StatusAccepted), "the one slot is free")
	})

	It("cuts a body that comes too slowly with 408, and after a client's second failure refuses it before reading, while other clients go on", func() {
		ns, slug := newNamespace(), unique("slowbody")
		readyEndpoint(ns, slug, "slowbody-secret")
		slowly := func(client string) int { return slowDelivery(impatient.URL, slug, "application/json", client) }
		Expect(slowly("203.0.113.9")).To(Equal(http.StatusRequestTimeout))
		Expect(slowly("203.0.113.9")).To(Equal(http.StatusRequestTimeout))
		h := githubHeader("slowbody-secret", "s-1", issueBody(41))
		h.Set("X-Forwarded-For", "203.0.113.9")
		r := send(delivery{server: impatient.URL, slug: slug, header: h, body: issueBody(41)})
		expectRefused(r, http.StatusTooManyRequests, apierror.CodeRateLimited)
		Expect(r.header.Get("Retry-After")).NotTo(BeEmpty())
		h = githubHeader("slowbody-secret", "s-2", issueBody(42))
		h.Set("X-Forwarded-For", "198.51.100.7")
		Expect(send(delivery{server: impatient.URL, slug: slug, header: h, body: issueBody(42)}).status).To(Equal(http.StatusAccepted))
	})

	It("charges only verified deliveries to the slug, so forged ones cannot make it refuse its real sender", func() {
		ns, slug := newNamespace(), unique("forged")
		readyEndpoint(ns, slug, "forged-secret")
		for i := range 5 {
			r := send(delivery{server: limited.URL, slug: slug, header: githubHeader("not-the-secret", fmt.Sprintf("x-%d", i), issueBody(50+i)), body: issueBody(50 + i)})
			Expect(r.status).To(Equal(http.StatusUnauthorized))
		}
		Expect(send(delivery{server: limited.URL, slug: slug, header: githubHeader("forged-secret", "real-1", issueBody(60)), body: issueBody(60)}).status).
			To(Equal(http.StatusAccepted))
	})

	It("answers 429 with a Retry-After when one slug takes more deliveries than its rate, and leaves other slugs alone", func() {
		ns, busy, quiet := newNamespace(), unique("busy"), unique("quiet")
		readyEndpoint(ns, busy, "busy-secret")
		readyEndpoint(ns, quiet, "quiet-secret")
		statuses := []int{}
		var refused response
		for i := range 4 {
			r := send(delivery{server: limited.URL, slug: busy, header: githubHeader("busy-secret", fmt.Sprintf("r-%d", i), issueBody(100+i)), body: issueBody(100 + i)})
			statuses = append(statuses, r.status)
			if r.status == http.StatusTooManyRequests {
				refused = r
			}
		}
		Expect(statuses).To(Equal([]int{http.StatusAccepted, http.StatusAccepted, http.StatusTooManyRequests, http.StatusTooManyRequests}))
		expectRefused(refused, http.StatusTooManyRequests, apierror.CodeRateLimited)
		Expect(refused.header.Get("Retry-After")).To(MatchRegexp(`^[1-5]$`))
		Expect(send(delivery{server: limited.URL, slug: quiet, header: githubHeader("quiet-secret", "q-1", issueBody(200)), body: issueBody(200)}).status).
			To(Equal(http.StatusAccepted))
	})
})

// slowDelivery posts to slug on server a body that starts and never ends, from client (an
// X-Forwarded-For address, none when empty), and returns the status it is answered with.
func slowDelivery(server, slug, contentType, client string) int {
	GinkgoHelper()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest(http.MethodPost, server+"/api/webhooks/"+slug, pr)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", contentType)
	if client != "" {
		req.Header.Set("X-Forwarded-For", client)
	}
	answered := make(chan int, 1)
	go func() {
		if resp, err := httpClient.Do(req); err == nil {
			answered <- resp.StatusCode
			_ = resp.Body.Close()
		}
	}()
	_, _ = pw.Write([]byte(`{"slow":`))
	var status int
	Eventually(answered, 5*time.Second).Should(Receive(&status))
	return status
}
