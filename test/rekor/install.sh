#!/usr/bin/env bash
# Installs what the local Rekor harness needs from Debian (MariaDB) and builds
# the pinned Trillian and rekor-server binaries (cached).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v mariadbd >/dev/null 2>&1 && [[ ! -x /usr/sbin/mariadbd ]]; then
	sudo=""
	if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
	$sudo apt-get update
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends mariadb-server
	# The package may start a system-wide server; the harness runs its own.
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mariadb 2>/dev/null; then
		$sudo systemctl stop mariadb || true
	fi
fi

"$here/../tools/build-rekor.sh"
