#!/usr/bin/env bash
# Errors a user can act on: the environment is as strict as the file (an
# unknown RAGMAP_<SECTION>_<KEY> is an error naming it), a bad value is
# rejected by every command, the built-in default endpoint says it is one,
# `ingest --quiet` is quiet, and the help texts are current.
# Runs against the ctest "s3" fixture.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/common.sh"

# one_line NAME FILE: exactly one line (the CLI's one-line errors)
one_line() { equal "$1" "$(wc -l <"$2" | tr -d ' ')" 1; }

# refused NAME PATTERN CMD...: exit 2 with one line on stderr matching PATTERN
refused() {
	local name=$1 pattern=$2
	shift 2
	check "$name" 2 "$@"
	expect "$name-named" "$pattern" "$work/err"
	one_line "$name-one-line" "$work/err"
}

# --- 1. an unknown variable in a known section: exit 2 naming it ----------
# Every command that reads the configuration, also those that make no S3
# request (a model directory that does not exist would be exit 1: the
# configuration must be refused first). `config example` prints the
# template and reads nothing. A command that stopped checking would run:
# timeout ends the daemon and the server.
nodir=$work/no-model-dir
commands=("ingest" "daemon" "status" "model fit" "model import $nodir" "embed hello"
	"embed --model-dir $nodir hello" "serve --listen 127.0.0.1:0" "query hello" "cost"
	"compact" "gc" "verify" "s3 ls" "s3 notify show" "bench s3" "bench get src/"
	"bench embed --model-dir $nodir" "bench search" "config show")
name_of() { # a check's name: the command's words up to the first option or path
	local n=${1%% [-/]*}
	echo "${n// /-}"
}
for c in "${commands[@]}"; do
	# shellcheck disable=SC2086 # the command's words
	refused "env-unknown-$(name_of "$c")" 'environment variable RAGMAP_S3_BUKKET: unknown key "bukket" in section \[s3\]' \
		env RAGMAP_S3_BUKKET=x timeout 60 "$bin" $c
done
# as in the file
printf '[s3]\nbukket = x\n' >"$work/typo.conf"
check file-unknown 2 "$bin" --config "$work/typo.conf" status
expect file-unknown-named 'typo.conf:2: unknown key "bukket" in section \[s3\]' "$work/err"
# other sections too, even with an empty value
check env-unknown-query-empty 2 env RAGMAP_QUERY_MOOD= "$bin" config show
expect env-unknown-query-empty-named 'RAGMAP_QUERY_MOOD' "$work/err"
check env-lower-case 2 env RAGMAP_S3_Bucket=x "$bin" config show
expect env-lower-case-named 'RAGMAP_S3_Bucket: not a setting \(the name is upper case: RAGMAP_S3_BUCKET\)' "$work/err"
# left alone: no section name, or a listed non-setting (RAGMAP_SOURCE_DIR is
# set by ctest for every command of this test)
check env-no-section 0 env RAGMAP_BUKKET=x RAGMAP_TEST_ANYTHING=1 RAGMAP_LOG=warn "$bin" config show
check env-not-settings 0 env RAGMAP_LOCAL_KEY_ID=k RAGMAP_LOCAL_SECRET=s "$bin" config show
# a real key of the model section is a setting (and shown as set)
check env-model-dims 0 env RAGMAP_MODEL_DIMS=64 "$bin" config show
expect env-model-dims-applied '^dims = 64$' "$work/out"

# --- 2. a bad value: exit 2 from every command, naming where it came from --
for c in "${commands[@]}"; do
	# shellcheck disable=SC2086
	refused "env-bad-mode-$(name_of "$c")" 'environment variable RAGMAP_QUERY_MODE: query.mode: "foo" is not one of memory, pointer, cached, object' \
		env RAGMAP_QUERY_MODE=foo timeout 60 "$bin" $c
