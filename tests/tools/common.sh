# Sourced (through ingest-common.sh or query-common.sh) by the shell tests:
# the ctest "s3" fixture's endpoint, a private namespace per test (source
# prefix, index name, model and query-log prefixes, local directory: the
# fixture's store has one bucket, "rag"), and the check/expect helpers.
#
# After sourcing: $bin, $top, $work (removed at exit unless RAGMAP_TEST_KEEP
# is set), $ns, $src, $idx, $root, $fails; `cleanup` runs at exit (a test
# that sets its own EXIT trap calls it).
set -uo pipefail
bin=${RAGMAP_BIN:?}
top=${RAGMAP_SOURCE_DIR:?}
# endpoint and credentials of the fixture's store (scripts/s3-local.sh)
. "${RAGMAP_TEST_S3_DIR:?}/s3.env"
unset RAGMAP_CONFIG RAGMAP_QUERY_TOKEN RAGMAP_TEST_PAUSE_AFTER_LIST_MS
work=$(mktemp -d)
fails=0
ns="$(basename "$0" .sh)-$$-$RANDOM"
src="src-$ns/"
idx="$ns"
root="indexes/$idx/"
export RAGMAP_SOURCE_PREFIX=$src RAGMAP_INDEX_NAME=$idx RAGMAP_LOCAL_DIR=$work/local \
	RAGMAP_MODEL_PREFIX="models-$ns/" RAGMAP_QUERY_LOG_PREFIX="logs-$ns/queries/"
# No automatic refit unless a test asks for one (ingest_model_refresh.sh):
# when ingest refits depends on the order of passes, and most tests count
# versions or compare an index with one built another way.
export RAGMAP_INGEST_REFIT_UNKNOWN=0 RAGMAP_INGEST_REFIT_GROWTH=0
cd "$work"

# at exit: what a helper started (kill_servers, if defined), then $work
cleanup() {
	if declare -F kill_servers >/dev/null; then kill_servers; fi
	# RAGMAP_TEST_KEEP=1 keeps the work directory to read after a failure
	if [ -n "${RAGMAP_TEST_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

# check NAME WANT_STATUS COMMAND...: run, keep stdout in $work/out and
# stderr in $work/err, compare the exit status.
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

# re_quote TEXT: TEXT as a grep -E pattern that matches it literally
re_quote() { printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g'; }

# expect NAME PATTERN FILE / expect_not NAME PATTERN FILE (grep -E). A
# missing or unreadable FILE (grep exit 2) fails either: expect_not must not
# pass on a file that was never written.
expect() {
	grep -Eq -- "$2" "$3"
	case $? in
	0) ok "$1" ;;
	1) bad "$1: no /$2/ in $3"; sed 's/^/     | /' "$3" | tail -30 ;;
	*) bad "$1: cannot search $3 (missing or unreadable)" ;;
	esac
}
expect_not() {
	grep -Eq -- "$2" "$3"
	case $? in
	0) bad "$1: /$2/ found in $3"; grep -E -- "$2" "$3" | sed 's/^/     | /' | head ;;
	1) ok "$1" ;;
	*) bad "$1: cannot search $3 (missing or unreadable)" ;;
	esac
}

# equal NAME GOT WANT
equal() {
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got \"$2\", want \"$3\""; fi
}

# keys PREFIX: the keys under PREFIX, one a line (`s3 ls -r` without size and ETag)
keys() { "$bin" s3 ls -r "$1" | sed -E 's/^ *[0-9]+ +[0-9a-f-]+ +//'; }

# Documents in two versions for tests that change a source prefix: names[]
# (relative paths, under both $work/A and $work/B), state[] the version in
# the store ("" when absent). put_doc I VERSION uploads one, rm_doc I removes it.
declare -a state
put_doc() {
	"$bin" s3 put "$work/$2/${names[$1]}" "$src${names[$1]}" >/dev/null || bad "put ${names[$1]}"
	state[$1]=$2
}
rm_doc() {
	"$bin" s3 rm "$src${names[$1]}" >/dev/null || bad "rm ${names[$1]}"
	state[$1]=""
}

# listen_daemon [VAR=VALUE...]: `ragmap daemon --listen 127.0.0.1:0` in the
# background with the extra environment (stdout and stderr in
# $work/daemon.out and .err); sets $dpid, and $dport once it printed its
# address (else says why and returns 1). daemon_status: its GET /v1/status.
listen_daemon() {
	env "$@" "$bin" daemon --listen 127.0.0.1:0 >"$work/daemon.out" 2>"$work/daemon.err" &
	dpid=$!
	for _ in $(seq 1 100); do
		dport=$(sed -n 's|^ragmap daemon: events on http://127.0.0.1:\([0-9]*\)/v1/events$|\1|p' "$work/daemon.out")
		[ -n "$dport" ] && { ok "daemon-listening ($dport)"; return 0; }
		sleep 0.1
	done
	bad "the daemon did not print its address"
	sed 's/^/     | /' "$work/daemon.err" | tail -20
	return 1
}
daemon_status() {
	curl -s -H "Authorization: Bearer ${RAGMAP_INGEST_TOKEN:-}" "http://127.0.0.1:$dport/v1/status"
}

finish() {
	if [ "$fails" = 0 ]; then echo "all passed"; else echo "$fails failed"; fi
	[ "$fails" = 0 ]
}

# torch_python: set $py to a python3 that has torch (Debian's python3-torch,
# which scripts/setup.sh installs; python3 on PATH may be a pyenv or venv
# interpreter without Debian's packages). RAGMAP_TEST_PYTHON goes first.
# Without one it says so as a failure and returns 1: never a skip.
torch_python() {
	py=""
	for c in ${RAGMAP_TEST_PYTHON:-} python3 /usr/bin/python3; do
		if "$c" -c 'import torch' 2>/dev/null; then py=$c; break; fi
	done
	if [ -z "$py" ]; then
		bad "no python3 with torch (install python3-torch: scripts/setup.sh)"
		return 1
	fi
	ok "python with torch: $py"
}
