/*
 * bench s3 — the S3 client's throughput next to the curl command line
 * doing the same transfers against the same server, in one run.
 *
 * For each concurrency level: PUT then GET of large objects (MB/s) and of
 * 4 KiB objects (ops/s), first through ragmap's client, then through curl
 * (one process per batch, --parallel for concurrency, connection reuse on).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_int.h"
#include "rag_util.h"
#include "s3.h"

extern char **environ;

static const char s3_usage[] =
	"usage: ragmap bench s3 [--large SIZE] [--small-count N] [--levels 1,4,16]\n"
	"                       [--rounds R]\n"
	"  Measures GET/PUT throughput of SIZE objects (default 64MiB) and ops/s of\n"
	"  4 KiB objects at each concurrency level, against the curl command line.\n"
	"  Each row alternates ragmap and curl R times (default 5) and reports the\n"
	"  median of each side. Objects go under bench/ in the configured bucket\n"
	"  and are deleted after.\n";

typedef struct bench {
	s3_client *c;
	rag_config *cfg;
	const char *data;     /* payload shared by every object */
	size_t size;
	char prefix[128];
	const char *file;     /* the payload as a local file, for curl -T */
	int devnull;
	int rounds;           /* alternations per row; medians are reported */
	rag_rc rc;
	rag_error err;
} bench;

/*
 * Each side writes and reads its own keys ("r" ragmap, "c" curl), so both
 * create fresh objects and read back what they just wrote: an overwrite
 * or a warmer cache never favours one of them.
 */
static void key_of(const bench *b, char side, size_t i, char *key, size_t len)
{
	snprintf(key, len, "%s%c%05zu", b->prefix, side, i);
}

static rag_rc put_task(void *ctx, size_t i)
{
	bench *b = ctx;
	char key[256];
	rag_error err;
	rag_rc rc;

	key_of(b, 'r', i, key, sizeof(key));
	rc = s3_put(b->c, S3_OP("bench", NULL), key, b->data, b->size, NULL, NULL, &err);
	if (rc)
		b->err = err;
	return rc;
}

static rag_rc get_task(void *ctx, size_t i)
{
	bench *b = ctx;
	char key[256];
	s3_object info;
	rag_error err;
	rag_rc rc;

	/* to /dev/null, as curl -o /dev/null: the same work on both sides */
	key_of(b, 'r', i, key, sizeof(key));
	rc = s3_get_fd(b->c, S3_OP("bench", NULL), key, b->devnull, &info, &err);
	if (!rc && info.size != b->size)
		rc = rag_error_set(&err, RAG_ECORRUPT, "bench: object \"%s\" has %llu bytes", key,
				   (unsigned long long)info.size);
	if (rc)
		b->err = err;
	return rc;
}

/* Seconds for n tasks through ragmap's client at concurrency conc. */
static double run_ours(bench *b, s3_task_fn fn, size_t n, int conc)
{
	uint64_t t0 = rag_now_ns();

	b->rc = s3_parallel(b->c, n, conc, fn, b);
	return (double)(rag_now_ns() - t0) / 1e9;
}

/* "user = \"ID:SECRET\"\n", a line of curl's config syntax (a backslash
 * before '"' and '\\'), into out; false when it does not fit. */
static bool curl_user_line(const rag_config *cfg, char *out, size_t len)
{
	const char *parts[] = {cfg->s3.access_key_id, ":",
			       cfg->s3.secret_access_key ? cfg->s3.secret_access_key : ""};
	size_t o = (size_t)snprintf(out, len, "user = \"");
	for (size_t p = 0; p < RAG_ARRAY_LEN(parts); p++)
		for (const char *c = parts[p]; *c; c++) {
			if (o + 4 >= len)
				return false;
			if (*c == '"' || *c == '\\')
				out[o++] = '\\';
			out[o++] = *c;
		}
	if (o + 3 > len)
		return false;
	memcpy(out + o, "\"\n", 3);
	return true;
}

/* Seconds for the same n transfers through one curl process. The
 * credentials reach it on its standard input (-K -), never on its command
 * line, which any user can read in /proc. */
