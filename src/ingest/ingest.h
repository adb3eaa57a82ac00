/*
 * ingest — the ingestion pipeline: source prefix → diff → fetch → parse →
 * chunk → embed → segment → commit a new index version.
 *
 * Invariants (on top of the commit protocol in commit.h):
 *  1. The local catalog is a cache of the snapshot of the newest committed
 *     version plus the work of the commit in progress. ingest_open() and
 *     every rebase make it so: a catalog that holds another version, or the
 *     same number written by another writer, is replaced by the snapshot
 *     (or emptied when nothing is committed yet).
 *  2. A pass commits every ingest.commit_every documents (or bytes), so a
 *     crash loses at most the batch in flight, and a restart refetches
 *     nothing already committed.
 *  3. Unchanged objects (same key and ETag) cost no GET. A document whose
 *     object changed or went away is tombstoned in the same version that
 *     adds its replacement; tombstoned chunks are never returned and are
 *     purged when compaction drops their segment.
 *  4. A change is applied by source key, on whatever base it lands on: an
 *     object the base already indexed at the same ETag stays indexed once
 *     (the later copy is tombstoned on arrival); any other live document
 *     of the key is replaced.
 *
 * Thread affinity: one pipeline per process; it uses worker threads for
 * fetching (the S3 client's parallel batches) and for parsing/embedding.
 */
#ifndef INGEST_H
#define INGEST_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "embed.h"
#include "manifest.h"
#include "rag_config.h"
#include "rag_log.h"
#include "s3.h"
#include "rag_scope.h"

/* Stages timed by a run, in pipeline order. */
#define INGEST_STAGES(X) \
	X(RECOVER, "recover") X(LIST, "list") X(FETCH, "fetch") X(PARSE, "parse") \
	X(CHUNK, "chunk") X(FIT, "fit") X(EMBED, "embed") X(INDEX, "index") \
	X(UPLOAD, "upload") X(CATALOG, "catalog") X(COMMIT, "commit") X(GC, "gc")

typedef enum {
#define ING_X(name, str) ING_##name,
	INGEST_STAGES(ING_X)
#undef ING_X
	ING_STAGE_COUNT
} ingest_stage;

const char *ingest_stage_name(ingest_stage s);

/* What one run did. */
typedef struct ingest_summary {
	int64_t listed;           /* objects this process owns under the source prefixes */
	int64_t others;           /* listed but in another worker's shard: not touched */
	int64_t unchanged;        /* same ETag: no GET */
	int64_t deferred;         /* failed before, unchanged, waiting for their retry */
	int64_t status[OBJ_STATUS_COUNT]; /* objects processed this run, by outcome */
	int64_t documents;        /* new documents indexed */
	int64_t chunks;           /* new chunks */
	int64_t tombstoned;       /* documents tombstoned (changed or deleted) */
	uint64_t bytes;           /* source bytes of the documents indexed */
	int64_t fetched;          /* source objects read (GETs that succeeded) */
	uint64_t bytes_read;      /* and their bytes */
	int64_t version;          /* the version committed, 0 if none */
	int64_t segments_written;
	int64_t segments_compacted;
	int64_t gc_deleted;
	int64_t commits;          /* versions this pass committed */
	int64_t conflicts;        /* versions lost to another writer (then rebased) */
	int64_t truncated;        /* chunks cut at the model's token limit */
	bool model_fitted;
	double ms[ING_STAGE_COUNT];
	double total_ms;
} ingest_summary;

/* Progress, called from the pipeline thread after each batch. */
typedef void (*ingest_progress_fn)(void *ctx, int64_t docs_done, int64_t docs_total,
				   uint64_t bytes_done, uint64_t bytes_total, int64_t chunks);

typedef struct ingest_ctx {
	const rag_config *cfg;
	s3_client *s3;
	rag_log *log;
	volatile sig_atomic_t *stop;  /* set by a signal: finish the batch, commit */
	ingest_progress_fn progress;
	void *progress_ctx;
	/* state, owned */
	rag_scope scope;              /* the source keys this process owns (rag_scope.h) */
	catalog *cat;
	char root[1024];              /* <index.prefix><index.name>/ */
	char cat_path[4096];
	embedder *model;
	char model_key[1024];         /* the manifest's name for it (modelobj.h) */
	manifest latest;              /* the newest committed version (0: none) */
	char token[24];               /* this writer (commit_token()) */
	bool probed, conditional;     /* the store honours If-None-Match */
	int64_t ids_next, ids_end;    /* the claimed chunk id block's free range */
	unsigned segments_named;
	s3_counter pass_start[S3_KIND_COUNT]; /* "ingest.*" requests when the pass began */
} ingest_ctx;

/* Probe the store's conditional writes, open the catalog and bring it to
 * the newest version (invariant 1). */
rag_rc ingest_open(ingest_ctx *ic, const rag_config *cfg, s3_client *s3, rag_log *log,
		   rag_error *err);
void ingest_close(ingest_ctx *ic);

/* Catch up with the newest committed version (other writers' commits):
 * its catalog snapshot and model. A pass starts with it. */
rag_rc ingest_follow(ingest_ctx *ic, rag_error *err);

/* One pass: diff, process, commit, compact, collect garbage. It lists
 * every source prefix and touches only the keys the scope owns. */
rag_rc ingest_run(ingest_ctx *ic, ingest_summary *sum, rag_error *err);

/*
 * A pass over some keys only (those of S3 events): each owned key is
 * HEADed and reconciled with the catalog as a full pass would, so an event
 * that is late, repeated or out of order does no harm. Keys are sorted
 * and deduplicated in place; keys outside the scope are ignored.
 */
rag_rc ingest_run_keys(ingest_ctx *ic, char **keys, size_t nkeys, ingest_summary *sum,
		       rag_error *err);

/* Seconds a failed object waits after its n-th failed attempt:
 * ingest.retry_base_s doubled per earlier failure, capped at retry_max_s. */
int64_t ingest_retry_delay_s(const rag_config *cfg, int attempts);

/* When a failed object is fetched again (unless it changes first). */
int64_t ingest_retry_at(const rag_config *cfg, const cat_object *o);

/* Merge small or mostly dead segments into a new version (a no-op when
 * none qualifies; deferred when other writers keep winning). */
rag_rc ingest_compact(ingest_ctx *ic, ingest_summary *sum, rag_error *err);

/* Fit a new model on every live chunk and re-embed everything into a new
 * version (the old segments become garbage). */
rag_rc ingest_refit(ingest_ctx *ic, ingest_summary *sum, rag_error *err);

/*
 * Whether the built-in model no longer fits the index, and why (into why):
 * model.dims differs from the dims it was fitted for; the live chunks grew
 * past ingest.refit_growth; or more than ingest.refit_unknown of the tokens
 * embedded since the fit were unknown to it (a new subject). Never for a
 * model that is not fitted here (an imported one).
 */
bool ingest_refit_due(ingest_ctx *ic, char *why, size_t cap);

/* ingest_refit() when ingest_refit_due() says so; why is "" when not. */
rag_rc ingest_refit_if_due(ingest_ctx *ic, ingest_summary *sum, char *why, size_t cap,
			   rag_error *err);

/*
 * Store m (ic takes it, also on failure) and make it the index's model: a
 * new version with every live chunk embedded again (none yet is fine).
 */
rag_rc ingest_use_model(ingest_ctx *ic, embedder *m, ingest_summary *sum, rag_error *err);

/* Delete objects no kept manifest names (older than the grace period). */
rag_rc ingest_gc(ingest_ctx *ic, int64_t grace_s, int64_t *deleted, rag_error *err);

#endif
