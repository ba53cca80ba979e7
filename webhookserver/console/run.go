package console

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/webhookserver/runindex"
)

// Limits of a run's page.
const (
	// maxResultPreview is how much of a step's JSON result the timeline shows.
	maxResultPreview = 2048
	// maxTreeDepth and maxTreeNodes bound the children tree.
	maxTreeDepth = 4
	maxTreeNodes = 300
	// maxTimelineEntries bounds the timeline: a longer journal is paged through the REST API.
	maxTimelineEntries = 1000
)

// journalOf returns the first maxTimelineEntries entries of the run's journal, in order, and
// how many entries the whole journal has. All of the console reads journals through this one
// function: runstore.ReadJournal assembles them from the run's sealed WorkflowRunSegments and
// status.journal, as the REST API does. Results stored out of line stay there (the entries
// carry their payload reference), so a page never loads megabytes it would only preview.
func (c *Console) journalOf(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) ([]workflowsv1alpha1.JournalEntry, int64, error) {
	page, err := runstore.ReadJournal(ctx, c.deps.Reader, run, runstore.ReadOptions{Limit: maxTimelineEntries})
	if err != nil {
		return nil, 0, err
	}
	return page.Entries, page.Total, nil
}

// runView is a run's page.
type runView struct {
	chrome
	// LiveURL is the page's live stream.
	LiveURL string
	// Live is the region the stream re-renders.
	Live runLive
}

// runLive is everything on a run's page that changes while the run goes on.
type runLive struct {
	// Run is the run as the REST API shows it.
	Run restapi.Run
	// Final is true once the run succeeded, failed or was cancelled.
	Final bool
	// Revision is the workflow file revision the run replays.
	Revision string
	// TraceURL opens the run's trace in the tracing tool; empty without Deps.TraceURL.
	TraceURL string
	// Parent and ParentURL point at the parent run of a child run.
	Parent, ParentURL string
	// Origin says what started the run.
	Origin string
	// Input and Output are the run's JSON, indented.
	Input, Output string
	// WaitUntil is when a waiting run's wait times out, or a sleeping run wakes.
	WaitUntil time.Time
	// Waits are the events the run awaits, each with a form to send it.
	Waits []eventForm
	// Timeline is the journal.
	Timeline timeline
	// Children is the tree of child runs; ChildrenCut says it was cut short.
	Children    []childNode
	ChildrenCut bool
	// CancelURL and EventsURL are where the actions post; CSRF is their token.
	CancelURL, EventsURL, CSRF string
	// Now is when the page was rendered.
	Now time.Time
}

// eventForm is the form that sends an awaited event.
type eventForm struct {
	// Step is the wait's name in the journal.
	Step string
	// Type and CorrelationID are what the run waits for (editable).
	Type, CorrelationID string
	// Payload is the JSON the form sends.
	Payload string
	// Until is when the wait times out, if it does.
	Until time.Time
	// Error says why the last attempt to send it failed.
	Error string
}

// timeline is the journal as the page draws it.
type timeline struct {
	// Entries are the journal's entries in order.
	Entries []timelineEntry
	// Start is the run's start, the timeline's origin; Span its length.
	Start time.Time
	Span  time.Duration
	// Retries counts step attempts beyond the first.
	Retries int
	// Total counts the whole journal's entries; more than len(Entries) when the timeline is cut.
	Total int64
}

// Cut reports whether the timeline shows only the first entries of the journal.
func (t timeline) Cut() bool { return t.Total > int64(len(t.Entries)) }

