# Sourced by tests/integration/query_*.sh: tests/tools/common.sh (endpoint,
# namespace, helpers) plus helpers to run `ragmap serve` in the background
# (stopped at exit if still running) and to query it.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/common.sh"
command -v jq >/dev/null || { echo "FAIL jq is required (scripts/setup.sh installs it)"; exit 1; }

declare -A spid sport
kill_servers() {
	local name
	for name in "${!spid[@]}"; do kill -KILL "${spid[$name]}" 2>/dev/null; done
	wait 2>/dev/null
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
