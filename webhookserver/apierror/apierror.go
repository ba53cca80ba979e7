// Package apierror is the error contract of the manager's HTTP API, shared by the webhook
// endpoints and the REST API: every error is JSON {"error": {"code", "message"}} with a stable
// code that clients branch on and a message that says what to fix. Error is the API's one
// error type: the REST API's handlers return it, the webhook server refuses deliveries with it,
// and Error.Write answers all of them the same way.
package apierror

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/limits"
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

// RateLimited is the 429 of a caller over its rate, with the Retry-After of wait and message.
func RateLimited(wait time.Duration, message string) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: message, RetryAfter: limits.RetryAfterSeconds(wait)}
}

// QuotaExceeded is the answer to a run a quota refused (see package runquota): 429 for a
// namespace's quota, which the namespace can free, 507 for the cluster-wide budget; both with
// the message and a Retry-After of retryAfter.
func QuotaExceeded(cluster bool, message string, retryAfter time.Duration) *Error {
	e := &Error{Status: http.StatusTooManyRequests, Code: CodeQuotaExceeded, Message: message,
		RetryAfter: strconv.Itoa(int(retryAfter.Seconds()))}
	if cluster {
		e.Status, e.Code = http.StatusInsufficientStorage, CodeStorageFull
	}
	return e
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

// Error is what the HTTP API answers a request it refuses with: a status, a stable code, a
// message that says what to fix, and the headers that go with them. Detail is for the log
// only.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is one of the Code* constants.
	Code string
	// Message says what went wrong and what to fix; the client reads it.
	Message string
	// RetryAfter, when set, is the Retry-After header's value in seconds (a 429, 503 or 507).
	RetryAfter string
	// Allow, when set, is the methods of the Allow header of a 405.
	Allow []string
	// Detail is logged but never answered: what an unauthenticated sender must not learn (how
	// an endpoint verifies, why it is not ready).
	Detail string
}

// Error renders the status, code and message, for logs and wrapping.
func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errorf returns an Error with a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Write answers with e: its Allow and Retry-After headers, its status and the error JSON.
func (e *Error) Write(w http.ResponseWriter) {
	if len(e.Allow) > 0 {
		w.Header().Set("Allow", strings.Join(e.Allow, ", "))
	}
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	WriteJSON(w, e.Status, Body{Error: Detail{Code: e.Code, Message: e.Message}})
}

// Write answers with status and the error JSON of code and message: an Error without headers.
func Write(w http.ResponseWriter, status int, code, message string) {
	(&Error{Status: status, Code: code, Message: message}).Write(w)
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
