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

#include "common/buf.h"
#include "store/batches.h"
#include "store/store.h"
#include "teacher_clients/batch.h"

/* The batch rows: request lines, the submission steps, polls and result
 * lines of the OpenAI Batch API and Anthropic Message Batches. */

static void test_openai_batch_submit(void **state)
{
	const struct batch_api *a = &batch_openai;
	struct batch_http h;
	struct buf lines;
	char id[64], err[200];

	(void)state;
	assert_int_equal(a->max_requests, 50000);
	assert_int_equal(a->max_bytes, 200u * 1024 * 1024);
	buf_init(&lines, 1 << 20);
	assert_int_equal(a->line_append(&lines, "mt-1", "/v1/chat/completions", "{\"model\":\"m\"}"), 0);
	assert_string_equal(lines.base, "{\"custom_id\":\"mt-1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\","
					"\"body\":{\"model\":\"m\"}}\n");
	memset(&h, 0, sizeof(h));
	/* step 0: the file upload, multipart with purpose batch */
	assert_int_equal(a->submit_step(0, "http://h/v1", "/v1/chat/completions", &lines, 1, NULL, &h, id, sizeof(id),
					err, sizeof(err)),
			 1);
	assert_string_equal(h.method, "POST");
	assert_string_equal(h.url, "http://h/v1/files");
	assert_non_null(strstr(h.content_type, "multipart/form-data; boundary="));
	assert_non_null(strstr(h.body, "name=\"purpose\"\r\n\r\nbatch\r\n"));
	assert_non_null(strstr(h.body, lines.base));
	/* step 1: the batch, from the file's id */
	assert_int_equal(a->submit_step(1, "http://h/v1", "/v1/chat/completions", &lines, 1, "{\"id\":\"file-9\"}", &h, id,
					sizeof(id), err, sizeof(err)),
			 1);
	assert_string_equal(h.url, "http://h/v1/batches");
	assert_string_equal(h.body, "{\"completion_window\":\"24h\",\"endpoint\":\"/v1/chat/completions\","
				    "\"input_file_id\":\"file-9\"}");
	/* step 2: submitted */
	assert_int_equal(a->submit_step(2, "http://h/v1", "/v1/chat/completions", &lines, 1,
					"{\"id\":\"batch_7\",\"status\":\"validating\"}", &h, id, sizeof(id), err, sizeof(err)),
			 0);
	assert_string_equal(id, "batch_7");
	/* an error reply names its message */
	assert_int_equal(a->submit_step(1, "http://h/v1", "/v1/chat/completions", &lines, 1,
					"{\"error\":{\"message\":\"bad file\"}}", &h, id, sizeof(id), err, sizeof(err)),
			 -EBADMSG);
	assert_string_equal(err, "bad file");
	batch_http_clear(&h);
	buf_free(&lines);
}

