"""The api package: argument checks, defaults, presets, exceptions."""

from __future__ import annotations

import ast
import os
import unittest
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Tuple

from api.webhooks import BodyTriggerKey, HeaderTriggerKey, HmacAuth, InvalidWebhook, TokenAuth, WebhookSpec
from api.workflow_engine import (
    DEFAULT_VERSION,
    AgentFailed,
    ChildWorkflowFailed,
    InvalidSchedule,
    Misuse,
    NonRetryableError,
    RetryPolicy,
    Schedule,
    StepFailed,
    WorkflowContext,
)
from tests.fakemanager import PYTHON_DIR


class RecordingContext(WorkflowContext):
    """A ctx whose primitives return the call they would record."""

    __slots__ = ()

    def _primitive(self, method: str, call: Dict[str, Any], fns: Tuple[Callable[[], Any], ...] = ()) -> Any:
        return call

    def _unnamed_agent_turn(self) -> str:
        return "agent-turn-1"


ctx: Any = RecordingContext()


class Calls(unittest.TestCase):
    def test_step(self) -> None:
        async def fetch() -> int:
            return 1

        self.assertEqual(ctx.step("a", fetch, retry=RetryPolicy(max_attempts=5, initial_backoff="1s", multiplier=3,
                                                               max_backoff=timedelta(minutes=2), non_retryable_error_types=["KeyError"]),
                                  timeout="1m30s", batched=True),
                         {"kind": "step", "name": "a", "retry": {"max_attempts": 5, "initial_backoff": 1.0, "multiplier": 3.0,
                                                                "max_backoff": 120.0, "non_retryable_error_types": ["KeyError"]},
                          "timeout": 90.0, "batched": True, "async": True})
        self.assertEqual(ctx.step("b", lambda: 1, retry=1)["retry"]["max_attempts"], 1)

    def test_durations_and_times(self) -> None:
        for duration, seconds in ((timedelta(seconds=30), 30.0), ("500ms", 0.5), ("2h", 7200.0), ("1m30s", 90.0), (5, 5.0), (0.25, 0.25), ("0", 0.0)):
            self.assertEqual(ctx.sleep("s", duration)["seconds"], seconds)
        self.assertEqual(ctx.sleep_until("s", datetime(2026, 12, 1, 3, 0, tzinfo=timezone(timedelta(hours=1))))["until"], "2026-12-01T02:00:00.000000Z")
        self.assertEqual(ctx.sleep_until("s", "2026-12-01T02:00:00.5+00:00")["until"], "2026-12-01T02:00:00.500000Z")

    def test_other_primitives(self) -> None:
        self.assertEqual(ctx.wait_for_event("w", "approved", "order-1", timeout=60),
                         {"kind": "wait_for_event", "name": "w", "event_type": "approved", "correlation_id": "order-1", "timeout": 60.0})
        self.assertEqual(ctx.send_event("e", "done", payload={"ok": True}),
                         {"kind": "send_event", "name": "e", "event_type": "done", "correlation_id": "", "payload": {"ok": True}})
        self.assertEqual(ctx.start_workflow("c", "child", {"x": 1}), {"kind": "start_workflow", "name": "c", "workflow_name": "child", "input": {"x": 1}})
        self.assertEqual(ctx.wait_for_workflow("c/wait", "run-1"), {"kind": "wait_for_workflow", "name": "c/wait", "run_id": "run-1"})
        self.assertEqual(ctx.run_workflow("c", "child")["input"], None)
        self.assertEqual(ctx.start_agent("a", "hi", agent="writer", model="m", temperature=0.2, max_tokens=100)["request"],
                         {"prompt": "hi", "agent": "writer", "thread_key": "", "instructions": "", "model": "m", "temperature": 0.2, "max_tokens": 100})
        self.assertEqual(ctx.wait_for_agent("a/wait", "turn-1"), {"kind": "wait_for_agent", "name": "a/wait", "turn_id": "turn-1"})
        self.assertEqual(ctx.agent_turn("hi", thread_key="t")["name"], "agent-turn-1")
        self.assertEqual(ctx.get_version("c", DEFAULT_VERSION, 1), {"kind": "get_version", "change_id": "c", "min_supported": -1, "max_supported": 1})
        self.assertEqual(ctx.parallel([("a", len), ["b", len]])["branches"], [{"name": "a", "async": False}, {"name": "b", "async": False}])

    def test_bad_arguments(self) -> None:
        cases = [
            (lambda: ctx.step("", lambda: 1), ValueError, "ctx.step: name must not be empty"),
            (lambda: ctx.step(3, lambda: 1), TypeError, "name must be a string, got int"),
            (lambda: ctx.step("a", 42), TypeError, "the step function must be callable"),
            (lambda: ctx.step("a", len, retry=0), ValueError, "at least 1"),
            (lambda: ctx.step("a", len, retry="3"), TypeError, "retry must be RetryPolicy(...)"),
            (lambda: ctx.step("a", len, timeout=0), ValueError, "timeout must be above zero"),
            (lambda: ctx.step("a", len, batched=1), TypeError, "batched must be True or False"),
            (lambda: ctx.sleep("s", -1), ValueError, "must be zero or more"),
            (lambda: ctx.sleep("s", "soon"), ValueError, '"soon" is not a duration'),
            (lambda: ctx.sleep("s", True), TypeError, "must be a duration"),
            (lambda: ctx.sleep("s", float("inf")), ValueError, "finite"),
            (lambda: ctx.sleep_until("s", datetime(2026, 1, 1)), ValueError, "naive datetime"),
            (lambda: ctx.sleep_until("s", "tomorrow"), ValueError, "not an RFC 3339 time"),
            (lambda: ctx.wait_for_event("w", "", "c"), ValueError, "event_type must not be empty"),
            (lambda: ctx.parallel([("a", len), ("a", len)]), ValueError, 'two branches are named "a"'),
            (lambda: ctx.parallel(["ab"]), TypeError, "must be a (name, function) pair"),
            (lambda: ctx.get_version("c", 2, 1), ValueError, "at most the maximum"),
            (lambda: ctx.get_version("c", -2, 1), ValueError, "at least DEFAULT_VERSION"),
            (lambda: ctx.start_agent("a", "hi", temperature="hot"), TypeError, "temperature must be a number"),
            (lambda: ctx.agent_turn("hi", name=""), ValueError, "name must not be empty"),
        ]
        for call, kind, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(kind) as caught:
                    call()
                self.assertIn(message, str(caught.exception))

    def test_a_plain_context_works_only_in_the_worker(self) -> None:
        with self.assertRaises(Misuse):
            WorkflowContext().now()


