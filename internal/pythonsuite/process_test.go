// Package pythonsuite tests Python workflow files across crashes of the real manager binary:
// the manager process SIGKILLed in the middle of a step.
package pythonsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/managertest"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
)

// ledgerFile is a Python workflow whose steps append their names to the marks file; "work"
// then waits for the gate file, so a test can kill the manager while it runs.
const ledgerFile = `
import os
import time

WORKFLOW_NAME = "ledger_py"


def mark(inp, name):
    with open(inp["marks"], "a") as f:
        f.write(name + "\n")


def first(inp):
    return lambda: mark(inp, "first") or "first"


def work(inp):
    def do():
        mark(inp, "work")
        while not os.path.exists(inp["gate"]):
            time.sleep(0.02)
        return "work"
    return do


async def handler(inp, ctx):
    a = await ctx.step("first", first(inp))
    b = await ctx.step("work", work(inp))
    c = await ctx.step("after", lambda: mark(inp, "after") or "after")
    return [a, b, c]
`

func TestAManagerKilledMidStepLeavesNoWorkerAndRepeatsNoRecordedStep(t *testing.T) {
	ctx := context.Background()
	env := managertest.Start(t)
	k8s, kubeconfig, bin := env.Client, env.Kubeconfig, env.Binary
	dir, scratch := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ledger.py"), []byte(ledgerFile), 0o644); err != nil {
		t.Fatal(err)
	}
	marks, gate := filepath.Join(scratch, "marks"), filepath.Join(scratch, "gate")
	logs := &testenv.LogBuffer{}
	start := func() *testcluster.ManagerProcess {
		t.Helper()
		m, err := testcluster.StartManagerReady(ctx, testcluster.ManagerProcessOptions{
			Binary: bin, Kubeconfig: kubeconfig, Output: logs, Env: []string{"POD_NAMESPACE=centaur-system"},
			Args: []string{"--workflow-dirs=" + dir},
		}, time.Minute)
		if err != nil {
			t.Fatalf("%v\n%s", err, logs)
		}
		return m
	}

	first := start()
	input, _ := json.Marshal(map[string]string{"marks": marks, "gate": gate})
	run := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "ledger", Namespace: "default"},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "ledger_py", Input: &apiextensionsv1.JSON{Raw: input}}}
	if err := k8s.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "the step work to start", func() error {
		if got := read(marks); got != "first\nwork\n" {
			return fmt.Errorf("marks %q\n%s", got, logs)
		}
		return nil
	})
	workers, err := testcluster.ChildrenOf(first.PID())
	if err != nil {
		t.Fatal(err)
	}
	var pythons []int
	for _, w := range workers {
		if strings.HasPrefix(w.Name, "python") {
			pythons = append(pythons, w.PID)
		}
	}
	if len(pythons) == 0 {
		t.Fatalf("the manager runs no Python worker: children %+v", workers)
	}

	t.Log("SIGKILL the manager in the middle of the step: its workers must not outlive it")
	if err := first.Kill(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the manager's workers to exit", func() error {
		for _, pid := range pythons {
			if st, err := testcluster.ReadStat(pid); err == nil && st.State != "Z" {
				return fmt.Errorf("worker %d is still running (state %s)", pid, st.State)
			}
		}
		return nil
	})

	t.Log("a new manager runs the unrecorded step again, and the recorded one never")
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	second := start()
	defer func() { _ = second.Stop(10 * time.Second) }()
	testenv.WaitFor(t, time.Minute, "the run to succeed", func() error {
		fresh := &workflowsv1alpha1.WorkflowRun{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(run), fresh); err != nil {
			return err
		}
		if fresh.Status.Phase != workflowsv1alpha1.PhaseSucceeded {
			return fmt.Errorf("phase %q, error %+v", fresh.Status.Phase, fresh.Status.Error)
		}
		if string(fresh.Status.Output.Raw) != `["first","work","after"]` {
			return fmt.Errorf("output %s", fresh.Status.Output.Raw)
		}
		return nil
	})
	if got := read(marks); got != "first\nwork\nwork\nafter\n" {
		t.Errorf("step calls %q; want first once (recorded before the kill), work twice (its call died with the manager), after once", got)
	}
}

func read(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}
