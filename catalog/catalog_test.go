package catalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// memStore is a RevisionStore in memory, counting saves.
type memStore struct {
	mu      sync.Mutex
	bundles map[string]workflowfile.Bundle // namespace/revision
	saves   int
}

func (s *memStore) Save(_ context.Context, namespace, _, rev string, b workflowfile.Bundle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	s.bundles[namespace+"/"+rev] = b
	return nil
}

func (s *memStore) Load(_ context.Context, namespace, rev string) (workflowfile.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bundles[namespace+"/"+rev]
	if !ok {
		return workflowfile.Bundle{}, fmt.Errorf("%s/%s: %w", namespace, rev, catalog.ErrRevisionNotFound)
	}
	return b, nil
}

func goWorkflow(name string) durable.Workflow {
	return durable.Define(name, func(*durable.Context, struct{}) (string, error) { return "go", nil },
		durable.WithWebhook(durable.WebhookSpec{Slug: "shared", Provider: "none"}))
}

// fileWorkflow compiles a file workflow that returns text and declares webhook slug (if any).
func fileWorkflow(t *testing.T, name, text, slug string, origin workflowfile.Origin) *workflowfile.Workflow {
	t.Helper()
	src := fmt.Sprintf("WORKFLOW_NAME = %q\ndef handler(inp, ctx):\n    return %q\n", name, text)
	if slug != "" {
		src += fmt.Sprintf("WEBHOOKS = [WebhookSpec(slug = %q, auth = \"none\")]\n", slug)
	}
	w, err := workflowfile.CompileBundle(workflowfile.Bundle{Origin: origin, Entry: name + ".star", Files: map[string]string{name + ".star": src}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func newCatalog(t *testing.T, store catalog.RevisionStore) *catalog.Catalog {
	t.Helper()
	reg := engine.NewRegistry()
	if err := reg.Register(goWorkflow("hello"), goWorkflow("report")); err != nil {
		t.Fatal(err)
	}
	return catalog.New(reg, catalog.Options{Store: store, OperatorNamespace: "centaur-system"})
}

func fileEntry(w *workflowfile.Workflow) catalog.Entry {
	return catalog.Entry{Workflow: w, Revision: w.Revision(), File: w.File()}
}

func defEntry(w *workflowfile.Workflow, namespace, name string, created time.Time) catalog.Entry {
	return catalog.Entry{Workflow: w, Revision: w.Revision(), Namespace: namespace, Definition: name, Created: created}
}

func TestFilesOverrideGoAndDefinitionsShadowNothing(t *testing.T) {
	c := newCatalog(t, nil)
	c.SetFiles([]catalog.Entry{fileEntry(fileWorkflow(t, "report", "file", "", workflowfile.OriginDir))})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.SetDefinition(defEntry(fileWorkflow(t, "hello", "tenant", "", workflowfile.OriginDefinition), "team-a", "shadow", t0))
	c.SetDefinition(defEntry(fileWorkflow(t, "triage", "old", "", workflowfile.OriginDefinition), "team-a", "first", t0))
	c.SetDefinition(defEntry(fileWorkflow(t, "triage", "new", "", workflowfile.OriginDefinition), "team-a", "second", t0.Add(time.Hour)))

	if e, _ := c.Lookup("team-a", "report"); e.Source != catalog.SourceFile {
		t.Errorf("report resolves to %s, want the file", e.Source)
	}
	if e, _ := c.Lookup("team-a", "hello"); e.Source != catalog.SourceGo {
		t.Errorf("a definition shadows the Go workflow hello: %s", e.Source)
	}
	if e, _ := c.Lookup("team-a", "triage"); e.Definition != "first" {
		t.Errorf("triage resolves to definition %q, want the older one", e.Definition)
	}
	if _, ok := c.Lookup("team-b", "triage"); ok {
		t.Error("team-b sees team-a's definition")
	}
	if got := c.Names("team-a"); !reflect.DeepEqual(got, []string{"hello", "report", "triage"}) {
		t.Errorf("Names(team-a) = %v", got)
	}
	for def, want := range map[string]string{"shadow": "compiled into the manager", "second": "older WorkflowDefinition team-a/first", "first": ""} {
		if got := c.DefinitionConflict("team-a", def); (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("DefinitionConflict(%s) = %q, want %q", def, got, want)
		}
	}
	c.RemoveDefinition("team-a", "first")
	if e, _ := c.Lookup("team-a", "triage"); e.Definition != "second" {
		t.Errorf("after the older definition went, triage resolves to %q", e.Definition)
	}
	if got := c.Overridden(); len(got) != 1 || got[0].Name() != "report" {
		t.Errorf("Overridden() = %v", got)
	}
}

func TestARunReplaysTheRevisionItStartedWith(t *testing.T) {
	store := &memStore{bundles: map[string]workflowfile.Bundle{}}
	c := newCatalog(t, store)
	v1 := fileWorkflow(t, "greet", "v1", "", workflowfile.OriginDir)
	c.SetFiles([]catalog.Entry{fileEntry(v1)})
	e, _ := c.Lookup("team-a", "greet")
	for range 3 {
		if err := c.Pin(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if store.saves != 1 {
		t.Errorf("pinning one revision three times saved it %d times", store.saves)
	}
	if _, ok := store.bundles["centaur-system/"+v1.Revision()]; !ok {
		t.Fatalf("a WORKFLOW_DIRS revision is not stored in the operator's namespace: %v", store.bundles)
	}

	v2 := fileWorkflow(t, "greet", "v2", "", workflowfile.OriginDir)
	c.SetFiles([]catalog.Entry{fileEntry(v2)})
	old, err := c.Resolve(context.Background(), "team-a", "greet", v1.Revision())
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, old); out != `"v1"` {
		t.Errorf("the old revision runs %s, want v1", out)
	}
	if cur, _ := c.Lookup("team-a", "greet"); run(t, cur.Workflow) != `"v2"` {
		t.Error("new runs do not get v2")
	}

	c.Forget("centaur-system", v1.Revision())
	delete(store.bundles, "centaur-system/"+v1.Revision())
	if _, err := c.Resolve(context.Background(), "team-a", "greet", v1.Revision()); !errors.Is(err, catalog.ErrRevisionNotFound) {
		t.Errorf("a revision gone from the store resolves: %v", err)
	}
}

func TestATenantCannotPlantTrustedCode(t *testing.T) {
	store := &memStore{bundles: map[string]workflowfile.Bundle{}}
	c := newCatalog(t, store)
	trusted := fileWorkflow(t, "greet", "admin", "", workflowfile.OriginDir)
	forged := trusted.Bundle() // origin "dir", stored in a tenant's namespace
	store.bundles["team-a/"+trusted.Revision()] = forged
	_, err := c.Resolve(context.Background(), "team-a", "greet", trusted.Revision())
	if err == nil || !strings.Contains(err.Error(), "not \"greet\" at") {
		t.Fatalf("a bundle claiming origin dir in a tenant namespace resolved: %v", err)
	}
}

func TestDeclaredWebhooksByPrecedence(t *testing.T) {
	c := newCatalog(t, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.SetDefinition(defEntry(fileWorkflow(t, "tenant_b", "x", "shared", workflowfile.OriginDefinition), "team-b", "b", t0))
	c.SetDefinition(defEntry(fileWorkflow(t, "tenant_a", "x", "shared", workflowfile.OriginDefinition), "team-a", "a", t0.Add(-time.Hour)))
	got := c.Webhooks()["shared"]
	var order []string
	for _, w := range got {
		order = append(order, string(w.Entry.Source)+":"+w.Entry.Name())
	}
	want := []string{"go:hello", "go:report", "definition:tenant_a", "definition:tenant_b"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("claims of slug shared: %v, want %v", order, want)
	}
	c.SetFiles([]catalog.Entry{fileEntry(fileWorkflow(t, "dirfile", "x", "shared", workflowfile.OriginDir))})
	if first := c.Webhooks()["shared"][0]; first.Entry.Source != catalog.SourceFile {
		t.Errorf("a WORKFLOW_DIRS file does not win its slug: %+v", first.Entry)
	}
}

// run executes w once with no host and returns its output.
func run(t *testing.T, w durable.Workflow) string {
	t.Helper()
	out := engine.Execute(context.Background(), w, engine.Execution{
		Run:      durable.RunInfo{Name: "r", StartedAt: time.Now()},
		Input:    json.RawMessage(`{}`),
		Recorder: engine.RecorderFunc(func(context.Context, *engine.Journal, []engine.Entry) error { return nil }),
	})
	if out.Kind != engine.Completed {
		t.Fatalf("%+v", out)
	}
	return string(out.Output)
}
