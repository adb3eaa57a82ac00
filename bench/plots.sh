#!/usr/bin/env bash
# Render the demo's measurements as SVG charts with gnuplot:
#   latency-by-mode.svg          p50 and p95 query latency per backing mode
#   storage-requests-by-mode.svg storage requests (and bytes) per query per mode
#   ingest-stages.svg            ingestion wall time per pipeline stage
#
#   bench/plots.sh [DATA_DIR] [OUT_DIR]
#
# DATA_DIR (default .demo/results, written by scripts/demo.sh) holds
# modes.tsv (one row per mode) and ingest.txt (the output of `ragmap ingest`,
# whose "time by stage:" line is parsed). OUT_DIR defaults to DATA_DIR.
# The charts committed under bench/results/ were made with:
#   scripts/demo.sh && cp .demo/results/{modes.tsv,ingest.txt} bench/results/ &&
#   bench/plots.sh bench/results
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$top/.demo/results}
out=${2:-$data}
command -v gnuplot >/dev/null || { echo "plots: gnuplot is missing (scripts/setup.sh installs gnuplot-nox)" >&2; exit 1; }
for f in modes.tsv ingest.txt; do
	[ -f "$data/$f" ] || { echo "plots: no $data/$f (run scripts/demo.sh first)" >&2; exit 1; }
done
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# modes.tsv: mode ram_bytes req_per_query bytes_per_query p50_ms p95_ms first_pass load_ms
# bytes per query as a label: "1.8 KiB"
awk -F'\t' 'NR > 1 {
	b = $4; u = "B"; if (b >= 1048576) { b /= 1048576; u = "MiB" } else if (b >= 1024) { b /= 1024; u = "KiB" }
	printf "%s\t%s\t%s\t%s\t%s\t%s\n", $1, $3, (u == "B" ? sprintf("%d B", b) : sprintf("%.1f %s", b, u)), $5, $6, $7
}' "$data/modes.tsv" >"$tmp/modes.dat"

# "time by stage: list 17 ms, fetch 171 ms, ..., total 575 ms" -> stage, ms
# on object storage, ms in process (the stages that issue S3 requests: see
# the "storage by stage" lines of the same output)
sed -n 's/^time by stage: //p' "$data/ingest.txt" | tr ',' '\n' |
	awk 'NF == 3 && $1 != "total" {
		s = ($1 ~ /^(recover|list|fetch|upload|commit|gc)$/)
		print $1 "\t" (s ? $2 : 0) "\t" (s ? 0 : $2) "\t" $2 }' >"$tmp/stages.dat"
[ -s "$tmp/stages.dat" ] || { echo "plots: no \"time by stage:\" line in $data/ingest.txt" >&2; exit 1; }
total=$(sed -n 's/^time by stage: .*total \([0-9.]*\) ms.*/\1/p' "$data/ingest.txt")
docs=$(sed -n 's/^new: \([0-9]*\) documents, \([0-9]*\) chunks.*/\1 documents, \2 chunks/p' "$data/ingest.txt")

gnuplot <<EOF
set terminal svg size 760,420 dynamic font 'DejaVu Sans,13' background '#ffffff'
set datafile separator '\t'
set style data histograms
set style histogram clustered gap 1.5
set boxwidth 0.9
set border 3
set tics nomirror
set grid ytics lc rgb '#d0d7de'
set key top left
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0

set output '$out/latency-by-mode.svg'
set title 'Query latency by backing mode (server time per query, ms)'
set ylabel 'ms'
plot '$tmp/modes.dat' using 4:xtic(1) title 'p50' fill pattern 4 border lc rgb '#0b5cad' lc rgb '#0b5cad', \
     '' using 5 title 'p95' fill pattern 2 border lc rgb '#1b1f24' lc rgb '#1b1f24', \
     '' using (\$0 - 0.18):4:(sprintf('%.2f', \$4)) with labels offset 0,0.8 font ',11' notitle, \
     '' using (\$0 + 0.18):5:(sprintf('%.2f', \$5)) with labels offset 0,0.8 font ',11' notitle

set output '$out/storage-requests-by-mode.svg'
set title 'Object storage requests per query, by backing mode'
set ylabel 'requests per query'
set style histogram clustered gap 1.5
plot '$tmp/modes.dat' using 2:xtic(1) title 'all passes (average)' fill pattern 4 border lc rgb '#0b5cad' lc rgb '#0b5cad', \
     '' using 6 title 'first pass (cold)' fill pattern 2 border lc rgb '#1b1f24' lc rgb '#1b1f24', \
     '' using (\$0 - 0.18):2:(sprintf('%.2f\n%s', \$2, stringcolumn(3))) with labels offset 0,1.6 font ',10' notitle, \
     '' using (\$0 + 0.18):6:(sprintf('%.2f', \$6)) with labels offset 0,0.8 font ',10' notitle

set output '$out/ingest-stages.svg'
set title sprintf('Ingestion time by stage (%s; total %s ms)', '$docs', '$total')
set ylabel 'ms'
set style histogram rowstacked
set boxwidth 0.7
set xtics rotate by -30
set key top right
plot '$tmp/stages.dat' using 2:xtic(1) title 'reads or writes object storage' fill pattern 4 border lc rgb '#0b5cad' lc rgb '#0b5cad', \
     '' using 3 title 'in process (CPU, local SQLite)' fill pattern 2 border lc rgb '#1b1f24' lc rgb '#1b1f24', \
     '' using 0:4:(sprintf('%.0f', \$4)) with labels offset 0,0.8 font ',11' notitle
EOF
echo "plots: $out/latency-by-mode.svg $out/storage-requests-by-mode.svg $out/ingest-stages.svg"
