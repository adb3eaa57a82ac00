/*
 * test_bert_net — the BERT encoder (bert_net.c): config.json and
 * model.safetensors parsing, F16/BF16 conversion, the forward pass against
 * a naive reference, batching, and the rejection of every malformed input.
 *
 * The safetensors files are written here, byte by byte, for tiny nets with
 * weights drawn from a fixed seed. The weights are multiples of 1/128 (plus
 * a few F16-subnormal values), exact in F32, F16 and BF16 alike, so a net
 * stored in any of them must give bit-identical outputs.
 *
 * The reference (ref_encode) is written separately from bert_net.c:
 * straightforward loops in double precision, libm's erf, no BLAS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>

#include "bert.h"
#include "rag_buf.h"

#define FILE_MAX (64u << 20)
#define MAX_TENSORS 512

/* ---------------------------------------------------------- the tiny nets */

typedef struct tcfg {
	int vocab, hidden, layers, heads, inter, max_pos, types;
	double eps;
} tcfg;

static const tcfg CFG_A = {20, 8, 2, 2, 16, 16, 2, 1e-12};
/* odd sizes (every vector loop has a tail), query blocks and several batches */
static const tcfg CFG_B = {11, 6, 3, 3, 14, 300, 3, 1e-5};

typedef struct tensor {
	char name[128];
	int rank;
	uint64_t dim[2];
	float *v;
} tensor;

typedef struct tlayer {
	const float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo, *g1, *b1, *wi, *bi, *wo2, *bo2, *g2,
		*b2;
} tlayer;

typedef struct tnet {
	tcfg c;
	tensor t[MAX_TENSORS];
	size_t n;
	const float *word, *pos, *type, *eg, *eb;
	tlayer l[8];
} tnet;

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

enum { W_MATRIX, W_GAIN, W_BIAS };

/* A tensor of random values exact in F16 and BF16. */
static const float *add(tnet *tn, uint64_t *s, int kind, int rank, uint64_t d0, uint64_t d1,
			const char *fmt, ...)
{
	tensor *t = &tn->t[tn->n++];
	size_t n = (size_t)d0 * (rank == 2 ? (size_t)d1 : 1);
	va_list ap;

	assert_true(tn->n <= MAX_TENSORS);
	va_start(ap, fmt);
	vsnprintf(t->name, sizeof(t->name), fmt, ap);
	va_end(ap);
	t->rank = rank;
	t->dim[0] = d0;
	t->dim[1] = d1;
	t->v = malloc(n * sizeof(float));
	assert_non_null(t->v);
	for (size_t i = 0; i < n; i++) {
		int k = (int)(rng(s) % 129) - 64; /* -64..64 */
		switch (kind) {
		case W_MATRIX:
			t->v[i] = (float)k / 128.0f;
			/* now and then an F16 subnormal: 3 x 2^-20 */
			if (rng(s) % 37 == 0)
				t->v[i] = (k < 0 ? -3.0f : 3.0f) * ldexpf(1.0f, -20);
			break;
		case W_GAIN:
			t->v[i] = 1.0f + (float)(k / 2) / 128.0f;
			break;
		default:
			t->v[i] = (float)(k / 4) / 128.0f;
		}
	}
	return t->v;
}

static void make_net(tnet *tn, const tcfg *c, uint64_t seed)
{
	uint64_t s = seed;
	uint64_t h = (uint64_t)c->hidden, in = (uint64_t)c->inter;

	memset(tn, 0, sizeof(*tn));
	tn->c = *c;
	assert_true(c->layers <= 8);
	tn->word = add(tn, &s, W_MATRIX, 2, (uint64_t)c->vocab, h, "embeddings.word_embeddings.weight");
	tn->pos = add(tn, &s, W_MATRIX, 2, (uint64_t)c->max_pos, h,
		      "embeddings.position_embeddings.weight");
	tn->type = add(tn, &s, W_MATRIX, 2, (uint64_t)c->types, h,
		       "embeddings.token_type_embeddings.weight");
	tn->eg = add(tn, &s, W_GAIN, 1, h, 0, "embeddings.LayerNorm.weight");
	tn->eb = add(tn, &s, W_BIAS, 1, h, 0, "embeddings.LayerNorm.bias");
	for (int i = 0; i < c->layers; i++) {
		tlayer *l = &tn->l[i];
		const char *p = "encoder.layer";
		l->wq = add(tn, &s, W_MATRIX, 2, h, h, "%s.%d.attention.self.query.weight", p, i);
		l->bq = add(tn, &s, W_BIAS, 1, h, 0, "%s.%d.attention.self.query.bias", p, i);
		l->wk = add(tn, &s, W_MATRIX, 2, h, h, "%s.%d.attention.self.key.weight", p, i);
		l->bk = add(tn, &s, W_BIAS, 1, h, 0, "%s.%d.attention.self.key.bias", p, i);
		l->wv = add(tn, &s, W_MATRIX, 2, h, h, "%s.%d.attention.self.value.weight", p, i);
		l->bv = add(tn, &s, W_BIAS, 1, h, 0, "%s.%d.attention.self.value.bias", p, i);
		l->wo = add(tn, &s, W_MATRIX, 2, h, h, "%s.%d.attention.output.dense.weight", p, i);
		l->bo = add(tn, &s, W_BIAS, 1, h, 0, "%s.%d.attention.output.dense.bias", p, i);
		l->g1 = add(tn, &s, W_GAIN, 1, h, 0, "%s.%d.attention.output.LayerNorm.weight", p, i);
		l->b1 = add(tn, &s, W_BIAS, 1, h, 0, "%s.%d.attention.output.LayerNorm.bias", p, i);
		l->wi = add(tn, &s, W_MATRIX, 2, in, h, "%s.%d.intermediate.dense.weight", p, i);
		l->bi = add(tn, &s, W_BIAS, 1, in, 0, "%s.%d.intermediate.dense.bias", p, i);
		l->wo2 = add(tn, &s, W_MATRIX, 2, h, in, "%s.%d.output.dense.weight", p, i);
		l->bo2 = add(tn, &s, W_BIAS, 1, h, 0, "%s.%d.output.dense.bias", p, i);
		l->g2 = add(tn, &s, W_GAIN, 1, h, 0, "%s.%d.output.LayerNorm.weight", p, i);
		l->b2 = add(tn, &s, W_BIAS, 1, h, 0, "%s.%d.output.LayerNorm.bias", p, i);
	}
}

static void free_net(tnet *tn)
{
	for (size_t i = 0; i < tn->n; i++)
		free(tn->t[i].v);
}

