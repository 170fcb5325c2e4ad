/* layers: teacher_clients store common */
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
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "store/store.h"
#include "teacher_clients/client.h"
#include "teacher_clients/provider.h"

/* The provider table and its openai row, then client.c driven through a
 * test row that speaks a made-up wire format to an in-test responder. */

static char *dump(json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

static void test_provider_find(void **state)
{
	const struct provider *p = provider_find("openai");

	(void)state;
	assert_ptr_equal(p, &provider_openai);
	assert_ptr_equal(provider_default(), &provider_openai);
	assert_null(provider_find("OpenAI"));
	assert_ptr_equal(provider_find("anthropic"), &provider_anthropic);
	assert_null(provider_find(NULL));
	assert_string_equal(p->name, "openai");
	assert_string_equal(p->path[PROVIDER_CHAT], "/chat/completions");
	assert_string_equal(p->path[PROVIDER_COMPLETION], "/completions");
	assert_string_equal(p->path[PROVIDER_EMBEDDING], "/embeddings");
	provider_reply_clear(NULL);
}

static void test_openai_request_build(void **state)
{
	const struct provider *p = &provider_openai;
	json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "which drug?");
	json_t *schema = json_pack("{s:s}", "type", "object");
	struct provider_req q = { .op = PROVIDER_CHAT, .model = "m", .messages = msgs, .temperature = 0.5,
				  .max_tokens = 16, .schema = schema, .use_schema = true };
	json_t *body;
	char *s;

	(void)state;
	body = p->request_build(&q);
	s = dump(body);
	assert_string_equal(s, "{\"max_tokens\":16,\"messages\":[{\"content\":\"which drug?\",\"role\":\"user\"}],"
			       "\"model\":\"m\",\"response_format\":{\"json_schema\":{\"name\":\"reply\",\"schema\":"
			       "{\"type\":\"object\"},\"strict\":true},\"type\":\"json_schema\"},\"temperature\":0.5}");

	/* the repair turns go after the messages, in the request as stored */
	json_decref(body);
	body = json_loads(s, 0, NULL);
	free(s);
	assert_int_equal(p->turns_append(body, "not json", "only the JSON, please"), 0);
	s = dump(json_object_get(body, "messages"));
	assert_string_equal(s, "[{\"content\":\"which drug?\",\"role\":\"user\"},{\"content\":\"not json\",\"role\":"
			       "\"assistant\"},{\"content\":\"only the JSON, please\",\"role\":\"user\"}]");
	free(s);
	json_decref(body);

	/* no schema sent where the endpoint does not take schemas; no options */
	q.use_schema = false;
	q.temperature = -1;
	q.max_tokens = 0;
	body = p->request_build(&q);
	s = dump(body);
	assert_string_equal(s, "{\"messages\":[{\"content\":\"which drug?\",\"role\":\"user\"}],\"model\":\"m\"}");
	free(s);
	json_decref(body);

	q = (struct provider_req){ .op = PROVIDER_COMPLETION, .model = "s", .prompt = "The answer is C",
				   .temperature = -1, .logprobs = 1, .echo = true };
	body = p->request_build(&q);
	s = dump(body);
	assert_string_equal(s, "{\"echo\":true,\"logprobs\":1,\"model\":\"s\",\"prompt\":\"The answer is C\"}");
	free(s);
	assert_int_equal(p->turns_append(body, "x", "y"), -EINVAL); /* no messages */
	json_decref(body);

	/* not valid: no messages, no prompt, an op it builds no body for */
	assert_null(p->request_build(&(struct provider_req){ .op = PROVIDER_CHAT, .model = "m" }));
	assert_null(p->request_build(&(struct provider_req){ .op = PROVIDER_COMPLETION, .model = "m" }));
	assert_null(p->request_build(&(struct provider_req){ .op = PROVIDER_EMBEDDING, .model = "m" }));
	body = p->request_build(&(struct provider_req){ .op = PROVIDER_EMBEDDING, .model = "m", .prompt = "x" });
	assert_non_null(body);
	assert_string_equal(json_string_value(json_object_get(body, "input")), "x");
	assert_string_equal(json_string_value(json_object_get(body, "model")), "m");
	json_decref(body);
	json_decref(msgs);
	json_decref(schema);
}

