#!/usr/bin/env bash
# The benchmarks of `ragmap bench` (src/bench/) on small runs, for what
# scripts rely on:
#   make-index  commits an ordinary version through the commit protocol:
#               `ragmap verify` accepts it, dense and bm25 queries answer
#               from it, a second run commits the next version with chunk
#               ids from a newly claimed block (ids_high moves forward)
#   search      the table, recall and --json over that version
#   load        every answer 200 and recorded; a server that is not there
#               and a bad --url fail with the right exit status
#   get, embed  their "key: value" lines
#   s3          one row per op, size and level, and no object left behind
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

export RAGMAP_MODEL_DIMS=32 RAGMAP_INDEX_IVF_THRESHOLD=500

# ---- make-index, twice
check make-index 0 "$bin" bench make-index --chunks 2000 --segment-chunks 1000 --topics 40 \
	--fit-sample 600 --target-recall 0.9 --queries-out "$work/queries" --queries 30
cp "$work/out" "$work/make1.out"
expect make-index-committed '^committed version 1 of index ".*": 2000 chunks, 2 segments' "$work/make1.out"
expect make-index-ivf '^segment m[0-9a-f]+-000001: 1000 chunks, ivf, nlist [0-9]+' "$work/make1.out"
expect make-index-tuned '^nprobe [0-9]+: recall@10 [01]\.[0-9]+ >= 0\.90' "$work/make1.out"
equal make-index-queries "$(wc -l <"$work/queries")" 30
check verify-1 0 "$bin" verify
latest_manifest >"$work/m1.json"
jqtrue manifest-1 "$work/m1.json" '.version == 1 and .stats.chunks == 2000 and .stats.documents == 200 and
	(.segments | length) == 2 and .ids_high >= 2000 and .segments[0].first_chunk >= 1'

q=$(head -1 "$work/queries")
check query-dense 0 "$bin" query "$q" -k 3 --json
jqtrue query-dense-hits "$work/out" '(.results | length) == 3 and
	all(.results[]; .key | startswith("synthetic/"))'
check query-bm25 0 "$bin" query "$q" -k 3 --retriever bm25 --json
jqtrue query-bm25-hits "$work/out" '(.results | length) == 3'

check make-index-again 0 "$bin" bench make-index --chunks 1000 --topics 40 --fit-sample 600
expect make-index-v2 '^committed version 2 of index' "$work/out"
check verify-2 0 "$bin" verify
latest_manifest >"$work/m2.json"
first1=$(jq '.segments[0].first_chunk' "$work/m1.json")
jqtrue ids-forward "$work/m2.json" --argjson f1 "$first1" --argjson h1 "$(jq .ids_high "$work/m1.json")" \
	'.version == 2 and .segments[0].first_chunk > $h1 and .ids_high > $h1 and $f1 >= 1'

# ---- search
check search 0 "$bin" bench search --queries "$work/queries" --repeat 1 --json
expect search-table '^\| raw faiss_Index_search, 1 thread +\|' "$work/out"
expect search-recall '^recall@10 of the IVF configuration vs exact search: [01]\.[0-9]{4}' "$work/out"
grep '^{' "$work/out" >"$work/search.json"
jqtrue search-json "$work/search.json" '.vectors == 1000 and (.recall | type) == "number" and
	(."memory-mode qindex search".p50_us | type) == "number"'
check search-bad-k 2 "$bin" bench search -k 0

# ---- load
serve mem memory || { finish; exit 1; }
check load 0 "$bin" bench load --url "$(url mem)" --clients 2 --requests 12 --queries "$work/queries" \
	-k 4 --record "$work/rec" --json
jqtrue load-json "$work/out" '.requests == 12 and .ok == 12 and .failed == 0 and .status."200" == 12'
equal load-recorded "$(cut -f1 "$work/rec" | sort -u | tr -d '\n')" 200
# every answer recorded whole (a question whose words the model never saw
# has no dense neighbour: fewer than k results is an answer too)
equal load-answers "$(cut -f4- "$work/rec" | jq -s 'map(select((.results | type) == "array" and
	(.results | length) <= 4 and (.query | type) == "string")) | length')" 12
equal load-answers-full "$(cut -f4- "$work/rec" | jq -s 'map(select((.results | length) == 4)) | length > 0')" true
check load-text 0 "$bin" bench load --url "$(url mem)" --clients 1 --requests 3
expect load-summary '^load: 1 clients, .* 3 requests \(3 ok, 0 failed\)' "$work/out"
stop mem
check load-refused 1 "$bin" bench load --url "$(url mem)" --clients 1 --requests 2
expect load-refused-why 'requests failed \(2 transport errors\)' "$work/err"
check load-bad-url 2 "$bin" bench load --url "ftp://127.0.0.1:1"
check load-no-url 2 "$bin" bench load --clients 1

# ---- get, embed
check get 0 "$bin" bench get "$root"
expect get-objects '^objects: [1-9][0-9]*$' "$work/out"
expect get-rate '^mb_per_s: [0-9.]+$' "$work/out"
check embed 0 "$bin" bench embed --count 40 --tokens 32
expect embed-rate '^chunks_per_s_per_core: [0-9.]+$' "$work/out"
check embed-json 0 "$bin" bench embed --count 20 --tokens 32 --json
jqtrue embed-json-fields "$work/out" '.texts == 20 and .threads == 1 and .dims == 32'

# ---- s3: ragmap's client against the curl command line
check s3 0 "$bin" bench s3 --large 64KiB --small-count 5 --levels 1,2 --rounds 1
equal s3-rows "$(grep -cE '^\| (PUT|GET) \| +(64\.0|4\.0) KiB \| +[12] \| +[0-9]+ \| +[0-9.]+ (MB|ops)/s +\| +[0-9.]+ (MB|ops)/s +\| +[0-9.]+ \|$' "$work/out")" 8
check s3-list 0 "$bin" s3 ls -r "bench/s3-"
equal s3-cleaned "$(wc -l <"$work/out")" 0
check s3-bad-levels 2 "$bin" bench s3 --levels 0

check unknown 2 "$bin" bench nonesuch
check help 0 "$bin" bench --help
expect help-table '^  make-index ' "$work/out"

finish
