#!/usr/bin/env bash
# End-to-end tests of the Erlang side of ocisign (issue 3) with real parts:
# Debian's erl/rebar3, the real Go binary, a real docker-registry process and
# real cosign (v2 and v3) as the verifier.
#
#   test/erlang/run.sh            (from anywhere; needs go, erl, escript,
#                                  rebar3, docker-registry; Linux /proc)
# Env: OCISIGN_COSIGN_V2, OCISIGN_COSIGN_V3 = cosign binaries (default: the
# ones in ~/.cache/ocisign-tools); OCISIGN_REGISTRY_BIN = docker-registry. Everything runs offline (REBAR_OFFLINE=1,
# loopback registry only). Prints "N passed, M failed"; exits 1 on failure.
#
# The rebar3 part uses test/erlang/ocibuild_standin, our own imitation of
# ocibuild 0.10.5 (the real one may not be committed or fetched here): the
# same provider and options, a real push, `Tagged:`/`Digest:` output, its own
# signer that overwrites the .sig tag of a single-platform image when it can
# read the key (which is how the tests see that ocisign took the key away),
# and switches for 0.10.5's multi-platform failure and a tag moved after the
# push. test/otp27/run.sh runs this script on OTP 27 in a trixie root.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
COSIGN_V2=${OCISIGN_COSIGN_V2:-$HOME/.cache/ocisign-tools/cosign-v2.6.5}
COSIGN_V3=${OCISIGN_COSIGN_V3:-$HOME/.cache/ocisign-tools/cosign-v3.1.3}
REGISTRY_BIN=${OCISIGN_REGISTRY_BIN:-docker-registry}
export REBAR_OFFLINE=1
command -v go >/dev/null 2>&1 || export PATH=$PATH:/usr/local/go/bin
unset OCISIGN_BIN OCIBUILD_SIGN_KEY OCISIGN_CONFIG

PASSED=0
FAILED=0
TMP=$(mktemp -d /tmp/ocisign-erlang-test.XXXXXX)
# cosign must never reach public Sigstore services: a dead proxy for
# everything but loopback, and a private TUF root and home.
export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
export TUF_ROOT="$TMP/tuf" SIGSTORE_NO_CACHE=1
REGISTRY_PID=

# The plugin is tested from a copy, so that runs in parallel do not share a
# _build or a program path (leftover processes are looked for by exact path).
SHIM=$TMP/erlang_shim/ocisign
BIN=$SHIM/priv/ocisign
mkdir -p "$SHIM/priv"
cp -r "$ROOT/erlang_shim/ocisign/src" "$ROOT/erlang_shim/ocisign/test" "$ROOT/erlang_shim/ocisign/rebar.config" "$SHIM/"
cp "$ROOT/erlang_shim/ocisign/priv/checksums.config" "$SHIM/priv/"
cp "$ROOT/rebar.config.example" "$TMP/"

