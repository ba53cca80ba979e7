package workflowfile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/textbound"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

func TestTheProductsNightlyReportRunsAsWritten(t *testing.T) {
	w := repoWorkflow(t, "nightly_report")
	if w.Description() == "" || string(w.ExampleInput()) != `{"channel":"ops","topic":"open incidents"}` {
		t.Errorf("description %q, example input %s", w.Description(), w.ExampleInput())
	}
	h := newHarness(t, w, `{"channel": "ops", "topic": "open incidents"}`)

	out := h.execute()
	if out.Kind != engine.Suspended || out.Current != "settle" || !out.WakeAt.Equal(epoch.Add(30*time.Second)) {
		t.Fatalf("first execution: %+v, want a 30 s sleep named settle", out)
	}
	collect, _ := h.entry("collect")
	if string(collect.Result) != `{"topic":"open incidents"}` {
		t.Errorf("collect recorded %s", collect.Result)
	}

	h.now = epoch.Add(30 * time.Second)
	out = h.execute()
	if out.Kind != engine.Suspended || out.Waiting == "" {
		t.Fatalf("after the sleep: %+v, want a wait for the agent turn", out)
	}
	req := h.host.requests["turn-summarize"]
	if req.Prompt != "Write a short report about open incidents" {
		t.Errorf("the agent was asked %q", req.Prompt)
	}

	h.host.answer("All quiet.")
	out = h.execute()
	if out.Kind != engine.Completed || string(out.Output) != `{"channel":"ops","report":"All quiet."}` {
		t.Fatalf("final execution: %+v output %s", out, out.Output)
	}
}

func TestTheProductsGitHubIssueTriageRunsAsWritten(t *testing.T) {
	w := repoWorkflow(t, "github_issue_triage")
	hooks := w.Webhooks()
	if len(hooks) != 1 {
		t.Fatalf("webhooks %+v", hooks)
	}
	want := durable.WebhookSpec{Slug: "github-issue-triage", Provider: "github",
		Auth:       durable.WebhookAuth{Scheme: "github", SecretRef: "GITHUB_WEBHOOK_SECRET"},
		TriggerKey: "X-GitHub-Delivery", AllowedMethods: []string{"POST"},
		AllowedContentTypes: []string{"application/json", "application/x-www-form-urlencoded"}}
	if got := mustJSON(hooks[0]); got != mustJSON(want) {
		t.Errorf("webhook\n got %s\nwant %s", got, mustJSON(want))
	}

	envelope := func(event string) string {
		return mustJSON(map[string]any{"webhook": map[string]any{
			"slug": "github-issue-triage", "provider": "github", "headers": map[string]string{"x-github-event": event},
			"body": map[string]any{"issue": map[string]any{"number": 7, "title": "Crash on start"},
				"repository": map[string]any{"full_name": "acme/api"}},
		}})
	}
	skipped := newHarness(t, w, envelope("push"))
	if out := skipped.execute(); out.Kind != engine.Completed || string(out.Output) != `{"skipped":true,"reason":"unsupported_event"}` {
		t.Fatalf("push event: %+v %s", out, out.Output)
	}

	h := newHarness(t, w, envelope("issues"))
	if out := h.execute(); out.Kind != engine.Suspended {
		t.Fatalf("issues event: %+v", out)
	}
	req := h.host.requests["turn-agent-turn-1-result"]
	if req.Prompt == "" {
		req = h.host.requests["turn-agent-turn-1"]
	}
	if req.Prompt != "Triage GitHub issue acme/api#7: Crash on start" || req.ThreadKey != "github:acme/api:7" {
		t.Errorf("agent request %+v", req)
	}
	h.host.answer("P2 bug")
	if out := h.execute(); out.Kind != engine.Completed || string(out.Output) != `{"triaged":true,"agent_result":"P2 bug"}` {
		t.Fatalf("final: %+v %s", out, out.Output)
	}
}

