/* layers: daemon stages teacher_clients store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/api.h"
#include "daemon/api_routes.h"
#include "daemon/upload.h"
#include "stages/runner.h"
#include "store/store.h"
#include "teacher_clients/client.h"

/* ================================================================ routes */

static const struct api_route *route_ok(const char *method, const char *path,
					struct api_route_match *m)
{
	int rc = api_route_match(method, path, m);

	if (rc != 0)
		fail_msg("%s %s: expected a route, got %d", method, path, rc);
	assert_non_null(m->route);
	assert_string_equal(m->route->method, method);
	return m->route;
}

/* Every route of SPEC 6, with its params and how it takes its body. */
static void test_routes_spec(void **state)
{
	static const struct {
		const char *method, *path, *pattern, *param;
		enum api_route_body body;
	} cases[] = {
		{ "GET", "/v1/health", "/v1/health", NULL, API_BODY_NONE },
		{ "POST", "/v1/datasets", "/v1/datasets", NULL, API_BODY_STREAMED },
		{ "GET", "/v1/datasets", "/v1/datasets", NULL, API_BODY_NONE },
		{ "GET", "/v1/datasets/ds_7", "/v1/datasets/{id}", "ds_7", API_BODY_NONE },
		{ "GET", "/v1/datasets/gastro", "/v1/datasets/{id}", "gastro", API_BODY_NONE },
		{ "POST", "/v1/jobs", "/v1/jobs", NULL, API_BODY_BUFFERED },
		{ "GET", "/v1/jobs", "/v1/jobs", NULL, API_BODY_NONE },
		{ "GET", "/v1/jobs/job_3", "/v1/jobs/{id}", "job_3", API_BODY_NONE },
		{ "POST", "/v1/jobs/job_3/cancel", "/v1/jobs/{id}/cancel", "job_3", API_BODY_BUFFERED },
		{ "POST", "/v1/jobs/3/pause", "/v1/jobs/{id}/pause", "3", API_BODY_BUFFERED },
		{ "POST", "/v1/jobs/job_3/resume", "/v1/jobs/{id}/resume", "job_3", API_BODY_BUFFERED },
		{ "GET", "/v1/jobs/job_3/events", "/v1/jobs/{id}/events", "job_3", API_BODY_NONE },
		{ "GET", "/v1/jobs/job_3/export", "/v1/jobs/{id}/export", "job_3", API_BODY_NONE },
		{ "GET", "/metrics", "/metrics", NULL, API_BODY_NONE },
	};
	struct api_route_match m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct api_route *r = route_ok(cases[i].method, cases[i].path, &m);

		assert_string_equal(r->pattern, cases[i].pattern);
		assert_int_equal(r->body, cases[i].body);
		assert_non_null(r->handler);
		assert_int_equal(m.nparams, cases[i].param ? 1 : 0);
		if (cases[i].param)
			assert_string_equal(m.params[0], cases[i].param);
		assert_null(m.body);
	}
}

/* Each row is reachable by its own pattern and method: no row shadows
 * another, and no two rows share a method and a path. */
static void test_routes_every_row(void **state)
{
	struct api_route_match m;

	(void)state;
	for (size_t i = 0; i < api_routes_count; i++) {
		const char *pat = api_routes[i].pattern, *p = strstr(pat, "{id}");
		char path[256];

		if (p) /* {id} -> x_1 */
			snprintf(path, sizeof(path), "%.*sx_1%s", (int)(p - pat), pat, p + 4);
		else
			snprintf(path, sizeof(path), "%s", pat);
		assert_int_equal(api_route_match(api_routes[i].method, path, &m), 0);
		assert_ptr_equal(m.route, &api_routes[i]);
		/* a job id is resolved by the dispatcher (404 before any handler) */
		assert_int_equal(!!(m.route->flags & API_ROUTE_JOB),
				 strncmp(pat, "/v1/jobs/{id}", 13) == 0);
		assert_int_equal(m.job, 0);
		for (size_t j = 0; j < i; j++)
			assert_false(strcmp(api_routes[i].method, api_routes[j].method) == 0 &&
				     strcmp(api_routes[i].pattern, api_routes[j].pattern) == 0);
	}
}

