package envelope

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// TriggerValue returns what identifies a delivery, so that redeliveries map to the same
// (idempotent) run name: the value of header triggerKey when it is set and not blank,
// otherwise the hex SHA-256 of rawBody. The header is looked up case-insensitively; of
// several field lines the first non-blank one counts.
//
// Run names are persisted, so when triggerKey names a sensitive header (see
// IsSensitiveHeader) its value is not returned as is but as its hex SHA-256, which is just
// as stable and leaks nothing. The result is not sanitized for use in a resource name.
func TriggerValue(h http.Header, triggerKey string, rawBody []byte) string {
	if v := headerValue(h, strings.TrimSpace(triggerKey)); v != "" {
		if IsSensitiveHeader(triggerKey) {
			return hexSHA256([]byte(v))
		}
		return v
	}
	return hexSHA256(rawBody)
}

// headerValue returns the first non-blank value of header name in h, trimmed. Keys that are
// not in canonical form are looked at too, after the canonical one and in sorted order, so the
// answer does not depend on map order.
func headerValue(h http.Header, name string) string {
	if name == "" {
		return ""
	}
	canonical := http.CanonicalHeaderKey(name)
	keys := []string{canonical}
	for _, key := range slices.Sorted(maps.Keys(h)) {
		if key != canonical && strings.EqualFold(key, name) {
			keys = append(keys, key)
		}
	}
	for _, key := range keys {
		for _, v := range h[key] {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	return ""
}

// hexSHA256 returns the hex SHA-256 of b.
func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// StandardWebhooksIDHeader carries a Standard Webhooks delivery's id, which its signature covers.
const StandardWebhooksIDHeader = "webhook-id"

// BodyIdentity returns what identifies a delivery by its body alone: the hex SHA-256 of
// rawBody, as TriggerValue does without a trigger header.
func BodyIdentity(rawBody []byte) string { return hexSHA256(rawBody) }

// SignedIDIdentity returns the Standard Webhooks id of a delivery whose signature was checked,
// or the body's hash when it has none.
func SignedIDIdentity(h http.Header, rawBody []byte) string {
	if v := headerValue(h, StandardWebhooksIDHeader); v != "" {
		return "webhook-id:" + v
	}
	return hexSHA256(rawBody)
}

// BodyFieldValue returns the value of the field path of a decoded body (an envelope's
// Webhook.Body), for a trigger key taken from the body (BodyTriggerKey("id")): dots walk into
// nested objects ("event.id"). A string is returned as is, a number or a boolean as its JSON
// text; anything else (absent, null, an object, an array, a body that is not an object) is "",
// which callers treat as no trigger key.
func BodyFieldValue(body json.RawMessage, path string) string {
	if path == "" {
		return ""
	}
	value := body
	for _, name := range strings.Split(path, ".") {
		var obj map[string]json.RawMessage
		if json.Unmarshal(value, &obj) != nil {
			return ""
		}
		if value = obj[name]; value == nil {
			return ""
		}
	}
	var s string
	if json.Unmarshal(value, &s) == nil {
		return strings.TrimSpace(s)
	}
	var scalar any
	if json.Unmarshal(value, &scalar) != nil {
		return ""
	}
	switch scalar.(type) {
	case float64, bool:
		return string(value)
	}
	return ""
}
