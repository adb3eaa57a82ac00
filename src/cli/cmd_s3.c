/*
 * ragmap s3 ls|get|put|rm|stat|notify — a small, honest aws-s3-like tool on
 * top of the s3 module, with the storage cost of each command on request.
 * `notify` manages the bucket's event notification rules and their topics
 * (Ceph RGW's topic API; see s3.h).
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
	"  rm KEY...                delete keys (one request for many, or one per key\n"
	"                           where a notification rule covers them: RGW 16.2\n"
	"                           aborts on a multi-object delete there)\n"
	"  stat KEY                 size, ETag and last-modified of one key\n"
	"  notify add --topic NAME --push URL [--prefix P] [--opaque DATA] [--persistent]\n"
	"                           create or update topic NAME (its push endpoint URL;\n"
	"                           '-' reads it from stdin, so a token in it stays out of\n"
	"                           the process list) and make rule NAME send the created\n"
	"                           and removed events of keys under P (default: the\n"
	"                           source prefix) to it, keeping the other rules\n"
	"  notify rm --topic NAME   remove rule NAME and delete topic NAME\n"
	"  notify ls                the bucket's rules: id, events, prefix, topic\n"
	"                           (add and rm rewrite the configuration: do not run\n"
	"                           two at once on one bucket)\n"
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

/* ---- notify ---- */

typedef struct notify_opts {
	const char *topic, *push, *prefix, *opaque;
	bool persistent;
} notify_opts;

static const char *events_name(unsigned ev)
{
	switch (ev & (S3_EVENT_CREATED | S3_EVENT_REMOVED)) {
	case S3_EVENT_CREATED: return "created";
	case S3_EVENT_REMOVED: return "removed";
	case S3_EVENT_CREATED | S3_EVENT_REMOVED: return "created,removed";
	default: return "-";
	}
}

static rag_rc read_rules(s3_client *c, s3_notification_list *l, rag_error *err)
{
	rag_buf xml;
	rag_rc rc;

	rag_buf_init(&xml, 4u << 20);
	rc = s3_bucket_notification_get(c, S3_OP("cli", NULL), &xml, err);
	if (!rc)
		rc = s3_xml_parse_notifications(xml.data, xml.len, l, err);
	rag_buf_release(&xml);
	return rc;
}

/*
 * The rules of l except the one called drop, plus add (may be NULL), into
 * out (caller frees the array; the strings stay l's). A rule this tool
 * cannot write back stops the rewrite rather than be changed by it.
 */
static int rules_without(const s3_notification_list *l, const char *drop,
			 const s3_notification *add, s3_notification **out, size_t *n)
{
	*n = 0;
	*out = calloc(l->n + 1, sizeof(**out));
	if (!*out) {
		cli_error("s3 notify: out of memory");
		return CLI_FAIL;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->rules[i].id, drop) == 0)
			continue;
		if (l->rules[i].other) {
			cli_error("s3 notify: rule \"%s\" has settings this tool cannot write back "
				  "(other events, filters or targets); change the configuration with "
				  "another tool", l->rules[i].id);
			free(*out);
			*out = NULL;
			return CLI_FAIL;
		}
		(*out)[(*n)++] = l->rules[i];
	}
	if (add)
		(*out)[(*n)++] = *add;
	return CLI_OK;
}

/* The push URL, or one line of stdin for "-" (nothing secret on the command line). */
static bool push_url(const char *arg, char *buf, size_t len)
{
	if (strcmp(arg, "-") != 0) {
		rag_strlcpy(buf, arg, len);
		return strlen(arg) < len;
	}
	if (!fgets(buf, (int)len, stdin))
		return false;
	buf[strcspn(buf, "\r\n")] = '\0';
	return *buf != '\0';
}

