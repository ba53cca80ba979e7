// Package manager assembles the operator's process: the controllers (the durable engine among
// them), the HTTP API for webhooks, REST calls and the web console, metrics, probes and leader
// election. The manager binary (main.go) runs it with the built-in workflows; a program of your
// own can run it with your workflows added (see Run).
package manager

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"k8s.io/apimachinery/pkg/runtime"
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
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/runstore"
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

// Options are the manager's settings. Each field is the flag named beside it (`manager --help`
// describes them all); BindFlags binds them to a FlagSet, and DefaultOptions gives their
// defaults to a program that calls Run without flags:
//
//	o := manager.DefaultOptions()
//	o.WorkflowDirs = "/etc/workflows"
//	err := manager.Run(o, myWorkflows...)
type Options struct {
	MetricsAddr             string        // --metrics-bind-address
	MetricsSecure           bool          // --metrics-secure
	ProbeAddr               string        // --health-probe-bind-address
	APIAddr                 string        // --api-bind-address
	LeaderElect             bool          // --leader-elect
	LeaderElectionNamespace string        // --leader-election-namespace
	LeaseDuration           time.Duration // --lease-duration
	RenewDeadline           time.Duration // --lease-renew-deadline
	RetryPeriod             time.Duration // --lease-retry-period
	Sharding                bool          // --sharding
	ShardName               string        // --shard-name
	MaxConcurrentReconciles int           // --max-concurrent-reconciles
	MaxResultBytes          int           // --max-step-result-bytes
	InlineResultBytes       int           // --inline-result-bytes
	MaxRunBytes             int           // --max-run-bytes
	MaxChildren             int           // --max-children-per-run
	DefaultStepTimeout      time.Duration // --default-step-timeout
	MaxStepTimeout          time.Duration // --max-step-timeout
	MaxNamespaceRuns        int           // --max-namespace-runs
	MaxTotalBytes           int64         // --max-total-bytes
	MaxNamespaceBytes       int64         // --max-namespace-bytes
	JournalOpenEntries      int           // --journal-open-entries
	JournalOpenBytes        int           // --journal-open-bytes
	JournalCacheBytes       int64         // --journal-cache-bytes
	DeprecatedJournalBytes  int           // --max-journal-bytes
	EventRetention          time.Duration // --event-retention
	ShutdownTimeout         time.Duration // --graceful-shutdown-timeout
	TrustedProxies          string        // --trusted-proxies
	CodeWebhookNamespace    string        // --code-webhook-namespace
	WebhookSlugGrants       string        // --webhook-slug-grants
	SecretNamespaces        string        // --secret-namespaces
	WebhookRunTTL           time.Duration // --webhook-run-ttl
	MaxInFlightDeliveries   int           // --max-inflight-deliveries
	MaxInFlightRequests     int           // --max-inflight-requests
	WebhookRate             float64       // --webhook-rate
	WebhookBodyTimeout      time.Duration // --webhook-body-timeout
	UnverifiedRate          float64       // --webhook-unverified-rate
	UnverifiedBurst         int           // --webhook-unverified-burst
	WebhookBurst            int           // --webhook-burst
	APIRate                 float64       // --api-rate
	APIBurst                int           // --api-burst
	ScheduleNamespace       string        // --schedule-namespace
	WebhookFlushInterval    time.Duration // --webhook-counter-flush-interval
	AgentsConfig            string        // --agents-config
	AgentConcurrency        int           // --agent-concurrency
	// Zap are the logging options (--zap-* flags and --dev).
	Zap zap.Options

	// How long deleted webhook runs' deliveries are remembered (package webhookserver/ledger).
	WebhookIdentityRetention time.Duration // --webhook-identity-retention

	// The REST API's settings (package webhookserver/restapi).
	APIKeysSecret     string        // --api-keys-secret
	EagerStartTimeout time.Duration // --eager-start-timeout

	// Workflow files (package workflowfile) and where their revisions live.
	WorkflowDirs          string        // --workflow-dirs
	WorkflowDirsPoll      time.Duration // --workflow-dirs-poll-interval
	OperatorNamespace     string        // --operator-namespace
	WorkflowFileMaxSteps  uint64        // --workflow-file-max-steps
	DefinitionEgressAllow string        // --definition-egress-allow
	DefinitionMaxBranches int           // --definition-max-parallel-branches
	DefinitionLoadMemory  uint64        // --definition-load-memory
	DefinitionExecMemory  uint64        // --definition-execution-memory
	DefinitionCompileRate float64       // --definition-compile-rate
	CrashGuardDir         string        // --crash-guard-dir
	PodCIDRs              string        // --pod-cidrs
	ServiceCIDRs          string        // --service-cidrs
	NodeCIDRs             string        // --node-cidrs
	RevisionGCInterval    time.Duration // --revision-gc-interval

	// Python workflow files (packages pyworkflow and pyworker): the worker processes.
	PythonInterpreter     string        // --python-interpreter
	PythonWorkers         int           // --python-workers
	PythonPackageDir      string        // --python-package-dir
	PythonCacheRuns       int           // --python-cache-runs
	PythonCacheRSSBytes   int64         // --python-cache-rss-bytes
	PythonHandlerDeadline time.Duration // --python-handler-deadline
	PythonMaxWorkerKills  int           // --python-max-worker-kills

	// FileModules are Starlark modules handed to the workflow files of WORKFLOW_DIRS, by
	// the name files use (for example "slack"): how an organisation gives its files
	// capabilities without raw network access. Wrap builtins with side effects in
	// workflowfile.StepOnly. WorkflowDefinitions do not get them.
	FileModules starlark.StringDict
	// The web console's settings (package webhookserver/console).
	ConsoleSecret      string // --console-secret
	ConsoleMaxRequests int    // --console-max-requests
	ConsoleMaxStreams  int    // --console-max-streams

	// EnsureSecrets makes Run a one-shot: create the Secrets of --api-keys-secret and
	// --console-secret unless they exist (EnsureSecrets), then return.
	EnsureSecrets bool // --ensure-secrets
}

