package workflowfile

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// DefaultHTTPTimeout bounds one http call that sets no timeout (the step's own timeout, when
// shorter, wins).
const DefaultHTTPTimeout = 30 * time.Second

// DefaultMaxResponseBytes caps the body the http module reads from one response.
const DefaultMaxResponseBytes = 10 << 20

// httpModule builds the http module: request, get, post, put, patch and delete, each usable
// only inside a step function (a call is a side effect).
func httpModule(client *http.Client, maxBody int64) *starlarkstruct.Module {
	h := &httpCaller{client: client, maxBody: maxBody}
	members := starlark.StringDict{"request": starlark.NewBuiltin("http.request", h.request)}
	for _, method := range []string{"get", "post", "put", "patch", "delete"} {
		members[method] = starlark.NewBuiltin("http."+method, h.shorthand(strings.ToUpper(method)))
	}
	return &starlarkstruct.Module{Name: "http", Members: members}
}

// httpCaller makes the module's requests.
type httpCaller struct {
	client  *http.Client
	maxBody int64
}

// shorthand is http.get(url, ...) and friends: request with the method filled in.
func (h *httpCaller) shorthand(method string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return h.do(thread, b, method, args, kwargs)
	}
}

// request is http.request(method, url, headers=None, params=None, json=None, body=None,
// timeout=None).
func (h *httpCaller) request(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: missing the method, for example http.request(\"GET\", url)", b.Name())
	}
	method, ok := starlark.AsString(args[0])
	if !ok {
		return nil, fmt.Errorf("%s: the method must be a string, got %s", b.Name(), args[0].Type())
	}
	return h.do(thread, b, strings.ToUpper(method), args[1:], kwargs)
}

// do sends one request from inside a step and returns the response as a struct.
func (h *httpCaller) do(thread *starlark.Thread, b *starlark.Builtin, method string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	scope, err := requireStep(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var (
		rawURL                 string
		headers, params, jsonV starlark.Value = starlark.None, starlark.None, starlark.None
		body, timeout          starlark.Value = starlark.None, starlark.None
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "url", &rawURL, "headers?", &headers, "params?", &params,
		"json?", &jsonV, "body?", &body, "timeout?", &timeout); err != nil {
		return nil, err
	}
	req, err := h.build(scope.ctx, method, rawURL, params, headers, jsonV, body, timeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	defer req.cancel()
	resp, err := h.client.Do(req.Request)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, h.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the response: %w", method, rawURL, err)
	}
	if int64(len(data)) > h.maxBody {
		return nil, fmt.Errorf("%s %s: the response body is larger than %d bytes", method, rawURL, h.maxBody)
	}
	return responseValue(method, resp, data), nil
}

// builtRequest is a request and the cancel function of its timeout.
type builtRequest struct {
	*http.Request
	cancel context.CancelFunc
}

// build assembles the request: URL with params, headers, and a JSON or text body.
func (h *httpCaller) build(ctx context.Context, method, rawURL string, params, headers, jsonV, body, timeout starlark.Value) (*builtRequest, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http or https URL", rawURL)
	}
	if params != starlark.None {
		q := u.Query()
		if err := eachStringPair(params, "params", func(k, v string) { q.Add(k, v) }); err != nil {
			return nil, err
		}
		u.RawQuery = q.Encode()
	}
	var payload io.Reader
	contentType := ""
	switch {
	case jsonV != starlark.None && body != starlark.None:
		return nil, fmt.Errorf("give json or body, not both")
	case jsonV != starlark.None:
		raw, err := toJSON(jsonV, 0)
		if err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		payload, contentType = bytes.NewReader(raw), "application/json"
	case body != starlark.None:
		s, ok := starlark.AsString(body)
		if !ok {
			return nil, fmt.Errorf("body must be a string, got %s", body.Type())
		}
		payload = strings.NewReader(s)
	}
	limit := DefaultHTTPTimeout
	if timeout != starlark.None {
		if limit, err = toDuration(timeout); err != nil {
			return nil, fmt.Errorf("timeout: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), payload)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("User-Agent", "centaur-workflows")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if headers != starlark.None {
		if err := eachStringPair(headers, "headers", req.Header.Set); err != nil {
			cancel()
			return nil, err
		}
	}
	if req.Header.Get("traceparent") == "" {
		// The step's trace context (its attempt's span when the manager traces), so the call
		// joins the run's trace; without tracing the propagator writes nothing.
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	return &builtRequest{Request: req, cancel: cancel}, nil
}

// eachStringPair calls fn for each key and value of a dict of strings (values may be numbers
// or booleans, written as text).
func eachStringPair(v starlark.Value, what string, fn func(k, v string)) error {
	m, ok := v.(starlark.IterableMapping)
	if !ok {
		return fmt.Errorf("%s must be a dict, got %s", what, v.Type())
	}
	for _, kv := range m.Items() {
		k, ok := starlark.AsString(kv[0])
		if !ok {
			return fmt.Errorf("%s: key %s is not a string", what, kv[0])
		}
		val, ok := starlark.AsString(kv[1])
		if !ok {
			val = kv[1].String()
		}
		fn(k, val)
	}
	return nil
}

// responseValue is the struct a call returns: status, ok, url, headers (lower-case names),
// text, and the methods json() and raise_for_status().
func responseValue(method string, resp *http.Response, data []byte) starlark.Value {
	headers := starlark.NewDict(len(resp.Header))
	for name, values := range resp.Header {
		_ = headers.SetKey(starlark.String(strings.ToLower(name)), starlark.String(strings.Join(values, ", ")))
	}
	text := string(data)
	where := fmt.Sprintf("%s %s", method, resp.Request.URL.Redacted())
	status := resp.StatusCode
	return starlarkstruct.FromStringDict(starlark.String("response"), starlark.StringDict{
		"status":  starlark.MakeInt(status),
		"ok":      starlark.Bool(status < 400),
		"url":     starlark.String(resp.Request.URL.Redacted()),
		"headers": headers,
		"text":    starlark.String(text),
		"json": starlark.NewBuiltin("json", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			v, err := fromJSON([]byte(text))
			if err != nil {
				return nil, fmt.Errorf("the response of %s is not JSON: %w", where, err)
			}
			return v, nil
		}),
		"raise_for_status": starlark.NewBuiltin("raise_for_status", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			if status < 400 {
				return starlark.None, nil
			}
			return nil, fmt.Errorf("%s answered %s: %s", where, resp.Status, abbreviate([]byte(text)))
		}),
	})
}
