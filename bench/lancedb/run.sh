#!/usr/bin/env bash
# LanceDB next to ragmap's object mode on the large index of a kept
# bench/query.sh (or bench/curves.sh) run:
#
#   KEEP=1 RAGMAP_BENCH_DIR=/tmp/qb bench/query.sh      # once (minutes)
#   bench/lancedb/run.sh /tmp/qb [NQUERIES]             # default 200
#
#   KEEP=1 RAGMAP_BENCH_DIR=/tmp/qc bench/curves.sh     # or this
#   INDEX=curve-1000000 QUERIES=/tmp/qc/q-1000000 bench/lancedb/run.sh /tmp/qc
#
# Uses that run's S3 store, which KEEP=1 left running (its objects are in
# the OSD's RAM), and stops it at the end; exports the index's lists, its
# chunk texts (from the catalog snapshot) and NQUERIES of its queries with
# their exact top 10 (`ragmap bench search --export`), runs bench.mjs
# (LanceDB IVF_FLAT with the same number of lists, NPROBES to sweep; each
# answer carries its 10 texts, as ragmap's do), then ragmap's object mode on
# the same queries, one client, with and without a list cache.
# Env: RAGMAP_BIN (default build/ragmap), NPROBES, INDEX (default
# bench-large), QUERIES (default BENCH_DIR/large-queries).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/bench/lancedb
bin=${RAGMAP_BIN:-$top/build/ragmap}
dir=${1:?usage: run.sh BENCH_DIR [NQUERIES]}
nq=${2:-200}
[ -d "$here/node_modules/@lancedb" ] || (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
[ -s "$dir/s3/s3.env" ] && "$top/scripts/s3-local.sh" running "$dir/s3" ||
	{ echo "bench: no running store in $dir/s3: run bench/query.sh with KEEP=1 first" >&2; exit 2; }
trap '"$top/scripts/s3-local.sh" stop "$dir/s3" >/dev/null 2>&1 || true' EXIT
. "$dir/s3/s3.env"
export RAGMAP_LOCAL_DIR=$dir/local \
	RAGMAP_INDEX_NAME=${INDEX:-bench-large} RAGMAP_QUERY_RELOAD_S=0
unset RAGMAP_CONFIG RAGMAP_QUERY_TOKEN
mkey=$("$bin" s3 get "indexes/$RAGMAP_INDEX_NAME/LATEST" - | jq -r .manifest)
"$bin" s3 get "$mkey" - >"$dir/lance-manifest.json"
"$bin" s3 get "$(jq -r '.segments[0].objects.lists.key' "$dir/lance-manifest.json")" "$dir/lists.bin"
"$bin" s3 get "$(jq -r '.segments[0].objects.lists_idx.key' "$dir/lance-manifest.json")" "$dir/lists.idx"
# chunk id, tab, text (tabs and line breaks as spaces: one row a line)
"$bin" s3 get "$(jq -r .catalog.key "$dir/lance-manifest.json")" "$dir/lance-catalog.sqlite"
sqlite3 -separator $'\t' "$dir/lance-catalog.sqlite" \
	"SELECT chunk_id, replace(replace(replace(text, char(9), ' '), char(10), ' '), char(13), ' ') FROM chunks" \
	>"$dir/lance-texts.tsv"
rm -f "$dir/lance-catalog.sqlite"
head -"$nq" "${QUERIES:-$dir/large-queries}" >"$dir/lance-queries"
"$bin" bench search --queries "$dir/lance-queries" --repeat 1 --export "$dir/lance-queries.rmqx" |
	grep -E "^recall|^index"
(cd "$here" && node bench.mjs "$dir/lists.bin" "$dir/lists.idx" "$dir/lance-queries.rmqx" "$dir/lance-texts.tsv" 2>&1 |
	grep -v ' WARN ')
echo
echo "ragmap object mode, one client, the same queries:"
for lc in 0 256; do
	RAGMAP_QUERY_LIST_CACHE_MB=$lc "$bin" serve --mode object --listen 127.0.0.1:0 >"$dir/serve.out" 2>"$dir/serve.err" &
	pid=$!
	for _ in $(seq 600); do grep -q "listening on" "$dir/serve.out" && break; sleep 0.1; done
	url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$dir/serve.out")
	load=$(curl -s "$url/v1/status" | jq -c '.load | {ms: (.ms | floor), gets: .storage.requests, mib: (.storage.bytes / 1048576 | floor)}')
	"$bin" bench load --url "$url" --clients 1 --requests "$nq" --queries "$dir/lance-queries" -k 10 \
		--record "$dir/obj.rec" --json >"$dir/obj.json"
	kill -TERM "$pid"
	wait "$pid" || true
	cut -f4- "$dir/obj.rec" | jq -s -c --argjson lc "$lc" --argjson load "$load" --slurpfile l "$dir/obj.json" \
		'{list_cache_mb: $lc, load: $load, first: (.[0] | {gets: .storage.requests, ms: .timing.total_ms}),
		  p50_ms: $l[0].p50_ms, p95_ms: $l[0].p95_ms, gets: (map(.storage.requests) | add / length),
		  kib: (map(.storage.bytes) | add / length / 1024 | floor),
		  search_p50_ms: (map(.timing.search_ms) | sort | .[length / 2 | floor])}'
done
