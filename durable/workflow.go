package durable

import (
	"github.com/centaur-dev/workflow-operator/durable/internal/core"
)

// Handler is a workflow's body: it receives the run's context and typed input and returns the
// output, which is encoded as JSON into the run's status.
type Handler[In, Out any] = core.Handler[In, Out]

// Workflow is a registered workflow, independent of its input and output types. Build one
// with [Define].
type Workflow = core.Workflow

// WebhookSpec declares, in the workflow's code, that a webhook route starts the workflow: the
// product's WebhookSpec(slug, provider, auth, trigger_key, allowed_methods,
// allowed_content_types). The manager serves it at /api/webhooks/{Slug}; docs/webhooks.md
// says how its secret is found.
type WebhookSpec = core.WebhookSpec

const ReplayProtectionBodyHash = core.ReplayProtectionBodyHash

const ReplayProtectionTriggerKey = core.ReplayProtectionTriggerKey

// WebhookAuth is how a declared webhook authenticates deliveries (the product's HmacAuth or
// auth="none").
type WebhookAuth = core.WebhookAuth

const WebhookSchemeGitHub = core.WebhookSchemeGitHub

const WebhookSchemeHMAC = core.WebhookSchemeHMAC

const WebhookSchemeStandardWebhooks = core.WebhookSchemeStandardWebhooks

const WebhookSchemeNone = core.WebhookSchemeNone

// Option configures a workflow at definition time.
type Option = core.Option

// WithDescription sets the one-sentence description shown by the REST API.
func WithDescription(text string) Option {
	return core.WithDescription(text)
}

// WithExampleInput sets an example input, shown by the REST API so a curl user sees the shape.
// It must encode to JSON; a value that does not is ignored.
func WithExampleInput(example any) Option {
	return core.WithExampleInput(example)
}

// WithWebhook declares a webhook route that starts the workflow.
func WithWebhook(spec WebhookSpec) Option {
	return core.WithWebhook(spec)
}

// Define makes a Workflow from a typed handler. In is decoded strictly from the run's JSON
// input (unknown fields are an error, so typos surface as InvalidInput); Out is encoded as
// the run's output. The *WorkflowDef it returns is what the manager registers, and the typed
// handle a parent starts it with: RunWorkflow(ctx, "greet-ada", Hello, HelloInput{Name: "Ada"})
// returns a HelloOutput.
func Define[In, Out any](name string, handler Handler[In, Out], opts ...Option) *WorkflowDef[In, Out] {
	return core.Define[In, Out](name, handler, opts...)
}

// WorkflowByName returns a typed handle on a workflow that this program does not define in Go,
// such as a workflow file, for starting it as a child run: In is what the child is started with
// (encoded as JSON) and Out what its output decodes into (json.RawMessage takes it as it is).
// The handle cannot be registered.
//
//	report := durable.WorkflowByName[ReportInput, json.RawMessage]("nightly_report_file")
//	out, err := durable.RunWorkflow(ctx, "report", report, ReportInput{Channel: "#ops"})
func WorkflowByName[In, Out any](name string) *WorkflowDef[In, Out] {
	return core.WorkflowByName[In, Out](name)
}

// WorkflowDef is a workflow with typed input and output: a Workflow to register (made by
// Define) and a handle to start it as a child run with StartWorkflow and RunWorkflow.
type WorkflowDef[In, Out any] = core.WorkflowDef[In, Out]

// ScheduleSpec declares, in the workflow's code, that the workflow runs on a schedule. The
// manager keeps a WorkflowSchedule for each declaration in its schedule namespace
// (--schedule-namespace), creates it at start, updates it when the declaration changes and
// deletes it when the declaration goes; docs/schedules.md describes every field. A schedule
// paused through the REST API stays paused across those updates.
//
//	durable.WithSchedule(durable.ScheduleSpec{
//		Cron:     "0 2 * * *",
//		TimeZone: "Europe/Berlin",
//		Input:    NightlyReportInput{Channel: "#ops"},
//	})
type ScheduleSpec = core.ScheduleSpec

// WithSchedule declares a schedule that starts the workflow; give it several times for several
// schedules.
func WithSchedule(spec ScheduleSpec) Option {
	return core.WithSchedule(spec)
}

// WebhookSchemeToken is TokenAuth's scheme: a shared token in a header, compared in constant
// time (GitLab's X-Gitlab-Token).
const WebhookSchemeToken = core.WebhookSchemeToken

// HmacPreset returns HmacAuth's preset name ("stripe", "slack", "shopify", "linear",
// "intercom", "github", "standard_webhooks") signed with secretRef, or false when there is no
// such preset: WithWebhook(WebhookSpec{Auth: auth, ...}).
func HmacPreset(name, secretRef string) (WebhookAuth, bool) { return core.HmacPreset(name, secretRef) }

// HmacPresetNames lists HmacAuth's presets, sorted.
func HmacPresetNames() []string { return core.HmacPresetNames() }

// TokenPreset returns TokenAuth's preset name ("gitlab") with secretRef, or false when there
// is no such preset.
func TokenPreset(name, secretRef string) (WebhookAuth, bool) {
	return core.TokenPreset(name, secretRef)
}

// TokenPresetNames lists TokenAuth's presets, sorted.
func TokenPresetNames() []string { return core.TokenPresetNames() }
