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
	children := make([]durable.ChildRun[HelloOutput], len(in.Names))
	for i, name := range in.Names {
		child, err := durable.StartWorkflow(ctx, fmt.Sprintf("hello-%d", i), Hello, HelloInput{Name: name})
		if err != nil {
			return FanOutOutput{}, err
		}
		children[i] = child
	}
	out := FanOutOutput{Greetings: make([]string, len(children))}
	for i, child := range children {
		res, err := durable.WaitForWorkflow(ctx, child)
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