static void test_routes_unknown(void **state)
{
	static const char *const paths[] = {
		"", "/", "//", "/v1", "/v1/", "/v2/health", "/v1/nothing", "/v1/health/x",
		"/v1/metrics", "/metrics/x", "/v1/datasets/a/b", "/v1/jobs/1/foo",
		"/v1/jobs/1/export/x", "/v1/jobs/1/pause/now", "/v1/jobs/1/2/3/4/5/6/7/8",
		"//v1//jobs", "/V1/health", "/v1/Jobs", "/v1/jobs/1/EXPORT",
	};
	struct api_route_match m;

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (api_route_match("GET", paths[i], &m) != -ENOENT)
			fail_msg("GET \"%s\" should be unknown", paths[i]);
		assert_null(m.route);
		if (api_route_match("POST", paths[i], &m) != -ENOENT)
			fail_msg("POST \"%s\" should be unknown", paths[i]);
	}
}

static void test_routes_wrong_method(void **state)
{
	static const struct {
		const char *method, *path, *allow;
	} cases[] = {
		{ "DELETE", "/v1/health", "GET" },
		{ "POST", "/v1/health", "GET" },
		{ "HEAD", "/v1/health", "GET" },
		{ "POST", "/metrics", "GET" },
		{ "PUT", "/v1/datasets", "GET, POST" },
		{ "DELETE", "/v1/datasets/ds_1", "GET" },
		{ "POST", "/v1/datasets/ds_1", "GET" },
		{ "DELETE", "/v1/jobs", "GET, POST" },
		{ "POST", "/v1/jobs/job_1", "GET" },
		{ "DELETE", "/v1/jobs/job_1", "GET" },
		{ "GET", "/v1/jobs/job_1/pause", "POST" },
		{ "GET", "/v1/jobs/job_1/cancel", "POST" },
		{ "GET", "/v1/jobs/job_1/resume", "POST" },
		{ "POST", "/v1/jobs/job_1/events", "GET" },
		{ "POST", "/v1/jobs/job_1/export", "GET" },
		{ "get", "/v1/health", "GET" }, /* methods are case-sensitive */
	};
	struct api_route_match m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (api_route_match(cases[i].method, cases[i].path, &m) != -EPERM)
			fail_msg("%s %s should be 405", cases[i].method, cases[i].path);
		assert_null(m.route);
		assert_string_equal(m.allow, cases[i].allow);
	}
}

/* Slashes and odd ids, as the daemon has always taken them. */
static void test_routes_slashes_and_ids(void **state)
{
	struct api_route_match m;
	char path[512], id[300];

	(void)state;
	/* one trailing slash and any leading ones are ignored */
	assert_string_equal(route_ok("GET", "/v1/jobs/", &m)->pattern, "/v1/jobs");
	assert_string_equal(route_ok("GET", "//v1/health", &m)->pattern, "/v1/health");
	assert_string_equal(route_ok("GET", "/v1/health/", &m)->pattern, "/v1/health");
	assert_string_equal(route_ok("GET", "/v1/jobs/job_3/", &m)->pattern, "/v1/jobs/{id}");
	assert_string_equal(m.params[0], "job_3");
	assert_string_equal(route_ok("GET", "/v1/jobs/job_3/export/", &m)->pattern,
			    "/v1/jobs/{id}/export");
	/* an empty segment inside the path is an (empty) id */
	assert_string_equal(route_ok("POST", "/v1/jobs//pause", &m)->pattern, "/v1/jobs/{id}/pause");
	assert_string_equal(m.params[0], "");
	assert_string_equal(route_ok("GET", "/v1/datasets//", &m)->pattern, "/v1/datasets/{id}");
	assert_string_equal(m.params[0], "");
	/* ids are taken as sent: not decoded, not checked here */
	route_ok("GET", "/v1/jobs/%20x", &m);
	assert_string_equal(m.params[0], "%20x");
	route_ok("GET", "/v1/jobs/..", &m);
	assert_string_equal(m.params[0], "..");
	route_ok("GET", "/v1/datasets/q&a.csv", &m);
	assert_string_equal(m.params[0], "q&a.csv");
	route_ok("GET", "/v1/jobs/job_-1/events", &m);
	assert_string_equal(m.params[0], "job_-1");
	/* a long segment is cut to 127 bytes */
	memset(id, 'a', 200);
	id[200] = '\0';
	snprintf(path, sizeof(path), "/v1/jobs/%s/export", id);
	route_ok("GET", path, &m);
	assert_int_equal(strlen(m.params[0]), API_ROUTE_PARAM_BYTES - 1);
	assert_int_equal(strncmp(m.params[0], id, API_ROUTE_PARAM_BYTES - 1), 0);
}

