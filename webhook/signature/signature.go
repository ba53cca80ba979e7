// Package signature verifies that a webhook delivery was sent by someone who holds one of the
// endpoint's signing secrets. It implements the schemes a WebhookEndpoint can name in
// spec.provider: GitHub's X-Hub-Signature-256; a general HMAC scheme (SHA-256, SHA-1 or
// SHA-512, hex or base64, over a template of the body, a timestamp and a delivery id, with a
// timestamp tolerance and several signatures in one header), which covers Stripe, Slack,
// Shopify, Linear and their like; a shared token compared in constant time (GitLab); Standard
// Webhooks (https://www.standardwebhooks.com); and an explicit "none".
//
// The package is pure: it sees headers, the raw body, the secrets and the current time, and
// answers with nil or an error that wraps one of the exported sentinels, so the HTTP layer can
// map failures to status codes without parsing messages. Nothing here panics on any input.
//
// It belongs to the webhooks' domain (package routes, envelope and this one, under webhook/),
// which the controllers, the workflows and the HTTP server (package webhookserver) all import.
// It knows nothing of HTTP serving: http.Header is the only net/http type it sees, as data.
package signature

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Provider names, as they appear in WebhookEndpoint.spec.provider.
const (
	// GitHub checks X-Hub-Signature-256: "sha256=" and the hex HMAC-SHA256 of the raw body.
	GitHub = "github"
	// HMAC checks an HMAC of the raw body, or of a template over it, in a header described by
	// HMACConfig.
	HMAC = "hmac"
	// Token checks a shared secret sent as is in the header HMACConfig.Header (after
	// HMACConfig.Prefix), compared in constant time: GitLab's X-Gitlab-Token.
	Token = "token"
	// StandardWebhooks checks the webhook-id, webhook-timestamp and webhook-signature headers
	// of the Standard Webhooks specification.
	StandardWebhooks = "standard-webhooks"
	// None accepts every delivery. An endpoint has to ask for it explicitly; that rule is
	// enforced where endpoints are validated, not here.
	None = "none"
)

// DefaultTolerance is how far a signed timestamp (standard-webhooks, or an hmac template's
// {timestamp}) may lie from the current time, in either direction, when New is given a zero
// tolerance. It matches the reference libraries (Standard Webhooks, Stripe, Slack).
const DefaultTolerance = 5 * time.Minute

// Sentinel errors. Verify wraps them with context, so test them with errors.Is.
var (
	// ErrMissingSignature means a header the provider needs is absent or empty. The caller
	// should answer 401.
	ErrMissingSignature = errors.New("missing signature")
	// ErrBadSignature means the signature is malformed or matches none of the secrets. The
	// caller should answer 401.
	ErrBadSignature = errors.New("bad signature")
	// ErrTimestampOutOfTolerance means a signed timestamp is too old or too far in
	// the future, which is how replayed deliveries are refused. The caller should answer 401.
	ErrTimestampOutOfTolerance = errors.New("timestamp out of tolerance")
	// ErrNoSecret means Verify got no usable secret (none, or only empty ones) for a provider
	// that needs one. It is a configuration problem on the receiving side, not the sender's.
	ErrNoSecret = errors.New("no signing secret")
	// ErrInvalidSecret means a secret cannot be used as given, for example a "whsec_" secret
	// whose remainder is not base64. Like ErrNoSecret it is a configuration problem.
	ErrInvalidSecret = errors.New("invalid signing secret")
	// ErrUnknownProvider means New was given a provider name it does not implement.
	ErrUnknownProvider = errors.New("unknown signature provider")
	// ErrInvalidConfig means New was given settings the provider cannot work with.
	ErrInvalidConfig = errors.New("invalid signature configuration")
)

// Encodings of the digest accepted by the hmac provider.
const (
	// EncodingHex is lower- or upper-case hexadecimal; it is the default.
	EncodingHex = "hex"
	// EncodingBase64 is standard base64; URL-safe and unpadded variants are accepted too.
	EncodingBase64 = "base64"
)

