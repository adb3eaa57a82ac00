#!/usr/bin/env bash
# Who owns which source keys (src/core/rag_scope.h):
#  - several source prefixes in one index: ingesting one prefix never
#    tombstones another's documents; a list of prefixes is one listing;
#  - shards: `ingest --shard I/N` fetches and tombstones only its slice,
#    the slices' commits interleave, and together they make the same index
#    as one unsharded pass (verify --source);
#  - a bad --shard is a usage error naming the option.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"
export RAGMAP_INGEST_REFIT_GROWTH=0

doc() { # doc KEY WORD: a small document about WORD
	printf '# %s\n\nA note about %s and object storage, key %s.\n' "$2" "$2" "$1" >"$work/doc.md"
	"$bin" s3 put "$work/doc.md" "$1" >/dev/null || bad "put $1"
}
live_count() { sed -n 's/^live: *\([0-9]*\) documents.*/\1/p' "$work/out"; }

# --- two prefixes, ingested one at a time
for i in 1 2 3; do doc "${src}a/d$i.md" "alpha$i"; done
for i in 1 2; do doc "${src}b/d$i.md" "beta$i"; done
RAGMAP_SOURCE_PREFIX="${src}a/" check ingest-a 0 "$bin" ingest
expect ingest-a-counts "^listed 3 objects: 0 unchanged \(no GET\), 3 indexed$" "$work/out"
RAGMAP_SOURCE_PREFIX="${src}b/" check ingest-b 0 "$bin" ingest
expect ingest-b-counts "^listed 2 objects: 0 unchanged \(no GET\), 2 indexed$" "$work/out"
expect_not ingest-b-tombstones-nothing "[1-9][0-9]* documents tombstoned" "$work/out"
check verify-both 0 "$bin" verify --keys
equal both-prefixes-live "$(live_count)" 5
expect a-still-live "^live [0-9]+ ${src}a/d1.md$" "$work/out"

# a list of both (nested and repeated entries collapse): one listing, no work
RAGMAP_SOURCE_PREFIX="${src}a/, ${src}b/,${src}a/sub/,${src}b/" check ingest-list 0 "$bin" ingest
expect ingest-list-counts "^listed 5 objects: 5 unchanged \(no GET\)$" "$work/out"
expect ingest-list-nothing "^nothing to commit" "$work/out"
RAGMAP_SOURCE_PREFIX="${src}a/,${src}b/" check verify-source-list 0 "$bin" verify --source
# a deletion under b/ is seen by the list, and only that document goes
"$bin" s3 rm "${src}b/d2.md" >/dev/null
RAGMAP_SOURCE_PREFIX="${src}a/,${src}b/" check ingest-list-delete 0 "$bin" ingest
expect ingest-list-deleted "^listed 4 objects: 4 unchanged \(no GET\), 1 deleted$" "$work/out"
check verify-after-delete 0 "$bin" verify --keys
equal after-delete-live "$(live_count)" 4
expect_not b2-gone "${src}b/d2.md$" "$work/out"
RAGMAP_SOURCE_PREFIX="${src}a/,,${src}b/" check empty-entry-refused 2 "$bin" ingest
expect empty-entry-message "source.prefix: .* has an empty entry" "$work/err"

# --- shards: two workers, one slice each
export RAGMAP_SOURCE_PREFIX="${src}s/" RAGMAP_INDEX_NAME=$idx-sh
n=40
for i in $(seq -w 1 $n); do doc "${src}s/doc-$i.md" "shard$i"; done
check shard0 0 "$bin" ingest --shard 0/2
n0=$(sed -n 's/^listed \([0-9]*\) objects.*/\1/p' "$work/out")
o0=$(sed -n 's/.*(and \([0-9]*\) in other shards, not touched)$/\1/p' "$work/out")
equal shard0-sees-all "$((n0 + o0))" $n
[ "$n0" -gt 5 ] && [ "$n0" -lt 35 ] && ok "shard0-owns-a-slice ($n0 of $n)" || bad "shard 0 owns $n0 of $n"
equal shard0-fetches-its-slice "$(fetch_gets)" "$n0"
check shard1 0 "$bin" ingest --shard 1/2
expect shard1-counts "^listed $o0 objects: 0 unchanged \(no GET\), $o0 indexed \(and $n0 in other shards, not touched\)$" "$work/out"
check shards-verify-source 0 "$bin" verify --source --keys
equal shards-live "$(live_count)" $n

# deletions: each shard tombstones only its own
for i in 01 02 03 04 05 06; do "$bin" s3 rm "${src}s/doc-$i.md" >/dev/null; done
check shard0-delete 0 "$bin" ingest --shard 0/2
d0=$(sed -n 's/^listed .* \([0-9]*\) deleted.*/\1/p' "$work/out")
check verify-half 0 "$bin" verify --keys
equal shard0-tombstoned-its-own "$(live_count)" $((n - ${d0:-0}))
[ "${d0:-0}" -lt 6 ] && ok "shard0-left-the-others (${d0:-0} of 6)" || bad "shard 0 deleted ${d0:-0} of 6"
check shard1-delete 0 "$bin" ingest --shard 1/2
check shards-verify-after-delete 0 "$bin" verify --source --keys
equal shards-live-after-delete "$(live_count)" $((n - 6))

# the same source in one unsharded pass: the same live documents
RAGMAP_INDEX_NAME=$idx-one check unsharded 0 "$bin" ingest
RAGMAP_INDEX_NAME=$idx-one check unsharded-keys 0 "$bin" verify --keys
grep '^live [0-9]* ' "$work/out" | sort >"$work/one.keys"
check sharded-keys 0 "$bin" verify --keys
grep '^live [0-9]* ' "$work/out" | sort >"$work/sharded.keys"
if cmp -s "$work/one.keys" "$work/sharded.keys"; then ok "sharded-equals-unsharded"; else
	bad "sharded and unsharded indexes differ"; diff "$work/one.keys" "$work/sharded.keys" | head
fi

for spec in 2/2 -1/2 1 0/0 x/y; do
	check "bad-shard-$spec" 2 "$bin" ingest --shard "$spec"
	expect "bad-shard-$spec-message" "--shard: \"$spec\" is not I/N" "$work/err"
done
check status-takes-no-shard 2 "$bin" status --shard 0/2
finish
