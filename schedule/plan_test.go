package schedule

import (
	"fmt"
	"strings"
	"testing"
	"time"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// summary renders outcomes compactly: "Start/Scheduled@02:00" or "Skip/NotCaughtUp@02:00..02:00x3".
func summary(p Plan) string {
	var parts []string
	for _, o := range p.Outcomes {
		s := fmt.Sprintf("%s/%s@%s", o.Action, o.Reason, o.Tick.UTC().Format("01-02T15:04:05"))
		if o.Count > 1 {
			s += fmt.Sprintf("..%sx%d", o.Last.UTC().Format("01-02T15:04:05"), o.Count)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func mustParse(t *testing.T, expr string, anchor time.Time) Schedule {
	t.Helper()
	s, err := Parse(expr, "UTC", anchor)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecideOnTime(t *testing.T) {
	created := utc(t, "2026-06-01T12:00:00Z")
	w := Window{Schedule: mustParse(t, "0 2 * * *", created), After: created, Now: utc(t, "2026-06-02T02:00:00.3Z"), CatchUp: workflowsv1alpha1.CatchUpNone}
	p := Decide(w)
	if got := summary(p); got != "Start/Scheduled@06-02T02:00:00" {
		t.Errorf("outcomes %s", got)
	}
	if p.Outcomes[0].Late != 300*time.Millisecond {
		t.Errorf("late %s, want 300ms", p.Outcomes[0].Late)
	}
	if !p.Handled.Equal(utc(t, "2026-06-02T02:00:00Z")) || !p.Next.Equal(utc(t, "2026-06-03T02:00:00Z")) || !p.NextDue.Equal(p.Next) {
		t.Errorf("handled %s next %s due %s", p.Handled, p.Next, p.NextDue)
	}

	w.Now = utc(t, "2026-06-02T01:59:59Z")
	if p := Decide(w); len(p.Outcomes) != 0 || !p.Handled.IsZero() || !p.Next.Equal(utc(t, "2026-06-02T02:00:00Z")) {
		t.Errorf("before the tick: %s, handled %s, next %s", summary(p), p.Handled, p.Next)
	}
}

// TestDecideAfterThreeDaysOfDowntime: a nightly schedule whose manager was down for three
// nights comes back at 05:00 on the fourth day, once for each catchUp policy.
func TestDecideAfterThreeDaysOfDowntime(t *testing.T) {
	created := utc(t, "2026-06-01T12:00:00Z")
	base := Window{Schedule: mustParse(t, "0 2 * * *", created), After: utc(t, "2026-06-02T02:00:00Z"), Now: utc(t, "2026-06-05T05:00:00Z")}
	cases := []struct {
		catchUp  workflowsv1alpha1.CatchUpPolicy
		max      int
		deadline time.Duration
		want     string
	}{
		{workflowsv1alpha1.CatchUpNone, 0, 0, "Skip/NotCaughtUp@06-03T02:00:00..06-05T02:00:00x3"},
		{workflowsv1alpha1.CatchUpLatest, 0, 0, "Skip/NotCaughtUp@06-03T02:00:00..06-04T02:00:00x2 Start/CaughtUp@06-05T02:00:00"},
		{workflowsv1alpha1.CatchUpAll, 0, 0, "Start/CaughtUp@06-03T02:00:00 Start/CaughtUp@06-04T02:00:00 Start/CaughtUp@06-05T02:00:00"},
		{workflowsv1alpha1.CatchUpAll, 2, 0, "Skip/MaxCatchUpExceeded@06-03T02:00:00 Start/CaughtUp@06-04T02:00:00 Start/CaughtUp@06-05T02:00:00"},
		// A 24 h window: the first two nights are too late for any policy.
		{workflowsv1alpha1.CatchUpAll, 0, 24 * time.Hour, "Skip/StartingDeadlineExceeded@06-03T02:00:00..06-04T02:00:00x2 Start/CaughtUp@06-05T02:00:00"},
		{workflowsv1alpha1.CatchUpLatest, 0, 2 * time.Hour, "Skip/StartingDeadlineExceeded@06-03T02:00:00..06-05T02:00:00x3"},
	}
	for _, c := range cases {
		w := base
		w.CatchUp, w.MaxCatchUp, w.StartingDeadline = c.catchUp, c.max, c.deadline
		p := Decide(w)
		if got := summary(p); got != c.want {
			t.Errorf("%s max %d deadline %s:\n got %s\nwant %s", c.catchUp, c.max, c.deadline, got, c.want)
		}
		if !p.Handled.Equal(utc(t, "2026-06-05T02:00:00Z")) || !p.Next.Equal(utc(t, "2026-06-06T02:00:00Z")) {
			t.Errorf("%s: handled %s, next %s", c.catchUp, p.Handled, p.Next)
		}
	}
}

// TestDecideCountsLongDowntime: three days of an every-second interval (259,200 ticks) and of
// an every-minute cron (4,320 ticks) are counted, not lost, and cost little.
func TestDecideCountsLongDowntime(t *testing.T) {
	created := utc(t, "2026-06-01T00:00:00Z")
	now := created.Add(72*time.Hour + 500*time.Millisecond)
	for _, c := range []struct {
		expr   string
		total  int64
		expect string
	}{
		{"@every 1s", 259200, "Skip/StartingDeadlineExceeded@06-01T00:00:01..06-03T23:00:00x255600 Skip/MaxCatchUpExceeded@06-03T23:00:01..06-03T23:59:55x3595 Start/CaughtUp@06-03T23:59:56"},
		{"* * * * *", 4320, "Skip/StartingDeadlineExceeded@06-01T00:01:00..06-03T23:00:00x4260 Skip/MaxCatchUpExceeded@06-03T23:01:00..06-03T23:55:00x55 Start/CaughtUp@06-03T23:56:00"},
	} {
		w := Window{Schedule: mustParse(t, c.expr, created), After: created, Now: now,
			CatchUp: workflowsv1alpha1.CatchUpAll, MaxCatchUp: 5, StartingDeadline: time.Hour}
		start := time.Now()
		p := Decide(w)
		took := time.Since(start)
		got := summary(p)
		if !strings.HasPrefix(got, c.expect) {
			t.Errorf("%s:\n got %s\nwant %s ...", c.expr, got, c.expect)
		}
		var total int64
		starts := 0
		for _, o := range p.Outcomes {
			total += o.Count
			if o.Action == Start {
				starts++
			}
		}
		if total != c.total || starts != 5 {
			t.Errorf("%s: %d ticks in the outcomes (want %d), %d starts (want 5)", c.expr, total, c.total, starts)
		}
		if took > time.Second {
			t.Errorf("%s: deciding took %s", c.expr, took)
		}
	}
}

func TestDecideSkipsForEveryoneAndKnowsExistingRuns(t *testing.T) {
	created := utc(t, "2026-06-01T00:00:00Z")
	w := Window{Schedule: mustParse(t, "0 * * * *", created), After: created, Now: utc(t, "2026-06-01T03:00:10Z"),
		CatchUp: workflowsv1alpha1.CatchUpLatest, Suspended: true,
		Started: map[int64]bool{utc(t, "2026-06-01T02:00:00Z").Unix(): true}}
	if got := summary(Decide(w)); got != "Skip/Suspended@06-01T01:00:00 Exists/AlreadyStarted@06-01T02:00:00 Skip/Suspended@06-01T03:00:00" {
		t.Errorf("suspended: %s", got)
	}
	w.Suspended, w.Blocked, w.BlockedMessage = false, "UnknownWorkflow", "no such workflow"
	if got := summary(Decide(w)); got != "Skip/UnknownWorkflow@06-01T01:00:00 Exists/AlreadyStarted@06-01T02:00:00 Skip/UnknownWorkflow@06-01T03:00:00" {
		t.Errorf("blocked: %s", got)
	}
	// The run of the newest tick exists (a manager created it and stopped): nothing starts
	// again, and Latest has nothing older to catch up; All does catch up the missed 01:00.
	w.Blocked = ""
	w.Started[utc(t, "2026-06-01T03:00:00Z").Unix()] = true
	if got := summary(Decide(w)); got != "Skip/NotCaughtUp@06-01T01:00:00 Exists/AlreadyStarted@06-01T02:00:00 Exists/AlreadyStarted@06-01T03:00:00" {
		t.Errorf("existing, Latest: %s", got)
	}
	w.CatchUp = workflowsv1alpha1.CatchUpAll
	if got := summary(Decide(w)); got != "Start/CaughtUp@06-01T01:00:00 Exists/AlreadyStarted@06-01T02:00:00 Exists/AlreadyStarted@06-01T03:00:00" {
		t.Errorf("existing, All: %s", got)
	}
}

// TestDecideWaitsForJitter: a tick whose jittered start is still ahead is neither handled nor
// skipped; the plan says when it falls due.
func TestDecideWaitsForJitter(t *testing.T) {
	created := utc(t, "2026-06-01T00:00:00Z")
	jitter := Jitter("uid-1", time.Minute)
	tick := utc(t, "2026-06-01T01:00:00Z")
	delay := jitter(tick)
	if delay <= 0 || delay >= time.Minute || delay != jitter(tick) {
		t.Fatalf("jitter %s: want a fixed delay in (0, 1m)", delay)
	}
	w := Window{Schedule: mustParse(t, "0 * * * *", created), After: created, Now: tick.Add(delay - time.Millisecond), Jitter: jitter}
	p := Decide(w)
	if len(p.Outcomes) != 0 || !p.Next.Equal(tick) || !p.NextDue.Equal(tick.Add(delay)) {
		t.Errorf("before the jittered start: %s next %s due %s", summary(p), p.Next, p.NextDue)
	}
	w.Now = tick.Add(delay)
	if got := summary(Decide(w)); got != "Start/Scheduled@06-01T01:00:00" {
		t.Errorf("at the jittered start: %s", got)
	}
}

func TestDecideNoneRunsOnlyOnTimeTicks(t *testing.T) {
	created := utc(t, "2026-06-01T00:00:00Z")
	w := Window{Schedule: mustParse(t, "0 * * * *", created), After: created, CatchUp: workflowsv1alpha1.CatchUpNone}
	w.Now = utc(t, "2026-06-01T01:00:59Z")
	if got := summary(Decide(w)); got != "Start/Scheduled@06-01T01:00:00" {
		t.Errorf("59 s late: %s", got)
	}
	w.Now = utc(t, "2026-06-01T01:01:01Z")
	if got := summary(Decide(w)); got != "Skip/NotCaughtUp@06-01T01:00:00" {
		t.Errorf("61 s late: %s", got)
	}
}
