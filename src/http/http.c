/*
 * http.c — see http.h.
 *
 * The listening socket is made here, not by MHD: its port must be known
 * before the first request is accepted, because the server's name
 * ("<hostname>:<port>") goes on every reply (invariant 6); and a server
 * that takes over from another (http_options.share) serves on the same
 * socket. The socket (an http_listener) is counted: each server holds a
 * reference and hands MHD a dup() of it; the last one to stop shuts it.
 *
 * Why one socket rather than two bound to one port with SO_REUSEPORT: the
 * kernel resets the connections it had queued to a listening socket that
 * closes, and refuses some that race its close; one socket that never
 * closes while the process serves has no such window. It still gets what
 * MHD_OPTION_LISTENING_ADDRESS_REUSE would give it (SO_REUSEADDR and
 * SO_REUSEPORT), as the servers of before had.
 *
 * A stop (invariant 4) is: MHD_quiesce_daemon() (MHD no longer accepts; a
 * server sharing the socket accepts what comes), shutdown() of the socket
 * if no other server holds it (new connections are refused rather than
 * queued for nobody), wait until no connection is busy, MHD_stop_daemon().
 * Quiescing needs MHD_USE_ITC with an internal polling thread.
 *
 * A connection is busy from its accept to the end of its first request,
 * and from the start to the end of each later one: idle between requests,
 * a kept-alive connection does not hold a stop up (MHD_stop_daemon()
 * closes it, as an idle timeout would). While the stop waits, replies say
 * "Connection: close", so a client that keeps its connection alive (a
 * load balancer) sends its next request on a new one, to the other server.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rag_buf.h"
#include "rag_util.h"

/* A listening socket and the servers that hold it (see the top). */
typedef struct http_listener {
	int fd;
	int port;
	int refs;     /* servers holding it; changed by http_start() and http_stop() only */
} http_listener;

struct http_server {
	struct MHD_Daemon *d;
	http_listener *ls;
	char *name;           /* NULL: none */
	http_handler handler;
	void *ctx;
	uint64_t max_body;
	unsigned timeout_s;
	atomic_bool draining; /* http_stop() has begun: replies close their connection */
	atomic_long busy;     /* connections that are busy (see the top) */
};

/* One connection: MHD's socket context. Only its own pool thread sees it. */
typedef struct http_conn {
	http_server *s;
	bool busy;
} http_conn;

/* One request while its body arrives: MHD's per-request state. */
typedef struct body_state {
	rag_buf body;
	bool too_large, no_memory;
} body_state;

/* ------------------------------------------------------------- replies */

/* The state of a connection (set by on_connection()), or NULL. */
static http_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void set_busy(http_conn *hc, bool busy)
{
	if (hc->busy != busy) {
		hc->busy = busy;
		atomic_fetch_add(&hc->s->busy, busy ? 1 : -1);
	}
}

enum MHD_Result http_send_text(struct MHD_Connection *c, unsigned status, const char *type,
			       char *body, size_t len)
{
	http_conn *hc = conn_of(c);
	http_server *s = hc ? hc->s : NULL;
	struct MHD_Response *r;
	enum MHD_Result ok;

	if (!body && len) /* the caller's copy failed */
		return MHD_NO;
	if (!(r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE))) {
		free(body);
		return MHD_NO;
	}
	/* a header left out for want of memory does not stop the reply */
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (s && s->name)
		MHD_add_response_header(r, "X-Ragmap-Replica", s->name);
	if (s && atomic_load_explicit(&s->draining, memory_order_relaxed))
		MHD_add_response_header(r, "Connection", "close");
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

enum MHD_Result http_send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	if (!s)
		return MHD_NO;
	return http_send_text(c, status, "application/json", s, strlen(s));
}

enum MHD_Result http_send_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	json_t *j = json_pack("{s:s, s:i}", "error", msg, "status", status);

	/* a message that is not UTF-8 (it may quote a bad key) still gets an answer */
	if (!j)
		j = json_pack("{s:s, s:i}", "error", "(the error message is not UTF-8)", "status",
			      status);
	return http_send_json(c, status, j);
}

/* Constant time: the token's length and bytes do not leak through timing. */
static bool secret_equal(const char *want, const char *got)
{
	size_t wl = strlen(want), gl = strlen(got);
	unsigned char diff = 0;

	for (size_t i = 0; i < wl; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? got[i] : 0);
	return diff == 0 && gl == wl;
}

bool http_token_ok(struct MHD_Connection *c, const char *want, const char *query_param)
{
	const char *got;

	if (!want || !*want)
		return true;
	got = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (got && strncmp(got, "Bearer ", 7) == 0 && secret_equal(want, got + 7))
		return true;
	got = query_param ? MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, query_param) : NULL;
	return got && secret_equal(want, got);
}

