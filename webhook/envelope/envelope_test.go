package envelope

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// hdr builds a header from name/value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// sha returns the hex SHA-256 of s.
func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestBuildBody(t *testing.T) {
	tests := []struct {
		name        string
		contentType string // "" means no header
		body        string
		want        string // compact JSON; ignored when wantErr
		wantErr     bool
	}{
		{name: "json", contentType: "application/json", body: `{"a": [1, 2], "b": null}`, want: `{"a":[1,2],"b":null}`},
		{name: "json with charset", contentType: "application/json; charset=utf-8", body: `{"a":1}`, want: `{"a":1}`},
		{name: "json upper-case type", contentType: "Application/JSON", body: `[true]`, want: `[true]`},
		{name: "json broken parameter", contentType: "application/json; charset", body: `1`, want: `1`},
		{name: "json suffix", contentType: "application/vnd.api+json", body: `{"data":{}}`, want: `{"data":{}}`},
		{name: "cloudevents json", contentType: "application/cloudevents+json", body: `"x"`, want: `"x"`},
		{name: "json scalar", contentType: "application/json", body: `"hello"`, want: `"hello"`},
		{name: "json escapes kept", contentType: "application/json", body: `{"s":"\u0041\n"}`, want: `{"s":"\u0041\n"}`},
		{name: "json invalid", contentType: "application/json", body: `{"a":`, wantErr: true},
		{name: "json trailing garbage", contentType: "application/json", body: `{} {}`, wantErr: true},
		{name: "json blank", contentType: "application/json", body: "  \n", wantErr: true},
		{name: "json invalid utf-8", contentType: "application/json", body: "\"\xff\"", wantErr: true},
		{name: "json empty body", contentType: "application/json", body: "", want: `null`},
		{name: "form empty body", contentType: "application/x-www-form-urlencoded", body: "", want: `null`},
		{name: "text empty body", contentType: "text/plain", body: "", want: `null`},
		{name: "github form payload", contentType: "application/x-www-form-urlencoded",
			body: "payload=" + url.QueryEscape(`{"zen":"Keep it logically awesome.","hook_id":1}`),
			want: `{"zen":"Keep it logically awesome.","hook_id":1}`},
		{name: "github form payload beside other fields", contentType: "application/x-www-form-urlencoded",
			body: "x=1&payload=" + url.QueryEscape(`[1]`), want: `[1]`},
		{name: "form payload invalid json", contentType: "application/x-www-form-urlencoded", body: "payload=%7Bnope", wantErr: true},
		{name: "form payload empty", contentType: "application/x-www-form-urlencoded", body: "payload=", wantErr: true},
		{name: "form payload repeated", contentType: "application/x-www-form-urlencoded", body: "payload=1&payload=2", wantErr: true},
		{name: "form object", contentType: "application/x-www-form-urlencoded", body: "b=2&a=1&a=3&c=&d", want: `{"a":["1","3"],"b":"2","c":"","d":""}`},
		{name: "form object decoding", contentType: "application/x-www-form-urlencoded; charset=utf-8", body: "name=J%C3%BCrgen+K&q=%22x%22", want: `{"name":"Jürgen K","q":"\"x\""}`},
		{name: "form bad escape", contentType: "application/x-www-form-urlencoded", body: "a=%zz", wantErr: true},
		{name: "form semicolon", contentType: "application/x-www-form-urlencoded", body: "a=1;b=2", wantErr: true},
		{name: "form decodes to invalid utf-8", contentType: "application/x-www-form-urlencoded", body: "a=%ff", wantErr: true},
		{name: "text", contentType: "text/plain", body: "hello \"world\"\n", want: `"hello \"world\"\n"`},
		{name: "text that looks like json", contentType: "text/plain", body: `{"a":1}`, want: `"{\"a\":1}"`},
		{name: "text invalid utf-8", contentType: "text/plain", body: "a\xffb", wantErr: true},
		{name: "xml", contentType: "application/xml", body: "<a/>", want: `"\u003ca/\u003e"`},
		{name: "octet-stream binary", contentType: "application/octet-stream", body: "\x00\x01\xfe", wantErr: true},
		{name: "no content type, json", body: ` {"a" : 1} `, want: `{"a":1}`},
		{name: "no content type, text", body: `a=1`, want: `"a=1"`},
		{name: "no content type, binary", body: "\xff", wantErr: true},
		{name: "unparseable content type, json", contentType: "/;;", body: `[]`, want: `[]`},
		{name: "unparseable content type, text", contentType: "a b c", body: `plain`, want: `"plain"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.contentType != "" {
				h.Set("Content-Type", tt.contentType)
			}
			env, err := Build(Request{Header: h, RawBody: []byte(tt.body)}, Options{})
			if tt.wantErr {
				if !errors.Is(err, ErrMalformedBody) {
					t.Fatalf("Build: error %v, want one wrapping ErrMalformedBody", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if got := string(env.Webhook.Body); got != tt.want {
				t.Fatalf("body %s, want %s", got, tt.want)
			}
			if env.Webhook.RawBodySHA256 != sha(tt.body) {
				t.Fatalf("raw_body_sha256 %s, want %s", env.Webhook.RawBodySHA256, sha(tt.body))
			}
		})
	}
}

func TestBuildEnvelopeShape(t *testing.T) {
	req := Request{
		Slug: "gh", Provider: "github", Method: "POST", Path: "/api/webhooks/gh",
		Header:     hdr("Content-Type", "application/json", "X-GitHub-Event", "push"),
		Query:      url.Values{"ref": {"main", "dev"}},
		RawBody:    []byte(`{"ok":true}`),
		RemoteAddr: "192.0.2.7:51234",
	}
	env, err := Build(req, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"webhook":{"slug":"gh","provider":"github","method":"POST","path":"/api/webhooks/gh",` +
		`"headers":{"content-type":"application/json","x-github-event":"push"},` +
		`"query":{"ref":["main","dev"]},"body":{"ok":true},` +
		`"raw_body_sha256":"` + sha(`{"ok":true}`) + `","source_ip":"192.0.2.7"}}`
	if string(b) != want {
		t.Fatalf("envelope\n got %s\nwant %s", b, want)
	}
}

func TestBuildEmptyRequest(t *testing.T) {
	env, err := Build(Request{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"webhook":{"slug":"","provider":"","method":"","path":"","headers":{},"query":{},"body":null,` +
		`"raw_body_sha256":"` + sha("") + `","source_ip":""}}`
	if string(b) != want {
		t.Fatalf("envelope\n got %s\nwant %s", b, want)
	}
}

func TestBuildHeaders(t *testing.T) {
	h := http.Header{
		"Accept":         {"text/html", "application/json"},
		"X-Github-Event": {"push"},
		"x-github-event": {"ping"}, // non-canonical duplicate: merged after the canonical one
		"X-Empty":        {},
		"Bad Name":       {"dropped"},
		"X-Bin":          {"a\xffb"},
	}
	env, err := Build(Request{Header: h}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"accept":         "text/html, application/json",
		"x-github-event": "push, ping",
		"x-empty":        "",
		"x-bin":          "a\uFFFDb",
	}
	if !reflect.DeepEqual(env.Webhook.Headers, want) {
		t.Fatalf("headers %v, want %v", env.Webhook.Headers, want)
	}
}

func TestBuildQuery(t *testing.T) {
	q := url.Values{"a": {"1", "2,3"}, "b": {}, "c\xff": {"x\xfe"}}
	env, err := Build(Request{Query: q}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"a": {"1", "2,3"}, "b": {}, "c\uFFFD": {"x\uFFFD"}}
	if !reflect.DeepEqual(env.Webhook.Query, want) {
		t.Fatalf("query %v, want %v", env.Webhook.Query, want)
	}
}

func TestIsSensitiveHeader(t *testing.T) {
	sensitive := []string{
		"X-Hub-Signature", "X-Hub-Signature-256", "Webhook-Signature", "webhook-signature",
		"Authorization", "AUTHORIZATION", "Proxy-Authorization", "Cookie", "Set-Cookie",
		"X-Api-Key", "X-APIKEY", "api_key", "X-Gitlab-Token", "X-Access-Token", "X-Webhook-Secret",
		"X-Password", "X-Auth-User", "X-Shopify-Hmac-Sha256-Signature", "X-Slack-Signature",
		"Stripe-Signature", "X-Amz-Security-Token", "X-Session-Id", "X-Credentials", "X-Access-Key",
		// Findings of the security review (#13): keys, JWTs, assertions and short signatures.
		"X-Goog-Api-Key", "Ocp-Apim-Subscription-Key", "X-Functions-Key", "X-Hook-Key", "X-Jwt-Assertion",
		"X-Ms-Client-Principal-Assertion", "Cf-Access-Jwt-Assertion", "X-Webhook-Sig", "X-Bearer",
	}
	for _, name := range sensitive {
		if !IsSensitiveHeader(name) {
			t.Errorf("IsSensitiveHeader(%q) = false, want true", name)
		}
	}
	harmless := []string{
		"Content-Type", "User-Agent", "X-GitHub-Event", "X-GitHub-Delivery", "Webhook-Id",
		"Webhook-Timestamp", "X-Forwarded-For", "Idempotency-Key", "X-Idempotency-Key", "Accept", "X-Request-Id",
		"X-Hub-Keyword", "",
	}
	for _, name := range harmless {
		if IsSensitiveHeader(name) {
			t.Errorf("IsSensitiveHeader(%q) = true, want false", name)
		}
	}
}

func TestBuildStripsSensitiveHeaders(t *testing.T) {
	secrets := map[string]string{
		"X-Hub-Signature":     "sha1=SECRET-A",
		"X-Hub-Signature-256": "sha256=SECRET-B",
		"Webhook-Signature":   "v1,SECRET-C",
		"Authorization":       "Bearer SECRET-D",
		"Proxy-Authorization": "Basic SECRET-E",
		"Cookie":              "sid=SECRET-F",
		"Set-Cookie":          "sid=SECRET-G",
		"X-Api-Key":           "SECRET-H",
		"X-Gitlab-Token":      "SECRET-I",
		"X-Custom-Signer":     "SECRET-J", // only stripped through ExtraSensitiveHeaders
		"x-lower-secret":      "SECRET-K", // non-canonical key
	}
	h := hdr("Content-Type", "application/json", "X-GitHub-Event", "push")
	for name, v := range secrets {
		h[name] = []string{v}
	}
	h.Add("Cookie", "second=SECRET-L")
	secrets["Cookie 2"] = "SECRET-L"
	env, err := Build(Request{Header: h, RawBody: []byte(`{"a":1}`)}, Options{ExtraSensitiveHeaders: []string{" x-custom-signer "}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range secrets {
		if strings.Contains(string(b), v) || strings.Contains(string(b), strings.TrimPrefix(v, "sid=")) {
			t.Errorf("value of %s survives in %s", name, b)
		}
	}
	for _, gone := range []string{"signature", "authorization", "cookie", "api-key", "token", "secret", "x-custom-signer"} {
		if strings.Contains(strings.ToLower(string(b)), gone) {
			t.Errorf("%q appears in %s", gone, b)
		}
	}
	if got := env.Webhook.Headers["x-github-event"]; got != "push" {
		t.Errorf("harmless header lost: x-github-event = %q", got)
	}
}

func TestBuildDropsQueryParametersThatCarryCredentials(t *testing.T) {
	q := url.Values{"token": {"SECRET-1"}, "api_key": {"SECRET-2"}, "sig": {"x"}, "x-sig": {"SECRET-3"},
		"access_token": {"SECRET-4"}, "page": {"2"}, "ref": {"main", "dev"}}
	env, err := Build(Request{Header: hdr("Content-Type", "application/json"), Query: q, RawBody: []byte(`{}`)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"page": {"2"}, "ref": {"main", "dev"}}
	if !reflect.DeepEqual(env.Webhook.Query, want) {
		t.Errorf("query = %v, want %v", env.Webhook.Query, want)
	}
}

func TestBuildSourceIP(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}
	tests := []struct {
		name    string
		remote  string
		header  http.Header
		trusted []netip.Prefix
		want    string
	}{
		{name: "plain peer", remote: "203.0.113.5:1234", want: "203.0.113.5"},
		{name: "peer without port", remote: "203.0.113.5", want: "203.0.113.5"},
		{name: "ipv6 peer", remote: "[2001:db8::1]:443", want: "2001:db8::1"},
		{name: "ipv6 peer without port", remote: "2001:db8::1", want: "2001:db8::1"},
		{name: "bracketed ipv6 peer without port", remote: "[2001:db8::2]", want: "2001:db8::2"},
		{name: "ipv6 peer with zone", remote: "[fe80::1%eth0]:80", want: "fe80::1%eth0"},
		{name: "ipv4-mapped peer", remote: "[::ffff:203.0.113.9]:80", want: "203.0.113.9"},
		{name: "unparseable peer", remote: "@", want: ""},
		{name: "empty peer", remote: "", header: hdr("X-Forwarded-For", "1.2.3.4"), trusted: trusted, want: ""},
		{name: "untrusted peer ignores xff", remote: "203.0.113.5:1", header: hdr("X-Forwarded-For", "198.51.100.1"), trusted: trusted, want: "203.0.113.5"},
		{name: "untrusted peer ignores x-real-ip", remote: "203.0.113.5:1", header: hdr("X-Real-Ip", "198.51.100.1"), trusted: trusted, want: "203.0.113.5"},
		{name: "no trusted proxies configured", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", "198.51.100.1"), want: "10.0.0.1"},
		{name: "trusted peer, one hop", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", "198.51.100.1"), trusted: trusted, want: "198.51.100.1"},
		{name: "trusted peer, spoofed left entries", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", "6.6.6.6, 198.51.100.1, 10.1.1.1"), trusted: trusted, want: "198.51.100.1"},
		{name: "trusted peer, all hops trusted", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", "10.3.3.3, 10.2.2.2"), trusted: trusted, want: "10.3.3.3"},
		{name: "trusted peer, several xff lines", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", "6.6.6.6, 198.51.100.1", "X-Forwarded-For", "10.1.1.1"), trusted: trusted, want: "198.51.100.1"},
		{name: "trusted peer, garbage stops the walk", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", "198.51.100.1, unknown, 10.1.1.1"), trusted: trusted, want: "10.1.1.1"},
		{name: "trusted peer, garbage right-most falls back to x-real-ip", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", "198.51.100.1, nope", "X-Real-Ip", "198.51.100.2"), trusted: trusted, want: "198.51.100.2"},
		{name: "trusted peer, xff entries with ports", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", "198.51.100.1:5555, [2001:db8::7]:443"), trusted: trusted, want: "2001:db8::7"},
		{name: "trusted peer, ipv6 client", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", "2001:db8::9"), trusted: trusted, want: "2001:db8::9"},
		{name: "trusted ipv6 peer", remote: "[fd00::1]:8080", header: hdr("X-Forwarded-For", "198.51.100.3"), trusted: trusted, want: "198.51.100.3"},
		{name: "trusted ipv4-mapped peer", remote: "[::ffff:10.0.0.1]:1", header: hdr("X-Forwarded-For", "198.51.100.4"), trusted: trusted, want: "198.51.100.4"},
		{name: "trusted zoned peer", remote: "[fd00::1%eth0]:1", header: hdr("X-Forwarded-For", "198.51.100.5"), trusted: trusted, want: "198.51.100.5"},
		{name: "trusted peer, x-real-ip", remote: "10.0.0.1:1", header: hdr("X-Real-Ip", " 198.51.100.6 "), trusted: trusted, want: "198.51.100.6"},
		{name: "trusted peer, bad x-real-ip", remote: "10.0.0.1:1", header: hdr("X-Real-Ip", "somewhere"), trusted: trusted, want: "10.0.0.1"},
		{name: "trusted peer, empty xff", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", ""), trusted: trusted, want: "10.0.0.1"},
		{name: "trusted peer, no headers", remote: "10.0.0.1:1", trusted: trusted, want: "10.0.0.1"},
		{name: "invalid prefix is ignored", remote: "10.0.0.1:1", header: hdr("X-Forwarded-For", "198.51.100.1"), trusted: []netip.Prefix{{}}, want: "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Build(Request{RemoteAddr: tt.remote, Header: tt.header}, Options{TrustedProxies: tt.trusted})
			if err != nil {
				t.Fatal(err)
			}
			if env.Webhook.SourceIP != tt.want {
				t.Fatalf("source_ip %q, want %q", env.Webhook.SourceIP, tt.want)
			}
		})
	}
}

func TestTriggerValue(t *testing.T) {
	body := []byte(`{"a":1}`)
	tests := []struct {
		name   string
		header http.Header
		key    string
		want   string
	}{
		{name: "header set", header: hdr("X-GitHub-Delivery", "72d3162e"), key: "X-GitHub-Delivery", want: "72d3162e"},
		{name: "key case-insensitive", header: hdr("X-GitHub-Delivery", "72d3162e"), key: "x-github-delivery", want: "72d3162e"},
		{name: "non-canonical header key", header: http.Header{"webhook-id": {"msg_1"}}, key: "Webhook-Id", want: "msg_1"},
		{name: "trimmed", header: hdr("Webhook-Id", "  msg_2 "), key: "webhook-id", want: "msg_2"},
		{name: "first non-blank value", header: hdr("Webhook-Id", " ", "Webhook-Id", "msg_3"), key: "webhook-id", want: "msg_3"},
		{name: "header absent", header: hdr(), key: "X-GitHub-Delivery", want: sha(string(body))},
		{name: "header blank", header: hdr("X-GitHub-Delivery", " "), key: "X-GitHub-Delivery", want: sha(string(body))},
		{name: "no key", header: hdr("X-GitHub-Delivery", "72d3162e"), key: "", want: sha(string(body))},
		{name: "nil header", key: "X-GitHub-Delivery", want: sha(string(body))},
		{name: "sensitive key is hashed", header: hdr("X-Hub-Signature-256", "sha256=abc"), key: "X-Hub-Signature-256", want: sha("sha256=abc")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TriggerValue(tt.header, tt.key, body); got != tt.want {
				t.Fatalf("TriggerValue = %q, want %q", got, tt.want)
			}
		})
	}
	if got, want := TriggerValue(nil, "", nil), sha(""); got != want {
		t.Fatalf("TriggerValue of nothing = %q, want %q", got, want)
	}
}

func TestBodyFieldValue(t *testing.T) {
	form, err := Build(Request{Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		RawBody: []byte("command=%2Fdeploy&trigger_id=13345.7384")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body, path, want string
	}{
		{`{"id":"evt_1","type":"invoice.paid"}`, "id", "evt_1"},
		{`{"event":{"id":"Ev01"},"id":"x"}`, "event.id", "Ev01"},
		{`{"id":" padded "}`, "id", "padded"},
		{`{"id":820982911946154508}`, "id", "820982911946154508"},
		{`{"id":true}`, "id", "true"},
		{`{"id":null}`, "id", ""},
		{`{"id":{"nested":1}}`, "id", ""},
		{`{"id":[1]}`, "id", ""},
		{`{"other":"x"}`, "id", ""},
		{`["id"]`, "id", ""},
		{`"id"`, "id", ""},
		{`null`, "id", ""},
		{`{"id":"x"}`, "", ""},
		{`{"event":"flat"}`, "event.id", ""},
		{string(form.Webhook.Body), "trigger_id", "13345.7384"},
	} {
		if got := BodyFieldValue(json.RawMessage(tc.body), tc.path); got != tc.want {
			t.Errorf("BodyFieldValue(%s, %q) = %q, want %q", tc.body, tc.path, got, tc.want)
		}
	}
}
