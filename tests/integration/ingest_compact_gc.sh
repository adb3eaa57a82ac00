#!/usr/bin/env bash
# Compaction and garbage collection. With index.max_segments = 2, passes
# that each add a segment make compaction merge them; deleting most
# documents makes compaction rewrite the segments and purge the tombstoned
# chunks from the catalog; `ragmap gc` with a zero grace period deletes
# every object no manifest names, and the index still verifies.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"
export RAGMAP_INDEX_MAX_SEGMENTS=2 RAGMAP_INDEX_GC_GRACE_S=3600

(cd "$top/corpus" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$work/files"
total=$(wc -l <"$work/files")
# five waves of documents, one pass each
split -n l/5 -d "$work/files" "$work/wave."
compacted=0
pass=0
for wave in "$work"/wave.*; do
	pass=$((pass + 1))
	while IFS= read -r f; do
		"$bin" s3 put "$top/corpus/$f" "$src$f" >/dev/null || bad "put $f"
	done <"$wave"
	check "ingest-$pass" 0 "$bin" ingest
	# compaction commits a version of its own: numbers run ahead of passes
	expect "ingest-$pass-committed" "^committed version [0-9]+: " "$work/out"
	n=$(sed -n 's/.* segments written, \([0-9]*\) compacted.*/\1/p' "$work/out")
	compacted=$((compacted + ${n:-0}))
	check "status-$pass" 0 "$bin" status
	segs=$(sed -n 's/^segments: *//p' "$work/out")
	[ "${segs:-99}" -le 2 ] && ok "at-most-2-segments-$pass ($segs)" || bad "pass $pass: $segs segments"
	check "verify-$pass" 0 "$bin" verify
done
[ "$compacted" -ge 3 ] && ok "segments-merged ($compacted compacted)" || bad "only $compacted segments compacted"
expect all-documents-live "^live: +$total documents" "$work/out"

# delete all but three documents: every segment is mostly tombstones, so
# compaction rewrites them in the same version and the catalog drops the
# tombstoned documents and chunks
head -n -3 "$work/files" >"$work/gone"
while IFS= read -r f; do "$bin" s3 rm "$src$f" >/dev/null || bad "rm $f"; done <"$work/gone"
check ingest-delete 0 "$bin" ingest
expect ingest-delete-counts "^listed 3 objects: 3 unchanged \(no GET\), $((total - 3)) deleted$" "$work/out"
expect ingest-delete-compacted "segments written, [1-9][0-9]* compacted" "$work/out"
check verify-after-delete 0 "$bin" verify --keys
expect verify-3-live "^live: +3 documents" "$work/out"
expect verify-no-tombstones-left "^segments: .*, 0 tombstoned$" "$work/out"
equal catalog-no-tombstoned-documents "$(sql "SELECT count(*) FROM documents WHERE live = 0")" 0
equal catalog-no-orphan-chunks "$(sql "SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents WHERE live = 1)")" 0
equal catalog-fts-purged "$(sql "SELECT count(*) FROM chunks_fts_docsize")" "$(sql "SELECT count(*) FROM chunks")"
equal catalog-objects-deleted "$(sql "SELECT count(*) FROM objects WHERE status = 'deleted'")" "$((total - 3))"
check status-after-delete 0 "$bin" status
expect status-after-delete-docs "^documents: 3 live, 0 tombstoned" "$work/out"

# garbage: every version left its superseded segments, manifests and
# catalog snapshots behind (grace 3600 s kept them)
manifest_keys >"$work/named" || bad "read LATEST"
echo "${root}LATEST" >>"$work/named"
sort -u "$work/named" -o "$work/named"
# chunk id block claims (commit.h, invariant 7) are counted apart: those at
# or below the newest version's high-water mark go
keys "$root" | grep -v "^${root}ids/" | sort >"$work/before"
claims_before=$(keys "${root}ids/" | wc -l)
garbage=$(comm -13 "$work/named" "$work/before" | wc -l)
[ "$garbage" -gt 10 ] && ok "garbage-accumulated ($garbage)" || bad "only $garbage garbage objects"
check gc-with-grace 0 "$bin" gc
expect gc-with-grace-keeps "^deleted 0 unreferenced objects" "$work/out"
sleep 1.2 # whole seconds: make every object older than a zero grace period
RAGMAP_INDEX_GC_GRACE_S=0 check gc 0 "$bin" gc
claims_after=$(keys "${root}ids/" | wc -l)
expect gc-deleted "^deleted $((garbage + claims_before - claims_after)) unreferenced objects" "$work/out"
keys "$root" | grep -v "^${root}ids/" | sort >"$work/after"
model_keys=$(grep -c "^$RAGMAP_MODEL_PREFIX" "$work/named")
equal only-named-objects-left "$(comm -3 "$work/named" "$work/after" | grep -vc "^	*$RAGMAP_MODEL_PREFIX")" 0
equal named-model-kept "$("$bin" s3 ls -r "$RAGMAP_MODEL_PREFIX" | grep -c weights.bin)" "$model_keys"
check verify-after-gc 0 "$bin" verify --keys
expect verify-after-gc-live "^live: +3 documents" "$work/out"
check ingest-after-gc 0 "$bin" ingest
expect ingest-after-gc-nothing "^nothing to commit" "$work/out"
finish
