#!/usr/bin/env bash
# The HTTP API's contract: every field of POST /v1/query, GET /v1/status,
# /healthz and /metrics (Prometheus text that parses, with storage per stage
# and kind, the latency histogram, cache hits and misses, the index version),
# and `ragmap query --json` printing the same shape as the API.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

ingest_corpus || { finish; exit 1; }
latest_manifest >"$work/manifest.json" || bad "read the manifest"
version=$(jq .version "$work/manifest.json")
model=$(jq -r .model.version "$work/manifest.json")
chunks=$(jq .stats.chunks "$work/manifest.json")
ndocs=$(find "$top/corpus" -type f | wc -l)
q='how are checkpoints written to object storage during training'

serve mem memory || { finish; exit 1; }
serve ptr pointer || { finish; exit 1; }

# ---- POST /v1/query: every field, its type and its meaning
equal query-200 "$(post ptr "{\"q\":\"$q\",\"k\":5}" -D "$work/headers")" 200
cp "$work/body" "$work/ptr.json"
expect query-content-type "^Content-Type: application/json" "$work/headers"
jqtrue query-top-level "$work/ptr.json" '
	(keys - ["query","k","results","storage","timing","cache","index_version",
		 "model_version","mode","retriever"]) == [] and
	.query == $q and .k == 5 and .mode == "pointer" and .retriever == "dense" and
	.index_version == $v and .model_version == $m' \
	--arg q "$q" --argjson v "$version" --arg m "$model"
# chunk ids come from the writer's claimed block (commit.h), and stay
# below 2^53 so that JSON numbers hold them exactly
jqtrue query-results "$work/ptr.json" '
	(.results | length) == 5 and
	([.results[].rank] == [1,2,3,4,5]) and
	all(.results[];
		(.score | type) == "number" and .score > 0 and .score <= 1.0001 and
		(.key | type) == "string" and (.key | startswith($src)) and
		.uri == "s3://rag/" + .key and
		(.chunk | type) == "number" and .chunk >= 0 and .chunk == (.chunk | floor) and
		(.chunk_id | type) == "number" and .chunk_id >= 1 and .chunk_id < 9007199254740992 and
		(.offset | type) == "number" and .offset >= 0 and
		(.length | type) == "number" and .length > 0 and
		(.heading | type) == "string" and
		(.text | type) == "string" and (.text | length) > 0) and
	([.results[].score] == ([.results[].score] | sort | reverse)) and
	([.results[].chunk_id] | unique | length) == 5' \
	--arg src "$src" --argjson n "$chunks"
jqtrue query-storage "$work/ptr.json" '
	(.storage | keys) == ["by_kind","bytes","ms","requests","retries"] and
	.storage.requests == 5 and .storage.bytes > 0 and .storage.ms > 0 and
	(.storage.by_kind | keys) == ["get"] and
	.storage.by_kind.get.requests == .storage.requests and
	.storage.by_kind.get.bytes == .storage.bytes'
jqtrue query-timing "$work/ptr.json" '
	(.timing | keys) == ["embed_ms","fetch_ms","search_ms","total_ms"] and
	all(.timing[]; type == "number" and . >= 0) and
	.timing.total_ms >= .timing.embed_ms + .timing.search_ms and
	.timing.total_ms >= .timing.fetch_ms'
# the text is the document's own bytes: the chunk of a .md source is found in it
first_key=$(jq -r '[.results[] | select(.key | endswith(".md"))][0].key // empty' "$work/ptr.json")
if [ -n "$first_key" ]; then
	jq -r --arg k "$first_key" '[.results[] | select(.key == $k)][0].text' "$work/ptr.json" |
		head -c 200 >"$work/snippet"
	"$bin" s3 get "$first_key" - >"$work/doc" 2>/dev/null
	if grep -qF -- "$(head -1 "$work/snippet")" "$work/doc"; then ok "text-is-from-the-document"; else bad "text-is-from-the-document ($first_key)"; fi
fi

