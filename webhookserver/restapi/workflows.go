package restapi

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// WorkflowInfo describes a workflow a namespace can run.
type WorkflowInfo struct {
	// Name is what workflow_name refers to.
	Name string `json:"name"`
	// Description says in a sentence what the workflow does.
	Description string `json:"description"`
	// ExampleInput shows the input's shape; null when the workflow gives none.
	ExampleInput json.RawMessage `json:"example_input"`
	// Source is "go" (compiled into the manager), "file" (a workflow file of WORKFLOW_DIRS) or
	// "definition" (a WorkflowDefinition of the namespace).
	Source string `json:"source"`
	// Revision identifies a workflow file's code: new runs start on it. Empty for Go.
	Revision string `json:"revision,omitempty"`
	// File is a workflow file's path, or namespace/name of its WorkflowDefinition.
	File string `json:"file,omitempty"`
	// InputFields are the fields a workflow file declares with Input = dataclass(...).
	InputFields []workflowfile.InputField `json:"input_fields,omitempty"`
	// Webhooks are the routes the workflow declares.
	Webhooks []WebhookInfo `json:"webhooks"`
}

// WebhookInfo is a webhook route a workflow declares.
type WebhookInfo struct {
	// Slug is the route's last path segment.
	Slug string `json:"slug"`
	// Path is where deliveries go: /api/webhooks/{slug}.
	Path string `json:"path"`
	// Provider labels the sender.
	Provider string `json:"provider"`
	// Auth is the scheme that authenticates deliveries: github, hmac, standard-webhooks or none.
	Auth string `json:"auth"`
}

// WorkflowList is the answer of GET /api/workflows.
type WorkflowList struct {
	// Namespace is the namespace whose view this is (WorkflowDefinitions are visible only in
	// their own).
	Namespace string `json:"namespace"`
	// Workflows are sorted by name.
	Workflows []WorkflowInfo `json:"workflows"`
}

// listWorkflows answers GET /api/workflows[?namespace=]: the workflows the namespace can run,
// sorted by name.
func (a *api) listWorkflows(_ context.Context, c *call) (int, any, error) {
	ns, err := c.principal.Namespace(c.r.URL.Query().Get("namespace"), "")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ListWorkflows(a.deps.Workflows, ns), nil
}

// ListWorkflows describes the workflows namespace can run; the console shows the same list.
func ListWorkflows(workflows *catalog.Catalog, namespace string) WorkflowList {
	out := WorkflowList{Namespace: namespace, Workflows: []WorkflowInfo{}}
	for _, e := range workflows.List(namespace) {
		info := WorkflowInfo{Name: e.Name(), Description: e.Workflow.Description(), ExampleInput: e.Workflow.ExampleInput(),
			Source: string(e.Source), Revision: e.Revision, File: e.File, Webhooks: []WebhookInfo{}}
		if fw, ok := e.FileWorkflow(); ok {
			info.InputFields = fw.InputFields()
		}
		for _, spec := range e.Workflow.Webhooks() {
			auth := spec.EffectiveAuth()
			info.Webhooks = append(info.Webhooks, WebhookInfo{Slug: spec.Slug, Path: routes.Path(spec.Slug),
				Provider: cmp.Or(spec.Provider, auth.Scheme), Auth: auth.Scheme})
		}
		out.Workflows = append(out.Workflows, info)
	}
	return out
}
