package restapi

import (
	"context"
	"errors"
	"net/http"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// Service is the REST API's logic for the other front end of the same listener, the web
// console (package webhookserver/console): the same key store, namespace checks, views and
// writes as the HTTP endpoints, without HTTP, so that a person in the console and a script
// with curl always get the same answers and the same refusals. Its writes (StartRun,
// CancelRun, SendEvent) take from the key's rate limit as the HTTP calls do. Register returns
// it.
type Service struct{ a *api }

// errNotConnected is what a Service without a Kubernetes client answers.
var errNotConnected = apierror.Errorf(http.StatusServiceUnavailable, apierror.CodeUnavailable, "the REST API is not connected to Kubernetes")

// Authenticate returns the principal an API key speaks for, exactly as the X-Api-Key header
// is checked. IsKeyRefused tells a refused key from keys that cannot be read right now.
func (s *Service) Authenticate(ctx context.Context, key string) (Principal, error) {
	if s.a.keys == nil || s.a.deps.Client == nil {
		return Principal{}, errNotConnected
	}
	return s.a.keys.Authenticate(ctx, key)
}

// IsKeyRefused reports whether an error of Authenticate means the key itself was refused:
// missing, unknown, revoked or mistyped. Any other error means the keys could not be read.
func IsKeyRefused(err error) bool {
	return errors.Is(err, errNoKey) || errors.Is(err, errBadKey)
}

// Workflows is the answer of GET /api/workflows?namespace= for p: the workflows namespace (the
// key's default when empty) can run.
func (s *Service) Workflows(p Principal, namespace string) (WorkflowList, error) {
	ns, err := p.Namespace(namespace, "")
	if err != nil {
		return WorkflowList{}, err
	}
	return ListWorkflows(s.a.deps.Workflows, ns), nil
}

// StartRun starts a run for p as POST /api/workflows/runs does, in req.Namespace (the key's
// default when empty). It reports false when req's idempotency key had already started the
// same request, whose run it returns.
func (s *Service) StartRun(ctx context.Context, p Principal, req StartRunRequest) (*workflowsv1alpha1.WorkflowRun, bool, error) {
	if err := s.a.charge(p); err != nil {
		return nil, false, err
	}
	status, run, err := s.a.start(ctx, p, "", req, "")
	return run, status == http.StatusCreated, err
}

// Run reads one run past the cache, as GET /api/workflows/runs/{id} does: namespace is
// checked against p's scope (empty means p's default).
func (s *Service) Run(ctx context.Context, p Principal, namespace, id string) (*workflowsv1alpha1.WorkflowRun, error) {
	return s.a.findRun(ctx, p, namespace, id)
}

// CancelRun asks run id to stop, as POST /api/workflows/runs/{id}/cancel does; a run that
// already finished is a conflict.
func (s *Service) CancelRun(ctx context.Context, p Principal, namespace, id string) (*workflowsv1alpha1.WorkflowRun, error) {
	if err := s.a.charge(p); err != nil {
		return nil, err
	}
	_, run, err := s.a.cancel(ctx, p, namespace, id)
	return run, err
}

// SendEvent delivers an event for p as POST /api/workflows/events does, in req.Namespace
// (the key's default when empty).
func (s *Service) SendEvent(ctx context.Context, p Principal, req EventRequest) (Event, error) {
	if err := s.a.charge(p); err != nil {
		return Event{}, err
	}
	return s.a.deliver(ctx, p, "", req)
}

// ErrorOf maps an error of a Service method to what the HTTP endpoints answer with: the
// status and the stable code and message. what names the action in messages about the API
// server's refusals. ok is false for an error the client cannot act on (a 500), whose details
// belong in the log and not in the answer.
func ErrorOf(err error, what string) (status int, detail apierror.Detail, ok bool) {
	ae, ok := toAPIError(err, what)
	return ae.Status, apierror.Detail{Code: ae.Code, Message: ae.Message}, ok
}
