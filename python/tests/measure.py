"""Measures the worker against the fake manager: the cost of a step, and the memory of kept
handlers. Run it with ``cd python && python3 -B -m tests.measure``.

- A step is a turn of one ``step`` call, ``call_step``, ``step_done`` and ``results``: two
  round trips over the pipes. The loop runs 1,000 of them in one handler. The fake manager is
  Python too, so its own encoding and decoding are part of the figure.
- Memory is the growth of the worker's resident memory (``stats``) for 1,000 handlers of the
  product's ``nightly_report`` kept at their ``settle`` sleep.
"""

from __future__ import annotations

import time

from tests.fakemanager import FakeManager, testdata

LOOP = '''
WORKFLOW_NAME = "loop"

async def handler(inp, ctx):
    total = 0
    for i in range(inp["steps"]):
        total += await ctx.step(f"step-{i}", lambda: 1)
    return total
'''


def microseconds_per_step(manager: FakeManager, steps: int = 1000) -> float:
    digest = manager.load_source(LOOP, "loop.py")
    for uid, count in (("warm-up", 100), ("measured", steps)):
        started = time.perf_counter()
        msg = manager.run(digest, {"steps": count}, uid=uid)
        while msg["op"] == "turn":
            done = manager.call_step(0)
            msg = manager.results([{"value": done["value"]}])
        elapsed = time.perf_counter() - started
        assert msg["output"] == count, msg
    return elapsed / steps * 1e6


def mebibytes_per_thousand_kept(manager: FakeManager) -> float:
    digest = manager.load_source(testdata("nightly_report.py"), "nightly_report.py")

    def park(uid: str) -> None:
        turn = manager.answer_steps(manager.run(digest, {"channel": "ops", "topic": "open incidents"}, uid=uid))
        assert turn["calls"][0]["name"] == "settle", turn
        manager.end(keep=True, n=2, d="e3b0c44298fc1c14")

    for i in range(100):
        park(f"warm-up-{i}")
    before = manager.stats()["rss_bytes"]
    for i in range(1000):
        park(f"0b5e3c1a-7f2d-4e8b-9c6a-{i:012d}")
    return (manager.stats()["rss_bytes"] - before) / 2**20


def main() -> None:
    manager = FakeManager("--cache-runs", "2000")
    try:
        print(f"{microseconds_per_step(manager):.0f} µs per step (1,000 single-step turns)")
        print(f"{mebibytes_per_thousand_kept(manager):.1f} MiB of resident memory per 1,000 kept nightly_report handlers")
    finally:
        manager.close()


if __name__ == "__main__":
    main()
