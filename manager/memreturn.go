package manager

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/go-logr/logr"
)

// Returning a burst's garbage. A manager that starts over thousands of runs decodes each one
// (its input, its journal) while the informers list and the first reconciles read them; the
// runs it keeps are small (the cache is lean), but the Go heap's goal was set during that
// burst, and a manager that then goes quiet (runs asleep for hours) runs no collection that
// would lower it: the runtime keeps the burst's freed pages for minutes. memoryReturner
// watches the allocation rate and, when a burst of allocations is followed by quiet, collects
// and hands the freed memory back to the kernel once, so the manager's RSS is what its runs
// need rather than what reading them once cost. A busy manager is left alone: its own
// collections keep the heap at its goal.

// Tuning of memoryReturner.
const (
	// returnSample is how often the allocation counter is read.
	returnSample = 500 * time.Millisecond
	// returnBurst is how much must have been allocated since the last return for another to
	// be worth a full collection.
	returnBurst = 32 << 20
	// returnQuiet is the most a sample may allocate and still count as quiet.
	returnQuiet = 512 << 10
	// returnQuietSamples is how many quiet samples in a row make the manager quiet.
	returnQuietSamples = 4
)

// memoryReturner is a manager Runnable (on every replica, leader or not) that returns a
// burst's garbage to the kernel once the manager goes quiet after it.
type memoryReturner struct {
	log logr.Logger
	// allocated reads the bytes allocated on the heap since the process started.
	allocated func() uint64
	// free collects and returns freed memory to the kernel (debug.FreeOSMemory).
	free func()
}

// newMemoryReturner returns a memoryReturner that reads the Go runtime's own counters.
func newMemoryReturner(log logr.Logger) *memoryReturner {
	return &memoryReturner{log: log, allocated: heapAllocated, free: debug.FreeOSMemory}
}

// NeedLeaderElection is false: every replica has its own heap.
func (m *memoryReturner) NeedLeaderElection() bool { return false }

// Start samples the allocation counter until ctx ends. The manager starts it once its caches
// have synced, so its first sample holds the informers' initial lists: the start-up's burst.
func (m *memoryReturner) Start(ctx context.Context) error {
	ticker := time.NewTicker(returnSample)
	defer ticker.Stop()
	var w returnWatch // from zero: what start-up allocated before this runs is a burst too
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if !w.observe(m.allocated()) {
			continue
		}
		before := heapReleased()
		m.free()
		m.log.Info("returned freed memory to the kernel after a burst", "burstBytes", w.lastBurst, "releasedBytes", heapReleased()-before)
	}
}

// returnWatch decides, sample by sample, when to return memory: once busy samples (each over
// returnQuiet) allocated returnBurst bytes since the last return, at the first
// returnQuietSamples quiet samples in a row. A steady trickle of quiet samples never adds up
// to a burst: the collections it triggers itself keep its heap in check.
type returnWatch struct {
	last      uint64 // the counter at the previous sample (0 before the first)
	since     uint64 // allocated by busy samples since the last return
	quiet     int    // quiet samples in a row
	lastBurst uint64 // what the last return followed
}

// observe takes the counter's value at a sample and reports whether to return memory now.
func (w *returnWatch) observe(allocated uint64) bool {
	delta := allocated - w.last
	w.last = allocated
	if delta > returnQuiet {
		w.since, w.quiet = w.since+delta, 0
		return false
	}
	w.quiet++
	if w.quiet < returnQuietSamples || w.since < returnBurst {
		return false
	}
	w.lastBurst, w.since, w.quiet = w.since, 0, 0
	return true
}

// heapAllocated is the runtime's count of bytes allocated on the heap since the start.
func heapAllocated() uint64 { return readMetric("/gc/heap/allocs:bytes") }

// heapReleased is the heap memory the runtime has returned to the kernel and not reused.
func heapReleased() uint64 { return readMetric("/memory/classes/heap/released:bytes") }

// readMetric reads one uint64 metric of runtime/metrics (0 if the runtime lacks it).
func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
