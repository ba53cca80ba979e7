package restapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// Listing limits.
const (
	// defaultListLimit is the page size when the request gives none.
	defaultListLimit = 20
	// maxListLimit is the largest page a request may ask for: a page holds each run's input and
	// output, so a large one costs the replica memory for as long as it is written out.
	maxListLimit = 100
	// maxListCalls bounds how many pages of the API server one list request reads while it
	// fills its page (with runs of the requested phases, listChunk at a time).
	maxListCalls = 20
	// listChunk is how many runs one read of the API server returns: whole runs, each up to
	// about 1.5 MiB, so that a page's reads hold little at a time.
	listChunk = 10
	// maxListBytes bounds the runs' inputs, outputs and errors in one page: the page ends at
	// the first chunk that reaches it, with a continue token, however many runs were asked for.
	maxListBytes = 4 << 20
	// createAttempts bounds retries after a generated name collided.
	createAttempts = 3
)

// decodeFailure turns a DecodeError into the 400 it answers with.
func decodeFailure(err error) error {
	var de *DecodeError
	if errors.As(err, &de) {
		return apierror.Errorf(http.StatusBadRequest, de.Code, "%s", de.Message)
	}
	return err
}

// startRun creates a run (POST /api/workflows/runs): 201 with the new run, or 200 with the
// run an earlier request with the same idempotency key started. With eager_start the answer
// waits for the first segment (see eagerStart).
func (a *api) startRun(ctx context.Context, c *call) (int, any, error) {
	body, err := readBody(c.w, c.r)
	if err != nil {
		return 0, nil, err
	}
	req, err := DecodeStartRun(body)
	if err != nil {
		return 0, nil, decodeFailure(err)
	}
	traceparent := ""
	if a.deps.TraceContext {
		traceparent = tracing.Incoming(c.r.Header)
	}
	status, run, err := a.start(ctx, c.principal, c.r.URL.Query().Get("namespace"), req, traceparent)
	if err != nil {
		return 0, nil, err
	}
	c.w.Header().Set("Location", runURL("", run.Namespace, run.Name))
	return a.answerRun(ctx, status, run, BaseURL(c.r), runstore.ReadOptions{})
}

// start creates the run req asks for, in the namespace the principal chooses (queryNS or
// req.Namespace), and returns it with 201; or, for an idempotency key that already started
// the same request, that run with 200. With eager_start it returns once the first segment
// executed (see eagerStart). A workflow the namespace does not know is a 422, an input that
// does not fit the workflow's a 400 naming the field. A traceparent (not empty) is kept on
// the new run as the parent of its trace.
func (a *api) start(ctx context.Context, p Principal, queryNS string, req StartRunRequest, traceparent string) (int, *workflowsv1alpha1.WorkflowRun, error) {
	ns, err := p.Namespace(queryNS, req.Namespace)
	if err != nil {
		return 0, nil, err
	}
	entry, ok := a.deps.Workflows.Lookup(ns, req.WorkflowName)
	if !ok {
		return 0, nil, apierror.Errorf(http.StatusUnprocessableEntity, apierror.CodeUnknownWorkflow, "%s", a.deps.Workflows.UnknownWorkflow(ns, req.WorkflowName))
	}
	if catalog.WebhookOnly(entry.Workflow) {
		return 0, nil, apierror.Errorf(http.StatusForbidden, apierror.CodeForbidden,
			"workflow %q starts only from its webhooks (webhook_only): send a delivery to its webhook instead", req.WorkflowName)
	}
	if err := entry.Workflow.CheckInput(req.Input); err != nil {
		return 0, nil, apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidInput, "the input of workflow %q: %v", req.WorkflowName, err)
	}
	fresh := NewRun(ns, req, p.KeyID)
	tracing.KeepParent(fresh, traceparent)
	run, created, err := CreateRun(ctx, a.deps.Client, a.deps.Reader, fresh, req)
	if err != nil {
		return 0, nil, err
	}
	if !created {
		return http.StatusOK, run, nil
	}
	if req.EagerStart {
		run = a.eagerStart(ctx, run)
	}
	return http.StatusCreated, run, nil
}

// answerRun answers status with the run and a page of its steps.
func (a *api) answerRun(ctx context.Context, status int, run *workflowsv1alpha1.WorkflowRun, base string, page runstore.ReadOptions) (int, any, error) {
	d, err := RunDetailOf(ctx, a.deps.Reader, run, base, page)
	if err != nil {
		return 0, nil, err
	}
	return status, d, nil
}

