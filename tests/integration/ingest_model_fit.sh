#!/usr/bin/env bash
# `ragmap model fit`: a model fitted on every live chunk, its weights and
# card under the model prefix, and a new index version re-embedded with it.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"

(cd "$top/corpus" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$work/files"
total=$(wc -l <"$work/files")
half=$((total / 2))
# the first model sees half of the corpus; the rest arrives later
head -n "$half" "$work/files" | while IFS= read -r f; do
	"$bin" s3 put "$top/corpus/$f" "$src$f" >/dev/null || echo "put $f failed"
done
check ingest-1 0 "$bin" ingest
expect ingest-1-fitted "^committed version 1: .*, model fitted$" "$work/out"
tail -n +"$((half + 1))" "$work/files" | while IFS= read -r f; do
	"$bin" s3 put "$top/corpus/$f" "$src$f" >/dev/null || echo "put $f failed"
done
check ingest-2 0 "$bin" ingest
expect ingest-2-committed "^committed version 2: " "$work/out"
expect_not ingest-2-same-model "model fitted" "$work/out"
check verify-2 0 "$bin" verify --digest --keys
cp "$work/out" "$work/verify-2"
m1=$(sed -n 's/^model: *[^ ]* \([0-9a-f]*\),.*/\1/p' "$work/verify-2")
[ -n "$m1" ] && ok "model-1 ($m1)" || bad "no model version in verify output"

check model-fit 0 "$bin" model fit
expect model-fit-version "^model ragmap-lsa version [0-9a-f]+; re-embedded [0-9]+ chunks into version 3$" "$work/out"
m2=$(sed -n 's/^model ragmap-lsa version \([0-9a-f]*\);.*/\1/p' "$work/out")
[ -n "$m2" ] && [ "$m2" != "$m1" ] && ok "new-model-version ($m2)" || bad "model version \"$m2\" (was $m1)"
check model-objects 0 "$bin" s3 ls -r "${RAGMAP_MODEL_PREFIX}ragmap-lsa/$m2/"
expect model-weights "ragmap-lsa/$m2/weights.bin$" "$work/out"
expect model-card "ragmap-lsa/$m2/card.json$" "$work/out"
check model-card-json 0 "$bin" s3 get "${RAGMAP_MODEL_PREFIX}ragmap-lsa/$m2/card.json" -
expect model-card-version "\"version\": *\"$m2\"" "$work/out"

check verify-3 0 "$bin" verify --digest --keys
cp "$work/out" "$work/verify-3"
expect verify-3-model "^model: +ragmap-lsa $m2, " "$work/verify-3"
expect verify-3-version "^index .* version 3 " "$work/verify-3"
expect verify-3-live "^live: +$total documents" "$work/verify-3"
equal same-documents "$(grep '^live ' "$work/verify-3")" "$(grep '^live ' "$work/verify-2")"
[ "$(sed -n 's/^digest //p' "$work/verify-2")" != "$(sed -n 's/^digest //p' "$work/verify-3")" ] &&
	ok "vectors-changed" || bad "digest unchanged: nothing was re-embedded"
manifest_keys >/dev/null || bad "read LATEST and its manifest"
expect manifest-model "\"version\": *\"$m2\"" "$work/manifest.json"

check status 0 "$bin" status
expect status-version "^version: +3 \(LATEST\)" "$work/out"
expect status-model "^model: +ragmap-lsa \(lsa\), version $m2, " "$work/out"
expect status-documents "^documents: $total live" "$work/out"

# the new model stays: a later pass neither refits nor re-embeds
check ingest-4 0 "$bin" ingest
expect ingest-4-nothing "^nothing to commit" "$work/out"
check verify-4 0 "$bin" verify
expect verify-4-model "^model: +ragmap-lsa $m2, " "$work/out"
finish