# memory mode answers the same results with no storage at all
equal query-memory-200 "$(post mem "{\"q\":\"$q\",\"k\":5}")" 200
cp "$work/body" "$work/mem.json"
jqtrue memory-no-storage "$work/mem.json" '.mode == "memory" and .storage.requests == 0 and
	.storage.bytes == 0 and .storage.by_kind == {} and .timing.fetch_ms >= 0'
jqtrue memory-same-results "$work/mem.json" '[.results[] | del(.score)] == ($p[0].results | map(del(.score))) and
	([.results[].score] | map(. * 100000 | round)) == ($p[0].results | map(.score * 100000 | round))' \
	--slurpfile p "$work/ptr.json"

# k defaults to 5; k=1 and k=100 are fine (100 > chunks in a probe is fine too)
equal k-default "$(post mem '{"q":"object storage"}')" 200
jqtrue k-default-is-5 "$work/body" '(.results | length) == 5 and .k == 5'
equal k-1 "$(post mem '{"q":"object storage","k":1}')" 200
jqtrue k-1-one-result "$work/body" '(.results | length) == 1'
equal k-100 "$(post mem '{"q":"object storage","k":100,"retriever":"dense"}')" 200
jqtrue k-100-results "$work/body" '(.results | length) == 100 and ([.results[].rank] == [range(1;101)])'
# a query of only unknown words: no result, still a full answer
equal unknown-words "$(post mem '{"q":"zzqx wvvy"}')" 200
jqtrue unknown-words-empty "$work/body" '.results == [] and .storage.requests == 0 and .index_version == $v' \
	--argjson v "$version"

# ---- GET /v1/status
equal status-200 "$(get ptr /v1/status)" 200
jqtrue status-fields "$work/body" '
	.mode == "pointer" and .index_version == $v and
	.model.version == $m and .model.name == "ragmap-lsa" and
	.counts.documents == $d and .counts.chunks == $n and .counts.segments >= 1 and
	.counts.tombstone_ranges == 0 and
	.resident_bytes.vectors > 0 and .resident_bytes.text == 0 and .resident_bytes.pointers > 0 and
	.load.ms > 0 and .load.storage.requests > 0 and .load.storage.bytes > 0 and
	(.load.storage.by_kind | keys) == ["get","head"] and (.load.loaded_at | type) == "number" and
	(.caches | type) == "object"' \
	--argjson v "$version" --arg m "$model" --argjson d "$ndocs" --argjson n "$chunks"
equal status-mem-200 "$(get mem /v1/status)" 200
jqtrue status-mem-holds-text "$work/body" '.mode == "memory" and .resident_bytes.text > 0'

# ---- GET /healthz
equal healthz-200 "$(get ptr /healthz)" 200
equal healthz-body "$(cat "$work/body")" ok

# ---- GET /metrics: Prometheus text format that parses
equal metrics-200 "$(get ptr /metrics -D "$work/headers")" 200
cp "$work/body" "$work/metrics"
expect metrics-content-type "^Content-Type: text/plain; version=0.0.4" "$work/headers"
# every line is a comment (# HELP/# TYPE) or "name{label=\"v\",...} number";
# a family's TYPE comes before its samples and appears once; the histogram's
# buckets are cumulative and end with +Inf == _count
awk '
	function fail(msg) { print "bad line " NR ": " msg ": " $0; bad = 1 }
	/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* / { next }
	/^# TYPE / {
		if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/) fail("type")
		if ($3 in typed) fail("TYPE twice")
		if ($3 in done || $3 == cur) fail("TYPE after its samples")
		typed[$3] = $4; next
	}
	/^#/ { fail("comment"); next }
	{
		if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[-+]Inf)$/) {
			fail("sample syntax"); next
		}
		name = $1; sub(/\{.*/, "", name)
		base = name; sub(/_(bucket|sum|count)$/, "", base)
		fam = (base in typed && typed[base] == "histogram") ? base : name
		if (fam != cur) {
			if (fam in done) fail("family split")
			if (cur != "") done[cur] = 1
			cur = fam
		}
		if (name ~ /_bucket$/) {
			if ($2 + 0 < last_bucket) fail("buckets not cumulative")
			last_bucket = $2 + 0
			if ($1 ~ /le="\+Inf"/) inf[base] = $2
		}
		if (name ~ /_count$/ && (base in inf) && inf[base] != $2) fail("+Inf bucket != _count")
		n++
	}
	END { if (n < 20) { print "only " n " samples"; bad = 1 } exit bad }' "$work/metrics" >"$work/metrics.check"
