// Package limits holds the manager's general budgets: a budget of work in flight and token
// buckets per key. The HTTP server (package webhookserver) bounds with them what it takes on,
// so that no sender can exhaust the process that holds the operator's credentials (requests in
// flight, each holding a body of up to 1 MiB; deliveries per webhook slug; calls per REST API
// key), and answers a refusal with a Retry-After (RetryAfterSeconds) so that well-behaved
// clients back off. The controllers bound with them how often tenants' definitions compile.
// The package is pure Go, knows nothing of HTTP serving, and knows nothing of routes or keys
// beyond their names.
package limits

import (
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// InFlight is a budget of concurrent requests.
type InFlight struct {
	slots chan struct{}
}

// NewInFlight returns a budget of n requests; n <= 0 means unlimited.
func NewInFlight(n int) *InFlight {
	if n <= 0 {
		return &InFlight{}
	}
	return &InFlight{slots: make(chan struct{}, n)}
}

// TryAcquire takes a slot without waiting; release gives it back. ok is false when the budget
// is spent: answer 503 with a Retry-After.
func (f *InFlight) TryAcquire() (release func(), ok bool) {
	if f.slots == nil {
		return func() {}, true
	}
	select {
	case f.slots <- struct{}{}:
		return func() { <-f.slots }, true
	default:
		return nil, false
	}
}

// Rate is a steady rate per second and a burst.
type Rate struct {
	// PerSecond is the sustained rate; zero or less means unlimited.
	PerSecond float64
	// Burst is how many may come at once; at least 1.
	Burst int
}

// Buckets are token buckets, one per key, created on first use. Keys that go quiet are
// forgotten once there are more than maxKeys, so a caller cycling through keys cannot grow
// memory without bound (it only resets those keys' buckets).
type Buckets struct {
	rate    Rate
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*bucket
}

// bucket is one key's limiter and when it was last used.
type bucket struct {
	limiter *rate.Limiter
	used    time.Time
}

// NewBuckets returns buckets of r for up to maxKeys keys at a time (default 10,000).
func NewBuckets(r Rate, maxKeys int) *Buckets {
	if maxKeys <= 0 {
		maxKeys = 10_000
	}
	return &Buckets{rate: r, maxKeys: maxKeys, buckets: map[string]*bucket{}}
}

// Allow takes a token of key's bucket at now. When none is left it returns false and how long
// until one is: the Retry-After to answer with.
func (b *Buckets) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	if b == nil || b.rate.PerSecond <= 0 {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.bucket(key)
	bk.used = now
	r := bk.limiter.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// Ready reports whether key's bucket has a token at now, without taking it, and otherwise how
// long until it has: for a budget charged only by what fails (see Allow), checked before the
// work that may fail.
func (b *Buckets) Ready(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	if b == nil || b.rate.PerSecond <= 0 {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if tokens := b.bucket(key).limiter.TokensAt(now); tokens < 1 {
		return false, time.Duration((1 - tokens) / b.rate.PerSecond * float64(time.Second))
	}
	return true, 0
}

// bucket returns key's bucket, made full on first use; b.mu is held.
func (b *Buckets) bucket(key string) *bucket {
	bk, found := b.buckets[key]
	if !found {
		b.evict()
		bk = &bucket{limiter: rate.NewLimiter(rate.Limit(b.rate.PerSecond), max(b.rate.Burst, 1))}
		b.buckets[key] = bk
	}
	return bk
}

// evict forgets the least recently used bucket when the map is full.
func (b *Buckets) evict() {
	if len(b.buckets) < b.maxKeys {
		return
	}
	var oldest string
	var at time.Time
	for k, bk := range b.buckets {
		if oldest == "" || bk.used.Before(at) {
			oldest, at = k, bk.used
		}
	}
	delete(b.buckets, oldest)
}

// RetryAfterSeconds renders a wait as a Retry-After header value: whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(max(1, math.Ceil(d.Seconds()))))
}
