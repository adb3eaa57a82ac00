/*
 * ragmap bench <tool> — the table of benchmarks; the tools themselves are
 * in src/bench/ (bench.h), this file only dispatches and maps their
 * errors to exit codes.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "rag_util.h"

static const struct {
	const char *name;
	bench_fn run;
	const char *help;
} tools[] = {
	{"s3", bench_s3, "the S3 client's GET/PUT throughput next to the curl command line"},
	{"get", bench_get, "every object under a prefix fetched once (ingestion's baseline)"},
	{"embed", bench_embed, "an embedder alone on one core, tokenization included"},
	{"load", bench_load, "closed-loop HTTP load on a running `ragmap serve`"},
	{"make-index", bench_make_index, "commit a synthetic index version of N chunks"},
	{"search", bench_search, "in-process search time (vindex, qindex, raw FAISS) and recall"},
};

static void usage(FILE *f)
{
	fputs("usage: ragmap bench <benchmark> [options]   (ragmap bench <benchmark> --help)\n", f);
	for (size_t i = 0; i < RAG_ARRAY_LEN(tools); i++)
		fprintf(f, "  %-11s %s\n", tools[i].name, tools[i].help);
}

/* bench_env.load_config: the CLI's own loading, checks and notices. */
static rag_rc load_config(void *ctx, const char *path, bool no_s3, rag_config *cfg,
			  rag_error *err)
{
	cli_env *env = ctx;

	env->config_path = path;
	env->no_s3 = env->no_s3 || no_s3;
	if (cli_load_config(env, cfg))
		return RAG_OK;
	err->rc = RAG_ECONFIG; /* cli_load_config() has said why */
	err->msg[0] = '\0';
	return RAG_ECONFIG;
}

int cmd_bench(cli_env *env, int argc, char **argv)
{
	bench_env be = {stdout, stderr, &env->log, env->config_path, load_config, env};
	rag_error err = {0};
	rag_rc rc;

	if (argc < 2 || (argc == 2 && cli_wants_help(argc, argv))) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	for (size_t i = 0; i < RAG_ARRAY_LEN(tools); i++) {
		if (strcmp(argv[1], tools[i].name) != 0)
			continue;
		rc = tools[i].run(&be, argc - 1, argv + 1, &err);
		fflush(stdout);
		if (rc && err.msg[0]) /* an empty message was explained already */
			cli_error("%s", err.msg);
		return cli_exit_code(rc);
	}
	cli_error("bench: unknown benchmark \"%s\" (s3, get, embed, load, make-index, search)",
		  argv[1]);
	return CLI_USAGE;
}
