package sharding

import (
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels of shard leases.
const (
	// RingName is the ring of the WorkflowRun shards.
	RingName = "workflow-runs"
	// SharderIdentity is the holder the sharder writes into the lease of a shard it declared
	// dead, so that the dead replica cannot renew it should it come back.
	SharderIdentity = "centaur-sharder"
)

// State is what a shard lease says about its shard.
type State string

// States of a shard lease.
const (
	// StateLive: held by its shard and renewed in time; the shard is on the ring.
	StateLive State = "Live"
	// StateExpired: held by its shard but not renewed in time; the shard is presumed dead and
	// off the ring, and the sharder takes the lease over.
	StateExpired State = "Expired"
	// StateReleased: the shard gave the lease up when it stopped.
	StateReleased State = "Released"
	// StateDead: taken over by the sharder after it expired.
	StateDead State = "Dead"
)

// Shard is one shard as its lease describes it.
type Shard struct {
	// Name is the shard's name: the lease's name, and the value of runs' shard label.
	Name string
	// Holder is the lease's holder identity.
	Holder string
	// State is the lease's state at the time it was read.
	State State
	// Expiry is when the lease expires (or expired): its renew time plus its duration.
	Expiry time.Time
}

// HolderIdentity is the identity a replica holds its shard's lease with: the shard's name and
// a suffix unique to the process, so that two processes given one name cannot both hold it.
func HolderIdentity(shard, suffix string) string { return shard + "_" + suffix }

// holderOf reports whether identity is a holder identity of shard.
func holderOf(shard, identity string) bool { return strings.HasPrefix(identity, shard+"_") }

// ShardOf reads the state of one shard lease at now.
func ShardOf(lease *coordinationv1.Lease, now time.Time) Shard {
	s := Shard{Name: lease.Name, Expiry: expiry(lease)}
	if h := lease.Spec.HolderIdentity; h != nil {
		s.Holder = *h
	}
	switch {
	case s.Holder == SharderIdentity:
		s.State = StateDead
	case s.Holder == "" || !holderOf(s.Name, s.Holder):
		s.State = StateReleased
	case !now.Before(s.Expiry):
		s.State = StateExpired
	default:
		s.State = StateLive
	}
	return s
}

// expiry is the lease's renew time plus its duration; the zero time when it has neither.
func expiry(lease *coordinationv1.Lease) time.Time {
	renew, seconds := lease.Spec.RenewTime, lease.Spec.LeaseDurationSeconds
	if renew == nil || seconds == nil {
		return time.Time{}
	}
	return renew.Add(time.Duration(*seconds) * time.Second)
}

// Members reads shard leases at now: the ring of the live shards, every shard's state sorted
// by name, and when the next live lease expires unless renewed (zero when none is live), which
// is when the ring must be looked at again.
func Members(leases []coordinationv1.Lease, now time.Time) (*Ring, []Shard, time.Time) {
	shards := make([]Shard, 0, len(leases))
	var live []string
	var next time.Time
	for i := range leases {
		s := ShardOf(&leases[i], now)
		shards = append(shards, s)
		if s.State == StateLive {
			live = append(live, s.Name)
			if next.IsZero() || s.Expiry.Before(next) {
				next = s.Expiry
			}
		}
	}
	slices.SortFunc(shards, func(a, b Shard) int { return cmpString(a.Name, b.Name) })
	return NewRing(live...), shards, next
}

// TakeOver makes the sharder the holder of an expired lease for duration from now, so that the
// shard that held it fails to renew it and stops, should it still run.
func TakeOver(lease *coordinationv1.Lease, now time.Time, duration time.Duration) {
	id := SharderIdentity
	t := metav1.NewMicroTime(now)
	seconds := int32(max(duration.Round(time.Second), time.Second) / time.Second)
	transitions := int32(1)
	if lease.Spec.LeaseTransitions != nil {
		transitions = *lease.Spec.LeaseTransitions + 1
	}
	lease.Spec.HolderIdentity = &id
	lease.Spec.AcquireTime, lease.Spec.RenewTime = &t, &t
	lease.Spec.LeaseDurationSeconds = &seconds
	lease.Spec.LeaseTransitions = &transitions
}
