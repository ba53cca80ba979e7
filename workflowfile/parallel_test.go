package workflowfile_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/barrierserver"
)

func TestParallelRunsItsBranchesAtOnceAndRecordsEachAsAStep(t *testing.T) {
	srv := barrierserver.New(2, 5*time.Second)
	defer srv.Close()
	w := mustCompile(t, fmt.Sprintf(`
WORKFLOW_NAME = "pages"
BASE = %q

def fetch(ctx, path):
    def get():
        r = http.get(BASE + path)
        r.raise_for_status()
        return {"text": r.text, "at": str(ctx.now()), "clock": type(time.now())}
    return get

def handler(inp, ctx):
    pages = ctx.parallel([("fetch-docs", fetch(ctx, "/docs")), ("fetch-blog", fetch(ctx, "/blog"))], retry = 1)
    ctx.sleep("pause", "10s")
    return pages
`, srv.URL))
	h := newHarness(t, w, `{}`)
	if out := h.execute(); out.Kind != engine.Suspended || out.Current != "pause" {
		t.Fatalf("first execution: %+v", out)
	}
	for _, name := range []string{"fetch-docs", "fetch-blog"} {
		if e, ok := h.entry(name); !ok || e.Kind != engine.KindStep || e.State != engine.StateCompleted {
			t.Errorf("entry %q = %+v; want a Completed Step", name, e)
		}
	}
	h.now = h.now.Add(10 * time.Second)
	out := h.execute()
	at := epoch.Format("2006-01-02 15:04:05 -0700 MST")
	want := fmt.Sprintf(`[{"text":"docs page","at":%q,"clock":"time.time"},{"text":"blog page","at":%q,"clock":"time.time"}]`, at, at)
	if out.Kind != engine.Completed || string(out.Output) != want {
		t.Fatalf("final execution: %+v\n output %s\n want   %s", out.Failure, out.Output, want)
	}
	if srv.Hits() != 2 {
		t.Errorf("the server was called %d times; want once per branch", srv.Hits())
	}
}

func TestParallelFreezesWhatItsBranchesShare(t *testing.T) {
	// Both branches iterate the same list at once: under -race this proves that they do not
	// race on it. The handler cannot change it afterwards.
	w := mustCompile(t, `
WORKFLOW_NAME = "shared"
def handler(inp, ctx):
    nums = list(range(2000))
    def total():
        t = 0
        for n in nums:
            t += n
        return t
    sums = ctx.parallel([("a", total), ("b", total)])
    if inp.get("mutate"):
        nums.append(1)
    return sums
`)
	if out := newHarness(t, w, `{}`).execute(); out.Kind != engine.Completed || string(out.Output) != `[1999000,1999000]` {
		t.Fatalf("%+v %s", out.Failure, out.Output)
	}
	out := newHarness(t, w, `{"mutate": true}`).execute()
	if out.Kind != engine.Failed || out.Failure.Reason != engine.ReasonHandlerError || !strings.Contains(out.Failure.Message, "frozen list") {
		t.Fatalf("%+v; want HandlerError: the list is frozen", out.Failure)
	}
}

func TestParallelBranchesFollowTheRulesOfSteps(t *testing.T) {
	cases := []struct{ name, call, reason, has string }{
		{"a primitive inside a branch", `ctx.parallel([("a", lambda: 1), ("b", lambda: ctx.sleep("nested", 1))], retry = 1)`,
			engine.ReasonStepFailed, `ctx.sleep cannot be called inside the function of step "b"`},
		{"get_version inside a branch", `ctx.parallel([("a", lambda: ctx.get_version("x", DEFAULT_VERSION, 1))], retry = 1)`,
			engine.ReasonStepFailed, `ctx.get_version cannot be called inside the function of step "a"`},
		{"a failing branch", `ctx.parallel([("a", lambda: 1), ("b", lambda: fail("upstream said no"))], retry = 1)`,
			engine.ReasonStepFailed, "upstream said no"},
		{"not a pair", `ctx.parallel([("a", lambda: 1), 2])`,
			engine.ReasonHandlerError, `ctx.parallel: branches[1] must be a (name, function) pair`},
		{"a dict", `ctx.parallel({"a": lambda: 1})`,
			engine.ReasonHandlerError, `pass its .items()`},
		{"a name that is not a string", `ctx.parallel([(1, lambda: 1)])`,
			engine.ReasonHandlerError, `ctx.parallel: branches[0]: for parameter 1: got int, want string`},
		{"two branches of one name", `ctx.parallel([("a", lambda: 1), ("a", lambda: 2)])`,
			engine.ReasonNonDeterministic, `two branches named "a"`},
		{"a bad retry", `ctx.parallel([("a", lambda: 1)], retry = "often")`,
			engine.ReasonHandlerError, `ctx.parallel: retry: want RetryPolicy(...) or a number of attempts`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := mustCompile(t, "WORKFLOW_NAME = \"bad\"\ndef handler(inp, ctx):\n    return "+c.call+"\n")
			out := newHarness(t, w, `{}`).execute()
			if out.Kind != engine.Failed || out.Failure.Reason != c.reason || !strings.Contains(out.Failure.Message, c.has) {
				t.Fatalf("%+v; want %s with %q", out.Failure, c.reason, c.has)
			}
		})
	}
}

func TestParallelOfNoBranchesIsAnEmptyList(t *testing.T) {
	w := mustCompile(t, "WORKFLOW_NAME = \"none\"\ndef handler(inp, ctx):\n    return ctx.parallel([])\n")
	if out := newHarness(t, w, `{}`).execute(); out.Kind != engine.Completed || string(out.Output) != `[]` {
		t.Fatalf("%+v %s", out.Failure, out.Output)
	}
}
