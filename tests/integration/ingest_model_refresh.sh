#!/usr/bin/env bash
# The built-in model keeps up with the index: documents on a new subject
# make the next ingest refit (ingest.refit_unknown), so dense search finds
# them without a manual fit; a new model.dims refits too, and so does a
# corpus grown past ingest.refit_growth; status says when and on what the
# model was fitted.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"
# the unknown share alone, at its default (common.sh turns refits off)
export RAGMAP_INGEST_REFIT_GROWTH=0 RAGMAP_INGEST_REFIT_UNKNOWN=0.2

"$bin" s3 put "$top/corpus" "$src" >/dev/null || bad "upload the corpus"
check ingest-1 0 "$bin" ingest
expect ingest-1-fitted "^committed version 1: .*, model fitted$" "$work/out"
check status-1 0 "$bin" status
expect status-kind "^model: +ragmap-lsa \(lsa\), version [0-9a-f]{16}, [0-9]+ dims$" "$work/out"
expect status-fitted "^ +fitted 20[0-9-]+ [0-9:]+ UTC: [0-9]+ chunks of [0-9]+ documents under s3://" "$work/out"
expect_not status-1-due "refit due" "$work/out"

# a subject the corpus never mentions: every word is new to the model
words="beekeeping apiary hive queen drones workers nectar pollen honeycomb swarm smoker
propolis brood frames varroa mites colony foragers wax beeswax orchard clover lavender"
for i in 1 2 3 4 5 6; do
	{
		echo "Beekeeping notes $i"
		echo
		for r in 1 2 3 4; do echo "$words" | tr '\n' ' ' | tr ' ' '\n' | shuf --random-source=<(yes $i$r) | tr '\n' ' '; echo; done
	} >"$work/bees$i.txt"
	"$bin" s3 put "$work/bees$i.txt" "${src}bees/notes$i.txt" >/dev/null || echo "put bees$i failed"
done
check ingest-2 0 "$bin" ingest
expect ingest-2-new "^new: 6 documents" "$work/out"
expect ingest-2-refit "^refitted the model \([0-9]+% of the [0-9]+ tokens embedded since the fit are unknown to the model \(ingest.refit_unknown 0.2\)\): ragmap-lsa version [0-9a-f]+, [0-9]+ chunks re-embedded into version 3$" "$work/out"
check query-bees 0 "$bin" query --retriever dense -k 3 "queen bees swarm from the hive with honeycomb and brood"
hit=$(grep -o '[^ ]*bees/notes[0-9]\.txt' "$work/out" | head -1)
[ -n "$hit" ] && ok "dense-finds-new-subject ($hit)" || bad "dense search did not find the new documents"
check status-2 0 "$bin" status
expect status-2-refit "^ +fitted .*: [0-9]+ live chunks of index \"$idx\" \(refit\)$" "$work/out"

# the same documents again: nothing new, no refit
check ingest-3 0 "$bin" ingest
expect ingest-3-nothing "^nothing to commit" "$work/out"
expect_not ingest-3-no-refit "refitted" "$work/out"

# model.dims is honoured: a new value refits once
RAGMAP_MODEL_DIMS=16 check ingest-4 0 "$bin" ingest
expect ingest-4-refit "^refitted the model \(model.dims is 16, the model was fitted for 256\)" "$work/out"
RAGMAP_MODEL_DIMS=16 check status-4 0 "$bin" status
expect status-4-dims "^model: +ragmap-lsa \(lsa\), version [0-9a-f]{16}, 16 dims$" "$work/out"
RAGMAP_MODEL_DIMS=16 check ingest-5 0 "$bin" ingest
expect_not ingest-5-no-refit "refitted" "$work/out"

# the live chunks grow past ingest.refit_growth (words the model knows): a
# refit; ingested again with nothing new, none
"$bin" s3 put "$top/corpus" "${src}copy/" >/dev/null || bad "upload the corpus again"
export RAGMAP_MODEL_DIMS=16 RAGMAP_INGEST_REFIT_GROWTH=0.5 RAGMAP_INGEST_REFIT_UNKNOWN=0
check ingest-6 0 "$bin" ingest
expect ingest-6-refit "^refitted the model \([0-9]+ live chunks, the model was fitted on [0-9]+ \(ingest.refit_growth 0.5\)\)" "$work/out"
check ingest-7 0 "$bin" ingest
expect_not ingest-7-no-refit "refitted" "$work/out"
check verify 0 "$bin" verify
finish
