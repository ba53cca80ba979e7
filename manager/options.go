package manager

import (
	"cmp"
	"flag"
	"os"
	"path/filepath"
	"time"

	"go.starlark.net/starlark"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/sharding"
	"github.com/centaur-dev/workflow-operator/webhookserver"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
	"github.com/centaur-dev/workflow-operator/webhookserver/ledger"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflowfile/loadprobe"
	"github.com/centaur-dev/workflow-operator/workflowfile/sandbox"
)

// Options are the manager's settings, in groups that each bind their own flags (`manager
// --help` describes them all). The groups are embedded, so a setting reads as o.WorkflowDirs
// whichever group holds it. BindFlags binds every group to a FlagSet, and DefaultOptions gives
// their defaults to a program that calls Run without flags:
//
//	o := manager.DefaultOptions()
//	o.WorkflowDirs = "/etc/workflows"
//	err := manager.Run(o, myWorkflows...)
type Options struct {
	ManagerOptions
	EngineOptions
	StorageOptions
	APIOptions
	WebhookOptions
	AgentOptions
	ShardingOptions
	FileOptions
	PythonOptions
}

// DefaultOperatorNamespace is the operator's namespace when neither --operator-namespace nor
// POD_NAMESPACE says.
const DefaultOperatorNamespace = "centaur-system"

// Defaults of the step timeout flags: long enough for any call a step should make, short
// enough that a hung one does not hold an execution slot for good.
const (
	DefaultStepTimeout = 10 * time.Minute
	MaxStepTimeout     = time.Hour
)

// DefaultOptions returns the options with every flag at its default (environment variables
// such as WORKFLOW_DIRS and POD_NAMESPACE included), for programs that configure the manager in
// Go rather than on the command line.
func DefaultOptions() Options {
	var o Options
	BindFlags(flag.NewFlagSet("manager", flag.ContinueOnError), &o)
	return o
}

// BindFlags binds o to the manager's flags on fs, group by group; call fs.Parse afterwards.
func BindFlags(fs *flag.FlagSet, o *Options) {
	o.ManagerOptions.BindFlags(fs)
	o.EngineOptions.BindFlags(fs)
	o.StorageOptions.BindFlags(fs)
	o.APIOptions.BindFlags(fs)
	o.WebhookOptions.BindFlags(fs)
	o.AgentOptions.BindFlags(fs)
	o.ShardingOptions.BindFlags(fs)
	o.FileOptions.BindFlags(fs)
	o.PythonOptions.BindFlags(fs)
}

// ManagerOptions are the process's own settings: its listeners for metrics and probes, leader
// election and its leases, shutdown, logging, and the operator's namespace that other groups'
// objects live in.
type ManagerOptions struct {
	MetricsAddr             string        // --metrics-bind-address
	MetricsSecure           bool          // --metrics-secure
	ProbeAddr               string        // --health-probe-bind-address
	LeaderElect             bool          // --leader-elect
	LeaderElectionNamespace string        // --leader-election-namespace
	LeaseDuration           time.Duration // --lease-duration
	RenewDeadline           time.Duration // --lease-renew-deadline
	RetryPeriod             time.Duration // --lease-retry-period
	ShutdownTimeout         time.Duration // --graceful-shutdown-timeout
	OperatorNamespace       string        // --operator-namespace
	// Zap are the logging options (--zap-* flags and --dev).
	Zap zap.Options
}

