// Package engine is the host side of the durable SDK: what a process that runs workflows
// needs, and an author does not. Execute replays a workflow's handler against its Journal and
// returns an Outcome; a Recorder persists the entries each execution adds; a Host answers the
// primitives that reach outside the run (events, child runs, agent turns); a Registry holds the
// workflows a manager serves; the Reason constants name how a run failed.
//
// The WorkflowRun controller is this package's host over the Kubernetes API, and the
// interpreter of workflow files builds its workflows with DefineRaw. Authors write handlers
// with package durable; the two packages share one implementation, so a durable.Workflow is
// what Registry.Register and Execute take.
//
// Execute knows nothing of Kubernetes: it is pure Go and unit-tested without an API server.
package engine
