package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/go-logr/logr"

	"github.com/centaur-dev/workflow-operator/localrun"
	"github.com/centaur-dev/workflow-operator/pyworker"
)

// runOptions are run's flags.
type runOptions struct {
	input      string
	events     []localrun.Event
	agentReply string
	hasReply   bool
	realTime   bool
	prompt     bool
	journal    string
	pythonOptions
}

// runCommand runs a workflow file to its end without a cluster.
func runCommand() command {
	return command{
		name:       "run",
		takesFiles: true,
		summary:    "Run a workflow file to its end locally, on an in-memory journal, with time skipped.",
		usage: `run [--input JSON] [--event JSON]... [--agent-reply TEXT] [--prompt] [--real-time] [--journal FILE] FILE

Runs the workflow of FILE (*.py or *.star) to its end on the manager's own engine, with an
in-memory journal instead of a cluster, and prints each primitive as it happens: step results,
retries, sleeps, waits for events, child runs and agent turns. Sleeps and retry backoffs are
skipped unless --real-time. Child runs are run in process, from FILE's directory.

--input and --event take JSON, or @PATH to read it from a file. An event is what the REST API's
POST /api/workflows/events takes: {"event_type": ..., "correlation_id": ..., "payload": ...};
repeat --event for several, oldest first. Agent turns are answered with --agent-reply.
With --prompt, a wait that no --event answers asks for the event's payload on standard input
(a line of JSON; an empty line for none; end of input to stop there), and an agent turn
without --agent-reply shows its prompt and reads the reply (a line).

Exit status: 0 when the run succeeded, 1 when it failed or cannot go on locally (a wait no
given event answers, an agent turn without --agent-reply), 2 on a usage error.`,
		flags: func(fs *flag.FlagSet) any {
			o := &runOptions{}
			fs.StringVar(&o.input, "input", "", "The run's JSON input, or @PATH; empty means {}.")
			fs.Func("event", "An event the run may receive, as JSON or @PATH (repeatable).", func(v string) error {
				data, err := jsonArg(v)
				if err != nil {
					return err
				}
				ev, err := localrun.ParseEvent(data)
				if err != nil {
					return err
				}
				o.events = append(o.events, ev)
				return nil
			})
			fs.Func("agent-reply", "The reply text of every agent turn the run asks for.", func(v string) error {
				o.agentReply, o.hasReply = v, true
				return nil
			})
			fs.BoolVar(&o.realTime, "real-time", false, "Wait out sleeps and backoffs instead of skipping them.")
			fs.BoolVar(&o.prompt, "prompt", false, "Ask on standard input for the events no --event gives, and for agent replies without --agent-reply.")
			fs.StringVar(&o.journal, "journal", "", "Write the run's journal here, as JSON with status.journal's field names.")
			o.pythonOptions.bind(fs)
			return o
		},
		run: func(e *env, opts any, args []string) int {
			return e.runFile(opts.(*runOptions), args)
		},
	}
}

// jsonArg reads a JSON argument: the value itself, or the file @PATH names.
func jsonArg(v string) ([]byte, error) {
	path, ok := strings.CutPrefix(v, "@")
	if !ok {
		return []byte(v), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// runFile runs the run command.
func (e *env) runFile(o *runOptions, args []string) int {
	c, _ := lookup("run")
	if len(args) != 1 {
		return e.usageError(c, "name one workflow file to run")
	}
	opts := localrun.Options{Events: o.events, RealTime: o.realTime, Out: e.stdout}
	if o.input != "" {
		input, err := jsonArg(o.input)
		if err != nil {
			return e.usageError(c, err.Error())
		}
		if !json.Valid(input) {
			return e.usageError(c, fmt.Sprintf("--input is not JSON: %s", input))
		}
		opts.Input = input
	}
	if o.prompt {
		p := &prompter{in: bufio.NewReader(e.stdin), out: e.stderr}
		opts.AskEvent, opts.AgentReply = p.event, p.reply
	}
	if o.hasReply {
		opts.AgentReply = localrun.FixedReply(o.agentReply)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	load := localrun.LoadOptions{Python: pyworker.Config{Python: o.python, PackageDir: packageDir(o.packageDir), Logger: logr.Discard()}}
	res, err := localrun.RunFile(ctx, args[0], opts, load)
	if o.journal != "" && res != nil {
		// A run that cannot go on (a wait no event answers) has a journal too: the one of a
		// run in flight, which centaur replay checks new code against.
		if err := writeJournal(o.journal, res); err != nil {
			fmt.Fprintf(e.stderr, "%s run: %v\n", e.name, err)
			return ExitFailed
		}
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "%s run: %v\n", e.name, err)
		return ExitFailed
	}
	if !res.Succeeded() {
		return ExitFailed
	}
	return ExitOK
}

// writeJournal writes res's journal to path.
func writeJournal(path string, res *localrun.Result) error {
	data, err := res.JournalJSON()
	if err != nil {
		return fmt.Errorf("encode the journal: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the journal: %w", err)
	}
	return nil
}

// prompter asks a person for what a local run waits for: it writes the question to out and
// reads the answer from in, a line at a time.
type prompter struct {
	in  *bufio.Reader
	out io.Writer
}

// event asks for the payload of the event wait waits for: a line of JSON (asked again until
// it parses), an empty line for no payload, or the end of input to give none.
func (p *prompter) event(wait localrun.EventWait) (json.RawMessage, bool, error) {
	for {
		fmt.Fprintf(p.out, "run %s waits for event %s (correlation %q): payload as JSON (empty line: none; end of input: stop)> ", wait.Run, wait.EventType, wait.CorrelationID)
		line, ok, err := p.line()
		switch {
		case err != nil || !ok:
			return nil, false, err
		case line == "":
			return nil, true, nil
		case json.Valid([]byte(line)):
			return json.RawMessage(line), true, nil
		}
		fmt.Fprintf(p.out, "not JSON: %s\n", line)
	}
}

// reply shows an agent turn's prompt and reads its reply; the end of input answers none,
// which ends the run as a turn without --agent-reply does.
func (p *prompter) reply(turn localrun.AgentTurn) (string, error) {
	fmt.Fprintf(p.out, "run %s asks agent turn %s: %s\nreply> ", turn.Run, turn.Name, turn.Request.Prompt)
	line, ok, err := p.line()
	if err != nil {
		return "", err
	}
	if !ok {
		return "", &localrun.MissingReplyError{Run: turn.Run, Turn: turn.Name}
	}
	return line, nil
}

// line reads a line without its end; ok is false at the end of input.
func (p *prompter) line() (string, bool, error) {
	line, err := p.in.ReadString('\n')
	switch {
	case errors.Is(err, io.EOF) && line == "":
		fmt.Fprintln(p.out)
		return "", false, nil
	case err != nil && !errors.Is(err, io.EOF):
		return "", false, fmt.Errorf("read standard input: %w", err)
	}
	return strings.TrimSpace(line), true, nil
}