static size_t numel(const tensor *t)
{
	return (size_t)t->dim[0] * (t->rank == 2 ? (size_t)t->dim[1] : 1);
}

/* ------------------------------------------------------------ config.json */

/* The config of c; extra (may be "") is spliced in after the required
 * fields; skip names a field to leave out. Caller frees. */
static char *config_json(const tcfg *c, const char *extra, const char *skip)
{
	rag_buf b;
	struct {
		const char *k;
		int v;
	} f[] = {{"vocab_size", c->vocab},
		 {"hidden_size", c->hidden},
		 {"num_hidden_layers", c->layers},
		 {"num_attention_heads", c->heads},
		 {"intermediate_size", c->inter},
		 {"max_position_embeddings", c->max_pos},
		 {"type_vocab_size", c->types}};

	rag_buf_init(&b, 1 << 16);
	assert_int_equal(rag_buf_puts(&b, "{\"model_type\": \"bert\""), RAG_OK);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (!skip || strcmp(skip, f[i].k))
			assert_int_equal(rag_buf_printf(&b, ", \"%s\": %d", f[i].k, f[i].v), RAG_OK);
	if (!skip || strcmp(skip, "layer_norm_eps"))
		assert_int_equal(rag_buf_printf(&b, ", \"layer_norm_eps\": %.17g", c->eps), RAG_OK);
	assert_int_equal(rag_buf_printf(&b, "%s%s}", *extra ? ", " : "", extra), RAG_OK);
	return rag_buf_detach(&b, NULL);
}

/* ------------------------------------------------------- safetensors files */

/* One header entry as it will be written; every field can be spoiled. */
typedef struct entry {
	char name[128];
	char dtype[16];
	char shape[64];         /* the JSON array, verbatim */
	unsigned char *bytes;   /* owned */
	size_t nbytes;
	char offsets[64];       /* "" : computed; else the JSON verbatim */
	bool raw;               /* the whole value is in raw_value */
	char raw_value[128];
} entry;

typedef struct stfile {
	entry e[MAX_TENSORS];
	size_t n;
	const char *metadata;   /* the "__metadata__" value, or NULL for none */
	size_t trailing;        /* extra zero bytes after the data */
} stfile;

static uint16_t to_half(float f) /* f is exact in F16 */
{
	uint32_t u, man;
	uint16_t sign;
	int ex;

	memcpy(&u, &f, 4);
	sign = (uint16_t)((u >> 16) & 0x8000);
	ex = (int)((u >> 23) & 0xff) - 127;
	man = u & 0x7fffff;
	if (!(u & 0x7fffffff))
		return sign;
	if (ex >= -14)
		return (uint16_t)(sign | (ex + 15) << 10 | man >> 13);
	return (uint16_t)(sign | (0x800000 | man) >> (13 + (-14 - ex)));
}

enum { ENC_F32, ENC_F16, ENC_BF16 };

static void encode_floats(entry *e, const float *v, size_t n, int enc)
{
	size_t sz = enc == ENC_F32 ? 4 : 2;

	e->nbytes = n * sz;
	e->bytes = malloc(e->nbytes ? e->nbytes : 1);
	assert_non_null(e->bytes);
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		if (enc == ENC_F16)
			u = to_half(v[i]);
		else if (enc == ENC_BF16)
			u >>= 16;
		for (size_t k = 0; k < sz; k++)
			e->bytes[i * sz + k] = (unsigned char)(u >> (8 * k));
	}
	snprintf(e->dtype, sizeof(e->dtype), "%s",
		 enc == ENC_F32 ? "F32" : enc == ENC_F16 ? "F16" : "BF16");
}

typedef struct st_opts {
	const char *prefix; /* "" or "bert." */
	bool gamma_beta;    /* LayerNorm.gamma/beta instead of weight/bias */
	int enc;            /* ENC_*, or -1: cycle through all three */
	bool extras;        /* position_ids (I64), pooler, metadata, an F64 */
} st_opts;

static entry *st_add(stfile *f)
{
	entry *e = &f->e[f->n++];

	assert_true(f->n <= MAX_TENSORS);
	memset(e, 0, sizeof(*e));
	return e;
}

static void st_from_net(stfile *f, const tnet *tn, const st_opts *o)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < tn->n; i++) {
		const tensor *t = &tn->t[i];
		entry *e = st_add(f);
		char name[128];
		size_t len;

		snprintf(name, sizeof(name), "%s", t->name);
		len = strlen(name);
		if (o->gamma_beta && len > 7 && !strcmp(name + len - 7, ".weight") &&
		    strstr(name, "LayerNorm"))
			snprintf(name + len - 7, sizeof(name) - (len - 7), ".gamma");
		else if (o->gamma_beta && len > 5 && !strcmp(name + len - 5, ".bias") &&
			 strstr(name, "LayerNorm"))
			snprintf(name + len - 5, sizeof(name) - (len - 5), ".beta");
		snprintf(e->name, sizeof(e->name), "%s%s", o->prefix ? o->prefix : "", name);
		if (t->rank == 2)
			snprintf(e->shape, sizeof(e->shape), "[%llu, %llu]",
				 (unsigned long long)t->dim[0], (unsigned long long)t->dim[1]);
		else
			snprintf(e->shape, sizeof(e->shape), "[%llu]",
				 (unsigned long long)t->dim[0]);
		encode_floats(e, t->v, numel(t), o->enc < 0 ? (int)(i % 3) : o->enc);
	}
	if (o->extras) {
		entry *e = st_add(f);
		size_t n = (size_t)tn->c.max_pos;
		snprintf(e->name, sizeof(e->name), "%sembeddings.position_ids", o->prefix);
		snprintf(e->dtype, sizeof(e->dtype), "I64");
		snprintf(e->shape, sizeof(e->shape), "[1, %zu]", n);
		e->nbytes = 8 * n;
		e->bytes = calloc(n, 8);
		assert_non_null(e->bytes);
		for (size_t i = 0; i < n; i++)
			e->bytes[8 * i] = (unsigned char)i;
		e = st_add(f);
		snprintf(e->name, sizeof(e->name), "%spooler.dense.weight", o->prefix);
		snprintf(e->shape, sizeof(e->shape), "[%d, %d]", tn->c.hidden, tn->c.hidden);
		encode_floats(e, tn->l[0].wq, (size_t)(tn->c.hidden * tn->c.hidden), ENC_F32);
		e = st_add(f);
		snprintf(e->name, sizeof(e->name), "cls.predictions.bias");
		snprintf(e->dtype, sizeof(e->dtype), "F64");
		snprintf(e->shape, sizeof(e->shape), "[3]");
		e->nbytes = 24;
		e->bytes = calloc(1, 24);
		assert_non_null(e->bytes);
		e = st_add(f); /* a dtype this reader does not know: skipped */
		snprintf(e->name, sizeof(e->name), "future.thing");
		snprintf(e->dtype, sizeof(e->dtype), "F8_E8M0");
		snprintf(e->shape, sizeof(e->shape), "[5]");
		e->nbytes = 5;
		e->bytes = calloc(1, 5);
		assert_non_null(e->bytes);
		f->metadata = "{\"format\": \"pt\"}";
	}
}

