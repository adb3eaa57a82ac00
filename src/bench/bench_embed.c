/*
 * bench embed — the embedder's side of the ingestion benchmark
 * (bench/ingest.sh, bench/embed.sh): an embedder alone on one core, the
 * model of the configured index's newest version, or one in a local
 * directory (--model-dir: a Hugging Face directory; no S3 then), over texts
 * of about --tokens tokens each, embedded on one pinned thread with
 * OpenBLAS single-threaded, tokenization included. Texts come from --texts
 * FILE, the index's chunks, or (with --model-dir) are generated from a
 * built-in word list. A model with a token limit (BERT) has them cut by its
 * own tokenizer, special tokens included; one without (LSA) by the
 * chunker's count, as chunks are sized.
 *
 * One "key: value" result line per figure, for scripts; --json prints one
 * JSON object instead.
 */
#include <cblas.h>
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "chunk.h"
#include "bench_int.h"
#include "commit.h"
#include "embed.h"
#include "manifest.h"
#include "modelobj.h"
#include "rag_util.h"
#include "s3.h"
#include "segment.h"

static const char embed_usage[] =
	"usage: ragmap bench embed [--model-dir DIR] [--texts FILE] [--tokens N] [--count N]\n"
	"                          [--json] [--dump-texts FILE] [--config FILE]\n"
	"  Embed N texts of about --tokens tokens (default 256) on one core and print\n"
	"  chunks/s, tokenization included. The model: the configured index's newest\n"
	"  version's, or with --model-dir the one in DIR (no S3 request then).\n"
	"  The texts: --texts FILE (a JSON array of strings, or a text file), else\n"
	"  the index's chunks, else (--model-dir) generated English-like texts from a\n"
	"  built-in word list; cut to length at word ends, by the model's tokenizer\n"
	"  when it has a token limit (BERT: wordpieces plus [CLS] and [SEP]; capped at\n"
	"  the limit), else by the chunker's count. --count: default 200 for a model\n"
	"  with a token limit, else 20000 (cycling over the distinct texts).\n"
	"  --dump-texts FILE: the N texts embedded, in order, as a JSON array.\n"
	"  --json: one object (model, kind, dims, threads, tokens_per_text, texts,\n"
	"  seconds, chunks_per_s_per_core, peak_rss_mb, ...).\n";

typedef struct texts {
	char **a;
	size_t *lens;
	size_t n, cap;
} texts;

static void texts_release(texts *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->a[i]);
	free(t->a);
	free(t->lens);
}

static rag_rc texts_add(texts *t, const char *s, size_t len)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		char **a = realloc(t->a, cap * sizeof(*a));
		size_t *l = a ? realloc(t->lens, cap * sizeof(*l)) : NULL;
		if (a)
			t->a = a;
		if (!a || !l)
			return RAG_ENOMEM;
		t->lens = l;
		t->cap = cap;
	}
	if (!(t->a[t->n] = rag_strndup(s, len)))
		return RAG_ENOMEM;
	t->lens[t->n++] = len;
	return RAG_OK;
}

/* The newest manifest of the configured index, its model and up to max chunk texts
 * (none for max 0). */
