package agents

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chatServer is a local Chat Completions endpoint whose answers a test scripts, one handler
// per call in order (the last one repeats).
type chatServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
	script   []http.HandlerFunc
	calls    atomic.Int32
}

type recordedRequest struct {
	method, path, auth, contentType string
	body                            map[string]any
}

func newChatServer(t *testing.T, script ...http.HandlerFunc) *chatServer {
	t.Helper()
	s := &chatServer{script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *chatServer) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	rec := recordedRequest{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type")}
	_ = json.Unmarshal(raw, &rec.body)
	n := int(s.calls.Add(1))
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
	s.script[min(n, len(s.script))-1](w, r)
}

func (s *chatServer) request(i int) recordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[i]
}

func reply(text string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "test-model-2026",
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text}, "finish_reason": "stop"}},
			"usage":   map[string]any{"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
		})
	}
}

func failWith(status int, message, typ, code string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": message, "type": typ, "code": code}})
	}
}

func expectError(t *testing.T, err error, reason string, attempts int) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want an *Error with reason %s", err, err, reason)
	}
	if e.Reason != reason || e.Attempts != attempts {
		t.Fatalf("reason %s after %d attempt(s), want %s after %d: %s", e.Reason, e.Attempts, reason, attempts, e.Message)
	}
	return e
}

