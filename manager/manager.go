// Package manager assembles the operator's process: the controllers (the durable engine among
// them), the HTTP API for webhooks, REST calls and the web console, metrics, probes and leader
// election. The manager binary (main.go) runs it with the built-in workflows; a program of your
// own can run it with your workflows added (see Run). Its settings are Options, in groups that
// bind their own flags (options.go).
package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/crashguard"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/limits"
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/schedule"
	"github.com/centaur-dev/workflow-operator/sharding"
	"github.com/centaur-dev/workflow-operator/sharding/placement"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
	"github.com/centaur-dev/workflow-operator/webhookserver/ledger"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflowfile/loadprobe"
	"github.com/centaur-dev/workflow-operator/workflowfile/sandbox"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// Run runs the manager until SIGINT or SIGTERM: the built-in workflows plus extra, the
// controllers, the API server, metrics and probes. It goes through its phases in order, each a
// short method of process: parse the flags, load the workflows' code, build the manager, fill
// the catalog, set up the controllers, add the HTTP API, and start. With --ensure-secrets it
// stops after parsing and creates the Secrets instead.
func Run(o Options, extra ...durable.Workflow) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.Zap)))
	p := &process{o: o, log: ctrl.Log.WithName("setup")}
	defer p.close()
	if err := p.parse(); err != nil {
		return err
	}
	p.limitMemory()
	if o.EnsureSecrets {
		return ensureSecrets(p.keysSecret, p.consoleSecret)
	}
	for _, phase := range []func() error{
		func() error { return p.loadCode(extra) },
		p.setupTracing,
		p.newManager,
		p.fillCatalog,
		p.setupControllers,
		p.addAPI,
	} {
		if err := phase(); err != nil {
			return err
		}
	}
	return p.start()
}

// limitMemory sets the Go runtime's soft memory limit from the container's (setMemoryLimit)
// and logs it; a limit that cannot be read leaves the runtime's default (none), logged.
func (p *process) limitMemory() {
	limit, err := setMemoryLimit(p.o)
	switch {
	case err != nil:
		p.log.Error(err, "no soft memory limit: set GOMEMLIMIT, or "+MemoryLimitEnv+" to the container's memory limit in bytes")
	case limit > 0:
		p.log.Info("soft memory limit from the container's", "bytes", limit)
	}
}

// process is one run of the manager as Run builds it: what each phase makes for the next ones,
// and what has to be closed when Run returns.
type process struct {
	o       Options
	log     logr.Logger
	closers []func()

	// parse
	keysSecret, consoleSecret types.NamespacedName
	trustedProxies            []netip.Prefix
	slugGrants                routes.Grants
	agentsConfig              types.NamespacedName
	shards                    *placement.Sharding
	secretScope               controllers.SecretScope

	// loadCode
	registry *engine.Registry
	files    fileConfigs
	sandbox  *sandbox.Pool

	// newManager
	cfg     *rest.Config
	quota   *runquota.Gate
	crashes *crashguard.Guard
	mgr     ctrl.Manager

	// fillCatalog
	catalog *catalog.Catalog

	// setupTracing: nil when tracing is off
	tracing *tracing.Provider

	// setupControllers
	routes *routes.Table
	ledger *ledger.Ledger
	ctrls  *controllers.Controllers
}

// onClose has f run when Run returns, after what later phases added.
func (p *process) onClose(f func()) { p.closers = append(p.closers, f) }

// close runs what the phases registered with onClose, last first.
func (p *process) close() {
	for _, f := range slices.Backward(p.closers) {
		f()
	}
}