func TestDeclaredInputIsCheckedAndReadableBothWays(t *testing.T) {
	w := mustCompile(t, `
WORKFLOW_NAME = "greet"
Input = dataclass(name = str, times = field(int, default = 2), tags = field(list, default = []))
def handler(inp, ctx):
    inp.tags.append("changed")  # a handler may change its own input
    return {"attr": inp.name, "index": inp["name"], "times": inp.times, "get": inp.get("name"), "has": "name" in inp}
`)
	cases := map[string]string{
		`{"name": "Ada", "topic": "x"}`: `unknown field "topic": Input declares name (str), times (int), tags (list)`,
		`{}`:                            `missing field "name" (str)`,
		`{"name": 3}`:                   `field "name" must be a str, got a number 3`,
		`{"name": "Ada", "times": 1.5}`: `field "times" must be an int, got a number with a fraction or exponent 1.5`,
		`[1]`:                           `the input must be a JSON object`,
	}
	for input, want := range cases {
		err := w.CheckInput(json.RawMessage(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckInput(%s) = %v, want %q", input, err, want)
		}
		out := newHarness(t, w, input).execute()
		if out.Kind != engine.Failed || out.Failure.Reason != engine.ReasonInvalidInput || !strings.Contains(out.Failure.Message, want) {
			t.Errorf("run with %s: %+v, want InvalidInput %q", input, out.Failure, want)
		}
	}
	out := newHarness(t, w, `{"name": "Ada"}`).execute()
	if out.Kind != engine.Completed || string(out.Output) != `{"attr":"Ada","index":"Ada","times":2,"get":"Ada","has":true}` {
		t.Fatalf("%+v %s", out, out.Output)
	}
	if fields := w.InputFields(); len(fields) != 3 || !fields[0].Required || fields[1].Required || string(fields[1].Default) != "2" {
		t.Errorf("InputFields() = %+v", fields)
	}
}

func TestLoadErrorsSayWhereAndWhy(t *testing.T) {
	cases := []struct {
		name, src  string
		modules    map[string]string
		reason     string
		file       string
		line, col  int
		messageHas string
	}{
		{"syntax", "WORKFLOW_NAME = \"x\"\ndef handler(inp, ctx)\n    return 1\n", nil, workflowfile.ReasonSyntaxError, "wf.star", 3, 1, "want ':'"},
		{"undefined name", "WORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    return nope\n", nil, workflowfile.ReasonSyntaxError, "wf.star", 3, 12, "undefined: nope"},
		{"no name", "def handler(inp, ctx):\n    return 1\n", nil, workflowfile.ReasonMissingWorkflowName, "wf.star", 0, 0, "sets no WORKFLOW_NAME"},
		{"no handler", "WORKFLOW_NAME = \"x\"\n", nil, workflowfile.ReasonMissingHandler, "wf.star", 0, 0, "handler(inp, ctx)"},
		{"one-parameter handler", "WORKFLOW_NAME = \"x\"\ndef handler(inp):\n    return 1\n", nil, workflowfile.ReasonMissingHandler, "wf.star", 2, 1, "two parameters"},
		{"bad slug", "WORKFLOW_NAME = \"x\"\nWEBHOOKS = [\n  WebhookSpec(slug = \"Bad Slug\", auth = \"none\")]\ndef handler(inp, ctx):\n    return 1\n", nil,
			workflowfile.ReasonInvalidWebhook, "wf.star", 3, 14, "lower-case letters"},
		{"webhook without auth", "WORKFLOW_NAME = \"x\"\nWEBHOOKS = [WebhookSpec(slug = \"x\", provider = \"acme\")]\ndef handler(inp, ctx):\n    return 1\n", nil,
			workflowfile.ReasonInvalidWebhook, "wf.star", 2, 24, "no auth"},
		{"unknown template placeholder", "WORKFLOW_NAME = \"x\"\nWEBHOOKS = [WebhookSpec(slug = \"x\", auth = HmacAuth(secret_ref = \"S\", signed_template = \"{ts}.{body}\"))]\ndef handler(inp, ctx):\n    return 1\n", nil,
			workflowfile.ReasonInvalidWebhook, "wf.star", 2, 24, "unknown placeholder {ts}"},
		{"unknown HmacAuth keyword", "WORKFLOW_NAME = \"x\"\nWEBHOOKS = [WebhookSpec(slug = \"x\", auth = HmacAuth(secret_ref = \"S\", encodng = \"base64\"))]\ndef handler(inp, ctx):\n    return 1\n", nil,
			workflowfile.ReasonInvalidWebhook, "wf.star", 2, 52, "unexpected keyword argument \"encodng\" (did you mean encoding?)"},
		{"TokenAuth with a template", "WORKFLOW_NAME = \"x\"\nWEBHOOKS = [WebhookSpec(slug = \"x\", auth = TokenAuth(secret_ref = \"S\", header = \"X-T\", signed_template = \"{body}\"))]\ndef handler(inp, ctx):\n    return 1\n", nil,
			workflowfile.ReasonInvalidWebhook, "wf.star", 2, 53, "unexpected keyword argument \"signed_template\""},
		{"both trigger keys", "WORKFLOW_NAME = \"x\"\nWEBHOOKS = [WebhookSpec(slug = \"x\", auth = \"none\", trigger_key = BodyTriggerKey(\".id\"))]\ndef handler(inp, ctx):\n    return 1\n", nil,
			workflowfile.ReasonInvalidWebhook, "wf.star", 2, 0, "dotted path"},
		{"bad input type", "WORKFLOW_NAME = \"x\"\nInput = dataclass(a = \"str\")\ndef handler(inp, ctx):\n    return 1\n", nil,
			workflowfile.ReasonInvalidInputDecl, "wf.star", 2, 18, `field "a" has type "str"`},
		{"error in a module", "load(\"_lib.star\", \"f\")\nWORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    return f()\n",
			map[string]string{"_lib.star": "def f():\n    return 1\n\nx = 1 // 0\n"}, workflowfile.ReasonLoadFailed, "_lib.star", 4, 7, "division by zero"},
		{"missing module", "load(\"_nope.star\", \"f\")\nWORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    return f()\n", nil,
			workflowfile.ReasonModuleNotFound, "_nope.star", 0, 0, "_nope.star"},
		{"escaping module", "load(\"../x.star\", \"f\")\nWORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    return f()\n", nil,
			workflowfile.ReasonModuleNotFound, "../x.star", 0, 0, "relative path"},
		{"endless top level", "WORKFLOW_NAME = \"x\"\nwhile True:\n    pass\n", nil, workflowfile.ReasonLoadFailed, "wf.star", -1, 0, "too many steps"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := compileWith(t, c.src, c.modules, workflowfile.OriginDir, &workflowfile.Config{MaxSteps: 100_000})
			var le *workflowfile.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LoadError", err)
			}
			if le.Reason != c.reason || le.File != c.file || (c.line >= 0 && le.Line != c.line) || (c.col != 0 && le.Column != c.col) || !strings.Contains(le.Message, c.messageHas) {
				t.Errorf("got %s %s:%d:%d %q\nwant %s %s:%d:%d containing %q", le.Reason, le.File, le.Line, le.Column, le.Message,
					c.reason, c.file, c.line, c.col, c.messageHas)
			}
		})
	}
}