static void st_release(stfile *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->e[i].bytes);
	f->n = 0;
}

static entry *st_find(stfile *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->e[i].name, name))
			return &f->e[i];
	fail_msg("no entry \"%s\"", name);
	return &f->e[0]; /* not reached */
}

static void st_drop(stfile *f, const char *name)
{
	entry *e = st_find(f, name);

	free(e->bytes);
	*e = f->e[--f->n];
}

/* The bytes of the file (the header padded with spaces to 8 like the
 * safetensors library does). Caller frees. */
static char *st_bytes(const stfile *f, size_t *len)
{
	rag_buf hdr, out;
	uint64_t at = 0;
	bool first = true;
	unsigned char lenb[8];
	char *p;

	rag_buf_init(&hdr, FILE_MAX);
	rag_buf_init(&out, FILE_MAX);
	assert_int_equal(rag_buf_putc(&hdr, '{'), RAG_OK);
	if (f->metadata) {
		assert_int_equal(rag_buf_printf(&hdr, "\"__metadata__\": %s", f->metadata), RAG_OK);
		first = false;
	}
	for (size_t i = 0; i < f->n; i++) {
		const entry *e = &f->e[i];
		assert_int_equal(rag_buf_printf(&hdr, "%s\"%s\": ", first ? "" : ", ", e->name),
				 RAG_OK);
		first = false;
		if (e->raw)
			assert_int_equal(rag_buf_puts(&hdr, e->raw_value), RAG_OK);
		else if (e->offsets[0])
			assert_int_equal(rag_buf_printf(&hdr,
							"{\"dtype\": \"%s\", \"shape\": %s, "
							"\"data_offsets\": %s}",
							e->dtype, e->shape, e->offsets),
					 RAG_OK);
		else
			assert_int_equal(rag_buf_printf(&hdr,
							"{\"dtype\": \"%s\", \"shape\": %s, "
							"\"data_offsets\": [%llu, %llu]}",
							e->dtype, e->shape, (unsigned long long)at,
							(unsigned long long)(at + e->nbytes)),
					 RAG_OK);
		at += e->nbytes;
	}
	assert_int_equal(rag_buf_putc(&hdr, '}'), RAG_OK);
	while (hdr.len % 8)
		assert_int_equal(rag_buf_putc(&hdr, ' '), RAG_OK);
	for (int k = 0; k < 8; k++)
		lenb[k] = (unsigned char)((uint64_t)hdr.len >> (8 * k));
	assert_int_equal(rag_buf_append(&out, lenb, 8), RAG_OK);
	assert_int_equal(rag_buf_append(&out, hdr.data, hdr.len), RAG_OK);
	for (size_t i = 0; i < f->n; i++)
		if (f->e[i].nbytes)
			assert_int_equal(rag_buf_append(&out, f->e[i].bytes, f->e[i].nbytes),
					 RAG_OK);
	for (size_t i = 0; i < f->trailing; i++)
		assert_int_equal(rag_buf_putc(&out, 0), RAG_OK);
	rag_buf_release(&hdr);
	p = rag_buf_detach(&out, len);
	return p;
}

static bert_net *load_ok(const char *cfg, const char *st, size_t st_len)
{
	bert_net *net = NULL;
	rag_error err = {0};

	if (bert_net_load(cfg, strlen(cfg), st, st_len, &net, &err))
		fail_msg("load: %s", err.msg);
	assert_non_null(net);
	return net;
}

static bert_net *load_net(const tnet *tn, const st_opts *o)
{
	stfile f;
	size_t len;
	char *cfg = config_json(&tn->c, "\"hidden_act\": \"gelu\"", NULL), *st;
	bert_net *net;

	st_from_net(&f, tn, o);
	st = st_bytes(&f, &len);
	net = load_ok(cfg, st, len);
	free(st);
	free(cfg);
	st_release(&f);
	return net;
}

/* ------------------------------------------------------------ reference */

static void ref_layer_norm(double *x, const float *g, const float *b, int n, double eps)
{
	double mean = 0, var = 0;

	for (int j = 0; j < n; j++)
		mean += x[j];
	mean /= n;
	for (int j = 0; j < n; j++)
		var += (x[j] - mean) * (x[j] - mean);
	var /= n;
	for (int j = 0; j < n; j++)
		x[j] = (x[j] - mean) / sqrt(var + eps) * g[j] + b[j];
}

/* y[t][o] = b[o] + sum_i x[t][i] w[o][i] */
static void ref_linear(const double *x, int rows, int in, const float *w, const float *b,
		       int out, double *y)
{
	for (int t = 0; t < rows; t++)
		for (int o = 0; o < out; o++) {
			double s = b[o];
			for (int i = 0; i < in; i++)
				s += x[t * in + i] * w[o * in + i];
			y[t * out + o] = s;
		}
}

