package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

// NightlyReportInput is the input of the nightly_report workflow.
type NightlyReportInput struct {
	// Channel is where the report is meant to be posted, for example "#ops".
	Channel string `json:"channel"`
	// Items are the day's findings to report on.
	Items []string `json:"items"`
}

// NightlyReportOutput is the output of the nightly_report workflow.
type NightlyReportOutput struct {
	// Channel is where the report is meant to be posted.
	Channel string `json:"channel"`
	// Report is the agent's summary of the collected items.
	Report string `json:"report"`
}

// SettleTime is how long nightly_report lets late data arrive between collecting and reporting.
const SettleTime = 30 * time.Second

// NightlyReport collects the day's items in a step, lets late data settle for 30 seconds, asks
// the default agent to summarize the collected report (agent turn "summarize"), and returns the
// summary for its channel.
var NightlyReport = durable.Define("nightly_report", func(ctx *durable.Context, in NightlyReportInput) (NightlyReportOutput, error) {
	channel := in.Channel
	if channel == "" {
		channel = "#general"
	}
	collected, err := durable.Step(ctx, "collect", func(context.Context) (string, error) {
		return collect(in.Items), nil
	})
	if err != nil {
		return NightlyReportOutput{}, err
	}
	durable.Sleep(ctx, "settle", SettleTime)
	summary, err := durable.RunAgent(ctx, "summarize", durable.AgentRequest{Prompt: summarizePrompt(channel, collected)})
	if err != nil {
		return NightlyReportOutput{}, err
	}
	return NightlyReportOutput{Channel: channel, Report: summary.Text}, nil
},
	durable.WithDescription("Collects the day's items, waits 30 s for late data to settle, asks the default agent to summarize them, and returns the summary for a channel."),
	durable.WithExampleInput(NightlyReportInput{Channel: "#ops", Items: []string{"deploy api v2", "rotate certs"}}),
)

// collect turns the day's items into a report: deduplicated, sorted, counted.
func collect(items []string) string {
	seen := make([]string, 0, len(items))
	for _, item := range items {
		if item = strings.TrimSpace(item); item != "" && !slices.Contains(seen, item) {
			seen = append(seen, item)
		}
	}
	slices.Sort(seen)
	if len(seen) == 0 {
		return "Nothing to report today."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d item(s) today:", len(seen))
	for _, item := range seen {
		fmt.Fprintf(&b, "\n- %s", item)
	}
	return b.String()
}

// summarizePrompt asks the agent to summarize the collected report for channel.
func summarizePrompt(channel, collected string) string {
	return fmt.Sprintf("Summarize the following nightly report for the team channel %s in a few short sentences. "+
		"Mention every item, invent nothing, and reply with the summary only.\n\n%s", channel, collected)
}
