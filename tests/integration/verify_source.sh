#!/usr/bin/env bash
# `ragmap verify --source`: the index against the source listing. A small
# corpus (with one object ingest skips and one it fails, which are counted,
# not differences) verifies; then each difference is made for real in the
# store and must fail verify (exit 1) with a line naming it: an object added
# but not ingested, an object deleted, an object overwritten (a new ETag).
# An ingest repairs them all. Last, a catalog snapshot that disagrees with
# the segments (a document dropped, a key live twice) fails plain verify.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"

c=$work/corpus
mkdir -p "$c/notes"
for i in 1 2 3 4; do
	printf '# Note %s\n\nObject storage note number %s: buckets, prefixes and ETags.\n\n## More\n\nThe source listing is the truth the verifier compares the index with.\n' \
		"$i" "$i" >"$c/notes/note-$i.md"
done
: >"$c/empty.txt"                                     # skipped: no text
cp "$top/tests/data/parse/corrupt.pdf" "$c/corrupt.pdf"  # failed: a corrupt PDF
check upload 0 "$bin" s3 put "$c" "$src"
check ingest 0 "$bin" ingest
expect ingest-counts "^listed 6 objects: 0 unchanged \(no GET\), 4 indexed, 1 skipped, 1 failed$" "$work/out"

# verify_ok NAME: verify --source passes, every object accounted for
verify_ok() {
	check "$1" 0 "$bin" verify --source
	expect "$1-ok" "^ok$" "$work/out"
	expect "$1-source" "^source: +6 objects under s3://rag/$src: 4 indexed at their current ETag, 2 skipped, rejected or failed there$" "$work/out"
}
# verify_fails NAME PATTERN: verify --source exits 1 and an error line matches
verify_fails() {
	check "$1" 1 "$bin" verify --source
	expect "$1-named" "^ragmap: verify: $2" "$work/err"
	expect "$1-failed" "^FAILED: [1-9][0-9]* problems?$" "$work/out"
}
etag() { "$bin" s3 stat "$1" | sed -n 's/^etag: //p'; }

verify_ok verify-clean
check verify-plain 0 "$bin" verify
expect_not verify-plain-no-source-line "^source:" "$work/out"

# 1. a source object added but not ingested
added="${src}notes/added.md"
printf '# Added\n\nA note that no ingest has seen yet.\n' >"$work/added.md"
check add 0 "$bin" s3 put "$work/added.md" "$added"
tag=$(etag "$added")
[ -n "$tag" ] && ok "added-etag ($tag)" || bad "no ETag for \"$added\""
verify_fails verify-added "source object \"$added\" \(ETag $tag\) is not indexed \(the catalog has no record of it\)$"
check verify-added-index-alone 0 "$bin" verify
check rm-added 0 "$bin" s3 rm "$added"
verify_ok verify-added-removed

# 2. a source object deleted
gone="${src}notes/note-2.md"
check rm-gone 0 "$bin" s3 rm "$gone"
verify_fails verify-deleted "live document \"$gone\" \(doc [0-9]+, ETag [0-9a-f-]+\) is not in the source$"
check put-gone-back 0 "$bin" s3 put "$c/notes/note-2.md" "$gone"
verify_ok verify-deleted-restored

# 3. a source object overwritten: a new ETag
changed="${src}notes/note-3.md"
old=$(etag "$changed")
printf '\nAn appendix written after the ingest.\n' >>"$c/notes/note-3.md"
check overwrite 0 "$bin" s3 put "$c/notes/note-3.md" "$changed"
new=$(etag "$changed")
[ -n "$old" ] && [ -n "$new" ] && [ "$old" != "$new" ] && ok "overwrite-new-etag" ||
	bad "overwrite: ETag \"$old\" -> \"$new\""
verify_fails verify-overwritten "source object \"$changed\" is indexed at ETag $old, the source has ETag $new$"

# all three at once: each named, and ingest repairs them
check add-again 0 "$bin" s3 put "$work/added.md" "$added"
check rm-gone-again 0 "$bin" s3 rm "$gone"
check verify-three 1 "$bin" verify --source
expect verify-three-count "^FAILED: 3 problems$" "$work/out"
expect verify-three-added "^ragmap: verify: source object \"$added\" .* is not indexed" "$work/err"
expect verify-three-deleted "^ragmap: verify: live document \"$gone\" .* is not in the source$" "$work/err"
expect verify-three-overwritten "^ragmap: verify: source object \"$changed\" is indexed at ETag $old" "$work/err"
check ingest-repairs 0 "$bin" ingest
check verify-repaired 0 "$bin" verify --source
expect verify-repaired-ok "^ok$" "$work/out"
expect verify-repaired-source "^source: +6 objects under s3://rag/$src: 4 indexed at their current ETag, 2 skipped, rejected or failed there$" "$work/out"

# 4. the catalog snapshot against the segments (checked with or without --source)
manifest_keys >"$work/named" || bad "read LATEST and its manifest"
snap=$(grep '/catalog/.*\.sqlite$' "$work/named" | head -1)
[ -n "$snap" ] && ok "snapshot-key" || bad "no catalog snapshot named by the manifest"
check get-snapshot 0 "$bin" s3 get "$snap" "$work/snap.sqlite"
cp "$work/snap.sqlite" "$work/orig.sqlite"
victim="${src}notes/note-1.md"
sqlite3 "$work/snap.sqlite" "UPDATE documents SET live = 0 WHERE key = '$victim' AND live = 1" &&
	ok "drop-a-document" || bad "sqlite3 update of the snapshot copy"
check put-dropped 0 "$bin" s3 put "$work/snap.sqlite" "$snap"
check verify-dropped 1 "$bin" verify
expect verify-dropped-chunks "^ragmap: verify: chunk [0-9]+ \(\"$victim\" #0\) is live in the segments but not in the catalog snapshot$" "$work/err"
expect verify-dropped-stats "^ragmap: verify: catalog snapshot \"$snap\" has 3 live documents" "$work/err"
cp "$work/orig.sqlite" "$work/snap.sqlite"
sqlite3 "$work/snap.sqlite" "INSERT INTO documents(key, etag, type, title, bytes, text_bytes,
	invalid_bytes, nchunks, segment_id, live) SELECT key, 'f00', type, title, bytes, text_bytes,
	invalid_bytes, 0, segment_id, 1 FROM documents WHERE key = '$victim' AND live = 1" &&
	ok "duplicate-a-document" || bad "sqlite3 insert into the snapshot copy"
check put-duplicate 0 "$bin" s3 put "$work/snap.sqlite" "$snap"
check verify-duplicate 1 "$bin" verify
expect verify-duplicate-named "^ragmap: verify: \"$victim\" has two live documents in the catalog snapshot" "$work/err"
check put-original 0 "$bin" s3 put "$work/orig.sqlite" "$snap"
verify_ok verify-snapshot-restored
finish
