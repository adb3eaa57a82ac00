#!/usr/bin/env bash
# Query benchmark against a local S3 server of its own (ephemeral port).
#
#   bench/query.sh [VECTORS]          default 1000000; 0 skips the large index
#
# Two indexes: the sample corpus (corpus/, ingested) and a synthetic index of
# VECTORS chunks of the model's dimension (`ragmap bench make-index`: made-up
# texts from 2000 topics, a model fitted on them, one IVF segment). For each:
#   1. `ragmap bench search`: in-process search time of raw FAISS, vindex_search
#      and a memory-mode qindex on the same queries; recall@10 of the IVF
#      configuration against exact search, and recall and time at other nprobe;
#   2. per backing mode, `ragmap serve` on loopback under `ragmap bench load`
#      (closed loop, keep-alive clients): QPS and p50/p95/p99 latency, storage
#      requests and bytes per query (the server's /metrics, stages query.*,
#      over the measured window), the server's resident memory (VmRSS after
#      the run, VmHWM the peak), and what loading cost (/v1/status).
# Prints markdown tables; everything is also in $work/results.jsonl.
#
# Env: RAGMAP_BIN (default build/ragmap), RAGMAP_BENCH_DIR (work directory,
# default a fresh one under /tmp, removed at the end unless KEEP=1),
# SECONDS_PER_MODE (default 10), CLIENTS (default 16 for memory and cached
# mode, 8 for pointer and object), NLIST (IVF lists of the large index,
# default 1024: k-means on 2 cores stays at a few minutes), TARGET_RECALL
# (default 0.95: the large index's nprobe is the smallest reaching it on
# held-out queries), LARGE_OBJECT_CLIENTS (default 4).
# Not part of ctest: it takes minutes (the large index ~10 with 1M vectors).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${RAGMAP_BIN:-$top/build/ragmap}
vectors=${1:-1000000}
secs=${SECONDS_PER_MODE:-10}
nlist=${NLIST:-1024}
target=${TARGET_RECALL:-0.95}
[ -x "$bin" ] || { echo "bench: no ragmap binary at $bin (build first or set RAGMAP_BIN)" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench: jq missing (scripts/setup.sh installs it)" >&2; exit 2; }
work=${RAGMAP_BENCH_DIR:-$(mktemp -d /tmp/ragmap-bench-query.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
srv_pid=
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
	# the store keeps its objects in RAM: KEEP=1 leaves it running for
	# bench/lancedb/run.sh (scripts/s3-local.sh stop "$work/s3" ends it)
	if [ "${KEEP:-0}" = 1 ]; then
		echo "bench: kept $work; its S3 store still runs" >&2
	else
		"$top/scripts/s3-local.sh" stop "$work/s3" >/dev/null 2>&1 || true
		rm -rf "$work"
	fi
}
trap cleanup EXIT
cd "$work"

"$top/scripts/s3-local.sh" start "$work/s3" 0 >/dev/null
. "$work/s3/s3.env"
unset RAGMAP_CONFIG RAGMAP_QUERY_TOKEN
export RAGMAP_LOCAL_DIR=$work/local RAGMAP_SOURCE_PREFIX=bench-src/ RAGMAP_QUERY_RELOAD_S=0 \
	RAGMAP_QUERY_LOG_PREFIX=bench-logs/ RAGMAP_QUERY_TIMEOUT_MS=600000
: >"$work/results.jsonl"

echo "# ragmap query benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo) RAM"
echo "# ragmap $("$bin" --version | awk '{print $2}') ($(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')), S3: single-node Ceph RGW on loopback at $AWS_ENDPOINT_URL"
echo

# metric FILE SAMPLE: one value of a /metrics dump (0 if absent)
metric() { awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }' "$1"; }
# storage FILE: GETs and bytes of the query stages (query.*), "requests bytes"
storage() {
	awk '/^ragmap_storage_requests_total\{stage="query\.[a-z]+",/ && !/query\.(load|reload|log)"/ { r += $2 }
	     /^ragmap_storage_bytes_total\{stage="query\.[a-z]+",/ && !/query\.(load|reload|log)"/ { b += $2 }
	     END { printf "%d %d\n", r, b }' "$1"
}

# serve MODE: start the server in the background; sets srv_pid and srv_url
serve() {
	"$bin" serve --mode "$1" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
	srv_pid=$!
	for _ in $(seq 6000); do
		grep -q "listening on" "$work/serve.out" 2>/dev/null && break
		kill -0 "$srv_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
		sleep 0.1
	done
	srv_url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/serve.out")
}
stop() { kill -TERM "$srv_pid"; wait "$srv_pid" || { echo "bench: the $1 server exited $?" >&2; tail -40 "$work/serve.err" >&2; }; srv_pid=; }

# modes NAME QUERIES: the HTTP table for the current index (QUERIES "": the
# built-in queries on the sample corpus)
modes() {
	local name=$1 mode clients secs_m load q0 q1 s0 s1 b0 b1 rss hwm st
	local -a qargs=()
	[ -n "$2" ] && qargs=(--queries "$2")
	echo "| mode | clients | QPS | p50 ms | p95 ms | p99 ms | storage GETs/query | storage KiB/query | server RSS MB (peak) | load: ms, GETs, MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for mode in memory pointer cached object; do
		clients=${CLIENTS:-$([ $mode = memory ] || [ $mode = cached ] && echo 16 || echo 8)}
		secs_m=$secs
		if [ "$name" = large ] && [ $mode = object ]; then
			clients=${LARGE_OBJECT_CLIENTS:-4}
		fi
		serve $mode
		curl -s "$srv_url/v1/status" >"$work/status.json"
		# warm-up (connections, caches in cached mode), then the measured run
		"$bin" bench load --url "$srv_url" --clients "$clients" --duration 2 "${qargs[@]}" \
			-k 10 >/dev/null 2>&1 || true
		curl -s "$srv_url/metrics" >"$work/m0"
		load=$("$bin" bench load --url "$srv_url" --clients "$clients" --duration "$secs_m" \
			"${qargs[@]}" -k 10 --json 2>"$work/load.err") || { cat "$work/load.err" >&2; }
		curl -s "$srv_url/metrics" >"$work/m1"
		rss=$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$srv_pid/status")
		hwm=$(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$srv_pid/status")
		stop $mode
		q0=$(metric "$work/m0" 'ragmap_queries_total{outcome="ok"}')
		q1=$(metric "$work/m1" 'ragmap_queries_total{outcome="ok"}')
		read -r s0 b0 < <(storage "$work/m0")
		read -r s1 b1 < <(storage "$work/m1")
		st=$(jq -r '"\(.load.ms | floor), \(.load.storage.requests), \(.load.storage.bytes / 1048576 * 10 | floor / 10)"' "$work/status.json")
		echo "$load" | jq -r --arg mode "$mode" --argjson c "$clients" --argjson dq $((q1 - q0)) \
			--argjson ds $((s1 - s0)) --argjson db $((b1 - b0)) --arg rss "$rss" --arg hwm "$hwm" --arg st "$st" '
			"| \($mode) | \($c) | \(.qps | floor) | \(.p50_ms * 100 | round / 100) | \(.p95_ms * 100 | round / 100) | \(.p99_ms * 100 | round / 100) | \(if $dq > 0 then ($ds / $dq * 100 | round / 100) else "-" end) | \(if $dq > 0 then ($db / $dq / 1024 * 10 | round / 10) else "-" end) | \($rss) (\($hwm)) | \($st) |"'
		echo "$load" | jq -c --arg index "$name" --arg mode "$mode" --argjson ds $((s1 - s0)) --argjson db $((b1 - b0)) \
			--argjson dq $((q1 - q0)) --argjson rss "$rss" --argjson hwm "$hwm" --slurpfile status "$work/status.json" \
			'. + {index: $index, mode: $mode, storage_requests: $ds, storage_bytes: $db, server_queries: $dq,
			      rss_mb: $rss, hwm_mb: $hwm, load: $status[0].load}' >>"$work/results.jsonl"
	done
}

# ---- the sample corpus
export RAGMAP_INDEX_NAME=bench-sample
"$bin" s3 put "$top/corpus" bench-src/ >/dev/null
"$bin" ingest >"$work/ingest.out" 2>&1 || { cat "$work/ingest.out" >&2; exit 1; }
"$bin" s3 get indexes/bench-sample/LATEST - | jq -r .manifest | xargs -I{} "$bin" s3 get {} - >"$work/m.json"
echo "## Sample corpus: $(jq .stats.documents "$work/m.json") documents, $(jq .stats.chunks "$work/m.json") chunks, $(jq -r '[.segments[] | "\(.kind) (nlist \(.nlist), nprobe \(.nprobe))"] | join(", ")' "$work/m.json"); the 20 built-in queries, k 10"
echo
"$bin" bench search --repeat 20 --json >"$work/search.out"
grep -v '^{' "$work/search.out"
grep '^{' "$work/search.out" | jq -c '{index: "sample", search: .}' >>"$work/results.jsonl"
echo
modes sample ""
echo

# ---- the same corpus as an IVF index (so object mode probes lists)
export RAGMAP_INDEX_NAME=bench-sample-ivf RAGMAP_INDEX_IVF_THRESHOLD=100 RAGMAP_LOCAL_DIR=$work/local-ivf
"$bin" ingest >"$work/ingest.out" 2>&1 || { cat "$work/ingest.out" >&2; exit 1; }
unset RAGMAP_INDEX_IVF_THRESHOLD
"$bin" s3 get indexes/bench-sample-ivf/LATEST - | jq -r .manifest | xargs -I{} "$bin" s3 get {} - >"$work/m.json"
echo "## Sample corpus as IVF: $(jq -r '[.segments[] | "\(.kind) (nlist \(.nlist), nprobe \(.nprobe))"] | join(", ")' "$work/m.json")"
echo
"$bin" bench search --repeat 20 --json >"$work/search.out"
grep -v '^{' "$work/search.out"
grep '^{' "$work/search.out" | jq -c '{index: "sample-ivf", search: .}' >>"$work/results.jsonl"
echo
modes sample-ivf ""
echo

# ---- the large synthetic index
if [ "$vectors" -gt 0 ]; then
	export RAGMAP_INDEX_NAME=bench-large
	echo "## Synthetic index: $vectors vectors"
	echo
	/usr/bin/env time -f "%e s, max RSS %M KB" "$bin" bench make-index --chunks "$vectors" --nlist "$nlist" --target-recall "$target" \
		--queries-out "$work/large-queries" --queries 1000 >"$work/make.out" 2>"$work/make.err" ||
		{ cat "$work/make.out" "$work/make.err" >&2; exit 1; }
	sed 's/^/    /' "$work/make.out"
	echo "    make-index: $(tail -1 "$work/make.err")"
	echo
	"$bin" bench search --queries "$work/large-queries" --repeat 1 --json >"$work/search.out"
	grep -v '^{' "$work/search.out"
	grep '^{' "$work/search.out" | jq -c '{index: "large", search: .}' >>"$work/results.jsonl"
	echo
	modes large "$work/large-queries"
fi
