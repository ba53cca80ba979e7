"""Executing handlers through a real worker process, driven by the fake manager."""

from __future__ import annotations

import textwrap
import time
import unittest

from tests.fakemanager import FakeManager, testdata

NIGHTLY_INPUT = {"channel": "ops", "topic": "open incidents"}


def wf(body: str, header: str = "") -> str:
    """A workflow file named "wf" whose handler body is ``body``."""
    return (
        "import asyncio\nfrom api.workflow_engine import *\n" + textwrap.dedent(header)
        + '\nWORKFLOW_NAME = "wf"\n\nasync def handler(inp, ctx):\n' + textwrap.indent(textwrap.dedent(body), "    ")
    )


class WorkerTest(unittest.TestCase):
    """Tests sharing one worker process; each uses run uids of its own."""

    manager: FakeManager

    @classmethod
    def setUpClass(cls) -> None:
        cls.manager = FakeManager()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.manager.close()

    def setUp(self) -> None:
        self.m = self.manager
        self.m.logs.clear()


class ProductExamples(WorkerTest):
    def test_nightly_report_runs_turn_by_turn(self) -> None:
        digest = self.m.load_source(testdata("nightly_report.py"), "nightly_report.py")
        turn = self.m.run(digest, NIGHTLY_INPUT, uid="nightly-1")
        self.assertEqual(turn["op"], "turn")
        self.assertFalse(turn["resumed"])
        self.assertEqual(turn["calls"], [{"kind": "step", "name": "collect", "retry": None, "timeout": None, "batched": False, "async": False,
                                          "site": "/wf/nightly_report.py:18 in handler"}])
        done = self.m.call_step(0)
        self.assertEqual(done, {"op": "step_done", "s": self.m.sid, "call": 0, "branch": None, "value": {"topic": "open incidents"}})
        turn = self.m.results([{"value": done["value"]}])
        self.assertEqual(turn["calls"], [{"kind": "sleep", "name": "settle", "seconds": 30.0, "site": "/wf/nightly_report.py:19 in handler"}])
        turn = self.m.results([{}], now="2026-12-06T10:00:31Z")  # a null value may be left out
        self.assertEqual(turn["calls"][0]["kind"], "run_agent")
        self.assertEqual(turn["calls"][0]["name"], "summarize")
        self.assertEqual(turn["calls"][0]["request"]["prompt"], "Write a short report about open incidents")
        done = self.m.results([{"value": "All quiet."}])
        self.assertEqual(done, {"op": "return", "s": self.m.sid, "output": {"channel": "ops", "report": "All quiet."}})

    def test_github_issue_triage_names_its_unnamed_agent_turn(self) -> None:
        digest = self.m.load_source(testdata("github_issue_triage.py"), "github_issue_triage.py")
        envelope = {"webhook": {"headers": {"x-github-event": "issues"}, "body": {
            "issue": {"number": 7, "title": "Crash on start"}, "repository": {"full_name": "acme/app"}}}}
        turn = self.m.run(digest, envelope, uid="triage-1")
        self.assertEqual(turn["calls"], [{"kind": "run_agent", "name": "agent-turn-1", "request": {
            "prompt": "Triage GitHub issue acme/app#7: Crash on start", "agent": "", "thread_key": "github:acme/app:7",
            "instructions": "", "model": "", "temperature": None, "max_tokens": 0}, "site": "/wf/github_issue_triage.py:34 in handler"}])
        done = self.m.results([{"value": "labelled bug"}])
        self.assertEqual(done["output"], {"triaged": True, "agent_result": "labelled bug"})
        skipped = self.m.run(digest, {"webhook": {"headers": {"x-github-event": "push"}, "body": {}}}, uid="triage-2")
        self.assertEqual(skipped["output"], {"skipped": True, "reason": "unsupported_event"})

    def test_input_that_does_not_build_Input_fails_the_run(self) -> None:
        digest = self.m.load_source(testdata("nightly_report.py"), "nightly_report.py")
        failed = self.m.run(digest, {"channel": "ops"}, uid="nightly-bad-input")
        self.assertEqual(failed["reason"], "InvalidInput")
        self.assertIn('missing field "topic" (str)', failed["message"])
        failed = self.m.run(digest, {"channel": "ops", "topic": "x", "extra": 1}, uid="nightly-bad-input")
        self.assertIn('unknown field "extra"', failed["message"])

    def test_unknown_digest_asks_for_a_load(self) -> None:
        self.assertEqual(self.m.run("ab" * 32, {}), {"op": "unknown_revision", "s": self.m.sid})


