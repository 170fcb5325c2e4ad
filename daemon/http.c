#include "daemon/http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <http_parser.h>

#include "common/buf.h"
#include "common/log.h"

#define DEF_MAX_BODY (1024u * 1024u)
#define DEF_MAX_CONTENT_LENGTH (1024ull * 1024u * 1024u)
#define DEF_MAX_HEADER_BYTES (16u * 1024u)
#define DEF_MAX_HEADERS 64u
#define DEF_MAX_CONNECTIONS 256u
#define DEF_IDLE_MS 60000u
#define DEF_REQUEST_TIMEOUT_MS 30000u
#define DEF_STREAM_BUFFER (4096u * 1024u)
#define HIGH_WATER_MAX (128u * 1024u)
#define LOW_WATER_MAX (64u * 1024u)
/* A refused (503) or timed-out (408) connection reads and drops what the
 * client still sends for at most LINGER_MS after its response, so the client
 * reads the response and a clean end instead of a reset. At most LINGER_MAX
 * connections linger at a time; beyond that they are closed at once. */
#define LINGER_MS 2000u
#define LINGER_MAX 64u

#define READ_BUF_SIZE (64u * 1024u)
/* Unparsed input held per connection while a request is being handled:
 * reading stops above INBUF_HIGH (pipelined requests wait in the kernel). */
#define INBUF_MAX (256u * 1024u)
#define INBUF_HIGH (INBUF_MAX - READ_BUF_SIZE)
/* Responses queued before the next pipelined request is parsed. */
#define OUT_CAP (1024u * 1024u)
/* A body still to come after an early response is read and dropped when its
 * declared length is at most this; otherwise the connection is closed. */
#define DISCARD_MAX (1024u * 1024u)
#define EXTRA_HEADERS_MAX (8u * 1024u)

enum req_mode { MODE_NONE, MODE_BUFFER, MODE_SINK };
enum last_cb { CB_URL, CB_FIELD, CB_VALUE };

struct hdr {
	size_t noff, voff;
	bool has_value;
	const char *name, *value;
};

struct http_req {
	struct conn *conn;
	struct buf raw; /* url '\0' (name '\0' value '\0')* */
	struct hdr *hdrs;
	unsigned nhdr;
	enum last_cb last;
	const char *path, *query;
	struct buf qdec; /* decoded query: name '\0' value '\0' ... */
	unsigned nq;
	const char *method;
	bool head;
	int64_t content_length; /* -1 when none or chunked */
	bool has_body, chunked, expect_continue;
	bool http10;
	bool keep_alive;
	bool in_on_request;
	bool handler_done; /* a final call was made, or the abort fired */
	bool resp_started;
	bool streaming, stream_chunked;
	bool msg_complete;
	bool paused;
	bool want_drain;
	enum req_mode mode;
	size_t body_cap;
	struct buf body;
	uint64_t received;
	void (*on_data)(void *, struct http_req *, const char *, size_t);
	void (*on_end)(void *, struct http_req *);
	void *sink_ctx;
	void (*on_abort)(void *, struct http_req *);
	void *abort_ctx;
	void (*on_drain)(void *, struct http_req *);
	void *drain_ctx;
	struct buf extra;
};

struct conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_timer_t timer;
	uv_shutdown_t shutdown_req;
	struct http_server *srv;
	struct conn *prev, *next;
	http_parser parser;
	struct buf inbuf;
	struct http_req *req;
	size_t queued;
	uint64_t submitted;     /* bytes ever queued */
	uint64_t sent_seen;     /* bytes the kernel had taken at the last timer check */
	uint64_t last_activity; /* the client's last progress */
	uint64_t head_deadline; /* the request head must be complete by then; 0 = none */
	uint64_t over_since;    /* queued output above stream_buffer since then; 0 = not */
	uint64_t linger_until;
	unsigned handles_open;
	bool closing;
	bool stop; /* parse nothing more; close once the output is flushed */
	bool shutting_down;
	bool reading;
	bool in_parser;
	bool kick_pending;
	bool lingering;
};

struct wr {
	uv_write_t w;
	struct conn *conn;
	size_t len;
	char data[];
};

struct http_server {
	struct http_handler handler;
	struct http_server_config cfg;
	uv_loop_t *loop;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} listener;
	bool listening;
	bool is_unix;
	bool closing;
	uid_t allowed_uid;
	char *unix_path;
	struct conn *conns;
	unsigned nconns;
	unsigned nlinger;        /* connections answered 503/408, lingering */
	size_t high_water;       /* see http_stream_full */
	uint64_t refusal_logged; /* when the last 503 was logged */
	unsigned handles_open; /* listener + every connection */
	void (*close_cb)(void *);
	void *close_ud;
	/* http_server_set_detach / http_server_on_respond */
	int (*classify)(void *ud, const char *data, size_t len);
	void (*detach)(void *ud, int fd, const char *data, size_t len);
	void *detach_ud;
	void (*on_respond)(void *ud, struct http_req *req);
	void *respond_ud;
	char rbuf[READ_BUF_SIZE];
};

static http_parser_settings parser_settings;
static uv_once_t parser_settings_once = UV_ONCE_INIT;
static void parser_settings_init(void);

static void conn_close(struct conn *c);
static void conn_shutdown(struct conn *c);
static void conn_kick(struct conn *c);
static void conn_run(struct conn *c);
static void conn_fail(struct conn *c, int status, const char *code, const char *message);
static void conn_arm_timer(struct conn *c);

/* ---------------------------------------------------------------- requests */

static struct http_req *req_new(struct conn *c)
{
	struct http_server *s = c->srv;
	struct http_req *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->hdrs = calloc(s->cfg.max_headers, sizeof(*req->hdrs));
	if (!req->hdrs) {
		free(req);
		return NULL;
	}
	req->conn = c;
	buf_init(&req->raw, s->cfg.max_header_bytes + 2 * s->cfg.max_headers + 2);
	buf_init(&req->qdec, s->cfg.max_header_bytes);
	buf_init(&req->body, s->cfg.max_body);
	buf_init(&req->extra, EXTRA_HEADERS_MAX);
	req->body_cap = s->cfg.max_body;
	req->content_length = -1;
	req->last = CB_URL;
	return req;
}

static void req_free(struct http_req *req)
{
	if (!req)
		return;
	buf_free(&req->raw);
	buf_free(&req->qdec);
	buf_free(&req->body);
	buf_free(&req->extra);
	free(req->hdrs);
	free(req);
}