static void ref_encode(const tnet *tn, const int32_t *ids, int len, bool cls, double *out)
{
	const tcfg *c = &tn->c;
	int h = c->hidden, d = h / c->heads, in = c->inter;
	double *x = calloc((size_t)(len * h), sizeof(double));
	double *q = calloc((size_t)(len * h), sizeof(double));
	double *k = calloc((size_t)(len * h), sizeof(double));
	double *v = calloc((size_t)(len * h), sizeof(double));
	double *ctx = calloc((size_t)(len * h), sizeof(double));
	double *a = calloc((size_t)(len * h), sizeof(double));
	double *f = calloc((size_t)(len * in), sizeof(double));
	double *p = calloc((size_t)len, sizeof(double));
	double norm = 0;

	assert_true(x && q && k && v && ctx && a && f && p);
	for (int t = 0; t < len; t++) {
		for (int j = 0; j < h; j++)
			x[t * h + j] = (double)tn->word[ids[t] * h + j] + tn->pos[t * h + j] +
				       tn->type[j];
		ref_layer_norm(x + t * h, tn->eg, tn->eb, h, c->eps);
	}
	for (int li = 0; li < c->layers; li++) {
		const tlayer *l = &tn->l[li];
		ref_linear(x, len, h, l->wq, l->bq, h, q);
		ref_linear(x, len, h, l->wk, l->bk, h, k);
		ref_linear(x, len, h, l->wv, l->bv, h, v);
		for (int hd = 0; hd < c->heads; hd++)
			for (int t = 0; t < len; t++) {
				double mx = -INFINITY, sum = 0;
				for (int u = 0; u < len; u++) {
					double s = 0;
					for (int j = 0; j < d; j++)
						s += q[t * h + hd * d + j] * k[u * h + hd * d + j];
					p[u] = s / sqrt((double)d);
					if (p[u] > mx)
						mx = p[u];
				}
				for (int u = 0; u < len; u++) {
					p[u] = exp(p[u] - mx);
					sum += p[u];
				}
				for (int j = 0; j < d; j++) {
					double s = 0;
					for (int u = 0; u < len; u++)
						s += p[u] / sum * v[u * h + hd * d + j];
					ctx[t * h + hd * d + j] = s;
				}
			}
		ref_linear(ctx, len, h, l->wo, l->bo, h, a);
		for (int t = 0; t < len; t++) {
			for (int j = 0; j < h; j++)
				x[t * h + j] += a[t * h + j];
			ref_layer_norm(x + t * h, l->g1, l->b1, h, c->eps);
		}
		ref_linear(x, len, h, l->wi, l->bi, in, f);
		for (int i = 0; i < len * in; i++)
			f[i] = 0.5 * f[i] * (1.0 + erf(f[i] / sqrt(2.0)));
		ref_linear(f, len, in, l->wo2, l->bo2, h, a);
		for (int t = 0; t < len; t++) {
			for (int j = 0; j < h; j++)
				x[t * h + j] += a[t * h + j];
			ref_layer_norm(x + t * h, l->g2, l->b2, h, c->eps);
		}
	}
	for (int j = 0; j < h; j++) {
		double s = 0;
		if (cls)
			s = x[j];
		else {
			for (int t = 0; t < len; t++)
				s += x[t * h + j];
			s /= len;
		}
		out[j] = s;
		norm += s * s;
	}
	for (int j = 0; j < h; j++)
		out[j] /= sqrt(norm);
	free(x);
	free(q);
	free(k);
	free(v);
	free(ctx);
	free(a);
	free(f);
	free(p);
}

/* ------------------------------------------------------------ sequences */

typedef struct seqset {
	int32_t *ids[64];
	size_t len[64];
	size_t n;
} seqset;

static void make_seqs(seqset *ss, const tcfg *c, const size_t *lens, size_t n, uint64_t seed)
{
	uint64_t s = seed;

	assert_true(n <= 64);
	ss->n = n;
	for (size_t i = 0; i < n; i++) {
		ss->len[i] = lens[i];
		ss->ids[i] = malloc(lens[i] * sizeof(int32_t));
		assert_non_null(ss->ids[i]);
		for (size_t t = 0; t < lens[i]; t++)
			ss->ids[i][t] = (int32_t)(rng(&s) % (uint64_t)c->vocab);
	}
}

static void free_seqs(seqset *ss)
{
	for (size_t i = 0; i < ss->n; i++)
		free(ss->ids[i]);
}

static float *encode(const bert_net *net, const seqset *ss, bool cls)
{
	int h = bert_net_config(net)->hidden;
	float *out = malloc(ss->n * (size_t)h * sizeof(float));
	rag_error err = {0};

	assert_non_null(out);
	if (bert_net_encode(net, (const int32_t *const *)ss->ids, ss->len, ss->n, cls, out, &err))
		fail_msg("encode: %s", err.msg);
	return out;
}

/* ----------------------------------------------------------------- tests */

static void test_load_config(void **state)
{
	tnet tn;
	st_opts o = {"", false, ENC_F32, true};
	stfile f;
	size_t len;
	char *st, *cfg;
	bert_net *net;
	const bert_config *c;

	(void)state;
	make_net(&tn, &CFG_A, 1);
	net = load_net(&tn, &o);
	c = bert_net_config(net);
	assert_int_equal(c->vocab_size, 20);
	assert_int_equal(c->hidden, 8);
	assert_int_equal(c->layers, 2);
	assert_int_equal(c->heads, 2);
	assert_int_equal(c->intermediate, 16);
	assert_int_equal(c->max_positions, 16);
	assert_int_equal(c->type_vocab, 2);
	assert_true(c->eps == 1e-12);
	bert_net_free(net);
	bert_net_free(NULL);

	/* type_vocab_size and layer_norm_eps default to 2 and 1e-12; no
	 * hidden_act is Hugging Face's default, gelu */
	st_from_net(&f, &tn, &o);
	st = st_bytes(&f, &len);
	cfg = config_json(&tn.c, "\"layer_norm_eps\": 1e-12", "layer_norm_eps");
	net = load_ok(cfg, st, len);
	assert_true(bert_net_config(net)->eps == 1e-12);
	bert_net_free(net);
	free(cfg);
	cfg = config_json(&tn.c, "", "type_vocab_size");
	net = load_ok(cfg, st, len);
	assert_int_equal(bert_net_config(net)->type_vocab, 2);
	bert_net_free(net);
	free(cfg);
	free(st);
	st_release(&f);
	free_net(&tn);
}

static void check_against_reference(const tcfg *c, const size_t *lens, size_t n, uint64_t seed)
{
	tnet tn;
	st_opts o = {"", false, ENC_F32, false};
	seqset ss;
	bert_net *net;
	int h = c->hidden;
	double *ref = malloc((size_t)h * sizeof(double));

	assert_non_null(ref);
	make_net(&tn, c, seed);
	net = load_net(&tn, &o);
	make_seqs(&ss, c, lens, n, seed + 1);
	for (int cls = 0; cls < 2; cls++) {
		float *out = encode(net, &ss, cls);
		for (size_t i = 0; i < n; i++) {
			ref_encode(&tn, ss.ids[i], (int)ss.len[i], cls, ref);
			for (int j = 0; j < h; j++)
				if (fabs(out[i * (size_t)h + (size_t)j] - ref[j]) > 1e-5)
					fail_msg("cls %d, sequence %zu (length %zu), dim %d: %.8f, "
						 "reference %.8f",
						 cls, i, ss.len[i], j, out[i * (size_t)h + (size_t)j],
						 ref[j]);
		}
		free(out);
	}
	free(ref);
	free_seqs(&ss);
	bert_net_free(net);
	free_net(&tn);
}

static void test_reference_small(void **state)
{
	static const size_t lens[] = {1, 2, 3, 7, 16, 5, 16, 9};

	(void)state;
	check_against_reference(&CFG_A, lens, sizeof(lens) / sizeof(lens[0]), 7);
	check_against_reference(&CFG_A, lens, sizeof(lens) / sizeof(lens[0]), 8);
}

