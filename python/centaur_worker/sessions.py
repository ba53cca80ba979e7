"""The worker's state between commands: loaded revisions, sessions, and the cache of kept
handlers (PROTOCOL.md, "Loading", "Executing", "The end of an execution", "Statistics").

A session is one execution of one run. A handler suspended in a turn is kept when the manager
ends its session with ``keep: true``, tagged with the journal end the manager gave, and the next
``run`` of that run uid with the same digest and journal end resumes it (a hit); any other
``run`` of the uid drops it and starts the handler from the top (a miss). Kept handlers are
bounded by count (least recently used first) and, optionally, by the worker's resident memory.
"""

from __future__ import annotations

import gc
import os
from collections import OrderedDict
from itertools import chain
from typing import Any, Callable, Dict, Optional

from centaur_worker.framing import Channel, diag
from centaur_worker.handler import Handler, Outcome
from centaur_worker.jsonvalue import dumps
from centaur_worker.loader import LoadError, Revision, check_revision_name, load_revision
from centaur_worker.steps import StepRunner, StepScope

__all__ = ["Worker", "resident_bytes"]

MAX_REVISIONS = 256
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """The worker's resident memory, from /proc/self/statm (0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return 0


class Worker:
    """Answers the manager's commands, one at a time, on the main thread."""

    def __init__(self, channel: Channel, cache_runs: int = 1000, cache_rss_bytes: int = 0) -> None:
        self.channel = channel
        self.cache_runs = cache_runs
        self.cache_rss_bytes = cache_rss_bytes
        self.revisions: OrderedDict[str, Revision] = OrderedDict()  # by digest, least recently used first
        self.sessions: Dict[int, Handler] = {}
        self.kept: OrderedDict[str, Handler] = OrderedDict()  # by run uid, least recently used first
        self.steps = StepRunner(channel)
        self.hits = 0
        self.misses = 0
        self._ops: Dict[str, Callable[[Dict[str, Any]], None]] = {
            "load": self.load, "run": self.run, "results": self.results, "call_step": self.call_step,
            "cancel_step": self.cancel_step, "end": self.end, "stats": self.stats,
        }

    def dispatch(self, msg: Dict[str, Any]) -> None:
        """Carries out one command. An unknown op is reported on stderr and ignored.

        A missing ``s`` or ``id`` reads as 0, a missing ``end`` as none, a missing ``keep`` as
        false: encoders that omit zero values (Go's ``omitempty``) drop exactly those."""
        op = self._ops.get(msg["op"])
        if op is None:
            diag(f"ignoring a command with the unknown op {msg['op']!r}")
            return
        op(msg)

    # Loading.

    def load(self, msg: Dict[str, Any]) -> None:
        """``load``: imports a revision once, and answers ``loaded`` or ``load_failed``."""
        digest, load_id = msg["digest"], msg.get("id", 0)
        try:
            check_revision_name(msg.get("revision"), digest)
            revision = self.revisions.get(digest)
            if revision is None:
                revision = load_revision(digest, msg.get("revision"), msg["dir"], msg["bundle"])
                self.revisions[digest] = revision
                self._trim_revisions()
        except LoadError as err:
            self.channel.send({"op": "load_failed", "id": load_id, "error": err.to_json()})
            return
        self.revisions.move_to_end(digest)
        self.channel.send_json(f'{{"op":"loaded","id":{dumps(load_id)},"workflow":{revision.workflow_json}}}')

    def _trim_revisions(self) -> None:
        """Forgets the least recently used revisions beyond MAX_REVISIONS that no handler uses."""
        if len(self.revisions) <= MAX_REVISIONS:
            return
        in_use = {h.revision.digest for h in chain(self.kept.values(), self.sessions.values())}
        for digest in [d for d in self.revisions if d not in in_use]:
            if len(self.revisions) <= MAX_REVISIONS:
                break
            self.revisions.pop(digest).unload()

    # Executing.

    def run(self, msg: Dict[str, Any]) -> None:
        """``run``: resumes the kept handler on a hit, else starts the handler from the top."""
        sid, digest = msg.get("s", 0), msg["digest"]
        revision = self.revisions.get(digest)
        if revision is None:
            self.channel.send({"op": "unknown_revision", "s": sid})
            return
        self.revisions.move_to_end(digest)
        uid, end = msg["run"]["uid"], _end_tag(msg.get("end"))
        kept = self.kept.pop(uid, None)
        if kept is not None and kept.revision.digest == digest and kept.end == end:
            self.hits += 1
            self.sessions[sid] = kept
            self.channel.send_json(kept.resumed_turn(sid))
            return
        if kept is not None:
            kept.drop()
        self.misses += 1
        handler = Handler(revision, msg["run"], sid, self.channel)
        self.sessions[sid] = handler
        self._send(sid, handler, handler.start(msg.get("input")))

    def results(self, msg: Dict[str, Any]) -> None:
        """``results``: the answers to the session's turn; the handler runs on."""
        sid = msg.get("s", 0)
        handler = self.sessions.get(sid)
        if handler is not None:
            self._send(sid, handler, handler.resume(msg.get("results") or [], msg["now"]))

    def _send(self, sid: int, handler: Handler, outcome: Outcome) -> None:
        text, over = outcome
        if over:
            del self.sessions[sid]
            handler.drop()
        self.channel.send_json(text)

    def call_step(self, msg: Dict[str, Any]) -> None:
        """``call_step``: runs one step function of the session's turn."""
        sid, index, branch = msg.get("s", 0), msg["call"], msg.get("branch")
        handler = self.sessions.get(sid)
        if handler is None:
            return
        call = handler.turn[index]
        which = 0 if branch is None else branch
        scope = StepScope(handler, sid, call.names[which], call.now, msg.get("attempt", 0), msg.get("traceparent") or "")
        self.steps.start((sid, index, branch), call.fns[which], scope)

    def cancel_step(self, msg: Dict[str, Any]) -> None:
        """``cancel_step``: the step's time is up."""
        self.steps.cancel((msg.get("s", 0), msg["call"], msg.get("branch")))

    def end(self, msg: Dict[str, Any]) -> None:
        """``end``: keeps the session's handler, tagged with the journal end, or drops it."""
        handler = self.sessions.pop(msg.get("s", 0), None)
        if handler is None:
            return
        if not msg.get("keep") or self.cache_runs <= 0:
            handler.drop()
            return
        handler.sid, handler.end = None, _end_tag(msg.get("end"))
        previous = self.kept.pop(handler.uid, None)
        if previous is not None:
            previous.drop()
        self.kept[handler.uid] = handler
        self._trim_kept()

    def _trim_kept(self) -> None:
        """Drops the least recently used handlers beyond --cache-runs, then, with
        --cache-rss-bytes, until the resident memory is below it (collecting garbage after each
        batch, so that the memory of dropped handlers is returned)."""
        while len(self.kept) > self.cache_runs:
            self.kept.popitem(last=False)[1].drop()
        if self.cache_rss_bytes <= 0:
            return
        while self.kept and resident_bytes() > self.cache_rss_bytes:
            for _ in range(max(1, len(self.kept) // 16)):
                self.kept.popitem(last=False)[1].drop()
            gc.collect()

    # Statistics.

    def stats(self, msg: Dict[str, Any]) -> None:
        """``stats``: what the worker holds and how its runs went."""
        self.channel.send({
            "op": "stats", "id": msg.get("id", 0), "cached": len(self.kept), "rss_bytes": resident_bytes(),
            "revisions": len(self.revisions), "hits": self.hits, "misses": self.misses,
        })


def _end_tag(end: Optional[Dict[str, Any]]) -> Any:
    """A journal end ``{"n", "d"}`` as something to compare (the worker never interprets it)."""
    return None if end is None else (end.get("n"), end.get("d"))
