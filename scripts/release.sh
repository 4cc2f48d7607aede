#!/usr/bin/env bash
# make release: reproducible builds of the ocisign program for every
# platform the rebar3 plugin downloads, their SHA256SUMS, and the checksum
# table the plugin trusts (committed with the release; never fetched).
#
#   scripts/release.sh [-o DIST] [-t TABLE] [PLATFORM...]
#     DIST      output directory (default dist/)
#     TABLE     checksum table to write (default erlang_shim/ocisign/priv/checksums.config)
#     PLATFORM  os/arch (default: linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
#
# The version is VERSION's; the commit is git's HEAD (OCISIGN_COMMIT overrides).
# Same commit, same Go: byte-identical files (-trimpath, no VCS stamping,
# no build ID, CGO off, fixed ldflags). The plugin app's vsn is set to VERSION.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"

dist=dist
table=erlang_shim/ocisign/priv/checksums.config
while getopts "o:t:" opt; do
	case "$opt" in
	o) dist=$OPTARG ;;
	t) table=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
platforms=("$@")
((${#platforms[@]})) || platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)

version="$(tr -d '[:space:]' <VERSION)"
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
	echo "release.sh: VERSION must be MAJOR.MINOR.PATCH, got '$version'" >&2
	exit 1
fi
commit="${OCISIGN_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"

mkdir -p "$dist"
rm -f "$dist"/ocisign-* "$dist/SHA256SUMS"
entries=()
for p in "${platforms[@]}"; do
	goos=${p%/*} goarch=${p#*/}
	name="ocisign-$version-$goos-$goarch"
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOFLAGS=-mod=readonly \
		go build -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid= -X main.version=$version -X main.commit=$commit" \
		-o "$dist/$name" ./cmd/ocisign
	sum="$(sha256sum "$dist/$name" | cut -d' ' -f1)"
	size="$(stat -c %s "$dist/$name")"
	echo "$sum  $name" >>"$dist/SHA256SUMS"
	entries+=("    {\"$goos\", \"$goarch\", \"$name\", \"$sum\", $size}")
	echo "release.sh: $dist/$name ($size bytes)" >&2
done

mkdir -p "$(dirname "$table")"
{
	echo "%% Written by \`make release\` (scripts/release.sh); do not edit. The rebar3"
	echo "%% plugin runs only a program whose SHA-256 is listed here."
	echo "{version, \"$version\"}."
	echo "{commit, \"$commit\"}."
	echo "%% {Os, Arch, FileName, Sha256Hex, Bytes}"
	echo "{artifacts, ["
	(IFS=$'\n'; echo "${entries[*]}" | sed '$!s/$/,/')
	echo "]}."
} >"$table"
sed -i "s/{vsn, \"[^\"]*\"}/{vsn, \"$version\"}/" erlang_shim/ocisign/src/ocisign.app.src
echo "release.sh: $dist/SHA256SUMS and $table for ocisign $version ($commit)" >&2
