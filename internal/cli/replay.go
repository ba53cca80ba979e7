package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/localrun"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// replayOptions are replay's flags.
type replayOptions struct {
	journal    string
	input      string
	run        string
	allRunning bool
	namespace  string
	allNS      bool
	kube       kubeFlags
	output     string
	pythonOptions
}

// replayCommand checks a new version of a workflow against recorded journals.
func replayCommand() command {
	c := command{
		name:       "replay",
		takesFiles: true,
		summary:    "Check a changed workflow against recorded journals: same calls, same order?",
		usage: `replay FILE (--journal JOURNAL | --run NAME | --all-running [-A]) [--namespace NS] [--input JSON] [-o json|yaml]

Replays recorded journals against the workflow of FILE (*.py or *.star, loaded with its
directory as the manager loads it; or the name of a Go workflow compiled into centaur) on the
manager's engine, without running anything: each durable call the handler makes is compared
with the journal's entry at the same position, answered with the recorded result, and the
replay stops where the journal ends or an entry is still in flight. Per run it prints whether
the new code makes the same calls in the same order, or the first divergence: the entry, the
call the journal recorded, the call the new code makes instead and its file:line.

--journal reads a file: the journal 'centaur run --journal' writes (status.journal's field
names; give the run's input with --input), or a WorkflowRun as 'kubectl get wfr NAME -o json'
(or -o yaml) prints it. --run reads the run NAME from the cluster, its sealed segments and
large results included; --all-running checks every unfinished run of FILE's workflow in the
namespace (-A: in every namespace) and prints the revision each is pinned to. The cluster is
the one of the kubeconfig (--kubeconfig, else $KUBECONFIG, else ~/.kube/config; --context to
pick one).

-o json and -o yaml print the verdicts as data instead of lines: per run its compatibility,
the entries matched, and the first divergence (entry, expected and got, site, advice).

Exit status: 0 when every run is compatible (or --all-running finds none), 1 when one
diverges or cannot be replayed, 2 on a usage error.`,
	}
	c.flags = func(fs *flag.FlagSet) any {
		o := &replayOptions{}
		fs.StringVar(&o.journal, "journal", "", "A recorded journal: 'centaur run --journal' output, or a WorkflowRun as JSON or YAML.")
		fs.StringVar(&o.input, "input", "", "The recorded run's JSON input, or @PATH, for a --journal list of entries; empty means {}.")
		fs.StringVar(&o.run, "run", "", "The WorkflowRun to read from the cluster.")
		fs.BoolVar(&o.allRunning, "all-running", false, "Check every unfinished run of FILE's workflow in the namespace.")
		fs.StringVar(&o.namespace, "namespace", "", "The runs' namespace; empty: the kubeconfig context's.")
		fs.StringVar(&o.namespace, "n", "", "Short for --namespace.")
		fs.BoolVar(&o.allNS, "all-namespaces", false, "With --all-running: the runs of every namespace.")
		fs.BoolVar(&o.allNS, "A", false, "Short for --all-namespaces.")
		o.kube.bind(fs, "With --run or --all-running: ")
		fs.StringVar(&o.output, "output", "table", "How to print the verdicts: table (a line per run), json or yaml.")
		fs.StringVar(&o.output, "o", "table", "Short for --output.")
		o.pythonOptions.bind(fs)
		return o
	}
	c.run = func(e *env, opts any, args []string) int {
		o := opts.(*replayOptions)
		if msg := o.check(args); msg != "" {
			return e.usageError(c, msg)
		}
		return e.replay(o, args[0])
	}
	return c
}

