"""api.testing: a workflow file run in the test process with the worker's ctx and loop, time
skipped, events, mocks, and the engine's answers to names, retries, waits and misuse."""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import textwrap
import unittest
from dataclasses import make_dataclass
from datetime import datetime, timedelta, timezone
from typing import Dict

from api.testing import Failure, WorkflowEnvironment, WorkflowLoadError, WorkflowTestError
from api.workflow_engine import WorkflowContext

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


class EnvironmentTest(unittest.TestCase):
    """Each test writes its workflow files into a directory of its own."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="centaur-testing-")
        self.addCleanup(shutil.rmtree, self.dir)

    def env(self, source: str, others: Dict[str, str] = {}) -> WorkflowEnvironment:
        for name, text in {"flow.py": source, **others}.items():
            with open(os.path.join(self.dir, name), "w", encoding="utf-8") as f:
                f.write(textwrap.dedent(text))
        return WorkflowEnvironment(os.path.join(self.dir, "flow.py"), start_time=START)


class Steps(EnvironmentTest):
    def test_step_results_are_journalled_with_status_journal_field_names(self) -> None:
        run = self.env("""
            WORKFLOW_NAME = "steps"
            async def handler(inp, ctx):
                a = await ctx.step("a", lambda: {"n": inp["n"]})
                return a["n"] + 1
        """).start({"n": 41})
        self.assertEqual(run.assert_succeeded(), 42)
        self.assertEqual(run.journal, [{"name": "a", "kind": "Step", "state": "Completed", "attempts": 1,
                                        "startedAt": "2026-03-01T12:00:00.000000Z",
                                        "finishedAt": "2026-03-01T12:00:00.000000Z", "result": {"n": 41}}])

    def test_a_failing_step_retries_by_its_policy_and_the_backoff_moves_the_clock(self) -> None:
        env = self.env("""
            from api.workflow_engine import StepFailed
            WORKFLOW_NAME = "retries"
            tries = []
            def flaky():
                tries.append(1)
                if len(tries) < 3:
                    raise ConnectionError("down")
                return len(tries)
            def broken():
                raise KeyError("gone")
            async def handler(inp, ctx):
                n = await ctx.step("flaky", flaky)
                try:
                    await ctx.step("broken", broken, retry=2)
                except StepFailed as err:
                    return {"n": n, "failed": err.step, "attempts": err.attempts, "type": err.error_type}
        """)
        run = env.start()
        self.assertEqual(run.assert_succeeded(), {"n": 3, "failed": "broken", "attempts": 2, "type": "KeyError"})
        self.assertEqual(run.entry("flaky")["attempts"], 3)
        self.assertEqual(run.entry("broken")["error"], "'gone'")
        # Backoffs 1 s and 2 s for flaky, 1 s for broken: skipped, not waited.
        self.assertEqual(run.now - START, timedelta(seconds=4))

    def test_an_uncaught_step_failure_fails_the_run_with_reason_StepFailed(self) -> None:
        run = self.env("""
            from api.workflow_engine import NonRetryableError
            WORKFLOW_NAME = "fails"
            def fatal():
                raise NonRetryableError("bad request")
            async def handler(inp, ctx):
                await ctx.step("call", fatal)
        """).start()
        failure = run.assert_failed("StepFailed")
        self.assertIn('step "call" failed after 1 attempt(s): bad request', failure.message)
        self.assertEqual(run.entry("call")["attempts"], 1)

    def test_a_mocked_step_replaces_the_function_with_a_value_a_function_or_an_error(self) -> None:
        env = self.env("""
            from api.workflow_engine import StepFailed
            WORKFLOW_NAME = "mocked"
            def real():
                raise AssertionError("the real function must not run")
            async def handler(inp, ctx):
                a = await ctx.step("a", real)
                b = await ctx.step("b", real)
                try:
                    await ctx.step("c", real, retry=1)
                except StepFailed as err:
                    return [a, b, err.message]
        """)
        env.mock_step("a", {"rows": 3}).mock_step("b", fn=lambda: "from mock").mock_step("c", error=TimeoutError("slow"))
        self.assertEqual(env.start().assert_succeeded(), [{"rows": 3}, "from mock", "slow"])

    def test_a_name_reused_returns_the_recorded_result_and_another_kind_fails_the_run(self) -> None:
        counter = self.env("""
            WORKFLOW_NAME = "names"
            calls = []
            def count():
                calls.append(1)
                return len(calls)
            async def handler(inp, ctx):
                first = await ctx.step("x", count)
                again = await ctx.step("x", count)
                if inp.get("clash"):
                    await ctx.sleep("x", "1s")
                return [first, again]
        """)
        self.assertEqual(counter.start({}).assert_succeeded(), [1, 1])
        failure = counter.start({"clash": True}).assert_failed("NonDeterministic")
        self.assertIn('"x" was recorded as a Step but the handler now calls it as a Sleep', failure.message)

    def test_parallel_branches_and_gathered_steps(self) -> None:
        run = self.env("""
            import asyncio
            WORKFLOW_NAME = "fan"
            async def handler(inp, ctx):
                pair = await ctx.parallel([("p1", lambda: 1), ("p2", lambda: 2)])
                both = await asyncio.gather(ctx.step("g1", lambda: "a"), ctx.step("g2", lambda: "b"))
                return [pair, both]
        """).start()
        self.assertEqual(run.assert_succeeded(), [[1, 2], ["a", "b"]])
        self.assertEqual([e["name"] for e in run.journal], ["p1", "p2", "g1", "g2"])


class Time(EnvironmentTest):
    def test_sleeps_return_at_once_and_the_handler_sees_the_skipped_time(self) -> None:
        run = self.env("""
            from datetime import timedelta
            WORKFLOW_NAME = "sleepy"
            async def handler(inp, ctx):
                await ctx.sleep("settle", timedelta(hours=2))
                after = ctx.now().isoformat()
                await ctx.sleep_until("tomorrow", "2026-03-02T09:00:00Z")
                in_step = await ctx.step("stamp", lambda: ctx.now().isoformat())
                return [after, in_step]
        """).start()
        self.assertEqual(run.assert_succeeded(), ["2026-03-01T14:00:00+00:00", "2026-03-02T09:00:00+00:00"])
        self.assertEqual(run.entry("settle")["wakeAt"], "2026-03-01T14:00:00.000000Z")
        self.assertEqual(run.now, datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))


class Events(EnvironmentTest):
    SOURCE = """
        WORKFLOW_NAME = "approval"
        async def handler(inp, ctx):
            decision = await ctx.wait_for_event("approval", "approval.decided", inp["request"])
            late = await ctx.wait_for_event("late", "reminder", inp["request"], timeout="1h")
            return {"decision": decision, "late": late}
    """

    def test_an_event_sent_before_the_wait_counts(self) -> None:
        env = self.env(self.SOURCE)
        env.send_event("approval.decided", "r-1", {"approved": True})
        run = env.start({"request": "r-1"})
        self.assertEqual(run.assert_succeeded(), {"decision": {"approved": True}, "late": None})
        self.assertEqual(run.entry("approval")["ref"], "event-1")
        self.assertEqual(run.entry("late")["error"], "timed out")
        self.assertEqual(run.now - START, timedelta(hours=1))

    def test_a_wait_no_event_answers_leaves_the_run_waiting_until_the_test_sends_it(self) -> None:
        run = self.env(self.SOURCE).start({"request": "r-2"})
        self.assertEqual((run.status, run.waiting_for), ("waiting", "event approval.decided/r-2"))
        self.assertEqual(run.entry("approval")["state"], "Waiting")
        with self.assertRaises(WorkflowTestError):
            run.assert_succeeded()
        run.send_event("approval.decided", "other", {"approved": False})  # another correlation id
        self.assertEqual(run.status, "waiting")
        run.send_event("approval.decided", "r-2", {"approved": True})
        self.assertEqual(run.assert_succeeded()["decision"], {"approved": True})

    def test_send_event_reaches_the_runs_waiting_for_it(self) -> None:
        run = self.env("""
            WORKFLOW_NAME = "ping"
            async def handler(inp, ctx):
                await ctx.send_event("ping", "pinged", "c-1", {"n": 1})
                return await ctx.wait_for_event("pong", "pinged", "c-1")
        """).start()
        self.assertEqual(run.assert_succeeded(), {"n": 1})
        self.assertEqual(run.entry("ping")["target"], "send event pinged/c-1")


class Agents(EnvironmentTest):
    SOURCE = """
        from api.workflow_engine import AgentFailed
        WORKFLOW_NAME = "agents"
        async def handler(inp, ctx):
            summary = await ctx.run_agent("summarize", text="Summarize " + inp["topic"], thread_key="t-1")
            turn = await ctx.start_agent("review", "Review it")
            review = await ctx.wait_for_agent("review-wait", turn)
            try:
                extra = await ctx.agent_turn("And one more thing?")
            except AgentFailed as err:
                extra = "failed: " + err.message
            return [summary, review, extra]
    """

    def test_mocked_turns_by_name_with_their_requests_recorded(self) -> None:
        env = self.env(self.SOURCE)
        env.mock_agent("summarize", fn=lambda req: "summary of " + req["prompt"])
        env.mock_agent("review", "LGTM").mock_agent("agent-turn-1", error="the model refused")
        run = env.start({"topic": "deploys"})
        self.assertEqual(run.assert_succeeded(), ["summary of Summarize deploys", "LGTM", "failed: the model refused"])
        self.assertEqual([r["name"] for r in run.agent_requests], ["summarize", "review", "agent-turn-1"])
        self.assertEqual(run.agent_requests[0]["thread_key"], "t-1")
        self.assertEqual(run.entry("summarize/result")["result"], {"text": "summary of Summarize deploys", "model": "test"})

    def test_an_unmocked_turn_leaves_the_run_waiting_for_its_reply(self) -> None:
        env = self.env(self.SOURCE).mock_agent("review", "LGTM").mock_agent("agent-turn-1", "no")
        run = env.start({"topic": "x"})
        self.assertEqual((run.status, run.waiting_for), ("waiting", "agent turn summarize"))
        run.reply_agent("summarize", "short")
        self.assertEqual(run.assert_succeeded(), ["short", "LGTM", "no"])


class Children(EnvironmentTest):
    PARENT = """
        from api.workflow_engine import ChildWorkflowFailed
        WORKFLOW_NAME = "parent"
        async def handler(inp, ctx):
            doubled = await ctx.run_workflow("double", "double", {"x": 2})
            try:
                await ctx.run_workflow("other", inp["other"], {})
            except ChildWorkflowFailed as err:
                return [doubled, err.reason]
            return [doubled, "ok"]
    """
    DOUBLE = """
        WORKFLOW_NAME = "double"
        async def handler(inp, ctx):
            return await ctx.step("twice", lambda: inp["x"] * 2)
    """

    def test_a_child_of_the_same_directory_runs_in_process_and_an_unknown_one_fails(self) -> None:
        run = self.env(self.PARENT, {"double.py": self.DOUBLE}).start({"other": "nowhere"})
        self.assertEqual(run.assert_succeeded(), [4, "UnknownWorkflow"])
        child = run.children["test-parent-double"]
        self.assertEqual(child.entry("twice")["result"], 4)
        self.assertEqual(run.entry("double")["target"], "start double")

    def test_mocked_workflows_answer_by_workflow_name(self) -> None:
        env = self.env(self.PARENT, {"double.py": self.DOUBLE})
        env.mock_workflow("double", fn=lambda inp: inp["x"] * 100)
        env.mock_workflow("flaky_child", failure=Failure("StepFailed", "it broke"))
        run = env.start({"other": "flaky_child"})
        self.assertEqual(run.assert_succeeded(), [200, "StepFailed"])
        self.assertEqual(run.entry("other/result")["error"], "StepFailed: it broke")


    def test_a_child_that_waits_for_what_the_test_did_not_give_is_a_test_error(self) -> None:
        env = self.env("""
            WORKFLOW_NAME = "parent"
            async def handler(inp, ctx):
                return await ctx.run_workflow("ask", "asker", {})
        """, {"asker.py": """
            WORKFLOW_NAME = "asker"
            async def handler(inp, ctx):
                return await ctx.wait_for_event("answer", "answered", "q-1")
        """})
        with self.assertRaises(WorkflowTestError) as caught:
            env.start()
        self.assertIn("waits for event answered/q-1: send the event", str(caught.exception))
        env.send_event("answered", "q-1", "yes")
        self.assertEqual(env.start().assert_succeeded(), "yes")


class Logs(EnvironmentTest):
    def test_ctx_log_lines_of_the_handler_and_its_steps_are_kept(self) -> None:
        run = self.env("""
            WORKFLOW_NAME = "logs"
            def work():
                ctx_holder[0].log("in step", n=1)
                return 1
            ctx_holder = [None]
            async def handler(inp, ctx):
                ctx_holder[0] = ctx
                ctx.log("start", who="handler")
                return await ctx.step("work", work)
        """).start()
        run.assert_succeeded()
        self.assertEqual(run.logs, [{"level": "info", "message": "start", "fields": {"who": "handler"}},
                                    {"level": "info", "message": "in step", "fields": {"n": 1}}])


class Inputs(EnvironmentTest):
    SOURCE = """
        from dataclasses import dataclass
        WORKFLOW_NAME = "typed"
        @dataclass
        class Input:
            channel: str
            count: int = 1
        async def handler(inp: Input, ctx):
            return {"channel": inp.channel, "count": inp.count, "type": type(inp).__name__}
    """

    def test_a_dict_or_an_input_instance_builds_the_files_Input(self) -> None:
        env = self.env(self.SOURCE)
        self.assertEqual(env.start({"channel": "ops"}).assert_succeeded(), {"channel": "ops", "count": 1, "type": "Input"})
        input_cls = make_dataclass("Input", [("channel", str), ("count", int)])  # converted as JSON, as the manager does
        self.assertEqual(env.start(input_cls("dev", 3)).assert_succeeded()["count"], 3)

    def test_an_input_the_manager_would_refuse_fails_with_InvalidInput(self) -> None:
        failure = self.env(self.SOURCE).start({"chanel": "typo"}).assert_failed("InvalidInput")
        self.assertIn('unknown field "chanel"', failure.message)


class Misuse(EnvironmentTest):
    def test_a_primitive_inside_a_step_function_fails_the_run(self) -> None:
        run = self.env("""
            import asyncio
            WORKFLOW_NAME = "misuse"
            async def handler(inp, ctx):
                await ctx.step("outer", lambda: ctx.step("inner", lambda: 1))
        """).start()
        self.assertIn('cannot be called inside the function of step "outer"', run.assert_failed("Misuse").message)

    def test_primitives_the_engine_refuses_together_fail_with_the_managers_message(self) -> None:
        run = self.env("""
            import asyncio
            WORKFLOW_NAME = "together"
            async def handler(inp, ctx):
                await asyncio.gather(ctx.sleep("a", "1s"), ctx.step("b", lambda: 1))
        """).start()
        self.assertIn('the handler awaited ctx.sleep("a"), ctx.step("b") together', run.assert_failed("Misuse").message)

    def test_asyncio_sleep_in_the_handler_fails_the_run(self) -> None:
        run = self.env("""
            import asyncio
            WORKFLOW_NAME = "clock"
            async def handler(inp, ctx):
                await asyncio.sleep(1)
        """).start()
        self.assertIn("asyncio.sleep() cannot be made durable", run.assert_failed("Misuse").message)


class Loading(EnvironmentTest):
    def test_a_file_that_does_not_load_raises_the_managers_load_error(self) -> None:
        with self.assertRaises(WorkflowLoadError) as caught:
            self.env("""
                WORKFLOW_NAME = "sync"
                def handler(inp, ctx):
                    return 1
            """)
        self.assertEqual(caught.exception.reason, "SyncHandler")
        self.assertTrue(str(caught.exception).startswith(os.path.join(self.dir, "flow.py") + ":"))

    def test_the_handler_gets_the_workers_own_ctx_with_every_public_method(self) -> None:
        run = self.env("""
            WORKFLOW_NAME = "ctx"
            async def handler(inp, ctx):
                return [type(ctx).__module__, type(ctx).__name__, [c.__name__ for c in type(ctx).__mro__]]
        """).start()
        module, name, mro = run.assert_succeeded()
        self.assertEqual((module, name), ("centaur_worker.handler", "HandlerContext"))
        self.assertIn("WorkflowContext", mro)
        from centaur_worker.handler import HandlerContext
        public = {n for n, _ in inspect.getmembers(WorkflowContext) if not n.startswith("_")}
        for method in sorted(public):
            self.assertEqual(inspect.signature(getattr(WorkflowContext, method)) if callable(getattr(WorkflowContext, method)) else None,
                             inspect.signature(getattr(HandlerContext, method)) if callable(getattr(HandlerContext, method)) else None,
                             method)


class ProductExample(unittest.TestCase):
    def test_the_documented_github_issue_triage_test_passes(self) -> None:
        """workflows/test_github_issue_triage.py is docs/cli.md's example: it must run green."""
        workflows = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "workflows")
        suite = unittest.defaultTestLoader.discover(workflows, pattern="test_github_issue_triage.py", top_level_dir=workflows)
        result = unittest.TestResult()
        suite.run(result)
        self.assertEqual(result.testsRun, 2)
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)


if __name__ == "__main__":
    unittest.main()
