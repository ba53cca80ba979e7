// Package webhookserver is the manager's HTTP API: signed webhooks at /api/webhooks/{slug},
// the REST API for curl users under /api/workflows, and the web console for people at /
// (package console). It only reads and writes custom resources; the controllers do the work.
// It runs on every replica, not only the leader.
//
// Webhooks (webhooks.go) are served from a route table (package webhook/routes) that the
// WebhookEndpoint controller fills from WebhookEndpoint resources and their Secrets. What a
// webhook is (routes and grants, signatures, the envelope) lives in the packages under
// webhook/; this package only serves it over HTTP, and answers every delivery's outcome in one
// place (outcome.go). Webhooks a
// workflow declares in code (durable.WithWebhook) are secured by convention: key "secret" of the
// Secret "centaur-webhook-<slug>" in the operator's namespace (--operator-namespace); their runs
// are created in the namespace of --code-webhook-namespace. A WebhookEndpoint with the same slug
// overrides them. docs/webhooks.md is the user's guide.
package webhookserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/internal/limits"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
	"github.com/centaur-dev/workflow-operator/webhookserver/ledger"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/webhookserver/runindex"
)

// Config configures the API server.
type Config struct {
	// Addr is the listen address, for example ":8088".
	Addr string
	// Client writes and reads custom resources.
	Client client.Client
	// Reader reads past the cache where a fresh answer matters.
	Reader client.Reader
	// Workflows is the manager's catalog of workflows.
	Workflows *catalog.Catalog
	// Engine executes a run in this process right away (eager start) when it executes the
	// run (Engine.Executes); nil disables eager start in process.
	Engine Engine
	// APIKeysSecret is the Secret holding the REST API's keys (see docs/rest-api.md); empty
	// means restapi.DefaultKeysSecret.
	APIKeysSecret types.NamespacedName
	// EagerStartTimeout bounds how long an eager start waits for the run's first segment.
	// Default 5 s.
	EagerStartTimeout time.Duration
	// Logger receives request logs.
	Logger logr.Logger
	// ShutdownTimeout bounds how long in-flight requests may finish at shutdown. Default 10 s.
	ShutdownTimeout time.Duration
	// Routes is the webhook route table the WebhookEndpoint controller feeds; nil serves no
	// webhook (every slug is 404).
	Routes *routes.Table
	// TrustedProxies are the networks of the reverse proxies in front of the server; only
	// their X-Forwarded-For and X-Real-Ip headers count for a delivery's source_ip.
	TrustedProxies []netip.Prefix
	// MaxInFlightDeliveries bounds webhook deliveries handled at once by this replica (each may
	// hold a body of up to 1 MiB before its signature is checked); past it the server answers
	// 503 with a Retry-After. Zero means DefaultMaxInFlight.
	MaxInFlightDeliveries int
	// BodyReadTimeout bounds how long a delivery's body may take to arrive once its headers
	// passed; zero means DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// UnverifiedRate limits the deliveries one client (its address, see TrustedProxies) may
	// send that fail their signature check or whose body does not arrive in time: past it, its
	// deliveries are answered 429 before their body is read. Verified deliveries
	// are charged to their slug's DeliveryRate instead, so a flood of forged deliveries cannot
	// make a slug refuse its real sender. Zero PerSecond means DefaultUnverifiedRate.
	UnverifiedRate limits.Rate
	// MaxInFlightRequests bounds REST API requests handled at once by this replica, likewise.
	MaxInFlightRequests int
	// DeliveryRate limits the deliveries one slug takes per second (429 with a Retry-After past
	// it); zero PerSecond means DefaultDeliveryRate.
	DeliveryRate limits.Rate
	// TraceContext keeps the W3C traceparent of a webhook delivery or a REST call that
	// creates a run on the run (AnnotationTraceparent), so that the run's trace continues the
	// caller's; the manager sets it when it traces (package tracing).
	TraceContext bool
	// APIKeyRate limits the REST calls one API key makes per second; zero PerSecond means
	// restapi.DefaultKeyRate.
	APIKeyRate limits.Rate
	// WebhookRunTTL deletes a run a webhook started this long after it finished
	// (spec.ttlSecondsAfterFinished), so a flood of deliveries cannot fill etcd for good; zero
	// means DefaultWebhookRunTTL, negative keeps them.
	WebhookRunTTL time.Duration

	// Runs reads every run (the manager's cache, or under sharding its view of all runs): it
	// finds the run a delivery's trigger key started already. Nil turns that lookup off, and
	// only the body then identifies a delivery.
	Runs client.Reader
	// DeletedRuns remembers the webhook runs deleted within --webhook-identity-retention
	// (package ledger): a delivery whose run it holds, and which no run of that name answers
	// any more, is answered 200 with the run marked deleted, and starts nothing. Nil forgets a
	// delivery once its run is deleted.
	DeletedRuns *ledger.Ledger

	// Informers is the manager's cache; the console's run index follows its WorkflowRun
	// informer. Nil leaves the console without a runs list.
	Informers cache.Informers
	// Console configures the web console.
	Console ConsoleConfig
}

