package shardingsuite

import (
	"context"
	"fmt"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

// trailInput is the input of the trail workflow.
type trailInput struct {
	// Steps is how many steps the run executes.
	Steps int `json:"steps"`
	// NapMillis is a durable sleep before every step but the first.
	NapMillis int64 `json:"napMillis"`
}

// meetInput is the input of the meet workflow.
type meetInput struct {
	// Within is how long the step "meet" waits for a second execution of itself.
	WithinMillis int64 `json:"withinMillis"`
}

// suiteWorkflows are the suite's workflows as the replica named shard registers them: each
// step records its execution in the ledger under the replica's name and returns that name, so
// a run's output says which replica executed each step.
func suiteWorkflows(shard string) []durable.Workflow {
	step := func(ctx *durable.Context, name string) (string, error) {
		info := durable.Info(ctx)
		return durable.Step(ctx, name, func(context.Context) (string, error) {
			_, end := ledger.record(info, name, shard)
			defer end()
			return shard, nil
		})
	}
	trail := durable.Define("trail", func(ctx *durable.Context, in trailInput) ([]string, error) {
		var out []string
		for i := range in.Steps {
			if i > 0 && in.NapMillis > 0 {
				durable.Sleep(ctx, fmt.Sprintf("nap-%d", i), time.Duration(in.NapMillis)*time.Millisecond)
			}
			who, err := step(ctx, fmt.Sprintf("s-%d", i))
			if err != nil {
				return nil, err
			}
			out = append(out, who)
		}
		return out, nil
	})
	// meet's first step waits, inside its function, until a second execution of the same step
	// of the same run has begun (in another replica), so that both try to record it at once.
	meet := durable.Define("meet", func(ctx *durable.Context, in meetInput) ([]string, error) {
		info := durable.Info(ctx)
		met, err := durable.Step(ctx, "meet", func(c context.Context) (string, error) {
			_, end := ledger.record(info, "meet", shard)
			defer end()
			deadline := time.Now().Add(time.Duration(in.WithinMillis) * time.Millisecond)
			for len(ledger.of(info.Namespace, info.Name, "meet")) < 2 && time.Now().Before(deadline) && c.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			return shard, nil
		})
		if err != nil {
			return nil, err
		}
		after, err := step(ctx, "after")
		return []string{met, after}, err
	})
	// waiter waits for an event, then executes one step.
	waiter := durable.Define("waiter", func(ctx *durable.Context, id string) (string, error) {
		if _, err := durable.WaitForEvent[map[string]any](ctx, "wait", "sharding.test", id); err != nil {
			return "", err
		}
		return step(ctx, "after")
	})
	// asker asks an external agent, then executes one step.
	asker := durable.Define("asker", func(ctx *durable.Context, prompt string) (string, error) {
		if _, err := durable.RunAgent(ctx, "ask", durable.AgentRequest{Agent: "outside", Prompt: prompt}); err != nil {
			return "", err
		}
		return step(ctx, "after")
	})
	// parent starts one trail child per entry of its input and waits for them all.
	parent := durable.Define("parent", func(ctx *durable.Context, children []trailInput) ([][]string, error) {
		started := make([]durable.ChildRun[[]string], len(children))
		for i, in := range children {
			child, err := durable.StartWorkflow(ctx, fmt.Sprintf("child-%d", i), trail, in)
			if err != nil {
				return nil, err
			}
			started[i] = child
		}
		out := make([][]string, len(started))
		for i, child := range started {
			got, err := durable.WaitForWorkflow(ctx, child)
			if err != nil {
				return nil, err
			}
			out[i] = got
		}
		return out, nil
	})
	return []durable.Workflow{trail, meet, waiter, asker, parent}
}