static void test_reference_odd_long(void **state)
{
	/* 300 > one query block of 256; 1+5+259+260+263+300+299+2 rows take
	 * more than one batch of 1024 */
	static const size_t lens[] = {1, 5, 259, 260, 263, 300, 299, 2};

	(void)state;
	check_against_reference(&CFG_B, lens, sizeof(lens) / sizeof(lens[0]), 11);
}

static void test_unit_norm_deterministic_batch_invariant(void **state)
{
	static const size_t lens[] = {16, 1, 4, 4, 9, 2, 16, 3, 12, 7};
	size_t n = sizeof(lens) / sizeof(lens[0]);
	tnet tn;
	st_opts o = {"", false, ENC_F32, false};
	seqset ss;
	bert_net *net;
	float *a, *b;
	int h = CFG_A.hidden;

	(void)state;
	make_net(&tn, &CFG_A, 3);
	net = load_net(&tn, &o);
	make_seqs(&ss, &CFG_A, lens, n, 4);
	for (int cls = 0; cls < 2; cls++) {
		a = encode(net, &ss, cls);
		b = encode(net, &ss, cls);
		assert_memory_equal(a, b, n * (size_t)h * sizeof(float));
		for (size_t i = 0; i < n; i++) {
			double s = 0;
			seqset one = {{ss.ids[i]}, {ss.len[i]}, 1};
			float *single = encode(net, &one, cls);
			for (int j = 0; j < h; j++) {
				s += (double)a[i * (size_t)h + (size_t)j] * a[i * (size_t)h + (size_t)j];
				assert_true(isfinite(a[i * (size_t)h + (size_t)j]));
				assert_true(fabsf(single[j] - a[i * (size_t)h + (size_t)j]) < 1e-6f);
			}
			assert_true(fabs(s - 1.0) < 1e-5);
			free(single);
		}
		free(a);
		free(b);
	}
	free_seqs(&ss);
	bert_net_free(net);
	free_net(&tn);
}

/* F16, BF16, a mix, the "bert." prefix and gamma/beta names all give the
 * same net; the extras (I64 position_ids, pooler, F64, an unknown dtype,
 * metadata) are skipped. */
static void test_dtypes_names_skipped(void **state)
{
	static const size_t lens[] = {16, 3, 1, 8};
	static const st_opts variants[] = {
		{"", false, ENC_F16, false},
		{"", false, ENC_BF16, false},
		{"bert.", true, -1, false},
		{"bert.", false, ENC_BF16, true},
		{"", true, ENC_F16, true},
	};
	st_opts o = {"", false, ENC_F32, false};
	size_t n = sizeof(lens) / sizeof(lens[0]);
	tnet tn;
	seqset ss;
	bert_net *net;
	float *want;
	size_t bytes = n * (size_t)CFG_A.hidden * sizeof(float);

	(void)state;
	make_net(&tn, &CFG_A, 5);
	make_seqs(&ss, &CFG_A, lens, n, 6);
	net = load_net(&tn, &o);
	want = encode(net, &ss, false);
	bert_net_free(net);
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		float *got;
		net = load_net(&tn, &variants[v]);
		got = encode(net, &ss, false);
		assert_memory_equal(got, want, bytes);
		free(got);
		bert_net_free(net);
	}
	free(want);
	free_seqs(&ss);
	free_net(&tn);
}

/* ------------------------------------------------------------ error cases */

typedef void (*spoil_fn)(stfile *f);

static void sp_shape(stfile *f)
{
	entry *e = st_find(f, "encoder.layer.0.attention.self.query.weight");
	snprintf(e->shape, sizeof(e->shape), "[8, 7]");
	e->nbytes = 8 * 7 * 4;
}
static void sp_missing(stfile *f)
{
	st_drop(f, "encoder.layer.1.output.dense.bias");
}
static void sp_size(stfile *f)
{
	st_find(f, "embeddings.LayerNorm.bias")->nbytes -= 4;
}
static void sp_dtype(stfile *f)
{
	snprintf(st_find(f, "embeddings.LayerNorm.bias")->dtype, 16, "I32");
}
static void sp_no_dtype(stfile *f)
{
	entry *e = st_find(f, "embeddings.LayerNorm.bias");
	e->raw = true;
	snprintf(e->raw_value, sizeof(e->raw_value),
		 "{\"shape\": [8], \"data_offsets\": [0, 32]}");
}
static void sp_range(stfile *f)
{
	snprintf(st_find(f, "embeddings.LayerNorm.bias")->offsets, 64, "[0, 99999999]");
}
static void sp_range_reversed(stfile *f)
{
	snprintf(st_find(f, "embeddings.LayerNorm.bias")->offsets, 64, "[32, 0]");
}
static void sp_negative_offset(stfile *f)
{
	snprintf(st_find(f, "embeddings.LayerNorm.bias")->offsets, 64, "[-32, 0]");
}
static void sp_three_offsets(stfile *f)
{
	snprintf(st_find(f, "embeddings.LayerNorm.bias")->offsets, 64, "[0, 32, 64]");
}
static void sp_huge_offsets(stfile *f)
{
	snprintf(st_find(f, "embeddings.LayerNorm.bias")->offsets, 64,
		 "[9223372036854775807, 9223372036854775807]");
}
static void sp_overlap(stfile *f)
{
	/* the first two tensors at [0, 32): the same bytes twice */
	snprintf(st_find(f, "embeddings.LayerNorm.bias")->offsets, 64, "[0, 32]");
}
static void sp_trailing(stfile *f)
{
	f->trailing = 8;
}
static void sp_negative_shape(stfile *f)
{
	snprintf(st_find(f, "embeddings.LayerNorm.bias")->shape, 64, "[-8]");
}
static void sp_string_shape(stfile *f)
{
	snprintf(st_find(f, "embeddings.LayerNorm.bias")->shape, 64, "[\"8\"]");
}
static void sp_shape_overflow(stfile *f)
{
	snprintf(st_find(f, "embeddings.LayerNorm.bias")->shape, 64,
		 "[4294967296, 4294967296, 4294967296]");
}
static void sp_not_object(stfile *f)
{
	entry *e = st_find(f, "embeddings.LayerNorm.bias");
	e->raw = true;
	snprintf(e->raw_value, sizeof(e->raw_value), "[1, 2]");
}
static void sp_twice(stfile *f)
{
	entry *e = st_add(f), *src = st_find(f, "embeddings.LayerNorm.bias");
	*e = *src;
	snprintf(e->name, sizeof(e->name), "bert.embeddings.LayerNorm.bias");
	e->bytes = malloc(e->nbytes);
	assert_non_null(e->bytes);
	memcpy(e->bytes, src->bytes, e->nbytes);
}
static void sp_twice_gamma(stfile *f)
{
	entry *e = st_add(f), *src = st_find(f, "encoder.layer.1.output.LayerNorm.weight");
	*e = *src;
	snprintf(e->name, sizeof(e->name), "encoder.layer.1.output.LayerNorm.gamma");
	e->bytes = malloc(e->nbytes);
	assert_non_null(e->bytes);
	memcpy(e->bytes, src->bytes, e->nbytes);
}
static void sp_nan(stfile *f)
{
	entry *e = st_find(f, "encoder.layer.1.intermediate.dense.weight");
	float nan = NAN;
	memcpy(e->bytes + 4 * 5, &nan, 4);
}
static void sp_f16_inf(stfile *f)
{
	entry *e = st_find(f, "embeddings.LayerNorm.weight");
	free(e->bytes);
	e->bytes = calloc(8, 2);
	assert_non_null(e->bytes);
	e->nbytes = 16;
	e->bytes[7] = 0x7c; /* element 3: +inf */
	snprintf(e->dtype, sizeof(e->dtype), "F16");
}
static void sp_metadata(stfile *f)
{
	f->metadata = "\"pt\"";
}
static void sp_dup_key(stfile *f)
{
	entry *e = st_find(f, "embeddings.LayerNorm.bias");
	e->raw = true;
	snprintf(e->raw_value, sizeof(e->raw_value),
		 "{\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [8], "
		 "\"data_offsets\": [0, 32]}");
}