// check returns what is wrong with the command line, empty when nothing is.
func (o *replayOptions) check(args []string) string {
	sources := 0
	for _, set := range []bool{o.journal != "", o.run != "", o.allRunning} {
		if set {
			sources++
		}
	}
	switch {
	case len(args) != 1:
		return "name one workflow file (or Go workflow) to replay against"
	case sources != 1:
		return "give exactly one of --journal FILE, --run NAME and --all-running"
	case o.input != "" && o.journal == "":
		return "--input goes with --journal: a run read from the cluster has its own"
	case o.allNS && !o.allRunning:
		return "--all-namespaces goes with --all-running"
	case o.output != "table" && o.output != "json" && o.output != "yaml":
		return fmt.Sprintf("--output %q: want table, json or yaml", o.output)
	}
	return ""
}

// replayRun is one recorded run to replay.
type replayRun struct {
	// name says which run: its namespace/name, or the journal file's path.
	name string
	// revision is the revision the run is pinned to, empty when unknown or a Go workflow's.
	revision  string
	input     json.RawMessage
	startedAt time.Time
	journal   []engine.Entry
}

// replayTarget is the workflow replayed against.
type replayTarget struct {
	workflow durable.Workflow
	// dir is the directory of a workflow file, to show call sites as paths; empty for Go.
	dir      string
	revision string
	goSource bool
	close    func()
}

// replay runs the replay command.
func (e *env) replay(o *replayOptions, file string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t, err := loadReplayTarget(ctx, file, o.pythonOptions)
	if err != nil {
		return e.replayFailed(err)
	}
	defer t.close()
	runs, err := o.recordedRuns(ctx, t.workflow.Name())
	if err != nil {
		return e.replayFailed(err)
	}
	if len(runs) == 0 { // --all-running found none: no run in flight can be stranded
		fmt.Fprintf(e.stderr, "%s replay: no unfinished run of workflow %s: nothing to check\n", e.name, t.workflow.Name())
		return ExitOK
	}
	sum := replaySummary{Workflow: t.workflow.Name(), File: file, Revision: t.revision}
	for _, r := range runs {
		res, err := localrun.Replay(ctx, t.workflow, r.journal, localrun.ReplayOptions{
			Input: r.input, RunID: r.name, StartedAt: r.startedAt, GoSource: t.goSource})
		v := t.verdict(r, res, err)
		if v.Compatible {
			sum.Compatible++
		} else {
			sum.Diverged++
		}
		sum.Runs = append(sum.Runs, v)
	}
	if err := e.printReplay(o.output, sum); err != nil {
		return e.replayFailed(err)
	}
	fmt.Fprintf(e.stderr, "%s replay: %s against %s%s: %d compatible, %d diverged\n", e.name, replayCount(len(runs)), file, replayRevisionWords(t.revision), sum.Compatible, sum.Diverged)
	if sum.Diverged > 0 {
		return ExitFailed
	}
	return ExitOK
}

// replayCount is "1 run" or "N runs".
func replayCount(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("%d runs", n)
}

// replayFailed prints err as replay's failure and returns ExitFailed.
func (e *env) replayFailed(err error) int {
	fmt.Fprintf(e.stderr, "%s replay: %v\n", e.name, err)
	return ExitFailed
}

// replayRevisionWords is " (revision R)", or empty for a workflow without revisions.
func replayRevisionWords(rev string) string {
	if rev == "" {
		return ""
	}
	return " (revision " + rev + ")"
}

// replaySummary is what replay found, as -o json and -o yaml print it.
type replaySummary struct {
	// Workflow is the workflow's name, File the FILE argument, Revision the file's revision.
	Workflow string `json:"workflow"`
	File     string `json:"file"`
	Revision string `json:"revision,omitempty"`
	// Compatible and Diverged count the runs (a run that cannot be replayed counts as
	// diverged).
	Compatible int `json:"compatible"`
	Diverged   int `json:"diverged"`
	// Runs are the verdicts, one per run.
	Runs []replayVerdict `json:"runs"`
}