/* Fires the abort callback once when the handler still owns the request. */
static void req_abort(struct http_req *req)
{
	void (*cb)(void *, struct http_req *) = req->on_abort;

	if (req->handler_done)
		return;
	req->handler_done = true;
	req->on_abort = NULL;
	if (cb)
		cb(req->abort_ctx, req);
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Appends s[0..n) percent- and '+'-decoded, then a NUL. %00 stays literal
 * so a decoded value is never cut short. */
static int query_decode_append(struct buf *b, const char *s, size_t n)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n && !rc; i++) {
		char ch = s[i];
		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%' && i + 2 < n) {
			int hi = hexval((unsigned char)s[i + 1]);
			int lo = hexval((unsigned char)s[i + 2]);
			if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
				ch = (char)(hi * 16 + lo);
				i += 2;
			}
		}
		rc = buf_append(b, &ch, 1);
	}
	if (!rc)
		rc = buf_append(b, "", 1);
	return rc;
}

static int req_parse_query(struct http_req *req)
{
	const char *p = req->query;
	int rc = 0;

	while (*p && !rc) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		if (len) {
			size_t nlen = eq ? (size_t)(eq - p) : len;
			rc = query_decode_append(&req->qdec, p, nlen);
			if (!rc && eq)
				rc = query_decode_append(&req->qdec, eq + 1, len - nlen - 1);
			else if (!rc)
				rc = buf_append(&req->qdec, "", 1);
			req->nq++;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return rc;
}

/* Turns the accumulated url + headers into NUL-terminated strings. */
static int req_finish_headers(struct http_req *req)
{
	char *url, *q, *hash;
	unsigned i;
	int rc;

	rc = buf_append(&req->raw, "", 1);
	if (rc)
		return rc;
	url = req->raw.base;
	for (i = 0; i < req->nhdr; i++) {
		req->hdrs[i].name = req->raw.base + req->hdrs[i].noff;
		req->hdrs[i].value = req->hdrs[i].has_value ? req->raw.base + req->hdrs[i].voff : "";
	}
	/* absolute-form (http://host/path) -> path */
	if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) {
		char *slash = strchr(strstr(url, "//") + 2, '/');
		url = slash ? slash : (char *)"/";
	}
	hash = strchr(url, '#');
	if (hash)
		*hash = '\0';
	q = strchr(url, '?');
	if (q) {
		*q = '\0';
		req->query = q + 1;
	} else {
		req->query = "";
	}
	req->path = url;
	return req_parse_query(req);
}

const char *http_req_method(const struct http_req *req) { return req->method; }
const char *http_req_path(const struct http_req *req) { return req->path; }
const char *http_req_query_string(const struct http_req *req) { return req->query; }
int64_t http_req_content_length(const struct http_req *req) { return req->content_length; }
unsigned http_req_header_count(const struct http_req *req) { return req->nhdr; }

