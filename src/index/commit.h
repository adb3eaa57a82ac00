/*
 * commit — the commit protocol of an index: how a writer publishes a
 * version, and how every reader (the query server, verify, the map, the
 * benchmarks) and every writer (ingest, refit, compaction, GC) finds the
 * newest one. The only code that reads or writes LATEST and manifests/.
 *
 * Invariants, with any number of concurrent writers:
 *  1. Version V is committed exactly when manifests/<V>.json exists. It is
 *     created with `If-None-Match: *`, so exactly one writer wins each
 *     version number; the others get RAG_ECONFLICT and rebase.
 *  2. A manifest is written after every object it names, and every object a
 *     writer creates has a key unique to that writer's attempt (the writer
 *     token, commit_token()). No object is ever overwritten, so a reader of
 *     a committed manifest finds exactly the bytes that writer uploaded.
 *  3. Versions are dense: a writer builds V on version V-1, the newest it
 *     read, and only publishes V after re-reading nothing newer. A reader
 *     that finds V therefore also finds V-1 (until GC, see 6).
 *  4. LATEST is a hint, written after the manifest. It may lag, and with
 *     racing writers even step back: commit_read_newest() takes its version
 *     and probes V+1, V+2... until one is absent, so the newest committed
 *     version wins. If the manifest it names is gone, the highest key under
 *     manifests/ (one LIST) is the starting point instead; GC keeps the
 *     manifest LATEST names.
 *  5. A lost race is detected, never guessed: a 412 after a retried PUT
 *     (whose first attempt may have landed) is settled by reading the
 *     manifest back and comparing its writer token. A 409
 *     (ConditionalRequestConflict) is retried by the S3 client.
 *  6. GC deletes only objects older than its grace period (index.gc_grace_s,
 *     Last-Modified read as late as its whole second allows) that no
 *     manifest it must keep names, and re-reads the newest manifest just
 *     before deleting. A writer never names an object older than half the
 *     grace period: a change that waited longer (lost races) is uploaded
 *     again. So every process of an index must use the same grace period.
 *  7. Chunk ids are unique across writers: each writer claims blocks of
 *     COMMIT_ID_BLOCK ids by creating ids/<block> with `If-None-Match: *`,
 *     starting above the newest version's ids_high, the highest id any
 *     committed writer claimed (each manifest carries the maximum forward,
 *     so it never decreases). GC deletes only claims at or below ids_high:
 *     no writer claims there again, even while their owner still uses them.
 *  8. A store that ignores `If-None-Match` (commit_probe() finds out with a
 *     throwaway key) cannot arbitrate: the writer then holds a lease object
 *     (writer.lock) and a second writer is refused with an error that says
 *     why. Nothing runs silently unsafe.
 *
 * Namespace under <index.prefix><index.name>/:
 *   manifests/<V>.json     (V zero-padded to 10 digits; the commit point)
 *   LATEST                 {"version": V, "manifest": "<key>"}  (a hint)
 *   catalog/<V>-<token>.sqlite, segments/<id>/...  (unique per attempt)
 *   ids/<block>            chunk id block claims
 *   writer.lock            single-writer lease (stores without conditional PUT)
 *   probe/<token>          the conditional-write probe (deleted at once)
 */
#ifndef COMMIT_H
#define COMMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "manifest.h"
#include "rag_err.h"
#include "s3.h"

/* Manifests and LATEST are read into buffers of at most this size. */
#define COMMIT_MANIFEST_MAX ((size_t)64 << 20)

/* Chunk ids per claimed block. */
#define COMMIT_ID_BLOCK ((int64_t)1 << 20)

/* A writer token: 16 lowercase hex digits from the system's randomness. */
#define COMMIT_TOKEN_LEN 17
void commit_token(char out[COMMIT_TOKEN_LEN]);

/* Where a committed version is. */
typedef struct commit_head {
	int64_t version;            /* 0: nothing committed yet */
	char manifest_key[1200];
	size_t manifest_bytes;
} commit_head;

/*
 * The newest committed version under root (invariant 4). When m is not
 * NULL it receives that version's manifest (an empty one, version 0, when
 * there is none). Requests: GET LATEST, one HEAD per newer version plus the
 * absent one, and the manifest's GET when m is wanted.
 */
rag_rc commit_read_newest(s3_client *s3, const s3_op *op, const char *root, commit_head *head,
			  manifest *m, rag_error *err);

/* The version LATEST names (0 when absent or unreadable: only a hint). */
rag_rc commit_read_hint(s3_client *s3, const s3_op *op, const char *root, int64_t *version,
			rag_error *err);

/* Version's manifest; RAG_ENOTFOUND when it is not committed. */
rag_rc commit_read_version(s3_client *s3, const s3_op *op, const char *root, int64_t version,
			   commit_head *head, manifest *m, rag_error *err);

/*
 * Publish m (m->version must be the newest committed version + 1, and
 * m->writer the writer's token): create its manifest with If-None-Match,
 * then write LATEST. RAG_ECONFLICT, with a message naming the version,
 * when another writer has committed m->version first (invariant 1).
 * With conditional = false (single-writer mode, invariant 8) the manifest
 * is written only if absent by a HEAD first.
 */
rag_rc commit_publish(s3_client *s3, const s3_op *op, const char *root, bool conditional,
		      const manifest *m, rag_error *err);

/*
 * Does the store honour If-None-Match on PUT? Creates probe/<token> twice
 * (the second must fail with 412) and deletes it.
 */
rag_rc commit_probe(s3_client *s3, const s3_op *op, const char *root, bool *conditional,
		    rag_error *err);

/*
 * Claim the next free chunk id block above both floor_id and the newest
 * version's high-water mark (read now: a stale one could fall on a block
 * GC freed; invariant 7). *first is its first id; ids [*first, *first +
 * COMMIT_ID_BLOCK) are the caller's.
 */
rag_rc commit_claim_ids(s3_client *s3, const s3_op *op, const char *root, int64_t floor_id,
			const char *token, int64_t *first, rag_error *err);

/* The block holding chunk id (ids start at 1; block b is [b*BLOCK+1, (b+1)*BLOCK]). */
static inline int64_t commit_id_block(int64_t id)
{
	return id > 0 ? (id - 1) / COMMIT_ID_BLOCK : -1;
}

/* The high-water mark a version publishes: its base's, its own chunks' and
 * the writer's claimed range's (ids_end: one past the claimed block). */
int64_t commit_ids_high(const manifest *base, const manifest *m, int64_t ids_end);

/*
 * Single-writer lease for stores without conditional writes (invariant 8):
 * take or renew writer.lock for token for ttl_s seconds. RAG_EUNSUPPORTED,
 * naming the holder and why, when another writer's lease has not expired.
 */
rag_rc commit_lease(s3_client *s3, const s3_op *op, const char *root, const char *token,
		    int64_t ttl_s, rag_error *err);
/* Drop the lease if token holds it. */
void commit_lease_release(s3_client *s3, const s3_op *op, const char *root, const char *token);

/* Backoff before rebase attempt n (1-based): full jitter, capped. */
unsigned commit_backoff_ms(unsigned attempt);

/* Attempts a writer makes at one change before giving up with RAG_ECONFLICT. */
#define COMMIT_MAX_ATTEMPTS 50

/* The highest chunk id any segment of m holds (0 if none). */
int64_t commit_max_chunk_id(const manifest *m);

#endif
