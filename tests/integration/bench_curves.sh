#!/usr/bin/env bash
# bench/curves.sh on tiny sizes (its own store, as a user runs it): every size
# gives its row, the rows hold measurements and not placeholders, growth is
# stated per curve, and gnuplot drew the three charts.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/common.sh"

export RAGMAP_MODEL_DIMS=32 RAGMAP_INDEX_IVF_THRESHOLD=500
out=$work/curves
check curves-run 0 env RAGMAP_BIN="$bin" DOCS_SIZES="20 60" MEAN_BYTES=1500 \
	CHUNK_SIZES="1000 3000" SECONDS_PER_MODE=1 CLIENTS=1 RAGMAP_BENCH_DIR="$work/bench" \
	"$top/bench/curves.sh" "$out"

# ingestion: one row per size, documents as asked, chunks and time measured
equal ingest-rows "$(tail -n +2 "$out/curves-ingest.tsv" | cut -f1 | tr '\n' ' ')" "20 60 "
equal ingest-measured "$(awk -F'\t' 'NR > 1 && $3 >= $1 && $4 > 0 && $6 > 0 && $7 > 0 && $8 >= 1' \
	"$out/curves-ingest.tsv" | wc -l)" 2
expect ingest-growth '^growth \(log-log slope between sizes\): wall time 20->60 -?[0-9.]+; peak RSS 20->60 -?[0-9.]+$' \
	"$out/curves.txt"

# queries: four modes at each size; storage requests where the mode reads
# storage on the query path and none where it does not
equal query-rows "$(tail -n +2 "$out/curves-query.tsv" | wc -l)" 8
equal query-sizes "$(tail -n +2 "$out/curves-query.tsv" | cut -f1 | sort -u | tr '\n' ' ')" "1000 3000 "
equal query-latency "$(awk -F'\t' 'NR > 1 && $3 > 0 && $4 >= $3 && $7 > 0 && $9 > 0' \
	"$out/curves-query.tsv" | wc -l)" 8
equal memory-no-storage "$(awk -F'\t' '$2 == "memory" && $5 == 0' "$out/curves-query.tsv" | wc -l)" 2
equal object-storage "$(awk -F'\t' '$2 == "object" && $5 >= 1' "$out/curves-query.tsv" | wc -l)" 2
for m in memory pointer cached object; do
	expect "growth-$m" "^    $m: 1000->3000 -?[0-9.]+" "$out/curves.txt"
done

for f in curves-ingest curves-latency curves-cost; do
	expect "chart-$f" '</svg>' "$out/$f.svg"
done
finish
