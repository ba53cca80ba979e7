package pyworkflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/barrierserver"
	"github.com/centaur-dev/workflow-operator/internal/testpython"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

func TestTheProductsExamplesLoadAsWritten(t *testing.T) {
	loader := &pyworkflow.Loader{Pool: newPool(t)}
	files, err := loader.LoadDir(context.Background(), "../workflows")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*pyworkflow.Workflow{}
	for _, f := range files {
		if f.Err != nil {
			t.Fatalf("%s: %v", f.Path, f.Err)
		}
		byName[f.Workflow.Name()] = f.Workflow
	}
	report, triage := byName["nightly_report"], byName["github_issue_triage"]
	if report == nil || triage == nil {
		t.Fatalf("loaded %v; want nightly_report and github_issue_triage", byName)
	}
	fields := report.InputFields()
	if len(fields) != 2 || fields[0].Name != "channel" || fields[0].Type != "str" || !fields[0].Required || fields[1].Name != "topic" {
		t.Errorf("nightly_report's input fields: %+v", fields)
	}
	if string(report.ExampleInput()) != `{"channel":"","topic":""}` {
		t.Errorf("nightly_report's example input: %s", report.ExampleInput())
	}
	if !strings.HasPrefix(report.Revision(), "nightly-report-") || len(report.Revision()) != len("nightly-report-")+12 {
		t.Errorf("revision %q", report.Revision())
	}
	if err := report.CheckInput(json.RawMessage(`{"channel": "ops", "items": []}`)); err == nil || !strings.Contains(err.Error(), `unknown field "items": Input declares channel (str), topic (str)`) {
		t.Errorf("an unknown field: %v", err)
	}
	if err := report.CheckInput(json.RawMessage(`{"channel": "ops", "topic": 3}`)); err == nil || !strings.Contains(err.Error(), `field "topic" must be str, got the number 3`) {
		t.Errorf("a field of the wrong type: %v", err)
	}
	hooks := triage.Webhooks()
	if len(hooks) != 1 || hooks[0].Slug != "github-issue-triage" || hooks[0].Auth.Scheme != "github" ||
		hooks[0].Auth.SecretRef != "GITHUB_WEBHOOK_SECRET" || hooks[0].TriggerKey != "X-GitHub-Delivery" {
		t.Errorf("github_issue_triage's webhooks: %+v", hooks)
	}
}

func TestTheOverlaySampleLoadsWithItsHelper(t *testing.T) {
	loader := &pyworkflow.Loader{Pool: newPool(t)}
	files, err := loader.LoadDir(context.Background(), "../config/samples/overlay/workflows")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Err != nil {
		t.Fatalf("config/samples/overlay/workflows: %+v", files)
	}
	wf := files[0].Workflow
	if wf.Name() != "weekly_digest" || wf.Description() != "Asks the default agent for a digest of the week's notes and returns it.\n\nAn organisation's own workflow, shipped in an overlay (see ../kustomization.yaml)." {
		t.Errorf("weekly_digest: name %q, description %q", wf.Name(), wf.Description())
	}
	if _, ok := wf.Bundle().Files["_text.py"]; !ok {
		t.Errorf("the revision lacks its helper: %v", wf.Bundle().Files)
	}
	h := newHarness(t, wf, `{"team": "platform", "notes": ["b", "a"]}`)
	h.host = &agents{}
	mustComplete(t, h.execute(), `{"team": "platform", "digest": "reply to Write a short weekly digest for team platform from these notes:\n- a\n- b"}`)
}

