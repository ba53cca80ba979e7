package sharding

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func lease(name, holder string, renewed time.Time, seconds int32) coordinationv1.Lease {
	l := coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if holder != "" {
		l.Spec.HolderIdentity = ptr.To(holder)
	}
	l.Spec.RenewTime = &metav1.MicroTime{Time: renewed}
	l.Spec.LeaseDurationSeconds = ptr.To(seconds)
	return l
}

func TestShardStates(t *testing.T) {
	now := time.Now()
	cases := []struct {
		lease coordinationv1.Lease
		want  State
	}{
		{lease("a", "a_1234", now.Add(-time.Second), 15), StateLive},
		{lease("a", "a_1234", now.Add(-16*time.Second), 15), StateExpired},
		{lease("a", "", now, 1), StateReleased},
		{lease("a", "b_1234", now, 15), StateReleased}, // not a holder of this shard
		{lease("a", SharderIdentity, now, 15), StateDead},
	}
	for _, c := range cases {
		if got := ShardOf(&c.lease, now); got.State != c.want {
			t.Errorf("lease held by %v: state %s, want %s", c.lease.Spec.HolderIdentity, got.State, c.want)
		}
	}
}

func TestMembers(t *testing.T) {
	now := time.Now()
	leases := []coordinationv1.Lease{
		lease("b", "b_1", now.Add(-2*time.Second), 15),
		lease("a", "a_1", now.Add(-5*time.Second), 15),
		lease("c", "c_1", now.Add(-30*time.Second), 15),
		lease("d", SharderIdentity, now, 15),
	}
	ring, shards, next := Members(leases, now)
	if got := ring.Members(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("ring %v, want the live shards a and b", got)
	}
	if len(shards) != 4 || shards[0].Name != "a" || shards[2].State != StateExpired || shards[3].State != StateDead {
		t.Fatalf("shards %+v", shards)
	}
	if want := now.Add(10 * time.Second); !next.Equal(want) {
		t.Errorf("next check %s, want %s (a's expiry)", next, want)
	}
}

func TestTakeOver(t *testing.T) {
	now := time.Now()
	l := lease("a", "a_1", now.Add(-time.Minute), 15)
	TakeOver(&l, now, 15*time.Second)
	if s := ShardOf(&l, now); s.State != StateDead || !s.Expiry.Equal(now.Add(15*time.Second)) {
		t.Errorf("after the takeover: %+v", s)
	}
	if *l.Spec.LeaseTransitions != 1 {
		t.Errorf("transitions %d, want 1", *l.Spec.LeaseTransitions)
	}
}
