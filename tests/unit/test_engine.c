/* layers: teacher_clients common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "teacher_clients/engine.h"

/* A minimal HTTP/1.1 responder on the test's own loop. The path picks the
 * behaviour: /ok, /big, /short, /hang, /close, /status/NNN, /okclose (a
 * normal reply, then the server closes the kept-alive connection). */
struct responder {
	int port; /* not first: close_walk tells connections by data == handle */
	uv_tcp_t srv;
	int accepted;
	int requests;
	char last_auth[128];
	/* what the requests carried */
	int posts, gets, ct_json, ct_text, accept_enc, expect;
	char last_body[64];
};

struct rconn {
	uv_tcp_t tcp;
	struct responder *r;
	struct buf in;
	int hang;
};

static void rconn_closed(uv_handle_t *h)
{
	struct rconn *c = h->data;
	buf_free(&c->in);
	free(c);
}

static void rconn_close(struct rconn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, rconn_closed);
}

static void wrote(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void rsend(struct rconn *c, const char *data, size_t len)
{
	uv_write_t *w = malloc(sizeof(*w));
	char *copy = malloc(len);
	uv_buf_t b;

	memcpy(copy, data, len);
	w->data = copy;
	b = uv_buf_init(copy, (unsigned)len);
	uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, wrote);
}

static void respond(struct rconn *c, const char *path)
{
	char head[512];
	struct buf body;
	int n;

	buf_init(&body, 1 << 20);
	c->r->requests++;
	if (strcmp(path, "/hang") == 0) {
		c->hang = 1;
		goto out;
	}
	if (strcmp(path, "/close") == 0) {
		rconn_close(c);
		goto out;
	}
	if (strcmp(path, "/okclose") == 0) {
		n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
		rsend(c, head, (size_t)n);
		rconn_close(c);
		goto out;
	}
	if (strcmp(path, "/short") == 0) {
		n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"choices\":");
		rsend(c, head, (size_t)n);
		rconn_close(c);
		goto out;
	}
	if (strcmp(path, "/big") == 0) {
		while (body.len < 5000)
			buf_puts(&body, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	} else {
		buf_printf(&body, "{\"path\":\"%s\"}", path);
	}
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		     "Retry-After: 7\r\nx-ratelimit-remaining-requests:  42 \r\n"
		     "X-RateLimit-Reset-Tokens: 6m0s\r\n\r\n",
		     strncmp(path, "/status/", 8) == 0 ? atoi(path + 8) : 200, body.len);
	/* one write: head and body in two segments would meet Nagle */
	buf_append(&body, "", 0);
	{
		struct buf all;
		buf_init(&all, 2 << 20);
		buf_append(&all, head, (size_t)n);
		buf_append(&all, body.base, body.len);
		rsend(c, all.base, all.len);
		buf_free(&all);
	}
out:
	buf_free(&body);
}

static void ralloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	(void)h;
	b->base = malloc(sz);
	b->len = sz;
}

static void rread(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct rconn *c = s->data;

	if (n < 0) {
		rconn_close(c);
		goto out;
	}
	buf_append(&c->in, b->base, (size_t)n);
	for (;;) {
		char *end = c->in.base ? strstr(c->in.base, "\r\n\r\n") : NULL;
		char path[256] = "", *cl, *auth;
		size_t hlen, blen = 0;

		if (!end || c->hang || uv_is_closing((uv_handle_t *)&c->tcp))
			break;
		hlen = (size_t)(end - c->in.base) + 4;
		cl = strcasestr(c->in.base, "content-length:");
		if (cl && cl < end)
			blen = strtoul(cl + 15, NULL, 10);
		if (c->in.len < hlen + blen)
			break;
		auth = strcasestr(c->in.base, "authorization: ");
		if (auth && auth < end)
			sscanf(auth + 15, "%127[^\r]", c->r->last_auth);
		*end = '\0'; /* the header block alone for the searches below */
		c->r->ct_json += strcasestr(c->in.base, "\r\ncontent-type: application/json\r") != NULL;
		c->r->ct_text += strcasestr(c->in.base, "\r\ncontent-type: text/plain\r") != NULL;
		c->r->accept_enc += strcasestr(c->in.base, "\r\naccept-encoding: ") != NULL;
		c->r->expect += strcasestr(c->in.base, "\r\nexpect:") != NULL;
		*end = '\r';
		snprintf(c->r->last_body, sizeof(c->r->last_body), "%.*s", (int)blen, c->in.base + hlen);
		if (sscanf(c->in.base, "POST %255s", path) == 1)
			c->r->posts++;
		else if (sscanf(c->in.base, "GET %255s", path) == 1)
			c->r->gets++;
		buf_consume(&c->in, hlen + blen);
		respond(c, path);
	}
out:
	free(b->base);
}

