/*
 * catalog.c — see catalog.h for the invariants.
 */
#include "catalog.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "text.h"
#include "rag_buf.h"
#include "rag_util.h"

struct catalog {
	sqlite3 *db;
	char *path;
};

static const char *const status_names[] = {
#define CAT_X(name, str) str,
	CATALOG_OBJ_STATUS(CAT_X)
#undef CAT_X
};

const char *obj_status_name(obj_status s)
{
	return s < OBJ_STATUS_COUNT ? status_names[s] : "unknown";
}

bool obj_status_parse(const char *s, obj_status *out)
{
	for (int i = 0; i < OBJ_STATUS_COUNT; i++)
		if (s && strcmp(s, status_names[i]) == 0)
			return *out = (obj_status)i, true;
	return false;
}

/* Migrations, in order; migration i brings the schema to version i + 1. */
static const char *const migrations[] = {
	/* 1: the first schema */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE objects("
	"  key TEXT PRIMARY KEY, etag TEXT NOT NULL, size INTEGER NOT NULL,"
	"  last_modified INTEGER NOT NULL, status TEXT NOT NULL, error TEXT,"
	"  attempts INTEGER NOT NULL DEFAULT 0, doc_id INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE documents("
	"  doc_id INTEGER PRIMARY KEY, key TEXT NOT NULL, etag TEXT NOT NULL,"
	"  type TEXT NOT NULL, title TEXT, bytes INTEGER NOT NULL,"
	"  text_bytes INTEGER NOT NULL, invalid_bytes INTEGER NOT NULL,"
	"  nchunks INTEGER NOT NULL, segment_id TEXT NOT NULL,"
	"  live INTEGER NOT NULL DEFAULT 1);"
	"CREATE INDEX documents_key ON documents(key);"
	"CREATE INDEX documents_segment ON documents(segment_id);"
	"CREATE TABLE chunks("
	"  chunk_id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL, ordinal INTEGER NOT NULL,"
	"  off INTEGER NOT NULL, len INTEGER NOT NULL, heading TEXT NOT NULL,"
	"  text TEXT NOT NULL, segment_id TEXT NOT NULL,"
	"  rec_off INTEGER NOT NULL, rec_len INTEGER NOT NULL,"
	"  UNIQUE(doc_id, ordinal));"
	"CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks',"
	"  content_rowid='chunk_id', tokenize='porter unicode61 remove_diacritics 2');"
	"CREATE TABLE segments("
	"  segment_id TEXT PRIMARY KEY, version INTEGER NOT NULL, nchunks INTEGER NOT NULL,"
	"  first_chunk INTEGER NOT NULL, last_chunk INTEGER NOT NULL, kind TEXT NOT NULL,"
	"  bytes INTEGER NOT NULL, model_version TEXT NOT NULL,"
	"  live INTEGER NOT NULL DEFAULT 1);"
	"CREATE TABLE versions("
	"  version INTEGER PRIMARY KEY, model_version TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL, published INTEGER NOT NULL DEFAULT 0);",
	/* 2: BM25 over the embedding model's own tokens (case folding, stop
	 * words, Snowball stems) instead of porter/unicode61 */
	"DROP TABLE chunks_fts;"
	"CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks',"
	"  content_rowid='chunk_id', tokenize='ragmap');"
	"INSERT INTO chunks_fts(chunks_fts) VALUES('rebuild');",
	/* 3: when an object last failed: its next attempt waits (backoff) */
	"ALTER TABLE objects ADD COLUMN failed_at INTEGER NOT NULL DEFAULT 0;",
	/* 4: citations: PDF pages and source byte ranges per chunk (0: none) */
	"ALTER TABLE chunks ADD COLUMN page INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE chunks ADD COLUMN page_end INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE chunks ADD COLUMN src_off INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE chunks ADD COLUMN src_end INTEGER NOT NULL DEFAULT 0;",
};

/* ---- the FTS5 tokenizer "ragmap": text_tokenize() as an FTS5 tokenizer */

typedef struct fts_tok_ctx {
	void *ctx;
	int (*xToken)(void *, int, const char *, int, int, int);
	int rc;
	int end;
} fts_tok_ctx;

static void fts_on_token(void *arg, const char *tok, size_t len)
{
	fts_tok_ctx *t = arg;

	/* offsets only matter to highlight(); bm25() needs the tokens */
	if (t->rc == SQLITE_OK)
		t->rc = t->xToken(t->ctx, 0, tok, (int)len, 0, t->end);
}

static int fts_create(void *ctx, const char **args, int nargs, Fts5Tokenizer **out)
{
	(void)ctx, (void)args, (void)nargs;
	*out = (Fts5Tokenizer *)fts_create; /* stateless: any non-NULL handle */
	return SQLITE_OK;
}

static void fts_delete(Fts5Tokenizer *t)
{
	(void)t;
}

static int fts_tokenize(Fts5Tokenizer *t, void *ctx, int flags, const char *text, int len,
			int (*xToken)(void *, int, const char *, int, int, int))
{
	fts_tok_ctx tc = {ctx, xToken, SQLITE_OK, len};

	(void)t, (void)flags;
	text_tokenize(text, (size_t)len, fts_on_token, &tc);
	return tc.rc;
}

static rag_rc register_tokenizer(catalog *c, rag_error *err)
{
	static fts5_tokenizer tok = {fts_create, fts_delete, fts_tokenize};
	fts5_api *api = NULL;
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(c->db, "SELECT fts5(?1)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (!api || api->xCreateTokenizer(api, "ragmap", NULL, &tok, NULL) != SQLITE_OK)
		return rag_error_set(err, RAG_EINTERNAL, "catalog \"%s\": cannot register the FTS5 "
				     "tokenizer (SQLite without FTS5?)", c->path);
	return RAG_OK;
}

static rag_rc db_error(catalog *c, rag_error *err, const char *what)
{
	return rag_error_set(err, RAG_EIO, "catalog \"%s\": %s: %s", c->path, what,
			     sqlite3_errmsg(c->db));
}

static rag_rc exec(catalog *c, const char *sql, rag_error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		rag_error_set(err, RAG_EIO, "catalog \"%s\": %s", c->path, msg ? msg : "error");
		sqlite3_free(msg);
		return RAG_EIO;
	}
	return RAG_OK;
}

static rag_rc prepare(catalog *c, const char *sql, sqlite3_stmt **st, rag_error *err)
{
	if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_error(c, err, "prepare");
	return RAG_OK;
}

/* Run a statement that returns no rows; finalizes it. */
static rag_rc step_done(catalog *c, sqlite3_stmt *st, rag_error *err, const char *what)
{
	int rc = sqlite3_step(st);
	rag_rc out = RAG_OK;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		out = db_error(c, err, what);
	sqlite3_finalize(st);
	return out;
}

static int64_t query_int(catalog *c, const char *sql, int64_t dflt)
{
	sqlite3_stmt *st;
	int64_t v = dflt;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return dflt;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static rag_rc migrate(catalog *c, rag_error *err)
{
	int have = (int)query_int(c, "PRAGMA user_version", 0);
	int want = (int)RAG_ARRAY_LEN(migrations);
	char sql[64];
	rag_rc rc;

	if (have > want)
		return rag_error_set(err, RAG_EUNSUPPORTED,
				     "catalog \"%s\": schema version %d is newer than this "
				     "ragmap knows (%d)", c->path, have, want);
	if (have == want)
		return RAG_OK;
	if ((rc = exec(c, "BEGIN IMMEDIATE", err)))
		return rc;
	for (int v = have; v < want; v++)
		if ((rc = exec(c, migrations[v], err)))
			goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", want);
	if ((rc = exec(c, sql, err)) || (rc = exec(c, "COMMIT", err)))
		goto fail;
	return RAG_OK;
fail:
	exec(c, "ROLLBACK", NULL);
	return rc;
}

rag_rc catalog_open(const char *path, catalog **out, rag_error *err)
{
	catalog *c = calloc(1, sizeof(*c));
	rag_rc rc;

	*out = NULL;
	if (!c || !(c->path = rag_strdup(path))) {
		free(c);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				  SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = db_error(c, err, "open");
		goto fail;
	}
	sqlite3_busy_timeout(c->db, 10000);
	if ((rc = exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			  "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;", err)) ||
	    (rc = register_tokenizer(c, err)) || (rc = migrate(c, err)))
		goto fail;
	*out = c;
	return RAG_OK;
fail:
	catalog_close(c);
	return rc;
}

void catalog_close(catalog *c)
{
	if (!c)
		return;
	sqlite3_close(c->db);
	free(c->path);
	free(c);
}

int catalog_schema_version(catalog *c)
{
	return (int)query_int(c, "PRAGMA user_version", 0);
}

rag_rc catalog_begin(catalog *c, rag_error *err)
{
	return exec(c, "BEGIN IMMEDIATE", err);
}

rag_rc catalog_commit(catalog *c, rag_error *err)
{
	return exec(c, "COMMIT", err);
}

void catalog_rollback(catalog *c)
{
	if (!sqlite3_get_autocommit(c->db))
		exec(c, "ROLLBACK", NULL);
}

/* ------------------------------------------------------------------ objects */

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? rag_strdup((const char *)t) : NULL;
}

