/*
 * ragmap query — ask a question: either load the index here in a backing
 * mode (and say what loading cost), or ask a running server (--server).
 * --json prints exactly the HTTP API's JSON.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "qindex.h"
#include "qjson.h"
#include "qrequest.h"
#include "rag_util.h"

static const char query_usage[] =
	"usage: ragmap query \"question\" [-k N] [--mode memory|pointer|cached|object]\n"
	"                    [--retriever dense|bm25|hybrid] [--prefix P] [--type T[,T]]\n"
	"                    [--server URL] [--json] [--trace]\n"
	"  Without --server the index is loaded here, in the given mode; with it, the\n"
	"  question goes to a running `ragmap serve` (its bearer token from\n"
	"  query.token / RAGMAP_QUERY_TOKEN).\n"
	"  --prefix and --type keep the chunks of documents whose key starts with P\n"
	"  and whose type is one of T (text, markdown, html, pdf; md and txt too).\n"
	"  --trace: every storage request of the query (op, key, byte range,\n"
	"    bytes, status, attempts, start and duration from the query's start),\n"
	"    the wall time waiting on storage and the cost at the [cost] prices.\n";

/* A readable storage line: "storage: 0 requests, 0 B" or "5 GETs, 12.4 KiB, 3.1 ms". */
static void storage_line(json_t *storage, const char *label)
{
	json_int_t req = json_integer_value(json_object_get(storage, "requests"));
	json_int_t bytes = json_integer_value(json_object_get(storage, "bytes"));
	double ms = json_real_value(json_object_get(storage, "ms"));
	json_t *kinds = json_object_get(storage, "by_kind"), *v;
	const char *kind;
	char b[32];
	bool first = true;

	rag_fmt_bytes((uint64_t)bytes, b, sizeof(b));
	if (req == 0) {
		printf("%s: 0 requests, 0 B\n", label);
		return;
	}
	printf("%s: ", label);
	json_object_foreach(kinds, kind, v) {
		json_int_t n = json_integer_value(json_object_get(v, "requests"));
		printf("%s%lld %s%s", first ? "" : " + ", (long long)n,
		       strcmp(kind, "get") == 0 ? "GET" : kind, n == 1 ? "" : "s");
		first = false;
	}
	printf(", %s, %.1f ms\n", b, ms);
}

/* Print text with query words highlighted (on a TTY) — a short snippet. */
static void print_snippet(const char *text, const char *query, bool tty)
{
	char snip[320];
	size_t n = 0;
	bool space = false;

	for (const char *p = text; *p && n < 240; p++) {
		if (isspace((unsigned char)*p)) {
			space = n > 0;
			continue;
		}
		if (space && n < sizeof(snip) - 1)
			snip[n++] = ' ';
		space = false;
		snip[n++] = *p;
	}
	/* never end inside a UTF-8 sequence */
	while (n > 0 && ((unsigned char)snip[n - 1] & 0xC0) == 0x80)
		n--;
	if (n > 0 && ((unsigned char)snip[n - 1] & 0xC0) == 0xC0)
		n--;
	snip[n] = '\0';
	printf("    ");
	for (size_t i = 0; i < n;) {
		size_t wl = 0;
		if (tty && isalnum((unsigned char)snip[i]) && (i == 0 || !isalnum((unsigned char)snip[i - 1]))) {
			while (i + wl < n && isalnum((unsigned char)snip[i + wl]))
				wl++;
			for (const char *q = query; wl >= 3 && *q;) {
				size_t ql = 0;
				while (*q && !isalnum((unsigned char)*q))
					q++;
				while (isalnum((unsigned char)q[ql]))
					ql++;
				if (ql >= 3 && ql == wl && strncasecmp(q, snip + i, wl) == 0) {
					printf("\033[1m%.*s\033[0m", (int)wl, snip + i);
					i += wl;
					wl = 0;
					goto next;
				}
				q += ql;
			}
			fwrite(snip + i, 1, wl, stdout);
			i += wl;
			continue;
		}
		putchar(snip[i++]);
next:;
	}
	printf("%s\n", n >= 240 ? " ..." : "");
}

