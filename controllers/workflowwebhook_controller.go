package controllers

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhook/signature"
)

// Webhooks that workflows declare (durable.WithWebhook in Go, WEBHOOKS in a workflow file or a
// WorkflowDefinition) have no resource of their own, so they follow these rules:
//
//   - Runs of Go and WORKFLOW_DIRS webhooks are created in the manager's code-webhook namespace
//     (--code-webhook-namespace, the operator's own namespace by default, which no tenant
//     edits and no REST key lists unless the administrator says so); runs of a
//     definition's webhooks in the definition's namespace. A definition's webhook is served only
//     where --webhook-slug-grants lets its namespace claim the slug.
//   - The signing secret is named by the declaration's secret_ref: in Go and WORKFLOW_DIRS files
//     an environment variable of the manager ("GITHUB_WEBHOOK_SECRET") or a key of a Secret in
//     the operator's namespace ("name/key"); in a definition a key of a Secret in its own
//     namespace. A Secret key's rotation partner "previous-<key>" is accepted too. An
//     environment variable NAME that is unset or empty may name a file instead, NAME_FILE (a
//     mounted Secret, which the kubelet updates in place), re-read every
//     DefaultEnvSecretRereadInterval; NAME_PREVIOUS or NAME_PREVIOUS_FILE is its rotation
//     partner. Without a
//     secret_ref, key "secret" (and "previous-secret") of the Secret "centaur-webhook-<slug>"
//     in the operator's namespace. Until the secret exists the route answers 503, never
//     unsigned. Scheme "none" needs no secret.
//   - The hmac scheme reads its signature from the declared header (X-Signature by default).
//   - One declaration serves a slug: a WORKFLOW_DIRS file first, then a Go workflow, then the
//     oldest granted definition. No WebhookEndpoint can shadow the manager's own routes; an
//     endpoint granted the slug wins over a definition.
const (
	// CodeWebhookSecretPrefix starts the name of a declared webhook's conventional Secret.
	CodeWebhookSecretPrefix = "centaur-webhook-"
	// CodeWebhookSecretKey holds the signing secret in that Secret.
	CodeWebhookSecretKey = "secret"
	// CodeWebhookPreviousSecretKey holds the previous signing secret during a rotation.
	CodeWebhookPreviousSecretKey = "previous-secret"
	// CodeWebhookHMACHeader carries the signature of a declared hmac webhook that names none.
	CodeWebhookHMACHeader = "X-Signature"
	// DefaultEnvSecretRereadInterval is how often a declared webhook whose secret_ref names an
	// environment variable is resolved again, so that a secret read from a file (NAME_FILE)
	// takes effect without a restart once the file changes.
	DefaultEnvSecretRereadInterval = 30 * time.Second
	// envFileSuffix names the variable that holds the path of a secret's file.
	envFileSuffix = "_FILE"
	// envPreviousSuffix names the variable of a secret's rotation partner.
	envPreviousSuffix = "_PREVIOUS"
)

// ValidateGoWebhooks checks the webhooks that Go workflows declare, which a broken binary
// would otherwise serve wrongly: each declaration's syntax and scheme, and no slug declared
// twice. The manager refuses to start when it fails.
func ValidateGoWebhooks(reg *engine.Registry) error {
	seen := map[string]string{}
	for _, w := range reg.Workflows() {
		for _, spec := range w.Webhooks() {
			if err := spec.Validate(); err != nil {
				return fmt.Errorf("workflow %q: %w", w.Name(), err)
			}
			if prev, dup := seen[spec.Slug]; dup {
				return fmt.Errorf("workflows %q and %q both declare webhook slug %q", prev, w.Name(), spec.Slug)
			}
			seen[spec.Slug] = w.Name()
		}
	}
	return nil
}

