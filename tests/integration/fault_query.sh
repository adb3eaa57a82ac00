#!/usr/bin/env bash
# The query path under storage faults (issue 6, item 4): servers in pointer,
# cached and object mode read the store through faultproxy. Every answer is
# either complete — the same hits, chunk ids and texts as a memory-mode
# server reading the store directly — or HTTP 502 with a JSON error naming
# the object (s3://bucket/key). Never another status, never a partial list
# of hits, never a dead server; once the faults stop, every query succeeds.
#
#   phase 1  10% faults, some latency: retries hide them (>= 95% succeed)
#   phase 2  70% faults: many queries fail, each with its own clear 502
#   phase 3  no faults: all succeed
#   phase 4  every GET of the chunk records fails (persistent): 502 naming
#            chunks.bin (cached mode may answer from its cache)
#   phase 5  the persistent fault stops: all succeed again
#   phase 6  every GET held 5 s: a server with query.timeout_ms = 800 answers
#            504 in time (the deadline bounds the reads and their retries)
#
#   RAGMAP_FAULT_SEED=N   the proxy's seed (default 6)
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"
. "$top/tests/tools/fault-common.sh"

seed=${RAGMAP_FAULT_SEED:-6}
k=5
cat >"$work/queries" <<'EOF'
why does a RAG pipeline keep source documents in object storage
how are checkpoints written to object storage during training
memory pointer cached and object backing modes of a vector database
IVF index inverted lists centroids and nprobe
hybrid search with BM25 and dense vectors
chunking documents by headings paragraphs and token budget
re-embedding the corpus when the embedding model changes
latency of the query path and ranged GET requests
LoRA adapters versioning and storage
KV cache and GPU memory during inference
sharded datasets and WebDataset tar files
evaluation datasets for fine-tuning
EOF
nq=$(wc -l <"$work/queries")
retrievers=(dense dense bm25 hybrid) # by query number, cycled
modes=(pointer cached object)

# segments of >= 100 chunks are IVF, so object mode probes real lists
ingest_corpus RAGMAP_INDEX_IVF_THRESHOLD=100 || { finish; exit 1; }

# the requests, one file per query (1-based)
for i in $(seq 1 "$nq"); do
	jq -nc --arg q "$(sed -n "${i}p" "$work/queries")" --argjson k "$k" \
		--arg r "${retrievers[$(( (i - 1) % ${#retrievers[@]} ))]}" \
		'{q: $q, k: $k, retriever: $r}' >"$work/req.$i"
done
dense_queries=$(for i in $(seq 1 "$nq"); do
	[ "${retrievers[$(( (i - 1) % ${#retrievers[@]} ))]}" = dense ] && echo "$i"; done)
ask() { # ask SERVER N OUT: POST query N, the answer in OUT; prints the status
	curl -sS -o "$3" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data-binary @"$work/req.$2" "$(url "$1")/v1/query" 2>/dev/null
}

# the reference: memory mode, straight to the store; what must match is
# the ranked (key, chunk, chunk id, text) of every query
serve ref memory || { finish; exit 1; }
for i in $(seq 1 "$nq"); do
	code=$(ask ref "$i" "$work/ref.$i")
	[ "$code" = 200 ] || bad "reference query $i: HTTP $code"
done
jq -s -c 'map([.results[] | [.key, .chunk, .chunk_id, .text]])' \
	$(for i in $(seq 1 "$nq"); do echo "$work/ref.$i"; done) >"$work/ref.all"
equal reference-complete "$(jq -c "map(length) | unique" "$work/ref.all")" "[$k]"
stop ref

start_proxy --seed "$seed" --ignore "$ns" --rate 0.1 --latency-ms 30 --latency-rate 0.05
for m in "${modes[@]}"; do
	# loading goes through the faults too; the reloader polls LATEST each second
	serve "$m" "$m" AWS_ENDPOINT_URL="$proxy_url" RAGMAP_S3_RETRY_BASE_MS=5 \
		RAGMAP_QUERY_RELOAD_S=1 RAGMAP_QUERY_CACHE_MB=1 || { finish; exit 1; }
done

