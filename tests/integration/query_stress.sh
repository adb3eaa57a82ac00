#!/usr/bin/env bash
# 32 concurrent clients for ~5 seconds against a server in each of memory,
# cached and object mode at once, while another client scrapes /metrics and
# /v1/status and sends bad requests: no failed request, exact counters (the
# server's count of answered queries is the clients' count; cache hits plus
# misses add up; GETs equal misses), and a clean exit on SIGTERM with nothing
# in stderr from AddressSanitizer, LeakSanitizer or UBSan. In the ASan build
# of the suite (scripts/test.sh) this is the "under AddressSanitizer" test:
# a report makes the server exit non-zero or print one, and the test fails.
# (The per-request timeout is raised: 32 clients on the single-threaded local
# S3 server queue for seconds in cached and object mode, more so under ASan.)
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

secs=${RAGMAP_TEST_STRESS_S:-5}
ingest_corpus RAGMAP_INDEX_IVF_THRESHOLD=100 || { finish; exit 1; }
serve mem memory RAGMAP_QUERY_TIMEOUT_MS=60000 || { finish; exit 1; }
serve cac cached RAGMAP_QUERY_CACHE_MB=1 RAGMAP_QUERY_TIMEOUT_MS=60000 || { finish; exit 1; }
serve obj object RAGMAP_QUERY_LIST_CACHE_MB=1 RAGMAP_QUERY_TIMEOUT_MS=60000 || { finish; exit 1; }

# the side client: scrapes and bad requests, all the while
side() {
	local name=$1 end=$((SECONDS + secs)) st
	while [ $SECONDS -lt $end ]; do
		st=$(curl -sS -o /dev/null -w '%{http_code}' "$(url "$name")/metrics"); [ "$st" = 200 ] || echo "metrics $st"
		st=$(curl -sS -o /dev/null -w '%{http_code}' "$(url "$name")/v1/status"); [ "$st" = 200 ] || echo "status $st"
		st=$(curl -sS -o /dev/null -w '%{http_code}' "$(url "$name")/healthz"); [ "$st" = 200 ] || echo "healthz $st"
		st=$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data '{"q": ""}' "$(url "$name")/v1/query"); [ "$st" = 400 ] || echo "bad $st"
		st=$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data '{"q": "x", "k": 500}' "$(url "$name")/v1/query"); [ "$st" = 400 ] || echo "k $st"
	done
}
for s in mem cac obj; do
	"$bin" bench load --url "$(url $s)" --clients 32 --duration "$secs" --json >"$work/$s.load" 2>"$work/$s.load.err" &
	eval "load_$s=\$!"
	side $s >"$work/$s.side" 2>&1 &
	eval "side_$s=\$!"
done
for s in mem cac obj; do
	eval "wait \$load_$s"
	st=$?
	equal "$s-load-no-failed-request" "$st" 0
	[ "$st" = 0 ] || cat "$work/$s.load.err"
	eval "wait \$side_$s"
	[ -s "$work/$s.side" ] && { bad "$s-side-client"; head "$work/$s.side"; } || ok "$s-side-client"
	jqtrue "$s-load-counts" "$work/$s.load" '.failed == 0 and .transport_errors == 0 and .ok == .requests and .ok >= 32 and .clients == 32'
	echo "     $s: $(jq -c '{requests, qps: (.qps | floor), p99_ms}' "$work/$s.load")"
done

# exact accounting under concurrency
for s in mem cac obj; do
	get $s /metrics >/dev/null
	cp "$work/body" "$work/$s.metrics"
	n=$(jq .ok "$work/$s.load")
	equal "$s-server-count-is-client-count" "$(metric "$work/$s.metrics" 'ragmap_queries_total{outcome="ok"}')" "$n"
	equal "$s-no-server-error" "$(metric "$work/$s.metrics" 'ragmap_queries_total{outcome="error"}')" 0
	equal "$s-histogram-count" "$(metric "$work/$s.metrics" ragmap_query_duration_seconds_count)" "$n"
done
mtext() { metric "$work/$1.metrics" "ragmap_storage_requests_total{stage=\"query.$2\",kind=\"get\"}"; }
mcache() { metric "$work/$1.metrics" "ragmap_cache_$2_total{cache=\"$3\"}"; }
n=$(jq .ok "$work/cac.load")
equal cac-hits-plus-misses "$(($(mcache cac hits text) + $(mcache cac misses text)))" $((n * 5))
equal cac-gets-are-misses "$(mtext cac text)" "$(mcache cac misses text)"
n=$(jq .ok "$work/obj.load")
equal obj-text-gets "$(mtext obj text)" $((n * 5))
equal obj-list-gets-are-misses "$(mtext obj lists)" "$(mcache obj misses lists)"
equal mem-no-query-storage "$(mtext mem text)/$(mtext mem lists)" 0/0

for s in mem cac obj; do stop $s; done
finish
