/*
 * embed_bert.c — a BERT-family sentence encoder (bert.h) behind the
 * embedder interface, read from a Hugging Face / sentence-transformers
 * directory:
 *
 *   config.json, model.safetensors, vocab.txt      required
 *   tokenizer_config.json       do_lower_case (default true)
 *   sentence_bert_config.json   max_seq_length (default: max positions)
 *   modules.json                where the pooling module lives
 *   <pooling>/config.json       mean (default) or CLS pooling
 *
 * The version is a SHA-256 prefix over the files read (names and bytes, in
 * the order below), so a stored copy that differs in one byte is refused.
 */
#include "bert.h"
#include "embed_kind.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rag_util.h"

#define FILES_MAX 8
#define FILE_NAME_MAX 128

typedef struct bert_model {
	bert_vocab *vocab;
	bert_net *net;
	bool lower, cls;
	size_t max_len; /* ids per sequence, [CLS] and [SEP] included */
	int32_t unk;
	char files[FILES_MAX][FILE_NAME_MAX];
	int nfiles;
} bert_model;

/* The files as they were read, for the version and for parsing. */
typedef struct bert_files {
	rag_buf buf[FILES_MAX];
	const char *name[FILES_MAX];
	int n;
} bert_files;

static void files_release(bert_files *f)
{
	for (int i = 0; i < f->n; i++)
		rag_buf_release(&f->buf[i]);
}

/* Read a file into the set; *got (may be NULL) is its buffer, NULL when absent and optional. */
static rag_rc files_read(bert_files *f, bert_model *bm, embed_read_fn read, void *ctx,
			 const char *name, bool optional, const rag_buf **got, rag_error *err)
{
	rag_rc rc;

	if (got)
		*got = NULL;
	if (f->n == FILES_MAX || strlen(name) >= FILE_NAME_MAX)
		return rag_error_set(err, RAG_ECORRUPT, "model file \"%s\": too many files", name);
	rc = embed_read_all(read, ctx, name, &f->buf[f->n], err);
	if (rc == RAG_ENOTFOUND && optional) {
		rag_error_clear(err);
		return RAG_OK;
	}
	if (rc)
		return rc;
	rag_strlcpy(bm->files[f->n], name, FILE_NAME_MAX);
	f->name[f->n] = bm->files[f->n];
	if (got)
		*got = &f->buf[f->n];
	f->n++;
	bm->nfiles = f->n;
	return RAG_OK;
}

static rag_rc version_of(const bert_files *f, char out[17], rag_error *err)
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	bool ok = h && EVP_DigestInit_ex(h, EVP_sha256(), NULL);

	for (int i = 0; ok && i < f->n; i++) {
		uint64_t len = f->buf[i].len;
		ok = EVP_DigestUpdate(h, f->name[i], strlen(f->name[i]) + 1) &&
		     EVP_DigestUpdate(h, &len, sizeof(len)) &&
		     (!len || EVP_DigestUpdate(h, f->buf[i].data, len));
	}
	ok = ok && EVP_DigestFinal_ex(h, md, &mdlen) && mdlen >= 8;
	EVP_MD_CTX_free(h);
	if (!ok)
		return rag_error_set(err, RAG_EINTERNAL, "embed: SHA-256 failed");
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return RAG_OK;
}

/* A boolean field of a JSON object file, or def when absent; a non-boolean is an error. */
static rag_rc json_flag(const json_t *o, const char *file, const char *field, bool def,
			bool *out, rag_error *err)
{
	const json_t *v = json_object_get(o, field);

	if (!v || json_is_null(v)) {
		*out = def;
		return RAG_OK;
	}
	if (!json_is_boolean(v))
		return rag_error_set(err, RAG_ECORRUPT, "%s: field \"%s\" is not true or false", file,
				     field);
	*out = json_is_true(v);
	return RAG_OK;
}

