package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/cli"
	"github.com/centaur-dev/workflow-operator/internal/managertest"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// apiKey is the key the cluster commands use: it acts in namespace default.
const apiKey = "cli.3c9d1e7a5b2f48d6a0e4c8b1f7d2a9e5"

// flakyFile is a workflow file whose second step fails every attempt: its run retries, then
// fails with StepFailed. Its backoff (1 s, then 2 s) is longer than the pollers' pause after a
// change (0.1 s), so that --follow sees every failed attempt even on a loaded machine: a
// poller sees a run's state, and an attempt retried before the next read leaves no trace there.
const flakyFile = `
WORKFLOW_NAME = "flaky"
DESCRIPTION = "Calls a service that is always down: its fetch step fails three times, and so does the run."

def fetch():
    fail("service unavailable")

def handler(inp, ctx):
    ctx.step("prepare", lambda: "ready")
    return ctx.step("fetch", fetch, retry = RetryPolicy(max_attempts = 3, initial_backoff = "1s"))
`

// startCluster starts a control plane and the real manager binary (its controllers and its
// API server, with the built-in Go workflows and flaky.star in WORKFLOW_DIRS), and points
// CENTAUR_API_URL and CENTAUR_API_KEY at its REST API for the rest of the test. It returns the
// cluster and the manager's log, at debug level so that it has a line per API request.
func startCluster(t *testing.T) (*managertest.Env, *testenv.LogBuffer) {
	t.Helper()
	ctx := context.Background()
	env := managertest.Start(t)
	entry, err := json.Marshal(restapi.KeyEntry{SHA256: restapi.HashKey(apiKey), Namespaces: []string{"default"}, DefaultNamespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: restapi.DefaultKeysSecret.Namespace, Name: restapi.DefaultKeysSecret.Name},
		Data: map[string][]byte{"cli": entry}}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flaky.star"), []byte(flakyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	m, err := testcluster.StartManagerReady(ctx, testcluster.ManagerProcessOptions{
		Binary: env.Binary, Kubeconfig: env.Kubeconfig, Output: logs,
		Env:  []string{"POD_NAMESPACE=" + managertest.OperatorNamespace},
		Args: []string{"--workflow-dirs=" + dir, "--zap-log-level=debug"},
	}, time.Minute)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	t.Cleanup(func() {
		_ = m.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("manager log:\n%s", logs)
		}
	})
	t.Setenv(cli.EnvAPIURL, m.Listeners.API+"/api")
	t.Setenv(cli.EnvAPIKey, apiKey)
	return env, logs
}

// call runs the CLI as centaur does and logs the transcript, which `go test -v` shows (the
// examples of docs/cli.md come from it): stderr first, as a terminal shows a command that
// reports progress on stderr and prints its result on stdout at the end.
func call(t *testing.T, args ...string) result {
	t.Helper()
	r := centaur(t, args...)
	t.Logf("$ centaur %s\n%s%s(exit %d)", strings.Join(args, " "), r.stderr, r.stdout, r.exit)
	return r
}

// ok runs the CLI and fails t unless it exits 0.
func ok(t *testing.T, args ...string) result {
	t.Helper()
	r := call(t, args...)
	if r.exit != cli.ExitOK {
		t.Fatalf("centaur %q = exit %d\nstdout:\n%s\nstderr:\n%s", args, r.exit, r.stdout, r.stderr)
	}
	return r
}

// decode parses the CLI's JSON or YAML output into T.
func decode[T any](t *testing.T, format, out string) T {
	t.Helper()
	var v T
	var err error
	if format == "yaml" {
		err = yaml.UnmarshalStrict([]byte(out), &v)
	} else {
		err = json.Unmarshal([]byte(out), &v)
	}
	if err != nil {
		t.Fatalf("the %s output does not parse: %v\n%s", format, err, out)
	}
	return v
}

