#!/usr/bin/env bash
# POST /v1/query "filter": {"prefix": P, "type": [T...]} in every backing
# mode (memory, pointer, cached, object; flat and IVF) and every retriever
# (dense, bm25, hybrid), against a brute force: the same query unfiltered
# with k = every chunk, its hits filtered here by key prefix and by the
# type the catalog records for the key, the first k kept. The served
# answer must hold exactly those chunk ids in that order (so exactly k
# whenever k match, fewer only when fewer match). `ragmap query --prefix
# --type` does the same; unknown fields are a 400 naming them.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

k=10
ingest_corpus || { finish; exit 1; }
# the same corpus as an IVF index (segments of >= 100 chunks are IVF)
env RAGMAP_INDEX_NAME="$idx-ivf" RAGMAP_LOCAL_DIR="$work/local-ivf" RAGMAP_INDEX_IVF_THRESHOLD=100 \
	"$bin" ingest >"$work/ingest-ivf.out" 2>&1 || { bad "ingest ivf"; cat "$work/ingest-ivf.out"; }
latest_manifest >"$work/manifest.json" || bad "read the manifest"
chunks=$(jq .stats.chunks "$work/manifest.json")
big=$((chunks < 1000 ? chunks : 1000))
[ "$chunks" -le 1000 ] && ok "corpus-fits-one-brute-force ($chunks chunks)" ||
	bad "corpus has $chunks chunks: the brute force needs k >= chunks (at most 1000)"

# key -> type as the catalog snapshot of this version records it
"$bin" s3 get "$(jq -r .catalog.key "$work/manifest.json")" "$work/catalog.sqlite" >/dev/null 2>&1 ||
	bad "get the catalog snapshot"
sqlite3 -json "$work/catalog.sqlite" 'SELECT key, type FROM documents WHERE live = 1' \
	>"$work/types.json" 2>"$work/sqlite.err" || { bad "read document types"; cat "$work/sqlite.err"; }
jq -e 'map({(.key): .type}) | add | length > 0' "$work/types.json" >/dev/null && ok "types-read" ||
	bad "no document types"
jq 'map({(.key): .type}) | add' "$work/types.json" >"$work/typemap.json"
# the smallest document: a filter that matches fewer than k chunks
small=$(sqlite3 "$work/catalog.sqlite" 'SELECT key FROM documents WHERE live = 1 ORDER BY nchunks, key LIMIT 1')
small_n=$(sqlite3 "$work/catalog.sqlite" "SELECT nchunks FROM documents WHERE key = '$small' AND live = 1")
[ "$small_n" -lt "$k" ] && ok "small-document ($small, $small_n chunks)" ||
	bad "the smallest document has $small_n chunks, not fewer than $k"

# name|filter JSON|prefix|types (comma-joined catalog names, "" for any)
cat >"$work/filters" <<EOF
dir|{"prefix":"${src}rag/"}|${src}rag/|
types|{"type":["md","pdf"]}||markdown,pdf
both|{"prefix":"${src}training/","type":"markdown"}|${src}training/|markdown
both-txt-html|{"prefix":"${src}","type":["txt","html"]}|${src}|text,html
one-doc|{"prefix":"$small"}|$small|
nothing|{"prefix":"${src}no-such-dir/"}|${src}no-such-dir/|
empty|{}||
EOF
queries=("how are checkpoints written to object storage during training"
	"hybrid search with BM25 and dense vectors"
	"KV cache and GPU memory during inference")

# compare NAME FILTERED BRUTE PREFIX TYPES: chunk ids equal to the brute
# force's filtered first k; the count is min(k, matches)
compare() {
	local name=$1 got=$2 all=$3 prefix=$4 types=$5
	if jq -n -e --slurpfile g "$got" --slurpfile a "$all" --slurpfile t "$work/typemap.json" \
		--arg p "$prefix" --arg ty "$types" --argjson k "$k" '
		($ty | split(",") | map(select(. != ""))) as $tl |
		[$a[0].results[] | select((.key | startswith($p)) and
			(($tl | length) == 0 or ($t[0][.key] as $x | $tl | index($x) != null)))] as $m |
		($g[0].results | map(.chunk_id)) == ($m[:$k] | map(.chunk_id)) and
		($g[0].results | length) == ([$k, ($m | length)] | min) and
		($g[0].results | map(.rank)) == [range(1; ($g[0].results | length) + 1)]' >/dev/null; then
		ok "$name"
	else
		bad "$name"
		jq -c '{got: [.results[] | [.chunk_id, .key]]}' "$got" | head -c 1500
		echo
	fi
}

