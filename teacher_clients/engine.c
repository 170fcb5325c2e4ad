/* curl multi on the libuv loop. The pattern is curl's multi-uv.c example
 * with the rules of STYLE.md section 8: curl is called from uv callbacks
 * only (never from inside its own timer/socket functions), info is drained
 * after every socket_action, and a message is copied before its handle is
 * removed. */
#include "teacher_clients/engine.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/log.h"

#define HDR_MAX 64
/* A reused transfer keeps at most this much body memory. */
#define KEEP_BODY_MEM (64 * 1024)

/* The request's extra header lines, at most (keys are capped at 8 KiB). */
#define REQ_HEADERS_MAX (16 * 1024)

struct xfer {
	struct engine *e;
	CURL *easy;
	struct curl_slist *headers;
	struct buf body;
	const char *const *capture; /* names asked for (borrowed), ncap of them */
	size_t ncap;
	char hdr[ENGINE_CAPTURE_MAX][HDR_MAX];
	bool has_hdr[ENGINE_CAPTURE_MAX];
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
	engine_cb cb;
	void *ud;
	uint64_t started_ns;
	struct xfer *prev, *next; /* active list, or free list (next only) */
};

struct esock {
	uv_poll_t poll;
	struct engine *e;
	curl_socket_t fd;
	struct esock *prev, *next;
};

struct engine {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	struct engine_opts o;
	struct xfer *active;
	struct xfer *free_list;
	size_t nfree, nactive;
	struct esock *socks;
	uint64_t connects;
	int open_handles;   /* uv handles not yet closed (timer + polls) */
	bool closing;
	void (*closed)(void *ud);
	void *closed_ud;
};

static void check_info(struct engine *e);

static int curl_to_errno(CURLcode rc, bool too_big)
{
	switch (rc) {
	case CURLE_OK: return 0;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return -EHOSTUNREACH;
	case CURLE_WRITE_ERROR: return too_big ? -EMSGSIZE : -EIO;
	case CURLE_PARTIAL_FILE: return -EBADMSG;
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM: return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE: return -EPROTO;
	case CURLE_OUT_OF_MEMORY: return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL: return -EINVAL;
	default: return -EIO;
	}
}

static void handle_closed(uv_handle_t *h)
{
	struct engine *e = h->data;

	if (h->type == UV_POLL)
		free(h); /* struct esock starts with its poll */
	if (--e->open_handles == 0 && e->closing) {
		if (e->closed)
			e->closed(e->closed_ud);
		free(e);
	}
}

static void sock_close(struct engine *e, struct esock *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		e->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	uv_close((uv_handle_t *)&s->poll, handle_closed);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	struct esock *s = (struct esock *)p;
	struct engine *e = s->e;
	int flags = 0;
	int running = 0;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	curl_multi_socket_action(e->multi, s->fd, flags, &running);
	check_info(e);
}

static int socket_fn(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct engine *e = userp;
	struct esock *s = socketp;
	int events = 0, rc;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(e->multi, fd, NULL);
			sock_close(e, s);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		rc = uv_poll_init_socket(e->loop, &s->poll, fd);
		if (rc < 0) {
			log_error("engine: watching socket %d: %s", (int)fd, uv_strerror(rc));
			free(s);
			return -1;
		}
		s->poll.data = e;
		s->e = e;
		s->fd = fd;
		s->next = e->socks;
		if (e->socks)
			e->socks->prev = s;
		e->socks = s;
		e->open_handles++;
		curl_multi_assign(e->multi, fd, s);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	rc = uv_poll_start(&s->poll, events, poll_cb);
	return rc < 0 ? -1 : 0;
}

static void timer_cb(uv_timer_t *t)
{
	struct engine *e = t->data;
	int running = 0;

	curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_info(e);
}

/* Only arms the uv timer: curl must not be re-entered from here. */
static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
	struct engine *e = userp;

	(void)multi;
	if (e->closing)
		return 0;
	if (timeout_ms < 0)
		uv_timer_stop(&e->timer);
	else
		uv_timer_start(&e->timer, timer_cb, (uint64_t)timeout_ms, 0);
	return 0;
}

static size_t write_fn(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;

	if (buf_append(&x->body, p, size * n) < 0) {
		x->too_big = true;
		return 0;
	}
	return size * n;
}

static size_t header_fn(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n, i, nl, vl;
	const char *colon, *v;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue): forget the last one's. */
		memset(x->has_hdr, 0, sizeof(x->has_hdr));
		return len;
	}
	colon = memchr(p, ':', len);
	if (!colon)
		return len;
	nl = (size_t)(colon - p);
	for (i = 0; i < x->ncap; i++) {
		if (strlen(x->capture[i]) != nl || strncasecmp(p, x->capture[i], nl) != 0)
			continue;
		v = colon + 1;
		vl = len - nl - 1;
		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl >= HDR_MAX)
			vl = HDR_MAX - 1;
		memcpy(x->hdr[i], v, vl);
		x->hdr[i][vl] = '\0';
		x->has_hdr[i] = true;
	}
	return len;
}