/* ================================================================ upload */

struct sfx {
	char dir[64];
	char path[128];
	struct store *st;
};

static int sfx_setup(void **state)
{
	struct sfx *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/medthink-api-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/medthink.db", f->dir);
	if (store_open(f->path, &f->st, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static void sfx_files_remove(struct sfx *f)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char p[160];

	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
}

static int sfx_teardown(void **state)
{
	struct sfx *f = *state;

	store_close(f->st);
	sfx_files_remove(f);
	rmdir(f->dir);
	free(f);
	return 0;
}

static size_t datasets_count(struct store *st)
{
	json_t *l = store_dataset_list(st);
	size_t n = json_array_size(l);

	json_decref(l);
	return n;
}

/* Feeds text in pieces of `piece` bytes (any split must do). */
static void feed(struct upload *u, const char *text, size_t piece)
{
	size_t len = strlen(text);

	for (size_t off = 0; off < len; off += piece)
		assert_int_equal(upload_feed(u, text + off, len - off < piece ? len - off : piece), 0);
}

#define GOOD1 "{\"id\":\"a1\",\"question\":\"q1\",\"options\":{\"A\":\"x\",\"B\":\"y\"},\"answer\":\"A\"}\n"
#define GOOD2 "{\"id\":\"a2\",\"question\":\"q2\",\"answer\":\"free text\"}\n"
#define GOOD3 "{\"id\":\"a3\",\"question\":\"q3\",\"options\":{\"A\":\"x\",\"B\":\"y\"},\"answer\":\"B\"}\n"
#define BAD_ANSWER "{\"id\":\"b1\",\"question\":\"q\",\"options\":{\"A\":\"x\",\"B\":\"y\"},\"answer\":\"C\"}\n"
#define DUP_A1 "{\"id\":\"a1\",\"question\":\"q4\",\"answer\":\"dup\"}\n"

static void test_upload_good(void **state)
{
	struct sfx *f = *state;
	uint64_t read = 0;
	struct upload_caps caps = { .batch_items = 2, .items_read = &read };
	struct mt_err e = { 0 };
	struct upload *u;
	json_t *res = NULL;
	int64_t id;

	assert_int_equal(upload_new(f->st, "gastro", "native", false, false, &caps, &u, &e), 0);
	/* not visible while importing */
	assert_int_equal(datasets_count(f->st), 0);
	feed(u, GOOD1 GOOD2 GOOD3, 7);
	assert_int_equal(upload_finish(u, &res, &e), 0);
	upload_free(u);
	assert_non_null(res);
	assert_string_equal(json_string_value(json_object_get(res, "name")), "gastro");
	assert_string_equal(json_string_value(json_object_get(res, "format")), "native");
	assert_int_equal(json_integer_value(json_object_get(res, "items")), 3);
	assert_int_equal(json_array_size(json_object_get(res, "rejected")), 0);
	assert_int_equal(json_integer_value(json_object_get(res, "rejected_count")), 0);
	assert_int_equal(read, 3);
	assert_int_equal(store_dataset_resolve(f->st, "gastro", &id), 0);
	assert_int_equal(id, 1);
	assert_string_equal(json_string_value(json_object_get(res, "id")), "ds_1");
	assert_int_equal(store_dataset_count(f->st, id), 3);
	json_decref(res);
}

static void test_upload_defaults(void **state)
{
	struct sfx *f = *state;
	struct mt_err e = { 0 };
	struct upload *u;
	json_t *res = NULL;

	/* no name, no format: "unnamed", native; an empty body is 0 items */
	assert_int_equal(upload_new(f->st, NULL, "", false, false, NULL, &u, &e), 0);
	assert_int_equal(upload_finish(u, &res, &e), 0);
	upload_free(u);
	assert_string_equal(json_string_value(json_object_get(res, "name")), "unnamed");
	assert_string_equal(json_string_value(json_object_get(res, "format")), "native");
	assert_int_equal(json_integer_value(json_object_get(res, "items")), 0);
	json_decref(res);
}

/* A name a dataset has is refused (409); with unique (the CLI's default
 * name, or no name at all) the next free NAME-N is taken. */
static void test_upload_duplicate_name(void **state)
{
	struct sfx *f = *state;
	struct mt_err e = { 0 };
	struct upload *u = NULL;
	json_t *res = NULL;

	assert_int_equal(upload_new(f->st, "gastro", "native", false, false, NULL, &u, &e), 0);
	feed(u, GOOD1, 3);
	assert_int_equal(upload_finish(u, &res, &e), 0);
	upload_free(u);
	json_decref(res);
	u = (struct upload *)1;
	assert_int_equal(upload_new(f->st, "gastro", "native", false, false, NULL, &u, &e), -EALREADY);
	assert_null(u);
	assert_string_equal(e.code, "name_taken");
	assert_string_equal(e.field, "name");
	assert_non_null(strstr(e.message, "a dataset named \"gastro\" already exists (ds_1); choose another name"));
	/* an import still running holds its name too */
	assert_int_equal(upload_new(f->st, "busy", "native", false, false, NULL, &u, &e), 0);
	{
		struct upload *u2 = NULL;

		assert_int_equal(upload_new(f->st, "busy", "native", false, false, NULL, &u2, &e), -EALREADY);
		assert_null(u2);
	}
	upload_free(u);
	/* unique: gastro-2, then gastro-3 */
	for (int n = 2; n <= 3; n++) {
		char want[32];

		assert_int_equal(upload_new(f->st, "gastro", "native", false, true, NULL, &u, &e), 0);
		feed(u, GOOD1, 3);
		assert_int_equal(upload_finish(u, &res, &e), 0);
		upload_free(u);
		snprintf(want, sizeof(want), "gastro-%d", n);
		assert_string_equal(json_string_value(json_object_get(res, "name")), want);
		json_decref(res);
	}
	/* no name: unnamed, unnamed-2 */
	for (int n = 1; n <= 2; n++) {
		assert_int_equal(upload_new(f->st, NULL, NULL, false, false, NULL, &u, &e), 0);
		assert_int_equal(upload_finish(u, &res, &e), 0);
		upload_free(u);
		assert_string_equal(json_string_value(json_object_get(res, "name")), n == 1 ? "unnamed" : "unnamed-2");
		json_decref(res);
	}
}

static void test_upload_bad_args(void **state)
{
	struct sfx *f = *state;
	struct mt_err e = { 0 };
	struct upload *u = (struct upload *)1;
	char name[UPLOAD_NAME_MAX + 1];

	assert_int_equal(upload_new(f->st, "x", "nope", false, false, NULL, &u, &e), -EBADMSG);
	assert_null(u);
	assert_string_equal(e.code, "bad_format");
	assert_string_equal(e.field, "format");
	assert_non_null(strstr(e.message, "unknown format \"nope\"; expected one of: native"));
	memset(name, 'n', UPLOAD_NAME_MAX);
	name[UPLOAD_NAME_MAX] = '\0';
	assert_int_equal(upload_new(f->st, name, NULL, false, false, NULL, &u, &e), -EBADMSG);
	assert_string_equal(e.code, "bad_name");
	assert_string_equal(e.field, "name");
	assert_string_equal(e.message, "name is longer than 199 bytes");
	name[UPLOAD_NAME_MAX - 1] = '\0'; /* 199 bytes: fine */
	assert_int_equal(upload_new(f->st, name, NULL, false, false, NULL, &u, &e), 0);
	upload_free(u);
	assert_int_equal(datasets_count(f->st), 0);
}

/* Atomic: one bad line and nothing is stored, even what an earlier batch
 * wrote; every bad line is still reported. */
static void test_upload_atomic_bad_line(void **state)
{
	struct sfx *f = *state;
	struct upload_caps caps = { .batch_items = 1 };
	struct mt_err e = { 0 };
	struct upload *u;
	json_t *res = NULL, *rej;
	int64_t id;

	assert_int_equal(upload_new(f->st, "bad", "native", false, false, &caps, &u, &e), 0);
	feed(u, GOOD1 GOOD2 BAD_ANSWER GOOD3 "not json\n", 4096);
	assert_int_equal(upload_finish(u, &res, &e), -EINVAL);
	upload_free(u);
	assert_string_equal(e.code, "invalid_dataset");
	assert_string_equal(e.field, "body");
	assert_non_null(strstr(e.message, "line 3: "));
	assert_int_equal(strncmp(e.message, "line 3: ", 8), 0);
	assert_non_null(strstr(e.message, "\"C\""));
	assert_non_null(res);
	rej = json_object_get(res, "rejected");
	assert_int_equal(json_array_size(rej), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rej, 0), "line")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rej, 1), "line")), 5);
	assert_string_equal(e.message + 8,
			    json_string_value(json_object_get(json_array_get(rej, 0), "reason")));
	assert_int_equal(json_integer_value(json_object_get(res, "rejected_count")), 2);
	json_decref(res);
	assert_int_equal(datasets_count(f->st), 0);
	assert_int_not_equal(store_dataset_resolve(f->st, "bad", &id), 0);
	assert_int_equal(store_dataset_count(f->st, 1), 0);
}

