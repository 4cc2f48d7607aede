#!/usr/bin/env bash
# Builds the pinned cosign binaries that the end-to-end tests run, from the Go
# module proxy, into ${OCISIGN_TOOLS_DIR:-$HOME/.cache/ocisign-tools}:
#
#   cosign-v2.6.5   from test/tools/cosign-v2 (its own module: no MVS mixing)
#   cosign-v3.1.3   from test/tools/cosign-v3
#   fulcio-v1.8.8   from test/tools/fulcio (the keyless tests' certificate authority)
#
# A binary that exists and whose `version` prints the pinned version is kept,
# so a warm run is instant and silent. Builds go to a temporary name and are
# renamed into place, so a killed build never leaves a binary we would trust.
# The builds run in parallel (OCISIGN_TOOLS_PARALLEL=0: one after the
# other); their logs are printed only when they fail.
#
# Prints nothing when all is cached. Exit status non-zero if any build fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OCISIGN_TOOLS_DIR:-$HOME/.cache/ocisign-tools}"
mkdir -p "$out"

# name  module-dir  main-package  pinned-version
TOOLS=(
	"cosign-v2.6.5 cosign-v2 github.com/sigstore/cosign/v2/cmd/cosign v2.6.5"
	"cosign-v3.1.3 cosign-v3 github.com/sigstore/cosign/v3/cmd/cosign v3.1.3"
	"fulcio-v1.8.8 fulcio github.com/sigstore/fulcio v1.8.8"
)

# is_current BINARY VERSION: the binary runs and reports exactly VERSION.
is_current() {
	[[ -x "$1" ]] && "$1" version 2>/dev/null | grep -Eq "^GitVersion:[[:space:]]+${2//./\\.}\$"
}

# build_tool NAME DIR PACKAGE VERSION
build_tool() {
	local name="$1" dir="$2" pkg="$3" version="$4"
	local dest="$out/$name" module="${pkg%/cmd/*}"
	if is_current "$dest" "$version"; then
		return 0
	fi
	# The pin lives in the tools module's go.mod; refuse to build anything else.
	if ! grep -Eq "^[[:space:]]*(require[[:space:]]+)?${module//./\\.}[[:space:]]+${version//./\\.}\$" "$here/$dir/go.mod"; then
		echo "build.sh: $here/$dir/go.mod does not pin $module $version" >&2
		return 1
	fi
	local tmp log start=$SECONDS
	tmp="$(mktemp "$out/.$name.XXXXXX")"
	log="$out/.$name.log"
	echo "build.sh: building $name from the Go module proxy (a cold build takes several minutes)"
	# -X sets cosign's version for toolchains that stamp "(devel)" on
	# binaries built from a dependency module.
	if ! (cd "$here/$dir" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 \
		go build -trimpath -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$version" \
		-o "$tmp" "$pkg") >"$log" 2>&1; then
		rm -f "$tmp"
		echo "build.sh: building $name FAILED; last lines of $log:" >&2
		tail -n 40 "$log" >&2
		return 1
	fi
	if ! is_current "$tmp" "$version"; then
		echo "build.sh: the new $name does not report version $version:" >&2
		"$tmp" version >&2 || true
		rm -f "$tmp"
		return 1
	fi
	chmod 0755 "$tmp"
	mv -f "$tmp" "$dest"
	echo "build.sh: built $dest in $((SECONDS - start))s"
}

failed=0
if [[ "${OCISIGN_TOOLS_PARALLEL:-1}" == 1 ]]; then
	pids=()
	for tool in "${TOOLS[@]}"; do
		# shellcheck disable=SC2086 # split the table row into arguments
		build_tool $tool &
		pids+=("$!")
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || failed=1
	done
else
	for tool in "${TOOLS[@]}"; do
		# shellcheck disable=SC2086
		build_tool $tool || failed=1
	done
fi
exit "$failed"
