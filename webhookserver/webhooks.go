package webhookserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/webhook/envelope"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhook/signature"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// Webhook deliveries become WorkflowRuns here. The handler never reads Kubernetes objects: the
// route table (fed by the WebhookEndpoint controller) says everything about a slug, so a
// delivery costs one write to the API server, the run's create. Idempotency comes from that
// write: the run's name is derived from the endpoint and the delivery's trigger value, so a
// redelivery hits AlreadyExists and is answered 200 with the same run. Once the run is
// deleted, the delivery ledger (package ledger, read from memory) still knows its name for
// --webhook-identity-retention, and the redelivery is answered 200 all the same.

const (
	// runNameHashLen is how many hex digits of the delivery hash end a run's name: 64 bits.
	runNameHashLen = 16
	// maxRunNameSlugLen keeps "<slug>-<hash>" within 63 characters, a DNS label.
	maxRunNameSlugLen = validation.DNS1123LabelMaxLength - 1 - runNameHashLen
	// maxEnvelopeBytes caps the run's input. A body at the 1 MiB limit can grow when encoded
	// as JSON text; the run must still fit etcd's 1.5 MiB request limit with room for status.
	maxEnvelopeBytes = 1280 * 1024
	// createTimeout bounds the run's create, so a stuck API server gets a 503 (and a retry
	// from the provider) instead of a hung connection.
	createTimeout = 15 * time.Second
	// notReadyRetryAfter is the Retry-After, in seconds, of a 503.
	notReadyRetryAfter = "30"
)

// WebhookResponse is the JSON body of a 202 (new run) or 200 (redelivery) answer to a webhook.
type WebhookResponse struct {
	// ID is the run's name.
	ID string `json:"id"`
	// Namespace is the run's namespace.
	Namespace string `json:"namespace"`
	// WorkflowName is the workflow the run executes.
	WorkflowName string `json:"workflow_name"`
	// StatusURL is where the REST API reports the run's status.
	StatusURL string `json:"status_url"`
	// Duplicate is true when the delivery had already started this run.
	Duplicate bool `json:"duplicate"`
	// RunDeleted is true when that run was deleted since (after --webhook-run-ttl, or by
	// someone) and the delivery is still within --webhook-identity-retention: it starts
	// nothing, and StatusURL answers 404.
	RunDeleted bool `json:"run_deleted,omitempty"`
}

// handleWebhook serves /api/webhooks/{slug}: it finds the slug's route, runs the delivery
// (deliver) and answers its outcome. Every refusal is JSON and creates nothing.
func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	// Until the body is read, a refusal closes the connection: Go's server would otherwise
	// wait for up to 256 KiB of an unread body before answering, at the sender's pace.
	w.Header().Set("Connection", "close")
	route, ok := s.lookupRoute(slug)
	if !ok {
		s.cfg.Logger.V(1).Info("webhook_unknown_slug", "slug", slug)
		route = unknownSlugRoute()
	}
	s.answer(w, route, s.deliver(w, r, slug, route))
}

