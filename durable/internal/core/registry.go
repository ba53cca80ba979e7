package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
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
	// CheckInput reports whether input is acceptable to the handler, with an error naming
	// what is wrong, without running anything. The REST API calls it before it creates a run,
	// so a typo is a 400 rather than a run that fails with InvalidInput.
	CheckInput(input json.RawMessage) error
	// Schedules lists the schedules the workflow declares in code (see WithSchedule).
	Schedules() []ScheduleSpec

	// invoke decodes the input, runs the handler and encodes its output.
	invoke(ctx *Context, input json.RawMessage) (json.RawMessage, error)
}

// WebhookSpec declares, in the workflow's code, that a webhook route starts the workflow: the
// product's WebhookSpec(slug, provider, auth, trigger_key, allowed_methods,
// allowed_content_types). The manager serves it at /api/webhooks/{Slug}; docs/webhooks.md
// says how its secret is found.
type WebhookSpec struct {
	// Slug is the route's last path segment: lower-case letters, digits and dashes.
	Slug string
	// Provider labels who sends the deliveries ("github", "stripe", ...); it is copied into
	// the envelope's webhook.provider. When Auth is zero and Provider names a signature scheme
	// ("github", "hmac", "standard-webhooks" or "none"), that scheme is used, as before Auth
	// existed.
	Provider string
	// Auth says how deliveries are authenticated. Zero means: derive it from Provider.
	Auth WebhookAuth
	// TriggerKey is the header that identifies a delivery, for idempotency (the product's
	// HeaderTriggerKey); empty means the body's SHA-256.
	TriggerKey string
	// TriggerBodyField is the field of the delivery's body that identifies it instead (the
	// product's BodyTriggerKey): Stripe's "id", Slack's "event_id"; dots walk into nested
	// objects ("event.id"). It excludes TriggerKey.
	TriggerBodyField string
	// AllowedMethods are the accepted HTTP methods; empty means POST.
	AllowedMethods []string
	// AllowedContentTypes are the accepted media types; empty means application/json and
	// application/x-www-form-urlencoded.
	AllowedContentTypes []string
	// ReplayProtection says what identifies a delivery: ReplayProtectionBodyHash (the default
	// for github and hmac, whose signatures cover only the body, so a captured delivery replayed
	// under a new id maps to the first run) or ReplayProtectionTriggerKey (the TriggerKey
	// header, for providers that send identical bodies for distinct events). Standard Webhooks
	// deliveries are identified by their signed webhook-id either way.
	ReplayProtection string
	// WebhookOnly has the workflow start only from webhook deliveries: a run made any other
	// way (the REST API, kubectl, a parent, a schedule) fails with NotStartedByWebhook, and the
	// REST API refuses it up front. A workflow that trusts its input to be a delivery the
	// signature covered (its envelope) sets it, so that nobody can hand it a forged envelope.
	// Any of a workflow's webhooks setting it applies to the whole workflow.
	WebhookOnly bool
}

// The replay protections of a declared webhook (WebhookSpec.ReplayProtection, and
// replay_protection in workflow files).
const (
	ReplayProtectionBodyHash   = "body_hash"
	ReplayProtectionTriggerKey = "trigger_key"
)

// WebhookAuth is how a declared webhook authenticates deliveries (the product's HmacAuth,
// TokenAuth or auth="none"). Its fields have the same names, in snake case, as HmacAuth's
// keywords in workflow files, and, in camel case, as a WebhookEndpoint's spec.auth.hmac.
type WebhookAuth struct {
	// Scheme is "github" (X-Hub-Signature-256), "hmac" (a configurable HMAC), "token" (a
	// shared token in a header), "standard-webhooks" or "none".
	Scheme string
	// SecretRef names the signing secret: an environment variable of the manager (a bare name
	// such as "GITHUB_WEBHOOK_SECRET") or a key of a Secret ("secret-name/key"). Empty means
	// the convention of code-declared webhooks: key "secret" of the Secret
	// "centaur-webhook-<slug>".
	SecretRef string
	// Header carries the signature of the "hmac" scheme (empty means X-Signature), or the
	// token of the "token" scheme (required).
	Header string
	// Prefix precedes the digest (or the token) in Header, for example "sha256=".
	Prefix string
	// Algorithm of the "hmac" scheme: "sha256" (the default when empty), "sha1" or "sha512".
	Algorithm string
	// Encoding of the "hmac" scheme's digest: "hex" (the default when empty) or "base64".
	Encoding string
	// SignedTemplate is what the "hmac" sender signs, over {body}, {timestamp} and {id}, for
	// example "v0:{timestamp}:{body}"; empty means "{body}".
	SignedTemplate string
	// TimestampHeader carries the unix seconds {timestamp} stands for.
	TimestampHeader string
	// TimestampKey is the entry of a key=value signature list holding the timestamp (Stripe's
	// "t"); it needs SignatureKey.
	TimestampKey string
	// SignatureKey makes Header a comma-separated key=value list whose entries of this key
	// (Stripe's "v1") are signatures, any of which may match.
	SignatureKey string
	// IDHeader carries the delivery id {id} stands for.
	IDHeader string
	// TimestampField is the JSON body's field holding the time it was sent, unix seconds or
	// milliseconds (Linear's "webhookTimestamp"); the body's signature covers it.
	TimestampField string
	// TimestampTolerance bounds how far a signed timestamp may lie from now; zero means five
	// minutes.
	TimestampTolerance time.Duration
}