// HMACConfig configures the generic "hmac" provider; the "token" provider uses its Header and
// Prefix. Other providers ignore it. The zero value of every optional field is what GitHub-like
// senders do: a hex HMAC-SHA256 of the raw body.
type HMACConfig struct {
	// Header carries the signature, e.g. "X-Signature"; required.
	Header string
	// Prefix is an optional prefix before the digest, e.g. "sha256=" or "v0=", matched
	// case-insensitively. When set, a signature without it is refused.
	Prefix string
	// Encoding of the digest: "hex" (the default when empty) or "base64".
	Encoding string
	// Algorithm of the HMAC: "sha256" (the default when empty), "sha1" or "sha512".
	Algorithm string
	// SignedTemplate is the string the sender signs, over the placeholders {body} (the raw
	// body; required), {timestamp} and {id}: Stripe's "{timestamp}.{body}", Slack's
	// "v0:{timestamp}:{body}". Empty means "{body}".
	SignedTemplate string
	// TimestampHeader carries the unix time in seconds the delivery was signed at, e.g.
	// X-Slack-Request-Timestamp. A timestamp further than the tolerance from now is refused,
	// which is how a captured delivery is kept from being replayed later. SignedTemplate must
	// contain {timestamp} when it or TimestampKey is set, and only then.
	TimestampHeader string
	// SignatureKey makes Header a comma-separated list of key=value entries, such as Stripe's
	// "t=1700000000,v1=<hex>,v1=<hex>,v0=<hex>": each entry of this key ("v1") is a signature,
	// any of which may match (the sender signs with several secrets while one is rotated).
	SignatureKey string
	// TimestampKey is the entry of that list holding the timestamp (Stripe's "t"); it needs
	// SignatureKey and excludes TimestampHeader.
	TimestampKey string
	// IDHeader carries the delivery id that {id} stands for.
	IDHeader string
	// TimestampField is a top-level field of the JSON body holding the time the delivery was
	// sent, in unix seconds or milliseconds (a number above 1e11 counts as milliseconds):
	// Linear's webhookTimestamp. The body is signed, so the field is too; a timestamp further
	// than the tolerance from now is refused. It excludes TimestampHeader and TimestampKey.
	TimestampField string
}

// Verifier checks one request against one or more secrets. Several secrets allow rotation
// without downtime: a signature made with any one of them is enough.
type Verifier interface {
	// Verify returns nil when the request carries a valid signature made with one of secrets,
	// judged at time now; otherwise an error wrapping one of the package's sentinels.
	Verify(header http.Header, body []byte, secrets [][]byte, now time.Time) error
}

// New returns the Verifier for provider. hmacCfg is used by the hmac and token providers only;
// tolerance by the standard-webhooks and hmac providers only (zero means DefaultTolerance,
// negative is refused).
// An unknown provider or unusable settings yield an error wrapping ErrUnknownProvider or
// ErrInvalidConfig, so a bad endpoint is reported when it is loaded, not per delivery.
func New(provider string, hmacCfg HMACConfig, tolerance time.Duration) (Verifier, error) {
	switch provider {
	case GitHub:
		return githubVerifier(), nil
	case HMAC:
		v, err := newHMACVerifier(hmacCfg, tolerance)
		if err != nil {
			return nil, err // not v: a nil *headerHMACVerifier would make a non-nil Verifier
		}
		return v, nil
	case Token:
		v, err := newTokenVerifier(hmacCfg)
		if err != nil {
			return nil, err
		}
		return v, nil
	case StandardWebhooks:
		v, err := newStandardVerifier(tolerance)
		if err != nil {
			return nil, err
		}
		return v, nil
	case None:
		return noneVerifier{}, nil
	default:
		return nil, fmt.Errorf("provider %q (want %s, %s, %s, %s or %s): %w",
			provider, GitHub, HMAC, Token, StandardWebhooks, None, ErrUnknownProvider)
	}
}

// noneVerifier accepts every request; see None.
type noneVerifier struct{}

// Verify accepts the request whatever it carries, with or without secrets.
func (noneVerifier) Verify(http.Header, []byte, [][]byte, time.Time) error { return nil }

// nonEmpty returns the secrets that are not empty, or ErrNoSecret when none is left. An empty
// key would make signatures forgeable by anyone, so it never counts as a secret.
func nonEmpty(secrets [][]byte) ([][]byte, error) {
	out := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		if len(s) > 0 {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("verify with %d secrets, none of them non-empty: %w", len(secrets), ErrNoSecret)
	}
	return out, nil
}

// isToken reports whether s is a valid HTTP header field name (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c < 0x80 && containsByte("!#$%&'*+-.^_`|~", c):
		default:
			return false
		}
	}
	return true
}

// containsByte reports whether set contains c.
func containsByte(set string, c byte) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == c {
			return true
		}
	}
	return false
}
