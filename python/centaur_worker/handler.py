"""One run's handler between the manager's commands (PROTOCOL.md, "Executing").

A :class:`Handler` owns the handler's coroutine, its deterministic loop and its ``ctx``. It
runs the loop until no callback is ready, then reports what the handler did: a *turn* (every
ctx primitive its tasks called meanwhile, in call order), its return value, the exception that
left it, or a failure of the run (``fail``). Each primitive's call is recorded as JSON when it
is called, with a future the handler awaits; ``results`` resolve those futures in order and the
loop runs again. A primitive the manager did not answer simply stays unresolved: suspension is
never an exception the handler could catch.

A handler kept between executions waits in its turn; a dropped one is made inert (its ctx
records nothing, its loop runs nothing) before its coroutines are closed, so the ``finally:``
blocks that run then cannot reach the manager.
"""

from __future__ import annotations

import functools
import os
import sys
from asyncio import events
from datetime import datetime
from typing import Any, Callable, Coroutine, Dict, List, Optional, Tuple

import api.workflow_engine
from api.workflow_engine import (
    AgentFailed,
    ChildWorkflowFailed,
    Misuse,
    RunInfo,
    StepFailed,
    WorkflowContext,
    _parse_time,
)
from centaur_worker.framing import MAX_FRAME, Channel, diag, log_message
from centaur_worker.jsonvalue import dumps, why_not_json
from centaur_worker.loader import Revision
from centaur_worker.loop import DeterministicLoop, LoopOwner
from centaur_worker.metadata import InvalidInput
from centaur_worker.steps import STEP_SCOPE
from centaur_worker.tracebacks import exception_message, format_exception

__all__ = ["Call", "Handler", "HandlerContext", "Outcome", "RunFailure"]

Outcome = Tuple[str, bool]
"""What a handler's execution came to: the message to send, and whether the session is over."""

# Frames in these directories (the api package and this worker) are ctx's own; the first
# frame outside them is the handler's code that called a primitive.
_OWN_DIRS = tuple(os.path.dirname(os.path.abspath(f)) + os.sep for f in (api.workflow_engine.__file__, __file__))


@functools.lru_cache(maxsize=1024)
def _is_own(filename: str) -> bool:
    """Whether code of filename is ctx's own (the api package or this worker)."""
    return os.path.abspath(filename).startswith(_OWN_DIRS)


def call_site() -> str:
    """Where the handler's code called the ctx primitive being recorded, "FILE:LINE in
    FUNCTION": the innermost frame outside the api package and this worker. The manager shows
    it in reports on the call (centaur replay's first divergence)."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if not _is_own(code.co_filename):
            return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
        frame = frame.f_back
    return ""


_REASONS = ((StepFailed, "StepFailed"), (ChildWorkflowFailed, "ChildFailed"), (AgentFailed, "AgentFailed"))
_BUILTIN_ERRORS: Dict[str, Callable[[str], Exception]] = {"ValueError": ValueError, "TypeError": TypeError}

run_time = functools.lru_cache(maxsize=4096)(_parse_time)
"""An RFC 3339 time as an aware UTC datetime; the run's times repeat, so they are cached."""


class RunFailure(BaseException):
    """The worker fails the run (``UnsupportedVersion``); raised where the handler called the
    primitive, so that it goes no further."""


class Call:
    """One ctx primitive called by the handler: its JSON (sent in the turn), the future the
    handler awaits, its step functions with their names, and the handler's time when called."""

    __slots__ = ("text", "future", "fns", "names", "now")

    def __init__(self, text: str, future: Any, fns: Tuple[Callable[[], Any], ...], names: Tuple[str, ...], now: str) -> None:
        self.text = text
        self.future = future
        self.fns = fns
        self.names = names
        self.now = now

    def settle(self, result: Dict[str, Any]) -> bool:
        """Resolves the future with one RESULT; False for ``{"pending": true}``. A result
        without "value" (a null omitted by the encoder) is the value null."""
        if result.get("pending"):
            return False
        if not self.future.done():
            if result.get("error") is not None:
                self.future.set_exception(_exception(result["error"]))
            else:
                self.future.set_result(result.get("value"))
        return True


def _exception(error: Dict[str, Any]) -> BaseException:
    """The exception an ERROR raises where the handler awaits the call."""
    kind = error.get("kind")
    if kind == "step_failed":
        return StepFailed(error["step"], error["attempts"], error["message"], error.get("error_type") or "")
    if kind == "child_failed":
        return ChildWorkflowFailed(error["child"], error["reason"], error["message"])
    if kind == "agent_failed":
        return AgentFailed(error["turn"], error["reason"], error["message"])
    return _BUILTIN_ERRORS.get(error.get("type", ""), RuntimeError)(error.get("message", ""))


async def _result_of(future: Any) -> Any:
    return await future


