package testflows

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// TestNoopFileDoesWhatNoopDoes holds the benchmark's comparison of a file and a Go workflow
// fair: both record the same steps and answer the same output, batched or not.
func TestNoopFileDoesWhatNoopDoes(t *testing.T) {
	file, err := workflowfile.CompileBundle(workflowfile.Bundle{Origin: workflowfile.OriginDir, Entry: "bench_noop_file.star",
		Files: map[string]string{"bench_noop_file.star": NoopFile}}, nil)
	if err != nil {
		t.Fatalf("compile NoopFile: %v", err)
	}
	if file.Name() != NoopFileName {
		t.Errorf("NoopFile is named %q, want %q", file.Name(), NoopFileName)
	}
	for _, input := range []string{`{"steps": 5}`, `{"steps": 5, "batched": true}`} {
		goNames, goOut, goWrites := execute(t, Noop, input)
		fileNames, fileOut, fileWrites := execute(t, file, input)
		if !slices.Equal(goNames, fileNames) || goOut != fileOut || goWrites != fileWrites {
			t.Errorf("input %s: Go recorded %v and answered %s in %d writes; the file %v, %s in %d writes",
				input, goNames, goOut, goWrites, fileNames, fileOut, fileWrites)
		}
	}
}

// execute runs w to its end in one execution and returns the names of its journal's entries,
// its output and how many times it called the recorder.
func execute(t *testing.T, w durable.Workflow, input string) ([]string, string, int) {
	t.Helper()
	writes := 0
	journal := engine.NewJournal(nil)
	out := engine.Execute(context.Background(), w, engine.Execution{
		Run:     durable.RunInfo{Namespace: "bench", Name: "r", UID: "u", WorkflowName: w.Name(), StartedAt: time.Now()},
		Input:   json.RawMessage(input),
		Journal: journal,
		Recorder: engine.RecorderFunc(func(context.Context, *engine.Journal, []engine.Entry) error {
			writes++
			return nil
		}),
	})
	if out.Kind != engine.Completed {
		t.Fatalf("%s with %s: %+v", w.Name(), input, out)
	}
	var names []string
	for _, e := range journal.Entries() {
		names = append(names, e.Name)
	}
	return names, string(out.Output), writes
}
