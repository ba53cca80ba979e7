// Package localrun runs a workflow to its end on this machine, without a cluster: the library
// behind `centaur run FILE`. It uses the manager's own pieces, so a file that runs here runs
// there: the same loaders (workflowfile for Starlark, pyworkflow over pyworker's CPython
// workers for Python) and the same durable engine (engine.Execute), driven by the same loop
// as the WorkflowRun controller: execute, and when the run suspends, wake it and execute
// again from its journal.
//
// What the cluster provides comes from Options instead:
//
//   - the journal lives in memory and is returned in Result (Result.JournalJSON writes it with
//     the field names of a WorkflowRun's status.journal);
//   - time is skipped: when the run sleeps (or a step waits for its next attempt) the run's
//     clock jumps to the wake time, unless Options.RealTime;
//   - events come from Options.Events, matched by type and correlation id as the manager
//     matches WorkflowEvents; a wait that no event answers ends the run with a
//     *MissingEventError naming the event (a wait with a timeout times out instead);
//   - child runs execute in-process, recursively, with the workflow Options.Workflows finds
//     by name (LoadDir's Dir.Lookup: the workflows of the same directory);
//   - agent turns are answered by Options.AgentReply; without one, a turn ends the run with a
//     *MissingReplyError naming the turn.
//
// Every primitive is printed to Options.Out as it is journalled, one line each, and the run's
// output or failure last.
//
// Replay (the library behind `centaur replay`) runs a handler against a recorded journal
// instead, running nothing: the engine's Hooks.Reached compares each call with the journal's
// entry at its position, and the first difference is reported with where the new code makes
// the call.
package localrun
