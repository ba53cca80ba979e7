package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
)

// The start figure starts one-step runs through the REST API (POST /api/workflows/runs), one
// at a time, alternating eager_start on and off, and measures the start latency: from sending
// the request to the first step's recorded start. With eager_start the manager executes the
// first segment in the request; without, the controller picks the run up from its watch.

// Names of the start figure's objects: the manager's default API keys Secret.
const (
	startNamespace = "bench-starts"
	keysNamespace  = "centaur-system"
	keysSecret     = "centaur-api-keys"
)

// startFigures are the start latencies through the REST API, and the time to the answer.
type startFigures struct {
	on, off, onResponse, offResponse durations
}

// measureStarts measures cfg.starts starts with eager_start on and as many with it off.
func (h *harness) measureStarts(ctx context.Context, res *results) error {
	// The figure's manager executes runs: the webhook figure's thousands of unexecuted runs
	// would be its backlog, and every start would wait behind them.
	if err := h.clearEarlierRuns(ctx); err != nil {
		return err
	}
	for _, ns := range []string{startNamespace, keysNamespace} {
		if err := h.ensureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	key, err := h.createAPIKey(ctx)
	if err != nil {
		return err
	}
	// The figure measures how soon a start runs its first step, not the API key's rate limit
	// (--api-rate, a protection): starts follow one another as fast as they finish.
	m, err := h.startManager(ctx, "--api-rate=1000000", "--api-burst=1000000")
	if err != nil {
		return err
	}
	defer m.stop()
	st := &starter{h: h, url: m.apiURL + "/api/workflows/runs", key: key, client: &http.Client{}}
	if _, _, err := st.start(ctx, false); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	f := &res.starts
	// The CPU table's row is per start, eager or not, from POST to the first step.
	meter, err := h.startMeter(ctx, m, "starts")
	if err != nil {
		return err
	}
	for range h.cfg.starts {
		for _, eager := range []bool{true, false} {
			latency, answer, err := st.start(ctx, eager)
			if err != nil {
				return err
			}
			if eager {
				f.on, f.onResponse = append(f.on, latency), append(f.onResponse, answer)
			} else {
				f.off, f.offResponse = append(f.off, latency), append(f.offResponse, answer)
			}
		}
	}
	if err := meter.stop(ctx, 2*h.cfg.starts); err != nil {
		return err
	}
	h.logf("starts: eager_start on p50 %s p99 %s; off p50 %s p99 %s",
		f.on.percentile(50), f.on.percentile(99), f.off.percentile(50), f.off.percentile(99))
	return nil
}

// createAPIKey stores a fresh API key for startNamespace in the manager's keys Secret and
// returns it.
func (h *harness) createAPIKey(ctx context.Context) (string, error) {
	return h.grantAPIKey(ctx, "bench", startNamespace)
}

// grantAPIKey stores a fresh API key for ns under id in the manager's keys Secret (created
// when missing, else given the entry beside the others) and returns it.
func (h *harness) grantAPIKey(ctx context.Context, id, ns string) (string, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make an API key: %w", err)
	}
	key := "bench." + hex.EncodeToString(raw)
	sum := sha256.Sum256([]byte(key))
	entry, err := json.Marshal(map[string]any{"sha256": hex.EncodeToString(sum[:]), "namespaces": []string{ns}})
	if err != nil {
		return "", fmt.Errorf("encode the key entry: %w", err)
	}
	sec := &corev1.Secret{}
	err = h.client.Get(ctx, keyOf(keysNamespace, keysSecret), sec)
	switch {
	case apierrors.IsNotFound(err):
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: keysNamespace, Name: keysSecret},
			Data:       map[string][]byte{id: entry},
		}
		if err := h.client.Create(ctx, sec); err != nil {
			return "", fmt.Errorf("create the API keys secret: %w", err)
		}
	case err != nil:
		return "", fmt.Errorf("read the API keys secret: %w", err)
	default:
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		sec.Data[id] = entry
		if err := h.client.Update(ctx, sec); err != nil {
			return "", fmt.Errorf("add key %s to the API keys secret: %w", id, err)
		}
	}
	return key, nil
}

// starter starts runs through the REST API.
type starter struct {
	h      *harness
	url    string
	key    string
	client *http.Client
}

// start starts one run of one no-op step, waits until it succeeded, and returns the time from
// the request to the step's start and the time to the answer.
func (s *starter) start(ctx context.Context, eager bool) (latency, answer time.Duration, err error) {
	body, err := json.Marshal(map[string]any{
		"workflow_name": testflows.NoopName, "input": testflows.NoopInput{Steps: 1},
		"eager_start": eager, "namespace": startNamespace,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("encode a start request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("build a start request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", s.key)
	sent := time.Now()
	id, err := s.post(req)
	if err != nil {
		return 0, 0, err
	}
	answer = time.Since(sent)
	if _, err := s.h.waitRun(ctx, startNamespace, id, sent); err != nil {
		return 0, 0, err
	}
	run := &workflowsv1alpha1.WorkflowRun{}
	if err := s.h.client.Get(ctx, keyOf(startNamespace, id), run); err != nil {
		return 0, 0, fmt.Errorf("read run %s: %w", id, err)
	}
	first, ok := entry(run, testflows.StepName(0))
	if !ok || first.StartedAt == nil {
		return 0, 0, fmt.Errorf("run %s has no first step", id)
	}
	return first.StartedAt.Sub(sent), answer, nil
}

// post sends the start request and returns the new run's id.
func (s *starter) post(req *http.Request) (string, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", s.url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read the answer of POST %s: %w", s.url, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST %s: %s: %s", s.url, resp.Status, data)
	}
	var run struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &run); err != nil || run.ID == "" {
		return "", fmt.Errorf("POST %s answered without a run id: %s", s.url, data)
	}
	return run.ID, nil
}
