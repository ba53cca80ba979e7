package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// tokenVerifier compares a header's token with the secrets in constant time; see Token.
type tokenVerifier struct {
	header, prefix string
}

// newTokenVerifier returns the token verifier of cfg's Header and Prefix (the only fields of
// HMACConfig it uses).
func newTokenVerifier(cfg HMACConfig) (*tokenVerifier, error) {
	if !isToken(cfg.Header) {
		return nil, fmt.Errorf("token provider header %q is not a valid header name: %w", cfg.Header, ErrInvalidConfig)
	}
	return &tokenVerifier{header: cfg.Header, prefix: cfg.Prefix}, nil
}

// Verify accepts the request when the header's token equals one of the secrets. The token and
// each secret are compared by their SHA-256, in constant time, so that neither the position of
// the first difference nor the secret's length shows in the time taken.
func (v *tokenVerifier) Verify(header http.Header, _ []byte, secrets [][]byte, _ time.Time) error {
	keys, err := nonEmpty(secrets)
	if err != nil {
		return fmt.Errorf("%s provider: %w", Token, err)
	}
	value := strings.TrimSpace(header.Get(v.header))
	if value == "" {
		return fmt.Errorf("%s provider: header %s is absent or empty: %w", Token, v.header, ErrMissingSignature)
	}
	if v.prefix != "" {
		if len(value) < len(v.prefix) || !strings.EqualFold(value[:len(v.prefix)], v.prefix) {
			return fmt.Errorf("%s provider: header %s lacks the prefix %q: %w", Token, v.header, v.prefix, ErrBadSignature)
		}
		value = value[len(v.prefix):]
	}
	got := sha256.Sum256([]byte(value))
	match := false
	for _, key := range keys {
		want := sha256.Sum256(key)
		match = hmac.Equal(got[:], want[:]) || match // every secret is compared, whichever matches
	}
	if !match {
		return fmt.Errorf("%s provider: %s matches none of the %d secrets: %w", Token, v.header, len(keys), ErrBadSignature)
	}
	return nil
}
