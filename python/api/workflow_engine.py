"""The handler's ``ctx`` and the types a workflow file uses with it.

A workflow file defines ``async def handler(inp, ctx)``. The handler may run again from the top
after a restart or a wake-up, so everything that touches the world goes through ``ctx``: each
durable primitive has a name, unique within the run, under which the engine records what it
did, and on a later execution the recorded result comes back instead of the work being done
again::

    data = await ctx.step("collect", lambda: fetch(inp.topic))
    await ctx.sleep("settle", timedelta(seconds=30))
    report = await ctx.run_agent("summarize", text=f"Summarize {data}")

The handler runs on the worker's deterministic event loop: ``asyncio.gather``,
``asyncio.create_task``, ``asyncio.Event`` and ``asyncio.Lock`` work, but the loop has no clock,
threads or I/O. ``asyncio.sleep`` and timeouts raise :class:`Misuse`; use ``ctx.sleep`` and the
primitives' own ``timeout=`` instead, and do blocking or network work inside ``ctx.step``.

Durations are a ``timedelta``, a Go-style string (``"30s"``, ``"1m30s"``, ``"2h"``, ``"500ms"``)
or a number of seconds. Times are aware ``datetime`` values or RFC 3339 strings
(``"2026-12-01T02:00:00Z"``).
"""

from __future__ import annotations

import contextvars
import inspect
import math
import re
from collections.abc import Iterable as _Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Coroutine, Dict, Iterable, List, Optional, Sequence, Tuple, Union

__all__ = [
    "DEFAULT_VERSION",
    "AgentFailed",
    "ChildWorkflowFailed",
    "Duration",
    "InvalidSchedule",
    "Misuse",
    "NonRetryableError",
    "RetryPolicy",
    "RunInfo",
    "Schedule",
    "StepFailed",
    "WorkflowContext",
    "step_attempt",
    "trace_headers",
]

Duration = Union[timedelta, str, float]
"""A duration: ``timedelta(seconds=30)``, ``"30s"`` / ``"1m30s"`` / ``"500ms"``, or seconds."""

DEFAULT_VERSION = -1
"""What ``ctx.get_version`` returns to a run that went past the call on code without it."""


STEP_ATTEMPT: contextvars.ContextVar[int] = contextvars.ContextVar("centaur_step_attempt", default=0)
"""The attempt of the step function running in this context; the worker sets it (see step_attempt)."""


def step_attempt() -> int:
    """The attempt number of the step function that calls it: 1 for the first call, 2 after a
    failed attempt was retried, and so on; 0 outside a step function. The same as Go's
    ``durable.StepAttempt``: a step may use it to log which attempt it is, or to make a side
    effect that a retry repeats recognisable (an idempotency key of run, step and attempt)."""
    return STEP_ATTEMPT.get()


STEP_TRACEPARENT: contextvars.ContextVar[str] = contextvars.ContextVar("centaur_step_traceparent", default="")
"""The W3C traceparent of the step attempt running in this context; the worker sets it (see
trace_headers)."""


def trace_headers() -> Dict[str, str]:
    """The trace context of the step function that calls it, as HTTP headers for its outbound
    requests: ``{"traceparent": ...}`` naming this attempt's span when the manager traces runs
    (docs/observability.md), and ``{}`` when it does not or outside a step function. Add them to
    a request so that the service it calls joins the run's trace::

        req = urllib.request.Request(url, headers={**trace_headers(), "Accept": "application/json"})
    """
    traceparent = STEP_TRACEPARENT.get()
    return {"traceparent": traceparent} if traceparent else {}


# --- Exceptions -----------------------------------------------------------------------------


