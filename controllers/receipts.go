package controllers

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// receiptGrace is how long receipts are held for an event that the manager's cache does not
// hold: the watch of events and the watches of runs and segments are not ordered, so a run's
// receipt may arrive before the event it names.
const receiptGrace = 30 * time.Second

// receiptBook holds, by event, the receipts the WorkflowEventReconciler learnt from runs and
// segments and has not written into the event's status yet. It is the reconciler's only
// memory, and rebuilt from the watches when a replica is elected.
type receiptBook struct {
	mu      sync.Mutex
	byEvent map[types.NamespacedName]map[consumerKey]heldReceipt
}

// consumerKey is one consumption: a run's wait for an event.
type consumerKey struct{ run, step string }

// heldReceipt is a consumer to list, with when the book learnt of it.
type heldReceipt struct {
	consumer workflowsv1alpha1.EventConsumer
	learnt   time.Time
}

// learn holds the receipts of run, in namespace, and returns the events they name. A receipt
// older than retention is left out: its event has expired.
func (b *receiptBook) learn(namespace, run string, receipts []workflowsv1alpha1.JournalEntry, now time.Time, retention time.Duration) []types.NamespacedName {
	b.mu.Lock()
	defer b.mu.Unlock()
	var events []types.NamespacedName
	for _, e := range receipts {
		at := now
		if e.FinishedAt != nil {
			at = e.FinishedAt.Time
		}
		if at.Add(retention).Before(now) {
			continue
		}
		key := types.NamespacedName{Namespace: namespace, Name: e.Ref}
		if b.byEvent == nil {
			b.byEvent = map[types.NamespacedName]map[consumerKey]heldReceipt{}
		}
		if b.byEvent[key] == nil {
			b.byEvent[key] = map[consumerKey]heldReceipt{}
		}
		b.byEvent[key][consumerKey{run, e.Name}] = heldReceipt{
			consumer: workflowsv1alpha1.EventConsumer{Run: run, Step: e.Name, At: metav1.NewTime(at).Rfc3339Copy()},
			learnt:   now,
		}
		events = append(events, key)
	}
	return events
}

// consumers returns the consumers of event: those recorded in its status and those held,
// oldest first. A recorded consumer is never dropped, even when its run is gone.
func (b *receiptBook) consumers(event types.NamespacedName, recorded []workflowsv1alpha1.EventConsumer) []workflowsv1alpha1.EventConsumer {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(recorded)
	for key, held := range b.byEvent[event] {
		if !slices.ContainsFunc(out, key.is) {
			out = append(out, held.consumer)
		}
	}
	slices.SortStableFunc(out, func(a, b workflowsv1alpha1.EventConsumer) int {
		return cmp.Or(a.At.Compare(b.At.Time), strings.Compare(a.Run, b.Run), strings.Compare(a.Step, b.Step))
	})
	return out
}

// settle drops the receipts of event that written, its status as stored, lists.
func (b *receiptBook) settle(event types.NamespacedName, written []workflowsv1alpha1.EventConsumer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	held := b.byEvent[event]
	for key := range held {
		if slices.ContainsFunc(written, key.is) {
			delete(held, key)
		}
	}
	if len(held) == 0 {
		delete(b.byEvent, event)
	}
}

// forget drops the receipts of an event that is gone.
func (b *receiptBook) forget(event types.NamespacedName) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.byEvent, event)
}

// unknownEvent decides about the receipts of an event the cache does not hold: those held
// longer than receiptGrace are dropped (the event is gone), and while any remain the event is
// looked up again after receiptGrace (it may not have reached the cache yet).
func (b *receiptBook) unknownEvent(event types.NamespacedName, now time.Time) ctrl.Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	held := b.byEvent[event]
	for key, r := range held {
		if now.Sub(r.learnt) >= receiptGrace {
			delete(held, key)
		}
	}
	if len(held) == 0 {
		delete(b.byEvent, event)
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: receiptGrace}
}

// is reports whether c is this consumption.
func (k consumerKey) is(c workflowsv1alpha1.EventConsumer) bool {
	return c.Run == k.run && c.Step == k.step
}
