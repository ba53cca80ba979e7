"""Offline tests of workflow files: run a handler to its end in the test process, with time
skipped, events sent by the test, and steps, agent turns and child workflows mocked by name.

The handler runs as the manager runs it: the file is loaded by the worker's own loader (with
its helpers, ``Input`` checked as the manager checks it), on the worker's deterministic event
loop, with the worker's ``ctx`` (the real :class:`~api.workflow_engine.WorkflowContext`). This
module stands in for the manager only: it answers each primitive the way the engine does and
keeps a journal with the field names of a ``WorkflowRun``'s ``status.journal``::

    import unittest
    from api.testing import WorkflowEnvironment

    class NightlyReportTest(unittest.TestCase):
        def test_report(self):
            env = WorkflowEnvironment("workflows/nightly_report.py")
            env.mock_agent("summarize", "All quiet.")
            run = env.start({"channel": "ops", "topic": "incidents"})
            self.assertEqual(run.assert_succeeded(), {"channel": "ops", "report": "All quiet."})
            self.assertEqual(run.entry("settle")["kind"], "Sleep")

What the engine does, this does too:

- **Names**: a primitive whose name is already in the journal returns the recorded result
  without running again; the same name used for another kind of primitive fails the run with
  ``NonDeterministic``.
- **Steps** retry by their policy (3 attempts, 1 s backoff doubling up to 1 min, unless set);
  ``NonRetryableError`` and ``non_retryable_error_types`` fail at once; a step that fails for
  good raises ``StepFailed`` in the handler. Per-attempt timeouts are not enforced here.
- **Time is skipped**: ``ctx.sleep``, ``ctx.sleep_until``, backoffs and wait timeouts move the
  run's clock (``ctx.now()``) instead of waiting. The clock starts at ``start_time``.
- **Events** are matched by type and correlation id, oldest first, each received once per run;
  an event sent before the wait counts. A wait no event answers stops the run in
  ``status == "waiting"`` (a wait with a timeout times out instead, returning ``None``);
  :meth:`Run.send_event` then resumes it.
- **Agent turns** are answered by :meth:`WorkflowEnvironment.mock_agent`, by turn name
  (``agent_turn`` without ``name`` is ``agent-turn-1``, ``agent-turn-2``, ...). A turn without
  a mock leaves the run waiting for it, as a run waits for its ``AgentRun``;
  :meth:`Run.reply_agent` answers it.
- **Child workflows** are answered by :meth:`WorkflowEnvironment.mock_workflow`, by workflow
  name; without a mock, a workflow file of the same directory runs in process, as the
  manager would run it; otherwise the child fails with ``UnknownWorkflow``.
- A handler that awaits primitives together which the engine refuses together, or calls one
  inside a step function, fails with ``Misuse``, with the manager's message.

Standard library only; works with ``unittest`` and pytest alike (nothing here is async).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import os
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

from api.workflow_engine import NonRetryableError, _format_time, _parse_time

__all__ = ["Failure", "Run", "WorkflowEnvironment", "WorkflowLoadError", "WorkflowTestError"]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
"""Where a test run's clock starts unless ``start_time`` says otherwise."""

_UNSET: Any = object()
_DEFAULT_RETRY = {"max_attempts": 3, "initial_backoff": 1.0, "multiplier": 2.0, "max_backoff": 60.0}
_GATHERABLE_STEPS = {"step"}
_GATHERABLE_RUNS = {"start_workflow", "wait_for_workflow", "run_workflow", "start_agent", "wait_for_agent", "run_agent", "send_event"}

class WorkflowLoadError(Exception):
    """The workflow file does not load; the message is the line ``centaur lint`` prints
    (``FILE:LINE:COLUMN: REASON: MESSAGE``). Attributes: ``reason``, ``file``, ``line``,
    ``column``, ``message``."""

    def __init__(self, reason: str, message: str, file: str, line: int, column: int) -> None:
        super().__init__(f"{file}:{line}:{column}: {reason}: {message}")
        self.reason, self.message, self.file, self.line, self.column = reason, message, file, line, column


class WorkflowTestError(AssertionError):
    """A test run cannot go on or did not end as asserted. An ``AssertionError``, so unittest
    and pytest report it as a test failure; the message shows the run's journal."""


@dataclasses.dataclass(frozen=True)
class Failure:
    """Why a run failed, as ``status.error`` says it: ``reason`` (``StepFailed``,
    ``HandlerError``, ``Misuse``, ...) and ``message`` (for an exception: its traceback)."""

    reason: str
    message: str