// WorkflowWebhookReconciler serves the webhooks workflows declare. Its requests are slugs; for
// each it takes the declaration that wins the slug from the catalog, resolves its secret and
// pushes the route into the table, Ready or not (or takes the route out when nothing declares
// the slug any more). It runs on every replica, like the WebhookEndpoint controller, and
// resynchronises every slug at start and whenever the catalog changes.
type WorkflowWebhookReconciler struct {
	// Secrets reads Secrets past the cache.
	Secrets client.Reader
	// Routes is the API server's route table.
	Routes *routes.Table
	// Catalog holds the declarations.
	Catalog *catalog.Catalog
	// CodeNamespace is where runs of Go and WORKFLOW_DIRS webhooks live; their Secrets, the
	// conventional ones included, live in OperatorNamespace.
	CodeNamespace string
	// OperatorNamespace holds the Secrets that Go and WORKFLOW_DIRS files name in secret_ref.
	OperatorNamespace string
	// Env looks up the manager's environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// EnvSecretReread is how often a webhook whose secret lives in the environment (or a file
	// the environment names) is resolved again; zero means DefaultEnvSecretRereadInterval.
	EnvSecretReread time.Duration
	// Grants say which namespaces' definitions may claim which slugs.
	Grants routes.Grants
	// SecretScope holds the namespaces whose Secrets the manager reads.
	SecretScope SecretScope
	// Definitions is told when the route of a definition's webhook changed, to update its
	// status; nil when definitions are not reconciled.
	Definitions *WorkflowDefinitionReconciler

	resync chan event.GenericEvent
	mu     sync.Mutex
	served map[string]servedRoute // slug -> what this reconciler last set
}

// servedRoute is what a slug's route was last set from.
type servedRoute struct {
	key        routes.Key
	definition types.NamespacedName // the declaring definition, if one
	state      string               // readiness, to log changes only
	conflicts  string               // the files that lose the slug to the winning file, to log changes only
}

// Reconcile serves the slug req.Name as its winning declaration says.
func (r *WorkflowWebhookReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	slug := req.Name
	claims := servableClaims(r.Catalog.Webhooks()[slug], r.Grants)
	prev, hadPrev := r.servedRoute(slug)
	if len(claims) == 0 {
		if hadPrev {
			r.Routes.Delete(prev.key)
			r.forgetRoute(slug)
			r.wakeDefinition(prev.definition)
			log.FromContext(ctx).Info("workflow_webhook_removed", "slug", slug, "path", routes.Path(slug))
		}
		return ctrl.Result{}, nil
	}
	winner := claims[0]
	route, err := r.route(ctx, winner)
	if err != nil {
		return ctrl.Result{}, err
	}
	if hadPrev && prev.key != route.Key {
		r.Routes.Delete(prev.key)
	}
	if err := r.Routes.Set(route); err != nil {
		return ctrl.Result{}, fmt.Errorf("serve the declared webhook %q: %w", slug, err)
	}
	now := servedRoute{key: route.Key, state: routeState(route), conflicts: conflictKey(claims)}
	if winner.Entry.Source == catalog.SourceDefinition {
		now.definition = types.NamespacedName{Namespace: winner.Entry.Namespace, Name: winner.Entry.Definition}
	}
	r.remember(slug, now)
	if now.conflicts != "" && (!hadPrev || prev.conflicts != now.conflicts) {
		logConflicts(ctx, claims)
	}
	if !hadPrev || prev.state != now.state || prev.key != now.key {
		r.announce(ctx, route, winner, !hadPrev)
		r.wakeDefinition(now.definition)
		if prev.definition != now.definition {
			r.wakeDefinition(prev.definition)
		}
	}
	return ctrl.Result{RequeueAfter: r.rereadAfter(winner)}, nil
}

// rereadAfter is when a declaration's secret must be resolved again: for a secret_ref that
// names an environment variable, whose value may come from a file no watch reports, every
// EnvSecretReread; never for a Secret, whose changes its watch reports.
func (r *WorkflowWebhookReconciler) rereadAfter(w catalog.Webhook) time.Duration {
	auth := w.Spec.EffectiveAuth()
	if auth.Scheme == signature.None {
		return 0
	}
	if src, problem := r.secretSourceOf(w, auth.SecretRef); problem != nil || src.env == "" {
		return 0
	}
	return cmp.Or(r.EnvSecretReread, DefaultEnvSecretRereadInterval)
}

// servableClaims keeps the claims of a slug that may be served, in precedence order: every
// claim of the manager's own workflows, and definitions whose namespace is granted the slug.
func servableClaims(claims []catalog.Webhook, grants routes.Grants) []catalog.Webhook {
	var out []catalog.Webhook
	for _, c := range claims {
		if c.Entry.Source != catalog.SourceDefinition || grants.Allows(c.Entry.Namespace, c.Spec.Slug) {
			out = append(out, c)
		}
	}
	return out
}