// parse checks the flags and turns them into the values the later phases take. With
// --ensure-secrets it stops after the Secrets' names, all that one-shot needs.
func (p *process) parse() error {
	o := p.o
	if o.InlineResultBytes > 256<<10 {
		return errors.New("--inline-result-bytes must keep a run's status small: use at most 262144 (larger results go to WorkflowRunPayloads)")
	}
	if o.DeprecatedJournalBytes != 0 {
		p.log.Info("--max-journal-bytes is deprecated and ignored: journals are sealed into WorkflowRunSegments; use --max-run-bytes to bound what a run stores")
	}
	var err error
	if p.keysSecret, err = restapi.ParseKeysSecret(o.APIKeysSecret); err != nil {
		return fmt.Errorf("--api-keys-secret: %w", err)
	}
	if p.consoleSecret, err = restapi.ParseSecretRef(o.ConsoleSecret, console.DefaultSecret); err != nil {
		return fmt.Errorf("--console-secret: %w", err)
	}
	if o.EnsureSecrets {
		return nil
	}
	if err := console.CheckTraceURL(o.ConsoleTraceURL); err != nil {
		return fmt.Errorf("--console-trace-url: %w", err)
	}
	if p.trustedProxies, err = webhookserver.ParseCIDRs(o.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if p.slugGrants, err = routes.ParseGrants(o.WebhookSlugGrants); err != nil {
		return fmt.Errorf("--webhook-slug-grants: %w", err)
	}
	if p.agentsConfig, err = controllers.ParseAgentsConfig(o.AgentsConfig); err != nil {
		return fmt.Errorf("--agents-config: %w", err)
	}
	if p.shards, err = o.shards(); err != nil {
		return err
	}
	p.secretScope = o.secretScope(p.agentsConfig.Namespace, p.keysSecret.Namespace, p.consoleSecret.Namespace)
	return nil
}

// loadCode registers the built-in workflows and extra, logging each (workflow_loaded), and
// builds what executes workflow files: their compile configurations, the load probe and the
// definitions' sandbox.
func (p *process) loadCode(extra []durable.Workflow) error {
	p.registry = engine.NewRegistry()
	if err := workflows.Register(p.registry); err != nil {
		return fmt.Errorf("register built-in workflows: %w", err)
	}
	if err := p.registry.Register(extra...); err != nil {
		return fmt.Errorf("register workflows: %w", err)
	}
	if err := controllers.ValidateGoWebhooks(p.registry); err != nil {
		return fmt.Errorf("webhooks declared in Go: %w", err)
	}
	for _, w := range p.registry.Workflows() {
		p.log.Info("workflow_loaded", "workflow", w.Name(), "source", string(catalog.SourceGo), "description", w.Description())
	}
	var err error
	if p.files, err = p.o.fileConfigs(); err != nil {
		return err
	}
	if p.o.DefinitionLoadMemory > 0 {
		prober, err := loadprobe.New(p.o.DefinitionLoadMemory, loadprobe.DefaultTimeout, p.files.sandboxed)
		if err != nil {
			return err
		}
		p.onClose(prober.Close)
		p.files.sandboxed.Probe = prober.Check
	}
	if p.sandbox, err = p.o.definitionSandbox(p.files); err != nil {
		return err
	}
	if p.sandbox != nil {
		p.onClose(p.sandbox.Close)
	}
	return nil
}

// newManager builds the controller-runtime manager: its cache (lean runs, Secrets of the
// scope, this shard's runs under --sharding), its client (behind the run quota), leader
// election, metrics and probes. It opens the crash guard first, before any run executes.
func (p *process) newManager() error {
	o := p.o
	var err error
	if p.cfg, err = ctrl.GetConfig(); err != nil {
		return fmt.Errorf("find a kubeconfig: %w", err)
	}
	scheme := controllers.NewScheme()
	p.quota = runquota.New(runquota.Limits{NamespaceRuns: o.MaxNamespaceRuns,
		NamespaceBytes: cmp.Or(o.MaxNamespaceBytes, runstore.DefaultMaxNamespaceBytes), TotalBytes: o.MaxTotalBytes})
	crashes, err := o.openCrashGuard(p.cfg, scheme)
	if err != nil {
		return err
	}
	if crashes != nil {
		p.onClose(crashes.Close)
	}
	p.crashes = crashes
	p.mgr, err = ctrl.NewManager(p.cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 o.metricsOptions(),
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "workflow-operator.workflows.centaur.dev",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		LeaseDuration:           &o.LeaseDuration,
		RenewDeadline:           &o.RenewDeadline,
		RetryPeriod:             &o.RetryPeriod,
		GracefulShutdownTimeout: &o.ShutdownTimeout,
		// Run returns, and the process exits, once the manager stopped: a replica that stops
		// gives the lease up at once instead of making the next leader wait for it to expire.
		LeaderElectionReleaseOnCancel: true,
		// Under --sharding the cache holds this shard's runs and turns only, and the client
		// places the runs it creates on the ring.
		Cache: p.shards.CacheOptions(cacheOptions(p.secretScope)),
		// Every run the manager creates passes the quota first.
		NewClient: func(config *rest.Config, options client.Options) (client.Client, error) {
			c, err := p.shards.NewClient(config, options)
			if err != nil {
				return nil, err
			}
			return p.quota.Client(c), nil
		},
	})
	if err != nil {
		return fmt.Errorf("create the manager: %w", err)
	}
	if err := p.mgr.Add(newMemoryReturner(ctrl.Log.WithName("memory"))); err != nil {
		return fmt.Errorf("add the memory returner: %w", err)
	}
	return nil
}

