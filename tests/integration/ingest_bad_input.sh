#!/usr/bin/env bash
# Bad input in one batch with good documents: each bad object is recorded
# with its status and reason, the rest of the batch is indexed.
#   empty object -> skipped; random binary named .txt -> skipped;
#   invalid UTF-8 -> indexed, bad bytes replaced and counted;
#   a 50 MB text file -> indexed under the default 64 MiB limit, rejected
#   without a GET under a 1 MiB limit; 100k nested <div>s -> indexed (the
#   part above libxml2's depth limit); a corrupt PDF -> failed;
#   keys with spaces and unicode -> indexed under their exact key.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"

ndocs=$(find "$top/corpus" -type f | wc -l)
check upload-corpus 0 "$bin" s3 put "$top/corpus" "$src"
check ingest-corpus 0 "$bin" ingest

b=$work/bad
mkdir -p "$b/dir with space"
: >"$b/empty.txt"
head -c 20000 /dev/urandom >"$b/random.txt"
printf 'Valid start \xff\xfe then \xc3\x28 broken bytes in the middle of text about\nobject storage buckets and the ingestion path \xe2\x82 end.\n' >"$b/invalid-utf8.txt"
"$top/bench/gen-corpus.sh" "$work/gen" 1 50 50000000 0 >/dev/null
mv "$work/gen/d000/doc-000000.md" "$b/big50.txt"
{
	printf '<html><head><title>Deep</title></head><body><h1>Deeply nested</h1>\n'
	printf '<p>The top paragraph about quokkadeep nesting survives.</p>\n'
	for _ in $(seq 1 1000); do printf '%0.s<div>' $(seq 1 100); done
	printf 'text far below the depth limit</body></html>\n'
} >"$b/deep.html"
cp "$top/tests/data/parse/corrupt.pdf" "$b/corrupt.pdf"
unikey="dir with space/naïve résumé 東京 #1.md"
printf '# Naïve résumé\n\nKeys with spaces and unicode: object storage in Tōkyō buckets.\n' >"$b/$unikey"
printf '# Good\n\nA perfectly good document in the same batch as the bad ones.\n' >"$b/good.md"
[ "$(stat -c %s "$b/big50.txt")" -ge 50000000 ] && ok "big-file-50MB" || bad "big file too small"
[ "$(stat -c %s "$b/deep.html")" -lt 1048576 ] && ok "deep-html-under-1MiB" || bad "deep.html too large"
check upload-bad 0 "$bin" s3 put "$b" "${src}bad/"

check ingest-bad 0 "$bin" ingest
expect ingest-bad-counts "^listed $((ndocs + 8)) objects: $ndocs unchanged \(no GET\), 5 indexed, 2 skipped, 1 failed$" "$work/out"
expect ingest-bad-committed "^committed version 2: " "$work/out"
check verify 0 "$bin" verify --keys
expect verify-live "^live: +$((ndocs + 5)) documents" "$work/out"
for k in invalid-utf8.txt big50.txt deep.html good.md "$unikey"; do
	expect "live: $k" "^live [0-9]+ ${src}bad/$k$" "$work/out"
done
bigchunks=$(sed -n "s|^live \([0-9]*\) ${src}bad/big50.txt$|\1|p" "$work/out")
[ "${bigchunks:-0}" -gt 10000 ] && ok "big-file-chunked ($bigchunks chunks)" || bad "big file: ${bigchunks:-0} chunks"

check status 0 "$bin" status
expect status-objects "^objects: +0 pending, $((ndocs + 5)) indexed, 2 skipped, 0 rejected, 1 failed, 0 deleted" "$work/out"
expect status-documents "^documents: $((ndocs + 5)) live, 0 tombstoned" "$work/out"

