package sharding

import (
	"math"
	"slices"
	"sync"
	"time"
)

// DefaultEpsilon is how far above the average load a shard may go before new runs pass it by:
// with 600 runs over 3 shards, at most 204 each, and so at least 600 − 2 × 204 = 192. The bound
// caps the fullest shard only; the emptiest one is held by what the others may not take, so
// with n shards it may fall (n−1) × Epsilon under the average. 0.02 keeps a burst over three
// shards within ±5 % of even on both sides (0.05 allowed 210 and 180). The price, fewer runs on
// the first shard of their own walk, is small: a run keeps its label once placed and moves
// only when its shard leaves or one joins.
const DefaultEpsilon = 0.02

// pendingTTL is how long a decision this process took (a placement or a drain) waits for the
// informer to show it before the table forgets it: a write that was never acknowledged must
// not hold a shard's load forever.
const pendingTTL = 2 * time.Minute

// Entry is what the table knows of one object (a run) under its key.
type Entry struct {
	// Shard is the shard the object is assigned to; empty when unassigned.
	Shard string
	// Active is true while the object is unfinished: it counts toward its shard's load.
	Active bool
	// Busy is true while the object executes (a run in phase Running): it is drained last,
	// since its handover waits for the execution to end.
	Busy bool
	// Draining is true once the object was asked to leave its shard (the drain label).
	Draining bool
}

// Table is a replica's view of the assignments: every object's shard and whether it is active,
// kept up to date from an informer (Set, Delete), plus the decisions this process took and the
// informer has not shown yet. Loads are counted from it. It is safe for concurrent use.
type Table struct {
	// Epsilon bounds loads to (1+Epsilon) times the average; zero means DefaultEpsilon.
	Epsilon float64
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time

	mu      sync.Mutex
	entries map[string]Entry
	// byShard holds the keys assigned to each shard ("" for unassigned ones).
	byShard map[string]map[string]struct{}
	// load counts the active keys of each shard; active counts them all.
	load   map[string]int
	active int
	// done counts, by shard, the keys that finished while unassigned keys waited (a burst
	// being placed); doneKeys holds their shards, doneSince when the first of them finished.
	// They are cleared when no key waits any more, or pendingTTL after doneSince (a key that
	// stays unassigned must not make every later placement follow old history).
	done      map[string]int
	doneKeys  map[string]string
	doneSince time.Time
	// placed and drains are decisions not yet shown by the informer, with when they were taken.
	placed map[string]pending
	drains map[string]pending
}

// pending is a decision waiting for the informer: the shard decided, when, and (for a
// placement) the entry before it, if there was one.
type pending struct {
	shard string
	at    time.Time
	prev  *Entry
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{entries: map[string]Entry{}, byShard: map[string]map[string]struct{}{}, load: map[string]int{},
		done: map[string]int{}, doneKeys: map[string]string{}, placed: map[string]pending{}, drains: map[string]pending{}}
}

func (t *Table) now() time.Time {
	if t.Clock != nil {
		return t.Clock()
	}
	return time.Now()
}

func (t *Table) epsilon() float64 {
	if t.Epsilon > 0 {
		return t.Epsilon
	}
	return DefaultEpsilon
}

// Set records what the informer shows of key. A placement this process decided and the
// informer does not show yet is kept over an unassigned entry (an event from before the
// label was written); once the informer shows any shard, its word stands.
func (t *Table) Set(key string, e Entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.placed[key]; ok {
		if e.Shard == "" {
			e.Shard = p.shard
		} else {
			delete(t.placed, key)
		}
	}
	if d, ok := t.drains[key]; ok && (e.Draining || e.Shard != d.shard) {
		delete(t.drains, key)
	}
	if old, ok := t.entries[key]; ok && old.Active && !e.Active && e.Shard != "" && old.Shard == e.Shard && t.load[""] > 0 {
		if len(t.doneKeys) == 0 {
			t.doneSince = t.now()
		}
		t.doneKeys[key] = e.Shard
		t.done[e.Shard]++
	}
	t.put(key, e)
	t.settle()
}