#define OBJECT_COLUMNS "key, etag, size, last_modified, status, error, attempts, doc_id, failed_at"

/* Rows of OBJECT_COLUMNS from st (prepared, bound), at most limit (0: all). */
static rag_rc objects_read(catalog *c, sqlite3_stmt *st, size_t limit, cat_object **out,
			   size_t *n, rag_error *err)
{
	cat_object *objs = NULL;
	size_t cnt = 0, cap = 0;
	rag_rc rc = RAG_OK;
	int s = SQLITE_DONE;

	*out = NULL;
	*n = 0;
	while ((!limit || cnt < limit) && (s = sqlite3_step(st)) == SQLITE_ROW) {
		cat_object *o = rag_grow(objs, &cap, cnt + 1, sizeof(*o));
		if (!o) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
		objs = o;
		o = &objs[cnt];
		memset(o, 0, sizeof(*o));
		o->key = col_dup(st, 0);
		rag_strlcpy(o->etag, (const char *)sqlite3_column_text(st, 1), sizeof(o->etag));
		o->size = (uint64_t)sqlite3_column_int64(st, 2);
		o->last_modified = sqlite3_column_int64(st, 3);
		if (!obj_status_parse((const char *)sqlite3_column_text(st, 4), &o->status))
			o->status = OBJ_PENDING;
		o->error = col_dup(st, 5);
		o->attempts = sqlite3_column_int(st, 6);
		o->doc_id = sqlite3_column_int64(st, 7);
		o->failed_at = sqlite3_column_int64(st, 8);
		cnt++;
		if (!o->key) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (s != SQLITE_DONE && s != SQLITE_ROW)
		rc = db_error(c, err, "load objects");
out:
	sqlite3_finalize(st);
	if (rc) {
		cat_objects_free(objs, cnt);
		return rc;
	}
	*out = objs;
	*n = cnt;
	return RAG_OK;
}

rag_rc catalog_objects_load(catalog *c, cat_object **out, size_t *n, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	*out = NULL;
	*n = 0;
	if ((rc = prepare(c, "SELECT " OBJECT_COLUMNS " FROM objects ORDER BY key", &st, err)))
		return rc;
	return objects_read(c, st, 0, out, n, err);
}

rag_rc catalog_failed(catalog *c, size_t limit, cat_object **out, size_t *n, int64_t *total,
		      rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	*out = NULL;
	*n = 0;
	*total = query_int(c, "SELECT count(*) FROM objects WHERE status = 'failed'", 0);
	if ((rc = prepare(c, "SELECT " OBJECT_COLUMNS " FROM objects WHERE status = 'failed'"
			     " ORDER BY key", &st, err)))
		return rc;
	return objects_read(c, st, limit, out, n, err);
}

void cat_objects_free(cat_object *objs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(objs[i].key);
		free(objs[i].error);
	}
	free(objs);
}

