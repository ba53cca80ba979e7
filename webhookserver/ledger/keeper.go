package ledger

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Keeper is the ledger's work on the elected replica: it notes every webhook run it sees
// deleted (by kubectl, a namespace's deletion, the garbage collector, as well as the TTL,
// which records its runs beforehand anyway), and deletes the pages past the retention. One
// replica does it, so that a deletion is not written once per replica. A deletion that
// happens while no replica is elected (a leader change) is not seen: the TTL's, which
// record themselves, are the ones that matter.
type Keeper struct {
	ledger    *Ledger
	informers cache.Informers
}

// Keeper returns the ledger's Keeper, which follows the WorkflowRuns of informers (a cache
// that holds every run, whatever its shard).
func (l *Ledger) Keeper(informers cache.Informers) *Keeper {
	return &Keeper{ledger: l, informers: informers}
}

// NeedLeaderElection reports true: only the elected replica keeps the ledger.
func (k *Keeper) NeedLeaderElection() bool { return true }

// Start notes deleted webhook runs and prunes the ledger (at once, then every
// PruneInterval) until ctx ends.
func (k *Keeper) Start(ctx context.Context) error {
	inf, err := k.informers.GetInformer(ctx, &workflowsv1alpha1.WorkflowRun{})
	if err != nil {
		return fmt.Errorf("get the WorkflowRun informer for the delivery ledger: %w", err)
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: k.deleted})
	if err != nil {
		return fmt.Errorf("watch deleted WorkflowRuns for the delivery ledger: %w", err)
	}
	defer func() { _ = inf.RemoveEventHandler(reg) }()
	ticker := time.NewTicker(k.ledger.cfg.PruneInterval)
	defer ticker.Stop()
	for {
		if err := k.ledger.prune(ctx); err != nil && ctx.Err() == nil {
			k.ledger.cfg.Logger.Error(err, "delivery_ledger_prune_failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// deleted notes a deleted run; the informer may hand over a tombstone when it missed the
// deletion itself.
func (k *Keeper) deleted(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if run, ok := obj.(metav1.Object); ok {
		k.ledger.note(run)
	}
}
