/*
 * ragmap daemon — ingest continuously: a pass over the source prefixes
 * every ingest.poll_s seconds, and, with --listen, a pass over the keys of
 * S3 event notifications within ingest.event_window_ms of their arrival.
 *
 * Events make ingestion fast; the poll makes it right. Notifications can
 * be lost, repeated or reordered, so an event only says "look at this key
 * now": the key is HEADed and reconciled like a listed one, and the
 * periodic full pass catches whatever no event announced.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_ingest.h"
#include "endpoint.h"
#include "events.h"
#include "rag_util.h"

static volatile sig_atomic_t stop_flag, reload_flag, wake_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
	wake_flag = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	reload_flag = 1;
	wake_flag = 1;
}

typedef struct daemon_state {
	cli_env *env;
	const char *shard;       /* --shard, or NULL */
	const char *listen;      /* --listen, or NULL: ingest.listen */
	ingest_session s;
	evq *q;
	ingest_endpoint *ep;     /* NULL without an address */
	char asked[256];         /* the address asked for, and the one bound */
	char bound[256];
	json_t *last;            /* the last pass, for /v1/status */
	unsigned failed_passes;  /* event passes failed in a row (backoff) */
} daemon_state;

/* ---------------------------------------------------------------- status */

static json_t *pass_json(const char *kind, size_t keys, const ingest_summary *s,
			 const rag_error *err)
{
	json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
			      "kind", kind, "at", (json_int_t)time(NULL), "listed",
			      (json_int_t)s->listed, "others", (json_int_t)s->others, "unchanged",
			      (json_int_t)s->unchanged, "deferred", (json_int_t)s->deferred,
			      "documents", (json_int_t)s->documents, "chunks", (json_int_t)s->chunks,
			      "tombstoned", (json_int_t)s->tombstoned, "version",
			      (json_int_t)s->version, "commits", (json_int_t)s->commits, "conflicts",
			      (json_int_t)s->conflicts, "failed", (json_int_t)s->status[OBJ_FAILED],
			      "total_ms", s->total_ms);

	if (j && keys)
		json_object_set_new(j, "keys", json_integer((json_int_t)keys));
	if (j && s->truncated)
		json_object_set_new(j, "truncated", json_integer((json_int_t)s->truncated));
	if (j && err)
		json_object_set_new(j, "error", json_string(err->msg));
	return j;
}

static void publish_status(daemon_state *d)
{
	const ingest_ctx *ic = &d->s.ic;
	json_t *prefixes, *j;
	char shard[32];

	if (!d->ep)
		return;
	prefixes = json_array();
	for (size_t i = 0; i < ic->scope.nprefixes; i++)
		json_array_append_new(prefixes, json_string(ic->scope.prefixes[i]));
	snprintf(shard, sizeof(shard), "%u/%u", ic->scope.shard, ic->scope.shards);
	j = json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:I, s:o}", "role", "daemon", "index",
		      d->s.cfg.index.name, "bucket", d->s.cfg.s3.bucket, "prefixes", prefixes,
		      "shard", shard, "version", (json_int_t)ic->latest.version, "poll_s",
		      (json_int_t)d->s.cfg.ingest.poll_s, "event_window_ms",
		      (json_int_t)d->s.cfg.ingest.event_window_ms, "failed",
		      manifest_failed_json(&ic->latest));
	if (j && d->last)
		json_object_set(j, "last_pass", d->last);
	if (j)
		endpoint_set_status(d->ep, j);
}

/* ------------------------------------------------------------ lifecycle */

/*
 * Open the session and aim the queue and the endpoint at it. Both live as
 * long as the process: a reload must not refuse a single event (RGW 16.2's
 * persistent queue can stall for good after a refused push, src/s3/s3.h),
 * so the endpoint keeps its address and only takes the new token.
 */
