package workflowfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/centaur-dev/workflow-operator/workflowfile"
)

func TestIsWorkflowFileSkipsModulesHiddenFilesAndTests(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"nightly_report.star", true},
		{"test_helpers.star", true}, // only the *_test.star suffix marks a test in Starlark
		{"_helpers.star", false},
		{".hidden.star", false},
		{"..data", false},
		{"nightly_report_test.star", false},
		{"nightly_report.py", false},
		{"README.md", false},
	} {
		if got := workflowfile.IsWorkflowFile(tc.name); got != tc.want {
			t.Errorf("IsWorkflowFile(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLoadDirLeavesTestFilesOut(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"greet.star":      "WORKFLOW_NAME = \"greet\"\ndef handler(inp, ctx):\n    return \"hi\"\n",
		"greet_test.star": "this is not a workflow file (\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := workflowfile.LoadDir(dir, workflowfile.OriginDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || filepath.Base(files[0].Path) != "greet.star" || files[0].Err != nil {
		t.Fatalf("LoadDir = %+v, want greet.star alone, loaded", files)
	}
}

func TestGlobalLineFindsTheStatementThatBindsAGlobal(t *testing.T) {
	src := "# SCHEDULES = [] in a comment\nWORKFLOW_NAME = \"x\"\nSCHEDULES=[\n]\n" +
		"Input: type = None\nclass Inputs:\n    pass\nclass Input(object):\n    pass\n" +
		"async def handler(inp, ctx):\n    WEBHOOKS = []\ndef handler2(inp, ctx):\n    pass\n"
	for _, tc := range []struct {
		name string
		want int
	}{
		{"WORKFLOW_NAME", 2},
		{"SCHEDULES", 3},
		{"Input", 5},
		{"handler", 10},
		{"handler2", 12},
		{"WEBHOOKS", 0}, // not at the top level
		{"NAMESPACES", 0},
		{"", 0},
	} {
		if got := workflowfile.GlobalLine(src, tc.name); got != tc.want {
			t.Errorf("GlobalLine(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
}
