package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// Poll intervals of --wait, --follow and runs watch (the REST API has no watch): the first
// poll comes soon, later ones back off to maxPoll, and a change or a wake time coming due
// brings the next one soon again.
const (
	firstPoll = 100 * time.Millisecond
	maxPoll   = 2 * time.Second
)

// finalPhases are the phases a run does not leave.
var finalPhases = map[string]bool{"Succeeded": true, "Failed": true, "Cancelled": true}

// startOptions are start's own flags.
type startOptions struct {
	input          string
	eager          bool
	idempotencyKey string
	waitFlags
}

// waitFlags are the flags of waiting for a run's end: start's and runs watch's.
type waitFlags struct {
	wait, follow bool
	timeout      time.Duration
}

// bind declares --timeout, and --wait and --follow unless the command always waits.
func (w *waitFlags) bind(fs *flag.FlagSet, optional bool) {
	if optional {
		fs.BoolVar(&w.wait, "wait", false, "Wait until the run finishes and print its output; exit 1 unless it succeeded.")
		fs.BoolVar(&w.follow, "follow", false, "Wait as --wait does, printing each journal entry to stderr as the run records it.")
	}
	fs.DurationVar(&w.timeout, "timeout", 0, "Give up waiting after this long, exit 1 (0: no limit).")
}

// startCommand starts a run through the REST API.
func startCommand() command {
	return apiCommand(command{
		name:    "start",
		summary: "Start a run of a workflow on the cluster; --wait waits for its output.",
		usage: `start [--input JSON|@FILE] [--eager] [--idempotency-key KEY] [--wait|--follow] [--timeout D] [-o table|json|yaml] WORKFLOW

Starts a run of WORKFLOW (centaur workflows lists them) with POST /api/workflows/runs and
prints its id, or the run with -o json|yaml. --eager executes the run's first segment before
the answer (eager_start).

--wait polls the run until it finishes and prints its output as JSON on stdout (the whole run
with -o json|yaml); --follow does the same and prints each journal entry to stderr as the run
records it. Exit status: 0 when the run succeeded; 1 when it failed or was cancelled (its
reason and message on stderr), or --timeout passed first; 2 on a usage error.`,
	}, func(fs *flag.FlagSet, o *startOptions) {
		fs.StringVar(&o.input, "input", "", "The run's JSON input, or @PATH to read it from a file.")
		fs.BoolVar(&o.eager, "eager", false, "Execute the run's first segment before answering (eager_start).")
		fs.StringVar(&o.idempotencyKey, "idempotency-key", "", "Start at most one run for this key: a repeated start answers with the first one's run.")
		o.waitFlags.bind(fs, true)
	}, func(ctx context.Context, s *session, o *startOptions, args []string) error {
		if len(args) != 1 {
			return usageFailure("name one workflow to start (centaur workflows lists them)")
		}
		input, err := jsonFlag("--input", o.input)
		if err != nil {
			return err
		}
		run, err := s.cl.StartRun(ctx, restapi.StartRunRequest{WorkflowName: args[0], Input: input, EagerStart: o.eager, IdempotencyKey: o.idempotencyKey})
		if err != nil {
			return err
		}
		if !o.wait && !o.follow {
			return s.show(run, func(w io.Writer) { fmt.Fprintln(w, run.ID) })
		}
		fmt.Fprintf(s.stderr, "run %s started\n", run.ID)
		return s.waitAndShow(ctx, run, o.waitFlags)
	})
}

// waitAndShow waits for run's end as w says and prints it (see finished).
func (s *session) waitAndShow(ctx context.Context, run restapi.RunDetail, w waitFlags) error {
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	f := &follower{s: s, namespace: run.Namespace, id: run.ID, steps: w.follow}
	final, err := f.await(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("run %s is still %s after --timeout %s: centaur runs watch %s waits on", run.ID, final.Status, w.timeout, run.ID)
	}
	if err != nil {
		return err
	}
	return s.finished(final)
}

// jsonFlag is the JSON of a flag that takes JSON or @PATH, nil when empty; anything else is a
// usageFailure.
func jsonFlag(name, v string) (json.RawMessage, error) {
	if v == "" {
		return nil, nil
	}
	data, err := jsonArg(v)
	if err != nil {
		return nil, usageFailure(fmt.Sprintf("%s: %v", name, err))
	}
	if !json.Valid(data) {
		return nil, usageFailure(fmt.Sprintf("%s is not JSON: %s", name, data))
	}
	return data, nil
}

// finished prints a finished run, its output alone as JSON in the table format, and returns
// an error giving its reason and message unless it succeeded.
func (s *session) finished(run restapi.RunDetail) error {
	if run.Status != "Succeeded" {
		if s.out != outputTable {
			if err := s.show(run, nil); err != nil {
				return err
			}
		}
		switch {
		case run.Error != nil && run.Error.Reason != run.Status:
			return fmt.Errorf("run %s %s: %s: %s", run.ID, run.Status, run.Error.Reason, run.Error.Message)
		case run.Error != nil:
			return fmt.Errorf("run %s %s: %s", run.ID, run.Status, run.Error.Message)
		}
		return fmt.Errorf("run %s %s", run.ID, run.Status)
	}
	return s.show(run, func(w io.Writer) { writeJSON(w, run.Output) })
}

