package manager_test

import (
	"flag"
	"reflect"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/manager"
)

// TestDefaultOptionsAreTheFlagDefaults checks that a program configuring the manager in Go
// starts from what the command line would give it, and that a parsed flag lands in its field.
func TestDefaultOptionsAreTheFlagDefaults(t *testing.T) {
	t.Setenv("WORKFLOW_DIRS", "/etc/centaur/workflows")
	t.Setenv("POD_NAMESPACE", "")
	o := manager.DefaultOptions()
	if o.MaxConcurrentReconciles != 16 || o.APIAddr != ":8088" || o.MaxResultBytes != engine.DefaultMaxResultBytes {
		t.Errorf("defaults: max-concurrent-reconciles %d, api-bind-address %q, max-step-result-bytes %d; want 16, :8088, %d",
			o.MaxConcurrentReconciles, o.APIAddr, o.MaxResultBytes, engine.DefaultMaxResultBytes)
	}
	if o.WorkflowDirs != "/etc/centaur/workflows" || o.OperatorNamespace != manager.DefaultOperatorNamespace {
		t.Errorf("from the environment: workflow dirs %q, operator namespace %q", o.WorkflowDirs, o.OperatorNamespace)
	}

	var parsed manager.Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	manager.BindFlags(fs, &parsed)
	if err := fs.Parse([]string{"--max-concurrent-reconciles=3", "--sharding", "--secret-namespaces=a,b"}); err != nil {
		t.Fatal(err)
	}
	if parsed.MaxConcurrentReconciles != 3 || !parsed.Sharding || parsed.SecretNamespaces != "a,b" {
		t.Errorf("parsed flags: %d %v %q", parsed.MaxConcurrentReconciles, parsed.Sharding, parsed.SecretNamespaces)
	}
}

// flagDefaults are the manager's flags with their defaults, under the environment
// setFlagEnvironment makes. Users, the Helm chart, config/manager, hack/ and the test and bench
// harnesses pass these names: a flag renamed, dropped or given another default is a change
// they see, so it changes this table on purpose or not at all.
var flagDefaults = map[string]string{
	"agent-concurrency":                "4",
	"agents-config":                    "centaur-system/centaur-agents",
	"api-bind-address":                 ":8088",
	"api-burst":                        "40",
	"api-keys-secret":                  "centaur-system/centaur-api-keys",
	"api-rate":                         "20",
	"code-webhook-namespace":           "",
	"console-max-requests":             "32",
	"console-max-streams":              "100",
	"console-trace-url":                "",
	"console-secret":                   "centaur-system/centaur-console",
	"crash-guard-dir":                  "/tmp/centaur-crash-guard",
	"default-step-timeout":             "10m0s",
	"definition-compile-rate":          "1",
	"definition-egress-allow":          "",
	"definition-execution-memory":      "268435456",
	"definition-load-memory":           "268435456",
	"definition-max-parallel-branches": "100",
	"dev":                              "false",
	"eager-start-timeout":              "5s",
	"ensure-secrets":                   "false",
	"event-retention":                  "24h0m0s",
	"graceful-shutdown-timeout":        "30s",
	"health-probe-bind-address":        ":8081",
	"inline-result-bytes":              "4096",
	"journal-cache-bytes":              "67108864",
	"journal-open-bytes":               "32768",
	"journal-open-entries":             "32",
	"leader-elect":                     "false",
	"leader-election-namespace":        "",
	"lease-duration":                   "15s",
	"lease-renew-deadline":             "10s",
	"lease-retry-period":               "2s",
	"max-children-per-run":             "1000",
	"max-concurrent-reconciles":        "16",
	"max-inflight-deliveries":          "64",
	"max-inflight-requests":            "64",
	"max-journal-bytes":                "0",
	"max-namespace-bytes":              "536870912",
	"max-namespace-runs":               "10000",
	"max-run-bytes":                    "67108864",
	"max-step-result-bytes":            "4194304",
	"max-step-timeout":                 "1h0m0s",
	"max-total-bytes":                  "1073741824",
	"metrics-bind-address":             ":8080",
	"metrics-secure":                   "false",
	"node-cidrs":                       "",
	"operator-namespace":               "ns",
	"pod-cidrs":                        "",
	"python-cache-rss-bytes":           "134217728",
	"python-cache-runs":                "1000",
	"python-handler-deadline":          "10s",
	"python-interpreter":               "python3",
	"python-max-worker-kills":          "3",
	"python-package-dir":               "",
	"python-workers":                   "2",
	"revision-gc-interval":             "10m0s",
	"schedule-namespace":               "",
	"secret-namespaces":                "",
	"service-cidrs":                    "",
	"shard-name":                       "p",
	"sharding":                         "false",
	"trusted-proxies":                  "",
	"webhook-body-timeout":             "10s",
	"webhook-burst":                    "100",
	"webhook-counter-flush-interval":   "10s",
	"webhook-identity-retention":       "720h0m0s",
	"webhook-rate":                     "50",
	"webhook-run-ttl":                  "168h0m0s",
	"webhook-slug-grants":              "",
	"webhook-unverified-burst":         "20",
	"webhook-unverified-rate":          "1",
	"workflow-dirs":                    "/w",
	"workflow-dirs-poll-interval":      "2s",
	"workflow-file-max-steps":          "20000000",
	"zap-devel":                        "false",
	"zap-encoder":                      "",
	"zap-log-level":                    "",
	"zap-stacktrace-level":             "",
	"zap-time-encoding":                "",
}

