/*
 * bert_net.c — the network half of bert.h: config.json, model.safetensors
 * and the post-LayerNorm BERT encoder on OpenBLAS.
 *
 * Safetensors (https://github.com/huggingface/safetensors, the format only):
 *
 *   off    size  field
 *   0      8     N, the header length (unsigned, little-endian)
 *   8      N     JSON object: name -> {"dtype", "shape", "data_offsets"},
 *                plus an optional "__metadata__" object
 *   8 + N        the data section; data_offsets [begin, end) are relative
 *                to its start, tensors row-major and little-endian
 *
 * Invariants:
 *  1. Nothing is allocated for weights before every needed tensor has been
 *     found with its dtype, shape and byte range checked; so the memory the
 *     weights take is bounded by twice the file (F16 -> F32), whatever the
 *     config says.
 *  2. Every header entry is checked (dtype, shape, data_offsets inside the
 *     data section, size = elements x dtype size without overflow), not
 *     only the needed ones, and the entries must tile the data section
 *     exactly, as the safetensors library requires (no gap, no overlap,
 *     nothing after). Entries of dtypes other than F32, F16 and BF16 are
 *     otherwise skipped (an unknown dtype has no size to check).
 *  3. All weights live in one 64-byte-aligned block owned by the net; the
 *     query, key and value projections of a layer are one [3h, h] matrix
 *     (and one [3h] bias), so a batch needs one sgemm for all three.
 *  4. bert_net_encode() stacks the rows (tokens) of several sequences into
 *     one matrix: every step but attention is per row, so the stack needs
 *     no padding and no mask; attention runs per sequence and per head on
 *     strided views of the stacked Q, K and V. All scratch is allocated
 *     once per call, so calls on different threads share nothing mutable.
 */
#include "bert.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_FILE "model.safetensors"
#define CFG_FILE "config.json"

#define BERT_HIDDEN_MAX 4096
#define BERT_LAYERS_MAX 64
#define BERT_VOCAB_MAX 1000000
#define BERT_POSITIONS_MAX 8192
#define BERT_INTERMEDIATE_MAX 65536
#define BERT_TYPE_VOCAB_MAX 1024
#define ST_HEADER_MAX (100u << 20) /* the limit the safetensors library sets */
#define ST_RANK_MAX 8
#define NAME_MAX_LEN 96

/* Rows (tokens) stacked per batch: big enough that the projections run at
 * full sgemm speed, small enough that the activations stay near the cache. */
#define BATCH_ROWS 1024
/* Query rows per block of attention scores (bounds the scratch at long
 * sequence lengths to QUERY_BLOCK x length floats). */
#define QUERY_BLOCK 256
#define ALIGN_FLOATS 16 /* 64 bytes */

/* ------------------------------------------------------------- the net */

/* Offsets (in floats) of one layer's weights in bert_net.w. */
typedef struct bert_layer {
	size_t wqkv, bqkv;   /* [3h, h], [3h]: query, key, value stacked */
	size_t wo, bo;       /* attention.output.dense [h, h], [h] */
	size_t ln1_g, ln1_b; /* attention.output.LayerNorm */
	size_t wi, bi;       /* intermediate.dense [inter, h], [inter] */
	size_t wo2, bo2;     /* output.dense [h, inter], [h] */
	size_t ln2_g, ln2_b; /* output.LayerNorm */
} bert_layer;

struct bert_net {
	bert_config cfg;
	float *w;                      /* every weight; 64-byte aligned */
	size_t word, pos, type;        /* embeddings [vocab|max_pos|type_vocab, h] */
	size_t ln_g, ln_b;             /* embeddings.LayerNorm */
	bert_layer *layer;             /* cfg.layers */
};

const bert_config *bert_net_config(const bert_net *net)
{
	return &net->cfg;
}

void bert_net_free(bert_net *net)
{
	if (!net)
		return;
	free(net->w);
	free(net->layer);
	free(net);
}

