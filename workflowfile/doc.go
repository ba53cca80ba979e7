// Package workflowfile runs workflow files: Starlark (Python-syntax) files that define a durable
// workflow, loaded at runtime from a directory (WORKFLOW_DIRS) or from a WorkflowDefinition's
// source, so that a new workflow needs no rebuild of the manager.
//
// A workflow file sets WORKFLOW_NAME and defines handler(inp, ctx); it may set DESCRIPTION,
// EXAMPLE_INPUT, an input declaration (Input = dataclass(...)) and WEBHOOKS, and load() helper
// modules from its directory. docs/workflow-files.md is the author's reference.
//
// A compiled file becomes a durable.Workflow like a Go one (engine.DefineRaw): the same journal,
// the same replay, the same status. The handler runs on the durable engine's handler goroutine;
// each ctx primitive calls the matching durable primitive, so a suspension stops the Starlark
// interpreter exactly as it stops Go code. Starlark is deterministic and hermetic by
// construction (no clock, no randomness, no I/O), and this package keeps it so: the only way to
// reach the world is the http module, the clock of the time module and any module the manager
// hands in, and all of them work only inside a ctx.step function, whose result is journalled.
//
// Each file is compiled once per revision: a digest of its text and of every module it loads
// (Revision). A run records the revision it started with and replays that revision to its end;
// a Bundle holds the text a revision needs so that the host can store it and compile it again
// after the file changed or the manager restarted.
//
// The package knows nothing of Kubernetes; the controllers and the catalog package adapt it.
package workflowfile
