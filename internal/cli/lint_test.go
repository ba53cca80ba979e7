package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/cli"
	"github.com/centaur-dev/workflow-operator/internal/testpython"
)

// A valid file of each language, to build broken ones from.
const (
	goodPy = `from dataclasses import dataclass

from api.workflow_engine import WorkflowContext

WORKFLOW_NAME = "good"


@dataclass
class Input:
    topic: str


async def handler(inp: Input, ctx: WorkflowContext) -> dict:
    return await ctx.step("collect", lambda: {"topic": inp.topic})
`
	goodStar = `WORKFLOW_NAME = "good"

def handler(inp, ctx):
    return ctx.step("collect", lambda: {"topic": inp["topic"]})
`
)

// finding is a diagnostic as lint prints it in text form, parsed.
type finding struct {
	file           string // base name
	line, column   int
	severity       string
	reason         string
	messageSnippet string
}

// parseText parses lint's text lines: FILE:LINE:COLUMN: SEVERITY: REASON: MESSAGE.
func parseText(t *testing.T, out string) []finding {
	t.Helper()
	var got []finding
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var f finding
		parts := strings.SplitN(l, ": ", 4)
		if len(parts) != 4 {
			t.Fatalf("lint printed %q, not FILE:LINE:COLUMN: SEVERITY: REASON: MESSAGE", l)
		}
		place := strings.Split(parts[0], ":")
		if len(place) != 3 {
			t.Fatalf("lint printed the place %q, not FILE:LINE:COLUMN", parts[0])
		}
		if _, err := fmt.Sscanf(place[1]+" "+place[2], "%d %d", &f.line, &f.column); err != nil {
			t.Fatalf("lint printed the place %q: %v", parts[0], err)
		}
		f.file, f.severity, f.reason, f.messageSnippet = filepath.Base(place[0]), parts[1], parts[2], parts[3]
		got = append(got, f)
	}
	return got
}