done
printf '[query]\nmode = foo\n' >"$work/mode.conf"
for c in "status" "s3 ls" "ingest"; do
	n=${c// /-}
	# shellcheck disable=SC2086
	check "file-bad-mode-$n" 2 "$bin" --config "$work/mode.conf" $c
	expect "file-bad-mode-$n-named" 'mode.conf: query.mode: "foo" is not one of' "$work/err"
done
check env-bad-hybrid 2 env RAGMAP_QUERY_HYBRID_METHOD=sum "$bin" status
expect env-bad-hybrid-named 'RAGMAP_QUERY_HYBRID_METHOD: query.hybrid_method: "sum" is not one of zscore, rrf' "$work/err"
printf '[query]\nhybrid_method = sum\n' >"$work/hybrid.conf"
check file-bad-hybrid 2 "$bin" --config "$work/hybrid.conf" s3 ls
expect file-bad-hybrid-named 'hybrid.conf:2: query.hybrid_method: "sum"' "$work/err"
# --mode on the command line is still checked by the command
check query-bad-mode-option 2 "$bin" query --mode foo hello
expect query-bad-mode-option-named 'unknown mode "foo" \(memory, pointer, cached, object\)' "$work/err"

# --- 3. the built-in default endpoint says so --------------------------------
# $work has no config/ragmap.conf and common.sh unset RAGMAP_CONFIG: the
# endpoint below is the built-in http://127.0.0.1:4570, where the tests run
# nothing (the fixture's store is on an ephemeral port).
nothing_on_4570() { ! (exec 3<>/dev/tcp/127.0.0.1/4570) 2>/dev/null; }
no_endpoint=(env -u AWS_ENDPOINT_URL -u RAGMAP_S3_ENDPOINT RAGMAP_S3_MAX_RETRIES=0
	RAGMAP_S3_CONNECT_TIMEOUT_MS=500)
note='^ragmap: note: endpoint http://127\.0\.0\.1:4570 is the built-in default \(no config file, no AWS_ENDPOINT_URL, no RAGMAP_S3_ENDPOINT\)$'
if nothing_on_4570; then
	check default-endpoint-fails 1 "${no_endpoint[@]}" "$bin" s3 ls
	expect default-endpoint-error '127\.0\.0\.1 port 4570' "$work/err"
	check default-endpoint-status-fails 1 "${no_endpoint[@]}" "$bin" status
else
	echo "note: something listens on 127.0.0.1:4570; only the notice is checked"
	"${no_endpoint[@]}" "$bin" s3 ls >"$work/out" 2>"$work/err"
fi
expect default-endpoint-note "$note" "$work/err"
equal default-endpoint-note-once "$(grep -c 'note:' "$work/err")" 1
# a file without s3.endpoint: still the default, and the notice says so
printf '[s3]\nbucket = rag\n' >"$work/noendpoint.conf"
"${no_endpoint[@]}" "$bin" --config "$work/noendpoint.conf" s3 ls >"$work/out" 2>"$work/err"
expect default-endpoint-file-note 'is the built-in default \(no s3\.endpoint in .*noendpoint\.conf, no AWS_ENDPOINT_URL, no RAGMAP_S3_ENDPOINT\)' "$work/err"
# --quiet suppresses the notice (the error still comes)
"${no_endpoint[@]}" "$bin" ingest --quiet >"$work/out" 2>"$work/err"
expect_not default-endpoint-quiet 'note:' "$work/err"
if nothing_on_4570; then expect default-endpoint-quiet-error '4570' "$work/err"; fi
# an endpoint set anywhere: no notice
env -u AWS_ENDPOINT_URL RAGMAP_S3_ENDPOINT=http://127.0.0.1:4570 RAGMAP_S3_MAX_RETRIES=0 \
	"$bin" s3 ls >"$work/out" 2>"$work/err"
expect_not env-endpoint-no-note 'note:' "$work/err"
check aws-endpoint-no-note 0 "$bin" s3 ls "$src"
expect_not aws-endpoint-no-note-err 'note:' "$work/err"
# query --server talks to the server, not to S3: no notice
"${no_endpoint[@]}" "$bin" query --server http://127.0.0.1:1 hello >"$work/out" 2>"$work/err"
expect_not query-server-no-note 'note:' "$work/err"

# --- 4. ingest --quiet: nothing on stdout or stderr on success -------------
mkdir -p "$work/docs"
printf '# Cats\n\nCats sleep most of the day and hunt at night.\n' >"$work/docs/cats.md"
printf '# Dogs\n\nDogs bark at the mail carrier and fetch sticks.\n' >"$work/docs/dogs.md"
printf 'Birds migrate south in the autumn and return in spring.\n' >"$work/docs/birds.txt"
check put-docs 0 "$bin" s3 put "$work/docs" "$src"
check ingest-quiet 0 "$bin" ingest --quiet
equal ingest-quiet-stdout "$(wc -c <"$work/out" | tr -d ' ')" 0
equal ingest-quiet-stderr "$(wc -c <"$work/err" | tr -d ' ')" 0
check status-after-quiet 0 "$bin" status
expect status-after-quiet-version '^version: +1 ' "$work/out"
check ingest-quiet-nothing-new 0 "$bin" ingest --quiet
equal ingest-quiet-nothing-new-output "$(cat "$work/out" "$work/err" | wc -c | tr -d ' ')" 0
# without --quiet it does report
printf 'Fish swim in schools.\n' >"$work/fish.txt"
check put-fish 0 "$bin" s3 put "$work/fish.txt" "${src}fish.txt"
check ingest-loud 0 "$bin" ingest
expect ingest-loud-summary '^committed version 2' "$work/out"

# --- 5. help texts ------------------------------------------------------------
check serve-help 0 "$bin" serve --help
expect serve-help-map '/v1/map' "$work/out"
expect serve-help-page 'GET +/ ' "$work/out"
expect serve-help-query 'POST /v1/query' "$work/out"
check top-help 0 "$bin" --help
expect top-help-bench '^  bench .*ingest.*query' "$work/out"
expect_not top-help-no-later 'later' "$work/out"

finish