/*
 * The tokenizer settings beside do_lower_case that Hugging Face's
 * BertTokenizer honours. Ours strips accents exactly when it lowers and
 * always splits CJK ideographs, which is every released BERT-family
 * checkpoint's setting; a file that asks for anything else is refused
 * rather than tokenized differently from the model's training.
 */
static rag_rc tokenizer_supported(const json_t *tc, bool lower, rag_error *err)
{
	bool strip = lower, cjk = true;
	rag_rc rc;

	if ((rc = json_flag(tc, "tokenizer_config.json", "strip_accents", lower, &strip, err)) ||
	    (rc = json_flag(tc, "tokenizer_config.json", "tokenize_chinese_chars", true, &cjk,
			    err)))
		return rc;
	if (strip != lower)
		return rag_error_set(err, RAG_EINVAL,
				     "tokenizer_config.json: \"strip_accents\": %s with "
				     "\"do_lower_case\": %s is not supported (accents are "
				     "stripped exactly when lower-casing)",
				     strip ? "true" : "false", lower ? "true" : "false");
	if (!cjk)
		return rag_error_set(err, RAG_EINVAL,
				     "tokenizer_config.json: \"tokenize_chinese_chars\": false is "
				     "not supported (CJK ideographs are always split)");
	return RAG_OK;
}

/* sentence_bert_config.json's max_seq_length, at most limit (the model's
 * positions); limit when the file or the field is absent. */
static rag_rc read_max_len(const json_t *sb, size_t limit, size_t *out, rag_error *err)
{
	const json_t *v = json_object_get(sb, "max_seq_length");

	*out = limit;
	if (!v || json_is_null(v))
		return RAG_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 3)
		return rag_error_set(err, RAG_ECORRUPT,
				     "sentence_bert_config.json: field \"max_seq_length\" is not "
				     "an integer of at least 3 ([CLS], a word piece, [SEP])");
	if ((uint64_t)json_integer_value(v) < limit)
		*out = (size_t)json_integer_value(v);
	return RAG_OK;
}

/* Parse an optional JSON file of the set; *o is NULL when it is absent. */
static rag_rc optional_json(const rag_buf *b, const char *file, json_t **o, rag_error *err)
{
	*o = NULL;
	return b ? embed_parse_json(b, file, o, err) : RAG_OK;
}

/* The pooling module's directory, from modules.json (or the usual one). */
static rag_rc pooling_dir(const rag_buf *modules, char *dir, size_t cap, rag_error *err)
{
	json_t *m = NULL, *arr;
	rag_rc rc = RAG_OK;
	size_t i;
	json_t *it;

	rag_strlcpy(dir, "1_Pooling", cap);
	if (!modules)
		return RAG_OK;
	if ((m = json_loadb(modules->data ? modules->data : "", modules->len, 0, NULL)) == NULL ||
	    !json_is_array(m)) {
		rc = rag_error_set(err, RAG_ECORRUPT, "modules.json: not a JSON array");
		goto out;
	}
	arr = m;
	json_array_foreach(arr, i, it) {
		const char *type = json_string_value(json_object_get(it, "type"));
		const char *path = json_string_value(json_object_get(it, "path"));
		const char *dot = type ? strrchr(type, '.') : NULL;
		const char *t = dot ? dot + 1 : type;

		if (!t) {
			rc = rag_error_set(err, RAG_ECORRUPT, "modules.json: module %zu has no \"type\"", i);
			goto out;
		}
		if (strcmp(t, "Pooling") == 0) {
			if (!path || !*path || strstr(path, "..") || strlen(path) + 13 >= cap) {
				rc = rag_error_set(err, RAG_ECORRUPT,
						   "modules.json: bad \"path\" of the Pooling module");
				goto out;
			}
			rag_strlcpy(dir, path, cap);
		} else if (strcmp(t, "Transformer") != 0 && strcmp(t, "Normalize") != 0) {
			rc = rag_error_set(err, RAG_ECORRUPT,
					   "modules.json: module type \"%s\" is not supported "
					   "(Transformer, Pooling and Normalize are)", type);
			goto out;
		}
	}
out:
	json_decref(m);
	return rc;
}

