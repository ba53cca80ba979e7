package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhook/signature"
)

// Field indexes of WebhookEndpoints in the manager's cache.
const (
	// indexEndpointSlug indexes endpoints by spec.slug, to find the endpoints claiming a slug.
	indexEndpointSlug = "spec.slug"
	// indexEndpointSecret indexes endpoints by the names of the Secrets they reference (in
	// their own namespace), to find the endpoints a changed Secret affects.
	indexEndpointSecret = "spec.auth.secretRefs.name"
)

// DefaultWebhookCounterFlushInterval is how often delivery counters reach endpoint status.
const DefaultWebhookCounterFlushInterval = 10 * time.Second

// WebhookEndpointReconciler turns WebhookEndpoints into routes of the API server. For each
// endpoint it decides whether it owns its slug (the oldest claim wins), resolves its signing
// secrets, decides Ready, pushes the route into the route table (or takes it out), and writes
// the Ready condition, the path and the delivery counters into status.
//
// It runs on every replica, not only the leader: each replica serves webhooks from its own
// route table. Every replica computes the same condition from the same objects, so only
// the first write changes anything; delivery counters are added as deltas under
// resourceVersion, so the replicas' counts add up.
//
// Delivery counters are kept in memory by the HTTP handler (atomic adds, no write in the
// request path) and flushed into status at most once per FlushInterval per endpoint, and on
// any reconcile of the endpoint. A crash loses at most one interval of counts; the runs
// themselves are never lost.
type WebhookEndpointReconciler struct {
	client.Client
	// Secrets reads Secrets past the cache. The controller watches only Secrets' metadata, so
	// the manager never keeps every Secret of the cluster in memory.
	Secrets client.Reader
	// Workflows holds the workflows endpoints may start.
	Workflows *catalog.Catalog
	// Routes is the API server's route table.
	Routes *routes.Table
	// Events records Kubernetes Events on endpoints when Ready changes.
	Events recorder.EventRecorder
	// FlushInterval is how often pending delivery counters are written to status.
	FlushInterval time.Duration
	// Grants say which namespaces may claim which slugs (--webhook-slug-grants).
	Grants routes.Grants
	// Secrets scope the namespaces whose Secrets the manager reads.
	SecretScope SecretScope
	// Definitions is woken when an endpoint takes or frees a slug a WorkflowDefinition
	// declares, so that the definition's status says who serves it; nil when there are none.
	Definitions *WorkflowDefinitionReconciler
}

// verdict is what a reconcile decided about an endpoint: whether it owns its slug, the route
// to serve if so, and the Ready condition to report.
type verdict struct {
	readiness
	owner bool
	route routes.Route
}

// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=webhookendpoints,verbs=get;list;watch
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=webhookendpoints/status,verbs=get;update;patch

