package placement

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/sharding"
)

// deadLeaseTTL is how long the lease of a shard that stopped or died is kept (kubectl get
// leases shows it as released, or held by the sharder) before the sharder deletes it.
const deadLeaseTTL = time.Minute

// sharderWorkers is how many assignments the sharder writes at once.
const sharderWorkers = 4

// indexTurnRun indexes agent turns (metadata only) by the run that controls them.
const indexTurnRun = "metadata.controllerRun"

// Sharder assigns runs and agent turns to shards, on the elected replica only. It places a
// run that has no shard, or whose shard's lease expired or was released, on the ring (bounded
// loads, package sharding), guarded by the resourceVersion it read the run at, so that it never
// relabels a run that got a live shard meanwhile; it takes over expired shard leases, which
// fences their replicas; when the ring gains a shard it drains the shards that now hold more
// than their share, and the shards hand those runs over between executions (shardGate); and it
// moves each agent turn after its run. Runs created by the manager are labelled at creation
// (Sharding.NewClient); the sharder catches the rest (kubectl) and every move.
type Sharder struct {
	s       *Sharding
	mgr     ctrl.Manager
	view    cache.Cache
	clock   func() time.Time
	queue   workqueue.TypedRateLimitingInterface[shardItem]
	turns   cache.Cache
	log     logr.Logger
	settled []string // the ring's members at the last rebalance
	// passing is set when the first pass begins. Until then the informers' events are not
	// queued: the pass finds every run and turn without a live shard itself, the runs in
	// flight first, whereas the events of the informers' initial lists (every run and turn
	// of the cluster, in no order) would queue ahead of it and hold up a newly elected
	// sharder's failover by seconds.
	passing atomic.Bool
}

// shardItem is one piece of the sharder's work.
type shardItem struct {
	kind string // passWork, runWork, turnsWork or turnWork
	key  types.NamespacedName
}

// Kinds of the sharder's work.
const (
	// passWork checks every lease and every assignment (the ring changed, or it is time).
	passWork = "pass"
	// runWork assigns one run that has no live shard.
	runWork = "run"
	// turnsWork moves the turns of one run after it.
	turnsWork = "turns"
	// turnWork assigns or moves one turn.
	turnWork = "turn"
)

// NeedLeaderElection reports true: one sharder decides.
func (*Sharder) NeedLeaderElection() bool { return true }

// metaOf is the object kind named key, of which the sharder reads and writes only metadata.
func metaOf(kind string, key types.NamespacedName) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	m.SetGroupVersionKind(workflowsv1alpha1.GroupVersion.WithKind(kind))
	return m
}

// turnMeta is an empty AgentRun of which the sharder reads only metadata.
func turnMeta() *metav1.PartialObjectMetadata { return metaOf("AgentRun", types.NamespacedName{}) }

// Start runs the sharder until ctx ends: it follows the runs (the view of every run) and the
// turns (metadata in a cache of its own, only on the elected replica), and works through
// what they and the leases ask for. Its first pass comes once both have synced, before
// anything else is queued, so that a sharder elected after its predecessor died moves the
// dead shards' runs in flight first.
func (sh *Sharder) Start(ctx context.Context) error {
	sh.log = log.FromContext(ctx).WithName("sharder")
	sh.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[shardItem](),
		workqueue.TypedRateLimitingQueueConfig[shardItem]{Name: "sharder"})
	defer sh.queue.ShutDown()
	if err := sh.startTurns(ctx); err != nil {
		return err
	}
	if err := sh.follow(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case <-sh.s.ready:
	}
	sh.log.Info("sharder_started", "members", sh.s.Ring().Members())
	sh.queue.Add(shardItem{kind: passWork})
	for range sharderWorkers {
		go sh.work(ctx)
	}
	resync := time.NewTicker(sh.s.opts.ResyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sh.s.ringChanged:
		case <-resync.C:
		}
		sh.queue.Add(shardItem{kind: passWork})
	}
}