// BindFlags binds the process's flags on fs.
func (o *ManagerOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", false, "Serve metrics over HTTPS and only to clients the Kubernetes API authenticates and authorizes to GET /metrics (TokenReview and SubjectAccessReview); config/default turns it on.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address the health (/healthz) and readiness (/readyz) probes bind to.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "Elect a leader among replicas so one runs the controllers; every replica serves the API.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election lease (default: the pod's namespace) and, with --sharding, of the shard leases (default: --operator-namespace).")
	fs.DurationVar(&o.LeaseDuration, "lease-duration", sharding.DefaultLeaseDuration, "How long the leader's lease, and with --sharding each shard's lease, lasts without renewal: a dead replica's runs resume elsewhere after about this long. Whole seconds.")
	fs.DurationVar(&o.RenewDeadline, "lease-renew-deadline", sharding.DefaultRenewDeadline, "How long a replica keeps trying to renew its lease before it gives up (and stops); below --lease-duration.")
	fs.DurationVar(&o.RetryPeriod, "lease-retry-period", sharding.DefaultRetryPeriod, "How often leases are renewed, and tried for by the others.")
	fs.DurationVar(&o.ShutdownTimeout, "graceful-shutdown-timeout", 30*time.Second, "How long running steps and requests may finish at shutdown.")
	fs.StringVar(&o.OperatorNamespace, "operator-namespace", cmp.Or(os.Getenv("POD_NAMESPACE"), DefaultOperatorNamespace), "The operator's own namespace: revisions of WORKFLOW_DIRS files and the Secrets their webhooks name live here; default: POD_NAMESPACE.")
	o.Zap.BindFlags(fs)
	fs.BoolVar(&o.Zap.Development, "dev", false, "Human-readable console logs instead of JSON (shorthand for --zap-devel).")
}

// EngineOptions bound how runs execute (package durable/engine and the WorkflowRun
// controller): how many at once, how large a step's result and how long an attempt may be, how
// many children a run may start, and where declared schedules and events live.
type EngineOptions struct {
	MaxConcurrentReconciles int           // --max-concurrent-reconciles
	MaxResultBytes          int           // --max-step-result-bytes
	InlineResultBytes       int           // --inline-result-bytes
	DefaultStepTimeout      time.Duration // --default-step-timeout
	MaxStepTimeout          time.Duration // --max-step-timeout
	MaxChildren             int           // --max-children-per-run
	EventRetention          time.Duration // --event-retention
	ScheduleNamespace       string        // --schedule-namespace
}

// BindFlags binds the engine's flags on fs.
func (o *EngineOptions) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", 16, "How many workflow runs execute in parallel, eager starts of the REST API included; a long step holds one slot.")
	fs.IntVar(&o.MaxResultBytes, "max-step-result-bytes", engine.DefaultMaxResultBytes, "Largest JSON result one step may record (results over --inline-result-bytes are stored as WorkflowRunPayloads, in parts of 512 KiB).")
	fs.IntVar(&o.InlineResultBytes, "inline-result-bytes", engine.DefaultInlineResultBytes, "Largest step result kept in the journal itself; larger results go to WorkflowRunPayload objects. At most 262144.")
	fs.DurationVar(&o.DefaultStepTimeout, "default-step-timeout", DefaultStepTimeout, "Bound on each attempt of a step that sets no timeout of its own (Go, Starlark and Python steps alike), so that a hung call gives its execution slot back. 0 means none.")
	fs.DurationVar(&o.MaxStepTimeout, "max-step-timeout", MaxStepTimeout, "Bound on each attempt of every step, whatever timeout it asks for (and so on http calls inside steps). 0 means none.")
	fs.IntVar(&o.MaxChildren, "max-children-per-run", engine.DefaultMaxChildren, "Most child runs one run may start; the next fails the run with TooManyChildren, so that one request (a fan-out over a list someone sent) cannot create objects without bound.")
	fs.DurationVar(&o.EventRetention, "event-retention", controllers.DefaultEventRetention, "How long a WorkflowEvent is kept so that runs reaching their wait late still receive it.")
	fs.StringVar(&o.ScheduleNamespace, "schedule-namespace", "", "Namespace of the WorkflowSchedules (and their runs) that Go workflows and WORKFLOW_DIRS files declare. Default: the operator's namespace (--operator-namespace).")
}

// StorageOptions bound what runs store in etcd (packages runstore and runquota): per run, per
// namespace and in all, and how journals are sealed into segments and cached.
type StorageOptions struct {
	MaxRunBytes            int   // --max-run-bytes
	MaxNamespaceBytes      int64 // --max-namespace-bytes
	MaxNamespaceRuns       int   // --max-namespace-runs
	MaxTotalBytes          int64 // --max-total-bytes
	JournalOpenEntries     int   // --journal-open-entries
	JournalOpenBytes       int   // --journal-open-bytes
	JournalCacheBytes      int64 // --journal-cache-bytes
	DeprecatedJournalBytes int   // --max-journal-bytes
}