static rag_rc load_index(s3_client *c, const rag_config *cfg, size_t max, manifest *m,
			 embedder **model, texts *t, rag_error *err)
{
	char root[1024];
	commit_head head;
	rag_buf b;
	rag_rc rc;

	rag_buf_init(&b, (size_t)4 << 30);
	if (mf_index_root(cfg->index.prefix, cfg->index.name, root, sizeof(root))) {
		rc = rag_error_set(err, RAG_ECONFIG, "index.prefix/index.name too long");
		goto out;
	}
	if ((rc = commit_read_newest(c, S3_OP("bench.embed", NULL), root, &head, m, err)))
		goto out;
	if (head.version == 0) {
		rc = rag_error_set(err, RAG_ENOTFOUND, "bench embed: index \"%s\" has no version yet "
				   "(run ragmap ingest first)", cfg->index.name);
		goto out;
	}
	rag_buf_reset(&b);
	if ((rc = modelobj_open(c, S3_OP("bench.embed", NULL), m->model.key, model, err)))
		goto out;
	for (size_t s = 0; s < m->nsegments && t->n < max; s++) {
		const char *p, *end;
		rag_buf_reset(&b);
		if ((rc = s3_get(c, S3_OP("bench.embed", NULL), m->segments[s].obj[MF_CHUNKS].key,
				 &b, NULL, err)))
			goto out;
		/* records back to back: header line, then len bytes of text */
		for (p = b.data, end = b.data + b.len; p < end && t->n < max;) {
			seg_record rec;
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t hlen, tlen;
			if (!nl)
				break;
			hlen = (size_t)(nl + 1 - p);
			/* parse the header alone (text_len 0) to learn len */
			if (segment_parse_record(p, hlen, &rec, err)) {
				rc = err ? err->rc : RAG_ECORRUPT;
				goto out;
			}
			tlen = (size_t)rec.len;
			seg_record_release(&rec);
			if (tlen > (size_t)(end - nl - 1)) {
				rc = rag_error_set(err, RAG_ECORRUPT, "bench embed: truncated chunks.bin");
				goto out;
			}
			if ((rc = texts_add(t, nl + 1, tlen))) {
				rag_error_set(err, rc, "out of memory");
				goto out;
			}
			p = nl + 1 + tlen;
		}
	}
	if (max && t->n == 0)
		rc = rag_error_set(err, RAG_EINVAL, "bench embed: the index has no chunks");
out:
	rag_buf_release(&b);
	return rc;
}

/*
 * How a text's length is counted when texts are cut:
 *   CHUNKER  chunk_count_tokens(), what chunks are sized by: for a model
 *            without a token limit (LSA), whose own count (non-stopword
 *            words) says little about a chunk's size;
 *   MODEL    the model's own tokenizer (BERT: wordpieces), through
 *            embedder_embed()'s stats, plus the tokens it adds to every
 *            text ([CLS] and [SEP]): what its sequence length is;
 *   WORDS    whitespace-separated words (a model count estimated with a
 *            calibrated pieces-per-word ratio).
 */
typedef enum { COUNT_CHUNKER, COUNT_MODEL, COUNT_WORDS } count_by;

static int count_words(const char *p, size_t len)
{
	const char *end = p + len;
	int n = 0;

	while (p < end) {
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p < end)
			n++;
		while (p < end && !isspace((unsigned char)*p))
			p++;
	}
	return n;
}

/*
 * Up to max texts of about target tokens (by CHUNKER or WORDS), cut at word
 * ends from the source texts read one after the other (a text may span two
 * sources): the index's own chunks are shorter on average (sections end
 * early), and the rate is stated for chunks of a given length. A last,
 * shorter piece is dropped unless it is the only one.
 */
static rag_rc cut_texts(const texts *in, count_by by, int target, size_t max, texts *out)
{
	rag_buf acc;
	int have = 0;
	rag_rc rc = RAG_OK;

	rag_buf_init(&acc, (size_t)1 << 24);
	for (size_t i = 0; i < in->n && !rc && out->n < max; i++) {
		const char *p = in->a[i], *end = p + in->lens[i];
		while (p < end && !rc && out->n < max) {
			const char *w = p;
			int t;
			while (w < end && !isspace((unsigned char)*w))
				w++;
			while (w < end && isspace((unsigned char)*w))
				w++;
			t = by == COUNT_WORDS ? count_words(p, (size_t)(w - p))
					      : chunk_count_tokens(p, (size_t)(w - p));
			if (have && have + t > target) {
				rc = texts_add(out, acc.data, acc.len);
				rag_buf_reset(&acc);
				have = 0;
			}
			if (!rc)
				rc = rag_buf_append(&acc, p, (size_t)(w - p));
			have += t;
			p = w;
		}
		if (!rc)
			rc = rag_buf_putc(&acc, '\n');
	}
	if (!rc && out->n == 0 && have > 0) /* all there is */
		rc = texts_add(out, acc.data, acc.len);
	rag_buf_release(&acc);
	return rc;
}

