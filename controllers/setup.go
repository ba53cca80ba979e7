package controllers

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/crashguard"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/limits"
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/sharding/placement"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflowfile/sandbox"
)

// NewScheme returns a scheme with the built-in Kubernetes kinds and the operator's kinds: what
// the manager and every client of the operator's objects need.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(workflowsv1alpha1.AddToScheme(scheme))
	return scheme
}

// Options configure the operator's controllers.
type Options struct {
	// Workflows is the catalog of the workflows the manager can run: Go workflows, workflow
	// files from WORKFLOW_DIRS and WorkflowDefinitions.
	Workflows *catalog.Catalog
	// RevisionGCInterval is how often stored workflow revisions no run needs are deleted
	// (DefaultRevisionGCInterval when zero).
	RevisionGCInterval time.Duration
	// Limits bound step results and what a run stores, and group batched steps.
	Limits engine.Limits
	// Storage says how runs' journals are kept (sealed segments, payloads, budgets, memory).
	Storage runstore.Options
	// MaxConcurrentReconciles is how many runs execute in parallel.
	MaxConcurrentReconciles int
	// UnknownWorkflowGrace is how long a new run waits for its workflow to be defined before it
	// fails with UnknownWorkflow (DefaultUnknownWorkflowGrace when zero).
	UnknownWorkflowGrace time.Duration
	// Crashes, when set, guards the executions of WorkflowDefinitions' runs against code that
	// kills the process (see package crashguard and CountCrashStrikes).
	Crashes *crashguard.Guard
	// DefinitionCompileRate bounds how often each namespace's definitions are compiled again
	// after edits, on each replica (DefaultDefinitionCompileRate when zero).
	DefinitionCompileRate limits.Rate
	// Sandbox, when set, executes the runs of WorkflowDefinitions in its bounded worker
	// processes instead of the manager's (see package sandbox); Crashes then has nothing to
	// guard.
	Sandbox *sandbox.Pool
	// EventRetention is how long a WorkflowEvent is kept for runs that reach their wait late.
	EventRetention time.Duration
	// BeforeTTLDelete, when set, is called with a finished run before its TTL deletes it (see
	// WorkflowRunReconciler.BeforeTTLDelete): the manager records webhook runs in the
	// delivery ledger there.
	BeforeTTLDelete func(context.Context, *workflowsv1alpha1.WorkflowRun) error
	// Tracing, when set, makes each run a trace (see package tracing); nil is tracing off.
	Tracing *tracing.Provider
	// Agents configure the AgentRun controller: where the agents' configuration lives and
	// how many turns are answered in parallel.
	Agents AgentOptions

	// WebhookRoutes is the API server's webhook route table. When set, the WebhookEndpoint
	// controller and the code-declared webhooks feed it; nil leaves webhooks out.
	WebhookRoutes *routes.Table
	// SecretScope holds the namespaces whose Secrets the manager reads; the manager's cache
	// of Secrets must be restricted to the same (SecretScope.CacheOptions). Empty means none
	// but the ones the agents' configuration and the API keys name directly.
	SecretScope SecretScope
	// WebhookSlugGrants say which namespaces may claim which slugs with a WebhookEndpoint or a
	// WorkflowDefinition's webhook; the manager's own workflows need none.
	WebhookSlugGrants routes.Grants
	// CodeWebhookNamespace is where code-declared webhooks create runs (the operator's
	// namespace when empty, see declaredNamespace).
	CodeWebhookNamespace string
	// WebhookCounterFlushInterval is how often delivery counters are written to endpoint
	// status (DefaultWebhookCounterFlushInterval when zero).
	WebhookCounterFlushInterval time.Duration

	// ScheduleNamespace is where the schedules that Go workflows and WORKFLOW_DIRS files
	// declare live (the operator's namespace when empty, see declaredNamespace).
	ScheduleNamespace string
	// DeclaredSchedules is where declared schedules come from; nil means the Registry's
	// (RegistrySchedules).
	DeclaredSchedules ScheduleSource

	// Sharding, when set, makes this replica one shard of the ring (--sharding): it executes
	// the runs and answers the agent turns of its shard, the elected replica runs the sharder,
	// and every replica follows every run in a lean view. The manager must be built with its
	// CacheOptions and NewClient. Nil is the single-leader mode: the leader executes every run.
	Sharding *placement.Sharding

	// wrapRuns lets tests observe the WorkflowRun reconciler (counting reconciles).
	wrapRuns func(reconcile.Reconciler) reconcile.Reconciler
	// schedules lets tests drive the WorkflowSchedule reconciler's clock.
	schedules scheduleTestHooks
}

