/*
 * lsa_io.c — the weights object and the model card.
 *
 * Weights object, format 1 (all integers and floats little-endian):
 *
 *   off  size            field
 *   0    8               magic "RAGEMB\0\x1a"
 *   8    4               format version (1)
 *   12   4               dims, 1..EMBED_DIMS_MAX
 *   16   4               nterms, 1..EMBED_VOCAB_MAX
 *   20   4               flags (0)
 *   24   8               documents fitted on
 *   32   2 + n           name (n < EMBED_NAME_MAX)
 *        2 + n           fitted_on (n < EMBED_FITTED_ON_MAX)
 *        nterms x (2+n)  terms in index order (1 <= n <= TERM_MAX, distinct)
 *        4 x nterms      global term weights (float32, finite, >= 0)
 *        4 x nterms x dims   projection, row-major (float32, finite)
 *        8               checksum: FNV-1a 64 of every byte before it
 *
 * The model version is the checksum as 16 lowercase hex digits. The card's
 * created_at is not in the weights, so refitting gives identical bytes.
 */
#include "embed_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rag_util.h"

#define FORMAT_VERSION 1
#define TERM_MAX EMBED_TERM_MAX
#define HEADER_LEN 32

static const unsigned char magic[8] = {'R', 'A', 'G', 'E', 'M', 'B', 0, 0x1a};

/* ------------------------------------------------------------ writing */

typedef struct writer {
	rag_buf *b; /* NULL: only hash */
	uint64_t h;
	rag_rc rc;
} writer;

static void wr_bytes(writer *w, const void *p, size_t n)
{
	if (w->rc || !n)
		return;
	w->h = rag_fnv1a(w->h, p, n);
	if (w->b)
		w->rc = rag_buf_append(w->b, p, n);
}

static void wr_le(writer *w, uint64_t v, int n)
{
	unsigned char b[8];

	for (int i = 0; i < n; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	wr_bytes(w, b, (size_t)n);
}

static void wr_floats(writer *w, const float *v, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	wr_bytes(w, v, n * sizeof(*v));
#else
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		wr_le(w, u, 4);
	}
#endif
}

static void wr_str(writer *w, const char *s, size_t n)
{
	wr_le(w, n, 2);
	wr_bytes(w, s, n);
}

/* Everything but the checksum, which is w->h afterwards. */
static void serialise(const lsa_model *m, writer *w)
{
	wr_bytes(w, magic, sizeof(magic));
	wr_le(w, FORMAT_VERSION, 4);
	wr_le(w, (uint64_t)m->dims, 4);
	wr_le(w, m->nterms, 4);
	wr_le(w, 0, 4);
	wr_le(w, m->ndocs, 8);
	wr_str(w, m->name, strlen(m->name));
	wr_str(w, m->fitted_on, strlen(m->fitted_on));
	for (size_t i = 0; i < m->nterms; i++)
		wr_str(w, text_map_key_at(&m->vocab, m->term_off[i]), m->term_len[i]);
	wr_floats(w, m->gw, m->nterms);
	wr_floats(w, m->proj, m->nterms * (size_t)m->dims);
}

rag_rc lsa_seal(lsa_model *m, rag_error *err)
{
	writer w = {NULL, RAG_FNV_INIT, RAG_OK};

	serialise(m, &w);
	if (w.rc)
		return rag_error_set(err, w.rc, "embed: model \"%s\": %s", m->name,
				     rag_rc_message(w.rc));
	snprintf(m->version, sizeof(m->version), "%016llx", (unsigned long long)w.h);
	return RAG_OK;
}

/* A JSON string literal; bytes of invalid UTF-8 become '?'. */
static rag_rc json_str(rag_buf *b, const char *s)
{
	bool utf8 = rag_utf8_valid(s, strlen(s));
	rag_rc rc = rag_buf_putc(b, '"');

	for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
		if (*p == '"' || *p == '\\')
			rc = rag_buf_printf(b, "\\%c", *p);
		else if (*p < 0x20)
			rc = rag_buf_printf(b, "\\u%04x", *p);
		else if (*p >= 0x80 && !utf8)
			rc = rag_buf_putc(b, '?');
		else
			rc = rag_buf_putc(b, (char)*p);
	}
	return rc ? rc : rag_buf_putc(b, '"');
}

static size_t stopword_count(void)
{
	size_t n;

	text_stopword_list(&n);
	return n;
}

