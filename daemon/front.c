#include "daemon/front.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/api_routes.h"
#include "daemon/http.h"
#include "daemon/snapshot.h"

/* A request line longer than this is parsed (and refused) by the front. */
#define LINE_MAX_BYTES 8192

/* The routes answered from a snapshot: one row each. */
enum front_kind { FK_JOB, FK_LIST, FK_METRICS, FK_HEALTH };

struct front_route {
	const char *pattern; /* as in api_routes[] */
	enum front_kind kind;
	enum snap_kind snap; /* FK_JOB: unused */
	const char *content_type;
};

static const struct front_route front_routes[] = {
	{ "/v1/jobs/{id}", FK_JOB, SNAP__N, "application/json" },
	{ "/v1/jobs", FK_LIST, SNAP_LIST, "application/json" },
	{ "/metrics", FK_METRICS, SNAP_METRICS, "text/plain; version=0.0.4; charset=utf-8" },
	{ "/v1/health", FK_HEALTH, SNAP_HEALTH, "application/json" },
};

/* A connection on its way to the main loop. */
struct handoff {
	struct handoff *next;
	int fd;
	size_t len;
	char data[];
};

/* A request waiting for its text to be published. */
struct parked {
	struct parked *prev, *next;
	struct front *f;
	struct http_req *req;
	const struct front_route *route;
};

struct front {
	/* main loop side */
	uv_loop_t *main_loop;
	struct http_server *main_srv;
	uv_async_t main_async; /* handoffs queued, or a text wanted */
	void (*want)(void *ud);
	void *want_ud;
	void (*close_cb)(void *);
	void *close_ud;
	/* shared */
	struct snapshot *snap;
	pthread_mutex_t mu;
	struct handoff *queue, **tail;
	atomic_bool wanted;
	atomic_uint_fast64_t requests;
	atomic_uint conns;
	/* front thread side */
	uv_loop_t loop;
	uv_thread_t thr;
	bool thread_started;
	struct http_server *srv;
	uv_async_t stop_async, wake_async;
	int handles_open;
	struct parked *parked;
};

/* Which snapshot route a path is, or NULL; m filled. Pure. */
static const struct front_route *route_of(const char *path, struct api_route_match *m)
{
	if (api_route_match("GET", path, m) != 0)
		return NULL;
	for (size_t i = 0; i < sizeof(front_routes) / sizeof(front_routes[0]); i++)
		if (strcmp(front_routes[i].pattern, m->route->pattern) == 0)
			return &front_routes[i];
	return NULL;
}

/* "job_N" as the store writes it (no sign, no leading zero), else -1. */
static int64_t job_id_parse(const char *s)
{
	int64_t id = 0;

	if (strncmp(s, "job_", 4) != 0 || s[4] < '1' || s[4] > '9')
		return -1;
	for (s += 4; *s; s++) {
		if (*s < '0' || *s > '9' || id > (INT64_MAX - 9) / 10)
			return -1;
		id = id * 10 + (*s - '0');
	}
	return id;
}

/* ---- front thread: serving ---- */

static void respond_text(struct http_req *req, const struct front_route *r, struct snap_text *t)
{
	size_t len;
	const char *data = snap_text_data(t, &len);

	http_respond(req, 200, r->content_type, data, len);
	snap_text_unref(t);
}

static void parked_unlink(struct parked *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		p->f->parked = p->next;
	if (p->next)
		p->next->prev = p->prev;
}

static void parked_abort(void *ctx, struct http_req *req)
{
	struct parked *p = ctx;

	(void)req;
	parked_unlink(p);
	free(p);
}

static void front_on_request(void *ud, struct http_req *req)
{
	struct front *f = ud;
	struct api_route_match m;
	const struct front_route *r = route_of(http_req_path(req), &m);
	struct snap_text *t;
	struct parked *p;

	atomic_fetch_add_explicit(&f->requests, 1, memory_order_relaxed);
	atomic_store_explicit(&f->conns, http_server_connection_count(f->srv), memory_order_relaxed);
	if (!r || strcmp(http_req_method(req), "GET") != 0) {
		/* The classifier lets only snapshot routes through. */
		http_respond_error(req, 500, "internal", "request reached the wrong thread", NULL);
		return;
	}
	if (r->kind == FK_JOB) {
		t = snapshot_job(f->snap, job_id_parse(m.params[0]));
		if (t)
			respond_text(req, r, t);
		else /* cannot happen: published jobs stay */
			http_respond_error(req, 500, "internal", "job status vanished", NULL);
		return;
	}
	t = snapshot_get(f->snap, r->snap, true);
	if (t) {
		respond_text(req, r, t);
		return;
	}
	/* Not rendered while nobody asked: ask the main loop, answer when
	 * the text is published (wake_async). */
	p = calloc(1, sizeof(*p));
	if (!p) {
		http_respond_error(req, 500, "internal", "out of memory", NULL);
		return;
	}
	p->f = f;
	p->req = req;
	p->route = r;
	p->next = f->parked;
	if (p->next)
		p->next->prev = p;
	f->parked = p;
	http_req_on_abort(req, parked_abort, p);
	atomic_store(&f->wanted, true);
	uv_async_send(&f->main_async);
}

