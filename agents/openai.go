package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// Defaults of the OpenAI-compatible client.
const (
	// DefaultTimeout bounds a whole turn, retries and waits between them included.
	DefaultTimeout = 2 * time.Minute
	// DefaultMaxRetries is how many times a turn is retried after a 429, a 5xx or a failed
	// connection, on top of the first call.
	DefaultMaxRetries = 3
	// DefaultMinBackoff and DefaultMaxBackoff bound the exponential wait between retries when
	// the backend does not say how long to wait.
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 30 * time.Second
	// DefaultMaxRetryAfter caps the wait a Retry-After header asks for.
	DefaultMaxRetryAfter = time.Minute
)

// maxReplyBytes bounds the body read from the backend.
const maxReplyBytes = 8 << 20

// errTurnTimeout is the cause of the context of a turn whose timeout passed.
var errTurnTimeout = errors.New("the turn's timeout passed")

// OpenAI is a Backend that speaks the OpenAI Chat Completions wire format, which OpenAI and
// most self-hosted and proxy servers (vLLM, Ollama, LiteLLM, llama.cpp's server) share:
// POST {BaseURL}/chat/completions with {model, messages, temperature, max_tokens}, reply in
// choices[0].message.content with usage figures, errors as {"error": {message, type, code}}.
//
// A 429 or a 5xx (and 408, or a failed connection) is retried up to MaxRetries times, after the
// wait the backend's Retry-After header asks for (seconds or an HTTP date; capped at
// MaxRetryAfter) or else an exponential backoff with jitter. Any other 4xx fails at once with
// the upstream's message. Timeout bounds the whole turn.
type OpenAI struct {
	// BaseURL is the API's root, for example "https://api.openai.com/v1" or
	// "http://vllm.ml.svc:8000/v1".
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>"; empty sends no Authorization header.
	APIKey string
	// HTTPClient makes the calls; nil uses http.DefaultClient. Timeout governs the deadline.
	HTTPClient *http.Client
	// Timeout bounds a whole turn, retries included; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is how many retries follow the first call; zero or less means none.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff; zero means the defaults.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps the wait a Retry-After header asks for; zero means the default.
	MaxRetryAfter time.Duration
	// Clock returns the current time, to read Retry-After dates; nil means time.Now.
	Clock func() time.Time
}

// chatRequest is the body of POST /chat/completions.
type chatRequest struct {
	Model       string    `json:"model"`
	Messages    []Message `json:"messages"`
	Temperature *float64  `json:"temperature,omitempty"`
	MaxTokens   int       `json:"max_tokens,omitempty"`
}

// chatResponse is the part of a Chat Completions reply the client reads.
type chatResponse struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
		TotalTokens      int64 `json:"total_tokens"`
	} `json:"usage"`
	Error *apiError `json:"error"`
}

// apiError is the error object of an OpenAI-style error body.
type apiError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// failure is one failed call: the error to report and whether a retry may help.
type failure struct {
	err        *Error
	transient  bool
	retryAfter time.Duration
	hinted     bool // retryAfter came from the backend
}

// Complete sends the turn and returns the reply, retrying transient failures within the
// turn's timeout. It returns an *Error when the turn failed, or ctx's error when ctx was
// cancelled.
func (c *OpenAI) Complete(ctx context.Context, req Request) (Response, error) {
	body, err := json.Marshal(chatRequest{Model: req.Model, Messages: req.Messages(), Temperature: req.Temperature, MaxTokens: req.MaxTokens})
	if err != nil {
		return Response{}, &Error{Reason: ReasonConfigInvalid, Message: fmt.Sprintf("encode the request: %v", err), Err: err}
	}
	turnCtx, cancel := context.WithTimeoutCause(ctx, c.timeout(), errTurnTimeout)
	defer cancel()
	var last *failure
	for attempt := 1; ; attempt++ {
		resp, f := c.call(turnCtx, body, req.Model)
		if f == nil {
			resp.Attempts = attempt
			return resp, nil
		}
		if err := c.interrupted(ctx, turnCtx, attempt, last); err != nil {
			return Response{}, err
		}
		f.err.Attempts, last = attempt, f
		if !f.transient {
			return Response{}, f.err
		}
		if attempt > c.MaxRetries {
			return Response{}, c.gaveUp(attempt, f)
		}
		_ = sleep(turnCtx, c.backoff(attempt, f)) // a done context shows at the next check
		if err := c.interrupted(ctx, turnCtx, attempt, last); err != nil {
			return Response{}, err
		}
	}
}