// replayVerdict is one run's verdict.
type replayVerdict struct {
	// Run is the run's namespace/name, or the journal file; Revision the revision it is
	// pinned to, and Current whether that is FILE's.
	Run      string `json:"run"`
	Revision string `json:"revision,omitempty"`
	Current  bool   `json:"current,omitempty"`
	// Compatible says whether the new code makes the journal's calls in its order.
	Compatible bool `json:"compatible"`
	// Entries counts the journal's entries, Matched those the new code made alike.
	Entries int `json:"entries"`
	Matched int `json:"matched"`
	// Stop says where a compatible replay stopped.
	Stop string `json:"stop,omitempty"`
	// Divergence is the first divergence of an incompatible one.
	Divergence *replayDivergence `json:"divergence,omitempty"`
	// Error says why the run could not be replayed.
	Error string `json:"error,omitempty"`
}

// replayDivergence is localrun.Divergence as JSON.
type replayDivergence struct {
	// Entry is the position of the entry the new code does not make (1 for the first).
	Entry int `json:"entry"`
	// Expected is the recorded call; Got the new code's, absent when it returned or failed
	// instead (End says which).
	Expected replayCall  `json:"expected"`
	Got      *replayCall `json:"got,omitempty"`
	End      string      `json:"end,omitempty"`
	// Site is where the new code makes the call; Message the whole story in one line.
	Site    string `json:"site,omitempty"`
	Message string `json:"message"`
	Advice  string `json:"advice"`
}

// replayCall is a primitive's kind and name.
type replayCall struct {
	Kind engine.Kind `json:"kind"`
	Name string      `json:"name"`
}

// verdict is r's verdict from its replay.
func (t *replayTarget) verdict(r replayRun, res *localrun.ReplayResult, err error) replayVerdict {
	v := replayVerdict{Run: r.name, Revision: r.revision, Current: r.revision != "" && r.revision == t.revision}
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Compatible, v.Entries, v.Matched, v.Stop = res.Compatible(), res.Entries, res.Matched, res.Stop
	if d := res.Divergence; d != nil {
		shown := *d
		shown.Site = t.sitePath(d.Site)
		v.Divergence = &replayDivergence{Entry: d.Index + 1, Expected: replayCall(d.Expected), End: d.End,
			Site: shown.Site, Message: shown.String(), Advice: d.Advice}
		if d.Got != nil {
			got := replayCall(*d.Got)
			v.Divergence.Got = &got
		}
	}
	return v
}

