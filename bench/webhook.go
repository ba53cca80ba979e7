package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
)

// The webhook figure sends signed deliveries (GitHub's scheme) to a WebhookEndpoint of the
// manager binary and measures deliveries/s and the latency to the 202, against raw creates of
// runs with the same input from as many clients. A delivery's only write is its run's create,
// so the manager runs without leading the controllers for this figure (the benchmark holds the
// leader lease): the webhook routes are fed on every replica, and no run executes while the
// creates are counted, on either side.

// Names of the webhook figure's objects.
const (
	webhookNamespace = "bench-webhooks"
	webhookSlug      = "bench"
	webhookSecret    = "bench-webhook-secret"
	leaseNamespace   = "bench-lease"
	leaseName        = "workflow-operator.workflows.centaur.dev"
)

// webhookBodyBytes is about the size of each delivery's body.
const webhookBodyBytes = 1024

// webhookFigures are the webhook path's figures.
type webhookFigures struct {
	// perSec and latency are deliveries/s and the latency to 202 with senders senders sending
	// as fast as they are answered; createLatency is the raw creates' latency in the same way.
	perSec        float64
	latency       durations
	createLatency durations
	// pacedLatency is the latency to 202 of deliveries sent at pacedRate/s, half the raw
	// creates/s: the latency of an endpoint that is not saturated.
	pacedLatency durations
	pacedRate    float64
	// pacedCreateLatency is the latency of raw creates sent at pacedRate/s, the same way,
	// alternating with the paced deliveries: what the API server itself answers at that rate.
	pacedCreateLatency durations
}

// measureWebhooks alternates raw creates and signed deliveries, cfg.repeat times each.
func (h *harness) measureWebhooks(ctx context.Context, res *results) error {
	if err := h.ensureNamespace(ctx, rawNamespace); err != nil {
		return err
	}
	secret := []byte("bench-signing-secret")
	// The figure measures how fast deliveries become runs and how long each waits, so the
	// slug's rate limit and the cap on deliveries in flight (protections the flood figure
	// measures) are lifted far above what the senders reach, paced ones included.
	m, err := h.startEndpointManager(ctx, "bench", webhookSlug, webhookSecret, secret,
		"--webhook-rate=1000000", "--webhook-burst=1000000", "--max-inflight-deliveries=100000")
	if err != nil {
		return err
	}
	defer m.stop()
	s := &sender{url: m.apiURL + "/api/webhooks/" + webhookSlug, secret: secret, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: h.cfg.senders}}}
	input, err := s.awaitRoute(ctx, h)
	if err != nil {
		return err
	}
	f := &res.webhooks
	var creates, deliveries []float64
	for rep := range h.cfg.repeat {
		perSec, lat, err := h.rawCreates(ctx, fmt.Sprintf("create-%d", rep), h.cfg.deliveries, h.cfg.senders, input)
		if err != nil {
			return fmt.Errorf("raw creates: %w", err)
		}
		creates, f.createLatency = append(creates, perSec), append(f.createLatency, lat...)
		if perSec, lat, err = s.deliver(ctx, fmt.Sprint(rep), h.cfg.deliveries, h.cfg.senders, 0); err != nil {
			return err
		}
		deliveries, f.latency = append(deliveries, perSec), append(f.latency, lat...)
	}
	res.limits.creates, f.perSec = medianOf(creates), medianOf(deliveries)
	f.pacedRate = res.limits.creates / 2
	n := max(h.cfg.deliveries/2/h.cfg.repeat, 1)
	for rep := range h.cfg.repeat {
		// The first round's CPU, requests and profiles go in the CPU table, per create and
		// per delivery.
		meter, err := h.startMeter(ctx, m, profileName(rep, "webhooks-paced-raw"))
		if err != nil {
			return err
		}
		lat, err := h.pacedCreates(ctx, fmt.Sprintf("paced-create-%d", rep), n, f.pacedRate, input)
		if err != nil {
			return fmt.Errorf("paced raw creates: %w", err)
		}
		if err := meter.stop(ctx, n); err != nil {
			return err
		}
		f.pacedCreateLatency = append(f.pacedCreateLatency, lat...)
		if meter, err = h.startMeter(ctx, m, profileName(rep, "webhooks-paced")); err != nil {
			return err
		}
		if _, lat, err = s.deliver(ctx, fmt.Sprint("paced-", rep), n, h.cfg.senders, f.pacedRate); err != nil {
			return err
		}
		if err := meter.stop(ctx, n); err != nil {
			return err
		}
		f.pacedLatency = append(f.pacedLatency, lat...)
	}
	h.logf("webhooks: %.0f deliveries/s (p50 %s, p99 %s) against %.0f raw creates/s (p50 %s, p99 %s); at %.0f/s p50 %s, p99 %s (raw creates p50 %s, p99 %s)",
		f.perSec, f.latency.percentile(50), f.latency.percentile(99), res.limits.creates,
		f.createLatency.percentile(50), f.createLatency.percentile(99), f.pacedRate, f.pacedLatency.percentile(50), f.pacedLatency.percentile(99),
		f.pacedCreateLatency.percentile(50), f.pacedCreateLatency.percentile(99))
	return nil
}

