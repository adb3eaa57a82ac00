#!/usr/bin/env bash
# Fusion variants of the hybrid retriever on one collection, on one index:
# upload the collection's documents, `ragmap ingest` (which fits the model on
# an empty index), `ragmap eval` for dense and bm25, then for hybrid once per
# variant below. A variant is a set of configuration overrides
# (RAGMAP_QUERY_HYBRID_METHOD, _HYBRID_WEIGHT, _RRF_K, _HYBRID_DEPTH); the
# first hybrid row is the configured default.
#
#   bench/eval-fusion.sh [COLLECTION_DIR]   (default ../shared/eval/cranfield)
#
# COLLECTION_DIR holds docs/<id>.txt, queries.tsv and qrels.txt (the layout
# bench/eval-cranfield.sh reads). RAGMAP_BIN picks the binary (default
# build/ragmap). `ragmap eval` asks for 500 chunks a query, so each list is
# 500 deep (query.hybrid_depth only raises that).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/eval-common.sh"
unset RAGMAP_QUERY_HYBRID_METHOD RAGMAP_QUERY_HYBRID_WEIGHT RAGMAP_QUERY_RRF_K \
	RAGMAP_QUERY_HYBRID_DEPTH
eval_index "${1:-$top/../shared/eval/cranfield}" fusion

# the configured fusion, as `ragmap eval` will see it
setting() { "$ragmap" config show 2>/dev/null | awk -v k="$1" '$1 == k { print $3 }'; }
method=$(setting hybrid_method)
case $method in
rrf) default="rrf k=$(setting rrf_k)" ;;
'') default=configured ;;
*) default="$method w=$(setting hybrid_weight)" ;;
esac

# retriever|label|overrides (space-separated VAR=VALUE)
runs=(
	"dense|dense|"
	"bm25|bm25|"
	"hybrid|default: $default|"
	"hybrid|zscore w=0.5|RAGMAP_QUERY_HYBRID_METHOD=zscore RAGMAP_QUERY_HYBRID_WEIGHT=0.5"
	"hybrid|zscore w=0.6|RAGMAP_QUERY_HYBRID_METHOD=zscore RAGMAP_QUERY_HYBRID_WEIGHT=0.6"
	"hybrid|zscore w=0.7|RAGMAP_QUERY_HYBRID_METHOD=zscore RAGMAP_QUERY_HYBRID_WEIGHT=0.7"
	"hybrid|zscore w=0.8|RAGMAP_QUERY_HYBRID_METHOD=zscore RAGMAP_QUERY_HYBRID_WEIGHT=0.8"
	"hybrid|zscore w=0.9|RAGMAP_QUERY_HYBRID_METHOD=zscore RAGMAP_QUERY_HYBRID_WEIGHT=0.9"
	"hybrid|zscore w=0.5 depth 1000|RAGMAP_QUERY_HYBRID_METHOD=zscore RAGMAP_QUERY_HYBRID_WEIGHT=0.5 RAGMAP_QUERY_HYBRID_DEPTH=1000"
	"hybrid|rrf k=60|RAGMAP_QUERY_HYBRID_METHOD=rrf RAGMAP_QUERY_RRF_K=60"
	"hybrid|rrf k=10|RAGMAP_QUERY_HYBRID_METHOD=rrf RAGMAP_QUERY_RRF_K=10"
	"hybrid|rrf k=1|RAGMAP_QUERY_HYBRID_METHOD=rrf RAGMAP_QUERY_RRF_K=1"
)
printf '| retriever | fusion | nDCG@10 | MAP@100 | Recall@100 | MRR@10 | queries |\n'
printf '|-----------|--------|---------|---------|------------|--------|---------|\n'
for run in "${runs[@]}"; do
	IFS='|' read -r r label vars <<<"$run"
	# shellcheck disable=SC2086 # vars is a list of VAR=VALUE words
	out=$(env $vars "$ragmap" eval --queries "$coll/queries.tsv" --qrels "$coll/qrels.txt" \
		--retriever "$r" 2>/dev/null)
	get() { echo "$out" | awk -v k="$1" '$1 == k { print $2 }'; }
	[ "$r" = hybrid ] || label=-
	printf '| %-9s | %s | %.4f | %.4f | %.4f | %.4f | %s |\n' "$r" "$label" "$(get ndcg@10)" \
		"$(get map@100)" "$(get recall@100)" "$(get mrr@10)" "$(get queries)"
done
