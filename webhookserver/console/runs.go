package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/webhookserver/runindex"
)

// errNoIndex answers a live stream of a console without a run index.
var errNoIndex = &pageError{status: http.StatusNotImplemented, title: "No run index", message: "This manager has no run index, so pages cannot follow runs."}

// runsPageSize is how many runs a page of the runs list shows.
const runsPageSize = 50

// scheduleLabel names the WorkflowSchedule that started a run.
const scheduleLabel = workflowsv1alpha1.LabelSchedule

// phases are the phases the runs list filters by, in the order a run goes through them.
var phases = []workflowsv1alpha1.RunPhase{
	workflowsv1alpha1.PhasePending, workflowsv1alpha1.PhaseRunning, workflowsv1alpha1.PhaseSleeping,
	workflowsv1alpha1.PhaseWaiting, workflowsv1alpha1.PhaseSucceeded, workflowsv1alpha1.PhaseFailed,
	workflowsv1alpha1.PhaseCancelled,
}

// activePhases is the "in flight" choice of the phase filter.
const activePhases = "active"

// runsQuery is the runs list's filters, as the URL carries them.
type runsQuery struct {
	// Namespace is one of the person's namespaces; empty means all of them.
	Namespace string
	// Workflow, Phase and Webhook filter by equality (Phase may be "active").
	Workflow, Phase, Webhook string
	// Text searches names, steps, waits, reasons and labels.
	Text string
	// After is the cursor of an older page.
	After string
}

// parseRunsQuery reads the filters; a namespace outside the person's scope is refused as the
// REST API would refuse it.
func parseRunsQuery(v *visit) (runsQuery, error) {
	u := v.r.URL.Query()
	q := runsQuery{
		Namespace: u.Get("namespace"), Workflow: u.Get("workflow"), Phase: u.Get("phase"),
		Webhook: u.Get("webhook"), Text: strings.TrimSpace(u.Get("q")), After: u.Get("after"),
	}
	if q.Namespace != "" {
		if _, err := v.principal.Namespace(q.Namespace, ""); err != nil {
			return runsQuery{}, err
		}
	}
	if q.Phase != "" && q.Phase != activePhases && !slices.Contains(phases, workflowsv1alpha1.RunPhase(q.Phase)) {
		return runsQuery{}, &pageError{status: http.StatusBadRequest, title: "Unknown phase",
			message: "The phase filter " + strconv.Quote(q.Phase) + " is not a phase; choose one from the list."}
	}
	return q, nil
}

// namespaces are the namespaces the query covers for the person.
func (q runsQuery) namespaces(v *visit) []string {
	if q.Namespace != "" {
		return []string{q.Namespace}
	}
	return v.principal.Namespaces
}

// index is the query for the run index.
func (q runsQuery) index(v *visit) runindex.Query {
	iq := runindex.Query{
		Namespaces: q.namespaces(v), Workflow: q.Workflow, Webhook: q.Webhook, Text: q.Text,
		After: q.After, Limit: runsPageSize,
	}
	switch q.Phase {
	case "":
	case activePhases:
		iq.Phases = []workflowsv1alpha1.RunPhase{workflowsv1alpha1.PhasePending, workflowsv1alpha1.PhaseRunning,
			workflowsv1alpha1.PhaseSleeping, workflowsv1alpha1.PhaseWaiting}
	default:
		iq.Phases = []workflowsv1alpha1.RunPhase{workflowsv1alpha1.RunPhase(q.Phase)}
	}
	return iq
}

// values encodes the query for a URL; after replaces the cursor.
func (q runsQuery) values(after string) url.Values {
	out := url.Values{}
	for k, val := range map[string]string{"namespace": q.Namespace, "workflow": q.Workflow, "phase": q.Phase, "webhook": q.Webhook, "q": q.Text, "after": after} {
		if val != "" {
			out.Set(k, val)
		}
	}
	return out
}

// url is the runs page of the query with cursor after.
func (q runsQuery) url(path, after string) string {
	if enc := q.values(after).Encode(); enc != "" {
		return path + "?" + enc
	}
	return path
}

// Filtered reports whether any filter is set.
func (q runsQuery) Filtered() bool {
	return q.Namespace != "" || q.Workflow != "" || q.Phase != "" || q.Webhook != "" || q.Text != ""
}

// runsView is the runs page's data.
type runsView struct {
	chrome
	// Query is the filters.
	Query runsQuery
	// Workflows and Phases are the filter's choices.
	Workflows []string
	Phases    []workflowsv1alpha1.RunPhase
	// LiveURL is the page's live stream.
	LiveURL string
	// Table is the live region.
	Table runsTable
}