// timelineEntry is one primitive of the journal, every field ready to print: a run may have
// a thousand of them, and each lookup the template makes costs reflection.
type timelineEntry struct {
	// Name, Kind and State are the entry's, as the REST API shows them (restapi.Step).
	Name, Kind, State string
	// Class is the state in lower case, for styles; Sign the state's symbol.
	Class, Sign string
	// Attempts counts a step's calls; Retried is true after the first.
	Attempts int32
	Retried  bool
	// Target says what a wait waited for; Ref names the object the primitive used; RefURL is
	// the page of a child run.
	Target, Ref, RefURL string
	// Error is the last error of a failed or retrying step.
	Error string
	// Offset is when the entry started, relative to the run's start; Took how long it took
	// (so far).
	Offset, Took string
	// Bar places its bar: the classes of its start and width in barSteps.
	Bar string
	// DueLabel and Due say what happens next to an unfinished entry and when: a sleep wakes,
	// a retry's next attempt, a wait's timeout.
	DueLabel string
	Due      time.Time
	// Result is the start of its JSON result; ResultBytes the whole result's size.
	Result      string
	ResultBytes int
}

// childNode is a child run in the tree.
type childNode struct {
	runindex.Run
	// URL is the child's page.
	URL string
	// Children are its own children.
	Children []childNode
}

// runPage shows one run, read from the API server.
func (c *Console) runPage(v *visit) error {
	return c.showRun(v, http.StatusOK, nil)
}

// showRun renders the run of the path; failed, when set, is an event form to show again with
// its error.
func (c *Console) showRun(v *visit, status int, failed *eventForm) error {
	ns, name := v.r.PathValue("namespace"), v.r.PathValue("name")
	run, live, err := c.readRun(v, ns, name)
	if err != nil {
		return err
	}
	if failed != nil {
		keepFailedForm(&live, *failed)
	}
	view := &runView{
		chrome:  chrome{Title: name, Section: "runs"},
		LiveURL: runPageURL(ns, name) + "/live?rv=" + run.ResourceVersion,
		Live:    live,
	}
	if !live.Final {
		view.Refresh = 10
	}
	c.render(v.w, v.r, v, status, "run", view)
	return nil
}

// keepFailedForm puts a form that failed back into the page with what the person typed.
func keepFailedForm(live *runLive, failed eventForm) {
	for i := range live.Waits {
		if live.Waits[i].Type == failed.Type && live.Waits[i].CorrelationID == failed.CorrelationID {
			live.Waits[i] = failed
			return
		}
	}
	live.Waits = append(live.Waits, failed)
}

// runStream streams a run's live region whenever the run or one of its children changes.
func (c *Console) runStream(v *visit) error {
	ns, name := v.r.PathValue("namespace"), v.r.PathValue("name")
	if _, err := v.principal.Namespace(ns, ""); err != nil {
		return err
	}
	if c.deps.Index == nil {
		return errNoIndex
	}
	sub := c.deps.Index.Subscribe(func(r *runindex.Run) bool {
		return r.Namespace == ns && (r.Name == name || r.Parent == name)
	})
	seen, _ := c.deps.Index.Get(ns, name)
	stale := seen.ResourceVersion != v.r.URL.Query().Get("rv")
	return c.follow(v, sub, stale, func() (string, error) {
		_, live, err := c.readRun(v, ns, name)
		if err != nil {
			return "", err
		}
		return c.pages.execute("run", "run-live", live)
	})
}

// readRun reads the run through the REST API's logic (scope check included) and builds its
// live region.
func (c *Console) readRun(v *visit, ns, name string) (*workflowsv1alpha1.WorkflowRun, runLive, error) {
	run, err := c.deps.REST.Run(v.ctx, v.principal, ns, name)
	if err != nil {
		return nil, runLive{}, err
	}
	journal, total, err := c.journalOf(v.ctx, run)
	if err != nil {
		return nil, runLive{}, fmt.Errorf("read the journal of run %s/%s: %w", ns, name, err)
	}
	now := time.Now()
	live := runLive{
		Run:       restapi.RunView(run, restapi.BaseURL(v.r)),
		Final:     run.Status.Phase.IsFinal(),
		Revision:  run.Status.WorkflowRevision,
		TraceURL:  traceURL(c.deps.TraceURL, run),
		Parent:    runindex.ParentOf(run),
		Origin:    runOrigin(run),
		Input:     prettyJSON(jsonOf(run.Spec.Input)),
		Output:    prettyJSON(jsonOf(run.Status.Output)),
		Timeline:  timelineOf(run, journal, total, now),
		CancelURL: runPageURL(ns, name) + "/cancel",
		EventsURL: runPageURL(ns, name) + "/events",
		CSRF:      v.session.CSRF,
		Now:       now,
	}
	if live.Parent != "" {
		live.ParentURL = runPageURL(ns, live.Parent)
	}
	if run.Status.WakeAt != nil {
		live.WaitUntil = run.Status.WakeAt.UTC()
	}
	for i := range journal {
		if f, ok := awaitedEvent(&journal[i]); ok {
			live.Waits = append(live.Waits, f)
			if live.WaitUntil.IsZero() {
				live.WaitUntil = f.Until
			}
		}
	}
	if c.deps.Index != nil {
		budget := maxTreeNodes
		live.Children = c.childTree(ns, name, maxTreeDepth, &budget)
		live.ChildrenCut = budget <= 0
	}
	return run, live, nil
}