// BindFlags binds the storage flags on fs.
func (o *StorageOptions) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.MaxRunBytes, "max-run-bytes", engine.DefaultMaxRunBytes, "Most a run may store in all: its input, journal, payloads and output (etcd's whole default quota is 2 GiB).")
	fs.Int64Var(&o.MaxNamespaceBytes, "max-namespace-bytes", runstore.DefaultMaxNamespaceBytes, "Most the runs of one namespace may store in all; a run whose growth would pass it fails with NamespaceBudgetExceeded. Negative: no limit.")
	fs.IntVar(&o.MaxNamespaceRuns, "max-namespace-runs", runquota.DefaultMaxNamespaceRuns, "Most WorkflowRuns one namespace may hold when the manager creates another (webhooks, REST, console, child runs, schedules): past it the API answers 429 quota_exceeded. 0 means no bound. Runs made with kubectl are bounded by a ResourceQuota (config/quota).")
	fs.Int64Var(&o.MaxTotalBytes, "max-total-bytes", runquota.DefaultMaxTotalBytes, "Most bytes all runs together may store (their recordedBytes) when the manager creates another: past it the API answers 507 storage_full. Keep it under etcd's quota (2 GiB by default). 0 means no bound.")
	fs.IntVar(&o.JournalOpenEntries, "journal-open-entries", runstore.DefaultOpenEntries, "A run's final journal entries in status are sealed into a WorkflowRunSegment once there are this many (or --journal-open-bytes).")
	fs.IntVar(&o.JournalOpenBytes, "journal-open-bytes", runstore.DefaultOpenBytes, "A run's final journal entries in status are sealed into a WorkflowRunSegment once they take this many bytes (or --journal-open-entries).")
	fs.Int64Var(&o.JournalCacheBytes, "journal-cache-bytes", runstore.DefaultJournalCacheBytes, "Memory for sealed segments, large results and the runs the manager wrote last (which spares a read when a sleeping run wakes).")
	fs.IntVar(&o.DeprecatedJournalBytes, "max-journal-bytes", 0, "Deprecated and ignored: journals are sealed into WorkflowRunSegments; --max-run-bytes bounds what a run stores.")
}

// APIOptions are the HTTP API's settings (package webhookserver): its listener and the
// proxies in front of it, the REST API's keys and limits (package webhookserver/restapi), and
// the web console's (package webhookserver/console).
type APIOptions struct {
	APIAddr             string        // --api-bind-address
	TrustedProxies      string        // --trusted-proxies
	MaxInFlightRequests int           // --max-inflight-requests
	APIRate             float64       // --api-rate
	APIBurst            int           // --api-burst
	APIKeysSecret       string        // --api-keys-secret
	EagerStartTimeout   time.Duration // --eager-start-timeout
	ConsoleSecret       string        // --console-secret
	ConsoleMaxRequests  int           // --console-max-requests
	ConsoleMaxStreams   int           // --console-max-streams
	ConsoleTraceURL     string        // --console-trace-url

	// EnsureSecrets makes Run a one-shot: create the Secrets of --api-keys-secret and
	// --console-secret unless they exist (EnsureSecrets), then return.
	EnsureSecrets bool // --ensure-secrets
}