/* skip_invalid: the good lines are stored and every bad one is listed;
 * the list is capped, the count is not. */
static void test_upload_skip_invalid(void **state)
{
	struct sfx *f = *state;
	struct upload_caps caps = { .batch_items = 2, .rejected_max = 2 };
	struct mt_err e = { 0 };
	struct upload *u;
	json_t *res = NULL, *rej;

	assert_int_equal(upload_new(f->st, "skip", "native", true, false, &caps, &u, &e), 0);
	feed(u, GOOD1 BAD_ANSWER GOOD3 DUP_A1 "not json\n" GOOD2, 3);
	assert_int_equal(upload_finish(u, &res, &e), 0);
	upload_free(u);
	assert_int_equal(json_integer_value(json_object_get(res, "items")), 3);
	assert_int_equal(json_integer_value(json_object_get(res, "rejected_count")), 3);
	rej = json_object_get(res, "rejected");
	assert_int_equal(json_array_size(rej), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rej, 0), "line")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rej, 1), "line")), 4);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(rej, 1), "reason")),
			       "duplicate id \"a1\""));
	json_decref(res);
	assert_int_equal(datasets_count(f->st), 1);

	/* every line bad: nothing to store, even with skip_invalid */
	assert_int_equal(upload_new(f->st, "allbad", "native", true, false, NULL, &u, &e), 0);
	feed(u, BAD_ANSWER "not json\n", 4096);
	assert_int_equal(upload_finish(u, &res, &e), -EINVAL);
	upload_free(u);
	assert_int_equal(strncmp(e.message, "line 1: ", 8), 0);
	assert_int_equal(json_integer_value(json_object_get(res, "rejected_count")), 2);
	json_decref(res);
	assert_int_equal(datasets_count(f->st), 1);
}