func TestNightlyReportRunsAsWritten(t *testing.T) {
	pool := newPool(t)
	loader := &pyworkflow.Loader{Pool: pool}
	text, err := os.ReadFile("../workflows/nightly_report.py")
	if err != nil {
		t.Fatal(err)
	}
	wf, _ := loadFile(t, loader, "nightly_report.py", map[string]string{"nightly_report.py": string(text)})
	h := newHarness(t, wf, `{"channel": "ops", "topic": "open incidents"}`)
	h.host = &agents{}
	out := h.execute()
	if out.Kind != engine.Suspended || out.Current != "settle" || !out.WakeAt.Equal(epoch.Add(30*time.Second)) {
		t.Fatalf("outcome: %s; want Suspended at settle for 30 s", describe(out))
	}
	if e, _ := h.entry("collect"); e.State != engine.StateCompleted || string(e.Result) != `{"topic":"open incidents"}` {
		t.Fatalf("collect: %+v", e)
	}
	h.advance(30 * time.Second)
	mustComplete(t, h.execute(), `{"channel": "ops", "report": "reply to Write a short report about open incidents"}`)
	if c := pool.Counts(); c.Hits != 1 || c.ReplayedTurns != 0 {
		t.Errorf("pool counts %+v: the second execution should have resumed the kept handler, replaying nothing", c)
	}
}

// TestAStepGetsItsAttemptsTraceHeaders checks that a Python step function's trace_headers()
// names the span the manager gave its attempt (the trace context of the step's context, as
// the process's propagator writes it), so its outbound calls join the run's trace.
func TestAStepGetsItsAttemptsTraceHeaders(t *testing.T) {
	previous := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer otel.SetTextMapPropagator(previous)
	loader := &pyworkflow.Loader{Pool: newPool(t)}
	wf, _ := loadFile(t, loader, "traced.py", map[string]string{"traced.py": `
from api.workflow_engine import WorkflowContext, trace_headers

WORKFLOW_NAME = "traced"

async def handler(inp, ctx: WorkflowContext):
    return await ctx.step("call", trace_headers)
`})
	const traceID, spanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	h := newHarness(t, wf, `{}`)
	h.hooks.StepStarting = func(ctx context.Context, _ string, _ int) context.Context {
		tid, _ := trace.TraceIDFromHex(traceID)
		sid, _ := trace.SpanIDFromHex(spanID)
		return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	}
	mustComplete(t, h.execute(), `{"traceparent": "00-`+traceID+`-`+spanID+`-01"}`)
}

func TestAStepThatFailsForGoodRaisesStepFailed(t *testing.T) {
	loader := &pyworkflow.Loader{Pool: newPool(t)}
	wf, _ := loadFile(t, loader, "catch.py", map[string]string{"catch.py": `
from api.workflow_engine import StepFailed, WorkflowContext

WORKFLOW_NAME = "catch"

class QuotaExceeded(Exception):
    pass

def charge():
    raise QuotaExceeded("no credit left")

async def handler(inp, ctx: WorkflowContext):
    try:
        await ctx.step("charge", charge, retry=1)
    except StepFailed as e:
        after = await ctx.step("after", lambda: "went on")
        return {"type": e.error_type, "message": e.message, "step": e.step, "after": after}
    return "not caught"
`})
	h := newHarness(t, wf, `{}`)
	mustComplete(t, h.execute(), `{"type": "QuotaExceeded", "message": "no credit left", "step": "charge", "after": "went on"}`)
	if e, _ := h.entry("charge"); e.State != engine.StateFailed || e.ErrorType != "QuotaExceeded" || e.Attempts != 1 {
		t.Errorf("charge: %+v", e)
	}
}

func TestGatheredStepsRunAtOnceAndAreEachRecorded(t *testing.T) {
	barrier := barrierserver.New(3, 10*time.Second)
	defer barrier.Close()
	loader := &pyworkflow.Loader{Pool: newPool(t)}
	wf, _ := loadFile(t, loader, "gather.py", map[string]string{"gather.py": `
import asyncio
import urllib.request

WORKFLOW_NAME = "gather"

def fetch(url):
    return lambda: urllib.request.urlopen(url, timeout=20).read().decode()

async def handler(inp, ctx):
    return await asyncio.gather(*(ctx.step(page, fetch(inp["url"] + "/" + page)) for page in ("docs", "blog", "news")))
`})
	h := newHarness(t, wf, `{"url": "`+barrier.URL+`"}`)
	mustComplete(t, h.execute(), `["docs page", "blog page", "news page"]`)
	for _, page := range []string{"docs", "blog", "news"} {
		if e, ok := h.entry(page); !ok || e.State != engine.StateCompleted {
			t.Errorf("%s: %+v", page, e)
		}
	}
	if barrier.Hits() != 3 {
		t.Errorf("the barrier saw %d requests; want 3, one per step", barrier.Hits())
	}
}