# round PHASE PASSES: every query PASSES times on every server. Each answer
# is classified in $work/outcome.PHASE as "MODE N WHAT", WHAT one of
#   ok         200, and the hits equal the reference's
#   error      502 with {"error": "... s3://bucket/key ...", "status": 502}
#   partial    200 with other hits (a failure)
#   bad-error  502 without a message naming the object (a failure)
#   status-C   any other status, 000 for no answer (a failure)
# and the counts land in ok_MODE and err_MODE; the 502 messages are
# appended to $work/errors.PHASE.
round() {
	local phase=$1 passes=$2 m i p code
	rm -rf "$work/ans"
	mkdir -p "$work/ans"
	: >"$work/outcome.$phase"
	for m in "${modes[@]}"; do
		for p in $(seq 1 "$passes"); do
			for i in $(seq 1 "$nq"); do
				code=$(ask "$m" "$i" "$work/ans/$m.$p.$i")
				case "$code" in
				200 | 502) mv "$work/ans/$m.$p.$i" "$work/ans/$m.$p.$i.$code" ;;
				*) echo "$m $i status-$code" >>"$work/outcome.$phase" ;;
				esac
			done
		done
		[ "$(get "$m" /healthz)" = 200 ] || bad "$phase $m: /healthz after the round"
	done
	jq -r --slurpfile ref "$work/ref.all" '. as $a |
		(input_filename | capture("/(?<m>[a-z]+)\\.[0-9]+\\.(?<i>[0-9]+)\\.(?<c>[0-9]+)$")) as $f |
		($f.i | tonumber) as $i |
		(if $f.c == "200" then
			(if [$a.results[] | [.key, .chunk, .chunk_id, .text]] == $ref[0][$i - 1]
			 then "ok" else "partial" end)
		 elif ($a.error | type == "string" and test("s3://[^/]+/.+")) and $a.status == 502 and
			($a | has("results") | not) then "error"
		 else "bad-error" end) as $what |
		"\($f.m) \($i) \($what)"' "$work"/ans/* >>"$work/outcome.$phase" ||
		bad "$phase: an answer that is not JSON"
	cat "$work"/ans/*.502 2>/dev/null | jq -r .error >>"$work/errors.$phase"
	equal "$phase-answers" "$(wc -l <"$work/outcome.$phase")" $((nq * passes * ${#modes[@]}))
	expect_not "$phase-complete-or-clear-error" " (partial|bad-error|status-.*)$" "$work/outcome.$phase"
	for m in "${modes[@]}"; do
		eval "ok_$m=$(grep -c "^$m [0-9]* ok$" "$work/outcome.$phase")"
		eval "err_$m=$(grep -c "^$m [0-9]* error$" "$work/outcome.$phase")"
	done
}
counts() { local m; for m in "${modes[@]}"; do eval "printf '%s %s ok, %s errors; ' $m \$ok_$m \$err_$m"; done; }

# phase 1: 10% faults, retries hide them
round p1 3
total=$((nq * 3))
for m in "${modes[@]}"; do
	eval "n=\$ok_$m"
	[ "$n" -ge $((total * 95 / 100)) ] && ok "p1-$m-succeeds ($n of $total)" ||
		bad "p1 $m: only $n of $total queries succeeded at 10% faults"
done
p1_figures="$(counts)injected $(proxy_stat injected) faults in $(proxy_stat requests) requests"
for m in "${modes[@]}"; do
	get "$m" /metrics >/dev/null
	cp "$work/body" "$work/metrics.$m"
done
retries=$(cat "$work"/metrics.* | awk '$1 ~ /^ragmap_storage_retries_total\{stage="query\./ { s += $2 } END { print s + 0 }')
[ "$retries" -gt 0 ] && ok "p1-retried ($retries query retries)" || bad "p1: no query retries in /metrics"

# phase 2: 70% faults: some queries fail, each with a clear error
proxy_set "rate=0.7&latency-rate=0"
round p2 2
failed=0
for m in "${modes[@]}"; do eval "failed=\$((failed + err_$m))"; done
[ "$failed" -gt 0 ] && ok "p2-errors-reported ($failed)" || bad "p2: no query failed at 70% faults"
p2_figures="$(counts)"
[ ! -s "$work/errors.p2" ] || expect p2-error-names-retries "after [0-9]+ retries: GET s3://rag/${root}" "$work/errors.p2"

# phase 3: the faults stop; everything succeeds
proxy_set "rate=0"
round p3 1
for m in "${modes[@]}"; do
	eval "n=\$ok_$m"
	equal "p3-$m-recovered" "$n" "$nq"
done

# phase 4: the chunk records object always fails
proxy_set "fail-key=${root}*chunks.bin&fail-kind=reset-body"
round p4 1
# dense queries need the records; bm25 and hybrid read texts from the catalog
for m in pointer object; do
	n=0
	for i in $dense_queries; do grep -q "^$m $i error$" "$work/outcome.p4" && n=$((n + 1)); done
	equal "p4-$m-dense-queries-fail" "$n" "$(echo "$dense_queries" | wc -w)"
done
expect p4-error-names-chunks "GET s3://rag/${root}[^ ]*/chunks.bin" "$work/errors.p4"

# phase 5: it stops failing
proxy_set "fail-key="
round p5 1
for m in "${modes[@]}"; do
	eval "n=\$ok_$m"
	equal "p5-$m-recovered" "$n" "$nq"
done

# phase 6: storage slower than the query's time: every GET is held 5 s; a
# pointer server with query.timeout_ms = 800 answers 504 naming the limit
# when its time is up, not when the GET finally comes back
serve slow pointer AWS_ENDPOINT_URL="$proxy_url" RAGMAP_QUERY_TIMEOUT_MS=800 || { finish; exit 1; }
proxy_set "latency-ms=5000&latency-rate=1"
t0=$(date +%s%N)
code=$(ask slow 1 "$work/slow.1")
ms=$((($(date +%s%N) - t0) / 1000000))
equal p6-timeout-504 "$code" 504
jqtrue p6-timeout-says-why "$work/slow.1" '.error | test("query.timeout_ms is 800")'
[ "$ms" -lt 4000 ] && ok "p6-answered-in-time ($ms ms)" || bad "p6-answered-in-time: $ms ms"
proxy_set "latency-ms=0&latency-rate=0"
equal p6-recovers "$(ask slow 1 "$work/slow.2")" 200
stop slow

for m in "${modes[@]}"; do stop "$m"; done
for p in p2 p4; do [ -s "$work/errors.$p" ] && echo "a 502 of $p: $(head -1 "$work/errors.$p")"; done
echo "figures: 10% faults: ${p1_figures}; 70% faults: ${p2_figures}proxy total: $(proxy_stat injected) faults in $(proxy_stat requests) requests"
finish
