package durable_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/hosttest"
)

// agentHost is a Host whose agent turns finish at once with a reply naming the prompt. It
// remembers the steps it started turns for; events and child runs are not available.
type agentHost struct {
	hosttest.Unavailable
	t       *testing.T
	mu      sync.Mutex
	started []string
	// refuse makes every call a test failure: a replay must not ask the host anything.
	refuse bool
}

func (h *agentHost) StartAgent(_ context.Context, step string, req durable.AgentRequest) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse {
		h.t.Errorf("the replay started an agent turn for %q", step)
	}
	h.started = append(h.started, step)
	return "turn-" + step + ":" + req.Prompt, nil
}

func (h *agentHost) AgentResult(_ context.Context, id string) (engine.Result, error) {
	if h.refuse {
		h.t.Errorf("the replay asked for the result of agent turn %q", id)
	}
	out, err := json.Marshal(durable.AgentResult{Text: "reply to " + id})
	return engine.Result{Done: true, Output: out}, err
}

// threeTurns asks three turns; the second is named when named is set.
func threeTurns(named bool) durable.Workflow {
	return durable.Define("turns", func(ctx *durable.Context, _ struct{}) ([]string, error) {
		var replies []string
		for i, prompt := range []string{"first", "second", "third"} {
			var opts []durable.AgentTurnOption
			if named && i == 1 {
				opts = append(opts, durable.WithTurnName("triage"))
			}
			reply, err := durable.AgentTurn(ctx, prompt, "thread", opts...)
			if err != nil {
				return nil, err
			}
			replies = append(replies, reply)
		}
		return replies, nil
	})
}

func TestAgentTurnIsJournalledUnderItsName(t *testing.T) {
	host := &agentHost{t: t}
	h := newHarness(t, threeTurns(true))
	h.host = host
	mustComplete(t, h.execute(), `["reply to turn-agent-turn-1:first", "reply to turn-triage:second", "reply to turn-agent-turn-2:third"]`)
	want := []string{"agent-turn-1", "agent-turn-1/result", "triage", "triage/result", "agent-turn-2", "agent-turn-2/result"}
	if got := names(h.rec.Persisted()); !slices.Equal(got, want) {
		t.Errorf("journal names = %q; want %q (a named turn does not count among the unnamed ones)", got, want)
	}
}

// previousReleaseTurns is the journal the previous release recorded for threeTurns(false),
// whose AgentTurn calls were all named by the counter.
const previousReleaseTurns = `[
 {"name":"agent-turn-1","kind":"Agent","state":"Completed","startedAt":"2030-01-02T03:04:05Z","finishedAt":"2030-01-02T03:04:05Z","target":"start agent","ref":"turns-run-agent-turn-1"},
 {"name":"agent-turn-1/result","kind":"Agent","state":"Completed","startedAt":"2030-01-02T03:04:05Z","finishedAt":"2030-01-02T03:04:07Z","target":"agent turn turns-run-agent-turn-1","ref":"turns-run-agent-turn-1","result":{"text":"recorded one"}},
 {"name":"agent-turn-2","kind":"Agent","state":"Completed","startedAt":"2030-01-02T03:04:07Z","finishedAt":"2030-01-02T03:04:07Z","target":"start agent","ref":"turns-run-agent-turn-2"},
 {"name":"agent-turn-2/result","kind":"Agent","state":"Completed","startedAt":"2030-01-02T03:04:07Z","finishedAt":"2030-01-02T03:04:09Z","target":"agent turn turns-run-agent-turn-2","ref":"turns-run-agent-turn-2","result":{"text":"recorded two"}},
 {"name":"agent-turn-3","kind":"Agent","state":"Completed","startedAt":"2030-01-02T03:04:09Z","finishedAt":"2030-01-02T03:04:09Z","target":"start agent","ref":"turns-run-agent-turn-3"},
 {"name":"agent-turn-3/result","kind":"Agent","state":"Completed","startedAt":"2030-01-02T03:04:09Z","finishedAt":"2030-01-02T03:04:11Z","target":"agent turn turns-run-agent-turn-3","ref":"turns-run-agent-turn-3","result":{"text":"recorded three"}}
]`

func TestAgentTurnsRecordedByThePreviousReleaseReplay(t *testing.T) {
	var recorded []engine.Entry
	if err := json.Unmarshal([]byte(previousReleaseTurns), &recorded); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, threeTurns(false))
	h.host = &agentHost{t: t, refuse: true}
	h.seed(recorded)
	mustComplete(t, h.execute(), `["recorded one", "recorded two", "recorded three"]`)
}

func TestAStartedTurnIsWrittenBeforeTheHandlerGoesOn(t *testing.T) {
	// The agent answers a turn only once its run's journal records it, so a step that runs
	// while the agent thinks must not hold the turn's entry back until the step ends.
	var h *harness
	wf := durable.Define("turn-then-work", func(ctx *durable.Context, _ struct{}) (string, error) {
		if _, err := durable.StartAgent(ctx, "draft", durable.AgentRequest{Prompt: "write"}); err != nil {
			return "", err
		}
		return durable.Step(ctx, "meanwhile", func(context.Context) (string, error) {
			if got := names(h.rec.Persisted()); !slices.Equal(got, []string{"draft"}) {
				t.Errorf("while the next step runs the journal holds %q; want the started turn", got)
			}
			return "done", nil
		})
	})
	h = newHarness(t, wf)
	h.host = &agentHost{t: t}
	mustComplete(t, h.execute(), `"done"`)
}