const char *http_req_query(const struct http_req *req, const char *name)
{
	const char *p = req->qdec.base;
	unsigned i;

	for (i = 0; p && i < req->nq; i++) {
		const char *v = p + strlen(p) + 1;
		if (strcmp(p, name) == 0)
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

const char *http_req_header(const struct http_req *req, const char *name)
{
	unsigned i;

	for (i = 0; i < req->nhdr; i++)
		if (strcasecmp(req->hdrs[i].name, name) == 0)
			return req->hdrs[i].value;
	return NULL;
}

void http_req_header_at(const struct http_req *req, unsigned i, const char **name,
			const char **value)
{
	if (i >= req->nhdr) {
		*name = NULL;
		*value = NULL;
		return;
	}
	*name = req->hdrs[i].name;
	*value = req->hdrs[i].value;
}

void http_req_set_body_cap(struct http_req *req, size_t cap)
{
	req->body_cap = cap;
	req->body.max = cap;
}

int http_req_stream_body(struct http_req *req,
			 void (*on_data)(void *ctx, struct http_req *req, const char *data, size_t len),
			 void (*on_end)(void *ctx, struct http_req *req), void *ctx)
{
	if (!req->in_on_request || req->mode != MODE_NONE || !on_data || !on_end)
		return -EINVAL;
	req->mode = MODE_SINK;
	req->on_data = on_data;
	req->on_end = on_end;
	req->sink_ctx = ctx;
	return 0;
}

void http_req_pause_body(struct http_req *req)
{
	if (req->mode != MODE_SINK || req->handler_done || req->msg_complete)
		return;
	req->paused = true;
	if (req->conn->in_parser)
		http_parser_pause(&req->conn->parser, 1);
}

void http_req_resume_body(struct http_req *req)
{
	if (!req->paused)
		return;
	req->paused = false;
	conn_kick(req->conn);
}

void http_req_on_abort(struct http_req *req, void (*cb)(void *ctx, struct http_req *req), void *ctx)
{
	req->on_abort = cb;
	req->abort_ctx = ctx;
}

void http_stream_on_drain(struct http_req *req, void (*cb)(void *ctx, struct http_req *req),
			  void *ctx)
{
	req->on_drain = cb;
	req->drain_ctx = ctx;
}

/* ------------------------------------------------------------------ output */

static void on_write(uv_write_t *w, int status)
{
	struct wr *wr = (struct wr *)w;
	struct conn *c = wr->conn;
	struct http_req *req = c->req;
	size_t low = c->srv->cfg.stream_low_water;

	c->queued -= wr->len;
	free(wr);
	if (c->closing)
		return;
	if (c->queued <= c->srv->cfg.stream_buffer)
		c->over_since = 0;
	if (status == 0) { /* the client took output */
		c->last_activity = uv_now(c->srv->loop);
		c->sent_seen = c->submitted - uv_stream_get_write_queue_size(&c->h.stream);
	}
	if (status < 0) {
		log_debug("http: write failed: %s", uv_strerror(status));
		conn_close(c);
		return;
	}
	if (req && req->want_drain && c->queued < low && !req->handler_done) {
		req->want_drain = false;
		if (req->on_drain)
			req->on_drain(req->drain_ctx, req);
		if (c->closing)
			return;
	}
	conn_run(c);
}

/* Queues the concatenation of n pieces as one write. */
static int conn_writev(struct conn *c, const uv_buf_t *parts, unsigned n)
{
	struct wr *wr;
	size_t total = 0, off = 0;
	unsigned i;
	uv_buf_t b;
	int rc;

	if (c->closing || c->shutting_down)
		return -EPIPE;
	for (i = 0; i < n; i++)
		total += parts[i].len;
	if (total == 0)
		return 0;
	wr = malloc(sizeof(*wr) + total);
	if (!wr)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (parts[i].len)
			memcpy(wr->data + off, parts[i].base, parts[i].len);
		off += parts[i].len;
	}
	wr->conn = c;
	wr->len = total;
	b = uv_buf_init(wr->data, (unsigned)total);
	rc = uv_write(&wr->w, &c->h.stream, &b, 1, on_write);
	if (rc < 0) {
		free(wr);
		log_debug("http: write failed: %s", uv_strerror(rc));
		/* Closing is async: the abort fires from the close callback. */
		conn_close(c);
		return -EPIPE;
	}
	c->queued += total;
	c->submitted += total;
	if (c->queued > c->srv->cfg.stream_buffer && !c->over_since)
		c->over_since = uv_now(c->srv->loop);
	return 0;
}

static int conn_write(struct conn *c, const void *p, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
	return conn_writev(c, &b, 1);
}

static const char *status_text(int status)
{
	const char *s = http_status_str((enum http_status)status);
	return (s && s[0] != '<') ? s : "Unknown";
}

/* Writes the status line and headers. body_len < 0 means chunked/streamed. */
static int req_write_head(struct http_req *req, int status, const char *content_type,
			  long long body_len, const void *body, size_t blen)
{
	struct conn *c = req->conn;
	struct buf h;
	uv_buf_t parts[2];
	int rc;

	if (c->srv->on_respond)
		c->srv->on_respond(c->srv->respond_ud, req);
	buf_init(&h, EXTRA_HEADERS_MAX + 1024);
	rc = buf_printf(&h, "HTTP/1.1 %d %s\r\n", status, status_text(status));
	if (!rc && content_type)
		rc = buf_printf(&h, "Content-Type: %s\r\n", content_type);
	if (!rc && body_len >= 0)
		rc = buf_printf(&h, "Content-Length: %lld\r\n", body_len);
	else if (!rc && req->stream_chunked)
		rc = buf_puts(&h, "Transfer-Encoding: chunked\r\n");
	if (!rc && req->extra.len)
		rc = buf_append(&h, req->extra.base, req->extra.len);
	if (!rc)
		rc = buf_puts(&h, req->keep_alive ? "Connection: keep-alive\r\n\r\n"
						  : "Connection: close\r\n\r\n");
	if (rc) {
		buf_free(&h);
		return rc == -ENOBUFS ? -ENOMEM : rc;
	}
	parts[0] = uv_buf_init(h.base, (unsigned)h.len);
	parts[1] = uv_buf_init((char *)body, (unsigned)(req->head ? 0 : blen));
	rc = conn_writev(c, parts, body ? 2 : 1);
	buf_free(&h);
	if (!rc)
		req->resp_started = true;
	return rc;
}

/* Decides, at a final call, whether the connection survives this request. */
static void req_decide_keep_alive(struct http_req *req)
{
	struct conn *c = req->conn;

	if (c->srv->closing || c->stop)
		req->keep_alive = false;
	if (!req->msg_complete && req->has_body &&
	    (req->chunked || req->content_length > (int64_t)DISCARD_MAX))
		req->keep_alive = false;
}

/* After a final call: let the connection move on (never reentrantly). */
static void req_after_final(struct http_req *req)
{
	struct conn *c = req->conn;

	if (c->closing)
		return;
	if (!req->keep_alive && !req->msg_complete) {
		/* Body left unread: close once the response is out. */
		if (c->in_parser) {
			c->stop = true;
			http_parser_pause(&c->parser, 1);
		} else {
			conn_shutdown(c);
		}
		return;
	}
	if (!c->in_parser)
		conn_kick(c);
}

static int req_final_check(struct http_req *req)
{
	if (req->handler_done)
		return -EINVAL;
	req->handler_done = true;
	if (req->conn->closing || req->conn->shutting_down)
		return -EPIPE;
	return 0;
}

int http_req_add_header(struct http_req *req, const char *name, const char *value)
{
	if (req->conn->closing)
		return -EPIPE;
	if (req->resp_started || !name[0] || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return -EINVAL;
	return buf_printf(&req->extra, "%s: %s\r\n", name, value);
}

int http_respond(struct http_req *req, int status, const char *content_type, const void *body,
		 size_t len)
{
	int rc;

	if (req->resp_started && !req->handler_done) {
		req->handler_done = true;
		conn_close(req->conn);
		return -EINVAL;
	}
	rc = req_final_check(req);
	if (rc)
		return rc;
	req_decide_keep_alive(req);
	if (!body)
		len = 0;
	rc = req_write_head(req, status, content_type, (long long)len, len ? body : NULL, len);
	if (rc) {
		conn_close(req->conn);
		return rc;
	}
	req_after_final(req);
	return 0;
}

int http_respond_json(struct http_req *req, int status, const json_t *json)
{
	char *s;
	int rc;

	if (!json)
		return http_respond_error(req, 500, "internal", "could not build the response", NULL);
	s = json_dumps(json, JSON_COMPACT);
	if (!s)
		return http_respond_error(req, 500, "internal", "could not encode the response", NULL);
	rc = http_respond(req, status, "application/json", s, strlen(s));
	free(s);
	return rc;
}

/* The error object, as a malloc'd string (NULL on allocation failure). */
static char *error_body(const char *code, const char *message, const char *field)
{
	json_t *err = json_object(), *root = json_object();
	char *s = NULL;

	if (!err || !root)
		goto out;
	json_object_set_new(err, "code", json_string(code ? code : "error"));
	json_object_set_new(err, "message", json_string(message ? message : ""));
	if (field)
		json_object_set_new(err, "field", json_string(field));
	json_object_set(root, "error", err);
	s = json_dumps(root, JSON_COMPACT);
out:
	json_decref(err);
	json_decref(root);
	return s;
}

int http_respond_error(struct http_req *req, int status, const char *code, const char *message,
		       const char *field)
{
	char *s = error_body(code, message, field);
	int rc;

	if (!s) {
		static const char fallback[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
		return http_respond(req, 500, "application/json", fallback, sizeof(fallback) - 1);
	}
	rc = http_respond(req, status, "application/json", s, strlen(s));
	free(s);
	return rc;
}

int http_respond_raw(struct http_req *req, const void *data, size_t len)
{
	struct conn *c = req->conn;
	int rc = req_final_check(req);

	if (rc)
		return rc;
	if (req->resp_started) {
		conn_close(c);
		return -EINVAL;
	}
	req->keep_alive = false;
	req->resp_started = true;
	rc = conn_write(c, data, len);
	if (rc) {
		conn_close(c);
		return rc;
	}
	if (c->in_parser) {
		c->stop = true;
		http_parser_pause(&c->parser, 1);
	} else {
		conn_shutdown(c);
	}
	return 0;
}

int http_stream_start(struct http_req *req, int status, const char *content_type)
{
	int rc;

	if (req->handler_done || req->resp_started)
		return -EINVAL;
	if (req->conn->closing || req->conn->shutting_down)
		return -EPIPE;
	if (req->http10)
		req->keep_alive = false;
	else
		req->stream_chunked = true;
	req->streaming = true;
	rc = req_write_head(req, status, content_type, -1, NULL, 0);
	if (rc)
		req->streaming = false;
	return rc;
}

ssize_t http_stream_write(struct http_req *req, const void *data, size_t len)
{
	struct conn *c = req->conn;
	char head[32];
	uv_buf_t parts[3];
	int rc;

	if (c->closing || c->shutting_down)
		return -EPIPE;
	if (!req->streaming || req->handler_done)
		return -EINVAL;
	if (len == 0 || req->head)
		return (ssize_t)c->queued;
	if (req->stream_chunked) {
		snprintf(head, sizeof(head), "%zx\r\n", len);
		parts[0] = uv_buf_init(head, (unsigned)strlen(head));
		parts[1] = uv_buf_init((char *)data, (unsigned)len);
		parts[2] = uv_buf_init("\r\n", 2);
		rc = conn_writev(c, parts, 3);
	} else {
		rc = conn_write(c, data, len);
	}
	if (rc)
		return rc;
	if (c->queued >= c->srv->cfg.stream_low_water)
		req->want_drain = true;
	return (ssize_t)c->queued;
}

bool http_stream_full(struct http_req *req)
{
	struct conn *c = req->conn;

	if (c->closing || c->shutting_down || req->handler_done)
		return true;
	if (c->queued < c->srv->high_water)
		return false;
	req->want_drain = true;
	return true;
}

int http_stream_end(struct http_req *req)
{
	struct conn *c = req->conn;
	int rc;

	if (!req->streaming && !req->handler_done) {
		req->handler_done = true;
		conn_close(c);
		return -EINVAL;
	}
	rc = req_final_check(req);
	if (rc)
		return rc;
	req_decide_keep_alive(req);
	if (req->stream_chunked && !req->head) {
		rc = conn_write(c, "0\r\n\r\n", 5);
		if (rc) {
			conn_close(c);
			return rc;
		}
	}
	if (!req->stream_chunked)
		req->keep_alive = false;
	if (!req->keep_alive && req->msg_complete) {
		/* nothing more will be read: close after the flush */
		if (c->in_parser) {
			c->stop = true;
			http_parser_pause(&c->parser, 1);
		} else {
			conn_shutdown(c);
		}
		return 0;
	}
	req_after_final(req);
	return 0;
}

/* ------------------------------------------------------------- connections */

static bool conn_body_paused(const struct conn *c)
{
	const struct http_req *r = c->req;
	return r && r->paused && r->mode == MODE_SINK && !r->handler_done && !r->msg_complete;
}

static bool conn_can_parse(const struct conn *c)
{
	if (c->closing || c->stop || c->shutting_down)
		return false;
	if (c->req && c->req->msg_complete)
		return false; /* waiting for the handler / the flush */
	return !conn_body_paused(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = h->data;
	(void)suggested;
	*b = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

/* Would the connection take more input now? */
static bool conn_wants_input(const struct conn *c)
{
	return !c->closing && !c->stop && !c->shutting_down && !conn_body_paused(c) &&
	       c->inbuf.len < INBUF_HIGH;
}

static void conn_update_reading(struct conn *c)
{
	bool want;

	if (c->lingering)
		return; /* reads until EOF or the linger deadline */
	want = conn_wants_input(c);

	if (want && !c->reading) {
		if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	}
}

static void on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct http_server *s = c->srv;

	if (--c->handles_open)
		return;
	if (c->req) {
		req_abort(c->req);
		req_free(c->req);
		c->req = NULL;
	}
	buf_free(&c->inbuf);
	if (c->lingering)
		s->nlinger--;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	free(c);
	if (--s->handles_open == 0 && s->closing && s->close_cb)
		s->close_cb(s->close_ud);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->reading = false;
	uv_close(&c->h.handle, on_closed);
	uv_close((uv_handle_t *)&c->timer, on_closed);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
	struct conn *c = sr->data;
	(void)status;
	conn_close(c);
}

static void conn_shutdown(struct conn *c)
{
	if (c->closing || c->shutting_down)
		return;
	c->stop = true;
	if (c->reading) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	}
	c->shutting_down = true;
	c->shutdown_req.data = c;
	if (uv_shutdown(&c->shutdown_req, &c->h.stream, on_shutdown) < 0)
		conn_close(c);
}

/* A server-side error: the handler (if it owns the request) gets its abort,
 * the client gets a JSON error unless a response already started, and the
 * connection closes once that is written. */
/* Queues a complete error response that closes the connection; extra holds
 * whole header lines ("Name: value\r\n") or is NULL. */
static void conn_write_error(struct conn *c, int status, const char *code, const char *message,
			     const char *extra)
{
	char *body = error_body(code, message, NULL);
	struct buf h;

	buf_init(&h, 64 * 1024);
	if (body && buf_printf(&h,
			       "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			       "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%s",
			       status, status_text(status), strlen(body), extra ? extra : "",
			       body) == 0)
		conn_write(c, h.base, h.len);
	buf_free(&h);
	free(body);
}

static void conn_fail(struct conn *c, int status, const char *code, const char *message)
{
	struct http_req *req = c->req;

	log_debug("http: %d %s: %s", status, code, message);
	if (req)
		req_abort(req);
	if (c->closing || c->shutting_down)
		return;
	c->stop = true;
	if (req && req->resp_started)
		return;
	conn_write_error(c, status, code, message, NULL);
	if (req)
		req->resp_started = true;
}

static void on_linger_shutdown(uv_shutdown_t *sr, int status)
{
	struct conn *c = sr->data;

	if (status < 0)
		conn_close(c);
}

/* Answers with an error before any handler saw a request (503 past the
 * connection cap, 408 for a late request head), then half-closes and reads
 * and drops input until the client closes or LINGER_MS pass: closing with
 * unread input would reset the connection under the client's feet. */
static void conn_reject(struct conn *c, int status, const char *code, const char *message,
			const char *extra)
{
	struct http_server *s = c->srv;

	if (c->req)
		req_abort(c->req);
	if (c->closing || c->shutting_down)
		return;
	c->stop = true;
	c->head_deadline = 0;
	conn_write_error(c, status, code, message, extra);
	if (c->req)
		c->req->resp_started = true;
	if (c->closing)
		return;
	if (s->nlinger >= LINGER_MAX) {
		conn_shutdown(c);
		return;
	}
	c->lingering = true;
	s->nlinger++;
	c->linger_until = uv_now(s->loop) + LINGER_MS;
	c->shutting_down = true;
	c->shutdown_req.data = c;
	if (uv_shutdown(&c->shutdown_req, &c->h.stream, on_linger_shutdown) < 0) {
		conn_close(c);
		return;
	}
	if (!c->reading && uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
		c->reading = true;
	conn_arm_timer(c);
}

/* Frees the current request once both sides are done with it. */
static bool conn_try_finish(struct conn *c)
{
	struct http_req *req = c->req;

	if (!req || !req->msg_complete || !req->handler_done || c->queued > OUT_CAP)
		return false;
	if (!req->keep_alive)
		c->stop = true;
	c->req = NULL;
	req_free(req);
	return true;
}

/* Hands the connection (a dup of its fd) and its unparsed input to the
 * server's detach callback, then closes this side: the socket stays open
 * through the dup. Only between requests with nothing left to write. */
static size_t conn_detach(struct conn *c, const char *data, size_t len)
{
	uv_os_fd_t fd;
	int nfd = -1;

	if (uv_fileno(&c->h.handle, &fd) == 0)
		nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (nfd < 0) {
		log_warn("http: cannot hand a connection over: %s", strerror(errno));
		conn_close(c);
		return len;
	}
	c->srv->detach(c->srv->detach_ud, nfd, data, len);
	conn_close(c);
	return len;
}

/* Parses data; returns the bytes consumed (the rest must be kept). */
static size_t conn_execute(struct conn *c, const char *data, size_t len)
{
	size_t n;
	enum http_errno err;

	if (!c->req && c->srv->classify) {
		int k = c->srv->classify(c->srv->detach_ud, data, len);

		if (k == HTTP_CLASSIFY_MORE)
			return 0;
		if (k == HTTP_CLASSIFY_DETACH)
			return c->queued ? 0 : conn_detach(c, data, len);
	}
	if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
		http_parser_pause(&c->parser, 0);
	c->in_parser = true;
	n = http_parser_execute(&c->parser, &parser_settings, data, len);
	c->in_parser = false;
	err = HTTP_PARSER_ERRNO(&c->parser);
	if (c->closing)
		return len;
	if (c->stop) {
		if (!c->req || c->req->handler_done)
			conn_shutdown(c);
		return len;
	}
	if (err == HPE_PAUSED)
		return n;
	if (err != HPE_OK) {
		char msg[160];
		snprintf(msg, sizeof(msg), "malformed HTTP request: %s", http_errno_description(err));
		conn_fail(c, 400, "bad_request", msg);
		conn_shutdown(c);
		return len;
	}
	if (c->parser.upgrade) {
		/* Protocol upgrades are not supported: finish this request, then close. */
		c->stop = true;
		if (!c->req)
			conn_shutdown(c);
		return len;
	}
	return n;
}

/* Parses what is held in inbuf as far as possible. */
static void conn_drain(struct conn *c)
{
	while (conn_can_parse(c) && c->inbuf.len) {
		size_t n = conn_execute(c, c->inbuf.base, c->inbuf.len);
		if (c->closing)
			return;
		buf_consume(&c->inbuf, n);
		if (n == 0)
			break;
	}
}

/* Moves the connection on: finishes a done request, parses held input,
 * closes when told to stop, adjusts reading. Never called from the parser. */
static void conn_run(struct conn *c)
{
	if (c->closing || c->lingering)
		return;
	conn_try_finish(c);
	if (c->stop && (!c->req || c->req->handler_done)) {
		conn_shutdown(c);
		return;
	}
	conn_drain(c);
	if (c->closing)
		return;
	if (c->stop && (!c->req || c->req->handler_done)) {
		conn_shutdown(c);
		return;
	}
	conn_update_reading(c);
}

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	struct http_server *s = c->srv;
	uint64_t now, sent, idle = s->cfg.idle_timeout_ms;

	if (c->kick_pending) {
		c->kick_pending = false;
		conn_run(c);
		if (c->closing)
			return;
	}
	now = uv_now(s->loop);
	if (c->lingering) {
		if (now >= c->linger_until)
			conn_close(c);
		else
			conn_arm_timer(c);
		return;
	}
	/* Progress is output the client took (partial writes included), never
	 * output queued for it; with nothing queued, a request in the handler's
	 * hands (or paused by it) is the server's turn, not idleness. */
	sent = c->submitted - uv_stream_get_write_queue_size(&c->h.stream);
	if (sent > c->sent_seen)
		c->last_activity = now;
	c->sent_seen = sent;
	if (!c->queued && ((c->req && c->req->msg_complete) || conn_body_paused(c)))
		c->last_activity = now;
	if (c->head_deadline && now >= c->head_deadline) {
		char msg[128];
		snprintf(msg, sizeof(msg), "the request head did not arrive within %u s",
			 s->cfg.request_timeout_ms / 1000);
		log_debug("http: 408: %s", msg);
		conn_reject(c, 408, "request_timeout", msg, NULL);
		return;
	}
	if (c->over_since && now >= c->over_since + idle) {
		log_info("http: dropping a client that left %zu bytes of output unread above the "
			 "%zu-byte cap (stream_buffer_kb) for %llu ms", c->queued,
			 s->cfg.stream_buffer, (unsigned long long)idle);
		conn_close(c);
		return;
	}
	if (now >= c->last_activity + idle) {
		if (c->queued)
			log_info("http: dropping a client that took none of its %zu queued bytes for "
				 "%llu ms (idle_timeout_s)", c->queued, (unsigned long long)idle);
		else
			log_debug("http: closing a connection idle for %llu ms",
				  (unsigned long long)idle);
		conn_close(c);
		return;
	}
	conn_arm_timer(c);
}

static void conn_arm_timer(struct conn *c)
{
	uint64_t now = uv_now(c->srv->loop), idle = c->srv->cfg.idle_timeout_ms, deadline;

	if (c->closing || c->kick_pending)
		return; /* on_timer re-arms after the kick */
	if (c->lingering) {
		deadline = c->linger_until;
	} else {
		deadline = c->last_activity + idle;
		if (c->head_deadline && c->head_deadline < deadline)
			deadline = c->head_deadline;
		if (c->over_since && c->over_since + idle < deadline)
			deadline = c->over_since + idle;
	}
	uv_timer_start(&c->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

/* Schedules conn_run from the loop (the next timer phase). */
static void conn_kick(struct conn *c)
{
	if (c->closing || c->kick_pending)
		return;
	if (c->queued) /* on_write will run it */
		return;
	c->kick_pending = true;
	uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = st->data;
	size_t n;

	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		if (nread != UV_EOF)
			log_debug("http: read failed: %s", uv_strerror((int)nread));
		conn_close(c);
		return;
	}
	c->last_activity = uv_now(c->srv->loop);
	if (c->stop || c->shutting_down)
		return; /* input after the last request is dropped */
	if (c->inbuf.len || !conn_can_parse(c)) {
		if (buf_append(&c->inbuf, b->base, (size_t)nread)) {
			conn_fail(c, 400, "bad_request", "too much pipelined input");
			conn_shutdown(c);
			return;
		}
		conn_drain(c);
	} else {
		n = conn_execute(c, b->base, (size_t)nread);
		if (c->closing || c->shutting_down)
			return;
		if (n < (size_t)nread && buf_append(&c->inbuf, b->base + n, (size_t)nread - n)) {
			conn_fail(c, 400, "bad_request", "too much pipelined input");
			conn_shutdown(c);
			return;
		}
	}
	if (c->closing || c->shutting_down)
		return;
	if (c->stop && (!c->req || c->req->handler_done)) {
		conn_shutdown(c);
		return;
	}
	conn_update_reading(c);
}

/* ------------------------------------------------------------ parser hooks */

static int on_message_begin(http_parser *p)
{
	struct conn *c = p->data;

	if (c->req) /* cannot happen: the parser pauses at each message end */
		return -1;
	if (!c->head_deadline) {
		c->head_deadline = uv_now(c->srv->loop) + c->srv->cfg.request_timeout_ms;
		conn_arm_timer(c);
	}
	c->req = req_new(c);
	if (!c->req) {
		conn_fail(c, 500, "internal", "out of memory");
		return -1;
	}
	return 0;
}

static int header_overflow(struct conn *c)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "header section too large (limit %zu bytes)",
		 c->srv->cfg.max_header_bytes);
	conn_fail(c, 400, "header_too_large", msg);
	return -1;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (buf_append(&c->req->raw, at, len))
		return header_overflow(c);
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct http_req *req = c->req;

	/* Trailer fields after a chunked body are dropped: the handler already
	 * holds pointers into req->raw, which must not grow any more. */
	if (req->method)
		return 0;
	if (req->last != CB_FIELD) {
		if (req->nhdr >= c->srv->cfg.max_headers) {
			char msg[128];
			snprintf(msg, sizeof(msg), "too many header fields (limit %u)",
				 c->srv->cfg.max_headers);
			conn_fail(c, 400, "too_many_headers", msg);
			return -1;
		}
		if (buf_append(&req->raw, "", 1))
			return header_overflow(c);
		req->hdrs[req->nhdr].noff = req->raw.len;
		req->hdrs[req->nhdr].has_value = false;
		req->nhdr++;
		req->last = CB_FIELD;
	}
	if (buf_append(&req->raw, at, len))
		return header_overflow(c);
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct http_req *req = c->req;

	if (req->last == CB_URL || req->method)
		return 0; /* cannot happen; a trailer (see on_header_field) */
	if (req->last == CB_FIELD) {
		if (buf_append(&req->raw, "", 1))
			return header_overflow(c);
		req->hdrs[req->nhdr - 1].voff = req->raw.len;
		req->hdrs[req->nhdr - 1].has_value = true;
		req->last = CB_VALUE;
	}
	if (buf_append(&req->raw, at, len))
		return header_overflow(c);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct http_server *s = c->srv;
	struct http_req *req = c->req;
	const char *expect;

	c->head_deadline = 0;
	if (req->last == CB_FIELD) {
		/* a last header without value: terminate its name */
		if (buf_append(&req->raw, "", 1))
			return header_overflow(c);
		req->hdrs[req->nhdr - 1].voff = req->raw.len - 1;
		req->hdrs[req->nhdr - 1].has_value = true;
	}
	if (req_finish_headers(req))
		return header_overflow(c);
	req->method = http_method_str((enum http_method)p->method);
	req->head = p->method == HTTP_HEAD;
	req->http10 = p->http_major < 1 || (p->http_major == 1 && p->http_minor == 0);
	req->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	req->chunked = (p->flags & F_CHUNKED) != 0;
	if ((p->flags & F_CONTENTLENGTH) && !req->chunked)
		req->content_length = (int64_t)p->content_length;
	req->has_body = req->chunked || req->content_length > 0;
	expect = http_req_header(req, "Expect");
	req->expect_continue = expect && strcasecmp(expect, "100-continue") == 0 && !req->http10;

	if (req->content_length > 0 && (uint64_t)req->content_length > s->cfg.max_content_length) {
		char msg[160];
		snprintf(msg, sizeof(msg), "request body of %lld bytes exceeds the limit of %llu bytes",
			 (long long)req->content_length,
			 (unsigned long long)s->cfg.max_content_length);
		req->handler_done = true; /* the handler never saw it */
		conn_fail(c, 413, "body_too_large", msg);
		return -1;
	}

	if (s->handler.on_request) {
		req->in_on_request = true;
		s->handler.on_request(s->handler.ud, req);
		req->in_on_request = false;
		if (c->closing || c->stop)
			return -1;
	}
	if (req->handler_done)
		return 0; /* responded already: the body, if any, is dropped */
	if (req->mode == MODE_NONE) {
		req->mode = MODE_BUFFER;
		if (req->content_length > 0 && (uint64_t)req->content_length > req->body_cap) {
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "request body of %lld bytes exceeds the limit of %zu bytes",
				 (long long)req->content_length, req->body_cap);
			conn_fail(c, 413, "body_too_large", msg);
			return -1;
		}
	}
	if (req->has_body && req->expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (conn_write(c, cont, sizeof(cont) - 1))
			return -1;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct http_req *req = c->req;

	req->received += len;
	if (req->handler_done)
		return 0; /* dropped */
	if (req->received > c->srv->cfg.max_content_length) {
		char msg[128];
		snprintf(msg, sizeof(msg), "request body exceeds the limit of %llu bytes",
			 (unsigned long long)c->srv->cfg.max_content_length);
		conn_fail(c, 413, "body_too_large", msg);
		return -1;
	}
	if (req->mode == MODE_SINK) {
		req->on_data(req->sink_ctx, req, at, len);
		if (c->closing || c->stop)
			return -1;
		if (req->paused && !req->handler_done)
			http_parser_pause(p, 1);
		return 0;
	}
	if (buf_append(&req->body, at, len)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "request body exceeds the limit of %zu bytes", req->body_cap);
		conn_fail(c, 413, "body_too_large", msg);
		return -1;
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct http_server *s = c->srv;
	struct http_req *req = c->req;

	req->msg_complete = true;
	if (!req->handler_done) {
		if (req->mode == MODE_SINK) {
			req->on_end(req->sink_ctx, req);
		} else if (s->handler.on_body) {
			if (!req->body.base)
				buf_append(&req->body, "", 0);
			s->handler.on_body(s->handler.ud, req, req->body.base ? req->body.base : "",
					   req->body.len);
		}
		if (c->closing)
			return -1;
	}
	if (conn_try_finish(c)) {
		/* With a classifier each request starts from conn_execute. */
		if (c->stop || s->classify) {
			http_parser_pause(p, 1);
			if (!c->stop)
				conn_kick(c);
		}
		return 0;
	}
	/* Wait for the handler (or the flush) before the next request. */
	http_parser_pause(p, 1);
	return 0;
}

/* ------------------------------------------------------------------ server */

struct http_server *http_server_new(const struct http_handler *handler,
				    const struct http_server_config *cfg)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (handler)
		s->handler = *handler;
	if (cfg)
		s->cfg = *cfg;
	if (!s->cfg.max_body)
		s->cfg.max_body = DEF_MAX_BODY;
	if (!s->cfg.max_content_length)
		s->cfg.max_content_length = DEF_MAX_CONTENT_LENGTH;
	if (!s->cfg.max_header_bytes)
		s->cfg.max_header_bytes = DEF_MAX_HEADER_BYTES;
	if (!s->cfg.max_headers)
		s->cfg.max_headers = DEF_MAX_HEADERS;
	if (!s->cfg.max_connections)
		s->cfg.max_connections = DEF_MAX_CONNECTIONS;
	if (!s->cfg.idle_timeout_ms)
		s->cfg.idle_timeout_ms = DEF_IDLE_MS;
	if (!s->cfg.request_timeout_ms)
		s->cfg.request_timeout_ms = DEF_REQUEST_TIMEOUT_MS;
	if (!s->cfg.stream_buffer)
		s->cfg.stream_buffer = DEF_STREAM_BUFFER;
	s->high_water = s->cfg.stream_buffer / 2 < HIGH_WATER_MAX ? s->cfg.stream_buffer / 2
								  : HIGH_WATER_MAX;
	if (s->high_water < 2)
		s->high_water = 2;
	if (!s->cfg.stream_low_water || s->cfg.stream_low_water > s->high_water / 2)
		s->cfg.stream_low_water = s->high_water / 2 < LOW_WATER_MAX ? s->high_water / 2
									   : LOW_WATER_MAX;
	s->allowed_uid = geteuid();
	/* Once: servers may run on several loop threads (daemon/front.c). */
	uv_once(&parser_settings_once, parser_settings_init);
	return s;
}

static void parser_settings_init(void)
{
	http_parser_settings_init(&parser_settings);
	parser_settings.on_message_begin = on_message_begin;
	parser_settings.on_url = on_url;
	parser_settings.on_header_field = on_header_field;
	parser_settings.on_header_value = on_header_value;
	parser_settings.on_headers_complete = on_headers_complete;
	parser_settings.on_body = on_body;
	parser_settings.on_message_complete = on_message_complete;
}

void http_server_set_detach(struct http_server *s,
			    int (*classify)(void *ud, const char *data, size_t len),
			    void (*detach)(void *ud, int fd, const char *data, size_t len), void *ud)
{
	s->classify = classify;
	s->detach = detach;
	s->detach_ud = ud;
}

void http_server_on_respond(struct http_server *s, void (*cb)(void *ud, struct http_req *req),
			    void *ud)
{
	s->on_respond = cb;
	s->respond_ud = ud;
}

void http_server_set_allowed_uid(struct http_server *s, uid_t uid) { s->allowed_uid = uid; }
unsigned http_server_connection_count(const struct http_server *s) { return s->nconns; }

/* A new connection on s, its handles initialized (the stream not yet
 * connected) and linked into s; NULL on failure (logged). */
static struct conn *conn_new(struct http_server *s, bool is_unix)
{
	struct conn *c = calloc(1, sizeof(*c));
	int rc;

	if (!c) {
		log_error("http: out of memory accepting a connection");
		return NULL;
	}
	c->srv = s;
	buf_init(&c->inbuf, INBUF_MAX);
	if (is_unix)
		rc = uv_pipe_init(s->loop, &c->h.pipe, 0);
	else
		rc = uv_tcp_init(s->loop, &c->h.tcp);
	if (rc < 0) {
		log_error("http: cannot init a connection: %s", uv_strerror(rc));
		free(c);
		return NULL;
	}
	uv_timer_init(s->loop, &c->timer);
	c->h.handle.data = c;
	c->timer.data = c;
	c->handles_open = 2;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->handles_open++;
	return c;
}

/* Starts serving an accepted connection: past max_connections it gets a
 * 503; otherwise its first request head is due request_timeout_ms from now. */
static void conn_begin(struct conn *c)
{
	struct http_server *s = c->srv;

	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->last_activity = uv_now(s->loop);
	if (s->nconns - s->nlinger > s->cfg.max_connections) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "the daemon has %u connections open (max_connections); retry later",
			 s->nconns - s->nlinger - 1);
		if (!s->refusal_logged || c->last_activity >= s->refusal_logged + 1000) {
			log_warn("http: refusing connections with 503: %s", msg);
			s->refusal_logged = c->last_activity;
		}
		conn_reject(c, 503, "too_many_connections", msg, "Retry-After: 1\r\n");
		return;
	}
	c->head_deadline = c->last_activity + s->cfg.request_timeout_ms;
	conn_arm_timer(c);
	conn_update_reading(c);
}

