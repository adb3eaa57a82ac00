#!/usr/bin/env bash
# The HTTP API's contract: every field of POST /v1/query, GET /v1/status,
# /healthz and /metrics (Prometheus text that parses, with storage per stage
# and kind, the latency histogram, cache hits and misses, the index version),
# and `ragmap query --json` printing the same shape as the API.
# The replica's name: "replica" in answers, /v1/status and /v1/map, the
# X-Ragmap-Replica header; query.replica or <hostname>:<port>. SIGHUP
# reloads the configuration file without a refused or failed request.
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
		 "model_version","mode","retriever","replica","cost_usd"]) == [] and
	(.cost_usd | type) == "number" and .cost_usd > 0 and
	.query == $q and .k == 5 and .mode == "pointer" and .retriever == "dense" and
	.index_version == $v and .model_version == $m' \
	--arg q "$q" --argjson v "$version" --arg m "$model"
# no query.replica: the replica is <hostname>:<port bound>, in the answer
# and in the header
jqtrue query-replica-default "$work/ptr.json" '.replica == $r' --arg r "$(uname -n):${sport[ptr]}"
expect query-replica-header "^X-Ragmap-Replica: $(uname -n):${sport[ptr]}[[:space:]]*$" "$work/headers"
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
	(.storage | keys) == ["by_kind","bytes","ms","requests","retries","wall_ms"] and
	.storage.requests == 5 and .storage.bytes > 0 and .storage.ms > 0 and
	.storage.wall_ms > 0 and .storage.wall_ms <= .storage.ms + 1e-6 and
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
	(.caches | type) == "object" and .replica == $r' \
	--argjson v "$version" --arg m "$model" --argjson d "$ndocs" --argjson n "$chunks" \
	--arg r "$(uname -n):${sport[ptr]}"
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
# ... but for "replica": answered here, by no server
equal local-json-shape "$(jq -c "$shape" "$work/local.json")" "$(jq -c "del(.replica) | $shape" "$work/ptr.json")"
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

# ---- query.replica names the replica: answers, /v1/status, /v1/map and
# the header of every reply (errors and /healthz too)
serve named memory RAGMAP_QUERY_REPLICA=replica-a || { finish; exit 1; }
equal named-query-200 "$(post named "{\"q\":\"$q\",\"k\":3}" -D "$work/headers")" 200
jqtrue named-query-replica "$work/body" '.replica == "replica-a" and .index_version == $v' \
	--argjson v "$version"
expect named-query-header '^X-Ragmap-Replica: replica-a[[:space:]]*$' "$work/headers"
equal named-status-200 "$(get named /v1/status -D "$work/headers")" 200
jqtrue named-status-replica "$work/body" '.replica == "replica-a" and .index_version == $v' \
	--argjson v "$version"
expect named-status-header '^X-Ragmap-Replica: replica-a[[:space:]]*$' "$work/headers"
equal named-map-200 "$(get named /v1/map)" 200
jqtrue named-map-replica "$work/body" '.replica == "replica-a"'
for path in /healthz /metrics /nowhere; do
	get named "$path" -D "$work/headers" >/dev/null
	expect "named-header-$path" '^X-Ragmap-Replica: replica-a[[:space:]]*$' "$work/headers"
done
stop named

# ---- SIGHUP: the configuration file is read again and a new server takes
# over the same port (0 at start: the port bound) while queries go on
hup_conf=$work/serve.conf
printf '[query]\nreplica = gen-1\n' >"$hup_conf"
"$bin" serve --mode memory --listen 127.0.0.1:0 --config "$hup_conf" >"$work/hup.out" 2>"$work/hup.err" &
spid[hup]=$!
for _ in $(seq 600); do
	grep -q "listening on" "$work/hup.out" 2>/dev/null && break
	kill -0 "${spid[hup]}" 2>/dev/null || break
	sleep 0.1
done
sport[hup]=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$work/hup.out")
if [ -z "${sport[hup]}" ]; then
	bad "serve hup did not start"; sed 's/^/     | /' "$work/hup.out" "$work/hup.err" | tail -30
	finish; exit 1
fi
expect hup-start-line '\(replica gen-1\)$' "$work/hup.out"
equal hup-gen-1 "$(post hup '{"q":"object storage","k":2}' >/dev/null; jq -r .replica "$work/body")" gen-1

