/*
 * embed.c — the embedder interface: the table of kinds, opening a model from
 * its files (a card or a bare directory), saving one with its card last.
 */
#include "embed_kind.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rag_util.h"

#define CARD_FILE "card.json"
#define CARD_MAX ((size_t)1 << 20)

static const embed_kind *const kinds[] = {&embed_kind_lsa, &embed_kind_bert};

static const embed_kind *kind_named(const char *name)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i]->name, name) == 0)
			return kinds[i];
	return NULL;
}

rag_rc embed_read_all(embed_read_fn read, void *ctx, const char *file, rag_buf *out,
		      rag_error *err)
{
	rag_rc rc;

	rag_buf_init(out, EMBED_FILE_MAX);
	if ((rc = read(ctx, file, out, err)))
		rag_buf_release(out);
	return rc;
}

rag_rc embed_parse_json(const rag_buf *b, const char *file, json_t **out, rag_error *err)
{
	json_error_t je;

	*out = json_loadb(b->data ? b->data : "", b->len, JSON_REJECT_DUPLICATES, &je);
	if (!*out)
		return rag_error_set(err, RAG_ECORRUPT, "%s: line %d: %s", file, je.line, je.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return rag_error_set(err, RAG_ECORRUPT, "%s: not a JSON object", file);
	}
	return RAG_OK;
}

/* "2026-12-01T10:00:00Z" -> Unix seconds; 0 when it is not one. */
static int64_t parse_utc(const char *s)
{
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;

	return end && !*end ? (int64_t)timegm(&tm) : 0;
}

/* What the card adds: when and on what the model was made; its version must agree. */
static rag_rc apply_card(embedder *e, const json_t *card, rag_error *err)
{
	const char *v = json_string_value(json_object_get(card, "version"));
	const char *on = json_string_value(json_object_get(card, "fitted_on"));
	const char *name = json_string_value(json_object_get(card, "name"));

	if (v && strcmp(v, e->version) != 0)
		return rag_error_set(err, RAG_ECORRUPT,
				     CARD_FILE ": names version %s, the files are version %s", v,
				     e->version);
	if (name && !e->name[0])
		rag_strlcpy(e->name, name, sizeof(e->name));
	if (on && !e->fitted_on[0])
		rag_strlcpy(e->fitted_on, on, sizeof(e->fitted_on));
	e->created_at = parse_utc(json_string_value(json_object_get(card, "created_at")));
	return RAG_OK;
}

rag_rc embedder_open(embed_read_fn read, void *ctx, embedder **out, rag_error *err)
{
	embedder *e = calloc(1, sizeof(*e));
	json_t *card = NULL;
	rag_buf b;
	rag_rc rc;

	*out = NULL;
	if (!e)
		return rag_error_set(err, RAG_ENOMEM, "embed: out of memory");
	rc = embed_read_all(read, ctx, CARD_FILE, &b, err);
	if (rc == RAG_OK) {
		const char *kind;

		rc = embed_parse_json(&b, CARD_FILE, &card, err);
		rag_buf_release(&b);
		if (rc)
			goto fail;
		/* cards written before there were kinds are LSA cards */
		kind = json_string_value(json_object_get(card, "kind"));
		if (!(e->kind = kind_named(kind ? kind : "lsa"))) {
			rc = rag_error_set(err, RAG_ECORRUPT, CARD_FILE ": unknown kind \"%s\"", kind);
			goto fail;
		}
	} else if (rc == RAG_ENOTFOUND) {
		rag_error_clear(err);
		e->kind = &embed_kind_bert; /* a directory as Hugging Face ships it */
	} else {
		goto fail;
	}
	if ((rc = e->kind->open(e, read, ctx, card, err)))
		goto fail;
	if (card && (rc = apply_card(e, card, err)))
		goto fail;
	json_decref(card);
	*out = e;
	return RAG_OK;
fail:
	json_decref(card);
	embedder_free(e);
	return rc;
}

/* ---------------------------------------------------------- directories */

static rag_rc dir_read(void *ctx, const char *file, rag_buf *out, rag_error *err)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/%s", (const char *)ctx, file) >= (int)sizeof(path))
		return rag_error_set(err, RAG_EINVAL, "model directory path is too long");
	return rag_buf_read_file(out, path, err);
}

static const char *base_name(const char *dir)
{
	size_t n = strlen(dir);
	const char *p;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	for (p = dir + n; p > dir && p[-1] != '/'; p--)
		;
	return p;
}

rag_rc embedder_open_dir(const char *dir, const char *name, embedder **out, rag_error *err)
{
	rag_rc rc = embedder_open(dir_read, (void *)dir, out, err);

	if (rc) {
		rag_error_prefix(err, "model directory \"%s\"", dir);
		return rc;
	}
	if (!((*out)->dir = rag_strdup(dir))) {
		embedder_free(*out);
		*out = NULL;
		return rag_error_set(err, RAG_ENOMEM, "embed: out of memory");
	}
	if (name && *name)
		rag_strlcpy((*out)->name, name, sizeof((*out)->name));
	else if (!(*out)->name[0]) {
		const char *b = base_name(dir);
		size_t n = strcspn(b, "/");

		if (n >= sizeof((*out)->name))
			n = sizeof((*out)->name) - 1;
		memcpy((*out)->name, b, n);
		(*out)->name[n] = '\0';
	}
	if (!(*out)->fitted_on[0])
		snprintf((*out)->fitted_on, sizeof((*out)->fitted_on), "imported from %s", dir);
	return RAG_OK;
}

/* Read a file of the directory e was opened from (for saving it as it is). */
rag_rc embed_dir_read(const embedder *e, const char *file, rag_buf *out, rag_error *err)
{
	if (!e->dir)
		return rag_error_set(err, RAG_EINVAL,
				     "model \"%s\" was opened from storage; it is stored already",
				     e->name);
	rag_buf_init(out, EMBED_FILE_MAX);
	return dir_read(e->dir, file, out, err);
}

rag_rc embedder_save(const embedder *e, embed_write_fn write, void *ctx, rag_error *err)
{
	rag_buf card;
	rag_rc rc;

	rag_buf_init(&card, CARD_MAX);
	if (!(rc = e->kind->save(e, write, ctx, &card, err)))
		rc = write(ctx, CARD_FILE, card.data, card.len, err);
	rag_buf_release(&card);
	return rc;
}

void embedder_free(embedder *e)
{
	if (!e)
		return;
	if (e->kind && e->impl)
		e->kind->free(e->impl);
	free(e->dir);
	free(e);
}

/* ------------------------------------------------------------ accessors */

const char *embedder_kind(const embedder *e) { return e->kind->name; }
const char *embedder_name(const embedder *e) { return e->name; }
const char *embedder_version(const embedder *e) { return e->version; }
const char *embedder_fitted_on(const embedder *e) { return e->fitted_on; }
int embedder_dims(const embedder *e) { return e->dims; }
int64_t embedder_created_at(const embedder *e) { return e->created_at; }
size_t embedder_max_tokens(const embedder *e) { return e->max_tokens; }
bool embedder_fits(const embedder *e) { return e->kind == &embed_kind_lsa; }
uint64_t embedder_fit_docs(const embedder *e) { return e->fit_docs; }

rag_rc embedder_embed(const embedder *e, const char *const *texts, const size_t *lens,
		      size_t n, float *out, embed_stats *st, rag_error *err)
{
	return e->kind->embed(e, texts, lens, n, out, st, err);
}
