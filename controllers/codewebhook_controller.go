package controllers

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/webhookserver/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver/signature"
)

// Code-declared webhooks (durable.WithWebhook) have no resource to configure them, so they
// follow conventions:
//
//   - Runs are created in the manager's code-webhook namespace (--code-webhook-namespace,
//     DefaultCodeWebhookNamespace by default).
//   - The signing secret is key "secret" of the Secret "centaur-webhook-<slug>" in that
//     namespace; during a rotation, key "previous-secret" is accepted too. Until the Secret
//     exists the route answers 503 (never unsigned). Provider "none" needs no Secret.
//   - The hmac provider reads a hex HMAC-SHA256 from the X-Signature header.
//   - Methods, content types and the body limit are the WebhookEndpoint defaults.
//   - A WebhookEndpoint with the same slug overrides the code-declared route.
const (
	// DefaultCodeWebhookNamespace is where code-declared webhooks run when no flag says.
	DefaultCodeWebhookNamespace = "default"
	// CodeWebhookSecretPrefix starts the name of a code-declared webhook's Secret.
	CodeWebhookSecretPrefix = "centaur-webhook-"
	// CodeWebhookSecretKey holds the signing secret in that Secret.
	CodeWebhookSecretKey = "secret"
	// CodeWebhookPreviousSecretKey holds the previous signing secret during a rotation.
	CodeWebhookPreviousSecretKey = "previous-secret"
	// CodeWebhookHMACHeader carries the signature of a code-declared hmac webhook.
	CodeWebhookHMACHeader = "X-Signature"
)

// slugPattern is the slug syntax the WebhookEndpoint API enforces, applied to code too.
var slugPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// CodeWebhook is a webhook route a registered workflow declares in code.
type CodeWebhook struct {
	// Workflow is the declaring workflow's name.
	Workflow string
	// Spec is the declaration.
	Spec durable.WebhookSpec
}

// SecretName is the name of the Secret holding the webhook's signing secret.
func (c CodeWebhook) SecretName() string { return CodeWebhookSecretPrefix + c.Spec.Slug }

// CodeWebhooks returns the webhooks the registry's workflows declare. A malformed slug, an
// unknown provider or a slug declared twice is a programming error in the binary and is
// returned as an error, so that the manager refuses to start.
func CodeWebhooks(reg *durable.Registry) ([]CodeWebhook, error) {
	var out []CodeWebhook
	seen := map[string]string{}
	for _, w := range reg.Workflows() {
		for _, spec := range w.Webhooks() {
			if !slugPattern.MatchString(spec.Slug) || len(spec.Slug) > 63 {
				return nil, fmt.Errorf("workflow %q declares webhook slug %q: want lower-case letters, digits and dashes, at most 63", w.Name(), spec.Slug)
			}
			if _, err := signature.New(spec.Provider, signature.HMACConfig{Header: CodeWebhookHMACHeader}, 0); err != nil {
				return nil, fmt.Errorf("workflow %q declares webhook %q: %w", w.Name(), spec.Slug, err)
			}
			if prev, dup := seen[spec.Slug]; dup {
				return nil, fmt.Errorf("workflows %q and %q both declare webhook slug %q", prev, w.Name(), spec.Slug)
			}
			seen[spec.Slug] = w.Name()
			out = append(out, CodeWebhook{Workflow: w.Name(), Spec: spec})
		}
	}
	return out, nil
}

// CodeWebhookReconciler serves the webhooks workflows declare in code. Its requests are the
// keys of the webhooks' Secrets; it resolves the Secret and pushes the route into the table,
// Ready or not. It runs on every replica, like the WebhookEndpoint controller, and enqueues
// every webhook once at start so that a route is served (503) even before its Secret exists.
type CodeWebhookReconciler struct {
	// Secrets reads Secrets past the cache.
	Secrets client.Reader
	// Routes is the API server's route table.
	Routes *routes.Table
	// Namespace is where the webhooks' runs and Secrets live.
	Namespace string

	webhooks map[string]CodeWebhook // by Secret name
	mu       sync.Mutex
	reasons  map[string]string // slug -> last logged reason, to log changes only
}

// NewCodeWebhookReconciler returns a reconciler serving webhooks in namespace.
func NewCodeWebhookReconciler(secrets client.Reader, table *routes.Table, namespace string, webhooks []CodeWebhook) *CodeWebhookReconciler {
	r := &CodeWebhookReconciler{Secrets: secrets, Routes: table, Namespace: namespace,
		webhooks: map[string]CodeWebhook{}, reasons: map[string]string{}}
	for _, w := range webhooks {
		r.webhooks[w.SecretName()] = w
	}
	return r
}

