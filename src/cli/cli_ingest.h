/*
 * cli_ingest — what the ingestion commands share (cmd_ingest.c,
 * cmd_daemon.c): their options and the session they open.
 */
#ifndef CLI_INGEST_H
#define CLI_INGEST_H

#include <stdbool.h>

#include "cli.h"
#include "ingest.h"

/* A configuration, its S3 client and an open pipeline. */
typedef struct ingest_session {
	rag_config cfg;
	s3_client *s3;
	ingest_ctx ic;
	bool open;
} ingest_session;

/* Open a session; shard ("I/N") may be NULL. Returns CLI_OK or the exit
 * code after printing why; on failure *s is as after ingest_session_close().
 * Closing is idempotent: a closed session may be closed again. */
int ingest_session_open(cli_env *env, ingest_session *s, const char *shard);
void ingest_session_close(ingest_session *s);

/* The S3 requests of the stages of one kind (rag_stage.h), one line each. */
void ingest_print_storage(s3_client *c, rag_stage_kind kind);

/* The options a command may take beyond --config and --help. */
enum { OPT_QUIET = 1, OPT_SHARD = 2, OPT_LISTEN = 4, OPT_FAILED = 8 };

typedef struct ingest_opts {
	bool quiet, failed;
	const char *shard, *listen;
} ingest_opts;

/* Parse argv; an option outside `allowed` is a usage error. */
bool ingest_parse_opts(cli_env *env, int argc, char **argv, const char *usage, unsigned allowed,
		       ingest_opts *o);

#endif
