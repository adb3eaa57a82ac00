/*
 * cmd_model.c — `ragmap model fit|import` and `ragmap embed`: choosing the
 * index's model, and looking at what a model makes of some texts.
 */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_ingest.h"
#include "embed.h"
#include "ingest.h"
#include "manifest.h"
#include "modelobj.h"
#include "rag_util.h"
#include "s3.h"

static const char model_usage[] =
	"usage: ragmap model fit [--config FILE]\n"
	"       ragmap model import DIR [--name NAME] [--config FILE]\n"
	"  fit: fit the built-in model (LSA) on every live chunk and re-embed the\n"
	"    whole index into a new version. ingest refits by itself when the\n"
	"    index outgrows the model (ingest.refit_growth, ingest.refit_unknown)\n"
	"    or model.dims changes.\n"
	"  import: make a BERT-family sentence encoder the index's model. DIR is\n"
	"    a Hugging Face / sentence-transformers directory: config.json,\n"
	"    model.safetensors (F32, F16 or BF16), vocab.txt, and optionally\n"
	"    tokenizer_config.json, sentence_bert_config.json, modules.json and\n"
	"    the pooling module's config.json (mean or CLS pooling). It is\n"
	"    uploaded to <model.prefix><NAME>/<version>/ (version: a hash of the\n"
	"    files; NAME: the directory's name by default), and every live chunk\n"
	"    is embedded again into a new version.\n";

static int model_fit(cli_env *env, int argc, char **argv)
{
	ingest_session s;
	ingest_summary sum;
	ingest_opts o;
	rag_error err = {0};
	int rc;

	if (!ingest_parse_opts(env, argc, argv, model_usage, 0, &o))
		return CLI_USAGE;
	if ((rc = ingest_session_open(env, &s, NULL)))
		return rc;
	if (ingest_refit(&s.ic, &sum, &err)) {
		rc = cli_fail(&err);
	} else {
		printf("model %s version %s; re-embedded %" PRId64 " chunks into version %" PRId64 "\n",
		       embedder_name(s.ic.model), embedder_version(s.ic.model), sum.chunks,
		       sum.version);
		ingest_print_storage(s.s3, RAG_STAGE_INGEST);
	}
	ingest_session_close(&s);
	return rc;
}

/* A model name becomes one path segment of its objects' keys. */
static bool good_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= EMBED_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

static int model_import(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *name = NULL, *dir;
	ingest_session s;
	ingest_summary sum;
	embedder *m = NULL;
	rag_error err = {0};
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': name = optarg; break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(model_usage, stdout); return CLI_OK;
		default: fputs(model_usage, stderr); return CLI_USAGE;
		}
	}
	if (optind != argc - 1) {
		cli_error("model import takes one directory");
		fputs(model_usage, stderr);
		return CLI_USAGE;
	}
	dir = argv[optind];
	if (name && !good_name(name)) {
		cli_error("model name \"%s\": use letters, digits, '-', '_' and '.'", name);
		return CLI_USAGE;
	}
	/* the settings first (a bad one stops every command before it reads
	 * anything), then every file read and checked before touching the store */
	if (!cli_check_config(env))
		return CLI_USAGE;
	if (embedder_open_dir(dir, name, &m, &err))
		return cli_fail(&err);
	if (!good_name(embedder_name(m))) {
		cli_error("model name \"%s\" (from the directory): give one with --name",
			  embedder_name(m));
		embedder_free(m);
		return CLI_USAGE;
	}
	if ((rc = ingest_session_open(env, &s, NULL))) {
		embedder_free(m);
		return rc;
	}
	if (ingest_use_model(&s.ic, m, &sum, &err)) { /* takes m */
		rc = cli_fail(&err);
	} else {
		m = s.ic.model;
		printf("model %s (%s) version %s, %d dims, at s3://%s/%s\n", embedder_name(m),
		       embedder_kind(m), embedder_version(m), embedder_dims(m), s.cfg.s3.bucket,
		       s.ic.model_key);
		printf("re-embedded %" PRId64 " chunks into version %" PRId64, sum.chunks,
		       sum.version);
		if (sum.truncated)
			printf(" (%" PRId64 " truncated at %zu tokens)", sum.truncated,
			       embedder_max_tokens(m));
		printf("\n");
		ingest_print_storage(s.s3, RAG_STAGE_INGEST);
	}
	ingest_session_close(&s);
	return rc;
}

int cmd_model(cli_env *env, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "fit") == 0)
		return model_fit(env, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "import") == 0)
		return model_import(env, argc - 1, argv + 1);
	if (argc >= 2 && cli_wants_help(argc, argv)) {
		fputs(model_usage, stdout);
		return CLI_OK;
	}
	fputs(model_usage, stderr);
	return CLI_USAGE;
}

/* ------------------------------------------------------------------ embed */

static const char embed_usage[] =
	"usage: ragmap embed [--config FILE] [--model-dir DIR] [--json] [--input FILE] [TEXT...]\n"
	"  Print one vector per text: of the index's model (the newest version's),\n"
	"  or, with --model-dir, of the model in DIR (a Hugging Face directory or\n"
	"  a stored model's files; no S3 request then).\n"
	"  --input FILE: more texts, a JSON array of strings (any Unicode, control\n"
	"    characters and NUL included).\n"
	"  --json: {\"model\": NAME, \"dims\": D, \"vectors\": [[...], ...]}; otherwise\n"
	"    one line of space-separated numbers per text.\n";

/* The texts: a JSON array's strings, then the arguments. */
typedef struct texts {
	const char **t;
	size_t *len, n;
	json_t *doc; /* owns the strings from --input */
} texts;

