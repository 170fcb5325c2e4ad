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
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

#define HDR_MAX 64
/* A reused transfer keeps at most this much body memory. */
#define KEEP_BODY_MEM (64 * 1024)

/* The request's extra header lines, at most (keys are capped at 8 KiB). */
#define REQ_HEADERS_MAX (16 * 1024)
/* Sockets curl opened through opensocket_fn are found by descriptor below
 * this; one above it is watched only while curl asks (as any other). */
#define FD_TABLE_MAX (1 << 20)

/* How a transfer's easy handle is set up (enum xfer_mode). */
enum xfer_mode { XM_NONE, XM_POST, XM_GET };

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
	/* The easy handle keeps its options between transfers: only what
	 * changes is set again (see engine_send). */
	enum xfer_mode mode;
	bool https;
	bool headers_set;     /* headers is the handle's CURLOPT_HTTPHEADER */
	long timeout_ms;      /* the handle's CURLOPT_TIMEOUT_MS (-1: not set) */
	struct xfer *prev, *next; /* active list, or free list (next only) */
};

/* One watched socket. A socket curl opened itself (opensocket_fn) lives
 * until curl closes it (closesocket_fn): between transfers on a kept-alive
 * connection it stays watched for what the last transfer asked, so the next
 * transfer that asks the same costs no epoll_ctl (uv_poll_start always
 * deletes and re-adds, uv_poll_init checks with an add and a delete and sets
 * O_NONBLOCK again: five system calls a call otherwise). */
struct esock {
	uv_poll_t poll;
	struct engine *e;
	curl_socket_t fd;
	int events;  /* the uv events watched (0: none) */
	bool owned;  /* opened by opensocket_fn: in e->byfd until closed */
	bool idle;   /* curl let it go (a connection in its cache) */
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
	struct esock **byfd; /* the owned sockets by descriptor, nbyfd slots */
	size_t nbyfd;
	uint64_t timer_due;  /* when the armed timer fires (loop ms) */
	struct engine_counters cnt;
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
		free(e->byfd);
		free(e);
	}
}

static void sock_close(struct engine *e, struct esock *s)
{
	if (s->owned && (size_t)s->fd < e->nbyfd && e->byfd[s->fd] == s)
		e->byfd[s->fd] = NULL;
	if (s->prev)
		s->prev->next = s->next;
	else
		e->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	uv_close((uv_handle_t *)&s->poll, handle_closed);
}

/* A new watcher for fd (not started). NULL when libuv refuses the fd or
 * memory is short. */
static struct esock *sock_new(struct engine *e, curl_socket_t fd)
{
	struct esock *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return NULL;
	rc = uv_poll_init_socket(e->loop, &s->poll, fd);
	if (rc < 0) {
		log_error("engine: watching socket %d: %s", (int)fd, uv_strerror(rc));
		free(s);
		return NULL;
	}
	s->poll.data = e;
	s->e = e;
	s->fd = fd;
	s->next = e->socks;
	if (e->socks)
		e->socks->prev = s;
	e->socks = s;
	e->open_handles++;
	e->cnt.poll_inits++;
	return s;
}

/* Room for fd in the table of owned sockets: 0, or -ENOMEM / -ERANGE (then
 * the socket is watched only while curl asks, as one it did not open). */
static int byfd_room(struct engine *e, curl_socket_t fd)
{
	size_t n = e->nbyfd ? e->nbyfd : 64;
	struct esock **t;

	if (fd < 0 || fd >= FD_TABLE_MAX)
		return -ERANGE;
	if ((size_t)fd < e->nbyfd)
		return 0;
	while (n <= (size_t)fd)
		n *= 2;
	t = realloc(e->byfd, n * sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t + e->nbyfd, 0, (n - e->nbyfd) * sizeof(*t));
	e->byfd = t;
	e->nbyfd = n;
	return 0;
}

static struct esock *sock_owned(const struct engine *e, curl_socket_t fd)
{
	return fd >= 0 && (size_t)fd < e->nbyfd ? e->byfd[fd] : NULL;
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	struct esock *s = (struct esock *)p;
	struct engine *e = s->e;
	int flags = 0;
	int running = 0;