static const struct st_case {
	const char *what;
	spoil_fn spoil;
	const char *msg; /* a substring of the error */
} st_cases[] = {
	{"wrong shape", sp_shape,
	 "model.safetensors: tensor \"encoder.layer.0.attention.self.query.weight\": shape "
	 "[8, 7], expected [8, 8]"},
	{"missing tensor", sp_missing,
	 "model.safetensors: missing tensor \"encoder.layer.1.output.dense.bias\""},
	{"size mismatch", sp_size,
	 "model.safetensors: tensor \"embeddings.LayerNorm.bias\": data_offsets"},
	{"bad dtype", sp_dtype,
	 "model.safetensors: tensor \"embeddings.LayerNorm.bias\": dtype \"I32\", expected F32, "
	 "F16 or BF16"},
	{"no dtype", sp_no_dtype, "tensor \"embeddings.LayerNorm.bias\": no \"dtype\""},
	{"offsets out of range", sp_range, "outside the data section"},
	{"offsets reversed", sp_range_reversed, "outside the data section"},
	{"negative offset", sp_negative_offset, "\"data_offsets\" is not two offsets"},
	{"three offsets", sp_three_offsets, "\"data_offsets\" is not two offsets"},
	{"huge offsets", sp_huge_offsets, "outside the data section"},
	{"overlap", sp_overlap, "a gap or an overlap"},
	{"trailing bytes", sp_trailing, "model.safetensors: the tensors end at byte"},
	{"negative shape", sp_negative_shape, "\"shape\" holds a value that is not a size"},
	{"string shape", sp_string_shape, "\"shape\" holds a value that is not a size"},
	{"shape overflow", sp_shape_overflow, "shape overflows"},
	{"entry not an object", sp_not_object, "\"embeddings.LayerNorm.bias\": not a JSON object"},
	{"tensor twice", sp_twice,
	 "tensor \"embeddings.LayerNorm.bias\" twice, as \"embeddings.LayerNorm.bias\" and "
	 "\"bert.embeddings.LayerNorm.bias\""},
	{"weight and gamma", sp_twice_gamma,
	 "tensor \"encoder.layer.1.output.LayerNorm.weight\" twice"},
	{"nan", sp_nan,
	 "tensor \"encoder.layer.1.intermediate.dense.weight\": element 5 is not finite"},
	{"f16 inf", sp_f16_inf, "tensor \"embeddings.LayerNorm.weight\": element 3 is not finite"},
	{"metadata", sp_metadata, "\"__metadata__\" is not a JSON object"},
	{"duplicate key", sp_dup_key, "model.safetensors: header: invalid JSON: duplicate"},
};

static void expect_corrupt(const char *cfg, const char *st, size_t len, const char *what,
			   const char *msg)
{
	bert_net *net = (bert_net *)&net; /* must be reset to NULL */
	rag_error err = {0};
	rag_rc rc = bert_net_load(cfg, strlen(cfg), st, len, &net, &err);

	if (rc != RAG_ECORRUPT || !strstr(err.msg, msg))
		fail_msg("%s: rc %s, \"%s\"; expected CORRUPT, \"%s\"", what, rag_rc_name(rc),
			 err.msg, msg);
	assert_int_equal(err.rc, RAG_ECORRUPT);
	assert_null(net);
}

static void test_safetensors_errors(void **state)
{
	tnet tn;
	st_opts o = {"", false, ENC_F32, false};
	char *cfg, *st;
	size_t len;
	stfile f;

	(void)state;
	make_net(&tn, &CFG_A, 9);
	cfg = config_json(&tn.c, "", NULL);
	for (size_t i = 0; i < sizeof(st_cases) / sizeof(st_cases[0]); i++) {
		st_from_net(&f, &tn, &o);
		st_cases[i].spoil(&f);
		st = st_bytes(&f, &len);
		expect_corrupt(cfg, st, len, st_cases[i].what, st_cases[i].msg);
		free(st);
		st_release(&f);
	}

	/* the framing */
	st_from_net(&f, &tn, &o);
	st = st_bytes(&f, &len);
	expect_corrupt(cfg, st, 5, "5 bytes", "model.safetensors: truncated: 5 bytes");
	expect_corrupt(cfg, NULL, 0, "no file", "model.safetensors: truncated: 0 bytes");
	{
		char *p = malloc(len);
		uint64_t hl;
		assert_non_null(p);
		memcpy(p, st, len);
		hl = (uint64_t)(len - 8 + 1);
		for (int k = 0; k < 8; k++)
			p[k] = (char)(hl >> (8 * k));
		expect_corrupt(cfg, p, len, "header past the end",
			       "model.safetensors: truncated: header says");
		memset(p, 0xff, 8);
		expect_corrupt(cfg, p, len, "header length 2^64 - 1",
			       "model.safetensors: truncated: header says 18446744073709551615");
		memcpy(p, st, len);
		hl = 0;
		for (int k = 0; k < 8; k++)
			hl |= (uint64_t)(unsigned char)p[k] << (8 * k);
		/* the file cut inside the data section */
		expect_corrupt(cfg, p, len - 4, "cut data", "outside the data section");
		/* bad JSON: a byte of the header's opening changed */
		p[8] = 'x';
		expect_corrupt(cfg, p, len, "bad JSON", "model.safetensors: header: invalid JSON");
		/* a JSON array for a header */
		memset(p + 8, ' ', hl);
		p[8] = '[';
		p[9] = ']';
		expect_corrupt(cfg, p, len, "array header",
			       "model.safetensors: header is not a JSON object");
		/* an empty object: the first needed tensor is missing */
		p[8] = '{';
		p[9] = '}';
		expect_corrupt(cfg, p, 8 + hl, "empty header",
			       "missing tensor \"embeddings.word_embeddings.weight\"");
		/* zero-length header */
		memset(p, 0, 8);
		expect_corrupt(cfg, p, len, "zero-length header",
			       "model.safetensors: header: invalid JSON");
		free(p);
	}
	free(st);
	st_release(&f);
	free(cfg);
	free_net(&tn);
}