static double run_curl(bench *b, bool put, size_t n, int conc, rag_error *err)
{
	char **argv = calloc(40 + 6 * n, sizeof(char *)); /* at most 6 per object */
	char (*urls)[512] = calloc(n, sizeof(*urls));
	char conc_s[16], userline[1100] = "", sigv4[160];
	size_t a = 0;
	pid_t pid;
	int status = 0, in[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	bool have_fa = false;
	uint64_t t0;
	double secs = -1;

	if (!argv || !urls) {
		rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	argv[a++] = "curl";
	argv[a++] = "-sS";
	argv[a++] = "--no-progress-meter";
	argv[a++] = "--fail";
	if (conc > 1) {
		snprintf(conc_s, sizeof(conc_s), "%d", conc);
		argv[a++] = "--parallel";
		argv[a++] = "--parallel-max";
		argv[a++] = conc_s;
	}
	if (b->cfg->s3.access_key_id && *b->cfg->s3.access_key_id) {
		if (!curl_user_line(b->cfg, userline, sizeof(userline))) {
			rag_error_set(err, RAG_EINVAL, "bench: the S3 credentials are too long for curl");
			goto out;
		}
		snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", b->cfg->s3.region);
		argv[a++] = "--aws-sigv4";
		argv[a++] = sigv4;
		argv[a++] = "-K";
		argv[a++] = "-";
	}
	argv[a++] = "-H";
	argv[a++] = put ? "x-amz-content-sha256: UNSIGNED-PAYLOAD"
			: "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	if (s3_can_drop_expect()) { /* as the client does: see s3.h */
		argv[a++] = "-H";
		argv[a++] = "Expect:";
	}
	for (size_t i = 0; i < n; i++) {
		char key[256];
		key_of(b, 'c', i, key, sizeof(key));
		snprintf(urls[i], sizeof(urls[i]), "%s/%s/%s", b->cfg->s3.endpoint,
			 b->cfg->s3.bucket, key);
		if (put) {
			argv[a++] = "-T";
			argv[a++] = (char *)b->file;
		}
		argv[a++] = urls[i];
		argv[a++] = "-o";
		argv[a++] = "/dev/null";
	}
	argv[a] = NULL;
	/* the line goes into the pipe before curl starts (it is far below the
	 * pipe's buffer): no write can block or meet a reader that is gone */
	if (pipe2(in, O_CLOEXEC) != 0 ||
	    write(in[1], userline, strlen(userline)) != (ssize_t)strlen(userline) ||
	    posix_spawn_file_actions_init(&fa) != 0) {
		rag_error_set(err, RAG_EIO, "bench: cannot run curl: %s", strerror(errno));
		goto out;
	}
	have_fa = true;
	close(in[1]);
	in[1] = -1;
	t0 = rag_now_ns();
	if (posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO) != 0 ||
	    posix_spawnp(&pid, "curl", &fa, NULL, argv, environ) != 0) {
		rag_error_set(err, RAG_EIO, "bench: cannot run curl: %s", strerror(errno));
		goto out;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	secs = (double)(rag_now_ns() - t0) / 1e9;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rag_error_set(err, RAG_EIO, "bench: curl failed (status %d)", WEXITSTATUS(status));
		secs = -1;
	}
out:
	memset(userline, 0, sizeof(userline));
	if (have_fa)
		posix_spawn_file_actions_destroy(&fa);
	for (int k = 0; k < 2; k++)
		if (in[k] >= 0)
			close(in[k]);
	free(argv);
	free(urls);
	return secs;
}

static int parse_levels(const char *s, int *levels, int max)
{
	int n = 0;

	while (*s && n < max) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > 256)
			return -1;
		levels[n++] = (int)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n;
}

static rag_rc write_payload(const char *path, const char *data, size_t len, rag_error *err)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		return rag_error_set(err, RAG_EIO, "bench: cannot write \"%s\"", path);
	return RAG_OK;
}

static void cleanup_prefix(bench *b)
{
	s3_list l;
	rag_error err;
	const char **keys;

	if (s3_list_objects(b->c, S3_OP("bench", NULL), b->prefix, NULL, &l, &err))
		return;
	if ((keys = calloc(l.nobjects + 1, sizeof(*keys)))) {
		for (size_t i = 0; i < l.nobjects; i++)
			keys[i] = l.objects[i].key;
		s3_delete_many(b->c, S3_OP("bench", NULL), keys, l.nobjects, &err);
		free(keys);
	}
	s3_list_release(&l);
}

#define ROUNDS_MAX 15

/* The median of n values (n <= ROUNDS_MAX); v is sorted in place. */
static double median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * One row: PUT then GET of n objects of b->size bytes, ours and curl's,
 * alternating b->rounds times: on two cores shared with the store one
 * batch of each says little (single runs varied from 0.87 to 1.23).
 */
