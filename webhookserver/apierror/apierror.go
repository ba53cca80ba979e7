// Package apierror is the error contract of the manager's HTTP API, shared by the webhook
// endpoints and the REST API: every error is JSON {"error": {"code", "message"}} with a stable
// code that clients branch on and a message that says what to fix.
package apierror

import (
	"encoding/json"
	"net/http"
)

// Stable error codes. Clients branch on these, never on messages.
const (
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeMalformedBody        = "malformed_body"
	CodeInvalidRequest       = "invalid_request"
	CodeUnknownWorkflow      = "unknown_workflow"
	// CodeInvalidInput says a run's input does not fit the workflow's declared input.
	CodeInvalidInput = "invalid_input"
	CodeNotReady     = "endpoint_not_ready"
	CodeUnavailable  = "unavailable"
	CodeConflict     = "conflict"
	CodeInternal     = "internal"
	// CodeRateLimited says the caller sent more than it may; Retry-After says when to retry.
	CodeRateLimited = "rate_limited"
	// CodeRequestTimeout (408) says the body did not arrive in time once the headers had.
	CodeRequestTimeout = "request_timeout"
	// CodeExpired says a continue token is too old: start the listing again.
	CodeExpired = "expired"
	// CodeQuotaExceeded (429) says the namespace holds as many runs, or run bytes, as its
	// quota allows: delete finished runs and retry.
	CodeQuotaExceeded = "quota_exceeded"
	// CodeStorageFull (507) says the cluster-wide budget of what runs may store is spent.
	CodeStorageFull = "storage_full"
)

// QuotaAnswer is the status and code of the answer to a run a quota refused (see package
// runquota): 429 for a namespace's quota, which the namespace can free, 507 for the
// cluster-wide budget.
func QuotaAnswer(cluster bool) (status int, code string) {
	if cluster {
		return http.StatusInsufficientStorage, CodeStorageFull
	}
	return http.StatusTooManyRequests, CodeQuotaExceeded
}

// Body is the JSON shape of every error response.
type Body struct {
	// Error is the error's code and message.
	Error Detail `json:"error"`
}

// Detail is a stable code and a message that says what to fix.
type Detail struct {
	// Code is one of the Code* constants.
	Code string `json:"code"`
	// Message says what went wrong and what to fix.
	Message string `json:"message"`
}

// Write answers with the error JSON.
func Write(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, Body{Error: Detail{Code: code, Message: message}})
}

// WriteJSON answers with v as indented JSON, readable in a terminal.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}