func TestRevisionCoversTheFileItsModulesAndItsOrigin(t *testing.T) {
	src := "load(\"_lib.star\", \"greeting\")\nWORKFLOW_NAME = \"hello_file\"\ndef handler(inp, ctx):\n    return greeting\n"
	rev := func(lib string, origin workflowfile.Origin) string {
		w, err := compileWith(t, src, map[string]string{"_lib.star": lib, "_unused.star": "x = 1"}, origin, nil)
		if err != nil {
			t.Fatal(err)
		}
		return w.Revision()
	}
	a := rev("greeting = 'hi'", workflowfile.OriginDir)
	if !strings.HasPrefix(a, "hello-file-") || len(a) != len("hello-file-")+12 {
		t.Errorf("revision %q: want hello-file-<12 hex digits>", a)
	}
	if a != rev("greeting = 'hi'", workflowfile.OriginDir) {
		t.Error("the same text gives another revision")
	}
	if a == rev("greeting = 'hello'", workflowfile.OriginDir) {
		t.Error("a changed module keeps the revision")
	}
	if a == rev("greeting = 'hi'", workflowfile.OriginDefinition) {
		t.Error("a definition with a directory file's text shares its revision (and would share its trust)")
	}
	w, _ := compileWith(t, src, map[string]string{"_lib.star": "greeting = 'hi'", "_unused.star": "x = 1"}, workflowfile.OriginDir, nil)
	if _, stored := w.Bundle().Files["_unused.star"]; stored {
		t.Error("the bundle stores a module the file never loads")
	}
	again, err := workflowfile.CompileBundle(w.Bundle(), nil)
	if err != nil || again.Revision() != w.Revision() {
		t.Errorf("compiling the stored bundle: %v, revision %q != %q", err, again.Revision(), w.Revision())
	}
}

