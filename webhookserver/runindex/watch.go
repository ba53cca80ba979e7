package runindex

import (
	"context"
	"fmt"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Subscription tells its owner that runs it cares about changed. Changes are coalesced: C
// holds at most one pending signal, so a burst of writes wakes the owner once.
type Subscription struct {
	ix    *Index
	match func(*Run) bool
	c     chan struct{}
}

// Subscribe returns a subscription signalled whenever a run for which match is true is added,
// changed or deleted (match sees the run before and after a change). Close it when done.
func (ix *Index) Subscribe(match func(r *Run) bool) *Subscription {
	s := &Subscription{ix: ix, match: match, c: make(chan struct{}, 1)}
	ix.subsMu.Lock()
	ix.subs[s] = struct{}{}
	ix.subsMu.Unlock()
	return s
}

// C is signalled after a change the subscription matches.
func (s *Subscription) C() <-chan struct{} { return s.c }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.ix.subsMu.Lock()
	delete(s.ix.subs, s)
	s.ix.subsMu.Unlock()
}

// Subscribers is how many subscriptions are open.
func (ix *Index) Subscribers() int {
	ix.subsMu.Lock()
	defer ix.subsMu.Unlock()
	return len(ix.subs)
}

// notify signals the subscriptions that match the run before (old) or after (new) a change.
func (ix *Index) notify(old, new *Run) {
	ix.subsMu.Lock()
	defer ix.subsMu.Unlock()
	for s := range ix.subs {
		if (old != nil && s.match(old)) || (new != nil && s.match(new)) {
			select {
			case s.c <- struct{}{}:
			default:
			}
		}
	}
}

// Attach feeds the index from the informer of WorkflowRuns that informers (the manager's
// cache) keeps, until ctx ends, and marks the index synced once the informer's initial list
// is in. It blocks; run it in its own goroutine.
func (ix *Index) Attach(ctx context.Context, informers cache.Informers) error {
	inf, err := informers.GetInformer(ctx, &workflowsv1alpha1.WorkflowRun{})
	if err != nil {
		return fmt.Errorf("get the WorkflowRun informer for the run index: %w", err)
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    ix.onUpsert,
		UpdateFunc: func(_, obj any) { ix.onUpsert(obj) },
		DeleteFunc: ix.onDelete,
	})
	if err != nil {
		return fmt.Errorf("watch WorkflowRuns for the run index: %w", err)
	}
	defer func() { _ = inf.RemoveEventHandler(reg) }()
	if toolscache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
		ix.MarkSynced()
	}
	<-ctx.Done()
	return nil
}

// onUpsert indexes an added or updated run.
func (ix *Index) onUpsert(obj any) {
	if run, ok := obj.(*workflowsv1alpha1.WorkflowRun); ok {
		ix.Upsert(FromObject(run))
	}
}

// onDelete removes a deleted run; the informer may hand over a tombstone when it missed the
// deletion itself.
func (ix *Index) onDelete(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if run, ok := obj.(*workflowsv1alpha1.WorkflowRun); ok {
		ix.Delete(run.Namespace, run.Name)
	}
}
