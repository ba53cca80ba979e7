package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// WorkflowDefinitionReconciler compiles WorkflowDefinitions into the catalog: a definition that
// loads and whose name is free becomes the workflow its namespace's runs get, and its status
// says what became of it (Ready with a reason, the revision, its webhooks). Like the webhook
// controllers it runs on every replica, since every replica's API server needs the workflows;
// each computes the same status, so only the first write changes anything.
type WorkflowDefinitionReconciler struct {
	client.Client
	// Catalog receives the definitions' workflows.
	Catalog *catalog.Catalog
	// Routes is the webhook route table, read to report each declared webhook's readiness;
	// nil when the manager serves no webhooks.
	Routes *routes.Table
	// Grants say which namespaces may claim which slugs.
	Grants routes.Grants
	// Events records Kubernetes Events when a definition's Ready condition changes.
	Events recorder.EventRecorder

	// compiler compiles the definitions, once per content and at each namespace's rate.
	compiler *definitionCompiler
	// wake carries definitions to reconcile again: another definition of the same name came
	// or went, or the route of one of its webhooks changed.
	wake chan event.GenericEvent
}

// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowdefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowdefinitions/status,verbs=get;update;patch

// Reconcile loads the definition's source into the catalog (or takes it out when the
// definition is gone) and writes what came of it into status.
func (r *WorkflowDefinitionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	def := &workflowsv1alpha1.WorkflowDefinition{}
	if err := r.Get(ctx, req.NamespacedName, def); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Namespace, req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !def.DeletionTimestamp.IsZero() {
		r.forget(def.Namespace, def.Name)
		return ctrl.Result{}, nil
	}
	w, wait, err := r.compiler.compile(def, true, time.Now())
	if wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return r.writeStatus(ctx, def, r.load(def, w, err))
}

// definitionVerdict is what a reconcile made of a definition.
type definitionVerdict struct {
	readiness
	workflow *workflowfile.Workflow
}

// load updates the catalog with the definition's compile (w, or err): a definition that does
// not load is taken out, so that its name's runs fall back to an older definition or fail as
// unknown.
func (r *WorkflowDefinitionReconciler) load(def *workflowsv1alpha1.WorkflowDefinition, w *workflowfile.Workflow, err error) definitionVerdict {
	if err == nil {
		err = checkDefinitionWebhooks(w)
	}
	if err == nil && def.Annotations[workflowsv1alpha1.AnnotationQuarantinedRevision] == w.Revision() {
		r.forget(def.Namespace, def.Name)
		return definitionVerdict{readiness: unready(workflowsv1alpha1.ReasonQuarantined, fmt.Sprintf(
			"a run of revision %s killed the process that executed it, the second time executing alone: its code most likely exceeds its memory bound, so no new run starts on it. Change the source (a new revision) once the step or handler that builds a very large value is fixed",
			w.Revision()))}
	}
	if err != nil {
		r.forget(def.Namespace, def.Name)
		var le *workflowfile.LoadError
		if errors.As(err, &le) {
			return definitionVerdict{readiness: unready(le.Reason, le.Error())}
		}
		return definitionVerdict{readiness: unready(workflowsv1alpha1.ReasonLoadFailed, err.Error())}
	}
	previous, had := r.entryOf(def.Namespace, def.Name)
	r.Catalog.SetDefinition(catalog.Entry{Workflow: w, Revision: w.Revision(), File: def.Namespace + "/" + def.Name,
		Namespace: def.Namespace, Definition: def.Name, Created: def.CreationTimestamp.Time})
	r.wakeNamed(def.Namespace, w.Name(), def.Name)
	if had && previous != w.Name() {
		r.wakeNamed(def.Namespace, previous, def.Name)
	}
	if conflict := r.Catalog.DefinitionConflict(def.Namespace, def.Name); conflict != "" {
		return definitionVerdict{readiness: unready(workflowsv1alpha1.ReasonNameConflict, conflict), workflow: w}
	}
	return definitionVerdict{workflow: w, readiness: readyAs(workflowsv1alpha1.ReasonLoaded,
		fmt.Sprintf("new runs of %q in namespace %s start on revision %s", w.Name(), def.Namespace, w.Revision()))}
}

// DefinitionBundle is the workflow file a definition holds: its source as "<name>.star" and
// its modules beside it.
func DefinitionBundle(def *workflowsv1alpha1.WorkflowDefinition) workflowfile.Bundle {
	entry := def.Name + ".star"
	files := map[string]string{entry: def.Spec.Source}
	for name, text := range def.Spec.Modules {
		files[name] = text
	}
	return workflowfile.Bundle{Origin: workflowfile.OriginDefinition, Entry: entry, Files: files}
}