// Reconcile serves the endpoint's route as the cluster describes it: fetch the endpoint
// (forget its route when it is gone), evaluate it, update the route table, write status.
func (r *WebhookEndpointReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	key := endpointKey(req.NamespacedName)
	ep := &workflowsv1alpha1.WebhookEndpoint{}
	if err := r.Get(ctx, req.NamespacedName, ep); err != nil {
		if apierrors.IsNotFound(err) {
			r.Routes.Forget(key)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("read webhook endpoint %s: %w", req, err)
	}
	if !ep.DeletionTimestamp.IsZero() {
		r.Routes.Forget(key)
		return ctrl.Result{}, nil
	}
	v, err := r.evaluate(ctx, ep)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.applyRoute(key, v); err != nil {
		return ctrl.Result{}, err
	}
	r.wakeDefinitions(ep.Spec.Slug)
	return r.writeStatus(ctx, ep, v)
}

// wakeDefinitions has the WorkflowDefinitions that declare slug look again at who serves it.
func (r *WebhookEndpointReconciler) wakeDefinitions(slug string) {
	if r.Definitions == nil {
		return
	}
	for _, claim := range r.Workflows.Webhooks()[slug] {
		if claim.Entry.Source == catalog.SourceDefinition {
			r.Definitions.Wake(types.NamespacedName{Namespace: claim.Entry.Namespace, Name: claim.Entry.Definition})
		}
	}
}

// evaluate decides the endpoint's verdict, in the order a person would fix things: slug
// ownership, workflow, provider settings, secrets. It returns an error only when the API
// server could not answer.
func (r *WebhookEndpointReconciler) evaluate(ctx context.Context, ep *workflowsv1alpha1.WebhookEndpoint) (verdict, error) {
	route := endpointRoute(ep)
	if owner, ok := managerWebhook(r.Workflows, ep.Spec.Slug); ok {
		return verdict{readiness: unready(workflowsv1alpha1.ReasonSlugConflict, fmt.Sprintf(
			"slug %q is declared by the manager's workflow %q (%s), which no WebhookEndpoint can take over; choose another spec.slug",
			ep.Spec.Slug, owner.Entry.Name(), ownerDescription(owner.Entry)))}, nil
	}
	if !r.Grants.Allows(ep.Namespace, ep.Spec.Slug) {
		return verdict{readiness: unready(workflowsv1alpha1.ReasonSlugNotGranted, routes.NotGrantedMessage(ep.Namespace, ep.Spec.Slug))}, nil
	}
	winner, err := r.slugOwner(ctx, ep)
	if err != nil {
		return verdict{}, err
	}
	if winner != nil {
		return verdict{readiness: unready(workflowsv1alpha1.ReasonSlugConflict, fmt.Sprintf(
			"slug %q is already served by the older WebhookEndpoint %s (created %s); the oldest endpoint claiming a slug wins. Choose another spec.slug, or delete that endpoint.",
			ep.Spec.Slug, objectSeenFrom(ep.Namespace, winner.Namespace, winner.Name), winner.CreationTimestamp.UTC().Format(time.RFC3339)))}, nil
	}
	if _, ok := r.Workflows.Lookup(ep.Namespace, ep.Spec.WorkflowName); !ok {
		unknown := r.Workflows.UnknownWorkflow(ep.Namespace, ep.Spec.WorkflowName)
		unknown.Field = "spec.workflowName"
		return notReady(route, workflowsv1alpha1.ReasonUnknownWorkflow, unknown.Error()), nil
	}
	verifier, err := signature.New(string(ep.Spec.Provider), hmacConfig(ep.Spec.Provider, ep.Spec.Auth), tolerance(ep.Spec.Auth))
	if err != nil {
		return notReady(route, workflowsv1alpha1.ReasonInvalidSpec, fmt.Sprintf("the provider settings are unusable: %v; fix spec.provider and spec.auth", err)), nil
	}
	route.Verifier = verifier
	return r.evaluateSecrets(ctx, ep, route)
}

// evaluateSecrets resolves the endpoint's secrets and checks that the provider can use them.
// One resolvable secret is enough to serve (a half-finished rotation must not cause an
// outage); the condition's message then names the reference that does not resolve.
func (r *WebhookEndpointReconciler) evaluateSecrets(ctx context.Context, ep *workflowsv1alpha1.WebhookEndpoint, route routes.Route) (verdict, error) {
	secrets, problems, err := r.resolveSecrets(ctx, ep)
	if err != nil {
		return verdict{}, err
	}
	if ep.Spec.Provider != workflowsv1alpha1.ProviderNone && len(secrets) == 0 {
		first := problems[0] // the CRD requires secretRefs for signed providers
		return notReady(route, first.reason, joinProblems(problems)), nil
	}
	if p := probeSecrets(route.Verifier, secrets); p != nil {
		return notReady(route, p.reason, p.message), nil
	}
	route.Secrets = secrets
	route.Ready = true
	message := fmt.Sprintf("serving %s: deliveries start workflow %s in namespace %s",
		routes.Path(ep.Spec.Slug), ep.Spec.WorkflowName, ep.Namespace)
	if len(problems) > 0 {
		message += fmt.Sprintf(" (with %d of %d secrets: %s)", len(secrets), len(secrets)+len(problems), joinProblems(problems))
	}
	return verdict{readiness: readyAs(workflowsv1alpha1.ReasonReady, message), owner: true, route: route}, nil
}

// notReady is the verdict of an endpoint that owns its slug but cannot serve it: its route
// stays in the table, not Ready, so senders get 503 and retry.
func notReady(route routes.Route, reason, message string) verdict {
	route.Ready, route.Verifier, route.Reason, route.Message = false, nil, reason, message
	return verdict{readiness: unready(reason, message), owner: true, route: route}
}

// managerWebhook returns the declaration of slug by a workflow of the manager (Go or a
// WORKFLOW_DIRS file), which no tenant's claim can shadow.
func managerWebhook(workflows *catalog.Catalog, slug string) (catalog.Webhook, bool) {
	for _, claim := range workflows.Webhooks()[slug] {
		if claim.Entry.Source != catalog.SourceDefinition {
			return claim, true
		}
	}
	return catalog.Webhook{}, false
}

// ownerDescription says where a declaring workflow comes from, for messages.
func ownerDescription(e catalog.Entry) string {
	switch e.Source {
	case catalog.SourceFile:
		return "the workflow file " + e.File
	case catalog.SourceDefinition:
		return "the WorkflowDefinition " + e.Namespace + "/" + e.Definition
	default:
		return "compiled into the manager"
	}
}

// slugOwner returns the endpoint that owns ep's slug when it is not ep: the oldest endpoint
// whose namespace is granted the slug, ties broken by namespace and name so every replica
// agrees.
func (r *WebhookEndpointReconciler) slugOwner(ctx context.Context, ep *workflowsv1alpha1.WebhookEndpoint) (*workflowsv1alpha1.WebhookEndpoint, error) {
	var list workflowsv1alpha1.WebhookEndpointList
	if err := r.List(ctx, &list, client.MatchingFields{indexEndpointSlug: ep.Spec.Slug}); err != nil {
		return nil, fmt.Errorf("list endpoints claiming slug %q: %w", ep.Spec.Slug, err)
	}
	owner := ep
	for i := range list.Items {
		other := &list.Items[i]
		if other.DeletionTimestamp.IsZero() && r.Grants.Allows(other.Namespace, other.Spec.Slug) && older(other, owner) {
			owner = other
		}
	}
	if owner.Namespace == ep.Namespace && owner.Name == ep.Name {
		return nil, nil
	}
	return owner, nil
}

// older reports whether a claimed its slug before b.
func older(a, b *workflowsv1alpha1.WebhookEndpoint) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name)) < 0
}

