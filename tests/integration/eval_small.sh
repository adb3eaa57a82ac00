#!/usr/bin/env bash
# ragmap eval end to end on a tiny collection whose answers are obvious:
# every judged query has exactly one relevant document that shares its
# words, so each retriever must score nDCG@10 = MRR@10 = 1; a query without
# judgements is skipped and counted; FTS5 syntax in a query is inert.
set -uo pipefail
bin=${RAGMAP_BIN:?}
data=${RAGMAP_SOURCE_DIR:?}/tests/data/eval
. "${RAGMAP_TEST_S3_DIR:?}/s3.env"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tag="evalsmall-$$-$RANDOM"
export RAGMAP_SOURCE_PREFIX=$tag/ RAGMAP_INDEX_NAME=$tag RAGMAP_LOCAL_DIR=$work/local RAGMAP_MODEL_DIMS=8
unset RAGMAP_CONFIG
fails=0
"$bin" s3 put "$data/docs" "$tag/" >/dev/null || { echo "FAIL upload"; exit 1; }
"$bin" ingest --quiet || { echo "FAIL ingest"; exit 1; }
for r in dense bm25 hybrid; do
	out=$("$bin" eval --queries "$data/queries.tsv" --qrels "$data/qrels.txt" --retriever "$r" 2>"$work/err")
	st=$?
	get() { echo "$out" | awk -v k="$1" '$1 == k { print $2 }'; }
	if [ $st != 0 ] || [ "$(get ndcg@10)" != 1.0000 ] || [ "$(get mrr@10)" != 1.0000 ] ||
		[ "$(get queries)" != 4 ] || [ "$(get skipped)" != 1 ] || [ "$(get recall@100)" != 1.0000 ]; then
		echo "FAIL $r (exit $st):"; echo "$out"; cat "$work/err"; fails=$((fails + 1))
	else
		echo "ok   $r: ndcg@10 1, mrr@10 1, 4 queries, 1 skipped"
	fi
done
# --json: per-query figures, same means
js=$("$bin" eval --queries "$data/queries.tsv" --qrels "$data/qrels.txt" --json)
grep -q '"per_query"' <<<"$js" && grep -q '"id": "q5"' <<<"$js" && echo "ok   json" ||
	{ echo "FAIL json: $js"; fails=$((fails + 1)); }
# FTS5 syntax and SQL in a query are plain words
out=$("$bin" query --retriever bm25 '"NEAR(" OR * ) -- ; DROP TABLE chunks; x:y ^ AND' -k 3 2>&1)
[ $? = 0 ] && echo "ok   fts5-syntax-inert" || { echo "FAIL fts5 syntax: $out"; fails=$((fails + 1)); }
"$bin" query --retriever bm25 'inverted list ranged' -k 1 | grep -q "d5.txt" && echo "ok   bm25-finds" ||
	{ echo "FAIL bm25 did not find d5"; fails=$((fails + 1)); }
# a bad qrels line names the file and line
printf 'q1 0 d1\n' >"$work/bad.qrels"
"$bin" eval --queries "$data/queries.tsv" --qrels "$work/bad.qrels" 2>"$work/err" >/dev/null
st=$?
[ $st = 1 ] || [ $st = 2 ] && grep -q "bad.qrels" "$work/err" && echo "ok   bad-qrels" ||
	{ echo "FAIL bad qrels: exit $st"; cat "$work/err"; fails=$((fails + 1)); }
[ "$fails" = 0 ]
