package signature

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what some senders (Intercom, ...) sign with; it is not broken as a MAC.
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// GitHubHeader is the header GitHub signs deliveries with.
const GitHubHeader = "X-Hub-Signature-256"

// gitHubPrefix comes before the hex digest in GitHubHeader.
const gitHubPrefix = "sha256="

// Algorithms of the hmac provider's digest.
const (
	// AlgorithmSHA256 is HMAC-SHA256, the default.
	AlgorithmSHA256 = "sha256"
	// AlgorithmSHA1 is HMAC-SHA1, for senders that still use it (Intercom, Twilio-style).
	AlgorithmSHA1 = "sha1"
	// AlgorithmSHA512 is HMAC-SHA512.
	AlgorithmSHA512 = "sha512"
)

// Placeholders of a signed-string template (HMACConfig.SignedTemplate).
const (
	// PlaceholderBody is the raw body, byte for byte as received.
	PlaceholderBody = "{body}"
	// PlaceholderTimestamp is the delivery's timestamp exactly as sent (see TimestampHeader
	// and TimestampKey).
	PlaceholderTimestamp = "{timestamp}"
	// PlaceholderID is the delivery id, the value of IDHeader.
	PlaceholderID = "{id}"
)

// DefaultSignedTemplate is what the hmac provider signs when the template is empty: the body.
const DefaultSignedTemplate = PlaceholderBody

// headerHMACVerifier checks an HMAC of a signed string (the raw body, or a template over the
// body, a timestamp and a delivery id) carried in one header, optionally after a prefix,
// optionally as a list of key=value pairs holding several signatures. Both the github and the
// hmac providers are this.
type headerHMACVerifier struct {
	provider     string // for error messages
	header       string
	prefix       string
	decode       func(string) ([]byte, error)
	newHash      func() hash.Hash
	size         int // the digest's length in bytes
	template     []string
	timestampHdr string
	timestampKey string
	signatureKey string
	idHeader     string
	timestampFld string
	toleranceSec int64
}

// githubVerifier returns the verifier of GitHub's X-Hub-Signature-256 scheme.
func githubVerifier() *headerHMACVerifier {
	return &headerHMACVerifier{provider: GitHub, header: GitHubHeader, prefix: gitHubPrefix, decode: hex.DecodeString,
		newHash: sha256.New, size: sha256.Size, template: []string{PlaceholderBody}}
}

// newHMACVerifier validates cfg and returns the generic hmac verifier it describes; tolerance
// bounds the age of a signed timestamp (DefaultTolerance when zero).
func newHMACVerifier(cfg HMACConfig, tolerance time.Duration) (*headerHMACVerifier, error) {
	if !isToken(cfg.Header) {
		return nil, fmt.Errorf("hmac provider header %q is not a valid header name: %w", cfg.Header, ErrInvalidConfig)
	}
	if tolerance < 0 {
		return nil, fmt.Errorf("hmac provider timestamp tolerance %s is negative: %w", tolerance, ErrInvalidConfig)
	}
	v := &headerHMACVerifier{provider: HMAC, header: cfg.Header, prefix: cfg.Prefix, timestampHdr: cfg.TimestampHeader,
		timestampKey: cfg.TimestampKey, signatureKey: cfg.SignatureKey, idHeader: cfg.IDHeader, timestampFld: cfg.TimestampField,
		toleranceSec: int64(cmp.Or(tolerance, DefaultTolerance) / time.Second)}
	var err error
	if v.decode, err = decoder(cfg.Encoding); err != nil {
		return nil, err
	}
	if v.newHash, v.size, err = algorithm(cfg.Algorithm); err != nil {
		return nil, err
	}
	if err := v.checkSources(); err != nil {
		return nil, err
	}
	if v.template, err = parseTemplate(cfg.SignedTemplate); err != nil {
		return nil, err
	}
	if err := v.checkTemplate(); err != nil {
		return nil, err
	}
	return v, nil
}

