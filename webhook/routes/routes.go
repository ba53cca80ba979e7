// Package routes holds the webhook route table: which slug of /api/webhooks/{slug} starts which
// workflow, in which namespace, verified how and with which secrets. The WebhookEndpoint
// controller (and the code-declared webhook controller) resolve endpoints and secrets and push
// the result here; the HTTP server (package webhookserver) only looks slugs up. Keeping the
// table in its own pure-Go package lets both sides import it without an import cycle, and keeps
// Kubernetes reads out of the request path.
//
// It belongs to the webhooks' domain (package signature, envelope and this one, under
// webhook/), apart from the HTTP server: it says what a slug serves and who may claim it, and
// knows nothing of HTTP serving (no handler, no status code, no answer).
//
// Three origins can claim a slug: a workflow of the manager that declares a webhook (Go code or
// a WORKFLOW_DIRS file), a WebhookEndpoint resource, and a WorkflowDefinition's WEBHOOKS.
// Lookup prefers them in that order: the manager's own routes cannot be shadowed, and tenants'
// claims (endpoints and definitions, each needing a grant, see Grants) are decided by their
// controllers (the oldest endpoint wins among endpoints; an endpoint wins over a definition).
// The table serves whatever route of an origin was set last for a slug.

// The table also counts deliveries per endpoint, in memory. The server bumps atomic counters
// on the hot path; the controller flushes them into the endpoint's status in batches.
package routes

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/centaur-dev/workflow-operator/webhook/signature"
)

// PathPrefix is the URL path under which every webhook route is served.
const PathPrefix = "/api/webhooks/"

// Path returns the URL path deliveries for slug go to.
func Path(slug string) string { return PathPrefix + slug }

// Origin says where a route comes from.
type Origin int

const (
	// OriginEndpoint is a route configured by a WebhookEndpoint resource.
	OriginEndpoint Origin = iota
	// OriginCode is a route a workflow of the manager declares: durable.WithWebhook in Go, or
	// WEBHOOKS in a WORKFLOW_DIRS file.
	OriginCode
	// OriginDefinition is a route a WorkflowDefinition declares in WEBHOOKS.
	OriginDefinition
)

// lookupOrder is the precedence of origins for one slug.
var lookupOrder = []Origin{OriginCode, OriginEndpoint, OriginDefinition}

// String names the origin for logs and messages.
func (o Origin) String() string {
	switch o {
	case OriginCode:
		return "workflow"
	case OriginDefinition:
		return "WorkflowDefinition"
	default:
		return "WebhookEndpoint"
	}
}

// Key identifies the source of a route: a WebhookEndpoint's namespace and name, or, for a
// code-declared webhook, its namespace and "code:<slug>" (a colon never appears in a
// resource name, so the two cannot collide). The key is part of every run name the route
// derives, so that deliveries to different endpoints never share a run.
type Key struct {
	Origin    Origin
	Namespace string
	Name      string
}

// String returns namespace/name.
func (k Key) String() string { return k.Namespace + "/" + k.Name }

// CodeKey returns the key of the webhook a workflow of the manager declares under slug, served
// in namespace.
func CodeKey(namespace, slug string) Key {
	return Key{Origin: OriginCode, Namespace: namespace, Name: "code:" + slug}
}

// DefinitionKey returns the key of the webhook the WorkflowDefinition namespace/definition
// declares under slug.
func DefinitionKey(namespace, definition, slug string) Key {
	return Key{Origin: OriginDefinition, Namespace: namespace, Name: "definition:" + definition + ":" + slug}
}

// Route is everything the server needs to serve one slug. A Route is immutable once handed
// to Set: the table and every reader share its slices.
type Route struct {
	// Key identifies the route's source; runs are created in Key.Namespace.
	Key Key
	// Slug is the last path segment the route serves.
	Slug string
	// WorkflowName is the workflow each delivery starts.
	WorkflowName string
	// Provider is the signature scheme, as in WebhookEndpoint.spec.provider.
	Provider string
	// Verifier checks signatures; nil on a route that is not Ready.
	Verifier signature.Verifier
	// Secrets are the resolved signing secrets (one, or two during a rotation).
	Secrets [][]byte
	// TriggerKey is the header whose value identifies a delivery; empty means the body's hash.
	TriggerKey string
	// TriggerBodyField is the field of the decoded body (dots walk into objects: "event.id")
	// whose value identifies a delivery instead of a header; it excludes TriggerKey.
	TriggerBodyField string
	// Identity says what identifies a delivery, and so which deliveries share one run.
	Identity Identity
	// AllowedMethods are the accepted HTTP methods, upper case.
	AllowedMethods []string
	// AllowedContentTypes are the accepted media types, lower case, without parameters.
	AllowedContentTypes []string
	// MaxBodyBytes caps a delivery's body.
	MaxBodyBytes int64
	// SensitiveHeaders are further headers to strip from the envelope (the hmac provider's
	// signature header), on top of the envelope package's own list.
	SensitiveHeaders []string
	// Ready reports whether deliveries are served. A route that is not Ready still claims its
	// slug, so that senders get 503 (and retry) instead of 404.
	Ready bool
	// Reason and Message say why the route is not Ready, as the endpoint's condition does.
	Reason, Message string

	// counters are the key's delivery counters, attached by Set.
	counters *Counters
}

