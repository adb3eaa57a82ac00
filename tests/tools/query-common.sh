# Sourced by tests/integration/query_*.sh: the ctest "s3" fixture's endpoint,
# a private namespace per test (source prefix, index name, model and log
# prefixes, local directory), check/expect helpers in the style of
# cli_s3.sh, and helpers to run `ragmap serve` in the background.
#
# After sourcing: $bin, $top, $work (removed at exit), $src, $idx, $root,
# $fails. Servers started with `serve` are stopped at exit if still running.
set -uo pipefail
bin=${RAGMAP_BIN:?}
top=${RAGMAP_SOURCE_DIR:?}
s3port=$(cat "${RAGMAP_TEST_S3_DIR:?}/s3.port")
export AWS_ENDPOINT_URL=http://127.0.0.1:$s3port
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
unset RAGMAP_CONFIG RAGMAP_QUERY_TOKEN
command -v jq >/dev/null || { echo "FAIL jq is required (scripts/setup.sh installs it)"; exit 1; }
work=$(mktemp -d)
fails=0
ns="$(basename "$0" .sh)-$$-$RANDOM"
src="src-$ns/"
idx="$ns"
root="indexes/$idx/"
export RAGMAP_SOURCE_PREFIX=$src RAGMAP_INDEX_NAME=$idx RAGMAP_LOCAL_DIR=$work/local \
	RAGMAP_MODEL_PREFIX="models-$ns/" RAGMAP_QUERY_LOG_PREFIX="logs-$ns/queries/"
cd "$work"

declare -A spid sport
cleanup() {
	for name in "${!spid[@]}"; do kill -KILL "${spid[$name]}" 2>/dev/null; done
	wait 2>/dev/null
	# RAGMAP_TEST_KEEP=1 keeps the work directory to read after a failure
	if [ -n "${RAGMAP_TEST_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

# check NAME WANT_STATUS COMMAND...: stdout in $work/out, stderr in $work/err.
check() {
	local name=$1 want=$2
	shift 2
	"$@" >"$work/out" 2>"$work/err"
	local got=$?
	if [ "$got" != "$want" ]; then
		bad "$name: exit $got, want $want"
		sed 's/^/     | /' "$work/out" "$work/err" | tail -30
	else
		ok "$name"
	fi
}

# expect NAME PATTERN FILE / expect_not NAME PATTERN FILE (grep -E)
expect() {
	if grep -Eq -- "$2" "$3"; then ok "$1"; else bad "$1: no /$2/ in $3"; sed 's/^/     | /' "$3" | tail -30; fi
}
expect_not() {
	if grep -Eq -- "$2" "$3"; then bad "$1: /$2/ found in $3"; grep -E -- "$2" "$3" | sed 's/^/     | /' | head; else ok "$1"; fi
}

# equal NAME GOT WANT
equal() {
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got \"$2\", want \"$3\""; fi
}

# jqtrue NAME FILE JQ-ARGS...: jq -e JQ-ARGS FILE must print exactly "true"
# (JQ-ARGS: the filter and options such as -s, -n, --arg, in any order).
jqtrue() {
	local name=$1 file=$2
	shift 2
	if [ "$(jq -e "$@" "$file" 2>&1)" = true ]; then
		ok "$name"
	else
		bad "$name: jq $*"
		head -c 1500 "$file" | sed 's/^/     | /'
		echo
	fi
}

# Upload the sample corpus under $src and ingest it (extra VAR=VALUE first).
ingest_corpus() {
	"$bin" s3 put "$top/corpus" "$src" >"$work/put.out" 2>&1 || { bad "upload corpus"; cat "$work/put.out"; return 1; }
	env "$@" "$bin" ingest >"$work/ingest.out" 2>&1 || { bad "ingest"; cat "$work/ingest.out"; return 1; }
}

# The manifest LATEST names, as JSON on stdout.
latest_manifest() {
	local mkey
	mkey=$("$bin" s3 get "${root}LATEST" - | jq -r .manifest) || return 1
	"$bin" s3 get "$mkey" -
}

# serve NAME MODE [VAR=VALUE...]: start `ragmap serve` on an ephemeral port
# with the extra environment; wait until it listens (or fails).
serve() {
	local name=$1 mode=$2 i
	shift 2
	env "$@" "$bin" serve --mode "$mode" --listen 127.0.0.1:0 >"$work/$name.out" 2>"$work/$name.err" &
	spid[$name]=$!
	for i in $(seq 600); do
		if grep -q "listening on" "$work/$name.out" 2>/dev/null; then
			sport[$name]=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$work/$name.out")
			return 0
		fi
		kill -0 "${spid[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	bad "serve $name ($mode) did not start"
	sed 's/^/     | /' "$work/$name.out" "$work/$name.err" | tail -30
	unset "spid[$name]"
	return 1
}

url() { echo "http://127.0.0.1:${sport[$1]}"; }

# stop NAME: SIGTERM, wait; the server must exit 0 with no sanitizer report
# (AddressSanitizer, LeakSanitizer or UBSan) in its stderr.
stop() {
	local name=$1 pid=${spid[$1]:-} st
	[ -n "$pid" ] || { bad "stop $name: not running"; return 1; }
	kill -TERM "$pid"
	wait "$pid"
	st=$?
	unset "spid[$name]"
	equal "$name-exit-status" "$st" 0
	expect_not "$name-no-sanitizer-report" "ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: .*Sanitizer" "$work/$name.err"
}

# post NAME BODY [curl args...]: POST /v1/query; prints the HTTP status, the
# body in $work/body.
post() {
	local name=$1 body=$2
	shift 2
	printf '%s' "$body" | curl -sS -o "$work/body" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' --data-binary @- "$@" "$(url "$name")/v1/query"
}

# get NAME PATH [curl args...]: prints the HTTP status, the body in $work/body.
get() {
	local name=$1 path=$2
	shift 2
	curl -sS -o "$work/body" -w '%{http_code}' "$@" "$(url "$name")$path"
}

# metric FILE NAME{LABELS}: the value of one sample in a /metrics dump (0 if absent).
metric() {
	awk -v m="$2" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }' "$1"
}

finish() {
	if [ "$fails" = 0 ]; then echo "all passed"; else echo "$fails failed"; fi
	[ "$fails" = 0 ]
}