// call makes one POST and classifies its outcome.
func (c *OpenAI) call(ctx context.Context, body []byte, model string) (Response, *failure) {
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(), bytes.NewReader(body))
	if err != nil {
		return Response{}, &failure{err: &Error{Reason: ReasonConfigInvalid, Message: fmt.Sprintf("the base URL %q does not make a request: %v", c.BaseURL, err), Err: err}}
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")
	if c.APIKey != "" {
		httpReq.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	resp, err := c.client().Do(httpReq)
	if err != nil {
		return Response{}, &failure{transient: true, err: &Error{Reason: ReasonUpstreamUnavailable,
			Message: fmt.Sprintf("could not reach %s: %v", c.where(), unwrapURLError(err)), Err: err}}
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return Response{}, &failure{transient: true, err: &Error{Reason: ReasonUpstreamUnavailable, StatusCode: resp.StatusCode,
			Message: fmt.Sprintf("read the reply of %s: %v", c.where(), unwrapURLError(err)), Err: err}}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return c.decode(resp.StatusCode, data, model)
	}
	return Response{}, c.classify(resp, data)
}

// decode reads a 2xx reply.
func (c *OpenAI) decode(status int, data []byte, model string) (Response, *failure) {
	invalid := func(format string, args ...any) (Response, *failure) {
		return Response{}, &failure{err: &Error{Reason: ReasonInvalidResponse, StatusCode: status,
			Message: fmt.Sprintf("%s answered HTTP %d but ", c.where(), status) + fmt.Sprintf(format, args...)}}
	}
	if len(data) > maxReplyBytes {
		return invalid("with a body over %d bytes", maxReplyBytes)
	}
	var reply chatResponse
	if err := json.Unmarshal(data, &reply); err != nil {
		return invalid("with a body that is not a Chat Completions response (%v): %s", err, snippet(data))
	}
	if reply.Error != nil && reply.Error.Message != "" {
		return Response{}, &failure{err: &Error{Reason: ReasonUpstreamRejected, StatusCode: status,
			Message: fmt.Sprintf("%s answered HTTP %d with an error: %s", c.where(), status, reply.Error.describe())}}
	}
	if len(reply.Choices) == 0 {
		return invalid("with no choices: %s", snippet(data))
	}
	out := Response{Model: reply.Model}
	if out.Model == "" {
		out.Model = model
	}
	if content := reply.Choices[0].Message.Content; content != nil {
		out.Text = *content
	}
	if u := reply.Usage; u != nil {
		out.Usage = Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	}
	return out, nil
}

// classify turns a non-2xx reply into a failure: 408, 429 and 5xx are transient (with the
// backend's Retry-After hint), any other status is a rejection.
func (c *OpenAI) classify(resp *http.Response, data []byte) *failure {
	status := resp.StatusCode
	detail := upstreamMessage(data)
	if status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500 {
		f := &failure{transient: true, err: &Error{Reason: ReasonUpstreamUnavailable, StatusCode: status,
			Message: fmt.Sprintf("HTTP %d %s: %s", status, http.StatusText(status), detail)}}
		f.retryAfter, f.hinted = retryAfter(resp.Header, c.now())
		return f
	}
	return &failure{err: &Error{Reason: ReasonUpstreamRejected, StatusCode: status,
		Message: fmt.Sprintf("%s rejected the request with HTTP %d %s: %s", c.where(), status, http.StatusText(status), detail)}}
}

// interrupted returns the error to give up with when ctx (the caller's) or turnCtx (the
// turn's timeout) is done, and nil while both are live. last is the latest transient failure
// the turn was retrying, if any, so that the timeout's message says what the backend did.
func (c *OpenAI) interrupted(ctx, turnCtx context.Context, attempt int, last *failure) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if turnCtx.Err() == nil {
		return nil
	}
	e := &Error{Reason: ReasonTimeout, Attempts: attempt, Err: context.Cause(turnCtx),
		Message: fmt.Sprintf("no reply from %s within the turn's timeout of %s (%d attempt(s))", c.where(), c.timeout(), attempt)}
	if last != nil {
		e.Message += "; the last failure before it: " + last.err.Message
		e.StatusCode = last.err.StatusCode
	}
	return e
}

