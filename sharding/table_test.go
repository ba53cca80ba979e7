package sharding

import (
	"fmt"
	"testing"
	"time"
)

// TestPlaceSplitsABurstEvenly places 600 runs over three shards, as placing clients do (each
// run placed as it is created) and as the benchmark's sharder does (every run in the table,
// unassigned, before the first is placed). The fullest shard is capped at ceil(1.02 × 200) =
// 204 and so the emptiest holds at least 192: within ±5 % of even on both sides, although the
// first choices of the benchmark's keys are 209/176/215 and 173/183/244.
func TestPlaceSplitsABurstEvenly(t *testing.T) {
	for _, c := range []struct {
		prefix string
		shards []string
		seen   bool
	}{
		{"bench/run-", []string{"shard-0", "shard-1", "shard-2"}, false},
		{"default/nightly-report-", []string{"shard-0", "shard-1", "shard-2"}, false},
		{"chaos/chaos-", []string{"shard-0", "shard-1", "shard-2"}, false},
		{"bench-shard-3/burn-", []string{"bench-0", "bench-1", "bench-2"}, true},
		{"bench-io-3/io-", []string{"bench-0", "bench-1", "bench-2"}, true},
	} {
		tab, r := NewTable(), NewRing(c.shards...)
		for i := range 600 {
			if c.seen {
				tab.Set(fmt.Sprintf("%s%05d", c.prefix, i), Entry{Active: true})
			}
		}
		for i := range 600 {
			tab.Place(r, fmt.Sprintf("%s%05d", c.prefix, i), true)
		}
		for s, load := range tab.Loads(r) {
			if load < 192 || load > 204 {
				t.Errorf("%s*: shard %s holds %d of 600 runs, want 192 to 204", c.prefix, s, load)
			}
		}
	}
}

// TestPlaceCountsRunsFinishedDuringABurst places a burst of 600 runs, all in the table before
// the first is placed, over three shards of which one finishes each run as soon as it gets it:
// its load stays at zero, but the runs it finished while the burst waited count, so it
// executes no more than the others. Once the burst is placed, those finishes are forgotten.
func TestPlaceCountsRunsFinishedDuringABurst(t *testing.T) {
	tab, r := NewTable(), NewRing("fast", "slow-1", "slow-2")
	for i := range 600 {
		tab.Set(fmt.Sprintf("ns/run-%05d", i), Entry{Active: true})
	}
	executed := map[string]int{}
	for i := range 600 {
		key := fmt.Sprintf("ns/run-%05d", i)
		shard := tab.Place(r, key, true)
		executed[shard]++
		tab.Set(key, Entry{Shard: shard, Active: shard != "fast"})
	}
	for s, n := range executed {
		if n < 192 || n > 204 {
			t.Errorf("shard %s executed %d of 600 runs, want 192 to 204 (executions: %v)", s, n, executed)
		}
	}
	if len(tab.done) != 0 || len(tab.doneKeys) != 0 {
		t.Errorf("the burst is placed, but %d finishes still count: %v", len(tab.doneKeys), tab.done)
	}
	if load := tab.Load("fast"); load != 0 {
		t.Errorf("the fast shard's load is %d, want 0: its runs finished", load)
	}
}

// TestFinishesDuringABurstAreForgotten checks that the finishes counted while a run waits for
// its shard stop counting pendingTTL after the first, even when that run never gets one.
func TestFinishesDuringABurstAreForgotten(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	tab, r := NewTable(), NewRing("a", "b")
	tab.Clock = func() time.Time { return clock }
	tab.Set("ns/stuck", Entry{Active: true})
	for i := range 10 {
		key := fmt.Sprintf("ns/done-%d", i)
		tab.Set(key, Entry{Shard: "a", Active: true})
		tab.Set(key, Entry{Shard: "a"})
	}
	if tab.done["a"] != 10 {
		t.Fatalf("runs finished on a while one waited: %d counted, want 10", tab.done["a"])
	}
	clock = clock.Add(pendingTTL + time.Second)
	tab.Place(r, "ns/next", true)
	if len(tab.done) != 0 {
		t.Errorf("finishes from %s ago still count: %v", pendingTTL, tab.done)
	}
}

// TestPlaceFollowsTheWalk checks that a run goes to the first shard of its own walk while that
// shard has room, and that finished runs ignore loads.
func TestPlaceFollowsTheWalk(t *testing.T) {
	tab, r := NewTable(), NewRing("a", "b", "c")
	key := "ns/first"
	if got := tab.Place(r, key, true); got != r.Owner(key) {
		t.Fatalf("the first run went to %s, want its first choice %s", got, r.Owner(key))
	}
	// Fill the first choice of another key beyond the capacity: the key takes its walk's next.
	other := "ns/second"
	walk := r.Walk(other)
	for i := range 10 {
		tab.Set(fmt.Sprintf("ns/filler-%d", i), Entry{Shard: walk[0], Active: true})
	}
	if got := tab.Place(r, other, true); got != walk[1] {
		t.Errorf("with %s full, the run went to %s, want the walk's next shard %s", walk[0], got, walk[1])
	}
	if got := tab.Place(r, "ns/finished", false); got != r.Owner("ns/finished") {
		t.Errorf("a finished run went to %s, want its first choice %s", got, r.Owner("ns/finished"))
	}
}