// deliver checks the request against the endpoint (readiness, method, content type, size, the
// client's budget of failures, a slot in flight, body, signature, the slug's rate), builds the
// envelope and creates the run. It returns at the first check that fails; it answers nothing
// (see answer).
func (s *Server) deliver(w http.ResponseWriter, r *http.Request, slug string, route routes.Route) outcome {
	if !route.Ready {
		return outcome{label: outcomeNotReady, refusal: notReady("")}
	}
	if refusal := checkHeaders(r, route); refusal != nil {
		return refused(route, refusal)
	}
	client := envelope.SourceIP(r.RemoteAddr, r.Header, s.cfg.TrustedProxies)
	if ok, wait := s.unverified.Ready(client, time.Now()); !ok {
		return rateLimited(wait, "this client sent more deliveries that failed their signature check, or whose body came too slowly, than it may; retry after the time in Retry-After")
	}
	release, ok := s.deliveries.TryAcquire()
	if !ok {
		return outcome{label: outcomeBusy, refusal: errBusy}
	}
	defer release()
	env, trigger, refusal := s.acceptDelivery(w, r, route)
	if refusal == nil || refusal.Status != http.StatusRequestTimeout {
		w.Header().Del("Connection") // the body was read: the connection may serve the next delivery
	}
	if refusal != nil {
		if refusal.Status == http.StatusUnauthorized || refusal.Status == http.StatusRequestTimeout {
			s.unverified.Allow(client, time.Now())
		}
		return refused(route, refusal)
	}
	// Only a verified delivery is charged to its slug, so forged ones cannot make the slug
	// refuse its real sender.
	if ok, wait := s.slugRates.Allow(slug, time.Now()); !ok {
		return rateLimited(wait, "this webhook takes more deliveries than it may; retry after the time in Retry-After")
	}
	if challenge, ok := urlVerification(route, env); ok {
		return outcome{label: outcomeChallenge, challenge: challenge}
	}
	return s.startRun(r.Context(), route, env, trigger, triggerKeyLabel(route, triggerKeyValue(route, r.Header, env)), s.traceparent(r))
}

// traceparent is the caller's trace context to keep on the run r creates, "" when the server
// keeps none (Config.TraceContext) or r carries none.
func (s *Server) traceparent(r *http.Request) string {
	if !s.cfg.TraceContext {
		return ""
	}
	return tracing.Incoming(r.Header)
}

// urlVerification recognizes Slack's URL verification, the delivery Slack sends when an
// Events API request URL is saved ({"type": "url_verification", "challenge": "..."}) and which
// it wants answered with the challenge: it returns the challenge. Only a signed route's
// verified delivery counts, so only the holder of the secret can have a challenge echoed (an
// unsigned route starts a run of it like of any delivery); it starts no run.
func urlVerification(route routes.Route, env envelope.Envelope) (string, bool) {
	if len(route.Secrets) == 0 {
		return "", false
	}
	var body struct {
		Type      string  `json:"type"`
		Challenge *string `json:"challenge"`
	}
	if json.Unmarshal(env.Webhook.Body, &body) != nil || body.Type != "url_verification" || body.Challenge == nil {
		return "", false
	}
	return *body.Challenge, true
}

// lookupRoute returns the route of slug, or false when there is none (or no table).
func (s *Server) lookupRoute(slug string) (routes.Route, bool) {
	if s.cfg.Routes == nil {
		return routes.Route{}, false
	}
	return s.cfg.Routes.Lookup(slug)
}

// unknownSlugRoute is what a delivery to a slug that no endpoint serves is checked against: a
// route with the defaults (POST; JSON or a form; 1 MiB) whose signature check no delivery
// passes. Its answers (405, 415, 413, 408, 401, 429) are those a known slug gives a sender
// without its secret, so the unauthenticated cannot list the slugs that exist by probing; the
// log (webhook_unknown_slug) and the not_found outcome of centaur_webhook_deliveries_total say
// what happened. Its Slug is empty, which no served route's is.
func unknownSlugRoute() routes.Route {
	return routes.Route{
		Verifier:            noSignaturePasses{},
		AllowedMethods:      routes.DefaultAllowedMethods,
		AllowedContentTypes: routes.DefaultAllowedContentTypes,
		MaxBodyBytes:        routes.DefaultMaxBodyBytes,
		Ready:               true,
	}
}

// noSignaturePasses is the verifier of unknownSlugRoute.
type noSignaturePasses struct{}

// Verify refuses every delivery as a known slug refuses one signed with another secret.
func (noSignaturePasses) Verify(http.Header, []byte, [][]byte, time.Time) error {
	return fmt.Errorf("no endpoint serves this slug: %w", signature.ErrBadSignature)
}

