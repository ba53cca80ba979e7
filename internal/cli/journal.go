package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// journalPage is how many steps one read of a journal asks for.
const journalPage = 500

// maxShownResult bounds a step's result as a line or a cell shows it.
const maxShownResult = 80

// journalCommand prints a run's steps as a timeline.
func journalCommand() command {
	return apiCommand(command{
		name:    "journal",
		summary: "Print a run's journal as a timeline: steps, retries, sleeps and waits.",
		usage: `journal [-o table|json|yaml] RUN

Prints every entry of RUN's journal in the order the run reached them, reading all pages, as
the web console's timeline shows them: when it started (from the run's start), its kind
(Step, Sleep, Event, Child, Agent, Version), name, state, attempts and how long it took, and
a note: its result, its last error, when a retry's next attempt or a sleep's wake-up is due,
or when a wait times out. A line above says how the run stands and how many retries it took.

-o json|yaml prints the run as the REST API gives it, with every step and its result.`,
	}, nil, func(ctx context.Context, s *session, _ *struct{}, args []string) error {
		if len(args) != 1 {
			return usageFailure("name one run (centaur runs list shows them)")
		}
		run, err := readJournal(ctx, s.cl, "", args[0])
		if err != nil {
			return err
		}
		return s.show(run, func(w io.Writer) { timeline(w, run) })
	})
}

// readJournal reads run id with all its steps and their results, page after page.
func readJournal(ctx context.Context, cl cluster, namespace, id string) (restapi.RunDetail, error) {
	page := stepsPage{Limit: journalPage, Results: true}
	var run restapi.RunDetail
	var steps []restapi.Step
	for {
		var err error
		run, err = cl.GetRun(ctx, namespace, id, page)
		if err != nil {
			return run, err
		}
		steps = append(steps, run.Steps...)
		if run.StepsContinue == "" {
			break
		}
		page.Continue = run.StepsContinue
	}
	run.Steps = steps
	if run.Steps == nil {
		run.Steps = []restapi.Step{}
	}
	return run, nil
}

// timeline writes the run's standing and one row per journal entry.
func timeline(w io.Writer, run restapi.RunDetail) {
	retries := 0
	for _, st := range run.Steps {
		retries += max(int(st.Attempts)-1, 0)
	}
	origin := timeOrigin(run)
	fmt.Fprintf(w, "run %s (%s) %s: %d entries, %d retries, took %s\n", run.ID, run.WorkflowName, run.Status, len(run.Steps), retries, took(origin, runEnd(run, origin)))
	if run.Error != nil {
		fmt.Fprintf(w, "error %s:\n  %s\n", run.Error.Reason, strings.ReplaceAll(strings.TrimSpace(run.Error.Message), "\n", "\n  "))
	}
	row(w, "AT", "KIND", "NAME", "STATE", "ATTEMPTS", "TOOK", "NOTE")
	for _, st := range run.Steps {
		row(w, offset(origin, st.StartedAt), st.Kind, st.Name, st.State, strconv.Itoa(int(st.Attempts)), took(st.StartedAt, st.FinishedAt), orDash(note(st)))
	}
}

// timeOrigin is the run's start, the timeline's zero: its first entry's start when that lies
// within the second status.startedAt (whole seconds) names.
func timeOrigin(run restapi.RunDetail) *time.Time {
	start := run.StartedAt
	if start == nil {
		start = &run.CreatedAt
	}
	if len(run.Steps) > 0 && run.Steps[0].StartedAt != nil && run.Steps[0].StartedAt.Sub(*start) < time.Second {
		return run.Steps[0].StartedAt
	}
	return start
}

// runEnd is when the run finished, or its last entry did when that is later, and never before
// origin (status.finishedAt has whole seconds); nil while it runs.
func runEnd(run restapi.RunDetail, origin *time.Time) *time.Time {
	end := run.FinishedAt
	if end == nil {
		return nil
	}
	for _, st := range run.Steps {
		if st.FinishedAt != nil && st.FinishedAt.After(*end) {
			end = st.FinishedAt
		}
	}
	if end.Before(*origin) {
		return origin
	}
	return end
}

// offset is when t came after origin, as "+1.25s", or "-".
func offset(origin, t *time.Time) string {
	if t == nil {
		return "-"
	}
	return "+" + took(origin, t)
}

// note says what matters of an entry beyond its state: what is due next, its error, or its
// result.
func note(st restapi.Step) string {
	switch st.State {
	case "Retrying":
		return "next attempt " + clock(st.WakeAt) + ": " + errorLine(st.Error)
	case "Failed":
		return errorLine(st.Error)
	case "Sleeping":
		return "wakes " + clock(st.WakeAt)
	case "Waiting", "Running":
		if st.WakeAt != nil {
			return "times out " + clock(st.WakeAt)
		}
		return ""
	}
	if len(st.Result) > 0 {
		return "→ " + cell(compactJSON(st.Result), maxShownResult)
	}
	return ""
}