// Identity is what makes two deliveries the same delivery (one run).
type Identity int

const (
	// IdentityBody: the raw body's SHA-256. A provider whose signature covers only the body
	// (GitHub, plain HMAC) cannot stop a captured delivery from being replayed under a new
	// delivery id; keyed by the body, such a replay is answered 200 with the first run.
	IdentityBody Identity = iota
	// IdentityTrigger: the value of the TriggerKey header or the TriggerBodyField (the body's
	// hash when it is absent).
	// Deliveries with identical bodies and different ids start different runs, and so do
	// replays under a new id: choose it only for providers that send identical bodies for
	// distinct events.
	IdentityTrigger
	// IdentitySignedID: Standard Webhooks' webhook-id, which the signature covers together
	// with the timestamp, so it can be trusted (and a replay outside the timestamp tolerance is
	// refused anyway).
	IdentitySignedID
)

// IdentityFor chooses how deliveries of a route are told apart: Standard Webhooks by their
// signed id; otherwise by the body's hash unless the owner chose the trigger header
// (replayProtection TriggerKey), or the route is unsigned (scheme none, where nothing is
// verified and the trigger is all there is).
func IdentityFor(scheme string, triggerKeyChosen bool) Identity {
	switch {
	case scheme == "standard-webhooks":
		return IdentitySignedID
	case triggerKeyChosen || scheme == "none":
		return IdentityTrigger
	}
	return IdentityBody
}

// Counters returns the route's delivery counters. A route that did not come from a Table
// gets throw-away counters, so callers never check for nil.
func (r Route) Counters() *Counters {
	if r.counters == nil {
		return &Counters{}
	}
	return r.counters
}

// Defaults applied when a route leaves a limit unset (code-declared webhooks do).
const (
	// DefaultMaxBodyBytes is 1 MiB, the largest body the WebhookEndpoint API allows.
	DefaultMaxBodyBytes int64 = 1 << 20
)

// DefaultAllowedMethods are accepted when a route lists none.
var DefaultAllowedMethods = []string{http.MethodPost}

// DefaultAllowedContentTypes are accepted when a route lists none.
var DefaultAllowedContentTypes = []string{"application/json", "application/x-www-form-urlencoded"}

// Counts is a snapshot of delivery counters.
type Counts struct {
	// Accepted deliveries started a new run.
	Accepted int64
	// Duplicates were redeliveries of a delivery that already has a run.
	Duplicates int64
	// Rejected deliveries failed verification or validation (4xx).
	Rejected int64
}

// IsZero reports whether nothing was counted.
func (c Counts) IsZero() bool { return c == Counts{} }

// Counters count deliveries of one endpoint in memory. The server adds; the flusher reads a
// snapshot with Pending, writes it, and subtracts it with Done once it is stored, so that
// deliveries counted in between are not lost and a failed write loses nothing.
type Counters struct {
	accepted, duplicates, rejected atomic.Int64
}

// AddAccepted counts a delivery that started a run.
func (c *Counters) AddAccepted() { c.accepted.Add(1) }

// AddDuplicate counts a redelivery.
func (c *Counters) AddDuplicate() { c.duplicates.Add(1) }

// AddRejected counts a refused delivery.
func (c *Counters) AddRejected() { c.rejected.Add(1) }

// Pending returns what was counted and not yet flushed.
func (c *Counters) Pending() Counts {
	return Counts{Accepted: c.accepted.Load(), Duplicates: c.duplicates.Load(), Rejected: c.rejected.Load()}
}

// Done subtracts a flushed snapshot.
func (c *Counters) Done(flushed Counts) {
	c.accepted.Add(-flushed.Accepted)
	c.duplicates.Add(-flushed.Duplicates)
	c.rejected.Add(-flushed.Rejected)
}

