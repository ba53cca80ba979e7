package placement

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// handoverRetry is when a handover that met a conflict, or waits for work in hand, is tried
// again.
const handoverRetry = 200 * time.Millisecond

// shardGate wraps the reconciler of a sharded kind (runs, agent turns). It lets through only
// the objects labelled with its shard (a requeue scheduled before a move may still arrive),
// and hands an object over when the sharder drains it: it removes the shard and drain labels,
// between two executions of the object in this process, so that the sharder assigns it anew
// and the next shard starts where this one stopped. The patch is guarded by the
// resourceVersion read under the claim, so a handover never undoes a change it did not see.
type shardGate struct {
	kind  string
	shard string
	// cache reads the object from the manager's cache (this shard's objects only); client
	// patches; reader reads past the cache.
	cache  client.Client
	reader client.Reader
	// newObject returns an empty object of the kind.
	newObject func() client.Object
	// claim keeps the handover apart from executions of the object in this process that do
	// not go through the controller's queue (a run's eager start): the handover waits for
	// them by coming back later. Nil when there are none.
	claim func(key string) (release func(), ok bool)
	// holding reports work this process took on for the object and has not recorded yet (an
	// agent turn's reply): the object is reconciled, not handed over, until it has none.
	holding func(client.Object) bool
	do      reconcile.Reconciler
}

// Reconcile lets the wrapped reconciler handle the shard's objects and hands drained ones over.
func (g *shardGate) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := g.newObject()
	if err := g.cache.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err) // gone, or no longer this shard's
	}
	labels := obj.GetLabels()
	if labels[workflowsv1alpha1.LabelShard] != g.shard {
		return ctrl.Result{}, nil
	}
	if labels[workflowsv1alpha1.LabelDrain] == "" {
		return g.do.Reconcile(ctx, req)
	}
	if g.holding != nil && g.holding(obj) {
		if _, err := g.do.Reconcile(ctx, req); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: handoverRetry}, nil
	}
	return g.handOver(ctx, req)
}

// handOver removes the object's shard and drain labels, under the claim of its executions.
func (g *shardGate) handOver(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if g.claim != nil {
		release, ok := g.claim(req.String())
		if !ok {
			return ctrl.Result{RequeueAfter: handoverRetry}, nil
		}
		defer release()
	}
	obj := g.newObject()
	if err := g.reader.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	labels := obj.GetLabels()
	if labels[workflowsv1alpha1.LabelShard] != g.shard || labels[workflowsv1alpha1.LabelDrain] == "" {
		return ctrl.Result{}, nil // moved or kept meanwhile
	}
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	delete(labels, workflowsv1alpha1.LabelShard)
	delete(labels, workflowsv1alpha1.LabelDrain)
	obj.SetLabels(labels)
	err := g.cache.Patch(ctx, obj, patch)
	switch {
	case apierrors.IsNotFound(err):
		return ctrl.Result{}, nil
	case apierrors.IsConflict(err):
		return ctrl.Result{RequeueAfter: handoverRetry}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	shardHandovers.WithLabelValues(g.kind).Inc()
	log.FromContext(ctx).Info("shard_handover", "kind", g.kind, "shard", g.shard)
	return ctrl.Result{}, nil
}

// Gate wraps rec, the reconciler of a sharded kind, in a shardGate; single-leader mode
// keeps rec.
func (s *Sharding) Gate(kind string, c client.Client, reader client.Reader, newObject func() client.Object,
	claim func(string) (func(), bool), holding func(client.Object) bool, rec reconcile.Reconciler) reconcile.Reconciler {
	if s == nil {
		return rec
	}
	return &shardGate{kind: kind, shard: s.opts.Shard, cache: c, reader: reader, newObject: newObject, claim: claim, holding: holding, do: rec}
}
