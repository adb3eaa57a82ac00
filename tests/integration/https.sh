#!/usr/bin/env bash
# https endpoints: a local S3 server with a self-signed certificate; trusted
# through s3.ca_file it works end to end, untrusted it fails with one clear
# line naming the object.
set -uo pipefail
bin=${RAGMAP_BIN:?}
src=${RAGMAP_SOURCE_DIR:?}
work=$(mktemp -d)
trap '"$src/scripts/s3-local.sh" stop "$work/s3" >/dev/null 2>&1; rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
	-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null ||
	{ echo "FAIL cannot make a certificate"; exit 1; }
ep=$(S3_LOCAL_TLS_DIR=$work "$src/scripts/s3-local.sh" start "$work/s3" 0) || { echo "FAIL server"; exit 1; }
case "$ep" in https://*) echo "ok   server at $ep" ;; *) echo "FAIL not https: $ep"; exit 1 ;; esac
. "$work/s3/s3.env"
unset RAGMAP_CONFIG
fails=0
printf 'over tls\n' >"$work/f.txt"
RAGMAP_S3_CA_FILE=$work/cert.pem "$bin" s3 put "$work/f.txt" "tls/f.txt" >/dev/null &&
	echo "ok   put over https" || { echo "FAIL put over https"; fails=$((fails + 1)); }
got=$(RAGMAP_S3_CA_FILE=$work/cert.pem "$bin" s3 get "tls/f.txt" -)
[ "$got" = "over tls" ] && echo "ok   get over https" || { echo "FAIL get: $got"; fails=$((fails + 1)); }
RAGMAP_S3_MAX_RETRIES=0 "$bin" s3 get "tls/f.txt" - >/dev/null 2>"$work/err"
st=$?
if [ $st = 1 ] && grep -q "certificate" "$work/err" && grep -q "tls/f.txt" "$work/err"; then
	echo "ok   untrusted certificate refused: $(cat "$work/err")"
else
	echo "FAIL untrusted certificate: exit $st"; cat "$work/err"; fails=$((fails + 1))
fi
[ "$fails" = 0 ]