// setFlagEnvironment fixes what flag defaults read from the environment.
func setFlagEnvironment(t *testing.T) {
	t.Setenv("WORKFLOW_DIRS", "/w")
	t.Setenv("POD_NAMESPACE", "ns")
	t.Setenv("POD_NAME", "p")
	t.Setenv("TMPDIR", "/tmp")
}

// TestEveryFlagParsesWithItsDefault checks that the option groups bind every flag the manager
// has, by its name and with its default, and that passing each flag its default on the
// command line gives the options DefaultOptions gives.
func TestEveryFlagParsesWithItsDefault(t *testing.T) {
	setFlagEnvironment(t)
	var parsed manager.Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	manager.BindFlags(fs, &parsed)
	bound := map[string]bool{}
	var args []string
	fs.VisitAll(func(f *flag.Flag) {
		bound[f.Name] = true
		want, known := flagDefaults[f.Name]
		switch {
		case !known:
			t.Errorf("--%s (default %q) is not in flagDefaults: add it there", f.Name, f.DefValue)
		case f.DefValue != want:
			t.Errorf("--%s defaults to %q; want %q", f.Name, f.DefValue, want)
		}
		// controller-runtime's logging flags have no value to pass for "unset".
		if !strings.HasPrefix(f.Name, "zap-") || f.DefValue != "" {
			args = append(args, "--"+f.Name+"="+f.DefValue)
		}
	})
	for name := range flagDefaults {
		if !bound[name] {
			t.Errorf("--%s is no longer bound", name)
		}
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse every flag at its default: %v", err)
	}
	if want := manager.DefaultOptions(); !reflect.DeepEqual(parsed, want) {
		t.Errorf("every flag at its default parses to\n%+v\nwant DefaultOptions()\n%+v", parsed, want)
	}
}

// TestHelpSaysWhereDeclaredWebhookSecretsLive checks the help against the code
// (controllers/workflowwebhook_controller.go): the Secrets that Go and WORKFLOW_DIRS webhooks
// name, or their conventional centaur-webhook-<slug>, are read from the operator's namespace,
// whatever --code-webhook-namespace says; only their runs go there.
func TestHelpSaysWhereDeclaredWebhookSecretsLive(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	manager.BindFlags(fs, &manager.Options{})
	fs.VisitAll(func(f *flag.Flag) {
		for _, sentence := range strings.Split(f.Usage, ". ") {
			aboutCodeNamespace := f.Name == "code-webhook-namespace" || strings.Contains(sentence, "code-webhook-namespace")
			if aboutCodeNamespace && strings.Contains(strings.ToLower(sentence), "secret") && !strings.Contains(sentence, "--operator-namespace") {
				t.Errorf("--%s's help places declared webhooks' Secrets in the code-webhook namespace: %q", f.Name, sentence)
			}
		}
	})
	if usage := fs.Lookup("code-webhook-namespace").Usage; !strings.Contains(usage, "Secrets") || !strings.Contains(usage, "from --operator-namespace") {
		t.Errorf("--code-webhook-namespace's help does not say its webhooks' Secrets are read from --operator-namespace: %q", usage)
	}
	if usage := fs.Lookup("operator-namespace").Usage; !strings.Contains(usage, "Secrets their webhooks name") {
		t.Errorf("--operator-namespace's help does not say the declared webhooks' Secrets live there: %q", usage)
	}
}