// settle forgets the runs finished during a burst once no unassigned key waits, or once they
// have counted for pendingTTL; t.mu is held.
func (t *Table) settle() {
	if len(t.doneKeys) > 0 && (t.load[""] == 0 || t.now().Sub(t.doneSince) > pendingTTL) {
		clear(t.done)
		clear(t.doneKeys)
	}
}

// Delete forgets key (the object is gone).
func (t *Table) Delete(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.placed, key)
	delete(t.drains, key)
	if shard, ok := t.doneKeys[key]; ok {
		delete(t.doneKeys, key)
		t.done[shard]--
	}
	t.remove(key)
	t.settle()
}

// put replaces key's entry, keeping the indexes; t.mu is held.
func (t *Table) put(key string, e Entry) {
	t.remove(key)
	t.entries[key] = e
	keys := t.byShard[e.Shard]
	if keys == nil {
		keys = map[string]struct{}{}
		t.byShard[e.Shard] = keys
	}
	keys[key] = struct{}{}
	if e.Active {
		t.load[e.Shard]++
		t.active++
	}
}

// remove drops key's entry from the indexes; t.mu is held.
func (t *Table) remove(key string) {
	old, ok := t.entries[key]
	if !ok {
		return
	}
	delete(t.entries, key)
	if keys := t.byShard[old.Shard]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(t.byShard, old.Shard)
		}
	}
	if old.Active {
		t.load[old.Shard]--
		t.active--
		if t.load[old.Shard] == 0 {
			delete(t.load, old.Shard)
		}
	}
}

// Get returns key's entry.
func (t *Table) Get(key string) (Entry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[key]
	return e, ok
}

// Load is the number of active keys assigned to shard.
func (t *Table) Load(shard string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.load[shard]
}

// Loads returns the load of every shard of ring.
func (t *Table) Loads(ring *Ring) map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, ring.Len())
	for _, m := range ring.members {
		out[m] = t.load[m]
	}
	return out
}

// capacity is the most active keys one shard of ring should hold when total are active.
func (t *Table) capacity(total, shards int) int {
	if shards == 0 {
		return 0
	}
	return int(math.Ceil((1 + t.epsilon()) * float64(total) / float64(shards)))
}

