// Package cli is centaur, the workflow author's command line, also installed as the kubectl
// plugin kubectl-centaur: cmd/centaur and cmd/kubectl-centaur are mains of a few lines that call
// Main. It loads workflow files with the manager's own loaders (package catalog, Starlark
// through workflowfile, Python through pyworkflow and its CPython workers), so that a file
// that passes `centaur lint` loads in the manager, and it drives runs on a cluster through the
// REST API (or, with only a kubeconfig, on the objects themselves).
//
// Commands:
//
//	centaur lint [--format text|github] [PATH...]   load workflow files and report what does not load
//	centaur run [--input JSON] [--event JSON]... FILE   run a workflow file to its end locally, time skipped
//	centaur test [--pytest] [PATH...]               run the tests beside workflow files (*_test.star, test_*.py)
//	centaur replay FILE (--journal F | --run NAME | --all-running)   check a changed workflow against recorded journals
//	centaur start WORKFLOW [--input JSON] [--wait]  start a run on the cluster, wait for its output
//	centaur runs list|get|watch|cancel              list, show, follow or cancel runs
//	centaur journal RUN                             print a run's journal as a timeline
//	centaur events send --type TYPE ...             deliver an event to waiting runs
//	centaur schedules list|trigger|pause|resume     drive the namespace's schedules
//	centaur workflows                               list the workflows the cluster can run
//	centaur python-path                             print a directory holding the api package, for PYTHONPATH
//	centaur completion bash|zsh|fish                print a shell's completion script
//	centaur version                                 print the version
//	centaur help [COMMAND]                          print the usage
//
// Exit status: 0 when all is well, 1 when a command found a problem or failed (a lint error, a
// failed test or run, a replay divergence, an API error), 2 on a usage error (an unknown
// command or flag).
package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/centaur-dev/workflow-operator/python"
)

// Exit statuses of Main.
const (
	// ExitOK: the command did its job and found nothing wrong.
	ExitOK = 0
	// ExitFailed: lint found an error, or the command could not do its job.
	ExitFailed = 1
	// ExitUsage: the command line is wrong (unknown command or flag, bad flag value).
	ExitUsage = 2
)

// Version is the CLI's version; empty takes the main module's version from the build
// information. Set it at link time with -ldflags "-X
// github.com/centaur-dev/workflow-operator/internal/cli.Version=v1.2.3".
var Version string

// command is one verb of the CLI.
type command struct {
	name    string
	summary string
	// usage is the synopsis and description printed by `help NAME` and `NAME --help`.
	usage string
	// flags binds the command's flags on fs; nil for a command without flags.
	flags func(fs *flag.FlagSet) any
	// run runs the command with its parsed flags (what flags returned) and its arguments, and
	// returns the exit status.
	run func(e *env, opts any, args []string) int
	// subcommands are the verbs the command's first argument takes (runs list, runs get, ...),
	// offered by completion.
	subcommands []string
	// takesFiles tells completion that the command's arguments are files or directories.
	takesFiles bool
	// hidden keeps the command out of the usage and out of completion (__complete).
	hidden bool
	// rawArgs hands run every argument unparsed, flags included: __complete's arguments are
	// the words of another command line.
	rawArgs bool
}

// env is what a command writes to, so that tests can run Main in process.
type env struct {
	name           string // the program's name as the user typed it: centaur or kubectl centaur
	stdout, stderr io.Writer
	// stdin is where run --prompt reads a person's answers: the process's standard input.
	stdin io.Reader
}

// commands lists the verbs in the order help shows them.
func commands() []command {
	return []command{lintCommand(), runCommand(), testCommand(), replayCommand(), startCommand(), runsCommand(), journalCommand(), eventsCommand(), schedulesCommand(), workflowsCommand(), pythonPathCommand(), completionCommand(), versionCommand(), helpCommand(), completeHiddenCommand(), kubectlCompleteHiddenCommand()}
}

