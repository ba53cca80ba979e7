package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

// ApprovalInput is the input of the approval workflow.
type ApprovalInput struct {
	// RequestID identifies the request; the deciding event's correlation id must equal it.
	RequestID string `json:"request_id"`
	// Timeout is how long to wait for a decision, as a Go duration ("30m"). Default 1h.
	Timeout string `json:"timeout,omitempty"`
}

// ApprovalDecision is the payload of an approval.decided event, and the workflow's output.
type ApprovalDecision struct {
	// Decision is "approved", "rejected", or "timed_out" when nobody decided in time.
	Decision string `json:"decision"`
	// By says who decided.
	By string `json:"by,omitempty"`
	// Comment is optional free text.
	Comment string `json:"comment,omitempty"`
}

// ApprovalEventType is the event type that decides an approval.
const ApprovalEventType = "approval.decided"

// DefaultApprovalTimeout is how long approval waits for a decision unless told otherwise.
const DefaultApprovalTimeout = time.Hour

// Approval submits a request (step "submit"), then waits for an approval.decided event whose
// correlation id is the request id, and returns the decision, or {"decision": "timed_out"}.
var Approval = durable.Define("approval", func(ctx *durable.Context, in ApprovalInput) (ApprovalDecision, error) {
	if in.RequestID == "" {
		return ApprovalDecision{}, errors.New("input.request_id is empty: it is the correlation id the decision event must carry")
	}
	timeout := DefaultApprovalTimeout
	if in.Timeout != "" {
		d, err := time.ParseDuration(in.Timeout)
		if err != nil || d <= 0 {
			return ApprovalDecision{}, fmt.Errorf("input.timeout %q is not a positive Go duration such as \"30m\"", in.Timeout)
		}
		timeout = d
	}
	if _, err := durable.Step(ctx, "submit", func(context.Context) (string, error) {
		return "submitted " + in.RequestID, nil
	}); err != nil {
		return ApprovalDecision{}, err
	}
	decision, err := durable.WaitForEvent[ApprovalDecision](ctx, "decision", ApprovalEventType, in.RequestID, durable.WithWaitTimeout(timeout))
	if errors.Is(err, durable.ErrEventTimeout) {
		return ApprovalDecision{Decision: "timed_out"}, nil
	}
	return decision, err
},
	durable.WithDescription("Submits a request, then waits for an approval.decided event with correlation id request_id (timeout default 1h)."),
	durable.WithExampleInput(ApprovalInput{RequestID: "req-42", Timeout: "1h"}),
)