static void test_upload_duplicate_id(void **state)
{
	struct sfx *f = *state;
	struct mt_err e = { 0 };
	struct upload *u;
	json_t *res = NULL;

	assert_int_equal(upload_new(f->st, "dup", "native", false, false, NULL, &u, &e), 0);
	feed(u, GOOD1 GOOD2 DUP_A1, 4096);
	assert_int_equal(upload_finish(u, &res, &e), -EINVAL);
	upload_free(u);
	assert_string_equal(e.code, "invalid_dataset");
	assert_int_equal(strncmp(e.message, "line 3: duplicate id \"a1\"", 25), 0);
	assert_int_equal(json_integer_value(json_object_get(res, "rejected_count")), 1);
	json_decref(res);
	assert_int_equal(datasets_count(f->st), 0);
}

/* The client goes away mid-body: what the first batches stored is gone. */
static void test_upload_aborted(void **state)
{
	struct sfx *f = *state;
	uint64_t read = 0;
	struct upload_caps caps = { .batch_items = 1, .items_read = &read };
	struct mt_err e = { 0 };
	struct upload *u;
	int64_t id;

	assert_int_equal(upload_new(f->st, "half", "medqa", false, false, &caps, &u, &e), 0);
	feed(u, "{\"question\":\"q1\",\"options\":{\"A\":\"x\",\"B\":\"y\"},\"answer_idx\":\"A\"}\n"
		"{\"question\":\"q2\",\"options\":{\"A\":\"x\",\"B\":\"y\"},\"answer_idx\":\"B\"}\n"
		"{\"question\":\"q3\",\"opt",
	     4096);
	assert_int_equal(read, 2); /* two batches were written */
	upload_abort(u);
	assert_int_equal(datasets_count(f->st), 0);
	assert_int_not_equal(store_dataset_resolve(f->st, "half", &id), 0);
	assert_int_equal(store_dataset_count(f->st, 1), 0);

	/* freeing an unfinished upload drops it the same way */
	assert_int_equal(upload_new(f->st, "half2", "native", false, false, &caps, &u, &e), 0);
	feed(u, GOOD1 GOOD2, 4096);
	upload_free(u);
	assert_int_equal(datasets_count(f->st), 0);
	assert_int_equal(store_dataset_count(f->st, 2), 0);
}