// runOrigin says what started a run: a webhook, a parent, a schedule, or a REST API key.
func runOrigin(run *workflowsv1alpha1.WorkflowRun) string {
	r := runindex.FromObject(run)
	if o := origin(&r); o != "" {
		return o
	}
	if id := run.Annotations[workflowsv1alpha1.AnnotationAPIKeyID]; id != "" {
		return "REST API key " + id
	}
	return "created directly (kubectl or a client)"
}

// jsonOf is the raw JSON of an optional field.
func jsonOf(j *apiextensionsv1.JSON) []byte {
	if j == nil {
		return nil
	}
	return j.Raw
}

// awaitedEvent is the form for a journal entry that waits for an event.
func awaitedEvent(e *workflowsv1alpha1.JournalEntry) (eventForm, bool) {
	if e.Kind != workflowsv1alpha1.EntryKindEvent || e.State != workflowsv1alpha1.EntryStateWaiting {
		return eventForm{}, false
	}
	rest, ok := strings.CutPrefix(e.Target, "event ")
	if !ok {
		return eventForm{}, false
	}
	// The target is "event <type>/<correlation id>"; types rarely hold a slash, correlation
	// ids (repository paths) may, so the first slash separates them. Both stay editable.
	typ, corr, _ := strings.Cut(rest, "/")
	f := eventForm{Step: e.Name, Type: typ, CorrelationID: corr, Payload: "{}"}
	if e.WakeAt != nil {
		f.Until = e.WakeAt.UTC()
	}
	return f, true
}

// timelineOf lays the journal out on the run's time axis: from the run's start to its end, or
// to now (or the latest planned wake-up) while it goes on.
func timelineOf(run *workflowsv1alpha1.WorkflowRun, journal []workflowsv1alpha1.JournalEntry, total int64, now time.Time) timeline {
	// status.startedAt has whole seconds; the journal's times have microseconds, so the first
	// entry's start is the more exact origin.
	start := run.CreationTimestamp.UTC()
	if run.Status.StartedAt != nil {
		start = run.Status.StartedAt.UTC()
	}
	if len(journal) > 0 && journal[0].StartedAt != nil && journal[0].StartedAt.Sub(start) < time.Second {
		start = journal[0].StartedAt.UTC()
	}
	end := now
	if run.Status.FinishedAt != nil {
		end = run.Status.FinishedAt.UTC()
	}
	if end.Before(start) {
		end = start
	}
	spans := make([][2]time.Time, len(journal))
	for i := range journal {
		spans[i] = entrySpan(&journal[i], start, now)
		if spans[i][1].After(end) {
			end = spans[i][1]
		}
	}
	t := timeline{Start: start, Span: max(end.Sub(start), time.Millisecond), Entries: make([]timelineEntry, len(journal)), Total: total}
	for i := range journal {
		e := &journal[i]
		from, to := spans[i][0], spans[i][1]
		x, w := barOf(from.Sub(start), to.Sub(from), t.Span)
		step := restapi.StepView(e)
		te := timelineEntry{
			Name: step.Name, Kind: step.Kind, State: step.State, Class: strings.ToLower(step.State), Sign: symbol(step.State),
			Attempts: step.Attempts, Retried: step.Attempts > 1, Target: e.Target, Ref: e.Ref, Error: step.Error,
			Offset: "+" + humanDuration(from.Sub(start)), Took: "took " + humanDuration(to.Sub(from)),
			Bar: "x" + strconv.Itoa(x) + " w" + strconv.Itoa(w),
		}
		if e.FinishedAt == nil {
			te.Took = "for " + humanDuration(to.Sub(from)) + " so far"
			if e.WakeAt != nil {
				te.DueLabel, te.Due = dueLabel(e), e.WakeAt.UTC()
			}
		}
		if e.Kind == workflowsv1alpha1.EntryKindChild && e.Ref != "" {
			te.RefURL = runPageURL(run.Namespace, e.Ref)
		}
		switch {
		case e.Result != nil:
			te.ResultBytes = len(e.Result.Raw)
			te.Result = preview(prettyJSON(e.Result.Raw), maxResultPreview)
		case e.Payload != nil:
			te.ResultBytes = int(e.Payload.Bytes)
			te.Result = fmt.Sprintf("stored out of line in WorkflowRunPayload %s: read it with the REST API (include_results=true)", e.Payload.Name)
		}
		if e.Attempts > 1 {
			t.Retries += int(e.Attempts) - 1
		}
		t.Entries[i] = te
	}
	return t
}

