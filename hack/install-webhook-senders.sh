#!/usr/bin/env bash
# Installs the webhook providers' own npm libraries that webhookserver's tests sign deliveries
# with (test/webhook-senders: stripe, @shopify/shopify-api, @slack/events-api, @linear/sdk and
# @octokit/webhooks-methods, pinned by its package-lock.json), and prints what it found.
#
#   - node and npm on PATH, node 20 or later: use them.
#   - Otherwise, as root with apt-get (CI, a fresh Debian machine): install Debian's nodejs and
#     npm packages.
#   - Otherwise: fail with the command to run.
#
# The install is cached: `npm ci` runs only when node_modules is missing or was installed from
# another package-lock.json (a stamp in node_modules records the lock's SHA-256), so a second
# `make test` costs nothing here. Only the npm registry is contacted, and no install script of
# any package runs (--ignore-scripts).
set -euo pipefail
cd "$(dirname "$0")/../test/webhook-senders"
source ../../hack/apt-install.sh

node_usable() {
	command -v node >/dev/null && command -v npm >/dev/null &&
		node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'
}

if ! node_usable; then
	apt_install nodejs && apt_install npm || true
fi
if ! node_usable; then
	echo "webhook senders: node 20 or later and npm are needed for webhookserver's provider tests; install them (as root: apt-get install nodejs npm)" >&2
	exit 1
fi

stamp=node_modules/.centaur-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
	echo "webhook senders: installed (node $(node --version), $(du -sh node_modules | cut -f1) in test/webhook-senders/node_modules)"
	exit 0
fi
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
echo "${want}" >"${stamp}"
echo "webhook senders: installed (node $(node --version), $(du -sh node_modules | cut -f1) in test/webhook-senders/node_modules)"