rag_rc catalog_object_save(catalog *c, const cat_object *o, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	if ((rc = prepare(c, "INSERT OR REPLACE INTO objects(key, etag, size, last_modified,"
			     " status, error, attempts, doc_id, failed_at) VALUES(?,?,?,?,?,?,?,?,?)", &st, err)))
		return rc;
	sqlite3_bind_text(st, 1, o->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, o->etag, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)o->size);
	sqlite3_bind_int64(st, 4, o->last_modified);
	sqlite3_bind_text(st, 5, obj_status_name(o->status), -1, SQLITE_STATIC);
	if (o->error)
		sqlite3_bind_text(st, 6, o->error, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, o->attempts);
	sqlite3_bind_int64(st, 8, o->doc_id);
	sqlite3_bind_int64(st, 9, o->failed_at);
	return step_done(c, st, err, "save object");
}

rag_rc catalog_object_counts(catalog *c, int64_t *counts, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	memset(counts, 0, OBJ_STATUS_COUNT * sizeof(*counts));
	if ((rc = prepare(c, "SELECT status, count(*) FROM objects GROUP BY status", &st, err)))
		return rc;
	while (sqlite3_step(st) == SQLITE_ROW) {
		obj_status s;
		if (obj_status_parse((const char *)sqlite3_column_text(st, 0), &s))
			counts[s] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return RAG_OK;
}

/* ------------------------------------------------------- documents, chunks */

rag_rc catalog_doc_insert(catalog *c, const cat_doc *d, int64_t *doc_id, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	if ((rc = prepare(c, "INSERT INTO documents(key, etag, type, title, bytes, text_bytes,"
			     " invalid_bytes, nchunks, segment_id) VALUES(?,?,?,?,?,?,?,?,?)", &st, err)))
		return rc;
	sqlite3_bind_text(st, 1, d->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, d->etag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, d->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, d->title ? d->title : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)d->bytes);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)d->text_bytes);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)d->invalid_bytes);
	sqlite3_bind_int(st, 8, d->nchunks);
	sqlite3_bind_text(st, 9, d->segment_id, -1, SQLITE_STATIC);
	if ((rc = step_done(c, st, err, "insert document")))
		return rc;
	*doc_id = sqlite3_last_insert_rowid(c->db);
	return RAG_OK;
}

