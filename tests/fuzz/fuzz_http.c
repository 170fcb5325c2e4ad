/* layers: daemon common */
/* Fuzz target: the HTTP request path (daemon/http.c). The input is what a
 * client sends on one connection, handed to the server in pieces split by
 * the input's hash (http_server_feed: exactly what a read from the socket
 * would do), with the server's responses written to a pipe and drained.
 * The handler answers by the request path, so the fuzzer reaches every way
 * a handler uses a request:
 *   /early  responds in on_request (the body, if any, is dropped)
 *   /sink   streams the body, pausing and resuming it (resume from the loop)
 *   /cap    lowers the body cap to 16 bytes
 *   /hold   answers on_body later, from the loop
 *   /sse    a streamed response with a drain callback, ended from the loop
 *   /raw    http_respond_raw
 *   /hdr    response headers taken from the query (CR/LF must be refused)
 *   other   a JSON echo of method, path, query, headers and body size
 * Checks: the output starts as an HTTP/1.1 response; nothing is touched after
 * a final call or an abort (ASan); every handle closes; the connection never
 * stalls with input left and nothing to wait for. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "common/log.h"
#include "daemon/http.h"
#include "tests/fuzz/fuzz.h"

/* Work the handler finishes later, from the loop. */
struct later {
	uv_timer_t timer;
	struct http_req *req;
	int kind; /* LATER_* */
	int steps;
	size_t bytes;
};

enum { LATER_HOLD, LATER_SSE, LATER_RESUME };

static uv_loop_t loop;
static int open_laters;

static void later_closed(uv_handle_t *h)
{
	free(h->data);
	open_laters--;
}

static void later_release(struct later *l)
{
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, later_closed);
}

static void later_abort(void *ctx, struct http_req *req)
{
	struct later *l = ctx;
	(void)req;
	l->req = NULL;
	later_release(l);
}

static void later_fire(uv_timer_t *t)
{
	struct later *l = t->data;
	struct http_req *req = l->req;
	char chunk[300];

	switch (l->kind) {
	case LATER_HOLD:
		http_req_on_abort(req, NULL, NULL);
		http_respond(req, 200, "text/plain", "held\n", 5);
		later_release(l);
		return;
	case LATER_SSE:
		if (l->steps++ < 3) {
			memset(chunk, 'e', sizeof(chunk));
			ssize_t q = http_stream_write(req, chunk, sizeof(chunk));
			fuzz_assert(q >= 0 || q == -EPIPE);
			uv_timer_start(&l->timer, later_fire, 0, 0);
			return;
		}
		http_req_on_abort(req, NULL, NULL);
		http_stream_end(req);
		later_release(l);
		return;
	case LATER_RESUME:
		/* one resume per pause; the sink owns the struct until its end */
		http_req_resume_body(req);
		return;
	}
}

static struct later *later_new(struct http_req *req, int kind)
{
	struct later *l = calloc(1, sizeof(*l));

	fuzz_assert(l != NULL);
	uv_timer_init(&loop, &l->timer);
	l->timer.data = l;
	l->req = req;
	l->kind = kind;
	open_laters++;
	http_req_on_abort(req, later_abort, l);
	return l;
}

static void sink_data(void *ctx, struct http_req *req, const char *data, size_t len)
{
	struct later *l = ctx;
	(void)data;
	l->bytes += len;
	if (l->steps++ % 2 == 0) {
		http_req_pause_body(req);
		uv_timer_start(&l->timer, later_fire, 0, 0);
	}
}

static void sink_end(void *ctx, struct http_req *req)
{
	struct later *l = ctx;
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%zu bytes\n", l->bytes);

	http_req_on_abort(req, NULL, NULL);
	http_respond(req, 200, "text/plain", msg, (size_t)n);
	later_release(l);
}

static void sse_drain(void *ctx, struct http_req *req)
{
	(void)ctx;
	(void)req;
}

static bool path_is(struct http_req *req, const char *p)
{
	return strcmp(http_req_path(req), p) == 0;
}

