#ifndef MT_HTTP_H
#define MT_HTTP_H
/* A small HTTP/1.1 server on a libuv stream, parsing with http-parser 2.9.
 * Used by the daemon's socket API (Unix socket, peer uid checked with
 * SO_PEERCRED) and by the simulator (TCP on loopback).
 *
 * Everything here runs on the loop thread of its server; nothing is
 * thread-safe, but servers on different loops (threads) are independent.
 * The process must ignore SIGPIPE (a write to a vanished peer of a Unix
 * socket would otherwise kill it).
 *
 * Connections: keep-alive; pipelined requests are processed one at a time,
 * in order (the next request is parsed only once the previous response has
 * been fully queued); HTTP/1.0 closes unless it asked for keep-alive;
 * `Connection: close` is honoured. Malformed requests, an oversized header
 * section or too many header fields get a 400 JSON error and the connection
 * is closed; a body over its cap gets 413 and the connection is closed.
 * A request head that is not complete within request_timeout_ms gets 408;
 * a connection past max_connections gets 503 with Retry-After; both close
 * the connection after reading and dropping what the client still sends
 * for a moment (so the client reads the response, not a reset).
 *
 * LIFETIME OF struct http_req (read this before writing a handler)
 *  - The server creates a request when its headers are complete and hands
 *    it to the handler (on_request, then possibly on_body or a body sink).
 *  - The handler owns the request until exactly one of these happens:
 *      (a) it makes a FINAL call: http_respond, http_respond_json,
 *          http_respond_error, http_respond_raw or http_stream_end. Once a
 *          final call returns (whatever it returns), the handler must not
 *          touch the request again, and no callback for it will fire;
 *      (b) the abort callback set with http_req_on_abort fires: the client
 *          went away, a write failed, the connection timed out, the body
 *          broke its cap or was malformed, or http_server_close was called.
 *          After the abort callback returns the request is gone.
 *    A handler that keeps a request across loop iterations (a pending
 *    reply, an SSE stream) must set an abort callback to release its state.
 *  - Between the connection failing and the abort callback, non-final calls
 *    (http_stream_write, ...) are harmless and return -EPIPE; a final call
 *    in that window still ends ownership (and then no abort fires).
 *  - No callback of this module is ever invoked from inside a call the
 *    handler makes into this module (no reentrancy): the next pipelined
 *    request, the abort and the drain callbacks always come from the loop.
 *  - Strings returned by the accessors are owned by the request and valid
 *    while the handler owns it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

struct http_server;
struct http_req;

/* Limits; a zero field takes the default shown. */
struct http_server_config {
	size_t max_body;             /* buffered body cap per request: 1 MiB */
	uint64_t max_content_length; /* absolute cap on any body, even streamed: 1 GiB */
	size_t max_header_bytes;     /* request line + header fields: 16 KiB */
	unsigned max_headers;        /* header fields per request: 64 */
	unsigned max_connections;    /* open connections: 256; one more gets a 503 */
	/* A connection is closed when the client makes no progress (sends
	 * nothing and takes none of the queued output) for this long: 60000.
	 * Waiting for the handler with nothing queued is not idleness. */
	unsigned idle_timeout_ms;
	/* A request head (request line and headers) must be complete within
	 * this after the connection opens, or after the first byte of a later
	 * request arrives: 30000; else 408 and the connection is closed. */
	unsigned request_timeout_ms;
	/* Per-connection output cap: 4 MiB. Streams should stop producing at
	 * the high-water mark, min(128 KiB, stream_buffer / 2) (see
	 * http_stream_full); a connection whose queued output stays above the
	 * cap for idle_timeout_ms is closed. */
	size_t stream_buffer;
	size_t stream_low_water;     /* drain callback threshold: min(64 KiB, high-water / 2) */
};

struct http_handler {
	/* Called when a request's headers are complete. May be NULL. The handler
	 * may respond right away (the body, if any, is then discarded, or the
	 * connection is closed when it is large or chunked), install a body sink
	 * (http_req_stream_body), change the body cap (http_req_set_body_cap),
	 * or do nothing and wait for on_body. */
	void (*on_request)(void *ud, struct http_req *req);
	/* Called once the whole body has been buffered (body is NUL-terminated,
	 * len may be 0, owned by the request) for every request whose handler
	 * neither made a final call nor installed a sink in on_request. */
	void (*on_body)(void *ud, struct http_req *req, const char *body, size_t len);
	void *ud;
};

/* Creates a server that calls `handler` (copied). cfg may be NULL for the
 * defaults (copied). Returns NULL on allocation failure. Listens nowhere
 * until http_server_listen_*. */
struct http_server *http_server_new(const struct http_handler *handler,
				    const struct http_server_config *cfg);