// notReady is the 503 of an endpoint that claims its slug but cannot serve it, or whose
// secrets cannot verify. The reason (a missing Secret, ...) stays in the endpoint's status and
// the log (detail): the caller is not authenticated.
func notReady(detail string) *apierror.Error {
	return &apierror.Error{Status: http.StatusServiceUnavailable, Code: apierror.CodeNotReady, Message: notReadyMessage,
		RetryAfter: notReadyRetryAfter, Detail: detail}
}

// notReadyMessage is all an unauthenticated sender learns of an endpoint that cannot serve.
const notReadyMessage = "this webhook is not ready to take deliveries; retry later (its owner sees why in the endpoint's status)"

// checkHeaders runs the checks a delivery's headers decide, in the order a sender can fix
// them: method, content type, declared size. They pass before the delivery takes a slot.
func checkHeaders(r *http.Request, route routes.Route) *apierror.Error {
	if refusal := checkMethod(r, route); refusal != nil {
		return refusal
	}
	if refusal := checkContentType(r, route); refusal != nil {
		return refusal
	}
	if r.ContentLength > route.MaxBodyBytes {
		return tooLarge(route.MaxBodyBytes)
	}
	return nil
}

// acceptDelivery reads the body (within the server's BodyReadTimeout), checks its signature
// and builds the envelope. It returns the envelope and the delivery's trigger value.
func (s *Server) acceptDelivery(w http.ResponseWriter, r *http.Request, route routes.Route) (envelope.Envelope, string, *apierror.Error) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout))
	raw, refusal := readBody(w, r, route.MaxBodyBytes, s.cfg.BodyReadTimeout)
	if refusal != nil {
		return envelope.Envelope{}, "", refusal
	}
	if refusal := verify(r, route, raw); refusal != nil {
		return envelope.Envelope{}, "", refusal
	}
	env, err := envelope.Build(envelope.Request{
		Slug: route.Slug, Provider: route.Provider, Method: r.Method, Path: r.URL.Path,
		Header: r.Header, Query: r.URL.Query(), RawBody: raw, RemoteAddr: r.RemoteAddr,
	}, envelope.Options{TrustedProxies: s.cfg.TrustedProxies, ExtraSensitiveHeaders: route.SensitiveHeaders})
	if err != nil {
		return envelope.Envelope{}, "", &apierror.Error{Status: http.StatusBadRequest, Code: apierror.CodeMalformedBody, Message: err.Error()}
	}
	return env, deliveryIdentity(route, r.Header, raw, env), nil
}

// deliveryIdentity is what identifies the delivery, by the route's Identity: redeliveries,
// and replays a signature cannot tell from them, map to the same run.
func deliveryIdentity(route routes.Route, h http.Header, raw []byte, env envelope.Envelope) string {
	switch route.Identity {
	case routes.IdentitySignedID:
		return envelope.SignedIDIdentity(h, raw)
	case routes.IdentityTrigger:
		if route.TriggerBodyField != "" {
			if v := envelope.BodyFieldValue(env.Webhook.Body, route.TriggerBodyField); v != "" {
				return "body:" + v
			}
			return envelope.BodyIdentity(raw)
		}
		return envelope.TriggerValue(h, route.TriggerKey, raw)
	}
	return envelope.BodyIdentity(raw)
}

// triggerKeyValue is the delivery's trigger key: the route's TriggerBodyField of the decoded
// body, or its TriggerKey header; "" when the delivery carries none.
func triggerKeyValue(route routes.Route, h http.Header, env envelope.Envelope) string {
	if route.TriggerBodyField != "" {
		return envelope.BodyFieldValue(env.Webhook.Body, route.TriggerBodyField)
	}
	if route.TriggerKey == "" {
		return ""
	}
	return strings.TrimSpace(h.Get(route.TriggerKey))
}

// checkMethod refuses a method the endpoint does not list with 405 and an Allow header.
func checkMethod(r *http.Request, route routes.Route) *apierror.Error {
	if slices.Contains(route.AllowedMethods, r.Method) {
		return nil
	}
	return &apierror.Error{
		Status: http.StatusMethodNotAllowed, Code: apierror.CodeMethodNotAllowed, Allow: route.AllowedMethods,
		Message: fmt.Sprintf("method %s is not allowed on this webhook; use %s", r.Method, strings.Join(route.AllowedMethods, " or ")),
	}
}