class Declarations(unittest.TestCase):
    def test_retry_policy(self) -> None:
        self.assertEqual(RetryPolicy(), RetryPolicy())
        self.assertEqual(RetryPolicy(non_retryable_error_types=["A"]).non_retryable_error_types, ("A",))
        for kwargs, message in (({"max_attempts": 0}, "at least 1"), ({"multiplier": 0.5}, "at least 1"),
                                ({"initial_backoff": "-1s"}, "above zero"), ({"non_retryable_error_types": "ValueError"}, "list of class names")):
            with self.subTest(kwargs=kwargs), self.assertRaises((TypeError, ValueError)) as caught:
                RetryPolicy(**kwargs)
            self.assertIn(message, str(caught.exception))

    def test_schedule(self) -> None:
        schedule = Schedule(cron="0 2 * * *")
        self.assertEqual((schedule.time_zone, schedule.input, schedule.name, schedule.concurrency_policy, schedule.catch_up,
                          schedule.max_catch_up, schedule.starting_deadline, schedule.jitter), ("", None, "", "", "", 0, None, None))
        for kwargs, message in (({"cron": ""}, "cron is empty"), ({"cron": "@daily", "catch_up": "Some"}, "want None, Latest or All"),
                                ({"cron": "@daily", "max_catch_up": -1}, "cannot be negative"), ({"cron": "@daily", "jitter": "x"}, "not a duration"),
                                ({"cron": 5}, "cron must be a string")):
            with self.subTest(kwargs=kwargs), self.assertRaises(InvalidSchedule) as caught:
                Schedule(**kwargs)
            self.assertIn(message, str(caught.exception))
        self.assertTrue(issubclass(InvalidSchedule, ValueError))

    def test_webhook_presets(self) -> None:
        self.assertEqual(HmacAuth.github("GITHUB_WEBHOOK_SECRET"), HmacAuth("GITHUB_WEBHOOK_SECRET", header="", scheme="github"))
        self.assertEqual(HmacAuth.standard_webhooks("hooks/key").scheme, "standard-webhooks")
        plain = HmacAuth(secret_ref="stripe-webhook/secret")
        self.assertEqual((plain.scheme, plain.header, plain.prefix), ("hmac", "X-Signature", ""))
        spec = WebhookSpec(slug="deploys", auth="none", allowed_methods=["POST", "PUT"], trigger_key="X-Id")
        self.assertEqual((spec.allowed_methods, spec.allowed_content_types, spec.replay_protection), (("POST", "PUT"), None, None))
        self.assertEqual(WebhookSpec(slug="gh", provider="github").auth, None)
        stripe = HmacAuth.stripe("STRIPE_WEBHOOK_SECRET")
        self.assertEqual((stripe.header, stripe.signature_key, stripe.timestamp_key, stripe.signed_template, stripe.timestamp_tolerance),
                         ("Stripe-Signature", "v1", "t", "{timestamp}.{body}", 300.0))
        self.assertEqual(HmacAuth.shopify("s").encoding, "base64")
        self.assertEqual(TokenAuth.gitlab("GITLAB_TOKEN"), TokenAuth("GITLAB_TOKEN", header="X-Gitlab-Token"))
        self.assertEqual(HmacAuth("s", timestamp_tolerance=timedelta(minutes=2)).timestamp_tolerance, 120.0)
        spec = WebhookSpec(slug="stripe", auth=stripe, trigger_key=BodyTriggerKey("id"))
        self.assertEqual(spec.trigger_key, BodyTriggerKey("id"))

    def test_webhook_validation(self) -> None:
        cases = [
            (lambda: WebhookSpec(slug="Upper", auth="none"), 'webhook slug "Upper"'),
            (lambda: WebhookSpec(slug="a" * 64, auth="none"), "at most 63 characters"),
            (lambda: WebhookSpec(slug="x", auth="basic"), 'the only string auth is "none"'),
            (lambda: WebhookSpec(slug="x", provider="stripe"), "no auth: use auth=HmacAuth.github"),
            (lambda: WebhookSpec(slug="x", auth=42), "auth must be HmacAuth"),
            (lambda: WebhookSpec(slug="x", auth="none", allowed_methods="POST"), "must be a list of strings"),
            (lambda: WebhookSpec(slug="x", auth="none", replay_protection="never"), "replay_protection 'never'"),
            (lambda: WebhookSpec(slug="x", auth="none", trigger_key=3), "trigger_key must be HeaderTriggerKey"),
            (lambda: WebhookSpec(slug="x", auth="none", webhook_only="yes"), "webhook_only must be True or False"),
            (lambda: HmacAuth("not a ref!"), "neither an environment variable name"),
            (lambda: HmacAuth("s", scheme="jwt"), 'unknown scheme "jwt"'),
            (lambda: HeaderTriggerKey(""), "the header name is empty"),
            (lambda: HmacAuth("s", algorithm="md5"), 'algorithm "md5"'),
            (lambda: HmacAuth("s", encoding="base32"), 'encoding "base32"'),
            (lambda: HmacAuth("s", timestamp_tolerance=-1), "timestamp_tolerance must be seconds"),
            (lambda: TokenAuth("s", header=""), "the header the token comes in is empty"),
            (lambda: BodyTriggerKey("a..b"), "dotted path"),
        ]
        for make, message in cases:
            with self.subTest(message=message), self.assertRaises(InvalidWebhook) as caught:
                make()
            self.assertIn(message, str(caught.exception))
        self.assertTrue(issubclass(InvalidWebhook, ValueError))