// startTurns starts the cache of agent turns' metadata, indexed by the run that controls them.
func (sh *Sharder) startTurns(ctx context.Context) error {
	turns, err := cache.New(sh.mgr.GetConfig(), cache.Options{
		Scheme: sh.mgr.GetScheme(), Mapper: sh.mgr.GetRESTMapper(), HTTPClient: sh.mgr.GetHTTPClient(),
	})
	if err != nil {
		return fmt.Errorf("make the sharder's cache of agent turns: %w", err)
	}
	err = turns.IndexField(ctx, turnMeta(), indexTurnRun, func(o client.Object) []string {
		if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "WorkflowRun" {
			return []string{ref.Name}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index agent turns by their run: %w", err)
	}
	go func() {
		if err := turns.Start(ctx); err != nil {
			sh.log.Error(err, "the sharder's cache of agent turns stopped")
		}
	}()
	sh.turns = turns
	return nil
}

// follow enqueues the runs and turns whose events may need an assignment: runs without a
// live shard, turns likewise, and the turns of a run whose shard changed.
func (sh *Sharder) follow(ctx context.Context) error {
	runs, err := sh.view.GetInformer(ctx, &workflowsv1alpha1.WorkflowRun{})
	if err != nil {
		return fmt.Errorf("watch runs for the sharder: %w", err)
	}
	_, err = runs.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { sh.runChanged(nil, obj) },
		UpdateFunc: func(old, obj any) {
			sh.runChanged(old, obj)
		},
	})
	if err != nil {
		return fmt.Errorf("watch runs for the sharder: %w", err)
	}
	turns, err := sh.turns.GetInformer(ctx, turnMeta())
	if err != nil {
		return fmt.Errorf("watch agent turns for the sharder: %w", err)
	}
	enqueueTurn := func(obj any) {
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok && sh.passing.Load() {
			sh.queue.Add(shardItem{kind: turnWork, key: types.NamespacedName{Namespace: m.Namespace, Name: m.Name}})
		}
	}
	_, err = turns.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: enqueueTurn, UpdateFunc: func(_, obj any) { enqueueTurn(obj) },
	})
	if err != nil {
		return fmt.Errorf("watch agent turns for the sharder: %w", err)
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), runs.HasSynced, turns.HasSynced) {
		return ctx.Err()
	}
	return nil
}

// runChanged enqueues a run without a live shard, and the turns of a run whose shard changed,
// once the first pass has begun.
func (sh *Sharder) runChanged(old, obj any) {
	run, ok := obj.(*workflowsv1alpha1.WorkflowRun)
	if !ok || !sh.passing.Load() {
		return
	}
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	shard := run.Labels[workflowsv1alpha1.LabelShard]
	if shard == "" || !sh.s.Ring().Has(shard) {
		sh.queue.Add(shardItem{kind: runWork, key: key})
	}
	if was, ok := old.(*workflowsv1alpha1.WorkflowRun); ok && was.Labels[workflowsv1alpha1.LabelShard] != shard && shard != "" {
		sh.queue.Add(shardItem{kind: turnsWork, key: key})
	}
}

// work processes the queue until it shuts down.
func (sh *Sharder) work(ctx context.Context) {
	for {
		item, shutdown := sh.queue.Get()
		if shutdown {
			return
		}
		err := sh.process(ctx, item)
		switch {
		case err == nil:
			sh.queue.Forget(item)
		case ctx.Err() != nil:
		default:
			sh.log.V(1).Info("sharder work failed, retrying", "work", item.kind, "object", item.key.String(), "error", err.Error())
			sh.queue.AddRateLimited(item)
		}
		sh.queue.Done(item)
	}
}

// process does one piece of work.
func (sh *Sharder) process(ctx context.Context, item shardItem) error {
	switch item.kind {
	case passWork:
		return sh.pass(ctx)
	case runWork:
		return sh.settleRun(ctx, sh.s.Ring(), item.key)
	case turnsWork:
		return sh.settleTurnsOf(ctx, item.key)
	default:
		return sh.settleTurn(ctx, sh.s.Ring(), item.key)
	}
}

// pass declares dead the shards whose lease expired, forgets long-dead leases, hands every run
// without a live shard to the workers (those in flight first: see Table.Orphans), rebalances
// when the ring's members changed since the last rebalance, hands the turns without a live
// shard to the workers, and comes back when the next lease would expire. The orphans go
// before the rebalance, whose drains are written one by one: a replica that joins while
// another died must not delay the dead one's runs.
func (sh *Sharder) pass(ctx context.Context) error {
	sh.passing.Store(true)
	var leases coordinationv1.LeaseList
	if err := sh.mgr.GetCache().List(ctx, &leases); err != nil {
		return fmt.Errorf("list shard leases: %w", err)
	}
	t := now(sh.clock)
	ring, _, next := sharding.Members(leases.Items, t)
	for i := range leases.Items {
		sh.tend(ctx, &leases.Items[i], sharding.ShardOf(&leases.Items[i], t), t)
	}
	for _, key := range sh.s.table.Orphans(ring) {
		sh.queue.Add(shardItem{kind: runWork, key: splitKey(key)}) // the workers assign them in parallel
	}
	if members := ring.Members(); ring.Len() > 0 && !slices.Equal(members, sh.settled) {
		if err := sh.rebalance(ctx, ring); err != nil {
			return err
		}
		sh.settled = members
	}
	if err := sh.settleOrphanedTurns(ctx, ring); err != nil {
		return err
	}
	sharderLoad.Reset()
	for shard, load := range sh.s.table.Loads(ring) {
		sharderLoad.WithLabelValues(shard).Set(float64(load))
	}
	if !next.IsZero() {
		sh.queue.AddAfter(shardItem{kind: passWork}, max(next.Sub(now(sh.clock))+10*time.Millisecond, 10*time.Millisecond))
	}
	return nil
}

