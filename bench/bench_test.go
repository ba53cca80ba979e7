package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/manager"
)

// TestSmoke runs the whole benchmark at tiny sizes against the real control plane and the real
// manager binary, so that `make test` keeps it working. Targets are not judged here: the sizes
// are too small and CI machines too noisy for the figures to mean anything.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and the manager; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute) // the schedule figure waits up to a minute for its minute; under -race beside the other packages the figures take about 6
	defer cancel()
	cfg := smokeConfig()
	cfg.race = testcluster.RaceEnabled
	res, err := run(ctx, cfg, testLog{t})
	if err != nil {
		t.Fatalf("benchmark smoke run: %v", err)
	}
	table := res.markdown()
	t.Log("\n" + table)
	if strings.Contains(table, "not measured") {
		t.Errorf("a figure was not measured:\n%s", table)
	}
	// Counted, not timed, so judged even at smoke sizes: the managers with tracing on exported
	// a span per run and per step attempt, those without none.
	if s := res.tracing.spans; s.runs == 0 || s.runSpans != s.runs || s.stepSpans != s.attempts || s.untraced != 0 {
		t.Errorf("the tracing figure's receiver got %+v", s)
	}
}

// TestParseFlags checks that -smoke chooses the smoke sizes and that flags override them.
func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-smoke", "-seq-steps=7"})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.smoke || cfg.seqSteps != 7 || cfg.hugeSteps != smokeConfig().hugeSteps {
		t.Errorf("parseFlags(-smoke -seq-steps=7) = %+v", cfg)
	}
	if cfg, err = parseFlags(nil); err != nil || cfg.smoke || cfg.seqSteps != 1000 {
		t.Errorf("parseFlags() = %+v, %v; want the full sizes", cfg, err)
	}
}

// TestWriteDoc checks that the generated block replaces the previous one and keeps the prose.
func TestWriteDoc(t *testing.T) {
	path := t.TempDir() + "/benchmarks.md"
	res := &results{cfg: smokeConfig(), machine: "a machine"}
	for range 2 {
		if err := res.writeDoc(path); err != nil {
			t.Fatal(err)
		}
	}
	doc := readFile(t, path)
	if strings.Count(doc, docBegin) != 1 || strings.Count(doc, docEnd) != 1 {
		t.Errorf("the doc should hold one generated block:\n%s", doc)
	}
}

// testLog writes progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestPercentile checks the nearest-rank percentiles and the median.
func TestPercentile(t *testing.T) {
	d := durations{5, 1, 4, 2, 3}
	if got := d.percentile(50); got != 3 {
		t.Errorf("p50 = %d, want 3", got)
	}
	if got := d.percentile(99); got != 5 {
		t.Errorf("p99 = %d, want 5", got)
	}
	if got := medianOf([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestManagersGetTheRuntimeEnvironmentConfigManagerShips checks that the benchmark's managers
// get what the manager's Deployment sets for the Go runtime: the container's memory limit
// (768 MiB) in the variable the downward API fills, from which the manager sets GOMEMLIMIT.
func TestManagersGetTheRuntimeEnvironmentConfigManagerShips(t *testing.T) {
	env, err := shippedRuntimeEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s=%d", manager.MemoryLimitEnv, 768<<20)
	if !slices.Contains(env, want) {
		t.Errorf("the managers' environment %q lacks %q", env, want)
	}
}
