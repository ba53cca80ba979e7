package loadprobe_test

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflowfile/loadprobe"
)

func definition(src string) workflowfile.Bundle {
	return workflowfile.Bundle{Origin: workflowfile.OriginDefinition, Entry: "hog.star", Files: map[string]string{"hog.star": src}}
}

const fine = `
WORKFLOW_NAME = "fine"
ROWS = ["row %d" % i for i in range(1000)]
def handler(inp, ctx):
    return len(ROWS)
`

func newProber(t *testing.T) *loadprobe.Prober {
	t.Helper()
	p, err := loadprobe.New(64<<20, 20*time.Second, &workflowfile.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestADefinitionThatAllocatesAGigabyteFailsToLoadAndTheManagerStaysSmall(t *testing.T) {
	p := newProber(t)
	cfg := &workflowfile.Config{Probe: p.Check}
	hogs := map[string]string{
		"a string just under go.starlark.net's 1 GiB cap": `x = "a" * ((1 << 30) - 1)`,
		"8 GiB of list slots":                             `x = [0] * (1 << 29)`,
		"many small allocations":                          `x = [str(i) for i in range(20000000)]`,
		"a dict grown key by key":                         `x = {i: "v%d" % i for i in range(5000000)}`,
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for what, line := range hogs {
		_, err := workflowfile.CompileBundle(definition("WORKFLOW_NAME = \"hog\"\n"+line+"\ndef handler(inp, ctx):\n    return 1\n"), cfg)
		var le *workflowfile.LoadError
		if !errors.As(err, &le) || le.Reason != workflowfile.ReasonMemoryLimitExceeded {
			t.Errorf("%s: err = %v; want MemoryLimitExceeded", what, err)
		}
		// The next probe starts a new child and a good definition loads.
		if w, err := workflowfile.CompileBundle(definition(fine), cfg); err != nil || w.Name() != "fine" {
			t.Fatalf("after %s: a good definition: %v", what, err)
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("the manager's side allocated %d MiB; the hogs' memory belongs to the probe process", grew>>20)
	}
}

func TestOrdinaryLoadErrorsAreLeftToTheManagersOwnCompile(t *testing.T) {
	p := newProber(t)
	_, err := workflowfile.CompileBundle(definition("WORKFLOW_NAME = \"broken\"\ndef handler(inp, ctx)\n"), &workflowfile.Config{Probe: p.Check})
	var le *workflowfile.LoadError
	if !errors.As(err, &le) || le.Reason != workflowfile.ReasonSyntaxError || le.Line != 3 {
		t.Fatalf("err = %v; want the SyntaxError at line 3", err)
	}
}

// FuzzMemoryBound loads definitions that build values of fuzzed kinds and sizes through a
// prober bounded to 32 MiB. Whatever the size, the load either fits (and then the manager's own
// compile allocates about what the probe allowed, never a GiB) or fails with a *LoadError; the
// process never dies.
func FuzzMemoryBound(f *testing.F) {
	for _, seed := range []struct {
		kind uint8
		n    uint64
	}{{0, 1 << 30}, {1, 1 << 29}, {2, 1 << 22}, {3, 1 << 21}, {4, 1 << 25}, {0, 100}, {5, 1 << 20}} {
		f.Add(seed.kind, seed.n)
	}
	exprs := []string{
		`"a" * %d`,
		`[0] * %d`,
		`[str(i) for i in range(%d)]`,
		`{i: i for i in range(%d)}`,
		`b"x" * %d`,
		`",".join(["abc"] * %d)`,
	}
	p, err := loadprobe.New(32<<20, 20*time.Second, &workflowfile.Config{MaxSteps: 5_000_000})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(p.Close)
	cfg := &workflowfile.Config{MaxSteps: 5_000_000, Probe: p.Check}
	f.Fuzz(func(t *testing.T, kind uint8, n uint64) {
		n %= 1 << 31
		src := "WORKFLOW_NAME = \"hog\"\nX = " + fmt.Sprintf(exprs[int(kind)%len(exprs)], n) + "\ndef handler(inp, ctx):\n    return 1\n"
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := workflowfile.CompileBundle(definition(src), cfg)
		runtime.ReadMemStats(&after)
		var le *workflowfile.LoadError
		if err != nil && !errors.As(err, &le) {
			t.Fatalf("%s: error %v is not a *LoadError", src, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
			t.Fatalf("%s: the manager's side allocated %d MiB; the probe allows 32", src, grew>>20)
		}
	})
}