func TestStepsRunOnceAndReplayTheirRecordedResult(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, `{"path": %q, "query": %q, "agent": %q}`, r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Test"))
	}))
	defer srv.Close()
	w := mustCompile(t, fmt.Sprintf(`
WORKFLOW_NAME = "fetcher"
def handler(inp, ctx):
    got = ctx.step("fetch", lambda: http.get(%q + "/items", params = {"q": "open"}, headers = {"X-Test": "yes"}).json())
    ctx.sleep("pause", "10s")
    return got
`, srv.URL))
	h := newHarness(t, w, `{}`)
	if out := h.execute(); out.Kind != engine.Suspended {
		t.Fatalf("%+v", out)
	}
	h.now = h.now.Add(10 * time.Second)
	out := h.execute()
	if out.Kind != engine.Completed || string(out.Output) != `{"path":"/items","query":"q=open","agent":"yes"}` {
		t.Fatalf("%+v %s", out, out.Output)
	}
	if hits.Load() != 1 {
		t.Errorf("the server was called %d times, want once", hits.Load())
	}
}

// TestHTTPCarriesTheStepsTraceContext checks that a step's http call carries the trace
// context its step was given (the manager gives each attempt its span when it traces), and
// that a traceparent the workflow sets itself wins.
func TestHTTPCarriesTheStepsTraceContext(t *testing.T) {
	previous := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer otel.SetTextMapPropagator(previous)
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
	}))
	defer srv.Close()
	w := mustCompile(t, fmt.Sprintf(`
WORKFLOW_NAME = "traced_fetch"
def handler(inp, ctx):
    ctx.step("fetch", lambda: http.get(%q).status)
    ctx.step("own", lambda: http.get(%q, headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}).status)
    return None
`, srv.URL, srv.URL))
	const traceID, spanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	h := newHarness(t, w, `{}`)
	h.hooks.StepStarting = func(ctx context.Context, _ string, _ int) context.Context {
		tid, _ := trace.TraceIDFromHex(traceID)
		sid, _ := trace.SpanIDFromHex(spanID)
		return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	}
	if out := h.execute(); out.Kind != engine.Completed {
		t.Fatalf("%+v", out)
	}
	if step, own := <-got, <-got; step != "00-"+traceID+"-"+spanID+"-01" || own != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Errorf("traceparent of the step's call %q, of the call that set its own %q", step, own)
	}
}

func TestBatchedStepsShareTheirWrites(t *testing.T) {
	const src = `
WORKFLOW_NAME = "adder"
def handler(inp, ctx):
    total = 0
    for i in range(100):
        total += ctx.step("add-%d" % i, lambda: i, batched = inp["batched"])
    ctx.sleep("pause", "1s")
    return total
`
	writes := map[bool]int{}
	for _, batched := range []bool{false, true} {
		h := newHarness(t, mustCompile(t, src), fmt.Sprintf(`{"batched": %t}`, batched))
		if out := h.execute(); out.Kind != engine.Suspended {
			t.Fatalf("batched=%t: %+v", batched, out)
		}
		if len(h.journal) != 101 {
			t.Fatalf("batched=%t: the journal holds %d entries, want 100 steps and the sleep", batched, len(h.journal))
		}
		writes[batched] = h.writes
		h.now = h.now.Add(time.Second)
		if out := h.execute(); out.Kind != engine.Completed || string(out.Output) != "4950" {
			t.Fatalf("batched=%t: replay ended %+v %s", batched, out, out.Output)
		}
	}
	if writes[true] > 2 || writes[false] < 99 {
		t.Errorf("100 steps took %d writes batched and %d not; want at most 2 batched and one per step otherwise", writes[true], writes[false])
	}
}