/* ------------------------------------------------------------ requests */

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	http_conn *hc = *socket_context;

	(void)c;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		/* NULL when out of memory: on_request() then closes it */
		if ((hc = calloc(1, sizeof(*hc)))) {
			hc->s = cls;
			set_busy(hc, true); /* its first request is on its way */
		}
		*socket_context = hc;
	} else if (hc) {
		set_busy(hc, false);
		free(hc);
		*socket_context = NULL;
	}
}

/*
 * MHD calls this at least twice per request: once when the headers are in
 * (*state is NULL), once per piece of the body, and once more with *size 0
 * when the body is complete: only then is the handler called.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **state)
{
	http_server *s = cls;
	body_state *b = *state;
	http_request rq;

	(void)version;
	if (!b) {
		http_conn *hc = conn_of(c);
		if (!hc || !(b = calloc(1, sizeof(*b))))
			return MHD_NO;
		set_busy(hc, true);
		rag_buf_init(&b->body, (size_t)s->max_body);
		*state = b;
		return MHD_YES;
	}
	if (*size) {
		if (!b->too_large && !b->no_memory) {
			rag_rc rc = rag_buf_append(&b->body, data, *size);
			/* keep reading either way: the answer comes at the end */
			b->too_large = rc == RAG_ETOOBIG;
			b->no_memory = rc != RAG_OK && rc != RAG_ETOOBIG;
		}
		*size = 0;
		return MHD_YES;
	}
	if (b->no_memory)
		return http_send_error(c, 500, "out of memory holding the request body");
	rq = (http_request){
		.conn = c,
		.method = method,
		.url = url,
		.body = b->body.data ? b->body.data : "",
		.len = b->body.len,
		.too_large = b->too_large,
		.name = s->name,
	};
	return s->handler(s->ctx, &rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
			 enum MHD_RequestTerminationCode code)
{
	body_state *b = *state;
	http_conn *hc = conn_of(c);

	(void)cls, (void)code;
	if (hc)
		set_busy(hc, false); /* idle until its next request, if any */
	if (b) {
		rag_buf_release(&b->body);
		free(b);
		*state = NULL;
	}
}

/* ------------------------------------------------------------ lifecycle */

static rag_rc parse_listen(const char *listen, const char *what, struct sockaddr_in *sa,
			   rag_error *err)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	int64_t port;

	if (!colon || (size_t)(colon - listen) >= sizeof(host) || !rag_parse_i64(colon + 1, &port) ||
	    port < 0 || port > 65535)
		return rag_error_set(err, RAG_ECONFIG, "%s: \"%s\" is not HOST:PORT", what, listen);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (strcmp(host, "localhost") == 0)
		rag_strlcpy(host, "127.0.0.1", sizeof(host));
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return rag_error_set(err, RAG_ECONFIG, "%s: \"%s\" is not an IPv4 address", what, host);
	return RAG_OK;
}