// tend takes an expired lease over, which fences its replica, and deletes a lease dead for
// deadLeaseTTL. A conflict means the lease changed (it was renewed): the next pass sees it.
func (sh *Sharder) tend(ctx context.Context, lease *coordinationv1.Lease, shard sharding.Shard, t time.Time) {
	switch {
	case shard.State == sharding.StateExpired:
		taken := lease.DeepCopy()
		sharding.TakeOver(taken, t, sh.s.opts.LeaseDuration)
		if err := sh.mgr.GetClient().Update(ctx, taken); err != nil {
			sh.log.V(1).Info("take over an expired shard lease", "shard", shard.Name, "error", err.Error())
			return
		}
		sharderTakeovers.Inc()
		sh.log.Info("shard_dead", "shard", shard.Name, "holder", shard.Holder, "expiredAt", shard.Expiry)
	case shard.State != sharding.StateLive && t.Sub(shard.Expiry) > deadLeaseTTL:
		rv := lease.ResourceVersion
		err := sh.mgr.GetClient().Delete(ctx, lease, client.Preconditions{ResourceVersion: &rv})
		if client.IgnoreNotFound(err) != nil {
			sh.log.V(1).Info("delete a dead shard lease", "shard", shard.Name, "error", err.Error())
		}
	}
}

// rebalance drains the runs that the shards of ring hold beyond their share. A drain that
// could not be written is forgotten and the error returned, so that the pass, retried,
// rebalances again.
func (sh *Sharder) rebalance(ctx context.Context, ring *sharding.Ring) error {
	var failed error
	drained := 0
	for shard, keys := range sh.s.table.Rebalance(ring) {
		for _, key := range keys {
			err := sh.patchLabels(ctx, metaOf("WorkflowRun", splitKey(key)), "", map[string]*string{workflowsv1alpha1.LabelDrain: ptrTo("true")})
			if client.IgnoreNotFound(err) != nil {
				sh.s.table.Undrain(key)
				failed = fmt.Errorf("drain run %s from shard %s: %w", key, shard, err)
				continue
			}
			sharderDrains.WithLabelValues("run").Inc()
			drained++
		}
	}
	sh.log.Info("shard_rebalance", "members", ring.Members(), "drained", drained)
	return failed
}

// settleRun assigns the run key if it has no live shard: to the shard Place chooses, in a patch
// guarded by the resourceVersion the decision was taken on.
func (sh *Sharder) settleRun(ctx context.Context, ring *sharding.Ring, key types.NamespacedName) error {
	run := &workflowsv1alpha1.WorkflowRun{}
	if err := sh.view.Get(ctx, key, run); err != nil {
		return client.IgnoreNotFound(err)
	}
	current := run.Labels[workflowsv1alpha1.LabelShard]
	if current != "" && ring.Has(current) {
		return nil
	}
	tableKey := runKey(key.Namespace, key.Name)
	shard := sh.s.table.Place(ring, tableKey, entryOf(run).Active)
	if shard == "" {
		return nil // no live shard: the ring's next change brings one
	}
	err := sh.patchLabels(ctx, metaOf("WorkflowRun", key), run.ResourceVersion, map[string]*string{workflowsv1alpha1.LabelShard: &shard, workflowsv1alpha1.LabelDrain: nil})
	if err != nil {
		sh.s.table.Release(tableKey)
		return client.IgnoreNotFound(err)
	}
	reason := "unassigned"
	if current != "" {
		reason = "orphaned"
	}
	sharderAssignments.WithLabelValues("run", reason).Inc()
	sh.log.V(1).Info("shard_assigned", "run", key.String(), "shard", shard, "reason", reason, "was", current)
	sh.queue.Add(shardItem{kind: turnsWork, key: key})
	return nil
}

// settleTurnsOf moves the turns of the run key after it.
func (sh *Sharder) settleTurnsOf(ctx context.Context, key types.NamespacedName) error {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(workflowsv1alpha1.GroupVersion.WithKind("AgentRunList"))
	if err := sh.turns.List(ctx, list, client.InNamespace(key.Namespace), client.MatchingFields{indexTurnRun: key.Name}); err != nil {
		return fmt.Errorf("list the turns of run %s: %w", key, err)
	}
	ring := sh.s.Ring()
	for i := range list.Items {
		if err := sh.settleTurn(ctx, ring, client.ObjectKeyFromObject(&list.Items[i])); err != nil {
			return err
		}
	}
	return nil
}