# clients I: one query at a time until $work/hup.stop exists, one line per
# answer: "HTTP-status replica" (curl's own failures show as status 000)
hup_client() {
	while [ ! -e "$work/hup.stop" ]; do
		curl -sS -o "$work/hup.body.$1" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
			--data-binary '{"q":"checkpoints in object storage","k":3}' "$(url hup)/v1/query" \
			2>>"$work/hup.curl.err"
		echo " $(jq -r '.replica // "-"' "$work/hup.body.$1" 2>/dev/null)"
	done >"$work/hup.rec.$1"
}
rm -f "$work/hup.stop"
hup_client 1 & c1=$!
hup_client 2 & c2=$!
sleep 0.5
printf '[query]\nreplica = gen-2\n' >"$hup_conf"
kill -HUP "${spid[hup]}"
# until client 1's last three answers came from gen-2 (hup-last-gen-2 below
# checks they did: waiting for one alone let a slow, sanitized run stop with
# gen-1 answers still in its last three)
for _ in $(seq 600); do
	[ "$(tail -3 "$work/hup.rec.1" 2>/dev/null | sort -u)" = "200 gen-2" ] && break
	sleep 0.1
done
# the old server finishes; answers go on: at least 20 in all (counted, not
# timed: a loaded machine answers fewer per second)
for _ in $(seq 600); do
	[ "$(cat "$work/hup.rec.1" "$work/hup.rec.2" 2>/dev/null | wc -l)" -ge 20 ] && break
	sleep 0.1
done
touch "$work/hup.stop"
wait "$c1" "$c2"
cat "$work/hup.rec.1" "$work/hup.rec.2" >"$work/hup.rec"
equal hup-all-200 "$(grep -vc '^200 ' "$work/hup.rec")" 0
[ "$(wc -l <"$work/hup.rec")" -ge 20 ] && ok "hup-answers ($(wc -l <"$work/hup.rec"))" ||
	bad "hup-answers: only $(wc -l <"$work/hup.rec")"
expect hup-answers-gen-1 '^200 gen-1$' "$work/hup.rec"
expect hup-answers-gen-2 '^200 gen-2$' "$work/hup.rec"
equal hup-last-gen-2 "$(tail -3 "$work/hup.rec.1" | sort -u)" "200 gen-2"
expect_not hup-no-curl-error . "$work/hup.curl.err"
equal hup-status-200 "$(get hup /v1/status -D "$work/headers")" 200
jqtrue hup-status-replica "$work/body" '.replica == "gen-2" and .index_version == $v' --argjson v "$version"
expect hup-status-header '^X-Ragmap-Replica: gen-2[[:space:]]*$' "$work/headers"

# a bad configuration on SIGHUP: said in the log, the old one goes on
printf '[query]\nthreads = many\n' >"$hup_conf"
kill -HUP "${spid[hup]}"
for _ in $(seq 100); do
	grep -q "still serving" "$work/hup.err" && break
	sleep 0.1
done
expect hup-bad-logged 'SIGHUP: the new configuration is bad.*still serving' "$work/hup.err"
expect hup-bad-named 'threads' "$work/hup.err"
equal hup-bad-still-200 "$(post hup '{"q":"object storage","k":2}')" 200
jqtrue hup-bad-still-gen-2 "$work/body" '.replica == "gen-2"'

# a configuration whose server cannot start (its name would break the
# header): the new server gives the shared socket back, the old one goes on
printf '[query]\nreplica = gen\0013\n' >"$hup_conf"
kill -HUP "${spid[hup]}"
for _ in $(seq 300); do
	grep -q "did not start" "$work/hup.err" && break
	sleep 0.1
done
expect hup-nostart-logged 'SIGHUP: the new server did not start: query.replica: the name has a control character.*still serving' "$work/hup.err"
equal hup-nostart-still-200 "$(post hup '{"q":"object storage","k":2}' -D "$work/headers")" 200
jqtrue hup-nostart-still-gen-2 "$work/body" '.replica == "gen-2"'
expect hup-nostart-header '^X-Ragmap-Replica: gen-2[[:space:]]*$' "$work/headers"
stop hup
finish
