package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
	"github.com/centaur-dev/workflow-operator/runstore"
)

// stats are the crash test's counts.
type stats struct {
	Seed int64
	// Runs is how many runs were created; Succeeded how many ended Succeeded.
	Runs, Succeeded int
	// Steps is how many steps the journals recorded as completed.
	Steps int
	// Executions is how many step executions the ledger holds; PlannedFailures how many of
	// them failed on purpose (and were retried).
	Executions, PlannedFailures int
	// ManagerKills, EtcdKills and LeaderKills count the kills.
	ManagerKills, EtcdKills, LeaderKills int
	// PythonRuns counts the runs of the ledger workflow's Python twin. WorkerKills counts the
	// Python workers SIGKILLed (WorkerKillsSkipped the moments no manager had a worker to
	// kill), WorkerExited the step attempts that failed because their worker was killed (or
	// its manager stopped) and were retried.
	PythonRuns, WorkerKills, WorkerKillsSkipped, WorkerExited int
	// ReExecuted counts executions that ran again because they were in flight at a kill (of
	// them, AtEtcdKill at the etcd kill); MaxPerKill is the most any one kill caused.
	ReExecuted, AtEtcdKill, MaxPerKill int
	// Long counts the long runs; Sealed the runs whose journal was sealed into segments.
	Long, Sealed int
	// ShardKills, ShardStops and ShardAdds count the sharded phase's events; LeaseLosses the
	// sharded replicas that exited because they could not renew a lease in time.
	ShardKills, ShardStops, ShardAdds, LeaseLosses int
	// Resumed is how long after each kill of a sharded replica a step it had in flight ran
	// again on another replica, when no other replica was killed before it did or before the
	// bound (the lease plus resumeSlack) passed (judged against that bound); Cascaded the same
	// for steps whose run may have been orphaned twice, because another kill came within the
	// bound (reported only; the sharded phase leaves the bound free after each kill, so there
	// are none unless a replica lost its lease). LeaseDuration is the replicas' lease.
	Resumed, Cascaded []time.Duration
	LeaseDuration     time.Duration
	Elapsed           time.Duration
}

// String prints the counts.
func (s *stats) String() string {
	out := fmt.Sprintf("chaos: seed %d, %s: runs %d (succeeded %d; %d long, %d with sealed segments; %d in Python), steps %d, step executions %d (planned failures %d), "+
		"kills: manager %d, etcd %d, leader %d, Python worker %d (%d moments without a worker to kill); re-executed in-flight steps %d (%d at the etcd kill; at most %d per kill); "+
		"step attempts failed by a killed worker and retried %d",
		s.Seed, s.Elapsed, s.Runs, s.Succeeded, s.Long, s.Sealed, s.PythonRuns, s.Steps, s.Executions, s.PlannedFailures,
		s.ManagerKills, s.EtcdKills, s.LeaderKills, s.WorkerKills, s.WorkerKillsSkipped, s.ReExecuted, s.AtEtcdKill, s.MaxPerKill, s.WorkerExited)
	if s.ShardAdds > 0 {
		out += fmt.Sprintf("; sharded replicas: %d started, %d SIGKILLed, %d stopped, %d exited on a lost lease", s.ShardAdds, s.ShardKills, s.ShardStops, s.LeaseLosses)
		if len(s.Resumed) > 0 {
			out += fmt.Sprintf("; steps in flight at a kill ran again elsewhere after p50 %s, p99 %s, max %s (%d steps; lease %s)",
				s.resumedAt(0.50), s.resumedAt(0.99), s.resumedAt(1), len(s.Resumed), s.LeaseDuration)
		}
		if len(s.Cascaded) > 0 {
			out += fmt.Sprintf("; %d more after another replica's kill in between, at most %s", len(s.Cascaded), slices.Max(s.Cascaded).Round(time.Millisecond))
		}
	}
	return out
}

// resumedAt is the q-quantile (nearest rank) of Resumed, in milliseconds.
func (s *stats) resumedAt(q float64) time.Duration {
	sorted := slices.Sorted(slices.Values(s.Resumed))
	rank := max(int(math.Ceil(q*float64(len(sorted))))-1, 0)
	return sorted[min(rank, len(sorted)-1)].Round(time.Millisecond)
}

