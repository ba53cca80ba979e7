"""The handler's event loop: deterministic, with no clock, threads or I/O.

A handler runs on a :class:`DeterministicLoop` of its own (Temporal's Python SDK drives its
workflows the same way: the workflow instance is an ``asyncio.AbstractEventLoop``). The loop
runs ready callbacks in the order they were scheduled and nothing else, so tasks, gathers,
events and locks behave the same on every execution. Only ctx primitives suspend a handler:
once no callback is ready, the handler waits for the manager's results.

Everything that needs real time or the outside world (``asyncio.sleep``, timeouts,
``run_in_executor``, sockets, subprocesses, ``call_soon_threadsafe``) raises
:class:`~api.workflow_engine.Misuse` naming the asyncio function the author called, and the
loop's owner fails the run with reason ``Misuse`` even if the handler catches it.
"""

from __future__ import annotations

import asyncio
import sys
from asyncio import events
from typing import Any, Callable, Dict, Optional

from api.workflow_engine import Misuse

__all__ = ["DeterministicLoop", "LoopOwner"]

_TIMEOUT_ADVICE = (
    "a handler cannot wait on the clock; give the primitive its own timeout "
    '(ctx.wait_for_event(..., timeout="1h"), ctx.step(..., timeout="30s"))'
)
_THREAD_ADVICE = "run blocking work in a step: await ctx.step(name, fn) runs a plain function on a thread"
_ADVICE = {
    "sleep": "use await ctx.sleep(name, duration), a durable timer",
    "wait_for": _TIMEOUT_ADVICE,
    "wait": _TIMEOUT_ADVICE,
    "as_completed": _TIMEOUT_ADVICE,
    "timeout": _TIMEOUT_ADVICE,
    "timeout_at": _TIMEOUT_ADVICE,
    "to_thread": _THREAD_ADVICE,
    "run_in_executor": _THREAD_ADVICE,
}
_DEFAULT_ADVICE = (
    "reach the world through ctx: ctx.step(name, fn) for work and I/O, ctx.sleep for time, "
    "ctx.wait_for_event for signals from outside"
)


class LoopOwner:
    """What a DeterministicLoop reports to: the handler it runs."""

    __slots__ = ()

    def misuse(self, message: str) -> None:
        """Records that the handler used something the engine cannot make durable."""
        raise NotImplementedError

    def loop_error(self, context: Dict[str, Any]) -> None:
        """Reports an error asyncio could not hand to anyone ("Task exception was never
        retrieved")."""
        raise NotImplementedError


