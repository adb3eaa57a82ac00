#!/usr/bin/env bash
# Reproducible retrieval evaluation, exactly as a user would run it:
# upload a collection's documents, `ragmap ingest` (which fits the model on
# an empty index), then `ragmap eval` for each retriever.
#
#   bench/eval-cranfield.sh [COLLECTION_DIR]   (default ../shared/eval/cranfield)
#
# COLLECTION_DIR holds docs/<id>.txt, queries.tsv and qrels.txt.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/eval-common.sh"
eval_index "${1:-$top/../shared/eval/cranfield}" eval
printf '| retriever | nDCG@10 | MAP@100 | Recall@100 | MRR@10 | queries | seconds |\n'
printf '|-----------|---------|---------|------------|--------|---------|---------|\n'
for r in dense bm25 hybrid; do
	start=$(date +%s.%N)
	out=$("$ragmap" eval --queries "$coll/queries.tsv" --qrels "$coll/qrels.txt" --retriever "$r" 2>/dev/null)
	end=$(date +%s.%N)
	get() { echo "$out" | awk -v k="$1" '$1 == k { print $2 }'; }
	printf '| %-9s | %.4f  | %.4f  | %.4f     | %.4f | %7s | %7.1f |\n' "$r" "$(get ndcg@10)" \
		"$(get map@100)" "$(get recall@100)" "$(get mrr@10)" "$(get queries)" \
		"$(echo "$end - $start" | bc)"
done