class StepFailed(Exception):
    """A step failed for good: its attempts ran out, or it raised :class:`NonRetryableError`.

    Raised where the handler awaits ``ctx.step`` (or ``ctx.parallel``). Catch it to go on;
    left uncaught, the run fails with reason ``StepFailed``.

    Attributes: ``step`` (the step's name), ``attempts`` (how often its function ran),
    ``message`` (the last attempt's error message) and ``error_type`` (the last attempt's
    exception class name, "" when unknown).
    """

    def __init__(self, step: str, attempts: int, message: str, error_type: str = "") -> None:
        text = f'step "{step}" failed after {attempts} attempt(s): {message}'
        if error_type:
            text += f" (error type {error_type})"
        super().__init__(text)
        self.step = step
        self.attempts = attempts
        self.message = message
        self.error_type = error_type


class ChildWorkflowFailed(Exception):
    """A child run failed. Raised by ``ctx.wait_for_workflow`` and ``ctx.run_workflow``.

    Left uncaught, the run fails with reason ``ChildFailed``. Attributes: ``child`` (the child
    run's id), ``reason`` and ``message`` (the child's failure).
    """

    def __init__(self, child: str, reason: str, message: str) -> None:
        super().__init__(f"child run {child} failed: {reason}: {message}")
        self.child = child
        self.reason = reason
        self.message = message


class AgentFailed(Exception):
    """An agent turn failed. Raised by ``ctx.wait_for_agent``, ``ctx.run_agent`` and
    ``ctx.agent_turn``.

    Left uncaught, the run fails with reason ``AgentFailed``. Attributes: ``turn`` (the turn's
    id), ``reason`` and ``message``.
    """

    def __init__(self, turn: str, reason: str, message: str) -> None:
        super().__init__(f"agent turn {turn} failed: {reason}: {message}")
        self.turn = turn
        self.reason = reason
        self.message = message


class NonRetryableError(Exception):
    """Raise this (or a subclass) in a step function to fail the step at once, without the
    retries its policy would otherwise make: for errors that another attempt cannot fix."""


class Misuse(BaseException):
    """A durable primitive or an asyncio call was used where the engine cannot make it durable:
    ``asyncio.sleep`` or a timeout in the handler, a ``ctx`` primitive inside a step function,
    a primitive called from another thread.

    It derives from ``BaseException`` so that ``except Exception`` does not hide it, and the run
    fails with reason ``Misuse`` even when the handler catches it. The message says what to use
    instead.
    """


class InvalidSchedule(ValueError):
    """A ``Schedule(...)`` declaration is malformed; the file fails to load with reason
    ``InvalidSchedule``."""


# --- Durations and times ----------------------------------------------------------------------

_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z"
)


def _go_duration(text: str, what: str) -> float:
    """Seconds in a Go duration string such as "1h30m", "500ms" or "-2s"."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(body) or not body:
        part = _DURATION_PART.match(body, pos)
        if part is None or part.group(1) in ("", "."):
            raise ValueError(f'{what}: "{text}" is not a duration: write it like "30s", "5m", "1h30m" or "500ms"')
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        pos = part.end()
    return -total if text.startswith("-") else total


def _seconds(value: Duration, what: str, *, positive: bool = False) -> float:
    """A duration argument as seconds, checked: never negative, and above zero if positive."""
    if isinstance(value, timedelta):
        secs = value.total_seconds()
    elif isinstance(value, str):
        secs = _go_duration(value, what)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = float(value)
        if not math.isfinite(secs):
            raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
    else:
        raise TypeError(
            f'{what} must be a duration: timedelta(seconds=30), "30s" or a number of seconds, '
            f"got {type(value).__name__}"
        )
    if secs < 0 or (positive and secs == 0):
        raise ValueError(f"{what} must be {'above zero' if positive else 'zero or more'}, got {value!r}")
    return secs


def _optional_seconds(value: Optional[Duration], what: str) -> Optional[float]:
    """A positive duration argument as seconds, or None when unset."""
    return None if value is None else _seconds(value, what, positive=True)


def _parse_time(text: str) -> datetime:
    """An RFC 3339 time (``2026-12-06T10:00:00.123456Z``) as an aware UTC datetime.

    Shared with the worker, which reads the run's times with it. Raises ValueError.
    """
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f'"{text}" is not an RFC 3339 time such as "2026-12-01T02:00:00Z"')
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micros = int(((match.group(7) or "") + "000000")[:6])
    zone = match.group(8)
    tz = timezone.utc
    if zone != "Z":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        tz = timezone(-offset if zone[0] == "-" else offset)
    return datetime(year, month, day, hour, minute, second, micros, tzinfo=tz).astimezone(timezone.utc)


def _format_time(when: datetime) -> str:
    """An aware datetime as an RFC 3339 string in UTC, with microseconds."""
    t = when.astimezone(timezone.utc)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond:06d}Z"
    )


def _time_text(value: Union[datetime, str], what: str) -> str:
    """A time argument as the RFC 3339 string the engine gets."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"{what} is a naive datetime: give it a time zone, "
                f"for example datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)"
            )
        return _format_time(value)
    if isinstance(value, str):
        try:
            return _format_time(_parse_time(value))
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from None
    raise TypeError(f"{what} must be an aware datetime or an RFC 3339 string, got {type(value).__name__}")