for index in flat ivf; do
	extra=()
	[ "$index" = ivf ] && extra=(RAGMAP_INDEX_NAME="$idx-ivf" RAGMAP_LOCAL_DIR="$work/local-ivf")
	for mode in memory pointer cached object; do
		# the IVF index: object mode (the others search the same lists in RAM)
		[ "$index" = ivf ] && [ "$mode" != object ] && [ "$mode" != memory ] && continue
		name="$index-$mode"
		serve "$name" "$mode" RAGMAP_QUERY_MAX_K=1000 "${extra[@]}" || continue
		for ret in dense bm25 hybrid; do
			for qi in "${!queries[@]}"; do
				q=${queries[$qi]}
				all="$work/all-$name-$ret-$qi.json"
				st=$(post "$name" "{\"q\":\"$q\",\"k\":$big,\"retriever\":\"$ret\"}")
				cp "$work/body" "$all"
				[ "$st" = 200 ] || { bad "$name-$ret-$qi-brute-force: HTTP $st"; continue; }
				while IFS='|' read -r fname filter prefix types; do
					st=$(post "$name" "{\"q\":\"$q\",\"k\":$k,\"retriever\":\"$ret\",\"filter\":$filter}")
					cp "$work/body" "$work/got.json"
					if [ "$st" != 200 ]; then
						bad "$name-$ret-$qi-$fname: HTTP $st: $(head -c 300 "$work/got.json")"
						continue
					fi
					if [ "$ret" = hybrid ] && [ "$fname" = empty ]; then
						# no filter: hybrid fuses query.hybrid_depth candidates for a
						# small k, so the answer is the unfiltered one at this k, not
						# the head of the brute force (fused at depth = every chunk)
						post "$name" "{\"q\":\"$q\",\"k\":$k,\"retriever\":\"$ret\"}" >/dev/null
						cp "$work/body" "$work/plain.json"
						compare "$name-$ret-q$qi-$fname" "$work/got.json" "$work/plain.json" "" ""
						continue
					fi
					compare "$name-$ret-q$qi-$fname" "$work/got.json" "$all" "$prefix" "$types"
				done <"$work/filters"
			done
		done
		# flat, dense: every chunk is a candidate, so a filter reaches k
		# (or every chunk it matches)
		if [ "$index" = flat ]; then
			st=$(post "$name" "{\"q\":\"${queries[0]}\",\"k\":$k,\"filter\":{\"prefix\":\"${src}rag/\"}}")
			jqtrue "$name-dense-dir-exactly-k" "$work/body" '(.results | length) == $k' --argjson k "$k"
			st=$(post "$name" "{\"q\":\"${queries[0]}\",\"k\":$k,\"filter\":{\"prefix\":\"$small\"}}")
			jqtrue "$name-dense-one-doc-all-its-chunks" "$work/body" '(.results | length) == $n' \
				--argjson n "$small_n"
		fi
		[ "$mode" = memory ] && [ "$index" = flat ] && keep_mem=$name && continue
		stop "$name"
	done
done

# ---- unknown fields: a 400 naming the field
equal unknown-field-400 "$(post "$keep_mem" '{"q":"x","tpye":["md"]}')" 400
jqtrue unknown-field-named "$work/body" '.error | contains("unknown field \"tpye\"")'
equal unknown-filter-field-400 "$(post "$keep_mem" '{"q":"x","filter":{"prefx":"a"}}')" 400
jqtrue unknown-filter-field-named "$work/body" '.error | contains("unknown field \"prefx\" in \"filter\"")'
equal unknown-type-400 "$(post "$keep_mem" '{"q":"x","filter":{"type":["docx"]}}')" 400
jqtrue unknown-type-named "$work/body" '.error | contains("unknown type \"docx\"")'
equal trace-explain-accepted "$(post "$keep_mem" '{"q":"x","trace":"summary","explain":false}')" 200

# ---- ragmap query --prefix --type: here and through --server
q=${queries[0]}
st=$(post "$keep_mem" "{\"q\":\"$q\",\"k\":$k,\"filter\":{\"prefix\":\"${src}training/\",\"type\":[\"md\"]}}")
cp "$work/body" "$work/served.json"
check cli-filter 0 "$bin" query --mode memory --json -k "$k" --prefix "${src}training/" --type md "$q"
jq -n -e --slurpfile a "$work/out" --slurpfile b "$work/served.json" \
	'($a[0].results | map(.chunk_id)) == ($b[0].results | map(.chunk_id)) and ($a[0].results | length) > 0' \
	>/dev/null && ok cli-filter-same-as-served || bad cli-filter-same-as-served
check cli-filter-server 0 "$bin" query --server "$(url "$keep_mem")" --json -k "$k" \
	--prefix "${src}training/" --type markdown "$q"
jq -n -e --slurpfile a "$work/out" --slurpfile b "$work/served.json" \
	'($a[0].results | map(.chunk_id)) == ($b[0].results | map(.chunk_id))' >/dev/null &&
	ok cli-filter-server-same || bad cli-filter-server-same
check cli-bad-type 2 "$bin" query --mode memory --type docx "$q"
expect cli-bad-type-named 'unknown type "docx"' "$work/err"
stop "$keep_mem"
finish
