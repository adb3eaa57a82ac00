#!/usr/bin/env bash
# Warm-up (issue 14, item 5): `serve --warm` (query.warm) and POST /v1/warm
# preload, in the background and within a byte budget, what a mode reads
# per query, with progress in /v1/status:
#  - object mode (IVF index, a list cache): every list; afterwards a query
#    reads no list from storage (query.lists: 0 requests) and its answer
#    equals the cold server's;
#  - cached mode: the records the query log says answers returned most;
#    after the log was written by one server, a fresh one warmed from it
#    answers the logged questions with no storage request at all;
#  - with a budget of just the lists the logged questions probe, those
#    lists are preloaded and nothing else (the log's questions come first);
#  - memory mode has nothing to warm: POST /v1/warm is a 400 saying so;
#  - /v1/map counts cold answers (they read storage) apart from warm ones.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

ivf=(RAGMAP_INDEX_IVF_THRESHOLD=100)
ingest_corpus "${ivf[@]}" || { finish; exit 1; }
latest_manifest >"$work/manifest.json" || bad "read the manifest"
jq -e '[.segments[] | select(.kind == "ivf")] | length > 0' "$work/manifest.json" >/dev/null &&
	ok "ivf-segments" || bad "no IVF segment to warm"
lists_bytes=$(jq '[.segments[].objects.lists.size // 0] | add' "$work/manifest.json")

# wait_warm NAME: until /v1/status says the warm-up ended; its state on stdout
wait_warm() {
	local st i
	for i in $(seq 300); do
		get "$1" /v1/status >/dev/null
		st=$(jq -r .warm.state "$work/body")
		case $st in running | idle) sleep 0.1 ;; *) break ;; esac
	done
	cp "$work/body" "$work/$1-status.json"
	echo "$st"
}
qs=("how are checkpoints written to object storage during training"
	"hybrid search with BM25 and dense vectors"
	"KV cache and GPU memory during inference")

# ---- object mode: cold answers first (no list cache: each answer's trace
# shows every list its question probes), then warmed servers
serve cold object RAGMAP_QUERY_LIST_CACHE_MB=0 || { finish; exit 1; }
for i in "${!qs[@]}"; do
	equal "cold-$i" "$(post cold "{\"q\":\"${qs[$i]}\",\"k\":5,\"trace\":\"full\"}")" 200
	cp "$work/body" "$work/cold-$i.json"
	jqtrue "cold-$i-read-lists" "$work/cold-$i.json" \
		'[.storage.request_log[] | select(.key | test("lists"))] | length > 0'
done
# the lists the three questions probe: distinct (key, range), their bytes
probed_bytes=$(jq -s '[.[].storage.request_log[] | select(.key | test("lists")) |
	{key, range, bytes}] | unique | map(.bytes) | add' "$work"/cold-*.json)
get cold /v1/map >/dev/null
jqtrue map-cold-counted "$work/body" '.query_path.cold.queries == 3 and .query_path.warm.queries == 0 and .query_path.cold.latency_ms > 0'
stop cold   # its log now holds the three questions

serve obj object RAGMAP_QUERY_LIST_CACHE_MB=64 RAGMAP_QUERY_WARM=true || { finish; exit 1; }
equal obj-warm-done "$(wait_warm obj)" done
jqtrue obj-warm-all-lists "$work/obj-status.json" \
	'.warm.bytes == .warm.planned_bytes and .warm.bytes == $lb and .warm.items > 1 and .warm.progress == 1' \
	--argjson lb "$lists_bytes"
jqtrue obj-warm-within-budget "$work/obj-status.json" '.warm.bytes <= .warm.budget_bytes and .warm.budget_bytes == 64 * 1048576'
jqtrue obj-warm-says-what "$work/obj-status.json" '.warm.what | test("IVF lists: those 3 logged questions probe most first")'
for i in "${!qs[@]}"; do
	equal "obj-warm-$i" "$(post obj "{\"q\":\"${qs[$i]}\",\"k\":5,\"trace\":\"full\"}")" 200
	cp "$work/body" "$work/warm-$i.json"
	jqtrue "obj-warm-$i-no-list-read" "$work/warm-$i.json" \
		'[.storage.request_log[] | select(.key | test("lists"))] | length == 0'
	jqtrue "obj-warm-$i-text-read" "$work/warm-$i.json" '.storage.requests > 0'
	jq -n -e --slurpfile a "$work/cold-$i.json" --slurpfile b "$work/warm-$i.json" \
		'($a[0].results | map(.chunk_id)) == ($b[0].results | map(.chunk_id))' >/dev/null &&
		ok "obj-warm-$i-same-answer" || bad "obj-warm-$i-same-answer"
