package workflows

import (
	"context"
	"fmt"

	"github.com/centaur-dev/workflow-operator/durable"
)

// HelloInput is the input of the hello workflow.
type HelloInput struct {
	// Name is who to greet.
	Name string `json:"name"`
}

// HelloOutput is the output of the hello workflow.
type HelloOutput struct {
	Greeting string `json:"greeting"`
}

// Hello greets by name in one step, "greet": the smallest complete workflow.
var Hello = durable.Define("hello", func(ctx *durable.Context, in HelloInput) (HelloOutput, error) {
	greeting, err := durable.Step(ctx, "greet", func(context.Context) (string, error) {
		if in.Name == "" {
			return "", durable.NonRetryable(fmt.Errorf("input.name is empty: say who to greet"))
		}
		return fmt.Sprintf("Hello, %s!", in.Name), nil
	})
	if err != nil {
		return HelloOutput{}, err
	}
	return HelloOutput{Greeting: greeting}, nil
},
	durable.WithDescription("Greets input.name in one step."),
	durable.WithExampleInput(HelloInput{Name: "Ada"}),
)
