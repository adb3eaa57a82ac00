/*
 * ragmap s3 ls|get|put|rm|stat — a small, honest aws-s3-like tool on top of
 * the s3 module, with the storage cost of each command on request.
 */
#include <dirent.h>
#include <getopt.h>
#include <pthread.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rag_util.h"
#include "s3.h"

static const char s3_usage[] =
	"usage: ragmap s3 <verb> [options] [args]\n"
	"  ls [PREFIX] [-r]         list keys (size, ETag, key); -r: no '/' grouping\n"
	"  get KEY [FILE|-]         download (to stdout with '-' or no FILE)\n"
	"  put FILE KEY             upload (multipart above s3.multipart_threshold)\n"
	"  put DIR PREFIX           upload every file below DIR, in parallel\n"
	"  rm KEY...                delete keys\n"
	"  stat KEY                 size, ETag and last-modified of one key\n"
	"options:\n"
	"  --config FILE            configuration file\n"
	"  --stats                  print the storage requests made, on stderr\n"
	"  -h, --help               this help\n";

static void print_stats(s3_client *c)
{
	s3_stage_stats st[8];
	size_t n = s3_client_stats(c, st, RAG_ARRAY_LEN(st));
	char bytes[32];

	for (size_t i = 0; i < n && i < RAG_ARRAY_LEN(st); i++)
		for (int k = 0; k < S3_KIND_COUNT; k++) {
			const s3_counter *ct = &st[i].kind[k];
			if (!ct->requests)
				continue;
			rag_fmt_bytes(ct->bytes_in + ct->bytes_out, bytes, sizeof(bytes));
			fprintf(stderr, "storage: %s %" PRIu64 " %s, %" PRIu64 " retries, %s, %.1f ms\n",
				st[i].stage, ct->requests, s3_kind_name((s3_kind)k), ct->retries,
				bytes, (double)ct->ns / 1e6);
		}
}

static int do_ls(s3_client *c, int argc, char **argv, bool recursive)
{
	const char *prefix = argc > 0 ? argv[0] : "";
	s3_list l;
	rag_error err = {0};

	if (argc > 1) {
		cli_error("s3 ls: too many arguments");
		return CLI_USAGE;
	}
	if (s3_list_objects(c, S3_OP("cli", NULL), prefix, recursive ? NULL : "/", &l, &err))
		return cli_fail(&err);
	for (size_t i = 0; i < l.nprefixes; i++)
		printf("%12s  %-34s  %s\n", "PRE", "", l.prefixes[i]);
	for (size_t i = 0; i < l.nobjects; i++)
		printf("%12" PRIu64 "  %-34s  %s\n", l.objects[i].size, l.objects[i].etag,
		       l.objects[i].key);
	s3_list_release(&l);
	return CLI_OK;
}

static int do_get(s3_client *c, int argc, char **argv)
{
	rag_error err = {0};

	if (argc < 1 || argc > 2) {
		cli_error("s3 get: expected KEY [FILE|-]");
		return CLI_USAGE;
	}
	if (argc == 2 && strcmp(argv[1], "-") != 0)
		return s3_get_file(c, S3_OP("cli", NULL), argv[0], argv[1], NULL, &err)
			       ? cli_fail(&err) : CLI_OK;
	/* to stdout, streamed */
	if (s3_get_fd(c, S3_OP("cli", NULL), argv[0], STDOUT_FILENO, NULL, &err))
		return cli_fail(&err);
	return CLI_OK;
}

typedef struct upload {
	s3_client *c;
	char **paths;    /* local files */
	char **keys;     /* their keys */
	size_t n, cap;
	uint64_t bytes;
	rag_error first;
	pthread_mutex_t lock;
} upload;

/* Add one file: its path and its key, prefix + path below the root. */
static bool add_file(upload *u, const char *path, const char *key, uint64_t size)
{
	char *p, *k;

	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 64;
		char **np = realloc(u->paths, cap * sizeof(*np)), **nk;
		if (!np)
			return false;
		u->paths = np;
		if (!(nk = realloc(u->keys, cap * sizeof(*nk))))
			return false;
		u->keys = nk;
		u->cap = cap;
	}
	p = rag_strdup(path);
	k = rag_strdup(key);
	if (!p || !k) {
		free(p);
		free(k);
		return false;
	}
	u->paths[u->n] = p;
	u->keys[u->n++] = k;
	u->bytes += size;
	return true;
}

/*
 * Every regular file below path (symbolic links are not followed), keys
 * prefix + the path below the root. false on an unreadable directory or
 * out of memory.
 */
static bool walk_dir(upload *u, const char *path, size_t root_len, const char *prefix)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool ok = d != NULL;

	while (ok && (e = readdir(d))) {
		char child[4096], key[4096];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, e->d_name) >= sizeof(child) ||
		    lstat(child, &st) != 0) {
			ok = false;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			ok = walk_dir(u, child, root_len, prefix);
		} else if (S_ISREG(st.st_mode)) {
			snprintf(key, sizeof(key), "%s%s", prefix, child + root_len);
			ok = add_file(u, child, key, (uint64_t)st.st_size);
		}
	}
	if (d)
		closedir(d);
	return ok;
}

