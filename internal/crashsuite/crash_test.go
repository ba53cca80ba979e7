// Package crashsuite tests what a WorkflowDefinition whose step exhausts memory does to the
// real manager binary. By default its runs execute in the sandbox's bounded worker processes:
// the step kills a worker twice and the manager never. Without the sandbox
// (--definition-execution-memory=0) the crash guard works across deaths of the manager itself:
// the run is stopped after the second death, and its revision quarantined, instead of
// crash-looping the manager.
package crashsuite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/crashguard"
	"github.com/centaur-dev/workflow-operator/internal/managertest"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
)

// hogSource is a tenant's definition whose step, given {"hog": true}, asks for 4 GiB of list
// slots: far past the manager's memory bound in this test.
const hogSource = `
WORKFLOW_NAME = "hog"

def handler(inp, ctx):
    ctx.step("first", lambda: 1)
    if inp.get("hog"):
        return ctx.step("grow", lambda: len([0] * (1 << 28)))
    return "fine"
`

// managerDataLimitKiB bounds the manager's data segment (ulimit -d), as a container's memory
// limit bounds it in a cluster: the hog's step dies on it.
const managerDataLimitKiB = 1 << 20

// limitedManager writes a script that starts the manager binary under managerDataLimitKiB.
func limitedManager(t *testing.T, bin string) string {
	t.Helper()
	limited := filepath.Join(t.TempDir(), "manager-limited")
	script := fmt.Sprintf("#!/bin/sh\nulimit -d %d\nexec %q \"$@\"\n", managerDataLimitKiB, bin)
	if err := os.WriteFile(limited, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return limited
}

func TestARunWhoseCodeExhaustsMemoryKillsSandboxWorkersNeverTheManager(t *testing.T) {
	ctx := context.Background()
	env := managertest.Start(t)
	k8s, logs := env.Client, &testenv.LogBuffer{}
	m, err := testcluster.StartManagerReady(ctx, testcluster.ManagerProcessOptions{
		Binary: limitedManager(t, env.Binary), Kubeconfig: env.Kubeconfig, Output: logs, Env: []string{"POD_NAMESPACE=centaur-system"},
		Args: []string{"--crash-guard-dir=" + filepath.Join(t.TempDir(), "crash-guard")},
	}, time.Minute)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	defer func() { _ = m.Stop(10 * time.Second) }()
	def := &workflowsv1alpha1.WorkflowDefinition{ObjectMeta: metav1.ObjectMeta{Name: "hog", Namespace: "default"},
		Spec: workflowsv1alpha1.WorkflowDefinitionSpec{Source: hogSource}}
	if err := k8s.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	waitReason(ctx, t, k8s, def, workflowsv1alpha1.ReasonLoaded)
	fine := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "fine", Namespace: "default"},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hog", Input: &apiextensionsv1.JSON{Raw: []byte(`{}`)}}}
	hog := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "hog", Namespace: "default"},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hog", Input: &apiextensionsv1.JSON{Raw: []byte(`{"hog": true}`)}}}
	for _, run := range []*workflowsv1alpha1.WorkflowRun{fine, hog} {
		if err := k8s.Create(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, time.Minute, "the hog's run to be stopped and the fine one to succeed", func() error {
		for _, run := range []*workflowsv1alpha1.WorkflowRun{fine, hog} {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(run), run); err != nil {
				return err
			}
		}
		if hog.Status.Phase != workflowsv1alpha1.PhaseFailed || hog.Status.Error == nil || hog.Status.Error.Reason != workflowsv1alpha1.ReasonQuarantined {
			return fmt.Errorf("hog: phase %q, error %+v, strikes %q", hog.Status.Phase, hog.Status.Error, hog.Annotations[workflowsv1alpha1.AnnotationCrashStrikes])
		}
		if fine.Status.Phase != workflowsv1alpha1.PhaseSucceeded {
			return fmt.Errorf("fine: phase %q, error %+v", fine.Status.Phase, fine.Status.Error)
		}
		return nil
	})
	if got, want := strikes(ctx, t, k8s, hog), fmt.Sprint(1+crashguard.Conviction); got != want {
		t.Errorf("strikes %q; want %s (one death in the shared worker, then one alone)", got, want)
	}
	waitReason(ctx, t, k8s, def, workflowsv1alpha1.ReasonQuarantined)
	if m.Exited() {
		t.Fatalf("the manager exited: %s\n%s", m.ExitDescription(), logs)
	}
	peak, err := testcluster.PeakRSS(m.PID())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the manager's peak RSS: %d MiB; the hog asked for 4 GiB", peak>>20)
	if peak > 256<<20 {
		t.Errorf("the manager's peak RSS is %d MiB; the hog's memory belongs to the sandbox's workers", peak>>20)
	}
}