/* ===================================================== end to end (in-process) */

/* The real API on a temporary Unix socket, its loop on a thread; the test
 * is a blocking client. No endpoints: nothing is sent to any model. */
struct efx {
	struct sfx s;
	uv_loop_t loop;
	uv_async_t stop;
	pthread_t thr;
	char sock[160];
	struct client *cl;
	struct runner *runner;
	struct api *api;
	int closing;
};

static void *efx_thread(void *arg)
{
	struct efx *x = arg;

	uv_run(&x->loop, UV_RUN_DEFAULT);
	return NULL;
}

static void efx_closed(void *ud)
{
	struct efx *x = ud;

	if (--x->closing == 0)
		uv_close((uv_handle_t *)&x->stop, NULL);
}

static void efx_on_stop(uv_async_t *h)
{
	struct efx *x = h->data;

	x->closing = 3;
	api_close(x->api, efx_closed, x);
	runner_close(x->runner, efx_closed, x);
	client_close(x->cl, efx_closed, x);
}

static int efx_setup(void **state)
{
	struct efx *x = calloc(1, sizeof(*x));
	struct client_settings cs = { 0 };
	struct runner_config rc = { 0 };
	struct api_config ac = { 0 };
	char err[256];

	if (!x)
		return -1;
	snprintf(x->s.dir, sizeof(x->s.dir), "/tmp/medthink-api-XXXXXX");
	if (!mkdtemp(x->s.dir))
		return -1;
	snprintf(x->s.path, sizeof(x->s.path), "%s/medthink.db", x->s.dir);
	snprintf(x->sock, sizeof(x->sock), "%s/s.sock", x->s.dir);
	if (store_open(x->s.path, &x->s.st, err, sizeof(err)) != 0 || uv_loop_init(&x->loop) != 0 ||
	    client_new(&x->loop, x->s.st, &cs, &x->cl) != 0)
		return -1;
	rc.state_dir = x->s.dir;
	rc.prompts_dir = x->s.dir;
	if (runner_new(&x->loop, x->s.st, x->cl, &rc, &x->runner) != 0)
		return -1;
	ac.socket_path = x->sock;
	ac.max_upload_bytes = 1 << 20;
	ac.version = "0.0-test";
	if (api_start(&x->loop, x->s.st, x->runner, x->cl, &ac, &x->api) != 0)
		return -1;
	uv_async_init(&x->loop, &x->stop, efx_on_stop);
	x->stop.data = x;
	if (pthread_create(&x->thr, NULL, efx_thread, x) != 0)
		return -1;
	*state = x;
	return 0;
}

static int efx_teardown(void **state)
{
	struct efx *x = *state;

	uv_async_send(&x->stop);
	pthread_join(x->thr, NULL);
	api_free(x->api);
	runner_free(x->runner);
	assert_int_equal(uv_loop_close(&x->loop), 0);
	store_close(x->s.st);
	sfx_files_remove(&x->s);
	unlink(x->sock);
	rmdir(x->s.dir);
	free(x);
	return 0;
}

struct reply {
	int status;
	char head[4096];
	char body[16384];
};

