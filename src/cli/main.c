/*
 * ragmap — one binary, many subcommands (git-style dispatch).
 */
#include <cblas.h>
#include <curl/curl.h>
#include <libxml/parser.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "qindex.h"
#include "rag_pool.h"
#include "rag_util.h"
#include "s3.h"

static const cli_command commands[] = {
	{"ingest", cmd_ingest, "one ingestion pass: source objects -> a new index version"},
	{"daemon", cmd_daemon, "ingest continuously: S3 events, and a poll of the source prefixes"},
	{"status", cmd_status, "index version, documents by status, chunks, segments, bytes"},
	{"model", cmd_model, "model fit | import DIR: refit the built-in model, or use a BERT-family one"},
	{"embed", cmd_embed, "print the embeddings of texts (the index's model or a model directory)"},
	{"serve", cmd_serve, "the query server: HTTP API in a chosen backing mode"},
	{"query", cmd_query, "ask a question, locally in a backing mode or via --server"},
	{"cost", cmd_cost, "RAM, storage requests and dollars per month of each mode at a query rate"},
	{"eval", cmd_eval, "retrieval quality (nDCG@10, MAP@100, ...) on a test collection"},
	{"compact", cmd_compact, "merge small or mostly deleted segments into a new version"},
	{"gc", cmd_gc, "delete index objects that no manifest references"},
	{"verify", cmd_verify, "check the committed index version; --digest for crash tests"},
	{"s3", cmd_s3, "list, get, put, remove and stat objects (an aws s3-like tool)"},
	{"bench", cmd_bench, "benchmark S3 vs curl, ingest (get, embed), query (load, make-index, search)"},
	{"config", cmd_config, "show the effective configuration or an example file"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: ragmap [--config FILE] <command> [options]\n"
		     "       ragmap --version | --help\n\ncommands:\n");
	for (size_t i = 0; i < RAG_ARRAY_LEN(commands); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nRun 'ragmap <command> --help' for a command's options.\n"
		     "Configuration: --config FILE, $RAGMAP_CONFIG or config/ragmap.conf;\n"
		     "RAGMAP_<SECTION>_<KEY> and the AWS_* variables override it (an unknown\n"
		     "RAGMAP_<SECTION>_... variable is an error, as an unknown key is).\n");
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ragmap: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_exit_code(rag_rc rc)
{
	if (rc == RAG_OK)
		return CLI_OK;
	return rc == RAG_ECONFIG || rc == RAG_EINVAL ? CLI_USAGE : CLI_FAIL;
}

int cli_fail(const rag_error *err)
{
	cli_error("%s", err->msg[0] ? err->msg : rag_rc_message(err->rc));
	return cli_exit_code(err->rc);
}

void cli_print_modes(FILE *f)
{
	fputs("\nbacking modes (what stays in RAM; what one query reads from storage):\n", f);
	for (int m = 0; m < QMODE_COUNT; m++) {
		const qmode_row *r = qmode_info((qmode)m);
		fprintf(f, "  %-8s holds %s; reads %s\n", r->name, r->holds, r->reads);
	}
}

static bool mode_ok(const char *s)
{
	qmode m;

	return qmode_parse(s, &m);
}

void cli_set_quiet(cli_env *env)
{
	env->quiet = true;
	if (env->log.level > RAG_LOG_WARN)
		env->log.level = RAG_LOG_WARN;
}

/* Say once that the endpoint was set nowhere: a refused connection to it
 * is then no mystery. */
static void note_default_endpoint(cli_env *env, const rag_config *cfg)
{
	char what[512];

	if (env->noted || env->quiet || env->no_s3 || !rag_log_on(&env->log, RAG_LOG_WARN) ||
	    rag_config_origin_of(cfg, "s3", "endpoint", what, sizeof(what)) != RAG_CFG_DEFAULT)
		return;
	fprintf(stderr, "ragmap: note: endpoint %s is %s\n", cfg->s3.endpoint, what);
	env->noted = true;
}

bool cli_load_config(cli_env *env, rag_config *cfg)
{
	rag_error err = {0};
	char modes[128];

	if (rag_config_load(cfg, env->config_path, &err)) {
		cli_fail(&err);
		return false;
	}
	if (rag_config_check(cfg, "query", "mode", mode_ok,
			     qmode_list(modes, sizeof(modes)), &err)) {
		rag_config_release(cfg);
		cli_fail(&err);
		return false;
	}
	note_default_endpoint(env, cfg);
	return true;
}

bool cli_check_config(cli_env *env)
{
	rag_config cfg;

	if (!cli_load_config(env, &cfg))
		return false;
	rag_config_release(&cfg);
	return true;
}

int cli_open_s3(cli_env *env, rag_config *cfg, s3_client **out)
{
	rag_error err = {0};

	*out = NULL;
	if (!cli_load_config(env, cfg))
		return CLI_USAGE;
	if (!(*out = s3_client_new(cfg, &env->log, &err))) {
		rag_config_release(cfg);
		return cli_fail(&err);
	}
	return CLI_OK;
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

/*
 * The process's thread counts, set here once and nowhere else (rag_pool.h
 * invariant 4). ragmap runs its own loops in parallel on rag_pool (the
 * parts of an ingest batch, a batch's GETs) and its queries on the HTTP
 * threads, so OpenBLAS and FAISS's OpenMP get one thread per caller: more
 * would fight those threads for the same cores. Measured on 2 cores:
 *  - serve, memory mode, 1M vectors (IVF, nlist 1024), 16 clients: 240-480
 *    q/s with OpenBLAS's default, ~2700 q/s with one thread (its pool
 *    serialises concurrent callers, whose workers then spin);
 *  - FAISS's k-means and add call sgemm outside their OpenMP loops, where
 *    libgomp's idle workers spin against OpenBLAS's (112k x 256 IVF: 2.5x
 *    the wall time of one OpenMP thread; the bytes built are the same).
 * A benchmark that measures other counts sets them at its own start.
 */
static void set_thread_counts(void)
{
	openblas_set_num_threads(1);
	omp_set_num_threads(1);
}

int main(int argc, char **argv)
{
	cli_env env = {0};
	int i = 1, rc;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("ragmap %s\n", RAGMAP_VERSION);
			return CLI_OK;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return CLI_OK;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			env.config_path = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			env.config_path = argv[i] + 9;
			i++;
		} else {
			cli_error("unknown option \"%s\" (see ragmap --help)", argv[i]);
			return CLI_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return CLI_USAGE;
	}
	for (size_t k = 0; k < RAG_ARRAY_LEN(commands); k++) {
		if (strcmp(argv[i], commands[k].name) != 0)
			continue;
		set_thread_counts();
		curl_global_init(CURL_GLOBAL_DEFAULT);
		xmlInitParser();
		rag_log_init(&env.log, stderr);
		rc = commands[k].run(&env, argc - i, argv + i);
		rag_pool_stop();
		rag_log_release(&env.log);
		xmlCleanupParser();
		curl_global_cleanup();
		return rc;
	}
	cli_error("unknown command \"%s\" (see ragmap --help)", argv[i]);
	return CLI_USAGE;
}