cleanup() {
    for pid in ${SERVERS:-}; do kill "$pid" 2>/dev/null; done
    if [ -n "$REGISTRY_PID" ]; then
        kill "$REGISTRY_PID" 2>/dev/null
        wait "$REGISTRY_PID" 2>/dev/null
    fi
    [ -n "${OCISIGN_TEST_KEEP:-}" ] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

OTP=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().')
pass() { PASSED=$((PASSED + 1)); echo "PASS [OTP $OTP] $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL [OTP $OTP] $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | tail -n 40 | sed 's/^/    | /'; return 0; }

# check NAME CMD...: passes when CMD exits 0; shows CMD's output otherwise.
check() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
    exit $?
}

# --- unit tests and tools ---------------------------------------------------

check "eunit (erlang_shim)" bash -c "cd '$SHIM' && rebar3 eunit"
check "xref (erlang_shim)" bash -c "cd '$SHIM' && rebar3 xref"

# The committed Go fixture is what Go's encoder writes today.
mkdir -p "$TMP/fixtures"
if (cd "$ROOT" && go run ./test/erlang/jsonfixture write "$TMP/fixtures") >"$TMP/jf.log" 2>&1 &&
    diff -q "$TMP/fixtures/go_compact.json" "$SHIM/test/fixtures/go_compact.json" >/dev/null &&
    diff -q "$TMP/fixtures/go_indented.json" "$SHIM/test/fixtures/go_indented.json" >/dev/null; then
    pass "json fixture matches Go's encoding/json"
else
    fail "json fixture matches Go's encoding/json (regenerate: go run ./test/erlang/jsonfixture write erlang_shim/ocisign/test/fixtures)" "$(cat "$TMP/jf.log")"
fi

# Built into the repository's erlang_shim/ocisign/priv (so the plugin there works),
# tested from the copy.
mkdir -p "$ROOT/erlang_shim/ocisign/priv"
if ! out=$(cd "$ROOT" && go build -o "$ROOT/erlang_shim/ocisign/priv/ocisign" ./cmd/ocisign 2>&1 &&
    cp "$ROOT/erlang_shim/ocisign/priv/ocisign" "$BIN" && go build -o "$TMP/pushimage" ./test/erlang/pushimage 2>&1); then
    fail "go build ocisign and pushimage" "$out"
    finish
fi
pass "go build ocisign and pushimage"
if ! out=$(cd "$SHIM" && rebar3 compile 2>&1); then
    fail "rebar3 compile (erlang_shim)" "$out"
    finish
fi
EBIN=$SHIM/_build/default/lib/ocisign/ebin

# Erlang's built-in codec re-encodes Go's document; Go decodes it to the same value.
check "Go decodes the Erlang encoding of its document" bash -c "
    erl -noshell -pa '$EBIN' -eval '
        {ok, B} = file:read_file(\"$SHIM/test/fixtures/go_compact.json\"),
        ok = file:write_file(\"$TMP/erl.json\", ocisign_json:encode_native(ocisign_json:decode_native(B))),
        halt().' && cd '$ROOT' && go run ./test/erlang/jsonfixture check '$TMP/erl.json'"

# A --push value without "." or ":" is a registry host to ocibuild
# (https://myorg); the references ocisign sends must name that host to the
# Go parser too, not Docker Hub (which is what "myorg/app" means to it).
check "dotless --push: the signed reference names host myorg:443, the .sig goes there too" bash -c "
    refs=\$(erl -noshell -pa '$EBIN' -eval '
        {ok, Refs} = ocisign_config:references(<<\"myorg\">>, [<<\"app:1.0\">>, <<\"app:latest\">>], undefined),
        [io:format(\"~s~n\", [R]) || R <- Refs], halt().') &&
    [ \"\$refs\" = 'myorg:443/app:1.0
myorg:443/app:latest' ] &&
    [ \"\$('$TMP/pushimage' parse myorg:443/app:1.0)\" = 'myorg:443 myorg:443/app' ] &&
    [ \"\$('$TMP/pushimage' parse myorg/app:1.0)\" = 'index.docker.io index.docker.io/myorg/app' ] &&
    [ \"\$('$TMP/pushimage' parse localhost/app:1.0)\" = 'localhost localhost/app' ]"

# --- registry and key ---------------------------------------------------------

PORT=$(erl -noshell -eval '{ok, S} = gen_tcp:listen(0, [{ip, {127,0,0,1}}]), {ok, P} = inet:port(S), io:format("~b", [P]), halt().')
mkdir -p "$TMP/registry"
cat >"$TMP/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $TMP/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
EOF
"$REGISTRY_BIN" serve "$TMP/registry/config.yml" >"$TMP/registry/log" 2>&1 &
REGISTRY_PID=$!
if ! out=$("$TMP/pushimage" wait "127.0.0.1:$PORT" 2>&1); then
    fail "docker-registry on 127.0.0.1:$PORT" "$out
$(cat "$TMP/registry/log")"
    finish
fi
pass "docker-registry on 127.0.0.1:$PORT"
REG=127.0.0.1:$PORT

COSIGN_PASSWORD="test-$RANDOM-$RANDOM"
export COSIGN_PASSWORD
if ! out=$("$BIN" generate-key-pair --output-key-prefix "$TMP/cosign" 2>&1); then
    fail "ocisign generate-key-pair" "$out"
    finish
fi
KEY=$TMP/cosign.key
PUB=$TMP/cosign.pub
# A plain openssl P-256 key: the one kind ocibuild's own signer can read.
if ! out=$(openssl ecparam -genkey -name prime256v1 -noout -out "$TMP/plain.key" 2>&1 &&
    openssl ec -in "$TMP/plain.key" -pubout -out "$TMP/plain.pub" 2>&1); then
    fail "openssl P-256 key" "$out"
    finish
fi
PLAIN_KEY=$TMP/plain.key

# cosign_verify NAME REF: both cosign versions accept REF's signature.
cosign_verify() {
    local name=$1 ref=$2 v bin out
    for v in 2 3; do
        if [ "$v" = 2 ]; then bin=$COSIGN_V2; else bin=$COSIGN_V3; fi
        if [ ! -x "$bin" ]; then
            fail "$name: cosign v$v verify" "cosign v$v not found at $bin (set OCISIGN_COSIGN_V$v)"
            continue
        fi
        if out=$("$bin" verify --key "$PUB" --insecure-ignore-tlog "$ref" 2>&1); then
            pass "$name: cosign v$v verify $ref"
        else
            fail "$name: cosign v$v verify $ref" "$out"
        fi
    done
}

# verify_all NAME TAGREF: the image and every child verify, no bogus layer.
verify_all() {
    local name=$1 ref=$2 sigs repo d layers bogus
    repo=${ref%:*}
    if ! sigs=$("$TMP/pushimage" sigs "$ref" 2>&1); then
        fail "$name: read .sig manifests" "$sigs"
        return
    fi
    while read -r d layers bogus; do
        if [ "$layers" -ge 1 ] && [ "$bogus" -eq 0 ]; then
            pass "$name: $d has $layers signature layer(s), none from ocibuild's signer"
        else
            fail "$name: $d has $layers signature layer(s), $bogus from ocibuild's signer"
        fi
        cosign_verify "$name" "$repo@$d"
    done <<<"$sigs"
}

# --- (a) + (c) ocisign_port from Erlang -----------------------------------------

if DIRECT=$("$TMP/pushimage" push -platforms 2 "$REG/ns/direct:1" 2>&1); then
    out=$(escript "$ROOT/test/erlang/port_test.escript" "$EBIN" "$REG/ns/direct" "$DIRECT" "$KEY" "$PUB" 2>"$TMP/port_test.err")
    status=$?
    printf '%s\n' "$out"
    PASSED=$((PASSED + $(grep -c '^PASS ' <<<"$out")))
    FAILED=$((FAILED + $(grep -c '^FAIL ' <<<"$out")))
    if [ "$status" -ne 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
        fail "port_test.escript exited $status" "$(cat "$TMP/port_test.err")"
    fi
    verify_all "after ocisign_port:sign" "$REG/ns/direct:1"
else
    fail "push image for the port tests" "$DIRECT"
fi

# --- (b) the rebar3 plugin in a fixture project ------------------------------------

# project DIR [DECLARATION]: a copy of the fixture with _checkouts of the
# stand-in and the shim; DECLARATION replaces its plugins line (default
# {plugins, [ocibuild, ocisign]}.).
project() {
    local dir=$1 decl=${2:-}
    cp -r "$ROOT/test/erlang/fixture" "$dir"
    mkdir -p "$dir/_checkouts"
    ln -s "$SHIM" "$dir/_checkouts/ocisign"
    ln -s "$ROOT/test/erlang/ocibuild_standin" "$dir/_checkouts/ocibuild"
    if [ -n "$decl" ]; then
        DECL=$decl perl -0pi -e 's/^\{plugins, \[ocibuild, ocisign\]\}\./$ENV{DECL}/m' "$dir/rebar.config"
        grep -qF "$decl" "$dir/rebar.config" || return 1
    fi
    cp "$KEY" "$dir/cosign.key"
    cp "$PLAIN_KEY" "$dir/plain.key"
}

# absent REF: the registry says REF does not exist (nothing was pushed).
absent() {
    "$TMP/pushimage" exists "$1" >/dev/null 2>&1
    [ $? = 3 ]
}

# in_project DIR CMD...: runs CMD in DIR, output in $OUT (without terminal
# colour codes), status in $STATUS.
in_project() {
    local dir=$1; shift
    OUT=$(cd "$dir" && "$@" 2>&1)
    STATUS=$?
    OUT=$(sed 's/\x1b\[[0-9;]*m//g' <<<"$OUT")
}

export OCISIGN_TEST_PUSHIMAGE=$TMP/pushimage
P=$TMP/proj
project "$P"

# The hook: `rebar3 ocibuild --push ... --sign-key ...` signs a multi-platform image.
in_project "$P" rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t app:1.0 -P linux/amd64,linux/arm64
if [ "$STATUS" -eq 0 ] && [ "$(grep -c '^Signed: sha256:' <<<"$OUT")" -eq 3 ] &&
    grep -q 'ocibuild stand-in: tags \["app:1.0"\], sign_key undefined' <<<"$OUT"; then
    pass "rebar3 ocibuild --push --sign-key: 3 digests signed, ocibuild saw no key"
else
    fail "rebar3 ocibuild --push --sign-key: 3 digests signed, ocibuild saw no key" "$OUT"
fi
verify_all "rebar3 ocibuild (--sign-key)" "$REG/ns/app:1.0"

# {ocisign, [{annotations, ...}]} reaches the payload: cosign -a must match it.
if [ -x "$COSIGN_V2" ] && out=$("$COSIGN_V2" verify --key "$PUB" --insecure-ignore-tlog \
    -a org.ocisign.test=fixture "$REG/ns/app:1.0" 2>&1) &&
    ! "$COSIGN_V2" verify --key "$PUB" --insecure-ignore-tlog -a org.ocisign.test=other "$REG/ns/app:1.0" >/dev/null 2>&1; then
    pass "{ocisign, [{annotations, _}]}: cosign -a accepts the configured value only"
else
    fail "{ocisign, [{annotations, _}]}: cosign -a accepts the configured value only" "${out:-cosign v2 missing}"
fi

# {ocisign, [{recursive, false}]}: the index only.
in_project "$P" rebar3 as norec ocibuild --push "$REG/ns" --sign-key cosign.key -t app:norec
sigs=$("$TMP/pushimage" sigs "$REG/ns/app:norec" 2>&1 | awk '{print $2}' | tr '\n' ' ')
if [ "$STATUS" -eq 0 ] && [ "$(grep -c '^Signed: sha256:' <<<"$OUT")" -eq 1 ] && [ "$sigs" = "1 0 0 " ]; then
    pass "{ocisign, [{recursive, false}]}: only the index is signed"
else
    fail "{ocisign, [{recursive, false}]}: only the index is signed (layers per digest: $sigs)" "$OUT"
fi

# The key from OCIBUILD_SIGN_KEY, two tags (the second one is deduplicated).
in_project "$P" env OCIBUILD_SIGN_KEY=cosign.key rebar3 ocibuild --push "$REG/ns" -t "app:env;app:env2"
if [ "$STATUS" -eq 0 ] && grep -q 'sign_key undefined' <<<"$OUT" && grep -q 'already signed with this key' <<<"$OUT"; then
    pass "rebar3 ocibuild with OCIBUILD_SIGN_KEY and two tags"
else
    fail "rebar3 ocibuild with OCIBUILD_SIGN_KEY and two tags" "$OUT"
fi
verify_all "OCIBUILD_SIGN_KEY" "$REG/ns/app:env2"

# The key from {ocibuild, [{sign_key, "cosign.key"}]} (profile cfgkey).
in_project "$P" rebar3 as cfgkey ocibuild --push "$REG/ns" -t app:cfg
if [ "$STATUS" -eq 0 ] && grep -q 'sign_key undefined' <<<"$OUT" && grep -q '^Signed: sha256:' <<<"$OUT"; then
    pass "rebar3 ocibuild with {ocibuild, [{sign_key, _}]}"
else
    fail "rebar3 ocibuild with {ocibuild, [{sign_key, _}]}" "$OUT"
fi
verify_all "{ocibuild, [{sign_key, _}]}" "$REG/ns/app:cfg"

# No --push: nothing to sign, not an error.
in_project "$P" rebar3 ocibuild --sign-key cosign.key -t app:local
if [ "$STATUS" -eq 0 ] && grep -q 'nothing to sign' <<<"$OUT"; then
    pass "rebar3 ocibuild without --push signs nothing"
else
    fail "rebar3 ocibuild without --push signs nothing" "$OUT"
fi

# `rebar3 ocisign sign` on its own; a bare tag takes the release name (app).
if out=$("$TMP/pushimage" push -platforms 2 "$REG/ns/app:later" 2>&1); then
    in_project "$P" rebar3 ocisign sign --push "$REG/ns" -t later --sign-key cosign.key
    if [ "$STATUS" -eq 0 ] && [ "$(grep -c '^Signed: sha256:' <<<"$OUT")" -eq 3 ]; then
        pass "rebar3 ocisign sign --push -t TAG --sign-key"
    else
        fail "rebar3 ocisign sign --push -t TAG --sign-key" "$OUT"
    fi
    verify_all "rebar3 ocisign sign" "$REG/ns/app:later"
else
    fail "push image for rebar3 ocisign sign" "$out"
fi

# --digest pins what is signed: the tag moved to another image after the
# push (the window the hook cannot close), the pushed digest is still the
# one signed.
if PINNED=$("$TMP/pushimage" push -platforms 2 "$REG/ns/app:pinned" 2>&1) &&
    MOVED=$("$TMP/pushimage" push -platforms 1 "$REG/ns/app:pinned" 2>&1); then
    in_project "$P" rebar3 ocisign sign --push "$REG/ns" -t app:pinned --sign-key cosign.key --digest "$PINNED"
    first=$(grep '^Signed: sha256:' <<<"$OUT" | head -n 1 | awk '{print $2}')
    if [ "$STATUS" -eq 0 ] && [ "$first" = "$PINNED" ] && [ "$PINNED" != "$MOVED" ] &&
        [ "$(grep -c '^Signed: sha256:' <<<"$OUT")" -eq 3 ] && ! grep -q "^Signed: $MOVED" <<<"$OUT" &&
        grep -q "now points at $MOVED, not at the signed digest $PINNED" <<<"$OUT"; then
        pass "rebar3 ocisign sign --digest: the pinned digest is signed, not the tag's new one, which a warning names"
    else
        fail "rebar3 ocisign sign --digest: the pinned digest is signed, not the tag's new one (first '$first', pinned $PINNED, moved $MOVED)" "$OUT"
    fi
    cosign_verify "rebar3 ocisign sign --digest" "$REG/ns/app@$PINNED"
else
    fail "push images for rebar3 ocisign sign --digest" "$PINNED $MOVED"
fi
in_project "$P" rebar3 ocisign sign --push "$REG/ns" -t app:pinned --sign-key cosign.key --digest sha256:abc
if [ "$STATUS" -eq 1 ] && grep -q -- '--digest "sha256:abc" is not a manifest digest' <<<"$OUT"; then
    pass "rebar3 ocisign sign --digest sha256:abc: exit 1 with a clear message"
else
    fail "rebar3 ocisign sign --digest sha256:abc: exit 1 with a clear message (status $STATUS)" "$OUT"
fi

# {ocisign, [{bin, "tools/ocisign"}]} is relative to the project root: it
# works there, and a missing one is reported by its absolute path before
# ocibuild pushes anything.
mkdir -p "$P/tools" && cp "$BIN" "$P/tools/ocisign"
in_project "$P" rebar3 as relbin ocisign sign --push "$REG/ns" -t app:1.0 --sign-key cosign.key
if [ "$STATUS" -eq 0 ] && grep -q '^Signed: sha256:.*(already signed with this key)' <<<"$OUT"; then
    pass "{bin, \"tools/ocisign\"}: the project-relative program signs"
else
    fail "{bin, \"tools/ocisign\"}: the project-relative program signs" "$OUT"
fi
PB=$TMP/proj_relbin
project "$PB"
in_project "$PB" rebar3 as relbin ocibuild --push "$REG/ns" --sign-key cosign.key -t app:relbin
"$TMP/pushimage" exists "$REG/ns/app:relbin" >/dev/null 2>&1
code=$?
if [ "$STATUS" -eq 1 ] && [ "$code" = 3 ] &&
    grep -qF "the ocisign program set by {ocisign, [{bin, ...}]} in rebar.config does not exist: $PB/tools/ocisign" <<<"$OUT"; then
    pass "{bin, \"tools/ocisign\"} missing: exit 1 naming $PB/tools/ocisign, before the push"
else
    fail "{bin, \"tools/ocisign\"} missing: exit 1 naming $PB/tools/ocisign, before the push (status $STATUS, exists: $code)" "$OUT"
fi

# `rebar3 ocisign build`: ocibuild + sign, signing once.
in_project "$P" rebar3 ocisign build --push "$REG/ns" --sign-key cosign.key -t app:build
if [ "$STATUS" -eq 0 ] && [ "$(grep -c '^Signed: sha256:' <<<"$OUT")" -eq 1 ] && grep -q 'sign_key undefined' <<<"$OUT"; then
    pass "rebar3 ocisign build"
else
    fail "rebar3 ocisign build" "$OUT"
fi
verify_all "rebar3 ocisign build" "$REG/ns/app:build"

# Key problems are found before ocibuild pushes anything: a missing key
# file, a wrong password, no password. The tag does not exist afterwards.
in_project "$P" rebar3 ocibuild --push "$REG/ns" --sign-key missing.key -t app:nokey
if [ "$STATUS" -eq 1 ] && absent "$REG/ns/app:nokey" &&
    grep -q "the signing key $P/missing.key cannot be used, so nothing was pushed: .*(key_not_found)" <<<"$OUT"; then
    pass "missing key file: exit 1 before the push, naming the file"
else
    fail "missing key file: exit 1 before the push, naming the file (status $STATUS)" "$OUT"
fi
in_project "$P" env COSIGN_PASSWORD=wrong rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t app:badpw
if [ "$STATUS" -eq 1 ] && absent "$REG/ns/app:badpw" &&
    grep -q "(wrong_password). Set COSIGN_PASSWORD" <<<"$OUT" && ! grep -q "COSIGN_PASSWORD=wrong" <<<"$OUT"; then
    pass "wrong COSIGN_PASSWORD: exit 1 before the push"
else
    fail "wrong COSIGN_PASSWORD: exit 1 before the push (status $STATUS)" "$OUT"
fi
in_project "$P" env -u COSIGN_PASSWORD rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t app:nopw
if [ "$STATUS" -eq 1 ] && absent "$REG/ns/app:nopw" && grep -q "(password_required). Set COSIGN_PASSWORD" <<<"$OUT"; then
    pass "unset COSIGN_PASSWORD: exit 1 before the push"
else
    fail "unset COSIGN_PASSWORD: exit 1 before the push (status $STATUS)" "$OUT"
fi
# A missing program is caught before ocibuild pushes anything.
in_project "$P" env OCISIGN_BIN="$TMP/no-such-ocisign" rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t app:nobin
if [ "$STATUS" -eq 1 ] && grep -q 'the ocisign program set by OCISIGN_BIN does not exist' <<<"$OUT" && absent "$REG/ns/app:nobin"; then
    pass "missing program: exit 1 before anything is pushed"
else
    fail "missing program: exit 1 before anything is pushed (status $STATUS)" "$OUT"
fi
# {ocisign, [{on_error, warn}]} is the one way to an unsigned push with exit 0, and it says so.
in_project "$P" rebar3 as warn ocibuild --push "$REG/ns" --sign-key missing.key -t app:warn
if [ "$STATUS" -eq 0 ] && grep -q 'key_not_found' <<<"$OUT" && grep -q '\*\*\* The image will be pushed but NOT signed' <<<"$OUT" &&
    ! absent "$REG/ns/app:warn"; then
    pass "on_error warn: exit 0, pushed, with a loud warning"
else
    fail "on_error warn: exit 0, pushed, with a loud warning (status $STATUS)" "$OUT"
fi

# The printed digest is signed even when the tag moves right after the push
# (the stand-in pushes another image to it after printing Digest:); the
# intruder is not signed and a warning names both digests.
in_project "$P" env OCIBUILD_STANDIN_FAULT=move_tag rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t app:moved
printed=$(sed -n 's/^Digest: \(sha256:[0-9a-f]*\)$/\1/p' <<<"$OUT")
intruder=$("$TMP/pushimage" sigs "$REG/ns/app:moved" 2>/dev/null | awk 'NR == 1 {print $1, $2}')
if [ "$STATUS" -eq 0 ] && [ -n "$printed" ] && grep -q "^Signed: $printed -> " <<<"$OUT" &&
    [ "${intruder#* }" = 0 ] && [ "${intruder% *}" != "$printed" ] &&
    grep -q "now points at ${intruder% *}, not at the signed digest $printed" <<<"$OUT"; then
    pass "tag moved after the push: the printed digest is signed, the intruder is not, a warning names both"
else
    fail "tag moved after the push: the printed digest is signed, the intruder is not, a warning names both (printed '$printed', tag now '$intruder')" "$OUT"
fi
cosign_verify "tag moved after the push" "$REG/ns/app@$printed"

# ocibuild 0.10.5's own multi-platform failure (stand-in switch): the
# command fails in ocibuild, before any tag exists, and nothing is signed.
in_project "$P" env OCIBUILD_STANDIN_FAULT=multi_platform rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t app:mpbug -P linux/amd64,linux/arm64
if [ "$STATUS" -ne 0 ] && absent "$REG/ns/app:mpbug" && grep -q 'noproc' <<<"$OUT" && ! grep -q '^Signed:' <<<"$OUT"; then
    pass "ocibuild's multi-platform failure: the command fails, nothing pushed or signed"
else
    fail "ocibuild's multi-platform failure: the command fails, nothing pushed or signed (status $STATUS)" "$OUT"
fi

# A plain openssl key, single platform: the one case where ocibuild's own
# signer would sign (and overwrite .sig); ocisign took the key away.
in_project "$P" rebar3 ocibuild --push "$REG/ns" --sign-key plain.key -t app:plain
if [ "$STATUS" -eq 0 ] && grep -q 'sign_key undefined' <<<"$OUT" && [ "$(grep -c '^Signed: sha256:' <<<"$OUT")" -eq 1 ] &&
    [ "$("$TMP/pushimage" sigs "$REG/ns/app:plain" 2>&1 | awk '{print $2, $3}')" = "1 0" ] &&
    "$COSIGN_V2" verify --key "$TMP/plain.pub" --insecure-ignore-tlog "$REG/ns/app:plain" >/dev/null 2>&1; then
    pass "plain P-256 key: ocisign's signature only, ocibuild saw no key, cosign verifies"
else
    fail "plain P-256 key: ocisign's signature only, ocibuild saw no key, cosign verifies (status $STATUS)" "$OUT"
fi
in_project "$P" rebar3 ocisign sign --push "$REG/ns" -t app:1.0
if [ "$STATUS" -eq 1 ] && grep -q 'no signing key' <<<"$OUT"; then
    pass "rebar3 ocisign sign without a key: exit 1 with a clear message"
else
    fail "rebar3 ocisign sign without a key: exit 1 with a clear message (status $STATUS)" "$OUT"
fi

# --- transparency log: {rekor_url, _} and {rekor_public_key, _} ----------------
# The real log is tested in test/rekor (with OCISIGN_E2E=1); here the options
# must reach the program: a log on a closed port fails the signing with
# tlog_error and no .sig is pushed without the log entry. The log key is a
# P-256 PUBLIC KEY file, relative to the project root (cosign.pub will do:
# it is never used, the upload fails first). Profiles override the options:
# tlogkey names a missing key file, tlogbad a URL that is not http(s); both
# are refused before ocibuild pushes anything.
CLOSED=$(erl -noshell -eval '{ok, S} = gen_tcp:listen(0, [{ip, {127,0,0,1}}]), {ok, P} = inet:port(S), io:format("~b", [P]), halt().')
PT=$TMP/proj_tlog
project "$PT"
cp "$PUB" "$PT/rekor.pub"
sed -i "s|^{ocisign, \[{annotations, \(.*\)}\]}\.\$|{ocisign, [{annotations, \1}, {rekor_url, \"http://127.0.0.1:$CLOSED\"}, {rekor_public_key, \"rekor.pub\"}]}.|" "$PT/rebar.config"
sed -i "s|^{profiles, \[\$|{profiles, [\n    {tlogkey, [{ocisign, [{rekor_public_key, \"keys/missing.pub\"}]}]},\n    {tlogbad, [{ocisign, [{rekor_url, \"rekor.example\"}]}]},|" "$PT/rebar.config"
if ! grep -q "{rekor_url, \"http://127.0.0.1:$CLOSED\"}, {rekor_public_key, \"rekor.pub\"}" "$PT/rebar.config" ||
    ! grep -q "^    {tlogbad, " "$PT/rebar.config"; then
    fail "transparency log fixture (sed on rebar.config)" "$(cat "$PT/rebar.config")"
else
    in_project "$PT" rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t app:tlog
    digest=$("$TMP/pushimage" sigs "$REG/ns/app:tlog" 2>&1 | awk 'NR == 1 {print $1}')
    sig=$REG/ns/app:sha256-${digest#sha256:}.sig
    "$TMP/pushimage" exists "$sig" >/dev/null 2>&1
    code=$?
    if [ "$STATUS" -eq 1 ] && grep -q "signing $REG/ns/app:tlog failed: .*127.0.0.1:$CLOSED.*(tlog_error)" <<<"$OUT" &&
        grep -q "recording it in the transparency log http://127.0.0.1:$CLOSED" <<<"$OUT" &&
        [ "${digest#sha256:}" != "$digest" ] && [ "$code" = 3 ]; then
        pass "{rekor_url, closed port}: exit 1 with tlog_error, no .sig pushed"
    else
        fail "{rekor_url, closed port}: exit 1 with tlog_error, no .sig pushed (status $STATUS, digest '$digest', exists $sig: $code)" "$OUT"
    fi

    in_project "$PT" rebar3 as tlogkey ocibuild --push "$REG/ns" --sign-key cosign.key -t app:tlogkey
    "$TMP/pushimage" exists "$REG/ns/app:tlogkey" >/dev/null 2>&1
    code=$?
    if [ "$STATUS" -eq 1 ] && grep -q "the log's public key file $PT/keys/missing.pub does not exist" <<<"$OUT" &&
        [ "$code" = 3 ]; then
        pass "{rekor_public_key, missing}: exit 1 naming the project-relative path, before the push"
    else
        fail "{rekor_public_key, missing}: exit 1 naming the project-relative path, before the push (status $STATUS, exists: $code)" "$OUT"
    fi

    in_project "$PT" rebar3 as tlogbad ocibuild --push "$REG/ns" --sign-key cosign.key -t app:tlogbad
    "$TMP/pushimage" exists "$REG/ns/app:tlogbad" >/dev/null 2>&1
    code=$?
    if [ "$STATUS" -eq 1 ] && grep -q 'rekor_url must be an absolute http:// or https:// URL' <<<"$OUT" &&
        [ "$code" = 3 ]; then
        pass "{rekor_url, \"rekor.example\"}: exit 1 with a clear message, before the push"
    else
        fail "{rekor_url, \"rekor.example\"}: exit 1 with a clear message, before the push (status $STATUS, exists: $code)" "$OUT"
    fi
fi

# Every plugin order signs (real-ocibuild.md's table; three of them did not
# attach before): ocisign takes over the ocibuild step at run time.
n=0
for decl in "{project_plugins, [ocibuild, ocisign]}." \
    "{plugins, [ocibuild, ocisign]}." \
    "{project_plugins, [ocibuild]}. {plugins, [ocisign]}." \
    "{project_plugins, [ocisign, ocibuild]}." \
    "{plugins, [ocisign, ocibuild]}." \
    "{plugins, [ocibuild]}. {project_plugins, [ocisign]}."; do
    n=$((n + 1))
    dir=$TMP/proj_order$n
    if ! project "$dir" "$decl"; then
        fail "plugin order $decl: fixture" "$(cat "$dir/rebar.config")"
        continue
    fi
    in_project "$dir" rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t "app:order$n"
    if [ "$STATUS" -eq 0 ] && grep -q 'sign_key undefined' <<<"$OUT" && [ "$(grep -c '^Signed: sha256:' <<<"$OUT")" -eq 1 ]; then
        pass "plugin order $decl: signed, ocibuild saw no key"
    else
        fail "plugin order $decl: signed, ocibuild saw no key (status $STATUS)" "$OUT"
    fi
    verify_all "plugin order $decl" "$REG/ns/app:order$n"
    # ... and a bad key fails before the push in that order too.
    in_project "$dir" rebar3 ocibuild --push "$REG/ns" --sign-key missing.key -t "app:order${n}bad"
    if [ "$STATUS" -eq 1 ] && absent "$REG/ns/app:order${n}bad"; then
        pass "plugin order $decl: a missing key fails before the push"
    else
        fail "plugin order $decl: a missing key fails before the push (status $STATUS)" "$OUT"
    fi
done
in_project "$TMP/proj_order5" rebar3 as multi ocisign build --push "$REG/ns" --sign-key cosign.key -t app:order
if [ "$STATUS" -eq 0 ] && grep -q 'sign_key undefined' <<<"$OUT" && [ "$(grep -c '^Signed: sha256:' <<<"$OUT")" -eq 3 ]; then
    pass "plugins [ocisign, ocibuild]: rebar3 ocisign build signs, ocibuild saw no key"
else
    fail "plugins [ocisign, ocibuild]: rebar3 ocisign build signs, ocibuild saw no key" "$OUT"
fi
verify_all "plugins [ocisign, ocibuild] + ocisign build" "$REG/ns/app:order"

# Control: without ocisign the stand-in signs a single-platform image with a
# plain key itself, overwriting the .sig tag, so the "none from ocibuild's
# signer" checks above can fail; with cosign's encrypted key it only warns.
project "$TMP/proj_control" "{plugins, [ocibuild]}."
in_project "$TMP/proj_control" rebar3 ocibuild --push "$REG/ns" --sign-key plain.key -t app:control
if [ "$STATUS" -eq 0 ] && [ "$("$TMP/pushimage" sigs "$REG/ns/app:control" 2>&1 | awk '{print $3}')" = 1 ]; then
    pass "control: without ocisign the stand-in writes its own .sig with a plain key"
else
    fail "control: without ocisign the stand-in writes its own .sig with a plain key" "$OUT"
fi
in_project "$TMP/proj_control" rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t app:control2
if [ "$STATUS" -eq 0 ] && grep -q 'Warning: Invalid signing key cosign.key: {invalid_pem,no_entries}' <<<"$OUT" &&
    [ "$("$TMP/pushimage" sigs "$REG/ns/app:control2" 2>&1 | awk '{print $2}')" = 0 ]; then
    pass "control: without ocisign a cosign key only gets the stand-in's warning, exit 0, unsigned"
else
    fail "control: without ocisign a cosign key only gets the stand-in's warning, exit 0, unsigned" "$OUT"
fi

# --- keyless: the README's GitHub Actions workflow, no key -----------------------
# keylessenv serves the test OIDC issuer with a stand-in of GitHub Actions'
# token endpoint, the pinned real Fulcio and a stand-in log with real signed
# entry timestamps (the real Rekor: test/rekor, test/keyless). The `run:`
# line of README.md's workflow runs as it is, with the registry and the tag
# put in for GitHub's expressions and GitHub's token variables set: no key
# anywhere, so the plugin signs keylessly; ocisign verify checks identity and
# issuer. A refused token request fails the command before anything is pushed.
KL=$TMP/keyless
mkdir -p "$KL"
if ! out=$(cd "$ROOT" && go build -o "$TMP/keylessenv" ./test/erlang/keylessenv 2>&1); then
    fail "go build keylessenv" "$out"
else
    mkfifo "$KL/stdin"
    "$TMP/keylessenv" "$KL" "$KL/env" <"$KL/stdin" >"$KL/log" 2>&1 &
    KL_PID=$!
    SERVERS="${SERVERS:-} $KL_PID"
    exec 7>"$KL/stdin"
    for _ in $(seq 1 300); do [ -f "$KL/env" ] || ! kill -0 "$KL_PID" 2>/dev/null && break; sleep 0.1; done
fi
run_line=$(awk '/^## Keyless signing/ {s = 1} s && /run: rebar3 ocibuild/ {sub(/^ *run: /, ""); print; exit}' "$ROOT/README.md")
if [ ! -f "$KL/env" ]; then
    fail "keyless services (OIDC issuer, Fulcio, log) start" "$(cat "$KL/log" 2>/dev/null)"
elif [ -z "$run_line" ]; then
    fail "README.md's keyless workflow has a \`run: rebar3 ocibuild\` line" ""
else
    # shellcheck disable=SC1091
    . "$KL/env"
    cmd=${run_line//'ghcr.io/${{ github.repository_owner }}'/$REG/gh}
    cmd=${cmd//'${{ github.ref_name }}'/v1.0.0}
    PK=$TMP/proj_keyless
    project "$PK"
    sed -i 's|^{ocisign, \[{annotations, \(.*\)}\]}\.$|{ocisign, [{annotations, \1}, {insecure_ignore_sct, true}]}.|' "$PK/rebar.config"
    keyless_env=(OCISIGN_FULCIO_URL="$KL_FULCIO_URL" SIGSTORE_ROOT_FILE="$KL_FULCIO_ROOT" OCISIGN_REKOR_URL="$KL_REKOR_URL"
        SIGSTORE_REKOR_PUBLIC_KEY="$KL_REKOR_PUB" ACTIONS_ID_TOKEN_REQUEST_URL="$KL_ACTIONS_URL")
    in_project "$PK" env "${keyless_env[@]}" ACTIONS_ID_TOKEN_REQUEST_TOKEN="$KL_ACTIONS_TOKEN" bash -c "$cmd"
    if [ "$STATUS" -eq 0 ] && grep -q "signing keylessly after the push, as $KL_EMAIL" <<<"$OUT" &&
        ! grep -qF "$KL_ACTIONS_TOKEN" <<<"$OUT" &&
        "$BIN" verify --certificate-identity "$KL_EMAIL" --certificate-oidc-issuer "$KL_ISSUER" \
            --fulcio-root "$KL_FULCIO_ROOT" --rekor-public-key "$KL_REKOR_PUB" "$REG/gh/myapp:v1.0.0" >"$KL/verify" 2>&1 &&
        ! "$BIN" verify --certificate-identity someone-else@ocisign.test --certificate-oidc-issuer "$KL_ISSUER" \
            --fulcio-root "$KL_FULCIO_ROOT" --rekor-public-key "$KL_REKOR_PUB" "$REG/gh/myapp:v1.0.0" >/dev/null 2>&1; then
        pass "README's GitHub Actions workflow (\`$cmd\`): no key, signed keylessly, verified by identity and issuer"
    else
        fail "README's GitHub Actions workflow (\`$cmd\`): no key, signed keylessly, verified by identity and issuer (status $STATUS)" \
            "$OUT"$'\n'"$(cat "$KL/verify" 2>/dev/null)"
    fi
    in_project "$PK" env "${keyless_env[@]}" ACTIONS_ID_TOKEN_REQUEST_TOKEN=not-the-request-token \
        rebar3 ocibuild --push "$REG/gh" -t myapp:refused
    if [ "$STATUS" -eq 1 ] && absent "$REG/gh/myapp:refused" && grep -q 'id-token: write' <<<"$OUT" &&
        ! grep -q 'not-the-request-token' <<<"$OUT"; then
        pass "keyless: a refused token request fails before the push and prints no token"
    else
        fail "keyless: a refused token request fails before the push and prints no token (status $STATUS)" "$OUT"
    fi
fi
if [ -n "${KL_PID:-}" ]; then
    exec 7>&-
    wait "$KL_PID" 2>/dev/null
fi

# --- (e) the program comes from a verified release download ----------------------
# scripts/release.sh (what `make release` runs) builds this platform's file
# and writes the checksum table into a copy of the plugin; a loopback HTTP
# server (inets) serves the files. rebar3 runs with neither Go nor ocisign
# on PATH and a fresh rebar3 cache.
HOST_PLATFORM=linux/$(case "$(uname -m)" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; esac)
DL=$TMP/download
mkdir -p "$DL/shim" "$DL/served" "$DL/empty" "$DL/bad" "$DL/short" "$DL/nopath"
cp -r "$SHIM" "$DL/shim/ocisign" && rm -rf "$DL/shim/ocisign/_build" "$DL/shim/ocisign/priv/ocisign"
if ! out=$(cd "$ROOT" && scripts/release.sh -o "$DL/served" -t "$DL/shim/ocisign/priv/checksums.config" "$HOST_PLATFORM" 2>&1); then
    fail "scripts/release.sh $HOST_PLATFORM" "$out"
fi
ART=$(cd "$DL/served" && ls ocisign-*-linux-*)
# A file of the pinned size that would leave a mark if it were ever run.
{ printf '#!/bin/sh\ntouch %s/ran\n' "$DL"; head -c "$(stat -c %s "$DL/served/$ART")" /dev/zero | tr '\0' '#'; } |
    head -c "$(stat -c %s "$DL/served/$ART")" >"$DL/bad/$ART"
head -c 1000 "$DL/served/$ART" >"$DL/short/$ART"
for d in served empty bad short; do
    escript "$ROOT/test/erlang/serve_dir.escript" "$DL/$d" "$DL/$d.port" "$DL/$d.log" &
    SERVERS="${SERVERS:-} $!"
done
for d in served empty bad short; do
    for _ in $(seq 100); do [ -s "$DL/$d.port" ] && break; sleep 0.1; done
done
url() { echo "http://127.0.0.1:$(cat "$DL/$1.port")"; }
# PATH without go or ocisign: a stale ocisign that marks any use but `version`.
printf '#!/bin/sh\n[ "$1" = version ] && echo "ocisign 0.0.1 (commit stale)" && exit 0\ntouch %s/stale-ran\n' "$DL" >"$DL/nopath/ocisign"
chmod +x "$DL/nopath/ocisign"
NOPATH=$DL/nopath:/usr/bin:/bin
for p in proj proj2; do
    project "$DL/$p" && rm "$DL/$p/_checkouts/ocisign" && ln -s "$DL/shim/ocisign" "$DL/$p/_checkouts/ocisign"
done
# dl_run CACHE URL TAG [PROJECT]: the hook in a project (default proj), with
# that rebar3 cache and download URL.
dl_run() {
    in_project "$DL/${4:-proj}" env -u OCISIGN_BIN PATH="$NOPATH" REBAR_CACHE_DIR="$1" OCISIGN_DOWNLOAD_URL="$2" \
        rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t "app:$3"
}
requests() { [ -f "$DL/$1.log" ] && grep -c "GET /$ART" "$DL/$1.log" || echo 0; }
if PATH=$NOPATH command -v go >/dev/null 2>&1; then
    fail "download tests: go must not be on their PATH" "$NOPATH"
fi
dl_run "$DL/cache" "$(url served)" dl1
if [ "$STATUS" -eq 0 ] && grep -q '^Signed: sha256:' <<<"$OUT" && [ "$(grep -c "fetching $ART" <<<"$OUT")" = 1 ] &&
    [ "$(requests served)" = 1 ] && [ -x "$DL/cache/ocisign/"*"/$ART" ] && [ ! -e "$DL/stale-ran" ]; then
    pass "no Go, no ocisign on PATH: the release file is fetched once, verified, cached, and signs"
else
    fail "no Go, no ocisign on PATH: the release file is fetched once, verified, cached, and signs (status $STATUS, requests $(requests served))" "$OUT"
fi
cosign_verify "downloaded program" "$REG/ns/app:dl1"
dl_run "$DL/cache" "$(url served)" dl2
if [ "$STATUS" -eq 0 ] && grep -q '^Signed: sha256:' <<<"$OUT" && ! grep -q 'fetching' <<<"$OUT" && [ "$(requests served)" = 1 ]; then
    pass "second run: the cached program, no HTTP request, nothing printed about it"
else
    fail "second run: the cached program, no HTTP request, nothing printed about it (requests $(requests served))" "$OUT"
fi
# dl_fails NAME URL TAG PATTERN: exit 1 before the push, nothing cached or run.
dl_fails() {
    local name=$1 u=$2 tag=$3 pattern=$4
    rm -rf "$DL/cache_$tag"
    dl_run "$DL/cache_$tag" "$u" "$tag"
    if [ "$STATUS" -eq 1 ] && grep -q -- "$pattern" <<<"$OUT" && absent "$REG/ns/app:$tag" &&
        [ -z "$(find "$DL/cache_$tag" -type f 2>/dev/null)" ] && [ ! -e "$DL/ran" ] && [ ! -e "$DL/stale-ran" ] &&
        grep -q 'OCISIGN_DOWNLOAD_URL' <<<"$OUT" && grep -q 'build_from_source' <<<"$OUT"; then
        pass "$name: exit 1 naming the problem and the ways out, nothing pushed, cached or run"
    else
        fail "$name: exit 1 naming the problem and the ways out, nothing pushed, cached or run (status $STATUS)" "$OUT"
    fi
}
dl_fails "tampered release file (same size)" "$(url bad)" dlbad "checksum mismatch: $(url bad)/$ART has SHA-256"
dl_fails "truncated release file" "$(url short)" dlshort "has 1000 bytes, the pinned release file"
dl_fails "release file missing (404)" "$(url empty)" dl404 "$(url empty)/$ART was not found (404)"
dl_fails "download server unreachable" "http://127.0.0.1:$CLOSED" dldown "could not be fetched"
if grep -q "0.0.1, not" <<<"$OUT"; then
    pass "a stale ocisign on PATH is named and not used"
else
    fail "a stale ocisign on PATH is named and not used" "$OUT"
fi
# Two rebar3 processes fetching into one empty cache: both sign, one good file.
rm -rf "$DL/cache_race"
(dl_run "$DL/cache_race" "$(url served)" race1; echo "$STATUS" >"$DL/race1.status"; echo "$OUT" >"$DL/race1.out") &
r1=$!
(dl_run "$DL/cache_race" "$(url served)" race2 proj2; echo "$STATUS" >"$DL/race2.status"; echo "$OUT" >"$DL/race2.out") &
r2=$!
wait "$r1" "$r2"
files=$(find "$DL/cache_race" -type f | wc -l)
if [ "$(cat "$DL/race1.status")" = 0 ] && [ "$(cat "$DL/race2.status")" = 0 ] && [ "$files" = 1 ] &&
    (cd "$DL/served" && sha256sum "$ART") | sed "s|$ART|$(find "$DL/cache_race" -type f)|" | sha256sum -c --quiet -; then
    pass "concurrent first use: both runs sign, the cache holds one good file"
else
    fail "concurrent first use: both runs sign, the cache holds one good file (statuses $(cat "$DL/race1.status" "$DL/race2.status" 2>&1 | tr '\n' ' '), files $files)" "$(find "$DL/cache_race"; tail -5 "$DL/race1.out" "$DL/race2.out")"
fi

# {build_from_source, true} (here OCISIGN_BUILD=1): with Go on PATH and no
# download possible, the plugin builds the program from the checkout its
# _checkouts link points into (a copy of this repository's Go module with
# the plugin, without any built program), and signs.
mkdir -p "$DL/checkout/erlang_shim"
# The module's packages the program is built from, whatever they are.
(cd "$ROOT" && cp go.mod go.sum "$DL/checkout/" &&
    for d in $(go list -deps -f '{{if not .Standard}}{{.Dir}}{{end}}' ./cmd/ocisign | sed -n "s|^$ROOT/||p"); do
        mkdir -p "$DL/checkout/$d" && cp "$d"/*.go "$DL/checkout/$d/"
    done)
cp -r "$DL/shim/ocisign" "$DL/checkout/erlang_shim/ocisign"
project "$DL/proj_build" && rm "$DL/proj_build/_checkouts/ocisign" && ln -s "$DL/checkout/erlang_shim/ocisign" "$DL/proj_build/_checkouts/ocisign"
in_project "$DL/proj_build" env -u OCISIGN_BIN PATH="$(dirname "$(command -v go)"):$NOPATH" REBAR_CACHE_DIR="$DL/cache_build" \
    OCISIGN_DOWNLOAD_URL="http://127.0.0.1:$CLOSED" OCISIGN_BUILD=1 rebar3 ocibuild --push "$REG/ns" --sign-key cosign.key -t app:built
if [ "$STATUS" -eq 0 ] && grep -q 'building the ocisign program' <<<"$OUT" && grep -q '^Signed: sha256:' <<<"$OUT" &&
    [ -x "$DL/cache_build/ocisign/$(cat "$ROOT/VERSION")/built/ocisign" ]; then
    pass "OCISIGN_BUILD=1: built from the checkout with go, cached, signs"
else
    fail "OCISIGN_BUILD=1: built from the checkout with go, cached, signs (status $STATUS)" "$OUT"
fi

# --- (f) installing the plugin as the docs say -----------------------------------
# The plugin lines of README.md and rebar.config.example, copied into a fresh
# project with the git URL pointing at a local bare clone of this checkout
# (its working tree committed on top, so uncommitted changes are tested too,
# with the checksum table of the release (e) serves); ocibuild is the
# stand-in in _checkouts. rebar3 must really fetch the git_subdir
# (REBAR_OFFLINE would refuse), and the suite's dead proxy keeps anything
# else from leaving the machine. No Go and no ocisign of this version on
# PATH: the program is the verified download from OCISIGN_DOWNLOAD_URL.
DOC_URL=https://github.com/ocisign/ocisign.git
if out=$(git clone -q "$ROOT" "$TMP/clone" 2>&1 &&
    git -C "$TMP/clone" checkout -q -B main 2>&1 &&
    rm -rf "$TMP/clone/erlang_shim" && cp -r "$ROOT/erlang_shim" "$TMP/clone/erlang_shim" &&
    rm -rf "$TMP/clone/erlang_shim/ocisign/_build" "$TMP/clone/erlang_shim/ocisign/priv/ocisign" &&
    cp "$DL/shim/ocisign/priv/checksums.config" "$TMP/clone/erlang_shim/ocisign/priv/checksums.config" &&
    git -C "$TMP/clone" add -A erlang_shim 2>&1 &&
    git -C "$TMP/clone" -c user.name=test -c user.email=test@localhost commit -q --allow-empty -m "working tree" 2>&1 &&
    git clone -q --bare "$TMP/clone" "$TMP/ocisign.git" 2>&1); then
    pass "bare clone of the checkout for the install test"
else
    fail "bare clone of the checkout for the install test" "$out"
fi

# docs_project DIR PLUGIN_TERMS: the fixture without its plugin and ocisign
# lines, plus PLUGIN_TERMS (the URL swapped for the bare clone).
docs_project() {
    local dir=$1 terms=$2
    cp -r "$ROOT/test/erlang/fixture" "$dir"
    mkdir -p "$dir/_checkouts"
    ln -s "$ROOT/test/erlang/ocibuild_standin" "$dir/_checkouts/ocibuild"
    sed -i -e '/^{plugins, /d' -e '/^{ocisign, /d' "$dir/rebar.config"
    printf '%s\n' "${terms//$DOC_URL/file://$TMP/ocisign.git}" >>"$dir/rebar.config"
    cp "$KEY" "$dir/cosign.key"
}

# install_check NAME DIR TAG: the documented command signs (the program
# downloaded and verified on the way); cosign verifies.
install_check() {
    local name=$1 dir=$2
    in_project "$dir" env -u REBAR_OFFLINE -u OCISIGN_BIN PATH="$NOPATH" REBAR_CACHE_DIR="$dir/rebar-cache" \
        OCISIGN_DOWNLOAD_URL="$(url served)" rebar3 ocibuild --push "$REG/ns" -t "app:$3" --sign-key cosign.key
    if [ "$STATUS" -eq 0 ] && [ -f "$dir/_build/default/plugins/ocisign/erlang_shim/ocisign/src/ocisign.erl" ] &&
        [ "$(grep -c '^Signed: sha256:' <<<"$OUT")" -eq 1 ] && ! grep -qi 'errors loading plugin' <<<"$OUT" &&
        grep -q "fetching $ART" <<<"$OUT"; then
        pass "$name: the plugin is fetched with git_subdir, its program downloaded and verified, and it signs"
    else
        fail "$name: the plugin is fetched with git_subdir, its program downloaded and verified, and it signs (status $STATUS)" "$OUT"
    fi
    cosign_verify "$name" "$REG/ns/app:$3"
}

readme_block=$(awk '/^## With rebar3 and ocibuild/ {s = 1} s && /^```erlang/ {b = 1; next} b && /^```/ {exit} b' "$ROOT/README.md")
if grep -q "git_subdir, \"$DOC_URL\"" <<<"$readme_block"; then
    docs_project "$TMP/proj_readme" "$readme_block"
    install_check "README.md's plugin lines" "$TMP/proj_readme" readme
else
    fail "README.md's plugin lines name $DOC_URL with git_subdir" "$readme_block"
fi
example_terms=$(erl -noshell -eval '
    {ok, Terms} = file:consult("'"$ROOT"'/rebar.config.example"),
    [io:format("~p.~n", [T]) || {K, _} = T <- Terms, lists:member(K, [project_plugins, plugins])],
    halt().')
if grep -q "git_subdir" <<<"$example_terms"; then
    docs_project "$TMP/proj_example" "$example_terms {ocibuild, [{sign_key, \"cosign.key\"}]}."
    install_check "rebar.config.example's plugin lines" "$TMP/proj_example" example
else
    fail "rebar.config.example's plugin lines name a git_subdir" "$example_terms"
fi

for pid in $SERVERS; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done

# --- no orphans -----------------------------------------------------------------

# Any process of this run's programs (all under $TMP) still running is an orphan.
left=
for cmdline in /proc/[0-9]*/cmdline; do
    args=$(tr '\0' ' ' 2>/dev/null <"$cmdline") || continue
    case "$args" in
    "$TMP"/*/ocisign\ port*) left="$left${cmdline%/cmdline}: $args"$'\n' ;;
    esac
done
if [ -n "$left" ]; then
    fail "no ocisign port process left" "$left"
else
    pass "no ocisign port process left"
fi

finish