// resolveSecrets reads every secret reference. It returns the usable values and, for the
// others, what is wrong with them; the error is for API failures only.
func (r *WebhookEndpointReconciler) resolveSecrets(ctx context.Context, ep *workflowsv1alpha1.WebhookEndpoint) ([][]byte, []finding, error) {
	if ep.Spec.Auth == nil {
		return nil, nil, nil
	}
	var values [][]byte
	var problems []finding
	for i, ref := range ep.Spec.Auth.SecretRefs {
		value, problem, err := r.resolveSecret(ctx, ep.Namespace, ref, i)
		switch {
		case err != nil:
			return nil, nil, err
		case problem != nil:
			problems = append(problems, *problem)
		default:
			values = append(values, value)
		}
	}
	return values, problems, nil
}

// resolveSecret reads the i-th secret reference of an endpoint in namespace.
func (r *WebhookEndpointReconciler) resolveSecret(ctx context.Context, namespace string, ref workflowsv1alpha1.SecretKeyRef, i int) ([]byte, *finding, error) {
	values, problem, err := r.SecretScope.readSecret(ctx, r.Secrets, secretRef{
		secret: types.NamespacedName{Namespace: namespace, Name: ref.Name},
		keys:   []string{ref.Key},
		field:  fmt.Sprintf("spec.auth.secretRefs[%d]", i),
		value:  "signing secret",
	})
	if err != nil || problem != nil {
		return nil, problem, err
	}
	return values[0], nil, nil
}