// judge waits for every run to reach its final phase, then checks the journals and the ledger.
func (c *chaos) judge(ctx context.Context) error {
	runs, err := c.awaitFinal(ctx)
	if err != nil {
		return err
	}
	for _, m := range c.managers {
		if m.shard != "" && m.Exited() && !c.noteLeaseLost(m) {
			if _, known := c.killed[m.PID()]; !known {
				return fmt.Errorf("replica %s (pid %d) exited by itself (see %s)", m.shard, m.PID(), m.LogFile)
			}
		}
	}
	lines, err := testflows.ReadLedger(c.ledger)
	if err != nil {
		return err
	}
	journaled, err := c.readJournals(ctx, runs)
	if err != nil {
		return err
	}
	v := &verifier{cfg: c.cfg, killed: c.killed, killedAt: c.killedAt, killedWorkers: c.killedWorkers, outages: c.outages, stats: &c.stats, perKill: map[string]int{}}
	v.checkRuns(c.created, journaled)
	v.checkLedger(journaled, lines)
	v.checkResumes()
	v.checkLogs(c.managers)
	return v.err()
}

// journaledRun is a finished run with its input and its whole journal.
type journaledRun struct {
	run     *workflowsv1alpha1.WorkflowRun
	input   testflows.LedgerInput
	entries []workflowsv1alpha1.JournalEntry
}

// readJournals reads each run's whole journal (sealed segments, then status), as the REST API
// does, and decodes its input.
func (c *chaos) readJournals(ctx context.Context, runs map[string]*workflowsv1alpha1.WorkflowRun) (map[string]*journaledRun, error) {
	out := make(map[string]*journaledRun, len(runs))
	for name, run := range runs {
		j := &journaledRun{run: run}
		if run.Spec.Input == nil || json.Unmarshal(run.Spec.Input.Raw, &j.input) != nil {
			return nil, fmt.Errorf("run %s has no ledger input", name)
		}
		opts := runstore.ReadOptions{Limit: runstore.MaxPageEntries}
		for {
			page, err := runstore.ReadJournal(ctx, c.client, run, opts)
			if err != nil {
				return nil, fmt.Errorf("read the journal of run %s: %w", name, err)
			}
			j.entries = append(j.entries, page.Entries...)
			if opts.Continue = page.Continue; opts.Continue == "" {
				break
			}
		}
		out[name] = j
	}
	return out, nil
}

