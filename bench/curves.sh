#!/usr/bin/env bash
# Cost as the work grows, against a local S3 store of its own (ephemeral port):
#
#   bench/curves.sh [OUT_DIR]          default bench/results
#
# 1. Ingestion: for each size in DOCS_SIZES, a generated corpus
#    (bench/gen-corpus.sh, seeded, MEAN_BYTES per document) is uploaded and
#    ingested into an index of its own by one `ragmap ingest` under
#    /usr/bin/time: wall time, CPU time, peak RSS, chunks, storage requests
#    and the pass's time by stage.
# 2. Queries: for each size in CHUNK_SIZES, a synthetic index of that many
#    chunks (`ragmap bench make-index`, one IVF segment, nlist the power of two
#    nearest sqrt(chunks), nprobe the smallest reaching recall@10 >= 0.95),
#    then each backing mode served and loaded for SECONDS_PER_MODE by CLIENTS
#    keep-alive clients (bench/mode-load.sh, as bench/query.sh does):
#    p50/p99, storage requests and bytes per query, the server's RSS.
# Growth between two sizes is given as the log-log slope: 1 is linear, < 1
# sub-linear, 0 flat, 2 quadratic.
#
# Writes OUT_DIR/curves.txt (the tables), curves-ingest.tsv, curves-query.tsv
# and the charts curves-ingest.svg, curves-latency.svg, curves-cost.svg
# (gnuplot). Env: RAGMAP_BIN (default build/ragmap), DOCS_SIZES (default
# "1000 10000 100000"), MEAN_BYTES (default 2000), CHUNK_SIZES (default
# "10000 100000 1000000"), COMMIT_EVERY (ingest.commit_every, default 20000),
# SECONDS_PER_MODE (default 10), CLIENTS (default 2,
# one a core: latency is then service time, not queueing), RAGMAP_BENCH_DIR
# (work directory, default a fresh one under /tmp; KEEP=1 keeps it and its
# running store).
# Not part of ctest: about 25 minutes with the defaults.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${RAGMAP_BIN:-$top/build/ragmap}
out=${1:-$top/bench/results}
docs_sizes=${DOCS_SIZES:-1000 10000 100000}
mean=${MEAN_BYTES:-2000}
chunk_sizes=${CHUNK_SIZES:-10000 100000 1000000}
secs=${SECONDS_PER_MODE:-10}
export CLIENTS=${CLIENTS:-2}
for t in jq gnuplot /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "bench: $t missing (scripts/setup.sh installs it)" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "bench: no ragmap binary at $bin (build first or set RAGMAP_BIN)" >&2; exit 2; }
bin=$(realpath "$bin") # the script works in $work
mkdir -p "$out"
out=$(cd "$out" && pwd)
. "$top/bench/mode-load.sh"
bench_work curves
cd "$work" # built-in defaults, not a config/ragmap.conf of the caller's directory

"$top/scripts/s3-local.sh" start "$work/s3" 0 >/dev/null
. "$work/s3/s3.env"
unset RAGMAP_CONFIG RAGMAP_QUERY_TOKEN
# A commit uploads the whole catalog snapshot (README, "Ingestion"): at the
# default of one every 2,000 documents, 100k documents would upload ~50
# snapshots of up to ~400 MB, more than this store can hold in RAM.
export RAGMAP_INGEST_COMMIT_EVERY=${COMMIT_EVERY:-20000}
export RAGMAP_LOCAL_DIR=$work/local RAGMAP_LOG=warn RAGMAP_QUERY_RELOAD_S=0 \
	RAGMAP_QUERY_LOG_PREFIX=bench-logs/ RAGMAP_QUERY_TIMEOUT_MS=600000
: >"$work/results.jsonl"