class DeterministicLoop(asyncio.AbstractEventLoop):
    """An asyncio event loop that runs ready callbacks in FIFO order and nothing else.

    :meth:`run_until_idle` runs callbacks until none is ready. The loop keeps every task it
    created so that :meth:`close_tasks` can close their coroutines when the handler is dropped.
    """

    def __init__(self, owner: LoopOwner) -> None:
        self._owner = owner
        self._ready: list[asyncio.Handle] = []
        self._tasks: Dict[asyncio.Task[Any], None] = {}
        self._closed = False
        self._exception_handler: Optional[Callable[[asyncio.AbstractEventLoop, Dict[str, Any]], Any]] = None

    # Running.

    def run_until_idle(self) -> None:
        """Runs ready callbacks, and those they make ready, until none is left."""
        previous = events._get_running_loop()
        events._set_running_loop(self)
        try:
            while self._ready:
                ready, self._ready = self._ready, []
                for handle in ready:
                    if handle.cancelled():
                        continue
                    try:
                        handle._run()
                    except (SystemExit, KeyboardInterrupt):
                        pass  # a task that raised it holds it as its exception
        finally:
            events._set_running_loop(previous)

    def close_tasks(self, first: Optional[asyncio.Task[Any]]) -> None:
        """Makes the loop refuse all further work, then closes the coroutine of every unfinished
        task, ``first`` first, so that their ``finally:`` blocks run now. Whatever those raise
        is dropped."""
        self._closed = True
        self._ready = []
        tasks = ([first] if first is not None else []) + [t for t in self._tasks if t is not first]
        self._tasks = {}
        previous = events._get_running_loop()
        events._set_running_loop(self)
        try:
            for task in tasks:
                if not task.done():
                    try:
                        task.get_coro().close()  # type: ignore[union-attr]
                    except BaseException:
                        pass
        finally:
            events._set_running_loop(previous)

    # What asyncio's tasks, futures and synchronization primitives use.

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        if self._closed:
            raise RuntimeError("this run's handler was dropped: its event loop runs nothing more")
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Any, *, name: Optional[str] = None, context: Any = None) -> asyncio.Task[Any]:
        if context is None:
            task = asyncio.Task(coro, loop=self, name=name)
        else:
            task = asyncio.Task(coro, loop=self, name=name, context=context)  # type: ignore[call-arg]
        task._log_destroy_pending = False  # type: ignore[attr-defined]  # dropped handlers' tasks stay pending
        self._tasks[task] = None
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        pass  # never any timers

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return events._get_running_loop() is self

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True

    # Errors nobody awaited.

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        self._exception_handler = handler

    def default_exception_handler(self, context: Dict[str, Any]) -> None:
        self._owner.loop_error(context)

    def call_exception_handler(self, context: Dict[str, Any]) -> None:
        if self._closed:
            return
        try:
            if self._exception_handler is None:
                self.default_exception_handler(context)
            else:
                self._exception_handler(self, context)
        except Exception:
            pass  # a broken exception handler must not break the loop

    # What the engine cannot make durable.

    def _refuse(self, method: str) -> Any:
        called = _called_as(method)
        message = (
            f"{called} cannot be made durable in a workflow handler: "
            f"{_ADVICE.get(called.split('.')[-1][:-2], _DEFAULT_ADVICE)} (the handler's event loop has no clock, threads or I/O)"
        )
        self._owner.misuse(message)
        raise Misuse(message)

    def time(self) -> float:
        return self._refuse("time")

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.TimerHandle:
        return self._refuse("call_later")

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.TimerHandle:
        return self._refuse("call_at")

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        return self._refuse("call_soon_threadsafe")

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        return self._refuse("run_in_executor")

    def set_default_executor(self, executor: Any) -> None:
        self._refuse("set_default_executor")


def _refusing(method: str) -> Callable[..., Any]:
    def refuse(self: DeterministicLoop, *args: Any, **kwargs: Any) -> Any:
        return self._refuse(method)

    refuse.__name__ = method
    return refuse


for _method in (
    "run_forever", "run_until_complete", "stop", "shutdown_asyncgens", "shutdown_default_executor",
    "getaddrinfo", "getnameinfo", "create_connection", "create_server", "sendfile", "start_tls",
    "create_unix_connection", "create_unix_server", "connect_accepted_socket", "create_datagram_endpoint",
    "connect_read_pipe", "connect_write_pipe", "subprocess_shell", "subprocess_exec",
    "add_reader", "remove_reader", "add_writer", "remove_writer",
    "sock_recv", "sock_recv_into", "sock_recvfrom", "sock_recvfrom_into", "sock_sendall", "sock_sendto",
    "sock_connect", "sock_accept", "sock_sendfile", "add_signal_handler", "remove_signal_handler",
):
    setattr(DeterministicLoop, _method, _refusing(_method))


def _called_as(method: str) -> str:
    """How the author reached the loop: the outermost asyncio function on the stack
    (``asyncio.sleep()``), or ``loop.<method>()`` when the author called the loop directly."""
    frame = sys._getframe(3)  # _called_as <- _refuse <- the loop method <- its caller
    outermost = None
    while frame is not None and frame.f_globals.get("__name__", "").startswith("asyncio."):
        outermost = frame
        frame = frame.f_back
    if outermost is None:
        return f"loop.{method}()"
    return f"asyncio.{getattr(outermost.f_code, 'co_qualname', outermost.f_code.co_name)}()"
