#!/usr/bin/env bash
# Makes (once) a Debian trixie root with Erlang/OTP 27 and rebar3 3.24 from
# Debian's packages, for the Erlang tests on the OTP that ocibuild requires
# (bookworm, the host, has OTP 25). Cached in
# ${OCISIGN_TOOLS_DIR:-$HOME/.cache/ocisign-tools}/trixie-root; a root is
# trusted only when its stamp lists exactly the packages below.
#
# The Debian mirror is the one this machine's apt already uses (its sources
# list), or OCISIGN_DEBIAN_MIRROR. Needs root (debootstrap, chroot).
# Prints the root's path on the last line of stdout.
set -euo pipefail

out="${OCISIGN_TOOLS_DIR:-$HOME/.cache/ocisign-tools}"
root="$out/trixie-root"
PACKAGES="erlang-nox erlang-dev erlang-eunit rebar3 git ca-certificates openssl"
stamp="$root/.ocisign-root"

if [[ -f "$stamp" && "$(cat "$stamp")" == "trixie $PACKAGES" ]]; then
	echo "$root"
	exit 0
fi

# The first http(s) Debian archive in apt's sources (deb822 or one-line form).
host_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f "$f" ]] || continue
		awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f "$f" ]] || continue
		awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' "$f"
	done
}
mirror="${OCISIGN_DEBIAN_MIRROR:-$(host_mirror | head -n 1)}"
if [[ -z "$mirror" ]]; then
	echo "make-root.sh: no Debian mirror in apt's sources; set OCISIGN_DEBIAN_MIRROR" >&2
	exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

mkdir -p "$out"
tmp="$(mktemp -d "$out/.trixie-root.XXXXXX")"
log="$out/.trixie-root.log"
start=$SECONDS
echo "make-root.sh: debootstrap trixie, then $PACKAGES (a few minutes, once)" >&2
fail() {
	echo "make-root.sh: $1 FAILED; last lines of $log:" >&2
	tail -n 30 "$log" >&2
	rm -rf "$tmp"
	exit 1
}
debootstrap --variant=minbase trixie "$tmp" "$mirror" >"$log" 2>&1 || fail debootstrap
# Inside the root: no service starts, no recommends (erlang-nox recommends
# GUI libraries that cannot be configured in a chroot). Mounts live in a
# private mount namespace and vanish with it.
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod 0755 "$tmp/usr/sbin/policy-rc.d"
unshare --mount --propagation private sh -c '
	mount -t proc proc "$1/proc" &&
	chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $2"
' sh "$tmp" "$PACKAGES" >>"$log" 2>&1 || fail "apt-get install in the root"
echo "trixie $PACKAGES" >"$tmp/.ocisign-root"
rm -rf "$root"
mv "$tmp" "$root"
echo "make-root.sh: made $root in $((SECONDS - start))s" >&2
echo "$root"