rag_rc catalog_doc_tombstone(catalog *c, int64_t doc_id, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	if ((rc = prepare(c, "UPDATE documents SET live = 0 WHERE doc_id = ?", &st, err)))
		return rc;
	sqlite3_bind_int64(st, 1, doc_id);
	return step_done(c, st, err, "tombstone document");
}

rag_rc catalog_next_chunk_id(catalog *c, int64_t *id, rag_error *err)
{
	(void)err;
	*id = query_int(c, "SELECT coalesce(max(chunk_id), 0) + 1 FROM chunks", 1);
	return RAG_OK;
}

rag_rc catalog_chunk_insert(catalog *c, const cat_chunk *ch, int64_t *chunk_id, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;
	int64_t id;

	if ((rc = prepare(c, "INSERT INTO chunks(doc_id, ordinal, off, len, heading, text,"
			     " segment_id, rec_off, rec_len, chunk_id, page, page_end, src_off,"
			     " src_end) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
			  &st, err)))
		return rc;
	sqlite3_bind_int(st, 11, ch->page);
	sqlite3_bind_int(st, 12, ch->page_end);
	sqlite3_bind_int64(st, 13, (sqlite3_int64)ch->src_off);
	sqlite3_bind_int64(st, 14, (sqlite3_int64)ch->src_end);
	sqlite3_bind_int64(st, 1, ch->doc_id);
	if (ch->id > 0)
		sqlite3_bind_int64(st, 10, ch->id);
	else
		sqlite3_bind_null(st, 10); /* SQLite picks max + 1 */
	sqlite3_bind_int(st, 2, ch->ordinal);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)ch->off);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)ch->len);
	sqlite3_bind_text(st, 5, ch->heading ? ch->heading : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, ch->text, (int)ch->text_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, ch->segment_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)ch->rec_off);
	sqlite3_bind_int64(st, 9, ch->rec_len);
	if ((rc = step_done(c, st, err, "insert chunk")))
		return rc;
	id = sqlite3_last_insert_rowid(c->db);
	if ((rc = prepare(c, "INSERT INTO chunks_fts(rowid, text) VALUES(?, ?)", &st, err)))
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, ch->text, (int)ch->text_len, SQLITE_STATIC);
	if ((rc = step_done(c, st, err, "index chunk text")))
		return rc;
	if (chunk_id)
		*chunk_id = id;
	return RAG_OK;
}