func TestSideEffectsOutsideStepsFailWithFileAndLine(t *testing.T) {
	for name, call := range map[string]string{
		"http":  `http.get("http://example.invalid/")`,
		"clock": `time.now()`,
	} {
		t.Run(name, func(t *testing.T) {
			w := mustCompile(t, "WORKFLOW_NAME = \"leaky\"\ndef handler(inp, ctx):\n    x = 1\n    return "+call+"\n")
			out := newHarness(t, w, `{}`).execute()
			if out.Kind != engine.Failed || out.Failure.Reason != engine.ReasonHandlerError ||
				!strings.Contains(out.Failure.Message, "wf.star:4:") || !strings.Contains(out.Failure.Message, "inside a ctx.step function") {
				t.Fatalf("%+v", out.Failure)
			}
		})
	}
}

func TestAnEndlessLoopFailsTheRun(t *testing.T) {
	w, err := compileWith(t, "WORKFLOW_NAME = \"spin\"\ndef handler(inp, ctx):\n    n = 0\n    while True:\n        n += 1\n",
		nil, workflowfile.OriginDir, &workflowfile.Config{MaxSteps: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := newHarness(t, w, `{}`).execute()
	if out.Kind != engine.Failed || out.Failure.Reason != workflowfile.ReasonExecutionLimit || !strings.Contains(out.Failure.Message, "wf.star:") {
		t.Fatalf("%+v", out.Failure)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the loop ran %s before it was stopped", took)
	}
}

func TestStepErrorsKeepTheirReasonAndTrace(t *testing.T) {
	cases := []struct{ name, fn, reason, has string }{
		{"not JSON", `lambda: lambda: 1`, engine.ReasonStepFailed, "must return JSON"},
		{"fail", `lambda: fail("upstream said no")`, engine.ReasonStepFailed, "upstream said no"},
		{"primitive inside a step", `lambda: ctx.sleep("nested", 1)`, engine.ReasonStepFailed, "cannot be called inside the function of step"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := mustCompile(t, "WORKFLOW_NAME = \"bad\"\ndef handler(inp, ctx):\n    return ctx.step(\"s\", "+c.fn+", retry = 1)\n")
			out := newHarness(t, w, `{}`).execute()
			if out.Kind != engine.Failed || out.Failure.Reason != c.reason || !strings.Contains(out.Failure.Message, c.has) ||
				!strings.Contains(out.Failure.Message, "wf.star:3:") {
				t.Fatalf("%+v", out.Failure)
			}
		})
	}
}

func TestRetriesAreDurable(t *testing.T) {
	w := mustCompile(t, `
WORKFLOW_NAME = "flaky"
def handler(inp, ctx):
    return ctx.step("s", lambda: fail("not yet"), retry = RetryPolicy(max_attempts = 2, initial_backoff = "5s"))
`)
	h := newHarness(t, w, `{}`)
	out := h.execute()
	if out.Kind != engine.Suspended || !out.WakeAt.Equal(epoch.Add(5*time.Second)) {
		t.Fatalf("%+v", out)
	}
	if e, _ := h.entry("s"); e.State != engine.StateRetrying || e.Attempts != 1 {
		t.Errorf("entry %+v", e)
	}
	h.now = out.WakeAt
	if out := h.execute(); out.Kind != engine.Failed || out.Failure.Reason != engine.ReasonStepFailed {
		t.Fatalf("%+v", out)
	}
}

func TestSendEventDeliversOnceAcrossReplays(t *testing.T) {
	w := mustCompile(t, `
WORKFLOW_NAME = "notify"
def handler(inp, ctx):
    ctx.send_event("notify", "approval.requested", inp.id, payload = {"by": "ada"})
    ctx.sleep("settle", 10)
    return "done"
`)
	h := newHarness(t, w, `{"id": "req-1"}`)
	if out := h.execute(); out.Kind != engine.Suspended || out.Current != "settle" {
		t.Fatalf("%+v", out)
	}
	h.now = h.now.Add(10 * time.Second)
	if out := h.execute(); out.Kind != engine.Completed {
		t.Fatalf("%+v", out)
	}
	if got := string(h.host.events["approval.requested/req-1"]); got != `{"by":"ada"}` || h.host.sends != 1 {
		t.Errorf("sent payload %s in %d calls; want {\"by\":\"ada\"} once", got, h.host.sends)
	}
}

func TestWaitsEventsChildrenAndTime(t *testing.T) {
	w := mustCompile(t, `
WORKFLOW_NAME = "orchestrate"
def handler(inp, ctx):
    decision = ctx.wait_for_event("approval", "approval.decided", inp.id, timeout = timedelta(minutes = 5))
    late = ctx.wait_for_event("late", "never.sent", inp.id, timeout = 60)
    child = ctx.run_workflow("greet", "hello", {"name": "Ada"})
    ctx.sleep_until("tomorrow", "2030-01-03T00:00:00Z")
    return {"decision": decision, "late": late, "child": child, "at": str(ctx.now()), "run": ctx.run.name}
`)
	h := newHarness(t, w, `{"id": "req-1"}`)
	if out := h.execute(); out.Kind != engine.Suspended || out.Current != "approval" || !out.WakeAt.Equal(epoch.Add(5*time.Minute)) {
		t.Fatalf("%+v", out)
	}
	h.host.events["approval.decided/req-1"] = json.RawMessage(`{"approved": true}`)
	if out := h.execute(); out.Kind != engine.Suspended || out.Current != "late" {
		t.Fatalf("%+v", out)
	}
	h.now = h.now.Add(time.Minute)
	if out := h.execute(); out.Kind != engine.Suspended || out.Current != "greet/result" {
		t.Fatalf("%+v", out)
	}
	if h.host.started["child-greet"] != "hello" {
		t.Errorf("children %+v", h.host.started)
	}
	h.host.children["child-greet"] = engine.Result{Done: true, Output: json.RawMessage(`{"greeting": "Hello, Ada!"}`)}
	if out := h.execute(); out.Kind != engine.Suspended || out.Current != "tomorrow" {
		t.Fatalf("%+v", out)
	}
	h.now = time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)
	out := h.execute()
	want := `{"decision":{"approved":true},"late":null,"child":{"greeting":"Hello, Ada!"},"at":"2030-01-03 00:00:00 +0000 UTC","run":"run-1"}`
	if out.Kind != engine.Completed || string(out.Output) != want {
		t.Fatalf("%+v\n got %s\nwant %s", out, out.Output, want)
	}
}

func TestDefinitionsCannotReachPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `"reached"`) }))
	defer srv.Close()
	src := fmt.Sprintf("WORKFLOW_NAME = \"probe\"\ndef handler(inp, ctx):\n    return ctx.step(\"probe\", lambda: http.get(%q).json(), retry = 1)\n", srv.URL)

	sandbox := &workflowfile.Config{HTTP: workflowfile.NewHTTPClient(&workflowfile.Egress{Deny: workflowfile.DefaultDeniedRanges()})}
	tenant, err := compileWith(t, src, nil, workflowfile.OriginDefinition, sandbox)
	if err != nil {
		t.Fatal(err)
	}
	out := newHarness(t, tenant, `{}`).execute()
	if out.Kind != engine.Failed || !strings.Contains(out.Failure.Message, "127.0.0.1 is in 127.0.0.0/8") {
		t.Fatalf("a definition reached loopback: %+v", out.Failure)
	}

	trusted := mustCompile(t, src)
	if out := newHarness(t, trusted, `{}`).execute(); out.Kind != engine.Completed || string(out.Output) != `"reached"` {
		t.Fatalf("a WORKFLOW_DIRS file could not reach the test server: %+v", out)
	}
}

func TestEveryShippedWorkflowFileLoads(t *testing.T) {
	for _, dir := range []string{"../docs/examples/starlark"} {
		files, err := workflowfile.LoadDir(dir, workflowfile.OriginDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("%s has no workflow file", dir)
		}
		for _, f := range files {
			if f.Err != nil {
				t.Errorf("%s: %v", f.Path, f.Err)
			}
		}
	}
}

