/*
 * modelobj.c — a model's objects in the store (see modelobj.h).
 */
#include "modelobj.h"

#include <stdio.h>
#include <string.h>

#include "commit.h"
#include "manifest.h"
#include "rag_util.h"

typedef struct model_io {
	s3_client *s3;
	const s3_op *op;
	char base[1024]; /* the model's prefix, ending in '/' */
} model_io;

static rag_rc key_of(const model_io *io, const char *file, char *key, size_t cap,
		     rag_error *err)
{
	if ((size_t)snprintf(key, cap, "%s%s", io->base, file) >= cap)
		return rag_error_set(err, RAG_ETOOBIG, "model key \"%s%s\" is too long", io->base,
				     file);
	return RAG_OK;
}

static rag_rc io_read(void *ctx, const char *file, rag_buf *out, rag_error *err)
{
	model_io *io = ctx;
	char key[1200];
	rag_rc rc = key_of(io, file, key, sizeof(key), err);

	if (!rc && (rc = s3_get(io->s3, io->op, key, out, NULL, err)) && rc != RAG_ENOTFOUND)
		rag_error_prefix(err, "model object \"%s\"", key);
	return rc;
}

static rag_rc io_write(void *ctx, const char *file, const void *data, size_t len,
		       rag_error *err)
{
	model_io *io = ctx;
	char key[1200];
	const char *type = strstr(file, ".json") ? "application/json" : "application/octet-stream";
	rag_rc rc = key_of(io, file, key, sizeof(key), err);

	if (!rc && (rc = s3_put(io->s3, io->op, key, data, len, type, NULL, err)))
		rag_error_prefix(err, "model object \"%s\"", key);
	return rc;
}

rag_rc modelobj_open(s3_client *s3, const s3_op *op, const char *key, embedder **out,
		     rag_error *err)
{
	model_io io = {.s3 = s3, .op = op};
	const char *slash = strrchr(key, '/');
	size_t n = slash ? (size_t)(slash - key) + 1 : 0;
	rag_rc rc;

	*out = NULL;
	if (n >= sizeof(io.base))
		return rag_error_set(err, RAG_ETOOBIG, "model key \"%s\" is too long", key);
	memcpy(io.base, key, n);
	io.base[n] = '\0';
	if ((rc = embedder_open(io_read, &io, out, err)))
		rag_error_prefix(err, "model \"%s\"", key);
	return rc;
}

rag_rc modelobj_open_latest(s3_client *s3, const s3_op *op, const char *root, embedder **out,
			    rag_error *err)
{
	manifest m;
	rag_rc rc;

	*out = NULL;
	if ((rc = commit_read_newest(s3, op, root, NULL, &m, err)))
		return rc;
	if (!m.version)
		rc = rag_error_set(err, RAG_ENOTFOUND, "index \"%s\" has no version yet", root);
	else
		rc = modelobj_open(s3, op, m.model.key, out, err);
	manifest_release(&m);
	return rc;
}

rag_rc modelobj_publish(s3_client *s3, const s3_op *op, const char *prefix, const embedder *e,
			char *key, size_t cap, rag_error *err)
{
	model_io io = {.s3 = s3, .op = op};
	size_t pl = strlen(prefix);
	rag_rc rc;

	if ((size_t)snprintf(io.base, sizeof(io.base), "%s%s%s/%s/", prefix,
			     pl && prefix[pl - 1] != '/' ? "/" : "", embedder_name(e),
			     embedder_version(e)) >= sizeof(io.base))
		return rag_error_set(err, RAG_ETOOBIG, "model prefix \"%s\" is too long", prefix);
	if ((rc = embedder_save(e, io_write, &io, err)))
		return rc;
	return key_of(&io, "card.json", key, cap, err);
}