	if (s->idle) {
		/* Something arrived on a connection no transfer waits on (the
		 * server closed it): stop watching, curl finds it dead when it
		 * looks at it again. Level-triggered, it would wake every turn. */
		uv_poll_stop(p);
		s->events = 0;
		e->cnt.idle_wakes++;
		return;
	}
	if (status < 0) {
		flags = CURL_CSELECT_ERR;
		s->events = 0; /* libuv stopped the watcher */
	} else {
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
	if (!s)
		s = sock_owned(e, fd);
	if (what == CURL_POLL_REMOVE) {
		if (!s)
			return 0;
		curl_multi_assign(e->multi, fd, NULL);
		if (s->owned)
			s->idle = true; /* kept until closesocket_fn */
		else
			sock_close(e, s);
		return 0;
	}
	if (!s) {
		/* Not opened by opensocket_fn (a resolver's socket pair): watched
		 * only while curl asks. */
		s = sock_new(e, fd);
		if (!s)
			return -1;
	}
	if (!socketp)
		curl_multi_assign(e->multi, fd, s);
	s->idle = false;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	if (events == s->events && uv_is_active((uv_handle_t *)&s->poll))
		return 0;
	rc = uv_poll_start(&s->poll, events, poll_cb);
	if (rc < 0) {
		s->events = 0;
		return -1;
	}
	s->events = events;
	e->cnt.poll_starts++;
	return 0;
}

/* curl's sockets for connections: watched from here until curl closes
 * them (closesocket_fn), so a kept-alive connection keeps its watcher. */
static curl_socket_t opensocket_fn(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct engine *e = clientp;
	curl_socket_t fd;
	struct esock *s;

	(void)purpose;
	/* What curl does without the callback, plus close-on-exec: the
	 * daemon's children never hold a teacher connection. */
	fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
	if (fd == CURL_SOCKET_BAD)
		return CURL_SOCKET_BAD;
	if (e->closing || byfd_room(e, fd) < 0)
		return fd;
	if (e->byfd[fd])
		sock_close(e, e->byfd[fd]); /* its socket was closed behind curl's back */
	s = sock_new(e, fd);
	if (!s)
		return fd;
	s->owned = true;
	e->byfd[fd] = s;
	return fd;
}

static int closesocket_fn(void *clientp, curl_socket_t fd)
{
	struct engine *e = clientp;
	struct esock *s = sock_owned(e, fd);

	/* The watcher goes before the descriptor: a new socket may get its
	 * number at once. */
	if (s)
		sock_close(e, s);
	return close(fd);
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
	if (timeout_ms < 0) {
		uv_timer_stop(&e->timer);
		return 0;
	}
	/* curl tells the same deadline again after most actions. */
	if (uv_is_active((uv_handle_t *)&e->timer) && e->timer_due == uv_now(e->loop) + (uint64_t)timeout_ms)
		return 0;
	e->timer_due = uv_now(e->loop) + (uint64_t)timeout_ms;
	e->cnt.timer_starts++;
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

/* The header list and the easy handle's options stay for the next transfer. */
static void xfer_recycle(struct engine *e, struct xfer *x)
{
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

/* Whether list is what header_list builds for extra and content_type. */
static bool header_list_same(const struct curl_slist *l, const char *extra, const char *content_type)
{
	const char *ct = content_type ? content_type : "application/json";
	const char *p, *nl;
	size_t len;

	if (!l || strncmp(l->data, "Content-Type: ", 14) != 0 || strcmp(l->data + 14, ct) != 0)
		return false;
	l = l->next;
	if (!l || strcmp(l->data, "Expect:") != 0)
		return false;
	for (p = extra; p && *p; p = nl ? nl + 1 : p + len) {
		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) : strlen(p);
		if (len == 0)
			continue;
		l = l->next;
		if (!l || strncmp(l->data, p, len) != 0 || l->data[len] != '\0')
			return false;
	}
	return l->next == NULL;
}

/* The request's header list: JSON, no 100-continue, then each line of extra
 * (the provider's auth). The copy of a line is wiped: it may hold a key.
 * A recycled transfer keeps its list when the request's is the same (every
 * call of an endpoint): 1 then, 0 when built anew. */
static int header_list(struct engine *e, struct xfer *x, const char *extra, const char *content_type)
{
	char ct[256];

	struct buf line;
	struct curl_slist *l;
	const char *p, *nl;
	size_t len;
	int rc = -ENOMEM;

	if (content_type && strlen(content_type) > sizeof(ct) - 16)
		return -EINVAL;
	if (header_list_same(x->headers, extra, content_type))
		return 1;
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	x->headers_set = false;
	e->cnt.header_builds++;
	buf_init(&line, REQ_HEADERS_MAX);
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
	if (rc < 0) {
		curl_slist_free_all(x->headers);
		x->headers = NULL;
	}
	return rc;
}

/* Sets what every transfer of this kind keeps: the options that do not
 * change between requests of the same mode and scheme. */
static void xfer_setup(struct engine *e, struct xfer *x, enum xfer_mode mode, bool https)
{
	CURL *h = x->easy;

	if (x->mode != XM_NONE)
		curl_easy_reset(h);
	e->cnt.easy_setups++;
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (mode == XM_GET)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	else
		curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* Waiting for a multiplexed connection only pays where ALPN can offer
	 * HTTP/2; on plain http it would hold every transfer behind the first
	 * response. */
	if (https)
		curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 15000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_fn);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_fn);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)x);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, opensocket_fn);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, e);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, closesocket_fn);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, e);
	x->mode = mode;
	x->https = https;
	x->headers_set = false;
	x->timeout_ms = -1;
}

int engine_send(struct engine *e, const struct engine_req *req, engine_cb cb, void *ud)
{
	struct xfer *x = NULL;
	enum xfer_mode mode;
	bool https;
	long timeout_ms;
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
	mode = req->get || (req->method && strcmp(req->method, "GET") == 0) ? XM_GET : XM_POST;
	https = strncasecmp(req->url, "https:", 6) == 0;
	if (x->mode != mode || x->https != https)
		xfer_setup(e, x, mode, https);
	rc = header_list(e, x, req->headers, req->content_type);
	if (rc < 0)
		goto fail;
	h = x->easy;
	rc = -EINVAL;
	if (curl_easy_setopt(h, CURLOPT_URL, req->url) != CURLE_OK)
		goto fail;
	if (mode == XM_POST) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	if (!x->headers_set) {
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
		x->headers_set = true;
	}
	timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 120000L;
	if (timeout_ms != x->timeout_ms) {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
		x->timeout_ms = timeout_ms;
	}
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

void engine_counters_get(const struct engine *e, struct engine_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (e)
		*out = e->cnt;
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