static const struct cfg_case {
	const char *extra;
	const char *skip;
	const char *msg;
} cfg_cases[] = {
	{"\"hidden_act\": \"relu\"", NULL,
	 "config.json: field \"hidden_act\": \"relu\", expected \"gelu\""},
	{"\"hidden_act\": \"gelu_new\"", NULL, "field \"hidden_act\""},
	{"\"hidden_act\": 1", NULL, "config.json: field \"hidden_act\": expected a string"},
	{"\"position_embedding_type\": \"relative_key\"", NULL,
	 "config.json: field \"position_embedding_type\""},
	{"", "vocab_size", "config.json: field \"vocab_size\": missing"},
	{"", "num_hidden_layers", "config.json: field \"num_hidden_layers\": missing"},
	{"\"hidden_size\": \"8\"", "hidden_size",
	 "config.json: field \"hidden_size\": expected an integer"},
	{"\"hidden_size\": 8.0", "hidden_size",
	 "config.json: field \"hidden_size\": expected an integer"},
	{"\"hidden_size\": 4097", "hidden_size",
	 "config.json: field \"hidden_size\": 4097 out of range 1..4096"},
	{"\"hidden_size\": -8", "hidden_size", "field \"hidden_size\": -8 out of range"},
	{"\"num_hidden_layers\": 0", "num_hidden_layers",
	 "field \"num_hidden_layers\": 0 out of range 1..64"},
	{"\"num_hidden_layers\": 65", "num_hidden_layers", "field \"num_hidden_layers\": 65"},
	{"\"vocab_size\": 1000001", "vocab_size", "field \"vocab_size\": 1000001 out of range"},
	{"\"max_position_embeddings\": 8193", "max_position_embeddings",
	 "field \"max_position_embeddings\": 8193 out of range"},
	{"\"intermediate_size\": 0", "intermediate_size", "field \"intermediate_size\": 0"},
	{"\"type_vocab_size\": 0", "type_vocab_size", "field \"type_vocab_size\": 0"},
	{"\"num_attention_heads\": 3", "num_attention_heads",
	 "config.json: field \"num_attention_heads\": 3 does not divide \"hidden_size\" 8"},
	{"\"num_attention_heads\": 99999999999", "num_attention_heads",
	 "field \"num_attention_heads\": 99999999999 out of range"},
	{"\"layer_norm_eps\": -1", "layer_norm_eps", "field \"layer_norm_eps\": -1 out of range"},
	{"\"layer_norm_eps\": 0", "layer_norm_eps", "field \"layer_norm_eps\": 0 out of range"},
	{"\"layer_norm_eps\": \"x\"", "layer_norm_eps",
	 "field \"layer_norm_eps\": expected a number"},
	{"\"vocab_size\": 20", NULL, "config.json: invalid JSON: duplicate object key"},
};

static void test_config_errors(void **state)
{
	tnet tn;
	st_opts o = {"", false, ENC_F32, false};
	char *st, *cfg;
	size_t len;
	stfile f;
	static const char *const bad_json[] = {"", "{", "[1]", "{\"vocab_size\": 20,}", "null"};

	(void)state;
	make_net(&tn, &CFG_A, 10);
	st_from_net(&f, &tn, &o);
	st = st_bytes(&f, &len);
	for (size_t i = 0; i < sizeof(cfg_cases) / sizeof(cfg_cases[0]); i++) {
		cfg = config_json(&tn.c, cfg_cases[i].extra, cfg_cases[i].skip);
		expect_corrupt(cfg, st, len, cfg, cfg_cases[i].msg);
		free(cfg);
	}
	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++)
		expect_corrupt(bad_json[i], st, len, bad_json[i], "config.json: ");
	expect_corrupt("[1]", st, len, "array", "config.json: not a JSON object");
	{
		bert_net *net = NULL;
		rag_error err = {0};
		assert_int_equal(bert_net_load(NULL, 0, st, len, &net, &err), RAG_ECORRUPT);
		assert_non_null(strstr(err.msg, "config.json: invalid JSON"));
		assert_null(net);
	}
	free(st);
	st_release(&f);
	free_net(&tn);
}

static void test_encode_errors(void **state)
{
	tnet tn;
	st_opts o = {"", false, ENC_F32, false};
	bert_net *net;
	int32_t ok[3] = {1, 2, 3}, bad_hi[2] = {1, 20}, bad_lo[2] = {-1, 2}, longer[17] = {0};
	const int32_t *seqs[2] = {ok, NULL};
	size_t lens[2] = {3, 0};
	float out[16];
	rag_error err = {0};

	(void)state;
	make_net(&tn, &CFG_A, 12);
	net = load_net(&tn, &o);
	assert_int_equal(bert_net_encode(net, seqs, lens, 0, false, NULL, &err), RAG_OK);
	seqs[1] = bad_hi;
	lens[1] = 2;
	assert_int_equal(bert_net_encode(net, seqs, lens, 2, false, out, &err), RAG_EINVAL);
	assert_non_null(strstr(err.msg, "sequence 1: token id 20 out of range 0..19"));
	seqs[1] = bad_lo;
	assert_int_equal(bert_net_encode(net, seqs, lens, 2, false, out, &err), RAG_EINVAL);
	assert_non_null(strstr(err.msg, "token id -1"));
	seqs[1] = ok;
	lens[1] = 0;
	assert_int_equal(bert_net_encode(net, seqs, lens, 2, false, out, &err), RAG_EINVAL);
	assert_non_null(strstr(err.msg, "sequence 1: length 0, expected 1..16"));
	seqs[1] = longer;
	lens[1] = 17;
	assert_int_equal(bert_net_encode(net, seqs, lens, 2, false, out, &err), RAG_EINVAL);
	assert_non_null(strstr(err.msg, "length 17"));
	lens[1] = 16;
	assert_int_equal(bert_net_encode(net, seqs, lens, 2, true, out, &err), RAG_OK);
	bert_net_free(net);
	free_net(&tn);
}

