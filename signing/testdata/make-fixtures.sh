#!/bin/sh
# Documents how every key fixture in this directory was made. Tests never run
# it: the fixtures are committed so `go test ./signing` needs no tools.
# Re-running it makes NEW random keys (and needs openssl 3 and cosign v2).
#
#   COSIGN=/tmp/cosigntools/v2/cosign sh make-fixtures.sh [all|openssl|cosign]
#
# The cosign part imports openssl keys, so run "openssl" before "cosign".
#
# Every encrypted fixture uses the documented test password below.
set -eu
cd "$(dirname "$0")"
PASSWORD=ocisign-test-password
COSIGN=${COSIGN:-/tmp/cosigntools/v2/cosign}
PART=${1:-all}

if [ "$PART" = all ] || [ "$PART" = openssl ]; then

# --- openssl: unencrypted private keys -------------------------------------
# ecparam -genkey without -noout writes an EC PARAMETERS block first.
openssl ecparam -name prime256v1 -genkey -out openssl-p256-sec1-params.pem
openssl ec -in openssl-p256-sec1-params.pem -out openssl-p256-sec1.pem
openssl pkcs8 -topk8 -nocrypt -in openssl-p256-sec1.pem -out openssl-p256-pkcs8.pem
# Explicit curve parameters instead of a curve name (Go cannot read them).
openssl ec -in openssl-p256-sec1.pem -param_enc explicit -out openssl-p256-sec1-explicit.pem
openssl pkcs8 -topk8 -nocrypt -in openssl-p256-sec1-explicit.pem -out openssl-p256-pkcs8-explicit.pem
openssl ecparam -name secp384r1 -genkey -noout -out openssl-p384-sec1.pem
openssl ecparam -name secp521r1 -genkey -noout -out openssl-p521-sec1.pem
openssl ecparam -name secp256k1 -genkey -out openssl-secp256k1-sec1.pem
openssl pkcs8 -topk8 -nocrypt -in openssl-secp256k1-sec1.pem -out openssl-secp256k1-pkcs8.pem
openssl genrsa -out openssl-rsa1024-pkcs8.pem 1024
openssl genrsa -traditional -out openssl-rsa2048-pkcs1.pem 2048
openssl pkcs8 -topk8 -nocrypt -in openssl-rsa2048-pkcs1.pem -out openssl-rsa2048-pkcs8.pem
openssl genrsa -out openssl-rsa4096-pkcs8.pem 4096
openssl genrsa -traditional -out openssl-rsa8192-pkcs1.pem 8192
# Below 1024 bits Go's x509 refuses to parse at all; ocisign must still say "unsupported size".
openssl genrsa -traditional -out openssl-rsa512-pkcs1.pem 512
openssl pkcs8 -topk8 -nocrypt -in openssl-rsa512-pkcs1.pem -out openssl-rsa512-pkcs8.pem
openssl ecparam -name secp224r1 -genkey -noout -out openssl-p224-sec1.pem
openssl genpkey -algorithm ed25519 -out openssl-ed25519-pkcs8.pem
openssl genpkey -algorithm ed448 -out openssl-ed448-pkcs8.pem
openssl dsaparam -out dsaparam.tmp 2048
openssl gendsa -out openssl-dsa-pkcs8.pem dsaparam.tmp
# openssl 3 "dsa" writes the traditional DSA PRIVATE KEY form by default.
openssl dsa -in openssl-dsa-pkcs8.pem -out openssl-dsa-traditional.pem
rm -f dsaparam.tmp

# --- openssl: encrypted by openssl (not cosign's format) --------------------
openssl pkcs8 -topk8 -v2 aes-256-cbc -passout "pass:$PASSWORD" \
  -in openssl-p256-sec1.pem -out openssl-p256-pkcs8-encrypted.pem
openssl rsa -aes256 -traditional -passout "pass:$PASSWORD" \
  -in openssl-rsa2048-pkcs1.pem -out openssl-rsa2048-pkcs1-encrypted.pem