/* One request on a fresh connection ("Connection: close"), read to EOF. */
static void request(struct efx *x, const char *method, const char *target, const char *body,
		    struct reply *r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 30, 0 }; /* a hang guard only */
	static char buf[65536];
	size_t len = 0, blen = body ? strlen(body) : 0;
	char head[4096];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), n;
	ssize_t got;
	char *sep;

	assert_true(fd >= 0);
	assert_true(strlen(x->sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, x->sock, strlen(x->sock) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* one write: the server may answer (405) before it reads the body */
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
		     method, target, blen, body ? body : "");
	assert_true(n > 0 && (size_t)n < sizeof(head));
	assert_int_equal(send(fd, head, (size_t)n, MSG_NOSIGNAL), n);
	while ((got = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0)
		len += (size_t)got;
	close(fd);
	buf[len] = '\0';
	memset(r, 0, sizeof(*r));
	if (sscanf(buf, "HTTP/1.1 %d", &r->status) != 1)
		fail_msg("%s %s: no response (%zu bytes)", method, target, len);
	sep = strstr(buf, "\r\n\r\n");
	assert_non_null(sep);
	snprintf(r->head, sizeof(r->head), "%.*s", (int)(sep - buf), buf);
	snprintf(r->body, sizeof(r->body), "%s", sep + 4);
}

static void test_e2e_routes(void **state)
{
	struct efx *x = *state;
	struct reply r;

	request(x, "GET", "/v1/health", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\":\"ok\",\"version\":\"0.0-test\"}");
	request(x, "GET", "/v1/health/", NULL, &r);
	assert_int_equal(r.status, 200);

	request(x, "DELETE", "/v1/health", NULL, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.head, "\r\nAllow: GET"));
	assert_string_equal(r.body, "{\"error\":{\"code\":\"method_not_allowed\","
				    "\"message\":\"use GET /v1/health\"}}");
	request(x, "PUT", "/v1/datasets", "x", &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.head, "\r\nAllow: GET, POST"));

	request(x, "GET", "/v1/nothing", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "{\"error\":{\"code\":\"not_found\","
				    "\"message\":\"no route GET /v1/nothing\"}}");

	/* a buffered body reaches its handler */
	request(x, "POST", "/v1/jobs", "{not json", &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "\"code\":\"malformed_json\""));
	request(x, "POST", "/v1/jobs/job_9/pause", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "{\"error\":{\"code\":\"not_found\","
				    "\"message\":\"no job \\\"job_9\\\"\"}}");
	request(x, "GET", "/v1/jobs", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"jobs\":[]}");
	request(x, "GET", "/v1/jobs/job_1/export?set=1", NULL, &r);
	assert_int_equal(r.status, 404);
}

static void test_e2e_upload(void **state)
{
	struct efx *x = *state;
	struct reply r;

	request(x, "POST", "/v1/datasets?name=e2e", GOOD1 GOOD2, &r);
	assert_int_equal(r.status, 201);
	assert_non_null(strstr(r.body, "\"id\":\"ds_1\",\"name\":\"e2e\",\"format\":\"native\","
					"\"items\":2,\"rejected\":[]"));
	assert_non_null(strstr(r.body, ",\"rejected_count\":0}"));

	request(x, "POST", "/v1/datasets?name=bad&format=native", GOOD1 BAD_ANSWER, &r);
	assert_int_equal(r.status, 422);
	assert_int_equal(strncmp(r.body, "{\"error\":{\"code\":\"invalid_dataset\",\"message\":\"line 2: ",
				 54), 0);
	assert_non_null(strstr(r.body, "\"field\":\"body\"},\"rejected\":[{\"line\":2,\"reason\":"));
	assert_non_null(strstr(r.body, "}],\"rejected_count\":1,\"format\":\"native\"}"));

	request(x, "POST", "/v1/datasets?format=nope", GOOD1, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "\"code\":\"bad_format\""));
	assert_non_null(strstr(r.body, "\"field\":\"format\""));

	request(x, "POST", "/v1/datasets?name=skip&skip_invalid=true", GOOD1 BAD_ANSWER GOOD2, &r);
	assert_int_equal(r.status, 201);
	assert_non_null(strstr(r.body, "\"items\":2,\"rejected\":[{\"line\":2,"));

	request(x, "GET", "/v1/datasets/e2e", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"items\":2"));
	request(x, "GET", "/v1/datasets/bad", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "{\"error\":{\"code\":\"not_found\","
				    "\"message\":\"no dataset \\\"bad\\\"\"}}");
	request(x, "GET", "/v1/datasets/", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"name\":\"e2e\""));
	assert_non_null(strstr(r.body, "\"name\":\"skip\""));

	/* items read by uploads, stored or not: 2 + 1 (the bad upload's good line) + 2 */
	request(x, "GET", "/metrics", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\nmedthink_import_items_total 5\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_spec),
		cmocka_unit_test(test_routes_every_row),
		cmocka_unit_test(test_routes_unknown),
		cmocka_unit_test(test_routes_wrong_method),
		cmocka_unit_test(test_routes_slashes_and_ids),
		cmocka_unit_test_setup_teardown(test_upload_good, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_upload_defaults, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_upload_duplicate_name, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_upload_bad_args, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_upload_atomic_bad_line, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_upload_skip_invalid, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_upload_duplicate_id, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_upload_aborted, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_e2e_routes, efx_setup, efx_teardown),
		cmocka_unit_test_setup_teardown(test_e2e_upload, efx_setup, efx_teardown),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