/* The model's stats for one text (row: embedder_dims() floats of scratch). */
static rag_rc model_count(const embedder *e, const char *s, size_t len, float *row,
			  embed_stats *st, rag_error *err)
{
	memset(st, 0, sizeof(*st));
	return embedder_embed(e, &s, &len, 1, row, st, err);
}

/*
 * The tokens a model adds to every text ([CLS] and [SEP] for BERT): its
 * limit minus what it counts in a text cut at that limit. 0 for a model
 * without a limit.
 */
static rag_rc model_overhead(const embedder *e, float *row, int *out, rag_error *err)
{
	size_t max = embedder_max_tokens(e);
	embed_stats st;
	rag_buf b;
	rag_rc rc = RAG_OK;

	*out = 0;
	if (max == 0)
		return RAG_OK;
	rag_buf_init(&b, (size_t)64 << 20);
	for (size_t i = 0; i < 2 * max + 8 && !rc; i++)
		rc = rag_buf_puts(&b, "the ");
	if (rc)
		rc = rag_error_set(err, rc, "out of memory");
	else if (!(rc = model_count(e, b.data, b.len, row, &st, err)) && st.truncated &&
		 st.tokens <= max)
		*out = (int)(max - st.tokens);
	rag_buf_release(&b);
	return rc;
}

/*
 * The words of the generated texts: common English words and a few long
 * ones that a subword vocabulary splits (as real prose has them).
 */
static const char *const gen_words[] = {
	"the", "of", "and", "to", "a", "in", "is", "was", "he", "for", "it", "with", "as", "his",
	"on", "be", "at", "by", "this", "had", "not", "are", "but", "from", "or", "have", "an",
	"they", "which", "one", "you", "were", "her", "all", "she", "there", "would", "their", "we",
	"him", "been", "has", "when", "who", "will", "more", "no", "if", "out", "so", "said",
	"what", "up", "its", "about", "into", "than", "them", "can", "only", "other", "new",
	"some", "could", "time", "these", "two", "may", "then", "do", "first", "any", "my", "now",
	"such", "like", "our", "over", "man", "even", "most", "made", "after", "also", "did",
	"many", "before", "must", "through", "back", "years", "where", "much", "your", "way",
	"well", "down", "should", "because", "each", "just", "those", "people", "how", "too",
	"little", "state", "good", "very", "make", "world", "still", "own", "see", "men", "work",
	"long", "get", "here", "between", "both", "life", "being", "under", "never", "day",
	"same", "another", "know", "while", "last", "might", "great", "old", "year", "off",
	"come", "since", "against", "go", "came", "right", "used", "take", "three", "house",
	"use", "during", "without", "again", "place", "around", "however", "home", "small",
	"found", "thought", "went", "say", "part", "once", "general", "high", "upon", "school",
	"every", "does", "got", "left", "number", "course", "until", "always", "away",
	"something", "fact", "though", "water", "less", "public", "put", "think", "almost",
	"hand", "enough", "far", "took", "head", "yet", "government", "system", "better", "set",
	"told", "nothing", "night", "end", "why", "called", "find", "going", "look", "asked",
	"later", "knew", "point", "next", "city", "give", "group", "young", "let", "room",
	"side", "social", "given", "present", "several", "order", "national", "possible",
	"rather", "second", "face", "among", "form", "important", "often", "things", "early",
	"white", "case", "become", "large", "need", "four", "within", "along", "children",
	"best", "power", "development", "light", "family", "interest", "members", "storage",
	"object", "bucket", "document", "documents", "search", "query", "index", "answer",
	"language", "model", "vector", "retrieval", "embedding", "embeddings", "tokenization",
	"throughput", "latency", "replication", "consistency", "configuration", "deployment",
	"measurement", "performance", "requirements", "architecture", "distributed",
	"compression", "experiment", "evaluation", "benchmark", "implementation",
	"understanding", "organization", "environmental", "international", "responsibility",
};
#define GEN_NWORDS (sizeof(gen_words) / sizeof(gen_words[0]))

