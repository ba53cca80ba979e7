package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
)

// The flood figure is issue #13's load test: cfg.floodDeliveries unauthenticated deliveries of
// 1 MiB each (the most the manager reads of a body), sent by cfg.floodSenders senders at once
// over loopback, while signed deliveries arrive at cfg.floodSignedRate/s. It is judged by the
// manager's peak RSS (VmHWM) against the memory limit of config/manager/manager.yaml, and by
// the signed deliveries: each is answered 202 (and its run exists, one per delivery) or 429/503
// with Retry-After, which a sender retries; none is lost or answered anything else. Then the
// open flood (measureOpenFlood) fills one namespace's quota with unsigned deliveries, and a
// fan_out run over cfg.fanOutNames names (measureFanOut) crosses --max-children-per-run.

// Names of the flood figure's objects, in the webhook figure's namespace (the manager reads
// Secrets only there).
const (
	floodEndpoint = "flood"
	floodSlug     = "flood"
	floodSecret   = "bench-flood-secret"
)

// floodBodyBytes is each unauthenticated delivery's size: the manager's cap on a body.
const floodBodyBytes = 1 << 20

// floodFigures is what the flood figure measured.
type floodFigures struct {
	// took is how long the unauthenticated deliveries took, all sent and answered.
	took time.Duration
	// peakRSS is the manager's VmHWM after the flood; limit its container's memory limit.
	peakRSS, limit int64
	// flood and signed count the answers by status ("error" for a failed exchange).
	flood, signed map[string]int
	// lost describes signed deliveries answered otherwise than 202, or 429/503 with
	// Retry-After, and 202s whose run is missing or shared.
	lost []string
}

// measureFlood runs the flood against a manager of its own, started for it, so that its peak
// RSS is the flood's.
func (h *harness) measureFlood(ctx context.Context, res *results) error {
	limit, err := managerMemoryLimit()
	if err != nil {
		return err
	}
	if err := h.maintainEtcd(ctx, "before the floods"); err != nil {
		return err
	}
	// Runs are only created, never executed, as in the webhook figure.
	secret := []byte("bench-flood-signing-secret")
	// As behind an ingress: the manager trusts the loopback proxy, so that the flood's senders
	// (each with its own forwarded address) and the signed sender (the proxy's own) are told
	// apart, as the unverified-delivery budget per client needs.
	m, err := h.startEndpointManager(ctx, floodEndpoint, floodSlug, floodSecret, secret, "--trusted-proxies=127.0.0.0/8",
		"--webhook-slug-grants="+webhookNamespace+"="+floodSlug+","+openNamespace+"="+openSlug)
	if err != nil {
		return err
	}
	defer m.stop()
	url := m.apiURL + "/api/webhooks/" + floodSlug
	signer := &sender{url: url, secret: secret, client: &http.Client{Timeout: time.Minute}}
	if err := awaitAccepted(ctx, signer); err != nil {
		return fmt.Errorf("%w (%s)", err, h.endpointState(ctx))
	}

	f := &res.flood
	f.limit = limit
	floodCtx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	defer cancel()
	stop := make(chan struct{})
	signedDone := make(chan *signedStream, 1)
	go func() { signedDone <- streamSigned(floodCtx, signer, "flood-signed", h.cfg.floodSignedRate, stop) }()
	start := time.Now()
	f.flood = floodUnauthenticated(floodCtx, url, h.cfg.floodDeliveries, h.cfg.floodSenders)
	f.took = time.Since(start)
	// The signed stream goes on a second longer, so that it also covers the manager's recovery.
	if err := testcluster.Sleep(ctx, time.Second); err != nil {
		return err
	}
	if f.peakRSS, f.signed, f.lost, err = h.endSigned(ctx, m, stop, signedDone); err != nil {
		return err
	}
	h.logf("flood: %d unauthenticated 1 MiB deliveries from %d senders in %s, answered %s; signed at %.0f/s answered %s; manager peak RSS %.0f MiB of a %.0f MiB limit; %d lost",
		h.cfg.floodDeliveries, h.cfg.floodSenders, f.took.Round(time.Millisecond), fmtCounts(f.flood), h.cfg.floodSignedRate, fmtCounts(f.signed),
		mib(f.peakRSS), mib(f.limit), len(f.lost))
	for _, l := range f.lost {
		h.logf("flood: lost: %s", l)
	}
	if err := h.measureOpenFlood(ctx, m, signer, &res.openFlood); err != nil {
		return err
	}
	// The fan-out has a manager of its own, which executes runs: this one only serves.
	m.stop()
	return h.measureFanOut(ctx, limit, &res.fanOut)
}

// openSenders bounds the open flood's concurrent senders, under the manager's 64 deliveries in
// flight.
const openSenders = 32

// Names of the open flood's objects: a provider-none endpoint in a namespace of its own.
const (
	openNamespace = "bench-open"
	openEndpoint  = "flood-open"
	openSlug      = "flood-open"
)

