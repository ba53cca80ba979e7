"""The worker process: set-up, ``ready``, then one command after another until end of file.

The main thread reads the manager's commands from the input pipe and carries each out; step
functions run on other threads. End of file on the input pipe ends the process at once
(``os._exit``), whatever is still running: the manager has gone or replaces this worker.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
from typing import List, NoReturn, Optional

from centaur_worker.framing import Channel, FrameReader, PeerBroken, diag
from centaur_worker.sessions import Worker

__all__ = ["main"]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line PROTOCOL.md gives."""
    parser = argparse.ArgumentParser(prog="centaur_worker", description="Runs workflow files' handlers for the Centaur manager.")
    parser.add_argument("--in-fd", type=int, required=True, help="the pipe the manager writes commands to")
    parser.add_argument("--out-fd", type=int, required=True, help="the pipe the worker writes messages to")
    parser.add_argument("--cache-runs", type=int, default=1000, help="how many suspended handlers to keep (default 1000)")
    parser.add_argument("--cache-rss-bytes", type=int, default=0,
                        help="evict kept handlers while resident memory is above this (default 0: no bound)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> NoReturn:
    """Runs the worker until the manager closes the input pipe."""
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the manager ends workers, not a terminal's Ctrl-C
    _volunteer_for_oom_killer()
    channel = Channel(args.out_fd)
    worker = Worker(channel, cache_runs=args.cache_runs, cache_rss_bytes=args.cache_rss_bytes)
    channel.send({"op": "ready", "python": platform.python_version(), "pid": os.getpid()})
    reader = FrameReader(args.in_fd)
    while True:
        try:
            msg = reader.read()
        except PeerBroken as err:
            _exit(2, f"the manager sent {err}; exiting")
        if msg is None:
            _exit(0)
        try:
            worker.dispatch(msg)
        except Exception as exc:  # a command the protocol does not allow, or a bug of the worker
            _exit(70, f"cannot carry out {msg.get('op')!r} (session {msg.get('s')}): {type(exc).__name__}: {exc}; exiting")


def _volunteer_for_oom_killer() -> None:
    """Makes this worker the kernel's first choice when memory runs out, before the manager."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def _exit(code: int, why: str = "") -> NoReturn:
    if why:
        diag(why)
    try:
        sys.stdout.flush()
    finally:
        os._exit(code)
