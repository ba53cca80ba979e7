package durable

import (
	"errors"
	"fmt"
)

// MaxErrorBytes bounds the error message a journal entry records; longer messages are cut
// (see textbound.Cut), so that one huge error never outgrows the journal.
const MaxErrorBytes = 32 << 10

// Reasons a run fails with. They appear in status.error.reason and on the Succeeded condition.
const (
	ReasonUnknownWorkflow  = "UnknownWorkflow"
	ReasonInvalidInput     = "InvalidInput"
	ReasonNonDeterministic = "NonDeterministic"
	ReasonHandlerError     = "HandlerError"
	ReasonStepFailed       = "StepFailed"
	ReasonPanic            = "Panic"
	ReasonJournalTooLarge  = "JournalTooLarge"
	ReasonOutputTooLarge   = "OutputTooLarge"
	ReasonHandlerExited    = "HandlerExited"
)

// Failure is why a run failed: a CamelCase reason and a message for people.
type Failure struct {
	Reason  string
	Message string
}

// Error makes a Failure usable as an error.
func (f *Failure) Error() string { return f.Reason + ": " + f.Message }

// StepError is what a step returns once it failed for good: its attempts are exhausted or its
// error was non-retryable. It carries the recorded message only, so a replay returns exactly
// the same error as the first execution.
type StepError struct {
	// Step is the step's name.
	Step string
	// Attempts is how many times the step's function ran.
	Attempts int
	// Message is the last attempt's error message.
	Message string
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %q failed after %d attempt(s): %s", e.Step, e.Attempts, e.Message)
}

// nonRetryable marks an error that must not be retried.
type nonRetryable struct{ err error }

func (e *nonRetryable) Error() string { return e.err.Error() }
func (e *nonRetryable) Unwrap() error { return e.err }

// NonRetryable marks err so that the step fails at once instead of being retried: use it for
// errors that another attempt cannot fix, such as a 404 or invalid data.
func NonRetryable(err error) error {
	if err == nil {
		return nil
	}
	return &nonRetryable{err: err}
}

// IsNonRetryable reports whether err, or an error it wraps, was marked with NonRetryable.
func IsNonRetryable(err error) bool {
	var nr *nonRetryable
	return errors.As(err, &nr)
}

// failureOf maps a handler's error to the run's failure reason.
func failureOf(err error) *Failure {
	var failure *Failure
	if errors.As(err, &failure) {
		return failure
	}
	var invalid *invalidInputError
	if errors.As(err, &invalid) {
		return &Failure{Reason: ReasonInvalidInput, Message: "input does not decode into the workflow's input type: " + invalid.Error()}
	}
	var child *ChildError
	if errors.As(err, &child) {
		return &Failure{Reason: ReasonChildFailed, Message: err.Error()}
	}
	var agent *AgentError
	if errors.As(err, &agent) {
		return &Failure{Reason: ReasonAgentFailed, Message: err.Error()}
	}
	var step *StepError
	if errors.As(err, &step) {
		return &Failure{Reason: ReasonStepFailed, Message: err.Error()}
	}
	return &Failure{Reason: ReasonHandlerError, Message: err.Error()}
}