// BindFlags binds the HTTP API's flags on fs.
func (o *APIOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.APIAddr, "api-bind-address", ":8088", "Address the HTTP API (webhooks and REST under /api, the web console at /) binds to.")
	fs.StringVar(&o.TrustedProxies, "trusted-proxies", "", "Comma-separated CIDRs (or IPs) of the reverse proxies in front of the API; only their X-Forwarded-For/X-Real-Ip count for a webhook's source_ip.")
	fs.IntVar(&o.MaxInFlightRequests, "max-inflight-requests", webhookserver.DefaultMaxInFlight, "REST API requests one replica handles at once; more get 503 with Retry-After.")
	fs.Float64Var(&o.APIRate, "api-rate", restapi.DefaultKeyRate.PerSecond, "REST API requests per second one API key may make on a replica, sustained; more get 429 with Retry-After.")
	fs.IntVar(&o.APIBurst, "api-burst", restapi.DefaultKeyRate.Burst, "REST API requests one API key may make at once before --api-rate applies.")
	fs.StringVar(&o.APIKeysSecret, "api-keys-secret", restapi.DefaultKeysSecret.String(), "namespace/name of the Secret holding the REST API's key hashes; re-read every few seconds, so a rotated key works without a restart.")
	fs.DurationVar(&o.EagerStartTimeout, "eager-start-timeout", restapi.DefaultEagerStartTimeout, "How long POST /api/workflows/runs with eager_start waits for the run's first segment before answering.")
	fs.StringVar(&o.ConsoleSecret, "console-secret", console.DefaultSecret.String(), "namespace/name of the Secret whose key \"session-key\" (32 bytes or more) seals the web console's sign-in cookies, the same on every replica; without it each replica uses a key of its own. See docs/console.md.")
	fs.IntVar(&o.ConsoleMaxRequests, "console-max-requests", console.DefaultMaxRequests, "How many web console page requests a replica serves at once; more wait briefly, then get 503. Apart from the REST API.")
	fs.IntVar(&o.ConsoleMaxStreams, "console-max-streams", console.DefaultMaxStreams, "How many web console live streams a replica keeps open at once; pages beyond it retry later.")
	fs.StringVar(&o.ConsoleTraceURL, "console-trace-url", "", "Links each run's console page to its trace: a URL of your tracing tool in which {trace_id} (and {span_id}) are replaced, such as https://jaeger.example.com/trace/{trace_id}. See docs/observability.md.")
	fs.BoolVar(&o.EnsureSecrets, "ensure-secrets", false, "One-shot: create the Secrets of --api-keys-secret (with no keys; see docs/rest-api.md) and --console-secret (a random session key) unless they exist, never changing an existing one, then exit. The Helm chart's hook Job runs it.")
}

// WebhookOptions are the webhooks' settings: where declared webhooks' runs live, who may claim
// which slug, whose Secrets the manager reads, how long webhook runs and their deliveries'
// identities are kept (package webhookserver/ledger), and the limits on deliveries.
type WebhookOptions struct {
	CodeWebhookNamespace     string        // --code-webhook-namespace
	SecretNamespaces         string        // --secret-namespaces
	WebhookSlugGrants        string        // --webhook-slug-grants
	WebhookRunTTL            time.Duration // --webhook-run-ttl
	WebhookIdentityRetention time.Duration // --webhook-identity-retention
	MaxInFlightDeliveries    int           // --max-inflight-deliveries
	WebhookBodyTimeout       time.Duration // --webhook-body-timeout
	UnverifiedRate           float64       // --webhook-unverified-rate
	UnverifiedBurst          int           // --webhook-unverified-burst
	WebhookRate              float64       // --webhook-rate
	WebhookBurst             int           // --webhook-burst
	WebhookFlushInterval     time.Duration // --webhook-counter-flush-interval
}

