/*
 * ragmap serve — the query server in one backing mode.
 *
 * SIGHUP reloads the configuration without refusing a request: a new
 * server starts next to the old one on its listening socket (server.h
 * invariant 4), then the old one finishes its requests and stops. The
 * configuration a server was started with lives as long as that server
 * (server_start() borrows its strings): the two are one generation.
 *
 * POST /v1/mode is the same reload with another mode: the server's handler
 * asks the main loop (mode_switch below) and waits until the new generation
 * serves; the main loop then stops the old one, whose last request that
 * answer is. Only the main loop starts and stops servers (server.h).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "qindex.h"
#include "rag_util.h"
#include "server.h"

static const char serve_usage[] =
	"usage: ragmap serve [--mode memory|pointer|cached|object] [--listen HOST:PORT]\n"
	"                    [--warm] [--config FILE]\n"
	"  Load the latest index version in the given backing mode and serve:\n"
	"    GET  /            the live storage map page (open it in a browser)\n"
	"    POST /v1/query    {\"q\": \"...\", \"k\": 5, \"retriever\": \"dense\"}\n"
	"    GET  /v1/status   mode, version, counts, resident bytes, load cost\n"
	"    POST /v1/mode     {\"mode\": \"pointer\"}: serve in another mode (a reload)\n"
	"    POST /v1/warm     [{\"budget_mb\": N}]: preload the mode's cache (background)\n"
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
	"  POST /v1/mode switches the backing mode the same way, without refusing a\n"
	"  request: the configuration is read again as for SIGHUP, and the mode\n"
	"  switched to stays across later SIGHUPs, as --mode would. The answer says\n"
	"  the old and new mode and version and how long the switch took.\n"
	"  --warm (query.warm) preloads, in the background, what the mode reads per\n"
	"  query: object mode the IVF lists (needs query.list_cache_mb), cached mode\n"
	"  the records the query log says answers returned most; at most\n"
	"  query.warm_mb (0: the cache's size). Progress: \"warm\" in /v1/status.\n"
	"  SIGHUP and mode switches start a new server, warmed again; a hot reload\n"
	"  keeps the caches, so only a new version's new segments start cold.\n"
	"  Answers that read no storage count as warm, the others as cold: /v1/map\n"
	"  shows both latencies.\n"
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

/*
 * POST /v1/mode between a server's handler threads and the main loop, which
 * alone starts and stops servers. A request is taken only while the loop is
 * idle: a handler waiting on the loop while the loop waits in server_stop()
 * for that handler would deadlock, so every reload makes the state BUSY
 * until the old server has stopped, and a request then gets RAG_ECONFLICT.
 */
typedef struct mode_switch {
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* a request (for the loop), an answer (for the handler) */
	enum { MS_IDLE, MS_PENDING, MS_BUSY, MS_CLOSED } state;
	qmode want;
	uint64_t asked, answered; /* tickets: the handler waits for its own */
	rag_rc rc;
	char msg[sizeof(((rag_error *)0)->msg)];
	int64_t version;
} mode_switch;

/* server_mode_hook.on_mode: on a handler thread (server.h). */
static rag_rc on_mode(void *ctx, qmode mode, int64_t *version, rag_error *err)
{
	mode_switch *ms = ctx;
	uint64_t ticket;
	rag_rc rc;

	pthread_mutex_lock(&ms->lock);
	if (ms->state != MS_IDLE) {
		rc = ms->state == MS_CLOSED ?
			rag_error_set(err, RAG_ECANCELED, "the server is stopping") :
			rag_error_set(err, RAG_ECONFLICT, "a mode switch or reload is under way; try again");
		pthread_mutex_unlock(&ms->lock);
		return rc;
	}
	ms->state = MS_PENDING;
	ms->want = mode;
	ticket = ++ms->asked;
	pthread_cond_broadcast(&ms->cond);
	while (ms->answered < ticket)
		pthread_cond_wait(&ms->cond, &ms->lock);
	rc = ms->rc;
	*version = ms->version;
	if (rc)
		rag_error_set(err, rc, "%s", ms->msg);
	pthread_mutex_unlock(&ms->lock);
	return rc;
}

/* The loop's answer to the pending request (its lock held). */
static void mode_answer(mode_switch *ms, rag_rc rc, const char *msg, int64_t version)
{
	ms->rc = rc;
	snprintf(ms->msg, sizeof(ms->msg), "%s", msg ? msg : "");
	ms->version = version;
	ms->answered = ms->asked;
	pthread_cond_broadcast(&ms->cond);
}

/* --mode, else query.mode (checked when the configuration was loaded). */
static bool pick_mode(const char *mode_s, const rag_config *cfg, qmode *mode)
{
	char modes[128];

	if (qmode_parse(mode_s ? mode_s : cfg->query.mode, mode))
		return true;
	cli_error("serve: unknown mode \"%s\" (%s)", mode_s ? mode_s : cfg->query.mode,
		  qmode_list(modes, sizeof(modes)));
	return false;
}

/*
 * SIGHUP or POST /v1/mode (`why` says which): a new generation from the
 * configuration as it is now, on the old one's socket (`here`, HOST:PORT
 * with the port bound at start, names it). The caller stops the old one
 * (generation_free()) once it has told whoever waits. NULL when anything
 * fails, err saying why: the old one goes on, the error is on stderr and in
 * the log.
 */
