/* layers: teacher_clients store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "store/calls.h"
#include "store/store.h"
#include "store/store_int.h"
#include "teacher_clients/client.h"

/* Client tests against the simulator bin/medthink-sim (a fake
 * OpenAI-compatible server), started once for the whole file; each test
 * resets it and sets the faults it needs through POST /sim/config. */

static pid_t sim_pid = -1;
static int sim_port;
static char sim_base[64];
static char dbdir[64];

/* ---- the simulator ---- */

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
	buf_append(ud, p, s * n);
	return s * n;
}

static json_t *sim_http(const char *path, const char *post)
{
	CURL *h = curl_easy_init();
	struct buf b;
	char url[128];
	json_t *j;

	buf_init(&b, 1 << 20);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sim_port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (post)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_cleanup(h);
	j = b.base ? json_loads(b.base, 0, NULL) : NULL;
	buf_free(&b);
	return j;
}

static void sim_config(const char *json)
{
	json_decref(sim_http("/sim/reset", ""));
	json_decref(sim_http("/sim/config", "{\"rpm\":0,\"tpm\":0,\"fail-500\":0,\"fail-429\":0,\"quota\":0,"
					    "\"malformed\":0,\"truncated\":0,\"timeout\":0,\"error-in-200\":0,"
					    "\"latency-ms\":0,\"require-key\":\"\"}"));
	if (json)
		json_decref(sim_http("/sim/config", json));
}

static long sim_stat(const char *key)
{
	json_t *j = sim_http("/sim/stats", NULL);
	long v;

	assert_non_null(j);
	v = (long)json_integer_value(json_object_get(j, key));
	json_decref(j);
	return v;
}

