/*
 * cli — the process boundary. Only code under src/cli/ prints to the
 * terminal, exits or maps rag_rc codes to exit statuses.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "rag_config.h"
#include "rag_err.h"
#include "rag_log.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Options every command accepts; filled by the dispatcher. */
typedef struct cli_env {
	const char *config_path; /* --config, or NULL */
	rag_log log;
	bool quiet;     /* --quiet: no notices, no info lines (cli_set_quiet()) */
	bool no_s3;     /* the command makes no S3 request: no endpoint notice */
	bool noted;     /* the endpoint notice was printed (once per process) */
} cli_env;

typedef struct cli_command {
	const char *name;
	int (*run)(cli_env *env, int argc, char **argv); /* argv[0] is the name */
	const char *summary;
} cli_command;

/* Print "ragmap: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print err as one line and return the matching exit code. */
int cli_fail(const rag_error *err);

/* The exit code for a rag_rc: 2 for configuration and usage, else 1. */
int cli_exit_code(rag_rc rc);

/*
 * Load the configuration for env and check what the core cannot check
 * itself (query.mode against the query module's names), so every command
 * rejects a bad value the same way. On error prints it and returns false
 * (the exit code is then CLI_USAGE); on success the caller owns *cfg.
 *
 * When s3.endpoint is the built-in default, prints one notice saying so on
 * stderr ("ragmap: note: endpoint ... is the built-in default (no config
 * file, ...)"), once per process, unless env->quiet, env->no_s3 or
 * RAGMAP_LOG=error.
 */
bool cli_load_config(cli_env *env, rag_config *cfg);

/* cli_load_config() for its checks alone, for a command that reads no
 * setting before it reads its input (a model directory): a bad setting
 * stops it first, as it stops every other command. */
bool cli_check_config(cli_env *env);

/* The backing modes, one line each from qmode.h's table, for help texts. */
void cli_print_modes(FILE *f);

/* --quiet: no notices, and the log only says warnings and errors. */
void cli_set_quiet(cli_env *env);

/*
 * Load the configuration and make an S3 client for it: what most commands
 * do first. On failure prints why, releases cfg and returns the exit code;
 * on success the caller owns *cfg and *out.
 */
struct s3_client;
int cli_open_s3(cli_env *env, rag_config *cfg, struct s3_client **out);

/* True when argv has -h or --help before any "--". */
bool cli_wants_help(int argc, char **argv);

int cmd_s3(cli_env *env, int argc, char **argv);
int cmd_config(cli_env *env, int argc, char **argv);
int cmd_bench(cli_env *env, int argc, char **argv);
int cmd_ingest(cli_env *env, int argc, char **argv);
int cmd_daemon(cli_env *env, int argc, char **argv);
int cmd_status(cli_env *env, int argc, char **argv);
int cmd_model(cli_env *env, int argc, char **argv);
int cmd_embed(cli_env *env, int argc, char **argv);
int cmd_gc(cli_env *env, int argc, char **argv);
int cmd_compact(cli_env *env, int argc, char **argv);
int cmd_query(cli_env *env, int argc, char **argv);
int cmd_serve(cli_env *env, int argc, char **argv);
int cmd_eval(cli_env *env, int argc, char **argv);
int cmd_cost(cli_env *env, int argc, char **argv);
int cmd_verify(cli_env *env, int argc, char **argv);

#endif
