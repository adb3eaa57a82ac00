#!/usr/bin/env bash
# ragmap daemon: polls the source prefix and commits what changed; SIGHUP
# reloads the configuration; SIGTERM finishes the batch, commits, exits 0.
set -uo pipefail
bin=${RAGMAP_BIN:?}
. "${RAGMAP_TEST_S3_DIR:?}/s3.env"
work=$(mktemp -d)
dpid=
trap '[ -n "$dpid" ] && kill -9 $dpid 2>/dev/null; rm -rf "$work"' EXIT
tag="daemon-$$-$RANDOM"
export RAGMAP_SOURCE_PREFIX=$tag/ RAGMAP_INDEX_NAME=$tag RAGMAP_LOCAL_DIR=$work/local
export RAGMAP_INGEST_POLL_S=1 RAGMAP_INGEST_REFIT_GROWTH=0
unset RAGMAP_CONFIG
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
version() { "$bin" s3 get "indexes/$tag/LATEST" - 2>/dev/null | sed -n 's/.*"version": *\([0-9]*\).*/\1/p'; }
wait_version() { # wait_version N: until LATEST is at least N (20 s at most)
	for _ in $(seq 1 200); do
		v=$(version)
		[ -n "$v" ] && [ "$v" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

for i in 1 2 3; do
	printf '# Doc %s\n\nDaemon test document number %s about object storage.\n' $i $i >"$work/d$i.md"
	"$bin" s3 put "$work/d$i.md" "$tag/d$i.md" >/dev/null
done
"$bin" daemon >"$work/out" 2>"$work/err" &
dpid=$!
wait_version 1 && echo "ok   first pass committed version 1" || fail "no version 1"
printf '# Doc 4\n\nA fourth document, about ranged GET requests.\n' >"$work/d4.md"
"$bin" s3 put "$work/d4.md" "$tag/d4.md" >/dev/null
wait_version 2 && echo "ok   new object picked up: version 2" || fail "no version 2"
kill -HUP $dpid
sleep 0.5
grep -q "reloading the configuration" "$work/err" && echo "ok   SIGHUP reloads" || fail "no reload on SIGHUP"
kill -0 $dpid 2>/dev/null && echo "ok   alive after SIGHUP" || fail "died on SIGHUP"
kill -TERM $dpid
wait $dpid
st=$?
dpid=
[ $st = 0 ] && echo "ok   SIGTERM exits 0" || fail "SIGTERM exit status $st"
docs=$("$bin" status | sed -n 's/^documents: \([0-9]*\) live.*/\1/p')
[ "$docs" = 4 ] && echo "ok   4 documents live" || fail "status says $docs live documents"
[ "$fails" = 0 ] || { cat "$work/err"; exit 1; }
