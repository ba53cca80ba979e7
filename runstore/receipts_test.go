package runstore

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// journalWithAReceipt is a journal of a step, a wait that received event ev-1 (with its
// payload as result), and a wait still waiting.
func journalWithAReceipt() []workflowsv1alpha1.JournalEntry {
	payload := &apiextensionsv1.JSON{Raw: []byte(`{"decision":"approved"}`)}
	return []workflowsv1alpha1.JournalEntry{
		{Name: "submit", Kind: "Step", State: "Completed", Result: payload},
		{Name: "decision", Kind: "Event", State: "Completed", Ref: "ev-1", Target: "event approval.decided/42", Result: payload},
		{Name: "second", Kind: "Event", State: "Waiting", Target: "event approval.decided/43"},
	}
}

func TestCachesKeepReceiptsWithoutTheirPayloads(t *testing.T) {
	run := &workflowsv1alpha1.WorkflowRun{Status: workflowsv1alpha1.WorkflowRunStatus{Journal: journalWithAReceipt()}}
	obj, err := LeanRun(run)
	if err != nil {
		t.Fatal(err)
	}
	kept := obj.(*workflowsv1alpha1.WorkflowRun).Status.Journal
	if len(kept) != 2 || kept[0].Name != "decision" || kept[0].Ref != "ev-1" || kept[0].Result != nil || kept[1].Name != "second" {
		t.Fatalf("LeanRun kept %+v, want the receipt (without its result) and the waiting entry", kept)
	}

	seg := &workflowsv1alpha1.WorkflowRunSegment{Spec: workflowsv1alpha1.WorkflowRunSegmentSpec{RunName: "r", Entries: journalWithAReceipt()[:2]}}
	obj, err = LeanSegment(seg)
	if err != nil {
		t.Fatal(err)
	}
	if kept := obj.(*workflowsv1alpha1.WorkflowRunSegment).Spec.Entries; len(kept) != 1 || kept[0].Ref != "ev-1" || kept[0].Result != nil {
		t.Fatalf("LeanSegment kept %+v, want the receipt only", kept)
	}
}

func TestSegmentsThatHoldReceiptsAreLabelled(t *testing.T) {
	if got := receiptLabels(journalWithAReceipt()[:2]); got[workflowsv1alpha1.LabelReceipts] != "true" {
		t.Errorf("labels of a segment with a receipt = %v", got)
	}
	if got := receiptLabels(journalWithAReceipt()[:1]); len(got) != 0 {
		t.Errorf("labels of a segment without receipts = %v, want none", got)
	}
}
