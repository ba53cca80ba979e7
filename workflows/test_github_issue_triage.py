"""Offline test of github_issue_triage.py: a GitHub webhook envelope in, the agent turn mocked,
the output checked. Run it with `centaur test workflows/` (or, with the api package on
PYTHONPATH, `python3 -m unittest discover -s workflows -p 'test_*.py'`)."""

import os
import unittest

from api.testing import WorkflowEnvironment

WORKFLOW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "github_issue_triage.py")


def github_delivery(event: str) -> dict:
    """The input a run of the github-issue-triage webhook gets for one delivery."""
    return {
        "webhook": {
            "slug": "github-issue-triage",
            "provider": "github",
            "method": "POST",
            "path": "/api/webhooks/github-issue-triage",
            "headers": {"x-github-event": event, "x-github-delivery": "d-1"},
            "query": {},
            "body": {
                "action": "opened",
                "issue": {"number": 42, "title": "Crash on start"},
                "repository": {"full_name": "acme/api"},
            },
            "raw_body_sha256": "0" * 64,
            "source_ip": "203.0.113.10",
        }
    }


class GitHubIssueTriageTest(unittest.TestCase):
    def test_an_opened_issue_is_triaged_by_one_agent_turn(self):
        env = WorkflowEnvironment(WORKFLOW)
        env.mock_agent("agent-turn-1", "bug, priority high: the service crashes on start")

        run = env.start(github_delivery("issues"))

        self.assertEqual(run.assert_succeeded(), {
            "triaged": True,
            "agent_result": "bug, priority high: the service crashes on start",
        })
        [turn] = run.agent_requests
        self.assertEqual(turn["prompt"], "Triage GitHub issue acme/api#42: Crash on start")
        self.assertEqual(turn["thread_key"], "github:acme/api:42")
        self.assertEqual([e["name"] for e in run.journal], ["agent-turn-1", "agent-turn-1/result"])

    def test_other_events_are_skipped_without_asking_the_agent(self):
        run = WorkflowEnvironment(WORKFLOW).start(github_delivery("push"))

        self.assertEqual(run.assert_succeeded(), {"skipped": True, "reason": "unsupported_event"})
        self.assertEqual(run.journal, [])


if __name__ == "__main__":
    unittest.main()
