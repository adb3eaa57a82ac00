/*
 * ragmap serve — the query server in one backing mode.
 *
 * SIGHUP reloads the configuration without refusing a request: a new
 * server starts next to the old one on its listening socket (server.h
 * invariant 4), then the old one finishes its requests and stops. The
 * configuration a server was started with lives as long as that server
 * (server_start() borrows its strings): the two are one generation.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "qindex.h"
#include "rag_util.h"
#include "server.h"

static const char serve_usage[] =
	"usage: ragmap serve [--mode memory|pointer|cached|object] [--listen HOST:PORT]\n"
	"                    [--config FILE]\n"
	"  Load the latest index version in the given backing mode and serve:\n"
	"    GET  /            the live storage map page (open it in a browser)\n"
	"    POST /v1/query    {\"q\": \"...\", \"k\": 5, \"retriever\": \"dense\"}\n"
	"    GET  /v1/status   mode, version, counts, resident bytes, load cost\n"
	"    GET  /v1/map      the live map's figures (what the page shows)\n"
	"    GET  /metrics     Prometheus text\n"
	"    GET  /healthz     \"ok\" once an index is loaded\n"
	"  With query.token set, /v1/* and /metrics need \"Authorization: Bearer\".\n"
	"  Default 127.0.0.1:8080 (query.listen), mode memory (query.mode). Port 0\n"
	"  picks a free port; the chosen address is printed on stdout.\n"
	"  The server names itself, its replica: query.replica, or <hostname>:<port>\n"
	"  when that is empty. Every reply carries \"X-Ragmap-Replica: NAME\", and the\n"
	"  answers of /v1/query, /v1/status and /v1/map carry \"replica\": NAME.\n"
	"  SIGHUP reloads the configuration (the same --config file, or the file\n"
	"  found as at start, and the environment): a new server loads the index\n"
	"  and starts next to the old one on the same address (with port 0, the\n"
	"  port bound at start: it is the same socket), then the old one finishes\n"
	"  its requests and stops; no request is refused. The mode given by --mode\n"
	"  stays (without --mode, query.mode is read again); a changed query.listen\n"
	"  needs a restart. When the new configuration is bad or its server cannot\n"
	"  start, the error is logged and the old server goes on serving.\n"
	"  SIGINT and SIGTERM stop the server.\n";

static volatile sig_atomic_t serve_stop, serve_reload;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		serve_reload = 1;
	else
		serve_stop = 1;
}

/* A configuration and the server started with it, which borrows its
 * strings: stopped and freed together, the server first. */
typedef struct generation {
	rag_config cfg;
	server *srv;
} generation;

static void generation_free(generation *g)
{
	if (!g)
		return;
	server_stop(g->srv);
	rag_config_release(&g->cfg);
	free(g);
}

/* --mode, else query.mode (checked when the configuration was loaded). */
static bool pick_mode(const char *mode_s, const rag_config *cfg, qmode *mode)
{
	char modes[128];

	if (qmode_parse(mode_s ? mode_s : cfg->query.mode, mode))
		return true;
	cli_error("serve: unknown mode \"%s\" (%s)", mode_s ? mode_s : cfg->query.mode,
		  cli_mode_list(modes, sizeof(modes)));
	return false;
}

/*
 * SIGHUP: a new generation from the configuration as it is now, on the old
 * one's socket (`here`, HOST:PORT with the port bound at start, names it),
 * then the old one stopped. When anything fails the old one goes on: the
 * error is on stderr and in the log. Returns the generation that serves.
 */
static generation *reload(cli_env *env, generation *old, const char *mode_s,
			  const char *start_listen, const char *here)
{
	generation *g = calloc(1, sizeof(*g));
	rag_error err = {0};
	qmode mode;

	RAG_INFO(&env->log, "serve: SIGHUP: reloading the configuration");
	if (!g) {
		RAG_ERROR(&env->log, "serve: SIGHUP: out of memory; still serving with the old "
			  "configuration");
		return old;
	}
	/* both print what is wrong with it */
	if (!cli_load_config(env, &g->cfg)) {
		free(g);
		RAG_ERROR(&env->log, "serve: SIGHUP: the new configuration is bad (see above); still "
			  "serving with the old one");
		return old;
	}
	if (!pick_mode(mode_s, &g->cfg, &mode)) {
		RAG_ERROR(&env->log, "serve: SIGHUP: the new query.mode is bad (see above); still "
			  "serving with the old configuration");
		generation_free(g);
		return old;
	}
	if (!start_listen && strcmp(g->cfg.query.listen, old->cfg.query.listen) != 0)
		RAG_WARN(&env->log, "serve: SIGHUP: query.listen is now \"%s\": the server stays on %s "
			 "until a restart", g->cfg.query.listen, here);
	if (server_start_after(old->srv, &g->cfg, mode, &env->log, &g->srv, &err)) {
		RAG_ERROR(&env->log, "serve: SIGHUP: the new server did not start: %s; still serving "
			  "with the old configuration", err.msg);
		generation_free(g);
		return old;
	}
	RAG_INFO(&env->log, "serve: SIGHUP: %s mode, replica %s on %s; the old server finishes its "
		 "requests", qmode_name(mode), server_replica(g->srv), here);
	generation_free(old);
	return g;
}

int cmd_serve(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"mode", required_argument, NULL, 'm'}, {"listen", required_argument, NULL, 'l'},
		{"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *mode_s = NULL, *listen = NULL, *addr, *colon;
	generation *g;
	rag_error err = {0};
	qmode mode;
	char here[300];
	int opt, host_len;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "m:l:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm': mode_s = optarg; break;
		case 'l': listen = optarg; break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(serve_usage, stdout); return CLI_OK;
		default: fputs(serve_usage, stderr); return CLI_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("serve: unexpected argument \"%s\"", argv[optind]);
		return CLI_USAGE;
	}
	if (!(g = calloc(1, sizeof(*g)))) {
		cli_error("serve: out of memory");
		return CLI_FAIL;
	}
	if (!cli_load_config(env, &g->cfg)) {
		free(g);
		return CLI_USAGE;
	}
	/* query.mode was checked at load; --mode is checked here */
	if (!pick_mode(mode_s, &g->cfg, &mode)) {
		generation_free(g);
		return CLI_USAGE;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (server_start(&g->cfg, mode, listen, &env->log, &g->srv, &err)) {
		generation_free(g);
		return cli_fail(&err);
	}
	/* the address, with the port bound (every later generation's too) */
	addr = listen ? listen : g->cfg.query.listen;
	colon = strrchr(addr, ':');
	host_len = colon ? (int)(colon - addr) : 0;
	snprintf(here, sizeof(here), "%.*s:%d", host_len, addr, server_port(g->srv));
	printf("ragmap serve: %s mode, listening on http://%s (replica %s)\n", qmode_name(mode), here,
	       server_replica(g->srv));
	fflush(stdout);
	while (!serve_stop) {
		if (serve_reload) {
			serve_reload = 0;
			g = reload(env, g, mode_s, listen, here);
		}
		rag_sleep_ms(100);
	}
	RAG_INFO(&env->log, "serve: stopping (flushing the query log)");
	generation_free(g);
	return CLI_OK;
}