static void test_openai_batch_poll_results(void **state)
{
	const struct batch_api *a = &batch_openai;
	struct batch_poll p;
	struct batch_result r;
	struct batch_http h;
	char err[200];
	const char *running = "{\"id\":\"b\",\"status\":\"in_progress\",\"request_counts\":{\"total\":4,\"completed\":1,\"failed\":0}}";
	const char *done = "{\"id\":\"b\",\"status\":\"expired\",\"output_file_id\":\"file-o\",\"error_file_id\":\"file-e\"}";
	const char *ok = "{\"custom_id\":\"mt-1\",\"response\":{\"status_code\":200,\"body\":{\"choices\":[]}},\"error\":null}";
	const char *exp = "{\"custom_id\":\"mt-2\",\"response\":null,\"error\":{\"code\":\"batch_expired\",\"message\":\"late\"}}";
	const char *e500 = "{\"custom_id\":\"mt-3\",\"response\":{\"status_code\":500,\"body\":{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}},\"error\":null}";

	(void)state;
	memset(&h, 0, sizeof(h));
	assert_int_equal(a->poll_req("http://h/v1", "b", &h), 0);
	assert_string_equal(h.method, "GET");
	assert_string_equal(h.url, "http://h/v1/batches/b");
	assert_int_equal(a->cancel_req("http://h/v1", "b", &h), 0);
	assert_string_equal(h.url, "http://h/v1/batches/b/cancel");
	batch_http_clear(&h);
	assert_int_equal(a->poll_parse("http://h/v1", running, strlen(running), &p, err, sizeof(err)), 0);
	assert_false(p.ended);
	assert_int_equal(p.total, 4);
	assert_int_equal(p.done, 1);
	assert_int_equal(a->poll_parse("http://h/v1", done, strlen(done), &p, err, sizeof(err)), 0);
	assert_true(p.ended);
	assert_string_equal(p.status, "expired");
	assert_string_equal(p.result_url[0], "http://h/v1/files/file-o/content");
	assert_string_equal(p.result_url[1], "http://h/v1/files/file-e/content");
	assert_int_equal(a->poll_parse("http://h/v1", "{}", 2, &p, err, sizeof(err)), -EBADMSG);

	assert_int_equal(a->result_parse(ok, strlen(ok), &r), 0);
	assert_int_equal(r.kind, BATCH_SUCCEEDED);
	assert_string_equal(r.custom_id, "mt-1");
	assert_string_equal(r.body, "{\"choices\":[]}");
	batch_result_clear(&r);
	assert_int_equal(a->result_parse(exp, strlen(exp), &r), 0);
	assert_int_equal(r.kind, BATCH_EXPIRED);
	batch_result_clear(&r);
	assert_int_equal(a->result_parse(e500, strlen(e500), &r), 0);
	assert_int_equal(r.kind, BATCH_ERRORED);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.code, "server_error");
	assert_string_equal(r.msg, "boom");
	batch_result_clear(&r);
	assert_int_equal(a->result_parse("nope", 4, &r), -EBADMSG);
	batch_result_clear(&r);
	/* an empty custom_id names no request (found by the batch fuzz target) */
	{
		static const char empty[] = "{\"custom_id\":\"\",\"response\":{\"status_code\":200,"
					    "\"body\":{}},\"error\":null}";

		assert_int_equal(a->result_parse(empty, strlen(empty), &r), -EBADMSG);
		batch_result_clear(&r);
	}
}

static void test_anthropic_batch(void **state)
{
	const struct batch_api *a = &batch_anthropic;
	struct batch_http h;
	struct batch_poll p;
	struct batch_result r;
	struct buf lines;
	char id[64], err[200];
	const char *ended = "{\"id\":\"mb\",\"processing_status\":\"ended\",\"request_counts\":{\"processing\":0,"
			    "\"succeeded\":2,\"errored\":1,\"canceled\":0,\"expired\":1},\"results_url\":\"https://x/r\"}";
	const char *ok = "{\"custom_id\":\"mt-1\",\"result\":{\"type\":\"succeeded\",\"message\":{\"content\":[]}}}";
	const char *bad = "{\"custom_id\":\"mt-2\",\"result\":{\"type\":\"errored\",\"error\":{\"type\":\"error\","
			  "\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}}}";
	const char *exp = "{\"custom_id\":\"mt-3\",\"result\":{\"type\":\"expired\"}}";
	const char *can = "{\"custom_id\":\"mt-4\",\"result\":{\"type\":\"canceled\"}}";

	(void)state;
	assert_int_equal(a->max_requests, 100000);
	buf_init(&lines, 1 << 20);
	assert_int_equal(a->line_append(&lines, "mt-1", "/v1/messages", "{\"a\":1}"), 0);
	assert_int_equal(a->line_append(&lines, "mt-2", "/v1/messages", "{\"b\":2}"), 0);
	memset(&h, 0, sizeof(h));
	assert_int_equal(a->submit_step(0, "http://h/v1", "/v1/messages", &lines, 2, NULL, &h, id, sizeof(id), err,
					sizeof(err)),
			 1);
	assert_string_equal(h.url, "http://h/v1/messages/batches");
	assert_string_equal(h.body, "{\"requests\":[{\"custom_id\":\"mt-1\",\"params\":{\"a\":1}},"
				    "{\"custom_id\":\"mt-2\",\"params\":{\"b\":2}}]}");
	assert_int_equal(a->submit_step(1, "http://h/v1", "/v1/messages", &lines, 2, "{\"id\":\"msgbatch_1\"}", &h, id,
					sizeof(id), err, sizeof(err)),
			 0);
	assert_string_equal(id, "msgbatch_1");
	assert_int_equal(a->poll_req("http://h/v1", "mb", &h), 0);
	assert_string_equal(h.url, "http://h/v1/messages/batches/mb");
	assert_int_equal(a->cancel_req("http://h/v1", "mb", &h), 0);
	assert_string_equal(h.url, "http://h/v1/messages/batches/mb/cancel");
	batch_http_clear(&h);
	buf_free(&lines);

	assert_int_equal(a->poll_parse("http://h/v1", ended, strlen(ended), &p, err, sizeof(err)), 0);
	assert_true(p.ended);
	assert_int_equal(p.total, 4);
	assert_int_equal(p.done, 4);
	assert_int_equal(p.failed, 2);
	assert_string_equal(p.result_url[0], "https://x/r");

	assert_int_equal(a->result_parse(ok, strlen(ok), &r), 0);
	assert_int_equal(r.kind, BATCH_SUCCEEDED);
	assert_string_equal(r.body, "{\"content\":[]}");
	batch_result_clear(&r);
	assert_int_equal(a->result_parse(bad, strlen(bad), &r), 0);
	assert_int_equal(r.kind, BATCH_ERRORED);
	assert_string_equal(r.code, "overloaded_error");
	assert_string_equal(r.msg, "busy");
	batch_result_clear(&r);
	assert_int_equal(a->result_parse(exp, strlen(exp), &r), 0);
	assert_int_equal(r.kind, BATCH_EXPIRED);
	batch_result_clear(&r);
	assert_int_equal(a->result_parse(can, strlen(can), &r), 0);
	assert_int_equal(r.kind, BATCH_CANCELED);
	batch_result_clear(&r);
	assert_int_equal(a->result_parse("{\"custom_id\":\"x\"}", 16, &r), -EBADMSG);
	batch_result_clear(&r);
}