@dataclasses.dataclass
class _Mock:
    """What answers a mocked primitive: a value, a function, or an error."""

    value: Any = None
    fn: Optional[Callable[..., Any]] = None
    error: Any = None


class _LogChannel:
    """The worker's Channel for a handler in the test process: it keeps ``ctx.log`` lines."""

    def __init__(self) -> None:
        self.logs: List[Dict[str, Any]] = []
        self._lock = threading.Lock()

    def send_json(self, text: str) -> None:
        msg = json.loads(text)
        with self._lock:
            self.logs.append({"level": msg.get("level"), "message": msg.get("msg"), "fields": msg.get("fields") or {}})


def _bundle(path: str) -> Tuple[str, Dict[str, Any]]:
    """The file's directory and its revision bundle: the file, its directory's ``_*.py``
    helpers and packages, as the manager bundles them (PROTOCOL.md)."""
    path = os.path.abspath(path)
    directory, entry = os.path.split(path)
    files = {entry: _read(path)}
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        if name.startswith("_") and name.endswith(".py") and os.path.isfile(full) and name != entry:
            files[name] = _read(full)
        elif os.path.isfile(os.path.join(full, "__init__.py")) and not name.startswith("."):
            for root, dirs, names in os.walk(full):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
                for file in sorted(n for n in names if n.endswith(".py")):
                    files[os.path.relpath(os.path.join(root, file), directory).replace(os.sep, "/")] = _read(os.path.join(root, file))
    return directory, {"origin": "dir", "entry": entry, "files": files}


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _load(path: str) -> Any:
    """The worker's Revision of the workflow file at path. Raises WorkflowLoadError."""
    from centaur_worker.loader import LoadError, bundle_digest, load_revision

    directory, bundle = _bundle(path)
    digest = bundle_digest(bundle["origin"], bundle["entry"], bundle["files"])
    try:
        return load_revision(digest, None, directory, bundle)
    except LoadError as err:
        raise WorkflowLoadError(err.reason, err.message, err.file or path, err.line, err.column) from None


def _is_workflow_file(name: str) -> bool:
    """Whether the manager would load the file as a workflow (not a helper or a test)."""
    return (name.endswith(".py") and not name.startswith(("_", ".", "test_")) and not name.endswith("_test.py")
            and name != "conftest.py")


def _plain(value: Any, what: str) -> Any:
    """A value as the JSON the manager would carry (dataclasses converted). Raises TypeError."""
    from centaur_worker.jsonvalue import dumps, why_not_json

    try:
        return json.loads(dumps(value))
    except (TypeError, ValueError, RecursionError):
        raise TypeError(f"{what} must be JSON: {why_not_json(value, what)}") from None


def _child_id(run: str, step: str) -> str:
    """The id of what a run starts at a primitive, as the manager names it."""
    return run + "-" + step.replace("/", "-").replace(" ", "-")


def _check_turn(calls: List[Dict[str, Any]]) -> Optional[str]:
    """The manager's Misuse message for primitives awaited together that cannot be, or None."""
    if len(calls) <= 1:
        return None
    steps = sum(1 for c in calls if c["kind"] in _GATHERABLE_STEPS)
    runs = sum(1 for c in calls if c["kind"] in _GATHERABLE_RUNS)
    if steps == len(calls) or runs == len(calls):
        return None
    shown = ", ".join(f'ctx.{c["kind"]}("{c.get("name") or c.get("change_id", "")}")' for c in calls)
    return (f"the handler awaited {shown} together (asyncio.gather or tasks): a handler may await several ctx.step calls "
            f"at once, or starts and waits of child workflows and agent turns; await ctx.sleep, sleep_until, "
            f"wait_for_event, parallel and get_version on their own, one after another")