func TestARunWhoseCodeKillsTheManagerIsStoppedAfterItsSecondDeath(t *testing.T) {
	ctx := context.Background()
	env := managertest.Start(t)
	k8s, kubeconfig, tmp := env.Client, env.Kubeconfig, t.TempDir()
	limited := limitedManager(t, env.Binary)
	guardDir := filepath.Join(tmp, "crash-guard")
	logs := &testenv.LogBuffer{}
	start := func() *testcluster.ManagerProcess {
		t.Helper()
		m, err := testcluster.StartManagerReady(ctx, testcluster.ManagerProcessOptions{
			Binary: limited, Kubeconfig: kubeconfig, Output: logs, Env: []string{"POD_NAMESPACE=centaur-system"},
			Args: []string{"--crash-guard-dir=" + guardDir, "--definition-execution-memory=0"},
		}, time.Minute)
		if err != nil {
			t.Fatalf("%v\n%s", err, logs)
		}
		return m
	}
	dies := func(m *testcluster.ManagerProcess, what string) {
		t.Helper()
		select {
		case <-m.Done():
			t.Logf("the manager died (%s) %s", m.ExitDescription(), what)
		case <-time.After(time.Minute):
			_ = m.Kill()
			t.Fatalf("the manager did not die %s\n%s", what, logs)
		}
	}

	first := start()
	def := &workflowsv1alpha1.WorkflowDefinition{ObjectMeta: metav1.ObjectMeta{Name: "hog", Namespace: "default"},
		Spec: workflowsv1alpha1.WorkflowDefinitionSpec{Source: hogSource}}
	if err := k8s.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	waitReason(ctx, t, k8s, def, workflowsv1alpha1.ReasonLoaded)
	hog := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "hog", Namespace: "default"},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hog", Input: &apiextensionsv1.JSON{Raw: []byte(`{"hog": true}`)}}}
	if err := k8s.Create(ctx, hog); err != nil {
		t.Fatal(err)
	}
	dies(first, "executing the hog's step")

	second := start()
	if got := strikes(ctx, t, k8s, hog); got != "1" {
		t.Fatalf("after the first death the run has strikes %q; want 1 (it may have been a bystander)", got)
	}
	dies(second, "executing the hog's step alone")

	third := start()
	defer func() { _ = third.Stop(10 * time.Second) }()
	testenv.WaitFor(t, time.Minute, "the hog's run to be stopped", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(hog), hog); err != nil {
			return err
		}
		if hog.Status.Phase != workflowsv1alpha1.PhaseFailed || hog.Status.Error == nil || hog.Status.Error.Reason != workflowsv1alpha1.ReasonQuarantined {
			return fmt.Errorf("phase %q, error %+v, strikes %q", hog.Status.Phase, hog.Status.Error, hog.Annotations[workflowsv1alpha1.AnnotationCrashStrikes])
		}
		return nil
	})
	if got, want := strikes(ctx, t, k8s, hog), fmt.Sprint(1+crashguard.Conviction); got != want {
		t.Errorf("strikes %q; want %s (one shared death, then one alone)", got, want)
	}

	t.Log("the definition's revision is quarantined until its source changes; the manager lives on")
	waitReason(ctx, t, k8s, def, workflowsv1alpha1.ReasonQuarantined)
	def.Spec.Source = hogSource + "\n# fixed\n"
	if err := k8s.Update(ctx, def); err != nil {
		t.Fatal(err)
	}
	waitReason(ctx, t, k8s, def, workflowsv1alpha1.ReasonLoaded)
	fine := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "fine", Namespace: "default"},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hog", Input: &apiextensionsv1.JSON{Raw: []byte(`{}`)}}}
	if err := k8s.Create(ctx, fine); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "the fine run to succeed", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(fine), fine); err != nil {
			return err
		}
		if fine.Status.Phase != workflowsv1alpha1.PhaseSucceeded {
			return fmt.Errorf("phase %q, error %+v", fine.Status.Phase, fine.Status.Error)
		}
		return nil
	})
	if third.Exited() {
		t.Fatalf("the third manager exited: %s\n%s", third.ExitDescription(), logs)
	}
}

// waitReason waits until def's Ready condition has reason, reading def again meanwhile.
func waitReason(ctx context.Context, t *testing.T, k8s client.Client, def *workflowsv1alpha1.WorkflowDefinition, reason string) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "the definition's Ready reason "+reason, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(def), def); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(def.Status.Conditions, workflowsv1alpha1.ConditionReady); c == nil || c.Reason != reason {
			return fmt.Errorf("ready condition %+v", c)
		}
		return nil
	})
}

// strikes reads a run's crash strikes.
func strikes(ctx context.Context, t *testing.T, k8s client.Client, run *workflowsv1alpha1.WorkflowRun) string {
	t.Helper()
	fresh := &workflowsv1alpha1.WorkflowRun{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(run), fresh); err != nil {
		t.Fatal(err)
	}
	return fresh.Annotations[workflowsv1alpha1.AnnotationCrashStrikes]
}
