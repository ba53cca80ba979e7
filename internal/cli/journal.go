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