// printReplay prints the verdicts in the format --output asks for.
func (e *env) printReplay(format string, sum replaySummary) error {
	switch format {
	case "json":
		data, err := json.MarshalIndent(sum, "", "  ")
		if err != nil {
			return fmt.Errorf("encode the verdicts: %w", err)
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", data)
		return err
	case "yaml":
		data, err := yaml.Marshal(sum)
		if err != nil {
			return fmt.Errorf("encode the verdicts: %w", err)
		}
		_, err = e.stdout.Write(data)
		return err
	}
	for _, v := range sum.Runs {
		e.printVerdict(v)
	}
	return nil
}

// printVerdict prints one run's verdict as a line, and for a divergence the advice under it.
func (e *env) printVerdict(v replayVerdict) {
	head := v.Run
	if v.Revision != "" {
		pinned := "pinned to revision " + v.Revision
		if v.Current {
			pinned += ", this file's"
		}
		head += " (" + pinned + ")"
	}
	switch {
	case v.Error != "":
		fmt.Fprintf(e.stdout, "%s: cannot replay: %s\n", head, v.Error)
	case v.Compatible:
		fmt.Fprintf(e.stdout, "%s: compatible: %d of %d entries in the same order; %s\n", head, v.Matched, v.Entries, v.Stop)
	default:
		fmt.Fprintf(e.stdout, "%s: DIVERGES at %s\n  %s\n", head, v.Divergence.Message, v.Divergence.Advice)
	}
}

// sitePath shows a call site as a path the user can open: a Starlark site names the file
// relative to the workflow's directory ("order.star:5:19 in handler"), a Python one as loaded
// (the directory as given, then the file).
func (t *replayTarget) sitePath(site string) string {
	file, _, _ := strings.Cut(site, ":")
	if site == "" || t.dir == "" || filepath.IsAbs(file) {
		return site
	}
	if _, err := os.Stat(file); err == nil {
		return site
	}
	return filepath.Join(t.dir, site)
}

// loadReplayTarget loads the workflow to replay against: a workflow file with its directory, or a
// Go workflow compiled into centaur when file names one and is no file.
func loadReplayTarget(ctx context.Context, file string, py pythonOptions) (*replayTarget, error) {
	if _, err := os.Stat(file); err != nil && !strings.ContainsAny(file, "./") {
		for _, w := range workflows.All() {
			if w.Name() == file {
				return &replayTarget{workflow: w, goSource: true, close: func() {}}, nil
			}
		}
		return nil, fmt.Errorf("%s is neither a workflow file nor a Go workflow compiled into centaur (%s)", file, replayGoNames())
	}
	load := localrun.LoadOptions{Python: pyworker.Config{Python: py.python, PackageDir: packageDir(py.packageDir), Logger: logr.Discard()}}
	d, w, err := localrun.LoadFile(ctx, file, load)
	if err != nil {
		return nil, err
	}
	t := &replayTarget{workflow: w, dir: filepath.Dir(file), close: d.Close}
	if fw, ok := w.(interface{ Revision() string }); ok {
		t.revision = fw.Revision()
	}
	return t, nil
}

// replayGoNames lists the Go workflows compiled into centaur.
func replayGoNames() string {
	names := make([]string, 0, len(workflows.All()))
	for _, w := range workflows.All() {
		names = append(names, w.Name())
	}
	return strings.Join(names, ", ")
}

// recordedRuns reads the runs to replay, from the journal file or the cluster.
func (o *replayOptions) recordedRuns(ctx context.Context, workflow string) ([]replayRun, error) {
	if o.journal != "" {
		r, err := o.readJournalFile()
		if err != nil {
			return nil, err
		}
		return []replayRun{r}, nil
	}
	c, namespace, err := o.kube.connect(o.namespace)
	if err != nil {
		return nil, err
	}
	if o.run != "" {
		run := &workflowsv1alpha1.WorkflowRun{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: o.run}, run); err != nil {
			return nil, fmt.Errorf("read run %s/%s: %w", namespace, o.run, err)
		}
		r, err := replayRunFromCluster(ctx, c, run)
		if err != nil {
			return nil, err
		}
		return []replayRun{r}, nil
	}
	if o.allNS {
		namespace = ""
	}
	return replayRunsInFlight(ctx, c, namespace, workflow)
}

