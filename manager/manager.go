// Package manager assembles the operator's process: the controllers (the durable engine among
// them), the HTTP API for webhooks, REST calls and the web console, metrics, probes and leader
// election. The manager binary (main.go) runs it with the built-in workflows; a program of your
// own can run it with your workflows added (see Run).
package manager

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"go.starlark.net/starlark"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/webhookserver"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
	"github.com/centaur-dev/workflow-operator/webhookserver/limits"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/webhookserver/routes"
	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// Options are the manager's settings, bound to command-line flags by BindFlags.
type Options struct {
	metricsAddr             string
	metricsSecure           bool
	probeAddr               string
	apiAddr                 string
	leaderElect             bool
	leaderElectionNamespace string
	maxConcurrentReconciles int
	maxResultBytes          int
	inlineResultBytes       int
	maxRunBytes             int
	maxNamespaceBytes       int64
	journalOpenEntries      int
	journalOpenBytes        int
	journalCacheBytes       int64
	deprecatedJournalBytes  int
	eventRetention          time.Duration
	shutdownTimeout         time.Duration
	trustedProxies          string
	codeWebhookNamespace    string
	webhookSlugGrants       string
	secretNamespaces        string
	webhookRunTTL           time.Duration
	maxInFlightDeliveries   int
	maxInFlightRequests     int
	webhookRate             float64
	webhookBurst            int
	apiRate                 float64
	apiBurst                int
	scheduleNamespace       string
	webhookFlushInterval    time.Duration
	agentsConfig            string
	agentConcurrency        int
	zap                     zap.Options

	// The REST API's settings (package webhookserver/restapi).
	apiKeysSecret     string
	eagerStartTimeout time.Duration

	// Workflow files (package workflowfile) and where their revisions live.
	workflowDirs          string
	workflowDirsPoll      time.Duration
	operatorNamespace     string
	workflowFileMaxSteps  uint64
	definitionEgressAllow string
	podCIDRs              string
	serviceCIDRs          string
	revisionGCInterval    time.Duration

	// FileModules are Starlark modules handed to the workflow files of WORKFLOW_DIRS, by
	// the name files use (for example "slack"): how an organisation gives its files
	// capabilities without raw network access. Wrap builtins with side effects in
	// workflowfile.StepOnly. WorkflowDefinitions do not get them.
	FileModules starlark.StringDict
	// The web console's settings (package webhookserver/console).
	consoleSecret      string
	consoleMaxRequests int
	consoleMaxStreams  int
}

// DefaultOperatorNamespace is the operator's namespace when neither --operator-namespace nor
// POD_NAMESPACE says.
const DefaultOperatorNamespace = "centaur-system"