static void xfer_free(struct xfer *x)
{
	if (!x)
		return;
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	buf_free(&x->body);
	free(x);
}

static void xfer_unlink(struct engine *e, struct xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		e->active = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	e->nactive--;
}

static void xfer_recycle(struct engine *e, struct xfer *x)
{
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	if (e->closing || e->nfree >= e->o.free_max) {
		xfer_free(x);
		return;
	}
	if (x->body.cap > KEEP_BODY_MEM)
		buf_free(&x->body);
	else
		buf_reset(&x->body);
	x->cb = NULL;
	x->ud = NULL;
	x->next = e->free_list;
	e->free_list = x;
	e->nfree++;
}

/* Calls x back with the transfer's outcome and recycles it. x is already
 * out of the multi handle. */
static void xfer_finish(struct engine *e, struct xfer *x, CURLcode rc, int err_override)
{
	struct engine_resp r;
	long status = 0, nconn = 0;
	engine_cb cb = x->cb;
	void *ud = x->ud;
	size_t i;

	memset(&r, 0, sizeof(r));
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK && nconn > 0)
		e->connects += (uint64_t)nconn;
	r.err = err_override ? err_override : curl_to_errno(rc, x->too_big);
	r.errmsg = err_override ? "engine closed" : (x->errbuf[0] ? x->errbuf : (rc ? curl_easy_strerror(rc) : ""));
	if (x->too_big)
		r.errmsg = "reply body over the size limit";
	r.status = status;
	r.body = x->body.base ? x->body.base : "";
	r.body_len = x->body.len;
	r.latency_ms = (double)(uv_hrtime() - x->started_ns) / 1e6;
	r.hdr_names = x->capture;
	for (i = 0; i < x->ncap; i++)
		r.hdr_values[i] = x->has_hdr[i] ? x->hdr[i] : NULL;
	if (r.err && r.err != -ECANCELED)
		log_debug("engine: transfer failed: %s (%s)", strerror(-r.err), r.errmsg);
	cb(ud, &r);
	xfer_recycle(e, x);
}

static void check_info(struct engine *e)
{
	CURLMsg *m;
	int left = 0;

	for (m = curl_multi_info_read(e->multi, &left); m; m = curl_multi_info_read(e->multi, &left)) {
		CURL *easy;
		CURLcode rc;
		struct xfer *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		/* m is invalid after remove_handle: copy first. */
		easy = m->easy_handle;
		rc = m->data.result;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(e->multi, easy);
		if (!x)
			continue;
		xfer_unlink(e, x);
		xfer_finish(e, x, rc, 0);
	}
}

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int engine_new(uv_loop_t *loop, const struct engine_opts *opts, struct engine **out)
{
	static uv_once_t once = UV_ONCE_INIT;
	struct engine *e = NULL;

	*out = NULL;
	uv_once(&once, global_init);
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->loop = loop;
	if (opts)
		e->o = *opts;
	if (e->o.max_host_connections <= 0)
		e->o.max_host_connections = 64;
	if (e->o.max_total_connections <= 0)
		e->o.max_total_connections = 4 * e->o.max_host_connections;
	if (e->o.body_max == 0)
		e->o.body_max = (size_t)8 << 20;
	if (e->o.free_max == 0)
		e->o.free_max = 64;
	e->multi = curl_multi_init();
	if (!e->multi) {
		free(e);
		return -EIO;
	}
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, e->o.max_host_connections);
	curl_multi_setopt(e->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, e->o.max_total_connections);
	/* The connection cache must hold every live connection, or finished
	 * ones are closed instead of reused. */
	curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, e->o.max_total_connections);
	uv_timer_init(loop, &e->timer);
	e->timer.data = e;
	e->open_handles = 1;
	*out = e;
	return 0;
}

static struct xfer *xfer_get(struct engine *e)
{
	struct xfer *x = e->free_list;

	if (x) {
		e->free_list = x->next;
		e->nfree--;
		x->next = NULL;
		curl_easy_reset(x->easy);
	} else {
		x = calloc(1, sizeof(*x));
		if (!x)
			return NULL;
		x->easy = curl_easy_init();
		if (!x->easy) {
			free(x);
			return NULL;
		}
		buf_init(&x->body, e->o.body_max);
	}
	x->e = e;
	x->too_big = false;
	x->errbuf[0] = '\0';
	memset(x->has_hdr, 0, sizeof(x->has_hdr));
	return x;
}

/* The request's header list: JSON, no 100-continue, then each line of extra
 * (the provider's auth). The copy of a line is wiped: it may hold a key. */
