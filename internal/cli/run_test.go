package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/cli"
)

// orderFile is a Starlark workflow with a step, an hour's sleep and a wait for an event.
const orderFile = `WORKFLOW_NAME = "order"

def handler(inp, ctx):
    total = ctx.step("price", lambda: inp["qty"] * 3)
    ctx.sleep("cool_off", "1h")
    paid = ctx.wait_for_event("paid", "order.paid", correlation_id = inp["id"])
    return {"total": total, "paid": paid}
`

func TestRunRunsAFileToItsEndWithTimeSkipped(t *testing.T) {
	isolateCache(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "order.star")
	if err := os.WriteFile(file, []byte(orderFile), 0o644); err != nil {
		t.Fatal(err)
	}
	event := filepath.Join(dir, "paid.json")
	if err := os.WriteFile(event, []byte(`{"event_type": "order.paid", "correlation_id": "o-1", "payload": {"amount": 6}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(dir, "journal.json")
	input := `{"id": "o-1", "qty": 2}`

	for _, tc := range []struct {
		name   string
		args   []string
		exit   int
		stdout []string // substrings of stdout, in order
		stderr string   // a substring of stderr
	}{
		{name: "flags after the file, an event from a file",
			args: []string{"run", file, "--input", input, "--event", "@" + event, "--journal", journal}, exit: cli.ExitOK,
			stdout: []string{"step price → 6", "sleep cool_off 1h0m0s (skipped)", "wait paid event order.paid (correlation o-1) → received", `output {"total":6,"paid":{"amount":6}}`}},
		{name: "a wait no event answers cannot go on",
			args: []string{"run", "--input", input, file}, exit: cli.ExitFailed,
			stdout: []string{"step price → 6"}, stderr: `no such event is left among those given: give it, e.g. {"event_type": "order.paid", "correlation_id": "o-1"`},
		{name: "an input the handler cannot use fails the run",
			args: []string{"run", file, "--input", `{"qty": 2}`, "--event", "@" + event}, exit: cli.ExitFailed,
			stdout: []string{"failed HandlerError"}},
		{name: "no file", args: []string{"run", "--input", input}, exit: cli.ExitUsage, stderr: "name one workflow file"},
		{name: "input that is not JSON", args: []string{"run", file, "--input", "{qty: 2"}, exit: cli.ExitUsage, stderr: "--input is not JSON"},
		{name: "an event without its type", args: []string{"run", file, "--event", `{"correlation_id": "o-1"}`}, exit: cli.ExitUsage, stderr: "event_type"},
		{name: "a file that is not there", args: []string{"run", filepath.Join(dir, "nope.star")}, exit: cli.ExitFailed, stderr: "nope.star"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := centaur(t, tc.args...)
			if r.exit != tc.exit {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.exit, tc.exit, r.stdout, r.stderr)
			}
			rest := r.stdout
			for _, want := range tc.stdout {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order):\n%s", want, r.stdout)
				}
				rest = rest[i+len(want):]
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("stderr lacks %q:\n%s", tc.stderr, r.stderr)
			}
			if took := time.Since(start); took > time.Minute {
				t.Fatalf("took %s: the hour's sleep was not skipped", took)
			}
		})
	}

	data, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatalf("the journal is not a JSON list: %v\n%s", err, data)
	}
	if len(entries) != 3 || entries[0]["name"] != "price" || entries[0]["kind"] != "Step" || entries[1]["kind"] != "Sleep" ||
		entries[2]["state"] != "Completed" || entries[2]["finishedAt"] == nil {
		t.Fatalf("the journal does not hold the three entries with status.journal's field names:\n%s", data)
	}
}

func TestRunRunsTheProductsPythonExampleWithAMockedAgent(t *testing.T) {
	isolateCache(t)
	r := centaur(t, "run", filepath.Join("..", "..", "workflows", "nightly_report.py"),
		"--input", `{"channel": "ops", "topic": "open incidents"}`, "--agent-reply", "All quiet.")
	if r.exit != cli.ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.exit, r.stdout, r.stderr)
	}
	for _, want := range []string{"step collect", "sleep settle 30s (skipped)", `agent summarize → "All quiet."`, `"report":"All quiet."`} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
}

// askingFile waits for an event, then asks an agent.
const askingFile = `WORKFLOW_NAME = "asking"

def handler(inp, ctx):
    paid = ctx.wait_for_event("paid", "order.paid", correlation_id = "o-7")
    note = ctx.run_agent("note", text = "Thank the customer for paying %s" % paid["amount"])
    return {"paid": paid, "note": note}
`

// TestRunPromptAsksOnStandardInput runs centaur run --prompt as a process, with its answers
// piped to its standard input as a person would type them.
func TestRunPromptAsksOnStandardInput(t *testing.T) {
	isolateCache(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "asking.star")
	if err := os.WriteFile(file, []byte(askingFile), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := binDir(t, "centaur")
	for _, tc := range []struct {
		name, stdin string
		exit        int
		stdout      string // a substring of stdout
		stderr      []string
	}{
		{name: "an event and a reply typed", stdin: "{not json\n{\"amount\": 6}\nYou are welcome.\n", exit: cli.ExitOK,
			stdout: `output {"paid":{"amount":6},"note":"You are welcome."}`,
			stderr: []string{`run local-asking waits for event order.paid (correlation "o-7"): payload as JSON`, "not JSON: {not json",
				"run local-asking asks agent turn note: Thank the customer for paying 6\nreply> "}},
		{name: "input ends at the reply", stdin: "{\"amount\": 6}\n", exit: cli.ExitFailed,
			stderr: []string{`asks agent turn "note" and no agent reply is configured`}},
		{name: "input ends at the wait", stdin: "", exit: cli.ExitFailed,
			stderr: []string{"no such event is left among those given"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(bin, "centaur"), "run", "--prompt", file)
			cmd.Env = append(os.Environ(), asCentaur+"=1")
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exit := cmd.ProcessState.ExitCode()
			bad := exit != tc.exit || !strings.Contains(stdout.String(), tc.stdout)
			for _, s := range tc.stderr {
				bad = bad || !strings.Contains(stderr.String(), s)
			}
			if bad {
				t.Errorf("centaur run --prompt with %q = exit %d (%v)\nstdout:\n%s\nstderr:\n%s", tc.stdin, exit, err, stdout.String(), stderr.String())
			}
		})
	}
}