static int group_setup(void **state)
{
	int fds[2];
	char line[256] = "";
	FILE *f;
	const char *bin = getenv("BIN");
	char path[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/medthink-sim", bin ? bin : "bin");
	if (access(path, X_OK) != 0) {
		fprintf(stderr, "test_client: %s not built\n", path);
		return -1;
	}
	if (pipe(fds) < 0)
		return -1;
	sim_pid = fork();
	if (sim_pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(path, path, "--listen", "127.0.0.1:0", "--seed", "3", "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	while (fgets(line, sizeof(line), f) && strncmp(line, "listening on ", 13) != 0)
		;
	fclose(f);
	if (sscanf(line, "listening on 127.0.0.1:%d", &sim_port) != 1)
		return -1;
	snprintf(sim_base, sizeof(sim_base), "http://127.0.0.1:%d/v1", sim_port);
	snprintf(dbdir, sizeof(dbdir), "/tmp/test_client.XXXXXX");
	if (!mkdtemp(dbdir))
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (sim_pid > 0) {
		kill(sim_pid, SIGTERM);
		waitpid(sim_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dbdir);
	if (dbdir[0] && system(cmd) != 0)
		return -1;
	curl_global_cleanup();
	return 0;
}

/* ---- a loop with a client and a store ---- */

struct env {
	uv_loop_t loop;
	uv_timer_t flush;
	struct store *st;
	struct client *c;
	int closed;
};

static void flush_cb(uv_timer_t *t)
{
	struct env *e = t->data;
	if (e->st)
		store_batch_flush(e->st);
}

static void env_open(struct env *e, bool with_store)
{
	char path[128], err[128];
	static int n;

	memset(e, 0, sizeof(*e));
	uv_loop_init(&e->loop);
	if (with_store) {
		snprintf(path, sizeof(path), "%s/db%d.sqlite", dbdir, n++);
		assert_int_equal(store_open(path, &e->st, err, sizeof(err)), 0);
	}
	assert_int_equal(client_new(&e->loop, e->st, NULL, &e->c), 0);
	uv_timer_init(&e->loop, &e->flush);
	e->flush.data = e;
	uv_timer_start(&e->flush, flush_cb, 2, 2);
}

static void add_ep(struct env *e, const char *name, struct client_endpoint_cfg *cfg)
{
	cfg->name = name;
	cfg->base_url = sim_base;
	if (!cfg->model)
		cfg->model = "sim-teacher";
	if (!cfg->backoff_base_s)
		cfg->backoff_base_s = 0.01;
	if (!cfg->backoff_max_s)
		cfg->backoff_max_s = 0.05;
	assert_int_equal(client_endpoint_add(e->c, cfg), 0);
}

static void on_closed(void *ud)
{
	((struct env *)ud)->closed = 1;
}

static void env_close(struct env *e)
{
	client_close(e->c, on_closed, e);
	while (!e->closed)
		uv_run(&e->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&e->flush, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	store_close(e->st);
}

struct res {
	int done;
	int err;
	char code[64];
	char message[400];
	char content[512];
	json_t *json;
	bool cached;
	int attempts;
	int64_t call_id, tokens_in, tokens_out;
	double cost, latency_ms;
	uint64_t at_ns;
	int *counter;
	bool has_logprobs;
};

static int in_submit; /* set while inside client_chat */

static void got(void *ud, const struct client_result *r)
{
	struct res *x = ud;

	assert_int_equal(in_submit, 0); /* never synchronous */
	x->done++;
	x->err = r->err;
	snprintf(x->code, sizeof(x->code), "%s", r->code);
	snprintf(x->message, sizeof(x->message), "%s", r->message);
	snprintf(x->content, sizeof(x->content), "%s", r->content ? r->content : "");
	json_decref(x->json);
	x->json = json_incref(r->json);
	x->cached = r->cached;
	x->attempts = r->attempts;
	x->call_id = r->call_id;
	x->tokens_in = r->tokens_in;
	x->tokens_out = r->tokens_out;
	x->cost = r->cost_usd;
	x->latency_ms = r->latency_ms;
	x->at_ns = uv_hrtime();
	x->has_logprobs = r->reply && json_object_get(json_array_get(json_object_get(r->reply, "choices"), 0),
						      "logprobs") != NULL;
	if (x->counter)
		(*x->counter)++;
}

static json_t *prompt(const char *task, int i)
{
	char text[256];

	snprintf(text, sizeof(text),
		 "### Task: %s\nQuestion: case %d: which drug?\nOptions:\nA. one\nB. two\nC. three\nGold answer: B", task, i);
	return json_pack("[{s:s, s:s}]", "role", "user", "content", text);
}

static void chat(struct env *e, const char *ep, const char *task, int i, bool expect_json, int64_t job,
		 struct res *x)
{
	json_t *m = prompt(task, i);
	struct client_opts o = { .job_id = job, .temperature = 0, .max_tokens = 256, .expect_json = expect_json };

	in_submit = 1;
	assert_int_equal(client_chat(e->c, ep, &o, m, got, x), 0);
	in_submit = 0;
	json_decref(m);
}

static void wait_for(struct env *e, int *done, int n)
{
	while (*done < n)
		uv_run(&e->loop, UV_RUN_ONCE);
}

/* ---- tests ---- */

static void test_client_ok_and_cache(void **state)
{
	struct env e;
	struct client_endpoint_cfg cfg = { .api_key = "sk-secret-777", .price_in_per_mtok = 2.5,
					   .price_out_per_mtok = 10, .max_concurrency = 4 };
	struct res a = { 0 }, b = { 0 };
	struct store_call row;
	struct client_stats s;

	(void)state;
	sim_config("{\"require-key\":\"sk-secret-777\"}");
	env_open(&e, true);
	add_ep(&e, "teacher.sim", &cfg);
	{
		json_t *m = prompt("x", 0);
		assert_int_equal(client_chat(e.c, "teacher.nope", NULL, m, got, &a), -ENOENT);
		json_decref(m);
	}
	chat(&e, "teacher.sim", "screen", 1, true, 5, &a);
	assert_int_equal(a.done, 0);
	wait_for(&e, &a.done, 1);
	assert_int_equal(a.err, 0);
	assert_string_equal(a.code, "ok");
	assert_non_null(a.json);
	assert_true(json_is_boolean(json_object_get(a.json, "keep")));
	assert_false(a.cached);
	assert_int_equal(a.attempts, 1);
	assert_true(a.call_id > 0);
	assert_true(a.tokens_in > 0 && a.tokens_out > 0);
	assert_true(a.cost > 0);
	assert_true(fabs(a.cost - (a.tokens_in * 2.5 + a.tokens_out * 10.0) / 1e6) < 1e-12);

	/* the same request again: answered from the store, not sent */
	chat(&e, "teacher.sim", "screen", 1, true, 5, &b);
	assert_int_equal(b.done, 0);
	wait_for(&e, &b.done, 1);
	assert_int_equal(b.err, 0);
	assert_true(b.cached);
	assert_int_equal(b.call_id, a.call_id);
	assert_true(b.cost == 0);
	assert_string_equal(b.content, a.content);
	assert_true(json_equal(a.json, b.json));
	assert_int_equal(sim_stat("requests_total"), 1);
	assert_int_equal(sim_stat("max_requests_per_body"), 1);

	/* the stored row carries no key */
	assert_int_equal(store_call_find(e.st, "0000", &row), -ENOENT);
	{
		/* the cache row is found by the hash of the request */
		sqlite3_stmt *q;
		sqlite3_prepare_v2(store_db(e.st), "SELECT hash FROM calls", -1, &q, NULL);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		assert_int_equal(store_call_find(e.st, (const char *)sqlite3_column_text(q, 0), &row), 0);
		sqlite3_finalize(q);
		assert_int_equal(row.id, a.call_id);
		assert_int_equal(row.attempts, 1);
		assert_int_equal(row.tokens_in, a.tokens_in);
		assert_string_equal(row.endpoint, "teacher.sim");
		assert_string_equal(row.model, "sim-teacher");
		assert_int_equal(strlen(row.hash), 64);
		store_call_clear(&row);
	}
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.cached, 1);
	assert_int_equal(s.ok, 1);
	assert_int_equal(s.requests, 1);
	assert_true(s.cost_usd > 0);
	{
		sqlite3 *db = store_db(e.st);
		sqlite3_stmt *q;
		int n = 0;
		sqlite3_prepare_v2(db, "SELECT request, reply, job_id, error FROM calls", -1, &q, NULL);
		while (sqlite3_step(q) == SQLITE_ROW) {
			n++;
			assert_null(strstr((const char *)sqlite3_column_text(q, 0), "sk-secret"));
			assert_null(strstr((const char *)sqlite3_column_text(q, 1), "sk-secret"));
			assert_int_equal(sqlite3_column_int64(q, 2), 5);
			assert_null(sqlite3_column_text(q, 3));
		}
		sqlite3_finalize(q);
		assert_int_equal(n, 1);
	}
	json_decref(a.json);
	json_decref(b.json);
	env_close(&e);
}

static void test_client_http_errors(void **state)
{
	struct env e;
	struct client_endpoint_cfg cfg = { .api_key = "sk-wrong-123", .max_retries = 3 };
	struct res a = { 0 };
	struct client_stats s;

	(void)state;
	/* a 401 fails at once with the provider's message, never the key */
	sim_config("{\"require-key\":\"sk-right\"}");
	env_open(&e, true);
	add_ep(&e, "teacher.sim", &cfg);
	chat(&e, "teacher.sim", "explain", 1, false, 0, &a);
	wait_for(&e, &a.done, 1);
	assert_int_equal(a.err, -EPROTO);
	assert_string_equal(a.code, "http_error");
	assert_int_equal(a.attempts, 1);
	assert_non_null(strstr(a.message, "401"));
	assert_null(strstr(a.message, "sk-wrong-123"));
	assert_int_equal(sim_stat("requests_total"), 1);

	/* insufficient_quota: billing, not load: no retry */
	sim_config("{\"quota\":1}");
	a.done = 0;
	chat(&e, "teacher.sim", "explain", 2, false, 0, &a);
	wait_for(&e, &a.done, 1);
	assert_int_equal(a.err, -EDQUOT);
	assert_string_equal(a.code, "insufficient_quota");
	assert_int_equal(a.attempts, 1);
	assert_int_equal(sim_stat("requests_total"), 1);

	/* 500s are retried up to max_retries, then fail; the failure is stored
	 * but is no cache entry */
	sim_config("{\"fail-500\":1}");
	a.done = 0;
	chat(&e, "teacher.sim", "explain", 3, false, 0, &a);
	wait_for(&e, &a.done, 1);
	assert_int_equal(a.err, -EREMOTEIO);
	assert_string_equal(a.code, "server_error");
	assert_int_equal(a.attempts, 4);
	assert_true(a.call_id > 0);
	assert_int_equal(sim_stat("requests_total"), 4);
	a.done = 0;
	sim_config(NULL);
	chat(&e, "teacher.sim", "explain", 3, false, 0, &a);
	wait_for(&e, &a.done, 1);
	assert_int_equal(a.err, 0);
	assert_false(a.cached);
	assert_int_equal(sim_stat("requests_total"), 1);

	/* some 500s: everything gets through on retries */
	sim_config("{\"fail-500\":0.3}");
	{
		struct res many[30];
		int done = 0, i;
		memset(many, 0, sizeof(many));
		for (i = 0; i < 30; i++) {
			many[i].counter = &done;
			chat(&e, "teacher.sim", "explain", 100 + i, false, 0, &many[i]);
		}
		wait_for(&e, &done, 30);
		for (i = 0; i < 30; i++)
			assert_int_equal(many[i].err, 0);
	}
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_true(s.retries >= 3 + 1);
	assert_int_equal(s.errors[CLIENT_ERRC_HTTP_4XX], 1);
	assert_int_equal(s.errors[CLIENT_ERRC_QUOTA], 1);
	assert_int_equal(s.errors[CLIENT_ERRC_HTTP_5XX], 1);
	env_close(&e);
}

/* A 429 with Retry-After: 1 is retried after at least a second. */
static void test_client_retry_after(void **state)
{
	struct env e;
	struct client_endpoint_cfg cfg = { .max_retries = 1 };
	struct res a = { 0 };
	struct client_stats s;

	(void)state;
	sim_config("{\"fail-429\":1}");
	env_open(&e, false);
	add_ep(&e, "teacher.sim", &cfg);
	chat(&e, "teacher.sim", "explain", 1, false, 0, &a);
	wait_for(&e, &a.done, 1);
	assert_int_equal(a.err, -EAGAIN);
	assert_string_equal(a.code, "rate_limited");
	assert_int_equal(a.attempts, 2);
	print_message("latency with one Retry-After: 1 retry: %.0f ms\n", a.latency_ms);
	assert_true(a.latency_ms >= 990); /* backoff base is 10 ms: the header won */
	assert_true(a.latency_ms < 1500);
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_int_equal(s.http_429, 2);
	env_close(&e);
}

static void test_client_malformed(void **state)
{
	static const struct {
		const char *cfg, *code;
		int err;
	} cases[] = {
		{ "{\"truncated\":1}", "reply_truncated", -EBADMSG },
		{ "{\"error-in-200\":1}", "reply_error", -EBADMSG },
		{ "{\"timeout\":1}", "timeout", -ETIMEDOUT },
	};
	struct env e;
	struct client_endpoint_cfg cfg = { .max_retries = 1, .timeout_s = 0.3, .breaker_failures = 100 };
	struct res a = { 0 };
	size_t i;
	int seen_kinds = 0;

	(void)state;
	env_open(&e, true);
	add_ep(&e, "teacher.sim", &cfg);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sim_config(cases[i].cfg);
		a.done = 0;
		chat(&e, "teacher.sim", "explain", (int)i, false, 0, &a);
		wait_for(&e, &a.done, 1);
		assert_int_equal(a.err, cases[i].err);
		assert_string_equal(a.code, cases[i].code);
		assert_int_equal(a.attempts, 2);
	}
	/* malformed: HTML, cut JSON or JSON without choices, each a typed error */
	sim_config("{\"malformed\":1}");
	for (i = 0; i < 12; i++) {
		a.done = 0;
		chat(&e, "teacher.sim", "explain", 50 + (int)i, false, 0, &a);
		wait_for(&e, &a.done, 1);
		assert_int_equal(a.err, -EBADMSG);
		assert_int_equal(strncmp(a.code, "reply_", 6), 0);
		if (strcmp(a.code, "reply_not_json") == 0)
			seen_kinds |= 1;
		else if (strcmp(a.code, "reply_truncated") == 0)
			seen_kinds |= 2;
		else if (strcmp(a.code, "reply_no_choices") == 0)
			seen_kinds |= 4;
	}
	assert_true(seen_kinds != 0);
	env_close(&e);
}

/* Structured task whose reply has no JSON: one repair request, then a
 * json_extract error. */
static void test_client_repair(void **state)
{
	struct env e;
	struct client_endpoint_cfg cfg = { 0 };
	struct res a = { 0 };
	struct client_stats s;

	(void)state;
	sim_config(NULL);
	env_open(&e, true);
	add_ep(&e, "teacher.sim", &cfg);
	chat(&e, "teacher.sim", "explain", 1, true, 0, &a);
	wait_for(&e, &a.done, 1);
	assert_int_equal(a.err, -EBADMSG);
	assert_string_equal(a.code, "json_extract");
	assert_int_equal(a.attempts, 2);
	assert_int_equal(sim_stat("requests_total"), 2);
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_int_equal(s.repairs, 1);
	assert_int_equal(s.errors[CLIENT_ERRC_JSON], 1);
	env_close(&e);
}

static void test_client_breaker(void **state)
{
	struct env e;
	struct client_endpoint_cfg cfg = { .max_retries = -1, .breaker_failures = 3, .breaker_cooldown_s = 0.5 };
	struct res a = { 0 };
	struct client_stats s;
	uint64_t t0;
	int i;

	(void)state;
	sim_config("{\"fail-500\":1}");
	env_open(&e, false);
	add_ep(&e, "teacher.sim", &cfg);
	for (i = 0; i < 3; i++) {
		a.done = 0;
		chat(&e, "teacher.sim", "explain", i, false, 0, &a);
		wait_for(&e, &a.done, 1);
		assert_int_equal(a.err, -EREMOTEIO);
	}
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_int_equal(s.breaker, 1);
	sim_config(NULL);
	t0 = uv_hrtime();
	a.done = 0;
	chat(&e, "teacher.sim", "explain", 10, false, 0, &a);
	{
		struct res b = { 0 };
		int done = 0;
		b.counter = &done;
		a.counter = &done;
		chat(&e, "teacher.sim", "explain", 11, false, 0, &b);
		wait_for(&e, &done, 2);
		assert_int_equal(b.err, 0);
	}
	assert_int_equal(a.err, 0);
	/* nothing was sent during the cool-down */
	assert_true((double)(a.at_ns - t0) / 1e6 >= 400);
	assert_int_equal(sim_stat("requests_total"), 2);
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_int_equal(s.breaker, 0);
	env_close(&e);
}

/* rpm pacing: measured rate within 5% of the configured one, and a server
 * enforcing the same limit answers no 429. */
static void test_client_rpm(void **state)
{
	enum { N = 100 };
	struct env e;
	struct client_endpoint_cfg cfg = { .rpm = 1200, .max_concurrency = 64 };
	struct res *x = calloc(N, sizeof(*x));
	uint64_t first = UINT64_MAX, last = 0;
	int done = 0, i;
	double rate;

	(void)state;
	sim_config("{\"rpm\":1200}");
	env_open(&e, false);
	add_ep(&e, "teacher.sim", &cfg);
	for (i = 0; i < N; i++) {
		x[i].counter = &done;
		chat(&e, "teacher.sim", "explain", 1000 + i, false, 0, &x[i]);
	}
	wait_for(&e, &done, N);
	for (i = 0; i < N; i++) {
		assert_int_equal(x[i].err, 0);
		assert_int_equal(x[i].attempts, 1);
		first = x[i].at_ns < first ? x[i].at_ns : first;
		last = x[i].at_ns > last ? x[i].at_ns : last;
	}
	rate = (N - 1) / ((double)(last - first) / 1e9) * 60.0;
	print_message("measured %.1f requests per minute (rpm 1200)\n", rate);
	assert_true(rate > 1200 * 0.95 && rate < 1200 * 1.05);
	assert_int_equal(sim_stat("sent_429"), 0);
	free(x);
	env_close(&e);
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* 2,000 at once, twice: all complete, memory stays flat. */
static void test_client_many(void **state)
{
	enum { N = 2000 };
	struct env e;
	struct client_endpoint_cfg cfg = { .max_concurrency = N };
	struct res *x = calloc(N, sizeof(*x));
	long rss1 = 0, rss2;
	int done, i, round;

	(void)state;
	sim_config("{\"latency-ms\":100}");
	env_open(&e, true);
	add_ep(&e, "teacher.sim", &cfg);
	for (round = 0; round < 2; round++) {
		done = 0;
		memset(x, 0, N * sizeof(*x));
		for (i = 0; i < N; i++) {
			x[i].counter = &done;
			chat(&e, "teacher.sim", "explain", 10000 * (round + 1) + i, false, 1, &x[i]);
		}
		wait_for(&e, &done, N);
		for (i = 0; i < N; i++)
			assert_int_equal(x[i].err, 0);
		if (round == 0)
			rss1 = rss_kb();
	}
	rss2 = rss_kb();
	print_message("rss after round 1: %ld KiB, after round 2: %ld KiB\n", rss1, rss2);
#if defined(__SANITIZE_ADDRESS__)
	/* ASan's quarantine keeps freed memory resident: no RSS bound there. */
	(void)rss2;
#else
	assert_true(rss2 - rss1 < 16 * 1024);
#endif
	assert_int_equal(sim_stat("requests_total"), 2 * N);
	free(x);
	env_close(&e);
}

static void test_client_cancel_and_close(void **state)
{
	struct env e;
	struct client_endpoint_cfg cfg = { .rpm = 60, .timeout_s = 5 };
	struct res x[5], held = { 0 };
	int done = 0, i;

	(void)state;
	memset(x, 0, sizeof(x));
	sim_config(NULL);
	env_open(&e, true);
	add_ep(&e, "teacher.sim", &cfg);
	for (i = 0; i < 5; i++) {
		x[i].counter = &done;
		chat(&e, "teacher.sim", "explain", 300 + i, false, 7, &x[i]);
	}
	assert_int_equal(client_cancel_job(e.c, 8), 0);
	assert_int_equal(client_cancel_job(e.c, 7), 4); /* the first is on the wire */
	assert_int_equal(done, 0);                     /* callbacks on the next turn */
	wait_for(&e, &done, 5);
	assert_int_equal(x[0].err, 0);
	for (i = 1; i < 5; i++) {
		assert_int_equal(x[i].err, -ECANCELED);
		assert_string_equal(x[i].code, "cancelled");
	}
	/* closing with a call on the wire aborts it */
	sim_config("{\"timeout\":1}");
	{
		struct client_endpoint_cfg c2 = { 0 };
		add_ep(&e, "student.sim", &c2);
	}
	chat(&e, "student.sim", "answer", 1, false, 0, &held);
	while (sim_stat("held_now") < 1)
		uv_run(&e.loop, UV_RUN_NOWAIT);
	client_close(e.c, on_closed, &e);
	while (!e.closed)
		uv_run(&e.loop, UV_RUN_ONCE);
	assert_int_equal(held.done, 1);
	assert_int_equal(held.err, -ECANCELED);
	uv_close((uv_handle_t *)&e.flush, NULL);
	uv_run(&e.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e.loop), 0);
	store_close(e.st);
}

static void test_client_complete(void **state)
{
	struct env e;
	struct client_endpoint_cfg cfg = { .kind = CLIENT_STUDENT, .model = "sim-student" };
	struct client_opts o = { .temperature = -1, .max_tokens = 0, .logprobs = 1, .echo = true };
	struct res a = { 0 };

	(void)state;
	sim_config(NULL);
	env_open(&e, false);
	add_ep(&e, "student.sim", &cfg);
	assert_int_equal(client_complete(e.c, "student.sim", &o, "The answer is C", got, &a), 0);
	wait_for(&e, &a.done, 1);
	assert_int_equal(a.err, 0);
	assert_true(a.has_logprobs);
	assert_non_null(strstr(a.content, "The answer is C"));
	env_close(&e);
}

/* The cache key of a fixed request is pinned to the value today's code
 * computed before the provider table existed (SHA-256 of
 * "base_url\npath\nbody"), so stores written before keep answering. The
 * endpoint refuses connections: the failed call is stored with its hash. */
static void test_client_hash_stable(void **state)
{
	struct env e;
	struct client_endpoint_cfg chat_cfg = { .name = "teacher.pin", .base_url = "http://127.0.0.1:1/v1",
						.model = "pin-model", .max_retries = -1, .json_schema = true,
						.api_key = "sk-pin" };
	struct client_endpoint_cfg comp_cfg = { .name = "student.pin", .kind = CLIENT_STUDENT,
						.base_url = "http://127.0.0.1:1/v1/", .model = "pin-student",
						.max_retries = -1 };
	json_t *schema = json_pack("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "keep", "type", "boolean");
	json_t *m = json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content", "Be brief.", "role", "user",
			      "content", "Caf\xc3\xa9: which drug? \"A\" or \\B");
	struct client_opts co = { .job_id = 3, .temperature = 0.25, .max_tokens = 64, .schema = schema,
				  .expect_json = true };
	struct client_opts po = { .temperature = -1, .logprobs = 2, .echo = true };
	struct res a = { 0 }, b = { 0 };
	sqlite3_stmt *q;
	const char *want[2] = { "9def1393e2300ae9698b1be5ddabe6752fcbf384446f353ff9ddd6bcae145701",
				"94ffc8a8366ddabe03b9af3cdb6b27aacce035c9c2658abfc2adb38460d3da0b" };
	int n = 0;

	(void)state;
	env_open(&e, true);
	assert_int_equal(client_endpoint_add(e.c, &chat_cfg), 0);
	assert_int_equal(client_endpoint_add(e.c, &comp_cfg), 0);
	assert_int_equal(client_chat(e.c, "teacher.pin", &co, m, got, &a), 0);
	assert_int_equal(client_complete(e.c, "student.pin", &po, "The answer is C", got, &b), 0);
	wait_for(&e, &a.done, 1);
	wait_for(&e, &b.done, 1);
	assert_int_equal(a.err, -ECONNREFUSED);
	assert_int_equal(b.err, -ECONNREFUSED);
	sqlite3_prepare_v2(store_db(e.st), "SELECT endpoint, hash FROM calls ORDER BY endpoint DESC", -1, &q, NULL);
	while (sqlite3_step(q) == SQLITE_ROW) {
		assert_string_equal((const char *)sqlite3_column_text(q, 1), want[n]);
		n++;
	}
	sqlite3_finalize(q);
	assert_int_equal(n, 2);
	json_decref(schema);
	json_decref(m);
	env_close(&e);
}

/* 64 teachers + 1 student (once past the old cap of 64 in all), up to
 * CLIENT_MAX_ENDPOINTS, are all added; one more is -ENOSPC. */
static void test_client_endpoint_cap(void **state)
{
	struct env e;
	char name[32];
	int i;

	(void)state;
	env_open(&e, false);
	for (i = 0; i < CLIENT_MAX_ENDPOINTS; i++) {
		struct client_endpoint_cfg cfg = { .kind = i == 64 ? CLIENT_STUDENT : CLIENT_TEACHER };
		snprintf(name, sizeof(name), "%s.e%d", i == 64 ? "student" : "teacher", i);
		add_ep(&e, name, &cfg);
		if (i == 64)
			assert_int_equal(client_endpoint_count(e.c), 65);
	}
	assert_int_equal(client_endpoint_count(e.c), CLIENT_MAX_ENDPOINTS);
	{
		struct client_endpoint_cfg cfg = { .name = "teacher.over", .base_url = sim_base, .model = "m" };
		assert_int_equal(client_endpoint_add(e.c, &cfg), -ENOSPC);
	}
	env_close(&e);
}

/* A pool of two replicas, the first refusing connections, with no retries
 * at all: every call still succeeds (failover is not a retry), the dead
 * replica is taken out at its first refusal and stays out through its
 * health checks. The cache key is the pool's first URL: a plain endpoint on
 * that URL is answered from the store, nothing sent. */
static void test_client_pool(void **state)
{
	struct env e;
	char urls[160];
	struct client_endpoint_cfg cfg = { .kind = CLIENT_STUDENT, .max_concurrency = 4, .max_retries = -1,
					   .replica_check_s = 0.02, .model = "sim-student" };
	struct client_endpoint_cfg plain = { .name = "student.plain", .kind = CLIENT_STUDENT,
					     .base_url = "http://127.0.0.1:1/v1", .model = "sim-student",
					     .max_retries = -1 };
	struct client_replica_stats r0, r1;
	struct client_stats st;
	struct res x[20], again = { 0 };
	uint64_t sent;
	int done = 0, i;

	(void)state;
	memset(x, 0, sizeof(x));
	json_decref(sim_http("/sim/reset", ""));
	env_open(&e, true);
	snprintf(urls, sizeof(urls), "http://127.0.0.1:1/v1  %s", sim_base);
	cfg.name = "student.pool";
	cfg.base_url = urls;
	assert_int_equal(client_endpoint_add(e.c, &cfg), 0);
	assert_int_equal(client_endpoint_add(e.c, &plain), 0);
	assert_int_equal(client_replica_count(e.c, 0), 2);
	assert_int_equal(client_replica_count(e.c, 1), 1);
	for (i = 0; i < 20; i++) {
		x[i].counter = &done;
		chat(&e, "student.pool", "answer", 9000 + i, false, 0, &x[i]);
	}
	for (i = 0; i < 20; i++) {
		wait_for(&e, &x[i].done, 1);
		assert_int_equal(x[i].err, 0);
	}
	assert_int_equal(client_replica_stats_at(e.c, 0, 0, &r0), 0);
	assert_int_equal(client_replica_stats_at(e.c, 0, 1, &r1), 0);
	assert_string_equal(r0.url, "http://127.0.0.1:1/v1");
	assert_true(r0.out);
	assert_int_equal(r0.taken_out, 1);
	assert_true(r0.requests >= 1 && r0.requests <= 4); /* only what went before it was out */
	assert_int_equal(r0.ok, 0);
	assert_false(r1.out);
	assert_int_equal(r1.ok, 20);
	assert_int_equal(client_stats_at(e.c, 0, &st), 0);
	assert_int_equal(st.replicas, 2);
	assert_int_equal(st.replicas_in, 1);
	assert_int_equal(st.ok, 20);
	assert_int_equal(st.errors[CLIENT_ERRC_NETWORK], 0);
	/* Health checks go on while it is out (GETs, not calls); it stays out
	 * and no call goes to it. */
	sent = r0.requests;
	while (r0.checks < 3) {
		uv_run(&e.loop, UV_RUN_ONCE);
		assert_int_equal(client_replica_stats_at(e.c, 0, 0, &r0), 0);
	}
	assert_true(r0.out);
	assert_int_equal(r0.taken_out, 1);
	assert_int_equal(r0.requests, sent);
	/* Same request through the plain endpoint on the pool's first URL: the
	 * stored reply answers it. */
	chat(&e, "student.plain", "answer", 9000, false, 0, &again);
	wait_for(&e, &again.done, 1);
	assert_int_equal(again.err, 0);
	assert_true(again.cached);
	assert_string_equal(again.content, x[0].content);
	for (i = 0; i < 20; i++)
		json_decref(x[i].json);
	json_decref(again.json);
	env_close(&e);
}

/* ---- held replies and down endpoints ---- */

struct lis {
	int spent, store_on, store_off, down;
	double cost;
	char down_ep[64], last_error[320];
};

static void lis_spent(void *ud, int64_t job, const char *ep, int64_t tin, int64_t tout, double cost)
{
	struct lis *l = ud;

	(void)job;
	(void)ep;
	(void)tin;
	(void)tout;
	l->spent++;
	l->cost += cost;
}

static void lis_store(void *ud, bool failing, int err)
{
	struct lis *l = ud;

	(void)err;
	if (failing)
		l->store_on++;
	else
		l->store_off++;
}

static void lis_down(void *ud, const char *ep, double secs, const char *last)
{
	struct lis *l = ud;

	(void)secs;
	l->down++;
	snprintf(l->down_ep, sizeof(l->down_ep), "%s", ep);
	snprintf(l->last_error, sizeof(l->last_error), "%s", last);
}

static const struct client_listener lis_row = { lis_spent, lis_store, lis_down };

/* A reply whose call row cannot be committed is held, retried, never sent
 * again; the same request meanwhile waits for it; the spend counts at once. */
static void test_client_store_hold(void **state)
{
	struct env e;
	struct client_endpoint_cfg cfg = { .price_in_per_mtok = 2.5, .price_out_per_mtok = 10 };
	struct res a = { 0 }, b = { 0 };
	struct lis l = { 0 };
	struct client_stats s;

	(void)state;
	sim_config(NULL);
	env_open(&e, true);
	add_ep(&e, "teacher.sim", &cfg);
	client_set_listener(e.c, &lis_row, &l);
	/* Every call row fails (as on a full disk) until the trigger goes. */
	assert_int_equal(sqlite3_exec(store_db(e.st),
				      "CREATE TEMP TRIGGER full BEFORE INSERT ON calls "
				      "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	chat(&e, "teacher.sim", "explain", 1, false, 9, &a);
	wait_for(&e, &l.store_on, 1);
	assert_int_equal(a.done, 0);
	assert_int_equal(l.spent, 1); /* billed when received */
	assert_true(l.cost > 0);
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_int_equal(s.held, 1);
	/* the same request again: waits for the held reply, not sent */
	chat(&e, "teacher.sim", "explain", 1, false, 9, &b);
	/* a few more failed rounds */
	{
		int rounds = l.store_on;
		uint64_t t0 = uv_hrtime();
		while ((uv_hrtime() - t0) < 400000000ull)
			uv_run(&e.loop, UV_RUN_ONCE);
		assert_int_equal(l.store_on, rounds);
	}
	assert_int_equal(a.done, 0);
	assert_int_equal(b.done, 0);
	assert_int_equal(sim_stat("requests_total"), 1);
	assert_int_equal(sqlite3_exec(store_db(e.st), "DROP TRIGGER full", NULL, NULL, NULL), SQLITE_OK);
	wait_for(&e, &a.done, 1);
	wait_for(&e, &b.done, 1);
	assert_int_equal(a.err, 0);
	assert_false(a.cached);
	assert_true(a.call_id > 0);
	assert_true(fabs(a.cost - l.cost) < 1e-12);
	assert_int_equal(b.err, 0);
	assert_true(b.cached);
	assert_int_equal(b.call_id, a.call_id);
	assert_string_equal(b.content, a.content);
	assert_int_equal(l.store_off, 1);
	assert_int_equal(l.spent, 1);
	assert_int_equal(sim_stat("requests_total"), 1);
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_int_equal(s.held, 0);
	json_decref(a.json);
	json_decref(b.json);
	env_close(&e);
}

/* Every attempt failing for down_after_s: the listener hears it once per
 * down_after_s with the last error; a cancelled job's calls end; rearm
 * clears it. */
static void test_client_endpoint_down(void **state)
{
	struct env e;
	struct client_endpoint_cfg cfg = { .down_after_s = 0.3, .max_retries = 50 };
	struct res a = { 0 };
	struct lis l = { 0 };
	struct client_stats s;

	(void)state;
	sim_config("{\"fail-500\":1}");
	env_open(&e, false);
	add_ep(&e, "teacher.sim", &cfg);
	client_set_listener(e.c, &lis_row, &l);
	chat(&e, "teacher.sim", "explain", 3, false, 4, &a);
	wait_for(&e, &l.down, 1);
	assert_int_equal(a.done, 0);
	assert_string_equal(l.down_ep, "teacher.sim");
	assert_non_null(strstr(l.last_error, "HTTP 500"));
	assert_null(strstr(l.last_error, "teacher.sim: ")); /* the cause, not the name again */
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_true(s.down);
	assert_non_null(strstr(s.last_error, "HTTP 500"));
	/* still down and asked for: heard again after another down_after_s */
	wait_for(&e, &l.down, 2);
	client_cancel_job(e.c, 4);
	wait_for(&e, &a.done, 1);
	assert_int_equal(a.err, -ECANCELED);
	assert_int_equal(client_endpoint_rearm(e.c, "teacher.sim"), 0);
	assert_int_equal(client_endpoint_rearm(e.c, "teacher.nope"), -ENOENT);
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_false(s.down);
	/* back up: a success clears the failures */
	sim_config(NULL);
	a.done = 0;
	chat(&e, "teacher.sim", "explain", 4, false, 4, &a);
	wait_for(&e, &a.done, 1);
	assert_int_equal(a.err, 0);
	assert_int_equal(client_stats_get(e.c, "teacher.sim", &s), 0);
	assert_false(s.down);
	assert_string_equal(s.last_error, "");
	env_close(&e);
}

/* A cache tag is part of the cache key: the same request under another tag
 * is sent again (a model retrained behind the same name); under the same
 * tag, or none, it is answered from the store as before. */
static void test_client_cache_tag(void **state)
{
	struct env e;
	struct client_endpoint_cfg cfg = { .max_concurrency = 4 };
	struct res r[4] = { 0 };
	static const char *const tags[] = { NULL, "job_1/after_train1", "job_1/after_train1", NULL };

	(void)state;
	sim_config(NULL);
	env_open(&e, true);
	add_ep(&e, "student.sim", &cfg);
	for (int i = 0; i < 4; i++) {
		json_t *m = prompt("answer", 9);
		struct client_opts o = { .temperature = 0, .max_tokens = 256, .cache_tag = tags[i] };

		assert_int_equal(client_chat(e.c, "student.sim", &o, m, got, &r[i]), 0);
		json_decref(m);
		wait_for(&e, &r[i].done, 1);
		assert_int_equal(r[i].err, 0);
	}
	assert_false(r[0].cached);
	assert_false(r[1].cached); /* another tag: sent */
	assert_true(r[1].call_id != r[0].call_id);
	assert_true(r[2].cached); /* the same tag: its own row */
	assert_int_equal(r[2].call_id, r[1].call_id);
	assert_true(r[3].cached); /* no tag: the untagged row, as before tags */
	assert_int_equal(r[3].call_id, r[0].call_id);
	assert_int_equal(sim_stat("requests_total"), 2);
	for (int i = 0; i < 4; i++)
		json_decref(r[i].json);
	env_close(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_ok_and_cache), cmocka_unit_test(test_client_http_errors),
		cmocka_unit_test(test_client_retry_after),  cmocka_unit_test(test_client_malformed),
		cmocka_unit_test(test_client_repair),       cmocka_unit_test(test_client_breaker),
		cmocka_unit_test(test_client_rpm),          cmocka_unit_test(test_client_many),
		cmocka_unit_test(test_client_cancel_and_close), cmocka_unit_test(test_client_complete),
		cmocka_unit_test(test_client_hash_stable),
		cmocka_unit_test(test_client_cache_tag),
		cmocka_unit_test(test_client_endpoint_cap),
		cmocka_unit_test(test_client_pool),
		cmocka_unit_test(test_client_store_hold),
		cmocka_unit_test(test_client_endpoint_down),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