// checkDefinitionWebhooks refuses webhooks a tenant cannot have: a definition's secrets are
// Secret keys in its own namespace, never the manager's environment.
func checkDefinitionWebhooks(w *workflowfile.Workflow) error {
	for _, spec := range w.Webhooks() {
		auth := spec.EffectiveAuth()
		if auth.Scheme == durable.WebhookSchemeNone {
			continue
		}
		if auth.SecretRef == "" || engine.SecretRefIsEnv(auth.SecretRef) {
			return &workflowfile.LoadError{Reason: workflowsv1alpha1.ReasonInvalidWebhook, File: w.File(), Message: fmt.Sprintf(
				"webhook %q: a WorkflowDefinition names its signing secret as a key of a Secret in its namespace, for example secret_ref = \"%s-webhook/secret\", not %q",
				spec.Slug, spec.Slug, auth.SecretRef)}
		}
	}
	return nil
}

// entryOf returns the workflow name the catalog holds for a definition.
func (r *WorkflowDefinitionReconciler) entryOf(namespace, name string) (string, bool) {
	e, ok := r.Catalog.Definition(namespace, name)
	if !ok {
		return "", false
	}
	return e.Name(), true
}

// forget takes a definition out of the catalog and wakes the others of its name.
func (r *WorkflowDefinitionReconciler) forget(namespace, name string) {
	r.compiler.forget(types.NamespacedName{Namespace: namespace, Name: name})
	workflow, had := r.entryOf(namespace, name)
	r.Catalog.RemoveDefinition(namespace, name)
	if had {
		r.wakeNamed(namespace, workflow, name)
	}
}

// wakeNamed reconciles again the definitions of namespace that define workflow, but self: who
// wins the name may have changed.
func (r *WorkflowDefinitionReconciler) wakeNamed(namespace, workflow, self string) {
	for _, name := range r.Catalog.DefinitionsNamed(namespace, workflow) {
		if name != self {
			r.Wake(types.NamespacedName{Namespace: namespace, Name: name})
		}
	}
}

// Wake queues a definition for another reconcile without blocking (a full queue drops the wake;
// the next change or resync catches up).
func (r *WorkflowDefinitionReconciler) Wake(key types.NamespacedName) {
	obj := &workflowsv1alpha1.WorkflowDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	select {
	case r.wake <- event.GenericEvent{Object: obj}:
	default:
	}
}

// webhookStates reports each webhook the definition declares: served (with the route's
// readiness), or why not.
func (r *WorkflowDefinitionReconciler) webhookStates(def *workflowsv1alpha1.WorkflowDefinition, v definitionVerdict) []workflowsv1alpha1.DefinitionWebhook {
	if v.workflow == nil {
		return nil
	}
	claims := r.Catalog.Webhooks()
	var out []workflowsv1alpha1.DefinitionWebhook
	for _, spec := range v.workflow.Webhooks() {
		state := workflowsv1alpha1.DefinitionWebhook{Slug: spec.Slug, Path: routes.Path(spec.Slug)}
		state.Ready, state.Reason, state.Message = r.webhookState(def, v, spec.Slug, servableClaims(claims[spec.Slug], r.Grants))
		state.Message = statusText(state.Message)
		out = append(out, state)
	}
	return out
}

// webhookState says whether the definition's webhook slug is served, or why not.
func (r *WorkflowDefinitionReconciler) webhookState(def *workflowsv1alpha1.WorkflowDefinition, v definitionVerdict, slug string, owners []catalog.Webhook) (bool, string, string) {
	own := routes.DefinitionKey(def.Namespace, def.Name, slug)
	switch {
	case v.reason == workflowsv1alpha1.ReasonNameConflict:
		return false, workflowsv1alpha1.ReasonNameConflict, "the definition is not used, so neither are its webhooks"
	case r.Routes == nil:
		return false, workflowsv1alpha1.ReasonNotServed, "this manager serves no webhooks"
	case !r.Grants.Allows(def.Namespace, slug):
		return false, workflowsv1alpha1.ReasonSlugNotGranted, routes.NotGrantedMessage(def.Namespace, slug)
	case len(owners) == 0 || owners[0].Entry.Definition != def.Name || owners[0].Entry.Namespace != def.Namespace:
		return false, workflowsv1alpha1.ReasonSlugConflict, slugOwnerMessage(def.Namespace, slug, owners)
	}
	if served, ok := r.Routes.Lookup(slug); ok && served.Key.Origin == routes.OriginEndpoint {
		return false, workflowsv1alpha1.ReasonSlugConflict, fmt.Sprintf("the WebhookEndpoint %s serves the slug %q; choose another slug",
			objectSeenFrom(def.Namespace, served.Key.Namespace, served.Key.Name), slug)
	}
	route, ok := r.Routes.Get(routes.OriginDefinition, slug)
	switch {
	case !ok || route.Key != own:
		return false, workflowsv1alpha1.ReasonPending, "the route is being set up"
	case route.Ready:
		return true, "", ""
	}
	return false, route.Reason, route.Message
}

