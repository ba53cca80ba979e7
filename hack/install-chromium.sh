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

source "$(dirname "$0")/apt-install.sh"
status=0
apt_install chromium || status=$?
if [[ ${status} == 0 ]]; then
	path=$(find_chromium)
	echo "chromium: ${path}"
	exit 0
elif [[ ${status} == 1 ]]; then
	exit 1
fi

cat >&2 <<'MSG'
chromium: not found, and this user cannot install it. Install it once with:

    sudo apt-get install -y chromium

or point CHROMIUM at a Chromium or Chrome binary, or run with SKIP_BROWSER=1 to skip the
console's browser specs.
MSG
exit 1