// Reconcile serves the code-declared webhook whose Secret is req.
func (r *CodeWebhookReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	w, ok := r.webhooks[req.Name]
	if !ok || req.Namespace != r.Namespace {
		return ctrl.Result{}, nil
	}
	route, err := r.route(ctx, w)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Routes.Set(route); err != nil {
		return ctrl.Result{}, fmt.Errorf("serve the code-declared webhook %q: %w", w.Spec.Slug, err)
	}
	r.logChange(ctx, route)
	return ctrl.Result{}, nil
}

// route builds the webhook's route, Ready when its secret resolves.
func (r *CodeWebhookReconciler) route(ctx context.Context, w CodeWebhook) (routes.Route, error) {
	verifier, err := signature.New(w.Spec.Provider, signature.HMACConfig{Header: CodeWebhookHMACHeader}, 0)
	if err != nil { // validated at start-up; kept for safety
		return routes.Route{}, fmt.Errorf("code-declared webhook %q: %w", w.Spec.Slug, err)
	}
	route := routes.Route{
		Key: routes.CodeKey(r.Namespace, w.Spec.Slug), Slug: w.Spec.Slug, WorkflowName: w.Workflow,
		Provider: w.Spec.Provider, TriggerKey: w.Spec.TriggerKey, Verifier: verifier, Ready: true,
	}
	if w.Spec.Provider == signature.HMAC {
		route.SensitiveHeaders = []string{CodeWebhookHMACHeader}
	}
	if w.Spec.Provider == signature.None {
		return route, nil
	}
	secrets, reason, message, err := r.secrets(ctx, w)
	if err != nil {
		return routes.Route{}, err
	}
	if reason == "" {
		if p := probeSecrets(verifier, secrets); p != nil {
			reason, message = p.reason, p.message
		}
	}
	if reason != "" {
		route.Ready, route.Verifier, route.Reason, route.Message = false, nil, reason, message
		return route, nil
	}
	route.Secrets = secrets
	return route, nil
}

// secrets reads the webhook's Secret: the current and, when present, the previous secret.
func (r *CodeWebhookReconciler) secrets(ctx context.Context, w CodeWebhook) ([][]byte, string, string, error) {
	var secret corev1.Secret
	key := types.NamespacedName{Namespace: r.Namespace, Name: w.SecretName()}
	if err := r.Secrets.Get(ctx, key, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, routes.ReasonSecretNotFound, fmt.Sprintf(
				"Secret %s not found; create it: kubectl create secret generic %s -n %s --from-literal=%s=<signing secret>",
				key, key.Name, key.Namespace, CodeWebhookSecretKey), nil
		}
		return nil, "", "", fmt.Errorf("read Secret %s: %w", key, err)
	}
	var out [][]byte
	for _, k := range []string{CodeWebhookSecretKey, CodeWebhookPreviousSecretKey} {
		if v := bytes.TrimSpace(secret.Data[k]); len(v) > 0 {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, routes.ReasonSecretKeyMissing, fmt.Sprintf("Secret %s has no non-empty key %q; put the signing secret there", key, CodeWebhookSecretKey), nil
	}
	return out, "", "", nil
}

// logChange logs the route's readiness when it changed since the last reconcile.
func (r *CodeWebhookReconciler) logChange(ctx context.Context, route routes.Route) {
	reason := route.Reason
	if route.Ready {
		reason = routes.ReasonReady
	}
	r.mu.Lock()
	changed := r.reasons[route.Slug] != reason
	r.reasons[route.Slug] = reason
	r.mu.Unlock()
	if !changed {
		return
	}
	if route.Ready {
		log.FromContext(ctx).Info("code_webhook_ready", "slug", route.Slug, "workflow", route.WorkflowName, "namespace", route.Key.Namespace)
		return
	}
	log.FromContext(ctx).Info("code_webhook_not_ready", "slug", route.Slug, "reason", route.Reason, "message", route.Message)
}

// SetupWithManager registers the reconciler: it watches the metadata of the webhooks'
// Secrets and enqueues every webhook once at start.
func (r *CodeWebhookReconciler) SetupWithManager(mgr ctrl.Manager) error {
	everyReplica := false
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := r.webhooks[o.GetName()]
		return ok && o.GetNamespace() == r.Namespace
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("codewebhook").
		WatchesMetadata(&corev1.Secret{}, &handler.EnqueueRequestForObject{}, builder.WithPredicates(ours)).
		WatchesRawSource(source.Func(r.enqueueAll)).
		WithOptions(controller.Options{NeedLeaderElection: &everyReplica}).
		Complete(r)
}

// enqueueAll adds every code-declared webhook to the queue.
func (r *CodeWebhookReconciler) enqueueAll(_ context.Context, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	for name := range r.webhooks {
		queue.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: r.Namespace, Name: name}})
	}
	return nil
}