static void on_connection(uv_stream_t *l, int status)
{
	struct http_server *s = l->data;
	struct conn *c;
	int rc;

	if (status < 0) {
		log_warn("http: accept failed: %s", uv_strerror(status));
		return;
	}
	c = conn_new(s, s->is_unix);
	if (!c)
		return;

	rc = uv_accept(l, &c->h.stream);
	if (rc < 0) {
		log_warn("http: accept failed: %s", uv_strerror(rc));
		conn_close(c);
		return;
	}
	if (s->is_unix) {
		struct ucred cr;
		socklen_t crlen = sizeof(cr);
		uv_os_fd_t fd;
		if (uv_fileno(&c->h.handle, &fd) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
			log_warn("http: refusing a connection: cannot read its peer credentials");
			conn_close(c);
			return;
		}
		if (cr.uid != s->allowed_uid) {
			log_warn("http: refusing a connection from uid %u pid %d (only uid %u may connect)",
				 (unsigned)cr.uid, (int)cr.pid, (unsigned)s->allowed_uid);
			conn_close(c);
			return;
		}
	} else {
		uv_tcp_nodelay(&c->h.tcp, 1);
	}
	conn_begin(c);
}

int http_server_adopt_fd(struct http_server *s, uv_loop_t *loop, int fd)
{
	struct conn *c;
	int rc;

	if (s->listening || s->closing || (s->loop && s->loop != loop))
		return -EBUSY;
	s->loop = loop;
	c = conn_new(s, true);
	if (!c)
		return -ENOMEM;
	rc = uv_pipe_open(&c->h.pipe, fd);
	if (rc < 0) {
		close(fd);
		conn_close(c);
		return rc;
	}
	conn_begin(c);
	return 0;
}