/* Load --input: a JSON array of strings. */
static int load_input(const char *path, texts *tx)
{
	json_error_t je;

	if (!(tx->doc = json_load_file(path, JSON_ALLOW_NUL, &je))) {
		cli_error("--input \"%s\": line %d: %s", path, je.line, je.text);
		return CLI_USAGE;
	}
	if (!json_is_array(tx->doc)) {
		cli_error("--input \"%s\": not a JSON array of strings", path);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* The texts of --input, then those of the arguments. */
static int gather(texts *tx, const char *path, char **args, int nargs)
{
	size_t cap = (tx->doc ? json_array_size(tx->doc) : 0) + (size_t)nargs + 1, i;
	json_t *v;

	tx->t = calloc(cap, sizeof(*tx->t));
	tx->len = calloc(cap, sizeof(*tx->len));
	if (!tx->t || !tx->len) {
		cli_error("out of memory");
		return 1;
	}
	json_array_foreach(tx->doc, i, v) {
		if (!json_is_string(v)) {
			cli_error("--input \"%s\": item %zu is not a string", path, i);
			return CLI_USAGE;
		}
		tx->t[tx->n] = json_string_value(v);
		tx->len[tx->n++] = json_string_length(v);
	}
	for (int k = 0; k < nargs; k++) {
		tx->t[tx->n] = args[k];
		tx->len[tx->n++] = strlen(args[k]);
	}
	return CLI_OK;
}

static int print_vectors(const embedder *m, const float *v, size_t n, bool as_json)
{
	int dims = embedder_dims(m);
	json_t *o, *vecs;

	if (!as_json) {
		for (size_t i = 0; i < n; i++)
			for (int d = 0; d < dims; d++)
				printf("%.8g%c", (double)v[i * (size_t)dims + (size_t)d],
				       d + 1 == dims ? '\n' : ' ');
		return CLI_OK;
	}
	vecs = json_array();
	o = json_pack("{s:s, s:s, s:s, s:i, s:o}", "model", embedder_name(m), "kind",
		      embedder_kind(m), "version", embedder_version(m), "dims", dims, "vectors",
		      vecs);
	for (size_t i = 0; o && i < n; i++) {
		json_t *row = json_array();
		for (int d = 0; row && d < dims; d++)
			json_array_append_new(row, json_real(v[i * (size_t)dims + (size_t)d]));
		json_array_append_new(vecs, row);
	}
	if (!o || json_dumpf(o, stdout, JSON_COMPACT) != 0) {
		json_decref(o);
		cli_error("out of memory");
		return 1;
	}
	putchar('\n');
	json_decref(o);
	return CLI_OK;
}

static int open_index_model(cli_env *env, embedder **m)
{
	rag_config cfg;
	s3_client *s3 = NULL;
	rag_error err = {0};
	char root[1024];
	int rc;

	if ((rc = cli_open_s3(env, &cfg, &s3)))
		return rc;
	if (mf_index_root(cfg.index.prefix, cfg.index.name, root, sizeof(root)))
		rc = cli_fail(&(rag_error){.rc = RAG_EINVAL, .msg = "index prefix too long"});
	else if (modelobj_open_latest(s3, S3_OP("embed.model", NULL), root, m, &err)) {
		if (err.rc == RAG_ENOTFOUND && !strstr(err.msg, "model"))
			rag_error_prefix(&err, "no model yet (run ragmap ingest, or use --model-dir)");
		rc = cli_fail(&err);
	}
	s3_client_free(s3);
	rag_config_release(&cfg);
	return rc;
}

/* The model in DIR, read from disk: no S3 request. */
static int open_dir_model(cli_env *env, const char *dir, embedder **m)
{
	rag_error err = {0};

	env->no_s3 = true;
	if (!cli_check_config(env))
		return CLI_USAGE;
	return embedder_open_dir(dir, NULL, m, &err) ? cli_fail(&err) : CLI_OK;
}

int cmd_embed(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"model-dir", required_argument, NULL, 'm'},
		{"input", required_argument, NULL, 'i'},
		{"json", no_argument, NULL, 'j'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *input = NULL;
	bool as_json = false;
	texts tx = {0};
	embedder *m = NULL;
	float *v = NULL;
	rag_error err = {0};
	int opt, rc = CLI_OK;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm': dir = optarg; break;
		case 'i': input = optarg; break;
		case 'j': as_json = true; break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(embed_usage, stdout); return CLI_OK;
		default: fputs(embed_usage, stderr); return CLI_USAGE;
		}
	}
	if ((input && (rc = load_input(input, &tx))) ||
	    (rc = gather(&tx, input, argv + optind, argc - optind)))
		goto out;
	if (tx.n == 0) {
		cli_error("no text to embed");
		fputs(embed_usage, stderr);
		rc = CLI_USAGE;
		goto out;
	}
	if ((rc = dir ? open_dir_model(env, dir, &m) : open_index_model(env, &m)))
		goto out;
	if (!(v = malloc(tx.n * (size_t)embedder_dims(m) * sizeof(*v)))) {
		cli_error("out of memory for %zu vectors", tx.n);
		rc = 1;
		goto out;
	}
	if (embedder_embed(m, tx.t, tx.len, tx.n, v, NULL, &err))
		rc = cli_fail(&err);
	else
		rc = print_vectors(m, v, tx.n, as_json);
out:
	free(v);
	embedder_free(m);
	free(tx.t);
	free(tx.len);
	json_decref(tx.doc);
	return rc;
}
