package restapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// apiError is an error with the HTTP status and code it answers with. Handlers return it for
// everything the client can act on; any other error becomes a 500 whose details are logged.
type apiError struct {
	status  int
	code    string
	message string
	// retryAfter, when set, is the Retry-After header's value (a 429 or a 503).
	retryAfter string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

// errorf builds an apiError with a formatted message.
func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// toAPIError maps err to what the client sees: apiErrors as they are, the API server's errors
// by their kind, deadlines as 503. The second result is false for errors the client cannot
// act on (a 500), which the caller logs.
func toAPIError(err error, what string) (*apiError, bool) {
	var (
		ae    *apiError
		quota *runquota.ExceededError
	)
	switch {
	case errors.As(err, &ae):
		return ae, true
	case errors.As(err, &quota):
		status, code := apierror.QuotaAnswer(quota.Cluster)
		return &apiError{status: status, code: code, message: fmt.Sprintf("%s: %s", what, quota.Error()),
			retryAfter: strconv.Itoa(int(runquota.RetryAfter.Seconds()))}, true
	case apierrors.IsNotFound(err):
		return errorf(http.StatusNotFound, apierror.CodeNotFound, "%s: %s", what, statusMessage(err)), true
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return errorf(http.StatusUnprocessableEntity, apierror.CodeInvalidRequest, "%s: the API server refused it: %s", what, statusMessage(err)), true
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		return errorf(http.StatusConflict, apierror.CodeConflict, "%s: %s; retry", what, statusMessage(err)), true
	case apierrors.IsResourceExpired(err), apierrors.IsGone(err):
		return errorf(http.StatusGone, apierror.CodeExpired, "%s: the continue token has expired; start the listing again without it", what), true
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, apierror.CodeUnavailable, "%s: the Kubernetes API server did not answer in time; retry shortly", what), true
	default:
		return errorf(http.StatusInternalServerError, apierror.CodeInternal, "%s failed; the server logged the details", what), false
	}
}

// statusMessage is the API server's message for err, or err's text.
func statusMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Message != "" {
		return status.Status().Message
	}
	return err.Error()
}
