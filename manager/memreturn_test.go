package manager

import "testing"

// TestMemoryIsReturnedOnceABurstIsFollowedByQuiet walks returnWatch through a manager's life:
// a start-up burst, quiet (return once), more quiet (nothing), a trickle of quiet samples that
// never makes a burst (nothing), a second burst (return again only after quiet).
func TestMemoryIsReturnedOnceABurstIsFollowedByQuiet(t *testing.T) {
	var w returnWatch
	var counter uint64
	returned := 0
	sample := func(allocated uint64) bool {
		counter += allocated
		if w.observe(counter) {
			returned++
			return true
		}
		return false
	}
	for range 10 { // start-up: 10 samples of 8 MiB
		if sample(8 << 20) {
			t.Fatal("returned during the burst")
		}
	}
	for i := range returnQuietSamples - 1 {
		if sample(1 << 10) {
			t.Fatalf("returned after %d quiet samples, want %d", i+1, returnQuietSamples)
		}
	}
	if !sample(1 << 10) {
		t.Fatalf("no return after a burst of 80 MiB and %d quiet samples", returnQuietSamples)
	}
	if w.lastBurst < 80<<20 {
		t.Errorf("the return followed %d bytes, want at least 80 MiB", w.lastBurst)
	}
	for range 1000 { // a long trickle, each sample under returnQuiet: quiet, never a burst
		sample(400 << 10)
	}
	if returned != 1 {
		t.Errorf("%d returns in all after a trickle of about 390 MiB in quiet samples, want the start-up's 1", returned)
	}
	returned = 0
	w = returnWatch{last: counter}
	for range 100 {
		sample(1 << 10)
	}
	if returned != 0 {
		t.Errorf("%d returns with no burst, want 0", returned)
	}
	sample(64 << 20)
	for range returnQuietSamples {
		sample(0)
	}
	if returned != 1 {
		t.Errorf("%d returns after a 64 MiB burst and quiet, want 1", returned)
	}
}

// TestWhatStartUpAllocatedBeforeTheWatchIsABurst: the returner starts after the caches synced,
// so the informers' initial lists are already counted at its first sample; they are a burst.
func TestWhatStartUpAllocatedBeforeTheWatchIsABurst(t *testing.T) {
	var w returnWatch
	counter := uint64(100 << 20)
	if w.observe(counter) {
		t.Fatal("returned at the first sample, before any quiet")
	}
	for i := range returnQuietSamples {
		if w.observe(counter) != (i == returnQuietSamples-1) {
			t.Fatalf("quiet sample %d: return %v, want a return at sample %d only", i+1, !(i == returnQuietSamples-1), returnQuietSamples)
		}
	}
}
