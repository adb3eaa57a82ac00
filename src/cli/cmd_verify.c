/*
 * ragmap verify [--digest] [--keys] [--source] — the CLI of the verifier
 * (src/index/verify.h, which lists what is checked): options, then the
 * report, the first problems one a line on stderr, and the exit status
 * (0 when nothing was found, 1 otherwise or when the checks could not run).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "manifest.h"
#include "rag_util.h"
#include "s3.h"
#include "verify.h"

static const char verify_usage[] =
	"usage: ragmap verify [--digest] [--keys] [--source] [--config FILE]\n"
	"  Check the newest committed index version: every object its manifest\n"
	"  names exists with its size, every segment parses and is consistent, no\n"
	"  chunk is duplicated, the catalog snapshot agrees with the segments and\n"
	"  counts match the manifest. Exit 0 when all is well, 1 with one line per\n"
	"  problem (the first 50) otherwise.\n"
	"  --source  also check the index against the source listing: every source\n"
	"            object indexed once at its current ETag, nothing extra\n"
	"            (skipped, rejected or failed objects are counted, not indexed)\n"
	"  --digest  also print \"digest <hex>\": SHA-256 of the live chunks (key,\n"
	"            ordinal, text, vector) sorted by (key, ordinal)\n"
	"  --keys    also print \"live <chunks> <key>\" for every live document\n";

static void print_requests(s3_client *c)
{
	s3_stage_stats st[32];
	size_t n = s3_client_stats(c, st, RAG_ARRAY_LEN(st));
	char bytes[32];

	for (size_t i = 0; i < n && i < RAG_ARRAY_LEN(st); i++) {
		s3_counter tot = {0};
		if (strcmp(st[i].stage, "verify") != 0)
			continue;
		for (int k = 0; k < S3_KIND_COUNT; k++)
			s3_counter_add(&tot, &st[i].kind[k]);
		printf("storage:   %" PRIu64 " requests (%" PRIu64 " get, %" PRIu64 " head, %" PRIu64
		       " list), %s\n", tot.requests, st[i].kind[S3_GET].requests,
		       st[i].kind[S3_HEAD].requests, st[i].kind[S3_LIST].requests,
		       rag_fmt_bytes(tot.bytes_in, bytes, sizeof(bytes)));
	}
}

static void print_report(const rag_config *cfg, const char *root, const verify_report *r)
{
	if (r->version == 0) {
		printf("index %s (s3://%s/%s): no version committed yet\n", cfg->index.name,
		       cfg->s3.bucket, root);
	} else {
		printf("index %s version %" PRId64 " (s3://%s/%s)\n", cfg->index.name, r->version,
		       cfg->s3.bucket, root);
		printf("objects:   %" PRId64 " named by the manifest\n", r->objects);
		printf("segments:  %zu (%d flat, %d ivf), %" PRId64 " chunks, %" PRId64
		       " tombstoned\n", r->segments, r->nflat, r->nivf, r->chunks, r->tombstoned);
		printf("live:      %" PRId64 " documents, %" PRId64 " chunks\n", r->live_documents,
		       r->live_chunks);
		printf("model:     %s %s, %d dims\n", r->model_name, r->model_version, r->dims);
	}
	if (r->source_checked)
		printf("source:    %" PRId64 " objects under s3://%s/%s: %" PRId64 " indexed at "
		       "their current ETag, %" PRId64 " skipped, rejected or failed there\n",
		       r->source_objects, cfg->s3.bucket, cfg->source.prefix, r->source_indexed,
		       r->source_excused);
}

static void print_problems(const verify_report *r)
{
	for (size_t i = 0; i < r->nshown; i++)
		cli_error("verify: %s", r->shown[i]);
	if (r->problems > (int64_t)r->nshown)
		cli_error("verify: ... and %" PRId64 " more problems",
			  r->problems - (int64_t)r->nshown);
	printf("FAILED: %" PRId64 " problem%s\n", r->problems, r->problems == 1 ? "" : "s");
}

int cmd_verify(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"digest", no_argument, NULL, 'd'},
		{"keys", no_argument, NULL, 'k'},
		{"source", no_argument, NULL, 's'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	rag_config cfg;
	s3_client *s3 = NULL;
	verify_opts vo = {0};
	verify_report rep = {0};
	rag_error err = {0};
	rag_scope scope = {0};
	char root[1024];
	bool source = false;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': vo.digest = true; break;
		case 'k': vo.keys = true; break;
		case 's': source = true; break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(verify_usage, stdout); return CLI_OK;
		default: fputs(verify_usage, stderr); return CLI_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("verify: unexpected argument \"%s\"", argv[optind]);
		return CLI_USAGE;
	}
	if ((rc = cli_open_s3(env, &cfg, &s3)) != CLI_OK)
		return rc;
	if (mf_index_root(cfg.index.prefix, cfg.index.name, root, sizeof(root))) {
		cli_error("verify: index.prefix/index.name too long");
		rc = CLI_USAGE;
		goto out;
	}
	vo.root = root;
	vo.index_name = cfg.index.name;
	if (source && rag_scope_init(&scope, cfg.source.prefix, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	vo.source = source ? &scope : NULL;
	if (verify_index(s3, &vo, &rep, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	print_report(&cfg, root, &rep);
	print_requests(s3);
	if (rep.problems) {
		print_problems(&rep);
		rc = CLI_FAIL;
		goto out;
	}
	printf("ok\n");
	for (size_t i = 0; i < rep.nkeys; i++)
		printf("live %" PRId64 " %s\n", rep.keys[i].chunks, rep.keys[i].key);
	if (vo.digest)
		printf("digest %s\n", rep.digest);
out:
	rag_scope_release(&scope);
	verify_report_release(&rep);
	s3_client_free(s3);
	rag_config_release(&cfg);
	return rc;
}