/* Weights of absurd size: activations that overflow float are an error;
 * large but finite outputs still come out unit length. */
static void test_overflow(void **state)
{
	static const size_t lens[] = {5, 16};
	tnet tn;
	st_opts o = {"", false, ENC_F32, false};
	seqset ss;
	bert_net *net;
	float out[2 * 8];
	rag_error err = {0};

	(void)state;
	make_net(&tn, &CFG_A, 16);
	make_seqs(&ss, &CFG_A, lens, 2, 17);
	for (size_t i = 0; i < tn.n; i++)
		if (!strcmp(tn.t[i].name, "encoder.layer.1.output.LayerNorm.weight"))
			for (size_t k = 0; k < numel(&tn.t[i]); k++)
				tn.t[i].v[k] *= 1e37f;
	net = load_net(&tn, &o);
	for (int cls = 0; cls < 2; cls++) {
		assert_int_equal(bert_net_encode(net, (const int32_t *const *)ss.ids, ss.len, 2, cls,
						 out, &err),
				 RAG_OK);
		for (int r = 0; r < 2; r++) {
			double n2 = 0;
			for (int j = 0; j < 8; j++)
				n2 += (double)out[r * 8 + j] * out[r * 8 + j];
			assert_true(fabs(n2 - 1.0) < 1e-5);
		}
	}
	bert_net_free(net);
	for (size_t i = 0; i < tn.n; i++)
		if (strstr(tn.t[i].name, "encoder.layer.0.") && strstr(tn.t[i].name, "dense.weight"))
			for (size_t k = 0; k < numel(&tn.t[i]); k++)
				tn.t[i].v[k] *= 1e30f;
	net = load_net(&tn, &o);
	assert_int_equal(bert_net_encode(net, (const int32_t *const *)ss.ids, ss.len, 2, false, out,
					 &err),
			 RAG_ECORRUPT);
	assert_non_null(strstr(err.msg, "non-finite"));
	bert_net_free(net);
	free_seqs(&ss);
	free_net(&tn);
}

/* Every cut of the file and a changed byte at every header position: an
 * error or a working net, never a crash (the sanitizer build checks). */
static void test_malformed_never_crash(void **state)
{
	tnet tn;
	st_opts o = {"bert.", true, -1, true};
	char *cfg, *st, *p;
	size_t len, hl = 0;
	stfile f;
	int32_t ids[4] = {1, 2, 3, 4};
	const int32_t *seqs[1] = {ids};
	size_t lens[1] = {4};
	float out[8];
	static const char flips[] = {'x', '9', '"'};
	size_t loaded = 0;

	(void)state;
	make_net(&tn, &CFG_A, 13);
	cfg = config_json(&tn.c, "", NULL);
	st_from_net(&f, &tn, &o);
	st = st_bytes(&f, &len);
	for (int k = 0; k < 8; k++)
		hl |= (size_t)(unsigned char)st[k] << (8 * k);
	p = malloc(len);
	assert_non_null(p);
	for (size_t cut = 0; cut < len; cut += cut < 8 + hl + 64 ? 1 : 61) {
		bert_net *net = NULL;
		rag_error err = {0};
		memcpy(p, st, cut); /* a copy of just cut bytes, so ASan sees overreads */
		assert_int_equal(bert_net_load(cfg, strlen(cfg), p, cut, &net, &err),
				 RAG_ECORRUPT);
		assert_null(net);
	}
	for (size_t at = 0; at < 8 + hl; at++)
		for (size_t k = 0; k < sizeof(flips); k++) {
			bert_net *net = NULL;
			rag_error err = {0};
			rag_rc rc;
			if (st[at] == flips[k])
				continue;
			memcpy(p, st, len);
			p[at] = flips[k];
			rc = bert_net_load(cfg, strlen(cfg), p, len, &net, &err);
			if (rc == RAG_OK) {
				loaded++;
				assert_int_equal(bert_net_encode(net, seqs, lens, 1, false, out,
								 &err),
						 RAG_OK);
				bert_net_free(net);
			} else {
				assert_int_equal(rc, RAG_ECORRUPT);
				assert_null(net);
				assert_true(strlen(err.msg) > 0);
			}
		}
	assert_true(loaded > 0); /* e.g. a changed byte of the padding or metadata */
	free(p);
	free(st);
	st_release(&f);
	free(cfg);
	free_net(&tn);
}

typedef struct job {
	const bert_net *net;
	const seqset *ss;
	float *out;
} job;

static void *encode_thread(void *arg)
{
	job *j = arg;
	rag_error err = {0};
	int h = bert_net_config(j->net)->hidden;

	j->out = malloc(j->ss->n * (size_t)h * sizeof(float));
	if (!j->out)
		return arg;
	for (int rep = 0; rep < 20; rep++)
		if (bert_net_encode(j->net, (const int32_t *const *)j->ss->ids, j->ss->len, j->ss->n,
				    false, j->out, &err))
			return arg;
	return NULL;
}

static void test_concurrent(void **state)
{
	static const size_t lens[] = {40, 7, 100, 1, 33, 64};
	size_t n = sizeof(lens) / sizeof(lens[0]);
	tnet tn;
	st_opts o = {"", false, ENC_F32, false};
	seqset ss;
	bert_net *net;
	float *want;
	pthread_t th[4];
	job jobs[4];

	(void)state;
	make_net(&tn, &CFG_B, 14);
	net = load_net(&tn, &o);
	make_seqs(&ss, &CFG_B, lens, n, 15);
	want = encode(net, &ss, false);
	for (int i = 0; i < 4; i++) {
		jobs[i] = (job){net, &ss, NULL};
		assert_int_equal(pthread_create(&th[i], NULL, encode_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
		for (size_t k = 0; k < n * (size_t)CFG_B.hidden; k++)
			assert_true(fabsf(jobs[i].out[k] - want[k]) < 1e-6f);
		free(jobs[i].out);
	}
	free(want);
	free_seqs(&ss);
	bert_net_free(net);
	free_net(&tn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_config),
		cmocka_unit_test(test_reference_small),
		cmocka_unit_test(test_reference_odd_long),
		cmocka_unit_test(test_unit_norm_deterministic_batch_invariant),
		cmocka_unit_test(test_dtypes_names_skipped),
		cmocka_unit_test(test_safetensors_errors),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_malformed_never_crash),
		cmocka_unit_test(test_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
