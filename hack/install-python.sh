#!/usr/bin/env bash
# Makes sure a CPython 3.9 or later is available for Python workflow files (the manager's
# worker processes, package pyworker) and for the Python package's own unit tests, and prints
# its path and version.
#
#   - python3 on PATH, at 3.9 or later: use it.
#   - Otherwise, as root with apt-get (CI, a fresh Debian machine): install Debian's `python3`
#     package (standard library only: nothing comes from a Python package index).
#   - Otherwise: fail with the one command to run.
#   - Then, best effort: as root, install Debian's python3-pytest too, so that `make test` also
#     runs the Python tests (and api.testing) under pytest; without it they run under unittest.
#
# `make test` runs it before the tests; the tests and the manager find the interpreter the same
# way (--python-interpreter, default python3 on PATH).
set -euo pipefail

usable() {
	"$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null
}

find_python() {
	local candidate
	candidate=$(command -v python3) && usable "${candidate}" && echo "${candidate}"
}

report() {
	echo "python: $1 ($("$1" -c 'import platform; print(platform.python_version())'))"
}

has_pytest() {
	python3 -m pytest --version >/dev/null 2>&1 || /usr/bin/python3 -m pytest --version >/dev/null 2>&1
}

# try_pytest installs Debian's python3-pytest when it can; pytest is optional, so it never fails.
try_pytest() {
	has_pytest || apt_install python3-pytest || echo "python3-pytest: not installed: the Python tests run under unittest only"
}

source "$(dirname "$0")/apt-install.sh"

if path=$(find_python); then
	report "${path}"
	try_pytest
	exit 0
fi

status=0
apt_install python3 || status=$?
if [[ ${status} == 0 ]]; then
	report "$(find_python)"
	try_pytest
	exit 0
elif [[ ${status} == 1 ]]; then
	exit 1
fi

cat >&2 <<'MSG'
python: no python3 of version 3.9 or later, and this user cannot install one. Install it once with:

    sudo apt-get install -y python3

or put a CPython 3.9+ first on PATH as python3 (the manager takes another with
--python-interpreter).
MSG
exit 1