if [ $? = 0 ]; then ok metrics-parse; else bad metrics-parse; cat "$work/metrics.check"; fi
mval() { metric "$work/metrics" "$1"; }
[ "$(mval 'ragmap_storage_requests_total{stage="query.load",kind="get"}')" -ge 4 ] &&
	ok metrics-load-stage || bad "metrics-load-stage: $(mval 'ragmap_storage_requests_total{stage="query.load",kind="get"}')"
equal metrics-text-stage "$(mval 'ragmap_storage_requests_total{stage="query.text",kind="get"}')" 5
[ "$(mval 'ragmap_storage_bytes_total{stage="query.text",kind="get"}')" -gt 0 ] && ok metrics-text-bytes ||
	bad metrics-text-bytes
expect metrics-text-seconds '^ragmap_storage_seconds_total\{stage="query.text",kind="get"\} [0-9.]+$' "$work/metrics"
expect metrics-histogram-type '^# TYPE ragmap_query_duration_seconds histogram$' "$work/metrics"
equal metrics-histogram-count "$(mval ragmap_query_duration_seconds_count)" 1
equal metrics-histogram-inf "$(mval 'ragmap_query_duration_seconds_bucket{le="+Inf"}')" 1
expect metrics-histogram-sum '^ragmap_query_duration_seconds_sum [0-9.]+$' "$work/metrics"
equal metrics-queries-ok "$(mval 'ragmap_queries_total{outcome="ok"}')" 1
expect metrics-cache-hits '^ragmap_cache_hits_total\{cache="text"\} 0$' "$work/metrics"
expect metrics-cache-misses '^ragmap_cache_misses_total\{cache="text"\} 0$' "$work/metrics"
equal metrics-index-version "$(mval ragmap_index_version)" "$version"
expect metrics-info "^ragmap_info\\{mode=\"pointer\",model_version=\"$model\"\\} 1$" "$work/metrics"
# memory mode: no query-time stage at all after 5 queries
get mem /metrics >/dev/null
expect_not metrics-memory-no-query-stage 'stage="query\.(text|lists)"' "$work/body"
equal metrics-memory-ok "$(metric "$work/body" 'ragmap_queries_total{outcome="ok"}')" 5

# ---- ragmap query --json (local load) prints the API's shape and answers
shape='[paths(scalars) | map(if type == "number" then 0 else . end) | join(".")] | unique'
check local-json 0 "$bin" query "$q" -k 5 --mode pointer --json
cp "$work/out" "$work/local.json"
equal local-json-one-line "$(wc -l <"$work/local.json")" 1
equal local-json-shape "$(jq -c "$shape" "$work/local.json")" "$(jq -c "$shape" "$work/ptr.json")"
jqtrue local-json-same-results "$work/local.json" '[.results[] | del(.score)] == ($p[0].results | map(del(.score))) and
	.storage.requests == $p[0].storage.requests and .index_version == $p[0].index_version' \
	--slurpfile p "$work/ptr.json"
# --server prints the server's answer, same shape
check server-json 0 "$bin" query "$q" -k 5 --server "$(url ptr)" --json
equal server-json-shape "$(jq -c "$shape" "$work/out")" "$(jq -c "$shape" "$work/ptr.json")"
# human output: the storage line
check local-human 0 "$bin" query "$q" -k 3 --mode memory
expect human-storage-line '^mode memory, version [0-9]+, .*storage: 0 requests, 0 B$' "$work/out"
expect human-load-line '^loaded version [0-9]+ in memory mode in [0-9]+ ms; load: [0-9]+ GETs' "$work/out"
check server-human 0 "$bin" query "$q" -k 3 --server "$(url ptr)"
expect human-pointer-storage '^mode pointer, .*storage: 3 GETs, [0-9.]+ [KMG]?i?B, [0-9.]+ ms$' "$work/out"

stop ptr
stop mem
finish
