#!/usr/bin/env bash
# Source objects that move under the pipeline, through the test seam
# RAGMAP_TEST_PAUSE_AFTER_LIST_MS (a pause between LIST and the GETs):
#  - deleted between LIST and GET -> status "deleted", not "failed";
#  - changed after LIST (so the GET reads other bytes than the LIST saw) ->
#    indexed with the ETag the GET returned, and the next pass costs no GET.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"

ndocs=$(find "$top/corpus" -type f | wc -l)
check upload-corpus 0 "$bin" s3 put "$top/corpus" "$src"
check ingest-1 0 "$bin" ingest

printf '# Vanishing\n\nThis object is deleted between LIST and GET.\n' >"$work/gone.md"
printf '# Flux v1\n\nThe first version mentions alphaversionmarker only.\n' >"$work/flux1.md"
printf '# Flux v2\n\nThe second version mentions betaversionmarker instead, and is longer\nthan the first so that size and ETag both differ.\n' >"$work/flux2.md"
gone="${src}race/gone.md"
flux="${src}race/flux.md"
check put-gone 0 "$bin" s3 put "$work/gone.md" "$gone"
check put-flux-1 0 "$bin" s3 put "$work/flux1.md" "$flux"
etag1=$("$bin" s3 stat "$flux" | sed -n 's/^etag: *//p')

RAGMAP_TEST_PAUSE_AFTER_LIST_MS=4000 "$bin" ingest >"$work/race.out" 2>"$work/race.err" &
pid=$!
for _ in $(seq 1 100); do
	grep -q "pausing 4000 ms after LIST" "$work/race.err" && break
	sleep 0.05
done
expect pause-logged "info RAGMAP_TEST_PAUSE_AFTER_LIST_MS: pausing 4000 ms after LIST" "$work/race.err"
expect listed-both "$((ndocs + 2)) objects listed .*: 2 to process" "$work/race.err"
check delete-gone 0 "$bin" s3 rm "$gone"
check put-flux-2 0 "$bin" s3 put "$work/flux2.md" "$flux"
etag2=$("$bin" s3 stat "$flux" | sed -n 's/^etag: *//p')
[ "$etag1" != "$etag2" ] && ok "flux-etag-changed" || bad "flux ETag did not change"
wait "$pid"
equal race-ingest-exit "$?" 0
cp "$work/race.out" "$work/out"
expect race-counts "^listed $((ndocs + 2)) objects: $ndocs unchanged \(no GET\), 1 indexed, 1 deleted$" "$work/out"
expect race-committed "^committed version 2: " "$work/out"

equal gone-deleted "$(sql "SELECT status || ' ' || doc_id FROM objects WHERE key = '$gone'")" "deleted 0"
equal gone-no-document "$(sql "SELECT count(*) FROM documents WHERE key = '$gone'")" 0
equal flux-indexed-with-get-etag "$(sql "SELECT status || ' ' || etag FROM objects WHERE key = '$flux'")" "indexed $etag2"
equal flux-document-etag "$(sql "SELECT etag FROM documents WHERE key = '$flux' AND live = 1")" "$etag2"
equal flux-size "$(sql "SELECT size FROM objects WHERE key = '$flux'")" "$(stat -c %s "$work/flux2.md")"
equal flux-new-text "$(sql "SELECT count(*) FROM chunks c JOIN documents d USING(doc_id) WHERE d.key = '$flux' AND d.live = 1 AND c.text LIKE '%betaversionmarker%'")" 1
equal flux-no-old-text "$(sql "SELECT count(*) FROM chunks c JOIN documents d USING(doc_id) WHERE d.key = '$flux' AND c.text LIKE '%alphaversionmarker%'")" 0
check verify 0 "$bin" verify --keys
expect verify-flux-live "^live [0-9]+ $flux$" "$work/out"
expect_not verify-gone-not-live "^live [0-9]+ $gone$" "$work/out"
check status 0 "$bin" status
expect status-objects "^objects: +0 pending, $((ndocs + 1)) indexed, 0 skipped, 0 rejected, 0 failed, 1 deleted" "$work/out"

# the next pass: the LIST now shows the ETag the GET saw: nothing to fetch
check ingest-3 0 "$bin" ingest
expect ingest-3-nothing "^nothing to commit" "$work/out"
expect ingest-3-unchanged "^listed $((ndocs + 1)) objects: $((ndocs + 1)) unchanged \(no GET\)$" "$work/out"
equal ingest-3-zero-gets "$(fetch_gets)" 0
finish
