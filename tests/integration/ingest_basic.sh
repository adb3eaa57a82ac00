#!/usr/bin/env bash
# Ingest of the sample corpus: a committed version that verifies, whose every
# object is listed by `ragmap s3 ls`, a status that tells the truth, and a
# re-run that does no work.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"

ndocs=$(find "$top/corpus" -type f | wc -l)
check upload 0 "$bin" s3 put "$top/corpus" "$src"

check ingest 0 "$bin" ingest
expect ingest-committed "^committed version 1: " "$work/out"
expect ingest-all-indexed "^listed $ndocs objects: 0 unchanged \(no GET\), $ndocs indexed$" "$work/out"
equal ingest-one-get-per-document "$(fetch_gets)" "$ndocs"

check verify 0 "$bin" verify --digest --keys
expect verify-ok "^ok$" "$work/out"
expect verify-live "^live: +$ndocs documents" "$work/out"
equal verify-every-document-live "$(grep -c '^live [0-9]' "$work/out")" "$ndocs"
digest1=$(sed -n 's/^digest //p' "$work/out")

# status: the catalog's counts and what the store holds
check status 0 "$bin" status
expect status-version "^version: +1 \(LATEST\)" "$work/out"
expect status-objects "^objects: +0 pending, $ndocs indexed, 0 skipped, 0 rejected, 0 failed, 0 deleted" "$work/out"
expect status-documents "^documents: $ndocs live, 0 tombstoned" "$work/out"
chunks=$(sed -n 's/^chunks: *//p' "$work/out")
"$bin" verify >"$work/v.out" 2>&1
expect status-chunks-match-index "^live: +$ndocs documents, $chunks chunks$" "$work/v.out"
expect status-source-bytes "source +s3://rag/$src +$ndocs objects" "$work/out"

# every object the manifest names is in the bucket listing
manifest_keys >"$work/named" || bad "read LATEST and its manifest"
keys "$root" >"$work/ls-index" && keys "$RAGMAP_MODEL_PREFIX" >"$work/ls-model" || bad "s3 ls"
sort "$work/ls-index" "$work/ls-model" >"$work/listed"
# the manifest's figures for people: what is indexed and what the run did
srcbytes=$(find "$top/corpus" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
equal manifest-source-bytes "$(jq .stats.source_bytes "$work/manifest.json")" "$srcbytes"
equal manifest-run-read "$(jq -c '.stats.run | [.objects_read, .bytes_read]' "$work/manifest.json")" \
	"[$ndocs,$srcbytes]"
equal manifest-run-segments "$(jq '.stats.run.segments_written' "$work/manifest.json")" \
	"$(jq '.segments | length' "$work/manifest.json")"
named=$(sort -u "$work/named" | wc -l)
[ "$named" -ge 8 ] && ok "manifest-names-objects ($named)" || bad "manifest names only $named objects"
missing=$(sort -u "$work/named" | comm -23 - "$work/listed")
equal every-named-object-listed "$missing" ""

# a second run: nothing listed changed, so no GET and no new version
check rerun 0 "$bin" ingest
expect rerun-nothing "^nothing to commit" "$work/out"
expect rerun-unchanged "^listed $ndocs objects: $ndocs unchanged \(no GET\)$" "$work/out"
equal rerun-zero-fetch-gets "$(fetch_gets)" 0
expect_not rerun-no-writes "^  ingest\..*[(, ][0-9]+ (put|part|multipart|delete)" "$work/out"
check rerun-verify 0 "$bin" verify --digest
equal rerun-same-digest "$(sed -n 's/^digest //p' "$work/out")" "$digest1"
check rerun-status 0 "$bin" status
expect rerun-still-version-1 "^version: +1 \(LATEST\)" "$work/out"

# verify notices what it must: a missing segment object, a truncated one
seg=$(grep '/chunks.idx$' "$work/named" | head -1)
"$bin" s3 get "$seg" "$work/chunks.idx" >/dev/null 2>&1
check rm-segment-object 0 "$bin" s3 rm "$seg"
check verify-missing 1 "$bin" verify
expect verify-missing-msg "object \"$seg\" named by manifest 1 is missing" "$work/err"
head -c 100 "$work/chunks.idx" >"$work/short.idx"
check put-truncated 0 "$bin" s3 put "$work/short.idx" "$seg"
check verify-truncated 1 "$bin" verify
expect verify-truncated-msg "\"$seg\" has 100 bytes, the manifest says" "$work/err"
check restore 0 "$bin" s3 put "$work/chunks.idx" "$seg"
check verify-restored 0 "$bin" verify
finish
