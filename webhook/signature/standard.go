package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	// HeaderWebhookID carries the message id, part of the signed content.
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp carries the unix time in seconds the message was signed at.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature carries space-separated "v1,<base64>" signatures.
	HeaderWebhookSignature = "webhook-signature"
)

// SecretPrefix marks a Standard Webhooks secret whose key is the base64 text after it.
const SecretPrefix = "whsec_"

// standardVerifier checks Standard Webhooks signatures; see StandardWebhooks.
type standardVerifier struct {
	toleranceSec int64
}

// newStandardVerifier returns a verifier accepting timestamps within tolerance of now
// (DefaultTolerance when zero). The tolerance counts in whole seconds, rounded down, since
// the timestamps do.
func newStandardVerifier(tolerance time.Duration) (*standardVerifier, error) {
	if tolerance < 0 {
		return nil, fmt.Errorf("standard-webhooks timestamp tolerance %s is negative: %w", tolerance, ErrInvalidConfig)
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	return &standardVerifier{toleranceSec: int64(tolerance / time.Second)}, nil
}

// Verify checks the headers' timestamp against now and the signatures against
// "{id}.{timestamp}.{body}" under each secret. Any listed v1 signature matching is enough.
func (v *standardVerifier) Verify(header http.Header, body []byte, secrets [][]byte, now time.Time) error {
	keys, err := standardKeys(secrets)
	if err != nil {
		return fmt.Errorf("%s provider: %w", StandardWebhooks, err)
	}
	id, ts, sigs, err := standardHeaders(header)
	if err != nil {
		return fmt.Errorf("%s provider: %w", StandardWebhooks, err)
	}
	if err := v.checkTimestamp(ts, now); err != nil {
		return fmt.Errorf("%s provider: %w", StandardWebhooks, err)
	}
	candidates, err := parseSignatures(sigs)
	if err != nil {
		return fmt.Errorf("%s provider: %w", StandardWebhooks, err)
	}
	for _, key := range keys {
		want := sign(key, []byte(id), []byte{'.'}, []byte(ts), []byte{'.'}, body)
		for _, got := range candidates {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return fmt.Errorf("%s provider: none of %d v1 signatures matches any of %d secrets: %w",
		StandardWebhooks, len(candidates), len(keys), ErrBadSignature)
}

// standardHeaders returns the id, timestamp and signature list, or ErrMissingSignature.
func standardHeaders(header http.Header) (id, ts, sigs string, err error) {
	id = strings.TrimSpace(header.Get(HeaderWebhookID))
	ts = strings.TrimSpace(header.Get(HeaderWebhookTimestamp))
	sigs = strings.Join(header.Values(HeaderWebhookSignature), " ")
	for _, h := range []struct{ name, value string }{
		{HeaderWebhookID, id}, {HeaderWebhookTimestamp, ts}, {HeaderWebhookSignature, strings.TrimSpace(sigs)},
	} {
		if h.value == "" {
			return "", "", "", fmt.Errorf("header %s is absent or empty: %w", h.name, ErrMissingSignature)
		}
	}
	return id, ts, sigs, nil
}

// checkTimestamp parses ts (unix seconds) and refuses it when it lies further than the
// tolerance from now in either direction.
func (v *standardVerifier) checkTimestamp(ts string, now time.Time) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("header %s %q is not unix seconds: %w", HeaderWebhookTimestamp, ts, ErrBadSignature)
	}
	nowSec := now.Unix()
	if sec < subSat(nowSec, v.toleranceSec) || sec > addSat(nowSec, v.toleranceSec) {
		return fmt.Errorf("header %s %d is more than %ds away from now (%d): %w",
			HeaderWebhookTimestamp, sec, v.toleranceSec, nowSec, ErrTimestampOutOfTolerance)
	}
	return nil
}

// parseSignatures decodes the v1 entries of a space-separated signature list, ignoring other
// versions. Without any decodable v1 entry the list is malformed.
func parseSignatures(list string) ([][]byte, error) {
	var out [][]byte
	for _, entry := range strings.Fields(list) {
		version, encoded, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		sig, err := decodeBase64(encoded)
		if err != nil || len(sig) != sha256.Size {
			continue
		}
		out = append(out, sig)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("header %s holds no well-formed v1 signature: %w", HeaderWebhookSignature, ErrBadSignature)
	}
	return out, nil
}

// standardKeys turns secrets into HMAC keys: "whsec_<base64>" is the decoded bytes, anything
// else the bytes as given. Empty keys are dropped; a malformed whsec_ secret is an error so a
// misconfiguration is not silently masked by a second, working secret.
func standardKeys(secrets [][]byte) ([][]byte, error) {
	keys := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		key := s
		if rest, ok := strings.CutPrefix(string(s), SecretPrefix); ok {
			decoded, err := decodeBase64(rest)
			if err != nil {
				return nil, fmt.Errorf("secret %d has the %s prefix but is not base64: %w", i, SecretPrefix, ErrInvalidSecret)
			}
			key = decoded
		}
		keys = append(keys, key)
	}
	return nonEmpty(keys)
}

// addSat returns a+b, clamped to the int64 range; b must not be negative.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// subSat returns a-b, clamped to the int64 range; b must not be negative.
func subSat(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}