static rag_rc corrupt(rag_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static rag_rc corrupt(rag_error *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rag_error_vset(err, RAG_ECORRUPT, fmt, ap);
	va_end(ap);
	return RAG_ECORRUPT;
}

/* ---------------------------------------------------------- config.json */

static const struct cfg_int {
	const char *key;
	size_t off;   /* into bert_config */
	int def;      /* 0: the field is required */
	int lo, hi;
} cfg_ints[] = {
	{"vocab_size", offsetof(bert_config, vocab_size), 0, 1, BERT_VOCAB_MAX},
	{"hidden_size", offsetof(bert_config, hidden), 0, 1, BERT_HIDDEN_MAX},
	{"num_hidden_layers", offsetof(bert_config, layers), 0, 1, BERT_LAYERS_MAX},
	{"num_attention_heads", offsetof(bert_config, heads), 0, 1, BERT_HIDDEN_MAX},
	{"intermediate_size", offsetof(bert_config, intermediate), 0, 1, BERT_INTERMEDIATE_MAX},
	{"max_position_embeddings", offsetof(bert_config, max_positions), 0, 1,
	 BERT_POSITIONS_MAX},
	{"type_vocab_size", offsetof(bert_config, type_vocab), 2, 1, BERT_TYPE_VOCAB_MAX},
};

/* A string field that must have one value when present (absent: Hugging
 * Face's BertConfig default, which is that value). */
static rag_rc cfg_str_is(json_t *root, const char *key, const char *want, rag_error *err)
{
	json_t *v = json_object_get(root, key);

	if (!v)
		return RAG_OK;
	if (!json_is_string(v))
		return corrupt(err, CFG_FILE ": field \"%s\": expected a string", key);
	if (strcmp(json_string_value(v), want))
		return corrupt(err, CFG_FILE ": field \"%s\": \"%.64s\", expected \"%s\"", key,
			       json_string_value(v), want);
	return RAG_OK;
}

static rag_rc parse_config(const char *data, size_t len, bert_config *c, rag_error *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	rag_rc rc = RAG_OK;

	memset(c, 0, sizeof(*c));
	if (!root)
		return corrupt(err, CFG_FILE ": invalid JSON: %s (line %d, column %d)", jerr.text,
			       jerr.line, jerr.column);
	if (!json_is_object(root)) {
		rc = corrupt(err, CFG_FILE ": not a JSON object");
		goto out;
	}
	for (size_t i = 0; i < sizeof(cfg_ints) / sizeof(cfg_ints[0]); i++) {
		const struct cfg_int *f = &cfg_ints[i];
		json_t *v = json_object_get(root, f->key);
		json_int_t x = f->def;

		if (!v && !f->def) {
			rc = corrupt(err, CFG_FILE ": field \"%s\": missing", f->key);
			goto out;
		}
		if (v && !json_is_integer(v)) {
			rc = corrupt(err, CFG_FILE ": field \"%s\": expected an integer", f->key);
			goto out;
		}
		if (v)
			x = json_integer_value(v);
		if (x < f->lo || x > f->hi) {
			rc = corrupt(err, CFG_FILE ": field \"%s\": %lld out of range %d..%d",
				     f->key, (long long)x, f->lo, f->hi);
			goto out;
		}
		*(int *)((char *)c + f->off) = (int)x;
	}
	if (c->hidden % c->heads) {
		rc = corrupt(err,
			     CFG_FILE ": field \"num_attention_heads\": %d does not divide "
				      "\"hidden_size\" %d",
			     c->heads, c->hidden);
		goto out;
	}
	c->eps = 1e-12;
	{
		json_t *v = json_object_get(root, "layer_norm_eps");
		if (v && !json_is_number(v)) {
			rc = corrupt(err, CFG_FILE ": field \"layer_norm_eps\": expected a number");
			goto out;
		}
		if (v)
			c->eps = json_number_value(v);
		/* stored as a float in the forward pass: keep it a normal float */
		if (!(c->eps >= 1e-30 && c->eps <= 0.1)) {
			rc = corrupt(err, CFG_FILE ": field \"layer_norm_eps\": %g out of range "
						   "1e-30..0.1",
				     c->eps);
			goto out;
		}
	}
	if ((rc = cfg_str_is(root, "hidden_act", "gelu", err)) ||
	    (rc = cfg_str_is(root, "position_embedding_type", "absolute", err)))
		goto out;
out:
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------ the tensor plan */

/* One tensor the net needs and where it goes in bert_net.w. */
typedef struct need {
	char name[NAME_MAX_LEN]; /* PyTorch BertModel name, no "bert." */
	int rank;
	int64_t dim[2];
	size_t off;
} need;

typedef struct plan {
	need *v;
	size_t n, cap;
	size_t top; /* floats placed so far */
} plan;

/* Room for a tensor (or a fused group of them) of n floats, aligned. */
static size_t place(plan *p, size_t n)
{
	size_t off = p->top;

	p->top += (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
	return off;
}

static void want(plan *p, size_t off, int rank, int64_t d0, int64_t d1, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void want(plan *p, size_t off, int rank, int64_t d0, int64_t d1, const char *fmt, ...)
{
	need *nd = &p->v[p->n++]; /* p->cap is exact: see make_plan() */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(nd->name, sizeof(nd->name), fmt, ap);
	va_end(ap);
	nd->rank = rank;
	nd->dim[0] = d0;
	nd->dim[1] = d1;
	nd->off = off;
}

#define NEEDS_EMBED 5
#define NEEDS_LAYER 16

static rag_rc make_plan(bert_net *net, plan *p, rag_error *err)
{
	const bert_config *c = &net->cfg;
	size_t h = (size_t)c->hidden, in = (size_t)c->intermediate;

	p->cap = NEEDS_EMBED + NEEDS_LAYER * (size_t)c->layers;
	p->v = calloc(p->cap, sizeof(*p->v));
	net->layer = calloc((size_t)c->layers, sizeof(*net->layer));
	if (!p->v || !net->layer)
		return rag_error_set(err, RAG_ENOMEM, ST_FILE ": %s", rag_rc_message(RAG_ENOMEM));

	net->word = place(p, (size_t)c->vocab_size * h);
	want(p, net->word, 2, c->vocab_size, c->hidden, "embeddings.word_embeddings.weight");
	net->pos = place(p, (size_t)c->max_positions * h);
	want(p, net->pos, 2, c->max_positions, c->hidden, "embeddings.position_embeddings.weight");
	net->type = place(p, (size_t)c->type_vocab * h);
	want(p, net->type, 2, c->type_vocab, c->hidden, "embeddings.token_type_embeddings.weight");
	net->ln_g = place(p, h);
	want(p, net->ln_g, 1, c->hidden, 0, "embeddings.LayerNorm.weight");
	net->ln_b = place(p, h);
	want(p, net->ln_b, 1, c->hidden, 0, "embeddings.LayerNorm.bias");

	for (int i = 0; i < c->layers; i++) {
		bert_layer *l = &net->layer[i];
		static const char *const qkv[3] = {"query", "key", "value"};

		l->wqkv = place(p, 3 * h * h);
		l->bqkv = place(p, 3 * h);
		for (size_t k = 0; k < 3; k++) {
			want(p, l->wqkv + k * h * h, 2, c->hidden, c->hidden,
			     "encoder.layer.%d.attention.self.%s.weight", i, qkv[k]);
			want(p, l->bqkv + k * h, 1, c->hidden, 0,
			     "encoder.layer.%d.attention.self.%s.bias", i, qkv[k]);
		}
		l->wo = place(p, h * h);
		want(p, l->wo, 2, c->hidden, c->hidden, "encoder.layer.%d.attention.output.dense.weight",
		     i);
		l->bo = place(p, h);
		want(p, l->bo, 1, c->hidden, 0, "encoder.layer.%d.attention.output.dense.bias", i);
		l->ln1_g = place(p, h);
		want(p, l->ln1_g, 1, c->hidden, 0,
		     "encoder.layer.%d.attention.output.LayerNorm.weight", i);
		l->ln1_b = place(p, h);
		want(p, l->ln1_b, 1, c->hidden, 0, "encoder.layer.%d.attention.output.LayerNorm.bias",
		     i);
		l->wi = place(p, in * h);
		want(p, l->wi, 2, c->intermediate, c->hidden,
		     "encoder.layer.%d.intermediate.dense.weight", i);
		l->bi = place(p, in);
		want(p, l->bi, 1, c->intermediate, 0, "encoder.layer.%d.intermediate.dense.bias", i);
		l->wo2 = place(p, h * in);
		want(p, l->wo2, 2, c->hidden, c->intermediate, "encoder.layer.%d.output.dense.weight",
		     i);
		l->bo2 = place(p, h);
		want(p, l->bo2, 1, c->hidden, 0, "encoder.layer.%d.output.dense.bias", i);
		l->ln2_g = place(p, h);
		want(p, l->ln2_g, 1, c->hidden, 0, "encoder.layer.%d.output.LayerNorm.weight", i);
		l->ln2_b = place(p, h);
		want(p, l->ln2_b, 1, c->hidden, 0, "encoder.layer.%d.output.LayerNorm.bias", i);
	}
	return RAG_OK;
}

/* ---------------------------------------------------- model.safetensors */

typedef enum { DT_OTHER, DT_F32, DT_F16, DT_BF16 } dtype;

static const struct dtype_info {
	const char *name;
	unsigned size;
	dtype dt;
} dtypes[] = {
	{"F32", 4, DT_F32},      {"F16", 2, DT_F16},     {"BF16", 2, DT_BF16},
	{"F64", 8, DT_OTHER},    {"I64", 8, DT_OTHER},   {"U64", 8, DT_OTHER},
	{"I32", 4, DT_OTHER},    {"U32", 4, DT_OTHER},   {"I16", 2, DT_OTHER},
	{"U16", 2, DT_OTHER},    {"I8", 1, DT_OTHER},    {"U8", 1, DT_OTHER},
	{"BOOL", 1, DT_OTHER},   {"F8_E5M2", 1, DT_OTHER}, {"F8_E4M3", 1, DT_OTHER},
};

/* One checked header entry. */
typedef struct st_entry {
	const char *dtype_name; /* borrowed from the header JSON */
	dtype dt;
	int rank;
	uint64_t dim[ST_RANK_MAX];
	uint64_t begin, end; /* in the data section */
} st_entry;

static void fmt_shape(char *buf, size_t len, const uint64_t *dim, int rank)
{
	size_t o = 0;

	o += (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < rank && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%llu", i ? ", " : "",
				      (unsigned long long)dim[i]);
	if (o < len)
		snprintf(buf + o, len - o, "]");
}

/* A JSON value that is a non-negative integer. */
static bool json_uint(json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* Check one header entry against a data section of data_len bytes. */
static rag_rc parse_entry(const char *name, json_t *v, size_t data_len, st_entry *e,
			  rag_error *err)
{
	json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
	json_t *offs = json_object_get(v, "data_offsets");
	unsigned size = 0;
	uint64_t n = 1, bytes;

	memset(e, 0, sizeof(*e));
	if (!json_is_object(v))
		return corrupt(err, ST_FILE ": tensor \"%.*s\": not a JSON object", NAME_MAX_LEN,
			       name);
	if (!json_is_string(dt))
		return corrupt(err, ST_FILE ": tensor \"%.*s\": no \"dtype\" string", NAME_MAX_LEN,
			       name);
	e->dtype_name = json_string_value(dt);
	e->dt = DT_OTHER;
	for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
		if (!strcmp(e->dtype_name, dtypes[i].name)) {
			size = dtypes[i].size;
			e->dt = dtypes[i].dt;
		}
	if (!json_is_array(shape) || json_array_size(shape) > ST_RANK_MAX)
		return corrupt(err, ST_FILE ": tensor \"%.*s\": \"shape\" is not an array of at "
					    "most %d sizes",
			       NAME_MAX_LEN, name, ST_RANK_MAX);
	e->rank = (int)json_array_size(shape);
	for (int i = 0; i < e->rank; i++) {
		if (!json_uint(json_array_get(shape, (size_t)i), &e->dim[i]))
			return corrupt(err, ST_FILE ": tensor \"%.*s\": \"shape\" holds a value "
						    "that is not a size",
				       NAME_MAX_LEN, name);
		if (__builtin_mul_overflow(n, e->dim[i], &n))
			return corrupt(err, ST_FILE ": tensor \"%.*s\": shape overflows",
				       NAME_MAX_LEN, name);
	}
	if (!json_is_array(offs) || json_array_size(offs) != 2 ||
	    !json_uint(json_array_get(offs, 0), &e->begin) ||
	    !json_uint(json_array_get(offs, 1), &e->end))
		return corrupt(err, ST_FILE ": tensor \"%.*s\": \"data_offsets\" is not two "
					    "offsets",
			       NAME_MAX_LEN, name);
	if (e->begin > e->end || e->end > data_len)
		return corrupt(err, ST_FILE ": tensor \"%.*s\": data_offsets [%llu, %llu] outside "
					    "the data section of %zu bytes",
			       NAME_MAX_LEN, name, (unsigned long long)e->begin,
			       (unsigned long long)e->end, data_len);
	if (size && (__builtin_mul_overflow(n, (uint64_t)size, &bytes) ||
		     bytes != e->end - e->begin)) {
		char s[160];
		fmt_shape(s, sizeof(s), e->dim, e->rank);
		return corrupt(err, ST_FILE ": tensor \"%.*s\": data_offsets [%llu, %llu] hold "
					    "%llu bytes, %.16s %s needs %llu x %u",
			       NAME_MAX_LEN, name, (unsigned long long)e->begin,
			       (unsigned long long)e->end,
			       (unsigned long long)(e->end - e->begin), e->dtype_name, s,
			       (unsigned long long)n, size);
	}
	return RAG_OK;
}

static float half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h >> 15) << 31, ex = (h >> 10) & 0x1f, man = h & 0x3ff, u;
	float f;

	if (ex == 0) { /* zero or subnormal: man x 2^-24 */
		f = ldexpf((float)man, -24);
		return sign ? -f : f;
	}
	if (ex == 31)
		u = sign | 0x7f800000u | (man << 13); /* inf, nan */
	else
		u = sign | ((ex - 15 + 127) << 23) | (man << 13);
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* Convert n little-endian elements of src to floats. */
static void convert(const unsigned char *src, dtype dt, size_t n, float *dst)
{
	switch (dt) {
	case DT_F32:
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		memcpy(dst, src, n * sizeof(float));
#else
		for (size_t i = 0; i < n; i++) {
			uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
				     (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
			memcpy(&dst[i], &u, sizeof(u));
		}
#endif
		break;
	case DT_F16:
		for (size_t i = 0; i < n; i++)
			dst[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
		break;
	case DT_BF16:
		for (size_t i = 0; i < n; i++) {
			uint32_t u = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
			memcpy(&dst[i], &u, sizeof(u));
		}
		break;
	case DT_OTHER:
		break;
	}
}

/* Which header key holds a needed tensor: name, "bert." name, and for a
 * LayerNorm the older gamma/beta spellings. *val is NULL when none does;
 * key (NAME_MAX_LEN + 16 bytes) receives the key found. */
static rag_rc find_tensor(json_t *hdr, const char *name, char *key, json_t **val,
			  rag_error *err)
{
	char cand[4][NAME_MAX_LEN + 16];
	size_t nc = 0, len = strlen(name);
	static const char *const old[2][2] = {{".LayerNorm.weight", ".LayerNorm.gamma"},
					      {".LayerNorm.bias", ".LayerNorm.beta"}};

	snprintf(cand[nc++], sizeof(cand[0]), "%s", name);
	snprintf(cand[nc++], sizeof(cand[0]), "bert.%s", name);
	for (size_t i = 0; i < 2; i++) {
		size_t sl = strlen(old[i][0]);
		if (len > sl && !strcmp(name + len - sl, old[i][0])) {
			snprintf(cand[nc++], sizeof(cand[0]), "%.*s%s", (int)(len - sl), name,
				 old[i][1]);
			snprintf(cand[nc++], sizeof(cand[0]), "bert.%.*s%s", (int)(len - sl), name,
				 old[i][1]);
		}
	}
	*val = NULL;
	for (size_t i = 0; i < nc; i++) {
		json_t *v = json_object_get(hdr, cand[i]);
		if (!v)
			continue;
		if (*val)
			return corrupt(err, ST_FILE ": tensor \"%s\" twice, as \"%s\" and \"%s\"",
				       name, key, cand[i]);
		*val = v;
		memcpy(key, cand[i], sizeof(cand[i]));
	}
	return RAG_OK;
}

typedef struct span {
	uint64_t begin, end;
	const char *name;
} span;

static int span_cmp(const void *a, const void *b)
{
	const span *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/*
 * Check every entry of the header and that the tensors tile the data
 * section exactly (no gap, no overlap, nothing after: the safetensors
 * library's own rule; it also bounds the weights by the file, invariant 1).
 */
static rag_rc check_header(json_t *hdr, size_t data_len, rag_error *err)
{
	size_t n = json_object_size(hdr), k = 0;
	span *sp = calloc(n ? n : 1, sizeof(*sp));
	uint64_t at = 0;
	const char *key;
	json_t *v;
	rag_rc rc = RAG_OK;

	if (!sp)
		return rag_error_set(err, RAG_ENOMEM, ST_FILE ": %s", rag_rc_message(RAG_ENOMEM));
	json_object_foreach(hdr, key, v) {
		st_entry e;
		if (!strcmp(key, "__metadata__")) {
			if (!json_is_object(v)) {
				rc = corrupt(err, ST_FILE ": \"__metadata__\" is not a JSON object");
				goto out;
			}
			continue;
		}
		if ((rc = parse_entry(key, v, data_len, &e, err)))
			goto out;
		sp[k].begin = e.begin;
		sp[k].end = e.end;
		sp[k++].name = key;
	}
	qsort(sp, k, sizeof(*sp), span_cmp);
	for (size_t i = 0; i < k; i++) {
		if (sp[i].begin != at) {
			rc = corrupt(err, ST_FILE ": tensor \"%.*s\": data_offsets begin at %llu, "
						   "expected %llu (a gap or an overlap)",
				     NAME_MAX_LEN, sp[i].name, (unsigned long long)sp[i].begin,
				     (unsigned long long)at);
			goto out;
		}
		at = sp[i].end;
	}
	if (at != data_len)
		rc = corrupt(err, ST_FILE ": the tensors end at byte %llu of a data section of %zu",
			     (unsigned long long)at, data_len);
out:
	free(sp);
	return rc;
}

/* Find, check and convert every needed tensor into net->w (allocated here). */
static rag_rc load_tensors(bert_net *net, const plan *p, json_t *hdr, const unsigned char *data,
			   size_t data_len, rag_error *err)
{
	st_entry *ent = calloc(p->n, sizeof(*ent));
	rag_rc rc = RAG_OK;

	if (!ent)
		return rag_error_set(err, RAG_ENOMEM, ST_FILE ": %s", rag_rc_message(RAG_ENOMEM));
	for (size_t i = 0; i < p->n; i++) {
		const need *nd = &p->v[i];
		st_entry *e = &ent[i];
		char key[NAME_MAX_LEN + 16];
		json_t *v;
		bool same;

		if ((rc = find_tensor(hdr, nd->name, key, &v, err)))
			goto out;
		if (!v) {
			rc = corrupt(err, ST_FILE ": missing tensor \"%s\"", nd->name);
			goto out;
		}
		if ((rc = parse_entry(key, v, data_len, e, err)))
			goto out;
		if (e->dt == DT_OTHER) {
			rc = corrupt(err, ST_FILE ": tensor \"%s\": dtype \"%.16s\", expected F32, "
						   "F16 or BF16",
				     key, e->dtype_name);
			goto out;
		}
		same = e->rank == nd->rank;
		for (int d = 0; same && d < nd->rank; d++)
			same = e->dim[d] == (uint64_t)nd->dim[d];
		if (!same) {
			char got[160], exp[64];
			uint64_t want_dim[2] = {(uint64_t)nd->dim[0], (uint64_t)nd->dim[1]};
			fmt_shape(got, sizeof(got), e->dim, e->rank);
			fmt_shape(exp, sizeof(exp), want_dim, nd->rank);
			rc = corrupt(err, ST_FILE ": tensor \"%s\": shape %s, expected %s", key, got,
				     exp);
			goto out;
		}
	}
	/* every tensor fits the file and none overlaps: p->top is bounded */
	net->w = aligned_alloc(ALIGN_FLOATS * sizeof(float), p->top * sizeof(float));
	if (!net->w) {
		rc = rag_error_set(err, RAG_ENOMEM, ST_FILE ": %s", rag_rc_message(RAG_ENOMEM));
		goto out;
	}
	memset(net->w, 0, p->top * sizeof(float)); /* the alignment gaps */
	for (size_t i = 0; i < p->n; i++) {
		const need *nd = &p->v[i];
		size_t cnt = (size_t)nd->dim[0] * (size_t)(nd->rank == 2 ? nd->dim[1] : 1);
		float *dst = net->w + nd->off;

		convert(data + ent[i].begin, ent[i].dt, cnt, dst);
		for (size_t j = 0; j < cnt; j++)
			if (!isfinite(dst[j])) {
				rc = corrupt(err, ST_FILE ": tensor \"%s\": element %zu is not finite",
					     nd->name, j);
				goto out;
			}
	}
out:
	free(ent);
	return rc;
}

rag_rc bert_net_load(const char *config, size_t config_len, const char *st, size_t st_len,
		     bert_net **out, rag_error *err)
{
	bert_net *net = calloc(1, sizeof(*net));
	plan p = {0};
	json_t *hdr = NULL;
	json_error_t jerr;
	uint64_t hl = 0;
	rag_rc rc;

	*out = NULL;
	if (!net)
		return rag_error_set(err, RAG_ENOMEM, "bert: %s", rag_rc_message(RAG_ENOMEM));
	if ((rc = parse_config(config ? config : "", config ? config_len : 0, &net->cfg, err)) ||
	    (rc = make_plan(net, &p, err)))
		goto out;
	if (!st || st_len < 8) {
		rc = corrupt(err, ST_FILE ": truncated: %zu bytes, no room for the header length",
			     st ? st_len : 0);
		goto out;
	}
	for (int i = 7; i >= 0; i--)
		hl = hl << 8 | (unsigned char)st[i];
	if (hl > st_len - 8) {
		rc = corrupt(err, ST_FILE ": truncated: header says %llu bytes, file has %zu after "
					  "the length",
			     (unsigned long long)hl, st_len - 8);
		goto out;
	}
	if (hl > ST_HEADER_MAX) {
		rc = corrupt(err, ST_FILE ": header of %llu bytes, over the limit of %u",
			     (unsigned long long)hl, ST_HEADER_MAX);
		goto out;
	}
	hdr = json_loadb(st + 8, (size_t)hl, JSON_REJECT_DUPLICATES, &jerr);
	if (!hdr) {
		rc = corrupt(err, ST_FILE ": header: invalid JSON: %s (line %d, column %d)",
			     jerr.text, jerr.line, jerr.column);
		goto out;
	}
	if (!json_is_object(hdr)) {
		rc = corrupt(err, ST_FILE ": header is not a JSON object");
		goto out;
	}
	if ((rc = check_header(hdr, st_len - 8 - (size_t)hl, err)) ||
	    (rc = load_tensors(net, &p, hdr, (const unsigned char *)st + 8 + hl,
			       st_len - 8 - (size_t)hl, err)))
		goto out;
	*out = net;
	net = NULL;
out:
	json_decref(hdr);
	free(p.v);
	bert_net_free(net);
	return rc;
}

/* ------------------------------------------------------------- kernels */

/*
 * The element-wise steps (LayerNorm, GELU, softmax) in GCC/Clang vector
 * extensions of 8 lanes; exp and erf are our own so they vectorise (libm's
 * are scalar calls). Where the compiler targets plain x86-64 (SSE2), each
 * 8-lane operation becomes two 4-lane ones; on x86-64 the kernels are also
 * cloned for AVX2 and picked at load time (ifunc), so the binary needs no
 * -march. Vectors never cross a function boundary (helpers take pointers):
 * passing 32-byte vectors changes the ABI between those two targets.
 */
#define VL 8
typedef float vf __attribute__((vector_size(VL * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VL * sizeof(int32_t))));
typedef uint32_t vu __attribute__((vector_size(VL * sizeof(uint32_t))));

#if defined(__x86_64__) && defined(__linux__) && !defined(BERT_NO_CLONES)
#define KERNEL __attribute__((target_clones("avx2", "default")))
#else
#define KERNEL
#endif
#define INLINE static inline __attribute__((always_inline))

#define SPLAT(c) ((vf){0} + (c))
#define VLOAD(v, p) memcpy(&(v), (p), sizeof(vf))
#define VSTORE(p, v) memcpy((p), &(v), sizeof(vf))
#define VSEL(m, a, b) ((vf)(((vi)(a) & (m)) | ((vi)(b) & ~(m)))) /* m ? a : b */

/*
 * e^x of VL floats in place, for x in [-87, 88] (clamped outside): x =
 * n ln2 + r with |r| <= ln2/2, e^r by its Taylor series to r^7 (error
 * < 1e-8 relative), 2^n put in the exponent bits. n comes from adding
 * 1.5 x 2^23, which rounds x log2(e) to an integer in the low mantissa bits.
 */
INLINE void exp_v(float *io)
{
	const vf magic = SPLAT(12582912.0f);
	vf x, t, n, r, p;
	vu e;

	VLOAD(x, io);
	x = VSEL(x < SPLAT(-87.0f), SPLAT(-87.0f), x);
	x = VSEL(x > SPLAT(88.0f), SPLAT(88.0f), x);
	t = x * 1.44269504088896341f + magic;
	n = t - magic;
	e = (vu)t - (vu)magic; /* n, modulo 2^32 (no overflow, even for NaN) */
	r = x - n * 0.693145751953125f;    /* ln2, high bits (n x exact) */
	r = r - n * 1.428606765330187e-6f; /* ln2, the rest */
	p = SPLAT(1.0f / 5040);
	p = p * r + 1.0f / 720;
	p = p * r + 1.0f / 120;
	p = p * r + 1.0f / 24;
	p = p * r + 1.0f / 6;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	p = p * (vf)((e + 127u) << 23);
	VSTORE(io, p);
}

/*
 * GELU(x) = x/2 (1 + erf(x/sqrt 2)) of VL floats in place, with erfc(z) for
 * z = |x|/sqrt 2 from Abramowitz & Stegun 7.1.26 (absolute error <=
 * 1.5e-7): 1 + erf(x/sqrt 2) is erfc(z) for x < 0 (no cancellation in the
 * tail) and 2 - erfc(z) for x >= 0.
 */
INLINE void gelu_v(float *io)
{
	vf x, z, t, q, e;
	vi neg;
	float ez[VL];

	VLOAD(x, io);
	neg = x < SPLAT(0.0f);
	z = VSEL(neg, -x, x) * 0.70710678118654752f;
	e = -(z * z);
	VSTORE(ez, e);
	exp_v(ez);
	VLOAD(e, ez);
	t = SPLAT(1.0f) / (z * 0.3275911f + 1.0f);
	q = t * 1.061405429f - 1.453152027f;
	q = q * t + 1.421413741f;
	q = q * t - 0.284496736f;
	q = q * t + 0.254829592f;
	q = q * t * e;
	x = x * 0.5f * VSEL(neg, q, 2.0f - q);
	VSTORE(io, x);
}

/* x[j] = GELU(x[j]) */
KERNEL static void gelu(float *x, size_t n)
{
	size_t j = 0;

	for (; j + VL <= n; j += VL)
		gelu_v(x + j);
	if (j < n) {
		float t[VL] = {0};
		memcpy(t, x + j, (n - j) * sizeof(float));
		gelu_v(t);
		memcpy(x + j, t, (n - j) * sizeof(float));
	}
}

/* x[j] = e^(x[j] - max x); returns the sum (the caller divides). */
KERNEL static float softmax_exp(float *x, size_t n)
{
	vf vm = SPLAT(-INFINITY), vs = SPLAT(0.0f), v;
	float m = -INFINITY, s = 0.0f;
	size_t j = 0;

	for (; j + VL <= n; j += VL) {
		VLOAD(v, x + j);
		vm = VSEL(v > vm, v, vm);
	}
	for (int k = 0; k < VL; k++)
		m = fmaxf(m, vm[k]);
	for (; j < n; j++)
		m = fmaxf(m, x[j]);
	for (j = 0; j + VL <= n; j += VL) {
		VLOAD(v, x + j);
		v -= m;
		VSTORE(x + j, v);
		exp_v(x + j);
		VLOAD(v, x + j);
		vs += v;
	}
	for (int k = 0; k < VL; k++)
		s += vs[k];
	if (j < n) {
		float t[VL];
		for (size_t k = 0; k < VL; k++)
			t[k] = j + k < n ? x[j + k] - m : 0.0f;
		exp_v(t);
		for (size_t k = 0; j + k < n; k++) {
			x[j + k] = t[k];
			s += t[k];
		}
	}
	return s;
}

/* x[j] += y[j] */
static void vadd(float *x, const float *y, size_t n)
{
	for (size_t j = 0; j < n; j++)
		x[j] += y[j];
}

/* x = LayerNorm(x + bias) (bias may be NULL) with gain g and shift b. */
KERNEL static void layer_norm(float *x, const float *bias, const float *g, const float *b,
			      size_t n, float eps)
{
	vf acc = SPLAT(0.0f), v, w, u;
	float mean = 0.0f, var = 0.0f, rstd;
	size_t j;

	for (j = 0; j + VL <= n; j += VL) {
		VLOAD(v, x + j);
		if (bias) {
			VLOAD(w, bias + j);
			v += w;
			VSTORE(x + j, v);
		}
		acc += v;
	}
	for (int k = 0; k < VL; k++)
		mean += acc[k];
	for (; j < n; j++)
		mean += bias ? (x[j] += bias[j]) : x[j];
	mean /= (float)n;
	acc = SPLAT(0.0f);
	for (j = 0; j + VL <= n; j += VL) {
		VLOAD(v, x + j);
		v -= mean;
		acc += v * v;
	}
	for (int k = 0; k < VL; k++)
		var += acc[k];
	for (; j < n; j++)
		var += (x[j] - mean) * (x[j] - mean);
	var /= (float)n;
	rstd = 1.0f / sqrtf(var + eps);
	for (j = 0; j + VL <= n; j += VL) {
		VLOAD(v, x + j);
		VLOAD(w, g + j);
		VLOAD(u, b + j);
		v = (v - mean) * rstd * w + u;
		VSTORE(x + j, v);
	}
	for (; j < n; j++)
		x[j] = (x[j] - mean) * rstd * g[j] + b[j];
}

/* ------------------------------------------------------------ encoding */

/* A sequence in the sorted order. */
typedef struct seq_ref {
	size_t len, idx;
} seq_ref;

static int seq_cmp(const void *a, const void *b)
{
	const seq_ref *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Per-call scratch, sized for the largest batch. */
typedef struct scratch {
	float *x;   /* [rows, h]     the hidden state */
	float *qkv; /* [rows, 3h]    query | key | value */
	float *ctx; /* [rows, h]     attention output before its projection */
	float *ffn; /* [rows, inter] */
	float *s;   /* [QUERY_BLOCK, longest] attention scores */
} scratch;

/* Self-attention of one sequence of len rows starting at row r0. */
static void attend(const bert_config *c, const scratch *sc, size_t r0, size_t len)
{
	int h = c->hidden, d = h / c->heads, ld3 = 3 * h;
	float scale = 1.0f / sqrtf((float)d);

	for (int hd = 0; hd < c->heads; hd++) {
		const float *q = sc->qkv + r0 * (size_t)ld3 + (size_t)hd * (size_t)d;
		const float *k = q + h, *v = q + 2 * h;
		float *ctx = sc->ctx + r0 * (size_t)h + (size_t)hd * (size_t)d;

		for (size_t q0 = 0; q0 < len; q0 += QUERY_BLOCK) {
			size_t qn = len - q0 < QUERY_BLOCK ? len - q0 : QUERY_BLOCK;
			float sum[QUERY_BLOCK];

			/* s = scale q k^T: [qn, len] */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qn, (int)len, d,
				    scale, q + q0 * (size_t)ld3, ld3, k, ld3, 0.0f, sc->s, (int)len);
			/* softmax, but divided by the row sums only below: d divisions a
			 * row instead of len */
			for (size_t i = 0; i < qn; i++)
				sum[i] = softmax_exp(sc->s + i * len, len);
			/* ctx = s v: [qn, d] */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)qn, d, (int)len,
				    1.0f, sc->s, (int)len, v, ld3, 0.0f, ctx + q0 * (size_t)h, h);
			for (size_t i = 0; i < qn; i++) {
				float *row = ctx + (q0 + i) * (size_t)h, inv = 1.0f / sum[i];
				for (int j = 0; j < d; j++)
					row[j] *= inv;
			}
		}
	}
}

/* Run seqs b[0..nb) (rows stacked in that order, rows in all) through the
 * net and write their pooled, normalised rows to out. False when a row is
 * not finite: weights of absurd size (a fuzzed file) overflow float; no
 * real checkpoint comes near. */
static bool forward(const bert_net *net, const int32_t *const *seqs, const seq_ref *b,
		    size_t nb, size_t rows, const scratch *sc, bool cls_pool, float *out)
{
	const bert_config *c = &net->cfg;
	const float *w = net->w;
	size_t h = (size_t)c->hidden, in = (size_t)c->intermediate, r;
	float eps = (float)c->eps;

	/* embeddings */
	r = 0;
	for (size_t i = 0; i < nb; i++) {
		const int32_t *ids = seqs[b[i].idx];
		for (size_t t = 0; t < b[i].len; t++, r++) {
			float *x = sc->x + r * h;
			const float *we = w + net->word + (size_t)ids[t] * h;
			const float *pe = w + net->pos + t * h, *te = w + net->type;
			for (size_t j = 0; j < h; j++)
				x[j] = we[j] + pe[j] + te[j];
			layer_norm(x, NULL, w + net->ln_g, w + net->ln_b, h, eps);
		}
	}

	for (int li = 0; li < c->layers; li++) {
		const bert_layer *l = &net->layer[li];

		/* qkv = bqkv + x Wqkv^T (the biases copied in first, so that the
		 * sgemm adds to them: no pass to zero qkv, none to add them) */
		for (r = 0; r < rows; r++)
			memcpy(sc->qkv + r * 3 * h, w + l->bqkv, 3 * h * sizeof(float));
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)(3 * h),
			    (int)h, 1.0f, sc->x, (int)h, w + l->wqkv, (int)h, 1.0f, sc->qkv,
			    (int)(3 * h));
		r = 0;
		for (size_t i = 0; i < nb; i++) {
			attend(c, sc, r, b[i].len);
			r += b[i].len;
		}
		/* x = LN(x + ctx Wo^T + bo) */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)h, (int)h,
			    1.0f, sc->ctx, (int)h, w + l->wo, (int)h, 1.0f, sc->x, (int)h);
		for (r = 0; r < rows; r++)
			layer_norm(sc->x + r * h, w + l->bo, w + l->ln1_g, w + l->ln1_b, h, eps);
		/* ffn = GELU(bi + x Wi^T) */
		for (r = 0; r < rows; r++)
			memcpy(sc->ffn + r * in, w + l->bi, in * sizeof(float));
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)in, (int)h,
			    1.0f, sc->x, (int)h, w + l->wi, (int)h, 1.0f, sc->ffn, (int)in);
		gelu(sc->ffn, rows * in);
		/* x = LN(x + ffn Wo2^T + bo2) */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)h, (int)in,
			    1.0f, sc->ffn, (int)in, w + l->wo2, (int)in, 1.0f, sc->x, (int)h);
		for (r = 0; r < rows; r++)
			layer_norm(sc->x + r * h, w + l->bo2, w + l->ln2_g, w + l->ln2_b, h, eps);
	}

	/* pooling */
	r = 0;
	for (size_t i = 0; i < nb; i++) {
		float *o = out + b[i].idx * h, big = 0.0f, norm = 0.0f;
		const float *x = sc->x + r * h;

		if (cls_pool) {
			memcpy(o, x, h * sizeof(float));
		} else {
			memset(o, 0, h * sizeof(float));
			for (size_t t = 0; t < b[i].len; t++)
				vadd(o, x + t * h, h);
			for (size_t j = 0; j < h; j++)
				o[j] /= (float)b[i].len;
		}
		/* scaled by the largest first, so that the squares cannot overflow */
		for (size_t j = 0; j < h; j++) {
			if (!isfinite(o[j]))
				return false;
			big = fmaxf(big, fabsf(o[j]));
		}
		if (big > 0.0f) {
			for (size_t j = 0; j < h; j++) {
				o[j] /= big;
				norm += o[j] * o[j];
			}
			norm = sqrtf(norm);
			for (size_t j = 0; j < h; j++)
				o[j] /= norm;
		}
		r += b[i].len;
	}
	return true;
}

