package testenv

import (
	"bytes"
	"sync"
)

// LogBuffer keeps what a suite's logger (or a manager process the test started) wrote, so
// that a spec can read it back: check that nothing secret was logged, or find a message.
// Goroutines may write to it while others read it.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
