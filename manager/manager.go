// Package manager assembles the operator's process: the controllers (the durable engine among
// them), the HTTP API for webhooks and REST calls, metrics, probes and leader election. The
// manager binary (main.go) runs it with the built-in workflows; a program of your own can run
// it with your workflows added (see Run).
package manager

import (
	"errors"
	"flag"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/webhookserver"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/webhookserver/routes"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// Options are the manager's settings, bound to command-line flags by BindFlags.
type Options struct {
	metricsAddr             string
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
	webhookFlushInterval    time.Duration
	agentsConfig            string
	agentConcurrency        int
	zap                     zap.Options

	// The REST API's settings (package webhookserver/restapi).
	apiKeysSecret     string
	eagerStartTimeout time.Duration
}

// BindFlags binds o to the manager's flags on fs; call fs.Parse afterwards.
func BindFlags(fs *flag.FlagSet, o *Options) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the health (/healthz) and readiness (/readyz) probes bind to.")
	fs.StringVar(&o.apiAddr, "api-bind-address", ":8088", "Address the HTTP API (webhooks and REST, under /api) binds to.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader among replicas so one runs the controllers; every replica serves the API.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election lease (default: the pod's namespace).")
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", 16, "How many workflow runs advance in parallel; a long step holds one slot.")
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
	fs.DurationVar(&o.webhookFlushInterval, "webhook-counter-flush-interval", controllers.DefaultWebhookCounterFlushInterval, "How often webhook delivery counters are written to WebhookEndpoint status.")
	fs.StringVar(&o.agentsConfig, "agents-config", controllers.DefaultAgentsConfig, "ConfigMap (namespace/name) whose agents.yaml chooses each agent's backend; API keys come from Secrets in its namespace. See docs/agents.md.")
	fs.IntVar(&o.agentConcurrency, "agent-concurrency", controllers.DefaultAgentConcurrency, "How many agent turns are answered in parallel; a slow model holds one slot, never a workflow run's.")
	fs.StringVar(&o.apiKeysSecret, "api-keys-secret", restapi.DefaultKeysSecret.String(), "namespace/name of the Secret holding the REST API's key hashes; re-read every few seconds, so a rotated key works without a restart.")
	fs.DurationVar(&o.eagerStartTimeout, "eager-start-timeout", restapi.DefaultEagerStartTimeout, "How long POST /api/workflows/runs with eager_start waits for the run's first segment before answering.")
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

	trustedProxies, err := webhookserver.ParseTrustedProxies(o.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	webhookRoutes := routes.NewTable()

	agentsConfig, err := controllers.ParseAgentsConfig(o.agentsConfig)
	if err != nil {
		return fmt.Errorf("--agents-config: %w", err)
	}

	scheme := controllers.NewScheme()

	registry := durable.NewRegistry()
	if err := workflows.Register(registry); err != nil {
		return fmt.Errorf("register built-in workflows: %w", err)
	}
	if err := registry.Register(extra...); err != nil {
		return fmt.Errorf("register workflows: %w", err)
	}
	for _, w := range registry.Workflows() {
		log.Info("workflow_loaded", "workflow", w.Name(), "description", w.Description())
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("find a kubeconfig: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "workflow-operator.workflows.centaur.dev",
		LeaderElectionNamespace: o.leaderElectionNamespace,
		GracefulShutdownTimeout: &o.shutdownTimeout,
		// The cache keeps runs lean: no inputs, journals or outputs (see runstore.LeanRun).
		Cache: runstore.CacheOptions(),
	})
	if err != nil {
		return fmt.Errorf("create the manager: %w", err)
	}

	ctrls, err := controllers.Setup(mgr, controllers.Options{
		Registry: registry,
		Limits:   durable.Limits{MaxResultBytes: o.maxResultBytes, InlineResultBytes: o.inlineResultBytes, MaxRunBytes: o.maxRunBytes},
		Storage: controllers.StorageOptions{
			OpenEntries: o.journalOpenEntries, OpenBytes: o.journalOpenBytes,
			MaxNamespaceBytes: o.maxNamespaceBytes, CacheBytes: o.journalCacheBytes,
		},
		MaxConcurrentReconciles:     o.maxConcurrentReconciles,
		EventRetention:              o.eventRetention,
		Agents:                      controllers.AgentOptions{ConfigMap: agentsConfig, Concurrency: o.agentConcurrency},
		WebhookRoutes:               webhookRoutes,
		CodeWebhookNamespace:        o.codeWebhookNamespace,
		WebhookCounterFlushInterval: o.webhookFlushInterval,
	})
	if err != nil {
		return err
	}

	api := webhookserver.New(webhookserver.Config{
		Addr:           o.apiAddr,
		Client:         mgr.GetClient(),
		Reader:         mgr.GetAPIReader(),
		Registry:       registry,
		Engine:         ctrls.Runs,
		Elected:        mgr.Elected(),
		Logger:         ctrl.Log.WithName("api"),
		Routes:         webhookRoutes,
		TrustedProxies: trustedProxies,

		APIKeysSecret:     keysSecret,
		EagerStartTimeout: o.eagerStartTimeout,
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
