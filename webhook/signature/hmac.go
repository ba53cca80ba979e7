package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// GitHubHeader is the header GitHub signs deliveries with.
const GitHubHeader = "X-Hub-Signature-256"

// gitHubPrefix comes before the hex digest in GitHubHeader.
const gitHubPrefix = "sha256="

// headerHMACVerifier checks an HMAC-SHA256 of the raw body carried in one header, optionally
// after a prefix, hex or base64 encoded. Both the github and the hmac providers are this.
type headerHMACVerifier struct {
	provider string // for error messages
	header   string
	prefix   string
	decode   func(string) ([]byte, error)
}

// githubVerifier returns the verifier of GitHub's X-Hub-Signature-256 scheme.
func githubVerifier() *headerHMACVerifier {
	return &headerHMACVerifier{provider: GitHub, header: GitHubHeader, prefix: gitHubPrefix, decode: hex.DecodeString}
}

// newHMACVerifier validates cfg and returns the generic hmac verifier it describes.
func newHMACVerifier(cfg HMACConfig) (*headerHMACVerifier, error) {
	if !isToken(cfg.Header) {
		return nil, fmt.Errorf("hmac provider header %q is not a valid header name: %w", cfg.Header, ErrInvalidConfig)
	}
	v := &headerHMACVerifier{provider: HMAC, header: cfg.Header, prefix: cfg.Prefix}
	switch strings.ToLower(cfg.Encoding) {
	case "", EncodingHex:
		v.decode = hex.DecodeString
	case EncodingBase64:
		v.decode = decodeBase64
	default:
		return nil, fmt.Errorf("hmac provider encoding %q (want %s or %s): %w",
			cfg.Encoding, EncodingHex, EncodingBase64, ErrInvalidConfig)
	}
	return v, nil
}

// Verify checks the header's digest against the HMAC-SHA256 of body under each secret.
func (v *headerHMACVerifier) Verify(header http.Header, body []byte, secrets [][]byte, _ time.Time) error {
	keys, err := nonEmpty(secrets)
	if err != nil {
		return fmt.Errorf("%s provider: %w", v.provider, err)
	}
	got, err := v.digest(header)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if hmac.Equal(got, sign(key, body)) {
			return nil
		}
	}
	return fmt.Errorf("%s provider: %s matches none of the %d secrets: %w", v.provider, v.header, len(keys), ErrBadSignature)
}

// digest extracts and decodes the signature from the header.
func (v *headerHMACVerifier) digest(header http.Header) ([]byte, error) {
	value := strings.TrimSpace(header.Get(v.header))
	if value == "" {
		return nil, fmt.Errorf("%s provider: header %s is absent or empty: %w", v.provider, v.header, ErrMissingSignature)
	}
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
	if len(got) != sha256.Size {
		return nil, fmt.Errorf("%s provider: header %s holds %d bytes, want %d: %w", v.provider, v.header, len(got), sha256.Size, ErrBadSignature)
	}
	return got, nil
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