# slopes FILE XCOL YCOL [KEYCOL]: the log-log slope between consecutive rows
# (of the same key), "x1->x2 slope, ..."
slopes() {
	awk -F'\t' -v x="$2" -v y="$3" -v k="${4:-0}" '
		NR > 1 { key = k ? $k : ""
			 if ((key in px) && px[key] > 0 && py[key] > 0 && $y > 0)
				 s[key] = s[key] sprintf("%s%s->%s %.2f", s[key] == "" ? "" : ", ",
							 px[key], $x, log($y / py[key]) / log($x / px[key]))
			 else if ((key in px) && py[key] == 0 && $y == 0)
				 s[key] = s[key] sprintf("%s%s->%s none (0)", s[key] == "" ? "" : ", ", px[key], $x)
			 px[key] = $x; py[key] = $y; if (!(key in seen)) { seen[key] = 1; keys[++n] = key } }
		END { for (i = 1; i <= n; i++) print (keys[i] == "" ? "" : keys[i] ": ") s[keys[i]] }' "$1"
}

{
echo "# ragmap cost curves — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo) RAM"
echo "# ragmap $("$bin" --version | awk '{print $2}') ($(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')), S3: single-node Ceph RGW on loopback"
echo

# ---- 1. ingestion against corpus size
echo "## Ingestion against corpus size (generated documents, mean $mean bytes; one \`ragmap ingest\` each, a commit every $RAGMAP_INGEST_COMMIT_EVERY documents)"
echo
printf 'docs\tmb\tchunks\twall_s\tcpu_s\trss_mb\trequests\tversions\n' >"$out/curves-ingest.tsv"
for n in $docs_sizes; do
	echo "bench: [ingest $n] generating, uploading..." >&2
	"$top/bench/gen-corpus.sh" "$work/gen-$n" "$n" 42 "$mean" >/dev/null
	"$bin" s3 put "$work/gen-$n" "src-$n/" >/dev/null
	echo "bench: [ingest $n] ingest..." >&2
	RAGMAP_SOURCE_PREFIX=src-$n/ RAGMAP_INDEX_NAME=ingest-$n \
		/usr/bin/time -f '%e %U %S %M' -o "$work/ingest-$n.time" "$bin" ingest >"$work/ingest-$n.out" 2>&1 ||
		{ cat "$work/ingest-$n.out" >&2; exit 1; }
	read -r wall usr sys rss <"$work/ingest-$n.time"
	chunks=$(sed -n 's/^new: [0-9]* documents, \([0-9]*\) chunks.*/\1/p' "$work/ingest-$n.out")
	reqs=$(awk '/^  ingest\./ { s += $2 } END { print s + 0 }' "$work/ingest-$n.out")
	versions=$(RAGMAP_INDEX_NAME=ingest-$n "$bin" s3 get "indexes/ingest-$n/LATEST" - | jq .version)
	printf '%d\t%.1f\t%d\t%.1f\t%.1f\t%.0f\t%d\t%d\n' "$n" "$(du -sb "$work/gen-$n" | awk '{ print $1 / 1e6 }')" \
		"$chunks" "$wall" "$(awk -v u="$usr" -v s="$sys" 'BEGIN { print u + s }')" \
		"$(awk -v r="$rss" 'BEGIN { print r / 1024 }')" "$reqs" "$versions" >>"$out/curves-ingest.tsv"
	# the store holds objects in RAM: drop this size's (sources, and the
	# catalog snapshot each commit left) before the next
	rm -rf "$work/gen-$n"
	for p in "src-$n/" "indexes/ingest-$n/"; do
		"$bin" s3 ls -r "$p" | sed -E 's/^ *[0-9]+ +[0-9a-f-]+ +//' | xargs -r -d '\n' "$bin" s3 rm >/dev/null
	done
done
echo "| docs | MB | chunks | wall s | CPU s | peak RSS MB | storage requests | versions committed |"
echo "|---|---|---|---|---|---|---|---|"
awk -F'\t' 'NR > 1 { printf "| %d | %.1f | %d | %.1f | %.1f | %d | %d | %d |\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$out/curves-ingest.tsv"
echo
echo "time by stage (ms):"
echo
for n in $docs_sizes; do
	echo "    $n docs: $(sed -n 's/^time by stage: //p' "$work/ingest-$n.out")"
done
echo
echo "growth (log-log slope between sizes): wall time $(slopes "$out/curves-ingest.tsv" 1 4); peak RSS $(slopes "$out/curves-ingest.tsv" 1 6)"
echo

# ---- 2. queries against index size
echo "## Queries against index size (synthetic chunks, $CLIENTS clients, $secs s per mode after a 2 s warm-up, k 10)"
echo
for n in $chunk_sizes; do
	nlist=$(awk -v n="$n" 'BEGIN { l = 1; while (l * l * 2 < n) l *= 2; print l }')
	export RAGMAP_INDEX_NAME=curve-$n
	echo "bench: [query $n] make-index (nlist $nlist)..." >&2
	"$bin" bench make-index --chunks "$n" --nlist "$nlist" --target-recall 0.95 \
		--queries-out "$work/q-$n" --queries 1000 >"$work/make-$n.out" 2>&1 ||
		{ cat "$work/make-$n.out" >&2; exit 1; }
	# the segment's kind and nlist; nprobe as --target-recall tuned it
	echo "### $n chunks: $(sed -n 's/^segment [^:]*: [0-9]* chunks, \([a-z]*, nlist [0-9]*\),.*/\1/p' \
		"$work/make-$n.out" | head -1); $(grep -m1 '^nprobe [0-9]*: recall@10' "$work/make-$n.out")"
	echo
	modes "$n" "$work/q-$n"
	echo
done
printf 'chunks\tmode\tp50_ms\tp99_ms\tgets_per_query\tkib_per_query\trss_mb\thwm_mb\tqps\n' >"$out/curves-query.tsv"
jq -r 'select(.mode) | [.index, .mode, .p50_ms, .p99_ms,
	(if .server_queries > 0 then .storage_requests / .server_queries else 0 end),
	(if .server_queries > 0 then .storage_bytes / .server_queries / 1024 else 0 end),
	.rss_mb, .hwm_mb, .qps] | @tsv' "$work/results.jsonl" | sort -t$'\t' -k2,2 -k1,1n >>"$out/curves-query.tsv"