// TestPlacementOutlivesStaleEvents checks that a placement is kept over an event from before
// the label was written, and that the informer's word stands once it shows a shard.
func TestPlacementOutlivesStaleEvents(t *testing.T) {
	tab, r := NewTable(), NewRing("a", "b")
	tab.Set("ns/r", Entry{Active: true})
	shard := tab.Place(r, "ns/r", true)
	tab.Set("ns/r", Entry{Active: true}) // an update from before the label
	if e, _ := tab.Get("ns/r"); e.Shard != shard {
		t.Fatalf("a stale event unassigned the run: %+v, want shard %s", e, shard)
	}
	if orphans := tab.Orphans(r); len(orphans) != 0 {
		t.Fatalf("a run placed a moment ago is an orphan: %v", orphans)
	}
	tab.Set("ns/r", Entry{Shard: "b", Active: true})
	if e, _ := tab.Get("ns/r"); e.Shard != "b" || tab.Load("b") != 1 {
		t.Fatalf("the informer's shard did not stand: %+v, load of b %d", e, tab.Load("b"))
	}
}

// TestReleaseUndoesAPlacement checks that a placement that could not be written leaves the
// table as it was.
func TestReleaseUndoesAPlacement(t *testing.T) {
	tab, r := NewTable(), NewRing("a", "b")
	tab.Place(r, "ns/new", true)
	tab.Release("ns/new")
	if _, ok := tab.Get("ns/new"); ok || tab.Load("a")+tab.Load("b") != 0 {
		t.Fatal("a failed create still counts")
	}
	tab.Set("ns/old", Entry{Shard: "dead", Active: true})
	tab.Place(r, "ns/old", true)
	tab.Release("ns/old")
	if e, _ := tab.Get("ns/old"); e.Shard != "dead" {
		t.Fatalf("a failed move left %+v, want the run on its old shard", e)
	}
	if orphans := tab.Orphans(r); len(orphans) != 1 {
		t.Fatalf("orphans %v, want the run whose move failed", orphans)
	}
}

// TestOrphans lists the runs of shards that left the ring, and unassigned ones: executing runs
// first, then the other unfinished ones, then the finished ones, so that a dead shard's
// finished runs (sorted first by name here) never delay the steps it had in flight.
func TestOrphans(t *testing.T) {
	tab := NewTable()
	tab.Set("ns/a1", Entry{Shard: "a", Active: true})
	tab.Set("ns/done1", Entry{Shard: "gone"})
	tab.Set("ns/done2", Entry{Shard: "gone"})
	tab.Set("ns/sleeping", Entry{Shard: "gone", Active: true})
	tab.Set("ns/running", Entry{Shard: "gone", Active: true, Busy: true})
	tab.Set("ns/new", Entry{Active: true})
	got := tab.Orphans(NewRing("a"))
	want := []string{"ns/running", "ns/new", "ns/sleeping", "ns/done1", "ns/done2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("orphans %v, want %v", got, want)
	}
	tab.Delete("ns/new")
	if got := tab.Orphans(NewRing("a")); len(got) != 4 {
		t.Errorf("a deleted run is still an orphan: %v", got)
	}
}

// TestRebalanceGivesANewShardItsShare places 600 runs over two shards, adds a third and
// checks that draining the others' excess and placing the drained runs again leaves every shard
// within 10 % of an even split, moving idle runs before executing ones and only as many as
// needed.
func TestRebalanceGivesANewShardItsShare(t *testing.T) {
	tab, two := NewTable(), NewRing("a", "b")
	for i := range 600 {
		key := fmt.Sprintf("ns/run-%03d", i)
		shard := tab.Place(two, key, true)
		tab.Set(key, Entry{Shard: shard, Active: true, Busy: i%2 == 0})
	}
	three := NewRing("a", "b", "c")
	drains := tab.Rebalance(three)
	moved := 0
	for from, keys := range drains {
		for _, k := range keys {
			if e, _ := tab.Get(k); e.Busy {
				t.Errorf("%s drained the executing run %s while idle ones were left", from, k)
			}
			tab.Set(k, Entry{Active: true}) // the old shard handed it over
			tab.Place(three, k, true)
			moved++
		}
	}
	if again := tab.Rebalance(three); len(again["a"])+len(again["b"])+len(again["c"]) != 0 {
		t.Errorf("a second rebalance drains more: %v", again)
	}
	for s, load := range tab.Loads(three) {
		if load < 180 || load > 220 {
			t.Errorf("after the rebalance shard %s holds %d of 600 runs, want within 10 %% of 200", s, load)
		}
	}
	if moved > 260 {
		t.Errorf("%d runs moved, want about the new shard's share", moved)
	}
}

// TestPendingDecisionsExpire checks that a placement the informer never showed stops counting.
func TestPendingDecisionsExpire(t *testing.T) {
	now := time.Now()
	tab, r := NewTable(), NewRing("a")
	tab.Clock = func() time.Time { return now }
	tab.Set("ns/r", Entry{Active: true})
	tab.Place(r, "ns/r", true)
	now = now.Add(pendingTTL + time.Second)
	tab.Place(r, "ns/other", true) // any decision sweeps the old ones
	tab.Set("ns/r", Entry{Active: true})
	if orphans := tab.Orphans(r); len(orphans) != 1 || orphans[0] != "ns/r" {
		t.Errorf("orphans %v, want the run whose placement was never shown", orphans)
	}
}