// awaitFinal polls until every created run is final, and returns the runs by name.
func (c *chaos) awaitFinal(ctx context.Context) (map[string]*workflowsv1alpha1.WorkflowRun, error) {
	deadline := time.Now().Add(c.cfg.timeout)
	for {
		var list workflowsv1alpha1.WorkflowRunList
		err := c.client.List(ctx, &list, client.InNamespace(runNamespace))
		if err == nil {
			runs := map[string]*workflowsv1alpha1.WorkflowRun{}
			pending := 0
			for i := range list.Items {
				runs[list.Items[i].Name] = &list.Items[i]
				if !list.Items[i].Status.Phase.IsFinal() {
					pending++
				}
			}
			if pending == 0 && len(runs) >= len(c.created) {
				return runs, nil
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%d runs are not final %s after the last kill (and %d of %d exist)", pending, c.cfg.timeout, len(runs), len(c.created))
			}
		}
		if err := testcluster.Sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// verifier collects the violations of the crash test's guarantees.
type verifier struct {
	cfg      config
	killed   map[int]string
	killedAt map[int]time.Time
	// killedWorkers are the Python workers SIGKILLed, by pid, with when.
	killedWorkers map[int]time.Time
	outages       []window
	stats         *stats
	perKill       map[string]int
	problems      []string
}

// maxProblems caps how many violations are listed.
const maxProblems = 25

// fail records a violation.
func (v *verifier) fail(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

// err returns every violation, or nil.
func (v *verifier) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	shown := v.problems[:min(len(v.problems), maxProblems)]
	more := ""
	if len(v.problems) > maxProblems {
		more = fmt.Sprintf("\n  ... and %d more", len(v.problems)-maxProblems)
	}
	return errors.New(fmt.Sprintf("%d violations:\n  ", len(v.problems)) + strings.Join(shown, "\n  ") + more)
}

// checkRuns checks that no run was lost and that every run succeeded with a journal that
// records each primitive exactly once.
func (v *verifier) checkRuns(created []string, runs map[string]*journaledRun) {
	v.stats.Runs = len(created)
	for _, name := range created {
		j, ok := runs[name]
		if !ok {
			v.fail("run %s was lost: it no longer exists", name)
			continue
		}
		if j.run.Status.Phase != workflowsv1alpha1.PhaseSucceeded {
			v.fail("run %s ended %s: %+v", name, j.run.Status.Phase, j.run.Status.Error)
			continue
		}
		v.stats.Succeeded++
		if h := j.run.Status.History; h != nil && h.Segments > 0 {
			v.stats.Sealed++
		}
		v.checkOutput(j)
		v.checkJournal(j)
	}
	if len(runs) != len(created) {
		v.fail("%d runs exist but %d were created", len(runs), len(created))
	}
}

// checkOutput checks the run's output.
func (v *verifier) checkOutput(j *journaledRun) {
	var out testflows.LedgerOutput
	run := j.run
	if run.Status.Output == nil || json.Unmarshal(run.Status.Output.Raw, &out) != nil || out.Steps != j.input.Steps {
		v.fail("run %s has output %v, want %d steps", run.Name, run.Status.Output, j.input.Steps)
	}
}

// checkJournal checks that every step and sleep is recorded once, completed, with the attempts
// the run's input asks for. A Python run's step may have taken more attempts, each failed by a
// killed worker: checkAttempts accounts for those.
func (v *verifier) checkJournal(j *journaledRun) {
	in, name := j.input, j.run.Name
	seen := map[string]int{}
	for _, e := range j.entries {
		seen[e.Name]++
		if seen[e.Name] == 2 {
			v.fail("run %s records %q twice in its journal", name, e.Name)
		}
	}
	want := 0
	for i := range in.Steps {
		if in.Sleeps(i) {
			want++
			v.expectEntry(j, fmt.Sprintf("nap-%04d", i), workflowsv1alpha1.EntryKindSleep, 0)
		}
		attempts := 1
		switch {
		case j.python():
			attempts = 0 // any: see checkAttempts
		case in.Fails(i):
			attempts = 2
		}
		want++
		v.expectEntry(j, testflows.StepName(i), workflowsv1alpha1.EntryKindStep, attempts)
	}
	if len(j.entries) != want {
		v.fail("run %s has %d journal entries, want %d", name, len(j.entries), want)
	}
}

// expectEntry checks one journal entry: completed, of kind, with attempts (0: any).
func (v *verifier) expectEntry(j *journaledRun, name string, kind workflowsv1alpha1.EntryKind, attempts int) {
	e, ok := j.entry(name)
	switch {
	case !ok:
		v.fail("run %s has no journal entry %q", j.run.Name, name)
	case e.Kind != kind || e.State != workflowsv1alpha1.EntryStateCompleted:
		v.fail("run %s records %q as %s %s, want a completed %s", j.run.Name, name, e.Kind, e.State, kind)
	case attempts > 0 && int(e.Attempts) != attempts:
		v.fail("run %s records %q after %d attempts, want %d", j.run.Name, name, e.Attempts, attempts)
	case kind == workflowsv1alpha1.EntryKindStep:
		v.stats.Steps++
	}
}

// python reports whether the run is one of the ledger workflow's Python twin.
func (j *journaledRun) python() bool { return j.run.Spec.WorkflowName == testflows.LedgerPyName }

// entry returns the journal entry named name.
func (j *journaledRun) entry(name string) (workflowsv1alpha1.JournalEntry, bool) {
	for _, e := range j.entries {
		if e.Name == name {
			return e, true
		}
	}
	return workflowsv1alpha1.JournalEntry{}, false
}

// execKey identifies one attempt of one step of one run.
type execKey struct {
	run, step string
	attempt   int
}

// checkLedger checks the ledger against the journals: the execution a journal recorded is the
// last one of its step (no completed step ran again), every other repeated execution of an
// attempt was in flight at a kill, and every attempt before the recorded one failed for a
// reason: planned, or its worker was killed.
func (v *verifier) checkLedger(runs map[string]*journaledRun, lines []testflows.LedgerLine) {
	v.stats.Executions = len(lines)
	byAttempt := map[execKey][]testflows.LedgerLine{}
	byStep := map[[2]string][]testflows.LedgerLine{}
	for _, l := range lines {
		if !l.OK {
			v.stats.PlannedFailures++
		}
		k := execKey{l.Run, l.Step, l.Attempt}
		byAttempt[k] = append(byAttempt[k], l)
		byStep[[2]string{l.Run, l.Step}] = append(byStep[[2]string{l.Run, l.Step}], l)
	}
	for k, group := range byAttempt {
		for i, superseded := range group[:len(group)-1] {
			v.reExecuted(k, superseded, group[i+1])
		}
	}
	for key, of := range byStep {
		if v.checkRecorded(runs, key[0], key[1], of[len(of)-1]) {
			v.checkAttempts(runs[runName(key[0])], key[1], of)
		}
	}
}

// checkAttempts checks that every attempt of step before the one its journal recorded failed
// for a reason: the first attempt of a step the input makes fail, or, in a Python run, an
// attempt whose worker was SIGKILLed (or whose manager was killed or stopped, which kills its
// workers) while it ran. lines are the step's executions, in the ledger's order.
func (v *verifier) checkAttempts(j *journaledRun, step string, lines []testflows.LedgerLine) {
	e, _ := j.entry(step)
	planned := j.input.Fails(stepIndex(step))
	if planned && e.Attempts < 2 {
		v.fail("run %s step %s was recorded after %d attempt(s), but its first attempt fails on purpose", j.run.Name, step, e.Attempts)
	}
	for a := 1; a < int(e.Attempts); a++ {
		switch {
		case a == 1 && planned:
		case j.python() && v.workerExited(lines, a):
			v.stats.WorkerExited++
		default:
			v.fail("run %s step %s was recorded after %d attempts, but nothing failed its attempt %d (no planned failure, no killed worker)",
				j.run.Name, step, e.Attempts, a)
		}
	}
}

// workerExited reports whether attempt a of a Python step (whose executions are lines) can
// have failed because its worker died: its last execution ran in a worker the test killed, or
// in a manager that was killed or stopped; or, with no execution in the ledger (the worker died
// before the function wrote its line), a worker was killed between the step's execution before
// it and the one after it.
func (v *verifier) workerExited(lines []testflows.LedgerLine, a int) bool {
	var of []testflows.LedgerLine
	var before, after time.Time
	for _, l := range lines {
		switch {
		case l.Attempt == a:
			of = append(of, l)
		case l.Attempt < a && l.At.After(before):
			before = l.At
		case l.Attempt > a && (after.IsZero() || l.At.Before(after)):
			after = l.At
		}
	}
	if len(of) > 0 {
		last := of[len(of)-1]
		_, workerKilled := v.killedWorkers[last.Worker]
		_, managerGone := v.killed[last.PID]
		return last.Worker != 0 && (workerKilled || managerGone)
	}
	for _, at := range v.killedWorkers {
		if at.After(before) && at.Before(after) {
			return true
		}
	}
	return false
}

// stepIndex is the index of step "s-NNNN".
func stepIndex(step string) int {
	var i int
	_, _ = fmt.Sscanf(step, "s-%d", &i)
	return i
}

// killedBetween reports whether a manager was killed after from and before to: the run of a
// step in flight at the kill at from may then have been placed on that one and orphaned again.
func (v *verifier) killedBetween(from, to time.Time) bool {
	for _, at := range v.killedAt {
		if at.After(from) && at.Before(to) {
			return true
		}
	}
	return false
}

// minTime is the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// reExecuted accounts for an execution that ran again (as next): either its manager was killed
// and another one ran it again, or its write failed while etcd was down.
func (v *verifier) reExecuted(k execKey, l, next testflows.LedgerLine) {
	v.stats.ReExecuted++
	// An outage explains a re-execution first, even when the manager that ran it was killed
	// afterwards: while etcd is down a step's result cannot be written, so the step stays in
	// flight, and a manager whose writes fail frees its slots and runs other runs' steps, which
	// can leave more steps unrecorded than its parallelism by the time it is killed.
	cause := ""
	for _, o := range v.outages {
		if !l.At.Before(o.from) && l.At.Before(o.to) {
			cause = "etcd kill"
		}
	}
	if why, ok := v.killed[l.PID]; cause == "" && ok && next.PID != l.PID {
		cause = fmt.Sprintf("%s pid %d", why, l.PID)
	}
	if cause == "" {
		v.fail("%s step %s attempt %d ran again although no kill interrupted it (execution %s at %s, again as %s)",
			k.run, k.step, k.attempt, l.Exec, l.At.Format(time.RFC3339Nano), next.Exec)
		return
	}
	v.perKill[cause]++
	if at, ok := v.killedAt[l.PID]; ok && strings.HasPrefix(cause, "shard ") {
		// Only a kill within the bound excuses a late resume: a step still not resumed when
		// the bound passed missed it, whatever came after.
		if v.killedBetween(at, minTime(next.At, at.Add(v.cfg.leaseDuration+resumeSlack))) {
			v.stats.Cascaded = append(v.stats.Cascaded, next.At.Sub(at))
		} else {
			v.stats.Resumed = append(v.stats.Resumed, next.At.Sub(at))
		}
	}
	if n := v.perKill[cause]; n > v.stats.MaxPerKill {
		v.stats.MaxPerKill = n
	}
	if cause == "etcd kill" {
		// While etcd is down a step's result cannot be recorded, so the step is still in
		// flight: it may run again once per failed write, never after its record.
		v.stats.AtEtcdKill++
		return
	}
	v.perKill[cause+" "+k.run]++
	if v.perKill[cause+" "+k.run] > 1 {
		v.fail("%s: run %s had more than one step in flight at the same kill", cause, k.run)
	}
	if v.perKill[cause] > v.cfg.parallelism {
		v.fail("%s: %d steps re-executed, more than the %d that can be in flight", cause, v.perKill[cause], v.cfg.parallelism)
	}
}

// checkRecorded checks that the journal of run recorded exactly the last execution of step,
// and reports whether it did.
func (v *verifier) checkRecorded(runs map[string]*journaledRun, name, step string, last testflows.LedgerLine) bool {
	run, ok := runs[runName(name)]
	if !ok {
		v.fail("the ledger has executions of %s, a run that does not exist", name)
		return false
	}
	e, ok := run.entry(step)
	if !ok || e.Result == nil {
		return false // reported by checkJournal
	}
	var recorded string
	if err := json.Unmarshal(e.Result.Raw, &recorded); err != nil {
		v.fail("run %s step %s recorded %s, not an execution id", name, step, e.Result.Raw)
		return false
	}
	if recorded != last.Exec || int(e.Attempts) != last.Attempt {
		v.fail("run %s step %s recorded execution %s (attempt %d), but execution %s (attempt %d) ran after it: a completed step ran again",
			name, step, recorded, e.Attempts, last.Exec, last.Attempt)
		return false
	}
	return true
}

// runName strips the namespace from a ledger's run.
func runName(namespaced string) string {
	_, name, _ := strings.Cut(namespaced, "/")
	return name
}

// resumeSlack is how much later than the lease duration a step in flight at a replica's kill
// may run again elsewhere: one reconcile, plus the sharder's reaction, on a busy machine. A
// loose bound that proves the mechanism; the figures are reported.
const resumeSlack = 5 * time.Second

// checkResumes checks that the steps a killed sharded replica had in flight ran again on another
// replica within the lease duration and resumeSlack.
func (v *verifier) checkResumes() {
	v.stats.LeaseDuration = v.cfg.leaseDuration
	if len(v.stats.Resumed) == 0 {
		return
	}
	if p99 := v.stats.resumedAt(0.99); p99 > v.cfg.leaseDuration+resumeSlack {
		v.fail("steps in flight at a kill of a sharded replica ran again elsewhere after p99 %s, more than the lease (%s) plus %s",
			p99, v.cfg.leaseDuration, resumeSlack)
	}
}

// checkLogs fails the test when a manager built with the race detector reported a race.
func (v *verifier) checkLogs(managers []*manager) {
	for _, m := range managers {
		data, err := os.ReadFile(m.LogFile)
		if err != nil {
			v.fail("read %s: %v", m.LogFile, err)
			continue
		}
		if strings.Contains(string(data), "WARNING: DATA RACE") {
			v.fail("manager pid %d reported a data race (see %s)", m.PID(), m.LogFile)
		}
	}
}