// BindFlags binds the webhooks' flags on fs.
func (o *WebhookOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.CodeWebhookNamespace, "code-webhook-namespace", "", "Namespace of the runs of the webhooks that Go workflows and WORKFLOW_DIRS files declare. Default: the operator's namespace (--operator-namespace), which tenants do not edit; a REST key sees those runs only if it lists that namespace. Their signing Secrets (a secret_ref \"name/key\", or the conventional centaur-webhook-<slug>) are read from --operator-namespace whatever this flag says.")
	fs.StringVar(&o.SecretNamespaces, "secret-namespaces", "", "Comma-separated namespaces whose Secrets the manager reads (webhook signing secrets), besides its own and those of --agents-config, --api-keys-secret and --console-secret; each needs a RoleBinding to the ClusterRole centaur-secret-reader. * reads every namespace (single-tenant clusters).")
	fs.StringVar(&o.WebhookSlugGrants, "webhook-slug-grants", "", "Comma-separated namespace=slug grants (each a name, a prefix ending in * or *) that let WebhookEndpoints and WorkflowDefinitions claim webhook slugs; empty: only the manager's own workflows serve webhooks. Example: team-a=team-a-*,ops=github-issues. *=* lets any namespace claim any slug (single-tenant clusters).")
	fs.DurationVar(&o.WebhookRunTTL, "webhook-run-ttl", webhookserver.DefaultWebhookRunTTL, "How long a run started by a webhook is kept after it finished (its spec.ttlSecondsAfterFinished); a negative value keeps them.")
	fs.DurationVar(&o.WebhookIdentityRetention, "webhook-identity-retention", ledger.DefaultRetention, "How long the identity of a deleted webhook run is kept (in ConfigMaps labelled workflows.centaur.dev/delivery-ledger in --operator-namespace), so that its delivery, replayed or redelivered, is answered 200 and starts nothing; up to a day more, as the ledger is kept by the day. 0 forgets a delivery with its run.")
	fs.IntVar(&o.MaxInFlightDeliveries, "max-inflight-deliveries", webhookserver.DefaultMaxInFlight, "Webhook deliveries one replica handles at once (each may hold a 1 MiB body before its signature is checked); more get 503 with Retry-After.")
	fs.DurationVar(&o.WebhookBodyTimeout, "webhook-body-timeout", webhookserver.DefaultBodyReadTimeout, "How long a delivery's body may take to arrive once its headers passed; slower ones get 408.")
	fs.Float64Var(&o.UnverifiedRate, "webhook-unverified-rate", webhookserver.DefaultUnverifiedRate.PerSecond, "Deliveries per second, sustained, that one client address (see --trusted-proxies) may send that fail their signature check or whose body comes too slowly; past it its deliveries get 429 before their body is read. Verified deliveries are charged to --webhook-rate instead.")
	fs.IntVar(&o.UnverifiedBurst, "webhook-unverified-burst", webhookserver.DefaultUnverifiedRate.Burst, "Deliveries failing their signature check one client address may send at once before --webhook-unverified-rate applies.")
	fs.Float64Var(&o.WebhookRate, "webhook-rate", webhookserver.DefaultDeliveryRate.PerSecond, "Verified deliveries per second one webhook slug may take, sustained; more get 429 with Retry-After.")
	fs.IntVar(&o.WebhookBurst, "webhook-burst", webhookserver.DefaultDeliveryRate.Burst, "Deliveries one webhook slug may take at once before --webhook-rate applies.")
	fs.DurationVar(&o.WebhookFlushInterval, "webhook-counter-flush-interval", controllers.DefaultWebhookCounterFlushInterval, "How often webhook delivery counters are written to WebhookEndpoint status.")
}

// AgentOptions are the agent turns' settings (the AgentRun controller): which backends answer
// and how many turns at once.
type AgentOptions struct {
	AgentsConfig     string // --agents-config
	AgentConcurrency int    // --agent-concurrency
}

// BindFlags binds the agents' flags on fs.
func (o *AgentOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.AgentsConfig, "agents-config", controllers.DefaultAgentsConfig, "ConfigMap (namespace/name) whose agents.yaml chooses each agent's backend; API keys come from Secrets in its namespace. See docs/agents.md.")
	fs.IntVar(&o.AgentConcurrency, "agent-concurrency", controllers.DefaultAgentConcurrency, "How many agent turns are answered in parallel; a slow model holds one slot, never a workflow run's.")
}

// ShardingOptions spread the execution of runs over every replica (package sharding); their
// leases last as ManagerOptions' leader election lease does.
type ShardingOptions struct {
	Sharding  bool   // --sharding
	ShardName string // --shard-name
}

// BindFlags binds the sharding flags on fs.
func (o *ShardingOptions) BindFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.Sharding, "sharding", false, "Every replica executes runs: each holds a Lease as a shard, runs are spread over the live shards by consistent hashing (label workflows.centaur.dev/shard) and move when shards come and go. Needs --leader-elect (the sharder and the schedules run on the elected replica). See docs/scaling.md.")
	fs.StringVar(&o.ShardName, "shard-name", defaultShardName(), "This replica's shard with --sharding: the name of its Lease and of its runs' shard label, unique among replicas (default: POD_NAME, else the host name, which is the pod's name).")
}