// fillCatalog starts the Python workers and builds the workflow catalog: the registry's Go
// workflows, the files of --workflow-dirs (loaded now, before anything reconciles, so that no
// run finds its workflow missing, then watched) and the WorkflowDefinitions.
func (p *process) fillCatalog() error {
	o := p.o
	pool := pyworker.New(pyworker.Config{
		Python: o.PythonInterpreter, Workers: o.PythonWorkers, PackageDir: o.PythonPackageDir,
		CacheRuns: o.PythonCacheRuns, CacheRSSBytes: o.PythonCacheRSSBytes, HandlerDeadline: o.PythonHandlerDeadline,
		Logger: ctrl.Log.WithName("python"),
	})
	p.onClose(pool.Close)
	if err := metrics.Registry.Register(pool); err != nil {
		return fmt.Errorf("register the Python workers' metrics: %w", err)
	}
	p.catalog = controllers.NewWorkflowCatalog(p.mgr, p.registry, catalog.Options{
		OperatorNamespace: o.OperatorNamespace,
		Trusted:           p.files.trusted,
		Sandboxed:         p.files.sandboxed,
		Python:            &pyworkflow.Loader{Pool: pool, CheckSchedule: schedule.CheckDeclaration, MaxWorkerKills: o.PythonMaxWorkerKills},
	})
	dirs := &catalog.Dirs{Paths: catalog.SplitDirs(o.WorkflowDirs), Catalog: p.catalog, Interval: o.WorkflowDirsPoll, Logger: ctrl.Log.WithName("workflows")}
	dirs.Load()
	if err := p.mgr.Add(dirs); err != nil {
		return fmt.Errorf("add the workflow directory watcher: %w", err)
	}
	return nil
}

// setupControllers adds the delivery ledger and every controller to the manager, and binds
// the run quota to the controllers' view of runs.
func (p *process) setupControllers() error {
	o := p.o
	var err error
	if p.ledger, err = o.deliveryLedger(p.mgr); err != nil {
		return err
	}
	p.routes = routes.NewTable()
	p.ctrls, err = controllers.Setup(p.mgr, controllers.Options{
		Workflows:          p.catalog,
		BeforeTTLDelete:    p.ledger.RecordRun,
		Tracing:            p.tracing,
		RevisionGCInterval: o.RevisionGCInterval,
		Limits: engine.Limits{MaxResultBytes: o.MaxResultBytes, InlineResultBytes: o.InlineResultBytes, MaxRunBytes: o.MaxRunBytes,
			MaxChildren: o.MaxChildren, DefaultStepTimeout: o.DefaultStepTimeout, MaxStepTimeout: o.MaxStepTimeout},
		Storage: runstore.Options{
			OpenEntries: o.JournalOpenEntries, OpenBytes: o.JournalOpenBytes,
			MaxNamespaceBytes: o.MaxNamespaceBytes, CacheBytes: o.JournalCacheBytes,
		},
		MaxConcurrentReconciles:     o.MaxConcurrentReconciles,
		Crashes:                     p.crashes,
		Sandbox:                     p.sandbox,
		DefinitionCompileRate:       limits.Rate{PerSecond: o.DefinitionCompileRate, Burst: controllers.DefaultDefinitionCompileRate.Burst},
		EventRetention:              o.EventRetention,
		Agents:                      controllers.AgentOptions{ConfigMap: p.agentsConfig, Concurrency: o.AgentConcurrency},
		WebhookRoutes:               p.routes,
		CodeWebhookNamespace:        o.CodeWebhookNamespace,
		WebhookSlugGrants:           p.slugGrants,
		SecretScope:                 p.secretScope,
		ScheduleNamespace:           o.ScheduleNamespace,
		WebhookCounterFlushInterval: o.WebhookFlushInterval,
		Sharding:                    p.shards,
	})
	if err != nil {
		return err
	}
	p.quota.Bind(p.ctrls.RunView)
	if p.ledger != nil {
		if err := p.mgr.Add(p.ledger.Keeper(p.ctrls.RunView)); err != nil {
			return fmt.Errorf("add the delivery ledger's keeper: %w", err)
		}
	}
	return nil
}

