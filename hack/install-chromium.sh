#!/usr/bin/env bash
# Makes sure headless Chromium is available for the console's browser specs
# (webhookserver/console, driven by github.com/chromedp/chromedp), and prints its path.
#
#   - CHROMIUM set, or chromium / chromium-browser on PATH: use it.
#   - Otherwise, as root with apt-get (CI, a fresh Debian machine): install Debian's
#     `chromium` package.
#   - Otherwise: fail with the one command to run, unless SKIP_BROWSER=1, in which case it
#     says that the browser specs will be skipped and succeeds.
#
# `make test` runs it before the tests; the tests find the browser the same way (CHROMIUM, then
# PATH), so a browser installed elsewhere only needs CHROMIUM=/path/to/chromium.
set -euo pipefail

find_chromium() {
	if [[ -n "${CHROMIUM:-}" && -x "${CHROMIUM}" ]]; then
		echo "${CHROMIUM}"
		return 0
	fi
	command -v chromium || command -v chromium-browser || return 1
}

if path=$(find_chromium); then
	echo "chromium: ${path}"
	exit 0
fi

if [[ "${SKIP_BROWSER:-}" == "1" ]]; then
	echo "chromium: not installed; SKIP_BROWSER=1, so the console's browser specs will be skipped"
	exit 0
fi

if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
	echo "chromium: installing Debian's chromium package (apt-get install -y chromium)"
	export DEBIAN_FRONTEND=noninteractive
	# A missing or stale package list is the usual reason the install fails; refresh it once.
	if ! apt-get install -y --no-install-recommends chromium >/tmp/install-chromium.log 2>&1; then
		apt-get update >>/tmp/install-chromium.log 2>&1
		apt-get install -y --no-install-recommends chromium >>/tmp/install-chromium.log 2>&1 || {
			tail -20 /tmp/install-chromium.log >&2
			echo "chromium: apt-get could not install it (log above, full log in /tmp/install-chromium.log)" >&2
			exit 1
		}
	fi
	path=$(find_chromium)
	echo "chromium: ${path}"
	exit 0
fi

cat >&2 <<'MSG'
chromium: not found, and this user cannot install it. Install it once with:

    sudo apt-get install -y chromium

or point CHROMIUM at a Chromium or Chrome binary, or run with SKIP_BROWSER=1 to skip the
console's browser specs.
MSG
exit 1