// DefaultEventRetention keeps events for a day.
const DefaultEventRetention = 24 * time.Hour

// Controllers are the operator's reconcilers, set up on one manager.
type Controllers struct {
	// Runs is the WorkflowRun reconciler; the API server uses it for eager starts.
	Runs *WorkflowRunReconciler
	// Agents is the AgentRun reconciler.
	Agents *AgentRunReconciler
	// DeclaredSchedules keeps the WorkflowSchedules that workflows declare; call its Resync
	// when the set of declared schedules changed.
	DeclaredSchedules *DeclaredScheduleReconciler
	// RunView holds every run, whatever its shard: the web console's run index follows it.
	RunView cache.Cache
}

// setupDefinitions registers the WorkflowDefinition controller, the loader that reads every
// definition once at start, and the collector of unused revisions.
func setupDefinitions(mgr ctrl.Manager, o Options, view cache.Cache) (*WorkflowDefinitionReconciler, error) {
	definitions := &WorkflowDefinitionReconciler{Client: mgr.GetClient(), Catalog: o.Workflows, Routes: o.WebhookRoutes,
		Grants: o.WebhookSlugGrants, Events: mgr.GetEventRecorder("workflowdefinition-controller"),
		compiler: newDefinitionCompiler(func() *workflowfile.Config { return o.Workflows.Config(workflowfile.OriginDefinition) }, o.DefinitionCompileRate)}
	if err := definitions.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up the WorkflowDefinition controller: %w", err)
	}
	if err := mgr.Add(&DefinitionsLoader{Reconciler: definitions, Cache: mgr.GetCache()}); err != nil {
		return nil, fmt.Errorf("add the WorkflowDefinition loader: %w", err)
	}
	interval := o.RevisionGCInterval
	if interval <= 0 {
		interval = DefaultRevisionGCInterval
	}
	if err := mgr.Add(&RevisionCollector{Client: mgr.GetClient(), Runs: view, Reader: mgr.GetAPIReader(), Catalog: o.Workflows, Interval: interval}); err != nil {
		return nil, fmt.Errorf("add the revision collector: %w", err)
	}
	return definitions, nil
}

// Setup registers every controller of the operator with mgr.
func Setup(mgr ctrl.Manager, o Options) (*Controllers, error) {
	if o.EventRetention <= 0 {
		o.EventRetention = DefaultEventRetention
	}
	view, err := o.Sharding.RunView(mgr)
	if err != nil {
		return nil, err
	}
	wake := make(chan event.GenericEvent, 1024)
	runs := &WorkflowRunReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Workflows:               o.Workflows,
		Events:                  mgr.GetEventRecorder("workflowrun-controller"),
		Limits:                  o.Limits,
		Storage:                 o.Storage,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		UnknownWorkflowGrace:    o.UnknownWorkflowGrace,
		Crashes:                 o.Crashes,
		Sandbox:                 o.Sandbox,
		BeforeTTLDelete:         o.BeforeTTLDelete,
		Tracing:                 o.Tracing,
		wake:                    wake,
		view:                    view,
		shards:                  o.Sharding,
	}
	var rec reconcile.Reconciler = runs
	if o.wrapRuns != nil {
		rec = o.wrapRuns(runs)
	}
	rec = o.Sharding.Gate("run", mgr.GetClient(), mgr.GetAPIReader(), func() client.Object { return &workflowsv1alpha1.WorkflowRun{} },
		runs.claims.tryClaim, nil, rec)
	if err := runs.setup(mgr, rec); err != nil {
		return nil, fmt.Errorf("set up the WorkflowRun controller: %w", err)
	}
	events := &WorkflowEventReconciler{Client: mgr.GetClient(), Retention: o.EventRetention, Runs: view}
	if err := events.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up the WorkflowEvent controller: %w", err)
	}
	if err := (&eventWaker{Client: mgr.GetClient(), wake: wake}).setup(mgr, o.Sharding); err != nil {
		return nil, fmt.Errorf("set up the second wake-up of events: %w", err)
	}
	definitions, err := setupDefinitions(mgr, o, view)
	if err != nil {
		return nil, err
	}
	if err := setupWebhooks(mgr, o, definitions); err != nil {
		return nil, err
	}
	agentRuns, err := setupAgents(mgr, o.Agents, o.Sharding)
	if err != nil {
		return nil, err
	}
	declared, err := setupSchedules(mgr, o, view)
	if err != nil {
		return nil, err
	}
	if err := o.Sharding.Setup(mgr, view); err != nil {
		return nil, err
	}
	return &Controllers{Runs: runs, Agents: agentRuns, DeclaredSchedules: declared, RunView: view}, nil
}