// setupTracing builds the tracer provider the OTEL_* variables describe (off, nil, unless they
// name an OTLP endpoint: see docs/observability.md) and has it shut down, exporting its last
// spans, when Run returns, after the manager stopped.
func (p *process) setupTracing() error {
	provider, err := tracing.FromEnv(context.Background())
	if err != nil {
		return fmt.Errorf("set up tracing: %w", err)
	}
	if provider == nil {
		return nil
	}
	p.log.Info("tracing runs", "endpoint", tracingEndpoint())
	p.tracing = provider
	p.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
		defer cancel()
		if err := provider.Shutdown(ctx); err != nil {
			p.log.Error(err, "export the last spans")
		}
	})
	return nil
}

// tracingShutdownTimeout bounds the export of the last spans when the manager stops.
const tracingShutdownTimeout = 5 * time.Second

// tracingEndpoint is the OTLP endpoint the variables name, for the log.
func tracingEndpoint() string {
	if v := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		return v
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
}

// addAPI adds the HTTP API server (webhooks, REST and the console), and the health and
// readiness checks, to the manager.
func (p *process) addAPI() error {
	o := p.o
	if err := webhookserver.IndexTriggerKeys(context.Background(), p.ctrls.RunView); err != nil {
		return err
	}
	api := webhookserver.New(webhookserver.Config{
		Addr:            o.APIAddr,
		Client:          p.mgr.GetClient(),
		Reader:          p.mgr.GetAPIReader(),
		Workflows:       p.catalog,
		Engine:          p.ctrls.Runs,
		Logger:          ctrl.Log.WithName("api"),
		Routes:          p.routes,
		TrustedProxies:  p.trustedProxies,
		ShutdownTimeout: o.ShutdownTimeout,
		WebhookRunTTL:   o.WebhookRunTTL,

		MaxInFlightDeliveries: o.MaxInFlightDeliveries,
		MaxInFlightRequests:   o.MaxInFlightRequests,
		DeliveryRate:          limits.Rate{PerSecond: o.WebhookRate, Burst: o.WebhookBurst},
		BodyReadTimeout:       o.WebhookBodyTimeout,
		UnverifiedRate:        limits.Rate{PerSecond: o.UnverifiedRate, Burst: o.UnverifiedBurst},
		APIKeyRate:            limits.Rate{PerSecond: o.APIRate, Burst: o.APIBurst},

		APIKeysSecret:     p.keysSecret,
		EagerStartTimeout: o.EagerStartTimeout,
		TraceContext:      p.tracing != nil,

		Runs:        p.ctrls.RunView,
		DeletedRuns: p.ledger,
		Informers:   p.ctrls.RunView,
		Console: webhookserver.ConsoleConfig{Secret: p.consoleSecret, MaxRequests: o.ConsoleMaxRequests, MaxStreams: o.ConsoleMaxStreams,
			TraceURL: o.ConsoleTraceURL},
	})
	if err := p.mgr.Add(api); err != nil {
		return fmt.Errorf("add the API server: %w", err)
	}
	if err := p.mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add the health check: %w", err)
	}
	if err := p.mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add the readiness check: %w", err)
	}
	return nil
}

// start runs the manager until SIGINT or SIGTERM; under --sharding inside the replica's shard
// lease (runShard).
func (p *process) start() error {
	o := p.o
	p.log.Info("starting manager", "api", o.APIAddr, "metrics", o.MetricsAddr, "probes", o.ProbeAddr, "leaderElection", o.LeaderElect, "shard", p.shards.Shard())
	ctx := ctrl.SetupSignalHandler()
	if p.shards == nil {
		if err := p.mgr.Start(ctx); err != nil {
			return fmt.Errorf("run the manager: %w", err)
		}
		return nil
	}
	return o.runShard(ctx, p.mgr, p.cfg, p.shards)
}

