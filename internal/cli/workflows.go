package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// workflowsCommand lists the workflows a namespace can run.
func workflowsCommand() command {
	return apiCommand(command{
		name:    "workflows",
		summary: "List the workflows the cluster can run.",
		usage: `workflows [-o table|json|yaml]

Lists the workflows the namespace can run (GET /api/workflows): Go workflows compiled into the
manager, workflow files of WORKFLOW_DIRS and the namespace's WorkflowDefinitions, with their
source and description; -o json|yaml adds example inputs, input fields and webhooks.`,
	}, nil, func(ctx context.Context, s *session, _ *struct{}, args []string) error {
		if len(args) > 0 {
			return usageFailure(fmt.Sprintf("unexpected argument %q", args[0]))
		}
		list, err := s.cl.Workflows(ctx)
		if err != nil {
			return err
		}
		return s.show(list, func(w io.Writer) {
			row(w, "NAME", "SOURCE", "DESCRIPTION")
			for _, wf := range list.Workflows {
				row(w, wf.Name, wf.Source, orDash(cell(wf.Description, 100)))
			}
		})
	})
}

// scheduleOptions are the schedules command's own flags.
type scheduleOptions struct {
	note string
}

// schedulesCommand lists, triggers, pauses and resumes schedules.
func schedulesCommand() command {
	return apiCommand(command{
		name:        "schedules",
		subcommands: []string{"list", "trigger", "pause", "resume"},
		summary:     "List, trigger, pause or resume schedules on the cluster.",
		usage: `schedules list | schedules trigger NAME | schedules pause [--note TEXT] NAME | schedules resume NAME   [-o table|json|yaml]

list    prints the schedules with their workflow, cron, state and last and next tick.
trigger starts a run of the schedule now, under its concurrency policy, and prints its id.
pause   stops new ticks until resumed, with an optional note saying why.
resume  lets the schedule tick again.`,
	}, func(fs *flag.FlagSet, o *scheduleOptions) {
		fs.StringVar(&o.note, "note", "", "pause: why the schedule is paused, shown with it.")
	}, func(ctx context.Context, s *session, o *scheduleOptions, args []string) error {
		verb, name, err := subcommand(args, "list", "trigger", "pause", "resume")
		if err != nil {
			return err
		}
		switch verb {
		case "list":
			return s.listSchedules(ctx)
		case "trigger":
			run, err := s.cl.TriggerSchedule(ctx, name)
			if err != nil {
				return err
			}
			return s.show(run, func(w io.Writer) { fmt.Fprintln(w, run.ID) })
		}
		var sched restapi.Schedule
		if verb == "pause" {
			sched, err = s.cl.PauseSchedule(ctx, name, o.note)
		} else {
			sched, err = s.cl.ResumeSchedule(ctx, name)
		}
		if err != nil {
			return err
		}
		return s.show(sched, func(w io.Writer) { fmt.Fprintf(w, "schedule %s %sd\n", sched.Name, verb) })
	})
}

// listSchedules prints every schedule of the namespace, all pages.
func (s *session) listSchedules(ctx context.Context) error {
	all := restapi.ScheduleList{Schedules: []restapi.Schedule{}}
	for {
		page, err := s.cl.ListSchedules(ctx, all.Continue)
		if err != nil {
			return err
		}
		all.Schedules, all.Continue = append(all.Schedules, page.Schedules...), page.Continue
		if all.Continue == "" {
			break
		}
	}
	return s.show(all, func(w io.Writer) {
		row(w, "NAME", "WORKFLOW", "SCHEDULE", "TIME ZONE", "PAUSED", "READY", "LAST", "NEXT", "RUNS")
		for _, sc := range all.Schedules {
			row(w, sc.Name, sc.WorkflowName, sc.Schedule, orDash(sc.TimeZone), strconv.FormatBool(sc.Paused), strconv.FormatBool(sc.Ready),
				stamp(sc.LastScheduleTime), stamp(sc.NextScheduleTime), strconv.FormatInt(sc.RunsStarted, 10))
		}
	})
}