// openFloodFigures is what the open flood measured: distinct 1 MiB deliveries to an endpoint
// that takes them unsigned, each a run, until the namespace's quota answers.
type openFloodFigures struct {
	took time.Duration
	// peakRSS is the manager's VmHWM after both floods.
	peakRSS int64
	// open and signed count the answers by status.
	open, signed map[string]int
	// lost describes signed deliveries answered otherwise than 202, or 429/503 with
	// Retry-After, and 202s whose run is missing.
	lost []string
	// spaceExceeded counts answers that mention etcd's "database space exceeded".
	spaceExceeded int
}

// measureOpenFlood sends cfg.floodDeliveries distinct unsigned 1 MiB deliveries to a
// provider-none slug in a namespace of its own, while signed deliveries go on to the flood
// figure's slug in another namespace: the open slug's runs fill its namespace's quota
// (--max-namespace-bytes) and are then refused with 429, and nothing meets etcd's quota.
func (h *harness) measureOpenFlood(ctx context.Context, m *managerProc, signer *sender, f *openFloodFigures) error {
	if err := h.ensureNamespace(ctx, openNamespace); err != nil {
		return err
	}
	ep := &workflowsv1alpha1.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: openNamespace, Name: openEndpoint},
		Spec:       workflowsv1alpha1.WebhookEndpointSpec{Slug: openSlug, WorkflowName: testflows.WebhookName, Provider: workflowsv1alpha1.ProviderNone},
	}
	if err := h.client.Create(ctx, ep); err != nil {
		return fmt.Errorf("create the open endpoint: %w", err)
	}
	url := m.apiURL + "/api/webhooks/" + openSlug
	if err := awaitOpen(ctx, url); err != nil {
		return err
	}
	floodCtx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	defer cancel()
	stop := make(chan struct{})
	signedDone := make(chan *signedStream, 1)
	go func() { signedDone <- streamSigned(floodCtx, signer, "open-signed", h.cfg.floodSignedRate, stop) }()
	start := time.Now()
	// Fewer senders than the deliveries in flight: each is read and stored rather than turned
	// away busy, so the namespace's quota is what answers once it is spent.
	f.open, f.spaceExceeded = floodOpen(floodCtx, url, h.cfg.floodDeliveries, min(h.cfg.floodSenders, openSenders))
	f.took = time.Since(start)
	if err := testcluster.Sleep(ctx, time.Second); err != nil {
		return err
	}
	var err error
	if f.peakRSS, f.signed, f.lost, err = h.endSigned(ctx, m, stop, signedDone); err != nil {
		return err
	}
	h.logf("open flood: %d distinct unsigned 1 MiB deliveries to a provider-none slug in %s, answered %s (%d mention database space exceeded); signed to the other slug answered %s; peak RSS %.0f MiB; %d lost",
		h.cfg.floodDeliveries, f.took.Round(time.Millisecond), fmtCounts(f.open), f.spaceExceeded, fmtCounts(f.signed), mib(f.peakRSS), len(f.lost))
	for _, l := range f.lost {
		h.logf("open flood: lost: %s", l)
	}
	return nil
}

// endSigned stops the signed stream and returns the manager's peak RSS, the stream's answers
// and what it lost, runs missing for a 202 included.
func (h *harness) endSigned(ctx context.Context, m *managerProc, stop chan struct{}, done <-chan *signedStream) (int64, map[string]int, []string, error) {
	close(stop)
	stream := <-done
	peak, err := testcluster.PeakRSS(m.PID())
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read the manager's peak RSS: %w", err)
	}
	missing, err := h.missingRuns(ctx, stream.runs)
	if err != nil {
		return 0, nil, nil, err
	}
	return peak, stream.counts, append(stream.lost, missing...), nil
}

// awaitOpen sends an unsigned delivery until the open endpoint answers 202.
func awaitOpen(ctx context.Context, url string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Post(url, "application/json", strings.NewReader(`{"warmup": true}`))
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the open endpoint did not answer 202 within a minute: %v", err)
		}
		if err := testcluster.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// floodOpen sends n distinct unsigned deliveries of floodBodyBytes from senders goroutines, as
// as many senders' addresses, and counts the answers by status, and those that mention etcd's
// "database space exceeded".
func floodOpen(ctx context.Context, url string, n, senders int) (counts map[string]int, spaceExceeded int) {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	var mu sync.Mutex
	counts = map[string]int{}
	_ = parallel(ctx, n, senders, func(ctx context.Context, i int) error {
		body := bytes.Repeat([]byte("x"), floodBodyBytes)
		head := fmt.Sprintf(`{"delivery":%d,"padding":"`, i)
		copy(body, head)
		body[len(body)-2], body[len(body)-1] = '"', '}'
		status, exceeded := "error", false
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.19.%d.%d", (i%senders)/250, (i%senders)%250+1))
			var resp *http.Response
			if resp, err = client.Do(req); err == nil {
				reply, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				status, exceeded = fmt.Sprint(resp.StatusCode), strings.Contains(string(reply), "database space exceeded")
			}
		}
		mu.Lock()
		defer mu.Unlock()
		counts[status]++
		if exceeded {
			spaceExceeded++
		}
		return nil
	})
	return counts, spaceExceeded
}

