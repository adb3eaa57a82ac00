#!/usr/bin/env bash
# Many-writer benchmark (issue 11) against a local S3 server of its own
# (ephemeral port): commits per second and lost races per commit with 1, 2
# and 4 concurrent `ragmap ingest` writers on one index.
#
#   bench/writers.sh [DOCS] [COMMIT_EVERY]      defaults 1000 and 20
#   SHARDED=1 bench/writers.sh [DOCS] [COMMIT_EVERY]
#
# SHARDED=1 measures scale-out instead (issue 12): writer w of N runs
# `ragmap ingest --shard w-1/N`, so each fetches, parses and embeds only its
# slice and docs/s is the figure that matters. Results then go to
# bench/results/shards.txt.
#
# A generated corpus of DOCS documents (bench/gen-corpus.sh, seeded, mean
# 1500 bytes) is uploaded once. For each writer count N (WRITERS, default
# "1 2 4") a fresh index gets N `ragmap ingest` processes started at the
# same instant, each with its own local directory, committing a version
# every COMMIT_EVERY documents (ingest.commit_every, and batches of as many
# documents, ingest.batch_docs; compaction commits versions of its own). The writers are unsharded: each one lists the same
# source and races the others for every version number; the loser of a race
# rebases its batch on the winner's version (where it finds the same
# objects already indexed) and tries the next number.
#
# Per N: wall time until the last writer exits; versions committed on the
# index (the newest version: every version is won by exactly one writer,
# checked against the sum of the writers' own counts); commits per second;
# lost races (the writers' "lost to other writers and rebased", one per
# failed conditional create of a manifest) per committed version; S3 request
# retries (the writers' storage lines); source documents per second; writers
# that gave up (exit 1 after losing COMMIT_MAX_ATTEMPTS races in a row: the
# others did the work). Every index must pass `ragmap verify --source`
# (each object indexed once).
#
# Env: RAGMAP_BIN (default build/ragmap), RAGMAP_BENCH_DIR (work directory,
# default a fresh one under /tmp, removed at the end unless KEEP=1),
# WRITERS (default "1 2 4"), BATCH_DOCS (default COMMIT_EVERY), RESULTS (default bench/results/writers.txt:
# the table is written there too). Not part of ctest: it takes minutes.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${RAGMAP_BIN:-$top/build/ragmap}
docs=${1:-1000}
every=${2:-20}
writers=${WRITERS:-1 2 4}
sharded=${SHARDED:-0}
if [ "$sharded" = 1 ]; then
	results=${RESULTS:-$top/bench/results/shards.txt}
else
	results=${RESULTS:-$top/bench/results/writers.txt}
