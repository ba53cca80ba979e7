package workflows

import (
	"fmt"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

// CountdownInput is the input of the countdown workflow.
type CountdownInput struct {
	// Seconds to wait, counted from the run's start.
	Seconds int `json:"seconds"`
}

// CountdownOutput is the output of the countdown workflow.
type CountdownOutput struct {
	// WokeAt is the recorded wake time of the sleep.
	WokeAt time.Time `json:"woke_at"`
}

// Countdown sleeps until the run's start plus input.seconds with sleep_until, then returns the
// recorded wake time. It shows that a sleep survives restarts: its wake time is in the journal.
var Countdown = durable.Define("countdown", func(ctx *durable.Context, in CountdownInput) (CountdownOutput, error) {
	if in.Seconds < 0 {
		return CountdownOutput{}, fmt.Errorf("input.seconds is %d: it must be zero or more", in.Seconds)
	}
	wake := durable.Now(ctx).Add(time.Duration(in.Seconds) * time.Second)
	durable.SleepUntil(ctx, "countdown", wake)
	return CountdownOutput{WokeAt: wake}, nil
},
	durable.WithDescription("Sleeps until the run's start plus input.seconds, then returns the wake time."),
	durable.WithExampleInput(CountdownInput{Seconds: 10}),
)