rag_rc catalog_tombstone_ranges(catalog *c, int64_t **ids, size_t *nranges, rag_error *err)
{
	sqlite3_stmt *st;
	int64_t *a = NULL;
	size_t n = 0, cap = 0;
	rag_rc rc;

	*ids = NULL;
	*nranges = 0;
	if ((rc = prepare(c, "SELECT min(ch.chunk_id), max(ch.chunk_id) FROM documents d"
			     " JOIN chunks ch ON ch.doc_id = d.doc_id"
			     " JOIN segments s ON s.segment_id = d.segment_id"
			     " WHERE d.live = 0 AND s.live = 1 GROUP BY d.doc_id"
			     " ORDER BY 1", &st, err)))
		return rc;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t *p = rag_grow(a, &cap, 2 * (n + 1), sizeof(*p)); /* pairs */
		if (!p) {
			free(a);
			sqlite3_finalize(st);
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
		}
		a = p;
		a[2 * n] = sqlite3_column_int64(st, 0);
		a[2 * n + 1] = sqlite3_column_int64(st, 1);
		n++;
	}
	sqlite3_finalize(st);
	*ids = a;
	*nranges = n;
	return RAG_OK;
}

rag_rc catalog_each_live_chunk(catalog *c, catalog_chunk_fn fn, void *ctx, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;
	int s;

	if ((rc = prepare(c, "SELECT ch.chunk_id, d.key, ch.text FROM chunks ch"
			     " JOIN documents d ON d.doc_id = ch.doc_id"
			     " WHERE d.live = 1 ORDER BY ch.chunk_id", &st, err)))
		return rc;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		rc = fn(ctx, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
			(const char *)sqlite3_column_text(st, 2), (size_t)sqlite3_column_bytes(st, 2));
		if (rc)
			break;
	}
	if (!rc && s != SQLITE_DONE)
		rc = db_error(c, err, "read chunks");
	sqlite3_finalize(st);
	return rc;
}

/* ------------------------------------------------------- segments, versions */

rag_rc catalog_segment_insert(catalog *c, const cat_segment *s, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	if ((rc = prepare(c, "INSERT OR REPLACE INTO segments(segment_id, version, nchunks,"
			     " first_chunk, last_chunk, kind, bytes, model_version, live)"
			     " VALUES(?,?,?,?,?,?,?,?,1)", &st, err)))
		return rc;
	sqlite3_bind_text(st, 1, s->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, s->version);
	sqlite3_bind_int64(st, 3, s->nchunks);
	sqlite3_bind_int64(st, 4, s->first_chunk);
	sqlite3_bind_int64(st, 5, s->last_chunk);
	sqlite3_bind_text(st, 6, s->kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)s->bytes);
	sqlite3_bind_text(st, 8, s->model_version, -1, SQLITE_STATIC);
	return step_done(c, st, err, "insert segment");
}

rag_rc catalog_segment_drop(catalog *c, const char *id, rag_error *err)
{
	static const char *const sql[] = {
		"UPDATE segments SET live = 0 WHERE segment_id = ?1",
		/* chunks of tombstoned docs go with the segment; live docs were moved */
		"DELETE FROM chunks_fts WHERE rowid IN (SELECT ch.chunk_id FROM chunks ch"
		" JOIN documents d ON d.doc_id = ch.doc_id WHERE d.segment_id = ?1 AND d.live = 0)",
		"DELETE FROM chunks WHERE doc_id IN (SELECT doc_id FROM documents"
		" WHERE segment_id = ?1 AND live = 0)",
		"DELETE FROM documents WHERE segment_id = ?1 AND live = 0",
	};
	rag_rc rc = RAG_OK;

	for (size_t i = 0; i < RAG_ARRAY_LEN(sql) && !rc; i++) {
		sqlite3_stmt *st;
		if ((rc = prepare(c, sql[i], &st, err)))
			break;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		rc = step_done(c, st, err, "drop segment");
	}
	return rc;
}