func TestLintFindsEachMistakeWhereItIs(t *testing.T) {
	isolateCache(t)
	for _, tc := range []struct {
		name  string
		files map[string]string
		// want is the one finding expected: file, line (0: the loader knows none, so 1),
		// reason, a piece of the message.
		want finding
	}{
		{
			name:  "py syntax error",
			files: map[string]string{"flow.py": "WORKFLOW_NAME = \"x\"\n\nasync def handler(inp, ctx)\n    return 1\n"},
			want:  finding{file: "flow.py", line: 3, reason: "SyntaxError"},
		},
		{
			name:  "py missing WORKFLOW_NAME",
			files: map[string]string{"flow.py": "async def handler(inp, ctx):\n    return 1\n"},
			want:  finding{file: "flow.py", line: 1, reason: "MissingWorkflowName", messageSnippet: "WORKFLOW_NAME"},
		},
		{
			name:  "py missing handler",
			files: map[string]string{"flow.py": "WORKFLOW_NAME = \"x\"\n"},
			want:  finding{file: "flow.py", line: 1, reason: "MissingHandler", messageSnippet: "handler"},
		},
		{
			name:  "py handler not async",
			files: map[string]string{"flow.py": "WORKFLOW_NAME = \"x\"\n\n\ndef handler(inp, ctx):\n    return 1\n"},
			want:  finding{file: "flow.py", line: 4, reason: "SyncHandler", messageSnippet: "async def"},
		},
		{
			name:  "py handler with one parameter",
			files: map[string]string{"flow.py": "WORKFLOW_NAME = \"x\"\n\n\nasync def handler(inp):\n    return 1\n"},
			want:  finding{file: "flow.py", line: 4, reason: "MissingHandler"},
		},
		{
			name: "py Input of a type the engine cannot check",
			files: map[string]string{"flow.py": "from dataclasses import dataclass\n\nWORKFLOW_NAME = \"x\"\n\n\n@dataclass\nclass Input:\n    when: set\n\n\n" +
				"async def handler(inp, ctx):\n    return 1\n"},
			want: finding{file: "flow.py", line: 7, reason: "InvalidInputDeclaration", messageSnippet: "when"},
		},
		{
			name: "py webhook with a bad slug",
			files: map[string]string{"flow.py": "from api.webhooks import HmacAuth, WebhookSpec\n\nWORKFLOW_NAME = \"x\"\n" +
				"WEBHOOKS = [WebhookSpec(slug=\"Not_A_Slug\", provider=\"github\", auth=HmacAuth.github(secret_ref=\"GITHUB_WEBHOOK_SECRET\"))]\n\n\n" +
				"async def handler(inp, ctx):\n    return 1\n"},
			want: finding{file: "flow.py", line: 4, reason: "InvalidWebhook", messageSnippet: "Not_A_Slug"},
		},
		{
			name: "py webhook without a secret_ref",
			files: map[string]string{"flow.py": "from api.webhooks import HmacAuth, WebhookSpec\n\nWORKFLOW_NAME = \"x\"\n" +
				"WEBHOOKS = [WebhookSpec(slug=\"issues\", provider=\"github\", auth=HmacAuth.github())]\n\n\n" +
				"async def handler(inp, ctx):\n    return 1\n"},
			want: finding{file: "flow.py", line: 4, reason: "LoadFailed", messageSnippet: "secret_ref"},
		},
		{
			name: "py webhook with a secret_ref that names nothing",
			files: map[string]string{"flow.py": "from api.webhooks import HmacAuth, WebhookSpec\n\nWORKFLOW_NAME = \"x\"\n" +
				"WEBHOOKS = [WebhookSpec(slug=\"issues\", provider=\"github\", auth=HmacAuth.github(secret_ref=\"not a ref!\"))]\n\n\n" +
				"async def handler(inp, ctx):\n    return 1\n"},
			want: finding{file: "flow.py", line: 4, reason: "InvalidWebhook", messageSnippet: "secret_ref"},
		},
		{
			name: "py schedule with a bad cron",
			files: map[string]string{"flow.py": "from api.workflow_engine import Schedule\n\nWORKFLOW_NAME = \"x\"\nNAMESPACES = [\"centaur-system\"]\n" +
				"SCHEDULES = [Schedule(cron=\"61 * * * *\")]\n\n\nasync def handler(inp, ctx):\n    return 1\n"},
			want: finding{file: "flow.py", line: 5, reason: "InvalidSchedule", messageSnippet: "61 * * * *"},
		},
		{
			name: "py schedule with an unknown zone",
			files: map[string]string{"flow.py": "from api.workflow_engine import Schedule\n\nWORKFLOW_NAME = \"x\"\nNAMESPACES = [\"centaur-system\"]\n" +
				"SCHEDULES = [Schedule(cron=\"0 2 * * *\", time_zone=\"Mars/Olympus_Mons\")]\n\n\nasync def handler(inp, ctx):\n    return 1\n"},
			want: finding{file: "flow.py", line: 5, reason: "InvalidSchedule", messageSnippet: "Mars/Olympus_Mons"},
		},
		{
			name:  "py import of a module that does not exist",
			files: map[string]string{"flow.py": "WORKFLOW_NAME = \"x\"\nimport no_such_module_here\n\n\nasync def handler(inp, ctx):\n    return 1\n"},
			want:  finding{file: "flow.py", line: 2, reason: "ImportError", messageSnippet: "no_such_module_here"},
		},
		{
			name: "py helper that does not compile, reported in the helper",
			files: map[string]string{
				"flow.py":  "from _util import slug\n\nWORKFLOW_NAME = \"x\"\n\n\nasync def handler(inp, ctx):\n    return slug()\n",
				"_util.py": "def slug(:\n    return 1\n",
			},
			want: finding{file: "_util.py", line: 1, reason: "SyntaxError"},
		},
		{
			name: "star module that does not compile, reported in the module",
			files: map[string]string{
				"flow.star":  "load(\"_util.star\", \"f\")\n\nWORKFLOW_NAME = \"x\"\n\ndef handler(inp, ctx):\n    return f()\n",
				"_util.star": "def f(:\n    return 1\n",
			},
			want: finding{file: "_util.star", line: 1, reason: "SyntaxError"},
		},
		{
			name:  "star syntax error",
			files: map[string]string{"flow.star": "WORKFLOW_NAME = \"x\"\n\nLIMIT = 1 +* 2\n\ndef handler(inp, ctx):\n    return 1\n"},
			want:  finding{file: "flow.star", line: 3, reason: "SyntaxError"},
		},
		{
			name:  "star missing WORKFLOW_NAME",
			files: map[string]string{"flow.star": "def handler(inp, ctx):\n    return 1\n"},
			want:  finding{file: "flow.star", line: 1, reason: "MissingWorkflowName", messageSnippet: "WORKFLOW_NAME"},
		},
		{
			name:  "star missing handler",
			files: map[string]string{"flow.star": "WORKFLOW_NAME = \"x\"\n"},
			want:  finding{file: "flow.star", line: 1, reason: "MissingHandler"},
		},
		{
			name:  "star bad Input",
			files: map[string]string{"flow.star": "WORKFLOW_NAME = \"x\"\nInput = dataclass(when = \"set\")\n\ndef handler(inp, ctx):\n    return 1\n"},
			want:  finding{file: "flow.star", line: 2, reason: "InvalidInputDeclaration"},
		},
		{
			name: "star webhook with a bad slug",
			files: map[string]string{"flow.star": "WORKFLOW_NAME = \"x\"\n" +
				"WEBHOOKS = [WebhookSpec(slug = \"Not_A_Slug\", provider = \"github\", auth = HmacAuth.github(secret_ref = \"S\"))]\n\n" +
				"def handler(inp, ctx):\n    return 1\n"},
			want: finding{file: "flow.star", line: 2, reason: "InvalidWebhook", messageSnippet: "Not_A_Slug"},
		},
		{
			name: "star webhook without a secret_ref",
			files: map[string]string{"flow.star": "WORKFLOW_NAME = \"x\"\n" +
				"WEBHOOKS = [WebhookSpec(slug = \"issues\", provider = \"github\", auth = HmacAuth.github())]\n\n" +
				"def handler(inp, ctx):\n    return 1\n"},
			want: finding{file: "flow.star", line: 2, reason: "InvalidWebhook", messageSnippet: "secret_ref"},
		},
		{
			name: "star schedule with a bad cron",
			files: map[string]string{"flow.star": "WORKFLOW_NAME = \"x\"\nNAMESPACES = [\"centaur-system\"]\n" +
				"SCHEDULES = [Schedule(cron = \"61 * * * *\")]\n\ndef handler(inp, ctx):\n    return 1\n"},
			want: finding{file: "flow.star", line: 3, reason: "InvalidSchedule", messageSnippet: "61 * * * *"},
		},
		{
			name: "star schedule with an unknown zone",
			files: map[string]string{"flow.star": "WORKFLOW_NAME = \"x\"\nNAMESPACES = [\"centaur-system\"]\n" +
				"SCHEDULES = [Schedule(cron = \"0 2 * * *\", time_zone = \"Mars/Olympus_Mons\")]\n\ndef handler(inp, ctx):\n    return 1\n"},
			want: finding{file: "flow.star", line: 3, reason: "InvalidSchedule", messageSnippet: "Mars/Olympus_Mons"},
		},
		{
			name:  "two files of one name in one directory",
			files: map[string]string{"a.star": goodStar, "b.py": goodPy},
			want:  finding{file: "b.py", line: 5, reason: "DuplicateWorkflowName", messageSnippet: "a.star"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			testpython.WriteDir(t, dir, tc.files)
			r := centaur(t, "lint", dir)
			got := parseText(t, r.stdout)
			want := tc.want
			want.severity = "error"
			if r.exit != cli.ExitFailed || len(got) != 1 || got[0].file != want.file || got[0].line != want.line || got[0].column < 1 ||
				got[0].severity != want.severity || got[0].reason != want.reason || !strings.Contains(got[0].messageSnippet, want.messageSnippet) {
				t.Errorf("lint exit %d, found %+v\nstdout:\n%s\nstderr:\n%s\nwant exit 1 and %+v", r.exit, got, r.stdout, r.stderr, want)
			}
		})
	}
}