class KeptHandlers(WorkerTest):
    SOURCE = wf("""
        data = await ctx.step("collect", lambda: inp["topic"])
        try:
            await ctx.sleep("settle", 30)
        except BaseException:
            await ctx.step("in-except", lambda: 1)
            raise
        finally:
            print("finally of", ctx.run.uid)
            ctx.log("in finally")
            await ctx.step("in-finally", lambda: 2)
        return {"data": data, "now": ctx.now().isoformat()}
    """)

    def park(self, uid: str) -> str:
        digest = self.m.load_source(self.SOURCE)
        turn = self.m.answer_steps(self.m.run(digest, {"topic": "t"}, uid=uid))
        self.assertEqual(turn["calls"][0]["name"], "settle")
        self.m.end(keep=True, n=2, d="after-collect")
        return digest

    def test_a_hit_resumes_the_handler_where_it_waits(self) -> None:
        digest = self.park("kept-hit")
        before = self.m.stats()
        turn = self.m.run(digest, {"topic": "t"}, uid="kept-hit", end={"n": 2, "d": "after-collect"})
        self.assertEqual(turn, {"op": "turn", "s": self.m.sid, "resumed": True, "calls": [{"kind": "sleep", "name": "settle", "seconds": 30.0,
                                                                                    "site": "/wf/wf.py:10 in handler"}]})
        turn = self.m.results([{"value": None}], now="2026-12-06T10:00:31Z")
        self.assertEqual(turn["calls"][0]["name"], "in-finally")
        self.assertEqual([log["msg"] for log in self.m.logs], ["in finally"])
        done = self.m.answer_steps(turn, now="2026-12-06T10:00:32Z")
        self.assertEqual(done["output"], {"data": "t", "now": "2026-12-06T10:00:32+00:00"})
        after = self.m.stats()
        self.assertEqual(after["hits"] - before["hits"], 1)
        self.assertEqual(after["misses"], before["misses"])

    def test_a_miss_drops_the_kept_handler_and_starts_from_the_top(self) -> None:
        digest = self.park("kept-miss")
        before = self.m.stats()
        turn = self.m.run(digest, {"topic": "t"}, uid="kept-miss", end={"n": 3, "d": "something-else"})
        self.assertEqual(turn["resumed"], False)
        self.assertEqual(turn["calls"][0]["name"], "collect")
        self.assertEqual(self.m.logs, [], "the dropped handler's finally: must not reach the manager")
        self.assertEqual(self.m.stats()["misses"] - before["misses"], 1)
        self.m.end(keep=False)

    def test_keep_false_drops_the_handler_silently(self) -> None:
        own = FakeManager()
        try:
            self.m = own
            digest = own.load_source(self.SOURCE)
            own.answer_steps(own.run(digest, {"topic": "t"}, uid="dropped"))
            own.end(keep=False)
            self.assertTrue(own.nothing_within(0.3))
            self.assertEqual(own.logs, [])
            self.assertEqual(own.stats()["cached"], 0)
            turn = own.run(digest, {"topic": "t"}, uid="dropped", end={"n": 1, "d": "x"})
            self.assertFalse(turn["resumed"])
        finally:
            own.close()
        self.assertEqual(own.stdout, "finally of dropped\n", "the dropped handler's finally: ran, and reached nobody")

    def test_the_cache_keeps_the_most_recently_used_runs(self) -> None:
        small = FakeManager("--cache-runs", "2")
        try:
            self.m = small
            for uid in ("lru-1", "lru-2", "lru-3"):
                digest = self.park(uid)
            self.assertEqual(small.stats()["cached"], 2)
            self.assertEqual(small.logs, [])
            evicted = small.run(digest, {"topic": "t"}, uid="lru-1", end={"n": 2, "d": "after-collect"})
            self.assertFalse(evicted["resumed"])
            small.end(keep=False)
            kept = small.run(digest, {"topic": "t"}, uid="lru-3", end={"n": 2, "d": "after-collect"})
            self.assertTrue(kept["resumed"])
        finally:
            small.close()


    def test_a_resident_memory_bound_evicts_kept_handlers(self) -> None:
        bounded = FakeManager("--cache-rss-bytes", "1")
        try:
            self.m = bounded
            self.park("rss-1")
            self.assertEqual(bounded.stats()["cached"], 0)
            self.assertEqual(bounded.logs, [])
        finally:
            bounded.close()


