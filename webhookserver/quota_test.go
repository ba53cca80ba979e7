package webhookserver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

func TestADeliveryOverAQuotaIsAnsweredWithItsStatusCodeAndRetryAfter(t *testing.T) {
	for _, c := range []struct {
		err    *runquota.ExceededError
		status int
		code   string
	}{
		{&runquota.ExceededError{Namespace: "team", What: "bytes", Used: 10, Adding: 5, Limit: 12}, http.StatusTooManyRequests, apierror.CodeQuotaExceeded},
		{&runquota.ExceededError{Cluster: true, What: "bytes", Used: 10, Adding: 5, Limit: 12}, http.StatusInsufficientStorage, apierror.CodeStorageFull},
	} {
		rec := httptest.NewRecorder()
		createFailure(fmt.Errorf("create run: %w", c.err)).Write(rec)
		if rec.Code != c.status || rec.Header().Get("Retry-After") != "60" || !strings.Contains(rec.Body.String(), `"code": "`+c.code+`"`) {
			t.Errorf("%+v: answered %d, Retry-After %q, %s", c.err, rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
	}
}