int http_server_adopt(struct http_server *s, uv_loop_t *loop, int fd, const char *data,
		      size_t len)
{
	struct conn *c;
	int rc;

	if (s->closing || (s->loop && s->loop != loop)) {
		close(fd);
		return -EBUSY;
	}
	s->loop = loop;
	c = conn_new(s, true);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	rc = uv_pipe_open(&c->h.pipe, fd);
	if (rc < 0) {
		close(fd);
		conn_close(c);
		return rc;
	}
	if (len && buf_append(&c->inbuf, data, len)) {
		conn_close(c); /* closes fd */
		return -ENOBUFS;
	}
	conn_begin(c);
	if (len)
		conn_kick(c);
	return 0;
}

int http_server_feed(struct http_server *s, const char *data, size_t len)
{
	struct conn *c = s->conns;
	uv_buf_t b;

	if (!c || c->closing || c->stop || c->shutting_down)
		return -ENOTCONN;
	if (len == 0 || len > READ_BUF_SIZE)
		return -EINVAL;
	if (!conn_wants_input(c))
		return -EAGAIN;
	b = uv_buf_init((char *)data, (unsigned)len);
	on_read(&c->h.stream, (ssize_t)len, &b);
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct http_server *s = h->data;

	if (--s->handles_open == 0 && s->closing && s->close_cb)
		s->close_cb(s->close_ud);
}

