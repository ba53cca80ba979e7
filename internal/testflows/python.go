package testflows

// The Python twins of bench-noop and chaos-ledger: workflow files the benchmark and the crash
// test write into a directory they pass to the manager as --workflow-dirs, so that the manager's
// Python workers run them on the same engine as the Go workflows, with the same input, step
// names and output.

// Names of the Python workflow files' workflows.
const (
	// NoopPyName is bench-noop written as a Python workflow file (NoopPy).
	NoopPyName = "bench-noop-py"
	// LedgerPyName is chaos-ledger written as a Python workflow file (LedgerPy).
	LedgerPyName = "chaos-ledger-py"
)

// File names the benchmark and the crash test give the Python workflow files.
const (
	NoopPyFile   = "bench_noop_py.py"
	LedgerPyFile = "chaos_ledger_py.py"
)

// NoopPyInput is the input of bench-noop-py: bench-noop's, and, when RestMillis is set, a
// durable sleep "rest" of that long after the steps, then one more no-op step "after" (the
// benchmark's cold replay: the manager is restarted while the run sleeps).
type NoopPyInput struct {
	NoopInput
	RestMillis int64 `json:"restMillis,omitempty"`
}

// NoopPy is bench-noop as a Python workflow file, for the benchmark's figures of what a step
// costs in Python against Go: the same input, step names ("s-%04d"), results (none) and output.
const NoopPy = `"""Benchmark: bench-noop as a Python workflow file (internal/testflows.NoopPy)."""

WORKFLOW_NAME = "bench-noop-py"


def _noop():
    return None


async def handler(inp, ctx):
    batched = inp.get("batched", False)
    for i in range(inp["steps"]):
        await ctx.step("s-%04d" % i, _noop, batched=batched)
    rest = inp.get("restMillis", 0)
    if rest:
        await ctx.sleep("rest", rest / 1000)
        await ctx.step("after", _noop)
    return {"steps": inp["steps"]}
`

// LedgerPy is chaos-ledger as a Python workflow file: the same input (LedgerInput), steps,
// sleeps, planned failures, retry policy and output. Each step execution appends its line to the
// ledger at $CENTAUR_CHAOS_LEDGER in one write to a descriptor opened O_APPEND, as Ledger.Append
// does, with the pid of the manager whose worker ran it (PID) and of that worker (Worker), and
// returns its execution id, which the journal records; the crash test checks Go and Python runs
// with the same verifier. Its steps read their attempt number with api.workflow_engine's
// step_attempt.
const LedgerPy = `"""Crash test: chaos-ledger as a Python workflow file (internal/testflows.LedgerPy)."""

import itertools
import json
import os
import time
from datetime import datetime, timezone

from api.workflow_engine import NonRetryableError, RetryPolicy, step_attempt

WORKFLOW_NAME = "chaos-ledger-py"

_PATH = os.environ.get("CENTAUR_CHAOS_LEDGER", "")
_FD = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if _PATH else -1
# The worker imports the file while its manager runs it: the parent is that manager.
_MANAGER = os.getppid()
_WORKER = os.getpid()
_SEQ = itertools.count(1)


def _append(run, step, attempt, ok):
    """Writes the line of one step execution and returns its execution id."""
    exec_id = "py%d-%d" % (_WORKER, next(_SEQ))
    at = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    line = {"exec": exec_id, "run": run, "step": step, "attempt": attempt, "ok": ok, "at": at,
            "pid": _MANAGER, "worker": _WORKER}
    os.write(_FD, (json.dumps(line, separators=(",", ":")) + "\n").encode())
    return exec_id


def _ledger_step(run, step, fail_first, work):
    """The function of one ledger step: append, work, then fail if planned or return the id."""
    def fn():
        if _FD < 0:
            raise NonRetryableError("no ledger: set CENTAUR_CHAOS_LEDGER to the ledger file's path")
        attempt = step_attempt()
        fail = fail_first and attempt == 1
        exec_id = _append(run, step, attempt, not fail)
        time.sleep(work)
        if fail:
            raise RuntimeError("planned failure of attempt %d (execution %s)" % (attempt, exec_id))
        return exec_id
    return fn


def _every(n, i):
    return n > 0 and i % n == n - 1


async def handler(inp, ctx):
    run = ctx.run.namespace + "/" + ctx.run.name
    retry = RetryPolicy(max_attempts=5, initial_backoff=max(inp.get("backoffMillis", 0), 1) / 1000)
    work = inp.get("workMillis", 0) / 1000
    for i in range(inp["steps"]):
        if _every(inp.get("sleepEvery", 0), i):
            await ctx.sleep("nap-%04d" % i, inp.get("sleepMillis", 0) / 1000)
        step = "s-%04d" % i
        fn = _ledger_step(run, step, _every(inp.get("failEvery", 0), i), work)
        await ctx.step(step, fn, retry=retry)
    return {"steps": inp["steps"]}
`
