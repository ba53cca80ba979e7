package main

import (
	"context"
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
			recorded := tc.lines[len(tc.lines)-1].Exec
			if tc.name == "after it was recorded" {
				recorded = tc.lines[0].Exec
			}
			run := ledgerRun(recorded)
			v := &verifier{cfg: config{parallelism: 4}, killed: tc.killed, outages: tc.outages, stats: &stats{}, perKill: map[string]int{}}
			v.checkLedger(map[string]*journaledRun{"r": {run: run, entries: run.Status.Journal}}, tc.lines)
			err := v.err()
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("verifier error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// ledgerRun is a run whose journal recorded execution exec for step s-0000.
func ledgerRun(exec string) *workflowsv1alpha1.WorkflowRun {
	return &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "chaos"},
		Status: workflowsv1alpha1.WorkflowRunStatus{Journal: []workflowsv1alpha1.JournalEntry{{
			Name: "s-0000", Kind: "Step", State: "Completed", Attempts: 1, Result: &apiextensionsv1.JSON{Raw: []byte(`"` + exec + `"`)},
		}}},
	}
}

// testLog writes progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
