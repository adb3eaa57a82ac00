#!/usr/bin/env bash
# The query log (the inference "bookend"): answered queries are flushed as
# JSONL objects under <log prefix>yyyy/mm/dd/ by the background flusher
# (storage counted under stage query.log in /metrics) and on shutdown; one
# line per answered query, none for a bad request.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

ingest_corpus || { finish; exit 1; }
logp=$RAGMAP_QUERY_LOG_PREFIX
day0=$(date -u +%Y/%m/%d)
serve logged pointer RAGMAP_QUERY_LOG_FLUSH_S=1 RAGMAP_QUERY_LOG_FLUSH_RECORDS=100000 || { finish; exit 1; }

n=0
for q in "object storage for checkpoints" "IVF lists" "LoRA adapters" "KV cache" "sharded datasets"; do
	equal "query-$n" "$(post logged "{\"q\": \"$q\", \"k\": 3}")" 200
	n=$((n + 1))
done
equal bad-request-not-logged "$(post logged '{"q": ""}')" 400
# within a few seconds the flusher writes an object, counted under query.log
for i in $(seq 100); do
	get logged /metrics >/dev/null
	[ "$(metric "$work/body" 'ragmap_storage_requests_total{stage="query.log",kind="put"}')" -ge 1 ] && break
	sleep 0.1
done
puts=$(metric "$work/body" 'ragmap_storage_requests_total{stage="query.log",kind="put"}')
[ "$puts" -ge 1 ] && ok "flushed-in-background ($puts PUT)" || bad "flushed-in-background: no query.log PUT in /metrics"
[ "$(metric "$work/body" 'ragmap_storage_bytes_total{stage="query.log",kind="put"}')" -gt 0 ] &&
	ok log-bytes-counted || bad log-bytes-counted
"$bin" s3 ls -r "$logp" >"$work/ls1" 2>&1
equal objects-before-shutdown "$(grep -c '\.jsonl$' "$work/ls1")" "$puts"
# the log is off the query path: answers carry no query.log storage
equal answer-has-no-log-put "$(post logged '{"q": "object storage", "k": 3}')" 200
jqtrue answer-storage-is-text-only "$work/body" '.storage.requests == 3 and (.storage.by_kind | keys) == ["get"]'
n=$((n + 1))
# these are still buffered when the server stops: the shutdown flushes them
for q in "chunking strategies" "hybrid search"; do
	equal "late-query-$n" "$(post logged "{\"q\": \"$q\"}")" 200
	n=$((n + 1))
done
stop logged
day1=$(date -u +%Y/%m/%d)

check ls-logs 0 "$bin" s3 ls -r "$logp"
cp "$work/out" "$work/ls"
keys=$(sed -E 's/^ *[0-9]+ +[0-9a-f-]+ +//' "$work/ls" | grep '\.jsonl$')
[ "$(echo "$keys" | grep -c .)" -gt "$puts" ] && ok "flushed-on-shutdown" || bad "flushed-on-shutdown: $(echo "$keys" | grep -c .) objects"
bad_key=$(echo "$keys" | grep -Ev "^${logp}($day0|$day1)/[^/]+\.jsonl$")
equal keys-under-yyyy-mm-dd "$bad_key" ""
: >"$work/all.jsonl"
# (through cat: `ragmap s3 get KEY -` rewinds a regular-file stdout, so >> would lose lines)
for key in $keys; do "$bin" s3 get "$key" - | cat >>"$work/all.jsonl" || bad "get $key"; done
equal one-line-per-answered-query "$(wc -l <"$work/all.jsonl")" "$n"
jqtrue lines-are-records "$work/all.jsonl" -s 'all(.[];
	(.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")) and (.q | type) == "string" and (.q | length) > 0 and
	(.k | type) == "number" and .mode == "pointer" and .retriever == "dense" and .index_version == 1 and
	(.hits | type) == "array" and (.hits | length) == .k and .storage_requests == .k and
	(.total_ms | type) == "number")'
jqtrue every-query-logged "$work/all.jsonl" -s '[.[].q] | sort == (["object storage for checkpoints", "IVF lists",
	"LoRA adapters", "KV cache", "sharded datasets", "object storage", "chunking strategies",
	"hybrid search"] | sort)'
finish