row() { sql "SELECT status || ' | ' || coalesce(error, '') FROM objects WHERE key = '${src}bad/$1'"; }
expect_row() { # expect_row NAME KEY PATTERN
	local r
	r=$(row "$2")
	if echo "$r" | grep -Eq -- "$3"; then ok "$1"; else bad "$1: objects row \"$r\", want /$3/"; fi
}
expect_row empty-skipped empty.txt "^skipped \| \"${src}bad/empty.txt\": empty document"
expect_row binary-skipped random.txt "^skipped \| \"${src}bad/random.txt\": unsupported type \(binary content\)"
expect_row corrupt-pdf-failed corrupt.pdf "^failed \| \"${src}bad/corrupt.pdf\": corrupt PDF"
expect_row invalid-utf8-indexed invalid-utf8.txt "^indexed \| $"
expect_row big-indexed big50.txt "^indexed \| $"
expect_row deep-indexed deep.html "^indexed \| $"
expect_row good-indexed good.md "^indexed \| $"
invalid=$(sql "SELECT invalid_bytes FROM documents WHERE key = '${src}bad/invalid-utf8.txt' AND live = 1")
[ "${invalid:-0}" -ge 3 ] && ok "invalid-bytes-counted ($invalid)" || bad "invalid bytes: ${invalid:-none}"
equal invalid-bytes-replaced "$(sql "SELECT count(*) FROM chunks c JOIN documents d USING(doc_id) WHERE d.key = '${src}bad/invalid-utf8.txt' AND instr(c.text, char(65533)) > 0 AND c.text LIKE '%broken bytes%'")" 1
equal deep-top-text "$(sql "SELECT count(*) FROM chunks c JOIN documents d USING(doc_id) WHERE d.key = '${src}bad/deep.html' AND c.text LIKE '%quokkadeep%'")" 1
equal unicode-key-exact "$(sql "SELECT count(*) FROM documents WHERE key = '${src}bad/dir with space/naïve résumé 東京 #1.md' AND live = 1")" 1

# a re-run leaves the failed object alone until its retry is due (backoff)
check rerun-deferred 0 "$bin" ingest
expect rerun-deferred-counts "^listed $((ndocs + 8)) objects: $((ndocs + 7)) unchanged \(no GET\), 1 failed waiting for their retry$" "$work/out"
equal rerun-deferred-no-get "$(fetch_gets)" 0
check status-failed 0 "$bin" status --failed
expect status-failed-total "^failed: +1 object \(version 2\)$" "$work/out"
expect status-failed-row "^  ${src}bad/corrupt.pdf +1 +in [0-9]+(m [0-9]+)?s +\"${src}bad/corrupt.pdf\": corrupt PDF" "$work/out"
# ... and retries only it once due (transient failures deserve it)
RAGMAP_INGEST_RETRY_BASE_S=0 check rerun 0 "$bin" ingest
expect rerun-only-failed "^listed $((ndocs + 8)) objects: $((ndocs + 7)) unchanged \(no GET\), 1 failed$" "$work/out"
equal rerun-one-get "$(fetch_gets)" 1
expect_row corrupt-pdf-attempts corrupt.pdf "^failed \| "
equal corrupt-pdf-attempts-counted "$(sql "SELECT attempts FROM objects WHERE key = '${src}bad/corrupt.pdf'")" 2

# the same source under a 1 MiB limit, into another index: the big file is
# rejected with the reason and never fetched
RAGMAP_INDEX_NAME=$idx-small RAGMAP_INGEST_MAX_OBJECT_SIZE=1MiB check ingest-small 0 "$bin" ingest
expect ingest-small-counts "^listed $((ndocs + 8)) objects: 0 unchanged \(no GET\), $((ndocs + 4)) indexed, 2 skipped, 1 rejected, 1 failed$" "$work/out"
equal ingest-small-no-get-for-rejected "$(fetch_gets)" "$((ndocs + 7))"
expect ingest-small-reason "rejected: \"${src}bad/big50.txt\": 4[78]\.[0-9] MiB is over the 1\.0 MiB limit \(ingest\.max_object_size\)" "$work/err"
cat=$work/local/$idx-small/catalog.sqlite
expect_row big-rejected big50.txt "^rejected \| \"${src}bad/big50.txt\": .* is over the 1\.0 MiB limit"
RAGMAP_INDEX_NAME=$idx-small check verify-small 0 "$bin" verify --keys
expect_not verify-small-big-not-live "big50.txt$" "$work/out"
RAGMAP_INDEX_NAME=$idx-small check status-small 0 "$bin" status
expect status-small-objects "^objects: +0 pending, $((ndocs + 4)) indexed, 2 skipped, 1 rejected, 1 failed, 0 deleted" "$work/out"

"$bin" s3 rm "${src}bad/big50.txt" >/dev/null 2>&1 # keep the fixture small
finish
