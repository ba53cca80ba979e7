package durable

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Handler is a workflow's body: it receives the run's context and typed input and returns the
// output, which is encoded as JSON into the run's status.
type Handler[In, Out any] func(ctx *Context, input In) (Out, error)

// Workflow is a registered workflow, independent of its input and output types. Build one
// with [Define].
type Workflow interface {
	// Name is the name runs refer to in spec.workflowName.
	Name() string
	// Description says in a sentence what the workflow does.
	Description() string
	// ExampleInput is a JSON input that shows the workflow's input shape, or nil.
	ExampleInput() json.RawMessage
	// Webhooks lists the webhook routes the workflow declares in code (private when empty).
	Webhooks() []WebhookSpec
	// Schedules lists the schedules the workflow declares in code (see WithSchedule).
	Schedules() []ScheduleSpec

	// invoke decodes the input, runs the handler and encodes its output.
	invoke(ctx *Context, input json.RawMessage) (json.RawMessage, error)
}

// WebhookSpec declares, in the workflow's code, that a webhook route starts the workflow.
// The manager serves it at /api/webhooks/{Slug}; how it is secured is documented in the
// webhookserver package.
type WebhookSpec struct {
	// Slug is the route's last path segment.
	Slug string
	// Provider is the signature scheme: "github", "hmac", "standard-webhooks" or "none".
	Provider string
	// TriggerKey is the header that identifies a delivery, for idempotency.
	TriggerKey string
}

// Option configures a workflow at definition time.
type Option func(*options)

type options struct {
	description  string
	exampleInput json.RawMessage
	webhooks     []WebhookSpec
	schedules    []ScheduleSpec
}

// WithDescription sets the one-sentence description shown by the REST API.
func WithDescription(text string) Option { return func(o *options) { o.description = text } }

// WithExampleInput sets an example input, shown by the REST API so a curl user sees the shape.
// It must encode to JSON; a value that does not is ignored.
func WithExampleInput(example any) Option {
	return func(o *options) {
		if b, err := json.Marshal(example); err == nil {
			o.exampleInput = b
		}
	}
}

// WithWebhook declares a webhook route that starts the workflow.
func WithWebhook(spec WebhookSpec) Option {
	return func(o *options) { o.webhooks = append(o.webhooks, spec) }
}

// Define makes a Workflow from a typed handler. In is decoded strictly from the run's JSON
// input (unknown fields are an error, so typos surface as InvalidInput); Out is encoded as
// the run's output.
func Define[In, Out any](name string, handler Handler[In, Out], opts ...Option) Workflow {
	w := &definition[In, Out]{name: name, handler: handler}
	for _, opt := range opts {
		opt(&w.options)
	}
	return w
}

type definition[In, Out any] struct {
	name    string
	handler Handler[In, Out]
	options
}

func (d *definition[In, Out]) Name() string                  { return d.name }
func (d *definition[In, Out]) Description() string           { return d.description }
func (d *definition[In, Out]) ExampleInput() json.RawMessage { return d.exampleInput }
func (d *definition[In, Out]) Webhooks() []WebhookSpec       { return slices.Clone(d.webhooks) }
func (d *definition[In, Out]) Schedules() []ScheduleSpec     { return slices.Clone(d.schedules) }

func (d *definition[In, Out]) invoke(ctx *Context, raw json.RawMessage) (json.RawMessage, error) {
	var in In
	if err := decodeInput(raw, &in); err != nil {
		return nil, &invalidInputError{err: err}
	}
	out, err := d.handler(ctx, in)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode output of workflow %q: %w", d.name, err)
	}
	return b, nil
}

// decodeInput decodes raw strictly into in; an absent input decodes to the zero value.
func decodeInput(raw json.RawMessage, in any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(in); err != nil {
		return err
	}
	// dec.More would miss a stray '}' or ']' after the value.
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) > 0 {
		return fmt.Errorf("unexpected data after the input's JSON value")
	}
	return nil
}

// invalidInputError marks an input that does not decode, so the engine fails the run with
// reason InvalidInput instead of HandlerError.
type invalidInputError struct{ err error }

func (e *invalidInputError) Error() string { return e.err.Error() }
func (e *invalidInputError) Unwrap() error { return e.err }

// Registry holds the workflows a manager can run, by name. It is the one piece of shared
// state: built at start-up, read concurrently by reconcilers and the HTTP server.
type Registry struct {
	mu        sync.RWMutex
	workflows map[string]Workflow
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{workflows: map[string]Workflow{}} }

// Register adds workflows, all or none. A duplicate or empty name is a programming error in
// the binary's wiring and is returned as an error so main can refuse to start.
func (r *Registry) Register(workflows ...Workflow) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, w := range workflows {
		name := w.Name()
		switch {
		case strings.TrimSpace(name) == "":
			return fmt.Errorf("register workflow: empty name")
		case seen[name] || r.workflows[name] != nil:
			return fmt.Errorf("register workflow %q: already registered", name)
		}
		seen[name] = true
	}
	for _, w := range workflows {
		r.workflows[w.Name()] = w
	}
	return nil
}

// Lookup returns the workflow registered under name.
func (r *Registry) Lookup(name string) (Workflow, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	w, ok := r.workflows[name]
	return w, ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.workflows))
	for name := range r.workflows {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Workflows returns the registered workflows, sorted by name.
func (r *Registry) Workflows() []Workflow {
	names := r.Names()
	out := make([]Workflow, 0, len(names))
	for _, n := range names {
		w, _ := r.Lookup(n)
		out = append(out, w)
	}
	return out
}
