package console

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// workflowsView is the workflows page's data.
type workflowsView struct {
	chrome
	// Workflows are the REST API's listing, one card each.
	Workflows []workflowCard
}

// workflowCard is one workflow with its start form.
type workflowCard struct {
	// Name, Description and Example come from the listing.
	Name, Description, Example string
	// Details are the listing's other fields (source, revision, ...), as it reports them.
	Details []detail
	// Webhooks are the webhook routes that start the workflow.
	Webhooks []endpointView
	// RunsURL lists the workflow's runs; StartURL is where the start form posts.
	RunsURL, StartURL string
	// Namespaces are where the person may start it; Namespace is the one chosen.
	Namespaces []string
	Namespace  string
	// Input is the start form's input; Eager its eager_start box.
	Input string
	Eager bool
	// Error says why the last start failed.
	Error string
}

// detail is one field of the listing the page has no special place for.
type detail struct {
	// Name is the field's name for people; Value its value, Block when it spans lines.
	Name, Value string
	Block       bool
}

// listingFields are the listing's fields the page shows in places of their own.
var listingFields = map[string]bool{"name": true, "description": true, "example_input": true}

// workflowsPage lists the workflows with a start form each.
func (c *Console) workflowsPage(v *visit) error {
	return c.showWorkflows(v, http.StatusOK, nil)
}

// showWorkflows renders the page; failed, when set, is a start form to show again with its
// error and input.
func (c *Console) showWorkflows(v *visit, status int, failed *workflowCard) error {
	endpoints, err := c.webhookList(v)
	if err != nil {
		return err
	}
	list, err := c.deps.REST.Workflows(v.principal, v.r.URL.Query().Get("namespace"))
	if err != nil {
		return err
	}
	view := &workflowsView{chrome: chrome{Title: "Workflows", Section: "workflows"}}
	for _, info := range list.Workflows {
		card := workflowCardOf(info, v.principal)
		for _, e := range endpoints {
			if e.Workflow == card.Name {
				card.Webhooks = append(card.Webhooks, e)
			}
		}
		if failed != nil && failed.Name == card.Name {
			card.Input, card.Namespace, card.Eager, card.Error = failed.Input, failed.Namespace, failed.Eager, failed.Error
		}
		view.Workflows = append(view.Workflows, card)
	}
	c.render(v.w, v.r, v, status, "workflows", view)
	return nil
}

// workflowCardOf makes the card of one workflow of the listing. Fields the listing gains
// later (a file workflow's source and revision, say) show up as details without a change here.
func workflowCardOf(info restapi.WorkflowInfo, p restapi.Principal) workflowCard {
	card := workflowCard{
		Name: info.Name, Description: info.Description, Example: prettyJSON(info.ExampleInput),
		RunsURL:    runsQuery{Workflow: info.Name}.url(Prefix+"runs", ""),
		StartURL:   Prefix + "workflows/" + info.Name + "/runs",
		Namespaces: p.Namespaces, Namespace: p.DefaultNamespace, Eager: true,
	}
	card.Input = card.Example
	if card.Input == "" {
		card.Input = "{}"
	}
	var fields map[string]json.RawMessage
	if raw, err := json.Marshal(info); err == nil && json.Unmarshal(raw, &fields) == nil {
		card.Details = details(fields)
	}
	return card
}

// details turns the listing fields the page has no place for into name and value pairs,
// sorted by name: strings as they are, anything else as indented JSON.
func details(fields map[string]json.RawMessage) []detail {
	var out []detail
	for name, raw := range fields {
		if listingFields[name] || string(raw) == "null" || string(raw) == `""` || string(raw) == "[]" {
			continue
		}
		d := detail{Name: strings.ReplaceAll(name, "_", " ")}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			d.Value = s
		} else {
			d.Value, d.Block = prettyJSON(raw), true
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// startRun starts a run of the workflow of the path as POST /api/workflows/runs does, and
// goes to its page; input that is not JSON, or a request the REST API refuses, shows the form
// again with the reason and what was typed.
func (c *Console) startRun(v *visit) error {
	form := workflowCard{
		Name: v.r.PathValue("name"), Input: v.r.PostForm.Get("input"),
		Namespace: v.r.PostForm.Get("namespace"), Eager: v.r.PostForm.Get("eager_start") != "",
	}
	input, problem := formJSON(form.Input, "The input")
	if problem == "" {
		body := mustJSON(restapi.StartRunRequest{WorkflowName: form.Name, Input: input, EagerStart: form.Eager, Namespace: form.Namespace})
		req, err := restapi.DecodeStartRun(body)
		if err == nil {
			run, _, err := c.deps.REST.StartRun(v.ctx, v.principal, req)
			if err == nil {
				http.Redirect(v.w, v.r, runPageURL(run.Namespace, run.Name)+"?notice=started", http.StatusSeeOther)
				return nil
			}
			problem, err = formProblem(err)
			if err != nil {
				return err
			}
		} else {
			problem = err.Error()
		}
	}
	form.Error = problem
	return c.showWorkflows(v, http.StatusUnprocessableEntity, &form)
}