/* store/batches.c: what a restart reloads, and a request applied once. */
struct loaded {
	int batches, reqs;
	char pid[32], cid[32];
};

static int on_batch(void *ud, const struct store_batch_row *b)
{
	struct loaded *l = ud;

	l->batches++;
	snprintf(l->pid, sizeof(l->pid), "%s", b->provider_id ? b->provider_id : "");
	return 0;
}

static int on_req(void *ud, const struct store_batch_row *b, const struct store_batch_req_row *r)
{
	struct loaded *l = ud;

	(void)b;
	l->reqs++;
	snprintf(l->cid, sizeof(l->cid), "%s", r->custom_id);
	return 0;
}

static void test_store_batches(void **state)
{
	char dir[] = "/tmp/medthink-batch-XXXXXX", path[128], err[256];
	struct store *st;
	struct loaded l;
	int64_t id = 0, id2 = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_batches_init(st), 0);
	assert_int_equal(store_batches_init(st), 0); /* again: nothing to do */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_batch_insert(st, "teacher.x", 3, 2, &id), 0);
	assert_int_equal(store_batch_req_insert(st, id, "mt-1", 3, "k1", "{}"), 0);
	assert_int_equal(store_batch_req_insert(st, id, "mt-2", 3, "k2", "{}"), 0);
	assert_int_equal(store_batch_req_insert(st, id, "mt-2", 3, "k2", "{}"), -EEXIST);
	assert_int_equal(store_batch_insert(st, "teacher.x", 3, 1, &id2), 0);
	assert_int_equal(store_commit(st), 0);
	/* both unfinished; the second never confirmed (no provider id) */
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_batches_load(st, on_batch, on_req, &l), 0);
	assert_int_equal(l.batches, 2);
	assert_int_equal(l.reqs, 2);
	assert_int_equal(store_batch_submitted(st, id, "batch_abc"), 0);
	assert_int_equal(store_batch_set_state(st, id2, "lost", NULL), 0);
	/* a request moves from open once */
	assert_int_equal(store_batch_req_set(st, "mt-1", "applied"), 0);
	assert_int_equal(store_batch_req_set(st, "mt-1", "applied"), -EALREADY);
	assert_int_equal(store_batch_req_set(st, "mt-9", "applied"), -ENOENT);
	assert_int_equal(store_batch_key_count(st, "k2"), 1);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_batches_load(st, on_batch, on_req, &l), 0);
	assert_int_equal(l.batches, 1);
	assert_string_equal(l.pid, "batch_abc");
	assert_int_equal(l.reqs, 1);
	assert_string_equal(l.cid, "mt-2");
	assert_int_equal(store_batch_set_state(st, id, "done", "completed"), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_batches_load(st, on_batch, on_req, &l), 0);
	assert_int_equal(l.batches, 0);
	store_close(st);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openai_batch_submit),
		cmocka_unit_test(test_openai_batch_poll_results),
		cmocka_unit_test(test_anthropic_batch),
		cmocka_unit_test(test_store_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