// pacedCreates creates n runs at rate/s, each from its own goroutine when due (open loop, as
// paced deliveries are sent), with input as their input, and returns each create's latency.
func (h *harness) pacedCreates(ctx context.Context, batch string, n int, rate float64, input []byte) (durations, error) {
	lat := make(durations, n)
	err := paced(ctx, n, rate, h.rawCreate(batch, input, lat))
	return lat, err
}

// startEndpointManager starts a manager that serves webhooks but runs no controller (the
// benchmark holds the leader lease), with extra flags, and a WebhookEndpoint name on slug,
// granted to it, whose signing Secret secretName holds secret.
func (h *harness) startEndpointManager(ctx context.Context, name, slug, secretName string, secret []byte, extra ...string) (*managerProc, error) {
	for _, ns := range []string{webhookNamespace, leaseNamespace} {
		if err := h.ensureNamespace(ctx, ns); err != nil {
			return nil, err
		}
	}
	if err := h.holdLease(ctx); err != nil {
		return nil, err
	}
	m, err := h.startManager(ctx, append([]string{"--leader-elect", "--leader-election-namespace=" + leaseNamespace,
		"--webhook-slug-grants=" + webhookNamespace + "=" + slug}, extra...)...)
	if err != nil {
		return nil, err
	}
	if err := h.createEndpoint(ctx, name, slug, secretName, secret); err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

// holdLease takes the manager's leader lease for the benchmark, for an hour (or finds it taken
// by an earlier figure), so that a manager started with --leader-elect serves the API but never
// runs the leader's controllers.
func (h *harness) holdLease(ctx context.Context) error {
	now := metav1.NewMicroTime(time.Now())
	holder, seconds := "centaur-bench", int32(3600)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: leaseNamespace, Name: leaseName},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: &holder, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now,
		},
	}
	if err := h.client.Create(ctx, lease); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("take the leader lease: %w", err)
	}
	return nil
}

// createEndpoint creates the signing Secret secretName and a GitHub-style WebhookEndpoint name
// on slug that starts bench-webhook runs, in webhookNamespace.
func (h *harness) createEndpoint(ctx context.Context, name, slug, secretName string, secret []byte) error {
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: webhookNamespace, Name: secretName},
		Data:       map[string][]byte{"secret": secret},
	}
	if err := h.client.Create(ctx, sec); err != nil {
		return fmt.Errorf("create the webhook secret: %w", err)
	}
	ep := &workflowsv1alpha1.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: webhookNamespace, Name: name},
		Spec: workflowsv1alpha1.WebhookEndpointSpec{
			Slug: slug, WorkflowName: testflows.WebhookName, Provider: workflowsv1alpha1.ProviderGitHub,
			TriggerKey: "X-GitHub-Delivery",
			Auth:       &workflowsv1alpha1.WebhookAuth{SecretRefs: []workflowsv1alpha1.SecretKeyRef{{Name: secretName, Key: "secret"}}},
		},
	}
	if err := h.client.Create(ctx, ep); err != nil {
		return fmt.Errorf("create the webhook endpoint: %w", err)
	}
	return nil
}

