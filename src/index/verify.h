/*
 * verify — check the newest committed index version, read exactly as a
 * query server reads it, against the commit protocol (commit.h), the object
 * formats (segment.h), the catalog snapshot it names and, when asked, the
 * source listing. Library code: it prints nothing; what it finds goes into
 * a verify_report for the caller (ragmap verify) to show.
 *
 * What is checked, in order (each problem's message names the object, key
 * or chunk it is about):
 *  1. Version. The newest committed version, as commit_read_newest() finds
 *     it (LATEST is only a hint; newer manifests are probed), has a
 *     manifest that parses and carries that version and this index's name.
 *  2. Objects. Every object the manifest names (5 per segment, the catalog
 *     snapshot, the model weights) exists with the recorded size (HEAD).
 *  3. Each segment on its own: index.faiss loads with the recorded count,
 *     kind, lists and dimensions; every chunks.idx entry lies inside
 *     chunks.bin and its record parses with the same id and a key; lists.idx
 *     spans lists.bin; every list region decodes (segment_list_view()), its
 *     record table points where chunks.idx does and its vectors are finite;
 *     the ids in the lists are exactly the ids in chunks.idx, each once.
 *  4. Chunks across segments: no chunk id in two segments; among the live
 *     (not tombstoned) chunks no (key, ordinal) twice, every document's
 *     ordinals are 0..n-1 and every chunk has a vector.
 *  5. Stats: the live documents and chunks the segments hold equal the
 *     manifest's stats (documents, chunks) and the catalog snapshot's.
 *  6. Catalog snapshot: no key has two live documents, and its live chunks
 *     are exactly the segments' live chunks (the same ids, each with the
 *     same key and ordinal).
 *  7. Model: the weights load (checksum) and have the version and
 *     dimensions the manifest records.
 *  8. Source (only with opts->source): against the listing of its
 *     prefixes, every shard (keys ending in '/' are directory markers, ignored as ingest
 *     ignores them), every source object has exactly one live document, at
 *     the object's current ETag, and no live document has a key that is not
 *     in the source. Excused, and counted in source_excused: an object
 *     whose catalog outcome at its current ETag is skipped, rejected or
 *     failed is legitimately not indexed; a skipped or rejected one must
 *     then have no live document, a failed one may keep serving its last
 *     good one (whatever its ETag).
 * With nothing committed yet (version 0) only check 8 runs (every source
 * object is then a difference).
 *
 * The digest (opts->digest): SHA-256 over the live chunks sorted by (key,
 * ordinal), each as u32 key length | key | u32 ordinal | u64 text length |
 * text | u32 dims | dims float32 (all little-endian). Chunk ids, segment
 * layout and versions are left out, so two indexes that hold the same
 * documents, texts and vectors have the same digest.
 *
 * Storage requests are counted under the stage "verify" (see
 * s3_client_stats()). Nothing is written to the store; locally only a
 * temporary copy of the catalog snapshot, removed before returning.
 * Thread affinity: any one thread; it blocks on S3, FAISS and SQLite.
 */
#ifndef VERIFY_H
#define VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rag_err.h"
#include "rag_scope.h"
#include "s3.h"

/* Problems whose message a report keeps; the rest are only counted. */
#define VERIFY_MAX_SHOWN 50

typedef struct verify_opts {
	const char *root;           /* the index root, as mf_index_root() makes it */
	const char *index_name;     /* the manifest must carry it (check 1) */
	const rag_scope *source;    /* check 8 against these prefixes; NULL: skip 8 */
	bool digest;                /* fill verify_report.digest */
	bool keys;                  /* fill verify_report.keys */
	const char *tmp_dir;        /* for the snapshot copy; NULL: P_tmpdir */
} verify_opts;

/* A live document as the segments hold it. */
typedef struct verify_key {
	char *key;                  /* owned */
	int64_t chunks;             /* live chunks */
} verify_key;

typedef struct verify_report {
	int64_t version;            /* checked; 0: nothing committed yet */
	char manifest_key[1200];
	int64_t objects;            /* named by the manifest (check 2) */
	size_t segments;
	int nflat, nivf;
	int64_t chunks;             /* in the segments, live or not */
	int64_t tombstoned;
	int64_t live_documents, live_chunks;
	char model_name[64], model_version[40];
	int dims;
	/* check 8 */
	bool source_checked;
	int64_t source_objects;     /* listed, directory markers left out */
	int64_t source_markers;
	int64_t source_indexed;     /* live at their current ETag */
	int64_t source_excused;     /* skipped/rejected/failed at their current ETag */
	char digest[65];            /* opts->digest: hex; "" otherwise */
	verify_key *keys;           /* opts->keys: sorted by key; owned */
	size_t nkeys;
	/* what was found */
	int64_t problems;
	char *shown[VERIFY_MAX_SHOWN]; /* the first messages, in the order found; owned */
	size_t nshown;
} verify_report;

/*
 * Run checks 1-8 (see above) on the index at opts->root with the client s3.
 * Returns RAG_OK when every check ran: out->problems is then the number of
 * differences found (0: the index is sound) and out->shown the first of
 * them. Returns an error, with err naming what could not be read, when
 * the checks cannot run: the newest version or its manifest cannot be read,
 * the source listing fails, or memory runs out (out is then partly filled).
 * OUT *out: caller releases with verify_report_release(), in every case.
 */
rag_rc verify_index(s3_client *s3, const verify_opts *opts, verify_report *out,
		    rag_error *err);
void verify_report_release(verify_report *r);

#endif
