package startest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/localrun/startest"
)

// results runs a test file of testdata and returns its results by test name.
func results(t *testing.T, file string) map[string]startest.Result {
	t.Helper()
	res, err := startest.RunFile(context.Background(), filepath.Join("testdata", file), startest.Options{})
	if err != nil {
		t.Fatalf("RunFile(%s): %v", file, err)
	}
	byName := map[string]startest.Result{}
	for _, r := range res {
		byName[r.Name] = r
	}
	return byName
}

func TestPassingTestsOfEveryAbility(t *testing.T) {
	got := results(t, "flows/order_test.star")
	want := []string{"test_a_failing_workflow_reports_its_failure", "test_a_paid_order_runs_to_its_end",
		"test_a_waiting_run_resumes_with_the_event_and_the_reply", "test_mocks_answer_steps_and_children_by_name"}
	if len(got) != len(want) {
		t.Errorf("ran %d tests, want %d: %v", len(got), len(want), got)
	}
	for _, name := range want {
		r, ok := got[name]
		if !ok || !r.Passed() {
			t.Errorf("%s: ran %v, failures %q; want it run and passed", name, ok, r.Failures)
		}
	}
}

func TestFailuresNameTheLineAndTheValues(t *testing.T) {
	got := results(t, "failing/double_test.star")
	if _, ok := got["helper_not_a_test"]; ok || len(got) != 3 {
		t.Errorf("ran %v, want the three test_ functions only", got)
	}
	if r := got["test_passes"]; !r.Passed() {
		t.Errorf("test_passes failed: %q", r.Failures)
	}
	wrong := got["test_wrong_output"].Failures
	wantWrong := []string{
		`double_test.star:6:9: doubling: got {"n": 4}, want {"n": 5}`,
		`double_test.star:7:9: got "succeeded", want anything else than "succeeded"`,
	}
	if len(wrong) != len(wantWrong) {
		t.Fatalf("test_wrong_output failures %q, want %q", wrong, wantWrong)
	}
	for i, w := range wantWrong {
		if !strings.HasSuffix(wrong[i], w) {
			t.Errorf("failure %d is %q, want it to end with %q", i, wrong[i], w)
		}
	}
	unknown := got["test_unknown_file"].Failures
	if len(unknown) != 1 || !strings.Contains(unknown[0], "double_test.star:10:10: in test_unknown_file") || !strings.Contains(unknown[0], "nowhere.star is not a workflow file") {
		t.Errorf("test_unknown_file failures %q, want the call's line and the missing file", unknown)
	}
}

func TestAFileThatDoesNotExecuteIsAnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broken_test.star")
	writeFile(t, path, "def test_x(t):\n    t.eq(1, 1\n")
	if _, err := startest.RunFile(context.Background(), path, startest.Options{}); err == nil || !strings.Contains(err.Error(), "broken_test.star:3:1") {
		t.Errorf("RunFile of a syntax error = %v, want the error at its line", err)
	}
}

func TestIsTestFile(t *testing.T) {
	for name, want := range map[string]bool{"order_test.star": true, "order.star": false, "test_order.star": false, ".x_test.star": false, "order_test.py": false} {
		if got := startest.IsTestFile(name); got != want {
			t.Errorf("IsTestFile(%q) = %v, want %v", name, got, want)
		}
	}
}

// writeFile writes a file of a test, failing the test when it cannot.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
