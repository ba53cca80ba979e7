"""The two pipes to the manager: length-prefixed JSON frames (PROTOCOL.md, "Framing").

Every message is a 4-byte big-endian length and that many bytes of UTF-8 JSON, one object with
a string ``op``. The main thread reads commands; messages are written from several threads
(the main thread, step threads, the step event loop), each frame whole under one lock.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any, BinaryIO, Dict, Optional

from centaur_worker.jsonvalue import dumps, log_fields

__all__ = ["MAX_FRAME", "Channel", "FrameReader", "PeerBroken", "diag", "log_message"]

MAX_FRAME = 64 << 20
"""The largest frame either side accepts, in bytes."""


class PeerBroken(Exception):
    """The manager sent something that is not a frame of the protocol."""


class FrameReader:
    """Reads the manager's commands from a pipe."""

    def __init__(self, fd: int) -> None:
        self._file: BinaryIO = open(fd, "rb", buffering=1 << 16, closefd=False)

    def read(self) -> Optional[Dict[str, Any]]:
        """The next command, or None at end of file. Raises PeerBroken for a frame over
        MAX_FRAME or one that is not a JSON object with a string ``op``."""
        head = self._file.read(4)
        if len(head) < 4:
            return None
        size = int.from_bytes(head, "big")
        if size > MAX_FRAME:
            raise PeerBroken(f"a frame of {size} bytes, over the limit of {MAX_FRAME}")
        body = self._file.read(size)
        if len(body) < size:
            return None
        try:
            msg = json.loads(body.decode())
        except ValueError as err:
            raise PeerBroken(f"a frame that is not JSON: {err}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            raise PeerBroken("a frame that is not a JSON object with a string op")
        return msg


class Channel:
    """Writes messages to the manager; safe to call from any thread.

    A message is encoded before the lock is taken, and the locked section allocates no
    container objects, so a garbage collection (whose finalizers may send a message of their
    own) never runs while a frame is half written.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, msg: Dict[str, Any]) -> None:
        """Sends one message given as a dict (its values must be JSON)."""
        self.send_json(dumps(msg))

    def send_json(self, text: str) -> None:
        """Sends one message given as encoded JSON (ASCII, as ``dumps`` makes it). The manager
        being gone (a broken pipe) ends the worker, as end of file on the command pipe does."""
        body = text.encode()
        frame = len(body).to_bytes(4, "big") + body
        with self._lock:
            try:
                written = os.write(self._fd, frame)
                while written < len(frame):
                    written += os.write(self._fd, frame[written:])
            except BrokenPipeError:
                os._exit(0)


def log_message(sid: int, level: str, message: str, fields: Dict[str, Any]) -> str:
    """A ``log`` message of session ``sid``; fields that are not JSON are shown with str()."""
    msg = {"op": "log", "s": sid, "level": level, "msg": message, "fields": fields}
    try:
        return dumps(msg)
    except (TypeError, ValueError, RecursionError):
        msg["fields"] = log_fields(fields)
        return dumps(msg)


def diag(text: str) -> None:
    """Writes one line of the worker's own diagnostics to stderr (the manager logs it)."""
    sys.stderr.write("centaur_worker: " + " ".join(text.split("\n")) + "\n")
    sys.stderr.flush()
