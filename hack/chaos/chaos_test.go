package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
)

// TestSmallCrash runs the crash test's small workload in `make test`: a few runs, three
// SIGKILLs of the manager, one of etcd and one of the leader of two managers, against etcd with
// fsync on; then every guarantee is checked as `make chaos` checks it.
func TestSmallCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and kills managers; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := smallConfig()
	cfg.seed = time.Now().UnixNano()
	cfg.race = testcluster.RaceEnabled
	st, err := run(ctx, cfg, testLog{t})
	if st != nil {
		t.Log(st.String())
	}
	if err != nil {
		t.Fatalf("crash test (seed %d): %v", cfg.seed, err)
	}
	if st.ManagerKills != cfg.kills || st.EtcdKills != 1 || st.LeaderKills != 1 {
		t.Errorf("kills: manager %d, etcd %d, leader %d; want %d, 1, 1", st.ManagerKills, st.EtcdKills, st.LeaderKills, cfg.kills)
	}
}

// TestVerifierCatchesRepeats feeds the verifier a ledger in which a completed step ran again
// without a kill, and one in which a step ran again at a kill, and checks that it tells them
// apart.
func TestVerifierCatchesRepeats(t *testing.T) {
	at := time.Now()
	line := func(exec string, pid, attempt int) testflows.LedgerLine {
		return testflows.LedgerLine{Exec: exec, Run: "chaos/r", Step: "s-0000", Attempt: attempt, OK: true, PID: pid, At: at}
	}
	cases := []struct {
		name    string
		lines   []testflows.LedgerLine
		killed  map[int]string
		outages []window
		wantErr string
	}{
		{"once", []testflows.LedgerLine{line("1-1", 1, 1)}, nil, nil, ""},
		{"in flight at a kill", []testflows.LedgerLine{line("1-1", 1, 1), line("2-1", 2, 1)}, map[int]string{1: "manager"}, nil, ""},
		{"again without a kill", []testflows.LedgerLine{line("1-1", 1, 1), line("1-2", 1, 1)}, nil, nil, "no kill interrupted it"},
		{"again in the killed manager", []testflows.LedgerLine{line("1-1", 1, 1), line("1-2", 1, 1)}, map[int]string{1: "manager"}, nil, "no kill interrupted it"},
		{"again in an etcd outage", []testflows.LedgerLine{line("1-1", 1, 1), line("1-2", 1, 1)}, nil, []window{{at.Add(-time.Second), at.Add(time.Second)}}, ""},
		{"after it was recorded", []testflows.LedgerLine{line("1-1", 1, 1), line("2-1", 2, 1)}, map[int]string{1: "manager"}, nil, "a completed step ran again"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recorded := tc.lines[len(tc.lines)-1]
			if tc.name == "after it was recorded" {
				recorded = tc.lines[0]
			}
			run := ledgerRun(testflows.LedgerName, recorded.Exec, recorded.Attempt)
			v := &verifier{cfg: config{parallelism: 4}, killed: tc.killed, outages: tc.outages, stats: &stats{}, perKill: map[string]int{}}
			v.checkLedger(map[string]*journaledRun{"r": {run: run, entries: run.Status.Journal}}, tc.lines)
			checkVerdict(t, v.err(), tc.wantErr)
		})
	}
}

// TestVerifierPutsAnOutageBeforeAKill checks that a manager killed after an etcd outage may
// leave more steps to run again than its parallelism, since those whose writes failed in the
// outage were in flight too, and that without the outage that many is a violation.
func TestVerifierPutsAnOutageBeforeAKill(t *testing.T) {
	at := time.Now()
	for _, tc := range []struct {
		name    string
		outages []window
		wantErr string
	}{
		{"after an outage", []window{{at.Add(-time.Second), at.Add(time.Minute)}}, ""},
		{"without an outage", nil, "5 steps re-executed, more than the 4 that can be in flight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &verifier{cfg: config{parallelism: 4}, killed: map[int]string{1: "manager"}, outages: tc.outages, stats: &stats{}, perKill: map[string]int{}}
			for i := range 5 {
				run := fmt.Sprintf("chaos/r-%d", i)
				first := testflows.LedgerLine{Exec: fmt.Sprintf("1-%d", i), Run: run, Step: "s-0000", Attempt: 1, OK: true, PID: 1, At: at}
				again := testflows.LedgerLine{Exec: fmt.Sprintf("2-%d", i), Run: run, Step: "s-0000", Attempt: 1, OK: true, PID: 2, At: at.Add(5 * time.Second)}
				v.reExecuted(execKey{run, "s-0000", 1}, first, again)
			}
			checkVerdict(t, v.err(), tc.wantErr)
		})
	}
}

