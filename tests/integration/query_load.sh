#!/usr/bin/env bash
# Load, in each backing mode: 64 keep-alive clients query a server back to
# back for RAGMAP_TEST_LOAD_S seconds (default 10 in CI; bench/load.sh runs
# 60), and halfway through a new index version is committed, which the
# server hot-reloads under that load. Then:
#   - zero failed requests (any status but 200, or a transport error);
#   - the server reloaded: /v1/status shows the new version, /metrics a reload;
#   - resident memory is bounded: VmRSS after the run is at most
#     RAGMAP_TEST_LOAD_RSS_MB (default 64) above VmRSS before it (after a
#     short warm-up); the ASan pass of scripts/test.sh allows more, as its
#     allocator quarantines freed memory;
#   - the server counted every answer the clients got;
#   - the server exits cleanly (no sanitizer report).
# Prints one line per mode with the figures (README, section Reliability).
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

secs=${RAGMAP_TEST_LOAD_S:-10}
clients=${RAGMAP_TEST_LOAD_CLIENTS:-64}
rss_slack_kb=$((${RAGMAP_TEST_LOAD_RSS_MB:-64} * 1024))
ingest_corpus || { finish; exit 1; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

: >"$work/summary"
n=0
for mode in memory pointer cached object; do
	n=$((n + 1))
	# the single-threaded local S3 server queues 64 clients' GETs for
	# seconds in the storage-backed modes: the per-query timeout is raised
	serve "$mode" "$mode" RAGMAP_QUERY_RELOAD_S=1 RAGMAP_QUERY_TIMEOUT_MS=120000 \
		RAGMAP_QUERY_CACHE_MB=8 RAGMAP_QUERY_LIST_CACHE_MB=8 || continue
	pid=${spid[$mode]}
	get "$mode" /v1/status >/dev/null
	v0=$(jq .index_version "$work/body")
	"$bin" bench load --url "$(url "$mode")" --clients "$clients" --duration 2 >"$work/warm.out" 2>&1 ||
		{ bad "$mode warm-up"; cat "$work/warm.out"; }
	before=$(rss_kb "$pid")

	"$bin" bench load --url "$(url "$mode")" --clients "$clients" --duration "$secs" --json \
		>"$work/$mode.load" 2>"$work/$mode.load.err" &
	lpid=$!
	sleep $((secs / 2))
	# a new version: one more document, committed while the load runs
	printf '# Load %s\n\nA document added under load, version %s.\n' "$mode" "$n" >"$work/extra.md"
	"$bin" s3 put "$work/extra.md" "${src}load-$mode.md" >"$work/put-extra.out" 2>&1 &&
		"$bin" ingest >"$work/ingest-$mode.out" 2>&1 || { bad "$mode: ingest under load"; cat "$work/ingest-$mode.out"; }
	wait "$lpid"
	lst=$?
	after=$(rss_kb "$pid")
	peak=$(hwm_kb "$pid")
	equal "$mode-load-exit" "$lst" 0
	jqtrue "$mode-no-failed-request" "$work/$mode.load" \
		'.failed == 0 and .transport_errors == 0 and .ok == .requests and .requests > 0'

	# the reload happened under load (polled every second)
	for i in $(seq 50); do
		get "$mode" /v1/status >/dev/null
		[ "$(jq .index_version "$work/body")" -gt "$v0" ] && break
		sleep 0.2
	done
	jqtrue "$mode-reloaded" "$work/body" '.index_version > $v' --argjson v "$v0"
	get "$mode" /metrics >/dev/null
	cp "$work/body" "$work/$mode.metrics"
	reloads=$(awk '/^ragmap_reloads_total/ { s += $2 } END { print s + 0 }' "$work/$mode.metrics")
	[ "$reloads" -ge 1 ] && ok "$mode-reload-counted" || bad "$mode-reload-counted: $reloads"
	# the server counted every answer the clients got (warm-up included)
	served=$(metric "$work/$mode.metrics" 'ragmap_queries_total{outcome="ok"}')
	got=$(($(jq .ok "$work/$mode.load") + $(sed -n 's/.*(\([0-9]*\) ok.*/\1/p' "$work/warm.out")))
	equal "$mode-answers-counted" "$served" "$got"

	[ "$after" -le $((before + rss_slack_kb)) ] && ok "$mode-rss-bounded" ||
		bad "$mode-rss-bounded: $before kB before, $after kB after"
	jq -r --arg m "$mode" --argjson b "$before" --argjson a "$after" --argjson p "$peak" \
		--argjson v0 "$v0" --argjson r "$reloads" \
		'"| \($m) | \(.clients) | \(.seconds | floor) s | \(.requests) | \(.failed + .transport_errors) | \(.qps | floor) | \(.p50_ms * 10 | round / 10) | \(.p99_ms * 10 | round / 10) | \($b / 1024 | round) → \($a / 1024 | round) MB (peak \($p / 1024 | round)) | v\($v0) → reload ×\($r) |"' \
		"$work/$mode.load" >>"$work/summary"
	stop "$mode"
done

echo
echo "| mode | clients | duration | requests | failed | q/s | p50 ms | p99 ms | RSS before → after | hot reload |"
echo "|---|---|---|---|---|---|---|---|---|---|"
cat "$work/summary"
finish