/* The request log of an answer with a full trace, one request a line. */
static void print_trace(json_t *res)
{
	json_t *st = json_object_get(res, "storage"), *log = json_object_get(st, "request_log"), *r;
	size_t i;
	char b[32];

	if (!log)
		return;
	printf("waiting on storage %.1f ms (the requests' times add up to %.1f ms); cost $%.3g\n",
	       json_real_value(json_object_get(st, "wall_ms")),
	       json_real_value(json_object_get(st, "ms")),
	       json_real_value(json_object_get(res, "cost_usd")));
	printf("  %8s %8s  %-4s %3s %2s %10s  %s\n", "start ms", "ms", "op", "st", "n", "bytes",
	       "key [range]");
	json_array_foreach(log, i, r) {
		json_t *range = json_object_get(r, "range");
		printf("  %8.2f %8.2f  %-4s %3lld %2lld %10s  %s", json_real_value(json_object_get(r, "start_ms")),
		       json_real_value(json_object_get(r, "ms")),
		       json_string_value(json_object_get(r, "op")),
		       (long long)json_integer_value(json_object_get(r, "status")),
		       (long long)json_integer_value(json_object_get(r, "attempts")),
		       rag_fmt_bytes((uint64_t)json_integer_value(json_object_get(r, "bytes")), b,
				     sizeof(b)),
		       json_string_value(json_object_get(r, "key")));
		if (json_is_array(range) && json_is_integer(json_array_get(range, 1)))
			printf(" [%lld-%lld]", (long long)json_integer_value(json_array_get(range, 0)),
			       (long long)json_integer_value(json_array_get(range, 1)));
		else if (json_is_array(range))
			printf(" [%lld-end]", (long long)json_integer_value(json_array_get(range, 0)));
		putchar('\n');
	}
}

static void print_human(json_t *res, const char *query)
{
	json_t *results = json_object_get(res, "results"), *h;
	bool tty = isatty(STDOUT_FILENO);
	size_t i;

	if (json_array_size(results) == 0)
		printf("no results\n");
	json_array_foreach(results, i, h) {
		const char *heading = json_string_value(json_object_get(h, "heading"));
		printf("%2lld. %.3f  %s  (chunk %lld)\n", (long long)json_integer_value(json_object_get(h, "rank")),
		       json_real_value(json_object_get(h, "score")),
		       json_string_value(json_object_get(h, "uri")),
		       (long long)json_integer_value(json_object_get(h, "chunk")));
		if (heading && *heading)
			printf("    § %s\n", heading);
		if (json_string_value(json_object_get(h, "cite")))
			printf("    cite: %s\n", json_string_value(json_object_get(h, "cite")));
		print_snippet(json_string_value(json_object_get(h, "text")), query, tty);
	}
	printf("mode %s, version %lld, %.1f ms; ", json_string_value(json_object_get(res, "mode")),
	       (long long)json_integer_value(json_object_get(res, "index_version")),
	       json_real_value(json_object_get(json_object_get(res, "timing"), "total_ms")));
	storage_line(json_object_get(res, "storage"), "storage");
	print_trace(res);
}

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
	return rag_buf_append(user, p, size * n) ? 0 : size * n;
}

/* POST the question to a running server; the server's JSON in *out. */
static int ask_server(const char *url, const char *token, json_t *req, json_t **out)
{
	char full[2048], auth[1024];
	char *body = json_dumps(req, JSON_COMPACT);
	struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *h = curl_easy_init();
	rag_buf resp;
	long status = 0;
	CURLcode cc;
	json_error_t jerr;
	int rc = CLI_OK;

	rag_buf_init(&resp, 64u << 20);
	snprintf(full, sizeof(full), "%s%s/v1/query", url,
		 url[0] && url[strlen(url) - 1] == '/' ? "." : "");
	if (token && *token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hs = curl_slist_append(hs, auth);
		memset(auth, 0, sizeof(auth));
	}
	curl_easy_setopt(h, CURLOPT_URL, full);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		cli_error("query: cannot reach %s: %s", full, curl_easy_strerror(cc));
		rc = CLI_FAIL;
	} else if (!(*out = json_loadb(resp.data ? resp.data : "", resp.len, 0, &jerr))) {
		cli_error("query: %s answered HTTP %ld with no JSON", full, status);
		rc = CLI_FAIL;
	} else if (status != 200) {
		json_t *e = json_object_get(*out, "error");
		cli_error("query: server answered HTTP %ld: %s", status,
			  json_is_string(e) ? json_string_value(e) : "(no message)");
		json_decref(*out);
		*out = NULL;
		rc = status == 400 ? CLI_USAGE : CLI_FAIL;
	}
	curl_slist_free_all(hs);
	curl_easy_cleanup(h);
	free(body);
	rag_buf_release(&resp);
	return rc;
}

/* --type T[,T]: into f; a usage error naming the bad one. */
static int parse_types(const char *s, qfilter *f)
{
	char one[64];

	while (*s) {
		size_t n = strcspn(s, ",");
		rag_error err = {0};
		snprintf(one, sizeof(one), "%.*s", (int)(n < sizeof(one) ? n : sizeof(one) - 1), s);
		if (qfilter_add_type(f, one, &err)) {
			cli_error("query: --type: %s", err.msg);
			return -1;
		}
		s += n + (s[n] == ',');
	}
	if (f->ntypes == 0) {
		cli_error("query: --type needs at least one type (text, markdown, html, pdf)");
		return -1;
	}
	return 0;
}

