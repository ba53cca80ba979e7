// Package console is the web console of the manager's API listener: server-rendered pages for
// people, at /console/ (and / redirects there), on every replica.
//
//   - Runs: newest first across webhook, child, kubectl, REST and scheduled runs alike, from the
//     run index (package runindex) rather than from API server lists, which come in name order;
//     filters by namespace, workflow, phase, webhook and text; pages cut by cursor; updated live.
//   - A run: its journal as a timeline (each step, sleep, wait, child and agent turn with start,
//     duration, attempts and state), what it waits for and until when, input, output and error,
//     its parent and children, the workflow revision; cancel, and send the event it awaits.
//   - Workflows: the REST API's listing, with "start a run" prefilled with the example input.
//   - Webhooks: WebhookEndpoints and code-declared webhooks, readiness with reasons, the URL to
//     give the provider, and recent deliveries with their outcome.
//
// People sign in with a REST API key. Everything goes through the REST API's own logic
// (restapi.Service): the same key store, the same namespace scopes, the same views, writes and
// error messages. The key travels in a sealed cookie (session.go) that signing out revokes on
// every replica (signout.go), every state change is a POST carrying the session's CSRF token,
// and the console's page requests and live streams have budgets of their own (budget.go),
// apart from the REST API.
//
// The pages work without JavaScript; console.js adds live updates (server-sent events that
// carry re-rendered regions), a keyboard shortcut and focus care. Every asset is embedded in
// the binary: no CDN, no external font, no build step.
package console

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/webhookserver/runindex"
)

// Prefix is the path under which the console is served.
const Prefix = "/console/"

// Defaults of Deps.
const (
	// DefaultMaxRequests is how many console page requests a replica serves at once.
	DefaultMaxRequests = 32
	// DefaultMaxStreams is how many live streams a replica keeps open at once.
	DefaultMaxStreams = 100
	// DefaultRequestTimeout bounds a page's work.
	DefaultRequestTimeout = 15 * time.Second
	// DefaultStreamLifetime is how long a live stream stays open before the browser
	// reconnects (to this or another replica), which also re-checks the session.
	DefaultStreamLifetime = 5 * time.Minute
)

// Deps is what the console needs from the manager.
type Deps struct {
	// REST is the REST API's logic: keys, scopes, runs, events and the workflow listing.
	REST *restapi.Service
	// Index is the run index the runs page and the children trees read; nil shows a notice.
	Index *runindex.Index
	// Client lists WebhookEndpoints (the manager's cache) and writes the ConfigMap of
	// signed-out sessions (signout.go); nil keeps sign-outs to this replica.
	Client client.Client
	// Reader reads the console Secret and the signed-out sessions past the cache; nil signs
	// sessions with a key of this process only, and keeps sign-outs to it.
	Reader client.Reader
	// Secret holds the session secret; empty means DefaultSecret. The ConfigMap of signed-out
	// sessions lies beside it, named with RevocationsSuffix.
	Secret types.NamespacedName
	// Workflows lists the workflows (and the webhooks they declare) a namespace sees.
	Workflows *catalog.Catalog
	// Routes is the webhook route table: readiness of code-declared webhooks.
	Routes *routes.Table
	// MaxRequests bounds concurrent page requests; zero means DefaultMaxRequests.
	MaxRequests int
	// MaxStreams bounds open live streams; zero means DefaultMaxStreams.
	MaxStreams int
	// RequestTimeout bounds a page's work; zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// StreamLifetime bounds a live stream; zero means DefaultStreamLifetime.
	StreamLifetime time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-Proto says the browser used
	// HTTPS (the session cookie is then Secure).
	TrustedProxies []netip.Prefix
	// TraceURL, when not empty, links each run's page to the run's trace in the tracing tool:
	// a URL in which {trace_id} (and {span_id}, the run's span) are replaced, such as
	// https://jaeger.example.com/trace/{trace_id}.
	TraceURL string
	// Logger receives the console's logs, never keys.
	Logger logr.Logger
}

// Console serves the web console.
type Console struct {
	deps      Deps
	pages     *pages
	sessions  *sessionKeys
	signedOut *revocations
	budget    *budget
	log       logr.Logger
}

// New builds the console.
func New(deps Deps) *Console {
	if deps.Secret.Name == "" {
		deps.Secret = DefaultSecret
	}
	if deps.MaxRequests <= 0 {
		deps.MaxRequests = DefaultMaxRequests
	}
	if deps.MaxStreams <= 0 {
		deps.MaxStreams = DefaultMaxStreams
	}
	if deps.RequestTimeout <= 0 {
		deps.RequestTimeout = DefaultRequestTimeout
	}
	if deps.StreamLifetime <= 0 {
		deps.StreamLifetime = DefaultStreamLifetime
	}
	if deps.Workflows == nil {
		deps.Workflows = catalog.New(engine.NewRegistry(), catalog.Options{})
	}
	return &Console{
		deps:      deps,
		pages:     parsedPages,
		sessions:  newSessionKeys(deps.Reader, deps.Secret, deps.Logger),
		signedOut: newRevocations(deps.Reader, deps.Client, revocationsOf(deps.Secret), deps.Logger),
		budget:    newBudget(deps.MaxRequests, deps.MaxStreams),
		log:       deps.Logger,
	}
}

// Register mounts the console on mux: / redirects to it, and everything under Prefix is its.
func (c *Console) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", redirectTo(Prefix+"runs"))
	mux.HandleFunc("GET "+Prefix+"{$}", redirectTo(Prefix+"runs"))
	mux.Handle("GET "+Prefix+"static/{file}", staticFiles())

	mux.Handle("GET "+Prefix+"sign-in", c.public(c.signInPage))
	mux.Handle("POST "+Prefix+"sign-in", c.public(c.signIn))
	mux.Handle("POST "+Prefix+"sign-out", c.action(c.signOut))

	mux.Handle("GET "+Prefix+"runs", c.page(c.runsPage))
	mux.Handle("GET "+Prefix+"runs/live", c.stream(c.runsStream))
	mux.Handle("GET "+Prefix+"runs/{namespace}/{name}", c.page(c.runPage))
	mux.Handle("GET "+Prefix+"runs/{namespace}/{name}/live", c.stream(c.runStream))
	mux.Handle("POST "+Prefix+"runs/{namespace}/{name}/cancel", c.action(c.cancelRun))
	mux.Handle("POST "+Prefix+"runs/{namespace}/{name}/events", c.action(c.sendEvent))

	mux.Handle("GET "+Prefix+"workflows", c.page(c.workflowsPage))
	mux.Handle("POST "+Prefix+"workflows/{name}/runs", c.action(c.startRun))

	mux.Handle("GET "+Prefix+"webhooks", c.page(c.webhooksPage))

	mux.Handle(Prefix, c.public(c.notFound))
}

// redirectTo answers every request with a redirect to path.
func redirectTo(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, path, http.StatusFound)
	}
}