// The authentication schemes of a declared webhook, as in WebhookAuth.Scheme.
const (
	WebhookSchemeGitHub           = "github"
	WebhookSchemeHMAC             = "hmac"
	WebhookSchemeToken            = "token"
	WebhookSchemeStandardWebhooks = "standard-webhooks"
	WebhookSchemeNone             = "none"
)

var (
	slugPattern      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	envVarPattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	secretRefPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[-._a-zA-Z0-9]+$`)
)

// Validate reports what is wrong with a declaration, in words that say how to fix it: the slug's
// syntax, the scheme, and the form of the secret reference.
func (s WebhookSpec) Validate() error {
	if !slugPattern.MatchString(s.Slug) || len(s.Slug) > 63 {
		return fmt.Errorf("webhook slug %q: want lower-case letters, digits and dashes, at most 63 characters", s.Slug)
	}
	auth := s.EffectiveAuth()
	switch auth.Scheme {
	case WebhookSchemeGitHub, WebhookSchemeHMAC, WebhookSchemeStandardWebhooks:
	case WebhookSchemeToken:
		if auth.Header == "" {
			return fmt.Errorf("webhook %q: TokenAuth needs the header the token comes in, for example header = \"X-Gitlab-Token\"", s.Slug)
		}
	case WebhookSchemeNone:
		if auth.SecretRef != "" {
			return fmt.Errorf("webhook %q: auth \"none\" takes no secret_ref", s.Slug)
		}
		return nil
	case "":
		return fmt.Errorf("webhook %q: no auth: use HmacAuth.github(secret_ref = ...), HmacAuth(secret_ref = ..., header = ...) or auth = \"none\"", s.Slug)
	default:
		return fmt.Errorf("webhook %q: unknown auth scheme %q; want github, hmac, token, standard-webhooks or none", s.Slug, auth.Scheme)
	}
	if s.TriggerKey != "" && s.TriggerBodyField != "" {
		return fmt.Errorf("webhook %q: the trigger key is a header or a body field, not both", s.Slug)
	}
	if err := auth.check(); err != nil {
		return fmt.Errorf("webhook %q: %w", s.Slug, err)
	}
	if p := s.ReplayProtection; p != "" && p != ReplayProtectionBodyHash && p != ReplayProtectionTriggerKey {
		return fmt.Errorf("webhook %q: replay_protection %q: want %q or %q", s.Slug, p, ReplayProtectionBodyHash, ReplayProtectionTriggerKey)
	}
	if ref := auth.SecretRef; ref != "" && !envVarPattern.MatchString(ref) && !secretRefPattern.MatchString(ref) {
		return fmt.Errorf("webhook %q: secret_ref %q is neither an environment variable name (GITHUB_WEBHOOK_SECRET) nor a Secret key (secret-name/key)", s.Slug, ref)
	}
	return nil
}

// SecretRefIsEnv reports whether a secret reference names an environment variable rather than
// a Secret key ("name/key").
func SecretRefIsEnv(ref string) bool { return envVarPattern.MatchString(ref) }

// EffectiveAuth returns Auth, or, when Auth is zero, the scheme Provider names (zero when it
// names none).
func (s WebhookSpec) EffectiveAuth() WebhookAuth {
	if s.Auth != (WebhookAuth{}) {
		return s.Auth
	}
	switch s.Provider {
	case WebhookSchemeGitHub, WebhookSchemeHMAC, WebhookSchemeStandardWebhooks, WebhookSchemeNone:
		return WebhookAuth{Scheme: s.Provider}
	}
	return WebhookAuth{}
}

// Option configures a workflow at definition time.
type Option func(*options)

type options struct {
	description  string
	exampleInput json.RawMessage
	webhooks     []WebhookSpec
	checkInput   func(json.RawMessage) error
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

// WithInputCheck sets how a workflow defined with [DefineRaw] checks its input before a run
// starts (see Workflow.CheckInput); the handler should report the same problems as a
// *Failure with reason InvalidInput.
func WithInputCheck(check func(input json.RawMessage) error) Option {
	return func(o *options) { o.checkInput = check }
}

// Define makes a Workflow from a typed handler. In is decoded strictly from the run's JSON
// input (unknown fields are an error, so typos surface as InvalidInput); Out is encoded as
// the run's output. The *WorkflowDef it returns is what the manager registers, and the typed
// handle a parent starts it with: RunWorkflow(ctx, "greet-ada", Hello, HelloInput{Name: "Ada"})
// returns a HelloOutput.
func Define[In, Out any](name string, handler Handler[In, Out], opts ...Option) *WorkflowDef[In, Out] {
	w := &WorkflowDef[In, Out]{name: name, handler: handler}
	for _, opt := range opts {
		opt(&w.options)
	}
	return w
}

// WorkflowByName returns a typed handle on a workflow that this program does not define in Go,
// such as a workflow file, for starting it as a child run: In is what the child is started with
// (encoded as JSON) and Out what its output decodes into (json.RawMessage takes it as it is).
// The handle cannot be registered.
//
//	report := durable.WorkflowByName[ReportInput, json.RawMessage]("nightly_report_file")
//	out, err := durable.RunWorkflow(ctx, "report", report, ReportInput{Channel: "#ops"})
func WorkflowByName[In, Out any](name string) *WorkflowDef[In, Out] {
	return &WorkflowDef[In, Out]{name: name}
}

// WorkflowDef is a workflow with typed input and output: a Workflow to register (made by
// Define) and a handle to start it as a child run with StartWorkflow and RunWorkflow.
type WorkflowDef[In, Out any] struct {
	name string
	// handler is nil for a handle made by WorkflowByName.
	handler Handler[In, Out]
	options
}

// Name is the name runs refer to in spec.workflowName.
func (d *WorkflowDef[In, Out]) Name() string { return d.name }

// Description says in a sentence what the workflow does.
func (d *WorkflowDef[In, Out]) Description() string { return d.description }

// ExampleInput is a JSON input that shows the workflow's input shape, or nil.
func (d *WorkflowDef[In, Out]) ExampleInput() json.RawMessage { return d.exampleInput }

// Webhooks lists the webhook routes the workflow declares in code.
func (d *WorkflowDef[In, Out]) Webhooks() []WebhookSpec { return slices.Clone(d.webhooks) }

// Schedules lists the schedules the workflow declares in code.
func (d *WorkflowDef[In, Out]) Schedules() []ScheduleSpec { return slices.Clone(d.schedules) }

// byNameOnly reports whether d is a handle made by WorkflowByName, which has no handler.
func (d *WorkflowDef[In, Out]) byNameOnly() bool { return d.handler == nil }

// CheckInput reports whether input decodes strictly into In.
func (d *WorkflowDef[In, Out]) CheckInput(raw json.RawMessage) error {
	var in In
	if err := decodeInput(raw, &in); err != nil {
		return fmt.Errorf("input does not decode into the workflow's input type: %w", err)
	}
	return nil
}

func (d *WorkflowDef[In, Out]) invoke(ctx *Context, raw json.RawMessage) (json.RawMessage, error) {
	if d.handler == nil {
		return nil, &Failure{Reason: ReasonUnknownWorkflow, Message: fmt.Sprintf("workflow %q is only a handle made by durable.WorkflowByName; define it with durable.Define to run it", d.name)}
	}
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

// RawHandler is the handler of a workflow whose input and output are JSON as stored, for
// hosts that bring their own types, such as the interpreter of workflow files.
type RawHandler func(ctx *Context, input json.RawMessage) (json.RawMessage, error)

// DefineRaw makes a Workflow from a handler of raw JSON. The handler decodes and checks the
// input itself (failing the run with a *Failure of reason InvalidInput when it does not fit)
// and returns its output as JSON; [WithInputCheck] lets the REST API check input up front.
func DefineRaw(name string, handler RawHandler, opts ...Option) Workflow {
	w := &rawDefinition{name: name, handler: handler}
	for _, opt := range opts {
		opt(&w.options)
	}
	return w
}

type rawDefinition struct {
	name    string
	handler RawHandler
	options
}

func (d *rawDefinition) Name() string                  { return d.name }
func (d *rawDefinition) Description() string           { return d.description }
func (d *rawDefinition) ExampleInput() json.RawMessage { return d.exampleInput }
func (d *rawDefinition) Webhooks() []WebhookSpec       { return slices.Clone(d.webhooks) }
func (d *rawDefinition) Schedules() []ScheduleSpec     { return slices.Clone(d.schedules) }

func (d *rawDefinition) CheckInput(raw json.RawMessage) error {
	if d.checkInput == nil {
		return nil
	}
	return d.checkInput(raw)
}

func (d *rawDefinition) invoke(ctx *Context, raw json.RawMessage) (json.RawMessage, error) {
	out, err := d.handler(ctx, raw)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return json.RawMessage("null"), nil
	}
	if !json.Valid(out) {
		return nil, fmt.Errorf("the output of workflow %q is not valid JSON", d.name)
	}
	return out, nil
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
		case isHandleOnly(w):
			return fmt.Errorf("register workflow %q: it is a handle made by durable.WorkflowByName, with no handler; register the durable.Define of it instead", name)
		}
		seen[name] = true
	}
	for _, w := range workflows {
		r.workflows[w.Name()] = w
	}
	return nil
}

// isHandleOnly reports whether w is a handle made by WorkflowByName.
func isHandleOnly(w Workflow) bool {
	h, ok := w.(interface{ byNameOnly() bool })
	return ok && h.byNameOnly()
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