// checkContentType refuses a media type the endpoint does not list with 415. Parameters such
// as charset do not matter; a missing Content-Type is refused too.
func checkContentType(r *http.Request, route routes.Route) *apierror.Error {
	media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if media != "" && slices.Contains(route.AllowedContentTypes, media) {
		return nil
	}
	got := "no Content-Type"
	if media != "" {
		got = "Content-Type " + media
	}
	return &apierror.Error{
		Status: http.StatusUnsupportedMediaType, Code: apierror.CodeUnsupportedMediaType,
		Message: fmt.Sprintf("%s is not accepted by this webhook; send one of %s", got, strings.Join(route.AllowedContentTypes, ", ")),
	}
}

// readBody reads at most limit bytes of body, refusing more with 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, *apierror.Error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return nil, tooLarge(limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &apierror.Error{Status: http.StatusRequestTimeout, Code: apierror.CodeRequestTimeout,
			Message: fmt.Sprintf("the body did not arrive within %s of the headers; send it at once", timeout)}
	case err != nil:
		return nil, &apierror.Error{Status: http.StatusBadRequest, Code: apierror.CodeMalformedBody, Message: fmt.Sprintf("read the body: %v", err)}
	}
	return raw, nil
}

// tooLarge is the answer to a body over the webhook's limit.
func tooLarge(limit int64) *apierror.Error {
	return &apierror.Error{Status: http.StatusRequestEntityTooLarge, Code: apierror.CodePayloadTooLarge,
		Message: fmt.Sprintf("the body exceeds this webhook's limit of %d bytes (spec.maxBodyBytes)", limit)}
}

// verify checks the signature over the raw body as sent. A secret problem on our side is a
// 503 (the sender should retry once it is fixed); anything else is the sender's 401.
func verify(r *http.Request, route routes.Route, raw []byte) *apierror.Error {
	err := route.Verifier.Verify(r.Header, raw, route.Secrets, time.Now())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, signature.ErrNoSecret), errors.Is(err, signature.ErrInvalidSecret):
		return notReady(err.Error())
	default:
		return &apierror.Error{Status: http.StatusUnauthorized, Code: apierror.CodeUnauthorized,
			Message: "signature verification failed: the delivery is not signed with this webhook's secret", Detail: err.Error()}
	}
}

// startRun creates the delivery's run: accepted, or a duplicate when the run already exists
// or existed (it was deleted within the delivery ledger's retention). The 202 goes out only
// after the API server stored the run; when it cannot, 503 asks the provider to retry, which is
// safe since the retry maps to the same run name.
func (s *Server) startRun(ctx context.Context, route routes.Route, env envelope.Envelope, trigger, triggerKey, traceparent string) outcome {
	run, refusal := newWebhookRun(route, env, trigger, triggerKey, s.cfg.WebhookRunTTL)
	if refusal != nil {
		return refused(route, refusal)
	}
	tracing.KeepParent(run, traceparent)
	ctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	if seen, ok := s.runOfTriggerKey(ctx, run); ok {
		return duplicate(seen, "trigger key", false)
	}
	if seen, deleted, ok := s.runOfDeletedDelivery(ctx, run); ok {
		return duplicate(seen, "delivery ledger", deleted)
	}
	err := s.cfg.Client.Create(ctx, run)
	switch {
	case err == nil:
		return outcome{label: outcomeAccepted, run: run}
	case apierrors.IsAlreadyExists(err):
		return duplicate(run, "run name", false)
	case errors.As(err, new(*runquota.ExceededError)):
		return outcome{label: outcomeOverQuota, run: run, refusal: createFailure(err), err: err}
	default:
		return outcome{label: outcomeUnavailable, run: run, refusal: createFailure(err), err: err}
	}
}