func TestAKeptHandlerIsNotUsedOnceTheJournalMovedOnElsewhere(t *testing.T) {
	marks := filepath.Join(t.TempDir(), "marks")
	files := map[string]string{"moves.py": `
import os

WORKFLOW_NAME = "moves"

def mark(name):
    def do():
        with open(os.environ["MARKS"], "a") as f:
            f.write(name + "\n")
        return name
    return do

async def handler(inp, ctx):
    await ctx.step("a", mark("a"))
    await ctx.sleep("first", 10)
    await ctx.step("b", mark("b"))
    await ctx.sleep("second", 10)
    await ctx.step("c", mark("c"))
    return "done"
`}
	t.Setenv("MARKS", marks)
	here, elsewhere := newPool(t), newPool(t)
	wfHere, _ := loadFile(t, &pyworkflow.Loader{Pool: here}, "moves.py", files)
	wfElsewhere, _ := loadFile(t, &pyworkflow.Loader{Pool: elsewhere}, "moves.py", files)
	h := newHarness(t, wfHere, `{}`)
	if out := h.execute(); out.Current != "first" {
		t.Fatalf("outcome: %s; want Suspended at first", describe(out))
	}
	h.advance(10 * time.Second)
	h.wf = wfElsewhere // another replica executes the run once
	if out := h.execute(); out.Current != "second" {
		t.Fatalf("outcome elsewhere: %s; want Suspended at second", describe(out))
	}
	h.advance(10 * time.Second)
	h.wf = wfHere // back here, where a handler is kept at "first"
	mustComplete(t, h.execute(), `"done"`)
	got, _ := os.ReadFile(marks)
	if string(got) != "a\nb\nc\n" {
		t.Errorf("steps ran %q; want each once: a stale kept handler would run b again", got)
	}
	if c := here.Counts(); c.Hits != 0 || c.Misses != 2 {
		t.Errorf("counts here %+v: the kept handler was stale, so the second execution here must replay", c)
	}
}

func TestADivergingReplayFailsTheRun(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "flag")
	t.Setenv("DIVERGE", flag)
	files := map[string]string{"diverge.py": `
import os

WORKFLOW_NAME = "diverge"

async def handler(inp, ctx):
    if os.path.exists(os.environ["DIVERGE"]):
        await ctx.sleep("x", 1)
    else:
        await ctx.step("x", lambda: 1)
    await ctx.sleep("nap", 10)
    return "done"
`}
	wf, _ := loadFile(t, &pyworkflow.Loader{Pool: newPool(t)}, "diverge.py", files)
	h := newHarness(t, wf, `{}`)
	if out := h.execute(); out.Current != "nap" {
		t.Fatalf("outcome: %s", describe(out))
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.wf, _ = loadFile(t, &pyworkflow.Loader{Pool: newPool(t)}, "diverge.py", files) // a restarted manager replays
	h.advance(10 * time.Second)
	f := mustFail(t, h.execute(), engine.ReasonNonDeterministic)
	if !strings.Contains(f.Message, `"x" was recorded as a Step but the handler now calls it as a Sleep`) {
		t.Errorf("message: %s", f.Message)
	}
}