// fileLosers are the WORKFLOW_DIRS files among claims (in precedence order) that declare the
// slug but lose it to the winning file: a file wins over every other source, so only another
// file takes a slug from one.
func fileLosers(claims []catalog.Webhook) []catalog.Webhook {
	if len(claims) < 2 || claims[0].Entry.Source != catalog.SourceFile {
		return nil
	}
	var out []catalog.Webhook
	for _, c := range claims[1:] {
		if c.Entry.Source == catalog.SourceFile {
			out = append(out, c)
		}
	}
	return out
}

// conflictKey names the files that lose a slug to another file, empty when none does.
func conflictKey(claims []catalog.Webhook) string {
	var files []string
	for _, c := range fileLosers(claims) {
		files = append(files, c.Entry.File)
	}
	return strings.Join(files, "\x00")
}

// logConflicts logs workflow_webhook_conflict, at error level, for each WORKFLOW_DIRS file that
// declares the slug but loses it to another file, naming both files and how to fix it.
func logConflicts(ctx context.Context, claims []catalog.Webhook) {
	winner := claims[0]
	for _, loser := range fileLosers(claims) {
		err := fmt.Errorf("the webhook %s of %s is served by %s, which declares the same slug and wins it (its WORKFLOW_NAME %q sorts first); rename one of the slugs",
			routes.Path(winner.Spec.Slug), loser.Entry.File, winner.Entry.File, winner.Entry.Name())
		log.FromContext(ctx).Error(err, "workflow_webhook_conflict", "slug", winner.Spec.Slug, "path", routes.Path(winner.Spec.Slug),
			"file", loser.Entry.File, "workflow", loser.Entry.Name(), "winner_file", winner.Entry.File, "winner_workflow", winner.Entry.Name())
	}
}

// routeState is a route's readiness in one word.
func routeState(route routes.Route) string {
	if route.Ready {
		return workflowsv1alpha1.ReasonReady
	}
	return route.Reason
}

// route builds the route of a declaration, Ready when its secret resolves.
func (r *WorkflowWebhookReconciler) route(ctx context.Context, w catalog.Webhook) (routes.Route, error) {
	spec, auth := w.Spec, w.Spec.EffectiveAuth()
	key := routes.CodeKey(r.CodeNamespace, spec.Slug)
	if w.Entry.Source == catalog.SourceDefinition {
		key = routes.DefinitionKey(w.Entry.Namespace, w.Entry.Definition, spec.Slug)
	}
	header := cmp.Or(auth.Header, CodeWebhookHMACHeader)
	route := routes.Route{
		Key: key, Slug: spec.Slug, WorkflowName: w.Entry.Name(),
		Provider: cmp.Or(spec.Provider, auth.Scheme), TriggerKey: spec.TriggerKey, TriggerBodyField: spec.TriggerBodyField,
		Identity:       routes.IdentityFor(auth.Scheme, spec.ReplayProtection == durable.ReplayProtectionTriggerKey),
		AllowedMethods: upper(spec.AllowedMethods), AllowedContentTypes: lower(spec.AllowedContentTypes), Ready: true,
	}
	verifier, err := signature.New(auth.Scheme, auth.HMACConfig(header), auth.TimestampTolerance)
	if err != nil {
		route.Ready, route.Reason, route.Message = false, workflowsv1alpha1.ReasonInvalidSpec, err.Error()
		return route, nil
	}
	route.Verifier = verifier
	if auth.Scheme == signature.HMAC || auth.Scheme == signature.Token {
		route.SensitiveHeaders = []string{header}
	}
	if auth.Scheme == signature.None {
		return route, nil
	}
	secrets, problem, err := r.secrets(ctx, w, auth.SecretRef)
	if err != nil {
		return routes.Route{}, err
	}
	if problem == nil {
		problem = probeSecrets(verifier, secrets)
	}
	if problem != nil {
		route.Ready, route.Verifier, route.Reason, route.Message = false, nil, problem.reason, problem.message
		return route, nil
	}
	route.Secrets = secrets
	return route, nil
}

// secretSource is where a declaration's signing secret lives: an environment variable, or keys
// of a Secret.
type secretSource struct {
	env    string
	secret types.NamespacedName
	keys   []string
}

