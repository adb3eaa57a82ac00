#!/usr/bin/env bash
# Load benchmark: the CI load test (tests/integration/query_load.sh) at full
# length against a local S3 server of its own: per backing mode, 64
# keep-alive clients for 60 s with a hot reload halfway, zero failed
# requests, RSS before and after. Prints the table the README shows.
#
#   bench/load.sh [SECONDS]        default 60
#
# Env: RAGMAP_BIN (default build/ragmap), CLIENTS (default 64).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${RAGMAP_BIN:-$top/build/ragmap}
[ -x "$bin" ] || { echo "bench: no ragmap binary at $bin (build first or set RAGMAP_BIN)" >&2; exit 2; }
work=$(mktemp -d /tmp/ragmap-bench-load.XXXXXX)
cleanup() {
	"$top/scripts/s3-local.sh" stop "$work/s3" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
"$top/scripts/s3-local.sh" start "$work/s3" 0 >/dev/null
RAGMAP_TEST_S3_DIR=$work/s3 RAGMAP_BIN=$bin RAGMAP_SOURCE_DIR=$top \
	RAGMAP_TEST_LOAD_S=${1:-60} RAGMAP_TEST_LOAD_CLIENTS=${CLIENTS:-64} \
	bash "$top/tests/integration/query_load.sh"