/* What sentences begin with (a short list: each form is measured once). */
static const char *const gen_starts[] = {
	"The", "It", "This", "In", "A", "We", "They", "There", "When", "Each", "Some", "Most",
	"After", "Many", "Our", "Its", "An", "He", "She", "At", "For", "On", "But", "However",
};
#define GEN_NSTARTS (sizeof(gen_starts) / sizeof(gen_starts[0]))

static uint64_t gen_next(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The count of one unit (a word, or "," or "."), by the chunker or the model. */
static rag_rc unit_cost(const embedder *e, count_by by, const char *s, float *row, int *out,
			rag_error *err)
{
	embed_stats st;
	rag_rc rc;

	if (by == COUNT_CHUNKER) {
		*out = chunk_count_tokens(s, strlen(s));
		return RAG_OK;
	}
	if ((rc = model_count(e, s, strlen(s), row, &st, err)))
		return rc;
	*out = (int)st.tokens;
	return RAG_OK;
}

/*
 * n deterministic English-like texts (sentences of 6 to 22 words: one of
 * gen_starts, then gen_words with some commas, a full stop) of exactly
 * target tokens where the words allow: each word's count and the marks' are
 * measured once, alone (one embedder_embed() call each), and a text's count
 * is their sum (true for BERT, whose basic tokenizer splits at whitespace
 * and punctuation first; the run's stats check it). A text is filled to the
 * target with words that fit.
 */
static rag_rc gen_texts(const embedder *e, count_by by, int target, size_t n, float *row,
			texts *out, rag_error *err)
{
	int cw[GEN_NWORDS], cs[GEN_NSTARTS], comma, stop;
	char unit[64], pend[64];
	int pend_cost = -1, left = 0;
	uint64_t seed = 0x72616767656eULL;
	rag_buf acc;
	rag_rc rc;

	for (size_t i = 0; i < GEN_NWORDS; i++)
		if ((rc = unit_cost(e, by, gen_words[i], row, &cw[i], err)))
			return rc;
	for (size_t i = 0; i < GEN_NSTARTS; i++)
		if ((rc = unit_cost(e, by, gen_starts[i], row, &cs[i], err)))
			return rc;
	if ((rc = unit_cost(e, by, ",", row, &comma, err)) ||
	    (rc = unit_cost(e, by, ".", row, &stop, err)))
		return rc;
	rag_buf_init(&acc, (size_t)1 << 24);
	while (out->n < n && !rc) {
		int have = 0;

		rag_buf_reset(&acc);
		if (pend_cost >= 0) {
			rc = rag_buf_puts(&acc, pend);
			have = pend_cost;
			pend_cost = -1;
		}
		while (!rc) {
			size_t ul;
			int c;

			/* the word, its mark and a space (the words are short) */
			if (left == 0) {
				size_t w = (size_t)(gen_next(&seed) % GEN_NSTARTS);
				left = 6 + (int)(gen_next(&seed) % 17);
				rag_strlcpy(unit, gen_starts[w], sizeof(unit) - 2);
				c = cs[w];
			} else {
				size_t w = (size_t)(gen_next(&seed) % GEN_NWORDS);
				rag_strlcpy(unit, gen_words[w], sizeof(unit) - 2);
				c = cw[w];
			}
			ul = strlen(unit);
			if (--left == 0) {
				unit[ul++] = '.';
				c += stop;
			} else if (gen_next(&seed) % 10 == 0) {
				unit[ul++] = ',';
				c += comma;
			}
			unit[ul++] = ' ';
			unit[ul] = '\0';
			if (have + c > target && have > 0) {
				memcpy(pend, unit, sizeof(pend));
				pend_cost = c;
				break;
			}
			rc = rag_buf_puts(&acc, unit);
			have += c;
		}
		/* fill: words that fit, from a random start */
		while (!rc && have < target) {
			size_t s = (size_t)(gen_next(&seed) % GEN_NWORDS), k;
			for (k = 0; k < GEN_NWORDS; k++) {
				size_t w = (s + k) % GEN_NWORDS;
				if (cw[w] > 0 && have + cw[w] <= target) {
					if (!(rc = rag_buf_puts(&acc, gen_words[w])))
						rc = rag_buf_putc(&acc, ' ');
					have += cw[w];
					break;
				}
			}
			if (k == GEN_NWORDS)
				break;
		}
		while (acc.len && acc.data[acc.len - 1] == ' ')
			acc.len--;
		if (!rc)
			rc = texts_add(out, acc.data, acc.len);
	}
	rag_buf_release(&acc);
	if (rc && !err->rc)
		rag_error_set(err, rc, "out of memory");
	return rc;
}

/*
 * The model's wordpieces per whitespace word on texts of the source: 16
 * texts of words_guess words embedded once (with truncated texts, fewer
 * words until none is). This also warms the model up.
 */
static rag_rc calibrate(const embedder *e, const texts *raw, int words_guess, double *ratio,
			rag_error *err)
{
	float *rows = malloc(16 * (size_t)embedder_dims(e) * sizeof(float));
	int words = words_guess > 0 ? words_guess : 1;
	rag_rc rc = RAG_OK;

	*ratio = 1;
	if (!rows)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (int tries = 0; tries < 8 && !rc; tries++) {
		texts s = {0};
		embed_stats st = {0};
		uint64_t nw = 0;

		if ((rc = cut_texts(raw, COUNT_WORDS, words, 16, &s))) {
			rag_error_set(err, rc, "out of memory");
		} else if (s.n == 0) {
			rc = rag_error_set(err, RAG_EINVAL, "bench embed: too little text to cut");
		} else if (!(rc = embedder_embed(e, (const char *const *)s.a, s.lens, s.n, rows, &st,
						 err))) {
			for (size_t i = 0; i < s.n; i++)
				nw += (uint64_t)count_words(s.a[i], s.lens[i]);
			if (st.truncated == 0 || words == 1) {
				*ratio = nw && st.tokens ? (double)st.tokens / (double)nw : 1;
				texts_release(&s);
				break;
			}
			words = words / 2 > 0 ? words / 2 : 1;
		}
		texts_release(&s);
	}
	free(rows);
	return rc;
}

/* Load --texts: a JSON array of strings (a file starting with "[" or named
 * *.json), or any other file as one text. RAG_EINVAL for a file that is
 * not what it says. */
static rag_rc load_text_file(const char *path, texts *t, rag_error *err)
{
	rag_buf b;
	size_t i = 0;
	rag_rc rc;

	rag_buf_init(&b, (size_t)1 << 30);
	if ((rc = rag_buf_read_file(&b, path, err)))
		goto out;
	while (i < b.len && isspace((unsigned char)b.data[i]))
		i++;
	if ((i < b.len && b.data[i] == '[') ||
	    (strlen(path) > 5 && strcmp(path + strlen(path) - 5, ".json") == 0)) {
		json_error_t je;
		json_t *doc = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &je), *v;

		if (!doc)
			rc = rag_error_set(err, RAG_EINVAL, "bench embed: --texts \"%s\": line %d: %s",
					   path, je.line, je.text);
		else if (!json_is_array(doc))
			rc = rag_error_set(err, RAG_EINVAL,
					   "bench embed: --texts \"%s\": not a JSON array of strings", path);
		json_array_foreach(doc, i, v) {
			if (rc)
				break;
			if (!json_is_string(v))
				rc = rag_error_set(err, RAG_EINVAL,
						   "bench embed: --texts \"%s\": item %zu is not a string",
						   path, i);
			else if (texts_add(t, json_string_value(v), json_string_length(v)))
				rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		}
		json_decref(doc);
	} else if (texts_add(t, b.data ? b.data : "", b.len)) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	if (!rc && t->n == 0)
		rc = rag_error_set(err, RAG_EINVAL, "bench embed: --texts \"%s\": no text", path);
out:
	rag_buf_release(&b);
	return rc;
}