func TestCompleteSendsTheConversationAndReadsTheReply(t *testing.T) {
	srv := newChatServer(t, reply("Looks like a bug."))
	temp := 0.2
	c := &OpenAI{BaseURL: srv.URL + "/v1/", APIKey: "sk-test"}
	resp, err := c.Complete(context.Background(), Request{
		Model: "test-model", Instructions: "You triage issues.", Prompt: "And now?", Temperature: &temp, MaxTokens: 64,
		History: []Message{{Role: RoleUser, Content: "first"}, {Role: RoleAssistant, Content: "first reply"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Response{Text: "Looks like a bug.", Model: "test-model-2026", Usage: Usage{PromptTokens: 12, CompletionTokens: 5, TotalTokens: 17}, Attempts: 1}
	if resp != want {
		t.Fatalf("response %+v, want %+v", resp, want)
	}
	req := srv.request(0)
	if req.method != http.MethodPost || req.path != "/v1/chat/completions" || req.auth != "Bearer sk-test" || req.contentType != "application/json" {
		t.Fatalf("request %s %s auth %q type %q", req.method, req.path, req.auth, req.contentType)
	}
	body, _ := json.Marshal(req.body)
	wantBody := `{"max_tokens":64,"messages":[{"content":"You triage issues.","role":"system"},{"content":"first","role":"user"},` +
		`{"content":"first reply","role":"assistant"},{"content":"And now?","role":"user"}],"model":"test-model","temperature":0.2}`
	if string(body) != wantBody {
		t.Fatalf("body\n got %s\nwant %s", body, wantBody)
	}
}

func TestCompleteOmitsUnsetParametersAndAnEmptyKey(t *testing.T) {
	srv := newChatServer(t, reply("ok"))
	c := &OpenAI{BaseURL: srv.URL}
	if _, err := c.Complete(context.Background(), Request{Model: "m", Prompt: "hi"}); err != nil {
		t.Fatal(err)
	}
	req := srv.request(0)
	if req.auth != "" {
		t.Errorf("Authorization %q sent without a key", req.auth)
	}
	for _, k := range []string{"temperature", "max_tokens"} {
		if _, ok := req.body[k]; ok {
			t.Errorf("%s sent though unset: %v", k, req.body)
		}
	}
	if msgs := req.body["messages"].([]any); len(msgs) != 1 {
		t.Errorf("messages %v, want only the prompt", msgs)
	}
}

func TestCompleteHonoursRetryAfterOn429(t *testing.T) {
	srv := newChatServer(t, failWith(429, "Rate limit reached", "requests", "rate_limit_exceeded", "Retry-After", "1"), reply("done"))
	c := &OpenAI{BaseURL: srv.URL, MaxRetries: 3, MinBackoff: time.Millisecond}
	start := time.Now()
	resp, err := c.Complete(context.Background(), Request{Model: "m", Prompt: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Fatalf("retried after %s; Retry-After asked for 1s", took)
	}
	if resp.Attempts != 2 || resp.Text != "done" {
		t.Fatalf("response %+v", resp)
	}
}

func TestCompleteCapsRetryAfter(t *testing.T) {
	srv := newChatServer(t, failWith(503, "overloaded", "server_error", "", "Retry-After", "3600"), reply("done"))
	c := &OpenAI{BaseURL: srv.URL, MaxRetries: 1, MaxRetryAfter: 20 * time.Millisecond}
	start := time.Now()
	if _, err := c.Complete(context.Background(), Request{Model: "m", Prompt: "hi"}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("waited %s; the cap is 20ms", took)
	}
}

func TestRetryAfterForms(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		header, value string
		want          time.Duration
		ok            bool
	}{
		{"Retry-After", "7", 7 * time.Second, true},
		{"Retry-After", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"Retry-After", now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"Retry-After", "-3", 0, false},
		{"Retry-After", "soon", 0, false},
		{"Retry-After-Ms", "250", 250 * time.Millisecond, true},
		{"X-Other", "5", 0, false},
	}
	for _, tc := range cases {
		h := http.Header{}
		h.Set(tc.header, tc.value)
		got, ok := retryAfter(h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %s gives %s %v, want %s %v", tc.header, tc.value, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCompleteBacksOffExponentiallyWithoutRetryAfter(t *testing.T) {
	srv := newChatServer(t, failWith(500, "boom", "server_error", ""), failWith(502, "bad gateway", "", ""), reply("finally"))
	c := &OpenAI{BaseURL: srv.URL, MaxRetries: 3, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}
	resp, err := c.Complete(context.Background(), Request{Model: "m", Prompt: "hi"})
	if err != nil || resp.Attempts != 3 {
		t.Fatalf("response %+v, error %v", resp, err)
	}
	for attempt, max := range map[int]time.Duration{1: time.Millisecond, 2: 2 * time.Millisecond, 5: 4 * time.Millisecond, 30: 4 * time.Millisecond} {
		if d := c.backoff(attempt, &failure{}); d < max/2 || d > max {
			t.Errorf("backoff after attempt %d is %s, want %s to %s", attempt, d, max/2, max)
		}
	}
}

func TestCompleteGivesUpAfterMaxRetries(t *testing.T) {
	srv := newChatServer(t, failWith(503, "The engine is currently overloaded", "server_error", ""))
	c := &OpenAI{BaseURL: srv.URL, MaxRetries: 2, MinBackoff: time.Millisecond}
	_, err := c.Complete(context.Background(), Request{Model: "m", Prompt: "hi"})
	e := expectError(t, err, ReasonUpstreamUnavailable, 3)
	if !strings.Contains(e.Message, "The engine is currently overloaded") || !strings.Contains(e.Message, "3 attempt(s)") || e.StatusCode != 503 {
		t.Fatalf("message %q status %d", e.Message, e.StatusCode)
	}
	if srv.calls.Load() != 3 {
		t.Fatalf("%d calls, want 3", srv.calls.Load())
	}
}

func TestCompleteFailsAtOnceOnOther4xxWithTheUpstreamMessage(t *testing.T) {
	srv := newChatServer(t, failWith(400, "The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"))
	c := &OpenAI{BaseURL: srv.URL, MaxRetries: 3}
	_, err := c.Complete(context.Background(), Request{Model: "gpt-9", Prompt: "hi"})
	e := expectError(t, err, ReasonUpstreamRejected, 1)
	for _, want := range []string{"HTTP 400", "The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q lacks %q", e.Message, want)
		}
	}
	if srv.calls.Load() != 1 {
		t.Fatalf("%d calls; a 400 is not retried", srv.calls.Load())
	}
}

func TestCompleteQuotesANonJSONErrorBody(t *testing.T) {
	srv := newChatServer(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "invalid api key", http.StatusUnauthorized)
	})
	_, err := (&OpenAI{BaseURL: srv.URL}).Complete(context.Background(), Request{Model: "m", Prompt: "hi"})
	e := expectError(t, err, ReasonUpstreamRejected, 1)
	if !strings.Contains(e.Message, "HTTP 401 Unauthorized: invalid api key") {
		t.Fatalf("message %q", e.Message)
	}
}

func TestCompleteTimesOut(t *testing.T) {
	srv := newChatServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	c := &OpenAI{BaseURL: srv.URL, Timeout: 100 * time.Millisecond, MaxRetries: 3}
	start := time.Now()
	_, err := c.Complete(context.Background(), Request{Model: "m", Prompt: "hi"})
	e := expectError(t, err, ReasonTimeout, 1)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("gave up after %s; the timeout is 100ms", took)
	}
	if !strings.Contains(e.Message, "100ms") {
		t.Fatalf("message %q does not say the timeout", e.Message)
	}
}

func TestCompleteTimesOutWhileWaitingToRetry(t *testing.T) {
	srv := newChatServer(t, failWith(429, "slow down", "requests", "", "Retry-After", "30"))
	c := &OpenAI{BaseURL: srv.URL, Timeout: 150 * time.Millisecond, MaxRetries: 3}
	_, err := c.Complete(context.Background(), Request{Model: "m", Prompt: "hi"})
	e := expectError(t, err, ReasonTimeout, 1)
	if !strings.Contains(e.Message, "slow down") || e.StatusCode != 429 {
		t.Fatalf("message %q status %d: the timeout should say what the backend last answered", e.Message, e.StatusCode)
	}
}

func TestCompleteReturnsTheCallersCancellation(t *testing.T) {
	started := make(chan struct{})
	srv := newChatServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := (&OpenAI{BaseURL: srv.URL}).Complete(ctx, Request{Model: "m", Prompt: "hi"})
	var e *Error
	if !errors.Is(err, context.Canceled) || errors.As(err, &e) {
		t.Fatalf("error %v, want the bare context.Canceled", err)
	}
}

func TestCompleteRejectsMalformedReplies(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"not json":   func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "<html>proxy</html>") },
		"no choices": func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"choices":[]}`) },
	} {
		srv := newChatServer(t, h)
		_, err := (&OpenAI{BaseURL: srv.URL, MaxRetries: 2}).Complete(context.Background(), Request{Model: "m", Prompt: "hi"})
		expectError(t, err, ReasonInvalidResponse, 1)
		if srv.calls.Load() != 1 {
			t.Errorf("%s: %d calls; a malformed 2xx is not retried", name, srv.calls.Load())
		}
	}
}

func TestCompleteReportsAnErrorInA200(t *testing.T) {
	srv := newChatServer(t, failWith(200, "content filtered", "invalid_request_error", ""))
	_, err := (&OpenAI{BaseURL: srv.URL}).Complete(context.Background(), Request{Model: "m", Prompt: "hi"})
	if e := expectError(t, err, ReasonUpstreamRejected, 1); !strings.Contains(e.Message, "content filtered") {
		t.Fatalf("message %q", e.Message)
	}
}

func TestCompleteRetriesAnUnreachableBackend(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := (&OpenAI{BaseURL: url, APIKey: "sk-secret", MaxRetries: 2, MinBackoff: time.Millisecond}).Complete(context.Background(), Request{Model: "m", Prompt: "hi"})
	e := expectError(t, err, ReasonUpstreamUnavailable, 3)
	if !strings.Contains(e.Message, "could not reach") || strings.Contains(e.Message, "sk-secret") {
		t.Fatalf("message %q", e.Message)
	}
}

func TestWhereRedactsCredentials(t *testing.T) {
	c := &OpenAI{BaseURL: "https://user:pass@llm.example.com/v1"}
	if got := c.where(); strings.Contains(got, "pass") {
		t.Fatalf("where() = %q shows the password", got)
	}
}