/* A new listener bound to opts->listen (invariant 5). */
static rag_rc listen_on(const http_options *opts, http_listener **out, rag_error *err)
{
	http_listener *ls = calloc(1, sizeof(*ls));
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	int on = 1;
	rag_rc rc;

	*out = NULL;
	if (!ls)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	ls->refs = 1;
	if ((rc = parse_listen(opts->listen, opts->what, &sa, err)))
		goto fail;
	if ((ls->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		rc = rag_error_set(err, RAG_EIO, "%s: cannot listen on %s: socket: %s", opts->what,
				   opts->listen, strerror(errno));
		goto fail;
	}
	/* like MHD, SO_REUSEADDR is best effort and SO_REUSEPORT is not */
	(void)setsockopt(ls->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (setsockopt(ls->fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
	    bind(ls->fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(ls->fd, SOMAXCONN) != 0 ||
	    getsockname(ls->fd, (struct sockaddr *)&sa, &salen) != 0) {
		rc = rag_error_set(err, RAG_EIO, "%s: cannot listen on %s: %s", opts->what,
				   opts->listen, strerror(errno));
		close(ls->fd);
		goto fail;
	}
	ls->port = ntohs(sa.sin_port);
	*out = ls;
	return RAG_OK;
fail:
	free(ls);
	return rc;
}

/* Let go of a listener; the last holder closes it. */
static void listener_release(http_listener *ls)
{
	if (ls && --ls->refs == 0) {
		close(ls->fd);
		free(ls);
	}
}

/* s->name from opts->name (see http_options); needs s->ls. */
static rag_rc name_server(http_server *s, const http_options *opts, rag_error *err)
{
	const char *name = opts->name, *what = opts->name_what ? opts->name_what : "server name";
	char host[256], buf[300];

	if (!name)
		return RAG_OK;
	if (!*name) {
		if (gethostname(host, sizeof(host)) != 0)
			return rag_error_set(err, RAG_EIO, "%s is empty and gethostname failed: %s",
					     what, strerror(errno));
		host[sizeof(host) - 1] = '\0';
		snprintf(buf, sizeof(buf), "%s:%d", host, s->ls->port);
		name = buf;
	}
	/* it goes into a header (no CR, LF or other control) and into JSON */
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return rag_error_set(err, RAG_ECONFIG, "%s: the name has a control character "
					     "(byte %d at offset %zu)", what, *p, (size_t)(p - name));
	if (!rag_utf8_valid(name, strlen(name)))
		return rag_error_set(err, RAG_ECONFIG, "%s: the name is not UTF-8", what);
	if (!(s->name = rag_strdup(name)))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	return RAG_OK;
}

rag_rc http_start(const http_options *opts, http_handler h, void *ctx, http_server **out,
		  rag_error *err)
{
	http_server *s = calloc(1, sizeof(*s));
	const char *where = opts->share ? "the socket it shares" : opts->listen;
	int give = -1;
	rag_rc rc;

	*out = NULL;
	if (!s)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	atomic_init(&s->draining, false);
	atomic_init(&s->busy, 0);
	s->handler = h;
	s->ctx = ctx;
	s->max_body = opts->max_body;
	s->timeout_s = opts->timeout_s;
	if (opts->share) {
		s->ls = opts->share->ls;
		s->ls->refs++;
	} else if ((rc = listen_on(opts, &s->ls, err))) {
		goto fail;
	}
	if ((rc = name_server(s, opts, err)))
		goto fail;
	/*
	 * MHD gets a duplicate: it closes the socket it is given on some of its
	 * failure paths and not on others, so ours stays ours to shut down (no
	 * listener left behind) at the price of one descriptor leaked when MHD
	 * fails and keeps its copy open.
	 */
	if ((give = dup(s->ls->fd)) < 0) {
		rc = rag_error_set(err, RAG_EIO, "%s: cannot listen on %s: dup: %s", opts->what, where,
				   strerror(errno));
		goto fail;
	}
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY |
					MHD_USE_TURBO | MHD_USE_ITC,
				0, NULL, NULL, on_request, s,
				MHD_OPTION_LISTEN_SOCKET, (MHD_socket)give,
				MHD_OPTION_THREAD_POOL_SIZE, opts->threads,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				MHD_OPTION_CONNECTION_TIMEOUT, opts->timeout_s,
				MHD_OPTION_CONNECTION_LIMIT, 1024u,
				MHD_OPTION_END);
	if (!s->d) {
		rc = rag_error_set(err, RAG_EIO, "%s: cannot serve on %s (libmicrohttpd did not "
				   "start: out of threads, descriptors or memory?)", opts->what, where);
		goto fail;
	}
	*out = s;
	return RAG_OK;
fail:
	http_stop(s);
	return rc;
}

int http_port(const http_server *s)
{
	return s->ls->port;
}

const char *http_name(const http_server *s)
{
	return s->name;
}

/* Wait until no connection is busy, at most timeout_s + 1 seconds: a
 * request that takes longer is cut off. */
static void drain(http_server *s)
{
	uint64_t until = rag_now_ns() + ((uint64_t)s->timeout_s + 1) * 1000000000u;

	while (atomic_load(&s->busy) > 0 && rag_now_ns() < until)
		rag_sleep_ms(5);
}

bool http_draining(const http_server *s)
{
	return atomic_load(&s->draining);
}

void http_stop(http_server *s)
{
	MHD_socket quiet = MHD_INVALID_SOCKET;

	if (!s)
		return;
	/* MHD's copy of the socket comes back to us, MHD no longer polls it;
	 * should that fail, MHD_stop_daemon() closes it */
	if (s->d)
		quiet = MHD_quiesce_daemon(s->d);
	/* the last holder refuses new connections at once: none would be accepted */
	if (s->ls && s->ls->refs == 1)
		shutdown(s->ls->fd, SHUT_RDWR);
	if (s->d) {
		if (quiet != MHD_INVALID_SOCKET) {
			atomic_store(&s->draining, true);
			drain(s);
		}
		MHD_stop_daemon(s->d); /* waits for the pool threads */
		if (quiet != MHD_INVALID_SOCKET)
			close(quiet);
	}
	listener_release(s->ls);
	free(s->name);
	free(s);
}