fi
[ -x "$bin" ] || { echo "bench: no ragmap binary at $bin (build first or set RAGMAP_BIN)" >&2; exit 2; }
work=${RAGMAP_BENCH_DIR:-$(mktemp -d /tmp/ragmap-bench-writers.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	"$top/scripts/s3-local.sh" stop "$work/s3" >/dev/null 2>&1 || true
	[ "${KEEP:-0}" = 1 ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

"$top/scripts/s3-local.sh" start "$work/s3" 0 >/dev/null
. "$work/s3/s3.env"
unset RAGMAP_CONFIG
# batches of commit_every documents: with larger batches (the default 256)
# a pass commits after the first commit_every documents, then once per batch
export RAGMAP_SOURCE_PREFIX=bench-src/ RAGMAP_INGEST_COMMIT_EVERY=$every \
	RAGMAP_INGEST_BATCH_DOCS=${BATCH_DOCS:-$every} RAGMAP_LOG=warn
cd "$work" # built-in defaults, not a config/ragmap.conf of the caller's directory
echo "bench: ragmap $("$bin" --version | cut -d' ' -f2), Ceph RGW at $AWS_ENDPOINT_URL, $(nproc) CPUs, work dir $work" >&2

load0=$(cut -d' ' -f1-3 /proc/loadavg)
"$top/bench/gen-corpus.sh" "$work/gen" "$docs" 42 1500 >&2
"$bin" s3 put "$work/gen" bench-src/ >/dev/null

rows=()
notes=()
for n in $writers; do
	index=writers-$n
	echo "bench: $n writer(s) on index $index..." >&2
	pids=()
	t0=$(date +%s%N)
	for ((w = 1; w <= n; w++)); do
		shard=()
		[ "$sharded" = 1 ] && shard=(--shard "$((w - 1))/$n")
		RAGMAP_INDEX_NAME=$index RAGMAP_MODEL_PREFIX=models-$index/ RAGMAP_LOCAL_DIR=$work/local-$n-$w \
			RAGMAP_LOG=info "$bin" ingest "${shard[@]}" >"$work/$index.$w.out" 2>"$work/$index.$w.err" &
		pids+=($!)
	done
	gave_up=0
	for ((w = 1; w <= n; w++)); do
		wait "${pids[w - 1]}" && continue
		# a writer that lost COMMIT_MAX_ATTEMPTS races in a row gives up
		# (exit 1): counted; any other failure ends the benchmark
		if grep -q "gave up after [0-9]* attempts" "$work/$index.$w.err"; then
			gave_up=$((gave_up + 1))
			notes+=("$n writers: writer $w $(grep -m1 -o 'gave up after.*' "$work/$index.$w.err")")
			continue
		fi
		echo "bench: writer $w of $n failed" >&2
		tail -n 5 "$work/$index.$w.out" "$work/$index.$w.err" >&2
		exit 1
	done
	pids=()
	wall_ms=$((($(date +%s%N) - t0) / 1000000))
	RAGMAP_INDEX_NAME=$index RAGMAP_LOCAL_DIR=$work/local-verify "$bin" verify --source >"$work/$index.verify" 2>&1 || {
		echo "bench: [$index] verify --source failed" >&2
		cat "$work/$index.verify" >&2
		exit 1
	}
	version=$(sed -n 's/^index .* version \([0-9]*\) .*/\1/p' "$work/$index.verify")
	# from every writer's log (those that gave up too): versions it committed
	# and races it lost; S3 retries from the summaries
	commits=$(cat "$work/$index".*.err | awk '/ info committed version / { n++ } END { print n + 0 }')
	# (a rebase logs each lost race; the last one of a writer that gave up is not)
	lost=$(cat "$work/$index".*.err | awk -v g="$gave_up" '/ info lost the race for a version/ { n++ } END { print n + g }')
	retries=$(cat "$work/$index".*.out | sed -n 's/^  ingest\..*, \([0-9]*\) retries$/\1/p' |
		awk '{ s += $1 } END { print s + 0 }')
	[ "$commits" = "$version" ] ||
		echo "bench: [$index] the writers logged $commits commits, the index has $version versions" >&2
	rows+=("$(awk -v n="$n" -v ms="$wall_ms" -v v="$version" -v l="$lost" -v r="$retries" -v d="$docs" -v g="$gave_up" 'BEGIN {
		s = ms / 1000
		printf "| %7d | %6.1f | %8d | %9.2f | %10d | %15.2f | %10d | %6.0f | %7d |", n, s, v, v / s, l, l / v, r, d / s, g
	}')")
done

{
	echo
	echo "## ragmap many-writer benchmark ($(nproc) CPUs, single-node Ceph RGW on loopback, $(date -u +%F); load average $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
	echo
	if [ "$sharded" = 1 ]; then
		echo "$docs generated documents (mean 1500 bytes), ingest.commit_every = $every, ingest.batch_docs = $RAGMAP_INGEST_BATCH_DOCS; N sharded writers (\`ragmap ingest --shard I/N\`, one slice each) started together on one index, each with its own local catalog."
	else
		echo "$docs generated documents (mean 1500 bytes), ingest.commit_every = $every, ingest.batch_docs = $RAGMAP_INGEST_BATCH_DOCS; N unsharded \`ragmap ingest\` writers started together on one index, each with its own local catalog."
	fi
	echo
	echo "| writers | wall s | versions | commits/s | lost races | lost per commit | S3 retries | docs/s | gave up |"
	echo "|---------|--------|----------|-----------|------------|-----------------|------------|--------|---------|"
	printf '%s\n' "${rows[@]}"
	echo
	[ "${#notes[@]}" = 0 ] || { printf -- '- %s\n' "${notes[@]}"; echo; }
	echo "versions: committed on the index (ingest commits and the compactions after them), each won by exactly one writer's conditional create (If-None-Match) of its manifest; lost races: conditional creates refused (412) because another writer had committed that version first, each followed by a rebase and a retry at the next number. docs/s counts the source documents once$([ "$sharded" = 1 ] && echo ": sharded writers split them, so docs/s is the scale-out" || echo ": unsharded writers all process every document, so more writers add no throughput, only contention"); gave up: writers that lost 50 races in a row and exited 1 (the index is still complete: the others indexed everything)."
} | tee "$results"
