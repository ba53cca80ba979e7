package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// fuzzOptions trusts a private IPv4 and an IPv6 range and strips one extra header.
var fuzzOptions = Options{
	TrustedProxies:        []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
	ExtraSensitiveHeaders: []string{"X-Custom-Sig"},
}

// FuzzBuild builds envelopes from arbitrary requests. No input may panic; a failure must wrap
// ErrMalformedBody; a success must marshal to valid JSON whose headers hold no sensitive name,
// and must be exactly what the same request without its sensitive headers gives, so no value
// of a sensitive header can be anywhere in it.
func FuzzBuild(f *testing.F) {
	f.Add("application/json", []byte(`{"a":1}`), "X-GitHub-Event", "push", "sha256=abc", "203.0.113.1:1", "", "a=1")
	f.Add("application/x-www-form-urlencoded", []byte("payload=%7B%22a%22%3A1%7D"), "x-hub-signature-256", "v", "Bearer x", "10.0.0.1:1", "198.51.100.1, 10.2.2.2", "")
	f.Add("application/x-www-form-urlencoded", []byte("a=1&a=2&b=%ff"), "Cookie", "c=1", "c=1", "[fd00::1]:1", "2001:db8::1", "x=%zz")
	f.Add("text/plain; charset=latin1", []byte("caf\xe9"), "Bad Name", "\xff", "", "[::ffff:10.0.0.1]:80", "unknown, 1.2.3.4", "a;b")
	f.Add("", []byte(" [1, 2] "), "X-Forwarded-For", "1.1.1.1", "secret", "@", "", "")
	f.Add("application/vnd.api+json", []byte(`{"x":"\u0000"}`), "Authorization", "Basic eA==", "Basic eA==", "[fe80::1%eth0]:1", "[2001:db8::2]:443", "q=%E2%82%AC")
	f.Add("multipart/form-data; boundary=x", []byte{}, "X-Custom-Sig", "sig", "sig", "10.9.9.9", "10.1.1.1,10.2.2.2", "")
	f.Fuzz(func(t *testing.T, contentType string, body []byte, name, value, secret, remote, xff, rawQuery string) {
		h := http.Header{}
		h.Set("Content-Type", contentType)
		h.Set("X-Forwarded-For", xff)
		h.Set("X-Real-Ip", xff)
		h[name] = append(h[name], value)
		for _, sensitive := range []string{"Authorization", "Cookie", "X-Hub-Signature-256", "Webhook-Signature", "X-Custom-Sig", "x-api-key", name + "-Token"} {
			h[sensitive] = append(h[sensitive], secret)
		}
		query, _ := url.ParseQuery(rawQuery)
		req := Request{Slug: "s", Provider: "github", Method: "POST", Path: "/api/webhooks/s", Header: h, Query: query, RawBody: body, RemoteAddr: remote}

		env, err := Build(req, fuzzOptions)
		stripped := req
		stripped.Header = withoutSensitive(h)
		refEnv, refErr := Build(stripped, fuzzOptions)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("sensitive headers change the outcome: %v vs %v", err, refErr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedBody) {
				t.Fatalf("error %v does not wrap ErrMalformedBody", err)
			}
			return
		}
		got := mustMarshal(t, env)
		checkEnvelope(t, env, body)
		_ = BodyFieldValue(env.Webhook.Body, value) // a trigger key from the body: any body, any path, no panic
		if want := mustMarshal(t, refEnv); !bytes.Equal(got, want) {
			t.Fatalf("sensitive headers leak into the envelope:\n got %s\nwant %s", got, want)
		}
		if quoted := mustMarshal(t, secret); len(secret) > 0 && !bytes.Contains(mustMarshal(t, refEnv), quoted[1:len(quoted)-1]) &&
			bytes.Contains(got, quoted[1:len(quoted)-1]) {
			t.Fatalf("secret %q appears in %s", secret, got)
		}
	})
}

// withoutSensitive returns a copy of h without the headers Build must strip.
func withoutSensitive(h http.Header) http.Header {
	out := http.Header{}
	for name, values := range h {
		if !isSensitive(name, fuzzOptions.ExtraSensitiveHeaders) {
			out[name] = values
		}
	}
	return out
}

// checkEnvelope asserts the invariants of any envelope Build returns.
func checkEnvelope(t *testing.T, env Envelope, body []byte) {
	t.Helper()
	if !json.Valid(env.Webhook.Body) {
		t.Fatalf("body %q is not valid JSON", env.Webhook.Body)
	}
	if env.Webhook.Headers == nil || env.Webhook.Query == nil {
		t.Fatal("headers or query is nil")
	}
	for name := range env.Webhook.Headers {
		if isSensitive(name, fuzzOptions.ExtraSensitiveHeaders) || name != strings.ToLower(name) {
			t.Fatalf("header %q kept", name)
		}
	}
	if env.Webhook.RawBodySHA256 != sha(string(body)) {
		t.Fatalf("raw_body_sha256 %s, want %s", env.Webhook.RawBodySHA256, sha(string(body)))
	}
	if ip := env.Webhook.SourceIP; ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			t.Fatalf("source_ip %q is not an address: %v", ip, err)
		}
	}
}

// mustMarshal marshals v and checks the result is valid JSON.
func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if !json.Valid(b) {
		t.Fatalf("marshal produced invalid JSON: %s", b)
	}
	return b
}
