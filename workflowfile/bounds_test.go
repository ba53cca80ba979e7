package workflowfile_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// allocatedBy runs fn and returns the bytes it allocated (TotalAlloc counts every allocation,
// freed or not).
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestAResultIsRefusedWhileItIsEncodedNotAfter(t *testing.T) {
	// A list of a million references to one 1 KiB string is 16 MB of slots; its JSON would be
	// a GiB. Encoding must stop at the bound instead of building the GiB first.
	w, err := compileWith(t, `
WORKFLOW_NAME = "big"
def handler(inp, ctx):
    return ctx.step("build", lambda: ["x" * 1024] * 1000000)
`, nil, workflowfile.OriginDefinition, &workflowfile.Config{MaxValueBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var out engine.Outcome
	grew := allocatedBy(func() { out = newHarness(t, w, `{}`).execute() })
	if out.Kind != engine.Failed || out.Failure.Reason != engine.ReasonStepFailed || !strings.Contains(out.Failure.Message, "past 1048576 bytes") {
		t.Fatalf("%+v; want StepFailed naming the bound", out.Failure)
	}
	if grew > 256<<20 {
		t.Errorf("the refused result allocated %d MiB; the encoding should stop near its 1 MiB bound", grew>>20)
	}
}

func TestExampleInputIsBoundedWhileItIsEncoded(t *testing.T) {
	_, err := compileWith(t, `
WORKFLOW_NAME = "big"
EXAMPLE_INPUT = {"rows": ["y" * 4096] * 100000}
def handler(inp, ctx):
    return None
`, nil, workflowfile.OriginDefinition, &workflowfile.Config{MaxValueBytes: 64 << 10})
	if err == nil || !strings.Contains(err.Error(), `EXAMPLE_INPUT must be JSON: value["rows"]`) || !strings.Contains(err.Error(), "past 65536 bytes") {
		t.Fatalf("err = %v; want EXAMPLE_INPUT refused at its bound, naming where", err)
	}
}

func TestAParallelCallHasABoundedNumberOfBranches(t *testing.T) {
	src := `
WORKFLOW_NAME = "wide"
def handler(inp, ctx):
    return len(ctx.parallel([("b-%d" % i, lambda: 1) for i in range(inp["n"])]))
`
	w, err := compileWith(t, src, nil, workflowfile.OriginDefinition, &workflowfile.Config{MaxParallelBranches: 8})
	if err != nil {
		t.Fatal(err)
	}
	if out := newHarness(t, w, `{"n": 8}`).execute(); out.Kind != engine.Completed || string(out.Output) != "8" {
		t.Fatalf("8 branches: %+v %s; want all to run", out.Failure, out.Output)
	}
	out := newHarness(t, w, `{"n": 9}`).execute()
	if out.Kind != engine.Failed || out.Failure.Reason != engine.ReasonHandlerError || !strings.Contains(out.Failure.Message, "more than 8 branches") {
		t.Fatalf("9 branches: %+v; want HandlerError naming the bound", out.Failure)
	}
}
