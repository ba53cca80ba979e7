package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// eventOptions are events send's own flags.
type eventOptions struct {
	eventType, correlation, payload string
}

// eventsCommand delivers events through the REST API.
func eventsCommand() command {
	return apiCommand(command{
		name:        "events",
		subcommands: []string{"send"},
		summary:     "Send an event to the runs on the cluster that wait for it.",
		usage: `events send --type TYPE [--correlation ID] [--payload JSON|@FILE] [-o table|json|yaml]

Delivers an event with POST /api/workflows/events: every run of the namespace that waits for
TYPE with correlation id ID (durable.WaitForEvent, ctx.wait_for_event) resumes with the
payload, now or when it reaches the wait within the event retention. Prints the event's id,
or the event with -o json|yaml.`,
	}, func(fs *flag.FlagSet, o *eventOptions) {
		fs.StringVar(&o.eventType, "type", "", "The event type, such as approval.decided (required).")
		fs.StringVar(&o.correlation, "correlation", "", "The correlation id the waiting runs wait for, such as req-42.")
		fs.StringVar(&o.payload, "payload", "", "The payload as JSON, or @PATH to read it from a file.")
	}, func(ctx context.Context, s *session, o *eventOptions, args []string) error {
		if len(args) != 1 || args[0] != "send" {
			return usageFailure("the one subcommand is send: events send --type TYPE --correlation ID [--payload JSON]")
		}
		if o.eventType == "" {
			return usageFailure("--type is required, such as --type approval.decided")
		}
		payload, err := jsonFlag("--payload", o.payload)
		if err != nil {
			return err
		}
		ev, err := s.cl.SendEvent(ctx, restapi.EventRequest{EventType: o.eventType, CorrelationID: o.correlation, Payload: payload})
		if err != nil {
			return err
		}
		return s.show(ev, func(w io.Writer) { fmt.Fprintln(w, ev.ID) })
	})
}
