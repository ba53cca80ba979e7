"""The worker's bookkeeping, in this process: revisions kept by use, loaded once."""

from __future__ import annotations

import json
import unittest
from typing import Any, Dict, List
from unittest import mock

from centaur_worker import sessions
from centaur_worker.sessions import Worker
from tests.fakemanager import STARTED_AT, digest_of

TOP_LEVEL_RUNS = 0


class Recorder:
    """A Channel that keeps what the worker sends."""

    def __init__(self) -> None:
        self.sent: List[Dict[str, Any]] = []

    def send(self, msg: Dict[str, Any]) -> None:
        self.sent.append(json.loads(json.dumps(msg)))

    def send_json(self, text: str) -> None:
        self.sent.append(json.loads(text))


def source(version: int) -> Dict[str, str]:
    return {"wf.py": (
        "import tests.test_sessions as counter\n"
        "counter.TOP_LEVEL_RUNS += 1\n"
        f'WORKFLOW_NAME = "w{version}"\n'
        "async def handler(inp, ctx):\n"
        '    await ctx.sleep("wait", 60)\n'
    )}


class Revisions(unittest.TestCase):
    def setUp(self) -> None:
        self.channel = Recorder()
        self.worker = Worker(self.channel)  # type: ignore[arg-type]

    def tearDown(self) -> None:
        for revision in self.worker.revisions.values():
            revision.unload()

    def load(self, version: int) -> str:
        files = source(version)
        digest = digest_of("dir", "wf.py", files)
        self.worker.dispatch({"op": "load", "id": version, "digest": digest, "revision": None, "dir": "/d",
                              "bundle": {"origin": "dir", "entry": "wf.py", "files": files}})
        self.assertEqual(self.channel.sent[-1]["op"], "loaded", self.channel.sent[-1])
        return digest

    def test_a_revision_loads_once(self) -> None:
        before = TOP_LEVEL_RUNS
        self.load(1)
        self.load(1)
        self.assertEqual(TOP_LEVEL_RUNS - before, 1)
        self.assertEqual(self.channel.sent[-1]["workflow"]["name"], "w1")

    def test_the_least_recently_used_revisions_go_unless_a_kept_handler_uses_them(self) -> None:
        with mock.patch.object(sessions, "MAX_REVISIONS", 2):
            kept = self.load(1)
            run = {"namespace": "d", "name": "r", "uid": "u", "workflow": "w1", "revision": "w1-x", "started_at": STARTED_AT}
            self.worker.dispatch({"op": "run", "s": 1, "digest": kept, "input": None, "run": run, "end": {"n": 0, "d": ""}})
            self.worker.dispatch({"op": "end", "s": 1, "keep": True, "end": {"n": 1, "d": "x"}})
            second = self.load(2)
            third = self.load(3)
            self.assertEqual(list(self.worker.revisions), [kept, third])
            self.assertNotIn(second, self.worker.revisions)


class Commands(unittest.TestCase):
    def test_zero_values_may_be_left_out(self) -> None:
        channel = Recorder()
        worker = Worker(channel)  # type: ignore[arg-type]
        worker.dispatch({"op": "stats"})
        worker.dispatch({"op": "run", "digest": "ab" * 32, "run": {"uid": "u"}})
        worker.dispatch({"op": "end", "end": {"n": 1, "d": "x"}})
        self.assertEqual([(m["op"], m.get("id"), m.get("s")) for m in channel.sent], [("stats", 0, None), ("unknown_revision", None, 0)])


if __name__ == "__main__":
    unittest.main()