// runOf reads a run with `runs get -o json`.
func runOf(t *testing.T, id string) restapi.RunDetail {
	t.Helper()
	return decode[restapi.RunDetail](t, "json", ok(t, "runs", "get", id, "-o", "json").stdout)
}

// startRun starts a run with `start` and returns its id, which is all it prints.
func startRun(t *testing.T, workflow, input string) string {
	t.Helper()
	id := strings.TrimSpace(ok(t, "start", workflow, "--input", input).stdout)
	if id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("start printed %q, not a run id", id)
	}
	return id
}

// expect fails t unless r exited with exit and its stdout and stderr contain the fragments.
func expect(t *testing.T, r result, exit int, stdout, stderr []string) {
	t.Helper()
	bad := r.exit != exit
	for _, f := range stdout {
		bad = bad || !strings.Contains(r.stdout, f)
	}
	for _, f := range stderr {
		bad = bad || !strings.Contains(r.stderr, f)
	}
	if bad {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout with %q, stderr with %q", r.exit, r.stdout, r.stderr, exit, stdout, stderr)
	}
}

func TestClusterCommandsAgainstTheManagersRESTAPI(t *testing.T) {
	began := time.Now()
	env, logs := startCluster(t)
	t.Logf("control plane and manager ready in %s", time.Since(began).Round(time.Millisecond))
	isolateCache(t)

	t.Run("workflows lists the Go workflows and the files", func(t *testing.T) {
		r := ok(t, "workflows")
		expect(t, r, cli.ExitOK, []string{"NAME", "hello", "go", "flaky", "file", "Calls a service that is always down"}, nil)
		list := decode[restapi.WorkflowList](t, "json", ok(t, "workflows", "-o", "json").stdout)
		names := map[string]string{}
		for _, wf := range list.Workflows {
			names[wf.Name] = wf.Source
		}
		if names["hello"] != "go" || names["approval"] != "go" || names["flaky"] != "file" {
			t.Errorf("workflows -o json = %v", names)
		}
	})

	t.Run("start --wait prints the output of a run that succeeds", func(t *testing.T) {
		t0 := time.Now()
		r := ok(t, "start", "hello", "--input", `{"name": "Ada"}`, "--wait")
		t.Logf("start --wait of hello took %s", time.Since(t0).Round(time.Millisecond))
		if out := decode[map[string]string](t, "json", r.stdout); out["greeting"] != "Hello, Ada!" {
			t.Errorf("output %q", r.stdout)
		}
		expect(t, r, cli.ExitOK, nil, []string{"started"})
	})

	t.Run("start --wait of a failing run exits 1 with its reason and message", func(t *testing.T) {
		r := call(t, "start", "hello", "--input", `{}`, "--wait")
		expect(t, r, cli.ExitFailed, nil, []string{"centaur start: run ", "-hello-", " Failed: StepFailed: ", "input.name is empty: say who to greet"})
		if r.stdout != "" {
			t.Errorf("a failed run printed output: %q", r.stdout)
		}
	})

	var flaky string
	t.Run("start --follow prints each entry as the run records it, retries included", func(t *testing.T) {
		r := call(t, "start", "flaky", "--follow")
		expect(t, r, cli.ExitFailed, nil, []string{
			`step prepare → "ready"`,
			"step fetch attempt 1 failed: Error in fail: fail: service unavailable (next attempt ",
			"step fetch attempt 2 failed: Error in fail: fail: service unavailable (next attempt ",
			"step fetch failed after 3 attempts: Error in fail: fail: service unavailable",
			"Failed after ", "Failed: StepFailed: Traceback",
		})
		if i, j := strings.Index(r.stderr, "step prepare"), strings.Index(r.stderr, "step fetch attempt 1"); i < 0 || j < i {
			t.Errorf("entries out of order:\n%s", r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("a failed run printed output: %q", r.stdout)
		}
		flaky = strings.Fields(strings.TrimPrefix(r.stderr, "run "))[0]

		watched := call(t, "runs", "watch", flaky, "-o", "json")
		expect(t, watched, cli.ExitFailed, nil, []string{"centaur runs: run " + flaky + " Failed: StepFailed: "})
		if run := decode[restapi.RunDetail](t, "json", watched.stdout); run.ID != flaky || run.Status != "Failed" || run.Error == nil || run.Error.Reason != "StepFailed" {
			t.Errorf("the failed run printed with -o json: %+v", run)
		}
	})

	t.Run("journal shows a finished run's timeline with its retries", func(t *testing.T) {
		if flaky == "" {
			t.Fatal("needs the flaky run of the spec before")
		}
		r := ok(t, "journal", flaky)
		expect(t, r, cli.ExitOK, []string{
			"run " + flaky + " (flaky) Failed: 2 entries, 2 retries",
			"error StepFailed:\n  Traceback (most recent call last):\n    flaky.star:10:20: in handler\n",
			"AT", "KIND", "NAME", "STATE", "ATTEMPTS", "NOTE",
		}, nil)
		lines := strings.Split(r.stdout, "\n")
		prepare, fetch := lineWith(lines, "  prepare  "), lineWith(lines, "  fetch  ")
		for _, want := range []string{"+", "Step", "Completed", " 1 ", `→ "ready"`} {
			if !strings.Contains(prepare, want) {
				t.Errorf("the prepare line %q lacks %q", prepare, want)
			}
		}
		for _, want := range []string{"+", "Step", "Failed", " 3 ", "Error in fail: fail: service unavailable"} {
			if !strings.Contains(fetch, want) {
				t.Errorf("the fetch line %q lacks %q", fetch, want)
			}
		}
		for _, format := range []string{"json", "yaml"} {
			run := decode[restapi.RunDetail](t, format, ok(t, "journal", flaky, "-o", format).stdout)
			if len(run.Steps) != 2 || run.Steps[0].Name != "prepare" || string(run.Steps[0].Result) != `"ready"` || run.Steps[1].Attempts != 3 {
				t.Errorf("journal -o %s steps: %+v", format, run.Steps)
			}
		}
	})

	t.Run("runs list and get print tables, JSON and YAML", func(t *testing.T) {
		id := startRun(t, "hello", `{"name": "Grace"}`)
		testenv.WaitFor(t, time.Minute, "the run to succeed", func() error {
			if run := runOf(t, id); run.Status != "Succeeded" {
				return fmt.Errorf("status %s", run.Status)
			}
			return nil
		})
		get := ok(t, "runs", "get", id)
		expect(t, get, cli.ExitOK, []string{"ID:", id, "Workflow:", "hello", "Status:", "Succeeded", `{"greeting":"Hello, Grace!"}`, "centaur journal " + id}, nil)
		for _, format := range []string{"json", "yaml"} {
			run := decode[restapi.RunDetail](t, format, ok(t, "runs", "get", id, "-o", format).stdout)
			if run.ID != id || run.Status != "Succeeded" || compact(t, run.Output) != `{"greeting":"Hello, Grace!"}` {
				t.Errorf("runs get -o %s: %+v", format, run)
			}
		}

		list := ok(t, "runs", "list", "--workflow", "hello")
		expect(t, list, cli.ExitOK, []string{"ID", "WORKFLOW", "STATUS", id, "Succeeded"}, nil)
		if strings.Contains(list.stdout, "flaky") {
			t.Errorf("--workflow hello listed another workflow's run:\n%s", list.stdout)
		}
		for _, format := range []string{"json", "yaml"} {
			page := decode[restapi.RunList](t, format, ok(t, "runs", "list", "--workflow", "hello", "-o", format).stdout)
			if len(page.Runs) < 3 || !hasRun(page.Runs, id) {
				t.Errorf("runs list -o %s: %d runs, %s among them: %v", format, len(page.Runs), id, hasRun(page.Runs, id))
			}
		}
		failed := decode[restapi.RunList](t, "json", ok(t, "runs", "list", "--phase", "Failed", "-o", "json").stdout)
		for _, run := range failed.Runs {
			if run.Status != "Failed" {
				t.Errorf("--phase Failed listed a %s run", run.Status)
			}
		}
		if len(failed.Runs) < 2 {
			t.Errorf("--phase Failed listed %d runs, want the failing hello and flaky", len(failed.Runs))
		}
		if one := decode[restapi.RunList](t, "json", ok(t, "runs", "list", "--limit", "1", "-o", "json").stdout); len(one.Runs) != 1 {
			t.Errorf("--limit 1 listed %d runs", len(one.Runs))
		}
	})

	t.Run("runs watch follows a waiting run, which events send resumes", func(t *testing.T) {
		id := startRun(t, "approval", `{"request_id": "req-cli"}`)
		var stdout bytes.Buffer
		stderr := &testenv.LogBuffer{} // read while the watch writes it
		exit := make(chan int, 1)
		go func() { exit <- cli.Main("centaur", []string{"runs", "watch", id, "--timeout", "1m"}, &stdout, stderr) }()
		testenv.WaitFor(t, time.Minute, "runs watch to say what the run waits for", func() error {
			if !strings.Contains(stderr.String(), id+" Waiting for event approval.decided/req-cli\n") {
				return fmt.Errorf("runs watch printed:\n%s", stderr)
			}
			return nil
		})
		ev := decode[restapi.Event](t, "json", ok(t, "events", "send", "--type", "approval.decided", "--correlation", "req-cli",
			"--payload", `{"decision": "approved", "by": "ops"}`, "-o", "json").stdout)
		if ev.EventType != "approval.decided" || ev.CorrelationID != "req-cli" || ev.ID == "" {
			t.Errorf("events send -o json: %+v", ev)
		}
		var r result
		select {
		case r.exit = <-exit:
			r.stdout, r.stderr = stdout.String(), stderr.String()
		case <-time.After(time.Minute):
			t.Fatalf("runs watch did not return after the event; it printed:\n%s", stderr)
		}
		t.Logf("$ centaur runs watch %s --timeout 1m\n%s%s(exit %d)", id, r.stderr, r.stdout, r.exit)
		if out := decode[map[string]string](t, "json", r.stdout); out["decision"] != "approved" || out["by"] != "ops" {
			t.Errorf("output %s", r.stdout)
		}
		expect(t, r, cli.ExitOK, nil, []string{`step submit → "submitted req-cli"`, `wait decision → {"by":"ops","decision":"approved"}`, "Succeeded after"})
		j := ok(t, "journal", id)
		expect(t, j, cli.ExitOK, []string{"(approval) Succeeded: 2 entries, 0 retries", "Event", "decision", `→ {"by":"ops","decision":"approved"}`}, nil)
	})

	t.Run("runs cancel stops a sleeping run, and watching it exits 1", func(t *testing.T) {
		id := startRun(t, "countdown", `{"seconds": 3600}`)
		testenv.WaitFor(t, time.Minute, "the run to sleep", func() error {
			if run := runOf(t, id); run.Status != "Sleeping" {
				return fmt.Errorf("status %s", run.Status)
			}
			return nil
		})
		expect(t, ok(t, "runs", "cancel", id), cli.ExitOK, []string{"run " + id + ": cancel requested"}, nil)
		r := call(t, "runs", "watch", id, "--timeout", "1m")
		expect(t, r, cli.ExitFailed, nil, []string{"sleep countdown until ", id + " Cancelled after ", "centaur runs: run " + id + " Cancelled: the run was cancelled"})
		if strings.Contains(r.stderr, "after -") {
			t.Errorf("a negative duration:\n%s", r.stderr)
		}
		expect(t, ok(t, "runs", "cancel", id), cli.ExitOK, []string{"run " + id + ": cancelled already"}, nil)
		if flaky == "" {
			t.Fatal("needs the flaky run of the spec before")
		}
		finished := call(t, "runs", "cancel", flaky)
		expect(t, finished, cli.ExitFailed, nil, []string{"centaur runs: 409 conflict: ", "already finished (Failed)"})
	})

	t.Run("runs watch polls a sleeping run with a backoff, not in a loop", func(t *testing.T) {
		id := startRun(t, "countdown", `{"seconds": 4}`)
		t0 := time.Now()
		r := ok(t, "runs", "watch", id, "--timeout", "1m")
		watched := time.Since(t0)
		expect(t, r, cli.ExitOK, []string{`"woke_at"`}, []string{"sleep countdown until ", "sleep countdown done", id + " Succeeded after 4"})
		reads := strings.Count(logs.String(), `"path":"/api/workflows/runs/`+id+`"`)
		t.Logf("runs watch of a 4 s sleep: %d reads of the run in %s", reads, watched.Round(time.Millisecond))
		// Backing off from 0.1 s to 2 s, and once more when the wake time comes due, 4 s take
		// about 8 reads (and runs get, 1 more); a loop without a pause would make hundreds.
		if reads < 3 || reads > 20 {
			t.Errorf("runs watch read the run %d times in %s, want 3 to 20", reads, watched)
		}
	})

	t.Run("schedules list, pause, resume and trigger", func(t *testing.T) {
		ws := &workflowsv1alpha1.WorkflowSchedule{
			ObjectMeta: metav1.ObjectMeta{Name: "nightly-hello", Namespace: "default"},
			Spec: workflowsv1alpha1.WorkflowScheduleSpec{Schedule: "0 2 * * *", TimeZone: "Europe/Berlin", WorkflowName: "hello",
				Input: &apiextensionsv1.JSON{Raw: []byte(`{"name": "Night"}`)}},
		}
		if err := env.Client.Create(context.Background(), ws); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, time.Minute, "the schedule to be ready", func() error {
			list := decode[restapi.ScheduleList](t, "json", ok(t, "schedules", "list", "-o", "json").stdout)
			if len(list.Schedules) != 1 || !list.Schedules[0].Ready {
				return fmt.Errorf("schedules %+v", list.Schedules)
			}
			return nil
		})
		expect(t, ok(t, "schedules", "list"), cli.ExitOK, []string{"NAME", "WORKFLOW", "nightly-hello", "hello", "0 2 * * *", "Europe/Berlin", "false", "true"}, nil)
		if list := decode[restapi.ScheduleList](t, "yaml", ok(t, "schedules", "list", "-o", "yaml").stdout); len(list.Schedules) != 1 || list.Schedules[0].Name != "nightly-hello" {
			t.Errorf("schedules list -o yaml: %+v", list)
		}

		expect(t, ok(t, "schedules", "pause", "nightly-hello", "--note", "database migration"), cli.ExitOK, []string{"schedule nightly-hello paused"}, nil)
		if paused := decode[restapi.ScheduleList](t, "json", ok(t, "schedules", "list", "-o", "json").stdout).Schedules[0]; !paused.Paused || paused.PauseNote != "database migration" {
			t.Errorf("after pause: %+v", paused)
		}
		if resumed := decode[restapi.Schedule](t, "json", ok(t, "schedules", "resume", "nightly-hello", "-o", "json").stdout); resumed.Paused || resumed.PauseNote != "" {
			t.Errorf("resume -o json: %+v", resumed)
		}
		expect(t, ok(t, "schedules", "pause", "nightly-hello"), cli.ExitOK, []string{"schedule nightly-hello paused"}, nil)
		expect(t, ok(t, "schedules", "resume", "nightly-hello"), cli.ExitOK, []string{"schedule nightly-hello resumed"}, nil)
		if list := decode[restapi.ScheduleList](t, "json", ok(t, "schedules", "list", "-o", "json").stdout); list.Schedules[0].Paused {
			t.Errorf("still paused after resume: %+v", list.Schedules[0])
		}

		id := strings.TrimSpace(ok(t, "schedules", "trigger", "nightly-hello").stdout)
		r := ok(t, "runs", "watch", id, "--timeout", "1m")
		if out := decode[map[string]string](t, "json", r.stdout); out["greeting"] != "Hello, Night!" {
			t.Errorf("the triggered run's output: %s", r.stdout)
		}
		expect(t, call(t, "schedules", "pause", "no-such-schedule"), cli.ExitFailed, nil, []string{"centaur schedules: 404 not_found: "})
	})

	t.Run("API errors print the status, code and message and exit 1", func(t *testing.T) {
		r := call(t, "start", "no_such_workflow")
		expect(t, r, cli.ExitFailed, nil, []string{"centaur start: 422 unknown_workflow: ", "no_such_workflow"})
		r = call(t, "workflows", "--api-key", "cli.wrong")
		expect(t, r, cli.ExitFailed, nil, []string{"centaur workflows: 401 unauthorized: the API key in X-Api-Key is not valid"})
		r = call(t, "runs", "get", "no-such-run")
		expect(t, r, cli.ExitFailed, nil, []string{"centaur runs: 404 not_found: "})
		r = call(t, "start", "hello", "--input", `{"name": "Ada"}`, "--wait", "-n", "elsewhere")
		expect(t, r, cli.ExitFailed, nil, []string{"centaur start: 403 forbidden: "})
	})

	t.Run("with only a kubeconfig the commands work on the objects", func(t *testing.T) {
		t.Setenv(cli.EnvAPIURL, "")
		t.Setenv(cli.EnvAPIKey, "")
		t.Setenv("KUBECONFIG", env.Kubeconfig)
		testKubeconfigMode(t, env)
	})
}