// probeSecrets asks the verifier whether it can use secrets, without a request: Verify checks
// its secrets before it looks at any header, so an empty request tells a configuration
// problem (unusable secret) from a missing signature.
func probeSecrets(v signature.Verifier, secrets [][]byte) *finding {
	err := v.Verify(http.Header{}, nil, secrets, time.Now())
	switch {
	case errors.Is(err, signature.ErrInvalidSecret):
		return &finding{workflowsv1alpha1.ReasonSecretInvalid, fmt.Sprintf("a signing secret is unusable: %v", err)}
	case errors.Is(err, signature.ErrNoSecret):
		return &finding{workflowsv1alpha1.ReasonSecretKeyMissing, "every signing secret is empty; put the secret in the referenced keys"}
	}
	return nil
}

// joinProblems renders the problems of several secret references as one message.
func joinProblems(problems []finding) string {
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.message
	}
	return strings.Join(msgs, "; ")
}

// endpointRoute is the route ep describes, before ownership, workflow and secrets are known.
func endpointRoute(ep *workflowsv1alpha1.WebhookEndpoint) routes.Route {
	route := routes.Route{
		Key:                 endpointKey(types.NamespacedName{Namespace: ep.Namespace, Name: ep.Name}),
		Slug:                ep.Spec.Slug,
		WorkflowName:        ep.Spec.WorkflowName,
		Provider:            string(ep.Spec.Provider),
		TriggerKey:          strings.TrimSpace(ep.Spec.TriggerKey),
		TriggerBodyField:    strings.TrimSpace(ep.Spec.TriggerBodyField),
		Identity:            routes.IdentityFor(string(ep.Spec.Provider), ep.Spec.ReplayProtection == workflowsv1alpha1.ReplayProtectionTriggerKey),
		MaxBodyBytes:        ep.Spec.MaxBodyBytes,
		AllowedMethods:      upper(ep.Spec.AllowedMethods),
		AllowedContentTypes: lower(ep.Spec.AllowedContentTypes),
	}
	if header := hmacConfig(ep.Spec.Provider, ep.Spec.Auth).Header; header != "" {
		route.SensitiveHeaders = []string{header}
	}
	return route
}

// endpointKey is the route table key of the endpoint named nn.
func endpointKey(nn types.NamespacedName) routes.Key {
	return routes.Key{Origin: routes.OriginEndpoint, Namespace: nn.Namespace, Name: nn.Name}
}

// hmacConfig returns the settings of the hmac or token provider in auth, if any.
func hmacConfig(provider workflowsv1alpha1.WebhookProvider, auth *workflowsv1alpha1.WebhookAuth) signature.HMACConfig {
	switch {
	case auth == nil:
		return signature.HMACConfig{}
	case provider == workflowsv1alpha1.ProviderToken && auth.Token != nil:
		return signature.HMACConfig{Header: auth.Token.Header, Prefix: auth.Token.Prefix}
	case provider == workflowsv1alpha1.ProviderHMAC && auth.HMAC != nil:
		h := auth.HMAC
		return signature.HMACConfig{Header: h.Header, Prefix: h.Prefix, Encoding: h.Encoding, Algorithm: h.Algorithm,
			SignedTemplate: h.SignedTemplate, TimestampHeader: h.TimestampHeader, SignatureKey: h.SignatureKey,
			TimestampKey: h.TimestampKey, IDHeader: h.IDHeader, TimestampField: h.TimestampField}
	}
	return signature.HMACConfig{}
}

// tolerance returns the signed timestamps' tolerance of auth (zero: the default).
func tolerance(auth *workflowsv1alpha1.WebhookAuth) time.Duration {
	if auth == nil || auth.TimestampTolerance == nil {
		return 0
	}
	return auth.TimestampTolerance.Duration
}

// upper returns the trimmed, upper-cased strings of in.
func upper(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, strings.ToUpper(strings.TrimSpace(s)))
	}
	return out
}

// lower returns the trimmed, lower-cased strings of in.
func lower(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, strings.ToLower(strings.TrimSpace(s)))
	}
	return out
}

// applyRoute serves the verdict's route, or stops serving the endpoint when it lost its slug.
func (r *WebhookEndpointReconciler) applyRoute(key routes.Key, v verdict) error {
	if !v.owner {
		r.Routes.Delete(key)
		return nil
	}
	if err := r.Routes.Set(v.route); err != nil {
		return fmt.Errorf("serve the route of webhook endpoint %s: %w", key, err)
	}
	return nil
}