// barOf places a bar that starts offset into an axis of span and lasts took: its start and
// width in barSteps, at least one step wide, never past the axis' end.
func barOf(offset, took, span time.Duration) (x, w int) {
	x = min(max(int(float64(offset)/float64(span)*barSteps), 0), barSteps-1)
	w = int(math.Ceil(float64(took) / float64(span) * barSteps))
	return x, min(max(w, 1), barSteps-x)
}

// entrySpan is when an entry started and ended, or now while it goes on. A planned wake-up
// is not drawn: an hour's timeout would squeeze every step into a sliver.
func entrySpan(e *workflowsv1alpha1.JournalEntry, runStart, now time.Time) [2]time.Time {
	from := runStart
	if e.StartedAt != nil {
		from = e.StartedAt.UTC()
	}
	if e.FinishedAt != nil {
		return [2]time.Time{from, e.FinishedAt.UTC()}
	}
	if now.Before(from) {
		return [2]time.Time{from, from}
	}
	return [2]time.Time{from, now}
}

// dueLabel says what an unfinished entry's wakeAt means.
func dueLabel(e *workflowsv1alpha1.JournalEntry) string {
	switch {
	case e.Kind == workflowsv1alpha1.EntryKindSleep:
		return "Wakes"
	case e.State == workflowsv1alpha1.EntryStateRetrying:
		return "Next attempt"
	default:
		return "Times out"
	}
}

// preview cuts s to at most n bytes, on a character boundary, and says so.
func preview(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "\n…"
}

// utf8RuneStart reports whether b starts a UTF-8 character.
func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// childTree is the tree of namespace/parent's children, depth levels deep, taking at most
// *budget nodes from the index.
func (c *Console) childTree(ns, parent string, depth int, budget *int) []childNode {
	if depth == 0 || *budget <= 0 {
		return nil
	}
	var out []childNode
	for _, child := range c.deps.Index.Children(ns, parent) {
		if *budget <= 0 {
			break
		}
		*budget--
		node := childNode{Run: child, URL: runPageURL(ns, child.Name)}
		node.Children = c.childTree(ns, child.Name, depth-1, budget)
		out = append(out, node)
	}
	return out
}

// cancelRun asks the run to stop, as POST /api/workflows/runs/{id}/cancel does.
func (c *Console) cancelRun(v *visit) error {
	ns, name := v.r.PathValue("namespace"), v.r.PathValue("name")
	if _, err := c.deps.REST.CancelRun(v.ctx, v.principal, ns, name); err != nil {
		return err
	}
	http.Redirect(v.w, v.r, runPageURL(ns, name)+"?notice=cancel-requested", http.StatusSeeOther)
	return nil
}