static int daemon_open(daemon_state *d)
{
	rag_error err = {0};
	const char *listen;
	int rc;

	if ((rc = ingest_session_open(d->env, &d->s, d->shard)))
		return rc;
	if (d->q ? evq_reconfigure(d->q, d->s.cfg.s3.bucket, &d->s.ic.scope, &err) != RAG_OK
		 : !(d->q = evq_new(d->s.cfg.s3.bucket, &d->s.ic.scope, &err)))
		return cli_fail(&err);
	listen = d->listen ? d->listen : d->s.cfg.ingest.listen;
	if (d->ep) {
		if (!listen || strcmp(listen, d->asked) != 0)
			RAG_WARN(&d->env->log, "ingest.listen changed: the endpoint stays on %s until a "
				 "restart", d->bound);
		if (endpoint_set_token(d->ep, d->s.cfg.ingest.token, &err))
			return cli_fail(&err);
	} else if (listen && *listen) {
		const char *colon = strrchr(listen, ':');
		if (endpoint_start(&d->s.cfg, listen, d->q, &d->env->log, &d->ep, &err))
			return cli_fail(&err);
		rag_strlcpy(d->asked, listen, sizeof(d->asked));
		snprintf(d->bound, sizeof(d->bound), "%.*s:%d", colon ? (int)(colon - listen) : 0,
			 listen, endpoint_port(d->ep));
		/* stdout, so that a script that asked for port 0 learns the port */
		printf("ragmap daemon: events on http://%s/v1/events\n", d->bound);
		fflush(stdout);
	}
	publish_status(d);
	return CLI_OK;
}

static void daemon_close(daemon_state *d)
{
	endpoint_stop(d->ep); /* no handler runs past this */
	d->ep = NULL;
	evq_free(d->q);
	d->q = NULL;
	ingest_session_close(&d->s);
}

/*
 * SIGHUP: the configuration is read again and the session reopened with
 * it. A configuration that does not load is refused and the daemon goes on
 * with the old one; queued event keys stay queued.
 */
static int daemon_reload(daemon_state *d)
{
	rag_config probe;

	RAG_INFO(&d->env->log, "SIGHUP: reloading the configuration");
	if (!cli_load_config(d->env, &probe)) {
		RAG_ERROR(&d->env->log, "SIGHUP: the new configuration does not load: keeping the old one");
		return CLI_OK;
	}
	rag_config_release(&probe);
	ingest_session_close(&d->s);
	return daemon_open(d);
}

/* ---------------------------------------------------------------- passes */

static void remember(daemon_state *d, json_t *pass)
{
	json_decref(d->last);
	d->last = pass;
	publish_status(d);
}

static void poll_pass(daemon_state *d)
{
	ingest_summary sum;
	rag_error err = {0};
	rag_rc rc;

	d->s.ic.stop = &stop_flag;
	if ((rc = ingest_run(&d->s.ic, &sum, &err)))
		RAG_ERROR(&d->env->log, "pass failed (will retry): %s", err.msg);
	else if (sum.version)
		RAG_INFO(&d->env->log, "pass: version %lld, %lld new documents, %lld chunks, %.0f ms",
			 (long long)sum.version, (long long)sum.documents, (long long)sum.chunks,
			 sum.total_ms);
	remember(d, pass_json("poll", 0, &sum, rc ? &err : NULL));
}

static void event_pass(daemon_state *d, char **keys, size_t n)
{
	ingest_summary sum;
	rag_error err = {0};
	rag_rc rc;

	d->s.ic.stop = &stop_flag;
	if ((rc = ingest_run_keys(&d->s.ic, keys, n, &sum, &err))) {
		/* the keys go back in the queue, and the next try waits (1 s,
		 * doubling to a minute): a store that keeps failing is not asked
		 * again every event window; the poll is the backstop */
		unsigned wait_ms = 1000u << (d->failed_passes < 6 ? d->failed_passes : 6);
		if (wait_ms > 60000)
			wait_ms = 60000;
		d->failed_passes++;
		RAG_ERROR(&d->env->log, "events: pass over %zu keys failed (requeued, next try in %u "
			  "ms): %s", n, wait_ms, err.msg);
		evq_requeue(d->q, keys, n);
		for (unsigned ms = 0; ms < wait_ms && !wake_flag; ms += 100)
			rag_sleep_ms(100);
	} else {
		d->failed_passes = 0;
		RAG_INFO(&d->env->log, "events: %zu keys, version %lld, %lld new documents, %lld "
			 "tombstoned, %.0f ms", n, (long long)sum.version, (long long)sum.documents,
			 (long long)sum.tombstoned, sum.total_ms);
	}
	remember(d, pass_json("events", n, &sum, rc ? &err : NULL));
}

