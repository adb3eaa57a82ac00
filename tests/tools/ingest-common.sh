# Sourced by tests/integration/ingest_*.sh: the ctest "s3" fixture's
# endpoint, a private namespace per test (source prefix, index name, model
# prefix, local directory: s3rver's fixture has one bucket, "rag"), and
# check/expect helpers in the style of cli_s3.sh.
#
# After sourcing: $bin, $work (removed at exit), $src (the source prefix),
# $idx (the index name), $root (the index prefix in the bucket), $cat (the
# local catalog), $fails.
set -uo pipefail
bin=${RAGMAP_BIN:?}
top=${RAGMAP_SOURCE_DIR:?}
port=$(cat "${RAGMAP_TEST_S3_DIR:?}/s3.port")
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
unset RAGMAP_CONFIG RAGMAP_TEST_PAUSE_AFTER_LIST_MS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fails=0
ns="$(basename "$0" .sh)-$$-$RANDOM"
src="src-$ns/"
idx="$ns"
root="indexes/$idx/"
export RAGMAP_SOURCE_PREFIX=$src RAGMAP_INDEX_NAME=$idx RAGMAP_LOCAL_DIR=$work/local \
	RAGMAP_MODEL_PREFIX="models-$ns/"
cat=$work/local/$idx/catalog.sqlite

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

# sql QUERY: run against the local catalog (read-only), one row per line.
sql() { sqlite3 -readonly -batch -noheader "$cat" "$1"; }

# The GETs of the last ingest's fetch stage (0 when the stage is absent).
fetch_gets() {
	sed -n 's/^  ingest\.fetch *\([0-9]*\) requests.*/\1/p' "$work/out" | head -1 | grep . || echo 0
}

# Every key the manifest LATEST names (segments, catalog, model).
manifest_keys() {
	local mkey
	"$bin" s3 get "${root}LATEST" - >"$work/latest.json" || return 1
	mkey=$(sed -n 's/.*"manifest": *"\([^"]*\)".*/\1/p' "$work/latest.json")
	"$bin" s3 get "$mkey" - >"$work/manifest.json" || return 1
	echo "$mkey"
	grep -o '"key": *"[^"]*"' "$work/manifest.json" | sed 's/.*"key": *"\(.*\)"/\1/'
}

finish() {
	if [ "$fails" = 0 ]; then echo "all passed"; else echo "$fails failed"; fi
	[ "$fails" = 0 ]
}
