/*
 * ragmap serve — the query server in one backing mode.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
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
	"  picks a free port; the chosen address is printed on stdout.\n";

static volatile sig_atomic_t serve_stop;

static void on_signal(int sig)
{
	(void)sig;
	serve_stop = 1;
}

int cmd_serve(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"mode", required_argument, NULL, 'm'}, {"listen", required_argument, NULL, 'l'},
		{"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *mode_s = NULL, *listen = NULL;
	rag_config cfg;
	rag_error err = {0};
	server *srv;
	qmode mode;
	char modes[128];
	int opt;

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
	if (!cli_load_config(env, &cfg))
		return CLI_USAGE;
	/* query.mode was checked at load; --mode is checked here */
	if (!qmode_parse(mode_s ? mode_s : cfg.query.mode, &mode)) {
		cli_error("serve: unknown mode \"%s\" (%s)", mode_s ? mode_s : cfg.query.mode,
			  cli_mode_list(modes, sizeof(modes)));
		rag_config_release(&cfg);
		return CLI_USAGE;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (server_start(&cfg, mode, listen, &env->log, &srv, &err)) {
		rag_config_release(&cfg);
		return cli_fail(&err);
	}
	{
		const char *addr = listen ? listen : cfg.query.listen;
		const char *colon = strrchr(addr, ':');
		printf("ragmap serve: %s mode, listening on http://%.*s:%d\n", qmode_name(mode),
		       colon ? (int)(colon - addr) : 0, addr, server_port(srv));
		fflush(stdout);
	}
	while (!serve_stop)
		rag_sleep_ms(100);
	RAG_INFO(&env->log, "serve: stopping (flushing the query log)");
	server_stop(srv);
	rag_config_release(&cfg);
	return CLI_OK;
}