// Main runs the CLI with args (without the program's name) and returns the exit status. name
// is how usage lines call the program ("centaur", or "kubectl centaur" for the plugin).
func Main(name string, args []string, stdout, stderr io.Writer) int {
	e := &env{name: name, stdout: stdout, stderr: stderr, stdin: os.Stdin}
	if len(args) == 0 {
		e.usage(stderr)
		return ExitUsage
	}
	verb := args[0]
	switch verb {
	case "-h", "-help", "--help":
		e.usage(stdout)
		return ExitOK
	case "--version":
		verb = "version"
	}
	c, ok := lookup(verb)
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", name, verb)
		e.usage(stderr)
		return ExitUsage
	}
	return e.run(c, args[1:])
}

// lookup finds the command called name.
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage prints the list of commands.
func (e *env) usage(w io.Writer) {
	fmt.Fprintf(w, "%s: author, test and check Centaur workflow files, and drive their runs on a cluster.\n\nUsage:\n  %s COMMAND [FLAGS] [ARGS]\n\nCommands:\n", e.name, e.name)
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun '%s help COMMAND' or '%s COMMAND --help' for a command's flags.\n", e.name, e.name)
}

// run parses c's flags from args and runs it: --help prints c's usage to stdout (exit 0), a
// flag error prints the error and the usage to stderr (exit 2).
func (e *env) run(c command, args []string) int {
	if c.rawArgs {
		return c.run(e, nil, args)
	}
	fs := flag.NewFlagSet(e.name+" "+c.name, flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.Usage = func() {
		fmt.Fprintf(&out, "Usage: %s %s\n", e.name, strings.TrimSpace(c.usage))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(&out, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	var opts any
	if c.flags != nil {
		opts = c.flags(fs)
	}
	positional, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		e.stdout.Write(out.Bytes())
		return ExitOK
	case err != nil:
		e.stderr.Write(out.Bytes())
		return ExitUsage
	}
	return c.run(e, opts, positional)
}

// parseInterspersed parses args with fs, flags before and after the arguments alike
// (`centaur run FILE --input JSON`), and returns the arguments; everything after "--" is an
// argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		if consumed := len(args) - fs.NArg(); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, fs.Args()...), nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// usageError prints msg and c's usage to stderr and returns ExitUsage.
func (e *env) usageError(c command, msg string) int {
	fmt.Fprintf(e.stderr, "%s %s: %s\n\nRun '%s help %s' for its usage.\n", e.name, c.name, msg, e.name, c.name)
	return ExitUsage
}

// versionCommand prints the version.
func versionCommand() command {
	c := command{
		name:    "version",
		summary: "Print the version of centaur and of the Python package it carries.",
		usage: `version

Prints the CLI's version, the Go version it was built with, and the digest of the Python
package (api, centaur_worker) it carries: the name of the directory python-path extracts.`,
	}
	c.run = func(e *env, _ any, args []string) int {
		if len(args) > 0 {
			return e.usageError(c, fmt.Sprintf("unexpected argument %q", args[0]))
		}
		fmt.Fprintf(e.stdout, "centaur %s (%s, %s/%s), python package %s\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH, python.Digest()[:12])
		return ExitOK
	}
	return c
}

// version is Version, else the main module's version from the build information.
func version() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// helpCommand prints the list of commands, or one command's usage.
func helpCommand() command {
	c := command{
		name:    "help",
		summary: "Print this list, or a command's usage.",
		usage:   "help [COMMAND]",
	}
	c.run = func(e *env, _ any, args []string) int {
		switch {
		case len(args) == 0:
			e.usage(e.stdout)
			return ExitOK
		case len(args) > 1:
			return e.usageError(c, "takes one command at most")
		}
		if args[0] == c.name {
			fmt.Fprintf(e.stdout, "Usage: %s %s\n", e.name, c.usage)
			return ExitOK
		}
		target, ok := lookup(args[0])
		if !ok {
			fmt.Fprintf(e.stderr, "%s help: unknown command %q\n\n", e.name, args[0])
			e.usage(e.stderr)
			return ExitUsage
		}
		return e.run(target, []string{"--help"})
	}
	return c
}
