/*
 * lsa.c — the model object and embedding texts with it.
 *
 * A text's embedding is normalise(sum_t w_t * P[t]) over its known terms,
 * w_t = (1 + ln tf_t) * g_t: one saxpy per distinct term. Each call keeps
 * its own scratch (stemmer, a folded-word -> term cache, per-term counts),
 * so calls on one model may run concurrently.
 */
#include "embed_int.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rag_util.h"

#define WORD_CACHE_MAX (1u << 16) /* folded words remembered per call */
#define WORD_UNKNOWN (-2)
#define WORD_STOP (-3)

/* ------------------------------------------------------------- model */

lsa_model *lsa_alloc(const char *name, const char *fitted_on)
{
	lsa_model *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	rag_strlcpy(m->name, name ? name : "", sizeof(m->name));
	rag_strlcpy(m->fitted_on, fitted_on ? fitted_on : "", sizeof(m->fitted_on));
	text_map_init(&m->vocab, EMBED_VOCAB_MAX);
	return m;
}

rag_rc lsa_add_term(lsa_model *m, const char *term, size_t len)
{
	size_t n = m->nterms;
	int32_t got;
	rag_rc rc;

	if ((n & (n - 1)) == 0) { /* grow at powers of two */
		size_t cap = n ? n * 2 : 16;
		size_t *off = realloc(m->term_off, cap * sizeof(*off));
		if (!off)
			return RAG_ENOMEM;
		m->term_off = off;
		uint32_t *tl = realloc(m->term_len, cap * sizeof(*tl));
		if (!tl)
			return RAG_ENOMEM;
		m->term_len = tl;
	}
	rc = text_map_put(&m->vocab, term, len, (int32_t)n, &got);
	if (rc)
		return rc;
	if (got != (int32_t)n)
		return RAG_ECONFLICT; /* a duplicate term */

	m->term_off[n] = text_map_find_off(&m->vocab, term, len);
	m->term_len[n] = (uint32_t)len;
	m->nterms = n + 1;
	return RAG_OK;
}

void lsa_free(lsa_model *m)
{
	if (!m)
		return;
	text_map_release(&m->vocab);
	free(m->term_off);
	free(m->term_len);
	free(m->gw);
	free(m->proj);
	free(m);
}

int lsa_dims(const lsa_model *m)
{
	return m->dims;
}

const char *lsa_name(const lsa_model *m)
{
	return m->name;
}

const char *lsa_version(const lsa_model *m)
{
	return m->version;
}

const char *lsa_fitted_on(const lsa_model *m)
{
	return m->fitted_on;
}

size_t lsa_vocab_size(const lsa_model *m)
{
	return m->nterms;
}

uint64_t lsa_docs(const lsa_model *m)
{
	return m->ndocs;
}

/* ---------------------------------------------------------- embedding */

/* Scratch of one lsa_embed() call. */
typedef struct lsa_call {
	const lsa_model *m;
	text_tok tk;
	text_map cache;  /* folded word -> term index, WORD_UNKNOWN, WORD_STOP */
	uint32_t *stamp;  /* per term: 1 + index of the text that saw it last */
	uint32_t *slot;   /* per term: its position in ids/tf for that text */
	uint32_t *ids;    /* distinct terms of the current text */
	float *tf;
	size_t nids, capids;
	uint32_t text_no; /* 1-based */
	uint64_t tokens, unknown;
	rag_rc rc;        /* first failure inside the word callback */
} lsa_call;

/* The term of a folded word (cached), WORD_UNKNOWN or WORD_STOP. */
static int32_t word_term(lsa_call *c, const char *word, size_t len)
{
	int32_t id = text_map_get(&c->cache, word, len);
	rag_rc rc;

	if (id != -1)
		return id;
	id = WORD_STOP;
	if (!text_is_stopword(word, len)) {
		id = WORD_UNKNOWN;
		size_t n;
		const char *st = text_tok_stem(&c->tk, word, len, &n);
		int32_t t = text_map_get(&c->m->vocab, st, n);
		if (t >= 0)
			id = t;
	}
	/* a full cache only costs speed */
	rc = text_map_put(&c->cache, word, len, id, NULL);
	if (rc && rc != RAG_ETOOBIG && !c->rc)
		c->rc = rc;
	return id;
}

static void count_term(lsa_call *c, int32_t id)
{
	if (c->stamp[id] == c->text_no) {
		c->tf[c->slot[id]] += 1.0f;
		return;
	}
	if (c->nids == c->capids) {
		size_t cap = c->capids ? c->capids * 2 : 256;
		uint32_t *ids = realloc(c->ids, cap * sizeof(*ids));
		float *tf = ids ? realloc(c->tf, cap * sizeof(*tf)) : NULL;
		if (ids)
			c->ids = ids;
		if (!ids || !tf) {
			if (!c->rc)
				c->rc = RAG_ENOMEM;
			return;
		}
		c->tf = tf;
		c->capids = cap;
	}
	c->stamp[id] = c->text_no;
	c->slot[id] = (uint32_t)c->nids;
	c->ids[c->nids] = (uint32_t)id;
	c->tf[c->nids++] = 1.0f;
}

static void call_word(void *p, const char *word, size_t len)
{
	lsa_call *c = p;
	int32_t id = word_term(c, word, len);

	if (id == WORD_STOP)
		return;
	c->tokens++;
	if (id >= 0)
		count_term(c, id);
	else
		c->unknown++;
}

/* Sum the weighted projection rows of the current text into row, normalise. */
static void project_text(const lsa_call *c, float *row)
{
	const lsa_model *m = c->m;
	float nrm;

	memset(row, 0, (size_t)m->dims * sizeof(*row));
	for (size_t i = 0; i < c->nids; i++) {
		uint32_t t = c->ids[i];
		float w = (1.0f + logf(c->tf[i])) * m->gw[t];
		cblas_saxpy(m->dims, w, m->proj + (size_t)t * (size_t)m->dims, 1,
			    row, 1);
	}
	nrm = cblas_snrm2(m->dims, row, 1);
	if (nrm > 0.0f && isfinite(nrm))
		cblas_sscal(m->dims, 1.0f / nrm, row, 1);
	else
		memset(row, 0, (size_t)m->dims * sizeof(*row));
}

rag_rc lsa_embed(const lsa_model *m, const char *const *texts,
		   const size_t *lens, size_t n, float *out, embed_stats *st, rag_error *err)
{
	lsa_call c = {.m = m};
	rag_rc rc = RAG_OK;

	if (n >= UINT32_MAX)
		return rag_error_set(err, RAG_EINVAL, "embed: batch of %zu texts is too large", n);
	text_tok_init(&c.tk);
	text_map_init(&c.cache, WORD_CACHE_MAX);
	c.stamp = calloc(m->nterms ? m->nterms : 1, sizeof(*c.stamp));
	c.slot = malloc((m->nterms ? m->nterms : 1) * sizeof(*c.slot));
	if (!c.stamp || !c.slot) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		c.text_no = (uint32_t)(i + 1);
		c.nids = 0;
		text_words(texts[i], lens[i], call_word, &c);
		if (c.rc) {
			rc = rag_error_set(err, c.rc, "embed: text %zu of %zu: %s",
					   i, n, rag_rc_message(c.rc));
			goto out;
		}
		project_text(&c, out + i * (size_t)m->dims);
	}
	if (st) {
		st->texts += n;
		st->tokens += c.tokens;
		st->unknown += c.unknown;
	}
out:
	free(c.ids);
	free(c.tf);
	free(c.slot);
	free(c.stamp);
	text_map_release(&c.cache);
	text_tok_release(&c.tk);
	return rc;
}