// sendEvent delivers the event a form describes in the run's namespace, as POST
// /api/workflows/events does; a payload that is not JSON, or a field the REST API would
// refuse, shows the form again with the reason and what was typed.
func (c *Console) sendEvent(v *visit) error {
	ns, name := v.r.PathValue("namespace"), v.r.PathValue("name")
	form := eventForm{
		Step: v.r.PostForm.Get("step"), Type: strings.TrimSpace(v.r.PostForm.Get("event_type")),
		CorrelationID: strings.TrimSpace(v.r.PostForm.Get("correlation_id")), Payload: v.r.PostForm.Get("payload"),
	}
	payload, problem := formJSON(form.Payload, "The payload")
	if problem == "" {
		req, err := restapi.DecodeEvent(mustJSON(restapi.EventRequest{EventType: form.Type, CorrelationID: form.CorrelationID, Payload: payload, Namespace: ns}))
		if err == nil {
			if _, err = c.deps.REST.SendEvent(v.ctx, v.principal, req); err == nil {
				http.Redirect(v.w, v.r, runPageURL(ns, name)+"?notice=event-sent", http.StatusSeeOther)
				return nil
			}
		}
		problem, err = formProblem(err)
		if err != nil {
			return err
		}
	}
	form.Error = problem
	return c.showRun(v, http.StatusUnprocessableEntity, &form)
}

// formJSON checks the JSON a person typed into a form field; empty is null. problem says
// what is wrong and where, for the form.
func formJSON(text, what string) (json.RawMessage, string) {
	trimmed := strings.TrimSpace(text)
	if trimmed == "" {
		return nil, ""
	}
	var v any
	err := json.Unmarshal([]byte(trimmed), &v)
	if err == nil {
		return json.RawMessage(trimmed), ""
	}
	if se, ok := err.(*json.SyntaxError); ok {
		line, col := position(trimmed, se.Offset)
		return nil, fmt.Sprintf("%s is not valid JSON: %s (line %d, column %d).", what, se.Error(), line, col)
	}
	return nil, fmt.Sprintf("%s is not valid JSON: %v.", what, err)
}

// position is the line and column of a byte offset, counted from 1.
func position(s string, offset int64) (line, col int) {
	line, col = 1, 1
	for i := 0; i < len(s) && int64(i) < offset-1; i++ {
		if s[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// formProblem is the message a form shows for an error the person can fix (a refused field, a
// namespace, a conflict); any other error is returned for the error page.
func formProblem(err error) (string, error) {
	if de, ok := err.(*restapi.DecodeError); ok {
		return de.Message, nil
	}
	status, detail, ok := restapi.ErrorOf(err, "the request")
	if !ok || status >= http.StatusInternalServerError || status == http.StatusNotFound {
		return "", err
	}
	return detail.Message, nil
}

// mustJSON encodes a request struct, which always encodes.
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// traceURL is the link to run's trace: tmpl with {trace_id} and {span_id} replaced by the
// run span's (tracing.RunSpanContext, which every replica derives alike); "" without tmpl.
func traceURL(tmpl string, run *workflowsv1alpha1.WorkflowRun) string {
	if tmpl == "" {
		return ""
	}
	sc := tracing.RunSpanContext(run)
	return strings.NewReplacer("{trace_id}", sc.TraceID().String(), "{span_id}", sc.SpanID().String()).Replace(tmpl)
}

// CheckTraceURL checks a Deps.TraceURL before the console starts: empty, or an http(s) URL
// that names {trace_id}, so that a mistyped template is an error at start, not a dead link on
// every run's page.
func CheckTraceURL(tmpl string) error {
	if tmpl == "" {
		return nil
	}
	u, err := url.Parse(strings.NewReplacer("{trace_id}", "x", "{span_id}", "x").Replace(tmpl))
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%q is not an http or https URL, such as https://jaeger.example.com/trace/{trace_id}", tmpl)
	case !strings.Contains(tmpl, "{trace_id}"):
		return fmt.Errorf("%q does not name {trace_id}, which each run's page replaces with its trace's id", tmpl)
	}
	return nil
}