// testKubeconfigMode drives runs with the kubeconfig of the environment and no REST API: the
// same commands and answers, on WorkflowRuns, WorkflowEvents and WorkflowSchedules; what only
// the API knows says so.
func testKubeconfigMode(t *testing.T, env *managertest.Env) {
	ws := &workflowsv1alpha1.WorkflowSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-hello", Namespace: "default"},
		Spec:       workflowsv1alpha1.WorkflowScheduleSpec{Schedule: "0 3 * * *", WorkflowName: "hello"},
	}
	if err := env.Client.Create(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	r := ok(t, "start", "hello", "--input", `{"name": "Kube"}`, "--wait")
	if out := decode[map[string]string](t, "json", r.stdout); out["greeting"] != "Hello, Kube!" {
		t.Errorf("start --wait output %q", r.stdout)
	}
	id := strings.Fields(strings.TrimPrefix(r.stderr, "run "))[0]
	if run := decode[restapi.RunDetail](t, "yaml", ok(t, "runs", "get", id, "-o", "yaml").stdout); run.ID != id || run.Namespace != "default" ||
		run.WorkflowName != "hello" || run.Status != "Succeeded" || len(run.Steps) != 1 || run.URL != "" {
		t.Errorf("runs get -o yaml of the kubeconfig's run: %+v", run)
	}
	if page := decode[restapi.RunList](t, "json", ok(t, "runs", "list", "--workflow", "hello", "-o", "json").stdout); !hasRun(page.Runs, id) {
		t.Errorf("runs list --workflow hello lacks %s: %+v", id, page.Runs)
	}
	expect(t, ok(t, "journal", id), cli.ExitOK, []string{"run " + id + " (hello) Succeeded: 1 entries, 0 retries"}, nil)
	if page := decode[restapi.RunList](t, "json", ok(t, "runs", "list", "--phase", "succeeded", "-o", "json").stdout); !hasRun(page.Runs, id) {
		t.Errorf("runs list --phase succeeded lacks %s", id)
	}
	expect(t, call(t, "runs", "list", "--phase", "Done"), cli.ExitFailed, nil, []string{"centaur runs: 400 invalid_request: ", `"Done" is not a phase`})

	once := strings.TrimSpace(ok(t, "start", "hello", "--input", `{"name": "Once"}`, "--idempotency-key", "kube-once").stdout)
	if again := strings.TrimSpace(ok(t, "start", "hello", "--input", `{"name": "Once"}`, "--idempotency-key", "kube-once").stdout); again != once {
		t.Errorf("the same idempotency key started %s, then %s", once, again)
	}
	expect(t, call(t, "start", "hello", "--input", `{"name": "Other"}`, "--idempotency-key", "kube-once"), cli.ExitFailed, nil,
		[]string{"centaur start: 409 conflict: ", `idempotency_key "kube-once" already started run`})

	failing := call(t, "start", "hello", "--input", `{}`, "--wait")
	expect(t, failing, cli.ExitFailed, nil, []string{" Failed: StepFailed: ", "input.name is empty"})

	waiting := startRun(t, "approval", `{"request_id": "req-kube"}`)
	testenv.WaitFor(t, time.Minute, "the run to wait", func() error {
		if run := runOf(t, waiting); run.Status != "Waiting" {
			return fmt.Errorf("status %s", run.Status)
		}
		return nil
	})
	ok(t, "events", "send", "--type", "approval.decided", "--correlation", "req-kube", "--payload", `{"decision": "approved"}`)
	if out := decode[map[string]string](t, "json", ok(t, "runs", "watch", waiting, "--timeout", "1m").stdout); out["decision"] != "approved" {
		t.Errorf("the event's run output %v", out)
	}

	sleeping := startRun(t, "countdown", `{"seconds": 3600}`)
	expect(t, ok(t, "runs", "cancel", sleeping), cli.ExitOK, []string{"run " + sleeping + ": cancel requested"}, nil)
	expect(t, call(t, "runs", "watch", sleeping, "--timeout", "1m"), cli.ExitFailed, nil, []string{sleeping + " Cancelled"})
	expect(t, call(t, "runs", "cancel", id), cli.ExitFailed, nil, []string{"centaur runs: 409 conflict: ", "already finished (Succeeded)"})

	expect(t, ok(t, "schedules", "pause", "kube-hello", "--note", "kube"), cli.ExitOK, []string{"schedule kube-hello paused"}, nil)
	paused := false
	for _, s := range decode[restapi.ScheduleList](t, "json", ok(t, "schedules", "list", "-o", "json").stdout).Schedules {
		paused = paused || (s.Name == "kube-hello" && s.Paused && s.PauseNote == "kube")
	}
	if !paused {
		t.Errorf("schedules list after pause does not show kube-hello paused with its note")
	}
	if resumed := decode[restapi.Schedule](t, "json", ok(t, "schedules", "resume", "kube-hello", "-o", "json").stdout); resumed.Paused || resumed.PauseNote != "" {
		t.Errorf("schedules resume -o json: %+v", resumed)
	}

	expect(t, call(t, "runs", "get", "no-such-run"), cli.ExitFailed, nil, []string{"centaur runs: 404 not_found: ", "no-such-run"})
	for _, args := range [][]string{{"workflows"}, {"schedules", "trigger", "kube-hello"}, {"start", "hello", "--eager"}} {
		expect(t, call(t, args...), cli.ExitFailed, nil, []string{"needs the REST API: set CENTAUR_API_URL"})
	}
}

// lineWith is the first of lines that contains s, or "".
func lineWith(lines []string, s string) string {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// compact is raw JSON on one line.
func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return b.String()
}

// hasRun reports whether runs holds run id.
func hasRun(runs []restapi.Run, id string) bool {
	for _, r := range runs {
		if r.ID == id {
			return true
		}
	}
	return false
}