// ConsoleConfig configures the web console (package console).
type ConsoleConfig struct {
	// Secret holds the session secret every replica signs sign-ins with; empty means
	// console.DefaultSecret.
	Secret types.NamespacedName
	// MaxRequests and MaxStreams bound the console's concurrent page requests and open live
	// streams on this replica; zero means the console's defaults.
	MaxRequests, MaxStreams int
	// TraceURL links run pages to their traces (console.Deps.TraceURL).
	TraceURL string
}

// DefaultWebhookRunTTL keeps a webhook's finished runs for a week.
const DefaultWebhookRunTTL = 7 * 24 * time.Hour

// Defaults of the request limits.
const (
	// DefaultMaxInFlight requests of a kind at once per replica.
	DefaultMaxInFlight = 64
	// DefaultBodyReadTimeout is how long a delivery's body may take to arrive: a 1 MiB body
	// needs a link of 100 KiB/s.
	DefaultBodyReadTimeout = 10 * time.Second
	// MaxHeaderBytes caps a request's headers; Go's default (1 MiB) is far more than any
	// webhook or REST call sends.
	MaxHeaderBytes = 64 << 10
)

// DefaultDeliveryRate is what one slug takes: a sustained 50 deliveries per second with bursts
// of 100, far above what a provider sends one endpoint and low enough that one slug cannot
// monopolise a replica.
var DefaultDeliveryRate = limits.Rate{PerSecond: 50, Burst: 100}

// DefaultUnverifiedRate is how many deliveries failing their signature one client may send:
// a provider whose secret was rotated retries a few; a scanner or a forger gets cut off.
var DefaultUnverifiedRate = limits.Rate{PerSecond: 1, Burst: 20}

// Engine executes a run in the calling process: the WorkflowRun controller (see
// restapi.Engine).
type Engine = restapi.Engine

// Server serves the HTTP API. It is a manager runnable that does not need leader election.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	handler http.Handler
	index   *runindex.Index
	ready   chan struct{}
	addr    net.Addr

	deliveries, requests *limits.InFlight // budgets of requests in flight
	slugRates            *limits.Buckets  // verified deliveries per slug
	unverified           *limits.Buckets  // deliveries failing their signature or deadline, per client
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.WebhookRunTTL == 0 {
		cfg.WebhookRunTTL = DefaultWebhookRunTTL
	}
	if cfg.DeliveryRate.PerSecond == 0 {
		cfg.DeliveryRate = DefaultDeliveryRate
	}
	if cfg.UnverifiedRate.PerSecond == 0 {
		cfg.UnverifiedRate = DefaultUnverifiedRate
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), ready: make(chan struct{}),
		deliveries: limits.NewInFlight(cmp.Or(cfg.MaxInFlightDeliveries, DefaultMaxInFlight)),
		requests:   limits.NewInFlight(cmp.Or(cfg.MaxInFlightRequests, DefaultMaxInFlight)),
		slugRates:  limits.NewBuckets(cfg.DeliveryRate, 0),
		unverified: limits.NewBuckets(cfg.UnverifiedRate, 0),
	}
	if cfg.Informers != nil {
		s.index = runindex.New()
	}
	s.routes()
	s.handler = recoverPanics(cfg.Logger, s.limitInFlight(s.mux))
	return s
}