class Turns(WorkerTest):
    def test_a_gather_of_three_steps_is_one_turn_of_three_calls(self) -> None:
        digest = self.m.load_source(wf("""
            return await asyncio.gather(ctx.step("a", lambda: "A"), ctx.step("b", lambda: "B"), ctx.step("c", lambda: "C"))
        """))
        turn = self.m.run(digest, uid="gather")
        self.assertEqual([c["name"] for c in turn["calls"]], ["a", "b", "c"])
        self.assertEqual(self.m.answer_steps(turn)["output"], ["A", "B", "C"])

    def test_tasks_events_and_locks_run_in_order(self) -> None:
        digest = self.m.load_source(wf("""
            order = []
            ready = asyncio.Event()
            lock = asyncio.Lock()
            async def worker(name):
                await ready.wait()
                async with lock:
                    order.append(name)
                    order.append(await ctx.step(name, lambda: name.upper()))
            tasks = [asyncio.create_task(worker(n)) for n in ("x", "y")]
            ready.set()
            await asyncio.gather(*tasks)
            return order
        """))
        turn = self.m.run(digest, uid="tasks")
        self.assertEqual([c["name"] for c in turn["calls"]], ["x"])
        turn = self.m.answer_steps(turn)
        self.assertEqual([c["name"] for c in turn["calls"]], ["y"])
        self.assertEqual(self.m.answer_steps(turn)["output"], ["x", "X", "y", "Y"])

    def test_parallel_sends_its_branches(self) -> None:
        digest = self.m.load_source(wf("""
            async def fetch():
                return "async"
            return await ctx.parallel({"one": lambda: 1, "two": fetch}.items(), retry=2, timeout="30s")
        """))
        turn = self.m.run(digest, uid="parallel")
        self.assertEqual(turn["calls"], [{"kind": "parallel", "branches": [{"name": "one", "async": False}, {"name": "two", "async": True}],
                                          "retry": {"max_attempts": 2, "initial_backoff": None, "multiplier": None, "max_backoff": None,
                                                    "non_retryable_error_types": None}, "timeout": 30.0, "site": "/wf/wf.py:10 in handler"}])
        one, two = self.m.call_step(0, branch=0), self.m.call_step(0, branch=1)
        self.assertEqual((one["branch"], one["value"], two["branch"], two["value"]), (0, 1, 1, "async"))
        self.assertEqual(self.m.results([{"value": [1, "async"]}])["output"], [1, "async"])

    def test_a_step_function_knows_its_attempt(self) -> None:
        digest = self.m.load_source(wf("""
            from api.workflow_engine import step_attempt
            async def attempt():
                return step_attempt()
            return [await ctx.step("sync", step_attempt), await ctx.step("async", attempt), step_attempt()]
        """))
        self.m.run(digest, uid="attempts")
        self.assertEqual(self.m.call_step(0, attempt=3)["value"], 3)
        self.m.results([{"value": 3}])
        self.assertEqual(self.m.call_step(0, attempt=1)["value"], 1)
        self.assertEqual(self.m.results([{"value": 1}])["output"], [3, 1, 0])

    def test_a_step_function_gets_its_attempts_trace_headers(self) -> None:
        digest = self.m.load_source(wf("""
            from api.workflow_engine import trace_headers
            async def headers():
                return trace_headers()
            return [await ctx.step("sync", trace_headers), await ctx.step("async", headers), trace_headers()]
        """))
        self.m.run(digest, uid="traced")
        traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        self.assertEqual(self.m.call_step(0, traceparent=traced)["value"], {"traceparent": traced})
        self.m.results([{"value": {"traceparent": traced}}])
        self.assertEqual(self.m.call_step(0)["value"], {}, "an attempt the manager does not trace")
        self.assertEqual(self.m.results([{"value": {}}])["output"], [{"traceparent": traced}, {}, {}])

    def test_a_caught_step_failure_lets_the_handler_go_on(self) -> None:
        digest = self.m.load_source(wf("""
            def boom():
                raise ValueError("no such page")
            try:
                await ctx.step("fetch", boom)
            except StepFailed as err:
                return {"step": err.step, "type": err.error_type, "message": err.message, "attempts": err.attempts}
        """))
        turn = self.m.run(digest, uid="caught")
        done = self.m.call_step(0)
        self.assertEqual(done["error"]["type"], "ValueError")
        self.assertEqual(done["error"]["message"], "no such page")
        self.assertFalse(done["error"]["non_retryable"])
        self.assertIn("/wf/wf.py", done["error"]["traceback"])
        output = self.m.results([{"error": {"kind": "step_failed", "step": "fetch", "attempts": 3, "message": "no such page", "error_type": "ValueError"}}])
        self.assertEqual(output["output"], {"step": "fetch", "type": "ValueError", "message": "no such page", "attempts": 3})

    def test_uncaught_errors_are_raised_with_their_reason_and_traceback(self) -> None:
        digest = self.m.load_source(wf("""
            if inp == "child":
                await ctx.run_workflow("c", "other")
            raise KeyError("missing")
        """))
        raised = self.m.run(digest, "plain", uid="raise-plain")
        self.assertEqual(raised["error"]["type"], "KeyError")
        self.assertIsNone(raised["error"]["reason"])
        self.assertIn('File "/wf/wf.py", line 10, in handler', raised["error"]["traceback"])
        self.assertNotIn("centaur_worker", raised["error"]["traceback"])
        self.m.run(digest, "child", uid="raise-child")
        raised = self.m.results([{"error": {"kind": "child_failed", "child": "run-9", "reason": "HandlerError", "message": "bad"}}])
        self.assertEqual(raised["error"]["reason"], "ChildFailed")
        self.assertEqual(raised["error"]["message"], "child run run-9 failed: HandlerError: bad")

    def test_a_call_left_pending_stays_unresolved(self) -> None:
        digest = self.m.load_source(wf("""
            a = asyncio.ensure_future(ctx.step("a", lambda: 1))
            b = ctx.step("b", lambda: 2)
            try:
                await asyncio.gather(a, b)
            except StepFailed as err:
                if inp == "go on":
                    return err.step
            return await a
        """))
        for how, expected in (("go on", {"op": "return", "output": "b"}), ("wait", {"op": "fail", "reason": "Misuse"})):
            with self.subTest(how=how):
                self.m.run(digest, how, uid="pending-" + how)
                answer = self.m.results([{"pending": True}, {"error": {"kind": "step_failed", "step": "b", "attempts": 1, "message": "m"}}])
                self.assertEqual({k: answer[k] for k in expected}, expected)
        self.assertIn('it may be waiting for "a", left unfinished', answer["message"])

    def test_get_version_is_asked_once_and_remembered(self) -> None:
        digest = self.m.load_source(wf("""
            first = await ctx.get_version("v2-api", DEFAULT_VERSION, 2)
            again = await ctx.get_version("v2-api", DEFAULT_VERSION, 2)
            await ctx.step("between", lambda: None)
            await ctx.get_version("v2-api", 2, 3)
            return "unreachable"
        """))
        turn = self.m.run(digest, uid="versions")
        self.assertEqual(turn["calls"], [{"kind": "get_version", "change_id": "v2-api", "min_supported": -1, "max_supported": 2,
                                          "site": "/wf/wf.py:8 in handler"}])
        turn = self.m.results([{"value": 1}])
        self.assertEqual(turn["calls"][0]["name"], "between", "the second get_version was answered by the worker")
        failed = self.m.answer_steps(turn)
        self.assertEqual(failed["reason"], "UnsupportedVersion")
        self.assertEqual(failed["message"], 'change "v2-api": the run took version 1, but this code supports versions 2 to 3: '
                                            "keep version 1 supported until the runs that took it have finished")

    def test_unnamed_agent_turns_are_numbered_per_handler(self) -> None:
        digest = self.m.load_source(wf("""
            a = await ctx.agent_turn("one")
            b = await ctx.agent_turn("two", name="triage")
            c = await ctx.agent_turn("three", thread_key="t")
            return [a, b, c]
        """))
        names = []
        msg = self.m.run(digest, uid="turns")
        while msg["op"] == "turn":
            names.append(msg["calls"][0]["name"])
            msg = self.m.results([{"value": msg["calls"][0]["request"]["prompt"].upper()}])
        self.assertEqual(names, ["agent-turn-1", "triage", "agent-turn-2"])
        self.assertEqual(msg["output"], ["ONE", "TWO", "THREE"])

    def test_now_log_and_run(self) -> None:
        digest = self.m.load_source(wf("""
            first = ctx.now().isoformat()
            def in_step():
                ctx.log("in step", n=1, odd={1, 2})
                return ctx.now().isoformat()
            in_step_now = await ctx.step("s", in_step)
            ctx.log("after", run=ctx.run.name)
            return [first, in_step_now, ctx.now().isoformat(), ctx.run.uid, ctx.run.started_at.isoformat()]
        """))
        turn = self.m.run(digest, uid="clock")
        output = self.m.answer_steps(turn)["output"]
        self.assertEqual(output, ["2026-12-06T10:00:00+00:00", "2026-12-06T10:00:00+00:00", "2026-12-06T10:00:01+00:00", "clock", "2026-12-06T10:00:00+00:00"])
        self.assertEqual([(log["s"], log["level"], log["msg"], log["fields"]) for log in self.m.logs],
                         [(self.m.sid, "info", "in step", {"n": 1, "odd": "{1, 2}"}), (self.m.sid, "info", "after", {"run": "run-clock"})])

    def test_an_output_that_is_not_json_fails_the_run(self) -> None:
        digest = self.m.load_source(wf("return {'when': ctx.now()}"))
        failed = self.m.run(digest, uid="bad-output")
        self.assertEqual(failed["reason"], "HandlerError")
        self.assertIn("a datetime at the output['when']", failed["message"])


