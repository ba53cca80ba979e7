"""Running step functions (PROTOCOL.md, "Step functions").

A plain function runs on a thread of a pool; an ``async def`` runs as a task of the step event
loop, a real asyncio loop on a thread of its own, apart from the handlers' deterministic loops
(a plain function that returns a coroutine has it awaited there too). When the function is done
the runner sends ``step_done`` with its JSON result or its error. ``cancel_step`` cancels a
coroutine's task; a thread cannot be stopped and runs on, and what it returns is not sent.

While a step function runs, :data:`STEP_SCOPE` says so: ``ctx.now()`` answers the time the step
started from, ``ctx.log()`` logs to the step's session, and a durable primitive raises
:class:`~api.workflow_engine.Misuse`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
from typing import Any, Callable, Coroutine, Dict, Optional, Tuple

from api.workflow_engine import STEP_ATTEMPT, STEP_TRACEPARENT, NonRetryableError
from centaur_worker.framing import MAX_FRAME, Channel
from centaur_worker.jsonvalue import dumps, why_not_json
from centaur_worker.tracebacks import exception_message, format_exception

__all__ = ["STEP_SCOPE", "StepRunner", "StepScope"]

StepKey = Tuple[int, int, Optional[int]]
"""(session, call index, branch index) of a step function."""


class StepScope:
    """Where a step function runs: the handler it belongs to (``owner``, told of a misuse),
    its session, its name, the handler's recorded time when it was called, the attempt (1 for
    the first) the manager asked for, and that attempt's traceparent ("" when not traced)."""

    __slots__ = ("owner", "sid", "name", "now", "attempt", "traceparent", "misuse")

    def __init__(self, owner: Any, sid: int, name: str, now: str, attempt: int = 0, traceparent: str = "") -> None:
        self.owner = owner
        self.sid = sid
        self.name = name
        self.now = now
        self.attempt = attempt
        self.traceparent = traceparent
        self.misuse: Optional[str] = None


STEP_SCOPE: contextvars.ContextVar[Optional[StepScope]] = contextvars.ContextVar("centaur_step_scope", default=None)


def _enter(scope: StepScope) -> Callable[[], None]:
    """Marks the current context as running the step function of scope (its attempt and
    traceparent too, for api.workflow_engine.step_attempt and trace_headers), and returns what
    undoes it."""
    tokens = STEP_SCOPE.set(scope), STEP_ATTEMPT.set(scope.attempt), STEP_TRACEPARENT.set(scope.traceparent)

    def leave() -> None:
        STEP_SCOPE.reset(tokens[0])
        STEP_ATTEMPT.reset(tokens[1])
        STEP_TRACEPARENT.reset(tokens[2])
    return leave


class _Attempt:
    """One running call of a step function: cancelled by cancel_step, or not."""

    __slots__ = ("cancelled", "cancel")

    def __init__(self) -> None:
        self.cancelled = False
        self.cancel: Optional[Callable[[], Any]] = None


class StepRunner:
    """Runs step functions and reports each with ``step_done``."""

    def __init__(self, channel: Channel, max_threads: int = 256) -> None:
        self._channel = channel
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="centaur-step")
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._running: Dict[StepKey, _Attempt] = {}
        self._lock = threading.Lock()

    def start(self, key: StepKey, fn: Callable[[], Any], scope: StepScope) -> None:
        """Starts one call of a step function; its ``step_done`` follows when it ends."""
        attempt = _Attempt()
        with self._lock:
            self._running[key] = attempt
        if inspect.iscoroutinefunction(fn):
            attempt.cancel = self._on_step_loop(self._run_coroutine(key, attempt, fn, scope)).cancel
        else:
            self._pool.submit(self._run_function, key, attempt, fn, scope)

    def cancel(self, key: StepKey) -> None:
        """The step's time is up: a coroutine is cancelled; nothing of it is reported."""
        with self._lock:
            attempt = self._running.pop(key, None)
        if attempt is not None:
            attempt.cancelled = True
            if attempt.cancel is not None:
                attempt.cancel()

    def _run_function(self, key: StepKey, attempt: _Attempt, fn: Callable[[], Any], scope: StepScope) -> None:
        leave = _enter(scope)
        try:
            value = fn()
            if inspect.iscoroutine(value):
                running = self._on_step_loop(_in_scope(value, scope))
                attempt.cancel = running.cancel
                if attempt.cancelled:
                    running.cancel()
                value = running.result()
        except BaseException as exc:
            self._report(key, attempt, scope, error=exc)
        else:
            self._report(key, attempt, scope, value=value)
        finally:
            leave()

    async def _run_coroutine(self, key: StepKey, attempt: _Attempt, fn: Callable[[], Any], scope: StepScope) -> None:
        _enter(scope)  # the task runs in a context of its own
        try:
            value = await fn()
        except BaseException as exc:
            self._report(key, attempt, scope, error=exc)
        else:
            self._report(key, attempt, scope, value=value)

    def _on_step_loop(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Runs a coroutine on the step event loop, started at its first use."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="centaur-step-loop", daemon=True).start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def _report(self, key: StepKey, attempt: _Attempt, scope: StepScope, value: Any = None,
                error: Optional[BaseException] = None) -> None:
        with self._lock:
            if attempt.cancelled:
                return
            if self._running.get(key) is attempt:
                del self._running[key]
        sid, call, branch = key
        if scope.misuse is not None:
            self._channel.send_json(_error(sid, call, branch, "Misuse", scope.misuse, True, _trace(error)))
            return
        if error is not None:
            non_retryable = isinstance(error, NonRetryableError)
            message = exception_message(error)
            self._channel.send_json(_error(sid, call, branch, type(error).__name__, message, non_retryable, _trace(error)))
            return
        try:
            text = dumps({"op": "step_done", "s": sid, "call": call, "branch": branch, "value": value})
        except (TypeError, ValueError, RecursionError) as exc:
            reason = why_not_json(value, "the result")
            message = f'the result of step "{scope.name}" is not JSON: {reason}'
            text = _error(sid, call, branch, type(exc).__name__, message, True, "")
        if len(text) > MAX_FRAME:
            text = _error(sid, call, branch, "ValueError",
                          f'the result of step "{scope.name}" is {len(text)} bytes of JSON, more than a message may carry '
                          f"({MAX_FRAME} bytes): return less, or store the data elsewhere and return a reference", True, "")
        self._channel.send_json(text)


async def _in_scope(coro: Coroutine[Any, Any, Any], scope: StepScope) -> Any:
    _enter(scope)
    return await coro


def _error(sid: int, call: int, branch: Optional[int], type_name: str, message: str, non_retryable: bool, trace: str) -> str:
    return dumps({"op": "step_done", "s": sid, "call": call, "branch": branch, "error": {
        "type": type_name, "message": message, "non_retryable": non_retryable, "traceback": trace}})




def _trace(exc: Optional[BaseException]) -> str:
    return "" if exc is None else format_exception(exc)
