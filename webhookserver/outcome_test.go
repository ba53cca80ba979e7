package webhookserver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// TestAnswerCountsLogsAndAnswersEveryOutcome checks the one place a delivery's outcome is
// answered: its status, code and Retry-After, the metric and the endpoint's counters, and the
// log line, and that a refusal's detail reaches the log but never the answer.
func TestAnswerCountsLogsAndAnswersEveryOutcome(t *testing.T) {
	run := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: "hook-0123", Namespace: "team"},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "echo"}}
	unauthorized := &apierror.Error{Status: http.StatusUnauthorized, Code: apierror.CodeUnauthorized, Message: "not signed", Detail: "header X-Sig missing"}
	quota := &runquota.ExceededError{Namespace: "team", What: "runs", Used: 3, Adding: 1, Limit: 3}
	cases := []struct {
		name         string
		notReady     bool
		unknown      bool
		outcome      outcome
		status       int
		code         string
		retryAfter   string
		log          string
		counts       routes.Counts
		notInAnswer  string
		wantInAnswer string
	}{
		{name: "accepted", outcome: outcome{label: outcomeAccepted, run: run}, status: http.StatusAccepted,
			log: "webhook_run_created", counts: routes.Counts{Accepted: 1}, wantInAnswer: `"duplicate": false`},
		{name: "duplicate of a deleted run", outcome: duplicate(run, "delivery ledger", true), status: http.StatusOK,
			log: "webhook_duplicate", counts: routes.Counts{Duplicates: 1}, wantInAnswer: `"run_deleted": true`},
		{name: "rejected", outcome: outcome{label: outcomeRejected, refusal: unauthorized}, status: http.StatusUnauthorized,
			code: apierror.CodeUnauthorized, log: "webhook_rejected", counts: routes.Counts{Rejected: 1}, notInAnswer: "X-Sig"},
		{name: "unknown slug", unknown: true, outcome: refused(unknownSlugRoute(), unauthorized), status: http.StatusUnauthorized,
			code: apierror.CodeUnauthorized, log: "webhook_rejected", notInAnswer: "X-Sig"},
		{name: "endpoint not ready", notReady: true, outcome: outcome{label: outcomeNotReady, refusal: notReady("")},
			status: http.StatusServiceUnavailable, code: apierror.CodeNotReady, retryAfter: notReadyRetryAfter, log: "webhook_not_ready"},
		{name: "secret unusable", outcome: outcome{label: outcomeNotReady, refusal: notReady("the secret is empty")},
			status: http.StatusServiceUnavailable, code: apierror.CodeNotReady, retryAfter: notReadyRetryAfter, log: "webhook_rejected", notInAnswer: "empty"},
		{name: "rate limited", outcome: rateLimited(1500*time.Millisecond, "slow down"), status: http.StatusTooManyRequests,
			code: apierror.CodeRateLimited, retryAfter: "2"},
		{name: "busy", outcome: outcome{label: outcomeBusy, refusal: errBusy}, status: http.StatusServiceUnavailable,
			code: apierror.CodeUnavailable, retryAfter: "1"},
		{name: "over quota", outcome: outcome{label: outcomeOverQuota, run: run, refusal: createFailure(quota), err: quota},
			status: http.StatusTooManyRequests, code: apierror.CodeQuotaExceeded, retryAfter: "60", log: "webhook_run_over_quota"},
		{name: "not created", outcome: outcome{label: outcomeUnavailable, run: run, refusal: createFailure(errors.New("etcd down")), err: errors.New("etcd down")},
			status: http.StatusServiceUnavailable, code: apierror.CodeUnavailable, retryAfter: notReadyRetryAfter, log: "webhook_run_not_created", notInAnswer: "etcd"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logged strings.Builder
			s := &Server{cfg: Config{Logger: funcr.New(func(prefix, args string) { logged.WriteString(args + "\n") }, funcr.Options{Verbosity: 1})}}
			table := routes.NewTable()
			if err := table.Set(routes.Route{Key: routes.Key{Namespace: "team", Name: c.name}, Slug: "hook", WorkflowName: "echo",
				Verifier: noSignaturePasses{}, Ready: !c.notReady, Reason: "SecretNotFound"}); err != nil {
				t.Fatal(err)
			}
			route, _ := table.Lookup("hook")
			if c.unknown {
				route = unknownSlugRoute()
			}
			metric := webhookDeliveries.WithLabelValues(route.Slug, c.outcome.label)
			before := testutil.ToFloat64(metric)
			rec := httptest.NewRecorder()
			s.answer(rec, route, c.outcome)

			if rec.Code != c.status || rec.Header().Get("Retry-After") != c.retryAfter {
				t.Errorf("answered %d with Retry-After %q, want %d and %q", rec.Code, rec.Header().Get("Retry-After"), c.status, c.retryAfter)
			}
			body := rec.Body.String()
			if c.code != "" && !strings.Contains(body, `"code": "`+c.code+`"`) {
				t.Errorf("answer %s lacks code %s", body, c.code)
			}
			if c.notInAnswer != "" && strings.Contains(body, c.notInAnswer) {
				t.Errorf("answer %s tells the sender %q", body, c.notInAnswer)
			}
			if c.wantInAnswer != "" && !strings.Contains(body, c.wantInAnswer) {
				t.Errorf("answer %s lacks %s", body, c.wantInAnswer)
			}
			if got := testutil.ToFloat64(metric) - before; got != 1 {
				t.Errorf("centaur_webhook_deliveries_total{outcome=%q} grew by %v, want 1", c.outcome.label, got)
			}
			if got := table.Counters(route.Key).Pending(); !c.unknown && got != c.counts {
				t.Errorf("endpoint counters = %+v, want %+v", got, c.counts)
			}
			if c.log == "" && logged.Len() > 0 || !strings.Contains(logged.String(), c.log) {
				t.Errorf("logged %q, want %q", logged.String(), c.log)
			}
			if c.outcome.refusal != nil && c.outcome.refusal.Detail != "" && !strings.Contains(logged.String(), c.outcome.refusal.Detail) {
				t.Errorf("logged %q without the detail %q", logged.String(), c.outcome.refusal.Detail)
			}
		})
	}
}
