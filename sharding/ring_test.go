package sharding

import (
	"fmt"
	"slices"
	"testing"
)

func TestRingWalkMeetsEveryShardOnce(t *testing.T) {
	r := NewRing("c", "a", "b", "a", "")
	if got := r.Members(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("members %v, want a, b, c (sorted, without duplicates or empty names)", got)
	}
	for i := range 100 {
		key := fmt.Sprintf("ns/run-%d", i)
		walk := r.Walk(key)
		sorted := slices.Sorted(slices.Values(walk))
		if !slices.Equal(sorted, []string{"a", "b", "c"}) {
			t.Fatalf("walk of %s = %v, want every shard once", key, walk)
		}
		if r.Owner(key) != walk[0] {
			t.Fatalf("owner of %s = %s, want the walk's first shard %s", key, r.Owner(key), walk[0])
		}
		if !slices.Equal(walk, r.Walk(key)) {
			t.Fatalf("walk of %s changes between calls", key)
		}
	}
}

func TestEmptyRing(t *testing.T) {
	r := NewRing()
	if r.Owner("k") != "" || r.Walk("k") != nil || r.Len() != 0 || r.Has("a") {
		t.Fatal("an empty ring must place nothing")
	}
}

// TestRingMovesOnlyWhatMustMove checks the point of consistent hashing: a shard joining takes
// keys only from the others (no key moves between two old shards), and about its share.
func TestRingMovesOnlyWhatMustMove(t *testing.T) {
	before, after := NewRing("a", "b", "c"), NewRing("a", "b", "c", "d")
	const n = 20000
	moved := 0
	for i := range n {
		key := fmt.Sprintf("ns/run-%d", i)
		was, is := before.Owner(key), after.Owner(key)
		if was == is {
			continue
		}
		if is != "d" {
			t.Fatalf("%s moved from %s to %s: only the new shard may take keys", key, was, is)
		}
		moved++
	}
	if share := float64(moved) / n; share < 0.15 || share > 0.35 {
		t.Errorf("the new shard took %.1f %% of the keys, want about a quarter", 100*share)
	}
}

// TestRingSpreadsFirstChoices checks that virtual nodes spread keys' first choices roughly
// evenly (bounded loads do the rest).
func TestRingSpreadsFirstChoices(t *testing.T) {
	r := NewRing("shard-0", "shard-1", "shard-2")
	counts := map[string]int{}
	const n = 30000
	for i := range n {
		counts[r.Owner(fmt.Sprintf("bench/run-%05d", i))]++
	}
	for s, c := range counts {
		if share := float64(c) / n; share < 0.25 || share > 0.42 {
			t.Errorf("shard %s is the first choice of %.1f %% of the keys, want about a third", s, 100*share)
		}
	}
}
