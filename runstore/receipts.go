package runstore

import (
	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// A receipt is a journal entry that records an event the run received: a completed wait for
// an event, whose ref names the WorkflowEvent. The manager derives each event's
// status.consumedBy from the runs' receipts, so the caches it reads them from keep them,
// without their payloads: LeanRun keeps the receipts in status.journal, and Seal labels a
// segment that holds receipts with LabelReceipts, so that a watch selects just those segments
// (LeanSegment keeps their receipts only).

// IsReceipt reports whether e records an event the run received.
func IsReceipt(e workflowsv1alpha1.JournalEntry) bool {
	return e.Kind == workflowsv1alpha1.EntryKindEvent && e.State == workflowsv1alpha1.EntryStateCompleted && e.Ref != ""
}

// Receipts returns the receipts among entries, without their payloads.
func Receipts(entries []workflowsv1alpha1.JournalEntry) []workflowsv1alpha1.JournalEntry {
	var out []workflowsv1alpha1.JournalEntry
	for _, e := range entries {
		if IsReceipt(e) {
			out = append(out, receipt(e))
		}
	}
	return out
}

// receipt is the part of a receipt the caches keep.
func receipt(e workflowsv1alpha1.JournalEntry) workflowsv1alpha1.JournalEntry {
	return workflowsv1alpha1.JournalEntry{Name: e.Name, Kind: e.Kind, State: e.State, Ref: e.Ref, FinishedAt: e.FinishedAt}
}

// receiptLabels are the labels of a segment that holds entries: LabelReceipts when one of them
// is a receipt.
func receiptLabels(entries []workflowsv1alpha1.JournalEntry) map[string]string {
	for _, e := range entries {
		if IsReceipt(e) {
			return map[string]string{workflowsv1alpha1.LabelReceipts: "true"}
		}
	}
	return nil
}

// LeanSegment is the cache transform of the segments that hold receipts: their identity, run
// and receipts; everything else a run recorded is dropped.
func LeanSegment(obj any) (any, error) {
	seg, ok := obj.(*workflowsv1alpha1.WorkflowRunSegment)
	if !ok {
		return obj, nil
	}
	seg.ManagedFields, seg.Annotations = nil, nil
	seg.Spec.Entries = Receipts(seg.Spec.Entries)
	return seg, nil
}
