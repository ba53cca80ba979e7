// Package shardingsuite holds the envtest specs of sharded replicas (--sharding): several
// managers in one test process, each with its own shard lease, cache and controllers as
// manager.Run wires them, against one real kube-apiserver and etcd. The crash test (hack/chaos)
// does the same with real processes and SIGKILL.
package shardingsuite

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/sharding"
	"github.com/centaur-dev/workflow-operator/sharding/placement"
	"github.com/centaur-dev/workflow-operator/workflows"
)

var (
	testCluster *testcluster.Cluster
	cfg         *rest.Config
	k8sClient   client.Client
	scheme      = controllers.NewScheme()
	// ledger records every execution of a step of the suite's workflows, by replica.
	ledger = &executions{}
)

// leaseNamespace holds the shard leases and the leader election's lease.
const leaseNamespace = "centaur-system"

// Short leases, so that a dead shard's runs move within a few seconds.
const (
	leaseDuration = 2 * time.Second
	renewDeadline = 1500 * time.Millisecond
	retryPeriod   = 250 * time.Millisecond
)

func TestSharding(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Sharding Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var err error
	testCluster, err = testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	Expect(err).NotTo(HaveOccurred())
	cfg = testCluster.Config()
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNamespace}})).To(Succeed())
})

var _ = AfterSuite(func() {
	if testCluster != nil {
		Expect(testCluster.Stop()).To(Succeed())
	}
})

// replica is one sharded manager of the suite, as manager.Run wires it: its shard lease held
// around the manager, the cache and client of its shard, the controllers and the sharder.
type replica struct {
	name   string
	shards *placement.Sharding
	mgr    ctrl.Manager
	ctrls  *controllers.Controllers
	holder *sharding.Holder
	// lease is the shard lease the suite renews for a replica that crashes (see kill).
	lease  *suiteLease
	cancel context.CancelFunc
	done   chan struct{}
}

// replicaOptions vary a replica: without a lease it executes its shard's runs at once (two
// replicas can then believe they own the same shard, as a partitioned one would); tag names it
// in the ledger and in its workflows' outputs (default: the shard); one that crashes can be
// killed as a SIGKILL would (kill), leaving its leases to expire.
type replicaOptions struct {
	noLease bool
	tag     string
	crashes bool
}