// NewRun is the run a start request asks for in namespace ns, without a name (the REST API's
// createRun gives it one); keyID, when not empty, records the API key that asked. The CLI
// creates the same object when it works with a kubeconfig instead of the REST API.
func NewRun(ns string, req StartRunRequest, keyID string) *workflowsv1alpha1.WorkflowRun {
	run := &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   ns,
			Labels:      map[string]string{workflowsv1alpha1.LabelWorkflow: workflowsv1alpha1.LabelValue(req.WorkflowName)},
			Annotations: map[string]string{},
		},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: req.WorkflowName},
	}
	if keyID != "" {
		run.Annotations[workflowsv1alpha1.AnnotationAPIKeyID] = keyID
	}
	if req.Input != nil {
		run.Spec.Input = &apiextensionsv1.JSON{Raw: req.Input}
	}
	if req.IdempotencyKey != "" {
		run.Annotations[workflowsv1alpha1.AnnotationIdempotencyKey] = req.IdempotencyKey
	}
	return run
}

// CreateRun creates run (NewRun's, for req) and reports true, or, when req's idempotency key
// already started a run, returns that run and false, and a 409 conflict when that run was
// started with another workflow or input. Without a key the name is time-ordered (RunName) and
// a collision is retried with a fresh name; with a key the name derives from the key, so
// concurrent requests race for one object and the API server lets exactly one create it. The
// REST API starts runs with it, and so does the CLI with a kubeconfig.
func CreateRun(ctx context.Context, c client.Client, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, req StartRunRequest) (*workflowsv1alpha1.WorkflowRun, bool, error) {
	run, created, err := createRun(ctx, c, reader, run)
	if err != nil || created || sameRequest(run, req) {
		return run, created, err
	}
	return nil, false, apierror.Errorf(http.StatusConflict, apierror.CodeConflict,
		"idempotency_key %q already started run %q with a different input; use a new key for a different request", req.IdempotencyKey, run.Name)
}

// createRun creates run, or returns the run its idempotency key started (and false).
func createRun(ctx context.Context, c client.Client, reader client.Reader, run *workflowsv1alpha1.WorkflowRun) (*workflowsv1alpha1.WorkflowRun, bool, error) {
	key := run.Annotations[workflowsv1alpha1.AnnotationIdempotencyKey]
	for attempt := 1; ; attempt++ {
		if key != "" {
			run.Name = IdempotentRunName(run.Spec.WorkflowName, key)
		} else {
			run.Name = NewRunName(run.Spec.WorkflowName, time.Now())
		}
		err := c.Create(ctx, run)
		switch {
		case err == nil:
			return run, true, nil
		case !apierrors.IsAlreadyExists(err) || attempt >= createAttempts:
			return nil, false, fmt.Errorf("create run: %w", err)
		case key == "":
			continue // a one-in-a-billion collision of generated names: draw another
		}
		existing := &workflowsv1alpha1.WorkflowRun{}
		err = reader.Get(ctx, client.ObjectKeyFromObject(run), existing)
		switch {
		case err == nil:
			return existing, false, nil
		case !apierrors.IsNotFound(err):
			return nil, false, fmt.Errorf("read the run of idempotency key %q: %w", key, err)
		}
		// deleted between our create and our read: create it again
	}
}

// sameRequest reports whether run was started by a request equal to req: same workflow and
// semantically equal input.
func sameRequest(run *workflowsv1alpha1.WorkflowRun, req StartRunRequest) bool {
	if run.Spec.WorkflowName != req.WorkflowName {
		return false
	}
	var stored []byte
	if run.Spec.Input != nil {
		stored = run.Spec.Input.Raw
	}
	return runstore.EqualJSON(stored, req.Input)
}

// getRun answers GET /api/workflows/runs/{id}: the run with a page of its steps, assembled
// from its sealed segments, payloads and status (steps_limit, steps_continue,
// include_results).
func (a *api) getRun(ctx context.Context, c *call) (int, any, error) {
	page, err := parseStepsQuery(c)
	if err != nil {
		return 0, nil, err
	}
	run, err := a.findRun(ctx, c.principal, c.r.URL.Query().Get("namespace"), c.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return a.answerRun(ctx, http.StatusOK, run, BaseURL(c.r), page)
}

// parseStepsQuery reads the paging of a run's steps from the query.
func parseStepsQuery(c *call) (runstore.ReadOptions, error) {
	v := c.r.URL.Query()
	page := runstore.ReadOptions{Continue: v.Get("steps_continue")}
	if s := v.Get("steps_limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > runstore.MaxPageEntries {
			return page, apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "steps_limit must be a number from 1 to %d, not %q", runstore.MaxPageEntries, s)
		}
		page.Limit = n
	}
	if s := v.Get("include_results"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return page, apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "include_results must be true or false, not %q", s)
		}
		page.Results = b
	}
	return page, nil
}