static void front_on_wake(uv_async_t *h)
{
	struct front *f = h->data;
	struct parked *p, *next;
	bool waiting = false;

	for (p = f->parked; p; p = next) {
		struct snap_text *t = snapshot_get(f->snap, p->route->snap, true);

		next = p->next;
		if (!t) {
			waiting = true;
			continue;
		}
		parked_unlink(p);
		http_req_on_abort(p->req, NULL, NULL);
		respond_text(p->req, p->route, t);
		free(p);
	}
	if (waiting) {
		atomic_store(&f->wanted, true);
		uv_async_send(&f->main_async);
	}
}

/* Called by http.c before each request: keep the snapshot routes here,
 * hand everything else to the main loop. */
static int front_classify(void *ud, const char *data, size_t len)
{
	struct front *f = ud;
	char path[LINE_MAX_BYTES];
	const char *p = data, *end = data + len, *target, *sp;
	struct api_route_match m;
	const struct front_route *r;
	size_t plen;

	atomic_store_explicit(&f->conns, http_server_connection_count(f->srv), memory_order_relaxed);
	while (p < end && (*p == '\r' || *p == '\n')) /* http-parser skips these too */
		p++;
	if ((size_t)(end - p) < 4)
		return memcmp(p, "GET ", (size_t)(end - p)) == 0 ? HTTP_CLASSIFY_MORE
								  : HTTP_CLASSIFY_DETACH;
	if (memcmp(p, "GET ", 4) != 0)
		return HTTP_CLASSIFY_DETACH;
	target = p + 4;
	sp = memchr(target, ' ', (size_t)(end - target));
	if (memchr(target, '\n', (size_t)((sp ? sp : end) - target)))
		return HTTP_CLASSIFY_DETACH; /* not a request line of ours: the loop answers it */
	if (!sp)
		return len < LINE_MAX_BYTES ? HTTP_CLASSIFY_MORE : HTTP_CLASSIFY_KEEP;
	plen = (size_t)(sp - target);
	for (size_t i = 0; i < plen; i++)
		if (target[i] == '?' || target[i] == '#') {
			plen = i;
			break;
		}
	if (plen == 0 || plen >= sizeof(path) || target[0] != '/')
		return HTTP_CLASSIFY_DETACH;
	memcpy(path, target, plen);
	path[plen] = '\0';
	r = route_of(path, &m);
	if (!r)
		return HTTP_CLASSIFY_DETACH;
	if (r->kind == FK_JOB) {
		struct snap_text *t = snapshot_job(f->snap, job_id_parse(m.params[0]));

		if (!t)
			return HTTP_CLASSIFY_DETACH; /* an older job, a name: the main loop knows */
		snap_text_unref(t);
	}
	return HTTP_CLASSIFY_KEEP;
}

static void front_detach(void *ud, int fd, const char *data, size_t len)
{
	struct front *f = ud;
	struct handoff *h = malloc(sizeof(*h) + len);

	if (!h) {
		log_error("front: out of memory handing a connection over; closing it");
		close(fd);
		return;
	}
	h->next = NULL;
	h->fd = fd;
	h->len = len;
	memcpy(h->data, data, len);
	pthread_mutex_lock(&f->mu);
	*f->tail = h;
	f->tail = &h->next;
	pthread_mutex_unlock(&f->mu);
	uv_async_send(&f->main_async);
}

/* ---- front thread: life ---- */

static void front_handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void front_srv_closed(void *ud)
{
	struct front *f = ud;

	uv_close((uv_handle_t *)&f->stop_async, front_handle_closed);
	uv_close((uv_handle_t *)&f->wake_async, front_handle_closed);
}

static void front_on_stop(uv_async_t *h)
{
	struct front *f = h->data;

	http_server_close(f->srv, front_srv_closed, f);
}

