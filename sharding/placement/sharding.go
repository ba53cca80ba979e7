package placement

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/sharding"
)

// Options configure a replica under --sharding.
type Options struct {
	// Shard is this replica's shard: the name of its lease and the value of the shard label
	// of the runs it executes. Unique among replicas (the pod's name).
	Shard string
	// LeaseNamespace is where shard leases live (the operator's namespace).
	LeaseNamespace string
	// LeaseDuration is how long a shard lease lasts without renewal; the sharder takes over a
	// lease that expired for as long, and deletes dead leases after deadLeaseTTL.
	// sharding.DefaultLeaseDuration when zero.
	LeaseDuration time.Duration
	// Epsilon bounds each shard's load to (1+Epsilon) times the average;
	// sharding.DefaultEpsilon when zero.
	Epsilon float64
	// ResyncInterval is how often the sharder looks for runs without a live shard besides
	// the changes it is told of (DefaultResync when zero).
	ResyncInterval time.Duration
}

// DefaultResync is how often the sharder checks every assignment even when nothing changed.
const DefaultResync = 30 * time.Second

// Sharding is a replica's part in the ring of shards (see package sharding): which shard it
// is, the ring of live shards as its leases say, the table of every run's shard, and the
// unsharded, lean view of every run that the table, the web console's index, schedules and
// child runs' parents read. A nil *Sharding is the single-leader mode: every method says what
// that mode does.
type Sharding struct {
	opts  Options
	table *sharding.Table
	ring  atomic.Pointer[sharding.Ring]
	// view holds every run, lean (see leanRun); set by Setup.
	view cache.Cache
	// ringChanged is signalled when the ring's members change (the sharder waits on it).
	ringChanged chan struct{}
	// ready is closed once the ring and the table were read in full.
	ready chan struct{}
}

// New checks o and returns the replica's sharding state.
func New(o Options) (*Sharding, error) {
	switch {
	case o.Shard == "":
		return nil, errors.New("a shard needs a name (--shard-name, default the host name)")
	case len(validLabelValue(o.Shard)) != 0:
		return nil, fmt.Errorf("shard name %q is not a valid label value: %s", o.Shard, validLabelValue(o.Shard)[0])
	case o.LeaseNamespace == "":
		return nil, errors.New("shard leases need a namespace")
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = sharding.DefaultLeaseDuration
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = DefaultResync
	}
	s := &Sharding{opts: o, table: sharding.NewTable(), ringChanged: make(chan struct{}, 1), ready: make(chan struct{})}
	s.table.Epsilon = o.Epsilon
	s.ring.Store(sharding.NewRing())
	return s, nil
}

// validLabelValue lists what is wrong with v as a label value.
func validLabelValue(v string) []string {
	if _, err := labels.Parse(workflowsv1alpha1.LabelShard + "=" + v); err != nil {
		return []string{err.Error()}
	}
	return nil
}

// Shard is this replica's shard name; empty in single-leader mode.
func (s *Sharding) Shard() string {
	if s == nil {
		return ""
	}
	return s.opts.Shard
}

// Ring is the ring of live shards as this replica last saw it; empty in single-leader mode.
func (s *Sharding) Ring() *sharding.Ring {
	if s == nil {
		return sharding.NewRing()
	}
	return s.ring.Load()
}

// CacheOptions restricts base, the manager's cache options, to this shard: the manager's
// cache holds only the runs and agent turns labelled with this shard (so the controllers
// watch only them), and only the ring's leases. Single-leader mode keeps base.
func (s *Sharding) CacheOptions(base cache.Options) cache.Options {
	if s == nil {
		return base
	}
	out := base
	out.ByObject = maps.Clone(base.ByObject)
	if out.ByObject == nil {
		out.ByObject = map[client.Object]cache.ByObject{}
	}
	mine := labels.SelectorFromSet(labels.Set{workflowsv1alpha1.LabelShard: s.opts.Shard})
	restrict := func(obj client.Object, sel labels.Selector, namespaces map[string]cache.Config) {
		for k, v := range out.ByObject {
			if reflect.TypeOf(k) == reflect.TypeOf(obj) {
				delete(out.ByObject, k)
				v.Label, v.Namespaces = sel, namespaces
				out.ByObject[obj] = v
				return
			}
		}
		out.ByObject[obj] = cache.ByObject{Label: sel, Namespaces: namespaces}
	}
	restrict(&workflowsv1alpha1.WorkflowRun{}, mine, nil)
	restrict(&workflowsv1alpha1.AgentRun{}, mine, nil)
	restrict(&coordinationv1.Lease{}, labels.SelectorFromSet(labels.Set{workflowsv1alpha1.LabelRing: sharding.RingName}),
		map[string]cache.Config{s.opts.LeaseNamespace: {}})
	return out
}

