#!/usr/bin/env bash
# The four backing modes: the same 20 queries give the same ranked results
# (key, chunk, score within 1e-5) in memory, pointer, cached and object mode,
# on a flat index and on an IVF one (object = in-RAM IVF, same nprobe); and
# each answer's storage trace is exact:
#   memory   0 requests per query after the load
#   pointer  k GETs per query, one per hit
#   cached   k - hits GETs; the same queries again: 0 GETs, k hits
#   object   (non-empty probed lists) + k GETs; with a list cache, k again
# and the totals in /metrics (stages query.text and query.lists, cache hits
# and misses) are the sums of the answers' traces.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

k=10
cat >"$work/queries" <<'EOF'
why does a RAG pipeline keep source documents in object storage
how are checkpoints written to object storage during training
memory pointer cached and object backing modes of a vector database
IVF index inverted lists centroids and nprobe
hybrid search with BM25 and dense vectors
chunking documents by headings paragraphs and token budget
re-embedding the corpus when the embedding model changes
incremental ingestion of new and deleted documents
latency of the query path and ranged GET requests
LoRA adapters versioning and storage
serving many adapters on one base model
KV cache and GPU memory during inference
sharded datasets and WebDataset tar files
streaming data loaders reading from S3
tokenization and preprocessing of training data
artifact registry for trained models
evaluation datasets for fine-tuning
object-native vector search reading segments from the store
throughput of training storage in GB per second
query logs as the inference bookend
EOF
nq=$(wc -l <"$work/queries")

ingest_corpus || { finish; exit 1; }
# the same corpus as an IVF index: segments of >= 100 chunks are IVF
env RAGMAP_INDEX_NAME="$idx-ivf" RAGMAP_LOCAL_DIR="$work/local-ivf" RAGMAP_INDEX_IVF_THRESHOLD=100 \
	"$bin" ingest >"$work/ingest-ivf.out" 2>&1 || { bad "ingest ivf"; cat "$work/ingest-ivf.out"; }

# run NAME FILE: the 20 queries, one client, in order; answers in FILE (JSONL)
run() {
	"$bin" bench load --url "$(url "$1")" --clients 1 --requests "$nq" --queries "$work/queries" \
		-k "$k" --record "$work/rec" >"$work/load.out" 2>&1 || { bad "load on $1"; cat "$work/load.out"; }
	cut -f4- "$work/rec" >"$2"
	equal "$1-answers" "$(jq -s 'map(select(.results)) | length' "$2")" "$nq"
}

# same NAME FILE REF: same ranked (key, chunk) and scores within 1e-5
same() {
	jq -n -e --slurpfile a "$2" --slurpfile b "$3" '
		($a | length) == ($b | length) and
		all(range($a | length); . as $i |
			$a[$i].query == $b[$i].query and
			($a[$i].results | map([.key, .chunk, .chunk_id])) ==
				($b[$i].results | map([.key, .chunk, .chunk_id])) and
			all(range($a[$i].results | length); . as $j |
				(($a[$i].results[$j].score - $b[$i].results[$j].score) | fabs) <= 1e-5))' \
		>/dev/null && { ok "$1"; return; }
	bad "$1: $2 differs from $3"
	# the first differing answer, both ways, so a failure in CI can be read
	jq -n -c --slurpfile a "$2" --slurpfile b "$3" '
		first(range($a | length) as $i | select(($a[$i].results | map([.key, .chunk, .score])) !=
			($b[$i].results | map([.key, .chunk, .score]))) |
		{query: $a[$i].query, got: ($a[$i] | del(.results[].text)),
		 want: ($b[$i] | del(.results[].text))})' >&2
}

# metrics NAME: /metrics of server NAME into $work/NAME.metrics
metrics() { get "$1" /metrics >/dev/null && cp "$work/body" "$work/$1.metrics"; }
stage() { metric "$work/$1.metrics" "ragmap_storage_requests_total{stage=\"$2\",kind=\"get\"}"; }

