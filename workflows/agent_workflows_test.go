package workflows

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/hosttest"
	"github.com/centaur-dev/workflow-operator/webhook/envelope"
)

// agentHost is an in-memory engine.Host that records agent turns and answers them from
// replies set by the test.
type agentHost struct {
	hosttest.Unavailable
	turns   map[string]durable.AgentRequest
	replies map[string]string
}

func newAgentHost() *agentHost {
	return &agentHost{turns: map[string]durable.AgentRequest{}, replies: map[string]string{}}
}

func (h *agentHost) StartAgent(_ context.Context, step string, req durable.AgentRequest) (string, error) {
	id := "turn-" + step
	h.turns[id] = req
	return id, nil
}

func (h *agentHost) AgentResult(_ context.Context, id string) (engine.Result, error) {
	reply, ok := h.replies[id]
	if !ok {
		return engine.Result{Pending: "agent turn " + id}, nil
	}
	out, err := json.Marshal(durable.AgentResult{Text: reply, Model: "test-model"})
	return engine.Result{Done: true, Output: out}, err
}

// replayer executes one run again and again over the same journal, as the controller does on
// every wake-up, with a clock the test moves.
type replayer struct {
	wf      durable.Workflow
	input   json.RawMessage
	journal *engine.Journal
	host    *agentHost
	start   time.Time
	now     time.Time
}

func newReplayer(t *testing.T, wf durable.Workflow, input any) *replayer {
	t.Helper()
	raw, ok := input.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(input); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	return &replayer{wf: wf, input: raw, journal: engine.NewJournal(nil), host: newAgentHost(), start: start, now: start}
}

func (r *replayer) execute() engine.Outcome {
	return engine.Execute(context.Background(), r.wf, engine.Execution{
		Run:      durable.RunInfo{Namespace: "default", Name: "run", UID: "uid", WorkflowName: r.wf.Name(), StartedAt: r.start},
		Input:    r.input,
		Journal:  r.journal,
		Clock:    func() time.Time { return r.now },
		Recorder: engine.RecorderFunc(func(context.Context, *engine.Journal, []engine.Entry) error { return nil }),
		Host:     r.host,
	})
}

func expectOutcome(t *testing.T, o engine.Outcome, kind engine.OutcomeKind) {
	t.Helper()
	if o.Kind != kind {
		t.Fatalf("outcome kind %v, want %v: %+v (failure %+v)", o.Kind, kind, o, o.Failure)
	}
}

