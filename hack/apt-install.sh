# Sourced by hack/install-*.sh: apt_install installs one Debian package when this runs as root
# on a machine with apt-get, refreshing a missing or stale package list once (the usual reason
# an install fails), and logs to /tmp/install-PACKAGE.log. It returns 2 when it cannot try (not
# root, or no apt-get), 1 when apt-get failed (the log's tail printed), 0 when it installed.

apt_install() {
	local package=$1 log=/tmp/install-$1.log
	if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null; then
		return 2
	fi
	echo "${package}: installing Debian's ${package} package (apt-get install -y ${package})"
	export DEBIAN_FRONTEND=noninteractive
	if apt-get install -y --no-install-recommends "${package}" >"${log}" 2>&1; then
		return 0
	fi
	apt-get update >>"${log}" 2>&1
	if apt-get install -y --no-install-recommends "${package}" >>"${log}" 2>&1; then
		return 0
	fi
	tail -20 "${log}" >&2
	echo "${package}: apt-get could not install it (log above, full log in ${log})" >&2
	return 1
}