class WorkflowEnvironment:
    """One workflow file under test, with the mocks, events and clock its runs share.

    ``path`` is the workflow file (or a module loaded from it). ``start_time`` (an aware
    datetime) is where the clock starts; ``run_id`` names the run (``ctx.run.name``), by
    default ``test-`` and the workflow's name. Loading fails with :class:`WorkflowLoadError`,
    the error the manager would log.
    """

    def __init__(self, path: Any, *, start_time: Optional[datetime] = None, run_id: str = "") -> None:
        if not isinstance(path, (str, os.PathLike)):
            path = getattr(path, "__file__", None) or path
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError("WorkflowEnvironment: give the workflow file's path (or the module loaded from it)")
        self.path = os.fspath(path)
        self._revision = _load(self.path)
        self.workflow = json.loads(self._revision.workflow_json)["name"]
        if start_time is not None and (start_time.tzinfo is None or start_time.utcoffset() is None):
            raise ValueError("WorkflowEnvironment: start_time must be an aware datetime (give it a time zone)")
        self.now = (start_time or DEFAULT_START).astimezone(timezone.utc)
        self.run_id = run_id or f"test-{self.workflow}".replace("_", "-")
        self._steps: Dict[str, _Mock] = {}
        self._agents: Dict[str, _Mock] = {}
        self._workflows: Dict[str, _Mock] = {}
        self._events: List[Tuple[str, str, str, Any]] = []  # (ref, type, correlation id, payload)
        self._siblings: Optional[Dict[str, str]] = None  # workflow name -> file of the directory

    # Mocks.

    def mock_step(self, name: str, value: Any = _UNSET, *, fn: Optional[Callable[[], Any]] = None,
                  error: Optional[BaseException] = None) -> "WorkflowEnvironment":
        """Answer step ``name`` without its function: with ``value``, with ``fn()`` called
        instead of the handler's function, or by raising ``error`` on every attempt (retried
        as the step's policy says). Returns the environment, so mocks chain."""
        self._steps[name] = _mock(f'mock_step("{name}")', value, fn, error)
        return self

    def mock_agent(self, name: str, reply: Any = _UNSET, *, fn: Optional[Callable[[Dict[str, Any]], str]] = None,
                   error: str = "") -> "WorkflowEnvironment":
        """Answer agent turn ``name`` (``run_agent``/``start_agent``'s name, or ``agent-turn-N``
        for the N-th unnamed ``agent_turn``) with the text ``reply``, with ``fn(request)``
        (the request: ``name``, ``prompt``, ``thread_key``, ``agent``, ``instructions``,
        ``model``, ``temperature``, ``max_tokens``), or fail it with the message ``error``
        (``AgentFailed`` in the handler)."""
        self._agents[name] = _mock(f'mock_agent("{name}")', reply, fn, error or None)
        return self

    def mock_workflow(self, workflow_name: str, output: Any = _UNSET, *, fn: Optional[Callable[[Any], Any]] = None,
                      failure: Optional[Failure] = None) -> "WorkflowEnvironment":
        """Answer child runs of ``workflow_name`` with ``output``, with ``fn(input)``, or fail
        them with ``failure`` (``ChildWorkflowFailed`` in the handler)."""
        self._workflows[workflow_name] = _mock(f'mock_workflow("{workflow_name}")', output, fn, failure)
        return self

    def send_event(self, event_type: str, correlation_id: str = "", payload: Any = None) -> "WorkflowEnvironment":
        """Send an event, as ``POST /api/workflows/events`` does: a run's wait for its type and
        correlation id receives it, now or later (oldest first, once per run)."""
        self._events.append((f"event-{len(self._events) + 1}", event_type, correlation_id, _plain(payload, "payload")))
        return self

    # Runs.

    def start(self, input: Any = None) -> "Run":
        """Start a run with ``input`` (JSON, or an ``Input`` instance) and run it until it
        ends or waits for something only the test can give (see :attr:`Run.status`)."""
        run = Run(self, self._revision, self.run_id, _plain(input, "input"))
        run._start()
        return run

    def _sibling(self, workflow_name: str) -> Optional[str]:
        """The file of the test file's directory that defines ``workflow_name``, if any."""
        if self._siblings is None:
            self._siblings = {}
            directory = os.path.dirname(os.path.abspath(self.path))
            for name in sorted(os.listdir(directory)):
                if _is_workflow_file(name):
                    try:
                        revision = _load(os.path.join(directory, name))
                    except WorkflowLoadError:
                        continue
                    self._siblings.setdefault(json.loads(revision.workflow_json)["name"], os.path.join(directory, name))
                    revision.unload()
        return self._siblings.get(workflow_name)

    def _child_env(self, path: str) -> "WorkflowEnvironment":
        """An environment for a child's file that shares this one's mocks, events and clock."""
        child = WorkflowEnvironment(path, start_time=self.now)
        child._steps, child._agents, child._workflows, child._events = self._steps, self._agents, self._workflows, self._events
        child._siblings = self._siblings
        return child


