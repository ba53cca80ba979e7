package membound

import (
	"slices"
	"strings"
	"testing"
)

func TestAChildGetsNoneOfTheManagersEnvironmentButTheRuntimes(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "do-not-pass")
	t.Setenv("GOMAXPROCS", "1")
	t.Setenv("TZ", "Europe/Berlin")
	env := RuntimeEnv()
	if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "GITHUB_WEBHOOK_SECRET=") }) {
		t.Errorf("a child's environment has the manager's secret: %v", env)
	}
	for _, want := range []string{"GOMAXPROCS=1", "TZ=Europe/Berlin"} {
		if !slices.Contains(env, want) {
			t.Errorf("a child's environment lacks %s: %v", want, env)
		}
	}
}
