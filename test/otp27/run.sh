#!/usr/bin/env bash
# Runs the Erlang tests (test/erlang/run.sh: EUnit, xref and the rebar3 flow
# with the ocibuild stand-in) on Erlang/OTP 27, the OTP ocibuild requires,
# inside the Debian trixie root that make-root.sh makes (the host, bookworm,
# has OTP 25). The root gets, at the same paths, the repository, /tmp, the
# Go toolchain and caches, the tools cache (cosign) and the host's
# docker-registry; everything is mounted in a private mount namespace that
# disappears with this script. Loopback is shared, so the tests' registry
# is the same as on the host. Needs root.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools_dir="${OCISIGN_TOOLS_DIR:-$HOME/.cache/ocisign-tools}"
root="$("$repo/test/otp27/make-root.sh" | tail -n 1)"
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
goroot="$(go env GOROOT)"
gomodcache="$(go env GOMODCACHE)"
gocache="$(go env GOCACHE)"
registry="${OCISIGN_REGISTRY_BIN:-/usr/bin/docker-registry}"
cosign_v2="${OCISIGN_COSIGN_V2:-$tools_dir/cosign-v2.6.5}"
cosign_v3="${OCISIGN_COSIGN_V3:-$tools_dir/cosign-v3.1.3}"

exec unshare --mount --propagation private bash -euo pipefail -c '
root=$1 repo=$2 goroot=$3 gomodcache=$4 gocache=$5 tools_dir=$6 registry=$7 cosign_v2=$8 cosign_v3=$9
# bind SRC: SRC at the same path inside the root.
bind() {
	if [ -d "$1" ]; then mkdir -p "$root$1"; else mkdir -p "$(dirname "$root$1")"; touch "$root$1"; fi
	mount --bind "$1" "$root$1"
}
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /tmp "$root/tmp"
# The machine'"'"'s host names, localhost above all: Fulcio'"'"'s HTTP gateway dials
# its gRPC side as localhost, and a minbase root has no /etc/hosts.
bind /etc/hosts
mkdir -p "$gomodcache" "$gocache"
for dir in "$repo" "$goroot" "$gomodcache" "$gocache" "$tools_dir"; do bind "$dir"; done
touch "$root/usr/local/bin/docker-registry"
mount --bind "$registry" "$root/usr/local/bin/docker-registry"
exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
	PATH="$goroot/bin:/usr/local/bin:/usr/bin:/bin" \
	GOMODCACHE="$gomodcache" GOCACHE="$gocache" GOFLAGS=-mod=readonly GOPROXY=off GOTOOLCHAIN=local \
	OCISIGN_COSIGN_V2="$cosign_v2" OCISIGN_COSIGN_V3="$cosign_v3" \
	OCISIGN_REGISTRY_BIN=/usr/local/bin/docker-registry \
	bash "$repo/test/erlang/run.sh"
' bash "$root" "$repo" "$goroot" "$gomodcache" "$gocache" "$tools_dir" "$registry" "$cosign_v2" "$cosign_v3"