static void test_openai_auth_headers(void **state)
{
	struct buf b;
	char *key;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(provider_openai.auth_headers("sk-1", &b), 0);
	assert_string_equal(b.base, "Authorization: Bearer sk-1\n");
	buf_reset(&b);
	assert_int_equal(provider_openai.auth_headers("", &b), 0);
	assert_int_equal(b.len, 0);
	/* a key that does not fit the buffer's cap is refused, not cut */
	key = malloc(2000);
	memset(key, 'k', 1999);
	key[1999] = '\0';
	assert_int_equal(provider_openai.auth_headers(key, &b), -ENOBUFS);
	assert_int_equal(b.len, 0);
	free(key);
	buf_free(&b);
}

static void test_openai_reply_parse(void **state)
{
	const struct provider *p = &provider_openai;
	struct provider_reply r;
	const char *ok = "{\"choices\":[{\"message\":{\"content\":\"B\"},\"finish_reason\":\"length\"}],"
			 "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}";
	const char *comp = "{\"choices\":[{\"text\":\"C\",\"logprobs\":{\"tokens\":[\"C\"]}}]}";
	const char *quota = "{\"error\":{\"message\":\"pay up\",\"code\":\"insufficient_quota\"}}";
	const char *other = "{\"error\":{\"message\":\"busy\",\"code\":\"overloaded\"}}";

	(void)state;
	assert_int_equal(p->reply_parse(ok, strlen(ok), PROVIDER_CHAT, &r), 0);
	assert_null(r.err);
	assert_string_equal(r.content, "B");
	assert_string_equal(r.finish_reason, "length");
	assert_true(r.length_cut);
	assert_int_equal(r.tokens_in, 7);
	assert_int_equal(r.tokens_out, 2);
	/* a chat reply is read without a tree: its text is the reply's own */
	assert_null(r.root);
	assert_non_null(r.own);
	assert_ptr_equal(r.content, r.own);
	assert_null(r.logprobs);
	provider_reply_clear(&r);
	assert_null(r.root);
	assert_null(r.own);

	assert_int_equal(p->reply_parse(comp, strlen(comp), PROVIDER_COMPLETION, &r), 0);
	assert_string_equal(r.content, "C");
	assert_non_null(r.logprobs);
	assert_false(r.length_cut);
	provider_reply_clear(&r);

	/* a chat reply is not a completion reply */
	assert_int_equal(p->reply_parse(ok, strlen(ok), PROVIDER_COMPLETION, &r), -EBADMSG);
	assert_string_equal(r.err, "reply_empty_content");
	assert_null(r.content);
	provider_reply_clear(&r);

	assert_int_equal(p->reply_parse(quota, strlen(quota), PROVIDER_CHAT, &r), -EBADMSG);
	assert_string_equal(r.err, "reply_error");
	assert_string_equal(r.error_code, "insufficient_quota");
	assert_true(r.quota);
	assert_non_null(strstr(r.msg, "pay up"));
	provider_reply_clear(&r);

	assert_int_equal(p->reply_parse(other, strlen(other), PROVIDER_CHAT, &r), -EBADMSG);
	assert_string_equal(r.err, "reply_error");
	assert_false(r.quota);
	provider_reply_clear(&r);

	assert_int_equal(p->reply_parse("{\"choices\":[", 12, PROVIDER_CHAT, &r), -EBADMSG);
	assert_string_equal(r.err, "reply_truncated");
	provider_reply_clear(&r);
	assert_int_equal(p->reply_parse("<html>", 6, PROVIDER_CHAT, &r), -EBADMSG);
	assert_string_equal(r.err, "reply_not_json");
	provider_reply_clear(&r);
	assert_int_equal(p->reply_parse(NULL, 0, PROVIDER_CHAT, &r), -EBADMSG);
	provider_reply_clear(&r);
	/* a chat reply is not an embedding reply */
	assert_int_equal(p->reply_parse(ok, strlen(ok), PROVIDER_EMBEDDING, &r), -EBADMSG);
	assert_string_equal(r.err, "reply_no_choices");
	provider_reply_clear(&r);
	{
		const char *emb = "{\"data\":[{\"embedding\":[0.5,-1,2]}]}";
		const char *bad = "{\"data\":[{\"embedding\":[0.5,\"x\"]}]}";

		assert_int_equal(p->reply_parse(emb, strlen(emb), PROVIDER_EMBEDDING, &r), 0);
		assert_string_equal(r.content, "");
		assert_int_equal(json_array_size(json_object_get(
					 json_array_get(json_object_get(r.root, "data"), 0), "embedding")),
				 3);
		provider_reply_clear(&r);
		assert_int_equal(p->reply_parse(bad, strlen(bad), PROVIDER_EMBEDDING, &r), -EBADMSG);
		assert_string_equal(r.err, "reply_bad_type");
		provider_reply_clear(&r);
	}
}