// secretSourceOf resolves a declaration's secret_ref by the rules in this file's comment.
func (r *WorkflowWebhookReconciler) secretSourceOf(w catalog.Webhook, ref string) (secretSource, *finding) {
	definition := w.Entry.Source == catalog.SourceDefinition
	switch {
	case ref == "" && definition:
		return secretSource{}, &finding{workflowsv1alpha1.ReasonInvalidSpec, "a WorkflowDefinition's webhook names its secret with secret_ref = \"<secret>/<key>\""}
	case ref == "":
		name := types.NamespacedName{Namespace: r.OperatorNamespace, Name: CodeWebhookSecretPrefix + w.Spec.Slug}
		return secretSource{secret: name, keys: []string{CodeWebhookSecretKey, CodeWebhookPreviousSecretKey}}, nil
	case engine.SecretRefIsEnv(ref) && definition:
		return secretSource{}, &finding{workflowsv1alpha1.ReasonInvalidSpec, fmt.Sprintf("a WorkflowDefinition cannot read the manager's environment variable %s; name a Secret key, \"<secret>/<key>\"", ref)}
	case engine.SecretRefIsEnv(ref):
		return secretSource{env: ref}, nil
	}
	secret, key, _ := strings.Cut(ref, "/")
	namespace := r.OperatorNamespace
	if definition {
		namespace = w.Entry.Namespace
	}
	return secretSource{secret: types.NamespacedName{Namespace: namespace, Name: secret}, keys: []string{key, "previous-" + key}}, nil
}

// secrets resolves a declaration's signing secrets: the current one and, during a rotation,
// the previous one.
func (r *WorkflowWebhookReconciler) secrets(ctx context.Context, w catalog.Webhook, ref string) ([][]byte, *finding, error) {
	src, problem := r.secretSourceOf(w, ref)
	if problem != nil {
		return nil, problem, nil
	}
	if src.env != "" {
		secrets, problem := r.envSecrets(src.env)
		return secrets, problem, nil
	}
	return r.SecretScope.readSecret(ctx, r.Secrets, secretRef{secret: src.secret, keys: src.keys, value: "signing secret"})
}

// envSecrets resolves a secret_ref that names the environment variable name: the current
// secret from name (or the file name_FILE names), and during a rotation the previous one from
// name_PREVIOUS (or the file name_PREVIOUS_FILE names), which may be absent.
func (r *WorkflowWebhookReconciler) envSecrets(name string) ([][]byte, *finding) {
	current, problem := r.envValue(name, false)
	if problem != nil {
		return nil, problem
	}
	if current == nil {
		return nil, &finding{workflowsv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"the manager's environment variable %s is not set, nor %s%s; set %s in the manager's Deployment (env from a Secret) to the provider's signing secret, or %s%s to the path of a file of a mounted Secret that holds it",
			name, name, envFileSuffix, name, name, envFileSuffix)}
	}
	previous, problem := r.envValue(name+envPreviousSuffix, true)
	if problem != nil {
		return nil, problem
	}
	if previous == nil {
		return [][]byte{current}, nil
	}
	return [][]byte{current, previous}, nil
}

// envValue reads one secret of the environment: the variable name, trimmed, or when it is
// unset or empty the trimmed content of the file that name_FILE names. It returns nil when
// neither is set, or when optional and the file is missing or empty (a rotation partner whose
// Secret key was removed); a file that cannot be read is a problem that names it.
func (r *WorkflowWebhookReconciler) envValue(name string, optional bool) ([]byte, *finding) {
	lookup := r.Env
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
		return []byte(strings.TrimSpace(v)), nil
	}
	path, _ := lookup(name + envFileSuffix)
	if path = strings.TrimSpace(path); path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	value := bytes.TrimSpace(data)
	switch {
	case optional && (errors.Is(err, fs.ErrNotExist) || err == nil && len(value) == 0):
		return nil, nil
	case err != nil:
		return nil, &finding{workflowsv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"the file %s that the manager's environment variable %s%s names cannot be read (%v); mount the Secret that holds the signing secret there",
			path, name, envFileSuffix, withoutPath(err))}
	case len(value) == 0:
		return nil, &finding{workflowsv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"the file %s that the manager's environment variable %s%s names is empty; put the provider's signing secret in the Secret mounted there",
			path, name, envFileSuffix)}
	}
	return value, nil
}

// withoutPath is err without the path a *fs.PathError repeats.
func withoutPath(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}

