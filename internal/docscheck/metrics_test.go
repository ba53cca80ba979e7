package docscheck

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// metricName is a name of one of the operator's metrics, as Go source, the docs and PromQL
// write it.
var metricName = regexp.MustCompile(`centaur_[a-z_]+`)

// registered matches the name of a metric where Go code makes one: the first argument of
// package metric's constructors or of prometheus.NewDesc (a collector's), or the Name of a
// prometheus.*Opts.
var registered = regexp.MustCompile(`(?:metric\.[A-Za-z]+\(\s*|prometheus\.NewDesc\(\s*|Name:\s*)"(centaur_[a-z_]+)"`)

// consumers are the directories whose code reads the metrics rather than making them.
var consumers = map[string]bool{"bench": true, "hack": true, "node_modules": true}

// histogramSeries are the suffixes of the series a histogram exports beside its name.
var histogramSeries = []string{"_bucket", "_sum", "_count"}

// sourceMetrics returns the metrics the operator's Go code registers, from its source.
func sourceMetrics(t *testing.T, root string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (consumers[d.Name()] || strings.HasPrefix(d.Name(), ".") && path != root):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go"):
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range registered.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("found %d registered metrics in the source; the pattern no longer matches how metrics are made", len(names))
	}
	return names
}

// seriesOf is the metric a series of PromQL names: the histogram for its _bucket, _sum and
// _count series.
func seriesOf(series string, known map[string]bool) string {
	for _, suffix := range histogramSeries {
		if base, ok := strings.CutSuffix(series, suffix); ok && known[base] {
			return base
		}
	}
	return series
}

// TestObservabilityPageListsEveryMetric checks that docs/observability.md's table names each
// metric the code registers, and no metric that does not exist.
func TestObservabilityPageListsEveryMetric(t *testing.T) {
	root := filepath.Join("..", "..")
	known := sourceMetrics(t, root)
	page, err := os.ReadFile(filepath.Join(root, "docs", "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, name := range metricName.FindAllString(string(page), -1) {
		documented[seriesOf(name, known)] = true
	}
	for name := range known {
		if !documented[name] {
			t.Errorf("docs/observability.md does not list the metric %s", name)
		}
	}
	for name := range documented {
		if !known[name] {
			t.Errorf("docs/observability.md names %s, which the code does not register", name)
		}
	}
}

// dashboard is what the check reads of a Grafana dashboard.
type dashboard struct {
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

// panel is a dashboard panel with its queries.
type panel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// TestGrafanaDashboardQueriesMetricsThatExist checks config/grafana's dashboard: it parses,
// every panel queries only metrics the code registers, and every registered metric has a
// panel, so that the dashboard neither shows empty graphs nor misses a metric.
func TestGrafanaDashboardQueriesMetricsThatExist(t *testing.T) {
	root := filepath.Join("..", "..")
	known := sourceMetrics(t, root)
	raw, err := os.ReadFile(filepath.Join(root, "config", "grafana", "centaur-workflows.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("the dashboard has no uid or no panels: %+v", d)
	}
	shown := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			names := metricName.FindAllString(target.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q queries no centaur metric: %s", p.Title, target.Expr)
			}
			for _, series := range names {
				name := seriesOf(series, known)
				if !known[name] {
					t.Errorf("panel %q queries %s, which the code does not register", p.Title, series)
				}
				if slices.ContainsFunc(histogramSeries, func(s string) bool { return strings.HasSuffix(series, s) }) && name == series {
					t.Errorf("panel %q queries %s of no histogram", p.Title, series)
				}
				shown[name] = true
			}
		}
	}
	var missing []string
	for name := range known {
		if !shown[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no panel shows %s", strings.Join(missing, ", "))
	}
}