static void maybe_refit(daemon_state *d)
{
	ingest_summary sum;
	rag_error err = {0};
	char why[512];

	if (stop_flag)
		return;
	if (ingest_refit_if_due(&d->s.ic, &sum, why, sizeof(why), &err))
		RAG_ERROR(&d->env->log, "refit failed: %s", err.msg);
	if (why[0])
		publish_status(d);
}

static const char daemon_usage[] =
	"usage: ragmap daemon [--config FILE] [--shard I/N] [--listen HOST:PORT]\n"
	"  Ingest continuously: a pass over the source prefixes every\n"
	"  ingest.poll_s seconds, and with --listen (or ingest.listen) an HTTP\n"
	"  endpoint for S3 event notifications:\n"
	"    POST /v1/events   {\"Records\": [...]} as AWS S3, MinIO and Ceph RGW\n"
	"                      send them; the keys are ingested within about\n"
	"                      ingest.event_window_ms plus one pass\n"
	"    GET  /v1/status   scope, version, last pass, failed objects, events\n"
	"  With ingest.token set, both need \"Authorization: Bearer TOKEN\"\n"
	"  (/v1/events also takes ?token=TOKEN, for push endpoints that are URLs).\n"
	"  --shard I/N: own the keys whose hash mod N is I (run N daemons).\n"
	"  SIGTERM/SIGINT: finish and commit the current batch, exit 0.\n"
	"  SIGHUP: reload the configuration (a bad one is refused, the old kept)\n"
	"  and make a full pass.\n";

int cmd_daemon(cli_env *env, int argc, char **argv)
{
	daemon_state d = {.env = env};
	ingest_opts o;
	uint64_t next_poll = 0;
	int rc;

	if (!ingest_parse_opts(env, argc, argv, daemon_usage, OPT_SHARD | OPT_LISTEN, &o))
		return CLI_USAGE;
	d.shard = o.shard;
	d.listen = o.listen;
	signal(SIGINT, on_stop); /* before the session: opening reads the store */
	signal(SIGTERM, on_stop);
	signal(SIGHUP, on_hup);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = daemon_open(&d)))
		goto out;
	{
		char where[512];
		RAG_INFO(&env->log, "daemon: watching s3://%s/ %s every %lld s%s", d.s.cfg.s3.bucket,
			 rag_scope_describe(&d.s.ic.scope, where, sizeof(where)),
			 (long long)d.s.cfg.ingest.poll_s, d.ep ? ", and S3 events" : "");
	}
	while (!stop_flag) {
		if (rag_now_ns() >= next_poll) {
			poll_pass(&d);
			maybe_refit(&d);
			next_poll = rag_now_ns() + (uint64_t)d.s.cfg.ingest.poll_s * 1000000000u;
		} else {
			size_t n;
			char **keys = evq_take(d.q, (unsigned)d.s.cfg.ingest.event_window_ms, next_poll,
					       &wake_flag, &n);
			if (n && !stop_flag) {
				event_pass(&d, keys, n);
				maybe_refit(&d);
			} else if (n) {
				evq_requeue(d.q, keys, n); /* counted as waiting in the last status */
			}
			evq_keys_free(keys, n);
		}
		/* clear the wake-up before looking at the flags: a signal after
		 * this line wakes the next wait, one before it is seen below */
		wake_flag = 0;
		if (reload_flag && !stop_flag) {
			reload_flag = 0;
			if ((rc = daemon_reload(&d)))
				goto out;
			next_poll = 0; /* the prefixes may have changed: a full pass now */
		}
	}
	RAG_INFO(&env->log, "daemon: stopped");
out:
	daemon_close(&d);
	json_decref(d.last);
	return rc;
}
