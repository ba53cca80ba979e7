package durable_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

func noop(name string, opts ...durable.Option) durable.Workflow {
	return durable.Define(name, func(*durable.Context, struct{}) (struct{}, error) { return struct{}{}, nil }, opts...)
}

func TestRegistryListsWorkflowsByName(t *testing.T) {
	r := engine.NewRegistry()
	if err := r.Register(noop("charlie"), noop("alpha")); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(noop("bravo")); err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); !slices.Equal(got, []string{"alpha", "bravo", "charlie"}) {
		t.Errorf("Names() = %v; want sorted", got)
	}
	var listed []string
	for _, w := range r.Workflows() {
		listed = append(listed, w.Name())
	}
	if !slices.Equal(listed, []string{"alpha", "bravo", "charlie"}) {
		t.Errorf("Workflows() = %v; want sorted by name", listed)
	}
	if w, ok := r.Lookup("bravo"); !ok || w.Name() != "bravo" {
		t.Errorf("Lookup(bravo) = %v, %v", w, ok)
	}
	if _, ok := r.Lookup("delta"); ok {
		t.Error("Lookup found an unregistered workflow")
	}
}

func TestRegistryRefusesDuplicateAndEmptyNames(t *testing.T) {
	tests := []struct {
		name    string
		wf      durable.Workflow
		wantErr string
	}{
		{"duplicate", noop("alpha"), `"alpha": already registered`},
		{"empty", noop(""), "empty name"},
		{"blank", noop("  "), "empty name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := engine.NewRegistry()
			if err := r.Register(noop("alpha")); err != nil {
				t.Fatal(err)
			}
			err := r.Register(tt.wf)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Register = %v; want an error containing %q", err, tt.wantErr)
			}
			if got := r.Names(); !slices.Equal(got, []string{"alpha"}) {
				t.Errorf("Names() after the refusal = %v", got)
			}
		})
	}
}

func TestDefineKeepsTheWorkflowsMetadata(t *testing.T) {
	hook := durable.WebhookSpec{Slug: "push", Provider: "github", TriggerKey: "X-GitHub-Delivery"}
	w := noop("deploy",
		durable.WithDescription("Deploys a service."),
		durable.WithExampleInput(map[string]string{"service": "api"}),
		durable.WithExampleInput(func() {}), // does not encode: ignored
		durable.WithWebhook(hook))
	if w.Description() != "Deploys a service." {
		t.Errorf("Description() = %q", w.Description())
	}
	if got := string(w.ExampleInput()); got != `{"service":"api"}` {
		t.Errorf("ExampleInput() = %s", got)
	}
	webhooks := w.Webhooks()
	if !reflect.DeepEqual(webhooks, []durable.WebhookSpec{hook}) {
		t.Errorf("Webhooks() = %v", webhooks)
	}
	webhooks[0].Slug = "changed"
	if w.Webhooks()[0].Slug != "push" {
		t.Error("Webhooks() hands out the workflow's own slice")
	}
	if noop("bare").ExampleInput() != nil {
		t.Error("a workflow without an example input has one")
	}
}