static generation *reload(cli_env *env, generation *old, const char *mode_s, bool warm,
			  const char *start_listen, const char *here, const char *why,
			  rag_error *err)
{
	generation *g = calloc(1, sizeof(*g));
	qmode mode;

	RAG_INFO(&env->log, "serve: %s: reloading the configuration", why);
	if (!g) {
		rag_error_set(err, RAG_ENOMEM, "out of memory");
		RAG_ERROR(&env->log, "serve: %s: out of memory; still serving with the old "
			  "configuration", why);
		return NULL;
	}
	/* both print what is wrong with it */
	if (!cli_load_config(env, &g->cfg)) {
		free(g);
		rag_error_set(err, RAG_ECONFIG, "the configuration is bad now (see the server's "
			      "stderr); still serving with the old one");
		RAG_ERROR(&env->log, "serve: %s: the new configuration is bad (see above); still "
			  "serving with the old one", why);
		return NULL;
	}
	g->cfg.query.warm |= warm;   /* --warm stays, as --mode does */
	if (!pick_mode(mode_s, &g->cfg, &mode)) {
		rag_error_set(err, RAG_ECONFIG, "query.mode is bad now (see the server's stderr); "
			      "still serving with the old configuration");
		RAG_ERROR(&env->log, "serve: %s: the new query.mode is bad (see above); still "
			  "serving with the old configuration", why);
		generation_free(g);
		return NULL;
	}
	if (!start_listen && strcmp(g->cfg.query.listen, old->cfg.query.listen) != 0)
		RAG_WARN(&env->log, "serve: %s: query.listen is now \"%s\": the server stays on %s "
			 "until a restart", why, g->cfg.query.listen, here);
	if (server_start_after(old->srv, &g->cfg, mode, &env->log, &g->srv, err)) {
		RAG_ERROR(&env->log, "serve: %s: the new server did not start: %s; still serving "
			  "with the old configuration", why, err->msg);
		rag_error_prefix(err, "the %s server did not start", qmode_name(mode));
		generation_free(g);
		return NULL;
	}
	RAG_INFO(&env->log, "serve: %s: %s mode, replica %s on %s; the old server finishes its "
		 "requests", why, qmode_name(mode), server_replica(g->srv), here);
	return g;
}

int cmd_serve(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"mode", required_argument, NULL, 'm'}, {"listen", required_argument, NULL, 'l'},
		{"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
		{"warm", no_argument, NULL, 'w'}, {NULL, 0, NULL, 0},
	};
	const char *mode_s = NULL, *listen = NULL, *addr, *colon;
	bool warm = false;
	generation *g;
	rag_error err = {0};
	qmode mode;
	char here[300];
	int opt, host_len;
	mode_switch ms = {.state = MS_IDLE};
	server_mode_hook hook = {on_mode, &ms};

	optind = 1;
	while ((opt = getopt_long(argc, argv, "m:l:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm': mode_s = optarg; break;
		case 'l': listen = optarg; break;
		case 'w': warm = true; break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(serve_usage, stdout); cli_print_modes(stdout); return CLI_OK;
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
	g->cfg.query.warm |= warm;
	/* query.mode was checked at load; --mode is checked here */
	if (!pick_mode(mode_s, &g->cfg, &mode)) {
		generation_free(g);
		return CLI_USAGE;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&ms.lock, NULL);
	pthread_cond_init(&ms.cond, NULL);
	if (server_start(&g->cfg, mode, listen, &hook, &env->log, &g->srv, &err)) {
		generation_free(g);
		pthread_mutex_destroy(&ms.lock);
		pthread_cond_destroy(&ms.cond);
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
		generation *next;
		bool switching = false;
		qmode want = mode;

		pthread_mutex_lock(&ms.lock);
		if (ms.state == MS_PENDING) {
			switching = true;
			want = ms.want;
		} else if (!serve_reload) {
			/* signals are polled every 100 ms; a switch wakes us at once */
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 100000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&ms.cond, &ms.lock, &until);
			pthread_mutex_unlock(&ms.lock);
			continue;
		}
		ms.state = MS_BUSY; /* until the old server has stopped: see mode_switch */
		pthread_mutex_unlock(&ms.lock);
		if (switching) {
			memset(&err, 0, sizeof(err));
			next = reload(env, g, qmode_name(want), warm, listen, here, "POST /v1/mode",
				      &err);
			if (next) {
				mode_s = qmode_name(want); /* static; stays across SIGHUPs */
				mode = want;
			}
			pthread_mutex_lock(&ms.lock);
			mode_answer(&ms, next ? RAG_OK : err.rc, err.msg,
				    next ? server_index_version(next->srv) : 0);
			pthread_mutex_unlock(&ms.lock);
		} else {
			serve_reload = 0;
			memset(&err, 0, sizeof(err));
			if ((next = reload(env, g, mode_s, warm, listen, here, "SIGHUP", &err)))
				mode = server_mode(next->srv);
		}
		if (next) {
			generation_free(g); /* its requests finish; the switch's answer is one */
			g = next;
		}
		pthread_mutex_lock(&ms.lock);
		ms.state = MS_IDLE;
		pthread_mutex_unlock(&ms.lock);
	}
	RAG_INFO(&env->log, "serve: stopping (flushing the query log)");
	pthread_mutex_lock(&ms.lock);
	if (ms.state == MS_PENDING)
		mode_answer(&ms, RAG_ECANCELED, "the server is stopping", 0);
	ms.state = MS_CLOSED;
	pthread_mutex_unlock(&ms.lock);
	generation_free(g);
	pthread_mutex_destroy(&ms.lock);
	pthread_cond_destroy(&ms.cond);
	return CLI_OK;
}