func TestLintPassesGoodFilesAndNoticesOverrides(t *testing.T) {
	isolateCache(t)
	builtin, overlay := t.TempDir(), t.TempDir()
	testpython.WriteDir(t, builtin, map[string]string{"good.star": goodStar, "other.py": strings.Replace(goodPy, `"good"`, `"other"`, 1),
		"good_test.star": "not loaded (\n", "test_good.py": "not loaded (\n", "_helper.py": "X = 1\n"})
	testpython.WriteDir(t, overlay, map[string]string{"good.py": goodPy})

	r := centaur(t, "lint", builtin)
	if r.exit != cli.ExitOK || r.stdout != "" || !strings.Contains(r.stderr, "2 workflow files in 1 directory, 0 errors") {
		t.Errorf("lint of good files = exit %d\nstdout:\n%s\nstderr:\n%s", r.exit, r.stdout, r.stderr)
	}

	// WORKFLOW_DIRS when no PATH is given, colon-separated, a later directory overriding.
	t.Setenv("WORKFLOW_DIRS", builtin+":"+overlay)
	r = centaur(t, "lint")
	got := parseText(t, r.stdout)
	if r.exit != cli.ExitOK || len(got) != 1 || got[0].file != "good.py" || got[0].severity != "notice" || got[0].reason != cli.ReasonWorkflowOverridden ||
		!strings.Contains(got[0].messageSnippet, filepath.Join(builtin, "good.star")) {
		t.Errorf("lint of an override = exit %d, %+v\nstdout:\n%s\nstderr:\n%s", r.exit, got, r.stdout, r.stderr)
	}

	// Given in the other order, the Starlark file overrides the Python one.
	r = centaur(t, "lint", overlay, builtin)
	if got := parseText(t, r.stdout); r.exit != cli.ExitOK || len(got) != 1 || got[0].file != "good.star" {
		t.Errorf("lint of an override in the other order = exit %d, %+v", r.exit, got)
	}

	t.Setenv("WORKFLOW_DIRS", "")
	if r = centaur(t, "lint"); r.exit != cli.ExitUsage || !strings.Contains(r.stderr, "WORKFLOW_DIRS is empty") {
		t.Errorf("lint with no PATH and no WORKFLOW_DIRS = exit %d, stderr:\n%s", r.exit, r.stderr)
	}
}

