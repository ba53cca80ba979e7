package core

import (
	"errors"
	"fmt"

	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// MaxErrorBytes bounds the error message a journal entry records; longer messages are cut
// (see textbound.Cut), so that one huge error never outgrows the journal.
const MaxErrorBytes = 32 << 10

// Reasons a run fails with. They appear in status.error.reason and on the Succeeded condition.
// api/v1alpha1 mirrors every Reason of the engine under the same name (its reasons_test.go fails
// on a reason added here without its twin there).
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
	// ReasonTooManyChildren: the run asked for more child runs than Limits.MaxChildren.
	ReasonTooManyChildren = "TooManyChildren"
)

// Failure is why a run failed: a CamelCase reason and a message for people.
type Failure struct {
	Reason  string
	Message string
}

// Error makes a Failure usable as an error.
func (f *Failure) Error() string { return f.Reason + ": " + f.Message }

// StepError is what a step returns once it failed for good: its attempts are exhausted or its
// error was non-retryable. It carries only what the journal records (the message and the error
// type), so a replay returns exactly the same error as the first execution.
//
// When the last attempt's error had a type (an *ApplicationError, or any error with an
// ErrorType method), the StepError wraps an *ApplicationError of that type: errors.Is matches
// it against any error of the same type (a sentinel made with NewError, or a value of your
// own error type), and errors.As finds the *ApplicationError, on the first execution and after
// replay alike. errors.As into your own error type does not survive replay: branch on the type.
type StepError struct {
	// Step is the step's name.
	Step string
	// Attempts is how many times the step's function ran.
	Attempts int
	// Message is the last attempt's error message.
	Message string
	// Type is the last attempt's error type (see ApplicationError), empty when it had none.
	Type string
}

// Error says which step failed, after how many attempts, and why.
func (e *StepError) Error() string {
	msg := fmt.Sprintf("step %q failed after %d attempt(s): %s", e.Step, e.Attempts, e.Message)
	if e.Type != "" {
		msg += " (error type " + e.Type + ")"
	}
	return msg
}

// Unwrap returns the typed error the step failed with, as recorded; nil when it had no type.
func (e *StepError) Unwrap() error {
	if e.Type == "" {
		return nil
	}
	return &ApplicationError{Type: e.Type, Message: e.Message}
}

// ApplicationError is an error with a type that a step's function returns: the type is
// recorded in the journal with the message (status.journal[].errorType), so the handler can
// branch on it after replay, and a retry policy can refuse to retry it. It plays the part of
// Temporal's ApplicationError. Make one with NewError; wrapping it with fmt.Errorf("...: %w")
// keeps its type.
type ApplicationError struct {
	// Type names the kind of failure, for example "NotFound" or "RateLimited". Keep it stable:
	// recorded runs are matched by it.
	Type string
	// Message says what went wrong.
	Message string
	// NonRetryable fails the step at once instead of retrying it.
	NonRetryable bool
}

// NewError returns an *ApplicationError of errType. With nonRetryable the step fails at once,
// whatever its retry policy. Declare the errors a handler branches on as sentinels:
//
//	var ErrNotFound = durable.NewError("NotFound", "no such user", true)
//
// and test a step's error with errors.Is(err, ErrNotFound), which matches by type.
func NewError(errType, message string, nonRetryable bool) error {
	return &ApplicationError{Type: errType, Message: message, NonRetryable: nonRetryable}
}

// Error returns the message.
func (e *ApplicationError) Error() string { return e.Message }

// ErrorType returns the error's type; any error with this method is typed (see errorTypeOf).
func (e *ApplicationError) ErrorType() string { return e.Type }

// Is matches any error of the same type: another *ApplicationError, or an author's error with
// an ErrorType method.
func (e *ApplicationError) Is(target error) bool {
	t, ok := target.(typedError)
	return ok && e.Type != "" && t.ErrorType() == e.Type
}

// typedError is an error that names its type; a step's function may return any such error.
type typedError interface {
	error
	ErrorType() string
}

// MaxErrorTypeBytes bounds the error type a journal entry records; a longer one is cut.
const MaxErrorTypeBytes = 256

// errorTypeOf returns the type of the first typed error in err's chain, or "".
func errorTypeOf(err error) string {
	var typed typedError
	if errors.As(err, &typed) {
		return textbound.Cut(typed.ErrorType(), MaxErrorTypeBytes)
	}
	return ""
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

// IsNonRetryable reports whether err, or an error it wraps, was marked with NonRetryable or
// is an *ApplicationError with NonRetryable set.
func IsNonRetryable(err error) bool {
	var nr *nonRetryable
	var app *ApplicationError
	return errors.As(err, &nr) || errors.As(err, &app) && app.NonRetryable
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