/* Mean or CLS pooling from the pooling module's config; anything else is refused. */
static rag_rc read_pooling(const json_t *p, const char *file, bool *cls, rag_error *err)
{
	bool mean = false, c = false, max = false, sq = false;
	rag_rc rc;

	*cls = false;
	if (!p)
		return RAG_OK; /* mean, the sentence-transformers default */
	if ((rc = json_flag(p, file, "pooling_mode_mean_tokens", false, &mean, err)) ||
	    (rc = json_flag(p, file, "pooling_mode_cls_token", false, &c, err)) ||
	    (rc = json_flag(p, file, "pooling_mode_max_tokens", false, &max, err)) ||
	    (rc = json_flag(p, file, "pooling_mode_mean_sqrt_len_tokens", false, &sq, err)))
		return rc;
	if (max || sq || mean + c != 1)
		return rag_error_set(err, RAG_ECORRUPT,
				     "%s: exactly one of mean and CLS pooling must be on "
				     "(max and sqrt-length pooling are not supported)", file);
	*cls = c;
	return RAG_OK;
}

static rag_rc bert_open(embedder *e, embed_read_fn read, void *ctx, const json_t *card,
			rag_error *err)
{
	bert_model *bm = calloc(1, sizeof(*bm));
	bert_files f = {.n = 0};
	const rag_buf *config, *st, *vocab, *tokcfg, *sbert, *modules, *pool;
	json_t *tc = NULL, *sb = NULL, *pc = NULL;
	char pdir[FILE_NAME_MAX - 16], pfile[FILE_NAME_MAX];
	const bert_config *bc;
	rag_rc rc;

	(void)card; /* the files are the same with or without it; the version checks them */
	if (!bm)
		return rag_error_set(err, RAG_ENOMEM, "embed: out of memory");
	e->impl = bm;
	if ((rc = files_read(&f, bm, read, ctx, "config.json", false, &config, err)) ||
	    (rc = files_read(&f, bm, read, ctx, "model.safetensors", false, &st, err)) ||
	    (rc = files_read(&f, bm, read, ctx, "vocab.txt", false, &vocab, err)) ||
	    (rc = files_read(&f, bm, read, ctx, "tokenizer_config.json", true, &tokcfg, err)) ||
	    (rc = files_read(&f, bm, read, ctx, "sentence_bert_config.json", true, &sbert, err)) ||
	    (rc = files_read(&f, bm, read, ctx, "modules.json", true, &modules, err)) ||
	    (rc = pooling_dir(modules, pdir, sizeof(pdir), err)))
		goto out;
	snprintf(pfile, sizeof(pfile), "%s/config.json", pdir);
	if ((rc = files_read(&f, bm, read, ctx, pfile, true, &pool, err)) ||
	    (rc = optional_json(tokcfg, "tokenizer_config.json", &tc, err)) ||
	    (rc = optional_json(sbert, "sentence_bert_config.json", &sb, err)) ||
	    (rc = optional_json(pool, pfile, &pc, err)) ||
	    (rc = json_flag(tc, "tokenizer_config.json", "do_lower_case", true, &bm->lower, err)) ||
	    (rc = tokenizer_supported(tc, bm->lower, err)) ||
	    (rc = read_pooling(pc, pfile, &bm->cls, err)))
		goto out;
	if ((rc = bert_vocab_load(vocab->data, vocab->len, "vocab.txt", &bm->vocab, err)) ||
	    (rc = bert_net_load(config->data, config->len, st->data, st->len, &bm->net, err)))
		goto out;
	bc = bert_net_config(bm->net);
	if (bert_vocab_size(bm->vocab) > (size_t)bc->vocab_size) {
		rc = rag_error_set(err, RAG_ECORRUPT,
				   "vocab.txt: %zu tokens, but config.json says vocab_size %d",
				   bert_vocab_size(bm->vocab), bc->vocab_size);
		goto out;
	}
	bm->unk = bert_vocab_id(bm->vocab, "[UNK]", 5);
	if ((rc = read_max_len(sb, (size_t)bc->max_positions, &bm->max_len, err)) ||
	    (rc = version_of(&f, e->version, err)))
		goto out;
	e->dims = bc->hidden;
	e->max_tokens = bm->max_len;
out:
	json_decref(tc);
	json_decref(sb);
	json_decref(pc);
	files_release(&f);
	return rc;
}