static void test_openai_error_parse(void **state)
{
	const struct provider *p = &provider_openai;
	struct provider_error e;
	const char *quota = "{\"error\":{\"message\":\"You exceeded your quota\",\"type\":\"insufficient_quota\"}}";
	const char *rate = "{\"error\":{\"message\":\"slow down\",\"code\":\"rate_limit_exceeded\"}}";
	const char *bad = "{\"error\":{\"message\":\"bad \\u0001 model\",\"code\":\"model_not_found\"}}";

	(void)state;
	p->error_parse(429, quota, strlen(quota), &e);
	assert_string_equal(e.code, "insufficient_quota");
	assert_string_equal(e.msg, "You exceeded your quota");
	assert_true(e.quota);
	assert_false(e.retryable);

	p->error_parse(429, rate, strlen(rate), &e);
	assert_string_equal(e.code, "rate_limit_exceeded");
	assert_false(e.quota);
	assert_true(e.retryable);

	/* insufficient_quota on another status is not the billing case */
	p->error_parse(400, quota, strlen(quota), &e);
	assert_false(e.quota);
	assert_false(e.retryable);

	p->error_parse(404, bad, strlen(bad), &e);
	assert_string_equal(e.code, "model_not_found");
	assert_string_equal(e.msg, "bad   model"); /* control characters blanked */
	assert_false(e.retryable);

	p->error_parse(503, "<html>Service Unavailable</html>", 32, &e);
	assert_string_equal(e.code, "");
	assert_string_equal(e.msg, "<html>Service Unavailable</html>");
	assert_true(e.retryable);
	p->error_parse(500, NULL, 0, &e);
	assert_string_equal(e.msg, "");
	assert_true(e.retryable);
	p->error_parse(408, "", 0, &e);
	assert_true(e.retryable);
	p->error_parse(409, "", 0, &e);
	assert_true(e.retryable);
	p->error_parse(401, "", 0, &e);
	assert_false(e.retryable);
}

static void test_openai_rate_read(void **state)
{
	const struct provider *p = &provider_openai;
	struct engine_resp r;
	struct provider_rate rate;
	size_t n;

	(void)state;
	for (n = 0; p->rate_headers[n]; n++)
		;
	assert_int_equal(n, 5);
	assert_true(n <= ENGINE_CAPTURE_MAX);
	memset(&r, 0, sizeof(r));
	r.hdr_names = p->rate_headers;
	r.hdr_values[0] = "7";
	r.hdr_values[1] = "0";
	r.hdr_values[2] = "1200";
	r.hdr_values[3] = "250ms";
	r.hdr_values[4] = "6m0s";
	p->rate_read(&r, &rate);
	assert_string_equal(rate.retry_after, "7");
	assert_string_equal(rate.remaining_requests, "0");
	assert_string_equal(rate.remaining_tokens, "1200");
	assert_string_equal(rate.reset_requests, "250ms");
	assert_string_equal(rate.reset_tokens, "6m0s");

	/* nothing captured (a transport error): nothing known */
	memset(&r, 0, sizeof(r));
	p->rate_read(&r, &rate);
	assert_null(rate.retry_after);
	assert_null(rate.remaining_requests);
	assert_null(rate.reset_tokens);
}