// decoder returns the decoder of an encoding name ("" is hex).
func decoder(encoding string) (func(string) ([]byte, error), error) {
	switch strings.ToLower(encoding) {
	case "", EncodingHex:
		return hex.DecodeString, nil
	case EncodingBase64:
		return decodeBase64, nil
	}
	return nil, fmt.Errorf("hmac provider encoding %q (want %s or %s): %w", encoding, EncodingHex, EncodingBase64, ErrInvalidConfig)
}

// algorithm returns the hash of an algorithm name ("" is sha256) and its digest size.
func algorithm(name string) (func() hash.Hash, int, error) {
	switch strings.ToLower(name) {
	case "", AlgorithmSHA256:
		return sha256.New, sha256.Size, nil
	case AlgorithmSHA1:
		return sha1.New, sha1.Size, nil
	case AlgorithmSHA512:
		return sha512.New, sha512.Size, nil
	}
	return nil, 0, fmt.Errorf("hmac provider algorithm %q (want %s, %s or %s): %w",
		name, AlgorithmSHA256, AlgorithmSHA1, AlgorithmSHA512, ErrInvalidConfig)
}

// checkSources validates where the timestamp, the id and the signatures come from.
func (v *headerHMACVerifier) checkSources() error {
	if v.timestampHdr != "" && v.timestampKey != "" || v.timestampFld != "" && (v.timestampHdr != "" || v.timestampKey != "") {
		return fmt.Errorf("hmac provider: set one of timestamp_header, timestamp_key and timestamp_field: %w", ErrInvalidConfig)
	}
	if v.timestampKey != "" && v.signatureKey == "" {
		return fmt.Errorf("hmac provider: timestamp_key %q reads the signature header as a key=value list, which needs signature_key: %w", v.timestampKey, ErrInvalidConfig)
	}
	for _, h := range []struct{ what, name string }{{"timestamp_header", v.timestampHdr}, {"id_header", v.idHeader}} {
		if h.name != "" && !isToken(h.name) {
			return fmt.Errorf("hmac provider %s %q is not a valid header name: %w", h.what, h.name, ErrInvalidConfig)
		}
	}
	for _, k := range []struct{ what, key string }{{"signature_key", v.signatureKey}, {"timestamp_key", v.timestampKey}} {
		if strings.ContainsAny(k.key, ",= \t") {
			return fmt.Errorf("hmac provider %s %q holds a comma, an equals sign or a space: %w", k.what, k.key, ErrInvalidConfig)
		}
	}
	return nil
}

// parseTemplate splits a signed-string template into literals and placeholders. An unknown
// {name} is refused, so that a typo does not become a literal no sender signs.
func parseTemplate(tmpl string) ([]string, error) {
	if tmpl == "" {
		tmpl = DefaultSignedTemplate
	}
	var parts []string
	for rest := tmpl; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			parts = append(parts, rest)
			break
		}
		if open > 0 {
			parts = append(parts, rest[:open])
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("hmac provider signed_template %q has a { without }: %w", tmpl, ErrInvalidConfig)
		}
		ph := rest[open : open+end+1]
		switch ph {
		case PlaceholderBody, PlaceholderTimestamp, PlaceholderID:
		default:
			return nil, fmt.Errorf("hmac provider signed_template %q: unknown placeholder %s (want %s, %s or %s): %w",
				tmpl, ph, PlaceholderBody, PlaceholderTimestamp, PlaceholderID, ErrInvalidConfig)
		}
		parts = append(parts, ph)
		rest = rest[open+end+1:]
	}
	return parts, nil
}