static void front_thread(void *arg)
{
	struct front *f = arg;

	pthread_setname_np(pthread_self(), "mt-front"); /* top -H, perf */
	uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* ---- main loop side ---- */

static void front_on_main_async(uv_async_t *h)
{
	struct front *f = h->data;
	struct handoff *q, *next;

	pthread_mutex_lock(&f->mu);
	q = f->queue;
	f->queue = NULL;
	f->tail = &f->queue;
	pthread_mutex_unlock(&f->mu);
	for (; q; q = next) {
		int rc;

		next = q->next;
		rc = http_server_adopt(f->main_srv, f->main_loop, q->fd, q->data, q->len);
		if (rc < 0)
			log_warn("front: the main loop cannot take a connection: %s", uv_strerror(rc));
		free(q);
	}
	if (atomic_exchange(&f->wanted, false) && f->want)
		f->want(f->want_ud);
}

static void front_notify(void *ud)
{
	struct front *f = ud;

	uv_async_send(&f->wake_async);
}

uint64_t front_requests(const struct front *f)
{
	return f ? atomic_load_explicit(&f->requests, memory_order_relaxed) : 0;
}

unsigned front_connections(const struct front *f)
{
	return f ? atomic_load_explicit(&f->conns, memory_order_relaxed) : 0;
}

/* Undoes a front whose thread never started. */
static void front_unwind(struct front *f)
{
	if (f->srv) {
		http_server_close(f->srv, NULL, NULL);
		uv_run(&f->loop, UV_RUN_DEFAULT);
		http_server_free(f->srv);
	}
	uv_loop_close(&f->loop);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static void front_unwind_closed(uv_handle_t *h) { front_unwind(h->data); }

int front_start(uv_loop_t *main_loop, struct http_server *main_srv, struct snapshot *snap,
		const char *socket_path, const struct http_server_config *hc,
		void (*want)(void *ud), void *ud, struct front **out)
{
	struct http_handler h = { front_on_request, NULL, NULL };
	struct front *f = calloc(1, sizeof(*f));
	int rc;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	if (pthread_mutex_init(&f->mu, NULL) != 0) {
		free(f);
		return -ENOMEM;
	}
	f->main_loop = main_loop;
	f->main_srv = main_srv;
	f->snap = snap;
	f->want = want;
	f->want_ud = ud;
	f->tail = &f->queue;
	atomic_init(&f->wanted, false);
	atomic_init(&f->requests, 0);
	atomic_init(&f->conns, 0);
	rc = uv_loop_init(&f->loop);
	if (rc < 0) {
		pthread_mutex_destroy(&f->mu);
		free(f);
		return rc;
	}
	h.ud = f;
	f->srv = http_server_new(&h, hc);
	if (!f->srv) {
		front_unwind(f);
		return -ENOMEM;
	}
	http_server_set_detach(f->srv, front_classify, front_detach, f);
	rc = http_server_listen_unix(f->srv, &f->loop, socket_path);
	if (rc == 0)
		rc = uv_async_init(&f->loop, &f->stop_async, front_on_stop);
	if (rc == 0) {
		f->stop_async.data = f;
		rc = uv_async_init(&f->loop, &f->wake_async, front_on_wake);
		if (rc < 0)
			uv_close((uv_handle_t *)&f->stop_async, NULL);
	}
	if (rc < 0) {
		front_unwind(f);
		return rc;
	}
	f->wake_async.data = f;
	rc = uv_async_init(main_loop, &f->main_async, front_on_main_async);
	if (rc < 0) {
		uv_close((uv_handle_t *)&f->stop_async, NULL);
		uv_close((uv_handle_t *)&f->wake_async, NULL);
		front_unwind(f);
		return rc;
	}
	f->main_async.data = f;
	rc = uv_thread_create(&f->thr, front_thread, f);
	if (rc < 0) {
		/* Nothing ran on the front loop: its handles close here, the
		 * rest once the main loop has closed main_async. */
		uv_close((uv_handle_t *)&f->stop_async, NULL);
		uv_close((uv_handle_t *)&f->wake_async, NULL);
		uv_close((uv_handle_t *)&f->main_async, front_unwind_closed);
		return rc;
	}
	f->thread_started = true;
	snapshot_set_notify(snap, front_notify, f);
	*out = f;
	return 0;
}

static void front_main_async_closed(uv_handle_t *h)
{
	struct front *f = h->data;

	if (f->close_cb)
		f->close_cb(f->close_ud);
}

void front_stop(struct front *f, void (*cb)(void *ud), void *ud)
{
	struct handoff *q, *next;

	f->close_cb = cb;
	f->close_ud = ud;
	snapshot_set_notify(f->snap, NULL, NULL);
	uv_async_send(&f->stop_async);
	uv_thread_join(&f->thr);
	f->thread_started = false;
	/* Connections handed over but not adopted yet: the daemon is going. */
	pthread_mutex_lock(&f->mu);
	q = f->queue;
	f->queue = NULL;
	f->tail = &f->queue;
	pthread_mutex_unlock(&f->mu);
	for (; q; q = next) {
		next = q->next;
		close(q->fd);
		free(q);
	}
	uv_close((uv_handle_t *)&f->main_async, front_main_async_closed);
}

void front_free(struct front *f)
{
	if (!f)
		return;
	http_server_free(f->srv);
	if (uv_loop_close(&f->loop) != 0)
		log_error("front: its loop still has handles; leaking it");
	pthread_mutex_destroy(&f->mu);
	free(f);
}
