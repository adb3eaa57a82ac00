#!/usr/bin/env bash
# The deployment's figures (issue 12), on scripts/cluster.sh's deployment
# (Ceph RGW, 2 sharded daemons fed by RGW's persistent bucket
# notifications, 3 replicas in memory mode behind HAProxy, query.reload_s 1,
# ingest.poll_s 3600):
#
#   1. freshness: a document uploaded is answered through HAProxy how long
#      after its PUT returned? UPLOADS (20) documents, one at a time, each
#      with a word of its own; the time until an answer (bm25) names it.
#   2. query throughput: `ragmap bench load` with CLIENTS (16 and 64) for
#      SECONDS (15) against one replica directly, then against HAProxy in
#      front of all three.
#
#   bench/cluster.sh            results in bench/results/cluster.txt
#
# Env: RAGMAP_BIN (default build/ragmap), RESULTS, KEEP=1 keeps the work
# directory. Not part of ctest: it takes a few minutes. Ingestion docs/s
# with 1, 2 and 4 shards is bench/writers.sh with SHARDED=1.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${RAGMAP_BIN:-$top/build/ragmap}
results=${RESULTS:-$top/bench/results/cluster.txt}
uploads=${UPLOADS:-20}
secs=${SECONDS_EACH:-15}
[ -x "$bin" ] || { echo "bench: no ragmap binary at $bin" >&2; exit 2; }
work=$(mktemp -d /tmp/ragmap-bench-cluster.XXXXXX)
cdir=$work/cluster
cleanup() {
	RAGMAP_BIN=$bin "$top/scripts/cluster.sh" down "$cdir" >/dev/null 2>&1 || true
	[ "${KEEP:-0}" = 1 ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
unset RAGMAP_CONFIG AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
load0=$(cut -d' ' -f1-3 /proc/loadavg)
RAGMAP_CLUSTER_MODES="memory memory memory" RAGMAP_BIN=$bin "$top/scripts/cluster.sh" up "$cdir" >&2
. "$cdir/cluster.env"
export RAGMAP_LOCAL_DIR=$work/cli RAGMAP_LOG=warn
haproxy=http://127.0.0.1:$CLUSTER_HAPROXY_PORT
read -r -a rports <<<"$CLUSTER_REPLICA_PORTS"

# a persistent topic's first event comes 7-30 s late (src/s3/s3.h): warm
# both daemons' topics up with one document each before measuring
hits() { # hits URL WORD: the keys an answer names
	curl -s -XPOST "$1/v1/query" -d "{\"q\": \"$2\", \"k\": 3, \"retriever\": \"bm25\"}" |
		jq -r '.results[].key' 2>/dev/null || true
}
wait_answered() { # wait_answered KEY WORD LIMIT_S: seconds from now until HAProxy's answers name KEY
	local t0=$(date +%s%N) now
	while :; do
		hits "$haproxy" "$2" | grep -qxF "$1" && break
		now=$(date +%s%N)
		[ $(((now - t0) / 1000000000)) -ge "$3" ] && return 1
		sleep 0.02
	done
	now=$(date +%s%N)
	echo $(((now - t0) / 1000000))
}
echo "bench: warming the topics up..." >&2
for i in 1 2 3 4 5 6; do
	printf '# Warm %s\n\nwarmup%s text.\n' "$i" "$i" >"$work/w.md"
	"$bin" s3 put "$work/w.md" "source/bench/warm-$i.md" >/dev/null
done
for i in 1 2 3 4 5 6; do wait_answered "source/bench/warm-$i.md" "warmup$i" 120 >/dev/null ||
	{ echo "bench: warm-up document $i never answered" >&2; exit 1; }; done

echo "bench: freshness, $uploads uploads..." >&2
lat=()
for i in $(seq 1 "$uploads"); do
	word="freshness$i$RANDOM"
	printf '# Fresh %s\n\nA document about %s.\n' "$i" "$word" >"$work/f.md"
	"$bin" s3 put "$work/f.md" "source/bench/fresh-$i.md" >/dev/null
	ms=$(wait_answered "source/bench/fresh-$i.md" "$word" 60) || { echo "bench: upload $i never answered" >&2; exit 1; }
	lat+=("$ms")
done
fresh=$(printf '%s\n' "${lat[@]}" | sort -n | awk '{ v[NR] = $1 } END {
	printf "p50 %d ms, p90 %d ms, max %d ms (n = %d)", v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.999)], v[NR], NR }')
echo "bench: freshness $fresh" >&2

rows=()
for clients in 16 64; do
	for target in one three; do
		url=$haproxy
		[ "$target" = one ] && url=http://127.0.0.1:${rports[0]}
		echo "bench: $clients clients against $target replica(s)..." >&2
		"$bin" bench load --url "$url" --clients "$clients" --duration "$secs" --warmup 2 --json \
			>"$work/load-$clients-$target.json" 2>"$work/load.err" || true
		rows+=("$(jq -r --arg t "$target" --arg c "$clients" '"| \($c) | \(if $t == "one" then "1 (direct)" else "3 (HAProxy)" end) | \(.qps | floor) | \(.p50_ms * 100 | round / 100) | \(.p99_ms * 100 | round / 100) | \(.failed) |"' \
			"$work/load-$clients-$target.json")")
	done
done

{
	echo
	echo "## ragmap deployment benchmark ($(nproc) CPUs, $(date -u +%F); load average $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
	echo
	echo "scripts/cluster.sh: single-node Ceph RGW, 2 daemons (\`--shard I/2\`, persistent bucket notifications, ingest.poll_s 3600), 3 replicas in memory mode (query.reload_s 1) behind HAProxy; the sample corpus plus the benchmark's documents."
	echo
	echo "Freshness, PUT returned → first answer through HAProxy naming the document: $fresh."
	echo
	echo "| clients | replicas | q/s | p50 ms | p99 ms | failed |"
	echo "|---------|----------|-----|--------|--------|--------|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "Every process shares the same $(nproc) cores: three replicas cannot add CPU a single replica did not already have, so HAProxy in front of three measures the cost of the extra hop and what spreading buys when one replica is not already using every core."
} | tee "$results"
