package restapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// Handlers return an *apierror.Error for everything the client can act on; any other error
// becomes a 500 whose details are logged.

// toAPIError maps err to what the client sees: *apierror.Errors as they are, the API server's errors
// by their kind, deadlines as 503. The second result is false for errors the client cannot
// act on (a 500), which the caller logs.
func toAPIError(err error, what string) (*apierror.Error, bool) {
	var (
		ae    *apierror.Error
		quota *runquota.ExceededError
	)
	switch {
	case errors.As(err, &ae):
		return ae, true
	case errors.As(err, &quota):
		return apierror.QuotaExceeded(quota.Cluster, fmt.Sprintf("%s: %s", what, quota.Error()), runquota.RetryAfter), true
	case apierrors.IsNotFound(err):
		return apierror.Errorf(http.StatusNotFound, apierror.CodeNotFound, "%s: %s", what, statusMessage(err)), true
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return apierror.Errorf(http.StatusUnprocessableEntity, apierror.CodeInvalidRequest, "%s: the API server refused it: %s", what, statusMessage(err)), true
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		return apierror.Errorf(http.StatusConflict, apierror.CodeConflict, "%s: %s; retry", what, statusMessage(err)), true
	case apierrors.IsResourceExpired(err), apierrors.IsGone(err):
		return apierror.Errorf(http.StatusGone, apierror.CodeExpired, "%s: the continue token has expired; start the listing again without it", what), true
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		return apierror.Errorf(http.StatusServiceUnavailable, apierror.CodeUnavailable, "%s: the Kubernetes API server did not answer in time; retry shortly", what), true
	default:
		return apierror.Errorf(http.StatusInternalServerError, apierror.CodeInternal, "%s failed; the server logged the details", what), false
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