static void on_request(void *ud, struct http_req *req)
{
	unsigned i, n = http_req_header_count(req);
	const char *name, *value;
	(void)ud;

	fuzz_assert(http_req_method(req) && http_req_path(req) && http_req_query_string(req));
	for (i = 0; i < n; i++) {
		http_req_header_at(req, i, &name, &value);
		fuzz_assert(name && value);
		fuzz_assert(http_req_header(req, name) != NULL);
	}
	(void)http_req_query(req, "a");
	(void)http_req_query(req, "");
	(void)http_req_content_length(req);

	if (path_is(req, "/early")) {
		http_respond_error(req, 404, "not_found", "early", "path");
	} else if (path_is(req, "/sink")) {
		struct later *l = later_new(req, LATER_RESUME);
		fuzz_assert(http_req_stream_body(req, sink_data, sink_end, l) == 0);
		fuzz_assert(http_req_stream_body(req, sink_data, sink_end, l) == -EINVAL);
	} else if (path_is(req, "/cap")) {
		http_req_set_body_cap(req, 16);
	} else if (path_is(req, "/sse")) {
		struct later *l = later_new(req, LATER_SSE);
		http_stream_on_drain(req, sse_drain, l);
		if (http_stream_start(req, 200, "text/event-stream") == 0)
			uv_timer_start(&l->timer, later_fire, 0, 0);
		else
			fuzz_fail("stream start refused");
	} else if (path_is(req, "/raw")) {
		static const char raw[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nraw";
		http_respond_raw(req, raw, sizeof(raw) - 1);
	} else if (path_is(req, "/hdr")) {
		const char *v = http_req_query(req, "v");
		int rc = http_req_add_header(req, "X-Fuzz", v ? v : "");
		if (v && (strchr(v, '\r') || strchr(v, '\n')))
			fuzz_assert(rc == -EINVAL);
		http_respond(req, 204, NULL, NULL, 0);
	}
}

static void on_body(void *ud, struct http_req *req, const char *body, size_t len)
{
	json_t *echo, *hdrs;
	unsigned i, n = http_req_header_count(req);
	const char *name, *value;
	(void)ud;

	fuzz_assert(body != NULL && body[len] == '\0');
	if (path_is(req, "/sse"))
		return; /* streaming already; ended from the loop */
	if (path_is(req, "/hold")) {
		struct later *l = later_new(req, LATER_HOLD);
		uv_timer_start(&l->timer, later_fire, 0, 0);
		return;
	}
	hdrs = json_array();
	for (i = 0; i < n; i++) {
		http_req_header_at(req, i, &name, &value);
		json_array_append_new(hdrs, json_pack("[s?s?]", name, value));
	}
	echo = json_pack("{s:s?,s:s?,s:s?,s:s?,s:o,s:I}", "method", http_req_method(req), "path",
			 http_req_path(req), "query", http_req_query_string(req), "a",
			 http_req_query(req, "a"), "headers", hdrs, "body", (json_int_t)len);
	/* NULL (bytes that are not UTF-8) becomes the 500 error object */
	http_respond_json(req, 200, echo);
	json_decref(echo);
}

struct out {
	char head[9];
	size_t len;
};

static void drain(int fd, struct out *o)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (o->len < sizeof(o->head)) {
			size_t take = sizeof(o->head) - o->len;
			memcpy(o->head + o->len, buf, take < (size_t)n ? take : (size_t)n);
		}
		o->len += (size_t)n;
	}
	if (o->len >= sizeof(o->head) && memcmp(o->head, "HTTP/1.1 ", 9) != 0)
		fuzz_fail("the output does not start with a status line");
}

static void on_closed(void *ud) { *(bool *)ud = true; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct http_handler h = {.on_request = on_request, .on_body = on_body};
	struct http_server_config cfg = {
		.max_body = 64 * 1024,
		.max_content_length = 1024 * 1024,
		.max_header_bytes = 2048,
		.max_headers = 16,
		.stream_low_water = 256,
	};
	struct http_server *s;
	struct fuzz_split split;
	struct out out = {{0}, 0};
	size_t off = 0;
	int fds[2], spins = 0, rounds;
	bool closed = false;

	if (!init) {
		signal(SIGPIPE, SIG_IGN);
		log_set_level(LOG_LVL_ERROR);
		fuzz_assert(uv_loop_init(&loop) == 0);
		init = true;
	}
	s = http_server_new(&h, &cfg);
	fuzz_assert(s != NULL);
	fuzz_assert(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
	fuzz_assert(http_server_adopt_fd(s, &loop, fds[1]) == 0);
	fuzz_split_init(&split, data, size);
	while (off < size) {
		size_t n = fuzz_split_next(&split, size - off, 64 * 1024);
		int rc = http_server_feed(s, (const char *)data + off, n);

		if (rc == 0) {
			off += n;
			spins = 0;
		} else if (rc == -ENOTCONN) {
			break;
		} else {
			fuzz_assert(rc == -EAGAIN);
			/* The handler always finishes from a 0 ms timer and the
			 * output is drained: waiting longer means a stall. */
			if (++spins > 100)
				fuzz_fail("connection stalled with %zu bytes of input left", size - off);
		}
		uv_run(&loop, UV_RUN_NOWAIT);
		drain(fds[0], &out);
	}
	/* Let what was sent complete, then close as a daemon shutting down. */
	for (rounds = 0; rounds < 20; rounds++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		drain(fds[0], &out);
	}
	http_server_close(s, on_closed, &closed);
	for (rounds = 0; (!closed || open_laters) && rounds < 1000; rounds++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		drain(fds[0], &out);
	}
	fuzz_assert(closed && open_laters == 0);
	http_server_free(s);
	close(fds[0]);
	return 0;
}