func TestLintOfFilesReportsOnlyThoseFiles(t *testing.T) {
	isolateCache(t)
	dir := t.TempDir()
	testpython.WriteDir(t, dir, map[string]string{
		"good.py":    goodPy,
		"broken.py":  "WORKFLOW_NAME = \"broken\"\n",
		"uses.py":    "from _util import f\n\nWORKFLOW_NAME = \"uses\"\n\n\nasync def handler(inp, ctx):\n    return f()\n",
		"_util.py":   "def f(:\n",
		"README.md":  "not a workflow\n",
		"other.star": "WORKFLOW_NAME = \"other\"\n",
	})
	for _, tc := range []struct {
		args []string
		exit int
		want []string // files with a finding
	}{
		{args: []string{filepath.Join(dir, "good.py")}, exit: cli.ExitOK},
		{args: []string{filepath.Join(dir, "README.md")}, exit: cli.ExitOK},
		{args: []string{filepath.Join(dir, "good.py"), filepath.Join(dir, "broken.py")}, exit: cli.ExitFailed, want: []string{"broken.py"}},
		{args: []string{filepath.Join(dir, "_util.py")}, exit: cli.ExitFailed, want: []string{"_util.py"}},
		{args: []string{dir}, exit: cli.ExitFailed, want: []string{"broken.py", "other.star", "_util.py"}},
		{args: []string{filepath.Join(dir, "gone.py")}, exit: cli.ExitFailed, want: []string{"gone.py"}},
	} {
		r := centaur(t, append([]string{"lint"}, tc.args...)...)
		var files []string
		for _, f := range parseText(t, r.stdout) {
			files = append(files, f.file)
		}
		if r.exit != tc.exit || strings.Join(files, ",") != strings.Join(tc.want, ",") {
			t.Errorf("lint %q = exit %d, findings in %q; want exit %d, findings in %q\nstdout:\n%s", tc.args, r.exit, files, tc.exit, tc.want, r.stdout)
		}
	}
}

