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
bin=$(realpath "$bin") # the script works in $work
command -v jq >/dev/null || { echo "bench: jq missing (scripts/setup.sh installs it)" >&2; exit 2; }
. "$top/bench/mode-load.sh"
bench_work query
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