static rag_rc bert_embed(const embedder *e, const char *const *texts, const size_t *lens,
			 size_t n, float *out, embed_stats *st, rag_error *err)
{
	const bert_model *bm = e->impl;
	int32_t *ids = NULL;
	const int32_t **seqs = NULL;
	size_t *nids = NULL;
	uint64_t truncated = 0, tokens = 0, unknown = 0;
	rag_rc rc = RAG_OK;

	if (n == 0)
		return RAG_OK;
	ids = malloc(n * bm->max_len * sizeof(*ids));
	seqs = malloc(n * sizeof(*seqs));
	nids = malloc(n * sizeof(*nids));
	if (!ids || !seqs || !nids) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed: out of memory for %zu texts", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int32_t *row = ids + i * bm->max_len;
		bool cut = false;

		if ((rc = bert_tokenize(bm->vocab, bm->lower, texts[i], lens[i], row, bm->max_len,
					&nids[i], &cut, err)))
			goto out;
		seqs[i] = row;
		truncated += cut;
		tokens += nids[i] - 2;
		for (size_t k = 1; k + 1 < nids[i]; k++)
			unknown += row[k] == bm->unk;
	}
	if ((rc = bert_net_encode(bm->net, seqs, nids, n, bm->cls, out, err)))
		goto out;
	if (st) {
		st->texts += n;
		st->truncated += truncated;
		st->tokens += tokens;
		st->unknown += unknown;
	}
out:
	free(ids);
	free(seqs);
	free(nids);
	return rc;
}

static rag_rc bert_save(const embedder *e, embed_write_fn write, void *ctx, rag_buf *card,
			rag_error *err)
{
	const bert_model *bm = e->impl;
	json_t *c = NULL, *files = json_array();
	char when[32], *text = NULL;
	time_t now = time(NULL);
	struct tm tm;
	rag_rc rc = RAG_OK;

	for (int i = 0; i < bm->nfiles && !rc; i++) {
		rag_buf b;

		if (!(rc = embed_dir_read(e, bm->files[i], &b, err)))
			rc = write(ctx, bm->files[i], b.data, b.len, err);
		rag_buf_release(&b);
		if (!rc && json_array_append_new(files, json_string(bm->files[i])))
			rc = RAG_ENOMEM;
	}
	if (rc)
		goto out;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	c = json_pack("{s:s, s:O, s:s, s:s, s:i, s:I, s:s, s:b, s:s, s:s}", "kind", "bert", "files",
		      files, "name", e->name, "version", e->version, "dims", e->dims, "max_tokens",
		      (json_int_t)bm->max_len, "pooling", bm->cls ? "cls" : "mean", "lower",
		      bm->lower, "fitted_on", e->fitted_on, "created_at", when);
	if (!c || !(text = json_dumps(c, JSON_INDENT(2))) || rag_buf_puts(card, text) ||
	    rag_buf_putc(card, '\n'))
		rc = rag_error_set(err, RAG_ENOMEM, "embed: card of model \"%s\": out of memory",
				   e->name);
out:
	free(text);
	json_decref(c);
	json_decref(files);
	return rc;
}

static void bert_free_impl(void *impl)
{
	bert_model *bm = impl;

	bert_vocab_free(bm->vocab);
	bert_net_free(bm->net);
	free(bm);
}

const embed_kind embed_kind_bert = {
	.name = "bert",
	.open = bert_open,
	.embed = bert_embed,
	.save = bert_save,
	.free = bert_free_impl,
};
