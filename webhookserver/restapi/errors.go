package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Stable error codes of the REST API, the same strings as the webhookserver package's Code*
// constants (this package cannot import that one, which imports it). Clients branch on these,
// not on messages.
const (
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodePayloadTooLarge  = "payload_too_large"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeMalformedBody    = "malformed_body"
	CodeInvalidRequest   = "invalid_request"
	CodeUnknownWorkflow  = "unknown_workflow"
	CodeUnavailable      = "unavailable"
	CodeConflict         = "conflict"
	CodeInternal         = "internal"
	// CodeExpired says a continue token is too old: start the listing again.
	CodeExpired = "expired"
)

// ErrorBody is the JSON shape of every error response: {"error": {"code", "message"}}.
type ErrorBody struct {
	// Error is the error's code and message.
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a stable code and a message that says what to fix.
type ErrorDetail struct {
	// Code is one of the Code* constants.
	Code string `json:"code"`
	// Message says what went wrong and what to fix.
	Message string `json:"message"`
}

// apiError is an error with the HTTP status and code it answers with. Handlers return it for
// everything the client can act on; any other error becomes a 500 whose details are logged.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

// errorf builds an apiError with a formatted message.
func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// toAPIError maps err to what the client sees: apiErrors as they are, the API server's errors
// by their kind, deadlines as 503. The second result is false for errors the client cannot
// act on (a 500), which the caller logs.
func toAPIError(err error, what string) (*apiError, bool) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae, true
	case apierrors.IsNotFound(err):
		return errorf(http.StatusNotFound, CodeNotFound, "%s: %s", what, statusMessage(err)), true
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return errorf(http.StatusUnprocessableEntity, CodeInvalidRequest, "%s: the API server refused it: %s", what, statusMessage(err)), true
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		return errorf(http.StatusConflict, CodeConflict, "%s: %s; retry", what, statusMessage(err)), true
	case apierrors.IsResourceExpired(err), apierrors.IsGone(err):
		return errorf(http.StatusGone, CodeExpired, "%s: the continue token has expired; start the listing again without it", what), true
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "%s: the Kubernetes API server did not answer in time; retry shortly", what), true
	default:
		return errorf(http.StatusInternalServerError, CodeInternal, "%s failed; the server logged the details", what), false
	}
}

// statusMessage is the API server's message for err, or err's text.
func statusMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Message != "" {
		return status.Status().Message
	}
	return err.Error()
}

// writeError answers with the error JSON.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: message}})
}

// writeJSON answers with v as indented JSON, readable in a terminal.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}