// runOfDeletedDelivery reports whether the delivery ledger holds run's name: a delivery that
// run stands for started a run that was deleted since (see Config.DeletedRuns). It returns the
// run of that name when one exists again, as any redelivery's, or else run itself, deleted.
func (s *Server) runOfDeletedDelivery(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) (*workflowsv1alpha1.WorkflowRun, bool, bool) {
	if s.cfg.DeletedRuns == nil || !s.cfg.DeletedRuns.Deleted(run.Namespace, run.Name) {
		return nil, false, false
	}
	if s.cfg.Runs != nil {
		again := &workflowsv1alpha1.WorkflowRun{}
		if err := s.cfg.Runs.Get(ctx, client.ObjectKeyFromObject(run), again); err == nil {
			return again, false, true
		}
	}
	return run, true, true
}

// createFailure maps a failed create to an answer: 413 when the run is too large for the API
// server, 429 or 507 when it does not fit a quota (package runquota), otherwise 503 so the
// provider retries.
func createFailure(err error) *apierror.Error {
	var quota *runquota.ExceededError
	if errors.As(err, &quota) {
		return apierror.QuotaExceeded(quota.Cluster, quota.Error(), runquota.RetryAfter)
	}
	if apierrors.IsRequestEntityTooLargeError(err) {
		return &apierror.Error{Status: http.StatusRequestEntityTooLarge, Code: apierror.CodePayloadTooLarge,
			Message: "the delivery is too large to store as a workflow run"}
	}
	return &apierror.Error{Status: http.StatusServiceUnavailable, Code: apierror.CodeUnavailable, RetryAfter: notReadyRetryAfter,
		Message: "the Kubernetes API server did not store the run; retry the delivery (it is idempotent)"}
}

// runOfTriggerKey returns the run that a delivery with run's trigger key started already, when
// run is named by its body (see LabelTriggerKey). The cache may lag a moment behind a run
// created an instant ago; a redelivery of the same body is caught by the run's name anyway.
// It looks the key up in the cache's index (IndexTriggerKeys) when there is one: a label
// selector is matched against every run of the namespace, which made a delivery's cost grow
// with the runs kept.
func (s *Server) runOfTriggerKey(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) (*workflowsv1alpha1.WorkflowRun, bool) {
	key := run.Labels[workflowsv1alpha1.LabelTriggerKey]
	if key == "" || s.cfg.Runs == nil {
		return nil, false
	}
	var runs workflowsv1alpha1.WorkflowRunList
	err := s.cfg.Runs.List(ctx, &runs, client.InNamespace(run.Namespace), client.MatchingFields{indexTriggerKey: key})
	if err != nil {
		// A cache without the index: match the label instead.
		err = s.cfg.Runs.List(ctx, &runs, client.InNamespace(run.Namespace), client.MatchingLabels{workflowsv1alpha1.LabelTriggerKey: key})
	}
	if err != nil || len(runs.Items) == 0 {
		return nil, false
	}
	return &runs.Items[0], true
}

// indexTriggerKey indexes runs by their LabelTriggerKey.
const indexTriggerKey = "centaur.triggerKey"