// TestVerifierJudgesResumes checks which re-executions after a sharded replica's kill are held
// to the bound of the lease plus resumeSlack: one with no other kill before it, and one whose
// only other kill came after the bound had passed (a step not resumed by then missed it); a
// kill within the bound excuses it.
func TestVerifierJudgesResumes(t *testing.T) {
	killedAt := time.Now()
	lease := 4 * time.Second
	cases := []struct {
		name      string
		resumed   time.Duration
		otherKill time.Duration // after the first kill; 0: none
		wantErr   string
	}{
		{"in time", 5 * time.Second, 0, ""},
		{"late", lease + resumeSlack + time.Second, 0, "more than the lease"},
		{"late, another kill within the bound", lease + resumeSlack + time.Second, 2 * time.Second, ""},
		{"late, another kill only after the bound", lease + resumeSlack + 3*time.Second, lease + resumeSlack + time.Second, "more than the lease"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := []testflows.LedgerLine{
				{Exec: "1-1", Run: "chaos/r", Step: "s-0000", Attempt: 1, OK: true, PID: 1, At: killedAt.Add(-time.Millisecond)},
				{Exec: "2-1", Run: "chaos/r", Step: "s-0000", Attempt: 1, OK: true, PID: 2, At: killedAt.Add(tc.resumed)},
			}
			killed, at := map[int]string{1: "shard shard-01"}, map[int]time.Time{1: killedAt}
			if tc.otherKill > 0 {
				killed[3], at[3] = "shard shard-03", killedAt.Add(tc.otherKill)
			}
			run := ledgerRun(testflows.LedgerName, "2-1", 1)
			v := &verifier{cfg: config{parallelism: 4, leaseDuration: lease}, killed: killed, killedAt: at, stats: &stats{}, perKill: map[string]int{}}
			v.checkLedger(map[string]*journaledRun{"r": {run: run, entries: run.Status.Journal}}, lines)
			v.checkResumes()
			checkVerdict(t, v.err(), tc.wantErr)
		})
	}
}

// TestVerifierAccountsForAttempts checks which step attempts before the recorded one the
// verifier accepts: a planned failure, and, in a Python run only, an attempt whose worker was
// killed (with its ledger line, or without one when a worker was killed before the next).
func TestVerifierAccountsForAttempts(t *testing.T) {
	at := time.Now()
	line := func(exec string, worker, attempt int, ok bool, after time.Duration) testflows.LedgerLine {
		return testflows.LedgerLine{Exec: exec, Run: "chaos/r", Step: "s-0000", Attempt: attempt, OK: ok, PID: 1, Worker: worker, At: at.Add(after)}
	}
	killed := map[int]time.Time{10: at.Add(time.Millisecond)}
	cases := []struct {
		name     string
		workflow string
		fails    bool
		lines    []testflows.LedgerLine
		wantErr  string
	}{
		{"planned failure", testflows.LedgerName, true, []testflows.LedgerLine{line("1-1", 0, 1, false, 0), line("1-2", 0, 2, true, time.Second)}, ""},
		{"planned failure not made", testflows.LedgerName, true, []testflows.LedgerLine{line("1-1", 0, 1, true, 0)}, "fails on purpose"},
		{"a Go attempt failed for nothing", testflows.LedgerName, false, []testflows.LedgerLine{line("1-1", 0, 1, true, 0), line("1-2", 0, 2, true, time.Second)}, "nothing failed its attempt 1"},
		{"worker killed mid-step", testflows.LedgerPyName, false, []testflows.LedgerLine{line("py10-1", 10, 1, true, 0), line("py11-1", 11, 2, true, time.Second)}, ""},
		{"worker killed after a planned failure", testflows.LedgerPyName, true, []testflows.LedgerLine{line("py9-1", 9, 1, false, 0), line("py10-1", 10, 2, true, 0), line("py11-1", 11, 3, true, time.Second)}, ""},
		{"worker killed before the line", testflows.LedgerPyName, false, []testflows.LedgerLine{line("py11-1", 11, 2, true, time.Second)}, ""},
		{"a Python attempt failed for nothing", testflows.LedgerPyName, false, []testflows.LedgerLine{line("py9-1", 9, 1, true, 0), line("py11-1", 11, 2, true, time.Second)}, "nothing failed its attempt 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			last := tc.lines[len(tc.lines)-1]
			run := ledgerRun(tc.workflow, last.Exec, last.Attempt)
			in := testflows.LedgerInput{Steps: 1}
			if tc.fails {
				in.FailEvery = 1
			}
			v := &verifier{cfg: config{parallelism: 4}, killedWorkers: killed, stats: &stats{}, perKill: map[string]int{}}
			v.checkLedger(map[string]*journaledRun{"r": {run: run, input: in, entries: run.Status.Journal}}, tc.lines)
			checkVerdict(t, v.err(), tc.wantErr)
		})
	}
}

// checkVerdict fails t unless err contains want, or is nil when want is empty.
func checkVerdict(t *testing.T, err error, want string) {
	t.Helper()
	if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
		t.Errorf("verifier error = %v, want one containing %q", err, want)
	}
}

// ledgerRun is a run of workflow whose journal recorded execution exec, after attempts, for
// step s-0000.
func ledgerRun(workflow, exec string, attempts int) *workflowsv1alpha1.WorkflowRun {
	return &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "chaos"},
		Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: workflow},
		Status: workflowsv1alpha1.WorkflowRunStatus{Journal: []workflowsv1alpha1.JournalEntry{{
			Name: "s-0000", Kind: "Step", State: "Completed", Attempts: int32(attempts), Result: &apiextensionsv1.JSON{Raw: []byte(`"` + exec + `"`)},
		}}},
	}
}

// testLog writes progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
