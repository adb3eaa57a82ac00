#!/usr/bin/env bash
# Incremental ingestion: change one object, delete one, add one. A new
# version; the changed and deleted documents' old chunks are tombstoned
# (out of the live set), unchanged objects cost no GET.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"

ndocs=$(find "$top/corpus" -type f | wc -l)
check upload 0 "$bin" s3 put "$top/corpus" "$src"
check ingest-1 0 "$bin" ingest
expect ingest-1-committed "^committed version 1: " "$work/out"
check verify-1 0 "$bin" verify --digest --keys
cp "$work/out" "$work/verify-1"

# pick a Markdown document to change and another document to delete
changed=$(sed -n 's/^live [0-9]* //p' "$work/verify-1" | grep '\.md$' | head -1)
deleted=$(sed -n 's/^live [0-9]* //p' "$work/verify-1" | grep -v "^$changed$" | tail -1)
added="${src}new/added-document.md"
[ -n "$changed" ] && [ -n "$deleted" ] || bad "pick documents"
"$bin" s3 get "$changed" "$work/changed.md" >/dev/null 2>&1
printf '\n\n## Zanzibarquux appendix\n\nThe zanzibarquux marker only exists in the new version of this object.\n' \
	>>"$work/changed.md"
printf '# Added later\n\nA document added after the first version: object storage keeps the\nsource of truth and the xylophonequark index picks it up incrementally.\n' \
	>"$work/added.md"
check change 0 "$bin" s3 put "$work/changed.md" "$changed"
"$bin" s3 get "$deleted" "$work/deleted.bin" >/dev/null 2>&1
check delete 0 "$bin" s3 rm "$deleted"
check add 0 "$bin" s3 put "$work/added.md" "$added"

check ingest-2 0 "$bin" ingest
expect ingest-2-committed "^committed version 2: " "$work/out"
expect ingest-2-counts "^listed $ndocs objects: $((ndocs - 2)) unchanged \(no GET\), 2 indexed, 1 deleted$" "$work/out"
expect ingest-2-tombstoned "; 2 documents tombstoned$" "$work/out"
equal ingest-2-gets-only-for-new-and-changed "$(fetch_gets)" 2

check verify-2 0 "$bin" verify --digest --keys
cp "$work/out" "$work/verify-2"
expect verify-2-live "^live: +$ndocs documents" "$work/verify-2"
expect verify-2-tombstones "^segments: .* [1-9][0-9]* tombstoned$" "$work/verify-2"
expect verify-2-added-live "^live [0-9]+ $added$" "$work/verify-2"
expect_not verify-2-deleted-not-live "^live [0-9]+ $deleted$" "$work/verify-2"
equal verify-2-changed-live-once "$(grep -c "^live [0-9]* $changed$" "$work/verify-2")" 1
n1=$(sed -n "s|^live \([0-9]*\) $changed\$|\1|p" "$work/verify-1")
n2=$(sed -n "s|^live \([0-9]*\) $changed\$|\1|p" "$work/verify-2")
[ "${n2:-0}" -ge "${n1:-0}" ] && ok "changed-document-chunks ($n1 -> $n2)" || bad "changed document lost chunks: $n1 -> $n2"
[ "$(sed -n 's/^digest //p' "$work/verify-1")" != "$(sed -n 's/^digest //p' "$work/verify-2")" ] &&
	ok "digest-changed" || bad "digest did not change"

# the catalog agrees: the new text is live, the old version and the deleted
# document are tombstoned, their objects rows say so
equal catalog-changed-live "$(sql "SELECT count(*) FROM documents WHERE key = '$changed' AND live = 1")" 1
equal catalog-changed-old-tombstoned "$(sql "SELECT count(*) FROM documents WHERE key = '$changed' AND live = 0")" 1
equal catalog-new-text-live "$(sql "SELECT count(*) FROM chunks c JOIN documents d USING(doc_id) WHERE d.live = 1 AND c.text LIKE '%zanzibarquux%'")" 1
equal catalog-deleted "$(sql "SELECT status || ' ' || doc_id FROM objects WHERE key = '$deleted'")" "deleted 0"
equal catalog-deleted-not-live "$(sql "SELECT count(*) FROM documents WHERE key = '$deleted' AND live = 1")" 0
etag=$("$bin" s3 stat "$changed" | sed -n 's/^etag: *//p')
equal catalog-changed-etag "$(sql "SELECT etag FROM objects WHERE key = '$changed'")" "$etag"

check status 0 "$bin" status
expect status-version "^version: +2 \(LATEST\)" "$work/out"
expect status-objects "^objects: +0 pending, $ndocs indexed, 0 skipped, 0 rejected, 0 failed, 1 deleted" "$work/out"
expect status-documents "^documents: $ndocs live, 2 tombstoned" "$work/out"

# and once more: nothing changed, nothing fetched
check ingest-3 0 "$bin" ingest
expect ingest-3-nothing "^nothing to commit" "$work/out"
equal ingest-3-zero-gets "$(fetch_gets)" 0

# a deleted object that comes back is indexed again
check readd 0 "$bin" s3 put "$work/deleted.bin" "$deleted"
check ingest-4 0 "$bin" ingest
expect ingest-4-committed "^committed version 3: " "$work/out"
equal ingest-4-one-get "$(fetch_gets)" 1
check verify-4 0 "$bin" verify --keys
expect verify-4-back "^live [0-9]+ $deleted$" "$work/out"
finish
