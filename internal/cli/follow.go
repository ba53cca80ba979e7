package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

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
// Polls back off from firstPoll to maxPoll while nothing changes; a change, or the run's wake
// time (a sleep's end, a retry's next attempt) coming due, brings the next poll soon again.
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
		wait := interval
		if run.WakeAt != nil {
			if due := time.Until(*run.WakeAt); due >= 0 && due < wait {
				wait, interval = due+firstPoll, firstPoll
			}
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(wait):
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
	case st.State == "Failed" && st.Kind == "Step":
		return fmt.Sprintf("step %s failed after %d attempts: %s", st.Name, st.Attempts, errorLine(st.Error))
	case st.State == "Failed":
		return fmt.Sprintf("%s %s failed: %s", kindWord(st.Kind), st.Name, errorLine(st.Error))
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
