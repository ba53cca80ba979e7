package limits

import (
	"fmt"
	"testing"
	"time"
)

func TestInFlightRefusesPastItsBudgetAndFreesSlots(t *testing.T) {
	f := NewInFlight(2)
	r1, ok1 := f.TryAcquire()
	_, ok2 := f.TryAcquire()
	if !ok1 || !ok2 {
		t.Fatal("a budget of 2 refused one of the first two")
	}
	if _, ok := f.TryAcquire(); ok {
		t.Fatal("a budget of 2 took a third")
	}
	r1()
	if _, ok := f.TryAcquire(); !ok {
		t.Fatal("a released slot was not given again")
	}
	if _, ok := NewInFlight(0).TryAcquire(); !ok {
		t.Fatal("an unlimited budget refused")
	}
}

func TestBucketsLimitEachKeyOnItsOwn(t *testing.T) {
	b := NewBuckets(Rate{PerSecond: 2, Burst: 3}, 0)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := b.Allow("slug-a", now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := b.Allow("slug-a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("past the burst: ok=%v wait=%v, want refused for 500ms", ok, wait)
	}
	if ok, _ := b.Allow("slug-b", now); !ok {
		t.Fatal("another key shares the first key's bucket")
	}
	if ok, _ := b.Allow("slug-a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("a refused request used up the token it waited for")
	}
	if got := RetryAfterSeconds(wait); got != "1" {
		t.Errorf("Retry-After for %v = %q, want 1", wait, got)
	}
}

func TestBucketsForgetQuietKeys(t *testing.T) {
	b := NewBuckets(Rate{PerSecond: 1, Burst: 1}, 10)
	now := time.Unix(1000, 0)
	for i := range 1000 {
		b.Allow(fmt.Sprintf("key-%d", i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(b.buckets); n > 10 {
		t.Errorf("%d buckets kept, want at most 10", n)
	}
	if ok, _ := (*Buckets)(nil).Allow("x", now); !ok {
		t.Error("nil buckets refused")
	}
}