// replayRunsInFlight reads every unfinished run of workflow in namespace (every namespace when
// empty), with its journal.
func replayRunsInFlight(ctx context.Context, c client.Client, namespace, workflow string) ([]replayRun, error) {
	var list workflowsv1alpha1.WorkflowRunList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list the runs (namespace %q; empty is every namespace): %w", namespace, err)
	}
	var out []replayRun
	for i := range list.Items {
		run := &list.Items[i]
		if run.Spec.WorkflowName != workflow || replayFinalPhase(run.Status.Phase) {
			continue
		}
		r, err := replayRunFromCluster(ctx, c, run)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// replayFinalPhase reports whether a run's phase is final.
func replayFinalPhase(p workflowsv1alpha1.RunPhase) bool {
	return p == workflowsv1alpha1.PhaseSucceeded || p == workflowsv1alpha1.PhaseFailed || p == workflowsv1alpha1.PhaseCancelled
}

// replayRunFromCluster reads run's whole journal (sealed segments and large results included) with
// runstore, as the REST API reads it.
func replayRunFromCluster(ctx context.Context, c client.Reader, run *workflowsv1alpha1.WorkflowRun) (replayRun, error) {
	r := replayRunOf(run)
	r.name = run.Namespace + "/" + run.Name
	var entries []workflowsv1alpha1.JournalEntry
	for next := ""; ; {
		page, err := runstore.ReadJournal(ctx, c, run, runstore.ReadOptions{Limit: runstore.MaxPageEntries, Continue: next, Results: true})
		if err != nil {
			return replayRun{}, fmt.Errorf("read the journal of run %s: %w", r.name, err)
		}
		entries = append(entries, page.Entries...)
		if next = page.Continue; next == "" {
			break
		}
	}
	r.journal = runstore.FromAPIJournal(entries)
	return r, nil
}

// replayRunOf is what a WorkflowRun tells of itself: input, start and revision.
func replayRunOf(run *workflowsv1alpha1.WorkflowRun) replayRun {
	r := replayRun{revision: run.Status.WorkflowRevision}
	if run.Spec.Input != nil {
		r.input = run.Spec.Input.Raw
	}
	switch {
	case run.Status.StartTime != nil:
		r.startedAt = run.Status.StartTime.Time
	case run.Status.StartedAt != nil:
		r.startedAt = run.Status.StartedAt.Time
	}
	return r
}

// readJournalFile reads --journal: a list of entries with status.journal's field names, or a
// WorkflowRun as JSON or YAML.
func (o *replayOptions) readJournalFile() (replayRun, error) {
	data, err := os.ReadFile(o.journal)
	if err != nil {
		return replayRun{}, fmt.Errorf("read the journal: %w", err)
	}
	r, err := parseReplayJournal(data)
	if err != nil {
		return replayRun{}, fmt.Errorf("%s: %w", o.journal, err)
	}
	r.name = o.journal
	if o.input != "" {
		input, err := jsonArg(o.input)
		if err != nil {
			return replayRun{}, err
		}
		if !json.Valid(input) {
			return replayRun{}, fmt.Errorf("--input is not JSON: %s", input)
		}
		r.input = input
	}
	return r, nil
}

// parseReplayJournal decodes a journal file: a JSON list of entries, or a WorkflowRun (JSON or YAML)
// whose whole journal is in its status.
func parseReplayJournal(data []byte) (replayRun, error) {
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' {
		var entries []workflowsv1alpha1.JournalEntry
		if err := replayStrictJSON(trimmed, &entries); err != nil {
			return replayRun{}, fmt.Errorf("not a journal (a JSON list of status.journal entries): %w", err)
		}
		return replayRun{journal: runstore.FromAPIJournal(entries)}, nil
	}
	var run workflowsv1alpha1.WorkflowRun
	if err := yaml.Unmarshal(data, &run); err != nil {
		return replayRun{}, fmt.Errorf("neither a journal (a JSON list of entries) nor a WorkflowRun as JSON or YAML: %w", err)
	}
	if run.Kind != "WorkflowRun" {
		return replayRun{}, fmt.Errorf("holds a %q, not a WorkflowRun or a journal: give 'kubectl get wfr NAME -o json' or 'centaur run --journal' output", run.Kind)
	}
	if h := run.Status.History; h != nil && h.SealedEntries > 0 {
		return replayRun{}, fmt.Errorf("run %s has %d journal entries sealed into WorkflowRunSegments, which its object does not hold: replay it from the cluster with --run %s --namespace %s", run.Name, h.SealedEntries, run.Name, run.Namespace)
	}
	r := replayRunOf(&run)
	r.journal = runstore.FromAPIJournal(run.Status.Journal)
	for _, entry := range r.journal {
		if entry.Payload != nil && len(entry.Result) == 0 {
			return replayRun{}, fmt.Errorf("the result of %q of run %s is stored out of line (WorkflowRunPayload %s), which its object does not hold: replay it from the cluster with --run %s --namespace %s", entry.Name, run.Name, entry.Payload.Name, run.Name, run.Namespace)
		}
	}
	return r, nil
}

// replayStrictJSON decodes data into v, refusing fields v does not have.
func replayStrictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON value")
	}
	return nil
}
