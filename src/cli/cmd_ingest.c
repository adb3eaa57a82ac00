/*
 * ragmap ingest | status | model fit | compact | gc — the ingestion side
 * (the daemon is in cmd_daemon.c; both open an ingest_session).
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

#include "cli.h"
#include "cli_ingest.h"
#include "commit.h"
#include "ingest.h"
#include "rag_util.h"

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

typedef struct progress {
	bool tty;
	uint64_t start;
} progress;

static void show_progress(void *ctx, int64_t done, int64_t total, uint64_t bytes_done,
			  uint64_t bytes_total, int64_t chunks)
{
	progress *p = ctx;
	double secs = (double)(rag_now_ns() - p->start) / 1e9;
	double rate = secs > 0 ? (double)chunks / secs : 0;
	double eta = done > 0 ? secs * (double)(total - done) / (double)done : 0;
	char bar[31];
	int filled = total ? (int)(30 * done / total) : 30;

	for (int i = 0; i < 30; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[30] = '\0';
	if (p->tty) {
		fprintf(stderr, "\r[%s] %" PRId64 "/%" PRId64 " docs  %.1f/%.1f MB  %.0f chunks/s  ETA %.0fs ",
			bar, done, total, (double)bytes_done / 1e6, (double)bytes_total / 1e6, rate, eta);
		if (done == total)
			fputc('\n', stderr);
	} else {
		fprintf(stderr, "progress: %" PRId64 "/%" PRId64 " docs, %.1f/%.1f MB, %" PRId64
			" chunks, %.0f chunks/s\n", done, total, (double)bytes_done / 1e6,
			(double)bytes_total / 1e6, chunks, rate);
	}
}

void ingest_print_storage(s3_client *c, rag_stage_kind kind)
{
	s3_stage_stats st[32];
	size_t n = s3_client_stats(c, st, RAG_ARRAY_LEN(st));
	char bytes[32];

	printf("storage by stage:\n");
	for (size_t i = 0; i < n && i < RAG_ARRAY_LEN(st); i++) {
		s3_counter tot = {0};
		if (rag_stage_kind_of(st[i].stage) != kind)
			continue;
		for (int k = 0; k < S3_KIND_COUNT; k++)
			s3_counter_add(&tot, &st[i].kind[k]);
		printf("  %-16s %6" PRIu64 " requests (", st[i].stage, tot.requests);
		bool first = true;
		for (int k = 0; k < S3_KIND_COUNT; k++) {
			if (!st[i].kind[k].requests)
				continue;
			printf("%s%" PRIu64 " %s", first ? "" : ", ", st[i].kind[k].requests,
			       s3_kind_name((s3_kind)k));
			first = false;
		}
		printf("), %s, %.1f ms, %" PRIu64 " retries\n",
		       rag_fmt_bytes(tot.bytes_in + tot.bytes_out, bytes, sizeof(bytes)),
		       (double)tot.ns / 1e6, tot.retries);
	}
}

static void print_summary(const ingest_summary *s, s3_client *c)
{
	char bytes[32];

	printf("listed %" PRId64 " objects: %" PRId64 " unchanged (no GET)", s->listed, s->unchanged);
	if (s->deferred)
		printf(", %" PRId64 " failed waiting for their retry", s->deferred);
	for (int i = 0; i < OBJ_STATUS_COUNT; i++)
		if (s->status[i])
			printf(", %" PRId64 " %s", s->status[i], obj_status_name((obj_status)i));
	if (s->others)
		printf(" (and %" PRId64 " in other shards, not touched)", s->others);
	printf("\n");
	printf("new: %" PRId64 " documents, %" PRId64 " chunks, %s fetched; %" PRId64
	       " documents tombstoned\n", s->documents, s->chunks,
	       rag_fmt_bytes(s->bytes, bytes, sizeof(bytes)), s->tombstoned);
	if (s->truncated)
		printf("truncated: %" PRId64 " chunks were longer than the model reads "
		       "(their tail is not in their vector)\n", s->truncated);
	if (s->version)
		printf("committed version %" PRId64 ": %" PRId64 " versions this pass (%" PRId64
		       " lost to other writers and rebased), %" PRId64 " segments written, %" PRId64
		       " compacted, %" PRId64 " garbage objects deleted%s\n", s->version, s->commits,
		       s->conflicts, s->segments_written, s->segments_compacted, s->gc_deleted,
		       s->model_fitted ? ", model fitted" : "");
	else
		printf("nothing to commit: the index is up to date\n");
	printf("time by stage:");
	for (int i = 0; i < ING_STAGE_COUNT; i++)
		if (s->ms[i] >= 0.05)
			printf(" %s %.0f ms,", ingest_stage_name((ingest_stage)i), s->ms[i]);
	printf(" total %.0f ms\n", s->total_ms);
	ingest_print_storage(c, RAG_STAGE_INGEST);
}

int ingest_session_open(cli_env *env, ingest_session *s, const char *shard)
{
	rag_error err = {0};
	int rc;

	memset(s, 0, sizeof(*s));
	if (!cli_load_config(env, &s->cfg))
		return CLI_USAGE;
	if (!(s->s3 = s3_client_new(&s->cfg, &env->log, &err)) ||
	    ingest_open(&s->ic, &s->cfg, s->s3, &env->log, &err))
		goto fail;
	s->open = true;
	if (shard && rag_scope_set_shard(&s->ic.scope, shard, &err))
		goto fail;
	return CLI_OK;
fail:
	rc = cli_fail(&err);
	ingest_session_close(s);
	return rc;
}

void ingest_session_close(ingest_session *s)
{
	if (s->open)
		ingest_close(&s->ic);
	s3_client_free(s->s3);
	rag_config_release(&s->cfg);
	memset(s, 0, sizeof(*s));
}

bool ingest_parse_opts(cli_env *env, int argc, char **argv, const char *usage, unsigned allowed,
		       ingest_opts *o)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"quiet", no_argument, NULL, 'q'},
		{"shard", required_argument, NULL, 's'},
		{"listen", required_argument, NULL, 'l'},
		{"failed", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		unsigned need = opt == 'q' ? OPT_QUIET : opt == 's' ? OPT_SHARD : opt == 'l' ? OPT_LISTEN
			      : opt == 'f' ? OPT_FAILED : 0;
		if (need && !(allowed & need)) {
			cli_error("option %s is not for this command", argv[optind - 1]);
			fputs(usage, stderr);
			return false;
		}
		switch (opt) {
		case 'c': env->config_path = optarg; break;
		case 'q': o->quiet = true; break;
		case 's': o->shard = optarg; break;
		case 'l': o->listen = optarg; break;
		case 'f': o->failed = true; break;
		case 'h': fputs(usage, stdout); exit(CLI_OK);
		default: fputs(usage, stderr); return false;
		}
	}
	if (optind < argc) {
		cli_error("unexpected argument \"%s\"", argv[optind]);
		return false;
	}
	return true;
}

static const char ingest_usage[] =
	"usage: ragmap ingest [--config FILE] [--shard I/N] [--quiet]\n"
	"  One pass: list the source prefixes, process new and changed objects,\n"
	"  tombstone deleted ones, commit a new index version, exit.\n"
	"  --shard I/N: own only the keys whose hash mod N is I (N workers, one\n"
	"    slice each; their commits interleave through the commit protocol).\n"
	"  --quiet: print nothing on success (warnings and errors still go to stderr).\n";

int cmd_ingest(cli_env *env, int argc, char **argv)
{
	ingest_session s;
	ingest_summary sum;
	ingest_opts o;
	rag_error err = {0};
	progress p = {.tty = isatty(STDERR_FILENO), .start = rag_now_ns()};
	int rc;

	if (!ingest_parse_opts(env, argc, argv, ingest_usage, OPT_QUIET | OPT_SHARD, &o))
		return CLI_USAGE;
	/* --quiet: nothing on success -- no progress, no summary, no info lines
	 * (warnings and errors still go to stderr) */
	if (o.quiet)
		cli_set_quiet(env);
	/* before the session: opening reads the store, and a SIGTERM meanwhile
	 * must still mean "stop cleanly" */
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	if ((rc = ingest_session_open(env, &s, o.shard)))
		return rc;
	s.ic.stop = &stop_flag;
	if (!o.quiet) {
		s.ic.progress = show_progress;
		s.ic.progress_ctx = &p;
	}
	if (ingest_run(&s.ic, &sum, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	if (!o.quiet)
		print_summary(&sum, s.s3);
	if (!stop_flag) {
		char why[512];

		if (ingest_refit_if_due(&s.ic, &sum, why, sizeof(why), &err))
			rc = cli_fail(&err);
		else if (why[0] && !o.quiet)
			printf("refitted the model (%s): %s version %s, %" PRId64
			       " chunks re-embedded into version %" PRId64 "\n", why,
			       embedder_name(s.ic.model), embedder_version(s.ic.model), sum.chunks,
			       sum.version);
	}
out:
	ingest_session_close(&s);
	return rc;
}

static const char status_usage[] =
	"usage: ragmap status [--config FILE] [--failed]\n"
	"  Index version, documents by status, chunks, segments, model, and the\n"
	"  bytes held under each prefix of the bucket.\n"
	"  --failed: every object whose last attempt failed, with the reason, the\n"
	"    attempts so far and when it is fetched again (sooner if it changes).\n";

static void prefix_bytes(s3_client *c, const char *label, const char *prefix)
{
	s3_list l;
	rag_error err = {0};
	uint64_t total = 0;
	char bytes[32];

	if (s3_list_objects(c, S3_OP("status", NULL), prefix, NULL, &l, &err)) {
		printf("  %-8s s3://%s/%s: %s\n", label, s3_client_bucket(c), prefix, err.msg);
		return;
	}
	for (size_t i = 0; i < l.nobjects; i++)
		total += l.objects[i].size;
	printf("  %-8s s3://%s/%-28s %6zu objects  %s\n", label, s3_client_bucket(c), prefix,
	       l.nobjects, rag_fmt_bytes(total, bytes, sizeof(bytes)));
	s3_list_release(&l);
}

/* Whether many writers are safe here (commit.h, invariant 8), probed now. */
static void print_writers(ingest_session *s)
{
	rag_error err = {0};
	bool conditional;

	if (commit_probe(s->s3, S3_OP("status", NULL), s->ic.root, &conditional, &err))
		printf("writers:  unknown (the conditional-write probe failed: %s)\n", err.msg);
	else if (conditional)
		printf("writers:  any number (the store honours If-None-Match: one wins each version)\n");
	else
		printf("writers:  one at a time (the store ignores If-None-Match: a writer holds "
		       "the lease writer.lock)\n");
}

/* "in 3m 20s", "due now": when a failed object is fetched again. */
static const char *fmt_retry(int64_t at, char *buf, size_t len)
{
	int64_t d = at - (int64_t)time(NULL);

	if (d <= 0)
		snprintf(buf, len, "due now");
	else if (d < 60)
		snprintf(buf, len, "in %llds", (long long)d);
	else if (d < 3600)
		snprintf(buf, len, "in %lldm %llds", (long long)(d / 60), (long long)(d % 60));
	else
		snprintf(buf, len, "in %lldh %lldm", (long long)(d / 3600), (long long)(d % 3600 / 60));
	return buf;
}

/* ragmap status --failed: every failed object, from the catalog. */
static int print_failed(ingest_session *s)
{
	cat_object *f;
	size_t n;
	int64_t total;
	rag_error err = {0};
	char when[32];

	if (catalog_failed(s->ic.cat, 0, &f, &n, &total, &err))
		return cli_fail(&err);
	printf("failed:   %" PRId64 " object%s (version %" PRId64 ")\n", total, total == 1 ? "" : "s",
	       s->ic.latest.version);
	if (n)
		printf("  %-40s %8s  %-14s %s\n", "KEY", "ATTEMPTS", "NEXT RETRY", "REASON");
	for (size_t i = 0; i < n; i++)
		printf("  %-40s %8d  %-14s %s\n", f[i].key, f[i].attempts,
		       fmt_retry(ingest_retry_at(&s->cfg, &f[i]), when, sizeof(when)), f[i].error ? f[i].error : "");
	cat_objects_free(f, n);
	return CLI_OK;
}

/* Which model, when and on what it was fitted (or imported from), and whether a refit is due. */
static void print_model(ingest_session *s)
{
	const embedder *m = s->ic.model;
	char when[32] = "at an unknown time", why[512];
	time_t t;
	struct tm tm;

	if (!m) {
		printf("model:    none yet (the first ingest fits one)\n");
		return;
	}
	printf("model:    %s (%s), version %s, %d dims", embedder_name(m), embedder_kind(m),
	       embedder_version(m), embedder_dims(m));
	if (embedder_max_tokens(m))
		printf(", reads at most %zu tokens per chunk", embedder_max_tokens(m));
	if ((t = (time_t)embedder_created_at(m)) > 0 && gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("\n          %s %s: %s\n", embedder_fits(m) ? "fitted" : "imported", when,
	       embedder_fitted_on(m)[0] ? embedder_fitted_on(m) : "(no record)");
	if (ingest_refit_due(&s->ic, why, sizeof(why)))
		printf("          refit due at the next ingest: %s\n", why);
}

int cmd_status(cli_env *env, int argc, char **argv)
{
	ingest_session s;
	ingest_opts o;
	catalog_stats st;
	int64_t counts[OBJ_STATUS_COUNT];
	rag_error err = {0};
	int rc;

	if (!ingest_parse_opts(env, argc, argv, status_usage, OPT_FAILED, &o))
		return CLI_USAGE;
	if ((rc = ingest_session_open(env, &s, NULL)))
		return rc;
	if (o.failed) {
		rc = print_failed(&s);
		goto out;
	}
	if (catalog_stats_get(s.ic.cat, &st, &err) || catalog_object_counts(s.ic.cat, counts, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	printf("index:    %s (s3://%s/%s)\n", s.cfg.index.name, s.cfg.s3.bucket, s.ic.root);
	if (s.ic.latest.version)
		printf("version:  %" PRId64 " (LATEST)\n", s.ic.latest.version);
	else
		printf("version:  none yet (run ragmap ingest)\n");
	print_writers(&s);
	print_model(&s);
	printf("objects:  ");
	for (int i = 0; i < OBJ_STATUS_COUNT; i++)
		printf("%s%" PRId64 " %s", i ? ", " : "", counts[i], obj_status_name((obj_status)i));
	if (counts[OBJ_FAILED])
		printf(" (ragmap status --failed lists why)");
	printf("\ndocuments: %" PRId64 " live, %" PRId64 " tombstoned\n", st.documents, st.tombstoned);
	printf("chunks:   %" PRId64 "\nsegments: %" PRId64 "\n", st.chunks, st.segments);
	printf("bytes by prefix:\n");
	for (size_t i = 0; i < s.ic.scope.nprefixes; i++)
		prefix_bytes(s.s3, "source", s.ic.scope.prefixes[i]);
	prefix_bytes(s.s3, "models", s.cfg.model.prefix);
	prefix_bytes(s.s3, "index", s.ic.root);
	prefix_bytes(s.s3, "logs", "logs/");
out:
	ingest_session_close(&s);
	return rc;
}

static const char compact_usage[] =
	"usage: ragmap compact [--config FILE]\n"
	"  Merge small segments and rewrite mostly tombstoned ones into a new\n"
	"  version, as every ingest commit does (a writer like any other).\n";

int cmd_compact(cli_env *env, int argc, char **argv)
{
	ingest_session s;
	ingest_opts o;
	ingest_summary sum = {0};
	rag_error err = {0};
	int rc;

	if (!ingest_parse_opts(env, argc, argv, compact_usage, 0, &o))
		return CLI_USAGE;
	if ((rc = ingest_session_open(env, &s, NULL)))
		return rc;
	if (!s.ic.latest.version)
		printf("no index version yet: nothing to compact\n");
	else if (ingest_compact(&s.ic, &sum, &err))
		rc = cli_fail(&err);
	else if (sum.version)
		printf("committed version %" PRId64 ": %" PRId64 " segments compacted into %" PRId64
		       " (%" PRId64 " lost to other writers and rebased)\n", sum.version,
		       sum.segments_compacted, sum.segments_written, sum.conflicts);
	else
		printf("nothing to compact (%" PRId64 " lost to other writers)\n", sum.conflicts);
	ingest_session_close(&s);
	return rc;
}

static const char gc_usage[] =
	"usage: ragmap gc [--config FILE]\n"
	"  Delete index objects that no kept manifest names, once older than\n"
	"  index.gc_grace_s (RAGMAP_INDEX_GC_GRACE_S=0 to collect at once).\n";

int cmd_gc(cli_env *env, int argc, char **argv)
{
	ingest_session s;
	ingest_opts o;
	int64_t deleted = 0;
	rag_error err = {0};
	int rc;

	if (!ingest_parse_opts(env, argc, argv, gc_usage, 0, &o))
		return CLI_USAGE;
	if ((rc = ingest_session_open(env, &s, NULL)))
		return rc;
	if (!s.ic.latest.version)
		printf("no index version yet: nothing to collect\n");
	else if (ingest_gc(&s.ic, s.cfg.index.gc_grace_s, &deleted, &err))
		rc = cli_fail(&err);
	else
		printf("deleted %" PRId64 " unreferenced objects\n", deleted);
	ingest_session_close(&s);
	return rc;
}