/* Listens on a Unix socket at `path` (borrowed; < 108 bytes, else
 * -ENAMETOOLONG). The socket is created 0600 (umask around bind, no chmod
 * race). If `path` exists: a live listener -> -EADDRINUSE ("already
 * running"); a stale socket (ECONNREFUSED) is unlinked and replaced; a
 * non-socket -> -EEXIST. Every accepted connection whose peer uid
 * (SO_PEERCRED) differs from geteuid() is closed at once with a warning.
 * http_server_close unlinks the path. Returns 0 or a negative errno; errors
 * are logged once. A server listens on one address only (-EBUSY). */
int http_server_listen_unix(struct http_server *s, uv_loop_t *loop, const char *path);

/* Listens on TCP host:port (IPv4 or IPv6 literal; port 0 = ephemeral, see
 * http_server_port). No peer check: meant for loopback (the simulator).
 * Returns 0 or a negative errno / UV_E*. */
int http_server_listen_tcp(struct http_server *s, uv_loop_t *loop, const char *host, int port);

/* The bound TCP port, or -1 when not listening on TCP. */
int http_server_port(const struct http_server *s);

/* Open connections right now (for tests and metrics). */
unsigned http_server_connection_count(const struct http_server *s);

/* Test hook: the peer uid Unix connections must have (default geteuid()). */
void http_server_set_allowed_uid(struct http_server *s, uid_t uid);

/* Stops listening, closes every connection (requests still owned by the
 * handler get their abort callback), unlinks the Unix socket path, and calls
 * cb(ud) once every handle is closed (from the loop; or before returning
 * when nothing was ever opened). Call once. The server memory stays until
 * http_server_free, which may be called from cb. */
void http_server_close(struct http_server *s, void (*cb)(void *ud), void *ud);

/* Frees a server that has no open handle (never listened, or closed and its
 * close callback called). NULL is a no-op. */
void http_server_free(struct http_server *s);

/* ---- Test seam (tests/fuzz/fuzz_http.c): a connection without a listener ---- */

/* Serves one more connection on fd (taken, closed on failure too): a
 * connected socket, or the write end of a pipe whose read end the caller
 * drains to see the responses. It behaves exactly as an accepted Unix
 * connection, minus the peer uid check. s must not listen; loop must be the
 * same for every call. Returns 0, -EBUSY, -ENOMEM or a UV_E* code. */
int http_server_adopt_fd(struct http_server *s, uv_loop_t *loop, int fd);

/* Hands len bytes (1..64 KiB, borrowed) to the newest connection as one read
 * from its stream would. Returns 0; -EAGAIN when the connection would not
 * read now (its handler holds a request, input is backed up, the body is
 * paused): run the loop and try again; -ENOTCONN when it is gone or takes no
 * more input (closing, or done after Connection: close or an error);
 * -EINVAL for len 0 or over 64 KiB. Loop thread only. */
int http_server_feed(struct http_server *s, const char *data, size_t len);

/* ---- Handing connections between loops (daemon/front.c) ---- */

enum http_classify { HTTP_CLASSIFY_KEEP, HTTP_CLASSIFY_DETACH, HTTP_CLASSIFY_MORE };

/* Before a connection parses each request, classify(ud, data, len) sees the
 * input held so far (borrowed, from the request's first byte; len > 0):
 * KEEP parses and serves it here; MORE waits for more input (the request
 * head still counts against the timeouts); DETACH hands the connection
 * over, once every earlier response has been written: detach(ud, fd,
 * data, len) gets a new fd of the socket (taken) and the unparsed input
 * (borrowed: copy it), and this server closes its side without touching
 * the socket. Set before listening; NULL classify turns it off. Both
 * callbacks run on this server's loop thread. */
void http_server_set_detach(struct http_server *s,
			    int (*classify)(void *ud, const char *data, size_t len),
			    void (*detach)(void *ud, int fd, const char *data, size_t len), void *ud);

/* Serves a connection handed over by another server: fd (taken, closed on
 * failure too) with len bytes already read from it (borrowed, copied; at
 * most 256 KiB), as an accepted Unix connection whose peer was checked.
 * The server need not listen; loop must be the same for every call.
 * Returns 0, -EBUSY (closing, or another loop), -ENOMEM, -ENOBUFS or a
 * UV_E* code. Loop thread only. */
int http_server_adopt(struct http_server *s, uv_loop_t *loop, int fd, const char *data,
		      size_t len);

/* cb(ud, req) runs just before every response head this server writes
 * (http_respond*, http_stream_start), on the loop thread; it must not call
 * into this module for req. The daemon publishes its status snapshot there,
 * so a client never reads a snapshot older than a response it got. */
void http_server_on_respond(struct http_server *s, void (*cb)(void *ud, struct http_req *req),
			    void *ud);

/* ---- Requests: accessors (valid while the handler owns the request) ---- */

