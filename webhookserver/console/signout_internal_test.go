package console

import (
	"fmt"
	"testing"
	"time"
)

func TestTheSignOutListDropsExpiredEntriesAndKeepsAtMostMaxRevocations(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	entries := map[string]int64{"expired": now.Add(-time.Second).Unix(), "live": now.Add(time.Hour).Unix()}
	got, dropped := withRevocation(entries, "new", now.Add(-time.Hour).Unix(), now)
	if len(got) != 2 || got["live"] == 0 || got["new"] == 0 || dropped != 0 {
		t.Errorf("withRevocation = %v, %d dropped; want live and new, the expired entry pruned, none dropped", got, dropped)
	}

	full := map[string]int64{}
	for i := range MaxRevocations {
		full[fmt.Sprintf("s%d", i)] = now.Add(time.Duration(i+1) * time.Second).Unix()
	}
	got, dropped = withRevocation(full, "signed-out-now", now.Add(time.Second/2).Unix(), now)
	if len(got) != MaxRevocations || dropped != 1 {
		t.Fatalf("%d entries, %d dropped; want %d and 1", len(got), dropped, MaxRevocations)
	}
	if _, ok := got["signed-out-now"]; !ok {
		t.Error("the session signed out now gave way, though it expires first")
	}
	if _, ok := got["s0"]; ok {
		t.Error("the entry that expires first of the others was kept")
	}
}

func TestTheSignOutListSkipsEntriesThatAreNotAHashAndATime(t *testing.T) {
	id := sessionHash(session{CSRF: "token"})
	got := parseRevocations(map[string]string{id: "1800000000", "short": "1800000000", sessionHash(session{CSRF: "other"}): "soon"})
	if len(got) != 1 || got[id] != 1800000000 {
		t.Errorf("parseRevocations = %v, want only %s", got, id)
	}
}
