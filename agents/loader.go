package agents

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultConfigTTL is how long a Loader reuses a configuration it read.
const DefaultConfigTTL = 5 * time.Second

// Source fetches the raw configuration; found is false when it does not exist (then every
// agent is external).
type Source func(ctx context.Context) (data []byte, found bool, err error)

// Snapshot is the configuration as read at one time.
type Snapshot struct {
	// Config holds the agents; empty when the configuration is absent or invalid.
	Config Config
	// Found is false when the configuration does not exist.
	Found bool
	// Invalid says why the configuration does not parse; nil when it does.
	Invalid error
}

// Loader reads the configuration from its Source on demand and keeps it for a short TTL, so
// that every turn sees changes within seconds, without a restart, while a burst of turns
// costs one read.
type Loader struct {
	source Source
	ttl    time.Duration
	clock  func() time.Time

	mu   sync.Mutex
	snap Snapshot
	at   time.Time
	ok   bool
}

// NewLoader returns a Loader over source keeping what it read for ttl (DefaultConfigTTL when
// zero or less).
func NewLoader(source Source, ttl time.Duration) *Loader {
	return &Loader{source: source, ttl: orDefault(ttl, DefaultConfigTTL), clock: time.Now}
}

// Load returns the configuration, reading it again when the cached copy is older than the
// TTL. An error means the source could not be read (nothing is cached then); an invalid
// configuration is not an error but a Snapshot with Invalid set.
func (l *Loader) Load(ctx context.Context) (Snapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock()
	if l.ok && now.Sub(l.at) < l.ttl {
		return l.snap, nil
	}
	data, found, err := l.source(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read the agents' configuration: %w", err)
	}
	snap := Snapshot{Found: found}
	if found {
		snap.Config, snap.Invalid = Parse(data)
	}
	l.snap, l.at, l.ok = snap, now, true
	return snap, nil
}

// Invalidate drops the cached configuration, so that the next Load reads it again; a watch on
// the configuration calls it on every change.
func (l *Loader) Invalidate() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ok = false
}