static rag_rc write_card(const lsa_model *m, rag_buf *b)
{
	char when[32];
	time_t t = (time_t)(m->created_at ? m->created_at : rag_wall_time());
	struct tm tm;
	rag_rc rc;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if ((rc = rag_buf_puts(b, "{\n  \"kind\": \"lsa\",\n  \"files\": [\"" LSA_WEIGHTS_FILE "\"],\n"
			       "  \"name\": ")) || (rc = json_str(b, m->name)) ||
	    (rc = rag_buf_printf(b, ",\n  \"version\": \"%s\",\n  \"format\": %d,\n"
				    "  \"dims\": %d,\n  \"vocab_size\": %zu,\n"
				    "  \"docs\": %llu,\n  \"fitted_on\": ",
				 m->version, FORMAT_VERSION, m->dims, m->nterms,
				 (unsigned long long)m->ndocs)) ||
	    (rc = json_str(b, m->fitted_on)))
		return rc;
	return rag_buf_printf(b,
		",\n  \"created_at\": \"%s\",\n"
		"  \"similarity\": \"cosine (inner product of L2-normalised vectors)\",\n"
		"  \"tokenizer\": \"utf8proc NFKC + casefold; split on non letter/digit/mark; "
		"Han and Kana one token per character; %zu English stopwords; tokens over %d bytes dropped; "
		"Snowball english stemmer (tokens with digits unstemmed)\",\n"
		"  \"method\": \"LSA: terms with df >= min_df (top by df); weights (1 + ln tf) * "
		"log-entropy g, rows L2-normalised; randomized truncated SVD "
		"(fixed-seed Gaussian sketch, power iterations, LQ re-orthonormalisation); "
		"embedding = normalise(w * V_k * diag(sigma^0.5)); out-of-vocabulary terms ignored\"\n"
		"}\n",
		when, stopword_count(), TEXT_TOKEN_MAX);
}

rag_rc lsa_save(const lsa_model *m, rag_buf *weights,
			rag_buf *card_json, rag_error *err)
{
	writer w = {weights, RAG_FNV_INIT, RAG_OK};
	rag_rc rc = RAG_OK;

	if (weights) {
		serialise(m, &w);
		uint64_t sum = w.h;
		wr_le(&w, sum, 8);
		if ((rc = w.rc)) {
			rag_error_set(err, rc, "embed save: weights of model \"%s\" (%zu terms x %d): %s",
				      m->name, m->nterms, m->dims, rag_rc_message(rc));
			goto out;
		}
	}
	if (card_json && (rc = write_card(m, card_json)))
		rag_error_set(err, rc, "embed save: card of model \"%s\": %s", m->name,
			      rag_rc_message(rc));
out:
	return rc;
}

/* ------------------------------------------------------------ reading */

typedef struct reader {
	const unsigned char *p;
	size_t len, pos;
} reader;

static bool rd_le(reader *r, int n, uint64_t *v)
{
	if (r->len - r->pos < (size_t)n)
		return false;
	*v = 0;
	for (int i = 0; i < n; i++)
		*v |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
	r->pos += (size_t)n;
	return true;
}

/* A length-prefixed string of at most max bytes (unchecked contents). */
static bool rd_str(reader *r, size_t max, const char **s, size_t *n)
{
	uint64_t v;

	if (!rd_le(r, 2, &v) || v > max || r->len - r->pos < v)
		return false;
	*s = (const char *)r->p + r->pos;
	*n = (size_t)v;
	r->pos += (size_t)v;
	return true;
}