class Misuse(WorkerTest):
    def test_asyncio_sleep_fails_the_run_even_when_caught(self) -> None:
        digest = self.m.load_source(wf("""
            try:
                await asyncio.sleep(5)
            except BaseException:
                pass
            return "went on"
        """))
        failed = self.m.run(digest, uid="sleep")
        self.assertEqual(failed["reason"], "Misuse")
        self.assertIn("asyncio.sleep()", failed["message"])
        self.assertIn("ctx.sleep(name, duration)", failed["message"])

    def test_timeouts_and_threads_name_the_asyncio_call(self) -> None:
        for call, named in (("asyncio.wait_for(asyncio.Event().wait(), 1)", "asyncio.wait_for()"),
                            ("asyncio.to_thread(print)", "asyncio.to_thread()"),
                            ("asyncio.get_running_loop().call_later(1, print)", "loop.call_later()")):
            with self.subTest(call=call):
                digest = self.m.load_source(wf(f"return await {call}" if "call_later" not in call else call))
                failed = self.m.run(digest, uid="timeouts")
                self.assertEqual(failed["reason"], "Misuse")
                self.assertTrue(failed["message"].startswith(named), failed["message"])

    def test_a_primitive_inside_a_step_function(self) -> None:
        digest = self.m.load_source(wf("""
            def sneaky():
                ctx.sleep("inner", 1)
            async def sneaky_async():
                await ctx.step("inner", lambda: 1)
            await ctx.step("outer", sneaky if inp == "thread" else sneaky_async)
        """))
        for kind in ("thread", "coroutine"):
            with self.subTest(kind=kind):
                self.m.run(digest, kind, uid="in-step-" + kind)
                done = self.m.call_step(0)
                self.assertEqual(done["error"]["type"], "Misuse")
                self.assertTrue(done["error"]["non_retryable"])
                self.assertIn('inside the function of step "outer"', done["error"]["message"])
                failed = self.m.results([{"error": {"kind": "step_failed", "step": "outer", "attempts": 1, "message": "m", "error_type": "Misuse"}}])
                self.assertEqual(failed["reason"], "Misuse")

    def test_a_blocked_handler(self) -> None:
        digest = self.m.load_source(wf("await asyncio.Event().wait()"))
        failed = self.m.run(digest, uid="blocked")
        self.assertEqual(failed["reason"], "Misuse")
        self.assertIn("the handler is blocked", failed["message"])
        self.assertIn("ctx.wait_for_event", failed["message"])

    def test_bad_arguments_raise_before_anything_is_sent(self) -> None:
        digest = self.m.load_source(wf("""
            try:
                await ctx.send_event("e", "kind", payload={"ids": {1, 2}})
            except TypeError as err:
                return str(err)
        """))
        done = self.m.run(digest, uid="bad-args")
        self.assertEqual(done["output"], "ctx.send_event(\"e\"): payload must be JSON: a set at payload['ids']")