def _mock(what: str, value: Any, fn: Any, error: Any) -> _Mock:
    given = sum(1 for v in (value is not _UNSET, fn is not None, error is not None) if v)
    if given != 1:
        raise TypeError(f"{what}: give exactly one of a value, fn= or an error")
    if fn is not None and not callable(fn):
        raise TypeError(f"{what}: fn must be callable, got {type(fn).__name__}")
    return _Mock(value=None if value is _UNSET else value, fn=fn, error=error)


class _Blocked(Exception):
    """A primitive waits for something only the test can give; ``why`` says what."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _RunFailed(Exception):
    """The engine fails the run (``NonDeterministic``, ``Misuse``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.failure = Failure(reason, message)


class Run:
    """One run of the workflow under test. Read :attr:`status`, :attr:`output`,
    :attr:`failure` and :attr:`journal`; resume a waiting run with :meth:`send_event` or
    :meth:`reply_agent`."""

    def __init__(self, env: WorkflowEnvironment, revision: Any, run_id: str, input: Any) -> None:
        from centaur_worker.handler import Handler

        self._env = env
        self.id = run_id
        self.input = input
        self.status = "running"
        """``"succeeded"``, ``"failed"`` or ``"waiting"`` (for an event or an agent reply)."""
        self.output: Any = None
        self.failure: Optional[Failure] = None
        self.waiting_for = ""
        """What a waiting run waits for: ``event order.paid/o-1`` or ``agent turn NAME``."""
        self.journal: List[Dict[str, Any]] = []
        """The journal, entries in the order first reached, with ``status.journal``'s field
        names (``name``, ``kind``, ``state``, ``attempts``, ``startedAt``, ``result``, ...)."""
        self.agent_requests: List[Dict[str, Any]] = []
        """Every agent turn the run asked for: its ``name`` and request (``prompt``, ...)."""
        self.children: Dict[str, "Run"] = {}
        """The child runs that ran in process, by child run id."""
        self.started_at = env.now
        self._channel = _LogChannel()
        run = {"namespace": "test", "name": run_id, "uid": run_id, "workflow": env.workflow,
               "revision": f"{env.workflow.replace('_', '-')}-{revision.digest[:12]}", "started_at": _format_time(env.now)}
        self._handler = Handler(revision, run, 1, self._channel)
        self._index: Dict[str, int] = {}
        self._received: List[str] = []
        self._turn: List[Dict[str, Any]] = []
        self._ops: List[Tuple[int, str]] = []  # (call index, "start" | "wait" | "single") left to answer
        self._results: List[Dict[str, Any]] = []
        self._replies: Dict[str, str] = {}
        self._child_results: Dict[str, Tuple[Any, Optional[Failure]]] = {}  # by child run id
        self._started_turns: Dict[str, Tuple[str, Dict[str, Any]]] = {}  # turn id -> (name, request)

    # What a test reads.

    @property
    def logs(self) -> List[Dict[str, Any]]:
        """The run's ``ctx.log`` lines: ``{"level", "message", "fields"}``."""
        return list(self._channel.logs)

    @property
    def now(self) -> datetime:
        """The run's clock: where skipped sleeps, backoffs and timeouts have moved it."""
        return self._env.now

    def entry(self, name: str) -> Dict[str, Any]:
        """The journal entry named ``name``; a WorkflowTestError naming the journal when there
        is none."""
        i = self._index.get(name)
        if i is None:
            raise WorkflowTestError(f'run {self.id} has no journal entry "{name}"\n{self.describe()}')
        return self.journal[i]

    def describe(self) -> str:
        """The run's status and journal, one entry a line: what a failing assertion shows."""
        lines = [f"run {self.id} ({self._env.workflow}): {self.status}"]
        if self.failure is not None:
            lines.append(f"  failure {self.failure.reason}: {self.failure.message}")
        if self.waiting_for:
            lines.append(f"  waiting for {self.waiting_for}")
        for e in self.journal:
            shown = json.dumps(e.get("result")) if "result" in e else e.get("error", "")
            lines.append(f"  {e['kind']:<7} {e['name']} {e['state']} {shown}".rstrip())
        return "\n".join(lines)

    def assert_succeeded(self) -> Any:
        """Raises WorkflowTestError unless the run succeeded; returns its output."""
        if self.status != "succeeded":
            raise WorkflowTestError(f"run {self.id} did not succeed\n{self.describe()}")
        return self.output

    def assert_failed(self, reason: str = "") -> Failure:
        """Raises WorkflowTestError unless the run failed (with ``reason``, when given);
        returns the failure."""
        if self.failure is None or (reason and self.failure.reason != reason):
            want = f"fail with reason {reason}" if reason else "fail"
            raise WorkflowTestError(f"run {self.id} did not {want}\n{self.describe()}")
        return self.failure

    # What a test gives a waiting run.

    def send_event(self, event_type: str, correlation_id: str = "", payload: Any = None) -> "Run":
        """Send an event (see :meth:`WorkflowEnvironment.send_event`) and resume the run if
        it waits."""
        self._env.send_event(event_type, correlation_id, payload)
        return self._resume()

    def reply_agent(self, name: str, text: str) -> "Run":
        """Answer the agent turn ``name`` with ``text`` and resume the run if it waits."""
        self._replies[name] = text
        return self._resume()

    def _resume(self) -> "Run":
        if self.status == "waiting":
            self.status, self.waiting_for = "running", ""
            self._drive()
        return self

    # Driving the handler.

    def _start(self) -> None:
        self._settle(self._handler.start(self.input))

    def _settle(self, outcome: Tuple[str, bool]) -> None:
        """Takes the worker's message about the handler: a turn to answer, or its end."""
        msg = json.loads(outcome[0])
        op = msg["op"]
        if op == "turn":
            self._turn = [json.loads(call.text) for call in self._handler.turn]
            self._results = [{} for _ in self._turn]
            self._ops = _operations(self._turn)
            misuse = _check_turn(self._turn)
            if misuse:
                self._fail(Failure("Misuse", misuse))
                return
            self._drive()
        elif op == "return":
            self.status, self.output = "succeeded", msg.get("output")
        elif op == "raise":
            err = msg["error"]
            text = (err.get("traceback") or "").strip() or f'{err["type"]}: {err["message"]}'
            self._fail(Failure(err.get("reason") or "HandlerError", text))
        else:
            self._fail(Failure(msg["reason"], msg["message"]))

    def _drive(self) -> None:
        """Answers the current turn's calls in the engine's order, then resumes the handler."""
        while self._ops:
            index, op = self._ops[0]
            try:
                result = self._answer(self._turn[index], self._handler.turn[index], op)
            except _Blocked as blocked:
                self.status, self.waiting_for = "waiting", blocked.why
                return
            except _RunFailed as failed:
                self._fail(failed.failure)
                return
            self._ops.pop(0)
            if op != "start" or self._turn[index]["kind"] not in ("run_workflow", "run_agent"):
                self._results[index] = result
        self._settle(self._handler.resume(self._results, _format_time(self._env.now)))

    def _fail(self, failure: Failure) -> None:
        self.status, self.failure = "failed", failure
        self._handler.drop()

    def _answer(self, call: Dict[str, Any], worker_call: Any, op: str) -> Dict[str, Any]:
        kind = call["kind"]
        if kind == "step":
            return self._step(call["name"], worker_call.fns[0], call, worker_call.now)
        if kind == "parallel":
            return self._parallel(call, worker_call)
        if kind in ("sleep", "sleep_until"):
            return self._sleep(call)
        if kind == "wait_for_event":
            return self._wait_for_event(call)
        if kind == "send_event":
            return self._send_event(call)
        if kind == "get_version":
            return self._version(call)
        if kind in ("start_workflow", "run_workflow") and op in ("start", "single"):
            return self._start_child(call)
        if kind in ("start_agent", "run_agent") and op in ("start", "single"):
            return self._start_agent(call)
        if kind == "run_workflow":
            return self._wait_child(call["name"] + "/result", _child_id(self.id, call["name"]))
        if kind == "wait_for_workflow":
            return self._wait_child(call["name"], call["run_id"])
        if kind == "run_agent":
            return self._wait_agent(call["name"] + "/result", _child_id(self.id, call["name"]))
        return self._wait_agent(call["name"], call["turn_id"])

    # The journal.

    def _recorded(self, name: str, kind: str) -> Optional[Dict[str, Any]]:
        """The final entry recorded under name, failing the run as the engine does when the
        name was recorded as another kind."""
        i = self._index.get(name)
        if i is None:
            return None
        entry = self.journal[i]
        if entry["kind"] != kind:
            raise _RunFailed("NonDeterministic", f'"{name}" was recorded as a {entry["kind"]} but the handler now calls it as a '
                                                 f"{kind}: keep the names of primitives stable across versions of a workflow")
        return entry if entry["state"] in ("Completed", "Failed") else None

    def _record(self, name: str, kind: str, state: str, **fields: Any) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"name": name, "kind": kind, "state": state}
        for key in ("attempts", "startedAt", "finishedAt", "wakeAt", "target", "ref", "result", "error", "errorType"):
            value = fields.get(key)
            if value is not None and value != "":
                entry[key] = value
        i = self._index.get(name)
        if i is None:
            self._index[name] = len(self.journal)
            self.journal.append(entry)
        else:
            entry.setdefault("startedAt", self.journal[i].get("startedAt"))
            self.journal[i] = entry
        return entry

    def _time(self) -> str:
        return _format_time(self._env.now)

    # Steps.

    def _step(self, name: str, fn: Callable[[], Any], call: Dict[str, Any], handler_now: str) -> Dict[str, Any]:
        entry = self._recorded(name, "Step")
        if entry is None:
            entry = self._run_step(name, fn, call.get("retry") or {}, handler_now)
        if entry["state"] == "Failed":
            return {"error": {"kind": "step_failed", "step": name, "attempts": entry.get("attempts", 1),
                              "message": entry.get("error", ""), "error_type": entry.get("errorType", "")}}
        return {"value": entry.get("result")}

    def _parallel(self, call: Dict[str, Any], worker_call: Any) -> Dict[str, Any]:
        values = []
        for branch, fn in zip(call["branches"], worker_call.fns):
            result = self._step(branch["name"], fn, call, worker_call.now)
            if "error" in result:
                return result
            values.append(result["value"])
        return {"value": values}

    def _run_step(self, name: str, fn: Callable[[], Any], retry: Dict[str, Any], handler_now: str) -> Dict[str, Any]:
        """Calls the step's function (or its mock) by its retry policy and records the end."""
        policy = {k: (retry.get(k) if retry.get(k) is not None else v) for k, v in _DEFAULT_RETRY.items()}
        if retry.get("max_backoff") is None:
            policy["max_backoff"] = max(_DEFAULT_RETRY["max_backoff"], policy["initial_backoff"])
        non_retryable = set(retry.get("non_retryable_error_types") or ())
        mock = self._env._steps.get(name)
        started = self._time()
        attempt = 0
        while True:
            attempt += 1
            value, error = self._call_step(name, fn, mock, attempt, handler_now)
            if error is None:
                return self._record(name, "Step", "Completed", attempts=attempt, startedAt=started, finishedAt=self._time(),
                                    result=value)
            type_name, message, final = error
            final = final or type_name in non_retryable or attempt >= policy["max_attempts"]
            if final:
                return self._record(name, "Step", "Failed", attempts=attempt, startedAt=started, finishedAt=self._time(),
                                    error=message, errorType=type_name)
            backoff = min(policy["initial_backoff"] * policy["multiplier"] ** (attempt - 1), policy["max_backoff"])
            self._env.now += timedelta(seconds=backoff)

    def _call_step(self, name: str, fn: Callable[[], Any], mock: Optional[_Mock], attempt: int,
                   handler_now: str) -> Tuple[Any, Optional[Tuple[str, str, bool]]]:
        """One attempt: (value, None) or (None, (error type, message, non-retryable))."""
        from centaur_worker.steps import StepScope

        if mock is not None and mock.fn is None:
            if mock.error is not None:
                return None, (type(mock.error).__name__, _message(mock.error), isinstance(mock.error, NonRetryableError))
            fn = _constant(mock.value)
        elif mock is not None:
            fn = mock.fn  # type: ignore[assignment]
        scope = StepScope(self._handler, 1, name, handler_now, attempt)
        outcome = _call_in_scope(fn, scope)
        if scope.misuse is not None:
            return None, ("Misuse", scope.misuse, True)
        if "error" in outcome:
            exc = outcome["error"]
            return None, (type(exc).__name__, _message(exc), isinstance(exc, NonRetryableError))
        try:
            return _plain(outcome["value"], f'the result of step "{name}"'), None
        except TypeError as err:
            return None, ("TypeError", str(err), True)

    # Time.

    def _sleep(self, call: Dict[str, Any]) -> Dict[str, Any]:
        name = call["name"]
        if self._recorded(name, "Sleep") is None:
            started = self._time()
            if call["kind"] == "sleep":
                wake = self._env.now + timedelta(seconds=call["seconds"])
            else:
                wake = _parse_time(call["until"])
            self._env.now = max(self._env.now, wake)
            self._record(name, "Sleep", "Completed", startedAt=started, finishedAt=_format_time(wake), wakeAt=_format_time(wake))
        return {"value": None}

    def _version(self, call: Dict[str, Any]) -> Dict[str, Any]:
        name = call["change_id"]
        entry = self._recorded(name, "Version")
        if entry is None:
            now = self._time()
            entry = self._record(name, "Version", "Completed", startedAt=now, finishedAt=now, result=call["max_supported"])
        return {"value": entry["result"]}

    # Events.

    def _wait_for_event(self, call: Dict[str, Any]) -> Dict[str, Any]:
        name, target = call["name"], f'event {call["event_type"]}/{call["correlation_id"]}'
        entry = self._recorded(name, "Event")
        if entry is None:
            started = self.journal[self._index[name]]["startedAt"] if name in self._index else self._time()
            for ref, event_type, correlation, payload in self._env._events:
                if (event_type, correlation) == (call["event_type"], call["correlation_id"]) and ref not in self._received:
                    self._received.append(ref)
                    now = self._time()
                    entry = self._record(name, "Event", "Completed", startedAt=started, finishedAt=now, target=target, ref=ref,
                                         result=payload)
                    break
            else:
                if call.get("timeout") is None:
                    self._record(name, "Event", "Waiting", startedAt=started, target=target)
                    raise _Blocked(target)
                wake = _parse_time(started) + timedelta(seconds=call["timeout"])
                self._env.now = max(self._env.now, wake)
                entry = self._record(name, "Event", "Failed", startedAt=started, finishedAt=self._time(),
                                     wakeAt=_format_time(wake), target=target, error="timed out")
        return {"value": entry.get("result")}

    def _send_event(self, call: Dict[str, Any]) -> Dict[str, Any]:
        name = call["name"]
        if self._recorded(name, "Event") is None:
            ref, now = _child_id(self.id, name), self._time()
            self._env._events.append((ref, call["event_type"], call["correlation_id"], call.get("payload")))
            self._record(name, "Event", "Completed", startedAt=now, finishedAt=now,
                         target=f'send event {call["event_type"]}/{call["correlation_id"]}', ref=ref)
        return {"value": None}

    # Child workflows.

    def _start_child(self, call: Dict[str, Any]) -> Dict[str, Any]:
        name, workflow = call["name"], call["workflow_name"]
        child_id = _child_id(self.id, name)
        if self._recorded(name, "Child") is None:
            now = self._time()
            self._record(name, "Child", "Completed", startedAt=now, finishedAt=now, target=f"start {workflow}", ref=child_id)
            self._child_results[child_id] = self._run_child(child_id, workflow, call.get("input"))
        return {"value": child_id}

    def _run_child(self, child_id: str, workflow: str, input: Any) -> Tuple[Any, Optional[Failure]]:
        """Runs the child to its end: its mock, or its file of the same directory."""
        mock = self._env._workflows.get(workflow)
        if mock is not None:
            if mock.error is not None:
                return None, mock.error
            return (_plain(mock.fn(input), f"the output of mock_workflow({workflow!r})") if mock.fn else mock.value), None
        path = self._env._sibling(workflow)
        if path is None:
            return None, Failure("UnknownWorkflow", f"no workflow named {workflow} is loaded here: put its file in the same "
                                                    f"directory, or mock it with env.mock_workflow({workflow!r}, ...)")
        env = self._env._child_env(path)
        child = Run(env, env._revision, child_id, input)
        self.children[child_id] = child
        child._start()
        self._env.now = max(self._env.now, env.now)
        if child.status == "waiting":
            raise WorkflowTestError(f"child run {child_id} ({workflow}) waits for {child.waiting_for}: send the event or mock "
                                    f"the agent turn before the parent starts it\n{child.describe()}")
        return child.output, child.failure

    def _wait_child(self, name: str, child_id: str) -> Dict[str, Any]:
        entry = self._recorded(name, "Child")
        if entry is None:
            if child_id not in self._child_results:
                raise _RunFailed("HandlerError", f"child run {child_id} was not started by run {self.id}")
            output, failure = self._child_results[child_id]
            now = self._time()
            fields = dict(startedAt=now, finishedAt=now, target=f"workflow {child_id}", ref=child_id)
            if failure is None:
                entry = self._record(name, "Child", "Completed", result=output, **fields)
            else:
                entry = self._record(name, "Child", "Failed", error=f"{failure.reason}: {failure.message}", **fields)
        if entry["state"] == "Failed":
            failure = self._child_results.get(child_id, (None, None))[1]
            reason, message = (failure.reason, failure.message) if failure else ("ChildFailed", entry.get("error", ""))
            return {"error": {"kind": "child_failed", "child": child_id, "reason": reason, "message": message}}
        return {"value": entry.get("result")}

    # Agent turns.

    def _start_agent(self, call: Dict[str, Any]) -> Dict[str, Any]:
        name = call["name"]
        turn_id = _child_id(self.id, name)
        if self._recorded(name, "Agent") is None:
            now = self._time()
            self._record(name, "Agent", "Completed", startedAt=now, finishedAt=now, target="start agent", ref=turn_id)
            self.agent_requests.append(dict(call["request"], name=name))
            self._started_turns[turn_id] = (name, dict(call["request"], name=name))
        return {"value": turn_id}

    def _wait_agent(self, name: str, turn_id: str) -> Dict[str, Any]:
        entry = self._recorded(name, "Agent")
        if entry is None:
            if turn_id not in self._started_turns:
                raise _RunFailed("HandlerError", f"agent turn {turn_id} was not started by run {self.id}")
            turn, request = self._started_turns[turn_id]
            target = f"agent turn {turn_id}"
            started = self.journal[self._index[name]]["startedAt"] if name in self._index else self._time()
            mock = self._env._agents.get(turn)
            if mock is None and turn not in self._replies:
                self._record(name, "Agent", "Waiting", startedAt=started, target=target, ref=turn_id)
                raise _Blocked(f"agent turn {turn}")
            fields = dict(startedAt=started, finishedAt=self._time(), target=target, ref=turn_id)
            if mock is not None and mock.error is not None:
                entry = self._record(name, "Agent", "Failed", error=str(mock.error), **fields)
            else:
                text = self._replies.get(turn) if mock is None else (mock.fn(request) if mock.fn else mock.value)
                if not isinstance(text, str):
                    raise WorkflowTestError(f"the reply to agent turn {turn} must be a string, got {type(text).__name__}")
                entry = self._record(name, "Agent", "Completed", result={"text": text, "model": "test"}, **fields)
        if entry["state"] == "Failed":
            return {"error": {"kind": "agent_failed", "turn": turn_id, "reason": "AgentFailed", "message": entry.get("error", "")}}
        return {"value": entry["result"]["text"]}


