package console

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/webhookserver/runindex"
)

// recentDeliveries is how many of an endpoint's latest runs the webhooks page shows.
const recentDeliveries = 5

// webhooksView is the webhooks page's data.
type webhooksView struct {
	chrome
	// Endpoints are the webhook routes in the person's namespaces.
	Endpoints []endpointView
	// Now is when the page was rendered.
	Now time.Time
}

// endpointView is one webhook route: a WebhookEndpoint or a webhook a workflow declares in code.
type endpointView struct {
	// Name is the WebhookEndpoint's name; empty for a code-declared webhook.
	Name string
	// Namespace is where its runs are created.
	Namespace string
	// Slug, Workflow and Provider are what it serves and how it verifies deliveries.
	Slug, Workflow, Provider string
	// Code is true for a webhook declared in a workflow's code.
	Code bool
	// Ready says whether deliveries are accepted; Reason and Message say why not.
	Ready           bool
	Reason, Message string
	// OverriddenBy names the WebhookEndpoint that serves a code-declared slug instead.
	OverriddenBy string
	// URL is what to give the provider.
	URL string
	// Counted is true when the delivery counters below are known (WebhookEndpoints).
	Counted                        bool
	Accepted, Duplicates, Rejected int64
	// Deliveries are the latest runs its deliveries started; DeliveriesURL lists them all.
	Deliveries    []runRow
	DeliveriesURL string
}

// webhooksPage lists the webhook routes of the person's namespaces.
func (c *Console) webhooksPage(v *visit) error {
	endpoints, err := c.webhookList(v)
	if err != nil {
		return err
	}
	view := &webhooksView{chrome: chrome{Title: "Webhooks", Section: "webhooks", Refresh: 30}, Endpoints: endpoints, Now: time.Now()}
	c.render(v.w, v.r, v, http.StatusOK, "webhooks", view)
	return nil
}

// webhookList gathers the WebhookEndpoints of the person's namespaces and the code-declared
// webhooks served in them, sorted by slug, each with its latest deliveries.
func (c *Console) webhookList(v *visit) ([]endpointView, error) {
	base := restapi.BaseURL(v.r)
	var out []endpointView
	if c.deps.Client != nil {
		for _, ns := range v.principal.Namespaces {
			var list workflowsv1alpha1.WebhookEndpointList
			if err := c.deps.Client.List(v.ctx, &list, client.InNamespace(ns)); err != nil {
				return nil, fmt.Errorf("list the webhook endpoints of namespace %s: %w", ns, err)
			}
			for i := range list.Items {
				out = append(out, endpointOf(&list.Items[i], base))
			}
		}
	}
	out = append(out, c.codeWebhooks(v.principal, base)...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Slug < out[j].Slug })
	now := time.Now()
	for i := range out {
		c.addDeliveries(&out[i], now)
	}
	return out, nil
}

// endpointOf shows a WebhookEndpoint.
func endpointOf(e *workflowsv1alpha1.WebhookEndpoint, base string) endpointView {
	out := endpointView{
		Name: e.Name, Namespace: e.Namespace, Slug: e.Spec.Slug, Workflow: e.Spec.WorkflowName,
		Provider: string(e.Spec.Provider), URL: base + routes.Path(e.Spec.Slug), Counted: true,
		Accepted: e.Status.Deliveries.Accepted, Duplicates: e.Status.Deliveries.Duplicates, Rejected: e.Status.Deliveries.Rejected,
		Reason: "Unknown", Message: "The manager has not reconciled this endpoint yet.",
	}
	if cond := meta.FindStatusCondition(e.Status.Conditions, workflowsv1alpha1.ConditionReady); cond != nil && cond.ObservedGeneration == e.Generation {
		out.Ready, out.Reason, out.Message = cond.Status == "True", cond.Reason, cond.Message
	}
	return out
}

// codeWebhooks shows the webhooks that workflows declare (Go, workflow files and
// WorkflowDefinitions) and that are served in one of the principal's namespaces, with the
// route table's readiness.
func (c *Console) codeWebhooks(p restapi.Principal, base string) []endpointView {
	if c.deps.Routes == nil {
		return nil
	}
	var out []endpointView
	for _, w := range c.deps.Workflows.Declaring() {
		origin := routes.OriginCode
		if w.Source == catalog.SourceDefinition {
			origin = routes.OriginDefinition
		}
		for _, spec := range w.Workflow.Webhooks() {
			route, ok := c.deps.Routes.Get(origin, spec.Slug)
			if !ok || route.WorkflowName != w.Name() || !slices.Contains(p.Namespaces, route.Key.Namespace) {
				continue
			}
			e := endpointView{
				Namespace: route.Key.Namespace, Slug: spec.Slug, Workflow: w.Name(), Provider: route.Provider, Code: true,
				URL: base + routes.Path(spec.Slug), Ready: route.Ready, Reason: route.Reason, Message: route.Message,
			}
			if served, ok := c.deps.Routes.Lookup(spec.Slug); ok && served.Key != route.Key {
				e.OverriddenBy = served.Key.String()
			}
			out = append(out, e)
		}
	}
	return out
}

// addDeliveries adds the endpoint's latest runs from the index.
func (c *Console) addDeliveries(e *endpointView, now time.Time) {
	q := runsQuery{Namespace: e.Namespace, Webhook: e.Slug}
	e.DeliveriesURL = q.url(Prefix+"runs", "")
	if c.deps.Index == nil {
		return
	}
	page, err := c.deps.Index.List(runindex.Query{Namespaces: []string{e.Namespace}, Webhook: e.Slug, Limit: recentDeliveries})
	if err != nil {
		return
	}
	for i := range page.Runs {
		e.Deliveries = append(e.Deliveries, rowOf(&page.Runs[i], now))
	}
}
