package localrun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/localrun"
	"github.com/centaur-dev/workflow-operator/workflows"
)

func TestGoWorkflows(t *testing.T) {
	approved := []localrun.Event{{EventType: workflows.ApprovalEventType, CorrelationID: "req-1", Payload: json.RawMessage(`{"decision": "approved", "by": "ada"}`)}}
	cases := []struct {
		name     string
		workflow durable.Workflow
		opts     localrun.Options
		output   string
		trace    string
		skipped  time.Duration
	}{
		{"children from the lookup", workflows.FanOut, localrun.Options{Input: json.RawMessage(`{"names": ["Ada", "Grace"]}`)},
			`{"greetings":["Hello, Ada!","Hello, Grace!"]}`, "child local-fan_out-hello-1 (hello) → Succeeded", 0},
		{"event given", workflows.Approval, localrun.Options{Input: json.RawMessage(`{"request_id": "req-1"}`), Events: approved},
			`{"decision":"approved","by":"ada"}`, "wait decision event approval.decided (correlation req-1) → received", 0},
		{"a wait with a timeout times out", workflows.Approval, localrun.Options{Input: json.RawMessage(`{"request_id": "req-2"}`), Events: approved},
			`{"decision":"timed_out"}`, "wait decision event approval.decided (correlation req-2) → timed out", workflows.DefaultApprovalTimeout},
		{"sleep_until skipped", workflows.Countdown, localrun.Options{Input: json.RawMessage(`{"seconds": 86400}`)},
			"", "sleep countdown 24h0m0s (skipped)", 24 * time.Hour},
		{"agent turn", workflows.NightlyReport, localrun.Options{Input: json.RawMessage(`{"channel": "#ops", "items": ["a"]}`), AgentReply: localrun.FixedReply("fine")},
			"", `agent summarize → "fine"`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			c.opts.Out = &out
			c.opts.Workflows = localrun.Lookup(workflows.All()...)
			res, err := localrun.Run(context.Background(), c.workflow, c.opts)
			t.Logf("trace:\n%s", out.String())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !res.Succeeded() {
				t.Fatalf("failed: %+v", res.Failure)
			}
			if c.output != "" && string(res.Output) != c.output {
				t.Errorf("output %s, want %s", res.Output, c.output)
			}
			if !strings.Contains(out.String(), c.trace) {
				t.Errorf("the trace lacks %q", c.trace)
			}
			if res.Skipped < c.skipped-time.Minute {
				t.Errorf("Skipped = %s, want about %s", res.Skipped, c.skipped)
			}
		})
	}
}

func TestRealTimeWaits(t *testing.T) {
	var out bytes.Buffer
	start := time.Now()
	res, err := localrun.Run(context.Background(), workflows.Approval, localrun.Options{
		Input: json.RawMessage(`{"request_id": "req-3", "timeout": "300ms"}`), RealTime: true, Out: &out,
	})
	took := time.Since(start)
	if err != nil || string(res.Output) != `{"decision":"timed_out"}` {
		t.Fatalf("Run: %v, output %s", err, res.Output)
	}
	if took < 300*time.Millisecond || res.Skipped != 0 {
		t.Errorf("the run took %s and skipped %s: with RealTime it waits out its 300 ms timeout", took, res.Skipped)
	}
}

func TestRealTimeEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := localrun.Run(ctx, workflows.Countdown, localrun.Options{Input: json.RawMessage(`{"seconds": 3600}`), RealTime: true})
	if err == nil || !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
		t.Fatalf("Run: %v, want the context's deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run returned after %s, not when its context ended", took)
	}
}