// gaveUp is the error of a turn whose retries ran out.
func (c *OpenAI) gaveUp(attempt int, f *failure) *Error {
	msg := f.err.Message
	if f.err.StatusCode != 0 {
		msg = fmt.Sprintf("%s still failed after %d attempt(s); the last: %s", c.where(), attempt, f.err.Message)
	}
	return &Error{Reason: ReasonUpstreamUnavailable, Message: msg, StatusCode: f.err.StatusCode, Attempts: attempt, Err: f.err.Err}
}

// backoff is the wait before the retry that follows attempt: what the backend asked for
// (capped), or an exponential backoff with jitter.
func (c *OpenAI) backoff(attempt int, f *failure) time.Duration {
	if f.hinted {
		return min(f.retryAfter, orDefault(c.MaxRetryAfter, DefaultMaxRetryAfter))
	}
	lo, hi := orDefault(c.MinBackoff, DefaultMinBackoff), orDefault(c.MaxBackoff, DefaultMaxBackoff)
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

func (c *OpenAI) endpoint() string { return strings.TrimRight(c.BaseURL, "/") + "/chat/completions" }

// where names the backend in messages, without any credentials of its URL.
func (c *OpenAI) where() string {
	if u, err := url.Parse(c.BaseURL); err == nil && u.Host != "" {
		return u.Redacted()
	}
	return "the backend"
}

func (c *OpenAI) timeout() time.Duration { return orDefault(c.Timeout, DefaultTimeout) }

func (c *OpenAI) client() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

func (c *OpenAI) now() time.Time {
	if c.Clock != nil {
		return c.Clock()
	}
	return time.Now()
}

// retryAfter reads how long the backend asks to wait: "retry-after-ms" (as OpenAI sends), or
// "Retry-After" in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if ms, err := strconv.ParseFloat(strings.TrimSpace(h.Get("Retry-After-Ms")), 64); err == nil && ms >= 0 && ms < 1e9 {
		return time.Duration(ms * float64(time.Millisecond)), true
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, 1<<20)) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// upstreamMessage extracts the message of an OpenAI-style error body, or quotes the body.
func upstreamMessage(data []byte) string {
	var body struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(data, &body); err == nil && body.Error != nil && body.Error.Message != "" {
		return body.Error.describe()
	}
	if s := snippet(data); s != "" {
		return s
	}
	return "(empty body)"
}

// describe renders the error as "message (type t, code c)", cut to textbound.LogValue: a
// backend may answer with megabytes of error text, which the turn's status, Events and logs
// would otherwise each copy.
func (e *apiError) describe() string {
	var extra []string
	if e.Type != "" {
		extra = append(extra, "type "+e.Type)
	}
	if code := strings.Trim(string(e.Code), `"`); code != "" && code != "null" {
		extra = append(extra, "code "+code)
	}
	if len(extra) == 0 {
		return textbound.Cut(e.Message, textbound.LogValue)
	}
	return textbound.Cut(fmt.Sprintf("%s (%s)", e.Message, strings.Join(extra, ", ")), textbound.LogValue)
}

// snippet quotes the start of a body for a message.
func snippet(data []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(data), "\uFFFD"))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// unwrapURLError drops the "Post URL:" prefix net/http adds, since messages name the backend.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