// describeRun writes a run as label and value lines.
func describeRun(w io.Writer, run restapi.RunDetail) {
	row(w, "ID:", run.ID)
	row(w, "Namespace:", run.Namespace)
	row(w, "Workflow:", run.WorkflowName)
	if run.WorkflowRevision != "" {
		row(w, "Revision:", run.WorkflowRevision)
	}
	row(w, "Status:", run.Status)
	if run.CancelRequested && !finalPhases[run.Status] {
		row(w, "Cancel:", "requested")
	}
	row(w, "Created:", stamp(&run.CreatedAt))
	row(w, "Started:", stamp(run.StartedAt))
	row(w, "Finished:", stamp(run.FinishedAt))
	row(w, "Took:", took(run.StartedAt, run.FinishedAt))
	if run.CurrentStep != "" {
		row(w, "Current step:", run.CurrentStep)
	}
	if run.WaitingFor != "" {
		row(w, "Waiting for:", run.WaitingFor)
	}
	if run.WakeAt != nil {
		row(w, "Wakes at:", stamp(run.WakeAt))
	}
	row(w, "Input:", orDash(compactJSON(run.Input)))
	row(w, "Output:", orDash(compactJSON(run.Output)))
	if run.Error != nil {
		row(w, "Error:", run.Error.Reason+": "+cell(run.Error.Message, 200))
	}
	row(w, "Steps:", strconv.FormatInt(run.StepsTotal, 10)+" (centaur journal "+run.ID+")")
}

// runsOptions are the runs command's own flags.
type runsOptions struct {
	workflow, phase string
	limit           int
	waitFlags
}

// runsCommand lists, reads, watches and cancels runs through the REST API.
func runsCommand() command {
	return apiCommand(command{
		name:        "runs",
		subcommands: []string{"list", "get", "watch", "cancel"},
		summary:     "List, show, watch or cancel runs on the cluster.",
		usage: `runs list [--workflow NAME] [--phase PHASE[,PHASE]] [--limit N] | runs get ID | runs watch [--timeout D] ID | runs cancel ID   [-o table|json|yaml]

list   prints the runs, newest first: at most --limit (default 50), of one workflow and of
       some phases (Pending, Running, Sleeping, Waiting, Succeeded, Failed, Cancelled).
get    prints one run: status, times, input, output and error (centaur journal ID prints its
       steps).
watch  prints each journal entry to stderr as the run records it, and its output (JSON) on
       stdout when it ends: exit 0 when it succeeded, 1 when it failed or was cancelled.
cancel asks the run to stop (spec.cancel): it stops at its next suspension point or between
       two steps. A run cancelled already is fine; one that succeeded or failed is a 409
       conflict.`,
	}, func(fs *flag.FlagSet, o *runsOptions) {
		fs.StringVar(&o.workflow, "workflow", "", "list: only runs of this workflow.")
		fs.StringVar(&o.phase, "phase", "", "list: only runs in these phases, comma-separated.")
		fs.IntVar(&o.limit, "limit", 50, "list: at most this many runs.")
		o.waitFlags.bind(fs, false)
	}, func(ctx context.Context, s *session, o *runsOptions, args []string) error {
		verb, id, err := subcommand(args, "list", "get", "watch", "cancel")
		if err != nil {
			return err
		}
		switch verb {
		case "list":
			return s.listRuns(ctx, o)
		case "get":
			run, err := s.cl.GetRun(ctx, "", id, stepsPage{Limit: 1})
			if err != nil {
				return err
			}
			return s.show(run, func(w io.Writer) { describeRun(w, run) })
		case "watch":
			run, err := s.cl.GetRun(ctx, "", id, stepsPage{Limit: 1})
			if err != nil {
				return err
			}
			o.follow = true
			return s.waitAndShow(ctx, run, o.waitFlags)
		}
		run, err := s.cl.CancelRun(ctx, id)
		if err != nil {
			return err
		}
		return s.show(run, func(w io.Writer) {
			if run.Status == "Cancelled" {
				fmt.Fprintf(w, "run %s: cancelled already\n", run.ID)
				return
			}
			fmt.Fprintf(w, "run %s: cancel requested (%s)\n", run.ID, run.Status)
		})
	})
}

// subcommand checks args for a verb of verbs, then the one name every verb but "list" takes,
// and returns both.
func subcommand(args []string, verbs ...string) (verb, name string, err error) {
	if len(args) == 0 {
		return "", "", usageFailure(fmt.Sprintf("name what to do: one of %v", verbs))
	}
	verb = args[0]
	known := false
	for _, v := range verbs {
		known = known || v == verb
	}
	switch {
	case !known:
		return "", "", usageFailure(fmt.Sprintf("unknown subcommand %q: want one of %v", verb, verbs))
	case verb == "list" && len(args) > 1:
		return "", "", usageFailure(fmt.Sprintf("list takes no argument, not %q", args[1]))
	case verb != "list" && len(args) != 2:
		return "", "", usageFailure(verb + " takes exactly one name")
	case verb != "list":
		name = args[1]
	}
	return verb, name, nil
}

// listRuns prints the runs o selects, reading pages until o.limit runs or the last page.
func (s *session) listRuns(ctx context.Context, o *runsOptions) error {
	if o.limit < 1 {
		return usageFailure(fmt.Sprintf("--limit must be at least 1, not %d", o.limit))
	}
	all := restapi.RunList{Runs: []restapi.Run{}}
	for {
		page, err := s.cl.ListRuns(ctx, runFilter{Workflow: o.workflow, Phases: o.phase, Limit: min(o.limit-len(all.Runs), 100), Continue: all.Continue})
		if err != nil {
			return err
		}
		all.Runs, all.Continue = append(all.Runs, page.Runs...), page.Continue
		if all.Continue == "" || len(all.Runs) >= o.limit {
			break
		}
	}
	return s.show(all, func(w io.Writer) {
		row(w, "ID", "WORKFLOW", "STATUS", "CREATED", "TOOK", "WAITING FOR")
		for _, r := range all.Runs {
			row(w, r.ID, r.WorkflowName, r.Status, stamp(&r.CreatedAt), took(r.StartedAt, r.FinishedAt), orDash(r.WaitingFor))
		}
	})
}