# --- openssl: public keys and a certificate ---------------------------------
openssl ec -in openssl-p256-sec1.pem -pubout -out openssl-p256.pub
openssl ec -in openssl-p256-sec1-explicit.pem -pubout -param_enc explicit -out openssl-p256-explicit.pub
openssl ec -in openssl-p384-sec1.pem -pubout -out openssl-p384.pub
openssl ec -in openssl-secp256k1-sec1.pem -pubout -out openssl-secp256k1.pub
openssl rsa -in openssl-rsa2048-pkcs1.pem -pubout -out openssl-rsa2048.pub
openssl rsa -in openssl-rsa2048-pkcs1.pem -RSAPublicKey_out -out openssl-rsa2048-pkcs1.pub
openssl rsa -in openssl-rsa1024-pkcs8.pem -pubout -out openssl-rsa1024.pub
openssl rsa -in openssl-rsa512-pkcs1.pem -pubout -out openssl-rsa512.pub
openssl ec -in openssl-p224-sec1.pem -pubout -out openssl-p224.pub
openssl pkey -in openssl-ed448-pkcs8.pem -pubout -out openssl-ed448.pub
openssl pkey -in openssl-ed25519-pkcs8.pem -pubout -out openssl-ed25519.pub
openssl pkey -in openssl-dsa-pkcs8.pem -pubout -out openssl-dsa.pub
openssl req -x509 -new -key openssl-p256-sec1.pem -subj /CN=ocisign-test -days 3650 \
  -out openssl-p256-cert.pem

# --- not keys -----------------------------------------------------------------
printf '' >empty.key
printf 'this is not a key file\n' >not-a-key.txt

fi

if [ "$PART" = all ] || [ "$PART" = cosign ]; then
# --- cosign v2 ------------------------------------------------------------------
# generate-key-pair writes cosign.key/cosign.pub in the current directory.
tmp=$(mktemp -d)
(cd "$tmp" && COSIGN_PASSWORD=$PASSWORD "$COSIGN" generate-key-pair)
mv "$tmp/cosign.key" cosign-p256.key
mv "$tmp/cosign.pub" cosign-p256.pub
(cd "$tmp" && COSIGN_PASSWORD= "$COSIGN" generate-key-pair)
mv "$tmp/cosign.key" cosign-p256-empty-password.key
mv "$tmp/cosign.pub" cosign-p256-empty-password.pub
# import-key-pair encrypts openssl keys into cosign's format.
for k in openssl-p384-sec1 openssl-p521-sec1 openssl-rsa2048-pkcs1 openssl-rsa4096-pkcs8 openssl-ed25519-pkcs8; do
  name=$(echo "$k" | sed -e 's/^openssl-/cosign-imported-/' -e 's/-\(sec1\|pkcs1\|pkcs8\)$//')
  COSIGN_PASSWORD=$PASSWORD "$COSIGN" import-key-pair --key "$k.pem" -o "$tmp/$name" -y
  mv "$tmp/$name.key" "$name.key"
  mv "$tmp/$name.pub" "$name.pub"
done
rmdir "$tmp"
# cosign v1 wrote the same JSON body under an older PEM label; cosign still loads it.
sed 's/ENCRYPTED SIGSTORE PRIVATE KEY/ENCRYPTED COSIGN PRIVATE KEY/' cosign-p256.key >cosign-p256-legacy-label.key

# A signature made by cosign itself over a known payload, for Verifier tests.
printf '%s' '{"critical":{"identity":{"docker-reference":"127.0.0.1:5055/test/app"},"image":{"docker-manifest-digest":"sha256:ef9f14c3b3e6fa3b4fc6d8a4e3d1e0a0b8b4ed6fda3e5d4a1bd2e1a1f0c9be82"},"type":"cosign container image signature"},"optional":null}' >payload.json
COSIGN_PASSWORD=$PASSWORD "$COSIGN" sign-blob --key cosign-p256.key --tlog-upload=false -y \
  --output-signature payload.json.cosign-p256.sig payload.json
fi