for flavour in flat ivf; do
	if [ $flavour = flat ]; then
		ix=$idx
		latest_manifest >"$work/m-$flavour.json" || bad "manifest $flavour"
	else
		ix=$idx-ivf
		mkey=$("$bin" s3 get "indexes/$ix/LATEST" - | jq -r .manifest)
		"$bin" s3 get "$mkey" - >"$work/m-$flavour.json" || bad "manifest $flavour"
	fi
	m=$work/m-$flavour.json
	kind=$(jq -r '[.segments[].kind] | unique | join(",")' "$m")
	equal "$flavour-segment-kind" "$kind" "$flavour"
	# the lists object mode will probe per query: nprobe per segment, and
	# which lists are empty (an empty list costs no request)
	probes=0
	empty=0
	for s in $(seq 0 $(($(jq '.segments | length' "$m") - 1))); do
		nl=$(jq ".segments[$s].nlist" "$m")
		np=$(jq ".segments[$s].nprobe" "$m")
		[ "$np" -gt "$nl" ] && np=$nl
		probes=$((probes + np))
		"$bin" s3 get "$(jq -r ".segments[$s].objects.lists_idx.key" "$m")" - |
			tail -c $(((nl + 1) * 8)) | od -An -tu8 -v | tr -s ' ' '\n' | grep . >"$work/offs"
		empty=$((empty + $(awk 'NR > 1 && $1 == prev { n++ } { prev = $1 } END { print n + 0 }' "$work/offs")))
	done
	if [ $flavour = ivf ]; then
		[ "$(jq '[.segments[] | select(.nprobe < .nlist)] | length' "$m")" -gt 0 ] &&
			ok "ivf-probes-fewer-than-all-lists" || bad "ivf: nprobe == nlist, IVF not exercised"
	fi
	equal "$flavour-no-empty-list" "$empty" 0

	for mode in memory pointer cached object; do
		serve "$flavour-$mode" $mode RAGMAP_INDEX_NAME="$ix" RAGMAP_QUERY_RELOAD_S=0 || continue
	done
	serve "$flavour-objcache" object RAGMAP_INDEX_NAME="$ix" RAGMAP_QUERY_RELOAD_S=0 \
		RAGMAP_QUERY_LIST_CACHE_MB=16 || true
	for mode in memory pointer cached object objcache; do
		run "$flavour-$mode" "$work/$flavour-$mode.jsonl"
	done
	version=$(jq .version "$m")
	jqtrue "$flavour-versions" "$work/$flavour-pointer.jsonl" -s 'all(.[]; .index_version == $v)' \
		--argjson v "$version"

	# ---- equivalence
	for mode in pointer cached object objcache; do
		same "$flavour-$mode-same-as-memory" "$work/$flavour-$mode.jsonl" "$work/$flavour-memory.jsonl"
	done
	jqtrue "$flavour-k-results" "$work/$flavour-memory.jsonl" -s 'all(.[]; (.results | length) == $k)' \
		--argjson k $k

	# ---- exact traces
	jqtrue "$flavour-memory-zero-storage" "$work/$flavour-memory.jsonl" \
		-s 'all(.[]; .storage.requests == 0 and .storage.bytes == 0)'
	jqtrue "$flavour-pointer-k-gets" "$work/$flavour-pointer.jsonl" \
		-s 'all(.[]; .storage.requests == $k and .storage.by_kind.get.requests == $k and
			.storage.bytes > 0 and .cache == {hits: 0, misses: 0})' --argjson k $k
	jqtrue "$flavour-cached-first-query-k-gets" "$work/$flavour-cached.jsonl" \
		-n 'input | .storage.requests == $k and .cache == {hits: 0, misses: $k}' --argjson k $k
	jqtrue "$flavour-cached-gets-are-misses" "$work/$flavour-cached.jsonl" \
		-s 'all(.[]; .storage.requests == .cache.misses and .cache.hits + .cache.misses == $k)' \
		--argjson k $k
	jqtrue "$flavour-object-probes-plus-k" "$work/$flavour-object.jsonl" \
		-s 'all(.[]; .storage.requests == $p + $k and .storage.by_kind.get.requests == $p + $k)' \
		--argjson k $k --argjson p "$probes"
	jqtrue "$flavour-objcache-first-query" "$work/$flavour-objcache.jsonl" \
		-n 'input | .storage.requests == $p + $k and .cache == {hits: 0, misses: $p}' --argjson k $k --argjson p "$probes"
	jqtrue "$flavour-objcache-gets" "$work/$flavour-objcache.jsonl" \
		-s 'all(.[]; .storage.requests == .cache.misses + $k and .cache.hits + .cache.misses == $p)' \
		--argjson k $k --argjson p "$probes"

	# the same queries again: cached mode reads nothing, the list cache only text
	run "$flavour-cached" "$work/$flavour-cached-2.jsonl"
	run "$flavour-objcache" "$work/$flavour-objcache-2.jsonl"
	same "$flavour-cached-repeat-same" "$work/$flavour-cached-2.jsonl" "$work/$flavour-memory.jsonl"
	same "$flavour-objcache-repeat-same" "$work/$flavour-objcache-2.jsonl" "$work/$flavour-memory.jsonl"
	jqtrue "$flavour-cached-repeat-zero-gets" "$work/$flavour-cached-2.jsonl" \
		-s 'all(.[]; .storage.requests == 0 and .cache == {hits: $k, misses: 0})' --argjson k $k
	jqtrue "$flavour-objcache-repeat-k-gets" "$work/$flavour-objcache-2.jsonl" \
		-s 'all(.[]; .storage.requests == $k and .cache == {hits: $p, misses: 0})' \
		--argjson k $k --argjson p "$probes"

	# ---- /metrics: the totals per stage are the sums of the answers
	for mode in memory pointer cached object objcache; do metrics "$flavour-$mode"; done
	equal "$flavour-memory-metrics-no-text" "$(stage "$flavour-memory" query.text)" 0
	equal "$flavour-memory-metrics-no-lists" "$(stage "$flavour-memory" query.lists)" 0
	equal "$flavour-pointer-metrics-text" "$(stage "$flavour-pointer" query.text)" $((nq * k))
	equal "$flavour-pointer-metrics-no-lists" "$(stage "$flavour-pointer" query.lists)" 0
	misses=$(jq -s 'map(.cache.misses) | add' "$work/$flavour-cached.jsonl")
	hits=$(jq -s 'map(.cache.hits) | add' "$work/$flavour-cached.jsonl" "$work/$flavour-cached-2.jsonl")
	equal "$flavour-cached-metrics-text" "$(stage "$flavour-cached" query.text)" "$misses"
	equal "$flavour-cached-metrics-misses" \
		"$(metric "$work/$flavour-cached.metrics" 'ragmap_cache_misses_total{cache="text"}')" "$misses"
	equal "$flavour-cached-metrics-hits" \
		"$(metric "$work/$flavour-cached.metrics" 'ragmap_cache_hits_total{cache="text"}')" "$hits"
	equal "$flavour-object-metrics-lists" "$(stage "$flavour-object" query.lists)" $((nq * probes))
	equal "$flavour-object-metrics-text" "$(stage "$flavour-object" query.text)" $((nq * k))
	lmiss=$(jq -s 'map(.cache.misses) | add' "$work/$flavour-objcache.jsonl")
	equal "$flavour-objcache-metrics-lists" "$(stage "$flavour-objcache" query.lists)" "$lmiss"
	equal "$flavour-objcache-metrics-hits" \
		"$(metric "$work/$flavour-objcache.metrics" 'ragmap_cache_hits_total{cache="lists"}')" \
		"$(jq -s 'map(.cache.hits) | add' "$work/$flavour-objcache.jsonl" "$work/$flavour-objcache-2.jsonl")"
	get "$flavour-cached" /v1/status >/dev/null
	jqtrue "$flavour-cached-status-cache" "$work/body" '.caches.text.hits == $h and .caches.text.misses == $m and
		.caches.text.entries == $m and .caches.text.bytes > 0' --argjson h "$hits" --argjson m "$misses"

	for mode in memory pointer cached object objcache; do stop "$flavour-$mode"; done
done

# `ragmap query` (the index loaded in the process) agrees with the servers
q=$(sed -n 4p "$work/queries")
for mode in memory object; do
	check "local-$mode" 0 "$bin" query "$q" -k $k --mode $mode --json
	sed -n 4p "$work/flat-memory.jsonl" >"$work/ref.json"
	same "local-$mode-same-as-server" "$work/out" "$work/ref.json"
done
finish
