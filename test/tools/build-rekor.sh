#!/usr/bin/env bash
# Builds the pinned rekor-server, trillian_log_server and trillian_log_signer
# into ${OCISIGN_TOOLS_DIR:-$HOME/.cache/ocisign-tools} for the Rekor tests.
# A binary already there is kept (cache); each build lands under a temporary
# name first and is renamed into place, so a killed build never leaves a
# half-written binary that later runs would trust.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OCISIGN_TOOLS_DIR:-$HOME/.cache/ocisign-tools}"
mkdir -p "$out"

# build MODULE_DIR PACKAGE NAME
build() {
	local mod="$1" pkg="$2" name="$3"
	if [[ -x "$out/$name" ]]; then
		echo "build-rekor: $name cached at $out/$name"
		return 0
	fi
	local tmp="$out/.$name.tmp.$$"
	trap 'rm -f "$tmp"' RETURN
	echo "build-rekor: building $name ($pkg)"
	local start=$SECONDS
	(cd "$here/$mod" && CGO_ENABLED=0 go build -trimpath -o "$tmp" "$pkg")
	mv -f "$tmp" "$out/$name"
	echo "build-rekor: $name built in $((SECONDS - start))s"
}

build trillian github.com/google/trillian/cmd/trillian_log_server trillian_log_server-v1.7.3
build trillian github.com/google/trillian/cmd/trillian_log_signer trillian_log_signer-v1.7.3
build rekor github.com/sigstore/rekor/cmd/rekor-server rekor-server-v1.5.4

# Trillian's MySQL schema, from the same pinned module, for the harness.
schema="$out/trillian-storage-v1.7.3.sql"
if [[ ! -s "$schema" ]]; then
	dir="$(cd "$here/trillian" && go list -m -f '{{.Dir}}' github.com/google/trillian)"
	cp "$dir/storage/mysql/schema/storage.sql" "$schema.tmp.$$"
	mv -f "$schema.tmp.$$" "$schema"
	echo "build-rekor: Trillian schema copied to $schema"
fi