def _operations(calls: List[Dict[str, Any]]) -> List[Tuple[int, str]]:
    """The order the engine answers a turn in: a lone call on its own; for starts and waits of
    children and agents, every start first, then the waits, each in call order."""
    if len(calls) == 1 and calls[0]["kind"] not in _GATHERABLE_RUNS:
        return [(0, "single")]
    if all(c["kind"] == "step" for c in calls):
        return [(i, "single") for i in range(len(calls))]
    starts = [(i, "start") for i, c in enumerate(calls) if c["kind"] in ("start_workflow", "run_workflow", "start_agent",
                                                                          "run_agent", "send_event")]
    waits = [(i, "wait") for i, c in enumerate(calls) if c["kind"] in ("wait_for_workflow", "run_workflow",
                                                                        "wait_for_agent", "run_agent")]
    return starts + waits


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _message(exc: BaseException) -> str:
    from centaur_worker.tracebacks import exception_message

    return exception_message(exc)


def _call_in_scope(fn: Callable[[], Any], scope: Any) -> Dict[str, Any]:
    """Calls a step function as the worker does: on a thread of its own, inside the step's
    scope (so ctx.now() and ctx.log() work and a durable primitive is a Misuse), awaiting a
    coroutine it returns on an event loop of its own."""
    from api.workflow_engine import STEP_ATTEMPT
    from centaur_worker.steps import STEP_SCOPE

    outcome: Dict[str, Any] = {}

    def target() -> None:
        STEP_SCOPE.set(scope)
        STEP_ATTEMPT.set(scope.attempt)
        try:
            value = fn()
            if inspect.iscoroutine(value):
                value = asyncio.run(value)
            outcome["value"] = value
        except BaseException as exc:  # a step's error of any kind is the step's failure
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"centaur-test-step-{scope.name}")
    thread.start()
    thread.join()
    return outcome