int cmd_query(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"mode", required_argument, NULL, 'm'},
		{"retriever", required_argument, NULL, 'r'}, {"server", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
		{"prefix", required_argument, NULL, 'p'}, {"type", required_argument, NULL, 't'},
		{"trace", no_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
	};
	const char *mode_s = NULL, *ret_s = "dense", *server = NULL, *question = NULL;
	bool as_json = false, trace = false;
	int64_t k = 5;
	int opt, rc = CLI_OK;
	rag_config cfg;
	rag_error err = {0};
	qmode mode;
	qretriever ret;
	json_t *res = NULL;
	char modes[128];
	qfilter filter = {0};
	const char *type_s = NULL;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "k:m:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': env->config_path = optarg; break;
		case 'k':
			if (!rag_parse_i64(optarg, &k) || k < 1 || k > 1000) {
				cli_error("query: -k must be an integer in 1..1000, not \"%s\"", optarg);
				return CLI_USAGE;
			}
			break;
		case 'm': mode_s = optarg; break;
		case 'r': ret_s = optarg; break;
		case 's': server = optarg; break;
		case 'j': as_json = true; break;
		case 'p': filter.prefix = optarg; break;
		case 't': type_s = optarg; break;
		case 'T': trace = true; break;
		case 'h': fputs(query_usage, stdout); cli_print_modes(stdout); return CLI_OK;
		default: fputs(query_usage, stderr); return CLI_USAGE;
		}
	}
	if (optind != argc - 1 || !*argv[optind]) {
		cli_error("query: expected one non-empty question (see ragmap query --help)");
		return CLI_USAGE;
	}
	question = argv[optind];
	if (type_s && parse_types(type_s, &filter))
		return CLI_USAGE;
	if (!qretriever_parse(ret_s, &ret)) {
		cli_error("query: unknown retriever \"%s\" (dense, bm25, hybrid)", ret_s);
		return CLI_USAGE;
	}
	env->no_s3 = server != NULL; /* the server has its own endpoint */
	if (!cli_load_config(env, &cfg))
		return CLI_USAGE;
	/* query.mode was checked at load; --mode is checked here */
	if (!mode_s)
		mode_s = cfg.query.mode;
	if (!qmode_parse(mode_s, &mode)) {
		cli_error("query: unknown mode \"%s\" (%s)", mode_s,
			  qmode_list(modes, sizeof(modes)));
		rag_config_release(&cfg);
		return CLI_USAGE;
	}
	if (!rag_utf8_valid(question, strlen(question))) {
		cli_error("query: the question is not valid UTF-8");
		rag_config_release(&cfg);
		return CLI_USAGE;
	}
	if (server) {
		json_t *req = json_pack("{s:s, s:I, s:s}", "q", question, "k", (json_int_t)k,
					"retriever", ret_s);
		json_t *jf = json_object();
		if (filter.prefix)
			json_object_set_new(jf, "prefix", json_string(filter.prefix));
		if (filter.ntypes) {
			json_t *types = json_array();
			for (int i = 0; i < filter.ntypes; i++)
				json_array_append_new(types, json_string(filter.types[i]));
			json_object_set_new(jf, "type", types);
		}
		if (json_object_size(jf))
			json_object_set(req, "filter", jf);
		if (trace)
			json_object_set_new(req, "trace", json_string("full"));
		json_decref(jf);
		rc = ask_server(server, cfg.query.token, req, &res);
		json_decref(req);
	} else {
		s3_client *s3 = s3_client_new(&cfg, &env->log, &err);
		qcaches caches = {0};
		qindex *qi = NULL;
		qresult r;

		if (!s3 || qcaches_open(&cfg, mode, &caches, &err) ||
		    qindex_open(s3, &cfg, mode, &caches, &env->log, &qi, &err)) {
			rc = cli_fail(&err);
		} else {
			qindex_status st;
			json_t *load;
			qindex_status_get(qi, &st);
			if (!as_json) {
				load = qjson_trace(&st.load_trace);
				printf("loaded version %lld in %s mode in %.0f ms; ", (long long)st.version,
				       qmode_name(mode), st.load_ms);
				storage_line(load, "load");
				json_decref(load);
			}
			if (qindex_query_filtered(qi, question, strlen(question), (int)k, ret, &filter, 0,
						  &r, &err)) {
				rc = cli_fail(&err);
			} else {
				r.full_trace = trace;
				if (!(res = qjson_result(&r, cfg.s3.bucket, question, (int)k, &err)))
					rc = cli_fail(&err);
				qresult_release(&r);
			}
		}
		qindex_release(qi);
		qcaches_close(&caches);
		s3_client_free(s3);
	}
	if (res) {
		if (as_json) {
			char *s = json_dumps(res, JSON_COMPACT);
			puts(s);
			free(s);
		} else {
			print_human(res, question);
		}
		json_decref(res);
	}
	rag_config_release(&cfg);
	return rc;
}
