#ifndef MT_ENGINE_H
#define MT_ENGINE_H
/* The HTTP engine: libcurl multi driven by the caller's libuv loop
 * (socket/timer callbacks, one uv_poll_t per socket, one uv_timer_t).
 * POSTs JSON bodies (and GETs for health checks), keeps connections alive
 * and reuses them (HTTP/2 multiplexing over TLS where offered), captures the status, the body (into a
 * capped buffer) and the response headers the request names. Knows nothing
 * of any provider: auth headers and the headers to keep come with the request.
 *
 * Threads: everything on the loop thread. Memory: a transfer holds its easy
 * handle, its header list and its received body; finished transfers go to a
 * small free list for reuse, keeping their options and header list for the
 * next request. A socket curl opens keeps its uv_poll_t until curl closes it,
 * so a kept-alive connection's next request starts no watcher (while no
 * transfer uses it, an event on it stops its watcher). Thousands may be
 * added at once: curl queues those above the connection limits itself. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct engine;

struct engine_opts {
	long max_host_connections;  /* per host; 0: 64 */
	long max_total_connections; /* 0: 4 * max_host_connections */
	size_t body_max;            /* reply body cap; 0: 8 MiB (over it: -EMSGSIZE) */
	size_t free_max;            /* idle transfers kept for reuse; 0: 64 */
};

/* Response headers one request may ask to keep (engine_req.capture). */
#define ENGINE_CAPTURE_MAX 8

struct engine_req {
	const char *url;       /* borrowed, copied by curl */
	const char *body;      /* borrowed: must stay valid until the callback */
	size_t body_len;
	const char *headers;   /* may be NULL: extra request header lines
	                          "Name: value", separated by '\n' (the provider's
	                          auth); may carry a key: copied into curl's header
	                          list only, never logged */
	const char *const *capture; /* may be NULL: names of the response headers
	                          to keep (NULL-terminated, at most ENGINE_CAPTURE_MAX,
	                          any case); borrowed until the callback */
	long timeout_ms;       /* whole transfer; 0: 120 s */
	bool get;              /* a GET (body ignored) instead of the POST */
	const char *method;    /* "GET" or "POST"; NULL: POST */
	const char *content_type; /* the body's type; NULL: application/json */
};

/* The outcome of one transfer, valid only during the callback. */
struct engine_resp {
	int err;               /* 0: an HTTP response arrived (any status); else
	                          -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET,
	                          -EBADMSG (body cut short of its Content-Length),
	                          -EMSGSIZE (over body_max), -EPROTO (TLS), -ECANCELED
	                          (engine closed), -EINVAL, -ENOMEM or -EIO */
	const char *errmsg;    /* curl's detail for err ("" when none) */
	long status;           /* HTTP status, 0 when none */
	const char *body;      /* NUL-terminated, body_len bytes ("" when none) */
	size_t body_len;
	double latency_ms;
	/* The captured headers: hdr_values[i] is the value of the request's
	 * capture[i], trimmed and cut to 63 bytes, NULL when absent. */
	const char *const *hdr_names;
	const char *hdr_values[ENGINE_CAPTURE_MAX];
};

typedef void (*engine_cb)(void *ud, const struct engine_resp *resp);

/* Creates an engine on loop (borrowed; must outlive the engine). opts may be
 * NULL. Returns 0 and *out, or -ENOMEM / -EIO (curl could not start). */
int engine_new(uv_loop_t *loop, const struct engine_opts *opts, struct engine **out);
/* Starts a request (a POST unless req->method says GET). Returns 0 and later calls cb exactly once from the loop
 * (never from inside engine_send), or fails with -EINVAL (bad request),
 * -ESHUTDOWN (engine closing) or -ENOMEM and never calls cb. */
int engine_send(struct engine *e, const struct engine_req *req, engine_cb cb, void *ud);
/* The value of the captured response header name (any case), or NULL when
 * it was not asked for or not sent. Borrowed from r. */
const char *engine_resp_header(const struct engine_resp *r, const char *name);
/* Transfers added and not yet called back. */
size_t engine_in_flight(const struct engine *e);
/* Connections opened so far (CURLINFO_NUM_CONNECTS summed), for tests of reuse. */
uint64_t engine_connects(const struct engine *e);

/* What the engine did so far, for tests that check the cost of a call by
 * counts: a kept-alive connection's next request sets up nothing anew. */
struct engine_counters {
	uint64_t easy_setups;   /* easy handles given their fixed options (new, or GET <-> POST) */
	uint64_t header_builds; /* request header lists built (not kept from the last request) */
	uint64_t poll_inits;    /* sockets given a watcher */
	uint64_t poll_starts;   /* watchers started or changed (uv_poll_start) */
	uint64_t idle_wakes;    /* events on a kept-alive connection no transfer used (it stops) */
	uint64_t timer_starts;  /* curl's timer armed anew (an unchanged deadline is not) */
};

/* Copies e's counters to *out (zeros when e is NULL). Loop thread. */
void engine_counters_get(const struct engine *e, struct engine_counters *out);
/* Closes the engine: from the next loop turn, transfers still running are
 * called back with -ECANCELED, curl is cleaned up, the timer and the polls
 * are closed; when the last handle is closed, closed(ud) runs (may be NULL)
 * and the engine is freed. Safe from inside an engine callback. e may be NULL. */
void engine_close(struct engine *e, void (*closed)(void *ud), void *ud);

#endif
