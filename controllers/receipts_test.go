package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// received is a receipt of the event named ref, received at at by the wait step.
func received(step, ref string, at time.Time) workflowsv1alpha1.JournalEntry {
	finished := metav1.NewMicroTime(at)
	return workflowsv1alpha1.JournalEntry{Name: step, Kind: "Event", State: "Completed", Ref: ref, FinishedAt: &finished}
}

// consumerNames renders consumers as run/step.
func consumerNames(consumers []workflowsv1alpha1.EventConsumer) []string {
	var out []string
	for _, c := range consumers {
		out = append(out, c.Run+"/"+c.Step)
	}
	return out
}

func TestReceiptBookListsConsumersOldestFirstAndKeepsRecordedOnes(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ev := types.NamespacedName{Namespace: "default", Name: "ev-1"}
	var b receiptBook
	learnt := b.learn("default", "run-b", []workflowsv1alpha1.JournalEntry{received("wait", "ev-1", now.Add(-time.Second))}, now, time.Hour)
	learnt = append(learnt, b.learn("default", "run-c", []workflowsv1alpha1.JournalEntry{
		received("wait", "ev-1", now.Add(-2*time.Hour)), // older than the retention: its event expired
		received("again", "ev-1", now),
	}, now, time.Hour)...)
	if len(learnt) != 2 || learnt[0] != ev || learnt[1] != ev {
		t.Fatalf("learn named %v, want ev-1 twice", learnt)
	}
	recorded := []workflowsv1alpha1.EventConsumer{{Run: "run-a", Step: "wait", At: metav1.NewTime(now.Add(-time.Minute))}}
	got := consumerNames(b.consumers(ev, recorded))
	want := []string{"run-a/wait", "run-b/wait", "run-c/again"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("consumers = %v, want %v", got, want)
	}

	// Written, the receipts are settled; one learnt meanwhile is kept for the next write.
	b.learn("default", "run-d", []workflowsv1alpha1.JournalEntry{received("wait", "ev-1", now)}, now, time.Hour)
	b.settle(ev, b.consumers(ev, recorded)[:3])
	if got := consumerNames(b.consumers(ev, nil)); len(got) != 1 || got[0] != "run-d/wait" {
		t.Fatalf("after settling, held %v, want run-d/wait", got)
	}
}

func TestReceiptBookHoldsReceiptsOfAnUnknownEventForAWhile(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ev := types.NamespacedName{Namespace: "default", Name: "ev-late"}
	var b receiptBook
	b.learn("default", "run-a", []workflowsv1alpha1.JournalEntry{received("wait", "ev-late", now)}, now, time.Hour)
	if res := b.unknownEvent(ev, now.Add(time.Second)); res.RequeueAfter != receiptGrace {
		t.Fatalf("unknownEvent at once = %+v, want a look again after %s (the event may not be cached yet)", res, receiptGrace)
	}
	if got := b.consumers(ev, nil); len(got) != 1 {
		t.Fatalf("held %v, want the receipt kept", got)
	}
	if res := b.unknownEvent(ev, now.Add(receiptGrace)); !res.IsZero() {
		t.Fatalf("unknownEvent after the grace = %+v, want done", res)
	}
	if got := b.consumers(ev, nil); len(got) != 0 {
		t.Fatalf("held %v after the grace, want nothing", got)
	}
}
