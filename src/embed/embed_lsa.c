/*
 * embed_lsa.c — the built-in LSA model (lsa.h) behind the embedder
 * interface: its files are the weights object and the card.
 */
#include "embed_int.h"
#include "embed_kind.h"

#include <stdlib.h>

#include "rag_util.h"

/* The embedder's copy of what the model says about itself. */
static void describe(embedder *e, lsa_model *m)
{
	e->impl = m;
	e->dims = lsa_dims(m);
	e->fit_docs = lsa_docs(m);
	e->created_at = m->created_at;
	rag_strlcpy(e->name, lsa_name(m), sizeof(e->name));
	rag_strlcpy(e->version, lsa_version(m), sizeof(e->version));
	rag_strlcpy(e->fitted_on, lsa_fitted_on(m), sizeof(e->fitted_on));
}

static rag_rc lsa_open(embedder *e, embed_read_fn read, void *ctx, const json_t *card,
		       rag_error *err)
{
	lsa_model *m = NULL;
	rag_buf b;
	rag_rc rc;

	(void)card;
	if ((rc = embed_read_all(read, ctx, LSA_WEIGHTS_FILE, &b, err)))
		return rc;
	rc = lsa_load(b.data, b.len, &m, err);
	rag_buf_release(&b);
	if (rc) {
		rag_error_prefix(err, LSA_WEIGHTS_FILE);
		return rc;
	}
	describe(e, m);
	return RAG_OK;
}

static rag_rc lsa_embed_texts(const embedder *e, const char *const *texts, const size_t *lens,
			      size_t n, float *out, embed_stats *st, rag_error *err)
{
	return lsa_embed(e->impl, texts, lens, n, out, st, err);
}

static rag_rc lsa_save_files(const embedder *e, embed_write_fn write, void *ctx, rag_buf *card,
			     rag_error *err)
{
	rag_buf w;
	rag_rc rc;

	rag_buf_init(&w, EMBED_FILE_MAX);
	if (!(rc = lsa_save(e->impl, &w, card, err)))
		rc = write(ctx, LSA_WEIGHTS_FILE, w.data, w.len, err);
	rag_buf_release(&w);
	return rc;
}

static void lsa_free_impl(void *impl)
{
	lsa_free(impl);
}

const embed_kind embed_kind_lsa = {
	.name = "lsa",
	.open = lsa_open,
	.embed = lsa_embed_texts,
	.save = lsa_save_files,
	.free = lsa_free_impl,
};

rag_rc embedder_fit(const char *const *texts, const size_t *lens, size_t n,
		    const embed_fit_opts *opts, embedder **out, rag_error *err)
{
	embed_fit_opts o = opts ? *opts : EMBED_FIT_OPTS_DEFAULT;
	embedder *e = calloc(1, sizeof(*e));
	lsa_model *m = NULL;
	rag_rc rc;

	*out = NULL;
	if (!e)
		return rag_error_set(err, RAG_ENOMEM, "embed: out of memory");
	/* on a tiny corpus most terms occur once: requiring two documents would
	 * leave the model almost no vocabulary */
	if (o.min_df == 0)
		o.min_df = n < 500 ? 1 : 2;
	if ((rc = lsa_fit(texts, lens, n, &o, &m, err))) {
		free(e);
		return rc;
	}
	e->kind = &embed_kind_lsa;
	describe(e, m);
	*out = e;
	return RAG_OK;
}