// IndexTriggerKeys indexes the runs of indexer (the cache the Server's Config.Runs reads) by
// their trigger key label, so that a delivery finds the run of its trigger key at once. The
// manager calls it before the cache starts.
func IndexTriggerKeys(ctx context.Context, indexer client.FieldIndexer) error {
	err := indexer.IndexField(ctx, &workflowsv1alpha1.WorkflowRun{}, indexTriggerKey, func(o client.Object) []string {
		if key := o.GetLabels()[workflowsv1alpha1.LabelTriggerKey]; key != "" {
			return []string{key}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index runs by their trigger key: %w", err)
	}
	return nil
}

// triggerKeyLabel is the LabelTriggerKey of a delivery to route: a hash of its trigger key's
// value v, when the route names runs by the body and the delivery carries the trigger key.
func triggerKeyLabel(route routes.Route, v string) string {
	if route.Identity != routes.IdentityBody || v == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(route.Key.Namespace + "/" + route.Key.Name + "/" + v))
	return hex.EncodeToString(sum[:])[:32]
}

// newWebhookRun builds the run a delivery starts. It refuses an envelope too large to store.
func newWebhookRun(route routes.Route, env envelope.Envelope, trigger, triggerKey string, ttl time.Duration) (*workflowsv1alpha1.WorkflowRun, *apierror.Error) {
	input, err := json.Marshal(env)
	if err != nil {
		return nil, &apierror.Error{Status: http.StatusBadRequest, Code: apierror.CodeMalformedBody, Message: fmt.Sprintf("encode the envelope: %v", err)}
	}
	if len(input) > maxEnvelopeBytes {
		return nil, &apierror.Error{Status: http.StatusRequestEntityTooLarge, Code: apierror.CodePayloadTooLarge,
			Message: fmt.Sprintf("the delivery encodes to %d bytes of workflow input, over the %d a run can hold", len(input), maxEnvelopeBytes)}
	}
	labels := map[string]string{workflowsv1alpha1.LabelWebhook: route.Slug}
	if triggerKey != "" {
		labels[workflowsv1alpha1.LabelTriggerKey] = triggerKey
	}
	// The same label value every other writer gives the workflow, so that a selector built
	// from its name (GET /api/workflows/runs?workflow_name=) finds webhook runs too.
	if v := workflowsv1alpha1.LabelValue(route.WorkflowName); len(validation.IsValidLabelValue(v)) == 0 {
		labels[workflowsv1alpha1.LabelWorkflow] = v
	}
	run := &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Name: DeliveryRunName(route.Key, route.Slug, trigger), Namespace: route.Key.Namespace, Labels: labels},
		Spec: workflowsv1alpha1.WorkflowRunSpec{
			WorkflowName: route.WorkflowName,
			Input:        &apiextensionsv1.JSON{Raw: input},
		},
	}
	if ttl > 0 {
		seconds := int32(min(ttl/time.Second, math.MaxInt32))
		run.Spec.TTLSecondsAfterFinished = &seconds
	}
	return run, nil
}

// DeliveryRunName is the name of the run a delivery starts: "<slug>-<hash>", where hash is the first
// 16 hex digits of the SHA-256 of "<namespace>/<name>/<trigger>" for the endpoint's key. The
// same delivery to the same endpoint always gets the same name (idempotency through
// AlreadyExists); deliveries to different endpoints never share one. The slug is cut to keep
// the name a valid DNS label of at most 63 characters.
func DeliveryRunName(key routes.Key, slug, trigger string) string {
	sum := sha256.Sum256([]byte(key.Namespace + "/" + key.Name + "/" + trigger))
	prefix := slug
	if len(prefix) > maxRunNameSlugLen {
		prefix = strings.TrimRight(prefix[:maxRunNameSlugLen], "-")
	}
	return prefix + "-" + hex.EncodeToString(sum[:])[:runNameHashLen]
}

// webhookResponse describes run for the sender.
func webhookResponse(run *workflowsv1alpha1.WorkflowRun, duplicate bool) WebhookResponse {
	return WebhookResponse{
		ID:           run.Name,
		Namespace:    run.Namespace,
		WorkflowName: run.Spec.WorkflowName,
		StatusURL:    "/api/workflows/runs/" + url.PathEscape(run.Name) + "?namespace=" + url.QueryEscape(run.Namespace),
		Duplicate:    duplicate,
	}
}

// ParseCIDRs parses a flag of comma-separated CIDRs such as "10.0.0.0/8,fd00::/8"
// (--trusted-proxies, --pod-cidrs, ...); a bare IP counts as a single-address network. Empty
// means none.
func ParseCIDRs(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR (10.0.0.0/8) nor an IP address", item)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}