func TestNightlyReportSummarizesAfterSettling(t *testing.T) {
	r := newReplayer(t, NightlyReport, NightlyReportInput{Channel: "#ops", Items: []string{"rotate certs", "deploy api v2", "rotate certs"}})

	o := r.execute()
	expectOutcome(t, o, engine.Suspended)
	if want := r.start.Add(SettleTime); !o.WakeAt.Equal(want) || o.Current != "settle" {
		t.Fatalf("first execution stops at %q until %s, want settle until %s", o.Current, o.WakeAt, want)
	}
	if len(r.host.turns) != 0 {
		t.Fatalf("the agent was asked before the data settled: %v", r.host.turns)
	}

	r.now = r.start.Add(SettleTime + time.Second)
	o = r.execute()
	expectOutcome(t, o, engine.Suspended)
	turn, ok := r.host.turns["turn-summarize"]
	if !ok {
		t.Fatalf("no agent turn summarize; turns: %v", r.host.turns)
	}
	for _, want := range []string{"Summarize", "#ops", "2 item(s) today", "- deploy api v2", "- rotate certs"} {
		if !strings.Contains(turn.Prompt, want) {
			t.Errorf("the summarize prompt lacks %q:\n%s", want, turn.Prompt)
		}
	}
	if turn.Agent != "" || turn.ThreadKey != "" {
		t.Errorf("summarize uses agent %q thread %q, want the default agent and no thread", turn.Agent, turn.ThreadKey)
	}

	r.host.replies["turn-summarize"] = "Two changes today: api v2 is deployed and certificates were rotated."
	o = r.execute()
	expectOutcome(t, o, engine.Completed)
	var out NightlyReportOutput
	if err := json.Unmarshal(o.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out.Channel != "#ops" || out.Report != r.host.replies["turn-summarize"] {
		t.Fatalf("output %+v, want the agent's summary for #ops", out)
	}
}

// githubDelivery builds the envelope of a GitHub delivery the way the webhook server does.
func githubDelivery(t *testing.T, event string, body string) json.RawMessage {
	t.Helper()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-GitHub-Event", event)
	h.Set("X-Hub-Signature-256", "sha256=secret-stuff")
	env, err := envelope.Build(envelope.Request{Slug: "github", Provider: "github", Method: "POST", Path: "/api/webhooks/github",
		Header: h, RawBody: []byte(body), RemoteAddr: "192.0.2.7:4711"}, envelope.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

const issueOpened = `{"action":"opened","issue":{"number":42,"title":"Crash on empty config","body":"The manager panics.",` +
	`"user":{"login":"octocat"},"labels":[{"name":"needs-triage"}]},"repository":{"full_name":"acme/api"}}`

func TestGitHubIssueTriageSkipsOtherEvents(t *testing.T) {
	r := newReplayer(t, GitHubIssueTriage, githubDelivery(t, "push", `{"ref":"refs/heads/main"}`))
	o := r.execute()
	expectOutcome(t, o, engine.Completed)
	if string(o.Output) != `{"skipped":true,"reason":"unsupported_event"}` {
		t.Fatalf("output %s", o.Output)
	}
	if len(r.host.turns) != 0 {
		t.Fatalf("a skipped delivery asked the agent: %v", r.host.turns)
	}
}

func TestGitHubIssueTriageAsksTheAgentInTheIssuesThread(t *testing.T) {
	r := newReplayer(t, GitHubIssueTriage, githubDelivery(t, "issues", issueOpened))
	expectOutcome(t, r.execute(), engine.Suspended)
	turn, ok := r.host.turns["turn-agent-turn-1"]
	if !ok {
		t.Fatalf("no agent turn; turns: %v", r.host.turns)
	}
	if turn.ThreadKey != "github:acme/api:42" {
		t.Errorf("thread %q, want github:acme/api:42", turn.ThreadKey)
	}
	for _, want := range []string{"#42", "acme/api", `"opened"`, "Crash on empty config", "The manager panics.", "octocat", "needs-triage"} {
		if !strings.Contains(turn.Prompt, want) {
			t.Errorf("the triage prompt lacks %q:\n%s", want, turn.Prompt)
		}
	}

	r.host.replies["turn-agent-turn-1"] = "bug, P1"
	o := r.execute()
	expectOutcome(t, o, engine.Completed)
	want := `{"skipped":false,"repo":"acme/api","issue_number":42,"action":"opened","triage":"bug, P1"}`
	if string(o.Output) != want {
		t.Fatalf("output %s, want %s", o.Output, want)
	}
}

func TestGitHubIssueTriageRejectsAPayloadWithoutAnIssue(t *testing.T) {
	r := newReplayer(t, GitHubIssueTriage, githubDelivery(t, "issues", `{"action":"opened"}`))
	o := r.execute()
	expectOutcome(t, o, engine.Failed)
	if !strings.Contains(o.Failure.Message, "issue.number") {
		t.Fatalf("failure %+v", o.Failure)
	}
}

func TestGitHubIssueTriageExampleInputDecodes(t *testing.T) {
	r := newReplayer(t, GitHubIssueTriage, GitHubIssueTriage.ExampleInput())
	expectOutcome(t, r.execute(), engine.Suspended)
	if len(r.host.turns) != 1 {
		t.Fatalf("the example input should reach the agent turn; turns: %v", r.host.turns)
	}
}
