package sharding

import (
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// TokensPerShard is how many virtual nodes each shard has on the ring: enough that each
// shard's first-choice share of keys is within a few percent of even, few enough that a ring
// is rebuilt in microseconds whenever a lease changes.
const TokensPerShard = 128

// Ring is a consistent hash ring over a fixed set of shards. A key hashes to a point on the
// ring; walking the ring clockwise from there meets every shard once, in an order that depends
// on the key alone: its walk. A ring is immutable and safe for concurrent use; build a new one
// when the shards change.
type Ring struct {
	members []string
	tokens  []token
}

// token is one virtual node: a point on the ring and the shard it belongs to.
type token struct {
	point uint64
	shard string
}

// NewRing returns the ring of the given shards (duplicates and empty names are ignored).
func NewRing(shards ...string) *Ring {
	members := slices.Clone(shards)
	members = slices.DeleteFunc(members, func(s string) bool { return s == "" })
	slices.Sort(members)
	members = slices.Compact(members)
	r := &Ring{members: members, tokens: make([]token, 0, len(members)*TokensPerShard)}
	for _, m := range members {
		for i := range TokensPerShard {
			r.tokens = append(r.tokens, token{point: xxhash.Sum64String(m + "#" + strconv.Itoa(i)), shard: m})
		}
	}
	slices.SortFunc(r.tokens, func(a, b token) int {
		switch {
		case a.point < b.point:
			return -1
		case a.point > b.point:
			return 1
		}
		return cmpString(a.shard, b.shard)
	})
	return r
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Members returns the shards of the ring, sorted by name.
func (r *Ring) Members() []string { return slices.Clone(r.members) }

// Len is the number of shards.
func (r *Ring) Len() int { return len(r.members) }

// Has reports whether shard is on the ring.
func (r *Ring) Has(shard string) bool {
	_, ok := slices.BinarySearch(r.members, shard)
	return ok
}

// Owner is the first shard of key's walk: where plain consistent hashing puts key. Empty when
// the ring has no shard.
func (r *Ring) Owner(key string) string {
	if len(r.tokens) == 0 {
		return ""
	}
	return r.tokens[r.start(key)].shard
}

// Walk returns every shard once, in the order met walking clockwise from key's point.
func (r *Ring) Walk(key string) []string {
	if len(r.tokens) == 0 {
		return nil
	}
	out := make([]string, 0, len(r.members))
	seen := make(map[string]bool, len(r.members))
	for i, start := 0, r.start(key); i < len(r.tokens) && len(out) < len(r.members); i++ {
		s := r.tokens[(start+i)%len(r.tokens)].shard
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// start is the index of the first token at or after key's point, wrapping around.
func (r *Ring) start(key string) int {
	h := xxhash.Sum64String(key)
	i, _ := slices.BinarySearchFunc(r.tokens, h, func(t token, p uint64) int {
		switch {
		case t.point < p:
			return -1
		case t.point > p:
			return 1
		}
		return 0
	})
	if i == len(r.tokens) {
		i = 0
	}
	return i
}
