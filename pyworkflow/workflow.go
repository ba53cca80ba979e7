package pyworkflow

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// Language is what Workflow.Language says, in logs and listings.
const Language = "python"

// Workflow is a loaded Python workflow file: a durable.Workflow with the file's revision and
// source.
type Workflow struct {
	durable.Workflow
	loader *Loader
	// meta is what the file declares; nil for a revision stored earlier, which only finishes
	// the runs that started on it.
	meta     *pyworker.Meta
	bundle   workflowfile.Bundle
	digest   string
	revision string
	// dir is where the file was loaded from, for file names in errors.
	dir   string
	input *inputSchema
}

// Revision identifies the file's code: "<name>-<digest>", a digest of the file and of the
// helpers of its directory.
func (w *Workflow) Revision() string { return w.revision }

// Bundle returns the text the revision needs, to store it.
func (w *Workflow) Bundle() workflowfile.Bundle { return w.bundle }

// File is the workflow file's path relative to its directory.
func (w *Workflow) File() string { return w.bundle.Entry }

// Language is "python".
func (w *Workflow) Language() string { return Language }

// InputFields lists the fields of the file's Input dataclass; nil without one.
func (w *Workflow) InputFields() []workflowfile.InputField {
	if w.meta == nil || w.meta.Input == nil {
		return nil
	}
	out := make([]workflowfile.InputField, len(w.meta.Input))
	for i, f := range w.meta.Input {
		out[i] = workflowfile.InputField{Name: f.Name, Type: f.Type, Required: f.Required, Default: f.Default}
	}
	return out
}

// Namespaces are the namespaces the file's NAMESPACES lets start it; nil when it sets none
// (every namespace may).
func (w *Workflow) Namespaces() []string {
	if w.meta == nil {
		return nil
	}
	return slices.Clone(w.meta.Namespaces)
}

// declare checks what the file declares (name, Input, WEBHOOKS, SCHEDULES, NAMESPACES) and
// makes the durable workflow; the error is a *workflowfile.LoadError.
func (w *Workflow) declare(file string) error {
	m := w.meta
	// fail points at the statement that binds symbol, the global at fault.
	fail := func(symbol, reason, format string, args ...any) error {
		le := &workflowfile.LoadError{Reason: reason, File: file, Message: fmt.Sprintf(format, args...)}
		if line := workflowfile.GlobalLine(w.bundle.Files[w.bundle.Entry], symbol); line > 0 {
			le.Line, le.Column = line, 1
		}
		return le
	}
	if err := workflowfile.CheckWorkflowName(m.Name); err != nil {
		return fail("WORKFLOW_NAME", workflowfile.ReasonMissingWorkflowName, "%v", err)
	}
	opts := []durable.Option{durable.WithDescription(strings.TrimSpace(m.Description))}
	if len(m.ExampleInput) > 0 && string(m.ExampleInput) != "null" {
		opts = append(opts, durable.WithExampleInput(m.ExampleInput))
	}
	if m.Input != nil {
		schema, err := newInputSchema(m.Input)
		if err != nil {
			return fail("Input", workflowfile.ReasonInvalidInputDecl, "Input: %v", err)
		}
		w.input = schema
	}
	for i, decl := range m.Webhooks {
		spec := webhookSpec(decl)
		if err := spec.Validate(); err != nil {
			return fail("WEBHOOKS", workflowfile.ReasonInvalidWebhook, "WEBHOOKS[%d]: %v", i, err)
		}
		if slices.ContainsFunc(m.Webhooks[:i], func(d pyworker.WebhookDecl) bool { return d.Slug == decl.Slug }) {
			return fail("WEBHOOKS", workflowfile.ReasonInvalidWebhook, "WEBHOOKS declares the slug %q twice", decl.Slug)
		}
		opts = append(opts, durable.WithWebhook(spec))
	}
	for i, decl := range m.Schedules {
		spec := scheduleSpec(decl)
		if w.loader.CheckSchedule != nil {
			if err := w.loader.CheckSchedule(spec); err != nil {
				return fail("SCHEDULES", workflowfile.ReasonInvalidSchedule, "SCHEDULES[%d] (%q): %v", i, spec.Cron, err)
			}
		}
		if spec.Name != "" && slices.ContainsFunc(m.Schedules[:i], func(d pyworker.ScheduleDecl) bool { return d.Name == spec.Name }) {
			return fail("SCHEDULES", workflowfile.ReasonInvalidSchedule, "SCHEDULES declares the name %q twice", spec.Name)
		}
		opts = append(opts, durable.WithSchedule(spec))
	}
	if err := workflowfile.CheckNamespaces(m.Namespaces); err != nil {
		return fail("NAMESPACES", workflowfile.ReasonLoadFailed, "%v", err)
	}
	w.Workflow = newDurable(m.Name, w, opts)
	return nil
}

// newDurable makes the durable workflow that runs w's handler.
func newDurable(name string, w *Workflow, opts []durable.Option) durable.Workflow {
	return engine.DefineRaw(name, w.run, append(opts, engine.WithInputCheck(w.checkInput))...)
}

// checkInput is the workflow's durable.Workflow.CheckInput.
func (w *Workflow) checkInput(raw json.RawMessage) error {
	if w.input == nil {
		return nil
	}
	return w.input.check(raw)
}

// webhookSpec converts a declared webhook.
func webhookSpec(d pyworker.WebhookDecl) durable.WebhookSpec {
	spec := durable.WebhookSpec{Slug: d.Slug, Provider: d.Provider, TriggerKey: d.TriggerKey, TriggerBodyField: d.TriggerBodyField,
		AllowedMethods: d.AllowedMethods, AllowedContentTypes: d.AllowedContentTypes, ReplayProtection: d.ReplayProtection,
		WebhookOnly: d.WebhookOnly}
	if d.Auth != nil {
		a := d.Auth
		spec.Auth = durable.WebhookAuth{Scheme: a.Scheme, SecretRef: a.SecretRef, Header: a.Header, Prefix: a.Prefix,
			Algorithm: a.Algorithm, Encoding: a.Encoding, SignedTemplate: a.SignedTemplate, TimestampHeader: a.TimestampHeader,
			TimestampKey: a.TimestampKey, SignatureKey: a.SignatureKey, IDHeader: a.IDHeader, TimestampField: a.TimestampField,
			TimestampTolerance: seconds(a.TimestampTolerance)}
	}
	return spec
}

// scheduleSpec converts a declared schedule.
func scheduleSpec(d pyworker.ScheduleDecl) durable.ScheduleSpec {
	spec := durable.ScheduleSpec{Cron: d.Cron, TimeZone: d.TimeZone, Name: d.Name, ConcurrencyPolicy: d.ConcurrencyPolicy,
		CatchUp: d.CatchUp, MaxCatchUp: d.MaxCatchUp, StartingDeadline: seconds(d.StartingDeadline), Jitter: seconds(d.Jitter)}
	if len(d.Input) > 0 && string(d.Input) != "null" {
		spec.Input = d.Input
	}
	return spec
}

// seconds converts an optional number of seconds.
func seconds(s *float64) time.Duration {
	if s == nil {
		return 0
	}
	return time.Duration(*s * float64(time.Second))
}
