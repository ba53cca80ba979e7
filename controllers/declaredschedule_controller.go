package controllers

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/schedule"
)

// Declared schedules are the schedules a workflow declares in its code (durable.WithSchedule)
// or its file (SCHEDULES = [Schedule(...)]). They have no resource of their own, so the
// operator keeps a WorkflowSchedule for each: in the schedule namespace (--schedule-namespace,
// the operator's own namespace by default) for Go workflows and WORKFLOW_DIRS files, in its own namespace for a WorkflowDefinition's.
// The operator owns their spec, except spec.suspend and spec.suspendNote, so a pause through
// the REST API (or kubectl) survives a restart and a change of the declaration.
const (
	// DeclaredByGo, DeclaredByFile and DeclaredByDefinition say where a declaration comes
	// from; they are the values of the workflows.centaur.dev/declared-by label.
	DeclaredByGo         = "go"
	DeclaredByFile       = "file"
	DeclaredByDefinition = "definition"
	// declaredFieldOwner is the server-side apply field manager of declared schedules.
	declaredFieldOwner = "centaur-declared-schedules"
)

// DeclaredSchedule is a schedule a workflow declares, with where it comes from.
type DeclaredSchedule struct {
	// Workflow is the declaring workflow's name.
	Workflow string
	// Namespace is where the schedule lives; empty means the schedule namespace.
	Namespace string
	// Spec is the declaration.
	Spec durable.ScheduleSpec
	// DeclaredBy is DeclaredByGo, DeclaredByFile or DeclaredByDefinition.
	DeclaredBy string
	// Origin names the declaring code for people, for example "Go workflow nightly_report" or
	// "file /app/overlay/org/workflows/report.star".
	Origin string
}

// ScheduleSource is where declared schedules come from. It returns every schedule declared
// right now, whatever declares it: a WorkflowSchedule labelled as declared that the source no
// longer returns is deleted (its runs are kept). The manager's source is the Go registry
// (RegistrySchedules); workflow files join it as they load, and call
// DeclaredScheduleReconciler.Resync whenever their set changes.
type ScheduleSource interface {
	// DeclaredSchedules returns the schedules declared now.
	DeclaredSchedules(ctx context.Context) ([]DeclaredSchedule, error)
}

// ScheduleSourceFunc is a function that is a ScheduleSource.
type ScheduleSourceFunc func(ctx context.Context) ([]DeclaredSchedule, error)

// DeclaredSchedules calls f.
func (f ScheduleSourceFunc) DeclaredSchedules(ctx context.Context) ([]DeclaredSchedule, error) {
	return f(ctx)
}

// ScheduleSources joins sources into one: the schedules of all of them.
type ScheduleSources []ScheduleSource