class Exceptions(unittest.TestCase):
    def test_messages_and_attributes(self) -> None:
        failed = StepFailed("fetch", 3, "timeout", "TimeoutError")
        self.assertEqual(str(failed), 'step "fetch" failed after 3 attempt(s): timeout (error type TimeoutError)')
        self.assertEqual((failed.step, failed.attempts, failed.message, failed.error_type), ("fetch", 3, "timeout", "TimeoutError"))
        child = ChildWorkflowFailed("run-1", "StepFailed", "boom")
        self.assertEqual((str(child), child.child, child.reason), ("child run run-1 failed: StepFailed: boom", "run-1", "StepFailed"))
        agent = AgentFailed("turn-1", "Timeout", "slow")
        self.assertEqual((str(agent), agent.turn), ("agent turn turn-1 failed: Timeout: slow", "turn-1"))
        self.assertTrue(issubclass(NonRetryableError, Exception))
        self.assertFalse(issubclass(Misuse, Exception))
        self.assertEqual(DEFAULT_VERSION, -1)


class Python39(unittest.TestCase):
    def test_the_sources_parse_as_python_3_9(self) -> None:
        for package in ("api", "centaur_worker", "tests"):
            for name in os.listdir(os.path.join(PYTHON_DIR, package)):
                if name.endswith(".py"):
                    path = os.path.join(PYTHON_DIR, package, name)
                    with open(path, encoding="utf-8") as f, self.subTest(path=path):
                        ast.parse(f.read(), path, feature_version=(3, 9))


if __name__ == "__main__":
    unittest.main()
