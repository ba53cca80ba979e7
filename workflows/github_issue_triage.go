package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/webhook/envelope"
)

// GitHubIssueTriageOutput is the output of github_issue_triage.
type GitHubIssueTriageOutput struct {
	// Skipped is true when the delivery was not an issues event.
	Skipped bool `json:"skipped"`
	// Reason says why it was skipped: "unsupported_event".
	Reason string `json:"reason,omitempty"`
	// Repo is the repository's full name, "owner/name".
	Repo string `json:"repo,omitempty"`
	// IssueNumber is the issue's number.
	IssueNumber int `json:"issue_number,omitempty"`
	// Action is the event's action: "opened", "edited", "reopened", ...
	Action string `json:"action,omitempty"`
	// Triage is the agent's reply.
	Triage string `json:"triage,omitempty"`
}

// ReasonUnsupportedEvent is the skip reason of a delivery that is not an issues event.
const ReasonUnsupportedEvent = "unsupported_event"

// githubIssuesEvent is the part of GitHub's "issues" event payload the triage reads.
type githubIssuesEvent struct {
	Action string `json:"action"`
	Issue  *struct {
		Number int     `json:"number"`
		Title  string  `json:"title"`
		Body   *string `json:"body"`
		User   struct {
			Login string `json:"login"`
		} `json:"user"`
		Labels []struct {
			Name string `json:"name"`
		} `json:"labels"`
	} `json:"issue"`
	Repository *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// GitHubIssueTriage triages GitHub issues delivered by a webhook: a delivery whose
// X-GitHub-Event header is not "issues" is skipped; otherwise one agent turn of the default
// agent, in the thread "github:{repo}:{number}" (so the agent sees what it said about the
// issue before), asks for a triage of the issue's title, body and action.
var GitHubIssueTriage = durable.Define("github_issue_triage", func(ctx *durable.Context, in envelope.Envelope) (GitHubIssueTriageOutput, error) {
	if event := in.Webhook.Header("X-GitHub-Event"); event != "issues" {
		return GitHubIssueTriageOutput{Skipped: true, Reason: ReasonUnsupportedEvent}, nil
	}
	var ev githubIssuesEvent
	if err := json.Unmarshal(in.Webhook.Body, &ev); err != nil {
		return GitHubIssueTriageOutput{}, fmt.Errorf("the issues event's body is not a GitHub issues payload: %w", err)
	}
	if ev.Issue == nil || ev.Issue.Number == 0 || ev.Repository == nil || ev.Repository.FullName == "" {
		return GitHubIssueTriageOutput{}, errors.New("the issues event's body lacks issue.number or repository.full_name")
	}
	repo, number := ev.Repository.FullName, ev.Issue.Number
	thread := fmt.Sprintf("github:%s:%d", repo, number)
	triage, err := durable.AgentTurn(ctx, triagePrompt(repo, ev), thread)
	if err != nil {
		return GitHubIssueTriageOutput{}, err
	}
	return GitHubIssueTriageOutput{Repo: repo, IssueNumber: number, Action: ev.Action, Triage: triage}, nil
},
	durable.WithDescription("Triages a GitHub issues webhook delivery with one agent turn in the thread github:{repo}:{number}; skips other events."),
	durable.WithExampleInput(envelope.Envelope{Webhook: envelope.Webhook{
		Slug: "github", Provider: "github", Method: "POST", Path: "/api/webhooks/github",
		Headers: map[string]string{"content-type": "application/json", "x-github-event": "issues", "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		Query:   map[string][]string{},
		Body: json.RawMessage(`{"action":"opened","issue":{"number":42,"title":"Crash on empty config","body":"The manager panics when agents.yaml is empty.",` +
			`"user":{"login":"octocat"},"labels":[]},"repository":{"full_name":"acme/api"}}`),
		RawBodySHA256: "0000000000000000000000000000000000000000000000000000000000000000",
		SourceIP:      "192.0.2.7",
	}}),
)

// triagePrompt asks the agent to triage the issue of ev.
func triagePrompt(repo string, ev githubIssuesEvent) string {
	body := "(no description)"
	if ev.Issue.Body != nil && strings.TrimSpace(*ev.Issue.Body) != "" {
		body = *ev.Issue.Body
	}
	labels := make([]string, 0, len(ev.Issue.Labels))
	for _, l := range ev.Issue.Labels {
		labels = append(labels, l.Name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Triage GitHub issue #%d of %s; the webhook's action is %q.\n\n", ev.Issue.Number, repo, ev.Action)
	fmt.Fprintf(&b, "Title: %s\n", ev.Issue.Title)
	if ev.Issue.User.Login != "" {
		fmt.Fprintf(&b, "Author: %s\n", ev.Issue.User.Login)
	}
	if len(labels) > 0 {
		fmt.Fprintf(&b, "Labels: %s\n", strings.Join(labels, ", "))
	}
	fmt.Fprintf(&b, "\n%s\n\n", body)
	b.WriteString("Reply with a one-line summary, a category (bug, feature request, question, documentation or other), " +
		"a priority from P0 to P3 with one sentence of reasoning, and the labels you suggest.")
	return b.String()
}