/* ---- a test row and a responder that speaks its format ------------------
 *
 * POST /v9/generate with "X-Test-Key: KEY" and {"m":MODEL,"in":TEXT,
 * "turns":[...]?} answers {"out":TEXT,"n":[IN,OUT]}; "in" == "teapot" is
 * answered 418 with {"why":"teapot"}; a body without turns whose "in"
 * starts with "json" is answered with prose (the repair follows). */

static int rate_reads;

static const char *const test_rate_headers[] = { "x-test-wait", NULL };

static json_t *test_request_build(const struct provider_req *q)
{
	json_t *last = json_array_get(q->messages, json_array_size(q->messages) - 1);

	if (q->op != PROVIDER_CHAT || !json_is_string(json_object_get(last, "content")))
		return NULL;
	return json_pack("{s:s, s:O}", "m", q->model, "in", json_object_get(last, "content"));
}

static int test_turns_append(json_t *body, const char *reply_text, const char *ask)
{
	return json_object_set_new(body, "turns", json_pack("[s, s]", reply_text, ask)) ? -ENOMEM : 0;
}

static int test_auth_headers(const char *api_key, struct buf *out)
{
	return *api_key ? buf_printf(out, "X-Test-Key: %s\n", api_key) : 0;
}

static int test_reply_parse(const char *body, size_t len, enum provider_op op, struct provider_reply *r)
{
	json_t *out, *n;

	(void)op;
	memset(r, 0, sizeof(*r));
	r->root = json_loadb(body, len, 0, NULL);
	out = json_object_get(r->root, "out");
	n = json_object_get(r->root, "n");
	if (!json_is_string(out) || json_array_size(n) != 2) {
		r->err = "reply_test_shape";
		snprintf(r->msg, sizeof(r->msg), "no out/n in the reply");
		return -EBADMSG;
	}
	r->content = json_string_value(out);
	r->tokens_in = json_integer_value(json_array_get(n, 0));
	r->tokens_out = json_integer_value(json_array_get(n, 1));
	return 0;
}

static void test_error_parse(long status, const char *body, size_t len, struct provider_error *e)
{
	json_t *j = json_loadb(body, len, 0, NULL);

	(void)status;
	memset(e, 0, sizeof(*e));
	if (json_is_string(json_object_get(j, "why")))
		snprintf(e->code, sizeof(e->code), "%s", json_string_value(json_object_get(j, "why")));
	snprintf(e->msg, sizeof(e->msg), "the test row's error");
	json_decref(j);
}

static void test_rate_read(const struct engine_resp *r, struct provider_rate *out)
{
	memset(out, 0, sizeof(*out));
	if (engine_resp_header(r, "x-test-wait"))
		rate_reads++;
}

static const struct provider provider_test = {
	.name = "test",
	.path = { [PROVIDER_CHAT] = "/generate" },
	.rate_headers = test_rate_headers,
	.request_build = test_request_build,
	.turns_append = test_turns_append,
	.auth_headers = test_auth_headers,
	.reply_parse = test_reply_parse,
	.error_parse = test_error_parse,
	.rate_read = test_rate_read,
};

struct responder {
	int port; /* not first: close_walk tells connections by data == handle */
	uv_tcp_t srv;
	int requests;
	int bad_requests; /* wrong path, key, headers or body */
};

struct rconn {
	uv_tcp_t tcp;
	struct responder *r;
	struct buf in;
};

static void rconn_closed(uv_handle_t *h)
{
	struct rconn *c = h->data;

	buf_free(&c->in);
	free(c);
}

