package routes

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// acceptAll is a verifier for routes that must be Ready.
type acceptAll struct{}

func (acceptAll) Verify(http.Header, []byte, [][]byte, time.Time) error { return nil }

func endpoint(ns, name, slug string) Route {
	return Route{Key: Key{Origin: OriginEndpoint, Namespace: ns, Name: name}, Slug: slug, WorkflowName: "wf", Verifier: acceptAll{}, Ready: true}
}

func TestSetLookupDelete(t *testing.T) {
	tab := NewTable()
	if _, ok := tab.Lookup("a"); ok {
		t.Fatal("empty table serves a slug")
	}
	must(t, tab.Set(endpoint("ns", "one", "a")))
	r, ok := tab.Lookup("a")
	if !ok || r.Key.Name != "one" {
		t.Fatalf("Lookup(a) = %v, %v; want the route of ns/one", r.Key, ok)
	}
	if len(r.AllowedMethods) != 1 || r.AllowedMethods[0] != http.MethodPost || r.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Fatalf("defaults not applied: %v %d", r.AllowedMethods, r.MaxBodyBytes)
	}

	// Moving the endpoint to another slug frees the old one.
	must(t, tab.Set(endpoint("ns", "one", "b")))
	if _, ok := tab.Lookup("a"); ok {
		t.Fatal("old slug still served after the endpoint moved")
	}
	if !tab.Serves(Key{Namespace: "ns", Name: "one"}, "b") {
		t.Fatal("new slug not served")
	}

	// Another endpoint takes the slug over; deleting the first must not remove it.
	must(t, tab.Set(endpoint("ns", "two", "b")))
	tab.Delete(Key{Namespace: "ns", Name: "one"})
	if r, ok := tab.Lookup("b"); !ok || r.Key.Name != "two" {
		t.Fatalf("Delete of a key that lost its slug removed the new owner: %v %v", r.Key, ok)
	}
	tab.Delete(Key{Namespace: "ns", Name: "two"})
	if _, ok := tab.Lookup("b"); ok {
		t.Fatal("slug still served after its owner was deleted")
	}
}

func TestTheManagersRoutesCannotBeShadowed(t *testing.T) {
	tab := NewTable()
	definition := Route{Key: DefinitionKey("team-a", "triage", "hook"), Slug: "hook", WorkflowName: "tenant", Verifier: acceptAll{}, Ready: true}
	must(t, tab.Set(definition))
	if r, _ := tab.Lookup("hook"); r.WorkflowName != "tenant" {
		t.Fatalf("definition route not served: %+v", r)
	}
	ep := endpoint("ns", "ep", "hook")
	ep.WorkflowName = "resource"
	must(t, tab.Set(ep))
	if r, _ := tab.Lookup("hook"); r.WorkflowName != "resource" {
		t.Fatalf("an endpoint does not win over a definition: %+v", r)
	}
	code := Route{Key: CodeKey("default", "hook"), Slug: "hook", WorkflowName: "coded", Verifier: acceptAll{}, Ready: true}
	must(t, tab.Set(code))
	if r, _ := tab.Lookup("hook"); r.WorkflowName != "coded" {
		t.Fatalf("an endpoint shadows the manager's own route: %+v", r)
	}
	// Re-setting the endpoint (its Secret changed) must not take the slug back.
	must(t, tab.Set(ep))
	if r, _ := tab.Lookup("hook"); r.WorkflowName != "coded" {
		t.Fatalf("an endpoint took the slug from the manager's route: %+v", r)
	}
	tab.Forget(code.Key)
	if r, _ := tab.Lookup("hook"); r.WorkflowName != "resource" {
		t.Fatalf("the endpoint is not served once the manager's route is gone: %+v", r)
	}
	if _, ok := tab.Get(OriginDefinition, "hook"); !ok {
		t.Fatal("Get lost the definition's route")
	}
}

func TestSetRefusesIncompleteRoutes(t *testing.T) {
	tab := NewTable()
	if err := tab.Set(Route{Key: Key{Name: "x"}}); err == nil {
		t.Fatal("route without slug accepted")
	}
	if err := tab.Set(Route{Key: Key{Name: "x"}, Slug: "s", Ready: true}); err == nil {
		t.Fatal("Ready route without verifier accepted")
	}
	if err := tab.Set(Route{Key: Key{Name: "x"}, Slug: "s", Reason: workflowsv1alpha1.ReasonSecretNotFound}); err != nil {
		t.Fatalf("not-Ready route refused: %v", err)
	}
}

func TestCountersFlushWithoutLoss(t *testing.T) {
	tab := NewTable()
	must(t, tab.Set(endpoint("ns", "ep", "s")))
	r, _ := tab.Lookup("s")
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); r.Counters().AddAccepted(); r.Counters().AddRejected() }()
	}
	wg.Wait()
	if keys := tab.PendingKeys(); len(keys) != 1 || keys[0] != r.Key {
		t.Fatalf("PendingKeys = %v, want [%v]", keys, r.Key)
	}
	snap := r.Counters().Pending()
	r.Counters().AddDuplicate() // counted while the snapshot is being written
	r.Counters().Done(snap)
	if got := r.Counters().Pending(); got != (Counts{Duplicates: 1}) {
		t.Fatalf("after Done, pending = %+v; want only the duplicate counted meanwhile", got)
	}
	// Counters survive a re-Set (a reconcile) of the same key.
	must(t, tab.Set(endpoint("ns", "ep", "s")))
	if r2, _ := tab.Lookup("s"); r2.Counters() != r.Counters() {
		t.Fatal("re-Set replaced the counters")
	}
	tab.Forget(r.Key)
	if keys := tab.PendingKeys(); len(keys) != 0 {
		t.Fatalf("Forget kept counters: %v", keys)
	}
}

// TestConcurrentUse checks that the table serves lookups and counts deliveries while its
// routes are set and deleted on other goroutines (run it with -race): a lookup finds the whole
// route or none, no count is lost across re-Sets and Deletes, and the last Delete leaves the
// slug unserved.
func TestConcurrentUse(t *testing.T) {
	tab := NewTable()
	want := endpoint("ns", "ep", "s")
	var wg sync.WaitGroup
	var counted atomic.Int64
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 200 {
				_ = tab.Set(want)
				tab.Delete(want.Key)
			}
		}()
		go func() {
			defer wg.Done()
			for range 200 {
				if r, ok := tab.Lookup("s"); ok {
					if r.Key != want.Key || r.Slug != want.Slug || !r.Ready || r.Counters() == nil {
						t.Errorf("Lookup found a route that is not the one set: %+v", r)
						return
					}
					r.Counters().AddAccepted()
					counted.Add(1)
				}
				_ = tab.PendingKeys()
			}
		}()
	}
	wg.Wait()
	if r, ok := tab.Lookup("s"); ok {
		t.Errorf("every Set was followed by a Delete, yet Lookup still finds %v", r.Key)
	}
	if got := tab.Counters(want.Key).Pending(); got != (Counts{Accepted: counted.Load()}) {
		t.Errorf("pending counts %+v; want the %d accepted deliveries counted meanwhile", got, counted.Load())
	}
	if keys := tab.PendingKeys(); counted.Load() > 0 && !slices.Equal(keys, []Key{want.Key}) {
		t.Errorf("PendingKeys() = %v; want [%v], whose counts wait for a flush", keys, want.Key)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