// DefaultOperatorNamespace is the operator's namespace when neither --operator-namespace nor
// POD_NAMESPACE says.
const DefaultOperatorNamespace = "centaur-system"

// DefaultOptions returns the options with every flag at its default (environment variables
// such as WORKFLOW_DIRS and POD_NAMESPACE included), for programs that configure the manager in
// Go rather than on the command line.
func DefaultOptions() Options {
	var o Options
	BindFlags(flag.NewFlagSet("manager", flag.ContinueOnError), &o)
	return o
}

// BindFlags binds o to the manager's flags on fs; call fs.Parse afterwards.
func BindFlags(fs *flag.FlagSet, o *Options) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", false, "Serve metrics over HTTPS and only to clients the Kubernetes API authenticates and authorizes to GET /metrics (TokenReview and SubjectAccessReview); config/default turns it on.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address the health (/healthz) and readiness (/readyz) probes bind to.")
	fs.StringVar(&o.APIAddr, "api-bind-address", ":8088", "Address the HTTP API (webhooks and REST under /api, the web console at /) binds to.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "Elect a leader among replicas so one runs the controllers; every replica serves the API.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election lease (default: the pod's namespace) and, with --sharding, of the shard leases (default: --operator-namespace).")
	fs.DurationVar(&o.LeaseDuration, "lease-duration", sharding.DefaultLeaseDuration, "How long the leader's lease, and with --sharding each shard's lease, lasts without renewal: a dead replica's runs resume elsewhere after about this long. Whole seconds.")
	fs.DurationVar(&o.RenewDeadline, "lease-renew-deadline", sharding.DefaultRenewDeadline, "How long a replica keeps trying to renew its lease before it gives up (and stops); below --lease-duration.")
	fs.DurationVar(&o.RetryPeriod, "lease-retry-period", sharding.DefaultRetryPeriod, "How often leases are renewed, and tried for by the others.")
	fs.BoolVar(&o.Sharding, "sharding", false, "Every replica executes runs: each holds a Lease as a shard, runs are spread over the live shards by consistent hashing (label workflows.centaur.dev/shard) and move when shards come and go. Needs --leader-elect (the sharder and the schedules run on the elected replica). See docs/scaling.md.")
	fs.StringVar(&o.ShardName, "shard-name", defaultShardName(), "This replica's shard with --sharding: the name of its Lease and of its runs' shard label, unique among replicas (default: POD_NAME, else the host name, which is the pod's name).")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", 16, "How many workflow runs execute in parallel, eager starts of the REST API included; a long step holds one slot.")
	fs.IntVar(&o.MaxResultBytes, "max-step-result-bytes", engine.DefaultMaxResultBytes, "Largest JSON result one step may record (results over --inline-result-bytes are stored as WorkflowRunPayloads, in parts of 512 KiB).")
	fs.IntVar(&o.InlineResultBytes, "inline-result-bytes", engine.DefaultInlineResultBytes, "Largest step result kept in the journal itself; larger results go to WorkflowRunPayload objects. At most 262144.")
	fs.IntVar(&o.MaxNamespaceRuns, "max-namespace-runs", runquota.DefaultMaxNamespaceRuns, "Most WorkflowRuns one namespace may hold when the manager creates another (webhooks, REST, console, child runs, schedules): past it the API answers 429 quota_exceeded. 0 means no bound. Runs made with kubectl are bounded by a ResourceQuota (config/quota).")
	fs.Int64Var(&o.MaxTotalBytes, "max-total-bytes", runquota.DefaultMaxTotalBytes, "Most bytes all runs together may store (their recordedBytes) when the manager creates another: past it the API answers 507 storage_full. Keep it under etcd's quota (2 GiB by default). 0 means no bound.")
	fs.DurationVar(&o.DefaultStepTimeout, "default-step-timeout", DefaultStepTimeout, "Bound on each attempt of a step that sets no timeout of its own (Go, Starlark and Python steps alike), so that a hung call gives its execution slot back. 0 means none.")
	fs.DurationVar(&o.MaxStepTimeout, "max-step-timeout", MaxStepTimeout, "Bound on each attempt of every step, whatever timeout it asks for (and so on http calls inside steps). 0 means none.")
	fs.IntVar(&o.MaxChildren, "max-children-per-run", engine.DefaultMaxChildren, "Most child runs one run may start; the next fails the run with TooManyChildren, so that one request (a fan-out over a list someone sent) cannot create objects without bound.")
	fs.IntVar(&o.MaxRunBytes, "max-run-bytes", engine.DefaultMaxRunBytes, "Most a run may store in all: its input, journal, payloads and output (etcd's whole default quota is 2 GiB).")
	fs.Int64Var(&o.MaxNamespaceBytes, "max-namespace-bytes", runstore.DefaultMaxNamespaceBytes, "Most the runs of one namespace may store in all; a run whose growth would pass it fails with NamespaceBudgetExceeded. Negative: no limit.")
	fs.IntVar(&o.JournalOpenEntries, "journal-open-entries", runstore.DefaultOpenEntries, "A run's final journal entries in status are sealed into a WorkflowRunSegment once there are this many (or --journal-open-bytes).")
	fs.IntVar(&o.JournalOpenBytes, "journal-open-bytes", runstore.DefaultOpenBytes, "A run's final journal entries in status are sealed into a WorkflowRunSegment once they take this many bytes (or --journal-open-entries).")
	fs.Int64Var(&o.JournalCacheBytes, "journal-cache-bytes", runstore.DefaultJournalCacheBytes, "Memory for sealed segments, large results and the runs the manager wrote last (which spares a read when a sleeping run wakes).")
	fs.IntVar(&o.DeprecatedJournalBytes, "max-journal-bytes", 0, "Deprecated and ignored: journals are sealed into WorkflowRunSegments; --max-run-bytes bounds what a run stores.")
	fs.DurationVar(&o.EventRetention, "event-retention", controllers.DefaultEventRetention, "How long a WorkflowEvent is kept so that runs reaching their wait late still receive it.")
	fs.DurationVar(&o.ShutdownTimeout, "graceful-shutdown-timeout", 30*time.Second, "How long running steps and requests may finish at shutdown.")
	fs.StringVar(&o.TrustedProxies, "trusted-proxies", "", "Comma-separated CIDRs (or IPs) of the reverse proxies in front of the API; only their X-Forwarded-For/X-Real-Ip count for a webhook's source_ip.")
	fs.StringVar(&o.CodeWebhookNamespace, "code-webhook-namespace", "", "Namespace of the runs of the webhooks that Go workflows and WORKFLOW_DIRS files declare. Default: the operator's namespace (--operator-namespace), which tenants do not edit; a REST key sees those runs only if it lists that namespace.")
	fs.StringVar(&o.SecretNamespaces, "secret-namespaces", "", "Comma-separated namespaces whose Secrets the manager reads (webhook signing secrets), besides its own and those of --agents-config and --api-keys-secret; each needs a RoleBinding to the ClusterRole centaur-secret-reader. * reads every namespace (single-tenant clusters).")
	fs.StringVar(&o.WebhookSlugGrants, "webhook-slug-grants", "", "Comma-separated namespace=slug grants (each a name, a prefix ending in * or *) that let WebhookEndpoints and WorkflowDefinitions claim webhook slugs; empty: only the manager's own workflows serve webhooks. Example: team-a=team-a-*,ops=github-issues. *=* lets any namespace claim any slug (single-tenant clusters).")
	fs.DurationVar(&o.WebhookRunTTL, "webhook-run-ttl", webhookserver.DefaultWebhookRunTTL, "How long a run started by a webhook is kept after it finished (its spec.ttlSecondsAfterFinished); a negative value keeps them.")
	fs.DurationVar(&o.WebhookIdentityRetention, "webhook-identity-retention", ledger.DefaultRetention, "How long the identity of a deleted webhook run is kept (in ConfigMaps labelled workflows.centaur.dev/delivery-ledger in --operator-namespace), so that its delivery, replayed or redelivered, is answered 200 and starts nothing; up to a day more, as the ledger is kept by the day. 0 forgets a delivery with its run.")
	fs.IntVar(&o.MaxInFlightDeliveries, "max-inflight-deliveries", webhookserver.DefaultMaxInFlight, "Webhook deliveries one replica handles at once (each may hold a 1 MiB body before its signature is checked); more get 503 with Retry-After.")
	fs.IntVar(&o.MaxInFlightRequests, "max-inflight-requests", webhookserver.DefaultMaxInFlight, "REST API requests one replica handles at once; more get 503 with Retry-After.")
	fs.DurationVar(&o.WebhookBodyTimeout, "webhook-body-timeout", webhookserver.DefaultBodyReadTimeout, "How long a delivery's body may take to arrive once its headers passed; slower ones get 408.")
	fs.Float64Var(&o.UnverifiedRate, "webhook-unverified-rate", webhookserver.DefaultUnverifiedRate.PerSecond, "Deliveries per second, sustained, that one client address (see --trusted-proxies) may send that fail their signature check or whose body comes too slowly; past it its deliveries get 429 before their body is read. Verified deliveries are charged to --webhook-rate instead.")
	fs.IntVar(&o.UnverifiedBurst, "webhook-unverified-burst", webhookserver.DefaultUnverifiedRate.Burst, "Deliveries failing their signature check one client address may send at once before --webhook-unverified-rate applies.")
	fs.Float64Var(&o.WebhookRate, "webhook-rate", webhookserver.DefaultDeliveryRate.PerSecond, "Verified deliveries per second one webhook slug may take, sustained; more get 429 with Retry-After.")
	fs.IntVar(&o.WebhookBurst, "webhook-burst", webhookserver.DefaultDeliveryRate.Burst, "Deliveries one webhook slug may take at once before --webhook-rate applies.")
	fs.StringVar(&o.ScheduleNamespace, "schedule-namespace", "", "Namespace of the WorkflowSchedules (and their runs) that Go workflows and WORKFLOW_DIRS files declare. Default: the operator's namespace (--operator-namespace).")
	fs.Float64Var(&o.APIRate, "api-rate", restapi.DefaultKeyRate.PerSecond, "REST API requests per second one API key may make on a replica, sustained; more get 429 with Retry-After.")
	fs.IntVar(&o.APIBurst, "api-burst", restapi.DefaultKeyRate.Burst, "REST API requests one API key may make at once before --api-rate applies.")
	fs.DurationVar(&o.WebhookFlushInterval, "webhook-counter-flush-interval", controllers.DefaultWebhookCounterFlushInterval, "How often webhook delivery counters are written to WebhookEndpoint status.")
	fs.StringVar(&o.AgentsConfig, "agents-config", controllers.DefaultAgentsConfig, "ConfigMap (namespace/name) whose agents.yaml chooses each agent's backend; API keys come from Secrets in its namespace. See docs/agents.md.")
	fs.IntVar(&o.AgentConcurrency, "agent-concurrency", controllers.DefaultAgentConcurrency, "How many agent turns are answered in parallel; a slow model holds one slot, never a workflow run's.")
	fs.StringVar(&o.APIKeysSecret, "api-keys-secret", restapi.DefaultKeysSecret.String(), "namespace/name of the Secret holding the REST API's key hashes; re-read every few seconds, so a rotated key works without a restart.")
	fs.DurationVar(&o.EagerStartTimeout, "eager-start-timeout", restapi.DefaultEagerStartTimeout, "How long POST /api/workflows/runs with eager_start waits for the run's first segment before answering.")
	fs.StringVar(&o.WorkflowDirs, "workflow-dirs", os.Getenv("WORKFLOW_DIRS"), "Colon-separated directories of workflow files (*.py and *.star), reloaded when they change; a later directory's workflow overrides an earlier one's of the same name. Default: the WORKFLOW_DIRS environment variable.")
	fs.DurationVar(&o.WorkflowDirsPoll, "workflow-dirs-poll-interval", catalog.DefaultDirsPollInterval, "How often --workflow-dirs are checked for changed files.")
	fs.StringVar(&o.OperatorNamespace, "operator-namespace", cmp.Or(os.Getenv("POD_NAMESPACE"), DefaultOperatorNamespace), "The operator's own namespace: revisions of WORKFLOW_DIRS files and the Secrets their webhooks name live here; default: POD_NAMESPACE.")
	fs.Uint64Var(&o.WorkflowFileMaxSteps, "workflow-file-max-steps", workflowfile.DefaultMaxSteps, "Starlark execution steps one execution of a workflow file's handler (or one call of a step function) may take before the run fails with ExecutionLimitExceeded.")
	fs.Float64Var(&o.DefinitionCompileRate, "definition-compile-rate", controllers.DefaultDefinitionCompileRate.PerSecond, "Compiles per second of one namespace's edited WorkflowDefinitions on each replica, after a burst of 100; edits made meanwhile are compiled together. An edit that leaves a definition's source and modules as they were compiles nothing.")
	fs.Uint64Var(&o.DefinitionExecMemory, "definition-execution-memory", sandbox.DefaultMemory, "Bytes of memory the runs of WorkflowDefinitions may use together in the sandbox process that executes them (a run that was executing when a worker died executes again alone, in a worker of its own, with this much). A run whose code needs more fails with Quarantined and never reaches the manager's memory. 0 executes them in the manager's own process, guarded only by --crash-guard-dir.")
	fs.StringVar(&o.CrashGuardDir, "crash-guard-dir", filepath.Join(os.TempDir(), "centaur-crash-guard"), "Directory, kept across restarts of the manager's container (an emptyDir), where the manager notes which WorkflowDefinitions' runs execute, so that a run whose code keeps killing the process fails with Quarantined instead of crash-looping the replicas. Empty turns the guard off.")
	fs.Uint64Var(&o.DefinitionLoadMemory, "definition-load-memory", loadprobe.DefaultMemory, "Bytes of memory a WorkflowDefinition's load (its top level) may use. Each definition is loaded first in a child process bounded to this much; one that needs more reports MemoryLimitExceeded instead of taking the manager down. 0 turns the check off.")
	fs.IntVar(&o.DefinitionMaxBranches, "definition-max-parallel-branches", workflowfile.DefaultMaxParallelBranches, "Most branches one ctx.parallel call of a WorkflowDefinition may start (each runs on a goroutine of its own); a call with more fails its run. 0 means no bound.")
	fs.StringVar(&o.DefinitionEgressAllow, "definition-egress-allow", "", "Comma-separated CIDRs that WorkflowDefinitions' http may reach although they are private, loopback or cluster addresses.")
	fs.StringVar(&o.PodCIDRs, "pod-cidrs", "", "Comma-separated pod CIDRs of the cluster, which WorkflowDefinitions' http may not reach (private ranges are refused anyway).")
	fs.StringVar(&o.ServiceCIDRs, "service-cidrs", "", "Comma-separated service CIDRs of the cluster, which WorkflowDefinitions' http may not reach.")
	fs.StringVar(&o.NodeCIDRs, "node-cidrs", "", "Comma-separated CIDRs of the cluster's nodes (kubelets, node ports), which WorkflowDefinitions' http may not reach.")
	fs.DurationVar(&o.RevisionGCInterval, "revision-gc-interval", controllers.DefaultRevisionGCInterval, "How often stored workflow revisions that no unfinished run needs are deleted.")
	fs.StringVar(&o.PythonInterpreter, "python-interpreter", pyworker.DefaultPython, "The CPython (3.9 or later) that runs Python workflow files: a path, or a name looked up in PATH.")
	fs.IntVar(&o.PythonWorkers, "python-workers", pyworker.DefaultWorkers, "Python worker processes; each runs the handler code of its share of the runs one turn at a time, and their step functions on threads. Each may use up to --python-cache-rss-bytes for kept handlers, besides what steps use.")
	fs.StringVar(&o.PythonPackageDir, "python-package-dir", "", "Directory holding the api and centaur_worker Python packages (the image has them at /app/python); empty: the copy built into the manager, written to a temporary directory.")
	fs.IntVar(&o.PythonCacheRuns, "python-cache-runs", pyworker.DefaultCacheRuns, "Suspended Python handlers one worker keeps between executions (least recently used out); a run whose handler is not kept is replayed from its journal.")
	fs.Int64Var(&o.PythonCacheRSSBytes, "python-cache-rss-bytes", pyworker.DefaultCacheRSSBytes, "A Python worker drops kept handlers, least recently used first, while its resident memory is above this; negative: no bound.")
	fs.DurationVar(&o.PythonHandlerDeadline, "python-handler-deadline", pyworker.DefaultHandlerDeadline, "How long a Python handler's code may run between two ctx primitives (and a file's top level may take) before its worker is killed and replaced.")
	fs.IntVar(&o.PythonMaxWorkerKills, "python-max-worker-kills", pyworkflow.DefaultMaxWorkerKills, "A run whose handler code takes down this many Python workers (past --python-handler-deadline, or the worker died while it ran) fails with ExecutionLimitExceeded.")
	fs.StringVar(&o.ConsoleSecret, "console-secret", console.DefaultSecret.String(), "namespace/name of the Secret whose key \"session-key\" (32 bytes or more) seals the web console's sign-in cookies, the same on every replica; without it each replica uses a key of its own. See docs/console.md.")
	fs.IntVar(&o.ConsoleMaxRequests, "console-max-requests", console.DefaultMaxRequests, "How many web console page requests a replica serves at once; more wait briefly, then get 503. Apart from the REST API.")
	fs.BoolVar(&o.EnsureSecrets, "ensure-secrets", false, "One-shot: create the Secrets of --api-keys-secret (with no keys; see docs/rest-api.md) and --console-secret (a random session key) unless they exist, never changing an existing one, then exit. The Helm chart's hook Job runs it.")
	fs.IntVar(&o.ConsoleMaxStreams, "console-max-streams", console.DefaultMaxStreams, "How many web console live streams a replica keeps open at once; pages beyond it retry later.")
	o.Zap.BindFlags(fs)
	fs.BoolVar(&o.Zap.Development, "dev", false, "Human-readable console logs instead of JSON (shorthand for --zap-devel).")
}

// Defaults of the step timeout flags: long enough for any call a step should make, short
// enough that a hung one does not hold an execution slot for good.
const (
	DefaultStepTimeout = 10 * time.Minute
	MaxStepTimeout     = time.Hour
)

// Run runs the manager until SIGINT or SIGTERM: the built-in workflows plus extra, the
// controllers, the API server, metrics and probes.
func Run(o Options, extra ...durable.Workflow) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.Zap)))
	log := ctrl.Log.WithName("setup")

	if o.InlineResultBytes > 256<<10 {
		return errors.New("--inline-result-bytes must keep a run's status small: use at most 262144 (larger results go to WorkflowRunPayloads)")
	}
	if o.DeprecatedJournalBytes != 0 {
		log.Info("--max-journal-bytes is deprecated and ignored: journals are sealed into WorkflowRunSegments; use --max-run-bytes to bound what a run stores")
	}
	keysSecret, err := restapi.ParseKeysSecret(o.APIKeysSecret)
	if err != nil {
		return fmt.Errorf("--api-keys-secret: %w", err)
	}

	consoleSecret, err := restapi.ParseSecretRef(o.ConsoleSecret, console.DefaultSecret)
	if err != nil {
		return fmt.Errorf("--console-secret: %w", err)
	}
	if o.EnsureSecrets {
		return ensureSecrets(keysSecret, consoleSecret)
	}

	trustedProxies, err := webhookserver.ParseCIDRs(o.TrustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	webhookRoutes := routes.NewTable()
	slugGrants, err := routes.ParseGrants(o.WebhookSlugGrants)
	if err != nil {
		return fmt.Errorf("--webhook-slug-grants: %w", err)
	}

	agentsConfig, err := controllers.ParseAgentsConfig(o.AgentsConfig)
	if err != nil {
		return fmt.Errorf("--agents-config: %w", err)
	}

	shards, err := o.shards()
	if err != nil {
		return err
	}
	scheme := controllers.NewScheme()
	secretScope := o.secretScope(agentsConfig.Namespace, keysSecret.Namespace, consoleSecret.Namespace)

	registry := engine.NewRegistry()
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
	if o.DefinitionLoadMemory > 0 {
		prober, err := loadprobe.New(o.DefinitionLoadMemory, loadprobe.DefaultTimeout, fileConfigs.sandboxed)
		if err != nil {
			return err
		}
		defer prober.Close()
		fileConfigs.sandboxed.Probe = prober.Check
	}
	definitionSandbox, err := o.definitionSandbox(fileConfigs)
	if err != nil {
		return err
	}
	if definitionSandbox != nil {
		defer definitionSandbox.Close()
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("find a kubeconfig: %w", err)
	}
	quota := runquota.New(runquota.Limits{NamespaceRuns: o.MaxNamespaceRuns,
		NamespaceBytes: cmp.Or(o.MaxNamespaceBytes, runstore.DefaultMaxNamespaceBytes), TotalBytes: o.MaxTotalBytes})
	crashes, err := o.openCrashGuard(cfg, scheme)
	if err != nil {
		return err
	}
	if crashes != nil {
		defer crashes.Close()
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
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
		Cache: shards.CacheOptions(cacheOptions(secretScope)),
		// Every run the manager creates passes the quota first.
		NewClient: func(config *rest.Config, options client.Options) (client.Client, error) {
			c, err := shards.NewClient(config, options)
			if err != nil {
				return nil, err
			}
			return quota.Client(c), nil
		},
	})
	if err != nil {
		return fmt.Errorf("create the manager: %w", err)
	}

	pool := pyworker.New(pyworker.Config{
		Python: o.PythonInterpreter, Workers: o.PythonWorkers, PackageDir: o.PythonPackageDir,
		CacheRuns: o.PythonCacheRuns, CacheRSSBytes: o.PythonCacheRSSBytes, HandlerDeadline: o.PythonHandlerDeadline,
		Logger: ctrl.Log.WithName("python"),
	})
	defer pool.Close()
	if err := metrics.Registry.Register(pool); err != nil {
		return fmt.Errorf("register the Python workers' metrics: %w", err)
	}
	workflowCatalog := controllers.NewWorkflowCatalog(mgr, registry, catalog.Options{
		OperatorNamespace: o.OperatorNamespace,
		Trusted:           fileConfigs.trusted,
		Sandboxed:         fileConfigs.sandboxed,
		Python:            &pyworkflow.Loader{Pool: pool, CheckSchedule: controllers.CheckScheduleSpec, MaxWorkerKills: o.PythonMaxWorkerKills},
	})
	dirs := &catalog.Dirs{Paths: splitDirs(o.WorkflowDirs), Catalog: workflowCatalog, Interval: o.WorkflowDirsPoll, Logger: ctrl.Log.WithName("workflows")}
	dirs.Load() // before anything reconciles, so that no run finds its workflow missing
	if err := mgr.Add(dirs); err != nil {
		return fmt.Errorf("add the workflow directory watcher: %w", err)
	}

	deliveryLedger, err := o.deliveryLedger(mgr)
	if err != nil {
		return err
	}
	ctrls, err := controllers.Setup(mgr, controllers.Options{
		Workflows:          workflowCatalog,
		BeforeTTLDelete:    deliveryLedger.RecordRun,
		RevisionGCInterval: o.RevisionGCInterval,
		Limits: engine.Limits{MaxResultBytes: o.MaxResultBytes, InlineResultBytes: o.InlineResultBytes, MaxRunBytes: o.MaxRunBytes,
			MaxChildren: o.MaxChildren, DefaultStepTimeout: o.DefaultStepTimeout, MaxStepTimeout: o.MaxStepTimeout},
		Storage: runstore.Options{
			OpenEntries: o.JournalOpenEntries, OpenBytes: o.JournalOpenBytes,
			MaxNamespaceBytes: o.MaxNamespaceBytes, CacheBytes: o.JournalCacheBytes,
		},
		MaxConcurrentReconciles:     o.MaxConcurrentReconciles,
		Crashes:                     crashes,
		Sandbox:                     definitionSandbox,
		DefinitionCompileRate:       limits.Rate{PerSecond: o.DefinitionCompileRate, Burst: controllers.DefaultDefinitionCompileRate.Burst},
		EventRetention:              o.EventRetention,
		Agents:                      controllers.AgentOptions{ConfigMap: agentsConfig, Concurrency: o.AgentConcurrency},
		WebhookRoutes:               webhookRoutes,
		CodeWebhookNamespace:        o.CodeWebhookNamespace,
		WebhookSlugGrants:           slugGrants,
		SecretScope:                 secretScope,
		ScheduleNamespace:           o.ScheduleNamespace,
		WebhookCounterFlushInterval: o.WebhookFlushInterval,
		Sharding:                    shards,
	})
	if err != nil {
		return err
	}
	quota.Bind(ctrls.RunView)
	if deliveryLedger != nil {
		if err := mgr.Add(deliveryLedger.Keeper(ctrls.RunView)); err != nil {
			return fmt.Errorf("add the delivery ledger's keeper: %w", err)
		}
	}

	api := webhookserver.New(webhookserver.Config{
		Addr:            o.APIAddr,
		Client:          mgr.GetClient(),
		Reader:          mgr.GetAPIReader(),
		Workflows:       workflowCatalog,
		Engine:          ctrls.Runs,
		Logger:          ctrl.Log.WithName("api"),
		Routes:          webhookRoutes,
		TrustedProxies:  trustedProxies,
		ShutdownTimeout: o.ShutdownTimeout,
		WebhookRunTTL:   o.WebhookRunTTL,

		MaxInFlightDeliveries: o.MaxInFlightDeliveries,
		MaxInFlightRequests:   o.MaxInFlightRequests,
		DeliveryRate:          limits.Rate{PerSecond: o.WebhookRate, Burst: o.WebhookBurst},
		BodyReadTimeout:       o.WebhookBodyTimeout,
		UnverifiedRate:        limits.Rate{PerSecond: o.UnverifiedRate, Burst: o.UnverifiedBurst},
		APIKeyRate:            limits.Rate{PerSecond: o.APIRate, Burst: o.APIBurst},

		APIKeysSecret:     keysSecret,
		EagerStartTimeout: o.EagerStartTimeout,

		Runs:        ctrls.RunView,
		DeletedRuns: deliveryLedger,
		Informers:   ctrls.RunView,
		Console:     webhookserver.ConsoleConfig{Secret: consoleSecret, MaxRequests: o.ConsoleMaxRequests, MaxStreams: o.ConsoleMaxStreams},
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

	log.Info("starting manager", "api", o.APIAddr, "metrics", o.MetricsAddr, "probes", o.ProbeAddr, "leaderElection", o.LeaderElect, "shard", shards.Shard())
	ctx := ctrl.SetupSignalHandler()
	if shards == nil {
		if err := mgr.Start(ctx); err != nil {
			return fmt.Errorf("run the manager: %w", err)
		}
		return nil
	}
	return o.runShard(ctx, mgr, cfg, shards)
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

// defaultShardName is POD_NAME, else the host name (a pod's host name is its name).
func defaultShardName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	name, _ := os.Hostname()
	return name
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
			CheckSchedule: controllers.CheckScheduleSpec, MaxValueBytes: o.MaxResultBytes},
		sandboxed: &workflowfile.Config{HTTP: workflowfile.NewHTTPClient(&egress),
			MaxSteps: o.WorkflowFileMaxSteps, CheckSchedule: controllers.CheckScheduleSpec, MaxValueBytes: o.MaxResultBytes,
			MaxParallelBranches: o.DefinitionMaxBranches},
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