static bool rd_floats(reader *r, float *out, size_t n)
{
	if ((r->len - r->pos) / 4 < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		const unsigned char *b = r->p + r->pos + 4 * i;
		uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
			     (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
		memcpy(&out[i], &u, 4);
		if (!isfinite(out[i]))
			return false;
	}
	r->pos += 4 * n;
	return true;
}

#define CORRUPT(...) \
	do { \
		rc = rag_error_set(err, RAG_ECORRUPT, "embed load: " __VA_ARGS__); \
		goto out; \
	} while (0)

typedef struct header {
	uint64_t format, dims, nterms, flags, ndocs;
} header;

static rag_rc read_header(reader *r, header *h, rag_error *err)
{
	rag_rc rc = RAG_OK;

	if (r->len < HEADER_LEN + 4 + 8)
		CORRUPT("truncated: %zu bytes is shorter than any weights object", r->len);
	if (memcmp(r->p, magic, sizeof(magic)) != 0)
		CORRUPT("bad magic: not an embedding model weights object");
	r->pos = sizeof(magic);
	rd_le(r, 4, &h->format);
	rd_le(r, 4, &h->dims);
	rd_le(r, 4, &h->nterms);
	rd_le(r, 4, &h->flags);
	rd_le(r, 8, &h->ndocs);
	if (h->format != FORMAT_VERSION)
		CORRUPT("unknown format version %llu (this build reads %d)",
			(unsigned long long)h->format, FORMAT_VERSION);
	if (h->dims < 1 || h->dims > EMBED_DIMS_MAX)
		CORRUPT("dims %llu not in 1..%d", (unsigned long long)h->dims, EMBED_DIMS_MAX);
	if (h->nterms < 1 || h->nterms > EMBED_VOCAB_MAX)
		CORRUPT("vocabulary size %llu not in 1..%d", (unsigned long long)h->nterms,
			EMBED_VOCAB_MAX);
	if (h->flags)
		CORRUPT("unknown flags 0x%llx", (unsigned long long)h->flags);
out:
	return rc;
}

static rag_rc read_names(reader *r, lsa_model *m, rag_error *err)
{
	const char *s;
	size_t n;
	rag_rc rc = RAG_OK;

	if (!rd_str(r, EMBED_NAME_MAX - 1, &s, &n) || memchr(s, 0, n))
		CORRUPT("bad or truncated model name at offset %zu", r->pos);
	memcpy(m->name, s, n);
	m->name[n] = '\0';
	if (!rd_str(r, EMBED_FITTED_ON_MAX - 1, &s, &n) || memchr(s, 0, n))
		CORRUPT("bad or truncated fitted_on at offset %zu", r->pos);
	memcpy(m->fitted_on, s, n);
	m->fitted_on[n] = '\0';
out:
	return rc;
}

static rag_rc read_terms(reader *r, lsa_model *m, size_t nterms, rag_error *err)
{
	const char *s;
	size_t n;
	rag_rc rc = RAG_OK, arc;

	for (size_t i = 0; i < nterms; i++) {
		if (!rd_str(r, TERM_MAX, &s, &n) || !n || memchr(s, 0, n))
			CORRUPT("term %zu of %zu: bad length or truncated at offset %zu",
				i, nterms, r->pos);
		if ((arc = lsa_add_term(m, s, n)) == RAG_ECONFLICT)
			CORRUPT("term %zu \"%.*s\" appears twice", i, (int)n, s);
		if (arc) {
			rc = rag_error_set(err, arc, "embed load: %s", rag_rc_message(arc));
			goto out;
		}
	}
out:
	return rc;
}

static rag_rc read_arrays(reader *r, lsa_model *m, rag_error *err)
{
	size_t need, nproj = m->nterms * (size_t)m->dims;
	uint64_t want, got;
	rag_rc rc = RAG_OK;

	/* sizes are bounded (nterms, dims), so this cannot overflow */
	need = 4 * m->nterms + 4 * nproj + 8;
	if (r->len - r->pos != need)
		CORRUPT("%s: %zu bytes after the terms, expected %zu for %zu terms x %d dims",
			r->len - r->pos < need ? "truncated" : "trailing bytes",
			r->len - r->pos, need, m->nterms, m->dims);
	/* checksum before the numbers: a flipped bit is reported as such */
	want = rag_fnv1a(RAG_FNV_INIT, r->p, r->len - 8);
	reader tail = {r->p, r->len, r->len - 8};
	rd_le(&tail, 8, &got);
	if (want != got)
		CORRUPT("checksum mismatch (stored %016llx, computed %016llx)",
			(unsigned long long)got, (unsigned long long)want);
	m->gw = malloc(m->nterms * sizeof(*m->gw));
	m->proj = malloc(nproj * sizeof(*m->proj));
	if (!m->gw || !m->proj) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed load: out of memory for %zu x %d weights",
				   m->nterms, m->dims);
		goto out;
	}
	if (!rd_floats(r, m->gw, m->nterms) || !rd_floats(r, m->proj, nproj))
		CORRUPT("non-finite number in the weights");
	for (size_t t = 0; t < m->nterms; t++)
		if (m->gw[t] < 0.0f)
			CORRUPT("term %zu has a negative weight", t);
	snprintf(m->version, sizeof(m->version), "%016llx", (unsigned long long)got);
out:
	return rc;
}

rag_rc lsa_load(const char *data, size_t len, lsa_model **out,
			rag_error *err)
{
	reader r = {(const unsigned char *)data, len, 0};
	lsa_model *m = NULL;
	header h = {0};
	rag_rc rc;

	*out = NULL;
	if ((rc = read_header(&r, &h, err)))
		goto out;
	m = lsa_alloc(NULL, NULL);
	if (!m) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed load: out of memory");
		goto out;
	}
	m->dims = (int)h.dims;
	m->ndocs = h.ndocs;
	if ((rc = read_names(&r, m, err)) ||
	    (rc = read_terms(&r, m, (size_t)h.nterms, err)) ||
	    (rc = read_arrays(&r, m, err)))
		goto out;
	*out = m;
	m = NULL;
out:
	lsa_free(m);
	return rc;
}