// BindFlags binds o to the manager's flags on fs; call fs.Parse afterwards.
func BindFlags(fs *flag.FlagSet, o *Options) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", false, "Serve metrics over HTTPS and only to clients the Kubernetes API authenticates and authorizes to GET /metrics (TokenReview and SubjectAccessReview); config/default turns it on.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the health (/healthz) and readiness (/readyz) probes bind to.")
	fs.StringVar(&o.apiAddr, "api-bind-address", ":8088", "Address the HTTP API (webhooks and REST under /api, the web console at /) binds to.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader among replicas so one runs the controllers; every replica serves the API.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election lease (default: the pod's namespace).")
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", 16, "How many workflow runs advance in parallel, eager starts of the REST API included; a long step holds one slot.")
	fs.IntVar(&o.maxResultBytes, "max-step-result-bytes", durable.DefaultMaxResultBytes, "Largest JSON result one step may record (results over --inline-result-bytes are stored as WorkflowRunPayloads, in parts of 512 KiB).")
	fs.IntVar(&o.inlineResultBytes, "inline-result-bytes", durable.DefaultInlineResultBytes, "Largest step result kept in the journal itself; larger results go to WorkflowRunPayload objects. At most 262144.")
	fs.IntVar(&o.maxRunBytes, "max-run-bytes", durable.DefaultMaxRunBytes, "Most a run may store in all: its input, journal, payloads and output (etcd's whole default quota is 2 GiB).")
	fs.Int64Var(&o.maxNamespaceBytes, "max-namespace-bytes", controllers.DefaultMaxNamespaceBytes, "Most the runs of one namespace may store in all; a run whose growth would pass it fails with NamespaceBudgetExceeded. Negative: no limit.")
	fs.IntVar(&o.journalOpenEntries, "journal-open-entries", controllers.DefaultOpenEntries, "A run's final journal entries in status are sealed into a WorkflowRunSegment once there are this many (or --journal-open-bytes).")
	fs.IntVar(&o.journalOpenBytes, "journal-open-bytes", controllers.DefaultOpenBytes, "A run's final journal entries in status are sealed into a WorkflowRunSegment once they take this many bytes (or --journal-open-entries).")
	fs.Int64Var(&o.journalCacheBytes, "journal-cache-bytes", controllers.DefaultJournalCacheBytes, "Memory for sealed segments, large results and the runs the manager wrote last (which spares a read when a sleeping run wakes).")
	fs.IntVar(&o.deprecatedJournalBytes, "max-journal-bytes", 0, "Deprecated and ignored: journals are sealed into WorkflowRunSegments; --max-run-bytes bounds what a run stores.")
	fs.DurationVar(&o.eventRetention, "event-retention", controllers.DefaultEventRetention, "How long a WorkflowEvent is kept so that runs reaching their wait late still receive it.")
	fs.DurationVar(&o.shutdownTimeout, "graceful-shutdown-timeout", 30*time.Second, "How long running steps and requests may finish at shutdown.")
	fs.StringVar(&o.trustedProxies, "trusted-proxies", "", "Comma-separated CIDRs (or IPs) of the reverse proxies in front of the API; only their X-Forwarded-For/X-Real-Ip count for a webhook's source_ip.")
	fs.StringVar(&o.codeWebhookNamespace, "code-webhook-namespace", controllers.DefaultCodeWebhookNamespace, "Namespace of the runs and of the Secret centaur-webhook-<slug> of webhooks that workflows declare in code.")
	fs.StringVar(&o.secretNamespaces, "secret-namespaces", "", "Comma-separated namespaces whose Secrets the manager reads (webhook signing secrets), besides its own and those of --agents-config and --api-keys-secret; each needs a RoleBinding to the ClusterRole centaur-secret-reader. * reads every namespace (single-tenant clusters).")
	fs.StringVar(&o.webhookSlugGrants, "webhook-slug-grants", "", "Comma-separated namespace=slug grants (each a name, a prefix ending in * or *) that let WebhookEndpoints and WorkflowDefinitions claim webhook slugs; empty: only the manager's own workflows serve webhooks. Example: team-a=team-a-*,ops=github-issues. *=* lets any namespace claim any slug (single-tenant clusters).")
	fs.DurationVar(&o.webhookRunTTL, "webhook-run-ttl", webhookserver.DefaultWebhookRunTTL, "How long a run started by a webhook is kept after it finished (its spec.ttlSecondsAfterFinished); a negative value keeps them.")
	fs.IntVar(&o.maxInFlightDeliveries, "max-inflight-deliveries", webhookserver.DefaultMaxInFlight, "Webhook deliveries one replica handles at once (each may hold a 1 MiB body before its signature is checked); more get 503 with Retry-After.")
	fs.IntVar(&o.maxInFlightRequests, "max-inflight-requests", webhookserver.DefaultMaxInFlight, "REST API requests one replica handles at once; more get 503 with Retry-After.")
	fs.Float64Var(&o.webhookRate, "webhook-rate", webhookserver.DefaultDeliveryRate.PerSecond, "Deliveries per second one webhook slug may take, sustained; more get 429 with Retry-After.")
	fs.IntVar(&o.webhookBurst, "webhook-burst", webhookserver.DefaultDeliveryRate.Burst, "Deliveries one webhook slug may take at once before --webhook-rate applies.")
	fs.StringVar(&o.scheduleNamespace, "schedule-namespace", controllers.DefaultScheduleNamespace, "Namespace of the WorkflowSchedules (and their runs) that Go workflows and WORKFLOW_DIRS files declare.")
	fs.Float64Var(&o.apiRate, "api-rate", restapi.DefaultKeyRate.PerSecond, "REST API requests per second one API key may make on a replica, sustained; more get 429 with Retry-After.")
	fs.IntVar(&o.apiBurst, "api-burst", restapi.DefaultKeyRate.Burst, "REST API requests one API key may make at once before --api-rate applies.")
	fs.DurationVar(&o.webhookFlushInterval, "webhook-counter-flush-interval", controllers.DefaultWebhookCounterFlushInterval, "How often webhook delivery counters are written to WebhookEndpoint status.")
	fs.StringVar(&o.agentsConfig, "agents-config", controllers.DefaultAgentsConfig, "ConfigMap (namespace/name) whose agents.yaml chooses each agent's backend; API keys come from Secrets in its namespace. See docs/agents.md.")
	fs.IntVar(&o.agentConcurrency, "agent-concurrency", controllers.DefaultAgentConcurrency, "How many agent turns are answered in parallel; a slow model holds one slot, never a workflow run's.")
	fs.StringVar(&o.apiKeysSecret, "api-keys-secret", restapi.DefaultKeysSecret.String(), "namespace/name of the Secret holding the REST API's key hashes; re-read every few seconds, so a rotated key works without a restart.")
	fs.DurationVar(&o.eagerStartTimeout, "eager-start-timeout", restapi.DefaultEagerStartTimeout, "How long POST /api/workflows/runs with eager_start waits for the run's first segment before answering.")
	fs.StringVar(&o.workflowDirs, "workflow-dirs", os.Getenv("WORKFLOW_DIRS"), "Colon-separated directories of workflow files (*.star), reloaded when they change; default: the WORKFLOW_DIRS environment variable.")
	fs.DurationVar(&o.workflowDirsPoll, "workflow-dirs-poll-interval", catalog.DefaultDirsPollInterval, "How often --workflow-dirs are checked for changed files.")
	fs.StringVar(&o.operatorNamespace, "operator-namespace", cmp.Or(os.Getenv("POD_NAMESPACE"), DefaultOperatorNamespace), "The operator's own namespace: revisions of WORKFLOW_DIRS files and the Secrets their webhooks name live here; default: POD_NAMESPACE.")
	fs.Uint64Var(&o.workflowFileMaxSteps, "workflow-file-max-steps", workflowfile.DefaultMaxSteps, "Starlark execution steps one execution of a workflow file's handler (or one call of a step function) may take before the run fails with ExecutionLimitExceeded.")
	fs.StringVar(&o.definitionEgressAllow, "definition-egress-allow", "", "Comma-separated CIDRs that WorkflowDefinitions' http may reach although they are private, loopback or cluster addresses.")
	fs.StringVar(&o.podCIDRs, "pod-cidrs", "", "Comma-separated pod CIDRs of the cluster, which WorkflowDefinitions' http may not reach (private ranges are refused anyway).")
	fs.StringVar(&o.serviceCIDRs, "service-cidrs", "", "Comma-separated service CIDRs of the cluster, which WorkflowDefinitions' http may not reach.")
	fs.DurationVar(&o.revisionGCInterval, "revision-gc-interval", controllers.DefaultRevisionGCInterval, "How often stored workflow revisions that no unfinished run needs are deleted.")
	fs.StringVar(&o.consoleSecret, "console-secret", console.DefaultSecret.String(), "namespace/name of the Secret whose key \"session-key\" (32 bytes or more) seals the web console's sign-in cookies, the same on every replica; without it each replica uses a key of its own. See docs/console.md.")
	fs.IntVar(&o.consoleMaxRequests, "console-max-requests", console.DefaultMaxRequests, "How many web console page requests a replica serves at once; more wait briefly, then get 503. Apart from the REST API.")
	fs.IntVar(&o.consoleMaxStreams, "console-max-streams", console.DefaultMaxStreams, "How many web console live streams a replica keeps open at once; pages beyond it retry later.")
	o.zap.BindFlags(fs)
	fs.BoolVar(&o.zap.Development, "dev", false, "Human-readable console logs instead of JSON (shorthand for --zap-devel).")
}

