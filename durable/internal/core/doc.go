// Package core implements the durable SDK: the replay engine and its primitives. Its API is
// split for two audiences, as Temporal's Go SDK splits its internal package: package durable
// re-exports what a workflow author uses, and package durable/engine what a host (the
// WorkflowRun controller, the workflow-file interpreter, tests) uses. Document the author's
// names in durable and the host's in engine; this package's comments are for maintainers.
package core