// DeclaredSchedules returns the schedules of every source; an error of one is the error of all,
// so that a source that cannot answer never makes its schedules look deleted.
func (s ScheduleSources) DeclaredSchedules(ctx context.Context) ([]DeclaredSchedule, error) {
	var out []DeclaredSchedule
	for _, src := range s {
		ds, err := src.DeclaredSchedules(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	return out, nil
}

// RegistrySchedules is the source of the schedules that the registry's workflows declare with
// durable.WithSchedule, read afresh at every call.
func RegistrySchedules(reg *engine.Registry) ScheduleSource {
	return ScheduleSourceFunc(func(context.Context) ([]DeclaredSchedule, error) {
		var out []DeclaredSchedule
		for _, w := range reg.Workflows() {
			for _, spec := range w.Schedules() {
				out = append(out, DeclaredSchedule{Workflow: w.Name(), Spec: spec, DeclaredBy: DeclaredByGo, Origin: "Go workflow " + w.Name()})
			}
		}
		return out, nil
	})
}

// CatalogSchedules is the source of the schedules that the catalog's declaring workflows
// declare: Go workflows (durable.WithSchedule) and WORKFLOW_DIRS files (SCHEDULES) in the
// schedule namespace, and each WorkflowDefinition's in its own namespace. It is read afresh at
// every call; the manager resyncs it whenever the catalog changes.
func CatalogSchedules(workflows *catalog.Catalog) ScheduleSource {
	return ScheduleSourceFunc(func(context.Context) ([]DeclaredSchedule, error) {
		var out []DeclaredSchedule
		for _, e := range workflows.Declaring() {
			d := DeclaredSchedule{Workflow: e.Name(), DeclaredBy: DeclaredByGo, Origin: "Go workflow " + e.Name()}
			switch e.Source {
			case catalog.SourceFile:
				d.DeclaredBy, d.Origin = DeclaredByFile, "file "+e.File
			case catalog.SourceDefinition:
				d.DeclaredBy, d.Origin, d.Namespace = DeclaredByDefinition, "WorkflowDefinition "+e.File, e.Namespace
			}
			for _, spec := range e.Workflow.Schedules() {
				d.Spec = spec
				out = append(out, d)
			}
		}
		return out, nil
	})
}

// declaredObject is the WorkflowSchedule a declaration asks for, in server-side apply form.
type declaredObject struct {
	key    types.NamespacedName
	apply  *unstructured.Unstructured
	origin string
}

var nonNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// nameSlug makes s a DNS label of at most 63 characters.
func nameSlug(s string) string {
	slug := strings.Trim(nonNameChars.ReplaceAllString(strings.ToLower(s), "-"), "-")
	return strings.Trim(slug[:min(len(slug), 63)], "-")
}

// declaredName names the WorkflowSchedule of the index-th declaration of workflow.
func declaredName(workflow string, spec durable.ScheduleSpec, index int) string {
	switch {
	case spec.Name != "":
		return nameSlug(workflow + "-" + spec.Name)
	case index > 0:
		return nameSlug(workflow + "-" + strconv.Itoa(index+1))
	}
	return nameSlug(workflow)
}

// desiredSchedules turns declarations into the objects to apply. A declaration the operator
// cannot use (its cron or zone does not parse, its input does not encode, its name is taken by
// another declaration) is left out and reported in the joined error, one line each.
func desiredSchedules(decls []DeclaredSchedule, namespace string, now time.Time) ([]declaredObject, error) {
	var out []declaredObject
	var problems []error
	seen := map[types.NamespacedName]string{}
	index := map[string]int{}
	for _, d := range decls {
		ns := d.Namespace
		if ns == "" {
			ns = namespace
		}
		key := types.NamespacedName{Namespace: ns, Name: declaredName(d.Workflow, d.Spec, index[ns+"/"+d.Workflow])}
		index[ns+"/"+d.Workflow]++
		obj, err := declaredApply(d, key, now)
		if err == nil {
			if prev, dup := seen[key]; dup {
				err = fmt.Errorf("its WorkflowSchedule %s is declared by %s too; give one of them a distinct Name", key, prev)
			}
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("the schedule %q of %s: %w", d.Spec.Cron, d.Origin, err))
			continue
		}
		seen[key] = d.Origin
		out = append(out, declaredObject{key: key, apply: obj, origin: d.Origin})
	}
	return out, errors.Join(problems...)
}

// declaredApply builds the apply configuration of a declaration: metadata (name, the
// declared-by label, the declared-in annotation) and the spec fields the declaration sets.
// spec.suspend and spec.suspendNote are never in it, so a pause is kept.
func declaredApply(d DeclaredSchedule, key types.NamespacedName, now time.Time) (*unstructured.Unstructured, error) {
	if _, err := schedule.Parse(d.Spec.Cron, d.Spec.TimeZone, now); err != nil {
		return nil, err
	}
	ws := &workflowsv1alpha1.WorkflowSchedule{
		TypeMeta: metav1.TypeMeta{APIVersion: workflowsv1alpha1.GroupVersion.String(), Kind: "WorkflowSchedule"},
		ObjectMeta: metav1.ObjectMeta{
			Name: key.Name, Namespace: key.Namespace,
			Labels:      map[string]string{workflowsv1alpha1.LabelDeclaredBy: d.DeclaredBy},
			Annotations: map[string]string{workflowsv1alpha1.AnnotationDeclaredIn: d.Origin},
		},
		Spec: workflowsv1alpha1.WorkflowScheduleSpec{
			Schedule: d.Spec.Cron, TimeZone: d.Spec.TimeZone, WorkflowName: d.Workflow,
			ConcurrencyPolicy: workflowsv1alpha1.ConcurrencyPolicy(d.Spec.ConcurrencyPolicy),
			CatchUp:           workflowsv1alpha1.CatchUpPolicy(d.Spec.CatchUp),
		},
	}
	if d.Spec.Input != nil {
		raw, err := json.Marshal(d.Spec.Input)
		if err != nil {
			return nil, fmt.Errorf("its input does not encode to JSON: %w", err)
		}
		ws.Spec.Input = &apiextensionsv1.JSON{Raw: raw}
	}
	if d.Spec.MaxCatchUp > 0 {
		n := int32(d.Spec.MaxCatchUp)
		ws.Spec.MaxCatchUp = &n
	}
	if d.Spec.StartingDeadline > 0 {
		ws.Spec.StartingDeadline = &metav1.Duration{Duration: d.Spec.StartingDeadline}
	}
	if d.Spec.Jitter > 0 {
		ws.Spec.Jitter = &metav1.Duration{Duration: d.Spec.Jitter}
	}
	data, err := json.Marshal(ws)
	if err != nil {
		return nil, fmt.Errorf("encode the WorkflowSchedule: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("encode the WorkflowSchedule: %w", err)
	}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}

// ValidateDeclaredSchedules checks the schedules the registry's Go workflows declare; the
// manager refuses to start when one cannot be used, as it does for a code-declared webhook.
func ValidateDeclaredSchedules(reg *engine.Registry) error {
	decls, err := RegistrySchedules(reg).DeclaredSchedules(context.Background())
	if err != nil {
		return err
	}
	_, err = desiredSchedules(decls, declaredNamespaceFallback, time.Now())
	return err
}

// declaredKey is the one request of the DeclaredScheduleReconciler: every reconcile syncs the
// whole set.
var declaredKey = types.NamespacedName{Name: "declared-schedules"}

// DeclaredScheduleReconciler keeps one WorkflowSchedule for every declared schedule: it applies
// (server-side, as field manager centaur-declared-schedules) the ones its Source returns and
// deletes the labelled ones it no longer returns, orphaning their runs so that runs in flight
// finish. It syncs at start, whenever Resync is called, and whenever a declared schedule's spec
// is changed or deleted by someone else. A name already used by a WorkflowSchedule that is not
// declared is left alone, with a Warning Event on that schedule.
type DeclaredScheduleReconciler struct {
	client.Client
	// Source returns the declared schedules.
	Source ScheduleSource
	// Namespace is the schedule namespace.
	Namespace string
	// Events records the Warning on a schedule whose name a declaration wants.
	Events recorder.EventRecorder
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time

	resync chan event.GenericEvent
}

// NewDeclaredScheduleReconciler returns a reconciler of source's schedules.
func NewDeclaredScheduleReconciler(c client.Client, source ScheduleSource, namespace string, events recorder.EventRecorder) *DeclaredScheduleReconciler {
	return &DeclaredScheduleReconciler{Client: c, Source: source, Namespace: namespace, Events: events, resync: make(chan event.GenericEvent, 1)}
}

// Resync asks for a sync of the declared schedules soon; call it whenever the source's set
// changed (a workflow file was loaded, changed or removed). It never blocks.
func (r *DeclaredScheduleReconciler) Resync() {
	select {
	case r.resync <- event.GenericEvent{Object: &workflowsv1alpha1.WorkflowSchedule{ObjectMeta: metav1.ObjectMeta{Name: declaredKey.Name}}}:
	default: // a sync is pending already
	}
}

// The REST API's pause and resume patch schedules too, with the manager's identity.
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowschedules,verbs=get;list;watch;create;update;patch;delete

// Reconcile syncs every declared schedule: apply the declared ones, delete the ones gone.
func (r *DeclaredScheduleReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	decls, err := r.Source.DeclaredSchedules(ctx)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("read the declared schedules: %w", err)
	}
	desired, problems := desiredSchedules(decls, r.Namespace, now(r.Clock))
	if problems != nil {
		log.FromContext(ctx).Error(problems, "declared_schedule_invalid: left out until fixed")
	}
	var existing workflowsv1alpha1.WorkflowScheduleList
	if err := r.List(ctx, &existing, client.HasLabels{workflowsv1alpha1.LabelDeclaredBy}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list the declared schedules: %w", err)
	}
	keep := map[types.NamespacedName]bool{}
	var errs []error
	for _, d := range desired {
		keep[d.key] = true
		errs = append(errs, r.apply(ctx, d))
	}
	for i := range existing.Items {
		ws := &existing.Items[i]
		if !keep[client.ObjectKeyFromObject(ws)] {
			errs = append(errs, r.remove(ctx, ws))
		}
	}
	return ctrl.Result{}, errors.Join(errs...)
}

// apply creates or updates one declared schedule, unless its name belongs to a schedule that
// is not declared.
func (r *DeclaredScheduleReconciler) apply(ctx context.Context, d declaredObject) error {
	current := &workflowsv1alpha1.WorkflowSchedule{}
	err := r.Get(ctx, d.key, current)
	switch {
	case err == nil && current.Labels[workflowsv1alpha1.LabelDeclaredBy] == "":
		msg := fmt.Sprintf("%s declares a schedule named %s, which this WorkflowSchedule (not declared by any workflow) holds; the declaration is not applied until the name is free", d.origin, d.key.Name)
		log.FromContext(ctx).Info("declared_schedule_name_taken", "schedule", d.key, "origin", d.origin)
		emit(r.Events, current, corev1.EventTypeWarning, workflowsv1alpha1.ReasonDeclaredScheduleNameTaken, "Declare", "%s", msg)
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("read schedule %s: %w", d.key, err)
	}
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(d.apply), client.FieldOwner(declaredFieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply the schedule %s that %s declares: %w", d.key, d.origin, err)
	}
	if apierrors.IsNotFound(err) {
		log.FromContext(ctx).Info("workflow_schedule_declared", "schedule", d.key, "origin", d.origin)
	}
	return nil
}

// remove deletes a declared schedule that is no longer declared; its runs are orphaned, not
// deleted, so runs in flight finish and finished ones stay readable.
func (r *DeclaredScheduleReconciler) remove(ctx context.Context, ws *workflowsv1alpha1.WorkflowSchedule) error {
	err := r.Delete(ctx, ws, client.PropagationPolicy(metav1.DeletePropagationOrphan))
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete schedule %s/%s, no longer declared: %w", ws.Namespace, ws.Name, err)
	}
	log.FromContext(ctx).Info("workflow_schedule_undeclared", "schedule", client.ObjectKeyFromObject(ws), "was", ws.Annotations[workflowsv1alpha1.AnnotationDeclaredIn])
	return nil
}

// SetupWithManager registers the reconciler; it runs on the leader only, since it writes.
func (r *DeclaredScheduleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	declared := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[workflowsv1alpha1.LabelDeclaredBy] != ""
	})
	toKey := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: declaredKey}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("declaredschedule").
		Watches(&workflowsv1alpha1.WorkflowSchedule{}, toKey, builder.WithPredicates(declared, predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(r.resync, toKey)).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(reconcile.Request{NamespacedName: declaredKey})
			return nil
		})).
		Complete(r)
}

// declaredNamespaceFallback is the namespace of declared webhooks' and schedules' runs when
// neither a flag nor the operator's namespace says one (programs that set up the controllers
// without an operator namespace).
const declaredNamespaceFallback = "default"

// declaredNamespace is where the runs of the webhooks and schedules that the manager's own
// workflows declare live: flag when set, else the operator's own namespace. Not default, where
// every tenant's editors and REST keys would read their envelopes and start them by hand.
func declaredNamespace(flag, operatorNamespace string) string {
	return cmp.Or(flag, operatorNamespace, declaredNamespaceFallback)
}