// Run runs the manager until SIGINT or SIGTERM: the built-in workflows plus extra, the
// controllers, the API server, metrics and probes.
func Run(o Options, extra ...durable.Workflow) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	log := ctrl.Log.WithName("setup")

	if o.inlineResultBytes > 256<<10 {
		return errors.New("--inline-result-bytes must keep a run's status small: use at most 262144 (larger results go to WorkflowRunPayloads)")
	}
	if o.deprecatedJournalBytes != 0 {
		log.Info("--max-journal-bytes is deprecated and ignored: journals are sealed into WorkflowRunSegments; use --max-run-bytes to bound what a run stores")
	}
	keysSecret, err := restapi.ParseKeysSecret(o.apiKeysSecret)
	if err != nil {
		return fmt.Errorf("--api-keys-secret: %w", err)
	}

	consoleSecret, err := restapi.ParseSecretRef(o.consoleSecret, console.DefaultSecret)
	if err != nil {
		return fmt.Errorf("--console-secret: %w", err)
	}

	trustedProxies, err := webhookserver.ParseCIDRs(o.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	webhookRoutes := routes.NewTable()
	slugGrants, err := routes.ParseGrants(o.webhookSlugGrants)
	if err != nil {
		return fmt.Errorf("--webhook-slug-grants: %w", err)
	}

	agentsConfig, err := controllers.ParseAgentsConfig(o.agentsConfig)
	if err != nil {
		return fmt.Errorf("--agents-config: %w", err)
	}

	scheme := controllers.NewScheme()
	secretScope := o.secretScope(agentsConfig.Namespace, keysSecret.Namespace, consoleSecret.Namespace)

	registry := durable.NewRegistry()
	if err := workflows.Register(registry); err != nil {
		return fmt.Errorf("register built-in workflows: %w", err)
	}
	if err := registry.Register(extra...); err != nil {
		return fmt.Errorf("register workflows: %w", err)
	}
	if err := controllers.ValidateGoWebhooks(registry); err != nil {
		return fmt.Errorf("webhooks declared in Go: %w", err)
	}
	for _, w := range registry.Workflows() {
		log.Info("workflow_loaded", "workflow", w.Name(), "source", string(catalog.SourceGo), "description", w.Description())
	}
	fileConfigs, err := o.fileConfigs()
	if err != nil {
		return err
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("find a kubeconfig: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 o.metricsOptions(),
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "workflow-operator.workflows.centaur.dev",
		LeaderElectionNamespace: o.leaderElectionNamespace,
		GracefulShutdownTimeout: &o.shutdownTimeout,
		Cache:                   cacheOptions(secretScope),
	})
	if err != nil {
		return fmt.Errorf("create the manager: %w", err)
	}

	workflowCatalog := controllers.NewWorkflowCatalog(mgr, registry, catalog.Options{
		OperatorNamespace: o.operatorNamespace,
		Trusted:           fileConfigs.trusted,
		Sandboxed:         fileConfigs.sandboxed,
	})
	dirs := &catalog.Dirs{Paths: splitDirs(o.workflowDirs), Catalog: workflowCatalog, Interval: o.workflowDirsPoll, Logger: ctrl.Log.WithName("workflows")}
	dirs.Load() // before anything reconciles, so that no run finds its workflow missing
	if err := mgr.Add(dirs); err != nil {
		return fmt.Errorf("add the workflow directory watcher: %w", err)
	}

	ctrls, err := controllers.Setup(mgr, controllers.Options{
		Workflows:          workflowCatalog,
		RevisionGCInterval: o.revisionGCInterval,
		Limits:             durable.Limits{MaxResultBytes: o.maxResultBytes, InlineResultBytes: o.inlineResultBytes, MaxRunBytes: o.maxRunBytes},
		Storage: controllers.StorageOptions{
			OpenEntries: o.journalOpenEntries, OpenBytes: o.journalOpenBytes,
			MaxNamespaceBytes: o.maxNamespaceBytes, CacheBytes: o.journalCacheBytes,
		},
		MaxConcurrentReconciles:     o.maxConcurrentReconciles,
		EventRetention:              o.eventRetention,
		Agents:                      controllers.AgentOptions{ConfigMap: agentsConfig, Concurrency: o.agentConcurrency},
		WebhookRoutes:               webhookRoutes,
		CodeWebhookNamespace:        o.codeWebhookNamespace,
		WebhookSlugGrants:           slugGrants,
		SecretScope:                 secretScope,
		ScheduleNamespace:           o.scheduleNamespace,
		WebhookCounterFlushInterval: o.webhookFlushInterval,
	})
	if err != nil {
		return err
	}

	api := webhookserver.New(webhookserver.Config{
		Addr:            o.apiAddr,
		Client:          mgr.GetClient(),
		Reader:          mgr.GetAPIReader(),
		Workflows:       workflowCatalog,
		Engine:          ctrls.Runs,
		Elected:         mgr.Elected(),
		Logger:          ctrl.Log.WithName("api"),
		Routes:          webhookRoutes,
		TrustedProxies:  trustedProxies,
		ShutdownTimeout: o.shutdownTimeout,
		WebhookRunTTL:   o.webhookRunTTL,

		MaxInFlightDeliveries: o.maxInFlightDeliveries,
		MaxInFlightRequests:   o.maxInFlightRequests,
		DeliveryRate:          limits.Rate{PerSecond: o.webhookRate, Burst: o.webhookBurst},
		APIKeyRate:            limits.Rate{PerSecond: o.apiRate, Burst: o.apiBurst},

		APIKeysSecret:     keysSecret,
		EagerStartTimeout: o.eagerStartTimeout,

		Informers: mgr.GetCache(),
		Console:   webhookserver.ConsoleConfig{Secret: consoleSecret, MaxRequests: o.consoleMaxRequests, MaxStreams: o.consoleMaxStreams},
	})
	if err := mgr.Add(api); err != nil {
		return fmt.Errorf("add the API server: %w", err)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add the readiness check: %w", err)
	}

	log.Info("starting manager", "api", o.apiAddr, "metrics", o.metricsAddr, "probes", o.probeAddr, "leaderElection", o.leaderElect)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("run the manager: %w", err)
	}
	return nil
}