// deliveryLedger builds the ledger of deleted webhook runs in the operator's namespace and
// adds it to mgr; nil when --webhook-identity-retention is 0. It reads past the cache: a
// cache of ConfigMaps would watch every ConfigMap of the cluster.
func (o Options) deliveryLedger(mgr ctrl.Manager) (*ledger.Ledger, error) {
	if o.WebhookIdentityRetention <= 0 {
		return nil, nil
	}
	l := ledger.New(ledger.Config{
		Namespace: o.OperatorNamespace, Retention: o.WebhookIdentityRetention,
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Logger: ctrl.Log.WithName("delivery-ledger"),
	})
	if err := mgr.Add(l); err != nil {
		return nil, fmt.Errorf("add the delivery ledger: %w", err)
	}
	return l, nil
}

// shards returns the replica's sharding state under --sharding, nil otherwise.
func (o Options) shards() (*placement.Sharding, error) {
	if !o.Sharding {
		return nil, nil
	}
	if !o.LeaderElect {
		return nil, errors.New("--sharding needs --leader-elect: one elected replica runs the sharder, which assigns and moves runs, and the schedules")
	}
	shards, err := placement.New(placement.Options{
		Shard: o.ShardName, LeaseNamespace: o.shardLeaseNamespace(), LeaseDuration: o.LeaseDuration,
	})
	if err != nil {
		return nil, fmt.Errorf("--sharding: %w", err)
	}
	return shards, nil
}

// shardLeaseNamespace is where shard leases live: the leader election's namespace when given,
// else the operator's.
func (o Options) shardLeaseNamespace() string {
	return cmp.Or(o.LeaderElectionNamespace, o.OperatorNamespace)
}

// runShard holds the replica's shard lease around the manager: it waits for the lease before
// anything executes, runs the manager, and releases the lease once the manager stopped (every
// execution ended), so the sharder moves the shard's runs at once. A lease that cannot be
// renewed stops the process at once, without waiting for executions: by then the sharder may
// have given the shard's runs to others.
func (o Options) runShard(ctx context.Context, mgr ctrl.Manager, cfg *rest.Config, shards *placement.Sharding) error {
	log := ctrl.Log.WithName("shard")
	holder, err := sharding.NewHolder(sharding.HolderConfig{
		Config: cfg, Namespace: o.shardLeaseNamespace(), Shard: shards.Shard(),
		LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod, Logger: log,
	})
	if err != nil {
		return err
	}
	leaseCtx, release := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		release()
		<-holder.Done()
	}()
	go holder.Run(leaseCtx)
	log.Info("waiting for the shard lease", "shard", shards.Shard(), "namespace", o.shardLeaseNamespace(), "identity", holder.Identity())
	select {
	case <-ctx.Done():
		return nil
	case <-holder.Acquired():
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("run the manager: %w", err)
		}
		return nil
	case <-holder.Lost():
		return fmt.Errorf("lost the lease of shard %s (not renewed within --lease-renew-deadline): stopping at once, since the sharder gives the shard's runs to other replicas", shards.Shard())
	}
}