func TestLintAnnotatesForGitHubActions(t *testing.T) {
	isolateCache(t)
	builtin, overlay := t.TempDir(), t.TempDir()
	testpython.WriteDir(t, builtin, map[string]string{"good.star": goodStar})
	testpython.WriteDir(t, overlay, map[string]string{"good.py": goodPy, "broken.star": "WORKFLOW_NAME = \"b\"\n\nLIMIT = 1 +* 2\n"})
	r := centaur(t, "lint", "--format", "github", builtin, overlay)
	want := []string{
		"::error file=" + filepath.Join(overlay, "broken.star") + ",line=3,col=",
		"::notice file=" + filepath.Join(overlay, "good.py") + ",line=1,col=1,title=WorkflowOverridden::workflow \"good\" overrides",
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.exit != cli.ExitFailed || len(lines) != len(want) {
		t.Fatalf("lint --format github = exit %d\nstdout:\n%s\nstderr:\n%s", r.exit, r.stdout, r.stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("annotation %d:\n%s\nwant it to start with\n%s", i, lines[i], w)
		}
	}
}

// writeFifty writes 25 Python and 25 Starlark workflow files of the size and shape of the
// product's examples (Input, WEBHOOKS, SCHEDULES) into dir.
func writeFifty(t testing.TB, dir string) {
	for i := 0; i < 25; i++ {
		py := fmt.Sprintf(`"""Workflow %[1]d of the benchmark."""
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from api.webhooks import HeaderTriggerKey, HmacAuth, WebhookSpec
from api.workflow_engine import Schedule, WorkflowContext

WORKFLOW_NAME = "py_flow_%[1]d"
NAMESPACES = ["centaur-system"]
WEBHOOKS = [
    WebhookSpec(
        slug="py-flow-%[1]d",
        provider="github",
        auth=HmacAuth.github(secret_ref="GITHUB_WEBHOOK_SECRET"),
        trigger_key=HeaderTriggerKey("X-GitHub-Delivery"),
    )
]
SCHEDULES = [Schedule(cron="0 2 * * *", time_zone="Europe/Berlin")]


@dataclass
class Input:
    channel: str
    topic: str = "incidents"


async def handler(inp: Input, ctx: WorkflowContext) -> dict[str, Any]:
    data = await ctx.step("collect", lambda: {"topic": inp.topic})
    await ctx.sleep("settle", timedelta(seconds=30))
    return {"channel": inp.channel, "data": data}
`, i)
		star := fmt.Sprintf(`WORKFLOW_NAME = "star_flow_%[1]d"
NAMESPACES = ["centaur-system"]
Input = dataclass(channel = str, topic = field(str, default = "incidents"))
WEBHOOKS = [WebhookSpec(slug = "star-flow-%[1]d", provider = "github", auth = HmacAuth.github(secret_ref = "GITHUB_WEBHOOK_SECRET"))]
SCHEDULES = [Schedule(cron = "0 2 * * *", time_zone = "Europe/Berlin")]

def handler(inp, ctx):
    data = ctx.step("collect", lambda: {"topic": inp.topic})
    ctx.sleep("settle", 30)
    return {"channel": inp.channel, "data": data}
`, i)
		testpython.WriteDir(t, dir, map[string]string{fmt.Sprintf("py_flow_%d.py", i): py, fmt.Sprintf("star_flow_%d.star", i): star})
	}
}

// TestLintOfFiftyFilesFitsAPreCommitHook lints a directory of 50 workflow files the way a
// pre-commit hook does (a fresh process's worth of work: a new Python worker, the package
// already in the cache from an earlier run) and prints the time. The bound is loose, only to
// catch something pathological; docs/cli.md quotes the figure.
func TestLintOfFiftyFilesFitsAPreCommitHook(t *testing.T) {
	isolateCache(t)
	dir := t.TempDir()
	writeFifty(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "py_flow_0.py")); err != nil {
		t.Fatal(err)
	}
	centaur(t, "python-path") // the cache a previous run left
	start := time.Now()
	r := centaur(t, "lint", dir)
	took := time.Since(start)
	if r.exit != cli.ExitOK || !strings.Contains(r.stderr, "50 workflow files") {
		t.Fatalf("lint of 50 good files = exit %d\nstdout:\n%s\nstderr:\n%s", r.exit, r.stdout, r.stderr)
	}
	t.Logf("centaur lint of 50 workflow files (25 .py, 25 .star): %s", took.Round(time.Millisecond))
	if took > 20*time.Second {
		t.Errorf("lint of 50 files took %s, over the 20s bound", took)
	}
}

// BenchmarkLintFiftyFiles measures one lint of a directory of 50 workflow files.
func BenchmarkLintFiftyFiles(b *testing.B) {
	cache := b.TempDir()
	b.Setenv("XDG_CACHE_HOME", cache)
	dir := b.TempDir()
	writeFifty(b, dir)
	for b.Loop() {
		if res := cli.Lint([]string{dir}, cli.LintConfig{}); len(res.Diagnostics) != 0 || res.Files != 50 {
			b.Fatalf("lint = %+v", res)
		}
	}
}