// NewClient is the manager's NewClient under sharding: the client places every run it
// creates without a shard label (REST API, webhooks, schedules, child runs) on the ring before
// the create, so that the run's shard executes it from its first event and an eager start
// knows at once whether it runs here. Single-leader mode is client.New.
func (s *Sharding) NewClient(config *rest.Config, options client.Options) (client.Client, error) {
	c, err := client.New(config, options)
	if err != nil || s == nil {
		return c, err
	}
	return &placingClient{Client: c, s: s}, nil
}

// placingClient labels the runs it creates with their shard (see Sharding.NewClient).
type placingClient struct {
	client.Client
	s *Sharding
}

// Create places a new run without a shard label, then creates it; a failed create releases
// the placement, so that it does not count toward the shard's load.
func (c *placingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	run, ok := obj.(*workflowsv1alpha1.WorkflowRun)
	if !ok || run.Labels[workflowsv1alpha1.LabelShard] != "" || run.Name == "" {
		return c.Client.Create(ctx, obj, opts...)
	}
	key := runKey(run.Namespace, run.Name)
	shard := c.s.table.Place(c.s.Ring(), key, true)
	if shard == "" {
		return c.Client.Create(ctx, obj, opts...) // no live shard yet: the sharder assigns it
	}
	if run.Labels == nil {
		run.Labels = map[string]string{}
	}
	run.Labels[workflowsv1alpha1.LabelShard] = shard
	err := c.Client.Create(ctx, obj, opts...)
	if err != nil {
		c.s.table.Release(key)
		delete(run.Labels, workflowsv1alpha1.LabelShard)
	}
	return err
}

// runKey is a run's key on the ring and in the table.
func runKey(namespace, name string) string { return namespace + "/" + name }

// turnKey is the key of an agent turn that no run owns.
func turnKey(namespace, name string) string { return "agentrun:" + namespace + "/" + name }

// EveryReplica is the NeedLeaderElection option of the sharded controllers (runs, turns, the
// events' second wake-up): false under sharding, where each replica runs them for its shard;
// nil (the leader only) in single-leader mode.
func (s *Sharding) EveryReplica() *bool {
	if s == nil {
		return nil
	}
	f := false
	return &f
}

// Admit adds to p, the predicate of a sharded controller's own kind, the updates that ask
// for a handover (the drain label), which p may not pass; single-leader mode keeps p.
func (s *Sharding) Admit(p predicate.Predicate) predicate.Predicate {
	if s == nil {
		return p
	}
	return predicate.Or(p, drainRequested())
}

// drainRequested passes objects that carry the drain label.
func drainRequested() predicate.Funcs {
	has := func(o client.Object) bool { return o != nil && o.GetLabels()[workflowsv1alpha1.LabelDrain] != "" }
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return has(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return has(e.ObjectNew) },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(e event.GenericEvent) bool { return has(e.Object) },
	}
}

// Executes returns whether this replica executes a run: under sharding, when the run is
// labelled with this shard; in single-leader mode, once this replica leads.
func (s *Sharding) Executes(elected <-chan struct{}) func(*workflowsv1alpha1.WorkflowRun) bool {
	if s != nil {
		return func(run *workflowsv1alpha1.WorkflowRun) bool {
			return run.Labels[workflowsv1alpha1.LabelShard] == s.opts.Shard
		}
	}
	return func(*workflowsv1alpha1.WorkflowRun) bool {
		select {
		case <-elected:
			return true
		default:
			return false
		}
	}
}

// RunView returns the informers and reader of every run: under sharding a cache of its own
// (every replica follows every run, lean), otherwise the manager's cache, which holds every
// run already.
func (s *Sharding) RunView(mgr ctrl.Manager) (cache.Cache, error) {
	if s == nil {
		return mgr.GetCache(), nil
	}
	if s.view != nil {
		return s.view, nil
	}
	view, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient(),
		ByObject: map[client.Object]cache.ByObject{&workflowsv1alpha1.WorkflowRun{}: {Transform: leanRun}},
	})
	if err != nil {
		return nil, fmt.Errorf("make the cache of every run: %w", err)
	}
	if err := mgr.Add(ReplicaCache{view}); err != nil {
		return nil, fmt.Errorf("add the cache of every run: %w", err)
	}
	s.view = view
	return view, nil
}

// ReplicaCache is a cache that every replica runs, leader or not.
type ReplicaCache struct{ cache.Cache }

// NeedLeaderElection reports false: every replica needs the cache.
func (ReplicaCache) NeedLeaderElection() bool { return false }

// leanRun is the transform of the view of every run: what the manager's cache keeps of a run
// (runstore.LeanRun), less its input and the journal entries that wait for events, which only
// the replica that executes the run reads. The receipts of events the run received stay: the
// elected replica learns the events' consumers from them. Following every run costs a few
// hundred bytes per run.
func leanRun(obj any) (any, error) {
	obj, err := runstore.LeanRun(obj)
	if run, ok := obj.(*workflowsv1alpha1.WorkflowRun); ok && err == nil {
		run.Spec.Input, run.Status.Journal = nil, runstore.Receipts(run.Status.Journal)
	}
	return obj, err
}