func TestAHandlerThatNeverAwaitsFailsItsRunAndThePoolRecovers(t *testing.T) {
	pool := newPool(t, func(c *pyworker.Config) { c.HandlerDeadline = 300 * time.Millisecond })
	loader := &pyworkflow.Loader{Pool: pool}
	wf, _ := loadFile(t, loader, "spin.py", map[string]string{"spin.py": `
WORKFLOW_NAME = "spin"

async def handler(inp, ctx):
    if inp.get("spin"):
        await ctx.step("before", lambda: 1)
        while True:
            pass
    return await ctx.step("ok", lambda: "fine")
`})
	h := newHarness(t, wf, `{"spin": true}`)
	for i := 0; i < pyworkflow.DefaultMaxWorkerKills; i++ {
		out := h.execute()
		if out.Kind != engine.Suspended || !strings.Contains(out.Waiting, "took down its Python worker") {
			t.Fatalf("execution %d: %s; want a suspension due now after the worker was killed", i+1, describe(out))
		}
	}
	f := mustFail(t, h.execute(), workflowfile.ReasonExecutionLimit)
	if !strings.Contains(f.Message, "--python-handler-deadline") {
		t.Errorf("message: %s", f.Message)
	}
	if e, _ := h.entry("before"); e.Attempts != 1 {
		t.Errorf("before ran %d times; its record was kept across the kills, so once", e.Attempts)
	}
	mustComplete(t, newHarness(t, wf, `{}`).execute(), `"fine"`)
}

