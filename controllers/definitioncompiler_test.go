package controllers

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/limits"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

func TestADefinitionIsCompiledOncePerContentAndANamespaceAtItsRate(t *testing.T) {
	compiles := 0
	cfg := &workflowfile.Config{Probe: func(workflowfile.Bundle) error { compiles++; return nil }}
	c := newDefinitionCompiler(func() *workflowfile.Config { return cfg }, limits.Rate{PerSecond: 1, Burst: 2})
	def := func(version int) *workflowsv1alpha1.WorkflowDefinition {
		return &workflowsv1alpha1.WorkflowDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "wf"},
			Spec: workflowsv1alpha1.WorkflowDefinitionSpec{Source: fmt.Sprintf("WORKFLOW_NAME = \"wf\"\nV = %d\ndef handler(inp, ctx):\n    return V\n", version)}}
	}
	now := time.Now()
	for i := 0; i < 5; i++ {
		if w, wait, err := c.compile(def(1), true, now); err != nil || wait != 0 || w == nil {
			t.Fatalf("compile %d of the same source: %v %v %v", i, w, wait, err)
		}
	}
	if compiles != 1 {
		t.Fatalf("the same source was compiled %d times; want once", compiles)
	}

	By := "edits spend the namespace's burst, then wait for its rate"
	if _, wait, err := c.compile(def(2), true, now); wait != 0 || err != nil {
		t.Fatalf("%s: the second edit waits %v (%v)", By, wait, err)
	}
	_, wait, err := c.compile(def(3), true, now)
	if wait <= 0 || err != nil || compiles != 2 {
		t.Fatalf("%s: the third edit at once waits %v (%v) after %d compiles; want a wait and no compile", By, wait, err, compiles)
	}
	if w, wait, err := c.compile(def(3), true, now.Add(wait)); wait != 0 || err != nil || w == nil || compiles != 3 {
		t.Fatalf("%s: once its turn came: %v %v after %d compiles", By, wait, err, compiles)
	}
	if _, wait, _ := c.compile(def(4), false, now); wait != 0 || compiles != 4 {
		t.Fatalf("the loader at start-up does not wait: %v after %d compiles", wait, compiles)
	}

	By = "another namespace has its own bucket"
	other := def(5)
	other.Namespace = "team-b"
	if _, wait, _ := c.compile(other, true, now); wait != 0 {
		t.Fatalf("%s: team-b waits %v", By, wait)
	}
}