class StepFunctions(WorkerTest):
    def test_results_that_are_not_json(self) -> None:
        digest = self.m.load_source(wf("""
            from dataclasses import dataclass
            @dataclass
            class Point:
                x: int
                y: tuple
            results = {"set": lambda: {1}, "nan": lambda: float("nan"), "dataclass": lambda: Point(1, (2, 3))}
            await ctx.step(inp, results[inp])
        """))
        self.m.run(digest, "set", uid="json-set")
        error = self.m.call_step(0)["error"]
        self.assertTrue(error["non_retryable"])
        self.assertEqual(error["message"], 'the result of step "set" is not JSON: a set at the result')
        self.m.run(digest, "nan", uid="json-nan")
        self.assertIn("nan at the result (JSON has no NaN or infinity)", self.m.call_step(0)["error"]["message"])
        self.m.run(digest, "dataclass", uid="json-dataclass")
        self.assertEqual(self.m.call_step(0)["value"], {"x": 1, "y": [2, 3]})

    def test_non_retryable_errors(self) -> None:
        digest = self.m.load_source(wf("""
            class Gone(NonRetryableError):
                pass
            def fail():
                raise Gone()
            await ctx.step("gone", fail)
        """))
        self.m.run(digest, uid="gone")
        error = self.m.call_step(0)["error"]
        self.assertEqual((error["type"], error["message"], error["non_retryable"]), ("Gone", "Gone", True))

    def test_coroutine_steps_run_and_cancel(self) -> None:
        digest = self.m.load_source(wf("""
            async def quick():
                await asyncio.sleep(0.01)
                return "quick"
            async def slow():
                await asyncio.sleep(30)
            async def later():
                return "from a coroutine"
            quick_result = await ctx.step("quick", quick)
            wrapped = await ctx.step("wrapped", lambda: later())
            await ctx.step("slow", slow, timeout=1)
        """))
        turn = self.m.run(digest, uid="coroutines")
        self.assertTrue(turn["calls"][0]["async"])
        turn = self.m.answer_steps(turn)
        self.assertFalse(turn["calls"][0]["async"])
        self.assertEqual(self.m.call_step(0)["value"], "from a coroutine")
        turn = self.m.results([{"value": "from a coroutine"}])
        self.assertEqual(turn["calls"][0]["timeout"], 1.0)
        self.m.send({"op": "call_step", "s": self.m.sid, "call": 0, "branch": None, "attempt": 1})
        time.sleep(0.05)
        self.m.send({"op": "cancel_step", "s": self.m.sid, "call": 0, "branch": None})
        self.assertTrue(self.m.nothing_within(0.3))
        self.m.end(keep=False)


