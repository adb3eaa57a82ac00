#!/usr/bin/env bash
# Per-object traces and the cost of a query (issue 14, items 1-2). Servers in
# pointer, cached and object mode read the store through faultproxy, which
# logs every request it forwards. With "trace": "full" an answer lists each
# storage request of that query; the list must sum exactly to the totals,
# match what the proxy saw (the count, the keys, the byte ranges), and the
# answer's cost must be the [cost] price table applied to it. The wall time
# waiting on storage is reported apart from the sum of the requests' times.
# The load is broken down the same way in /v1/status.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"
. "$top/tests/tools/fault-common.sh"

ingest_corpus || { finish; exit 1; }
start_proxy --seed 1
bucket=$(sed -n 's/^export AWS_BUCKET=//p; s/^export RAGMAP_S3_BUCKET=//p' "$RAGMAP_TEST_S3_DIR/s3.env" | head -1)
bucket=${bucket:-rag}

# proxy_requests FILE: "key range" per GET the proxy forwarded, sorted
proxy_requests() {
	awk -v b="/$bucket/" '$2 == "GET" && index($3, b) == 1 {
		k = substr($3, length(b) + 1); sub(/\?.*/, "", k)
		r = ($4 ~ /^bytes=/) ? substr($4, 7) : "-"
		print k, r }' "$1" | LC_ALL=C sort
}
# trace_requests JSON-FILE JQ-PATH: the same from an answer's request list
trace_requests() {
	jq -r "$2[] | \"\\(.key) \\(if .range then \"\\(.range[0])-\\(.range[1] // \"\")\" else \"-\" end)\"" "$1" |
		LC_ALL=C sort
}

q='{"q": "IVF index inverted lists centroids and nprobe", "k": 5, "trace": "full"}'
for mode in pointer cached object; do
	: >"$work/proxy.log"
	AWS_ENDPOINT_URL=$proxy_url serve "s-$mode" "$mode" || continue
	# the load, object by object, as the proxy saw it
	equal "$mode-status" "$(get "s-$mode" /v1/status)" 200
	cp "$work/body" "$work/status-$mode.json"
	jqtrue "$mode-load-listed" "$work/status-$mode.json" \
		'(.load.storage.request_log | length) == .load.storage.requests and .load.storage.requests > 0'
	jqtrue "$mode-load-bytes" "$work/status-$mode.json" \
		'([.load.storage.request_log[].bytes] | add) == .load.storage.bytes'
	trace_requests "$work/status-$mode.json" .load.storage.request_log >"$work/load-trace"
	proxy_requests "$work/proxy.log" | grep -v "/LATEST \|/manifests/" >"$work/load-proxy" || true
	grep -v "/LATEST \|/manifests/" "$work/load-trace" >"$work/load-trace-objects" || true
	equal "$mode-load-matches-proxy" "$(cat "$work/load-trace-objects")" "$(cat "$work/load-proxy")"

	for i in 1 2; do
		: >"$work/proxy.log"
		equal "$mode-query-$i" "$(post "s-$mode" "$q")" 200
		cp "$work/body" "$work/a.json"
		jqtrue "$mode-$i-listed" "$work/a.json" '(.storage.request_log | length) == .storage.requests'
		jqtrue "$mode-$i-bytes" "$work/a.json" \
			'([.storage.request_log[].bytes] | add // 0) == .storage.bytes'
		jqtrue "$mode-$i-ms" "$work/a.json" \
			'(([.storage.request_log[].ms] | add // 0) - .storage.ms | fabs) < 1e-6'
		jqtrue "$mode-$i-fields" "$work/a.json" \
			'all(.storage.request_log[]; .op == "get" and .status == 206 and .attempts == 1 and .start_ms >= 0 and .ms >= 0 and (.key | length) > 0)'
		jqtrue "$mode-$i-wall" "$work/a.json" \
			'.storage.wall_ms <= .storage.ms + 1e-6 and .storage.wall_ms <= .timing.total_ms + 1e-6'
		jqtrue "$mode-$i-cost" "$work/a.json" \
			'(.cost_usd - (.storage.requests * 0.0004 / 1000) | fabs) < 1e-15'
		trace_requests "$work/a.json" .storage.request_log >"$work/q-trace"
		# the server's poll for new versions (LATEST, manifests) is not the query's
		proxy_requests "$work/proxy.log" | grep -v "/LATEST \|/manifests/" >"$work/q-proxy" || true
		equal "$mode-$i-matches-proxy" "$(cat "$work/q-trace")" "$(cat "$work/q-proxy")"
	done
	# without "trace": "full" the totals only
	equal "$mode-summary" "$(post "s-$mode" '{"q": "checkpoints", "k": 3}')" 200
	jqtrue "$mode-summary-no-list" "$work/body" '.storage | has("request_log") | not'
	stop "s-$mode"
done

# memory mode reads nothing per query: an empty list, no cost
serve mem memory
equal mem-query "$(post mem "$q")" 200
jqtrue mem-nothing "$work/body" '.storage.requests == 0 and (.storage.request_log | length) == 0 and .cost_usd == 0'

# "explain": each hit's place in each retriever's candidates and the fusion
equal explain-hybrid "$(post mem '{"q": "IVF lists and nprobe", "k": 5, "retriever": "hybrid", "explain": true}')" 200
jqtrue explain-hybrid-parts "$work/body" 'all(.results[];
	.explain.fused.score == .score and .explain.fused.method == "zscore" and
	(.explain.dense == null or (.explain.dense.rank >= 1 and (.explain.dense.score | type) == "number")) and
	(.explain.bm25 == null or (.explain.bm25.rank >= 1 and (.explain.bm25.score | type) == "number")) and
	(.explain.dense != null or .explain.bm25 != null))'
equal explain-dense "$(post mem '{"q": "IVF lists and nprobe", "k": 5, "explain": true}')" 200
jqtrue explain-dense-ranks "$work/body" 'all(.results[]; .explain.dense.rank == .rank and .explain.dense.score == .score and (.explain | has("bm25") | not))'
equal explain-off "$(post mem '{"q": "IVF lists and nprobe", "k": 5}')" 200
jqtrue explain-off-absent "$work/body" 'all(.results[]; has("explain") | not)'
stop mem

# the price table is the config's
serve priced object RAGMAP_COST_GET_PER_1000=1
equal priced-query "$(post priced "$q")" 200
jqtrue priced-cost "$work/body" '(.cost_usd - (.storage.requests * 1 / 1000) | fabs) < 1e-12 and .cost_usd > 0'
stop priced

# ragmap cost: a line per mode, memory costing nothing per query
check cost 0 "$bin" cost --qps 100
expect cost-memory "^memory .* 0\.00 +0 B +0\.00 +0\.00$" "$work/out"
for mode in pointer cached object; do expect "cost-$mode" "^$mode " "$work/out"; done
expect cost-storage "^index version [0-9]+ keeps .* in the store" "$work/out"
finish
