package controllers

import (
	"testing"
	"time"
)

func TestANamespaceAloneTakesEverySlotAndSharesThemOnceAnotherWantsOne(t *testing.T) {
	b := newExecutionBudget(4)
	now := time.Unix(0, 0)
	b.now = func() time.Time { return now }
	var releases []func()
	for i := range 4 {
		release, ok := b.tryAcquire("busy")
		if !ok {
			t.Fatalf("slot %d: a namespace alone gets every slot", i)
		}
		releases = append(releases, release)
	}
	if _, ok := b.tryAcquire("quiet"); ok {
		t.Fatal("a fifth slot was handed out")
	}
	// busy's executions end one by one; it may not take their slots back while quiet waits.
	releases[0]()
	if _, ok := b.tryAcquire("busy"); ok {
		t.Fatal("busy took a slot back over its share while quiet waits")
	}
	got, ok := b.tryAcquire("quiet")
	if !ok {
		t.Fatal("quiet did not get the free slot")
	}
	releases[1]()
	if _, ok := b.tryAcquire("busy"); ok {
		t.Fatal("busy holds 2 of 4 slots, its share beside quiet; it gets no third while quiet wanted one lately")
	}
	// Once quiet has not wanted a slot for a while, busy may use them all again.
	now = now.Add(3 * time.Second)
	if _, ok := b.tryAcquire("busy"); !ok {
		t.Fatal("busy was refused a free slot though nobody else wants one")
	}
	got()
}
