#!/usr/bin/env bash
# `ragmap model import`: a BERT-family model directory (random weights of a
# tiny shape, made by tests/tools/bert_ref.py) becomes the index's model:
# stored under the model prefix with its card, every chunk re-embedded into
# a new version, queried, verified, and shown by status and embed. Ingest
# never refits an imported model; `model fit` goes back to the built-in one.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"
torch_python || { finish; exit 1; }
check make-model 0 "$py" "$top/tests/tools/bert_ref.py" make "$work/tiny" --shape tiny --seed 7

"$bin" s3 put "$top/corpus" "$src" >/dev/null || bad "upload the corpus"
check ingest-1 0 "$bin" ingest
expect ingest-1-fitted "model fitted$" "$work/out"
chunks=$(sed -n 's/^new: [0-9]* documents, \([0-9]*\) chunks.*/\1/p' "$work/out")

# a broken directory is refused before anything is stored
mkdir "$work/broken" && cp -r "$work/tiny/." "$work/broken/" && rm "$work/broken/vocab.txt"
check import-broken 1 "$bin" model import "$work/broken"
expect import-broken-names "vocab.txt" "$work/err"
check import-bad-name 2 "$bin" model import "$work/tiny" --name "a/b"

check import 0 "$bin" model import "$work/tiny" --name tiny-bert
expect import-model "^model tiny-bert \(bert\) version [0-9a-f]{16}, 32 dims, at s3://" "$work/out"
expect import-reembed "^re-embedded $chunks chunks into version 2 \([0-9]+ truncated at [0-9]+ tokens\)$" "$work/out"
ver=$(sed -n 's/^model tiny-bert (bert) version \([0-9a-f]*\),.*/\1/p' "$work/out")
check model-objects 0 "$bin" s3 ls -r "${RAGMAP_MODEL_PREFIX}tiny-bert/$ver/"
for f in card.json config.json model.safetensors vocab.txt 1_Pooling/config.json; do
	expect "stored-$f" "tiny-bert/$ver/$f\$" "$work/out"
done

check status 0 "$bin" status
expect status-model "^model: +tiny-bert \(bert\), version $ver, 32 dims, reads at most [0-9]+ tokens per chunk$" "$work/out"
expect status-imported "^ +imported 20[0-9-]+ [0-9:]+ UTC: imported from $work/tiny$" "$work/out"
expect_not status-no-refit "refit due" "$work/out"
check verify 0 "$bin" verify
expect verify-model "^model: +tiny-bert $ver, " "$work/out"

# the index's model and the directory embed alike
check embed-index 0 "$bin" embed --json "retrieval augmented generation"
cp "$work/out" "$work/e1"
check embed-dir 0 "$bin" embed --model-dir "$work/tiny" --json "retrieval augmented generation"
equal embed-same "$(jq -c .vectors "$work/e1")" "$(jq -c .vectors "$work/out")"
equal embed-dims "$(jq .dims "$work/e1")" 32

for mode in memory pointer cached object; do
	check "query-$mode" 0 "$bin" query --mode "$mode" --retriever dense -k 3 --json "fine-tuning"
	equal "query-$mode-hits" "$(jq '.results | length' "$work/out")" 3
done

# nothing changed: no commit, and no refit of an imported model
check ingest-2 0 "$bin" ingest
expect ingest-2-nothing "^nothing to commit" "$work/out"
expect_not ingest-2-no-refit "refitted" "$work/out"

# a new document is embedded with the imported model
echo "A note on sentence encoders and mean pooling." >"$work/new.txt"
"$bin" s3 put "$work/new.txt" "${src}notes/new.txt" >/dev/null
check ingest-3 0 "$bin" ingest
expect ingest-3-new "^new: 1 documents" "$work/out"
expect_not ingest-3-not-fitted "model fitted" "$work/out"
expect_not ingest-3-none-truncated "^truncated:" "$work/out"
check verify-3 0 "$bin" verify
expect verify-3-model "^model: +tiny-bert $ver, " "$work/out"

# back to the built-in model
check fit 0 "$bin" model fit
expect fit-lsa "^model ragmap-lsa version [0-9a-f]+; re-embedded [0-9]+ chunks into version 4$" "$work/out"

# an empty index: import first, then ingest embeds with it
export RAGMAP_INDEX_NAME=${idx}-empty RAGMAP_LOCAL_DIR=$work/local2
check import-empty 0 "$bin" model import "$work/tiny" --name tiny-bert
expect import-empty-v1 "^re-embedded 0 chunks into version 1$" "$work/out"
check ingest-empty 0 "$bin" ingest
expect_not ingest-empty-not-fitted "model fitted" "$work/out"
# the corpus's chunks are longer than the tiny shape's 64 positions
expect ingest-empty-truncated "^truncated: [1-9][0-9]* chunks were longer than the model reads" "$work/out"
expect ingest-empty-v2 "^committed version 2: " "$work/out"
check verify-empty 0 "$bin" verify
expect verify-empty-model "^model: +tiny-bert $ver, " "$work/out"
finish
