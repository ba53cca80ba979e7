package workflowfile_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// revisionPattern is the shape of a revision: a DNS label ending in 12 hex digits.
var revisionPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?-[0-9a-f]{12}$`)

// fuzzConfig keeps each fuzzed file's top level and handler short.
var fuzzConfig = &workflowfile.Config{MaxSteps: 100_000}

// FuzzCompile feeds arbitrary text to the loader, as a WorkflowDefinition's source is. It must
// never panic or hang; a failure must be a *LoadError with a reason and a message; a file that
// loads must have a name, a revision that compiling its bundle again gives back, and a handler
// that runs on the engine without panicking the process.
func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		"WORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    return inp\n",
		"WORKFLOW_NAME = \"x\"\nInput = dataclass(a = str, b = field(int, default = 2))\ndef handler(inp, ctx):\n    return inp.a\n",
		"WORKFLOW_NAME = \"x\"\nWEBHOOKS = [WebhookSpec(slug = \"s\", auth = HmacAuth.github(secret_ref = \"S\"))]\ndef handler(inp, ctx):\n    return 1\n",
		"WORKFLOW_NAME = \"x\"\nSCHEDULES = [Schedule(cron = \"@daily\")]\ndef handler(inp, ctx):\n    return ctx.step(\"s\", lambda: 1)\n",
		"WORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    while True:\n        pass\n",
		"load(\"_x.star\", \"y\")\n", "def handler(", "WORKFLOW_NAME = 1", "x = [x for x in range(1000000)]",
		"WORKFLOW_NAME = \"x\"\ndef handler(inp, ctx):\n    return ctx.sleep(\"s\", \"1h\")\n", "\x00\xff", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		b := workflowfile.Bundle{Origin: workflowfile.OriginDefinition, Entry: "f.star", Files: map[string]string{"f.star": src}}
		w, err := workflowfile.CompileBundle(b, fuzzConfig)
		if err != nil {
			var le *workflowfile.LoadError
			if !errors.As(err, &le) || le.Reason == "" || le.Message == "" {
				t.Fatalf("error %v is not a *LoadError with a reason and a message", err)
			}
			return
		}
		if w.Name() == "" || !revisionPattern.MatchString(w.Revision()) {
			t.Fatalf("loaded workflow without a name or revision: %q %q", w.Name(), w.Revision())
		}
		again, err := workflowfile.CompileBundle(w.Bundle(), fuzzConfig)
		if err != nil || again.Revision() != w.Revision() {
			t.Fatalf("the bundle does not compile to the same revision: %v", err)
		}
		out := newHarnessT(t, w, `{"a": "x"}`).execute()
		if out.Kind == engine.Aborted {
			t.Fatalf("an execution aborted without a failing recorder: %+v", out)
		}
	})
}

// FuzzInput feeds arbitrary JSON inputs to a declared Input: CheckInput and a run must agree,
// and neither may panic.
func FuzzInput(f *testing.F) {
	for _, seed := range []string{`{"name": "Ada"}`, `{}`, `null`, `[1]`, `{"name": 3}`, `{"name": "a", "n": 1.5}`, `{"x": 1}`, `"s"`, ``} {
		f.Add(seed)
	}
	w, err := workflowfile.CompileBundle(workflowfile.Bundle{Origin: workflowfile.OriginDir, Entry: "f.star", Files: map[string]string{"f.star": `
WORKFLOW_NAME = "typed"
Input = dataclass(name = str, n = field(int, default = 1), tags = field(list, default = []), any = field(Any, default = None))
def handler(inp, ctx):
    return {"name": inp.name, "n": inp.n}
`}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input string) {
		if !json.Valid([]byte(input)) && input != "" {
			return
		}
		checkErr := w.CheckInput(json.RawMessage(input))
		out := newHarnessT(t, w, input).execute()
		invalid := out.Kind == engine.Failed && out.Failure.Reason == engine.ReasonInvalidInput
		if (checkErr != nil) != invalid {
			t.Fatalf("CheckInput says %v but the run ended %+v", checkErr, out)
		}
	})
}