// checkTemplate refuses a template that leaves the body unsigned, names a value nothing
// provides, or a timestamp source whose value the signature does not cover (an unsigned
// timestamp would refuse no replay).
func (v *headerHMACVerifier) checkTemplate() error {
	uses := map[string]bool{}
	for _, p := range v.template {
		uses[p] = true
	}
	hasTimestamp := v.timestampHdr != "" || v.timestampKey != ""
	switch {
	case !uses[PlaceholderBody]:
		return fmt.Errorf("hmac provider signed_template does not contain %s, so the body would go unsigned: %w", PlaceholderBody, ErrInvalidConfig)
	case uses[PlaceholderTimestamp] && !hasTimestamp:
		return fmt.Errorf("hmac provider signed_template uses %s but neither timestamp_header nor timestamp_key is set: %w", PlaceholderTimestamp, ErrInvalidConfig)
	case !uses[PlaceholderTimestamp] && hasTimestamp:
		return fmt.Errorf("hmac provider: a timestamp is read but signed_template does not contain %s, so it would refuse no replay: %w", PlaceholderTimestamp, ErrInvalidConfig)
	case uses[PlaceholderID] && v.idHeader == "":
		return fmt.Errorf("hmac provider signed_template uses %s but id_header is not set: %w", PlaceholderID, ErrInvalidConfig)
	}
	return nil
}

// Verify checks the header's signatures against the HMAC of the signed string under each
// secret, and the timestamp (when the template signs one) against now.
func (v *headerHMACVerifier) Verify(header http.Header, body []byte, secrets [][]byte, now time.Time) error {
	keys, err := nonEmpty(secrets)
	if err != nil {
		return fmt.Errorf("%s provider: %w", v.provider, err)
	}
	value := strings.TrimSpace(header.Get(v.header))
	if value == "" {
		return fmt.Errorf("%s provider: header %s is absent or empty: %w", v.provider, v.header, ErrMissingSignature)
	}
	candidates, ts, err := v.signatures(value)
	if err != nil {
		return err
	}
	values, err := v.signedValues(header, ts, now)
	if err != nil {
		return err
	}
	for _, key := range keys {
		want := v.sign(key, body, values)
		for _, got := range candidates {
			if hmac.Equal(got, want) {
				return v.checkBodyTimestamp(body, now)
			}
		}
	}
	return fmt.Errorf("%s provider: none of the %d signatures in %s matches any of the %d secrets: %w",
		v.provider, len(candidates), v.header, len(keys), ErrBadSignature)
}