class Process(unittest.TestCase):
    def test_ready_then_exit_at_end_of_file(self) -> None:
        manager = FakeManager()
        self.assertEqual(manager.ready["op"], "ready")
        self.assertEqual(manager.ready["pid"], manager.process.pid)
        started = time.monotonic()
        manager.close()
        self.assertEqual(manager.process.returncode, 0)
        self.assertLess(time.monotonic() - started, 5)

    def test_a_frame_that_is_not_a_json_object_ends_the_worker(self) -> None:
        manager = FakeManager()
        try:
            manager.send(["not", "an", "object"])  # type: ignore[arg-type]
            self.assertEqual(manager.process.wait(10), 2)
        finally:
            manager.close()
        self.assertEqual(manager.stderr, "centaur_worker: the manager sent a frame that is not a JSON object with a string op; exiting\n")


class Memory(unittest.TestCase):
    def test_a_thousand_kept_handlers_cost_little_memory(self) -> None:
        manager = FakeManager("--cache-runs", "2000")
        try:
            digest = manager.load_source(testdata("nightly_report.py"), "nightly_report.py")
            park = lambda uid: self._park(manager, digest, uid)  # noqa: E731
            for i in range(100):
                park(f"warm-{i}")
            before = manager.stats()
            for i in range(1000):
                park(f"0b5e3c1a-7f2d-4e8b-9c6a-{i:012d}")
            after = manager.stats()
            self.assertEqual(after["cached"], 1100)
            grown = after["rss_bytes"] - before["rss_bytes"]
            self.assertLess(grown, 20 << 20, f"1,000 kept handlers took {grown / 2**20:.1f} MiB")
        finally:
            manager.close()

    @staticmethod
    def _park(manager: FakeManager, digest: str, uid: str) -> None:
        turn = manager.answer_steps(manager.run(digest, NIGHTLY_INPUT, uid=uid))
        assert turn["calls"][0]["name"] == "settle", turn
        manager.end(keep=True, n=2, d="e3b0c44298fc1c14")


if __name__ == "__main__":
    unittest.main()
