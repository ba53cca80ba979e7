package restapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// MaxBodyBytes is the largest request body the REST API reads (1 MiB): a run's input has to
// fit into one etcd object together with its journal anyway.
const MaxBodyBytes = 1 << 20

// Field limits checked before anything reaches the API server, so that the client learns
// which field to fix.
const (
	maxWorkflowNameLength   = 253
	maxIdempotencyKeyLength = 255
	maxEventFieldLength     = 253
)

// workflowNamePattern is spec.workflowName's validation pattern.
var workflowNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// StartRunRequest is the body of POST /api/workflows/runs.
type StartRunRequest struct {
	// WorkflowName is the registered workflow to run, for example "hello".
	WorkflowName string `json:"workflow_name"`
	// Input is the workflow's input, any JSON value; nil when absent or null.
	Input json.RawMessage `json:"input,omitempty"`
	// EagerStart executes the run's first segment before answering.
	EagerStart bool `json:"eager_start,omitempty"`
	// IdempotencyKey makes a retried request return the run the first one started.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Namespace chooses among the key's namespaces; empty means the key's default.
	Namespace string `json:"namespace,omitempty"`
}

// EventRequest is the body of POST /api/workflows/events.
type EventRequest struct {
	// EventType names what happened, for example "approval.decided".
	EventType string `json:"event_type"`
	// CorrelationID says which runs the event concerns.
	CorrelationID string `json:"correlation_id,omitempty"`
	// Payload is any JSON value handed to the waiting runs; nil when absent or null.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Namespace chooses among the key's namespaces; empty means the key's default.
	Namespace string `json:"namespace,omitempty"`
}

// DecodeError is a request body the REST API refuses: Code is apierror.CodeMalformedBody when the body
// is not the JSON object expected, apierror.CodeInvalidRequest when a field's value is wrong.
type DecodeError struct {
	// Code is apierror.CodeMalformedBody or apierror.CodeInvalidRequest.
	Code string
	// Message says what to fix.
	Message string
}

func (e *DecodeError) Error() string { return e.Message }

func malformed(format string, args ...any) *DecodeError {
	return &DecodeError{Code: apierror.CodeMalformedBody, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *DecodeError {
	return &DecodeError{Code: apierror.CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

// DecodeStartRun decodes and validates the body of POST /api/workflows/runs. The body is JSON
// whatever its Content-Type says (curl -d sends application/x-www-form-urlencoded). Unknown
// fields are refused so that a typo such as "workflow" surfaces at once. Whether the workflow
// is registered is the caller's check. Every failure is a *DecodeError.
func DecodeStartRun(body []byte) (StartRunRequest, error) {
	const example = `{"workflow_name": "hello", "input": {"name": "Ada"}}`
	var req StartRunRequest
	if err := decodeObject(body, &req, example); err != nil {
		return StartRunRequest{}, err
	}
	switch {
	case req.WorkflowName == "":
		return StartRunRequest{}, invalid("workflow_name is required, for example %s; GET /api/workflows lists the workflows", example)
	case len(req.WorkflowName) > maxWorkflowNameLength:
		return StartRunRequest{}, invalid("workflow_name is longer than %d characters", maxWorkflowNameLength)
	case !workflowNamePattern.MatchString(req.WorkflowName):
		return StartRunRequest{}, invalid("workflow_name %q is not a workflow name: use letters, digits, '_', '.' and '-', starting with a letter or digit", req.WorkflowName)
	case len(req.IdempotencyKey) > maxIdempotencyKeyLength:
		return StartRunRequest{}, invalid("idempotency_key is longer than %d characters", maxIdempotencyKeyLength)
	}
	if err := checkNamespace(req.Namespace, "namespace"); err != nil {
		return StartRunRequest{}, err
	}
	req.Input = compactValue(req.Input)
	return req, nil
}

// DecodeEvent decodes and validates the body of POST /api/workflows/events, like
// DecodeStartRun. Every failure is a *DecodeError.
func DecodeEvent(body []byte) (EventRequest, error) {
	const example = `{"event_type": "approval.decided", "correlation_id": "req-42", "payload": {"decision": "approved"}}`
	var req EventRequest
	if err := decodeObject(body, &req, example); err != nil {
		return EventRequest{}, err
	}
	switch {
	case strings.TrimSpace(req.EventType) == "":
		return EventRequest{}, invalid("event_type is required, for example %s", example)
	case len(req.EventType) > maxEventFieldLength:
		return EventRequest{}, invalid("event_type is longer than %d characters", maxEventFieldLength)
	case len(req.CorrelationID) > maxEventFieldLength:
		return EventRequest{}, invalid("correlation_id is longer than %d characters", maxEventFieldLength)
	}
	if err := checkNamespace(req.Namespace, "namespace"); err != nil {
		return EventRequest{}, err
	}
	req.Payload = compactValue(req.Payload)
	return req, nil
}

// decodeObject decodes body, which must hold exactly one JSON object of v's known fields.
// example shows a valid body in error messages.
func decodeObject(body []byte, v any, example string) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return malformed("the request body is empty: send a JSON object such as %s", example)
	}
	if !utf8.Valid(body) {
		return malformed("the request body is not valid UTF-8")
	}
	if first := bytes.TrimLeft(body, " \t\r\n"); first[0] != '{' {
		return malformed("the request body must be a JSON object such as %s", example)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed("the request body is not the JSON expected: %s; send a JSON object such as %s", describeJSONError(err), example)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return malformed("the request body holds more than one JSON value; send a single object such as %s", example)
	}
	return nil
}

// describeJSONError rewords encoding/json's errors for a curl user.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ) && typ.Type != nil && typ.Field != "":
		return fmt.Sprintf("field %q must be a JSON %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	default:
		return strings.TrimPrefix(err.Error(), "json: ")
	}
}

// jsonKind names a Go kind the way a JSON user would.
func jsonKind(kind string) string {
	switch kind {
	case "bool":
		return "boolean"
	case "string":
		return "string"
	default:
		return kind
	}
}

// compactValue returns raw without insignificant whitespace, or nil for an absent or null
// value. raw was produced by encoding/json, so it is valid JSON.
func compactValue(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil || buf.String() == "null" || buf.Len() == 0 {
		return nil
	}
	return buf.Bytes()
}

// checkNamespace reports a namespace that cannot exist. Empty is allowed (the key's default).
func checkNamespace(ns, field string) error {
	if ns == "" {
		return nil
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return invalid("%s %q is not a namespace name: %s", field, ns, strings.Join(errs, "; "))
	}
	return nil
}

// readBody reads at most MaxBodyBytes of r's body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, apierror.Errorf(http.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge, "the request body is larger than %d bytes", MaxBodyBytes)
	case err != nil:
		return nil, apierror.Errorf(http.StatusBadRequest, apierror.CodeMalformedBody, "read the request body: %v", err)
	}
	return body, nil
}