static void wrote(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void respond(struct rconn *c, const char *head, const char *body)
{
	struct buf all;
	uv_write_t *w = malloc(sizeof(*w));
	long status = 200;
	json_t *j = json_loads(body, 0, NULL), *reply;
	const char *in = json_string_value(json_object_get(j, "in"));
	uv_buf_t b;

	c->r->requests++;
	if (strncmp(head, "POST /v9/generate ", 18) != 0 || !strcasestr(head, "\r\nx-test-key: tk-9\r\n") ||
	    strcasestr(head, "\r\nauthorization:") || !in || strcmp(json_string_value(json_object_get(j, "m")), "m9"))
		c->r->bad_requests++;
	if (in && strcmp(in, "teapot") == 0) {
		status = 418;
		reply = json_pack("{s:s}", "why", "teapot");
	} else if (in && strncmp(in, "json", 4) == 0 && !json_object_get(j, "turns")) {
		reply = json_pack("{s:s, s:[i,i]}", "out", "no object here", "n", 5, 1);
	} else if (in && strncmp(in, "json", 4) == 0) {
		reply = json_pack("{s:s, s:[i,i]}", "out", "{\"keep\":true}", "n", 9, 2);
	} else {
		reply = json_pack("{s:s, s:[i,i]}", "out", "hello from v9", "n", 3, 4);
	}
	{
		char *rb = json_dumps(reply, JSON_COMPACT);
		buf_init(&all, 1 << 16);
		buf_printf(&all, "HTTP/1.1 %ld X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
				 "X-Test-Wait: 0\r\n\r\n%s",
			   status, strlen(rb), rb);
		free(rb);
	}
	w->data = buf_take(&all);
	b = uv_buf_init(w->data, (unsigned)strlen(w->data));
	uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, wrote);
	json_decref(reply);
	json_decref(j);
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
		if (!uv_is_closing((uv_handle_t *)&c->tcp))
			uv_close((uv_handle_t *)&c->tcp, rconn_closed);
		free(b->base);
		return;
	}
	buf_append(&c->in, b->base, (size_t)n);
	free(b->base);
	for (;;) {
		char *end = c->in.base ? strstr(c->in.base, "\r\n\r\n") : NULL, *cl, *head, *body;
		size_t hlen, blen = 0;

		if (!end)
			return;
		hlen = (size_t)(end - c->in.base) + 4;
		cl = strcasestr(c->in.base, "content-length:");
		if (cl && cl < end)
			blen = strtoul(cl + 15, NULL, 10);
		if (c->in.len < hlen + blen)
			return;
		head = strndup(c->in.base, hlen);
		body = strndup(c->in.base + hlen, blen);
		buf_consume(&c->in, hlen + blen);
		respond(c, head, body);
		free(head);
		free(body);
	}
}

static void raccept(uv_stream_t *srv, int status)
{
	struct rconn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	c->r = srv->data;
	buf_init(&c->in, 1 << 20);
	uv_tcp_init(srv->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) == 0)
		uv_read_start((uv_stream_t *)&c->tcp, ralloc, rread);
	else
		uv_close((uv_handle_t *)&c->tcp, rconn_closed);
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
	assert_int_equal(uv_listen((uv_stream_t *)&r->srv, 64, raccept), 0);
	uv_tcp_getsockname(&r->srv, (struct sockaddr *)&got, &len);
	r->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (uv_is_closing(h))
		return;
	if (h->type == UV_TCP && h->data && h->data == (void *)h)
		uv_close(h, rconn_closed);
	else
		uv_close(h, NULL);
}

struct res {
	int done, err, attempts;
	char code[64], message[256], content[128];
	json_t *json;
	int64_t tokens_in, tokens_out;
	bool cached;
};

static void got(void *ud, const struct client_result *r)
{
	struct res *x = ud;

	x->done++;
	x->err = r->err;
	x->attempts = r->attempts;
	x->cached = r->cached;
	x->tokens_in = r->tokens_in;
	x->tokens_out = r->tokens_out;
	snprintf(x->code, sizeof(x->code), "%s", r->code);
	snprintf(x->message, sizeof(x->message), "%s", r->message);
	snprintf(x->content, sizeof(x->content), "%s", r->content ? r->content : "");
	x->json = json_incref(r->json);
}

static int closed;
static void on_closed(void *ud)
{
	(void)ud;
	closed = 1;
}

static void flush_cb(uv_timer_t *t)
{
	store_batch_flush(t->data);
}

static void ask(struct client *c, uv_loop_t *loop, const char *text, bool expect_json, struct res *x)
{
	json_t *m = json_pack("[{s:s, s:s}]", "role", "user", "content", text);
	struct client_opts o = { .temperature = -1, .expect_json = expect_json };

	memset(x, 0, sizeof(*x));
	assert_int_equal(client_chat(c, "teacher.v9", &o, m, got, x), 0);
	json_decref(m);
	while (!x->done)
		uv_run(loop, UV_RUN_ONCE);
}