// Place decides the shard of key on ring and records the decision, so that the next placement
// already counts it. An active key goes to the first shard of its walk whose load (without
// key itself) is under the capacity for the active keys placed on the ring plus key; an
// inactive one (a finished run, which costs nothing) goes to the first shard of its walk.
// Empty when the ring has no shard. Call Release if the decision could not be written.
//
// The capacity counts the keys placed on the ring so far, not the unassigned ones nor those of
// shards that left: when a burst of runs is in the table before the first is placed (the
// sharder's informer lists 600 runs created by kubectl), a capacity for all of them would let
// each shard fill with the runs whose walks start there until the final bound, and the split
// would be the keys' first choices cut at the top only (the benchmark's 209/176/215 became
// 210/182/208). Counting the placed ones keeps every shard within the bound at each placement.
//
// While unassigned keys wait (a burst the sharder is still placing), a shard's load also
// counts the keys it finished meanwhile: placing 600 runs took the benchmark's busy sharder a
// minute, and a shard that finished its runs sooner would otherwise have taken more of the
// burst (218/192/190 executed). Once no key waits, those finishes are forgotten, so that a
// later batch is placed by what the shards hold, not by an earlier batch's history.
func (t *Table) Place(ring *Ring, key string, active bool) string {
	walk := ring.Walk(key)
	if len(walk) == 0 {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	t.settle()
	choice := walk[0]
	if active {
		old, had := t.entries[key]
		total := 0
		for _, s := range walk {
			total += t.load[s] + t.done[s]
		}
		if had && old.Active && ring.Has(old.Shard) {
			total--
		}
		limit := t.capacity(total+1, len(walk))
		for _, s := range walk {
			load := t.load[s] + t.done[s]
			if had && old.Active && old.Shard == s {
				load--
			}
			if load < limit {
				choice = s
				break
			}
		}
	}
	p := pending{shard: choice, at: t.now()}
	e, had := t.entries[key]
	if had {
		prev := e
		p.prev = &prev
	}
	e.Shard, e.Active, e.Draining = choice, active, false
	t.put(key, e)
	t.placed[key] = p
	t.settle()
	return choice
}

// Release undoes the placement of key that could not be written (a failed create or label
// patch): the entry is what it was before, or gone if there was none.
func (t *Table) Release(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.placed[key]
	if !ok {
		return
	}
	delete(t.placed, key)
	if p.prev == nil {
		t.remove(key)
		return
	}
	t.put(key, *p.prev)
}

// Orphans returns the keys whose shard is not on ring (unassigned ones included), except those
// this process placed and the informer does not show yet: the executing ones first (a dead
// replica's steps in flight wait for them), then the other unfinished ones, then the finished
// ones, each group sorted. The sharder assigns them in this order, so that a dead shard's
// hundreds of finished runs never hold up the runs that have work to resume.
func (t *Table) Orphans(ring *Ring) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for shard, keys := range t.byShard {
		if shard != "" && ring.Has(shard) {
			continue
		}
		for k := range keys {
			if _, ok := t.placed[k]; !ok {
				out = append(out, k)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		ea, eb := t.entries[a], t.entries[b]
		if ea.Busy != eb.Busy {
			return -boolOrder(ea.Busy)
		}
		if ea.Active != eb.Active {
			return -boolOrder(ea.Active)
		}
		return cmpString(a, b)
	})
	return out
}

// Rebalance decides which keys leave the shards of ring whose load passes the capacity, and
// records them as draining: for each such shard, as many active keys as it holds beyond the
// capacity, keys that are not executing first, then keys whose walk starts at another shard
// (they came here only because that shard was full), then by key. It returns the keys by the
// shard they leave. A shard joining the ring makes the others pass the lower capacity; this is
// how it gets its share. Call Undrain for a drain that could not be written.
func (t *Table) Rebalance(ring *Ring) map[string][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	limit := t.capacity(t.active, ring.Len())
	out := map[string][]string{}
	for _, s := range ring.members {
		excess := t.load[s] - limit
		var candidates []string
		for k := range t.byShard[s] {
			e := t.entries[k]
			if e.Draining {
				excess--
				continue
			}
			if _, ok := t.drains[k]; ok {
				excess--
				continue
			}
			if e.Active {
				candidates = append(candidates, k)
			}
		}
		if excess <= 0 {
			continue
		}
		slices.SortFunc(candidates, func(a, b string) int {
			ea, eb := t.entries[a], t.entries[b]
			if ea.Busy != eb.Busy {
				return boolOrder(ea.Busy)
			}
			if ha, hb := ring.Owner(a) == s, ring.Owner(b) == s; ha != hb {
				return boolOrder(ha)
			}
			return cmpString(a, b)
		})
		picked := candidates[:min(excess, len(candidates))]
		for _, k := range picked {
			t.drains[k] = pending{shard: s, at: t.now()}
		}
		out[s] = picked
	}
	return out
}

// boolOrder sorts false before true.
func boolOrder(b bool) int {
	if b {
		return 1
	}
	return -1
}

// Undrain forgets the drain of key that could not be written.
func (t *Table) Undrain(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.drains, key)
}

// expire forgets decisions the informer never showed within pendingTTL; t.mu is held.
func (t *Table) expire() {
	cutoff := t.now().Add(-pendingTTL)
	for k, p := range t.placed {
		if p.at.Before(cutoff) {
			delete(t.placed, k)
		}
	}
	for k, p := range t.drains {
		if p.at.Before(cutoff) {
			delete(t.drains, k)
		}
	}
}
