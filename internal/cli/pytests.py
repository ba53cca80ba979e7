"""centaur test's runner of Python test files under unittest (internal/cli/test.go).

Usage: python3 -B pytests.py FILE... with fd 3 open for writing. Each FILE is imported as a
module of its directory (the working directory, on sys.path) and its unittest tests run; every
test's outcome is one JSON line on fd 3:

    {"file": FILE, "test": "module.Class.test_x", "outcome": "pass"|"fail"|"error"|"skip",
     "detail": TRACEBACK_OR_REASON, "seconds": FLOAT}

Whatever the tests print goes to stdout and stderr, apart from the outcomes.
"""

import json
import os
import sys
import time
import traceback
import unittest

OUT = os.fdopen(3, "w", buffering=1)


class Result(unittest.TestResult):
    """Writes each test's outcome as it happens."""

    def __init__(self, file):
        super().__init__()
        self.file = file
        self.started = time.monotonic()

    def emit(self, test, outcome, detail=""):
        OUT.write(json.dumps({"file": self.file, "test": test.id(), "outcome": outcome, "detail": detail,
                              "seconds": time.monotonic() - self.started}) + "\n")

    def startTest(self, test):
        super().startTest(test)
        self.started = time.monotonic()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.emit(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.emit(test, "fail", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self.emit(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.emit(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.emit(test, "pass", "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.emit(test, "fail", "unexpected success of a test marked expectedFailure")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.emit(subtest, "fail" if issubclass(err[0], test.failureException) else "error",
                      self._exc_info_to_string(err, test))


def main():
    for file in sys.argv[1:]:
        module = os.path.splitext(os.path.basename(file))[0]
        result = Result(file)
        try:
            suite = unittest.defaultTestLoader.loadTestsFromName(module)
        except BaseException:
            OUT.write(json.dumps({"file": file, "test": module, "outcome": "error",
                                  "detail": traceback.format_exc(), "seconds": 0}) + "\n")
            continue
        suite.run(result)


if __name__ == "__main__":
    main()