/* client_chat reaches the wire only through the endpoint's row: its path,
 * body, auth header, reply shape, error classification, repair turns and
 * rate headers; the cache answers from the row's parse of the stored reply. */
static void test_client_through_row(void **state)
{
	uv_loop_t loop;
	uv_timer_t flush;
	struct responder r;
	struct client *c;
	struct store *st;
	char base[64], dir[64] = "/tmp/test_provider.XXXXXX", path[128], err[128];
	struct client_endpoint_cfg cfg = { .name = "teacher.v9", .model = "m9", .api_key = "tk-9",
					   .provider = &provider_test, .max_retries = 3,
					   .backoff_base_s = 0.01, .backoff_max_s = 0.02 };
	struct res x;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db.sqlite", dir);
	uv_loop_init(&loop);
	responder_start(&loop, &r);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/v9", r.port);
	cfg.base_url = base;
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	uv_timer_init(&loop, &flush);
	flush.data = st;
	uv_timer_start(&flush, flush_cb, 2, 2);
	assert_int_equal(client_new(&loop, st, NULL, &c), 0);
	assert_int_equal(client_endpoint_add(c, &cfg), 0);
	rate_reads = 0;

	ask(c, &loop, "which drug?", false, &x);
	assert_int_equal(x.err, 0);
	assert_string_equal(x.content, "hello from v9");
	assert_int_equal(x.tokens_in, 3);
	assert_int_equal(x.tokens_out, 4);
	assert_int_equal(x.attempts, 1);
	assert_int_equal(r.requests, 1);
	assert_int_equal(rate_reads, 1);

	/* the same request: the row parses the stored reply, nothing is sent */
	ask(c, &loop, "which drug?", false, &x);
	assert_int_equal(x.err, 0);
	assert_true(x.cached);
	assert_string_equal(x.content, "hello from v9");
	assert_int_equal(r.requests, 1);

	/* the row's error class: 418 is not retryable there */
	ask(c, &loop, "teapot", false, &x);
	assert_int_equal(x.err, -EPROTO);
	assert_string_equal(x.code, "http_error");
	assert_non_null(strstr(x.message, "HTTP 418 teapot: the test row's error"));
	assert_int_equal(x.attempts, 1);

	/* prose, then the repair through the row's turns */
	ask(c, &loop, "json please", true, &x);
	assert_int_equal(x.err, 0);
	assert_int_equal(x.attempts, 2);
	assert_true(json_is_true(json_object_get(x.json, "keep")));
	json_decref(x.json);
	assert_int_equal(r.requests, 4);
	assert_int_equal(r.bad_requests, 0);

	/* an op the row does not offer is refused at submit */
	{
		struct res y = { 0 };
		assert_int_equal(client_complete(c, "teacher.v9", NULL, "p", got, &y), -EINVAL);
	}

	/* a row missing a function is refused */
	{
		struct provider broken = provider_test;
		struct client_endpoint_cfg b = cfg;
		broken.rate_read = NULL;
		b.name = "teacher.broken";
		b.provider = &broken;
		assert_int_equal(client_endpoint_add(c, &b), -EINVAL);
	}

	closed = 0;
	client_close(c, on_closed, NULL);
	while (!closed)
		uv_run(&loop, UV_RUN_ONCE);
	uv_walk(&loop, close_walk, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	store_close(st);
	unlink(path);
	{
		char p2[160];
		snprintf(p2, sizeof(p2), "%s-wal", path);
		unlink(p2);
		snprintf(p2, sizeof(p2), "%s-shm", path);
		unlink(p2);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_provider_find),        cmocka_unit_test(test_openai_request_build),
		cmocka_unit_test(test_openai_auth_headers),  cmocka_unit_test(test_openai_reply_parse),
		cmocka_unit_test(test_openai_error_parse),   cmocka_unit_test(test_openai_rate_read),
		cmocka_unit_test(test_client_through_row),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
