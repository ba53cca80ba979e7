// Package restapi is the REST API for curl users under /api/workflows: start, read, list and
// cancel workflow runs, deliver events, list the registered workflows, and list, trigger,
// pause, resume and backfill schedules. Every call reads or writes custom resources
// (WorkflowRun, WorkflowEvent, WorkflowSchedule) in the namespaces its API key may act in; the
// controllers do the work. The one exception is eager start, which hands a new run to
// the engine in this process so that the first segment executes before the answer.
//
// The package is mounted by the webhookserver package (see Register); docs/rest-api.md is the
// user's guide and /api/openapi.json the machine-readable contract.
package restapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/limits"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// Defaults of Deps' durations.
const (
	// DefaultEagerStartTimeout bounds how long an eager start waits for the first segment.
	DefaultEagerStartTimeout = 5 * time.Second
	// DefaultRequestTimeout bounds every request's calls to the Kubernetes API server.
	DefaultRequestTimeout = 30 * time.Second
)

// Engine executes a run in the calling process: the WorkflowRun controller's Execute, used
// when Executes says this process executes the run (it leads the controllers, or under
// sharding the run is in its shard). When it does not execute the run because the process's
// execution budget is spent, its error offers a method BudgetSpent() bool that reports true,
// and the eager start answers at once.
type Engine interface {
	// Execute is given the run as its create returned it.
	Execute(ctx context.Context, created *workflowsv1alpha1.WorkflowRun) (*workflowsv1alpha1.WorkflowRun, error)
	Executes(run *workflowsv1alpha1.WorkflowRun) bool
}

// Deps is what the REST API needs from the manager.
type Deps struct {
	// Client creates and patches runs and events.
	Client client.Client
	// Reader reads past the cache (the manager's API reader): lists page through the API
	// server, and a run just written is seen as written. Nil means Client.
	Reader client.Reader
	// Workflows is the manager's catalog of workflows (Go, files and definitions).
	Workflows *catalog.Catalog
	// Engine executes eager starts in this process when it executes the run; nil, or a run
	// another replica executes, waits for the controller instead.
	Engine Engine
	// KeysSecret holds the API keys; empty means DefaultKeysSecret.
	KeysSecret types.NamespacedName
	// KeyCacheTTL is how long the Secret is trusted before it is read again; zero means
	// DefaultKeyCacheTTL.
	KeyCacheTTL time.Duration
	// EagerStartTimeout bounds an eager start's wait; zero means DefaultEagerStartTimeout.
	EagerStartTimeout time.Duration
	// RequestTimeout bounds each request's work; zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Logger receives request logs, never keys.
	Logger logr.Logger
	// KeyRate limits the requests one API key makes per second on this replica (429 with a
	// Retry-After past it); zero PerSecond means DefaultKeyRate, a negative one no limit.
	KeyRate limits.Rate
	// TraceContext keeps the W3C traceparent of a call that starts a run on the run (see
	// tracing.KeepParent), so that the run's trace continues the caller's.
	TraceContext bool
}

// DefaultKeyRate is what one API key may ask of a replica: a sustained 20 requests per second
// with bursts of 40.
var DefaultKeyRate = limits.Rate{PerSecond: 20, Burst: 40}

// Route is one endpoint the REST API serves.
type Route struct {
	// Method is the HTTP method.
	Method string
	// Path is the path pattern, with {id} for a path parameter, as in OpenAPI.
	Path string
	// Public routes need no API key.
	Public bool
}

// api holds the dependencies of the handlers.
type api struct {
	deps     Deps
	keys     *KeyStore
	keyRates *limits.Buckets // requests per API key
	log      logr.Logger
}

// endpoint handles one authenticated request and returns the status and the body to answer
// with, or an error (an *apierror.Error for anything the client can act on).
type endpoint func(ctx context.Context, c *call) (int, any, error)

// call is one request with the principal its API key speaks for.
type call struct {
	w         http.ResponseWriter
	r         *http.Request
	principal Principal
}

// route ties a Route to its endpoint.
type route struct {
	Route
	handle endpoint
}

// routes is the REST API's route table: Register serves it and Routes reports it.
func (a *api) routes() []route {
	return []route{
		{Route{http.MethodGet, "/api/openapi.json", true}, a.openAPI},
		{Route{http.MethodGet, "/api/workflows", false}, a.listWorkflows},
		{Route{http.MethodPost, "/api/workflows/runs", false}, a.startRun},
		{Route{http.MethodGet, "/api/workflows/runs", false}, a.listRuns},
		{Route{http.MethodGet, "/api/workflows/runs/{id}", false}, a.getRun},
		{Route{http.MethodPost, "/api/workflows/runs/{id}/cancel", false}, a.cancelRun},
		{Route{http.MethodPost, "/api/workflows/events", false}, a.sendEvent},
		{Route{http.MethodGet, "/api/workflows/schedules", false}, a.listSchedules},
		{Route{http.MethodGet, "/api/workflows/schedules/{name}", false}, a.getSchedule},
		{Route{http.MethodPost, "/api/workflows/schedules/{name}/trigger", false}, a.triggerSchedule},
		{Route{http.MethodPost, "/api/workflows/schedules/{name}/pause", false}, a.pauseSchedule},
		{Route{http.MethodPost, "/api/workflows/schedules/{name}/resume", false}, a.resumeSchedule},
		{Route{http.MethodPost, "/api/workflows/schedules/{name}/backfill", false}, a.backfillSchedule},
	}
}

