#!/usr/bin/env bash
# Makes sure a CPython 3.9 or later is available for Python workflow files (the manager's
# worker processes, package pyworker) and for the Python package's own unit tests, and prints
# its path and version.
#
#   - PYTHON set, or python3 on PATH, at 3.9 or later: use it.
#   - Otherwise, as root with apt-get (CI, a fresh Debian machine): install Debian's `python3`
#     package (standard library only: nothing comes from a Python package index).
#   - Otherwise: fail with the one command to run.
#
# `make test` runs it before the tests; the tests and the manager find the interpreter the same
# way (--python-interpreter, default python3 on PATH).
set -euo pipefail

usable() {
	"$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null
}

find_python() {
	local candidate
	for candidate in "${PYTHON:-}" "$(command -v python3 || true)"; do
		if [[ -n "${candidate}" ]] && usable "${candidate}"; then
			echo "${candidate}"
			return 0
		fi
	done
	return 1
}

report() {
	echo "python: $1 ($("$1" -c 'import platform; print(platform.python_version())'))"
}

if path=$(find_python); then
	report "${path}"
	exit 0
fi

if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
	echo "python: installing Debian's python3 package (apt-get install -y python3)"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends python3 >/tmp/install-python.log 2>&1; then
		apt-get update >>/tmp/install-python.log 2>&1
		apt-get install -y --no-install-recommends python3 >>/tmp/install-python.log 2>&1 || {
			tail -20 /tmp/install-python.log >&2
			echo "python: apt-get could not install it (log above, full log in /tmp/install-python.log)" >&2
			exit 1
		}
	fi
	path=$(find_python)
	report "${path}"
	exit 0
fi

cat >&2 <<'MSG'
python: no python3 of version 3.9 or later, and this user cannot install one. Install it once with:

    sudo apt-get install -y python3

or point PYTHON at a CPython 3.9+ interpreter.
MSG
exit 1
