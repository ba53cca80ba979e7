// Package pyworkflow makes Python workflow files into durable workflows: the product's own
// files (`WORKFLOW_NAME`, `async def handler(inp, ctx)`, `@dataclass class Input`, `WEBHOOKS`),
// loaded from WORKFLOW_DIRS and executed by the CPython workers of package pyworker.
//
// A file becomes a durable.Workflow like a Go one (engine.DefineRaw), with the same journal,
// replay and status. The handler's code runs in a worker; each time it awaits ctx primitives
// the worker sends them as one turn, and this package answers every call with the durable
// primitive of the same meaning (durable.Step, durable.Sleep, durable.RunWorkflow, ...), so the
// engine records them exactly as it records a Go handler's. Between executions the worker keeps
// the suspended handler; an execution whose journal still ends where the last one left it
// resumes it (engine.Resume) instead of replaying the handler from the top.
//
// Files in WORKFLOW_DIRS are the administrator's code, trusted like the Go workflows compiled
// into the manager; WorkflowDefinitions stay Starlark (package workflowfile).
//
// The package knows nothing of Kubernetes; package catalog feeds it directories and stored
// revisions.
package pyworkflow
