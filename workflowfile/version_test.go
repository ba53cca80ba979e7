package workflowfile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// reportBefore and reportAfter are a file before and after a change of how it fetches; the
// change is under ctx.get_version, supporting versions DEFAULT_VERSION to 1 unless a test
// replaces the range.
const (
	reportBefore = `
WORKFLOW_NAME = "report"
def handler(inp, ctx):
    ctx.sleep("nap", "1s")
    page = ctx.step("fetch", lambda: "old api")
    ctx.sleep("after", "1s")
    return [page, DEFAULT_VERSION]
`
	reportAfter = `
WORKFLOW_NAME = "report"
def handler(inp, ctx):
    ctx.sleep("nap", "1s")
    v = ctx.get_version("fetch-api", DEFAULT_VERSION, 1)
    if v == DEFAULT_VERSION:
        page = ctx.step("fetch", lambda: "old api")
    else:
        page = ctx.step("fetch-v2", lambda: "new api")
    ctx.sleep("after", "1s")
    return [page, v]
`
)

// runReport executes h until it completes or fails, moving the clock past each nap.
func runReport(t *testing.T, h *harness) engine.Outcome {
	t.Helper()
	for range 4 {
		out := h.execute()
		if out.Kind != engine.Suspended {
			return out
		}
		h.now = out.WakeAt
	}
	t.Fatalf("the run did not finish: journal %+v", h.journal)
	return engine.Outcome{}
}

func TestGetVersionInAFile(t *testing.T) {
	t.Run("a new run records the newest version and takes the new branch", func(t *testing.T) {
		h := newHarness(t, mustCompile(t, reportAfter), `{}`)
		if out := runReport(t, h); out.Kind != engine.Completed || string(out.Output) != `["new api",1]` {
			t.Fatalf("%+v %s", out.Failure, out.Output)
		}
		if e, ok := h.entry("fetch-api"); !ok || e.Kind != engine.KindVersion || string(e.Result) != "1" {
			t.Errorf("entry fetch-api = %+v; want a Version entry recording 1", e)
		}
	})
	t.Run("a run that went past the change on the old code keeps the old branch", func(t *testing.T) {
		h := newHarness(t, mustCompile(t, reportBefore), `{}`)
		h.execute()
		h.now = h.now.Add(time.Second)
		if out := h.execute(); out.Kind != engine.Suspended || out.Current != "after" {
			t.Fatalf("on the old code: %+v", out)
		}
		h.wf = mustCompile(t, reportAfter)
		if out := runReport(t, h); out.Kind != engine.Completed || string(out.Output) != `["old api",-1]` {
			t.Fatalf("%+v %s", out.Failure, out.Output)
		}
		if e, ok := h.entry("fetch-api"); ok {
			t.Errorf("an old run recorded %+v", e)
		}
	})
	t.Run("a version outside the range fails the run", func(t *testing.T) {
		h := newHarness(t, mustCompile(t, reportAfter), `{}`)
		h.execute()
		h.now = h.now.Add(time.Second)
		h.execute()
		h.wf = mustCompile(t, strings.Replace(reportAfter, `ctx.get_version("fetch-api", DEFAULT_VERSION, 1)`, `ctx.get_version("fetch-api", 2, 3)`, 1))
		out := runReport(t, h)
		if out.Kind != engine.Failed || out.Failure.Reason != engine.ReasonUnsupportedVersion ||
			!strings.Contains(out.Failure.Message, `change "fetch-api": the run took version 1, but this code supports versions 2 to 3`) {
			t.Fatalf("%+v; want UnsupportedVersion naming the change, the version and the range", out.Failure)
		}
	})
	t.Run("arguments are checked", func(t *testing.T) {
		w := mustCompile(t, "WORKFLOW_NAME = \"bad\"\ndef handler(inp, ctx):\n    return ctx.get_version(\"x\", DEFAULT_VERSION, \"1\")\n")
		out := newHarness(t, w, `{}`).execute()
		if out.Kind != engine.Failed || out.Failure.Reason != engine.ReasonHandlerError ||
			!strings.Contains(out.Failure.Message, "ctx.get_version: for parameter max_supported: got string, want int") {
			t.Fatalf("%+v", out.Failure)
		}
	})
}