// openCrashGuard opens the crash guard's directory and counts the strikes of the runs a dead
// process left there, before any run executes; nil when --crash-guard-dir is empty.
func (o Options) openCrashGuard(cfg *rest.Config, scheme *runtime.Scheme) (*crashguard.Guard, error) {
	if o.CrashGuardDir == "" {
		return nil, nil
	}
	guard, suspects, err := crashguard.Open(o.CrashGuardDir)
	if err != nil {
		return nil, fmt.Errorf("--crash-guard-dir: %w", err)
	}
	if len(suspects) == 0 {
		return guard, nil
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("build a client to count crash strikes: %w", err)
	}
	for _, s := range suspects {
		ctrl.Log.WithName("setup").Info("run_suspected_of_crash", "namespace", s.Namespace, "run", s.Name, "alone", s.Alone, "strikes", s.Strikes())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := controllers.CountCrashStrikes(ctx, c, guard, suspects); err != nil {
		return nil, err
	}
	return guard, nil
}

// fileConfigs are the compile configurations of trusted files and of tenants' definitions,
// and the egress policy of the latter.
type fileConfigs struct {
	trusted, sandboxed *workflowfile.Config
	egress             workflowfile.Egress
}

// definitionSandbox is the pool of worker processes that execute the definitions' runs, with
// the definitions' compile configuration; nil when --definition-execution-memory is 0.
func (o Options) definitionSandbox(files fileConfigs) (*sandbox.Pool, error) {
	if o.DefinitionExecMemory == 0 {
		return nil, nil
	}
	c := files.sandboxed
	return sandbox.New(sandbox.Config{Memory: o.DefinitionExecMemory, MaxSteps: c.MaxSteps, MaxValueBytes: c.MaxValueBytes,
		MaxParallelBranches: c.MaxParallelBranches, MaxResponseBytes: c.MaxResponseBytes, Deny: files.egress.Deny, Allow: files.egress.Allow})
}

// fileConfigs builds the configurations from the flags: the egress policy of definitions
// refuses the default private ranges plus the cluster's pod, service and node ranges, except
// what --definition-egress-allow opens.
func (o Options) fileConfigs() (fileConfigs, error) {
	deny := workflowfile.DefaultDeniedRanges()
	for _, f := range []struct{ name, value string }{{"--pod-cidrs", o.PodCIDRs}, {"--service-cidrs", o.ServiceCIDRs}, {"--node-cidrs", o.NodeCIDRs}} {
		prefixes, err := webhookserver.ParseCIDRs(f.value)
		if err != nil {
			return fileConfigs{}, fmt.Errorf("%s: %w", f.name, err)
		}
		deny = append(deny, prefixes...)
	}
	allow, err := webhookserver.ParseCIDRs(o.DefinitionEgressAllow)
	if err != nil {
		return fileConfigs{}, fmt.Errorf("--definition-egress-allow: %w", err)
	}
	egress := workflowfile.Egress{Deny: deny, Allow: allow}
	return fileConfigs{
		egress: egress,
		trusted: &workflowfile.Config{HTTP: workflowfile.NewHTTPClient(nil), Modules: o.FileModules, MaxSteps: o.WorkflowFileMaxSteps,
			CheckSchedule: schedule.CheckDeclaration, MaxValueBytes: o.MaxResultBytes},
		sandboxed: &workflowfile.Config{HTTP: workflowfile.NewHTTPClient(&egress),
			MaxSteps: o.WorkflowFileMaxSteps, CheckSchedule: schedule.CheckDeclaration, MaxValueBytes: o.MaxResultBytes,
			MaxParallelBranches: o.DefinitionMaxBranches},
	}, nil
}

// metricsOptions serve metrics in plain HTTP, or, with --metrics-secure, over HTTPS (a
// self-signed certificate unless one is mounted) behind the API server's authentication and
// authorization, as kubebuilder's projects do: a scraper needs a token allowed to GET /metrics.
func (o Options) metricsOptions() metricsserver.Options {
	opts := metricsserver.Options{BindAddress: o.MetricsAddr, SecureServing: o.MetricsSecure}
	if o.MetricsSecure {
		opts.FilterProvider = MetricsAuth
	}
	return opts
}

// secretScope is the namespaces whose Secrets the manager reads: its own, the agents'
// configuration's, the API keys', the console session's, and --secret-namespaces.
func (o Options) secretScope(own ...string) controllers.SecretScope {
	scope := append(controllers.SecretScope{o.OperatorNamespace}, own...)
	for _, ns := range strings.Split(o.SecretNamespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			scope = append(scope, ns)
		}
	}
	slices.Sort(scope)
	return slices.Compact(scope)
}

// cacheOptions are the manager's cache options: runs kept lean (no inputs, journals or outputs;
// see runstore.LeanRun) and Secrets cached only in the namespaces the scope serves.
func cacheOptions(secrets controllers.SecretScope) cache.Options {
	opts := runstore.CacheOptions()
	maps.Copy(opts.ByObject, secrets.CacheOptions())
	return opts
}