// errorLine is the last line of an error, cut to a cell: where a Starlark or Python traceback
// says what went wrong (the journal keeps the whole error).
func errorLine(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	return cell(lines[len(lines)-1], 160)
}

// clock is t in UTC as RFC 3339 with milliseconds, or "-".
func clock(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// follower polls a run until it ends, printing to stderr what changed: the run's status, and
// with steps each journal entry as the run records it.
type follower struct {
	s             *session
	namespace, id string
	steps         bool
	// status is the last status line printed; seen the last line printed per entry.
	status string
	seen   []string
}

// await polls the run until it reaches a final phase or ctx ends, and returns the last read.
// Polls back off from firstPoll to maxPoll while nothing changes.
func (f *follower) await(ctx context.Context) (restapi.RunDetail, error) {
	interval := firstPoll
	for {
		run, changed, err := f.poll(ctx)
		if err != nil {
			return run, fmt.Errorf("wait for run %s: %w", f.id, err)
		}
		if finalPhases[run.Status] {
			return run, nil
		}
		interval = min(interval*2, maxPoll)
		if changed {
			interval = firstPoll
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// poll reads the run once (all its steps when following them), prints what changed since the
// last poll and reports whether anything did.
func (f *follower) poll(ctx context.Context) (restapi.RunDetail, bool, error) {
	var run restapi.RunDetail
	var err error
	if f.steps {
		run, err = readJournal(ctx, f.s.cl, f.namespace, f.id)
	} else {
		run, err = f.s.cl.GetRun(ctx, f.namespace, f.id, stepsPage{Limit: 1})
	}
	if err != nil {
		return run, false, err
	}
	changed := false
	if f.steps {
		for i, st := range run.Steps {
			line := stepLine(st)
			if i < len(f.seen) && f.seen[i] == line {
				continue
			}
			if i >= len(f.seen) {
				f.seen = append(f.seen, "")
			}
			f.seen[i], changed = line, true
			if line != "" {
				fmt.Fprintln(f.s.stderr, line)
			}
		}
	}
	if status := statusLine(run); status != f.status {
		f.status, changed = status, true
		fmt.Fprintln(f.s.stderr, status)
	}
	return run, changed, nil
}

// statusLine says how the run stands: its phase, and what it waits for or when it wakes.
func statusLine(run restapi.RunDetail) string {
	switch {
	case run.WaitingFor != "":
		return fmt.Sprintf("run %s %s for %s", run.ID, run.Status, run.WaitingFor)
	case run.Status == "Sleeping" && run.WakeAt != nil:
		return fmt.Sprintf("run %s %s until %s", run.ID, run.Status, clock(run.WakeAt))
	case finalPhases[run.Status]:
		origin := timeOrigin(run)
		return fmt.Sprintf("run %s %s after %s", run.ID, run.Status, took(origin, runEnd(run, origin)))
	}
	return fmt.Sprintf("run %s %s", run.ID, run.Status)
}

// stepLine is the line --follow prints for an entry in its current state, as centaur run
// prints it; empty for a state not worth a line (a step that is running, a wait for an event).
func stepLine(st restapi.Step) string {
	result := cell(compactJSON(st.Result), maxShownResult)
	switch {
	case st.State == "Running":
		return ""
	case st.State == "Retrying":
		return fmt.Sprintf("step %s attempt %d failed: %s (next attempt %s)", st.Name, st.Attempts, errorLine(st.Error), clock(st.WakeAt))
	case st.State == "Failed":
		return fmt.Sprintf("%s %s failed after %d attempts: %s", kindWord(st.Kind), st.Name, st.Attempts, errorLine(st.Error))
	case st.State == "Sleeping":
		return fmt.Sprintf("sleep %s until %s", st.Name, clock(st.WakeAt))
	case st.State == "Waiting" && st.Kind == "Event":
		return "" // the run's status line says which event
	case st.State == "Waiting":
		return fmt.Sprintf("%s %s started", kindWord(st.Kind), st.Name)
	case st.Kind == "Sleep":
		return fmt.Sprintf("sleep %s done", st.Name)
	case st.Attempts > 1:
		return fmt.Sprintf("%s %s → %s (attempt %d)", kindWord(st.Kind), st.Name, result, st.Attempts)
	}
	return fmt.Sprintf("%s %s → %s", kindWord(st.Kind), st.Name, orDash(result))
}

// kindWord is the word a trace line starts with for an entry's kind, as centaur run's.
func kindWord(kind string) string {
	switch kind {
	case "Event":
		return "wait"
	case "":
		return "entry"
	}
	return strings.ToLower(kind)
}