// lookup reads into obj the object of kind whose name is the path parameter param, in the
// request's namespace (see find).
func (a *api) lookup(ctx context.Context, c *call, param, kind, hint string, obj client.Object) error {
	return a.find(ctx, c.principal, c.r.URL.Query().Get("namespace"), c.r.PathValue(param), kind, hint, obj)
}

// findRun reads run id, past the cache, in the namespace the principal chooses (ns, or its
// default when empty). A run outside the principal's namespaces is refused with 403, a
// missing one is 404.
func (a *api) findRun(ctx context.Context, p Principal, ns, id string) (*workflowsv1alpha1.WorkflowRun, error) {
	run := &workflowsv1alpha1.WorkflowRun{}
	if err := a.find(ctx, p, ns, id, "run", "", run); err != nil {
		return nil, err
	}
	return run, nil
}

// find reads into obj, past the cache, the object of kind named name in the namespace the
// principal chooses (ns, or its default). A name that cannot exist, or an object that does
// not, is a 404 that names both; hint may add where to look.
func (a *api) find(ctx context.Context, p Principal, ns, name, kind, hint string, obj client.Object) error {
	ns, err := p.Namespace(ns, "")
	if err != nil {
		return err
	}
	notFound := apierror.Errorf(http.StatusNotFound, apierror.CodeNotFound, "no %s %q in namespace %q%s", kind, name, ns, hint)
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return notFound
	}
	if err := a.deps.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return notFound
		}
		return fmt.Errorf("read %s %s/%s: %w", kind, ns, name, err)
	}
	return nil
}