# --- Argument checks ------------------------------------------------------------------------


def _check_name(what: str, value: object, arg: str = "name") -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what}: {arg} must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{what}: {arg} must not be empty: it is what the engine records the call under")
    return value


def _check_str(what: str, arg: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what}: {arg} must be a string, got {type(value).__name__}")
    return value


def _check_int(what: str, arg: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what}: {arg} must be an int, got {type(value).__name__}")
    return value


def _check_fn(what: str, fn: object) -> Callable[[], Any]:
    if not callable(fn):
        raise TypeError(f"{what}: the step function must be callable with no arguments, got {type(fn).__name__}")
    return fn


def _is_async(fn: Callable[[], Any]) -> bool:
    return inspect.iscoroutinefunction(fn)


# --- Declarations and options -----------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How a step retries: ``ctx.step(name, fn, retry=RetryPolicy(max_attempts=5))``.

    Every field is optional; unset fields take the engine's defaults (3 attempts, 1 s backoff
    doubling up to 1 min). ``retry=5`` is short for ``RetryPolicy(max_attempts=5)``.

    - ``max_attempts``: calls of the step function, the first included; 1 disables retries.
    - ``initial_backoff``: the wait before the second attempt (a duration).
    - ``multiplier``: how much the wait grows after each further failure (at least 1).
    - ``max_backoff``: the longest wait (a duration).
    - ``non_retryable_error_types``: exception class names (``"ValueError"``) that fail the
      step at once. Raising :class:`NonRetryableError` does too.
    """

    max_attempts: Optional[int] = None
    initial_backoff: Optional[Duration] = None
    multiplier: Optional[float] = None
    max_backoff: Optional[Duration] = None
    non_retryable_error_types: Optional[Sequence[str]] = None

    def __post_init__(self) -> None:
        types = self.non_retryable_error_types
        if types is not None:
            if isinstance(types, str) or not all(isinstance(t, str) and t for t in types):
                raise TypeError('RetryPolicy: non_retryable_error_types must be a list of class names such as ["ValueError"]')
            object.__setattr__(self, "non_retryable_error_types", tuple(types))
        self._to_json()

    def _to_json(self) -> Dict[str, Any]:
        """The policy as the engine gets it (durations in seconds), checked."""
        what = "RetryPolicy"
        if self.max_attempts is not None and _check_int(what, "max_attempts", self.max_attempts) < 1:
            raise ValueError(f"{what}: max_attempts must be at least 1, got {self.max_attempts}")
        multiplier = self.multiplier
        if multiplier is not None:
            if not isinstance(multiplier, (int, float)) or isinstance(multiplier, bool):
                raise TypeError(f"{what}: multiplier must be a number, got {type(multiplier).__name__}")
            if not multiplier >= 1 or not math.isfinite(multiplier):
                raise ValueError(f"{what}: multiplier must be at least 1, got {multiplier}")
        types = self.non_retryable_error_types
        return {
            "max_attempts": self.max_attempts,
            "initial_backoff": _optional_seconds(self.initial_backoff, f"{what}: initial_backoff"),
            "multiplier": None if multiplier is None else float(multiplier),
            "max_backoff": _optional_seconds(self.max_backoff, f"{what}: max_backoff"),
            "non_retryable_error_types": None if types is None else list(types),
        }


def _retry_json(what: str, retry: Union[RetryPolicy, int, None]) -> Optional[Dict[str, Any]]:
    if retry is None:
        return None
    if isinstance(retry, RetryPolicy):
        return retry._to_json()
    if isinstance(retry, int) and not isinstance(retry, bool):
        if retry < 1:
            raise ValueError(f"{what}: retry={retry}: a number of attempts must be at least 1")
        return RetryPolicy(max_attempts=retry)._to_json()
    raise TypeError(f"{what}: retry must be RetryPolicy(...) or a number of attempts, got {type(retry).__name__}")


_CONCURRENCY_POLICIES = ("", "Allow", "Forbid", "Replace")
_CATCH_UPS = ("", "None", "Latest", "All")


@dataclass(frozen=True)
class Schedule:
    """A schedule that starts the workflow: ``SCHEDULES = [Schedule(cron="0 2 * * *")]``.

    - ``cron``: a five-field cron expression (``"0 2 * * *"``), a macro (``"@daily"``) or
      ``"@every 10m"``.
    - ``time_zone``: the IANA zone ``cron`` is read in (``"Europe/Berlin"``); "" means UTC.
    - ``input``: every run's input (JSON, or a dataclass).
    - ``name``: tells several schedules of one workflow apart.
    - ``concurrency_policy``: ``"Allow"`` (default), ``"Forbid"`` or ``"Replace"``.
    - ``catch_up``: ``"Latest"`` (default), ``"None"`` or ``"All"``: which missed ticks run.
    - ``max_catch_up``: with ``catch_up="All"``, how many missed ticks run at most (0: 100).
    - ``starting_deadline``: how late a tick may still start (a duration; None: no limit).
    - ``jitter``: delays each tick by a stable random amount below it (a duration).

    A malformed declaration raises :class:`InvalidSchedule`; the manager checks the cron
    expression and the zone when the file loads.
    """

    cron: str
    time_zone: str = ""
    input: Any = None
    name: str = ""
    concurrency_policy: str = ""
    catch_up: str = ""
    max_catch_up: int = 0
    starting_deadline: Optional[Duration] = None
    jitter: Optional[Duration] = None

    def __post_init__(self) -> None:
        try:
            what = f'Schedule(cron="{self.cron}")'
            if not _check_str("Schedule", "cron", self.cron).strip():
                raise ValueError('Schedule: cron is empty: write it like "0 2 * * *" or "@daily"')
            for arg in ("time_zone", "name", "concurrency_policy", "catch_up"):
                _check_str(what, arg, getattr(self, arg))
            if self.concurrency_policy not in _CONCURRENCY_POLICIES:
                raise ValueError(f'{what}: concurrency_policy "{self.concurrency_policy}": want Allow, Forbid or Replace')
            if self.catch_up not in _CATCH_UPS:
                raise ValueError(f'{what}: catch_up "{self.catch_up}": want None, Latest or All')
            if _check_int(what, "max_catch_up", self.max_catch_up) < 0:
                raise ValueError(f"{what}: max_catch_up cannot be negative")
            for arg in ("starting_deadline", "jitter"):
                if getattr(self, arg) is not None:
                    _seconds(getattr(self, arg), f"{what}: {arg}")
        except InvalidSchedule:
            raise
        except (TypeError, ValueError) as err:
            raise InvalidSchedule(str(err)) from None


@dataclass(frozen=True)
class RunInfo:
    """What ``ctx.run`` says about the run: its ``namespace``, ``name`` and ``uid`` (the
    ``WorkflowRun``), ``workflow`` (the workflow's name), ``revision`` (the code revision it
    replays, such as ``nightly-report-3f9a2c81d04b``) and ``started_at`` (an aware datetime)."""

    namespace: str
    name: str
    uid: str
    workflow: str
    revision: str
    started_at: datetime


# --- The context ------------------------------------------------------------------------------

Branches = Union[Iterable[Tuple[str, Callable[[], Any]]], Iterable[List[Any]]]


class WorkflowContext:
    """The handler's ``ctx``: durable primitives, the run's clock, its log and its identity.

    Every primitive is awaited (``await ctx.step(...)``) and takes a ``name``, unique within the
    run, under which the engine records it. Arguments are checked when the primitive is called:
    a wrong type raises ``TypeError``, a wrong value ``ValueError``, before anything is recorded.
    Primitives the handler's tasks call together (``asyncio.gather(ctx.step("a", f),
    ctx.step("b", g))``) are handled together: the two steps run at once.

    The worker creates ``ctx``; handlers only use it.
    """

    __slots__ = ()

    # The worker's ctx implements these three.

    def _primitive(
        self, method: str, call: Dict[str, Any], fns: Tuple[Callable[[], Any], ...] = ()
    ) -> Coroutine[Any, Any, Any]:
        """Records one durable call; the awaitable resolves with its result."""
        raise Misuse(f"ctx.{method}() works only in a handler the Centaur worker runs")

    def _unnamed_agent_turn(self) -> str:
        """The name of the handler's next unnamed agent turn."""
        raise Misuse("ctx.agent_turn() works only in a handler the Centaur worker runs")

    # Steps.

    def step(
        self,
        name: str,
        fn: Callable[[], Any],
        *,
        retry: Union[RetryPolicy, int, None] = None,
        timeout: Optional[Duration] = None,
        batched: bool = False,
    ) -> Coroutine[Any, Any, Any]:
        """Run ``fn()`` once and record its result, which must be JSON (dataclasses are
        converted). On a later execution the recorded result comes back without calling ``fn``.

        ``fn`` takes no arguments: a plain function runs on a thread, an ``async def`` on the
        worker's step event loop. Inside it do the side effect, nothing durable (``ctx.now()``
        and ``ctx.log()`` work there). ``retry`` is a :class:`RetryPolicy` or a number of
        attempts (default 3); ``timeout`` bounds each attempt. ``batched=True`` records the
        step together with the steps after it: much faster for many small idempotent steps,
        which may run again after a crash. A step that fails for good raises
        :class:`StepFailed` here.

        Example: ``data = await ctx.step("collect", lambda: fetch(inp.topic), retry=5)``
        """
        what = "ctx.step"
        _check_name(what, name)
        _check_fn(f'{what}("{name}")', fn)
        if not isinstance(batched, bool):
            raise TypeError(f'{what}("{name}"): batched must be True or False, got {type(batched).__name__}')
        call = {
            "kind": "step",
            "name": name,
            "retry": _retry_json(f'{what}("{name}")', retry),
            "timeout": _optional_seconds(timeout, f'{what}("{name}"): timeout'),
            "batched": batched,
            "async": _is_async(fn),
        }
        return self._primitive("step", call, (fn,))

    def parallel(
        self,
        branches: Branches,
        *,
        retry: Union[RetryPolicy, int, None] = None,
        timeout: Optional[Duration] = None,
    ) -> Coroutine[Any, Any, List[Any]]:
        """Run several step functions at once; returns their results in the branches' order.

        ``branches`` is a sequence of ``(name, fn)`` pairs, or ``some_dict.items()``. Each
        branch is recorded as ``ctx.step(name, fn)`` would record it; ``retry`` and
        ``timeout`` apply to each. A branch that fails for good raises :class:`StepFailed`.

        Example: ``docs, blog = await ctx.parallel([("docs", fetch_docs), ("blog", fetch_blog)])``
        """
        what = "ctx.parallel"
        if isinstance(branches, (str, bytes)) or not isinstance(branches, _Iterable):
            raise TypeError(f"{what}: branches must be a list of (name, function) pairs, got {type(branches).__name__}")
        names: List[Dict[str, Any]] = []
        fns: List[Callable[[], Any]] = []
        for i, pair in enumerate(branches):
            if isinstance(pair, (str, bytes)) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(
                    f'{what}: branches[{i}] must be a (name, function) pair such as ("fetch", fetch) '
                    f"(for a dict, pass its .items()), got {type(pair).__name__}"
                )
            name = _check_name(f"{what}: branches[{i}]", pair[0])
            if any(b["name"] == name for b in names):
                raise ValueError(f'{what}: two branches are named "{name}": each needs a name of its own')
            fns.append(_check_fn(f'{what}: branch "{name}"', pair[1]))
            names.append({"name": name, "async": _is_async(pair[1])})
        call = {
            "kind": "parallel",
            "branches": names,
            "retry": _retry_json(what, retry),
            "timeout": _optional_seconds(timeout, f"{what}: timeout"),
        }
        return self._primitive("parallel", call, tuple(fns))

    # Time.

    def sleep(self, name: str, duration: Duration) -> Coroutine[Any, Any, None]:
        """Suspend the run for ``duration``; nothing waits in memory meanwhile.

        Example: ``await ctx.sleep("settle", timedelta(seconds=30))`` or ``ctx.sleep("x", "2h")``
        """
        _check_name("ctx.sleep", name)
        seconds = _seconds(duration, f'ctx.sleep("{name}"): duration')
        return self._primitive("sleep", {"kind": "sleep", "name": name, "seconds": seconds})

    def sleep_until(self, name: str, when: Union[datetime, str]) -> Coroutine[Any, Any, None]:
        """Suspend the run until ``when``: an aware datetime or an RFC 3339 string. A time in
        the past returns at once. A naive datetime is an error: give it a time zone."""
        _check_name("ctx.sleep_until", name)
        until = _time_text(when, f'ctx.sleep_until("{name}"): when')
        return self._primitive("sleep_until", {"kind": "sleep_until", "name": name, "until": until})

    # Events.

    def wait_for_event(
        self, name: str, event_type: str, correlation_id: str, *, timeout: Optional[Duration] = None
    ) -> Coroutine[Any, Any, Any]:
        """Wait for an event of ``event_type`` with ``correlation_id`` (``POST
        /api/workflows/events``) and return its payload; an event sent before the wait counts
        too. With ``timeout``, returns ``None`` once it passes."""
        what = f'ctx.wait_for_event("{_check_name("ctx.wait_for_event", name)}")'
        call = {
            "kind": "wait_for_event",
            "name": name,
            "event_type": _check_name(what, event_type, "event_type"),
            "correlation_id": _check_str(what, "correlation_id", correlation_id),
            "timeout": _optional_seconds(timeout, f"{what}: timeout"),
        }
        return self._primitive("wait_for_event", call)

    def send_event(
        self, name: str, event_type: str, correlation_id: str = "", payload: Any = None
    ) -> Coroutine[Any, Any, None]:
        """Send an event once, however often the handler runs again: runs waiting for its type
        and correlation id resume. ``payload`` must be JSON."""
        what = f'ctx.send_event("{_check_name("ctx.send_event", name)}")'
        call = {
            "kind": "send_event",
            "name": name,
            "event_type": _check_name(what, event_type, "event_type"),
            "correlation_id": _check_str(what, "correlation_id", correlation_id),
            "payload": payload,
        }
        return self._primitive("send_event", call)

    # Child workflows.

    def start_workflow(self, name: str, workflow_name: str, input: Any = None) -> Coroutine[Any, Any, str]:
        """Start a child run of ``workflow_name`` with ``input`` (JSON) in the same namespace
        and go on; returns the child run's id, for ``ctx.wait_for_workflow``."""
        return self._primitive("start_workflow", self._child_call("start_workflow", name, workflow_name, input))

    def wait_for_workflow(self, name: str, run_id: str) -> Coroutine[Any, Any, Any]:
        """Wait for the child run ``run_id`` and return its output; a failed child raises
        :class:`ChildWorkflowFailed`."""
        what = f'ctx.wait_for_workflow("{_check_name("ctx.wait_for_workflow", name)}")'
        call = {"kind": "wait_for_workflow", "name": name, "run_id": _check_name(what, run_id, "run_id")}
        return self._primitive("wait_for_workflow", call)

    def run_workflow(self, name: str, workflow_name: str, input: Any = None) -> Coroutine[Any, Any, Any]:
        """Start a child run and wait for its output: ``start_workflow`` and
        ``wait_for_workflow`` in one call (the wait is recorded as ``name/result``)."""
        return self._primitive("run_workflow", self._child_call("run_workflow", name, workflow_name, input))

    @staticmethod
    def _child_call(method: str, name: str, workflow_name: str, input: Any) -> Dict[str, Any]:
        what = f'ctx.{method}("{_check_name("ctx." + method, name)}")'
        return {"kind": method, "name": name, "workflow_name": _check_name(what, workflow_name, "workflow_name"), "input": input}

    # Agents.

    def start_agent(
        self,
        name: str,
        text: str,
        *,
        agent: str = "",
        thread_key: str = "",
        instructions: str = "",
        model: str = "",
        temperature: Optional[float] = None,
        max_tokens: int = 0,
    ) -> Coroutine[Any, Any, str]:
        """Start an agent turn with the prompt ``text`` and go on; returns the turn's id, for
        ``ctx.wait_for_agent``. ``agent`` names the agent ("" for the default), ``thread_key``
        a conversation to continue. ``instructions`` follow the agent's own, ``model`` picks
        another of the models the agent allows, and ``temperature`` and ``max_tokens`` may lower
        the agent's settings for this turn, never raise them (docs/agents.md)."""
        what = f'ctx.start_agent("{_check_name("ctx.start_agent", name)}")'
        request = _agent_request(what, text, agent, thread_key, instructions, model, temperature, max_tokens)
        return self._primitive("start_agent", {"kind": "start_agent", "name": name, "request": request})

    def wait_for_agent(self, name: str, turn_id: str) -> Coroutine[Any, Any, str]:
        """Wait for the agent turn ``turn_id`` and return its reply text; a failed turn raises
        :class:`AgentFailed`."""
        what = f'ctx.wait_for_agent("{_check_name("ctx.wait_for_agent", name)}")'
        call = {"kind": "wait_for_agent", "name": name, "turn_id": _check_name(what, turn_id, "turn_id")}
        return self._primitive("wait_for_agent", call)

    def run_agent(
        self,
        name: str,
        text: str,
        *,
        agent: str = "",
        thread_key: str = "",
        instructions: str = "",
        model: str = "",
        temperature: Optional[float] = None,
        max_tokens: int = 0,
    ) -> Coroutine[Any, Any, str]:
        """Start an agent turn and wait for its reply text (the wait is recorded as
        ``name/result``). The arguments are those of ``ctx.start_agent``.

        Example: ``report = await ctx.run_agent("summarize", text=f"Summarize {data}")``
        """
        what = f'ctx.run_agent("{_check_name("ctx.run_agent", name)}")'
        request = _agent_request(what, text, agent, thread_key, instructions, model, temperature, max_tokens)
        return self._primitive("run_agent", {"kind": "run_agent", "name": name, "request": request})

    def agent_turn(
        self, text: str, thread_key: Optional[str] = None, name: Optional[str] = None
    ) -> Coroutine[Any, Any, str]:
        """One turn of the default agent, in the conversation ``thread_key``; returns the reply
        text. Without ``name`` the turn is named by its order among the handler's unnamed
        turns: ``agent-turn-1``, ``agent-turn-2``, ... so keep that order stable."""
        what = "ctx.agent_turn"
        if name is not None:
            _check_name(what, name)
        request = _agent_request(what, text, "", "" if thread_key is None else thread_key, "", "", None, 0)
        call = {"kind": "run_agent", "name": name if name is not None else self._unnamed_agent_turn(), "request": request}
        return self._primitive("agent_turn", call)

    # Versions.

    def get_version(self, change_id: str, min_supported: int, max_supported: int) -> Coroutine[Any, Any, int]:
        """The version of a code change this run takes, so that runs in flight keep the branch
        they took::

            if await ctx.get_version("fetch-v2", DEFAULT_VERSION, 1) == DEFAULT_VERSION:
                page = await ctx.step("fetch", fetch_v1)
            else:
                page = await ctx.step("fetch-v2", fetch_v2)

        The first time a run reaches the call it records ``max_supported``; a run that went past
        this point on code without the call gets ``DEFAULT_VERSION`` (-1). A recorded version
        outside ``[min_supported, max_supported]`` fails the run with ``UnsupportedVersion``.
        """
        what = f'ctx.get_version("{_check_name("ctx.get_version", change_id, "change_id")}")'
        low = _check_int(what, "min_supported", min_supported)
        high = _check_int(what, "max_supported", max_supported)
        if low < DEFAULT_VERSION or low > high:
            raise ValueError(
                f"{what} supports versions {low} to {high}: the minimum must be at least "
                f"DEFAULT_VERSION (-1) and at most the maximum"
            )
        call = {"kind": "get_version", "change_id": change_id, "min_supported": low, "max_supported": high}
        return self._primitive("get_version", call)

    # Not awaited.

    def now(self) -> datetime:
        """The run's recorded time, an aware UTC datetime: the same on every execution, so use
        it instead of ``datetime.now()``. Inside a step function, the time the step started."""
        raise Misuse("ctx.now() works only in a handler the Centaur worker runs")

    def log(self, message: str, **fields: Any) -> None:
        """Write one line to the run's log, with ``fields`` as structured attributes:
        ``ctx.log("fetched", count=3)``. Works in the handler and in step functions."""
        raise Misuse("ctx.log() works only in a handler the Centaur worker runs")

    @property
    def run(self) -> RunInfo:
        """The run's identity: namespace, name, uid, workflow, revision and started_at."""
        raise Misuse("ctx.run works only in a handler the Centaur worker runs")


def _agent_request(
    what: str,
    text: object,
    agent: object,
    thread_key: object,
    instructions: object,
    model: object,
    temperature: object,
    max_tokens: object,
) -> Dict[str, Any]:
    """The AGENT request of an agent primitive, checked."""
    if temperature is not None:
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool):
            raise TypeError(f"{what}: temperature must be a number, got {type(temperature).__name__}")
        if not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"{what}: temperature must be zero or more, got {temperature}")
    if _check_int(what, "max_tokens", max_tokens) < 0:
        raise ValueError(f"{what}: max_tokens cannot be negative")
    return {
        "prompt": _check_str(what, "text", text),
        "agent": _check_str(what, "agent", agent),
        "thread_key": _check_str(what, "thread_key", thread_key),
        "instructions": _check_str(what, "instructions", instructions),
        "model": _check_str(what, "model", model),
        "temperature": None if temperature is None else float(temperature),
        "max_tokens": max_tokens,
    }
