package localrun_test

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/localrun"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/webhook/envelope"
)

// productWorkflows loads the repository's workflows/ directory, the product's own Python
// files, with real CPython workers; it skips the test where there is no python3.
func productWorkflows(t *testing.T) *localrun.Dir {
	t.Helper()
	if _, err := exec.LookPath(pyworker.DefaultPython); err != nil {
		t.Skipf("no %s: %v", pyworker.DefaultPython, err)
	}
	root, err := testcluster.ModuleRoot()
	if err != nil {
		t.Fatalf("module root: %v", err)
	}
	return loadDir(t, filepath.Join(root, "workflows"))
}

func TestProductNightlyReport(t *testing.T) {
	d := productWorkflows(t)
	var prompts []string
	res, err, trace := runFlow(t, d, "nightly_report", localrun.Options{
		Input: json.RawMessage(`{"channel": "#ops", "topic": "deploys"}`),
		AgentReply: func(turn localrun.AgentTurn) (string, error) {
			prompts = append(prompts, turn.Name+": "+turn.Request.Prompt)
			return "All deploys went fine.", nil
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.Succeeded() {
		t.Fatalf("failed: %+v", res.Failure)
	}
	var out struct {
		Channel string `json:"channel"`
		Report  string `json:"report"`
	}
	if err := json.Unmarshal(res.Output, &out); err != nil || out.Channel != "#ops" || out.Report != "All deploys went fine." {
		t.Errorf("output %s (%v), want channel #ops and the reply as the report", res.Output, err)
	}
	if len(prompts) != 1 || prompts[0] != "summarize: Write a short report about deploys" {
		t.Errorf("agent turns %q, want summarize about deploys", prompts)
	}
	for _, line := range []string{`step collect → {"topic":"deploys"}`, "sleep settle 30s (skipped)", `agent summarize → "All deploys went fine."`} {
		if !strings.Contains(trace, line) {
			t.Errorf("the trace lacks %q", line)
		}
	}
}

func TestProductGitHubIssueTriage(t *testing.T) {
	d := productWorkflows(t)
	input := func(event string) json.RawMessage {
		t.Helper()
		body := `{"action": "opened", "issue": {"number": 42, "title": "Crash on start"}, "repository": {"full_name": "acme/api"}}`
		env, err := envelope.Build(envelope.Request{
			Slug: "github-issue-triage", Provider: "github", Method: http.MethodPost, Path: "/api/webhooks/github-issue-triage",
			Header:  http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {event}, "X-Github-Delivery": {"d-1"}},
			RawBody: []byte(body), RemoteAddr: "192.0.2.1:5000",
		}, envelope.Options{})
		if err != nil {
			t.Fatalf("envelope.Build: %v", err)
		}
		raw, err := json.Marshal(env)
		if err != nil {
			t.Fatalf("encode the envelope: %v", err)
		}
		return raw
	}
	cases := []struct {
		event string
		want  map[string]any
		turns int
	}{
		{"issues", map[string]any{"triaged": true, "agent_result": "bug, priority high"}, 1},
		{"push", map[string]any{"skipped": true, "reason": "unsupported_event"}, 0},
	}
	for _, c := range cases {
		t.Run(c.event, func(t *testing.T) {
			var turns []localrun.AgentTurn
			res, err, _ := runFlow(t, d, "github_issue_triage", localrun.Options{
				Input: input(c.event),
				AgentReply: func(turn localrun.AgentTurn) (string, error) {
					turns = append(turns, turn)
					return "bug, priority high", nil
				},
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			var out map[string]any
			if err := json.Unmarshal(res.Output, &out); err != nil {
				t.Fatalf("output %s: %v (failure %+v)", res.Output, err, res.Failure)
			}
			for k, v := range c.want {
				if out[k] != v {
					t.Errorf("output[%q] = %v, want %v (output %s)", k, out[k], v, res.Output)
				}
			}
			if len(turns) != c.turns {
				t.Fatalf("agent turns %+v, want %d", turns, c.turns)
			}
			if c.turns > 0 && (turns[0].Request.ThreadKey != "github:acme/api:42" || turns[0].Request.Prompt != "Triage GitHub issue acme/api#42: Crash on start") {
				t.Errorf("agent turn %+v, want the issue's prompt in thread github:acme/api:42", turns[0])
			}
		})
	}
}

func TestPythonChildRunsInProcess(t *testing.T) {
	if _, err := exec.LookPath(pyworker.DefaultPython); err != nil {
		t.Skipf("no %s: %v", pyworker.DefaultPython, err)
	}
	d := loadDir(t, "testdata/pyflows")
	res, err, trace := runFlow(t, d, "py_parent", localrun.Options{
		Input:  json.RawMessage(`{"order": "o-9", "items": [1, 2]}`),
		Events: []localrun.Event{{EventType: "order.paid", CorrelationID: "o-9", Payload: json.RawMessage(`{"amount": 7}`)}},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if string(res.Output) != `{"n":2,"doubled":4,"amount":7}` {
		t.Errorf("output %s (failure %+v), want n 2, doubled 4, amount 7", res.Output, res.Failure)
	}
	if !strings.Contains(trace, "  sleep rest 2h0m0s (skipped)") {
		t.Errorf("the trace lacks the child's skipped sleep")
	}
}