// announce logs workflow_webhook_registered for every route the first time this process sets
// it and whenever it becomes Ready, and workflow_webhook_not_ready when it stops serving. A
// route that does not serve is logged at error level too, as workflow_webhook_not_serving: its
// path answers 503 until the fix its message names (a Secret to create, a variable to set) is
// made.
func (r *WorkflowWebhookReconciler) announce(ctx context.Context, route routes.Route, w catalog.Webhook, first bool) {
	logger := log.FromContext(ctx)
	kv := []any{"slug", route.Slug, "workflow", route.WorkflowName, "path", routes.Path(route.Slug), "namespace", route.Key.Namespace,
		"source", string(w.Entry.Source), "ready", route.Ready}
	if w.Entry.File != "" {
		kv = append(kv, "file", w.Entry.File)
	}
	if !route.Ready {
		kv = append(kv, "reason", route.Reason, "message", route.Message)
		logger.Error(fmt.Errorf("%s answers 503 until this is fixed: %s", routes.Path(route.Slug), route.Message),
			"workflow_webhook_not_serving", kv...)
	}
	if first || route.Ready {
		logger.Info("workflow_webhook_registered", kv...)
		return
	}
	logger.Info("workflow_webhook_not_ready", kv...)
}

func (r *WorkflowWebhookReconciler) servedRoute(slug string) (servedRoute, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.served[slug]
	return s, ok
}

func (r *WorkflowWebhookReconciler) remember(slug string, s servedRoute) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.served[slug] = s
}

func (r *WorkflowWebhookReconciler) forgetRoute(slug string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.served, slug)
}

// wakeDefinition has a definition's status show its route's new state.
func (r *WorkflowWebhookReconciler) wakeDefinition(key types.NamespacedName) {
	if r.Definitions != nil && key.Name != "" {
		r.Definitions.Wake(key)
	}
}

// slugs returns every slug declared now or served before, sorted.
func (r *WorkflowWebhookReconciler) slugs() []string {
	set := map[string]bool{}
	for slug := range r.Catalog.Webhooks() {
		set[slug] = true
	}
	r.mu.Lock()
	for slug := range r.served {
		set[slug] = true
	}
	r.mu.Unlock()
	out := make([]string, 0, len(set))
	for slug := range set {
		out = append(out, slug)
	}
	sort.Strings(out)
	return out
}

// requestsForSlugs turns slugs into requests (the name is the slug).
func requestsForSlugs(slugs []string) []reconcile.Request {
	out := make([]reconcile.Request, len(slugs))
	for i, s := range slugs {
		out[i] = reconcile.Request{NamespacedName: types.NamespacedName{Name: s}}
	}
	return out
}

// secretUsers maps a Secret to the slugs whose serving declaration reads it.
func (r *WorkflowWebhookReconciler) secretUsers(_ context.Context, o client.Object) []reconcile.Request {
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
	var slugs []string
	for slug, claims := range r.Catalog.Webhooks() {
		claims = servableClaims(claims, r.Grants)
		if len(claims) == 0 {
			continue
		}
		src, problem := r.secretSourceOf(claims[0], claims[0].Spec.EffectiveAuth().SecretRef)
		if problem == nil && src.secret == key {
			slugs = append(slugs, slug)
		}
	}
	return requestsForSlugs(slugs)
}

// SetupWithManager registers the reconciler on every replica: it watches the metadata of
// Secrets (mapped to the slugs that read them), resynchronises every slug at start and on
// each catalog change.
func (r *WorkflowWebhookReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.served = map[string]servedRoute{}
	r.resync = make(chan event.GenericEvent, 1)
	r.Catalog.OnChange(func() {
		select {
		case r.resync <- event.GenericEvent{Object: &corev1.Secret{}}:
		default: // a resync is already pending; it will see this change too
		}
	})
	everyReplica := false
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request { return requestsForSlugs(r.slugs()) })
	return ctrl.NewControllerManagedBy(mgr).
		Named("workflowwebhook").
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.secretUsers)).
		WatchesRawSource(source.Channel(r.resync, all)).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			for _, req := range requestsForSlugs(r.slugs()) {
				q.Add(req)
			}
			return nil
		})).
		WithOptions(controller.Options{NeedLeaderElection: &everyReplica}).
		Complete(r)
}