// sender signs and sends deliveries.
type sender struct {
	url    string
	secret []byte
	client *http.Client
}

// awaitRoute sends a delivery until the endpoint answers 202 (the route is served once the
// endpoint is Ready), and returns the input of the run it started: the envelope the raw
// creates then carry, so both sides write objects of the same size.
func (s *sender) awaitRoute(ctx context.Context, h *harness) ([]byte, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		status, body, err := s.send(ctx, "warmup")
		if err == nil && status == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the webhook endpoint did not answer 202 within a minute: %d %s %v (%s)", status, body, err, h.endpointState(ctx))
		}
		if err := testcluster.Sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
	runs, err := h.listRuns(ctx, webhookNamespace)
	if err != nil {
		return nil, err
	}
	if len(runs) != 1 || runs[0].Spec.Input == nil {
		return nil, fmt.Errorf("the warm-up delivery left %d runs, want 1 with an input", len(runs))
	}
	return runs[0].Spec.Input.Raw, nil
}

// endpointState describes the endpoint's Ready condition, for an error message.
func (h *harness) endpointState(ctx context.Context) string {
	ep := &workflowsv1alpha1.WebhookEndpoint{}
	if err := h.client.Get(ctx, keyOf(webhookNamespace, "bench"), ep); err != nil {
		return err.Error()
	}
	c := meta.FindStatusCondition(ep.Status.Conditions, workflowsv1alpha1.ConditionReady)
	if c == nil {
		return "the endpoint has no Ready condition"
	}
	return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
}

// deliver sends n deliveries, from senders goroutines as fast as they are answered (rate 0)
// or at rate deliveries/s, and returns deliveries/s and the latency of each. Delivery ids
// start with batch.
func (s *sender) deliver(ctx context.Context, batch string, n, senders int, rate float64) (float64, durations, error) {
	lat := make(durations, n)
	start := time.Now()
	send := func(ctx context.Context, i int) error {
		t := time.Now()
		status, body, err := s.send(ctx, fmt.Sprintf("%s-%06d", batch, i))
		if err != nil {
			return err
		}
		if status != http.StatusAccepted {
			return fmt.Errorf("delivery %d: %d %s", i, status, body)
		}
		lat[i] = time.Since(t)
		return nil
	}
	var err error
	if rate > 0 {
		err = paced(ctx, n, rate, send)
	} else {
		err = parallel(ctx, n, senders, send)
	}
	if err != nil {
		return 0, nil, err
	}
	return float64(n) / time.Since(start).Seconds(), lat, nil
}

// send posts one signed delivery with delivery id id and returns the answer's status and body.
func (s *sender) send(ctx context.Context, id string) (int, string, error) {
	a, err := s.exchange(ctx, id)
	return a.status, a.body, err
}

// answer is the manager's answer to a delivery.
type answer struct {
	status int
	header http.Header
	body   string
}

// exchange posts one signed delivery with delivery id id and returns the whole answer.
func (s *sender) exchange(ctx context.Context, id string) (answer, error) {
	body := fmt.Appendf(nil, `{"action":"opened","delivery":%q,"padding":%q}`, id, strings.Repeat("x", webhookBodyBytes))
	mac := hmac.New(sha256.New, s.secret)
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return answer{}, fmt.Errorf("build a delivery: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "issues")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := s.client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("send delivery %s: %w", id, err)
	}
	defer func() { _ = resp.Body.Close() }()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("read the answer to delivery %s: %w", id, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(reply)}, nil
}