/* "GET", "POST", ... */
const char *http_req_method(const struct http_req *req);
/* The path as sent, without query string or fragment (not percent-decoded). */
const char *http_req_path(const struct http_req *req);
/* The raw query string after '?', "" when none. */
const char *http_req_query_string(const struct http_req *req);
/* The first value of query parameter `name`, percent- and '+'-decoded, or
 * NULL when absent ("" for `?name` or `?name=`). */
const char *http_req_query(const struct http_req *req, const char *name);
/* The first value of header `name` (case-insensitive), or NULL. */
const char *http_req_header(const struct http_req *req, const char *name);
/* Number of header fields, and the i-th name/value (0 <= i < count). */
unsigned http_req_header_count(const struct http_req *req);
void http_req_header_at(const struct http_req *req, unsigned i, const char **name,
			const char **value);
/* The declared Content-Length, or -1 (none, or chunked). */
int64_t http_req_content_length(const struct http_req *req);

/* ---- Requests: the body ---- */

/* Changes the buffered body cap of this request (call in on_request).
 * A Content-Length above it gets 413 before anything is read. */
void http_req_set_body_cap(struct http_req *req, size_t cap);

/* Installs a streaming body sink instead of buffering (call in on_request).
 * on_data(ctx, req, data, len) gets the body as it arrives (data valid during
 * the call only); on_end(ctx, req) once it is complete (also for an empty
 * body). on_body is then not called. Sink callbacks stop after a final call.
 * Returns 0, or -EINVAL when called outside on_request or twice. */
int http_req_stream_body(struct http_req *req,
			 void (*on_data)(void *ctx, struct http_req *req, const char *data, size_t len),
			 void (*on_end)(void *ctx, struct http_req *req), void *ctx);

/* Backpressure for a sink: after pause, on_data is not called again until
 * resume (reading from the socket stops; at most the rest of one parse call
 * is held in memory). Resume takes effect from the loop, not inside the call. */
void http_req_pause_body(struct http_req *req);
void http_req_resume_body(struct http_req *req);

/* Sets the abort callback (see LIFETIME above); replaces a previous one. */
void http_req_on_abort(struct http_req *req, void (*cb)(void *ctx, struct http_req *req),
		       void *ctx);

/* ---- Responses ---- */

/* Adds a response header (name and value borrowed, copied; no CR/LF).
 * Before the response starts. Returns 0, -EINVAL, -ENOBUFS (8 KiB of extra
 * headers) or -EPIPE (connection failing). */
int http_req_add_header(struct http_req *req, const char *name, const char *value);

/* FINAL. Sends a complete response; body (borrowed, copied) may be NULL when
 * len is 0; content_type may be NULL. Returns 0, -EINVAL (response already
 * started), -EPIPE (connection failing) or -ENOMEM. */
int http_respond(struct http_req *req, int status, const char *content_type, const void *body,
		 size_t len);

/* FINAL. Sends `json` (borrowed) compactly as application/json. A NULL json
 * sends a 500 error object instead. Returns as http_respond. */
int http_respond_json(struct http_req *req, int status, const json_t *json);

/* FINAL. Sends {"error":{"code":code,"message":message,"field":field}}
 * (field omitted when NULL). Returns as http_respond. */
int http_respond_error(struct http_req *req, int status, const char *code, const char *message,
		       const char *field);

/* FINAL. Writes `data` verbatim (a whole hand-made response, possibly
 * deliberately broken: the simulator uses it) and closes the connection once
 * it is written. Returns as http_respond. */
int http_respond_raw(struct http_req *req, const void *data, size_t len);

/* Starts a streamed response (chunked transfer encoding; for an HTTP/1.0
 * client the body is delimited by closing). Server-sent events use this with
 * "text/event-stream". Returns 0, -EINVAL, -EPIPE, -ENOMEM. */
int http_stream_start(struct http_req *req, int status, const char *content_type);

/* Queues len bytes (borrowed, copied) as one chunk. Returns the bytes now
 * queued on the connection (>= 0) so the producer can stop above its own
 * high-water mark, or -EINVAL (no stream), -EPIPE (connection failing),
 * -ENOMEM. A zero-length write queues nothing. */
ssize_t http_stream_write(struct http_req *req, const void *data, size_t len);

/* Sets the drain callback: called (from the loop) once the queued bytes
 * fall below the low-water mark after a write left them at or above it. */
void http_stream_on_drain(struct http_req *req, void (*cb)(void *ctx, struct http_req *req),
			  void *ctx);

/* True when the producer should stop: the connection's queued output is at
 * or above the high-water mark (the drain callback then fires once it falls
 * below the low-water mark), or the connection is failing. */
bool http_stream_full(struct http_req *req);

/* FINAL. Ends the streamed response. Returns 0, -EINVAL, -EPIPE. */
int http_stream_end(struct http_req *req);

#endif