// startReplica starts the replica named shard and waits until it holds its lease.
func startReplica(shard string, opts ...replicaOptions) *replica {
	var o replicaOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	shards, err := placement.New(placement.Options{Shard: shard, LeaseNamespace: leaseNamespace,
		LeaseDuration: leaseDuration, ResyncInterval: 2 * time.Second})
	Expect(err).NotTo(HaveOccurred())
	mo := testenv.ManagerOptions(scheme)
	lease, renew, retry := leaseDuration, renewDeadline, retryPeriod
	mo.LeaderElection, mo.LeaderElectionID, mo.LeaderElectionNamespace = true, "sharding-suite", leaseNamespace
	mo.LeaseDuration, mo.RenewDeadline, mo.RetryPeriod = &lease, &renew, &retry
	mo.LeaderElectionReleaseOnCancel = !o.crashes
	mo.Cache = shards.CacheOptions(cache.Options{})
	mo.NewClient = shards.NewClient
	mgr, err := ctrl.NewManager(cfg, mo)
	Expect(err).NotTo(HaveOccurred())
	registry := engine.NewRegistry()
	Expect(workflows.Register(registry)).To(Succeed())
	tag := shard
	if o.tag != "" {
		tag = o.tag
	}
	Expect(registry.Register(suiteWorkflows(tag)...)).To(Succeed())
	cat := controllers.NewWorkflowCatalog(mgr, registry, catalog.Options{OperatorNamespace: leaseNamespace})
	ctrls, err := controllers.Setup(mgr, controllers.Options{Workflows: cat, MaxConcurrentReconciles: 8,
		Agents:      controllers.AgentOptions{ConfigMap: client.ObjectKey{Namespace: leaseNamespace, Name: "agents"}},
		SecretScope: controllers.SecretScope{leaseNamespace}, Sharding: shards})
	Expect(err).NotTo(HaveOccurred())
	r := &replica{name: shard, shards: shards, mgr: mgr, ctrls: ctrls, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if o.crashes {
		r.lease = holdLease(shard)
	}
	if !o.noLease && !o.crashes {
		r.holder, err = sharding.NewHolder(sharding.HolderConfig{Config: cfg, Namespace: leaseNamespace, Shard: shard,
			LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod, Logger: logf.Log})
		Expect(err).NotTo(HaveOccurred())
		leaseCtx, release := context.WithCancel(context.Background())
		go r.holder.Run(leaseCtx)
		Eventually(r.holder.Acquired(), 20*time.Second).Should(BeClosed(), "replica %s acquires its shard lease", shard)
		go func() { <-r.done; release() }()
	}
	go func() {
		defer GinkgoRecover()
		defer close(r.done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return r
}

// stop stops the replica as a SIGTERM would: the manager first, then its lease is released.
func (r *replica) stop() {
	r.cancel()
	Eventually(r.done, 30*time.Second).Should(BeClosed())
	if r.holder != nil {
		Eventually(r.holder.Done(), 10*time.Second).Should(BeClosed())
	}
}

// kill ends a replica started with crashes as a SIGKILL would for the others: its leases (the
// shard's, and the leader's when it leads) are neither renewed nor released, so they expire
// after leaseDuration, and its manager stops.
func (r *replica) kill() {
	r.lease.stop()
	r.cancel()
	Eventually(r.done, 30*time.Second).Should(BeClosed())
}

// suiteLease is a shard lease the suite itself holds for a replica, renewed every retryPeriod
// until stop: what a replica's sharding.Holder writes, without the release on stop that a
// crash never gets to make.
type suiteLease struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// holdLease takes the lease of shard and renews it until stop.
func holdLease(shard string) *suiteLease {
	ctx, cancel := context.WithCancel(context.Background())
	l := &suiteLease{cancel: cancel, done: make(chan struct{})}
	key := client.ObjectKey{Namespace: leaseNamespace, Name: shard}
	holder, seconds := sharding.HolderIdentity(shard, "suite"), int32(leaseDuration/time.Second)
	renew := func() error {
		lease := &coordinationv1.Lease{}
		err := k8sClient.Get(ctx, key, lease)
		if apierrors.IsNotFound(err) {
			lease.ObjectMeta = metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				Labels: map[string]string{workflowsv1alpha1.LabelRing: sharding.RingName}}
		} else if err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.RenewTime = &holder, &seconds, &now
		if lease.ResourceVersion == "" {
			return k8sClient.Create(ctx, lease)
		}
		return k8sClient.Update(ctx, lease)
	}
	Expect(renew()).To(Succeed(), "take the lease of shard %s", shard)
	go func() {
		defer close(l.done)
		for testcluster.Sleep(ctx, retryPeriod) == nil {
			_ = renew() // a missed renewal is made up by the next one, well within the lease
		}
	}()
	return l
}

// stop stops renewing the lease, without releasing it.
func (l *suiteLease) stop() {
	l.cancel()
	<-l.done
}

// executions counts the executions of steps of the suite's workflows by run, step and replica.
type executions struct {
	mu    sync.Mutex
	by    map[string][]string // "namespace/run/step" -> replicas, in order
	entry map[string]int      // "namespace/run/step" -> executions in flight
}

// record notes that replica executes step of run; it returns how many executions of that
// step are in flight, this one included, and a func that ends this one.
func (e *executions) record(run durable.RunInfo, step, replica string) (int, func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.by == nil {
		e.by, e.entry = map[string][]string{}, map[string]int{}
	}
	key := fmt.Sprintf("%s/%s/%s", run.Namespace, run.Name, step)
	e.by[key] = append(e.by[key], replica)
	e.entry[key]++
	n := e.entry[key]
	return n, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.entry[key]--
	}
}

// of returns the replicas that executed step of run, in order.
func (e *executions) of(namespace, run, step string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.by[fmt.Sprintf("%s/%s/%s", namespace, run, step)]...)
}

// inFlight is how many executions of step of run are in flight.
func (e *executions) inFlight(namespace, run, step string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.entry[fmt.Sprintf("%s/%s/%s", namespace, run, step)]
}

// createNamespace creates a namespace for one spec.
func createNamespace(name string) string {
	Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// getRun reads a run from the API server.
func getRun(ns, name string) *workflowsv1alpha1.WorkflowRun {
	run := &workflowsv1alpha1.WorkflowRun{}
	Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, run)).To(Succeed())
	return run
}