// Routes lists every endpoint Register serves.
func Routes() []Route {
	var out []Route
	for _, rt := range (&api{}).routes() {
		out = append(out, rt.Route)
	}
	return out
}

// Register mounts the REST API on mux and returns its logic for the web console. A method a
// path does not serve answers 405 with the allowed methods. It never panics on a zero Deps:
// requests then fail with 503.
func Register(mux *http.ServeMux, deps Deps) *Service {
	a := newAPI(deps)
	allowed := map[string][]string{}
	var paths []string
	for _, rt := range a.routes() {
		mux.Handle(rt.Method+" "+rt.Path, a.serve(rt))
		if _, seen := allowed[rt.Path]; !seen {
			paths = append(paths, rt.Path)
		}
		allowed[rt.Path] = append(allowed[rt.Path], rt.Method)
	}
	for _, path := range paths {
		mux.Handle(path, methodNotAllowed(allowed[path]))
	}
	return &Service{a: a}
}

// newAPI applies the defaults of deps.
func newAPI(deps Deps) *api {
	if deps.Reader == nil && deps.Client != nil {
		deps.Reader = deps.Client
	}
	if deps.KeysSecret.Name == "" {
		deps.KeysSecret = DefaultKeysSecret
	}
	if deps.EagerStartTimeout <= 0 {
		deps.EagerStartTimeout = DefaultEagerStartTimeout
	}
	if deps.RequestTimeout <= 0 {
		deps.RequestTimeout = DefaultRequestTimeout
	}
	if deps.Workflows == nil {
		deps.Workflows = catalog.New(engine.NewRegistry(), catalog.Options{})
	}
	if deps.KeyRate.PerSecond == 0 {
		deps.KeyRate = DefaultKeyRate
	}
	a := &api{deps: deps, log: deps.Logger, keyRates: limits.NewBuckets(deps.KeyRate, 0)}
	if deps.Reader != nil {
		a.keys = NewKeyStore(deps.Reader, deps.KeysSecret, deps.KeyCacheTTL, deps.Logger)
	}
	return a
}

// methodNotAllowed answers 405 for a path served with other methods.
func methodNotAllowed(methods []string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		apierror.Write(w, http.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed, fmt.Sprintf("%s does not serve %s; use %s", r.URL.Path, r.Method, allow))
	})
}

// serve wraps an endpoint: request timeout, authentication, the answer and a log line.
func (a *api) serve(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), a.deps.RequestTimeout)
		defer cancel()
		c := &call{w: w, r: r}
		status, body, err := a.handle(ctx, rt, c)
		if err != nil {
			status = a.writeErr(w, rt, err)
		} else {
			apierror.WriteJSON(w, status, body)
		}
		a.log.V(1).Info("api_request", "method", r.Method, "path", r.URL.Path, "status", status,
			"key_id", c.principal.KeyID, "duration", time.Since(start).String())
	})
}

// handle authenticates the call unless the route is public, then runs the endpoint.
func (a *api) handle(ctx context.Context, rt route, c *call) (int, any, error) {
	if !rt.Public {
		if a.keys == nil || a.deps.Client == nil {
			return 0, nil, errNotConnected
		}
		p, err := a.authenticate(ctx, c.r)
		if err != nil {
			return 0, nil, err
		}
		if err := a.charge(p); err != nil {
			return 0, nil, err
		}
		c.principal = p
	}
	return rt.handle(ctx, c)
}

// charge takes one request from p's key's bucket (--api-rate): the REST calls and the web
// console's actions share it, so a key cannot go around its limit through the console.
func (a *api) charge(p Principal) error {
	if ok, wait := a.keyRates.Allow(p.KeyID, time.Now()); !ok {
		return apierror.RateLimited(wait, "this API key sends more requests than it may; retry after the time in Retry-After")
	}
	return nil
}

// authenticate checks the X-Api-Key header.
func (a *api) authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	p, err := a.keys.Authenticate(ctx, strings.TrimSpace(r.Header.Get(APIKeyHeader)))
	switch {
	case errors.Is(err, errNoKey):
		return Principal{}, apierror.Errorf(http.StatusUnauthorized, apierror.CodeUnauthorized, "send your API key in the %s header", APIKeyHeader)
	case errors.Is(err, errBadKey):
		return Principal{}, apierror.Errorf(http.StatusUnauthorized, apierror.CodeUnauthorized, "the API key in %s is not valid: unknown, revoked or mistyped", APIKeyHeader)
	case err != nil:
		return Principal{}, apierror.Errorf(http.StatusServiceUnavailable, apierror.CodeUnavailable, "the API keys cannot be read right now; retry shortly")
	}
	return p, nil
}

// writeErr answers with err and returns the status; errors the client cannot act on are
// logged with their details, which the answer does not carry.
func (a *api) writeErr(w http.ResponseWriter, rt route, err error) int {
	ae, actionable := toAPIError(err, rt.Method+" "+rt.Path)
	if !actionable {
		a.log.Error(err, "api request failed", "route", rt.Method+" "+rt.Path)
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `ApiKey header="`+APIKeyHeader+`"`)
	}
	ae.Write(w)
	return ae.Status
}