// awaitAccepted sends signed deliveries until one is answered 202: the endpoint is served.
func awaitAccepted(ctx context.Context, s *sender) error {
	deadline := time.Now().Add(time.Minute)
	for {
		a, err := s.exchange(ctx, "flood-warmup")
		if err == nil && (a.status == http.StatusAccepted || a.status == http.StatusOK) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the flood endpoint did not answer 202 within a minute: %d %s %v", a.status, a.body, err)
		}
		if err := testcluster.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// floodUnauthenticated sends n deliveries of floodBodyBytes with a wrong signature from
// senders goroutines at once, as many senders' addresses (X-Forwarded-For, one per sender
// slot: a distributed flood, which no per-client budget stops), and counts the answers by
// status. A failed exchange (the manager
// may close a connection it refuses) counts as "error": the figure judges the manager's memory
// and the signed deliveries, not these answers.
func floodUnauthenticated(ctx context.Context, url string, n, senders int) map[string]int {
	body := bytes.Repeat([]byte("x"), floodBodyBytes)
	copy(body, `{"action":"opened","padding":"`)
	body[len(body)-2], body[len(body)-1] = '"', '}'
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	var mu sync.Mutex
	counts := map[string]int{}
	_ = parallel(ctx, n, senders, func(ctx context.Context, i int) error {
		status := "error"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "issues")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("forged-%06d", i))
			req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.18.%d.%d", (i%senders)/250, (i%senders)%250+1))
			var resp *http.Response
			if resp, err = client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				status = fmt.Sprint(resp.StatusCode)
			}
		}
		mu.Lock()
		counts[status]++
		mu.Unlock()
		return nil // every delivery is sent, whatever became of the others
	})
	return counts
}

// signedStream is what the signed deliveries sent during the flood got.
type signedStream struct {
	counts map[string]int
	lost   []string
	// runs names the run of each 202, by delivery id.
	runs map[string]string
}

// streamSigned sends a signed delivery every 1/rate s, each from its own goroutine, until stop
// is closed, and classifies the answers.
func streamSigned(ctx context.Context, s *sender, prefix string, rate float64, stop <-chan struct{}) *signedStream {
	out := &signedStream{counts: map[string]int{}, runs: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%06d", prefix, i)
		wg.Go(func() {
			a, err := s.exchange(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			out.classify(id, a, err)
		})
		select {
		case <-tick.C:
			continue
		case <-stop:
		case <-ctx.Done():
		}
		break
	}
	wg.Wait()
	return out
}

// classify records one signed delivery's answer; the caller holds the stream's lock.
func (out *signedStream) classify(id string, a answer, err error) {
	if err != nil {
		out.counts["error"]++
		out.lost = append(out.lost, fmt.Sprintf("%s: %v", id, err))
		return
	}
	out.counts[fmt.Sprint(a.status)]++
	switch a.status {
	case http.StatusAccepted:
		var created struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(a.body), &created); err != nil || created.ID == "" {
			out.lost = append(out.lost, fmt.Sprintf("%s: 202 without a run: %s", id, a.body))
			return
		}
		out.runs[id] = created.ID
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if a.header.Get("Retry-After") == "" {
			out.lost = append(out.lost, fmt.Sprintf("%s: %d without Retry-After", id, a.status))
		}
	default:
		out.lost = append(out.lost, fmt.Sprintf("%s: answered %d: %s", id, a.status, a.body))
	}
}

// missingRuns checks that each accepted delivery has a run of its own in the API server.
func (h *harness) missingRuns(ctx context.Context, runs map[string]string) ([]string, error) {
	list, err := h.listRuns(ctx, webhookNamespace)
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{}
	for _, r := range list {
		exists[r.Name] = true
	}
	var lost []string
	owner := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(runs)) {
		name := runs[id]
		switch {
		case !exists[name]:
			lost = append(lost, fmt.Sprintf("%s: answered 202 with run %s, which does not exist", id, name))
		case owner[name] != "":
			lost = append(lost, fmt.Sprintf("%s: answered 202 with run %s, the run of %s too", id, name, owner[name]))
		}
		owner[name] = id
	}
	return lost, nil
}

// fmtCounts renders answer counts by status, in order: "202×120, 429×3".
func fmtCounts(counts map[string]int) string {
	if len(counts) == 0 {
		return "none"
	}
	var parts []string
	for _, status := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s×%d", status, counts[status]))
	}
	return strings.Join(parts, ", ")
}