echo "growth (log-log slope between index sizes), per mode:"
echo
for col in 3:p50 4:p99 5:"storage requests/query" 7:"server RSS"; do
	echo "- ${col#*:}:"
	slopes "$out/curves-query.tsv" 1 "${col%%:*}" 2 | sed 's/^/    /'
done
} | tee "$out/curves.txt"

# ---- charts (one data file per mode for gnuplot's loops)
for m in memory pointer cached object; do
	awk -F'\t' -v m="$m" '$2 == m' "$out/curves-query.tsv" >"$work/$m.dat"
done
gnuplot <<EOF
set terminal svg size 760,420 dynamic font 'DejaVu Sans,13' background '#ffffff'
set datafile separator '\t'
set border 3
set tics nomirror
set grid xtics ytics lc rgb '#d0d7de'
set logscale x 10
set key top left
set style data linespoints

set output '$out/curves-ingest.svg'
set title 'Ingestion against corpus size'
set xlabel 'documents'
set logscale y 10
set ylabel 'wall s'
set y2label 'peak RSS MB'
set y2tics
set logscale y2 10
plot '$out/curves-ingest.tsv' every ::1 using 1:4 title 'wall time (s)' lw 2 pt 7 lc rgb '#0b5cad', \
     '' every ::1 using 1:6 axes x1y2 title 'peak RSS (MB, right)' lw 2 pt 5 lc rgb '#1b1f24'
unset y2label
unset y2tics

set output '$out/curves-latency.svg'
set title 'Query latency against index size (p50 solid, p99 dashed)'
set xlabel 'chunks'
set ylabel 'ms'
set key outside right
plot for [m in "memory pointer cached object"] \
	'$work/'.m.'.dat' using 1:3 title m.' p50' lw 2, \
     for [m in "memory pointer cached object"] \
	'$work/'.m.'.dat' using 1:4 title m.' p99' dt 2
set output '$out/curves-cost.svg'
set multiplot layout 1,2 title 'What a query costs against index size'
set title 'storage requests per query'
unset logscale y
set ylabel 'requests'
set key top left inside
plot for [m in "memory pointer cached object"] \
	'$work/'.m.'.dat' using 1:5 title m lw 2
set title 'server RSS after the run'
set logscale y 10
set ylabel 'MB'
plot for [m in "memory pointer cached object"] \
	'$work/'.m.'.dat' using 1:7 title m lw 2
unset multiplot
EOF
echo "bench: wrote $out/curves.txt, curves-ingest.svg, curves-latency.svg, curves-cost.svg" >&2