// limitInFlight answers 503 with a Retry-After when the budget of REST calls in flight is
// spent, before anything reads the body. Webhook deliveries take theirs once their headers
// passed (see handleWebhook); the console keeps its own.
func (s *Server) limitInFlight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, routes.PathPrefix) || !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		release, ok := s.requests.TryAcquire()
		if !ok {
			errBusy.Write(w)
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// errBusy is the 503 of a request over a budget of requests in flight.
var errBusy = &apierror.Error{Status: http.StatusServiceUnavailable, Code: apierror.CodeUnavailable, RetryAfter: "1",
	Message: "the server is at its limit of requests in flight; retry shortly"}

// routes registers every endpoint. Other files of this package add their handlers here.
func (s *Server) routes() {
	rest := restapi.Register(s.mux, restapi.Deps{
		Client: s.cfg.Client, Reader: s.cfg.Reader, Workflows: s.cfg.Workflows, Engine: s.cfg.Engine,
		KeysSecret: s.cfg.APIKeysSecret, EagerStartTimeout: s.cfg.EagerStartTimeout, KeyRate: s.cfg.APIKeyRate,
		TraceContext: s.cfg.TraceContext,
		Logger:       s.cfg.Logger.WithName("rest"),
	})
	console.New(console.Deps{
		REST: rest, Index: s.index, Client: s.cfg.Client, Reader: s.cfg.Reader, Secret: s.cfg.Console.Secret,
		Workflows: s.cfg.Workflows, Routes: s.cfg.Routes, MaxRequests: s.cfg.Console.MaxRequests,
		MaxStreams: s.cfg.Console.MaxStreams, TrustedProxies: s.cfg.TrustedProxies, Logger: s.cfg.Logger.WithName("console"),
		TraceURL: s.cfg.Console.TraceURL,
	}).Register(s.mux)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		apierror.Write(w, http.StatusNotFound, apierror.CodeNotFound, fmt.Sprintf("no endpoint %s %s; see /api/openapi.json", r.Method, r.URL.Path))
	})
	s.mux.HandleFunc("/api/webhooks/{slug}", s.handleWebhook)
}

// Handler returns the server's HTTP handler, for tests that serve it themselves.
func (s *Server) Handler() http.Handler { return s.handler }

// NeedLeaderElection reports false: every replica serves the API.
func (s *Server) NeedLeaderElection() bool { return false }

// Addr returns the address the server listens on once it started (useful with port 0).
func (s *Server) Addr() net.Addr {
	<-s.ready
	return s.addr
}

// Start serves until ctx is cancelled, then lets in-flight requests finish.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen for the API on %s: %w", s.cfg.Addr, err)
	}
	s.addr = ln.Addr()
	close(s.ready)
	if s.index != nil {
		go s.followRuns(ctx)
	}
	srv := &http.Server{
		Handler:           s.handler,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.cfg.Logger.Info("api_server_listening", "address", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve the API: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut the API down: %w", err)
	}
	return nil
}

// followRuns feeds the console's run index from the manager's cache until ctx ends.
func (s *Server) followRuns(ctx context.Context) {
	if err := s.index.Attach(ctx, s.cfg.Informers); err != nil {
		s.cfg.Logger.Error(err, "the console's run index does not follow WorkflowRuns; the runs page stays empty")
	}
}

// recoverPanics turns a panic in a handler into a 500 with the error JSON.
func recoverPanics(logger logr.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error(fmt.Errorf("panic: %v", v), "api handler panicked", "path", r.URL.Path)
				apierror.Write(w, http.StatusInternalServerError, apierror.CodeInternal, "internal error; the server logged the details")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
