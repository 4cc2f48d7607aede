#!/usr/bin/env bash
# The whole test run: `make test` and CI (.ci/run) call this.
#
# On a fresh Debian bookworm machine (as root) it installs the Debian packages
# the tests need when any is missing, builds the pinned cosign binaries once
# (test/tools/build.sh, cached in ~/.cache/ocisign-tools), then runs go vet,
# every Go test (unit + end-to-end against a real registry process and real
# cosign v2/v3) and the Erlang tests on OTP 25 and, in a Debian trixie root
# (debootstrap, cached), on OTP 27. Go 1.26 must be installed
# (/usr/local/go or PATH). Exit status is non-zero if any step fails; the
# last line is a one-line summary.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

APT_PACKAGES=(docker-registry erlang-nox erlang-dev erlang-eunit rebar3 openssl ca-certificates)
tools_dir="${OCISIGN_TOOLS_DIR:-$HOME/.cache/ocisign-tools}"
export OCISIGN_COSIGN_V2="${OCISIGN_COSIGN_V2:-$tools_dir/cosign-v2.6.5}"
export OCISIGN_COSIGN_V3="${OCISIGN_COSIGN_V3:-$tools_dir/cosign-v3.1.3}"
export OCISIGN_REGISTRY_BIN="${OCISIGN_REGISTRY_BIN:-/usr/bin/docker-registry}"
export OCISIGN_E2E=1
# With it the transparency-log tests run a real local Rekor too (MariaDB +
# Trillian + rekor-server; test/rekor/install.sh installs and builds them).
export OCISIGN_BIN="$root/bin/ocisign"

run_start=$SECONDS
results=()
failed=()

# step NAME COMMAND...: runs one step, records its result and duration.
step() {
	local name="$1" start=$SECONDS
	shift
	echo "==> $name"
	if "$@"; then
		results+=("$name ok ($((SECONDS - start))s)")
	else
		results+=("$name FAILED ($((SECONDS - start))s)")
		failed+=("$name")
	fi
}

summary_and_exit() {
	local total=$((SECONDS - run_start))
	echo
	for r in "${results[@]}"; do
		echo "    $r"
	done
	if ((${#failed[@]})); then
		echo "run-tests: FAIL (${failed[*]}) in ${total}s"
		exit 1
	fi
	echo "run-tests: PASS (all ${#results[@]} steps) in ${total}s"
	exit 0
}

# ---------------------------------------------------------------- prerequisites

find_go() {
	if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
		export PATH="/usr/local/go/bin:$PATH"
	fi
	if ! command -v go >/dev/null 2>&1; then
		echo "run-tests: Go is not installed; install Go 1.26 from https://go.dev/dl/ into /usr/local/go" >&2
		return 1
	fi
	go version
}

install_packages() {
	local missing=() pkg
	if ! command -v dpkg >/dev/null 2>&1; then
		# Not Debian: the tools must already be there.
		for cmd in "$OCISIGN_REGISTRY_BIN" erl rebar3 openssl; do
			command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
		done
		if ((${#missing[@]})); then
			echo "run-tests: not a Debian system and missing: ${missing[*]}" >&2
			return 1
		fi
		echo "not Debian; the needed commands are present"
		return 0
	fi
	for pkg in "${APT_PACKAGES[@]}"; do
		dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$pkg")
	done
	if ((${#missing[@]} == 0)); then
		echo "all Debian packages present (${APT_PACKAGES[*]})"
		return 0
	fi
	local sudo=()
	if ((EUID != 0)); then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "run-tests: missing Debian packages (${missing[*]}) and not root; run as root or install them" >&2
			return 1
		fi
		sudo=(sudo)
	fi
	echo "installing: ${missing[*]}"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}"
}

build_tools() {
	test/tools/build.sh && echo "cosign: $OCISIGN_COSIGN_V2, $OCISIGN_COSIGN_V3"
}

# MariaDB from Debian, Trillian and rekor-server built once into the tools cache.
rekor_tools() { test/rekor/install.sh; }

# ---------------------------------------------------------------- tests

go_vet() { go vet ./...; }

go_tests() {
	# Unit tests of every package plus test/e2e (OCISIGN_E2E=1 makes a
	# missing tool a failure there, not a skip).
	go test -count=1 -timeout 20m ./...
}

build_cli() { go build -o "$OCISIGN_BIN" ./cmd/ocisign; }

# The Erlang tests (the rebar3 plugin in erlang_shim/ocisign, EUnit and the
# rebar3 flow): on the host's OTP (bookworm: 25) and on OTP 27, the OTP
# ocibuild requires, in a Debian trixie root (test/otp27, made once and cached).
erlang_tests() { test/erlang/run.sh; }
otp27_root() { test/otp27/make-root.sh; }
erlang_tests_otp27() { test/otp27/run.sh; }

# make release is reproducible: two builds of one platform from this commit
# are byte-identical (the plugin pins their SHA-256).
release_reproducible() {
	local t
	t="$(mktemp -d)"
	scripts/release.sh -o "$t/a" -t "$t/a.config" linux/amd64 &&
		scripts/release.sh -o "$t/b" -t "$t/b.config" linux/amd64 &&
		cmp "$t/a/ocisign-$(cat VERSION)-linux-amd64" "$t/b/ocisign-$(cat VERSION)-linux-amd64" &&
		cmp "$t/a.config" "$t/b.config" &&
		"$t/a/ocisign-$(cat VERSION)-linux-amd64" version | grep -qx "ocisign $(cat VERSION) (commit $(git rev-parse --short=12 HEAD))"
	local status=$?
	rm -rf "$t"
	return $status
}

# Every go fuzz target (func FuzzX in a *_test.go) for FUZZTIME each: 50000
# executions by default (2-10 s here). A count, not a duration: Go 1.26's
# fuzz coordinator can fail a target at a -fuzztime deadline with no
# crasher (golang/go#75804, fixed in Go 1.27; seen here once). A crash fails the step and go test leaves the input in the
# package's testdata/fuzz/FuzzX/: commit it with the fix, it is then a
# regression test of every plain `go test` run.
go_fuzz() {
	local file target status=0
	while IFS=: read -r file target; do
		target="${target#func }"
		echo "fuzz $(dirname "$file") $target"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-50000x}" "./$(dirname "$file")" || status=1
	done < <(grep -rHo --include='*_test.go' --exclude-dir=_build '^func Fuzz[A-Za-z0-9_]*' . | sed 's|^\./||' | sort)
	return $status
}

step "go toolchain" find_go
((${#failed[@]})) && summary_and_exit
step "debian packages" install_packages
step "cosign builds" build_tools
step "rekor tools" rekor_tools
step "otp 27 root" otp27_root
# Without the tools the tests below would only fail on set-up.
((${#failed[@]})) && summary_and_exit
step "go vet" go_vet
step "go test" go_tests
step "build bin/ocisign" build_cli
step "release reproducible" release_reproducible
step "erlang tests (host OTP)" erlang_tests
step "erlang tests (OTP 27)" erlang_tests_otp27
step "go fuzz" go_fuzz
summary_and_exit