// entryOf is what the table keeps of a run.
func entryOf(run *workflowsv1alpha1.WorkflowRun) sharding.Entry {
	return sharding.Entry{
		Shard:    run.Labels[workflowsv1alpha1.LabelShard],
		Active:   !run.Status.Phase.IsFinal() && run.DeletionTimestamp.IsZero(),
		Busy:     run.Status.Phase == workflowsv1alpha1.PhaseRunning,
		Draining: run.Labels[workflowsv1alpha1.LabelDrain] != "",
	}
}

// shardState keeps a replica's Sharding current: the ring from the shard leases (again at
// each lease's expiry, which no event announces) and the table from the view of every run.
// Every replica runs it.
type shardState struct {
	s      *Sharding
	leases cache.Cache // the manager's cache: the ring's leases only
	view   cache.Cache
	clock  func() time.Time
}

// NeedLeaderElection reports false: every replica places the runs it creates.
func (*shardState) NeedLeaderElection() bool { return false }

// Start follows the leases and the runs until ctx ends.
func (st *shardState) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("sharding").WithValues("shard", st.s.opts.Shard)
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	leaseInf, err := st.leases.GetInformer(ctx, &coordinationv1.Lease{})
	if err != nil {
		return fmt.Errorf("watch shard leases: %w", err)
	}
	leaseReg, err := leaseInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { poke() }, UpdateFunc: func(any, any) { poke() }, DeleteFunc: func(any) { poke() },
	})
	if err != nil {
		return fmt.Errorf("watch shard leases: %w", err)
	}
	runInf, err := st.view.GetInformer(ctx, &workflowsv1alpha1.WorkflowRun{})
	if err != nil {
		return fmt.Errorf("watch every run: %w", err)
	}
	runReg, err := runInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    st.upsert,
		UpdateFunc: func(_, obj any) { st.upsert(obj) },
		DeleteFunc: st.remove,
	})
	if err != nil {
		return fmt.Errorf("watch every run: %w", err)
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), leaseReg.HasSynced, runReg.HasSynced) {
		return nil
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for first := true; ; first = false {
		next := st.refresh(ctx, logger)
		if first {
			close(st.s.ready)
		}
		timer.Reset(st.until(next))
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-timer.C:
		}
	}
}

// until is how long to wait before the ring is read again: until the next live lease
// expires (a moment after), or a minute when none is live.
func (st *shardState) until(next time.Time) time.Duration {
	if next.IsZero() {
		return time.Minute
	}
	return max(next.Sub(now(st.clock))+10*time.Millisecond, 10*time.Millisecond)
}

// refresh reads the ring from the leases and publishes it when its members changed; it
// returns when the next live lease expires.
func (st *shardState) refresh(ctx context.Context, logger logr.Logger) time.Time {
	var list coordinationv1.LeaseList
	if err := st.leases.List(ctx, &list); err != nil {
		logger.Error(err, "list shard leases")
		return time.Time{}
	}
	ring, _, next := sharding.Members(list.Items, now(st.clock))
	old := st.s.ring.Load()
	if !slices.Equal(old.Members(), ring.Members()) {
		st.s.ring.Store(ring)
		ringMembers.Set(float64(ring.Len()))
		logger.Info("shard_ring_changed", "members", ring.Members(), "was", old.Members())
		select {
		case st.s.ringChanged <- struct{}{}:
		default:
		}
	}
	return next
}

// upsert records a run's assignment in the table.
func (st *shardState) upsert(obj any) {
	if run, ok := obj.(*workflowsv1alpha1.WorkflowRun); ok {
		st.s.table.Set(runKey(run.Namespace, run.Name), entryOf(run))
	}
}

// remove forgets a deleted run.
func (st *shardState) remove(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if run, ok := obj.(*workflowsv1alpha1.WorkflowRun); ok {
		st.s.table.Delete(runKey(run.Namespace, run.Name))
	}
}

// Setup adds what runs a replica's shard besides its controllers: the shard state on every
// replica and the sharder on the elected one. Single-leader mode adds nothing.
func (s *Sharding) Setup(mgr ctrl.Manager, view cache.Cache) error {
	if s == nil {
		return nil
	}
	shardInfo.WithLabelValues(s.opts.Shard).Set(1)
	if err := mgr.Add(&shardState{s: s, leases: mgr.GetCache(), view: view}); err != nil {
		return fmt.Errorf("add the shard state: %w", err)
	}
	if err := mgr.Add(&Sharder{s: s, mgr: mgr, view: view}); err != nil {
		return fmt.Errorf("add the sharder: %w", err)
	}
	return nil
}

// now reads clock, a test's clock, or the wall clock when it is nil.
func now(clock func() time.Time) time.Time {
	if clock != nil {
		return clock()
	}
	return time.Now()
}