// writeStatus is the one place that writes an endpoint's status: the Ready condition, the
// observed generation, the path and the pending delivery counts, in one write guarded by
// resourceVersion (patchStatus). Counts are subtracted from the pending ones, and a changed
// Ready condition announced, only once stored; a lost race retries shortly.
func (r *WebhookEndpointReconciler) writeStatus(ctx context.Context, ep *workflowsv1alpha1.WebhookEndpoint, v verdict) (ctrl.Result, error) {
	counters := r.Routes.Counters(endpointKey(types.NamespacedName{Namespace: ep.Namespace, Name: ep.Name}))
	pending := counters.Pending()
	updated := ep.DeepCopy()
	v.setIn(&updated.Status.Conditions, ep.Generation)
	updated.Status.ObservedGeneration = ep.Generation
	updated.Status.Path = ""
	if v.owner {
		updated.Status.Path = routes.Path(ep.Spec.Slug)
	}
	updated.Status.Deliveries.Accepted += pending.Accepted
	updated.Status.Deliveries.Duplicates += pending.Duplicates
	updated.Status.Deliveries.Rejected += pending.Rejected
	written, res, err := writeStatus(ctx, r.Client, ep, updated, "webhook endpoint")
	if written {
		counters.Done(pending)
	}
	if written && v.changes(ep.Status.Conditions) {
		r.announce(ctx, ep, v)
	}
	return res, err
}

// announce logs and records an Event for the endpoint's Ready condition, which just changed.
func (r *WebhookEndpointReconciler) announce(ctx context.Context, ep *workflowsv1alpha1.WebhookEndpoint, v verdict) {
	logger := log.FromContext(ctx)
	eventType := corev1.EventTypeWarning
	if v.status == metav1.ConditionTrue {
		eventType = corev1.EventTypeNormal
		logger.Info("workflow_webhook_registered", "slug", ep.Spec.Slug, "workflow", ep.Spec.WorkflowName,
			"provider", ep.Spec.Provider, "source", routes.OriginEndpoint.String(), "path", routes.Path(ep.Spec.Slug))
	} else {
		logger.Info("webhook_endpoint_not_ready", "slug", ep.Spec.Slug, "reason", v.reason, "message", logText(v.message))
	}
	emit(r.Events, ep, eventType, v.reason, "Reconcile", "%s", v.message)
}

// SetupWithManager registers the reconciler and its field indexes. It watches endpoints
// (and wakes the other claimants of a slug when one changes), the metadata of Secrets
// (mapped to the endpoints that reference them), and a ticker that flushes counters.
func (r *WebhookEndpointReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.FlushInterval <= 0 {
		r.FlushInterval = DefaultWebhookCounterFlushInterval
	}
	if err := indexEndpoints(mgr); err != nil {
		return err
	}
	// A workflow file or definition that appears (or goes) changes which endpoints are Ready.
	catalogChanged := make(chan event.GenericEvent, 1)
	r.Workflows.OnChange(func() {
		select {
		case catalogChanged <- event.GenericEvent{Object: &workflowsv1alpha1.WebhookEndpoint{}}:
		default:
		}
	})
	everyReplica := false
	return ctrl.NewControllerManagedBy(mgr).
		For(&workflowsv1alpha1.WebhookEndpoint{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(catalogChanged, handler.EnqueueRequestsFromMapFunc(r.allEndpoints))).
		Watches(&workflowsv1alpha1.WebhookEndpoint{}, handler.EnqueueRequestsFromMapFunc(r.slugClaimants),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.secretUsers)).
		WatchesRawSource(source.Func(r.flushPeriodically)).
		WithOptions(controller.Options{NeedLeaderElection: &everyReplica}).
		Named("webhookendpoint").
		Complete(r)
}