class Handler(LoopOwner):
    """One run's handler: its loop, ctx, main task, and the turn it waits in."""

    __slots__ = (
        "revision", "uid", "run_info", "channel", "sid", "end", "loop", "ctx", "main", "now",
        "new_calls", "turn", "versions", "agent_turns", "fatal", "inert", "unanswered",
    )

    def __init__(self, revision: Revision, run: Dict[str, Any], sid: int, channel: Channel) -> None:
        self.revision = revision
        self.uid: str = run["uid"]
        self.run_info = RunInfo(
            namespace=run["namespace"], name=run["name"], uid=run["uid"], workflow=run["workflow"],
            revision=run["revision"], started_at=run_time(run["started_at"]),
        )
        self.channel = channel
        self.sid: Optional[int] = sid
        self.end: Optional[Tuple[Any, Any]] = None  # the journal end it was kept with
        self.loop = DeterministicLoop(self)
        self.ctx = HandlerContext(self)
        self.main: Any = None
        self.now: str = run["started_at"]
        self.new_calls: List[Call] = []
        self.turn: List[Call] = []  # the turn sent last, waiting for results
        self.versions: Optional[Dict[str, Any]] = None  # change id -> future of its first call
        self.agent_turns = 0
        self.fatal: Optional[Tuple[str, str]] = None  # (reason, message) of a run the worker fails
        self.inert = False
        self.unanswered: Optional[List[Call]] = None  # calls answered {"pending": true}

    # Driving the handler.

    def start(self, raw_input: Any) -> Outcome:
        """Starts the handler from the top: ``handler(inp, ctx)``."""
        try:
            inp = raw_input if self.revision.input is None else self.revision.input.build(raw_input)
        except InvalidInput as err:
            return self._fail("InvalidInput", str(err))
        try:
            coro = self.revision.handler(inp, self.ctx)
        except BaseException as exc:
            return self._raised(exc)
        self.main = self.loop.create_task(coro)
        return self._run()

    def resume(self, results: List[Dict[str, Any]], now: str) -> Outcome:
        """Resolves the turn's calls with the manager's results, in order, and runs on."""
        if self.fatal is not None:
            return self._fail(*self.fatal)
        turn, self.turn = self.turn, []
        if len(results) != len(turn):
            raise ValueError(f"results for a turn of {len(turn)} calls holds {len(results)}")
        self.now = now
        for call, result in zip(turn, results):
            if not call.settle(result):
                self.unanswered = (self.unanswered or []) + [call]
        return self._run()

    def resumed_turn(self, sid: int) -> str:
        """Attaches a kept handler to session ``sid``: the turn it waits in, marked resumed."""
        self.sid, self.end = sid, None
        return self._turn_message(resumed=True)

    def drop(self) -> None:
        """Makes the handler inert, then closes its tasks' coroutines (their finally: blocks run
        now and record nothing)."""
        self.inert = True
        self.new_calls, self.turn, self.unanswered = [], [], None
        self.loop.close_tasks(self.main)

    def _run(self) -> Outcome:
        self.loop.run_until_idle()
        if self.fatal is not None:
            return self._fail(*self.fatal)
        if self.main.done():
            return self._finished()
        if self.new_calls:
            self.turn, self.new_calls = self.new_calls, []
            return self._turn_message(resumed=False), False
        return self._fail("Misuse", self._blocked())

    def _turn_message(self, resumed: bool) -> str:
        calls = ",".join(call.text for call in self.turn)
        return f'{{"op":"turn","s":{self.sid},"resumed":{"true" if resumed else "false"},"calls":[{calls}]}}'

    def _finished(self) -> Outcome:
        try:
            output = self.main.result()
        except BaseException as exc:
            return self._raised(exc)
        try:
            text = dumps({"op": "return", "s": self.sid, "output": output})
        except (TypeError, ValueError, RecursionError):
            return self._fail("HandlerError", f"the handler's output is not JSON: {why_not_json(output, 'the output')}")
        if len(text) > MAX_FRAME:
            return self._fail("HandlerError", f"the handler's output is {len(text)} bytes of JSON, "
                                              f"more than a message may carry ({MAX_FRAME} bytes)")
        return text, True

    def _raised(self, exc: BaseException) -> Outcome:
        if isinstance(exc, Misuse):
            return self._fail("Misuse", str(exc))
        reason = next((name for cls, name in _REASONS if isinstance(exc, cls)), None)
        error = {"type": type(exc).__name__, "message": exception_message(exc),
                 "traceback": format_exception(exc), "reason": reason}
        return dumps({"op": "raise", "s": self.sid, "error": error}), True

    def _fail(self, reason: str, message: str) -> Outcome:
        return dumps({"op": "fail", "s": self.sid, "reason": reason, "message": message}), True

    def _blocked(self) -> str:
        message = (
            "the handler is blocked: its tasks wait for something no ctx primitive will finish "
            "(an asyncio.Event or Future nobody sets, a lock nobody releases). Await ctx primitives "
            "instead, such as ctx.wait_for_event(...) for a signal from outside"
        )
        if self.unanswered:
            names = ", ".join(f'"{n}"' for call in self.unanswered for n in call.names)
            message += f"; it may be waiting for {names}, left unfinished when a step gathered with it failed"
        return message

    # What the loop and ctx report.

    def misuse(self, message: str) -> None:
        if self.fatal is None:
            self.fatal = ("Misuse", message)

    def loop_error(self, context: Dict[str, Any]) -> None:
        if self.inert:
            return
        exc = context.get("exception")
        message = str(context.get("message") or "unhandled error in the handler's event loop")
        fields = {"traceback": format_exception(exc)} if exc is not None else {}
        if self.sid is not None:
            self.channel.send_json(log_message(self.sid, "error", message, fields))
        else:
            diag(f"run {self.uid}: {message}: {exc!r}")

    # What ctx does.

    def record(self, method: str, call: Dict[str, Any], fns: Tuple[Callable[[], Any], ...]) -> Coroutine[Any, Any, Any]:
        """Records a primitive's call for the next turn; the coroutine returned awaits its
        result. Refuses calls from a step function, a thread or a dropped handler."""
        self._check_caller(method)
        if method == "get_version":
            first = (self.versions or {}).get(call["change_id"])
            if first is not None:
                return self._remembered_version(first, call)
        call["site"] = call_site()
        try:
            text = dumps(call)
        except (TypeError, ValueError, RecursionError):
            arg = "input" if "input" in call else "payload"
            why = why_not_json(call.get(arg), arg)
            raise TypeError(f'ctx.{method}("{call.get("name", "")}"): {arg} must be JSON: {why}') from None
        if len(text) > MAX_FRAME // 2:
            raise ValueError(f'ctx.{method}("{call.get("name", "")}"): the call is {len(text)} bytes of JSON, too large to send')
        future = self.loop.create_future()
        names = tuple(b["name"] for b in call["branches"]) if method == "parallel" else (call.get("name", ""),)
        self.new_calls.append(Call(text, future, fns, names, self.now))
        if method == "get_version":
            self.versions = self.versions or {}
            self.versions[call["change_id"]] = future
        coro = _result_of(future)
        coro.__name__ = coro.__qualname__ = f"ctx.{method}"  # "coroutine 'ctx.step' was never awaited"
        return coro

    def _check_caller(self, method: str) -> None:
        if self.inert:
            raise Misuse(f"ctx.{method}() was called after this run's handler was dropped: nothing is recorded any more")
        scope = STEP_SCOPE.get()
        if scope is not None:
            message = (
                f'ctx.{method}() cannot be called inside the function of step "{scope.name}": a step function '
                f"only does its side effect; call durable primitives from the handler"
            )
            scope.misuse = message
            scope.owner.misuse(message)
            raise Misuse(message)
        if events._get_running_loop() is not self.loop:
            message = (
                f"ctx.{method}() was called outside the handler's event loop (from a thread or another event "
                f"loop): call durable primitives from the handler's own code"
            )
            self.misuse(message)
            raise Misuse(message)

    async def _remembered_version(self, first: Any, call: Dict[str, Any]) -> int:
        """A later get_version of a change id: the first call's answer, checked against this
        call's range."""
        version: int = await first
        low, high = call["min_supported"], call["max_supported"]
        if not low <= version <= high:
            shown = "-1 (DEFAULT_VERSION: it went past this point on code without the change)" if version == -1 else str(version)
            message = (
                f'change "{call["change_id"]}": the run took version {shown}, but this code supports versions '
                f"{low} to {high}: keep version {version} supported until the runs that took it have finished"
            )
            if self.fatal is None:
                self.fatal = ("UnsupportedVersion", message)
            raise RunFailure(message)
        return version

    def next_agent_turn_name(self) -> str:
        """The name of the handler's next unnamed ctx.agent_turn: agent-turn-1, -2, ..."""
        self.agent_turns += 1
        return f"agent-turn-{self.agent_turns}"

    def log(self, message: str, fields: Dict[str, Any]) -> None:
        """ctx.log: a log message of the session of the handler, or of the step it runs in."""
        if self.inert:
            return
        scope = STEP_SCOPE.get()
        sid = scope.sid if scope is not None else self.sid
        if sid is not None:
            self.channel.send_json(log_message(sid, "info", message, fields))


class HandlerContext(WorkflowContext):
    """The ``ctx`` a handler gets: WorkflowContext's primitives, recorded by its Handler."""

    __slots__ = ("_handler",)

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    def _primitive(self, method: str, call: Dict[str, Any], fns: Tuple[Callable[[], Any], ...] = ()) -> Coroutine[Any, Any, Any]:
        return self._handler.record(method, call, fns)

    def _unnamed_agent_turn(self) -> str:
        return self._handler.next_agent_turn_name()

    def now(self) -> datetime:
        scope = STEP_SCOPE.get()
        return run_time(scope.now if scope is not None else self._handler.now)

    def log(self, message: str, **fields: Any) -> None:
        if not isinstance(message, str):
            raise TypeError(f"ctx.log: message must be a string, got {type(message).__name__}")
        self._handler.log(message, fields)

    @property
    def run(self) -> RunInfo:
        return self._handler.run_info