// cancelRun answers POST /api/workflows/runs/{id}/cancel (see cancel).
func (a *api) cancelRun(ctx context.Context, c *call) (int, any, error) {
	status, run, err := a.cancel(ctx, c.principal, c.r.URL.Query().Get("namespace"), c.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return a.answerRun(ctx, status, run, BaseURL(c.r), runstore.ReadOptions{})
}

// cancel sets spec.cancel of run id and answers 202 while the run stops, 200 for a run
// already cancelled, 409 for one that already finished.
func (a *api) cancel(ctx context.Context, p Principal, ns, id string) (int, *workflowsv1alpha1.WorkflowRun, error) {
	run, err := a.findRun(ctx, p, ns, id)
	if err != nil {
		return 0, nil, err
	}
	status, err := Cancel(ctx, a.deps.Client, run)
	return status, run, err
}

// Cancel sets spec.cancel of run, as POST /api/workflows/runs/{id}/cancel does, and returns
// the HTTP status that means: 202 while the run stops, 200 for a run already cancelled, and a
// 409 error for one that already succeeded or failed. The CLI cancels runs with a kubeconfig
// through it too, so both answer alike.
func Cancel(ctx context.Context, c client.Client, run *workflowsv1alpha1.WorkflowRun, opts ...client.PatchOption) (int, error) {
	switch run.Status.Phase {
	case workflowsv1alpha1.PhaseCancelled:
		return http.StatusOK, nil
	case workflowsv1alpha1.PhaseSucceeded, workflowsv1alpha1.PhaseFailed:
		return 0, apierror.Errorf(http.StatusConflict, apierror.CodeConflict, "run %q already finished (%s): there is nothing to cancel", run.Name, run.Status.Phase)
	}
	if !run.Spec.Cancel {
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"cancel":true}}`))
		if err := c.Patch(ctx, run, patch, opts...); err != nil {
			return 0, fmt.Errorf("cancel run %s/%s: %w", run.Namespace, run.Name, err)
		}
	}
	return http.StatusAccepted, nil
}

// page is the namespace and page a list request asks for.
type page struct {
	namespace string
	limit     int
	cont      string
}

// listQuery is a parsed GET /api/workflows/runs.
type listQuery struct {
	page
	workflow string
	schedule string
	phases   map[string]bool
}

// listRuns answers GET /api/workflows/runs: a page of runs in name order, which is newest
// first for runs the REST API named. The workflow filter is a label selector the API server
// applies; the status filter applies to the pages the API server returns, reading up to
// maxListCalls of them to fill the page.
func (a *api) listRuns(ctx context.Context, c *call) (int, any, error) {
	q, err := parseListQuery(c)
	if err != nil {
		return 0, nil, err
	}
	base := BaseURL(c.r)
	out := RunList{Runs: []Run{}}
	token := q.cont
	var size int
	for calls := 0; calls < maxListCalls; calls++ {
		list := &workflowsv1alpha1.WorkflowRunList{}
		opts := []client.ListOption{client.InNamespace(q.namespace), client.Limit(int64(min(listChunk, q.limit-len(out.Runs)))), client.Continue(token)}
		if q.workflow != "" {
			opts = append(opts, client.MatchingLabels{workflowsv1alpha1.LabelWorkflow: workflowsv1alpha1.LabelValue(q.workflow)})
		}
		if q.schedule != "" {
			opts = append(opts, client.MatchingLabels{workflowsv1alpha1.LabelSchedule: workflowsv1alpha1.LabelValue(q.schedule)})
		}
		if err := a.deps.Reader.List(ctx, list, opts...); err != nil {
			return 0, nil, listFailure(err, token)
		}
		for i := range list.Items {
			if len(q.phases) == 0 || q.phases[phaseOf(&list.Items[i])] {
				out.Runs = append(out.Runs, RunView(&list.Items[i], base))
				size += runBytes(&list.Items[i])
			}
		}
		token = list.Continue
		if token == "" || len(out.Runs) >= q.limit || size >= maxListBytes {
			break
		}
	}
	out.Continue = token
	return http.StatusOK, out, nil
}

// runBytes is about what a run weighs in a page: its input, output and error, and a share.
func runBytes(run *workflowsv1alpha1.WorkflowRun) int {
	n := 512
	for _, v := range []*apiextensionsv1.JSON{run.Spec.Input, run.Status.Output} {
		if v != nil {
			n += len(v.Raw)
		}
	}
	if run.Status.Error != nil {
		n += len(run.Status.Error.Message)
	}
	return n
}

// listFailure explains a failed list; a refused continue token is the client's to fix.
func listFailure(err error, token string) error {
	if token != "" && (apierrors.IsBadRequest(err) || apierrors.IsInvalid(err)) {
		return apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "the continue token is not valid: pass the continue value of the previous page unchanged")
	}
	return fmt.Errorf("list runs: %w", err)
}

// parsePage reads and checks the namespace, limit and continue parameters of a list.
func parsePage(c *call) (page, error) {
	v := c.r.URL.Query()
	ns, err := c.principal.Namespace(v.Get("namespace"), "")
	if err != nil {
		return page{}, err
	}
	p := page{namespace: ns, limit: defaultListLimit, cont: v.Get("continue")}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			return page{}, apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "limit must be a number from 1 to %d, not %q", maxListLimit, s)
		}
		p.limit = n
	}
	return p, nil
}

// parseListQuery reads and checks the list's query parameters.
func parseListQuery(c *call) (listQuery, error) {
	v := c.r.URL.Query()
	p, err := parsePage(c)
	if err != nil {
		return listQuery{}, err
	}
	q := listQuery{page: p, workflow: v.Get("workflow_name"), schedule: v.Get("schedule")}
	if q.workflow != "" && (len(q.workflow) > maxWorkflowNameLength || !workflowNamePattern.MatchString(q.workflow)) {
		return listQuery{}, apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "workflow_name %q is not a workflow name", q.workflow)
	}
	if q.schedule != "" && len(validation.IsDNS1123Subdomain(q.schedule)) > 0 {
		return listQuery{}, apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "schedule %q is not a schedule's name", q.schedule)
	}
	statuses := v.Get("status")
	if statuses == "" {
		statuses = v.Get("phase")
	}
	if q.phases, err = ParsePhases(statuses); err != nil {
		return listQuery{}, err
	}
	return q, nil
}

// allPhases are the phases a status filter may name.
var allPhases = []workflowsv1alpha1.RunPhase{
	workflowsv1alpha1.PhasePending, workflowsv1alpha1.PhaseRunning, workflowsv1alpha1.PhaseSleeping,
	workflowsv1alpha1.PhaseWaiting, workflowsv1alpha1.PhaseSucceeded, workflowsv1alpha1.PhaseFailed,
	workflowsv1alpha1.PhaseCancelled,
}

// ParsePhases parses a status filter: a comma-separated list of phases, in any case, as the
// phases' own names (nil for ""), or a 400 invalid_request naming the phases. The CLI filters
// runs it lists with a kubeconfig through it too.
func ParsePhases(s string) (map[string]bool, error) {
	if s == "" {
		return nil, nil
	}
	phases := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		found := false
		for _, p := range allPhases {
			if strings.EqualFold(part, string(p)) {
				phases[string(p)], found = true, true
			}
		}
		if !found {
			names := make([]string, len(allPhases))
			for i, p := range allPhases {
				names[i] = string(p)
			}
			return nil, apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "status %q is not a phase; use one or more of %s, separated by commas", part, strings.Join(names, ", "))
		}
	}
	return phases, nil
}
