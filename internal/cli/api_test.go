package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/internal/cli"
)

// TestClusterCommandsSayWhatTheyNeed checks what the cluster commands answer before they call
// the API: a missing CENTAUR_API_URL names the variable and the flag, and command-line
// mistakes exit 2 with what to type instead.
func TestClusterCommandsSayWhatTheyNeed(t *testing.T) {
	t.Setenv(cli.EnvAPIURL, "")
	t.Setenv(cli.EnvAPIKey, "")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-such-kubeconfig")) // nor a kubeconfig to fall back on
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	for _, args := range [][]string{{"start", "hello"}, {"runs", "list"}, {"journal", "r"}, {"events", "send", "--type", "t"}, {"schedules", "list"}, {"workflows"}} {
		r := centaur(t, args...)
		expect(t, r, cli.ExitUsage, nil, []string{"CENTAUR_API_URL is not set", "--api-url", "CENTAUR_API_KEY", "or give a kubeconfig"})
		if r.stdout != "" {
			t.Errorf("centaur %q printed %q on stdout", args, r.stdout)
		}
	}

	// The URL's host is unreachable on purpose: each case must stop before any call.
	t.Setenv(cli.EnvAPIURL, "http://127.0.0.1:1/api")
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"start"}, "name one workflow to start"},
		{[]string{"start", "hello", "--input", "{not json"}, "--input is not JSON"},
		{[]string{"start", "hello", "--input", "@/no/such/file.json"}, "--input: read /no/such/file.json"},
		{[]string{"runs"}, "name what to do: one of [list get watch cancel]"},
		{[]string{"runs", "delete", "x"}, `unknown subcommand "delete"`},
		{[]string{"runs", "get"}, "get takes exactly one name"},
		{[]string{"runs", "list", "extra"}, `list takes no argument, not "extra"`},
		{[]string{"runs", "list", "--limit", "0"}, "--limit must be at least 1"},
		{[]string{"runs", "list", "-o", "xml"}, `want table, json or yaml, not "xml"`},
		{[]string{"journal"}, "name one run"},
		{[]string{"events", "send"}, "--type is required"},
		{[]string{"events", "publish", "--type", "t"}, "the one subcommand is send"},
		{[]string{"events", "send", "--type", "t", "--payload", "nope"}, "--payload is not JSON"},
		{[]string{"schedules", "pause"}, "pause takes exactly one name"},
		{[]string{"workflows", "extra"}, `unexpected argument "extra"`},
		{[]string{"workflows", "--api-url", "ftp://host/api"}, `the API URL "ftp://host/api" (--api-url or CENTAUR_API_URL) is not an http(s) URL`},
	} {
		r := centaur(t, tc.args...)
		expect(t, r, cli.ExitUsage, nil, []string{tc.stderr})
	}

	r := centaur(t, "workflows")
	expect(t, r, cli.ExitFailed, nil, []string{"centaur workflows: call the API at http://127.0.0.1:1/api (is CENTAUR_API_URL right"})

	help := centaur(t, "help", "start")
	expect(t, help, cli.ExitOK, []string{"--wait", "--follow", "--api-url", "Works through the REST API", "--kubeconfig"}, nil)
	if t.Setenv(cli.EnvAPIKey, "secret.key"); strings.Contains(centaur(t, "help", "runs").stdout, "secret.key") {
		t.Error("help printed the API key")
	}
}
