package sharding

import (
	"container/heap"
	"math"
	"slices"
	"sync"
	"time"
)

// DefaultEpsilon is how far above the average share a shard may go before new runs pass it by:
// with 600 runs over 3 shards, at most 204 each, and so at least 600 − 2 × 204 = 192. The bound
// caps the fullest shard only; the emptiest one is held by what the others may not take, so
// with n shards it may fall (n−1) × Epsilon under the average. 0.02 keeps a burst over three
// shards within ±5 % of even on both sides; the price, fewer runs on the first shard of their
// own walk, is none here, since a run keeps its label once placed and is moved only when its
// shard leaves or one joins.
const DefaultEpsilon = 0.02

// DefaultRecent is how long a finished run keeps counting toward its shard when runs are
// placed: long enough to cover a burst of creations (600 runs are placed within seconds, and
// the first of them finish meanwhile), short enough that a shard that joins catches up on new
// runs within a minute.
const DefaultRecent = time.Minute

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
	// FinishedAt is when the object finished (a run's status.finishedAt); zero while it is
	// active or when unknown. A run that finished less than Table.Recent ago still counts
	// toward its shard's share (see Table.Place).
	FinishedAt time.Time
}

// Table is a replica's view of the assignments: every object's shard and whether it is active,
// kept up to date from an informer (Set, Delete), plus the decisions this process took and the
// informer has not shown yet. Two counts follow from it for each shard: its load (its active
// objects, which rebalancing evens out and the metrics show) and its share (its active objects
// plus those that finished less than Recent ago, which placement evens out, so that the runs of
// a burst are executed evenly even when one shard finishes its runs sooner than the others).
// It is safe for concurrent use.
type Table struct {
	// Epsilon bounds shares and loads to (1+Epsilon) times the average; zero means
	// DefaultEpsilon.
	Epsilon float64
	// Recent is how long a finished object keeps counting toward its shard's share; zero means
	// DefaultRecent.
	Recent time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time

	mu      sync.Mutex
	entries map[string]Entry
	// byShard holds the keys assigned to each shard ("" for unassigned ones).
	byShard map[string]map[string]struct{}
	// load counts the active keys of each shard; active counts them all.
	load   map[string]int
	active int
	// share counts the active and the recently finished keys of each shard; shared counts them
	// all. recent marks the recently finished keys counted in share, and fading holds when each
	// stops counting (see fade).
	share  map[string]int
	shared int
	recent map[string]time.Time
	fading fadeHeap
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
		share: map[string]int{}, recent: map[string]time.Time{}, placed: map[string]pending{}, drains: map[string]pending{}}
}

func (t *Table) now() time.Time {
	if t.Clock != nil {
		return t.Clock()
	}
	return time.Now()
}

func (t *Table) recentFor() time.Duration {
	if t.Recent > 0 {
		return t.Recent
	}
	return DefaultRecent
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
	t.put(key, e)
}

// Delete forgets key (the object is gone).
func (t *Table) Delete(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.placed, key)
	delete(t.drains, key)
	t.remove(key)
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
	until := e.FinishedAt.Add(t.recentFor())
	switch {
	case e.Active:
	case e.FinishedAt.IsZero() || !until.After(t.now()):
		return
	default:
		t.recent[key] = until
		heap.Push(&t.fading, fade{key: key, until: until})
	}
	t.share[e.Shard]++
	t.shared++
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
	_, recent := t.recent[key]
	if old.Active || recent {
		t.unshare(key, old.Shard)
	}
}

// unshare stops counting key toward shard's share; t.mu is held.
func (t *Table) unshare(key, shard string) {
	delete(t.recent, key)
	t.share[shard]--
	t.shared--
	if t.share[shard] == 0 {
		delete(t.share, shard)
	}
}

// fadeOut stops counting the finished keys whose Recent has passed; t.mu is held. A key put
// again since it was pushed has a later (or no) time in recent, and stays.
func (t *Table) fadeOut() {
	now := t.now()
	for t.fading.Len() > 0 && !t.fading[0].until.After(now) {
		f := heap.Pop(&t.fading).(fade)
		if until, ok := t.recent[f.key]; ok && until.Equal(f.until) {
			t.unshare(f.key, t.entries[f.key].Shard)
		}
	}
}

// fade is when a finished key stops counting toward its shard's share.
type fade struct {
	key   string
	until time.Time
}

// fadeHeap orders fades by time, the soonest first (container/heap).
type fadeHeap []fade

func (h fadeHeap) Len() int           { return len(h) }
func (h fadeHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h fadeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push adds x, a fade.
func (h *fadeHeap) Push(x any) { *h = append(*h, x.(fade)) }

// Pop removes the last fade.
func (h *fadeHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	*h = old[:len(old)-1]
	return f
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

// Share is the number of keys assigned to shard that are active or finished less than Recent
// ago: what placement evens out.
func (t *Table) Share(shard string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fadeOut()
	return t.share[shard]
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
// already counts it. An active key goes to the first shard of its walk whose share (without
// key itself) is under the capacity for all shared keys plus key; an inactive one (a finished
// run, which costs nothing) goes to the first shard of its walk. Empty when the ring has no
// shard. Call Release if the decision could not be written.
//
// The share, not the load, is bounded: a shard that finishes its runs sooner than the others
// (it does not run the sharder, its steps wait less) would otherwise see its load drop during
// a burst and receive more of it, so that the runs executed by each shard would spread wider
// than the placements. Counting the runs it finished within Recent keeps the executions within
// the bound too.
func (t *Table) Place(ring *Ring, key string, active bool) string {
	walk := ring.Walk(key)
	if len(walk) == 0 {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	t.fadeOut()
	choice := walk[0]
	if active {
		old, had := t.entries[key]
		_, recent := t.recent[key]
		counted := had && (old.Active || recent)
		total := t.shared
		if counted {
			total--
		}
		limit := t.capacity(total+1, len(walk))
		for _, s := range walk {
			share := t.share[s]
			if counted && old.Shard == s {
				share--
			}
			if share < limit {
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