static int notify_add(s3_client *c, const rag_config *cfg, const notify_opts *o)
{
	s3_notification_list l = {0};
	s3_notification *rules = NULL, rule = {0};
	const char *prefix = o->prefix ? o->prefix : cfg->source.prefix;
	char arn[512], push[8192];
	rag_error err = {0};
	size_t n = 0;
	int rc;

	if (!o->push) {
		cli_error("s3 notify add: --push URL is required");
		return CLI_USAGE;
	}
	if (!o->prefix && strchr(prefix, ',')) {
		cli_error("s3 notify add: source.prefix names several prefixes (\"%s\"): give "
			  "--prefix, one rule per prefix", prefix);
		return CLI_USAGE;
	}
	if (!push_url(o->push, push, sizeof(push))) {
		cli_error("s3 notify add: no push URL (from --push, or one line on stdin with '-')");
		return CLI_USAGE;
	}
	if (s3_topic_create(c, S3_OP("cli", NULL), o->topic, push, o->opaque, o->persistent, arn,
			    sizeof(arn), &err)) {
		memset(push, 0, sizeof(push));
		return cli_fail(&err);
	}
	memset(push, 0, sizeof(push)); /* may hold a token */
	rule = (s3_notification){.id = o->topic, .topic_arn = arn, .prefix = prefix,
				 .events = S3_EVENT_CREATED | S3_EVENT_REMOVED};
	if (read_rules(c, &l, &err))
		return cli_fail(&err);
	if ((rc = rules_without(&l, o->topic, &rule, &rules, &n)) == CLI_OK) {
		if (s3_bucket_notification_put(c, S3_OP("cli", NULL), rules, n, &err))
			rc = cli_fail(&err);
		else
			printf("rule %s: %s events under s3://%s/%s -> %s%s\n", o->topic,
			       events_name(rule.events), s3_client_bucket(c), prefix, arn,
			       o->persistent ? " (persistent)" : "");
	}
	free(rules);
	s3_notification_list_release(&l);
	return rc;
}

static int notify_rm(s3_client *c, const notify_opts *o)
{
	s3_notification_list l = {0};
	s3_notification *rules = NULL;
	rag_error err = {0};
	char arn[512] = "";
	size_t n = 0;
	int rc;

	if (read_rules(c, &l, &err))
		return cli_fail(&err);
	/* rule NAME names topic NAME's ARN: no lookup by name needed */
	for (size_t i = 0; i < l.n; i++) {
		const char *a = l.rules[i].topic_arn, *last = a ? strrchr(a, ':') : NULL;
		if (strcmp(l.rules[i].id, o->topic) == 0 && last && strcmp(last + 1, o->topic) == 0)
			rag_strlcpy(arn, a, sizeof(arn));
	}
	rc = rules_without(&l, o->topic, NULL, &rules, &n);
	/* the rule first: it holds a copy of the topic and would outlive it */
	if (rc == CLI_OK && n != l.n && s3_bucket_notification_put(c, S3_OP("cli", NULL), rules, n, &err))
		rc = cli_fail(&err);
	if (rc == CLI_OK && s3_topic_delete(c, S3_OP("cli", NULL), *arn ? arn : o->topic, &err))
		rc = cli_fail(&err);
	if (rc == CLI_OK)
		printf("rule %s: %s; topic %s deleted\n", o->topic,
		       n != l.n ? "removed" : "was not there", o->topic);
	free(rules);
	s3_notification_list_release(&l);
	return rc;
}

static int notify_ls(s3_client *c)
{
	s3_notification_list l = {0};
	rag_error err = {0};

	if (read_rules(c, &l, &err))
		return cli_fail(&err);
	for (size_t i = 0; i < l.n; i++) {
		const s3_notification *r = &l.rules[i];
		printf("%-24s  %-15s  %-24s  %s%s\n", r->id, events_name(r->events),
		       r->prefix && *r->prefix ? r->prefix : "(every key)",
		       r->topic_arn ? r->topic_arn : "-", r->other ? "  (and other settings)" : "");
	}
	s3_notification_list_release(&l);
	return CLI_OK;
}

/* Whether a rule of the bucket's notification configuration covers one of
 * keys (a configuration that cannot be read counts as none). */
static bool notified(s3_client *c, char **keys, int n)
{
	s3_notification_list l = {0};
	rag_error err = {0};
	bool hit = false;

	if (read_rules(c, &l, &err))
		return false;
	for (size_t r = 0; r < l.n && !hit; r++) {
		const char *p = l.rules[r].prefix ? l.rules[r].prefix : "";
		for (int k = 0; k < n && !hit; k++)
			hit = strncmp(keys[k], p, strlen(p)) == 0;
	}
	s3_notification_list_release(&l);
	return hit;
}