// checkBodyTimestamp checks the signed body's timestamp field, when the scheme names one,
// against now. It runs once the signature matched, so it parses authentic bodies only.
func (v *headerHMACVerifier) checkBodyTimestamp(body []byte, now time.Time) error {
	if v.timestampFld == "" {
		return nil
	}
	var fields map[string]json.RawMessage
	var n json.Number
	if json.Unmarshal(body, &fields) != nil || fields[v.timestampFld] == nil {
		return fmt.Errorf("%s provider: the body has no %q field: %w", v.provider, v.timestampFld, ErrMissingSignature)
	}
	if err := json.Unmarshal(fields[v.timestampFld], &n); err != nil {
		return fmt.Errorf("%s provider: the body's %q is not a number: %w", v.provider, v.timestampFld, ErrBadSignature)
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1e18 {
		return fmt.Errorf("%s provider: the body's %q is not a usable time: %w", v.provider, v.timestampFld, ErrBadSignature)
	}
	sec := int64(f)
	if math.Abs(f) > 1e11 { // milliseconds
		sec = int64(f / 1000)
	}
	nowSec := now.Unix()
	if sec < subSat(nowSec, v.toleranceSec) || sec > addSat(nowSec, v.toleranceSec) {
		return fmt.Errorf("%s provider: the body's %q (%d s) is more than %ds away from now (%d): %w",
			v.provider, v.timestampFld, sec, v.toleranceSec, nowSec, ErrTimestampOutOfTolerance)
	}
	return nil
}

// signatures decodes the signatures of the header's value: one after the prefix, or, with a
// signature key, each value of that key in a comma-separated key=value list (whose timestamp
// key, if any, is returned as well). Entries that do not decode are skipped; none left is an
// error.
func (v *headerHMACVerifier) signatures(value string) ([][]byte, string, error) {
	if v.signatureKey == "" {
		got, err := v.digest(value)
		if err != nil {
			return nil, "", err
		}
		return [][]byte{got}, "", nil
	}
	var out [][]byte
	ts := ""
	for _, item := range strings.Split(value, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		switch {
		case !ok:
		case k == v.timestampKey && ts == "":
			ts = strings.TrimSpace(val)
		case k == v.signatureKey:
			if got, err := v.digest(strings.TrimSpace(val)); err == nil {
				out = append(out, got)
			}
		}
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("%s provider: header %s holds no well-formed %s= signature: %w", v.provider, v.header, v.signatureKey, ErrBadSignature)
	}
	return out, ts, nil
}

// digest strips the prefix from one signature and decodes it.
func (v *headerHMACVerifier) digest(value string) ([]byte, error) {
	if v.prefix != "" {
		if len(value) < len(v.prefix) || !strings.EqualFold(value[:len(v.prefix)], v.prefix) {
			return nil, fmt.Errorf("%s provider: header %s lacks the prefix %q: %w", v.provider, v.header, v.prefix, ErrBadSignature)
		}
		value = value[len(v.prefix):]
	}
	got, err := v.decode(value)
	if err != nil {
		return nil, fmt.Errorf("%s provider: decode header %s: %v: %w", v.provider, v.header, err, ErrBadSignature)
	}
	if len(got) != v.size {
		return nil, fmt.Errorf("%s provider: header %s holds %d bytes, want %d: %w", v.provider, v.header, len(got), v.size, ErrBadSignature)
	}
	return got, nil
}

// signedValues returns the values of the template's {timestamp} and {id}, once the timestamp
// is checked against now. ts is the timestamp found in the signature header, if any.
func (v *headerHMACVerifier) signedValues(header http.Header, ts string, now time.Time) (map[string][]byte, error) {
	values := map[string][]byte{}
	if v.timestampHdr != "" {
		ts = strings.TrimSpace(header.Get(v.timestampHdr))
	}
	if v.timestampHdr != "" || v.timestampKey != "" {
		if err := v.checkTimestamp(ts, now); err != nil {
			return nil, err
		}
		values[PlaceholderTimestamp] = []byte(ts)
	}
	if v.idHeader != "" {
		id := strings.TrimSpace(header.Get(v.idHeader))
		if id == "" {
			return nil, fmt.Errorf("%s provider: header %s is absent or empty: %w", v.provider, v.idHeader, ErrMissingSignature)
		}
		values[PlaceholderID] = []byte(id)
	}
	return values, nil
}

// checkTimestamp parses ts (unix seconds) and refuses it when it is missing or lies further
// than the tolerance from now in either direction.
func (v *headerHMACVerifier) checkTimestamp(ts string, now time.Time) error {
	where := "header " + v.timestampHdr
	if v.timestampKey != "" {
		where = fmt.Sprintf("the %s= entry of header %s", v.timestampKey, v.header)
	}
	if ts == "" {
		return fmt.Errorf("%s provider: %s is absent or empty: %w", v.provider, where, ErrMissingSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%s provider: %s %q is not unix seconds: %w", v.provider, where, ts, ErrBadSignature)
	}
	nowSec := now.Unix()
	if sec < subSat(nowSec, v.toleranceSec) || sec > addSat(nowSec, v.toleranceSec) {
		return fmt.Errorf("%s provider: %s %d is more than %ds away from now (%d): %w",
			v.provider, where, sec, v.toleranceSec, nowSec, ErrTimestampOutOfTolerance)
	}
	return nil
}

// sign returns the HMAC of the template filled with body and values under key.
func (v *headerHMACVerifier) sign(key, body []byte, values map[string][]byte) []byte {
	mac := hmac.New(v.newHash, key)
	for _, p := range v.template {
		switch p {
		case PlaceholderBody:
			mac.Write(body)
		case PlaceholderTimestamp, PlaceholderID:
			mac.Write(values[p])
		default:
			mac.Write([]byte(p))
		}
	}
	return mac.Sum(nil)
}

// sign returns the HMAC-SHA256 of the concatenation of parts under key.
func sign(key []byte, parts ...[]byte) []byte {
	mac := hmac.New(sha256.New, key)
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)
}

// decodeBase64 decodes standard base64, padded or not, and the URL-safe alphabet, padded or
// not, since senders differ in what they emit.
func decodeBase64(s string) ([]byte, error) {
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}