func TestSchedulesAreDeclaredAndChecked(t *testing.T) {
	src := `
WORKFLOW_NAME = "nightly"
SCHEDULES = [
    Schedule(cron = "0 2 * * *", time_zone = "Europe/Berlin", input = {"topic": "x"}, jitter = "30s"),
    Schedule(name = "weekly", cron = "@weekly"),
]
def handler(inp, ctx):
    return 1
`
	w := mustCompile(t, src)
	got := w.Schedules()
	if len(got) != 2 || got[0].Cron != "0 2 * * *" || got[0].TimeZone != "Europe/Berlin" || got[0].Jitter != 30*time.Second ||
		mustJSON(got[0].Input) != `{"topic":"x"}` || got[1].Name != "weekly" {
		t.Fatalf("Schedules() = %+v", got)
	}
	refuse := &workflowfile.Config{CheckSchedule: func(s durable.ScheduleSpec) error {
		if s.Cron == "@weekly" {
			return errors.New("not on weekends")
		}
		return nil
	}}
	_, err := compileWith(t, src, nil, workflowfile.OriginDir, refuse)
	var le *workflowfile.LoadError
	if !errors.As(err, &le) || le.Reason != workflowfile.ReasonInvalidSchedule || !strings.Contains(le.Message, "not on weekends") {
		t.Fatalf("a schedule the host refuses: %v", err)
	}
}

func TestPythonSourceSaysWhatItIs(t *testing.T) {
	src, err := os.ReadFile("../workflows/nightly_report.py")
	if err != nil {
		t.Fatal(err)
	}
	var le *workflowfile.LoadError
	_, err = compileWith(t, string(src), nil, workflowfile.OriginDefinition, nil)
	if !errors.As(err, &le) || le.Reason != workflowfile.ReasonPythonNotSupported || !strings.Contains(le.Message, "WorkflowDefinition is Starlark") {
		t.Fatalf("a definition of the product's Python example: %v; want reason PythonNotSupported", err)
	}
	_, err = compileWith(t, string(src), nil, workflowfile.OriginDir, nil)
	if !errors.As(err, &le) || le.Reason != workflowfile.ReasonSyntaxError || !strings.Contains(le.Message, "a Python workflow file is named .py") {
		t.Fatalf("a .star file holding Python: %v; want a syntax error that says to name it .py", err)
	}
	if workflowfile.LooksLikePython("WORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    return 1\n") {
		t.Errorf("Starlark taken for Python")
	}
}

func TestNamespacesLimitWhoMayStartAFile(t *testing.T) {
	w := mustCompile(t, "WORKFLOW_NAME = \"x\"\nNAMESPACES = [\"team-a\", \"ops\"]\ndef handler(inp, ctx):\n    return 1\n")
	if got := w.Namespaces(); len(got) != 2 || got[0] != "team-a" || got[1] != "ops" {
		t.Fatalf("Namespaces() = %v", got)
	}
	if mustCompile(t, "WORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    return 1\n").Namespaces() != nil {
		t.Errorf("a file without NAMESPACES is limited to some namespaces")
	}
	_, err := compileSource(t, "WORKFLOW_NAME = \"x\"\nNAMESPACES = [\"Team_A\"]\ndef handler(inp, ctx):\n    return 1\n", nil)
	if err == nil || !strings.Contains(err.Error(), `"Team_A" is not a namespace name`) {
		t.Fatalf("a bad namespace: %v", err)
	}
}

func TestNotANumberIsNoDuration(t *testing.T) {
	for _, d := range []string{`float("nan")`, `float("inf")`, `-float("inf")`, `1e300`} {
		w := mustCompile(t, "WORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    ctx.sleep(\"nap\", "+d+")\n    return 1\n")
		out := newHarness(t, w, `{}`).execute()
		if out.Kind != engine.Failed || !strings.Contains(out.Failure.Message, "is not a duration") {
			t.Errorf("ctx.sleep(%s): %+v", d, out)
		}
	}
}