typedef struct rm_job {
	s3_client *c;
	char **keys;
	rag_rc *rcs;
	rag_error *errs;
} rm_job;

static rag_rc rm_one(void *ctx, size_t i)
{
	rm_job *j = ctx;

	j->rcs[i] = s3_delete(j->c, S3_OP("cli", NULL), j->keys[i], &j->errs[i]);
	return RAG_OK; /* judged per key */
}

/* One DELETE per key, in parallel; every failure is printed. */
static int rm_each(s3_client *c, char **keys, int n)
{
	rm_job j = {.c = c, .keys = keys, .rcs = calloc((size_t)n, sizeof(rag_rc)),
		    .errs = calloc((size_t)n, sizeof(rag_error))};
	int rc = CLI_OK;

	if (!j.rcs || !j.errs) {
		cli_error("s3 rm: out of memory");
		rc = CLI_FAIL;
	} else {
		s3_parallel(c, (size_t)n, 0, rm_one, &j);
		for (int i = 0; i < n; i++)
			if (j.rcs[i] && (rc = cli_fail(&j.errs[i])) == CLI_OK)
				rc = CLI_FAIL;
	}
	free(j.rcs);
	free(j.errs);
	return rc;
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
	/* Ceph RGW 16.2 aborts on a multi-object delete of keys a notification
	 * rule covers (src/s3/s3.h): there, one DELETE per key */
	if (notified(c, argv, argc))
		return rm_each(c, argv, argc);
	return s3_delete_many(c, S3_OP("cli", NULL), (const char *const *)argv, (size_t)argc, &err)
		       ? cli_fail(&err) : CLI_OK;
}

static int do_notify(s3_client *c, const rag_config *cfg, int argc, char **argv,
		     const notify_opts *o)
{
	const char *sub = argc > 0 ? argv[0] : "";

	if (argc != 1 || (strcmp(sub, "add") && strcmp(sub, "rm") && strcmp(sub, "ls"))) {
		cli_error("s3 notify: expected add, rm or ls");
		return CLI_USAGE;
	}
	if (strcmp(sub, "ls") == 0)
		return notify_ls(c);
	if (!o->topic) {
		cli_error("s3 notify %s: --topic NAME is required", sub);
		return CLI_USAGE;
	}
	return strcmp(sub, "add") == 0 ? notify_add(c, cfg, o) : notify_rm(c, o);
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
		{"topic", required_argument, NULL, 'T'},
		{"push", required_argument, NULL, 'P'},
		{"prefix", required_argument, NULL, 'p'},
		{"opaque", required_argument, NULL, 'O'},
		{"persistent", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool stats = false, recursive = false;
	notify_opts nopts = {0};
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
		case 'T': nopts.topic = optarg; break;
		case 'P': nopts.push = optarg; break;
		case 'p': nopts.prefix = optarg; break;
		case 'O': nopts.opaque = optarg; break;
		case 'S': nopts.persistent = true; break;
		default: fputs(s3_usage, stderr); return CLI_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (strcmp(verb, "ls") && strcmp(verb, "get") && strcmp(verb, "put") &&
	    strcmp(verb, "rm") && strcmp(verb, "stat") && strcmp(verb, "notify")) {
		cli_error("s3: unknown verb \"%s\" (ls, get, put, rm, stat, notify)", verb);
		return CLI_USAGE;
	}
	if (strcmp(verb, "notify") != 0 && (nopts.topic || nopts.push || nopts.prefix ||
					     nopts.opaque || nopts.persistent)) {
		cli_error("s3 %s: --topic, --push, --prefix, --opaque and --persistent are for "
			  "notify", verb);
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
	else if (strcmp(verb, "notify") == 0)
		rc = do_notify(c, &cfg, argc, argv, &nopts);
	else
		rc = do_stat(c, argc, argv);
	if (stats)
		print_stats(c);
	s3_client_free(c);
	rag_config_release(&cfg);
	return rc;
}