// settleOrphanedTurns enqueues every turn whose shard is not on ring.
func (sh *Sharder) settleOrphanedTurns(ctx context.Context, ring *sharding.Ring) error {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(workflowsv1alpha1.GroupVersion.WithKind("AgentRunList"))
	if err := sh.turns.List(ctx, list); err != nil {
		return fmt.Errorf("list agent turns: %w", err)
	}
	for i := range list.Items {
		if shard := list.Items[i].Labels[workflowsv1alpha1.LabelShard]; shard == "" || !ring.Has(shard) {
			sh.queue.Add(shardItem{kind: turnWork, key: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return nil
}

// settleTurn puts the turn key on its run's shard (a turn no run controls: its own place on
// the ring). A turn on another live shard is drained first; that shard hands it over between
// two calls of the model, and the turn comes back here unassigned.
func (sh *Sharder) settleTurn(ctx context.Context, ring *sharding.Ring, key types.NamespacedName) error {
	turn := turnMeta()
	if err := sh.turns.Get(ctx, key, turn); err != nil {
		return client.IgnoreNotFound(err)
	}
	want, ok := sh.turnShard(ctx, ring, turn)
	if !ok {
		return nil
	}
	current := turn.Labels[workflowsv1alpha1.LabelShard]
	switch {
	case current == want:
		return nil
	case current != "" && ring.Has(current):
		if turn.Labels[workflowsv1alpha1.LabelDrain] != "" {
			return nil // the shard hands it over shortly
		}
		if err := sh.patchLabels(ctx, metaOf("AgentRun", key), "", map[string]*string{workflowsv1alpha1.LabelDrain: ptrTo("true")}); err != nil {
			return client.IgnoreNotFound(err)
		}
		sharderDrains.WithLabelValues("turn").Inc()
		return nil
	}
	err := sh.patchLabels(ctx, metaOf("AgentRun", key), turn.ResourceVersion, map[string]*string{workflowsv1alpha1.LabelShard: &want, workflowsv1alpha1.LabelDrain: nil})
	if err != nil {
		return client.IgnoreNotFound(err)
	}
	reason := "unassigned"
	if current != "" {
		reason = "orphaned"
	}
	sharderAssignments.WithLabelValues("turn", reason).Inc()
	return nil
}

// turnShard is where turn belongs: its run's shard while that shard is live, or its own place
// on the ring when no run (that still exists) controls it. False while its run has no live
// shard: the run's assignment brings its turns along.
func (sh *Sharder) turnShard(ctx context.Context, ring *sharding.Ring, turn *metav1.PartialObjectMetadata) (string, bool) {
	if ref := metav1.GetControllerOf(turn); ref != nil && ref.Kind == "WorkflowRun" {
		run := &workflowsv1alpha1.WorkflowRun{}
		err := sh.view.Get(ctx, types.NamespacedName{Namespace: turn.Namespace, Name: ref.Name}, run)
		if err == nil && run.UID == ref.UID {
			shard := run.Labels[workflowsv1alpha1.LabelShard]
			return shard, shard != "" && ring.Has(shard)
		}
	}
	shard := ring.Owner(turnKey(turn.Namespace, turn.Name))
	return shard, shard != ""
}

// patchLabels sets (or, for nil values, removes) labels of obj in a JSON merge patch guarded
// by resourceVersion unless it is empty. obj is a metadata-only object, so the answer carries
// no spec or status.
func (sh *Sharder) patchLabels(ctx context.Context, obj *metav1.PartialObjectMetadata, resourceVersion string, labels map[string]*string) error {
	meta := map[string]any{"labels": labels}
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion
	}
	data, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("encode a label patch: %w", err)
	}
	if err := sh.mgr.GetClient().Patch(ctx, obj, client.RawPatch(types.MergePatchType, data)); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("%s %s changed since it was read: %w", obj.Kind, obj.Name, err)
		}
		return fmt.Errorf("label %s %s: %w", obj.Kind, obj.Name, err)
	}
	return nil
}

// splitKey turns a run's table key back into its name.
func splitKey(key string) types.NamespacedName {
	for i := range key {
		if key[i] == '/' {
			return types.NamespacedName{Namespace: key[:i], Name: key[i+1:]}
		}
	}
	return types.NamespacedName{Name: key}
}

func ptrTo[T any](v T) *T { return &v }