func TestPrintAndLogLinesAreBounded(t *testing.T) {
	w := mustCompile(t, `
WORKFLOW_NAME = "chatty"
def handler(inp, ctx):
    print("p" * 1000000)
    ctx.log("m" * 1000000, field = "f" * 1000000, data = {"k": "v" * 1000000})
    return 1
`)
	var out bytes.Buffer
	h := newHarness(t, w, `{}`)
	h.logger = slog.New(slog.NewJSONHandler(&out, nil))
	if o := h.execute(); o.Kind != engine.Completed {
		t.Fatalf("%+v", o)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("logged %d lines", len(lines))
	}
	for _, line := range lines {
		if len(line) > 4*textbound.LogValue || !strings.Contains(line, "cut from 1000000 bytes") {
			t.Errorf("a log line of %d bytes: %.200s", len(line), line)
		}
	}
}

func TestAWebhookMayBeTheOnlyWayIn(t *testing.T) {
	w := mustCompile(t, "WORKFLOW_NAME = \"x\"\nWEBHOOKS = [WebhookSpec(slug = \"x\", auth = \"none\", webhook_only = True)]\ndef handler(inp, ctx):\n    return 1\n")
	if hooks := w.Webhooks(); len(hooks) != 1 || !hooks[0].WebhookOnly {
		t.Fatalf("Webhooks() = %+v", hooks)
	}
}

func TestWebhookSchemesAndPresets(t *testing.T) {
	w := mustCompile(t, `WORKFLOW_NAME = "x"
WEBHOOKS = [
    WebhookSpec(slug = "stripe", auth = HmacAuth.stripe(secret_ref = "STRIPE"), trigger_key = BodyTriggerKey("id")),
    WebhookSpec(slug = "gitlab", auth = TokenAuth.gitlab(secret_ref = "GITLAB"), trigger_key = HeaderTriggerKey("X-Gitlab-Event-UUID")),
    WebhookSpec(slug = "full", auth = HmacAuth(secret_ref = "S", header = "X-Sig", prefix = "v1=", algorithm = "sha512",
        encoding = "base64", signed_template = "{id}.{timestamp}.{body}", timestamp_header = "X-Ts", id_header = "X-Id",
        timestamp_tolerance = timedelta(seconds = 90))),
    WebhookSpec(slug = "list", auth = HmacAuth(secret_ref = "S", header = "Sig", signature_key = "v1", timestamp_key = "t",
        signed_template = "{timestamp}.{body}", timestamp_tolerance = 30)),
    WebhookSpec(slug = "body-time", auth = HmacAuth(secret_ref = "S", header = "L", timestamp_field = "webhookTimestamp", timestamp_tolerance = 60)),
]
def handler(inp, ctx):
    return 1
`)
	got := map[string]durable.WebhookSpec{}
	for _, h := range w.Webhooks() {
		got[h.Slug] = h
	}
	stripe, _ := durable.HmacPreset("stripe", "STRIPE")
	gitlab, _ := durable.TokenPreset("gitlab", "GITLAB")
	want := map[string]durable.WebhookSpec{
		"stripe": {Slug: "stripe", Auth: stripe, TriggerBodyField: "id"},
		"gitlab": {Slug: "gitlab", Auth: gitlab, TriggerKey: "X-Gitlab-Event-UUID"},
		"full": {Slug: "full", Auth: durable.WebhookAuth{Scheme: "hmac", SecretRef: "S", Header: "X-Sig", Prefix: "v1=", Algorithm: "sha512",
			Encoding: "base64", SignedTemplate: "{id}.{timestamp}.{body}", TimestampHeader: "X-Ts", IDHeader: "X-Id", TimestampTolerance: 90 * time.Second}},
		"list": {Slug: "list", Auth: durable.WebhookAuth{Scheme: "hmac", SecretRef: "S", Header: "Sig", SignatureKey: "v1", TimestampKey: "t",
			SignedTemplate: "{timestamp}.{body}", TimestampTolerance: 30 * time.Second}},
		"body-time": {Slug: "body-time", Auth: durable.WebhookAuth{Scheme: "hmac", SecretRef: "S", Header: "L", TimestampField: "webhookTimestamp",
			TimestampTolerance: time.Minute}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Webhooks() =\n%+v\nwant\n%+v", got, want)
	}
	if stripe.Header != "Stripe-Signature" || gitlab.Header != "X-Gitlab-Token" {
		t.Errorf("presets: stripe %+v, gitlab %+v", stripe, gitlab)
	}
}