/* Write the n texts embedded, in order, as a JSON array of strings. */
static rag_rc dump_texts(const char *path, const char *const *ptrs, const size_t *lens, size_t n,
			 rag_error *err)
{
	json_t *a = json_array();
	rag_rc rc = RAG_OK;

	for (size_t i = 0; a && i < n && !rc; i++) {
		json_t *s = json_stringn(ptrs[i], lens[i]);
		if (!s || json_array_append_new(a, s))
			rc = rag_error_set(err, RAG_EIO, "bench embed: --dump-texts: text %zu is not "
					   "UTF-8 (or out of memory)", i);
	}
	if (!rc && (!a || json_dump_file(a, path, JSON_COMPACT) != 0))
		rc = rag_error_set(err, RAG_EIO, "bench embed: cannot write --dump-texts \"%s\"", path);
	json_decref(a);
	return rc;
}

/* CPU seconds of the process so far (all its threads). */
static double cpu_seconds(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size now, in MB (0 when unknown). */
static double rss_now_mb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size, res = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

rag_rc bench_embed(bench_env *env, int argc, char **argv, rag_error *err)
{
	static const struct option opts[] = {
		{"count", required_argument, NULL, 'n'},
		{"tokens", required_argument, NULL, 't'},
		{"model-dir", required_argument, NULL, 'm'},
		{"texts", required_argument, NULL, 'x'},
		{"dump-texts", required_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *text_file = NULL, *dump = NULL;
	bool as_json = false, have_cfg = false;
	rag_config cfg;
	s3_client *c = NULL;
	manifest m = {0};
	embedder *model = NULL;
	texts raw = {0}, t = {0};
	const char **ptrs = NULL;
	size_t *lens = NULL, warm;
	float *out = NULL;
	embed_stats st = {0};
	int64_t count = 0, tokens = 256;
	uint64_t chunker_tokens = 0, bytes = 0, t0;
	double secs, cpu_secs, model_tpt, ratio = 0;
	char source[1200];
	count_by by;
	int overhead = 0, dims;
	struct rusage ru;
	cpu_set_t cpus;
	int opt, cpu, blas_threads;
	FILE *fout = env->out;
	rag_rc rc = RAG_OK;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!rag_parse_i64(optarg, &count) || count < 1 || count > 10000000)
				return rag_error_set(err, RAG_EINVAL, "bench embed: bad --count \"%s\"",
						     optarg);
			break;
		case 't':
			if (!rag_parse_i64(optarg, &tokens) || tokens < 4 || tokens > 1000000)
				return rag_error_set(err, RAG_EINVAL, "bench embed: bad --tokens \"%s\"",
						     optarg);
			break;
		case 'm': dir = optarg; break;
		case 'x': text_file = optarg; break;
		case 'd': dump = optarg; break;
		case 'j': as_json = true; break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(embed_usage, fout); return RAG_OK;
		default: return bench_usage_error(env, embed_usage, err);
		}
	}
	if (optind != argc)
		return bench_usage_error(env, embed_usage, err);
	/* one core: this thread pinned where it runs, OpenBLAS on it alone, for
	 * the whole run; set here, in the entry, never in a helper (bench.h,
	 * invariant 3), and put back at the end */
	cpu = sched_getcpu();
	CPU_ZERO(&cpus);
	CPU_SET(cpu < 0 ? 0 : cpu, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	blas_threads = openblas_get_num_threads();
	openblas_set_num_threads(1);
	if (text_file && (rc = load_text_file(text_file, &raw, err)))
		goto out;
	if (dir) {
		/* loaded only for its checks: no S3 request is made */
		if ((rc = env->load_config(env->ctx, env->config_path, true, &cfg, err)))
			goto out;
		rag_config_release(&cfg);
		if ((rc = embedder_open_dir(dir, NULL, &model, err)))
			goto out;
		snprintf(source, sizeof(source), "model dir %s; texts %s", dir,
			 text_file ? text_file : "generated (built-in word list)");
	} else {
		if ((rc = bench_open_s3(env, &cfg, &c, err)))
			goto out;
		have_cfg = true;
		if ((rc = load_index(c, &cfg, text_file ? 0 : (size_t)(count ? count : 20000) * 2, &m,
				     &model, &raw, err)))
			goto out;
		snprintf(source, sizeof(source), "index %s version %lld; texts %s", cfg.index.name,
			 (long long)m.version, text_file ? text_file : "cut from its chunks");
	}
	dims = embedder_dims(model);
	/* a model with a token limit has a tokenizer whose count is its cost */
	by = embedder_max_tokens(model) ? COUNT_MODEL : COUNT_CHUNKER;
	if (by == COUNT_MODEL && (size_t)tokens > embedder_max_tokens(model)) {
		bench_note(env, "bench embed: note: --tokens %lld is past the model's limit; using %zu",
			  (long long)tokens, embedder_max_tokens(model));
		tokens = (int64_t)embedder_max_tokens(model);
	}
	if (!count)
		count = by == COUNT_MODEL ? 200 : 20000;
	if (!(ptrs = malloc((size_t)count * sizeof(*ptrs))) ||
	    !(lens = malloc((size_t)count * sizeof(*lens))) ||
	    !(out = malloc((size_t)count * (size_t)dims * sizeof(float)))) {
		rc = rag_error_set(err, RAG_ENOMEM, "bench embed: out of memory");
		goto out;
	}

	if ((rc = model_overhead(model, out, &overhead, err)))
		goto out;
	if (raw.n == 0) {
		if ((rc = gen_texts(model, by, (int)tokens - overhead, (size_t)count, out, &t, err)))
			goto out;
	} else if (by == COUNT_MODEL) {
		/* the cut by words per text, from the model's pieces per word */
		int target = (int)tokens - overhead;
		if ((rc = calibrate(model, &raw, target / 2, &ratio, err)))
			goto out;
		target = (int)((double)target / ratio + 0.5);
		if (cut_texts(&raw, COUNT_WORDS, target > 0 ? target : 1, (size_t)count, &t)) {
			rc = rag_error_set(err, RAG_ENOMEM, "bench embed: out of memory");
			goto out;
		}
	} else if (cut_texts(&raw, COUNT_CHUNKER, (int)tokens, (size_t)count, &t)) {
		rc = rag_error_set(err, RAG_ENOMEM, "bench embed: out of memory");
		goto out;
	}
	if (t.n == 0) {
		rc = rag_error_set(err, RAG_EIO, "bench embed: cannot cut ~%lld-token texts from "
				   "the texts given", (long long)tokens);
		goto out;
	}
	for (int64_t i = 0; i < count; i++) {
		ptrs[i] = t.a[(size_t)i % t.n];
		lens[i] = t.lens[(size_t)i % t.n];
		bytes += lens[i];
		chunker_tokens += (uint64_t)chunk_count_tokens(ptrs[i], lens[i]);
	}
	if (dump && (rc = dump_texts(dump, ptrs, lens, (size_t)count, err)))
		goto out;

	/* warm-up: the first texts once, untimed */
	warm = (size_t)count < 8 ? (size_t)count : 8;
	if ((rc = embedder_embed(model, ptrs, lens, warm, out, NULL, err)))
		goto out;
	cpu_secs = cpu_seconds();
	t0 = rag_now_ns();
	for (int64_t i = 0; i < count && !rc; i += 256) {
		size_t n = (size_t)(count - i < 256 ? count - i : 256);
		rc = embedder_embed(model, ptrs + i, lens + i, n, out + (size_t)i * (size_t)dims, &st,
				    err);
	}
	secs = (double)(rag_now_ns() - t0) / 1e9;
	cpu_secs = cpu_seconds() - cpu_secs;
	if (rc)
		goto out;
	getrusage(RUSAGE_SELF, &ru);
	model_tpt = (double)st.tokens / (double)count + overhead;
	if (raw.n == 0 && by == COUNT_MODEL && (model_tpt < (double)tokens - 0.5 ||
						model_tpt > (double)tokens + 0.5))
		bench_note(env, "bench embed: note: the texts were cut to %lld tokens, the model counted "
			  "%.1f per text (is its count not a sum over words?)",
			  (long long)tokens, model_tpt);
	if (as_json) {
		json_t *o = json_pack(
			"{s:s, s:s, s:s, s:i, s:i, s:s, s:I, s:f, s:f, s:f, s:I, s:I, s:I, s:f, s:f, "
			"s:f, s:f, s:f, s:f, s:f, s:f, s:s}",
			"model", embedder_name(model), "kind", embedder_kind(model), "version",
			embedder_version(model), "dims", dims, "threads", 1, "tokens_by",
			by == COUNT_MODEL ? "model" : "chunker", "tokens_target", (json_int_t)tokens,
			"tokens_per_text",
			by == COUNT_MODEL ? model_tpt : (double)chunker_tokens / (double)count,
			"model_tokens_per_text", model_tpt, "pieces_per_word", ratio, "texts",
			(json_int_t)count, "distinct", (json_int_t)(t.n < (size_t)count ? t.n : (size_t)count),
			"truncated", (json_int_t)st.truncated, "bytes_per_text",
			(double)bytes / (double)count, "seconds", secs, "chunks_per_s_per_core",
			secs > 0 ? (double)count / secs : 0.0, "cpu_seconds", cpu_secs,
			"chunks_per_cpu_s", cpu_secs > 0 ? (double)count / cpu_secs : 0.0,
			"mb_per_s_per_core",
			secs > 0 ? (double)bytes / 1e6 / secs : 0.0, "peak_rss_mb",
			(double)ru.ru_maxrss / 1024.0, "rss_mb", rss_now_mb(), "source", source);
		if (!o || json_dumpf(o, fout, JSON_COMPACT | JSON_REAL_PRECISION(8)) != 0)
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		fputc('\n', fout);
		json_decref(o);
		goto out;
	}
	fprintf(fout, "embed: model %s (%s) %s, %d dims; %s; 1 core\n", embedder_name(model),
	       embedder_kind(model), embedder_version(model), dims, source);
	fprintf(fout, "chunks: %lld (%zu distinct)\n", (long long)count,
	       t.n < (size_t)count ? t.n : (size_t)count);
	fprintf(fout, "tokens_per_chunk: %.1f\n", by == COUNT_MODEL ? model_tpt
							  : (double)chunker_tokens / (double)count);
	fprintf(fout, "tokens_by: %s\n", by == COUNT_MODEL ? "model" : "chunker");
	fprintf(fout, "model_tokens_per_chunk: %.1f\n", model_tpt);
	fprintf(fout, "truncated: %" PRIu64 "\n", st.truncated);
	fprintf(fout, "bytes_per_chunk: %.0f\n", (double)bytes / (double)count);
	fprintf(fout, "seconds: %.3f\n", secs);
	fprintf(fout, "chunks_per_s_per_core: %.*f\n", secs > 0 && count / secs < 100 ? 2 : 0,
	       secs > 0 ? (double)count / secs : 0);
	fprintf(fout, "mb_per_s_per_core: %.2f\n", secs > 0 ? (double)bytes / 1e6 / secs : 0);
	fprintf(fout, "cpu_seconds: %.3f\n", cpu_secs);
	fprintf(fout, "threads: 1\n");
	fprintf(fout, "peak_rss_mb: %.1f\n", (double)ru.ru_maxrss / 1024.0);
out:
	openblas_set_num_threads(blas_threads);
	free(ptrs);
	free(lens);
	free(out);
	texts_release(&t);
	texts_release(&raw);
	embedder_free(model);
	manifest_release(&m);
	s3_client_free(c);
	if (have_cfg)
		rag_config_release(&cfg);
	return rc;
}
