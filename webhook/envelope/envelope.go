// Package envelope turns a verified webhook request into the input of the WorkflowRun it
// starts: a JSON "envelope" holding the decoded body, the request's metadata, a digest of the
// raw bytes and the sender's address.
//
// Everything in an envelope is persisted in the cluster, so credentials never get there:
// signatures, authorization, cookies and any header whose name looks like a secret are
// stripped (see IsSensitiveHeader). The package is pure and never panics on any input.
//
// It belongs to the webhooks' domain (package routes, signature and this one, under
// webhook/): workflows import it for the type of their input, the HTTP server (package
// webhookserver) to build one. It knows nothing of HTTP serving: the server hands it a
// Request whose body it has already read and size-limited.
package envelope

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// ErrMalformedBody means the body does not decode as its content type says it should. The
// caller should answer 400.
var ErrMalformedBody = errors.New("malformed body")

// Request is what the HTTP layer hands over: the request's parts, with the body already read
// and size-limited.
type Request struct {
	// Slug is the endpoint's slug, the last segment of /api/webhooks/{slug}.
	Slug string
	// Provider is the endpoint's signature provider, e.g. "github".
	Provider string
	// Method is the HTTP method, e.g. "POST".
	Method string
	// Path is the request's URL path.
	Path string
	// Header holds the request headers, sensitive ones included; Build strips them.
	Header http.Header
	// Query holds the URL's query parameters.
	Query url.Values
	// RawBody is the body exactly as received.
	RawBody []byte
	// RemoteAddr is the TCP peer, r.RemoteAddr: "ip:port".
	RemoteAddr string
}

// Options tunes Build for the deployment it runs in.
type Options struct {
	// TrustedProxies are the networks of the reverse proxies in front of the server.
	// Forwarded headers (X-Forwarded-For, then X-Real-Ip) are believed only when the TCP peer
	// is inside one of them; otherwise anybody could claim any source address.
	TrustedProxies []netip.Prefix
	// ExtraSensitiveHeaders names further headers to strip, case-insensitively, on top of
	// IsSensitiveHeader; for example the header an hmac endpoint carries its signature in.
	ExtraSensitiveHeaders []string
}

// Envelope is the workflow input built from one delivery.
type Envelope struct {
	// Webhook describes the delivery.
	Webhook Webhook `json:"webhook"`
}

// Webhook describes one delivery; its JSON shape is part of the product's contract with
// workflow authors.
type Webhook struct {
	// Slug is the endpoint's slug.
	Slug string `json:"slug"`
	// Provider is the endpoint's signature provider.
	Provider string `json:"provider"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the request's URL path.
	Path string `json:"path"`
	// Headers maps lower-cased header names to their values joined with ", " (the HTTP way
	// of combining repeated fields). Sensitive headers are absent. Never nil.
	Headers map[string]string `json:"headers"`
	// Query maps query parameter names to all their values in order. Unlike headers, query
	// values are kept as lists: joining them would be lossy, since values may hold commas.
	// Parameters that may carry a credential (token, key, sig, ...) are absent. Never nil.
	Query map[string][]string `json:"query"`
	// Body is the decoded body as JSON; see Build for the rules per content type.
	Body json.RawMessage `json:"body"`
	// RawBodySHA256 is the hex SHA-256 of the raw body as received, so a workflow can tell
	// deliveries apart or check the body against another copy.
	RawBodySHA256 string `json:"raw_body_sha256"`
	// SourceIP is the sender's address; see Build. Empty when RemoteAddr is not an address.
	SourceIP string `json:"source_ip"`
}

// Header returns the value of the header name, matched case-insensitively, or "". Workflows
// that take an Envelope as input read headers such as X-GitHub-Event with it.
func (w Webhook) Header(name string) string {
	return w.Headers[strings.ToLower(name)]
}

// Build turns req into an envelope. It fails only when the body is malformed for its content
// type (the error wraps ErrMalformedBody):
//
//   - application/json and any */*+json type: the body must be valid UTF-8 JSON and is kept
//     as is (compacted).
//   - application/x-www-form-urlencoded: when the form has a "payload" field (GitHub's form
//     deliveries), that field must be valid JSON and becomes the body; otherwise the body is
//     the form as a JSON object, a field mapping to its value, or to an array of its values
//     when repeated.
//   - no Content-Type, or one that does not parse: valid JSON is taken as JSON, anything
//     else as text.
//   - any other type: the body becomes a JSON string of the text, which must be valid UTF-8.
//   - an empty body is null, whatever the type.
//
// SourceIP is the peer's address from RemoteAddr. Only when the peer is a trusted proxy are
// forwarded headers believed: X-Forwarded-For is walked from the right, skipping trusted
// proxies, and the first untrusted address is the source (the left-most one when all are
// trusted); without a usable X-Forwarded-For, X-Real-Ip; without that, the peer.
func Build(req Request, opts Options) (Envelope, error) {
	body, err := decodeBody(req.Header, req.RawBody)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Webhook: Webhook{
		Slug:          validUTF8(req.Slug),
		Provider:      validUTF8(req.Provider),
		Method:        validUTF8(req.Method),
		Path:          validUTF8(req.Path),
		Headers:       keptHeaders(req.Header, opts.ExtraSensitiveHeaders),
		Query:         queryMap(req.Query),
		Body:          body,
		RawBodySHA256: hexSHA256(req.RawBody),
		SourceIP:      SourceIP(req.RemoteAddr, req.Header, opts.TrustedProxies),
	}}, nil
}

// queryMap copies q with every string made valid UTF-8, without the parameters that may carry
// a credential (?token=, ?api_key=, ?sig=, ..., by IsSensitiveHeader's rule): providers that
// cannot sign put secrets in the URL, and the run's input is readable by whoever reads runs.
// The result is never nil.
func queryMap(q url.Values) map[string][]string {
	out := make(map[string][]string, len(q))
	for _, raw := range slices.Sorted(maps.Keys(q)) { // sorted: names may merge once made valid
		name := validUTF8(raw)
		if IsSensitiveHeader(name) {
			continue
		}
		for _, v := range q[raw] {
			out[name] = append(out[name], validUTF8(v))
		}
		if out[name] == nil {
			out[name] = []string{}
		}
	}
	return out
}

// validUTF8 replaces invalid UTF-8 in s with U+FFFD, as encoding/json would when marshaling,
// so the envelope holds what its JSON says.
func validUTF8(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}