done
equal obj-warm-bad-field "$(curl -sS -o "$work/body" -w '%{http_code}' -X POST -d '{"budjet_mb":1}' "$(url obj)/v1/warm")" 400
jqtrue obj-warm-bad-field-named "$work/body" '.error | contains("unknown field \"budjet_mb\"")'
equal obj-warm-both-400 "$(curl -sS -o "$work/body" -w '%{http_code}' -X POST -d '{"budget_mb":1,"budget_bytes":9}' "$(url obj)/v1/warm")" 400
equal obj-warm-get-405 "$(get obj /v1/warm)" 405
get obj /v1/map >/dev/null
jqtrue map-warm-counted "$work/body" '.query_path.warm.queries == 0 and .query_path.cold.queries == 3 and .warm.state == "done"'
stop obj

# a budget of exactly the probed lists' bytes: the warm-up takes those
# lists (the log's questions first) and nothing else, and the questions
# then read no list from storage
serve obj2 object RAGMAP_QUERY_LIST_CACHE_MB=64 || { finish; exit 1; }
equal obj2-post-warm "$(curl -sS -o "$work/body" -w '%{http_code}' -X POST -d "{\"budget_bytes\":$probed_bytes}" "$(url obj2)/v1/warm")" 202
jqtrue obj2-post-warm-state "$work/body" '.warm.state == "running" and .warm.budget_bytes == $b' --argjson b "$probed_bytes"
equal obj2-budget-done "$(wait_warm obj2)" done
jqtrue obj2-budget-kept "$work/obj2-status.json" '.warm.bytes == .warm.planned_bytes and .warm.bytes == $b' --argjson b "$probed_bytes"
if [ "$probed_bytes" -lt "$lists_bytes" ]; then
	ok "obj2-budget-short ($probed_bytes of $lists_bytes list bytes)"
else
	echo "     note: the three questions probe every list ($lists_bytes bytes)"
fi
for i in "${!qs[@]}"; do
	equal "obj2-$i" "$(post obj2 "{\"q\":\"${qs[$i]}\",\"k\":5,\"trace\":\"full\"}")" 200
	jqtrue "obj2-$i-no-list-read" "$work/body" '[.storage.request_log[] | select(.key | test("lists"))] | length == 0'
done
stop obj2

# ---- cached mode: the log of one server warms the next
log=(RAGMAP_QUERY_LOG_FLUSH_S=1 RAGMAP_QUERY_LOG_FLUSH_RECORDS=1)
serve c1 cached "${log[@]}" || { finish; exit 1; }
for i in "${!qs[@]}"; do
	equal "c1-$i" "$(post c1 "{\"q\":\"${qs[$i]}\",\"k\":5}")" 200
done
stop c1   # flushes the log
serve c2 cached "${log[@]}" RAGMAP_QUERY_WARM=true || { finish; exit 1; }
equal c2-warm-done "$(wait_warm c2)" done
# 12: the three questions asked by each object-mode server and by c1
jqtrue c2-warm-from-log "$work/c2-status.json" '.warm.what | test("chunks most returned in 12 logged answers")'
jqtrue c2-warm-records "$work/c2-status.json" '.warm.items > 0 and .warm.items <= 15 and .warm.bytes > 0'
for i in "${!qs[@]}"; do
	equal "c2-$i" "$(post c2 "{\"q\":\"${qs[$i]}\",\"k\":5}")" 200
	jqtrue "c2-$i-no-storage" "$work/body" '.storage.requests == 0'
done
get c2 /v1/map >/dev/null
jqtrue c2-map-warm "$work/body" '.query_path.warm.queries == 3 and .query_path.cold.queries == 0 and .query_path.warm.latency_ms > 0'
stop c2

# ---- memory mode: nothing to warm
serve mem memory RAGMAP_QUERY_WARM=true || { finish; exit 1; }
equal mem-warm-400 "$(curl -sS -o "$work/body" -w '%{http_code}' -X POST "$(url mem)/v1/warm")" 400
jqtrue mem-warm-says-why "$work/body" '.error | contains("memory mode keeps no cache to preload: it holds everything in RAM")'
expect mem-warm-logged "warm-up: memory mode keeps no cache" "$work/mem.err"
stop mem
finish
