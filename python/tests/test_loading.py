"""Loading revisions in this process: declarations, load failures, import isolation."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import unittest
from typing import Dict, List, Optional

from centaur_worker.loader import LoadError, Revision, load_revision
from tests.fakemanager import digest_of, testdata


class LoadingTest(unittest.TestCase):
    def setUp(self) -> None:
        self.loaded: List[Revision] = []

    def tearDown(self) -> None:
        for revision in self.loaded:
            revision.unload()

    def load(self, files: Dict[str, str], entry: Optional[str] = None, directory: str = "/abs/dir") -> Revision:
        entry = entry or next(iter(files))
        files = {path: textwrap.dedent(text) for path, text in files.items()}
        revision = load_revision(digest_of("dir", entry, files), None, directory, {"origin": "dir", "entry": entry, "files": files})
        self.loaded.append(revision)
        return revision

    def load_error(self, files: Dict[str, str], entry: Optional[str] = None) -> LoadError:
        with self.assertRaises(LoadError) as caught:
            self.load(files, entry)
        return caught.exception

    def workflow(self, source: str) -> dict:
        import json
        return json.loads(self.load({"wf.py": source}).workflow_json)


class ProductExamples(LoadingTest):
    def test_nightly_report(self) -> None:
        revision = self.load({"nightly_report.py": testdata("nightly_report.py")})
        self.assertEqual(revision.workflow_json, (
            '{"name":"nightly_report","description":"","example_input":{"channel":"","topic":""},'
            '"input":[{"name":"channel","type":"str","required":true},{"name":"topic","type":"str","required":true}],'
            '"webhooks":[],"schedules":[],"namespaces":null}'))

    def test_github_issue_triage(self) -> None:
        revision = self.load({"github_issue_triage.py": testdata("github_issue_triage.py")})
        self.assertEqual(revision.workflow_json, (
            '{"name":"github_issue_triage","description":"","example_input":null,"input":null,"webhooks":[{'
            '"slug":"github-issue-triage","provider":"github",'
            '"auth":{"scheme":"github","secret_ref":"GITHUB_WEBHOOK_SECRET","header":"","prefix":""},'
            '"trigger_key":"X-GitHub-Delivery","allowed_methods":["POST"],'
            '"allowed_content_types":["application/json","application/x-www-form-urlencoded"],'
            '"replay_protection":null,"webhook_only":false}],"schedules":[],"namespaces":null}'))


class Declarations(LoadingTest):
    def test_description_example_input_schedules_and_namespaces(self) -> None:
        info = self.workflow('''
            """Reports on a topic.

            More words."""
            from api.workflow_engine import Schedule
            WORKFLOW_NAME = "w"
            EXAMPLE_INPUT = {"topic": "x"}
            SCHEDULES = [Schedule(cron="0 2 * * *", time_zone="Europe/Berlin", input={"topic": "nightly"},
                                  name="night", concurrency_policy="Forbid", starting_deadline="6h", jitter=30)]
            NAMESPACES = ["team-a", "team-b"]
            async def handler(inp, ctx):
                pass
        ''')
        self.assertEqual(info["description"], "Reports on a topic.\n\nMore words.")
        self.assertEqual(info["example_input"], {"topic": "x"})
        self.assertEqual(info["schedules"], [{"cron": "0 2 * * *", "time_zone": "Europe/Berlin", "input": {"topic": "nightly"},
                                              "name": "night", "concurrency_policy": "Forbid", "catch_up": "", "max_catch_up": 0,
                                              "starting_deadline": 21600.0, "jitter": 30.0}])
        self.assertEqual(info["namespaces"], ["team-a", "team-b"])
        self.assertEqual(self.workflow('WORKFLOW_NAME = "w"\nDESCRIPTION = "  Said.  "\nasync def handler(i, c): pass')["description"], "Said.")

    def test_input_fields_are_written_canonically(self) -> None:
        info = self.workflow('''
            from __future__ import annotations
            import typing
            from dataclasses import dataclass, field
            from typing import Any, Dict, List, Optional, Union
            WORKFLOW_NAME = "w"
            @dataclass
            class Input:
                name: str
                count: int
                ratio: float
                on: bool
                anything: Any
                tags: list[str]
                plain: list
                table: dict[str, List[int]]
                legacy: Dict[str, Any]
                maybe: Optional[int] = None
                either: str | None = "x"
                union: Union[float, None] = 1.5
                items: typing.List[dict] = field(default_factory=lambda: [{"a": 1}])
            async def handler(inp, ctx):
                pass
        ''')
        self.assertEqual([(f["name"], f["type"], f["required"], f.get("default", "-")) for f in info["input"]], [
            ("name", "str", True, "-"), ("count", "int", True, "-"), ("ratio", "float", True, "-"), ("on", "bool", True, "-"),
            ("anything", "Any", True, "-"), ("tags", "list[str]", True, "-"), ("plain", "list[Any]", True, "-"),
            ("table", "dict[str, list[int]]", True, "-"), ("legacy", "dict[str, Any]", True, "-"),
            ("maybe", "Optional[int]", False, None), ("either", "Optional[str]", False, "x"),
            ("union", "Optional[float]", False, 1.5), ("items", "list[dict[str, Any]]", False, [{"a": 1}]),
        ])
        self.assertEqual(info["example_input"], {
            "name": "", "count": 0, "ratio": 0.0, "on": False, "anything": None, "tags": [], "plain": [], "table": {},
            "legacy": {}, "maybe": None, "either": "x", "union": 1.5, "items": [{"a": 1}]})

    def test_an_input_is_built_from_its_object(self) -> None:
        revision = self.load({"wf.py": testdata("nightly_report.py")})
        assert revision.input is not None
        inp = revision.input.build({"channel": "ops", "topic": "t"})
        self.assertEqual((type(inp).__name__, inp.channel, inp.topic), ("Input", "ops", "t"))


class Failures(LoadingTest):
    def assertFailure(self, error: LoadError, reason: str, file: str, line: int, column: int, message: str) -> None:
        self.assertEqual((error.reason, error.file, error.line, error.column), (reason, file, line, column), error.message)
        self.assertIn(message, error.message)

    def test_syntax_errors_in_the_file_and_in_helpers(self) -> None:
        error = self.load_error({"wf.py": 'WORKFLOW_NAME = "w"\nasync def handler(inp, ctx)\n    pass\n'})
        self.assertFailure(error, "SyntaxError", "/abs/dir/wf.py", 2, 28, "expected ':'")
        error = self.load_error({"wf.py": "import _util\n", "_util.py": "x = (1,\n"})
        self.assertFailure(error, "SyntaxError", "/abs/dir/_util.py", 1, 5, "was never closed")

    def test_import_errors_name_the_missing_module(self) -> None:
        error = self.load_error({"wf.py": 'import json\nimport no_such_module_here\n'})
        self.assertFailure(error, "ImportError", "/abs/dir/wf.py", 2, 1, "No module named 'no_such_module_here'")
        error = self.load_error({"wf.py": "from pkg import missing\n", "pkg/__init__.py": ""})
        self.assertFailure(error, "ImportError", "/abs/dir/wf.py", 1, 1, "cannot import name 'missing' from 'pkg'")

    def test_a_top_level_that_raises_points_at_the_innermost_line(self) -> None:
        error = self.load_error({"wf.py": "import _util\n", "_util.py": "def f():\n    return 1 / 0\nf()\n"})
        self.assertFailure(error, "LoadFailed", "/abs/dir/_util.py", 2, 12, "ZeroDivisionError: division by zero")
        self.assertIn('File "/abs/dir/_util.py", line 2, in f\n    return 1 / 0', error.traceback)

    def test_missing_declarations(self) -> None:
        self.assertFailure(self.load_error({"wf.py": "async def handler(inp, ctx): pass\n"}),
                           "MissingWorkflowName", "/abs/dir/wf.py", 0, 0, "add WORKFLOW_NAME")
        self.assertFailure(self.load_error({"wf.py": 'WORKFLOW_NAME = "bad name"\n'}),
                           "MissingWorkflowName", "/abs/dir/wf.py", 1, 1, "letters, digits")
        self.assertFailure(self.load_error({"wf.py": 'WORKFLOW_NAME = "w"\n'}),
                           "MissingHandler", "/abs/dir/wf.py", 0, 0, "async def handler(inp, ctx)")
        self.assertFailure(self.load_error({"wf.py": 'WORKFLOW_NAME = "w"\n\nasync def handler(inp):\n    pass\n'}),
                           "MissingHandler", "/abs/dir/wf.py", 3, 1, "two parameters")

    def test_a_plain_def_handler(self) -> None:
        error = self.load_error({"wf.py": 'WORKFLOW_NAME = "w"\ndef handler(inp, ctx):\n    return 1\n'})
        self.assertFailure(error, "SyncHandler", "/abs/dir/wf.py", 2, 1, "write async def handler(inp, ctx)")

    def test_invalid_declarations(self) -> None:
        error = self.load_error({"wf.py": '''
            from api.webhooks import WebhookSpec
            WORKFLOW_NAME = "w"
            WEBHOOKS = [WebhookSpec(slug="Not A Slug", auth="none")]
        '''})
        self.assertFailure(error, "InvalidWebhook", "/abs/dir/wf.py", 4, 13, 'webhook slug "Not A Slug"')
        error = self.load_error({"wf.py": '''
            from api.workflow_engine import Schedule
            WORKFLOW_NAME = "w"
            SCHEDULES = [Schedule(cron="@daily", concurrency_policy="Sometimes")]
        '''})
        self.assertFailure(error, "InvalidSchedule", "/abs/dir/wf.py", 4, 14, "want Allow, Forbid or Replace")
        error = self.load_error({"wf.py": '''
            from dataclasses import dataclass
            WORKFLOW_NAME = "w"
            @dataclass
            class Input:
                when: set
            async def handler(inp, ctx): pass
        '''})
        self.assertFailure(error, "InvalidInputDeclaration", "/abs/dir/wf.py", 5, 1, 'Input field "when": the type set is not supported')
        error = self.load_error({"wf.py": 'from api.webhooks import WebhookSpec\nWORKFLOW_NAME = "w"\nWEBHOOKS = [WebhookSpec("a", auth="none")] * 2\nasync def handler(i, c): pass\n'})
        self.assertFailure(error, "InvalidWebhook", "/abs/dir/wf.py", 3, 1, 'declares the slug "a" twice')

    def test_the_digest_and_revision_name_are_checked(self) -> None:
        files = {"wf.py": 'WORKFLOW_NAME = "w"\nasync def handler(i, c): pass\n'}
        with self.assertRaises(LoadError) as caught:
            load_revision("0" * 64, None, "/d", {"origin": "dir", "entry": "wf.py", "files": files})
        self.assertEqual(caught.exception.reason, "DigestMismatch")
        with self.assertRaises(LoadError) as caught:
            load_revision(digest_of("dir", "wf.py", files), "w-000000000000", "/d", {"origin": "dir", "entry": "wf.py", "files": files})
        self.assertEqual(caught.exception.reason, "DigestMismatch")


class Isolation(LoadingTest):
    ENTRY = '''
        import _util
        from pkg.sub import where
        from api.workflow_engine import WorkflowContext
        WORKFLOW_NAME = "w"
        async def handler(inp, ctx):
            return [_util.VERSION, where(), WorkflowContext.__module__]
    '''

    def run_handler(self, revision: Revision) -> list:
        return asyncio.run(revision.handler(None, None))

    def test_each_revision_has_its_own_helpers(self) -> None:
        package = {"pkg/__init__.py": "", "pkg/sub.py": "from ._where import where\n", "pkg/_where.py": "def where():\n    return __name__\n"}
        one = self.load({"wf.py": self.ENTRY, "_util.py": "VERSION = 1\n", **package})
        two = self.load({"wf.py": self.ENTRY, "_util.py": "VERSION = 2\n", **package})
        first, second = self.run_handler(one), self.run_handler(two)
        self.assertEqual((first[0], second[0]), (1, 2))
        self.assertNotEqual(first[1], second[1])
        self.assertTrue(first[1].startswith("_centaur_rev_") and first[1].endswith(".pkg._where"), first[1])
        self.assertNotIn("_util", sys.modules)

    def test_a_bundle_directory_named_api_never_shadows_the_api_package(self) -> None:
        revision = self.load({"wf.py": self.ENTRY, "_util.py": "VERSION = 3\n", "pkg/__init__.py": "",
                              "pkg/sub.py": "def where():\n    return 'here'\n", "api/__init__.py": "raise RuntimeError('shadowed')\n",
                              "api/workflow_engine.py": "raise RuntimeError('shadowed')\n"})
        self.assertEqual(self.run_handler(revision), [3, "here", "api.workflow_engine"])

    def test_unloading_forgets_the_modules(self) -> None:
        revision = self.load({"wf.py": self.ENTRY, "_util.py": "VERSION = 1\n", "pkg/__init__.py": "", "pkg/sub.py": "def where(): pass\n"})
        names = [n for n in sys.modules if n.startswith("_centaur_rev_")]
        self.assertEqual(len(names), 5, names)  # the package, the entry, _util, pkg, pkg.sub
        revision.unload()
        self.loaded.remove(revision)
        self.assertEqual([n for n in sys.modules if n.startswith("_centaur_rev_")], [])


if __name__ == "__main__":
    unittest.main()
