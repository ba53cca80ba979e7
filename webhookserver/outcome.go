package webhookserver

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// What became of a delivery is decided in deliver and answered in answer, the one place that
// counts it (centaur_webhook_deliveries_total and the endpoint's counters), logs it and writes
// the HTTP answer, so that no path forgets one of the three.

// Delivery outcomes, the "outcome" label of centaur_webhook_deliveries_total.
const (
	outcomeAccepted    = "accepted"
	outcomeDuplicate   = "duplicate"
	outcomeRejected    = "rejected"
	outcomeNotFound    = "not_found"
	outcomeNotReady    = "not_ready"
	outcomeUnavailable = "unavailable"
	outcomeRateLimited = "rate_limited"
	outcomeOverQuota   = "over_quota"
	outcomeBusy        = "busy"
	outcomeChallenge   = "challenge"
)

// webhookDeliveries counts deliveries by slug and outcome. Unknown slugs are counted with an
// empty slug, so that a scanner cannot grow the label set.
var webhookDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "centaur_webhook_deliveries_total",
	Help: "Webhook deliveries received, by slug and outcome (accepted, duplicate, rejected, not_found, not_ready, unavailable, rate_limited, challenge).",
}, []string{"slug", "outcome"})

func init() {
	metrics.Registry.MustRegister(webhookDeliveries)
}

// outcome is what became of one delivery: the label it is counted under, and what is
// answered: a run (accepted, duplicate) or a refusal.
type outcome struct {
	// label is one of the outcome* constants.
	label string
	// run is the run started (accepted), started already (duplicate), or not created
	// (over_quota, unavailable).
	run *workflowsv1alpha1.WorkflowRun
	// refusal is the answer to anything but an accepted or duplicate delivery.
	refusal *apierror.Error
	// by says what told a duplicate (run name, trigger key, delivery ledger); deleted says its
	// run was deleted since.
	by      string
	deleted bool
	// err is why the run was not created (over_quota, unavailable), for the log.
	err error
	// challenge is what a verified URL-verification delivery asks to have echoed
	// (outcomeChallenge); it starts no run.
	challenge string
}

// refused is the outcome of a delivery that failed a check: not_found for a slug no endpoint
// serves, rejected for a 4xx (the sender's problem), not_ready for a 5xx (ours).
func refused(route routes.Route, refusal *apierror.Error) outcome {
	switch {
	case route.Slug == "":
		return outcome{label: outcomeNotFound, refusal: refusal}
	case refusal.Status < http.StatusInternalServerError:
		return outcome{label: outcomeRejected, refusal: refusal}
	default:
		return outcome{label: outcomeNotReady, refusal: refusal}
	}
}

// rateLimited is the outcome of a delivery over a rate: 429 with the Retry-After of wait.
func rateLimited(wait time.Duration, message string) outcome {
	return outcome{label: outcomeRateLimited, refusal: apierror.RateLimited(wait, message)}
}

// duplicate is the outcome of a delivery whose run, or that of one a signature cannot tell
// from it, exists or existed already (by says what told; deleted, that it was deleted since):
// the delivery starts nothing.
func duplicate(run *workflowsv1alpha1.WorkflowRun, by string, deleted bool) outcome {
	return outcome{label: outcomeDuplicate, run: run, by: by, deleted: deleted}
}

// answer counts, logs and answers the outcome o of a delivery to route: 202 with the run when
// accepted, 200 with it for a duplicate, otherwise o's refusal. A refusal's detail goes to the
// log only: the sender is not authenticated.
func (s *Server) answer(w http.ResponseWriter, route routes.Route, o outcome) {
	webhookDeliveries.WithLabelValues(route.Slug, o.label).Inc()
	log := s.cfg.Logger
	switch {
	case o.label == outcomeAccepted:
		route.Counters().AddAccepted()
		log.Info("webhook_run_created", "slug", route.Slug, "namespace", o.run.Namespace, "run", o.run.Name, "workflow", route.WorkflowName)
		apierror.WriteJSON(w, http.StatusAccepted, webhookResponse(o.run, false))
		return
	case o.label == outcomeDuplicate:
		route.Counters().AddDuplicate()
		log.V(1).Info("webhook_duplicate", "slug", route.Slug, "namespace", o.run.Namespace, "run", o.run.Name, "by", o.by, "deleted", o.deleted)
		answer := webhookResponse(o.run, true)
		answer.RunDeleted = o.deleted
		apierror.WriteJSON(w, http.StatusOK, answer)
		return
	case o.label == outcomeChallenge:
		log.Info("webhook_url_verified", "slug", route.Slug)
		apierror.WriteJSON(w, http.StatusOK, map[string]string{"challenge": o.challenge})
		return
	case o.label == outcomeOverQuota:
		log.V(1).Info("webhook_run_over_quota", "slug", route.Slug, "namespace", o.run.Namespace, "reason", o.err.Error())
	case o.label == outcomeUnavailable:
		log.Error(o.err, "webhook_run_not_created", "slug", route.Slug, "namespace", o.run.Namespace, "run", o.run.Name)
	case o.label == outcomeNotReady && !route.Ready:
		log.V(1).Info("webhook_not_ready", "slug", route.Slug, "reason", route.Reason)
	case o.label == outcomeRateLimited, o.label == outcomeBusy:
		// Not logged: a flood would flood the log too; the metric tells.
	default:
		if o.label == outcomeRejected {
			route.Counters().AddRejected()
		}
		log.V(1).Info("webhook_rejected", "slug", route.Slug, "status", o.refusal.Status, "code", o.refusal.Code,
			"reason", o.refusal.Message, "detail", o.refusal.Detail)
	}
	o.refusal.Write(w)
}