// FileOptions are the settings of workflow files (package workflowfile): the directories
// they load from, the bounds and egress policy of tenants' WorkflowDefinitions, the crash
// guard, and how long stored revisions stay.
type FileOptions struct {
	WorkflowDirs          string        // --workflow-dirs
	WorkflowDirsPoll      time.Duration // --workflow-dirs-poll-interval
	WorkflowFileMaxSteps  uint64        // --workflow-file-max-steps
	DefinitionCompileRate float64       // --definition-compile-rate
	DefinitionExecMemory  uint64        // --definition-execution-memory
	CrashGuardDir         string        // --crash-guard-dir
	DefinitionLoadMemory  uint64        // --definition-load-memory
	DefinitionMaxBranches int           // --definition-max-parallel-branches
	DefinitionEgressAllow string        // --definition-egress-allow
	PodCIDRs              string        // --pod-cidrs
	ServiceCIDRs          string        // --service-cidrs
	NodeCIDRs             string        // --node-cidrs
	RevisionGCInterval    time.Duration // --revision-gc-interval

	// FileModules are Starlark modules handed to the workflow files of WORKFLOW_DIRS, by
	// the name files use (for example "slack"): how an organisation gives its files
	// capabilities without raw network access. Wrap builtins with side effects in
	// workflowfile.StepOnly. WorkflowDefinitions do not get them. No flag sets them.
	FileModules starlark.StringDict
}

// BindFlags binds the workflow files' flags on fs.
func (o *FileOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.WorkflowDirs, "workflow-dirs", os.Getenv("WORKFLOW_DIRS"), "Colon-separated directories of workflow files (*.py and *.star), reloaded when they change; a later directory's workflow overrides an earlier one's of the same name. Default: the WORKFLOW_DIRS environment variable.")
	fs.DurationVar(&o.WorkflowDirsPoll, "workflow-dirs-poll-interval", catalog.DefaultDirsPollInterval, "How often --workflow-dirs are checked for changed files.")
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
}

// PythonOptions are the settings of the worker processes that run Python workflow files
// (packages pyworker and pyworkflow).
type PythonOptions struct {
	PythonInterpreter     string        // --python-interpreter
	PythonWorkers         int           // --python-workers
	PythonPackageDir      string        // --python-package-dir
	PythonCacheRuns       int           // --python-cache-runs
	PythonCacheRSSBytes   int64         // --python-cache-rss-bytes
	PythonHandlerDeadline time.Duration // --python-handler-deadline
	PythonMaxWorkerKills  int           // --python-max-worker-kills
}

// BindFlags binds the Python workers' flags on fs.
func (o *PythonOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.PythonInterpreter, "python-interpreter", pyworker.DefaultPython, "The CPython (3.9 or later) that runs Python workflow files: a path, or a name looked up in PATH.")
	fs.IntVar(&o.PythonWorkers, "python-workers", pyworker.DefaultWorkers, "Python worker processes; each runs the handler code of its share of the runs one turn at a time, and their step functions on threads. Each may use up to --python-cache-rss-bytes for kept handlers, besides what steps use.")
	fs.StringVar(&o.PythonPackageDir, "python-package-dir", "", "Directory holding the api and centaur_worker Python packages (the image has them at /app/python); empty: the copy built into the manager, written to a temporary directory.")
	fs.IntVar(&o.PythonCacheRuns, "python-cache-runs", pyworker.DefaultCacheRuns, "Suspended Python handlers one worker keeps between executions (least recently used out); a run whose handler is not kept is replayed from its journal.")
	fs.Int64Var(&o.PythonCacheRSSBytes, "python-cache-rss-bytes", pyworker.DefaultCacheRSSBytes, "A Python worker drops kept handlers, least recently used first, while its resident memory is above this; negative: no bound.")
	fs.DurationVar(&o.PythonHandlerDeadline, "python-handler-deadline", pyworker.DefaultHandlerDeadline, "How long a Python handler's code may run between two ctx primitives (and a file's top level may take) before its worker is killed and replaced.")
	fs.IntVar(&o.PythonMaxWorkerKills, "python-max-worker-kills", pyworkflow.DefaultMaxWorkerKills, "A run whose handler code takes down this many Python workers (past --python-handler-deadline, or the worker died while it ran) fails with ExecutionLimitExceeded.")
}

// defaultShardName is POD_NAME, else the host name (a pod's host name is its name).
func defaultShardName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	name, _ := os.Hostname()
	return name
}
