package sharding

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Timing of shard leases, as controller-runtime's leader election has it by default.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// HolderConfig says which lease a replica holds as its shard, and how.
type HolderConfig struct {
	// Config reaches the API server.
	Config *rest.Config
	// Namespace and Shard name the lease: the shard's name is the lease's name.
	Namespace, Shard string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's leader election timings
	// (Default* when zero): others see the lease expire LeaseDuration after its last renewal;
	// the holder gives up when it could not renew for RenewDeadline, before that happens.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Logger receives the lease's transitions.
	Logger logr.Logger
}

// Holder holds one replica's shard lease with client-go's leader election on a Lease labelled
// as a shard of the ring: it acquires it (waiting for an earlier holder's lease to expire),
// renews it, and releases it when its context ends, so that the sharder moves the shard's runs
// at once instead of after the lease duration.
type Holder struct {
	identity string
	elector  *leaderelection.LeaderElector
	acquired chan struct{}
	lost     chan struct{}
	done     chan struct{}
	log      logr.Logger
}

// NewHolder prepares the lease of cfg.Shard; Run holds it.
func NewHolder(cfg HolderConfig) (*Holder, error) {
	if cfg.Shard == "" || cfg.Namespace == "" {
		return nil, errors.New("a shard lease needs a shard name and a namespace")
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, fmt.Errorf("draw the shard lease's holder identity: %w", err)
	}
	leases, err := coordinationv1client.NewForConfig(rest.AddUserAgent(rest.CopyConfig(cfg.Config), "shard-lease"))
	if err != nil {
		return nil, fmt.Errorf("create the client of shard leases: %w", err)
	}
	h := &Holder{identity: HolderIdentity(cfg.Shard, hex.EncodeToString(suffix)),
		acquired: make(chan struct{}), lost: make(chan struct{}), done: make(chan struct{})}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Shard},
		Client:     leases,
		LockConfig: resourcelock.ResourceLockConfig{Identity: h.identity},
		Labels:     map[string]string{workflowsv1alpha1.LabelRing: RingName},
	}
	log := cfg.Logger.WithValues("lease", cfg.Namespace+"/"+cfg.Shard, "identity", h.identity)
	h.log = log
	h.elector, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            "shard-" + cfg.Shard,
		LeaseDuration:   orDefault(cfg.LeaseDuration, DefaultLeaseDuration),
		RenewDeadline:   orDefault(cfg.RenewDeadline, DefaultRenewDeadline),
		RetryPeriod:     orDefault(cfg.RetryPeriod, DefaultRetryPeriod),
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				log.Info("shard_lease_acquired")
				close(h.acquired)
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("configure the shard lease: %w", err)
	}
	return h, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Identity is the holder identity this process writes into its lease.
func (h *Holder) Identity() string { return h.identity }

// Acquired is closed once the lease is held.
func (h *Holder) Acquired() <-chan struct{} { return h.acquired }

// Lost is closed when the lease could not be renewed before ctx of Run ended: another process
// (the sharder) may have moved this shard's runs, so this replica must stop executing them.
func (h *Holder) Lost() <-chan struct{} { return h.lost }

// Done is closed when Run returned: the lease was released, or lost.
func (h *Holder) Done() <-chan struct{} { return h.done }

// Run acquires the lease and renews it until ctx ends, then releases it; or until a renewal
// fails for the renew deadline, and then closes Lost. It blocks.
func (h *Holder) Run(ctx context.Context) {
	defer close(h.done)
	h.elector.Run(klog.NewContext(ctx, h.log))
	if ctx.Err() == nil {
		close(h.lost)
	}
}
