#!/usr/bin/env bash
# Ingestion benchmark against a local S3 server of its own (ephemeral port).
#
#   bench/ingest.sh [DOCS] [MEAN_BYTES]        defaults 20000 and 5500
#
# Two cases: the sample corpus (corpus/) and a generated corpus of DOCS
# documents (bench/gen-corpus.sh, seeded; the defaults give ~115 MB). For
# each: upload, the raw parallel GET throughput of the same objects through
# the same client (`ragmap bench get`), then one `ragmap ingest` under
# /usr/bin/time -v. Then the embedder alone on one core (`ragmap bench
# embed`, over the generated index's chunks). Prints one table.
#
# Env: RAGMAP_BIN (default build/ragmap), RAGMAP_BENCH_DIR (work directory,
# default a fresh one under /tmp, removed at the end unless KEEP=1).
# Not part of ctest: it takes minutes.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${RAGMAP_BIN:-$top/build/ragmap}
docs=${1:-20000}
mean=${2:-5500}
[ -x "$bin" ] || { echo "bench: no ragmap binary at $bin (build first or set RAGMAP_BIN)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing (scripts/setup.sh installs it)" >&2; exit 2; }
work=${RAGMAP_BENCH_DIR:-$(mktemp -d /tmp/ragmap-bench.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
cleanup() {
	"$top/scripts/s3-local.sh" stop "$work/s3" || true
	[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

"$top/scripts/s3-local.sh" start "$work/s3" 0 >/dev/null
. "$work/s3/s3.env"
endpoint=$AWS_ENDPOINT_URL
export RAGMAP_LOCAL_DIR=$work/local RAGMAP_LOG=warn
unset RAGMAP_CONFIG
cd "$work" # built-in defaults, not a config/ragmap.conf of the caller's directory
echo "bench: ragmap $("$bin" --version | cut -d' ' -f2), Ceph RGW at $endpoint, $(nproc) CPUs, work dir $work" >&2

load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: generating $docs documents (mean $mean bytes)..." >&2
"$top/bench/gen-corpus.sh" "$work/gen" "$docs" 42 "$mean" >&2

# field FILE KEY: the value of "KEY: value" in FILE
field() { sed -n "s/^$2: *//p" "$1" | head -1; }

run_ingest() { # run_ingest NAME
	local name=$1 pfx="src-$1/"
	RAGMAP_SOURCE_PREFIX=$pfx RAGMAP_INDEX_NAME=$name \
		/usr/bin/time -v "$bin" ingest >"$work/$name.ingest" 2>"$work/$name.time" || {
		cat "$work/$name.ingest" "$work/$name.time" >&2
		exit 1
	}
	RAGMAP_SOURCE_PREFIX=$pfx RAGMAP_INDEX_NAME=$name "$bin" verify >"$work/$name.verify" 2>&1 || {
		echo "bench: [$name] verify failed" >&2
		cat "$work/$name.verify" >&2
		exit 1
	}
}

summarise() { # summarise NAME LABEL
	local name=$1 label=$2 f=$work/$1.ingest t=$work/$1.time g=$work/$1.get
	local docs chunks bytes wall rss raw_mb raw_obj reqs cpu
	docs=$(sed -n 's/^new: \([0-9]*\) documents.*/\1/p' "$f")
	chunks=$(sed -n 's/^new: [0-9]* documents, \([0-9]*\) chunks.*/\1/p' "$f")
	bytes=$(field "$g" bytes)
	wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$t" |
		awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$t")
	cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$t")
	raw_mb=$(field "$g" mb_per_s)
	raw_obj=$(field "$g" objects_per_s)
	reqs=$(awk '/^  ingest\./ { s += $2 } END { print s + 0 }' "$f")
	awk -v label="$label" -v docs="$docs" -v chunks="$chunks" -v bytes="$bytes" -v wall="$wall" \
		-v rss="$rss" -v raw_mb="$raw_mb" -v raw_obj="$raw_obj" -v reqs="$reqs" -v cpu="$cpu" 'BEGIN {
		mb = bytes / 1e6
		e2e = mb / wall
		printf "| %-18s | %6d | %7.1f | %7d | %7.1f | %6.1f | %7.0f | %6.2f | %8.0f | %9.2f (%5.0f obj/s) | %5.0f%% | %5.2f | %6.0f MB |\n",
			label, docs, mb, chunks, wall, cpu, docs / wall, e2e, chunks / wall, raw_mb, raw_obj,
			100 * e2e / raw_mb, reqs / docs, rss / 1024
	}'
}

stages() { # stages NAME LABEL: "time by stage" as one row
	sed -n "s/^time by stage: /| $2 | /p" "$work/$1.ingest" | sed 's/, total/ | total/; s/,$//; s/$/ |/'
}

echo "bench: [sample] uploading, raw GET, ingest..." >&2
"$bin" s3 put "$top/corpus" "src-sample/" >&2
"$bin" bench get "src-sample/" >"$work/sample.get"
run_ingest sample

echo "bench: [generated] uploading $docs documents..." >&2
t0=$(date +%s.%N)
"$bin" s3 put "$work/gen" "src-gen/" >&2
t1=$(date +%s.%N)
echo "bench: [generated] raw GET of every object..." >&2
"$bin" bench get "src-gen/" >"$work/gen.get"
echo "bench: [generated] ingest..." >&2
run_ingest gen
echo "bench: embedder alone on one core..." >&2
RAGMAP_INDEX_NAME=gen "$bin" bench embed --count 50000 >"$work/embed"

{
	echo
	echo "## ragmap ingest benchmark ($(nproc) CPUs, single-node Ceph RGW on loopback, $(date -u +%Y-%m-%d); load average $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
	echo
	echo "| corpus             |   docs |      MB |  chunks |  wall s |  CPU s |  docs/s |   MB/s | chunks/s | raw GET MB/s            | e2e/raw | req/doc |  peak RSS |"
	echo "|--------------------|--------|---------|---------|---------|--------|---------|--------|----------|-------------------------|---------|---------|-----------|"
	summarise sample "sample corpus"
	summarise gen "generated ${docs}"
	echo
	echo "time per stage (ms; parse and chunk are CPU time divided by cores):"
	echo
	stages sample "sample corpus"
	stages gen "generated ${docs}"
	echo
	echo "storage requests of the generated run, by stage:"
	echo
	sed -n 's/^  \(ingest\.\)/    \1/p' "$work/gen.ingest"
	echo
	printf "embedder alone: %s chunks/s on one core (%s tokens/chunk by the chunker's count, %s bytes/chunk; %s)\n" \
		"$(field "$work/embed" chunks_per_s_per_core)" "$(field "$work/embed" tokens_per_chunk)" \
		"$(field "$work/embed" bytes_per_chunk)" "$(sed -n 's/^embed: //p' "$work/embed")"
	printf "upload of the generated corpus (ragmap s3 put, for scale): %.1f s\n" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
	echo
	awk -v e2e="$(summarise gen x | awk -F'|' '{ print $12 }' | tr -d ' %')" \
		-v emb="$(field "$work/embed" chunks_per_s_per_core)" \
		-v rss="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/gen.time")" 'BEGIN {
		printf "targets: end-to-end >= 50%% of raw GET: %s (%d%%); embedder >= 10000 chunks/s/core: %s (%d); peak RSS < 2 GB: %s (%d MB)\n",
			(e2e >= 50 ? "met" : "MISSED"), e2e, (emb >= 10000 ? "met" : "MISSED"), emb,
			(rss < 2 * 1024 * 1024 ? "met" : "MISSED"), rss / 1024
	}'
}