rag_rc catalog_segments_live(catalog *c, cat_segment **out, size_t *n, rag_error *err)
{
	sqlite3_stmt *st;
	cat_segment *a;
	size_t cnt = 0, cap;
	rag_rc rc;

	cap = (size_t)query_int(c, "SELECT count(*) FROM segments WHERE live = 1", 0);
	*out = NULL;
	*n = 0;
	if (!(a = calloc(cap + 1, sizeof(*a))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	if ((rc = prepare(c, "SELECT segment_id, version, nchunks, first_chunk, last_chunk, kind,"
			     " bytes, model_version FROM segments WHERE live = 1"
			     " ORDER BY first_chunk", &st, err))) {
		free(a);
		return rc;
	}
	while (cnt < cap && sqlite3_step(st) == SQLITE_ROW) {
		cat_segment *s = &a[cnt++];
		rag_strlcpy(s->id, (const char *)sqlite3_column_text(st, 0), sizeof(s->id));
		s->version = sqlite3_column_int64(st, 1);
		s->nchunks = sqlite3_column_int64(st, 2);
		s->first_chunk = sqlite3_column_int64(st, 3);
		s->last_chunk = sqlite3_column_int64(st, 4);
		rag_strlcpy(s->kind, (const char *)sqlite3_column_text(st, 5), sizeof(s->kind));
		s->bytes = (uint64_t)sqlite3_column_int64(st, 6);
		rag_strlcpy(s->model_version, (const char *)sqlite3_column_text(st, 7),
			    sizeof(s->model_version));
	}
	sqlite3_finalize(st);
	*out = a;
	*n = cnt;
	return RAG_OK;
}

rag_rc catalog_version_add(catalog *c, int64_t version, const char *model_version,
			   rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	if ((rc = prepare(c, "INSERT OR REPLACE INTO versions(version, model_version, created_at,"
			     " published) VALUES(?,?,?,0)", &st, err)))
		return rc;
	sqlite3_bind_int64(st, 1, version);
	sqlite3_bind_text(st, 2, model_version, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, rag_wall_time());
	return step_done(c, st, err, "add version");
}

rag_rc catalog_version_publish(catalog *c, int64_t version, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	if ((rc = prepare(c, "UPDATE versions SET published = 1 WHERE version = ?", &st, err)))
		return rc;
	sqlite3_bind_int64(st, 1, version);
	return step_done(c, st, err, "publish version");
}

rag_rc catalog_versions(catalog *c, int64_t *published, int64_t *pending, rag_error *err)
{
	(void)err;
	*published = query_int(c, "SELECT coalesce(max(version), 0) FROM versions WHERE published = 1", 0);
	*pending = query_int(c, "SELECT coalesce(max(version), 0) FROM versions WHERE published = 0", 0);
	return RAG_OK;
}

rag_rc catalog_stats_get(catalog *c, catalog_stats *s, rag_error *err)
{
	(void)err;
	s->documents = query_int(c, "SELECT count(*) FROM documents WHERE live = 1", 0);
	s->tombstoned = query_int(c, "SELECT count(*) FROM documents WHERE live = 0", 0);
	s->chunks = query_int(c, "SELECT count(*) FROM chunks ch JOIN documents d"
				 " ON d.doc_id = ch.doc_id WHERE d.live = 1", 0);
	s->segments = query_int(c, "SELECT count(*) FROM segments WHERE live = 1", 0);
	s->text_bytes = query_int(c, "SELECT coalesce(sum(text_bytes), 0) FROM documents"
				     " WHERE live = 1", 0);
	s->source_bytes = query_int(c, "SELECT coalesce(sum(bytes), 0) FROM documents"
				       " WHERE live = 1", 0);
	return RAG_OK;
}

rag_rc catalog_meta_set(catalog *c, const char *key, const char *value, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	if ((rc = prepare(c, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", &st, err)))
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	return step_done(c, st, err, "set meta");
}

rag_rc catalog_meta_get(catalog *c, const char *key, char **value, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	*value = NULL;
	if ((rc = prepare(c, "SELECT value FROM meta WHERE key = ?", &st, err)))
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*value = col_dup(st, 0);
	sqlite3_finalize(st);
	return RAG_OK;
}

rag_rc catalog_snapshot(catalog *c, const char *path, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	unlink(path); /* VACUUM INTO refuses to overwrite */
	if ((rc = prepare(c, "VACUUM INTO ?", &st, err)))
		return rc;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	return step_done(c, st, err, "snapshot");
}

static void count_token(void *ctx, const char *tok, size_t len)
{
	(void)tok, (void)len;
	(*(int *)ctx)++;
}

/*
 * Build an FTS5 query that ORs quoted words: user text is never syntax (a
 * word is a run of letters and digits, so no '"' can occur inside one), and
 * words the tokenizer drops (stop words) are left out rather than becoming
 * empty phrases.
 */
static rag_rc fts_query(const char *q, rag_buf *out)
{
	rag_rc rc = RAG_OK;
	const unsigned char *p = (const unsigned char *)q;

	while (*p && !rc) {
		const unsigned char *s;
		int ntok = 0;

		while (*p && !(isalnum(*p) || *p >= 0x80))
			p++;
		s = p;
		while (*p && (isalnum(*p) || *p >= 0x80))
			p++;
		if (p == s)
			break;
		text_tokenize((const char *)s, (size_t)(p - s), count_token, &ntok);
		if (!ntok)
			continue;
		if (out->len)
			rc = rag_buf_puts(out, " OR ");
		if (!rc)
			rc = rag_buf_putc(out, '"');
		if (!rc)
			rc = rag_buf_append(out, s, (size_t)(p - s));
		if (!rc)
			rc = rag_buf_putc(out, '"');
	}
	return rc;
}

rag_rc catalog_search_bm25(catalog *c, const char *query, int k, int64_t *ids,
			   double *scores, int *n, rag_error *err)
{
	sqlite3_stmt *st;
	rag_buf q;
	rag_rc rc;

	*n = 0;
	rag_buf_init(&q, 64 * 1024);
	if ((rc = fts_query(query, &q))) {
		rag_buf_release(&q);
		return rag_error_set(err, RAG_EINVAL, "bm25: query too long");
	}
	if (q.len == 0) {
		rag_buf_release(&q);
		return RAG_OK;
	}
	if ((rc = prepare(c, "SELECT f.rowid, -bm25(chunks_fts) AS s FROM chunks_fts f"
			     " JOIN chunks ch ON ch.chunk_id = f.rowid"
			     " JOIN documents d ON d.doc_id = ch.doc_id"
			     " WHERE chunks_fts MATCH ?1 AND d.live = 1"
			     " ORDER BY s DESC, f.rowid LIMIT ?2", &st, err))) {
		rag_buf_release(&q);
		return rc;
	}
	sqlite3_bind_text(st, 1, q.data, (int)q.len, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, k);
	while (*n < k && sqlite3_step(st) == SQLITE_ROW) {
		ids[*n] = sqlite3_column_int64(st, 0);
		scores[*n] = sqlite3_column_double(st, 1);
		(*n)++;
	}
	sqlite3_finalize(st);
	rag_buf_release(&q);
	return RAG_OK;
}

rag_rc catalog_each_chunk_row(catalog *c, const char *seg, catalog_row_fn fn, void *ctx,
			      rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;
	int s;

	if ((rc = prepare(c, "SELECT ch.chunk_id, d.key, ch.ordinal, ch.off, ch.len, ch.heading,"
			     " ch.text, ch.page, ch.page_end, ch.src_off, ch.src_end"
			     " FROM chunks ch JOIN documents d ON d.doc_id = ch.doc_id"
			     " WHERE d.live = 1 AND (?1 IS NULL OR ch.segment_id = ?1)"
			     " ORDER BY ch.chunk_id", &st, err)))
		return rc;
	if (seg)
		sqlite3_bind_text(st, 1, seg, -1, SQLITE_STATIC);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		cat_chunk_row row = {
			.id = sqlite3_column_int64(st, 0),
			.key = (const char *)sqlite3_column_text(st, 1),
			.ordinal = sqlite3_column_int(st, 2),
			.off = (uint64_t)sqlite3_column_int64(st, 3),
			.len = (uint64_t)sqlite3_column_int64(st, 4),
			.heading = (const char *)sqlite3_column_text(st, 5),
			.text = (const char *)sqlite3_column_text(st, 6),
			.text_len = (size_t)sqlite3_column_bytes(st, 6),
			.page = sqlite3_column_int(st, 7),
			.page_end = sqlite3_column_int(st, 8),
			.src_off = (uint64_t)sqlite3_column_int64(st, 9),
			.src_end = (uint64_t)sqlite3_column_int64(st, 10),
		};
		if ((rc = fn(ctx, &row)))
			break;
	}
	if (!rc && s != SQLITE_DONE)
		rc = db_error(c, err, "read chunks");
	sqlite3_finalize(st);
	return rc;
}

rag_rc catalog_chunk_move(catalog *c, int64_t chunk_id, const char *seg, uint64_t rec_off,
			  uint32_t rec_len, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	if ((rc = prepare(c, "UPDATE chunks SET segment_id = ?, rec_off = ?, rec_len = ?"
			     " WHERE chunk_id = ?", &st, err)))
		return rc;
	sqlite3_bind_text(st, 1, seg, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)rec_off);
	sqlite3_bind_int64(st, 3, rec_len);
	sqlite3_bind_int64(st, 4, chunk_id);
	return step_done(c, st, err, "move chunk");
}

rag_rc catalog_docs_follow(catalog *c, const char *from_seg, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	if ((rc = prepare(c, "UPDATE documents SET segment_id = (SELECT ch.segment_id FROM chunks ch"
			     " WHERE ch.doc_id = documents.doc_id ORDER BY ch.ordinal LIMIT 1)"
			     " WHERE segment_id = ? AND live = 1", &st, err)))
		return rc;
	sqlite3_bind_text(st, 1, from_seg, -1, SQLITE_STATIC);
	return step_done(c, st, err, "move documents");
}

int64_t catalog_segment_dead_chunks(catalog *c, const char *seg)
{
	sqlite3_stmt *st;
	int64_t n = 0;

	if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM chunks ch JOIN documents d"
				      " ON d.doc_id = ch.doc_id WHERE d.live = 0 AND ch.segment_id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, seg, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

rag_rc catalog_chunk_get(catalog *c, int64_t chunk_id, cat_chunk_out *out, rag_error *err)
{
	sqlite3_stmt *st;
	rag_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = prepare(c, "SELECT d.key, ch.ordinal, ch.off, ch.len, ch.heading, ch.text,"
			     " ch.page, ch.page_end, ch.src_off, ch.src_end FROM chunks ch JOIN documents d ON d.doc_id = ch.doc_id"
			     " WHERE ch.chunk_id = ?", &st, err)))
		return rc;
	sqlite3_bind_int64(st, 1, chunk_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rag_error_set(err, RAG_ENOTFOUND, "catalog: no chunk %lld", (long long)chunk_id);
	}
	out->key = col_dup(st, 0);
	out->ordinal = sqlite3_column_int(st, 1);
	out->off = (uint64_t)sqlite3_column_int64(st, 2);
	out->len = (uint64_t)sqlite3_column_int64(st, 3);
	out->heading = col_dup(st, 4);
	out->text = col_dup(st, 5);
	out->text_len = (size_t)sqlite3_column_bytes(st, 5);
	out->page = sqlite3_column_int(st, 6);
	out->page_end = sqlite3_column_int(st, 7);
	out->src_off = (uint64_t)sqlite3_column_int64(st, 8);
	out->src_end = (uint64_t)sqlite3_column_int64(st, 9);
	sqlite3_finalize(st);
	if (!out->key || !out->heading || !out->text) {
		cat_chunk_out_release(out);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	return RAG_OK;
}

void cat_chunk_out_release(cat_chunk_out *o)
{
	free(o->key);
	free(o->heading);
	free(o->text);
	memset(o, 0, sizeof(*o));
}

rag_rc catalog_chunk_ids_matching(catalog *c, const char *prefix, const char *const *types,
				  int ntypes, int64_t **ids, size_t *n, rag_error *err)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int64_t *a = NULL, *p;
	rag_rc rc;
	int s;

	*ids = NULL;
	*n = 0;
	/* types as one comma-joined parameter: instr() on ",t," needs no SQL per type */
	char tl[256] = ",";
	size_t tn = 1;
	for (int i = 0; i < ntypes && tn < sizeof(tl); i++)
		tn += (size_t)snprintf(tl + tn, sizeof(tl) - tn, "%s,", types[i]);
	if (tn >= sizeof(tl))
		return rag_error_set(err, RAG_EINVAL, "type filter too long");
	if ((rc = prepare(c, "SELECT ch.chunk_id FROM chunks ch JOIN documents d"
			     " ON d.doc_id = ch.doc_id WHERE d.live = 1"
			     " AND substr(d.key, 1, length(?1)) = ?1"
			     " AND (?2 = ',' OR instr(?2, ',' || d.type || ',') > 0)"
			     " ORDER BY ch.chunk_id", &st, err)))
		return rc;
	sqlite3_bind_text(st, 1, prefix ? prefix : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, tl, -1, SQLITE_STATIC);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(p = rag_grow(a, &cap, *n + 1, sizeof(*a)))) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			break;
		}
		a = p;
		a[(*n)++] = sqlite3_column_int64(st, 0);
	}
	if (!rc && s != SQLITE_DONE)
		rc = db_error(c, err, "chunk ids by filter");
	sqlite3_finalize(st);
	if (rc) {
		free(a);
		*n = 0;
		return rc;
	}
	*ids = a;
	return RAG_OK;
}
