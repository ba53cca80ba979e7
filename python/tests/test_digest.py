"""The revision digest of PROTOCOL.md, against a bundle whose digest is worked out by hand."""

from __future__ import annotations

import hashlib
import unittest

from centaur_worker.loader import bundle_digest

# Paths in code-point order: "_util.py" < "nightly_report.py" < "pkg/__init__.py" < "é.py".
FILES = {
    "nightly_report.py": 'WORKFLOW_NAME = "nightly_report"\n',
    "_util.py": "X = '\u00fc'\n",  # 8 characters, 9 bytes of UTF-8
    "pkg/__init__.py": "",
    "\u00e9.py": "x",
}
HAND_WRITTEN = (
    b"centaur-python-revision/1\x00dir\x00nightly_report.py\x00"
    b"_util.py\x009\x00X = '\xc3\xbc'\n"
    b'nightly_report.py\x0033\x00WORKFLOW_NAME = "nightly_report"\n'
    b"pkg/__init__.py\x000\x00"
    b"\xc3\xa9.py\x001\x00x"
)
DIGEST = "283f0ff4100c986bf5b06a6e54b4bd33b277c5dcd22713eb1f4420e326d87bb8"  # sha256 of HAND_WRITTEN


class Digest(unittest.TestCase):
    def test_the_digest_hashes_the_bundle_as_written(self) -> None:
        self.assertEqual(bundle_digest("dir", "nightly_report.py", FILES), hashlib.sha256(HAND_WRITTEN).hexdigest())

    def test_the_digest_is_stable(self) -> None:
        self.assertEqual(bundle_digest("dir", "nightly_report.py", FILES), DIGEST)

    def test_origin_entry_and_text_all_count(self) -> None:
        digest = bundle_digest("dir", "nightly_report.py", FILES)
        self.assertNotEqual(bundle_digest("definition", "nightly_report.py", FILES), digest)
        self.assertNotEqual(bundle_digest("dir", "_util.py", FILES), digest)
        self.assertNotEqual(bundle_digest("dir", "nightly_report.py", dict(FILES, **{"pkg/__init__.py": " "})), digest)


if __name__ == "__main__":
    unittest.main()