// Table maps slugs to routes. It is safe for concurrent use; lookups take a read lock only.
type Table struct {
	mu       sync.RWMutex
	byOrigin map[Origin]map[string]Route // origin -> slug -> route
	slugs    map[Key]string              // key -> the slug it currently serves
	counters map[Key]*Counters
}

// NewTable returns an empty table.
func NewTable() *Table {
	t := &Table{byOrigin: map[Origin]map[string]Route{}, slugs: map[Key]string{}, counters: map[Key]*Counters{}}
	for _, o := range lookupOrder {
		t.byOrigin[o] = map[string]Route{}
	}
	return t
}

// Set serves route under its slug, replacing whatever the same key served before (also under
// another slug) and any route of the same origin that claimed the slug. It fills in the
// defaults for unset limits and lists.
func (t *Table) Set(route Route) error {
	if route.Slug == "" || route.Key.Name == "" {
		return fmt.Errorf("set route %q for %s: slug and key must be set", route.Slug, route.Key)
	}
	if route.Ready && route.Verifier == nil {
		return fmt.Errorf("set route %q for %s: a Ready route needs a verifier", route.Slug, route.Key)
	}
	applyDefaults(&route)
	t.mu.Lock()
	defer t.mu.Unlock()
	route.counters = t.countersLocked(route.Key)
	t.deleteLocked(route.Key)
	if prev, ok := t.byOrigin[route.Key.Origin][route.Slug]; ok {
		delete(t.slugs, prev.Key)
	}
	t.byOrigin[route.Key.Origin][route.Slug] = route
	t.slugs[route.Key] = route.Slug
	return nil
}

// applyDefaults fills the lists and limits a route left empty.
func applyDefaults(r *Route) {
	if len(r.AllowedMethods) == 0 {
		r.AllowedMethods = DefaultAllowedMethods
	}
	if len(r.AllowedContentTypes) == 0 {
		r.AllowedContentTypes = DefaultAllowedContentTypes
	}
	if r.MaxBodyBytes <= 0 {
		r.MaxBodyBytes = DefaultMaxBodyBytes
	}
}

// Delete stops serving the route of key, if it still serves one. A slug that another key has
// taken over since is left alone. The key's counters are kept (see Forget).
func (t *Table) Delete(key Key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deleteLocked(key)
}

// deleteLocked is Delete with the lock held.
func (t *Table) deleteLocked(key Key) {
	slug, ok := t.slugs[key]
	if !ok {
		return
	}
	delete(t.slugs, key)
	routes := t.byOrigin[key.Origin]
	if r, ok := routes[slug]; ok && r.Key == key {
		delete(routes, slug)
	}
}

// Forget deletes the route of key and drops its counters: the endpoint is gone.
func (t *Table) Forget(key Key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deleteLocked(key)
	delete(t.counters, key)
}

// Lookup returns the route that serves slug: one a workflow of the manager declares, else a
// WebhookEndpoint's, else a WorkflowDefinition's.
func (t *Table) Lookup(slug string) (Route, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, o := range lookupOrder {
		if r, ok := t.byOrigin[o][slug]; ok {
			return r, true
		}
	}
	return Route{}, false
}

// Serves reports whether key's route is the one Lookup(slug) returns.
func (t *Table) Serves(key Key, slug string) bool {
	r, ok := t.Lookup(slug)
	return ok && r.Key == key
}

// Get returns the route of origin o for slug, whether or not another origin's route serves
// the slug.
func (t *Table) Get(o Origin, slug string) (Route, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	r, ok := t.byOrigin[o][slug]
	return r, ok
}

// Counters returns the delivery counters of key, creating them on first use.
func (t *Table) Counters(key Key) *Counters {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.countersLocked(key)
}

// countersLocked is Counters with the lock held.
func (t *Table) countersLocked(key Key) *Counters {
	c, ok := t.counters[key]
	if !ok {
		c = &Counters{}
		t.counters[key] = c
	}
	return c
}

// PendingKeys returns the keys of WebhookEndpoints whose counters hold unflushed counts, in a
// stable order. Code-declared routes have no status to flush to and are left out.
func (t *Table) PendingKeys() []Key {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Key
	for key, c := range t.counters {
		if key.Origin == OriginEndpoint && !c.Pending().IsZero() {
			out = append(out, key)
		}
	}
	slices.SortFunc(out, func(a, b Key) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return out
}