// indexEndpoints registers the slug and secret-name indexes of WebhookEndpoints.
func indexEndpoints(mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	bySlug := func(o client.Object) []string {
		return []string{o.(*workflowsv1alpha1.WebhookEndpoint).Spec.Slug}
	}
	if err := indexer.IndexField(context.Background(), &workflowsv1alpha1.WebhookEndpoint{}, indexEndpointSlug, bySlug); err != nil {
		return fmt.Errorf("index webhook endpoints by slug: %w", err)
	}
	bySecret := func(o client.Object) []string {
		auth := o.(*workflowsv1alpha1.WebhookEndpoint).Spec.Auth
		if auth == nil {
			return nil
		}
		names := make([]string, 0, len(auth.SecretRefs))
		for _, ref := range auth.SecretRefs {
			names = append(names, ref.Name)
		}
		return names
	}
	if err := indexer.IndexField(context.Background(), &workflowsv1alpha1.WebhookEndpoint{}, indexEndpointSecret, bySecret); err != nil {
		return fmt.Errorf("index webhook endpoints by secret: %w", err)
	}
	return nil
}

// slugClaimants maps an endpoint to every endpoint claiming its slug, so that when the owner
// of a slug goes away (or moves to another slug) the next oldest takes over.
func (r *WebhookEndpointReconciler) slugClaimants(ctx context.Context, o client.Object) []reconcile.Request {
	ep, ok := o.(*workflowsv1alpha1.WebhookEndpoint)
	if !ok {
		return nil
	}
	return requestsForList(ctx, r.Client, &workflowsv1alpha1.WebhookEndpointList{}, fmt.Sprintf("the endpoints claiming slug %q", ep.Spec.Slug),
		client.MatchingFields{indexEndpointSlug: ep.Spec.Slug})
}

// secretUsers maps a Secret to the endpoints of its namespace that reference it.
func (r *WebhookEndpointReconciler) secretUsers(ctx context.Context, o client.Object) []reconcile.Request {
	return requestsForList(ctx, r.Client, &workflowsv1alpha1.WebhookEndpointList{}, fmt.Sprintf("the endpoints referencing Secret %s", client.ObjectKeyFromObject(o)),
		client.InNamespace(o.GetNamespace()), client.MatchingFields{indexEndpointSecret: o.GetName()})
}

// allEndpoints maps a change of the catalog to every endpoint.
func (r *WebhookEndpointReconciler) allEndpoints(ctx context.Context, _ client.Object) []reconcile.Request {
	return requestsForList(ctx, r.Client, &workflowsv1alpha1.WebhookEndpointList{}, "the webhook endpoints")
}

// flushPeriodically enqueues, every FlushInterval until ctx ends, the endpoints whose
// delivery counters have counts not yet in status. It is the controller's ticker source.
func (r *WebhookEndpointReconciler) flushPeriodically(ctx context.Context, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	go func() {
		ticker := time.NewTicker(r.FlushInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				for _, key := range r.Routes.PendingKeys() {
					queue.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: key.Namespace, Name: key.Name}})
				}
			}
		}
	}()
	return nil
}

// setupWebhooks registers the controllers that feed the webhook route table, when there is
// one: the WebhookEndpoint controller and the one for webhooks that workflows declare.
func setupWebhooks(mgr ctrl.Manager, o Options, definitions *WorkflowDefinitionReconciler) error {
	if o.WebhookRoutes == nil {
		return nil
	}
	endpoints := &WebhookEndpointReconciler{
		Client:        mgr.GetClient(),
		Secrets:       mgr.GetAPIReader(),
		Workflows:     o.Workflows,
		Routes:        o.WebhookRoutes,
		Events:        mgr.GetEventRecorder("webhookendpoint-controller"),
		FlushInterval: o.WebhookCounterFlushInterval,
		Grants:        o.WebhookSlugGrants,
		SecretScope:   o.SecretScope,
		Definitions:   definitions,
	}
	if err := endpoints.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the WebhookEndpoint controller: %w", err)
	}
	declared := &WorkflowWebhookReconciler{
		Secrets:           mgr.GetAPIReader(),
		Routes:            o.WebhookRoutes,
		Catalog:           o.Workflows,
		CodeNamespace:     declaredNamespace(o.CodeWebhookNamespace, o.Workflows.OperatorNamespace()),
		OperatorNamespace: o.Workflows.OperatorNamespace(),
		Grants:            o.WebhookSlugGrants,
		SecretScope:       o.SecretScope,
		Definitions:       definitions,
	}
	if err := declared.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the declared webhooks: %w", err)
	}
	return nil
}