/* The end of the batch starting at order[b]: sequences while their rows
 * fit BATCH_ROWS (a longer sequence is a batch of its own). */
static size_t batch_end(const seq_ref *order, size_t n, size_t b, size_t *rows)
{
	size_t e = b;

	*rows = 0;
	while (e < n && (e == b || *rows + order[e].len <= BATCH_ROWS))
		*rows += order[e++].len;
	return e;
}

static float *scratch_part(float **top, size_t n)
{
	float *p = *top;

	*top += (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
	return p;
}

rag_rc bert_net_encode(const bert_net *net, const int32_t *const *seqs, const size_t *lens,
		       size_t n, bool cls_pool, float *out, rag_error *err)
{
	const bert_config *c = &net->cfg;
	size_t h = (size_t)c->hidden, in = (size_t)c->intermediate, rows_max = 0, longest = 0;
	size_t total, qb;
	seq_ref *order = NULL;
	float *mem = NULL, *top;
	scratch sc;
	rag_rc rc = RAG_OK;

	if (!n)
		return RAG_OK;
	if (!seqs || !lens || !out)
		return rag_error_set(err, RAG_EINVAL, "bert: no sequences or no output");
	for (size_t i = 0; i < n; i++) {
		if (!seqs[i] || lens[i] < 1 || lens[i] > (size_t)c->max_positions)
			return rag_error_set(err, RAG_EINVAL,
					     "bert: sequence %zu: length %zu, expected 1..%d", i,
					     seqs[i] ? lens[i] : 0, c->max_positions);
		for (size_t t = 0; t < lens[i]; t++)
			if (seqs[i][t] < 0 || seqs[i][t] >= c->vocab_size)
				return rag_error_set(err, RAG_EINVAL,
						     "bert: sequence %zu: token id %ld out of "
						     "range 0..%d",
						     i, (long)seqs[i][t], c->vocab_size - 1);
		if (lens[i] > longest)
			longest = lens[i];
	}

	order = malloc(n * sizeof(*order));
	if (!order) {
		rc = rag_error_set(err, RAG_ENOMEM, "bert: encoding %zu sequences: %s", n,
				   rag_rc_message(RAG_ENOMEM));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		order[i] = (seq_ref){lens[i], i};
	qsort(order, n, sizeof(*order), seq_cmp);
	for (size_t b = 0; b < n;) {
		size_t rows;
		b = batch_end(order, n, b, &rows);
		if (rows > rows_max)
			rows_max = rows;
	}

	/* rows_max <= max(BATCH_ROWS, max_positions), h <= 4096, in <= 65536:
	 * no overflow in size_t of 64 bits */
	qb = longest < QUERY_BLOCK ? longest : QUERY_BLOCK;
	total = 5 * ALIGN_FLOATS + rows_max * (h + 3 * h + h + in) + qb * longest;
	mem = aligned_alloc(ALIGN_FLOATS * sizeof(float),
			    (total + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS * sizeof(float));
	if (!mem) {
		rc = rag_error_set(err, RAG_ENOMEM, "bert: encoding %zu sequences: %s", n,
				   rag_rc_message(RAG_ENOMEM));
		goto out;
	}
	top = mem;
	sc.x = scratch_part(&top, rows_max * h);
	sc.qkv = scratch_part(&top, rows_max * 3 * h);
	sc.ctx = scratch_part(&top, rows_max * h);
	sc.ffn = scratch_part(&top, rows_max * in);
	sc.s = scratch_part(&top, qb * longest);

	for (size_t b = 0; b < n;) {
		size_t rows, e = batch_end(order, n, b, &rows);
		if (!forward(net, seqs, order + b, e - b, rows, &sc, cls_pool, out)) {
			rc = rag_error_set(err, RAG_ECORRUPT,
					   "bert: the weights overflow float: non-finite "
					   "activations");
			goto out;
		}
		b = e;
	}
out:
	free(mem);
	free(order);
	return rc;
}