// runsTable is the runs list's live region.
type runsTable struct {
	// Rows are the page's runs.
	Rows []runRow
	// Total is how many runs the namespaces hold, before filtering.
	Total int
	// Namespaces are the namespaces listed.
	Namespaces []string
	// ShowNamespace is true when runs of several namespaces are listed.
	ShowNamespace bool
	// NewestURL and OlderURL page through the list; OlderURL is empty on the last page.
	NewestURL, OlderURL string
	// First is true on the newest page.
	First bool
	// Filtered is true when filters hide runs.
	Filtered bool
	// Loading is true until the index holds every run; Missing when there is no index.
	Loading, Missing bool
	// Now is when the page was rendered, for "3 min ago".
	Now time.Time
}

// runRow is one run of the list.
type runRow struct {
	runindex.Run
	// URL is the run's page.
	URL string
	// Stands says where an unfinished run stands, or why a failed one failed.
	Stands string
	// Origin says what started the run: a webhook, a parent run, a schedule.
	Origin string
	// Took is how long the run ran (so far).
	Took string
}

// runsPage shows the newest runs that match the filters.
func (c *Console) runsPage(v *visit) error {
	q, err := parseRunsQuery(v)
	if err != nil {
		return err
	}
	table, err := c.runsTable(v, q)
	if err != nil {
		return err
	}
	view := &runsView{
		chrome:    chrome{Title: "Runs", Section: "runs", Refresh: 15},
		Query:     q,
		Workflows: c.workflowNames(v.principal),
		Phases:    phases,
		LiveURL:   q.url(Prefix+"runs/live", q.After),
		Table:     table,
	}
	c.render(v.w, v.r, v, http.StatusOK, "runs", view)
	return nil
}

// runsStream streams the runs table whenever a run of the listed namespaces changes.
func (c *Console) runsStream(v *visit) error {
	q, err := parseRunsQuery(v)
	if err != nil {
		return err
	}
	if c.deps.Index == nil {
		return errNoIndex
	}
	namespaces := q.namespaces(v)
	sub := c.deps.Index.Subscribe(func(r *runindex.Run) bool { return slices.Contains(namespaces, r.Namespace) })
	return c.follow(v, sub, true, func() (string, error) {
		table, err := c.runsTable(v, q)
		if err != nil {
			return "", err
		}
		return c.pages.execute("runs", "runs-table", table)
	})
}

// runsTable reads a page of runs from the index.
func (c *Console) runsTable(v *visit, q runsQuery) (runsTable, error) {
	now := time.Now()
	t := runsTable{
		Namespaces: q.namespaces(v), First: q.After == "", Filtered: q.Filtered(), Now: now,
		NewestURL: q.url(Prefix+"runs", ""),
	}
	t.ShowNamespace = len(t.Namespaces) > 1
	if c.deps.Index == nil {
		t.Missing = true
		return t, nil
	}
	t.Loading = !c.deps.Index.Synced()
	page, err := c.deps.Index.List(q.index(v))
	if errors.Is(err, runindex.ErrBadCursor) {
		return t, &pageError{status: http.StatusBadRequest, title: "Page link damaged", message: err.Error()}
	}
	if err != nil {
		return t, err
	}
	t.Total = page.Total
	if page.Next != "" {
		t.OlderURL = q.url(Prefix+"runs", page.Next)
	}
	for i := range page.Runs {
		t.Rows = append(t.Rows, rowOf(&page.Runs[i], now))
	}
	return t, nil
}

// rowOf is a run as the list shows it.
func rowOf(r *runindex.Run, now time.Time) runRow {
	row := runRow{Run: *r, URL: runPageURL(r.Namespace, r.Name), Stands: stands(r, now), Origin: origin(r)}
	if !r.StartedAt.IsZero() {
		end := r.FinishedAt
		if end.IsZero() {
			end = now
		}
		row.Took = wholeSeconds(end.Sub(r.StartedAt))
	}
	return row
}

// stands says where a run stands in a few words.
func stands(r *runindex.Run, now time.Time) string {
	switch {
	case r.Phase == workflowsv1alpha1.PhaseFailed || r.Phase == workflowsv1alpha1.PhaseCancelled:
		return r.Reason
	case r.Phase.IsFinal():
		return ""
	case r.CancelRequested:
		return "cancel requested"
	case r.Phase == workflowsv1alpha1.PhaseSleeping && !r.WakeAt.IsZero():
		return r.CurrentStep + ", wakes " + ago(r.WakeAt, now)
	case r.Phase == workflowsv1alpha1.PhaseWaiting && r.WaitingFor != "":
		return "waits for " + r.WaitingFor
	default:
		return r.CurrentStep
	}
}

// origin says what started a run, from the operator's labels and the owner.
func origin(r *runindex.Run) string {
	switch {
	case r.Webhook() != "":
		return "webhook " + r.Webhook()
	case r.Parent != "":
		return "child of " + r.Parent
	case r.Labels[scheduleLabel] != "":
		return "schedule " + r.Labels[scheduleLabel]
	default:
		return ""
	}
}

// workflowNames are the names of the workflows the principal's namespaces see, for the filter.
func (c *Console) workflowNames(p restapi.Principal) []string {
	var names []string
	for _, ns := range p.Namespaces {
		names = append(names, c.deps.Workflows.Names(ns)...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