static void raccept(uv_stream_t *srv, int status)
{
	struct responder *r = srv->data;
	struct rconn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	c->r = r;
	buf_init(&c->in, 1 << 20);
	uv_tcp_init(srv->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) == 0) {
		r->accepted++;
		uv_tcp_nodelay(&c->tcp, 1);
		uv_read_start((uv_stream_t *)&c->tcp, ralloc, rread);
	} else {
		rconn_close(c);
	}
}

static void responder_start(uv_loop_t *loop, struct responder *r)
{
	struct sockaddr_in a;
	struct sockaddr_storage got;
	int len = sizeof(got);

	memset(r, 0, sizeof(*r));
	uv_ip4_addr("127.0.0.1", 0, &a);
	assert_int_equal(uv_tcp_init(loop, &r->srv), 0);
	r->srv.data = r;
	assert_int_equal(uv_tcp_bind(&r->srv, (struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&r->srv, 4096, raccept), 0);
	uv_tcp_getsockname(&r->srv, (struct sockaddr *)&got, &len);
	r->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (uv_is_closing(h))
		return;
	if (h->type == UV_TCP && h->data == (void *)h)
		rconn_close(h->data);
	else
		uv_close(h, NULL);
}

/* ---- the tests ---- */

struct result {
	int done;
	int err;
	long status;
	char body[256];
	size_t body_len;
	char retry_after[64], rem_req[64], reset_tok[64];
	bool unasked; /* a header not in the capture list came back */
	int *counter;
	struct engine *e;
	int send_again; /* sends /ok once more from the callback */
	struct result *again;
	char url[128];
};

static void got(void *ud, const struct engine_resp *r)
{
	struct result *res = ud;

	res->done++;
	res->err = r->err;
	res->status = r->status;
	res->body_len = r->body_len;
	snprintf(res->body, sizeof(res->body), "%s", r->body);
	snprintf(res->retry_after, sizeof(res->retry_after), "%s",
		 engine_resp_header(r, "retry-after") ? engine_resp_header(r, "retry-after") : "");
	snprintf(res->rem_req, sizeof(res->rem_req), "%s",
		 engine_resp_header(r, "x-ratelimit-remaining-requests")
			 ? engine_resp_header(r, "x-ratelimit-remaining-requests") : "");
	snprintf(res->reset_tok, sizeof(res->reset_tok), "%s",
		 engine_resp_header(r, "X-Ratelimit-Reset-Tokens") ? engine_resp_header(r, "X-Ratelimit-Reset-Tokens")
								    : "");
	res->unasked = engine_resp_header(r, "content-type") != NULL;
	if (res->counter)
		(*res->counter)++;
	if (res->send_again) {
		struct engine_req q = { .url = res->url, .body = "{}", .body_len = 2 };
		res->send_again = 0;
		assert_int_equal(engine_send(res->e, &q, got, res->again), 0);
	}
}

static int closed_flag;
static void on_closed(void *ud)
{
	(void)ud;
	closed_flag = 1;
}

static void finish(uv_loop_t *loop, struct engine *e)
{
	closed_flag = 0;
	engine_close(e, on_closed, NULL);
	while (!closed_flag)
		uv_run(loop, UV_RUN_ONCE);
	uv_walk(loop, close_walk, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

static void run_until(uv_loop_t *loop, int *done, int n)
{
	while (*done < n)
		uv_run(loop, UV_RUN_ONCE);
}

static void test_engine_basic(void **state)
{
	uv_loop_t loop;
	struct responder r;
	struct engine *e;
	struct result res = { 0 };
	char url[128];
	static const char *const caps[] = { "retry-after", "x-ratelimit-remaining-requests",
					    "x-ratelimit-reset-tokens", NULL };
	static const char *const too_many[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", NULL };
	struct engine_req q = { .url = url, .body = "{\"a\":1}", .body_len = 7,
				.headers = "X-Other: 1\nAuthorization: Bearer sk-test\n", .capture = caps };

	(void)state;
	uv_loop_init(&loop);
	responder_start(&loop, &r);
	assert_int_equal(engine_new(&loop, NULL, &e), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", r.port);
	assert_int_equal(engine_send(e, &q, got, &res), 0);
	assert_int_equal(res.done, 0); /* never synchronously */
	assert_int_equal(engine_in_flight(e), 1);
	run_until(&loop, &res.done, 1);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "{\"path\":\"/ok\"}");
	assert_string_equal(res.retry_after, "7");
	assert_string_equal(res.rem_req, "42");
	assert_string_equal(res.reset_tok, "6m0s");
	assert_string_equal(r.last_auth, "Bearer sk-test");
	assert_false(res.unasked);
	assert_int_equal(engine_in_flight(e), 0);

	/* a status is not a transport error */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/status/503", r.port);
	assert_int_equal(engine_send(e, &q, got, &res), 0);
	run_until(&loop, &res.done, 2);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.status, 503);

	assert_int_equal(engine_send(e, &(struct engine_req){ .url = NULL }, got, &res), -EINVAL);
	assert_int_equal(engine_send(e, &(struct engine_req){ .url = url, .capture = too_many }, got, &res), -EINVAL);
	finish(&loop, e);
}

static void test_engine_errors(void **state)
{
	uv_loop_t loop;
	struct responder r;
	struct engine *e;
	struct engine_opts o = { .body_max = 1024 };
	struct result res[5];
	char url[5][128];
	const char *paths[4] = { "/big", "/short", "/hang", "/close" };
	int done = 0, i;
	uv_tcp_t dead;
	struct sockaddr_in a;
	struct sockaddr_storage sa;
	int salen = sizeof(sa);

	(void)state;
	memset(res, 0, sizeof(res));
	uv_loop_init(&loop);
	responder_start(&loop, &r);
	/* a port with nothing listening: bind, read the port, close */
	uv_tcp_init(&loop, &dead);
	uv_ip4_addr("127.0.0.1", 0, &a);
	uv_tcp_bind(&dead, (struct sockaddr *)&a, 0);
	uv_tcp_getsockname(&dead, (struct sockaddr *)&sa, &salen);
	snprintf(url[4], sizeof(url[4]), "http://127.0.0.1:%d/ok", ntohs(((struct sockaddr_in *)&sa)->sin_port));
	uv_close((uv_handle_t *)&dead, NULL);
	assert_int_equal(engine_new(&loop, &o, &e), 0);
	for (i = 0; i < 5; i++) {
		struct engine_req q = { .url = url[i], .body = "{}", .body_len = 2, .timeout_ms = 300 };
		if (i < 4)
			snprintf(url[i], sizeof(url[i]), "http://127.0.0.1:%d%s", r.port, paths[i]);
		res[i].counter = &done;
		assert_int_equal(engine_send(e, &q, got, &res[i]), 0);
	}
	run_until(&loop, &done, 5);
	assert_int_equal(res[0].err, -EMSGSIZE);
	assert_int_equal(res[1].err, -EBADMSG);
	assert_int_equal(res[2].err, -ETIMEDOUT);
	assert_int_equal(res[3].err, -ECONNRESET);
	assert_int_equal(res[4].err, -ECONNREFUSED);
	finish(&loop, e);
}

/* Keep-alive: sequential requests share one connection; a callback may
 * send again; many at once stay within the connection limit. */
static void test_engine_reuse(void **state)
{
	uv_loop_t loop;
	struct responder r;
	struct engine *e;
	struct engine_opts o = { .max_host_connections = 8 };
	struct result chain[20], *many;
	int done = 0, i;
	const int N = 1000;

	(void)state;
	memset(chain, 0, sizeof(chain));
	uv_loop_init(&loop);
	responder_start(&loop, &r);
	assert_int_equal(engine_new(&loop, &o, &e), 0);
	for (i = 0; i < 20; i++) {
		snprintf(chain[i].url, sizeof(chain[i].url), "http://127.0.0.1:%d/ok", r.port);
		chain[i].e = e;
		chain[i].counter = &done;
		chain[i].send_again = i < 19;
		chain[i].again = i < 19 ? &chain[i + 1] : NULL;
	}
	{
		struct engine_req q = { .url = chain[0].url, .body = "{}", .body_len = 2 };
		assert_int_equal(engine_send(e, &q, got, &chain[0]), 0);
	}
	run_until(&loop, &done, 20);
	assert_int_equal(r.accepted, 1);
	assert_int_equal(r.requests, 20);

	many = calloc(N, sizeof(*many));
	done = 0;
	for (i = 0; i < N; i++) {
		struct engine_req q = { .url = chain[0].url, .body = "{}", .body_len = 2 };
		many[i].counter = &done;
		assert_int_equal(engine_send(e, &q, got, &many[i]), 0);
	}
	run_until(&loop, &done, N);
	for (i = 0; i < N; i++)
		assert_int_equal(many[i].status, 200);
	assert_true(r.accepted <= 8);
	assert_true(engine_connects(e) <= 8);
	free(many);
	finish(&loop, e);
}

/* Closing with transfers in flight calls them back with -ECANCELED. */
static void test_engine_close_inflight(void **state)
{
	uv_loop_t loop;
	struct responder r;
	struct engine *e;
	struct result res[3];
	char url[128];
	int done = 0, i;

	(void)state;
	memset(res, 0, sizeof(res));
	uv_loop_init(&loop);
	responder_start(&loop, &r);
	assert_int_equal(engine_new(&loop, NULL, &e), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", r.port);
	for (i = 0; i < 3; i++) {
		struct engine_req q = { .url = url, .body = "{}", .body_len = 2 };
		res[i].counter = &done;
		assert_int_equal(engine_send(e, &q, got, &res[i]), 0);
	}
	while (r.requests < 3)
		uv_run(&loop, UV_RUN_ONCE);
	closed_flag = 0;
	engine_close(e, on_closed, NULL);
	{
		struct engine_req q = { .url = url, .body = "{}", .body_len = 2 };
		assert_int_equal(engine_send(e, &q, got, &res[0]), -ESHUTDOWN);
	}
	while (!closed_flag)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(done, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(res[i].err, -ECANCELED);
	uv_walk(&loop, close_walk, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}


/* A kept-alive connection's next request costs no new setup: its socket
 * keeps its watcher (no uv_poll_start for the same events), its transfer
 * keeps its easy options and header list; the requests stay the same. */
static void test_engine_keepalive_costs(void **state)
{
	uv_loop_t loop;
	struct responder r;
	struct engine *e;
	struct engine_counters k;
	struct result res = { 0 };
	char url[128];
	int i;

	(void)state;
	uv_loop_init(&loop);
	responder_start(&loop, &r);
	assert_int_equal(engine_new(&loop, NULL, &e), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", r.port);
	for (i = 0; i < 30; i++) {
		struct engine_req q = { .url = url, .body = "{\"n\":1}", .body_len = 7,
					.headers = "Authorization: Bearer sk-a\n", .timeout_ms = 5000 };
		assert_int_equal(engine_send(e, &q, got, &res), 0);
		run_until(&loop, &res.done, i + 1);
		assert_int_equal(res.status, 200);
	}
	engine_counters_get(e, &k);
	assert_int_equal(r.accepted, 1);
	assert_int_equal(r.posts, 30);
	assert_int_equal(r.ct_json, 30);
	assert_int_equal(r.accept_enc, 30);
	assert_int_equal(r.expect, 0);
	assert_string_equal(r.last_auth, "Bearer sk-a");
	assert_string_equal(r.last_body, "{\"n\":1}");
	assert_int_equal(k.easy_setups, 1);
	assert_int_equal(k.header_builds, 1);
	assert_int_equal(k.poll_inits, 1);
	/* connect (out), then in: unchanged for every later request (each
	 * call started it again before) */
	assert_true(k.poll_starts <= 3);
	assert_int_equal(k.idle_wakes, 0);

	/* A GET on the same transfer, then a POST again: each as asked. */
	{
		struct engine_req q = { .url = url, .get = true, .headers = "Authorization: Bearer sk-a\n" };
		assert_int_equal(engine_send(e, &q, got, &res), 0);
		run_until(&loop, &res.done, 31);
	}
	assert_int_equal(r.gets, 1);
	{
		struct engine_req q = { .url = url, .body = "{\"n\":2}", .body_len = 7,
					.headers = "Authorization: Bearer sk-b\n", .content_type = "text/plain" };
		assert_int_equal(engine_send(e, &q, got, &res), 0);
		run_until(&loop, &res.done, 32);
	}
	assert_int_equal(res.status, 200);
	assert_int_equal(r.posts, 31);
	assert_string_equal(r.last_body, "{\"n\":2}");
	assert_string_equal(r.last_auth, "Bearer sk-b"); /* a new list for new lines */
	assert_int_equal(r.ct_text, 1);
	assert_int_equal(r.ct_json, 31);
	engine_counters_get(e, &k);
	assert_int_equal(k.easy_setups, 3);
	assert_int_equal(k.header_builds, 2);
	assert_int_equal(r.accepted, 1);
	finish(&loop, e);
}

static int guard_fired;
static void guard_cb(uv_timer_t *t)
{
	(void)t;
	guard_fired = 1;
}

/* The server closes a kept-alive connection no transfer uses: the engine
 * stops watching it at the first event (level-triggered, it would wake the
 * loop every turn), and the next request goes on a new connection. */
static void test_engine_idle_close(void **state)
{
	uv_loop_t loop;
	uv_timer_t guard;
	struct responder r;
	struct engine *e;
	struct engine_counters k;
	struct result res = { 0 };
	char url[128];
	int i;

	(void)state;
	uv_loop_init(&loop);
	responder_start(&loop, &r);
	assert_int_equal(engine_new(&loop, NULL, &e), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/okclose", r.port);
	{
		struct engine_req q = { .url = url, .body = "{}", .body_len = 2 };
		assert_int_equal(engine_send(e, &q, got, &res), 0);
		run_until(&loop, &res.done, 1);
	}
	assert_int_equal(res.status, 200);
	/* hang guard only: the close arrives at once */
	guard_fired = 0;
	uv_timer_init(&loop, &guard);
	uv_timer_start(&guard, guard_cb, 20000, 0);
	for (;;) {
		engine_counters_get(e, &k);
		if (k.idle_wakes > 0 || guard_fired)
			break;
		uv_run(&loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&guard);
	assert_int_equal(k.idle_wakes, 1);
	for (i = 0; i < 100; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	engine_counters_get(e, &k);
	assert_int_equal(k.idle_wakes, 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", r.port);
	{
		struct engine_req q = { .url = url, .body = "{}", .body_len = 2 };
		assert_int_equal(engine_send(e, &q, got, &res), 0);
		run_until(&loop, &res.done, 2);
	}
	assert_int_equal(res.err, 0);
	assert_int_equal(res.status, 200);
	assert_int_equal(r.accepted, 2);
	assert_true(engine_connects(e) == 2);
	finish(&loop, e);
}

/* A host name goes through curl's resolver, whose socket curl did not open
 * through the engine: it is watched only while curl asks, and the engine
 * still closes every handle. Skipped where this machine's name does not
 * resolve to 127.0.0.1. */
static void test_engine_resolver_socket(void **state)
{
	uv_loop_t loop;
	struct responder r;
	struct engine *e;
	struct result res = { 0 };
	struct addrinfo hints, *ai = NULL;
	char host[256], url[400];
	bool loopback;
	int i;

	(void)state;
	if (gethostname(host, sizeof(host)) != 0 || strchr(host, '.'))
		skip();
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		skip();
	loopback = ai && ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	freeaddrinfo(ai);
	if (!loopback)
		skip();
	uv_loop_init(&loop);
	responder_start(&loop, &r);
	assert_int_equal(engine_new(&loop, NULL, &e), 0);
	snprintf(url, sizeof(url), "http://%s:%d/ok", host, r.port);
	for (i = 0; i < 3; i++) {
		struct engine_req q = { .url = url, .body = "{}", .body_len = 2 };
		assert_int_equal(engine_send(e, &q, got, &res), 0);
		run_until(&loop, &res.done, i + 1);
		assert_int_equal(res.err, 0);
		assert_int_equal(res.status, 200);
	}
	assert_int_equal(r.accepted, 1);
	finish(&loop, e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_engine_basic),
		cmocka_unit_test(test_engine_errors),
		cmocka_unit_test(test_engine_reuse),
		cmocka_unit_test(test_engine_close_inflight),
		cmocka_unit_test(test_engine_keepalive_costs),
		cmocka_unit_test(test_engine_idle_close),
		cmocka_unit_test(test_engine_resolver_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