static rag_rc bench_row(bench *b, FILE *out, int conc, size_t n, bool large, rag_error *err)
{
	static const char *const ops[] = {"PUT", "GET"};
	char size_s[32];

	rag_fmt_bytes(b->size, size_s, sizeof(size_s));
	for (int op = 0; op < 2; op++) {
		double ours_v[ROUNDS_MAX], theirs_v[ROUNDS_MAX], ours, theirs;
		double scale = large ? (double)b->size * (double)n / 1e6 : (double)n;

		for (int r = 0; r < b->rounds; r++) {
			ours_v[r] = run_ours(b, op == 0 ? put_task : get_task, n, conc);
			if (b->rc)
				return rag_error_set(err, b->rc, "bench: %s", b->err.msg);
			theirs_v[r] = run_curl(b, op == 0, n, conc, err);
			if (theirs_v[r] < 0)
				return err->rc;
		}
		ours = median(ours_v, b->rounds);
		theirs = median(theirs_v, b->rounds);
		fprintf(out, "| %-3s | %9s | %4d | %5zu | %10.1f %-5s | %10.1f %-5s | %5.2f |\n", ops[op],
		       size_s, conc, n, scale / ours, large ? "MB/s" : "ops/s", scale / theirs,
		       large ? "MB/s" : "ops/s", theirs / ours);
		fflush(out);
	}
	return RAG_OK;
}

rag_rc bench_s3(bench_env *env, int argc, char **argv, rag_error *err)
{
	static const struct option opts[] = {
		{"large", required_argument, NULL, 'l'},
		{"small-count", required_argument, NULL, 'n'},
		{"levels", required_argument, NULL, 'c'},
		{"rounds", required_argument, NULL, 'r'},
		{"config", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t large = 64u << 20;
	int64_t small_count = 500, rounds = 5;
	int levels[8] = {1, 4, 16}, nlevels = 3, opt;
	rag_config cfg;
	bench b = {0};
	char *data = NULL, path[4096];
	FILE *out = env->out;
	rag_rc rc = RAG_OK;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (!rag_parse_size(optarg, &large) || large < 1024 || large > (1ull << 32))
				return rag_error_set(err, RAG_EINVAL, "bench s3: bad --large \"%s\"", optarg);
			break;
		case 'n':
			if (!rag_parse_i64(optarg, &small_count) || small_count < 1 || small_count > 100000)
				return rag_error_set(err, RAG_EINVAL, "bench s3: bad --small-count \"%s\"",
						     optarg);
			break;
		case 'r':
			if (!rag_parse_i64(optarg, &rounds) || rounds < 1 || rounds > ROUNDS_MAX)
				return rag_error_set(err, RAG_EINVAL, "bench s3: bad --rounds \"%s\" (1 to %d)",
						     optarg, ROUNDS_MAX);
			break;
		case 'c':
			if ((nlevels = parse_levels(optarg, levels, 8)) <= 0)
				return rag_error_set(err, RAG_EINVAL, "bench s3: bad --levels \"%s\"", optarg);
			break;
		case 'C': env->config_path = optarg; break;
		case 'h': fputs(s3_usage, out); return RAG_OK;
		default: return bench_usage_error(env, s3_usage, err);
		}
	}
	if ((rc = bench_open_s3(env, &cfg, &b.c, err)))
		return rc;
	b.cfg = &cfg;
	b.rounds = (int)rounds;
	/* incompressible payload: nothing on the path can cheat */
	if (!(data = malloc(large))) {
		rc = rag_error_set(err, RAG_ENOMEM, "bench s3: out of memory");
		goto out;
	}
	for (size_t i = 0; i < large; i++)
		data[i] = (char)(rag_rand64() >> 56);
	b.data = data;
	if ((b.devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
		rc = rag_error_set(err, RAG_EIO, "bench s3: cannot open /dev/null");
		goto out;
	}
	mkdir(cfg.local.dir, 0755);
	snprintf(path, sizeof(path), "%s/bench-payload-%d", cfg.local.dir, (int)getpid());
	b.file = path;
	fprintf(out, "ragmap bench s3: %s, bucket %s; curl side: one curl process per batch\n\n",
		cfg.s3.endpoint, cfg.s3.bucket);
	fprintf(out, "| op  | size      | conc | count | ragmap           | curl             | ratio |\n"
		     "|-----|-----------|------|-------|------------------|------------------|-------|\n");
	for (int pass = 0; pass < 2 && !rc; pass++) {
		bool is_large = pass == 0;
		b.size = is_large ? large : 4096;
		if ((rc = write_payload(path, data, b.size, err)))
			break;
		for (int l = 0; l < nlevels && !rc; l++) {
			size_t n = is_large ? (size_t)(levels[l] < 4 ? 4 : levels[l]) : (size_t)small_count;
			snprintf(b.prefix, sizeof(b.prefix), "bench/s3-%d-%s-c%d/", (int)getpid(),
				 is_large ? "large" : "small", levels[l]);
			rc = bench_row(&b, out, levels[l], n, is_large, err);
			cleanup_prefix(&b);
		}
	}
	fprintf(out, "\nmedians of %d rounds; ratio = curl time / ragmap time (above 1: ragmap "
		     "faster)\n", b.rounds);
	unlink(path);
out:
	if (b.devnull > 0)
		close(b.devnull);
	free(data);
	s3_client_free(b.c);
	rag_config_release(&cfg);
	return rc;
}