/* Is something listening at path? 0 = stale (or absent), -EADDRINUSE = live. */
static int unix_probe(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd = -1, rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("http: %s exists and is not a socket; not replacing it", path);
		return -EEXIST;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		log_error("http: %s: another daemon is already running there", path);
		rc = -EADDRINUSE;
		goto out;
	}
	if (errno != ECONNREFUSED) {
		rc = -errno;
		log_error("http: %s exists and cannot be probed: %s", path, strerror(errno));
		goto out;
	}
	log_info("http: replacing the stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		log_error("http: cannot remove the stale socket %s: %s", path, strerror(errno));
	}
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int http_server_listen_unix(struct http_server *s, uv_loop_t *loop, const char *path)
{
	struct sockaddr_un sa;
	mode_t old;
	int rc;

	if (s->listening || s->closing)
		return -EBUSY;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("http: socket path %s is %zu bytes long; the limit is %zu", path,
			  strlen(path), sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	rc = unix_probe(path);
	if (rc)
		return rc;
	s->unix_path = strdup(path);
	if (!s->unix_path)
		return -ENOMEM;
	s->loop = loop;
	rc = uv_pipe_init(loop, &s->listener.pipe, 0);
	if (rc < 0)
		goto fail;
	s->listener.handle.data = s;
	s->is_unix = true;
	s->listening = true;
	s->handles_open++;
	old = umask(0177); /* the socket is born 0600 */
	rc = uv_pipe_bind(&s->listener.pipe, path);
	umask(old);
	if (rc < 0) {
		log_error("http: cannot bind %s: %s", path, uv_strerror(rc));
		goto fail_close;
	}
	rc = uv_listen(&s->listener.stream, 128, on_connection);
	if (rc < 0) {
		log_error("http: cannot listen on %s: %s", path, uv_strerror(rc));
		unlink(path);
		goto fail_close;
	}
	return 0;
fail_close:
	/* the handle stays for http_server_close to release */
	free(s->unix_path);
	s->unix_path = NULL;
	return rc;
fail:
	free(s->unix_path);
	s->unix_path = NULL;
	return rc;
}

int http_server_listen_tcp(struct http_server *s, uv_loop_t *loop, const char *host, int port)
{
	struct sockaddr_storage ss;
	int rc;

	if (s->listening || s->closing)
		return -EBUSY;
	if (port < 0 || port > 65535)
		return -EINVAL;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
		log_error("http: %s is not an IP address", host);
		return -EINVAL;
	}
	s->loop = loop;
	rc = uv_tcp_init(loop, &s->listener.tcp);
	if (rc < 0)
		return rc;
	s->listener.handle.data = s;
	s->listening = true;
	s->handles_open++;
	rc = uv_tcp_bind(&s->listener.tcp, (struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen(&s->listener.stream, 511, on_connection);
	if (rc < 0)
		log_error("http: cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
	return rc;
}

int http_server_port(const struct http_server *s)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (!s->listening || s->is_unix)
		return -1;
	if (uv_tcp_getsockname(&s->listener.tcp, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

void http_server_close(struct http_server *s, void (*cb)(void *ud), void *ud)
{
	struct conn *c;

	if (s->closing)
		return;
	s->closing = true;
	s->close_cb = cb;
	s->close_ud = ud;
	if (s->listening)
		uv_close(&s->listener.handle, on_listener_closed);
	if (s->unix_path) {
		unlink(s->unix_path);
		free(s->unix_path);
		s->unix_path = NULL;
	}
	for (c = s->conns; c; c = c->next)
		conn_close(c);
	if (s->handles_open == 0 && cb)
		cb(ud);
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	if (s->handles_open) {
		log_error("http: http_server_free with %u handles open; leaking it", s->handles_open);
		return;
	}
	free(s->unix_path);
	free(s);
}
