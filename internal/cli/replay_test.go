package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/internal/cli"
)

// writeReplayFile writes text at dir/name and returns its path.
func writeReplayFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReplayChecksAJournalThatCentaurRunWrote(t *testing.T) {
	isolateCache(t)
	v1 := writeReplayFile(t, t.TempDir(), "order.star", orderFile)
	journal := filepath.Join(t.TempDir(), "journal.json")
	input := `{"id": "o-1", "qty": 2}`
	if r := centaur(t, "run", v1, "--input", input, "--journal", journal); r.exit != cli.ExitFailed || !strings.Contains(r.stderr, "waits at \"paid\"") {
		t.Fatalf("recording: exit %d\nstdout:\n%s\nstderr:\n%s", r.exit, r.stdout, r.stderr)
	}
	renamed := writeReplayFile(t, t.TempDir(), "order.star", strings.Replace(orderFile, `"cool_off"`, `"settle"`, 1))
	for _, tc := range []struct {
		name   string
		args   []string
		exit   int
		stdout string
		stderr string
	}{
		{name: "the same code", args: []string{"replay", v1, "--journal", journal, "--input", input}, exit: cli.ExitOK,
			stdout: journal + ": compatible: 3 of 3 entries in the same order; at event paid, waiting in the recorded run",
			stderr: "1 run against " + v1 + " (revision order-"},
		{name: "a renamed sleep", args: []string{"replay", "--input", input, renamed, "--journal", journal}, exit: cli.ExitFailed,
			stdout: journal + ": DIVERGES at entry 2: the journal recorded sleep cool_off, the new code calls sleep settle at " + filepath.Join(filepath.Dir(renamed), "order.star:5:14 in handler"),
			stderr: "0 compatible, 1 diverged"},
		{name: "a Go workflow by name", args: []string{"replay", "hello", "--journal", journal}, exit: cli.ExitFailed,
			stdout: "the new code calls step greet at ", stderr: "1 diverged"},
		{name: "no source", args: []string{"replay", v1}, exit: cli.ExitUsage, stderr: "give exactly one of --journal FILE, --run NAME and --all-running"},
		{name: "two sources", args: []string{"replay", v1, "--journal", journal, "--all-running"}, exit: cli.ExitUsage, stderr: "exactly one"},
		{name: "no file", args: []string{"replay", "--journal", journal}, exit: cli.ExitUsage, stderr: "name one workflow file"},
		{name: "input with a cluster run", args: []string{"replay", v1, "--run", "r", "--input", "{}"}, exit: cli.ExitUsage, stderr: "--input goes with --journal"},
		{name: "an unknown Go workflow", args: []string{"replay", "nope", "--journal", journal}, exit: cli.ExitFailed, stderr: "neither a workflow file nor a Go workflow compiled into centaur (hello,"},
		{name: "a journal that is not one", args: []string{"replay", v1, "--journal", v1}, exit: cli.ExitFailed, stderr: "neither a journal"},
		{name: "a list that is not a journal", args: []string{"replay", v1, "--journal", writeReplayFile(t, t.TempDir(), "list.json", `[{"nom": "x"}]`)}, exit: cli.ExitFailed, stderr: `unknown field "nom"`},
		{name: "an object of another kind", args: []string{"replay", v1, "--journal", writeReplayFile(t, t.TempDir(), "cm.yaml", "apiVersion: v1\nkind: ConfigMap\n")}, exit: cli.ExitFailed, stderr: `holds a "ConfigMap"`},
		{name: "an output format it does not know", args: []string{"replay", v1, "--journal", journal, "-o", "xml"}, exit: cli.ExitUsage, stderr: `--output "xml": want table, json or yaml`},
		{name: "its usage", args: []string{"replay", "--help"}, exit: cli.ExitOK, stdout: "--all-running"},
		{name: "all namespaces without all runs", args: []string{"replay", v1, "--run", "r", "-A"}, exit: cli.ExitUsage, stderr: "--all-namespaces goes with --all-running"},
		{name: "no kubeconfig", args: []string{"replay", v1, "--run", "r", "--kubeconfig", filepath.Join(t.TempDir(), "none")}, exit: cli.ExitFailed, stderr: "load the kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := centaur(t, tc.args...)
			if r.exit != tc.exit || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nwant in it: %s\nstderr:\n%s\nwant in it: %s", r.exit, tc.exit, r.stdout, tc.stdout, r.stderr, tc.stderr)
			}
		})
	}
}

func TestReplayPrintsVerdictsAsData(t *testing.T) {
	isolateCache(t)
	v1 := writeReplayFile(t, t.TempDir(), "order.star", orderFile)
	journal := filepath.Join(t.TempDir(), "journal.json")
	input := `{"id": "o-1", "qty": 2}`
	centaur(t, "run", v1, "--input", input, "--journal", journal)
	renamed := writeReplayFile(t, t.TempDir(), "order.star", strings.Replace(orderFile, `"cool_off"`, `"settle"`, 1))

	r := centaur(t, "replay", renamed, "--journal", journal, "--input", input, "-o", "json")
	var got struct {
		Workflow   string `json:"workflow"`
		Compatible int    `json:"compatible"`
		Diverged   int    `json:"diverged"`
		Runs       []struct {
			Run        string `json:"run"`
			Compatible bool   `json:"compatible"`
			Matched    int    `json:"matched"`
			Divergence struct {
				Entry    int               `json:"entry"`
				Expected map[string]string `json:"expected"`
				Got      map[string]string `json:"got"`
				Site     string            `json:"site"`
				Advice   string            `json:"advice"`
			} `json:"divergence"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.exit != cli.ExitFailed {
		t.Fatalf("exit %d, stdout not the JSON verdicts (%v):\n%s\nstderr:\n%s", r.exit, err, r.stdout, r.stderr)
	}
	if got.Workflow != "order" || got.Compatible != 0 || got.Diverged != 1 || len(got.Runs) != 1 {
		t.Fatalf("summary %+v", got)
	}
	v := got.Runs[0]
	d := v.Divergence
	if v.Run != journal || v.Compatible || v.Matched != 1 || d.Entry != 2 ||
		d.Expected["kind"] != "Sleep" || d.Expected["name"] != "cool_off" || d.Got["name"] != "settle" ||
		!strings.HasSuffix(d.Site, "order.star:5:14 in handler") || !strings.Contains(d.Advice, "get_version") {
		t.Fatalf("verdict %+v", v)
	}

	r = centaur(t, "replay", v1, "--journal", journal, "--input", input, "-o", "yaml")
	if r.exit != cli.ExitOK || !strings.Contains(r.stdout, "compatible: true") || !strings.Contains(r.stdout, "matched: 3") {
		t.Fatalf("exit %d, yaml:\n%s\nstderr:\n%s", r.exit, r.stdout, r.stderr)
	}
}