// slugOwnerMessage says who serves a slug a definition of namespace lost.
func slugOwnerMessage(namespace, slug string, owners []catalog.Webhook) string {
	if len(owners) == 0 {
		return fmt.Sprintf("the slug %q is not served", slug)
	}
	o := owners[0].Entry
	switch o.Source {
	case catalog.SourceDefinition:
		return fmt.Sprintf("the older WorkflowDefinition %s serves the slug %q; choose another slug", objectSeenFrom(namespace, o.Namespace, o.Definition), slug)
	case catalog.SourceFile:
		return fmt.Sprintf("the workflow file %s of the manager serves the slug %q; choose another slug", o.File, slug)
	default:
		return fmt.Sprintf("the workflow %q compiled into the manager serves the slug %q; choose another slug", o.Name(), slug)
	}
}

// objectSeenFrom names the object namespace/name to someone whose object lives in viewer: by
// name in the same namespace, and otherwise only as "in another namespace", since a status is
// read by the namespace's tenants and must not tell them what other tenants have. The
// operator's administrator finds it with kubectl.
func objectSeenFrom(viewer, namespace, name string) string {
	if namespace == viewer {
		return namespace + "/" + name
	}
	return "in another namespace"
}

// writeStatus is the one place that writes a definition's status: the verdict, the revision
// and the webhooks, in one write guarded by resourceVersion (patchStatus); a changed Ready
// condition is announced once stored. A lost race retries shortly.
func (r *WorkflowDefinitionReconciler) writeStatus(ctx context.Context, def *workflowsv1alpha1.WorkflowDefinition, v definitionVerdict) (ctrl.Result, error) {
	updated := def.DeepCopy()
	v.setIn(&updated.Status.Conditions, def.Generation)
	updated.Status.ObservedGeneration = def.Generation
	updated.Status.WorkflowName, updated.Status.Revision = "", ""
	if v.workflow != nil {
		updated.Status.WorkflowName, updated.Status.Revision = v.workflow.Name(), v.workflow.Revision()
	}
	updated.Status.Webhooks = r.webhookStates(def, v)
	written, res, err := writeStatus(ctx, r.Client, def, updated, "workflow definition")
	if written && v.changes(def.Status.Conditions) {
		r.announce(ctx, def, v)
	}
	return res, err
}

// announce logs and records an Event for the definition's Ready condition, which just changed.
func (r *WorkflowDefinitionReconciler) announce(ctx context.Context, def *workflowsv1alpha1.WorkflowDefinition, v definitionVerdict) {
	logger := log.FromContext(ctx)
	if v.status == metav1.ConditionTrue {
		logger.Info("workflow_loaded", "workflow", v.workflow.Name(), "file", def.Namespace+"/"+def.Name,
			"revision", v.workflow.Revision(), "source", string(catalog.SourceDefinition))
		emit(r.Events, def, corev1.EventTypeNormal, v.reason, "Load", "%s", v.message)
		return
	}
	logger.Info("workflow_load_failed", "definition", def.Namespace+"/"+def.Name, "reason", v.reason, "message", logText(v.message))
	emit(r.Events, def, corev1.EventTypeWarning, v.reason, "Load", "%s", v.message)
}

// SetupWithManager registers the reconciler on every replica, watching definitions (spec
// changes only) and the wake channel.
func (r *WorkflowDefinitionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.wake == nil {
		r.wake = make(chan event.GenericEvent, 1024)
	}
	everyReplica := false
	return ctrl.NewControllerManagedBy(mgr).
		For(&workflowsv1alpha1.WorkflowDefinition{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WatchesRawSource(source.Channel(r.wake, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{NeedLeaderElection: &everyReplica}).
		Named("workflowdefinition").
		Complete(r)
}

// DefinitionsLoader loads every WorkflowDefinition once when the cache has synced, then marks
// the catalog's definitions synced: until then a run whose workflow is unknown waits rather
// than failing, since its definition may simply not be loaded yet.
type DefinitionsLoader struct {
	// Reconciler loads each definition.
	Reconciler *WorkflowDefinitionReconciler
	// Cache lists definitions once it has synced.
	Cache interface {
		WaitForCacheSync(ctx context.Context) bool
	}
}

// Start loads the definitions and returns.
func (l *DefinitionsLoader) Start(ctx context.Context) error {
	if !l.Cache.WaitForCacheSync(ctx) {
		return nil
	}
	var defs workflowsv1alpha1.WorkflowDefinitionList
	if err := l.Reconciler.List(ctx, &defs); err != nil {
		return fmt.Errorf("list workflow definitions: %w", err)
	}
	for i := range defs.Items {
		if defs.Items[i].DeletionTimestamp.IsZero() {
			def := &defs.Items[i]
			w, _, err := l.Reconciler.compiler.compile(def, false, time.Now())
			l.Reconciler.load(def, w, err)
		}
	}
	l.Reconciler.Catalog.MarkDefinitionsSynced()
	return nil
}

// NeedLeaderElection reports false: every replica needs the definitions.
func (l *DefinitionsLoader) NeedLeaderElection() bool { return false }
