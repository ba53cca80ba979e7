"""A small fake manager for the tests: starts a real worker process and speaks PROTOCOL.md to it
over two pipes, as the Go manager does."""

from __future__ import annotations

import hashlib
import json
import os
import select
import struct
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The product's examples, as the repository ships them (workflows/, verbatim from the product page).
TESTDATA = os.path.join(os.path.dirname(PYTHON_DIR), "workflows")
STARTED_AT = "2026-12-06T10:00:00Z"


def digest_of(origin: str, entry: str, files: Dict[str, str]) -> str:
    """The revision digest, computed here from PROTOCOL.md rather than with the worker's code."""
    h = hashlib.sha256()
    h.update(b"centaur-python-revision/1\x00" + origin.encode() + b"\x00" + entry.encode() + b"\x00")
    for path in sorted(files, key=lambda p: p.encode()):
        text = files[path].encode()
        h.update(path.encode() + b"\x00" + str(len(text)).encode() + b"\x00" + text)
    return h.hexdigest()


def testdata(name: str) -> str:
    with open(os.path.join(TESTDATA, name), encoding="utf-8") as f:
        return f.read()


testdata.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test, to pytest


class FakeManager:
    """One worker process and the manager's end of its pipes."""

    def __init__(self, *args: str) -> None:
        to_worker_r, self._to_worker = os.pipe()
        self._from_worker, from_worker_w = os.pipe()
        env = dict(os.environ, PYTHONPATH=PYTHON_DIR, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-B", "-m", "centaur_worker", "--in-fd", str(to_worker_r), "--out-fd", str(from_worker_w), *args],
            pass_fds=(to_worker_r, from_worker_w), env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        os.close(to_worker_r)
        os.close(from_worker_w)
        self._buffer = b""
        self.logs: List[Dict[str, Any]] = []
        self.ready = self.recv()
        self._next_sid = 0

    def close(self) -> None:
        """Closes the command pipe (the worker exits), waits for the process and keeps what it
        printed in self.stdout and self.stderr."""
        if self._to_worker >= 0:
            os.close(self._to_worker)
            self._to_worker = -1
        try:
            out, err = self.process.communicate(timeout=10)
            self.stdout, self.stderr = out.decode(), err.decode()
        finally:
            os.close(self._from_worker)

    # Frames.

    def send(self, msg: Dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        os.write(self._to_worker, struct.pack(">I", len(body)) + body)

    def recv(self, timeout: float = 10.0) -> Dict[str, Any]:
        """The next message that is not a log (logs are collected in self.logs)."""
        while True:
            msg = self._frame(timeout)
            if msg["op"] != "log":
                return msg
            self.logs.append(msg)

    def _frame(self, timeout: float) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buffer) >= 4:
                size = struct.unpack(">I", self._buffer[:4])[0]
                if len(self._buffer) >= 4 + size:
                    body, self._buffer = self._buffer[4:4 + size], self._buffer[4 + size:]
                    return json.loads(body)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_worker], [], [], left)[0]:
                raise TimeoutError("the worker sent nothing in time")
            data = os.read(self._from_worker, 1 << 16)
            if not data:
                raise EOFError("the worker closed its pipe")
            self._buffer += data

    def nothing_within(self, seconds: float) -> bool:
        """True when the worker sends no frame within ``seconds``."""
        try:
            msg = self._frame(seconds)
        except TimeoutError:
            return True
        self._buffer = b""  # not expected; drop it
        raise AssertionError(f"unexpected message {msg}")

    # Commands.

    def load(self, files: Dict[str, str], entry: Optional[str] = None, directory: str = "/wf") -> Dict[str, Any]:
        """Loads a bundle; returns loaded or load_failed, with the digest under "digest"."""
        entry = entry or next(p for p in files if not p.startswith("_") and "/" not in p)
        digest = digest_of("dir", entry, files)
        self.send({"op": "load", "id": 1, "digest": digest, "revision": f"wf-{digest[:12]}", "dir": directory,
                   "bundle": {"origin": "dir", "entry": entry, "files": files}})
        answer = self.recv()
        answer["digest"] = digest
        return answer

    def load_source(self, source: str, name: str = "wf.py", **helpers: str) -> str:
        """Loads a one-file workflow (plus helpers given as path=text); returns its digest."""
        files = {name: source, **{k.replace("__", "/") + ".py": v for k, v in helpers.items()}}
        answer = self.load(files, entry=name)
        assert answer["op"] == "loaded", answer
        return answer["digest"]

    def run(self, digest: str, input: Any = None, uid: str = "uid-1", end: Optional[Dict[str, Any]] = None,
            sid: Optional[int] = None) -> Dict[str, Any]:
        """Sends run as a new session (its id is in self.sid); returns the first answer."""
        if sid is None:
            self._next_sid += 1
            sid = self._next_sid
        self.sid = sid
        run = {"namespace": "default", "name": "run-" + uid, "uid": uid, "workflow": "wf", "revision": "wf-x",
               "started_at": STARTED_AT}
        self.send({"op": "run", "s": sid, "digest": digest, "input": input, "run": run, "end": end or {"n": 0, "d": ""}})
        return self.recv()

    def results(self, results: List[Dict[str, Any]], now: str = "2026-12-06T10:00:01Z") -> Dict[str, Any]:
        self.send({"op": "results", "s": self.sid, "now": now, "results": results})
        return self.recv()

    def call_step(self, call: int, branch: Optional[int] = None, attempt: int = 1, traceparent: str = "") -> Dict[str, Any]:
        msg: Dict[str, Any] = {"op": "call_step", "s": self.sid, "call": call, "branch": branch, "attempt": attempt}
        if traceparent:
            msg["traceparent"] = traceparent
        self.send(msg)
        return self.recv()

    def end(self, keep: bool, n: int = 1, d: str = "x") -> None:
        self.send({"op": "end", "s": self.sid, "keep": keep, "end": {"n": n, "d": d}})

    def stats(self) -> Dict[str, Any]:
        self.send({"op": "stats", "id": 7})
        return self.recv()

    def answer_steps(self, turn: Dict[str, Any], now: str = "2026-12-06T10:00:01Z") -> Dict[str, Any]:
        """Runs every step function of a turn of steps, answers the turn with their results
        (a failed step as step_failed after one attempt), and returns the next answer."""
        results = []
        for i, call in enumerate(turn["calls"]):
            assert call["kind"] == "step", call
            done = self.call_step(i)
            if "value" in done:
                results.append({"value": done["value"]})
            else:
                results.append({"error": {"kind": "step_failed", "step": call["name"], "attempts": 1,
                                          "message": done["error"]["message"], "error_type": done["error"]["type"]}})
        return self.results(results, now)
