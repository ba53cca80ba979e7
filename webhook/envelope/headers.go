package envelope

import (
	"maps"
	"net/http"
	"slices"
	"strings"
)

// sensitiveFragments are the lower-case name fragments that mark a header as carrying a
// credential. They cover, among others, X-Hub-Signature, X-Hub-Signature-256,
// Webhook-Signature, Authorization, Proxy-Authorization, Cookie, Set-Cookie and X-Api-Key.
var sensitiveFragments = []string{
	"signature",
	"jwt",
	"assertion", // x-ms-client-principal-assertion, saml assertions, OIDC client assertions
	"bearer",
	"auth", // authorization, proxy-authorization, x-auth-*, ...
	"cookie",
	"token",
	"secret",
	"password",
	"passwd",
	"credential",
	"session",
	"api-key", "apikey", "api_key",
	"access-key", "access_key",
	"private-key", "private_key",
}

// sensitiveWords are name parts that mark a credential only as a whole word (at the end, or
// followed by "-"): X-Goog-Api-Key, Ocp-Apim-Subscription-Key, X-Functions-Key, X-Webhook-Sig,
// but not X-Hub-Keyword.
var sensitiveWords = []string{"-key", "_key", "-sig", "_sig"}

// sensitiveNames are whole names that carry credentials: Azure's SAS "sig" and Functions
// "code" query parameters, a bare "key", "pwd" and "pass".
var sensitiveNames = []string{"sig", "key", "code", "pwd", "pass"}

// harmlessKeyHeaders end in "-key" but identify rather than authenticate: a provider's
// idempotency key is what a workflow dedupes on.
var harmlessKeyHeaders = []string{"idempotency-key", "x-idempotency-key", "sec-websocket-key"}

// IsSensitiveHeader reports whether a header (or query parameter) named name (case-insensitively) may carry a
// credential and so must never be persisted: signatures (X-Hub-Signature-256,
// Webhook-Signature, ...), Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key,
// and any name containing signature, -sig, jwt, assertion, -key (X-Goog-Api-Key,
// Ocp-Apim-Subscription-Key, ...), bearer, auth, cookie, token, secret, password, passwd,
// credential, session, apikey or private-key. The same rule filters query parameters
// (?token=..., ?api_key=..., ?sig=...). The list errs on the side of stripping: a lost header
// is an inconvenience, a leaked secret is an incident.
func IsSensitiveHeader(name string) bool {
	lower := strings.ToLower(name)
	if slices.Contains(harmlessKeyHeaders, lower) {
		return false
	}
	if slices.Contains(sensitiveNames, lower) {
		return true
	}
	for _, fragment := range sensitiveFragments {
		if strings.Contains(lower, fragment) {
			return true
		}
	}
	for _, word := range sensitiveWords {
		if strings.HasSuffix(lower, word) || strings.Contains(lower, word+"-") || strings.Contains(lower, word+"_") {
			return true
		}
	}
	return false
}

// isSensitive reports whether name is sensitive by IsSensitiveHeader or listed in extra.
func isSensitive(name string, extra []string) bool {
	if IsSensitiveHeader(name) {
		return true
	}
	for _, e := range extra {
		if strings.EqualFold(strings.TrimSpace(e), name) {
			return true
		}
	}
	return false
}

// keptHeaders returns the headers worth persisting: lower-cased names mapping to their values
// joined with ", ", without sensitive headers and without names that are not valid HTTP
// field names (a real request cannot carry those, and odd spellings could dodge the
// sensitive-name check). The result is never nil.
func keptHeaders(h http.Header, extra []string) map[string]string {
	out := make(map[string]string, len(h))
	// Sorted, so that names differing only in case merge in a stable order.
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if !isToken(name) || isSensitive(name, extra) {
			continue
		}
		lower := strings.ToLower(name)
		for _, v := range h[name] {
			v = validUTF8(v)
			if prev, ok := out[lower]; ok {
				v = prev + ", " + v
			}
			out[lower] = v
		}
		if _, ok := out[lower]; !ok {
			out[lower] = ""
		}
	}
	return out
}

// isToken reports whether s is a valid HTTP field name (RFC 9110 token): non-empty, ASCII
// letters, digits and !#$%&'*+-.^_`|~ only.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}
