package workflows

import (
	"fmt"

	"github.com/centaur-dev/workflow-operator/durable"
)

// FanOutInput is the input of the fan_out workflow.
type FanOutInput struct {
	// Names to greet, one hello child run each.
	Names []string `json:"names"`
}

// FanOutOutput is the output of the fan_out workflow.
type FanOutOutput struct {
	// Greetings in the order of the input's names.
	Greetings []string `json:"greetings"`
}

// FanOut starts one hello child run per name, all at once, then waits for each and returns the
// greetings in order.
var FanOut = durable.Define("fan_out", func(ctx *durable.Context, in FanOutInput) (FanOutOutput, error) {
	children := make([]string, len(in.Names))
	for i, name := range in.Names {
		id, err := durable.StartWorkflow(ctx, fmt.Sprintf("hello-%d", i), Hello.Name(), HelloInput{Name: name})
		if err != nil {
			return FanOutOutput{}, err
		}
		children[i] = id
	}
	out := FanOutOutput{Greetings: make([]string, len(children))}
	for i, id := range children {
		res, err := durable.WaitForWorkflow[HelloOutput](ctx, fmt.Sprintf("hello-%d/result", i), id)
		if err != nil {
			return FanOutOutput{}, err
		}
		out.Greetings[i] = res.Greeting
	}
	return out, nil
},
	durable.WithDescription("Starts one hello child run per name, waits for all, and returns the greetings in order."),
	durable.WithExampleInput(FanOutInput{Names: []string{"Ada", "Grace", "Linus"}}),
)