static rag_rc upload_one(void *ctx, size_t i)
{
	upload *u = ctx;
	rag_error err;
	rag_rc rc = s3_put_file(u->c, S3_OP("cli", NULL), u->paths[i], u->keys[i], NULL, &err);

	if (rc) {
		pthread_mutex_lock(&u->lock);
		if (!u->first.rc)
			u->first = err;
		pthread_mutex_unlock(&u->lock);
	}
	return rc;
}

/* put DIR PREFIX: every file below DIR, keys PREFIX + relative path, in parallel. */
static int put_tree(s3_client *c, const char *dir, const char *prefix)
{
	upload u = {.c = c};
	char bytes[32], pfx[4096], root[4096];
	int rc = CLI_OK;
	size_t dl = strlen(dir);

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	snprintf(pfx, sizeof(pfx), "%s%s", prefix, *prefix && prefix[strlen(prefix) - 1] != '/' ? "/" : "");
	if ((size_t)snprintf(root, sizeof(root), "%.*s", (int)dl, dir) >= sizeof(root)) {
		cli_error("s3 put: directory name too long");
		return CLI_USAGE;
	}
	pthread_mutex_init(&u.lock, NULL);
	if (!walk_dir(&u, root, dl + 1, pfx)) {
		cli_error("s3 put: cannot read directory \"%s\"", dir);
		rc = CLI_FAIL;
	} else if (s3_parallel(c, u.n, 0, upload_one, &u) != RAG_OK) {
		rc = cli_fail(&u.first);
	} else {
		printf("uploaded %zu files, %s, under s3://%s/%s\n", u.n,
		       rag_fmt_bytes(u.bytes, bytes, sizeof(bytes)), s3_client_bucket(c), pfx);
	}
	for (size_t i = 0; i < u.n; i++) {
		free(u.paths[i]);
		free(u.keys[i]);
	}
	free(u.paths);
	free(u.keys);
	pthread_mutex_destroy(&u.lock);
	return rc;
}

static int do_put(s3_client *c, int argc, char **argv)
{
	rag_error err = {0};
	struct stat st;
	char etag[80];

	if (argc != 2) {
		cli_error("s3 put: expected FILE KEY or DIR PREFIX");
		return CLI_USAGE;
	}
	if (stat(argv[0], &st) == 0 && S_ISDIR(st.st_mode))
		return put_tree(c, argv[0], argv[1]);
	if (s3_put_file(c, S3_OP("cli", NULL), argv[0], argv[1], etag, &err))
		return cli_fail(&err);
	printf("%s  %s\n", etag, argv[1]);
	return CLI_OK;
}

static int do_rm(s3_client *c, int argc, char **argv)
{
	rag_error err = {0};

	if (argc < 1) {
		cli_error("s3 rm: expected KEY...");
		return CLI_USAGE;
	}
	if (argc == 1)
		return s3_delete(c, S3_OP("cli", NULL), argv[0], &err) ? cli_fail(&err) : CLI_OK;
	return s3_delete_many(c, S3_OP("cli", NULL), (const char *const *)argv, (size_t)argc, &err)
		       ? cli_fail(&err) : CLI_OK;
}

static int do_stat(s3_client *c, int argc, char **argv)
{
	rag_error err = {0};
	s3_object o = {0};
	char when[64] = "unknown";

	if (argc != 1) {
		cli_error("s3 stat: expected KEY");
		return CLI_USAGE;
	}
	if (s3_head(c, S3_OP("cli", NULL), argv[0], &o, &err))
		return cli_fail(&err);
	if (o.last_modified) {
		time_t t = (time_t)o.last_modified;
		struct tm tm;
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	}
	printf("key: %s\nuri: s3://%s/%s\nsize: %" PRIu64 "\netag: %s\nlast-modified: %s\n",
	       argv[0], s3_client_bucket(c), argv[0], o.size, o.etag, when);
	return CLI_OK;
}

int cmd_s3(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"stats", no_argument, NULL, 's'},
		{"recursive", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool stats = false, recursive = false;
	const char *verb;
	rag_config cfg;
	s3_client *c;
	int opt, rc;

	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(s3_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	verb = argv[1];
	argc--, argv++;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "rh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': env->config_path = optarg; break;
		case 's': stats = true; break;
		case 'r': recursive = true; break;
		default: fputs(s3_usage, stderr); return CLI_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (strcmp(verb, "ls") && strcmp(verb, "get") && strcmp(verb, "put") &&
	    strcmp(verb, "rm") && strcmp(verb, "stat")) {
		cli_error("s3: unknown verb \"%s\" (ls, get, put, rm, stat)", verb);
		return CLI_USAGE;
	}
	if ((rc = cli_open_s3(env, &cfg, &c)))
		return rc;
	if (strcmp(verb, "ls") == 0)
		rc = do_ls(c, argc, argv, recursive);
	else if (strcmp(verb, "get") == 0)
		rc = do_get(c, argc, argv);
	else if (strcmp(verb, "put") == 0)
		rc = do_put(c, argc, argv);
	else if (strcmp(verb, "rm") == 0)
		rc = do_rm(c, argc, argv);
	else
		rc = do_stat(c, argc, argv);
	if (stats)
		print_stats(c);
	s3_client_free(c);
	rag_config_release(&cfg);
	return rc;
}
