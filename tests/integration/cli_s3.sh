#!/usr/bin/env bash
# The ragmap binary end to end: exit codes, s3 verbs, configuration errors,
# and no secret in any output. Runs against the ctest "s3" fixture.
set -uo pipefail
bin=${RAGMAP_BIN:?}
. "${RAGMAP_TEST_S3_DIR:?}/s3.env"
port=$(cat "$RAGMAP_TEST_S3_DIR/s3.port")
# a key pair of this test's own, so the secret is a marker to look for in
# every output
export AWS_ACCESS_KEY_ID=cli-$$-$RANDOM AWS_SECRET_ACCESS_KEY=cli-secret-value-xyz-$$
"${RAGMAP_SOURCE_DIR:?}/scripts/s3-local.sh" key "$RAGMAP_TEST_S3_DIR" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" ||
	{ echo "FAIL cannot add a key to the store"; exit 1; }
unset RAGMAP_CONFIG
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fails=0
check() { # check NAME WANT_STATUS COMMAND...
	local name=$1 want=$2
	shift 2
	"$@" >"$work/out" 2>"$work/err"
	local got=$?
	cat "$work/out" "$work/err" >>"$work/all"
	if [ "$got" != "$want" ]; then
		echo "FAIL $name: exit $got, want $want"; cat "$work/err"; fails=$((fails + 1))
	else
		echo "ok   $name"
	fi
}
expect() { # expect NAME PATTERN FILE
	if grep -q -- "$2" "$3"; then echo "ok   $1"; else echo "FAIL $1: no \"$2\" in"; cat "$3"; fails=$((fails + 1)); fi
}
p="cli-$$-$RANDOM"

check version 0 "$bin" --version
expect version-text "^ragmap [0-9]" "$work/out"
check help 0 "$bin" --help
check s3-help 0 "$bin" s3 --help
check no-command 2 "$bin"
check unknown-command 2 "$bin" frobnicate
expect unknown-command-msg 'unknown command "frobnicate"' "$work/err"
check bad-verb 2 "$bin" s3 frob

printf 'hello \xc3\xbc\n' >"$work/hello.txt"
check put 0 "$bin" s3 put "$work/hello.txt" "$p/dir/h é+%=.txt"
check ls 0 "$bin" s3 ls -r "$p/"
expect ls-line "9  .*$p/dir/h é+%=.txt" "$work/out"
check ls-delim 0 "$bin" s3 ls "$p/"
expect ls-pre "PRE .*$p/dir/" "$work/out"
check get-stdout 0 "$bin" s3 get "$p/dir/h é+%=.txt" -
cmp -s "$work/out" "$work/hello.txt" && echo "ok   get-bytes" || { echo "FAIL get-bytes"; fails=$((fails + 1)); }
check get-file 0 "$bin" s3 get "$p/dir/h é+%=.txt" "$work/copy.txt"
cmp -s "$work/copy.txt" "$work/hello.txt" && echo "ok   get-file-bytes" || { echo "FAIL get-file-bytes"; fails=$((fails + 1)); }
check stat 0 "$bin" s3 stat "$p/dir/h é+%=.txt"
expect stat-size "^size: 9$" "$work/out"
check stats 0 "$bin" s3 stat "$p/dir/h é+%=.txt" --stats
expect stats-line "storage: cli 1 head" "$work/err"
check missing 1 "$bin" s3 get "$p/nope" -
expect missing-msg "no such key \"$p/nope\" in bucket \"rag\"" "$work/err"
[ "$(wc -l <"$work/err")" = 1 ] && echo "ok   one-line-error" || { echo "FAIL one-line-error"; fails=$((fails + 1)); }
# virtual-hosted addressing: http://rag.s3.localhost:PORT/key (curl resolves
# *.localhost to loopback; the local server maps <bucket>.s3.localhost)
RAGMAP_S3_PATH_STYLE=false AWS_ENDPOINT_URL=http://s3.localhost:$port \
	check vhost-put 0 "$bin" s3 put "$work/hello.txt" "$p/vhost/a b.txt"
RAGMAP_S3_PATH_STYLE=false AWS_ENDPOINT_URL=http://s3.localhost:$port \
	check vhost-ls 0 "$bin" s3 ls -r "$p/vhost/"
expect vhost-ls-line "$p/vhost/a b.txt" "$work/out"
check vhost-path-style-get 0 "$bin" s3 get "$p/vhost/a b.txt" -
cmp -s "$work/out" "$work/hello.txt" && echo "ok   vhost-bytes" || { echo "FAIL vhost-bytes"; fails=$((fails + 1)); }
check rm 0 "$bin" s3 rm "$p/dir/h é+%=.txt"
check gone 1 "$bin" s3 stat "$p/dir/h é+%=.txt"

# configuration: file:line and key; bad env value names the variable; exit 2
printf '[s3]\nbucket = rag\nbukket = x\n' >"$work/bad.conf"
check bad-key 2 "$bin" --config "$work/bad.conf" s3 ls
expect bad-key-msg "bad.conf:3: unknown key \"bukket\" in section \[s3\]" "$work/err"
check bad-key-after 2 "$bin" s3 ls --config "$work/bad.conf"
RAGMAP_S3_PATH_STYLE=sometimes check bad-env 2 "$bin" s3 ls
expect bad-env-msg "RAGMAP_S3_PATH_STYLE" "$work/err"
RAGMAP_CONFIG="$work/bad.conf" check env-config 2 "$bin" s3 ls
RAGMAP_S3_BUCKET=no-such-bucket check no-bucket 1 "$bin" s3 ls
expect no-bucket-msg 'no such bucket "no-such-bucket"' "$work/err"
AWS_ACCESS_KEY_ID=AKIDCLITEST check bad-key-id 1 "$bin" s3 ls
expect bad-key-id-msg "invalid access key id" "$work/err"
check show 0 "$bin" config show
expect show-redacted "access_key_id = <redacted>" "$work/out"

# the committed config/ragmap.conf is exactly the generated example (defaults in sync)
"$bin" config example >"$work/example.conf"
if cmp -s "$work/example.conf" "${RAGMAP_SOURCE_DIR:?}/config/ragmap.conf"; then
	echo "ok   config-file-in-sync"
else
	echo "FAIL config/ragmap.conf differs from 'ragmap config example' (regenerate it)"; fails=$((fails + 1))
fi
"$bin" --config "${RAGMAP_SOURCE_DIR:?}/config/ragmap.conf" config show >/dev/null &&
	echo "ok   config-file-loads" || { echo "FAIL config/ragmap.conf does not load"; fails=$((fails + 1)); }

# secrets never appear in anything printed above
if grep -q -e "cli-secret-value-xyz" -e "AKIDCLITEST" "$work/all"; then
	echo "FAIL a secret was printed"; fails=$((fails + 1))
else
	echo "ok   no-secrets"
fi
echo "$((fails == 0 ? 1 : 0)) passed, $fails failed" >/dev/null
[ "$fails" = 0 ]