static int header_list(struct xfer *x, const char *extra, const char *content_type)
{
	char ct[256];

	struct buf line;
	struct curl_slist *l;
	const char *p, *nl;
	size_t len;
	int rc = -ENOMEM;

	buf_init(&line, REQ_HEADERS_MAX);
	if (content_type && strlen(content_type) > sizeof(ct) - 16)
		return -EINVAL;
	snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : "application/json");
	l = curl_slist_append(NULL, ct);
	if (l)
		x->headers = l;
	/* No "Expect: 100-continue" round trip for big bodies. */
	l = l ? curl_slist_append(x->headers, "Expect:") : NULL;
	if (!l)
		goto out;
	for (p = extra; p && *p; p = nl ? nl + 1 : p + len) {
		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) : strlen(p);
		if (len == 0)
			continue;
		if (line.base)
			memset(line.base, 0, line.len);
		buf_reset(&line);
		if (buf_append(&line, p, len) < 0) {
			rc = -EINVAL;
			goto out;
		}
		l = curl_slist_append(x->headers, line.base);
		if (!l)
			goto out;
	}
	rc = 0;
out:
	if (line.base)
		memset(line.base, 0, line.len);
	buf_free(&line);
	return rc;
}

int engine_send(struct engine *e, const struct engine_req *req, engine_cb cb, void *ud)
{
	struct xfer *x = NULL;
	CURL *h;
	int rc;

	if (!e || !req || !req->url || !cb || (!req->body && req->body_len))
		return -EINVAL;
	if (e->closing)
		return -ESHUTDOWN;
	x = xfer_get(e);
	if (!x)
		return -ENOMEM;
	for (x->ncap = 0; req->capture && req->capture[x->ncap]; x->ncap++)
		if (x->ncap == ENGINE_CAPTURE_MAX)
			break;
	if (x->ncap == ENGINE_CAPTURE_MAX && req->capture[x->ncap]) {
		rc = -EINVAL;
		goto fail;
	}
	x->capture = req->capture;
	if (req->method && strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0) {
		rc = -EINVAL;
		goto fail;
	}
	rc = header_list(x, req->headers, req->content_type);
	if (rc < 0)
		goto fail;
	h = x->easy;
	rc = -EINVAL;
	if (curl_easy_setopt(h, CURLOPT_URL, req->url) != CURLE_OK)
		goto fail;
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (req->get || (req->method && strcmp(req->method, "GET") == 0)) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* Waiting for a multiplexed connection only pays where ALPN can offer
	 * HTTP/2; on plain http it would hold every transfer behind the first
	 * response. */
	if (strncasecmp(req->url, "https:", 6) == 0)
		curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 120000L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 15000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_fn);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_fn);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)x);
	x->cb = cb;
	x->ud = ud;
	x->started_ns = uv_hrtime();
	if (curl_multi_add_handle(e->multi, h) != CURLM_OK) {
		rc = -ENOMEM;
		goto fail;
	}
	x->next = e->active;
	if (e->active)
		e->active->prev = x;
	e->active = x;
	e->nactive++;
	return 0;
fail:
	xfer_recycle(e, x);
	return rc;
}

const char *engine_resp_header(const struct engine_resp *r, const char *name)
{
	size_t i;

	for (i = 0; r && r->hdr_names && name && i < ENGINE_CAPTURE_MAX && r->hdr_names[i]; i++)
		if (strcasecmp(r->hdr_names[i], name) == 0)
			return r->hdr_values[i];
	return NULL;
}

size_t engine_in_flight(const struct engine *e)
{
	return e ? e->nactive : 0;
}

uint64_t engine_connects(const struct engine *e)
{
	return e ? e->connects : 0;
}

static void teardown_cb(uv_timer_t *t)
{
	struct engine *e = t->data;
	struct xfer *x;

	while (e->active) {
		x = e->active;
		curl_multi_remove_handle(e->multi, x->easy);
		xfer_unlink(e, x);
		xfer_finish(e, x, CURLE_OK, -ECANCELED);
	}
	while (e->free_list) {
		x = e->free_list;
		e->free_list = x->next;
		xfer_free(x);
	}
	e->nfree = 0;
	/* May call socket_fn with CURL_POLL_REMOVE for cached connections. */
	curl_multi_cleanup(e->multi);
	e->multi = NULL;
	while (e->socks)
		sock_close(e, e->socks);
	uv_close((uv_handle_t *)&e->timer, handle_closed);
}

void engine_close(struct engine *e, void (*closed)(void *ud), void *ud)
{
	if (!e || e->closing)
		return;
	e->closing = true;
	e->closed = closed;
	e->closed_ud = ud;
	/* Deferred: we may be inside check_info() of a callback. */
	uv_timer_start(&e->timer, teardown_cb, 0, 0);
}