func TestAWorkerKilledMidStepRunsTheStepAgainAndRecordsItOnce(t *testing.T) {
	calls := filepath.Join(t.TempDir(), "calls")
	t.Setenv("CALLS", calls)
	pool := newPool(t)
	wf, _ := loadFile(t, &pyworkflow.Loader{Pool: pool}, "slow.py", map[string]string{"slow.py": `
import os
import time

WORKFLOW_NAME = "slow"

def work():
    with open(os.environ["CALLS"], "a") as f:
        f.write("call\n")
    with open(os.environ["CALLS"]) as f:
        if len(f.readlines()) == 1:
            time.sleep(60)
    return "worked"

async def handler(inp, ctx):
    return await ctx.step("work", work)
`})
	h := newHarness(t, wf, `{}`)
	go func() {
		for {
			if data, _ := os.ReadFile(calls); len(data) > 0 {
				workers, _ := pool.Workers(context.Background())
				for _, w := range workers {
					_ = syscall.Kill(w.PID, syscall.SIGKILL)
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	out := h.execute()
	if out.Kind != engine.Suspended || out.Current != "work" {
		t.Fatalf("outcome: %s; want the step retrying after its worker died", describe(out))
	}
	if e, _ := h.entry("work"); e.State != engine.StateRetrying || e.ErrorType != "WorkerExited" {
		t.Fatalf("work: %+v", e)
	}
	h.advance(time.Minute)
	mustComplete(t, h.execute(), `"worked"`)
	if e, _ := h.entry("work"); e.Attempts != 2 || e.State != engine.StateCompleted {
		t.Errorf("work: %+v; want completed on its second attempt", e)
	}
}

func TestRealTimeAsyncioInAHandlerIsMisuse(t *testing.T) {
	wf, _ := loadFile(t, &pyworkflow.Loader{Pool: newPool(t)}, "naps.py", map[string]string{"naps.py": `
import asyncio

WORKFLOW_NAME = "naps"

async def handler(inp, ctx):
    try:
        await asyncio.sleep(1)
    except BaseException:
        pass
    return "swallowed"
`})
	f := mustFail(t, newHarness(t, wf, `{}`).execute(), engine.ReasonMisuse)
	if !strings.Contains(f.Message, "asyncio.sleep") || !strings.Contains(f.Message, "ctx.sleep") {
		t.Errorf("message: %s", f.Message)
	}
}

func TestStepOneThousandReplaysNothing(t *testing.T) {
	pool := newPool(t)
	wf, _ := loadFile(t, &pyworkflow.Loader{Pool: pool}, "long.py", map[string]string{"long.py": `
WORKFLOW_NAME = "long"

async def handler(inp, ctx):
    for i in range(999):
        await ctx.step(f"s-{i}", lambda: None, batched=True)
    await ctx.sleep("pause", 5)
    return await ctx.step("s-999", lambda: "last")
`})
	h := newHarness(t, wf, `{}`)
	if out := h.execute(); out.Current != "pause" {
		t.Fatalf("outcome: %s", describe(out))
	}
	h.advance(5 * time.Second)
	mustComplete(t, h.execute(), `"last"`)
	if c := pool.Counts(); c.Hits != 1 || c.ReplayedTurns != 0 {
		t.Errorf("counts %+v: step 1,000 must resume the kept handler and replay no turn", c)
	}
}

func TestHelpersAreTheirRevisionsOwn(t *testing.T) {
	loader := &pyworkflow.Loader{Pool: newPool(t, func(c *pyworker.Config) { c.Workers = 1 })}
	src := `
from _util import greeting

WORKFLOW_NAME = "%s"

async def handler(inp, ctx):
    return greeting()
`
	one, _ := loadFile(t, loader, "one.py", map[string]string{"one.py": strings.Replace(src, "%s", "one", 1),
		"_util.py": "def greeting():\n    return 'from one'\n", "api/__init__.py": "raise RuntimeError('the directory shadowed api')\n"})
	two, _ := loadFile(t, loader, "two.py", map[string]string{"two.py": strings.Replace(src, "%s", "two", 1),
		"_util.py": "def greeting():\n    return 'from two'\n"})
	mustComplete(t, newHarness(t, one, `{}`).execute(), `"from one"`)
	mustComplete(t, newHarness(t, two, `{}`).execute(), `"from two"`)
}

func TestAStoredRevisionRunsAnywhereAndOnlyAsStored(t *testing.T) {
	loader := &pyworkflow.Loader{Pool: newPool(t)}
	wf, _ := loadFile(t, loader, "kept.py", map[string]string{"kept.py": "WORKFLOW_NAME = \"kept\"\n\nasync def handler(inp, ctx):\n    return await ctx.step('s', lambda: 'stored')\n"})
	fresh := &pyworkflow.Loader{Pool: newPool(t)} // a restarted manager whose directory has changed since
	stored, err := fresh.Stored(wf.Bundle(), "kept", wf.Revision())
	if err != nil {
		t.Fatal(err)
	}
	mustComplete(t, newHarness(t, stored, `{}`).execute(), `"stored"`)
	tampered := wf.Bundle()
	tampered.Files = map[string]string{"kept.py": tampered.Files["kept.py"] + "# changed\n"}
	if _, err := fresh.Stored(tampered, "kept", wf.Revision()); err == nil {
		t.Error("a bundle changed after it was stored was accepted")
	}
	definition := wf.Bundle()
	definition.Origin = workflowfile.OriginDefinition
	if _, err := fresh.Stored(definition, "kept", wf.Revision()); err == nil {
		t.Error("Python stored outside the operator's namespace was accepted")
	}
}

func TestWithoutPythonEachFileSaysWhatToInstall(t *testing.T) {
	loader := &pyworkflow.Loader{Pool: newPool(t, func(c *pyworker.Config) { c.Python = "python3-that-is-not-installed" })}
	files, err := loader.LoadDir(context.Background(), "../workflows")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("loaded %d files; want the two examples, each failing", len(files))
	}
	for _, f := range files {
		var le *workflowfile.LoadError
		if !errors.As(f.Err, &le) || le.Reason != pyworkflow.ReasonPythonUnavailable ||
			!strings.Contains(le.Message, "python3-that-is-not-installed was not found (install Python 3.9 or later, or set --python-interpreter)") {
			t.Errorf("%s: %v", f.Path, f.Err)
		}
	}
}

func TestSchedulesAndWebhooksAreDeclaredAsInStarlark(t *testing.T) {
	var checked []string
	loader := &pyworkflow.Loader{Pool: newPool(t), CheckSchedule: func(s durable.ScheduleSpec) error {
		checked = append(checked, s.Cron)
		return nil
	}}
	wf, _ := loadFile(t, loader, "nightly.py", map[string]string{"nightly.py": `
from api.webhooks import HmacAuth, WebhookSpec
from api.workflow_engine import Schedule

WORKFLOW_NAME = "nightly"

SCHEDULES = [
    Schedule(cron="0 2 * * *", time_zone="Europe/Berlin", input={"topic": "x"}, jitter="30s"),
    Schedule(name="weekly", cron="@weekly"),
]

WEBHOOKS = [WebhookSpec(slug="deploys", provider="acme", auth=HmacAuth(secret_ref="acme-hook/secret", header="X-Acme-Signature", prefix="sha256="), webhook_only=True)]

async def handler(inp, ctx):
    return 1
`})
	got := wf.Schedules()
	if len(got) != 2 || got[0].Cron != "0 2 * * *" || got[0].TimeZone != "Europe/Berlin" || got[0].Jitter != 30*time.Second ||
		string(got[0].Input.(json.RawMessage)) != `{"topic":"x"}` || got[1].Name != "weekly" || len(checked) != 2 {
		t.Errorf("Schedules() = %+v (checked %v)", got, checked)
	}
	hooks := wf.Webhooks()
	if len(hooks) != 1 || hooks[0].Auth != (durable.WebhookAuth{Scheme: "hmac", SecretRef: "acme-hook/secret", Header: "X-Acme-Signature", Prefix: "sha256="}) || !hooks[0].WebhookOnly {
		t.Errorf("Webhooks() = %+v", hooks)
	}
}

func TestARevisionTooLargeToStoreDoesNotLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("big.py", "WORKFLOW_NAME = \"big\"\n\nasync def handler(inp, ctx):\n    return 1\n")
	write("_data.py", "DATA = '"+strings.Repeat("x", pyworkflow.MaxBundleBytes)+"'\n")
	files, err := (&pyworkflow.Loader{Pool: newPool(t)}).LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var le *workflowfile.LoadError
	if len(files) != 1 || !errors.As(files[0].Err, &le) || le.Reason != pyworkflow.ReasonRevisionTooLarge || !strings.Contains(le.Message, "move data files out") {
		t.Fatalf("%+v", files)
	}
}

func TestAStepThreadPastItsTimeoutIsAbandonedAndItsWorkerReplaced(t *testing.T) {
	pool := newPool(t, func(c *pyworker.Config) { c.Workers = 1 })
	wf, _ := loadFile(t, &pyworkflow.Loader{Pool: pool}, "stuck.py", map[string]string{"stuck.py": `
import time

from api.workflow_engine import StepFailed

WORKFLOW_NAME = "stuck"

def hang():
    time.sleep(600)

async def handler(inp, ctx):
    try:
        await ctx.step("hang", hang, timeout=0.3, retry=1)
    except StepFailed as e:
        return e.message
    return "finished"
`})
	before, err := pool.Workers(context.Background())
	if err != nil || len(before) != 1 {
		t.Fatalf("workers %+v, %v", before, err)
	}
	out := newHarness(t, wf, `{}`).execute()
	mustComplete(t, out, `"step \"hang\" overran its 300ms timeout: context deadline exceeded"`)
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(before[0].PID, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("worker %d still runs the abandoned thread", before[0].PID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mustComplete(t, newHarness(t, wf, `{"again": true}`).execute(), `"step \"hang\" overran its 300ms timeout: context deadline exceeded"`)
}

func TestWorkersOfferThemselvesToTheOOMKillerFirst(t *testing.T) {
	pool := newPool(t)
	wf, _ := loadFile(t, &pyworkflow.Loader{Pool: pool}, "one.py", map[string]string{"one.py": "WORKFLOW_NAME = \"one\"\n\nasync def handler(inp, ctx):\n    return 1\n"})
	mustComplete(t, newHarness(t, wf, `{}`).execute(), `1`)
	workers, err := pool.Workers(context.Background())
	if err != nil || len(workers) == 0 {
		t.Fatalf("workers %+v, %v", workers, err)
	}
	for _, w := range workers {
		adj, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(w.PID), "oom_score_adj"))
		if err != nil || strings.TrimSpace(string(adj)) != "1000" {
			t.Errorf("worker %d: oom_score_adj %q (%v); want 1000", w.PID, adj, err)
		}
	}
}

func TestAStoredRevisionThatNoLongerLoadsFailsItsRun(t *testing.T) {
	b := workflowfile.Bundle{Origin: workflowfile.OriginDir, Entry: "gone.py", Files: map[string]string{
		"gone.py": "import a_module_uninstalled_since\n\nWORKFLOW_NAME = \"gone\"\n\nasync def handler(inp, ctx):\n    return 1\n"}}
	revision := workflowfile.RevisionName("gone", pyworker.Digest(pyworker.Bundle{Origin: string(b.Origin), Entry: b.Entry, Files: b.Files}))
	stored, err := (&pyworkflow.Loader{Pool: newPool(t)}).Stored(b, "gone", revision)
	if err != nil {
		t.Fatal(err)
	}
	f := mustFail(t, newHarness(t, stored, `{}`).execute(), pyworkflow.ReasonRevisionInvalid)
	if !strings.Contains(f.Message, "ImportError") || !strings.Contains(f.Message, "a_module_uninstalled_since") {
		t.Errorf("message: %s", f.Message)
	}
}

func TestAWorkerLostWhileItImportsARunsRevisionHasTheRunExecutedAgain(t *testing.T) {
	dir := t.TempDir()
	importing, slow := filepath.Join(dir, "importing"), filepath.Join(dir, "slow")
	t.Setenv("IMPORT_MARKS", dir)
	if err := os.WriteFile(slow, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := workflowfile.Bundle{Origin: workflowfile.OriginDir, Entry: "heavy.py", Files: map[string]string{"heavy.py": `
import os
import time

marks = os.environ["IMPORT_MARKS"]
with open(os.path.join(marks, "importing.tmp"), "w") as f:
    f.write(str(os.getpid()))
os.replace(os.path.join(marks, "importing.tmp"), os.path.join(marks, "importing"))
while os.path.exists(os.path.join(marks, "slow")):
    time.sleep(0.02)

WORKFLOW_NAME = "heavy"

async def handler(inp, ctx):
    return await ctx.step("s", lambda: "imported")
`}}
	revision := workflowfile.RevisionName("heavy", pyworker.Digest(pyworker.Bundle{Origin: string(b.Origin), Entry: b.Entry, Files: b.Files}))
	pool := newPool(t)
	stored, err := (&pyworkflow.Loader{Pool: pool}).Stored(b, "heavy", revision)
	if err != nil {
		t.Fatal(err)
	}
	// Only the worker that imports is killed: an idle one killed too could be handed to the
	// next execution before the pool learnt of its death, which is not what this test is about.
	go func() {
		for {
			if mark, err := os.ReadFile(importing); err == nil {
				if pid, err := strconv.Atoi(string(mark)); err == nil && slices.Contains(pool.PIDs(), pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				_ = os.Remove(slow)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	h := newHarness(t, stored, `{}`)
	out := h.execute()
	if out.Kind != engine.Suspended || !strings.Contains(out.Waiting, "executing again from the journal") {
		t.Fatalf("outcome: %s; want the run executed again after its worker was lost mid-import", describe(out))
	}
	mustComplete(t, h.execute(), `"imported"`)
}

// TestPresetsAndSchemeFieldsMatchGo loads a Python file declaring every HmacAuth and TokenAuth
// preset, a fully spelled HmacAuth and a BodyTriggerKey, and compares what the manager gets
// with Go's presets (durable.HmacPreset, the table the Starlark loader uses too), so the two
// tables cannot drift apart.
func TestPresetsAndSchemeFieldsMatchGo(t *testing.T) {
	var hooks []string
	for _, name := range durable.HmacPresetNames() {
		hooks = append(hooks, fmt.Sprintf(`WebhookSpec(slug="h-%s", auth=HmacAuth.%s(secret_ref="S"))`, strings.ReplaceAll(name, "_", "-"), name))
	}
	for _, name := range durable.TokenPresetNames() {
		hooks = append(hooks, fmt.Sprintf(`WebhookSpec(slug="t-%s", auth=TokenAuth.%s(secret_ref="S"))`, name, name))
	}
	hooks = append(hooks, `WebhookSpec(slug="full", trigger_key=BodyTriggerKey("event.id"), auth=HmacAuth(secret_ref="S", header="X-Sig",
        prefix="v1=", algorithm="sha512", encoding="base64", signed_template="{id}.{timestamp}.{body}", timestamp_header="X-Ts",
        id_header="X-Id", timestamp_tolerance=timedelta(seconds=90)))`,
		`WebhookSpec(slug="token", auth=TokenAuth(secret_ref="S", header="Authorization", prefix="Bearer "))`)
	wf, _ := loadFile(t, &pyworkflow.Loader{Pool: newPool(t)}, "hooks.py", map[string]string{"hooks.py": `
from datetime import timedelta
from api.webhooks import BodyTriggerKey, HmacAuth, TokenAuth, WebhookSpec

WORKFLOW_NAME = "hooks"
WEBHOOKS = [` + strings.Join(hooks, ",\n    ") + `]

async def handler(inp, ctx):
    return 1
`})
	got := map[string]durable.WebhookSpec{}
	for _, h := range wf.Webhooks() {
		got[h.Slug] = h
	}
	for _, name := range durable.HmacPresetNames() {
		want, _ := durable.HmacPreset(name, "S")
		if a := got["h-"+strings.ReplaceAll(name, "_", "-")].Auth; a != want {
			t.Errorf("HmacAuth.%s: Python declares %+v, Go %+v", name, a, want)
		}
	}
	for _, name := range durable.TokenPresetNames() {
		want, _ := durable.TokenPreset(name, "S")
		if a := got["t-"+name].Auth; a != want {
			t.Errorf("TokenAuth.%s: Python declares %+v, Go %+v", name, a, want)
		}
	}
	full := got["full"]
	want := durable.WebhookAuth{Scheme: "hmac", SecretRef: "S", Header: "X-Sig", Prefix: "v1=", Algorithm: "sha512", Encoding: "base64",
		SignedTemplate: "{id}.{timestamp}.{body}", TimestampHeader: "X-Ts", IDHeader: "X-Id", TimestampTolerance: 90 * time.Second}
	if full.Auth != want || full.TriggerBodyField != "event.id" || full.TriggerKey != "" {
		t.Errorf("full = %+v, want auth %+v and trigger body field event.id", full, want)
	}
	if a := got["token"].Auth; a != (durable.WebhookAuth{Scheme: "token", SecretRef: "S", Header: "Authorization", Prefix: "Bearer "}) {
		t.Errorf("TokenAuth(...) = %+v", a)
	}
}

func TestAnUnusableHmacSchemeDoesNotLoad(t *testing.T) {
	dir := t.TempDir()
	testpython.WriteDir(t, dir, map[string]string{"hooks.py": `
from api.webhooks import HmacAuth, WebhookSpec

WORKFLOW_NAME = "hooks"
WEBHOOKS = [WebhookSpec(slug="acme", auth=HmacAuth(secret_ref="S", signed_template="{ts}.{body}", timestamp_header="X-Ts"))]

async def handler(inp, ctx):
    return 1
`})
	files, err := (&pyworkflow.Loader{Pool: newPool(t)}).LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var le *workflowfile.LoadError
	if len(files) != 1 || !errors.As(files[0].Err, &le) || le.Reason != workflowfile.ReasonInvalidWebhook ||
		!strings.Contains(le.Message, "unknown placeholder {ts}") || le.Line != 5 {
		t.Fatalf("%+v (%v)", files, le)
	}
}