// fileConfigs are the compile configurations of trusted files and of tenants' definitions.
type fileConfigs struct {
	trusted, sandboxed *workflowfile.Config
}

// fileConfigs builds the configurations from the flags: the egress policy of definitions
// refuses the default private ranges plus the cluster's pod and service ranges, except what
// --definition-egress-allow opens.
func (o Options) fileConfigs() (fileConfigs, error) {
	deny := workflowfile.DefaultDeniedRanges()
	for _, f := range []struct{ name, value string }{{"--pod-cidrs", o.podCIDRs}, {"--service-cidrs", o.serviceCIDRs}} {
		prefixes, err := webhookserver.ParseCIDRs(f.value)
		if err != nil {
			return fileConfigs{}, fmt.Errorf("%s: %w", f.name, err)
		}
		deny = append(deny, prefixes...)
	}
	allow, err := webhookserver.ParseCIDRs(o.definitionEgressAllow)
	if err != nil {
		return fileConfigs{}, fmt.Errorf("--definition-egress-allow: %w", err)
	}
	return fileConfigs{
		trusted: &workflowfile.Config{HTTP: workflowfile.NewHTTPClient(nil), Modules: o.FileModules, MaxSteps: o.workflowFileMaxSteps,
			CheckSchedule: controllers.CheckScheduleSpec},
		sandboxed: &workflowfile.Config{HTTP: workflowfile.NewHTTPClient(&workflowfile.Egress{Deny: deny, Allow: allow}),
			MaxSteps: o.workflowFileMaxSteps, CheckSchedule: controllers.CheckScheduleSpec},
	}, nil
}

// splitDirs splits a colon-separated list of directories, dropping empty entries.
func splitDirs(s string) []string {
	var out []string
	for _, d := range strings.Split(s, ":") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// metricsOptions serve metrics in plain HTTP, or, with --metrics-secure, over HTTPS (a
// self-signed certificate unless one is mounted) behind the API server's authentication and
// authorization, as kubebuilder's projects do: a scraper needs a token allowed to GET /metrics.
func (o Options) metricsOptions() metricsserver.Options {
	opts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.metricsSecure}
	if o.metricsSecure {
		opts.FilterProvider = MetricsAuth
	}
	return opts
}

// secretScope is the namespaces whose Secrets the manager reads: its own, the agents'
// configuration's, the API keys', the console session's, and --secret-namespaces.
func (o Options) secretScope(own ...string) controllers.SecretScope {
	scope := append(controllers.SecretScope{o.operatorNamespace}, own...)
	for _, ns := range strings.Split(o.secretNamespaces, ",") {
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
