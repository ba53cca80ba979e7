package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Media types Build decodes specially.
const (
	mediaJSON = "application/json"
	mediaForm = "application/x-www-form-urlencoded"
)

// githubPayloadField is the form field GitHub puts the JSON in when a hook's content type is
// application/x-www-form-urlencoded.
const githubPayloadField = "payload"

// decodeBody turns raw into the envelope's body according to the Content-Type in h.
func decodeBody(h http.Header, raw []byte) (json.RawMessage, error) {
	if len(raw) == 0 {
		return json.RawMessage("null"), nil // fresh each time: callers may modify it
	}
	// ParseMediaType returns the type along with ErrInvalidMediaParameter when only a
	// parameter is broken; parameters (charset and such) do not matter here. When it returns
	// no type at all, the header is absent or unusable and the body speaks for itself.
	media, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case media == "":
		return sniffBody(raw)
	case media == mediaJSON || strings.HasSuffix(media, "+json"):
		return jsonBody(raw, "body of type "+media)
	case media == mediaForm:
		return formBody(raw)
	default:
		return textBody(raw, "body of type "+media)
	}
}

// jsonBody checks that raw is valid UTF-8 JSON and returns it compacted. what names the
// document in errors.
func jsonBody(raw []byte, what string) (json.RawMessage, error) {
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("%s is not valid UTF-8: %w", what, ErrMalformedBody)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %v: %w", what, err, ErrMalformedBody)
	}
	if buf.Len() == 0 { // only whitespace
		return nil, fmt.Errorf("%s is blank, not JSON: %w", what, ErrMalformedBody)
	}
	return buf.Bytes(), nil
}

// textBody returns raw as a JSON string, provided it is valid UTF-8. what names the
// document in errors.
func textBody(raw []byte, what string) (json.RawMessage, error) {
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("%s is not valid UTF-8 text: %w", what, ErrMalformedBody)
	}
	return marshal(string(raw))
}

// sniffBody decodes a body whose type is not declared: JSON when it is valid JSON, otherwise
// text when it is valid UTF-8, otherwise an error.
func sniffBody(raw []byte) (json.RawMessage, error) {
	if body, err := jsonBody(raw, "body"); err == nil {
		return body, nil
	}
	return textBody(raw, "body without a usable Content-Type")
}

// formBody decodes a URL-encoded form: its payload field as JSON when present (GitHub),
// otherwise the form as a JSON object whose repeated fields become arrays.
func formBody(raw []byte) (json.RawMessage, error) {
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("form body is not valid UTF-8: %w", ErrMalformedBody)
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, fmt.Errorf("form body does not parse: %v: %w", err, ErrMalformedBody)
	}
	if payload, ok := form[githubPayloadField]; ok {
		if len(payload) != 1 {
			return nil, fmt.Errorf("form body has %d %q fields, want one: %w", len(payload), githubPayloadField, ErrMalformedBody)
		}
		return jsonBody([]byte(payload[0]), "form field "+githubPayloadField)
	}
	return formObject(form)
}

// formObject renders form as a JSON object: a field maps to its value, or to the array of its
// values when repeated. Decoded values must be valid UTF-8.
func formObject(form url.Values) (json.RawMessage, error) {
	obj := make(map[string]any, len(form))
	for _, name := range slices.Sorted(maps.Keys(form)) {
		values := form[name]
		for _, s := range append([]string{name}, values...) {
			if !utf8.ValidString(s) {
				return nil, fmt.Errorf("form field %q decodes to invalid UTF-8: %w", validUTF8(name), ErrMalformedBody)
			}
		}
		if len(values) == 1 {
			obj[name] = values[0]
		} else {
			obj[name] = values
		}
	}
	return marshal(obj)
}

// marshal encodes v, which is built from strings only and so always encodes.
func marshal(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode body as JSON: %w", err)
	}
	return b, nil
}
