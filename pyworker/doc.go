// Package pyworker runs the CPython worker processes that execute Python workflow files, and
// speaks the protocol of python/PROTOCOL.md with them.
//
// A Pool keeps a fixed number of worker slots. Each run is routed to one slot by its uid, so
// that the worker which kept the run's suspended handler after one execution serves the next
// one too. Workers are started on demand, with a parent-death signal and pipes for the
// protocol (never a port); their stdout and stderr go to the manager's log, a bounded line at a
// time. A worker that dies, or whose handler code runs past the deadline between two
// primitives, is replaced; the run whose handler code was running is blamed, and the host
// fails a run blamed too often (ExecutionLimitExceeded).
//
// The package knows the protocol and the processes, not the durable engine: package
// pyworkflow answers the turns a Session receives with the engine's primitives.
package pyworker
