/* layers: store common */
/* The timeline of a job (store/timeline.c): the bucket choice, and the
 * sums per bucket over rows with known times. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/calls.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/timeline.h"
#include "store/work.h"

static void test_bucket_choice(void **state)
{
	(void)state;
	assert_int_equal(store_timeline_bucket(0, 0, 500), 1);
	assert_int_equal(store_timeline_bucket(499, 0, 500), 1);   /* 500 points of 1 s */
	assert_int_equal(store_timeline_bucket(500, 0, 500), 2);
	assert_int_equal(store_timeline_bucket(3000, 0, 500), 10); /* 7 -> the next nice step */
	assert_int_equal(store_timeline_bucket(100000, 0, 500), 300);
	/* past 12 h a bucket: whole days */
	assert_int_equal(store_timeline_bucket(86400.0 * 1000, 0, 500), 3 * 86400);
	/* asked for: kept when it fits, widened when not */
	assert_int_equal(store_timeline_bucket(100, 7, 500), 7);
	assert_int_equal(store_timeline_bucket(100000, 1, 500), 201);
	/* max_points is capped at 500 */
	assert_int_equal(store_timeline_bucket(5000, 0, 100000), 15);
	/* nonsense spans count as none */
	assert_int_equal(store_timeline_bucket(-5, 0, 500), 1);
}

static void exec(struct store *st, const char *sql)
{
	assert_int_equal(sqlite3_exec(store_db(st), sql, NULL, NULL, NULL), SQLITE_OK);
}

static void call_at(struct store *st, int64_t job, double at, int64_t tin, double cost)
{
	char hash[65];
	struct store_call c = { .job_id = job, .endpoint = "teacher.t", .model = "m",
				.request = "{}", .attempts = 1, .tokens_in = tin, .tokens_out = 1,
				.cost_usd = cost, .created_at = at };

	snprintf(hash, sizeof(hash), "%064d", (int)(at * 10));
	c.hash = hash;
	assert_int_equal(store_call_insert(st, &c, NULL), 0);
}

static void test_job_timeline(void **state)
{
	char dir[] = "/tmp/test_timeline.XXXXXX", path[128], err[128];
	struct store *st;
	int64_t ds, job, seq[3] = { 0, 1, 2 };
	json_t *spec = json_pack("{s:s}", "kind", "stage1"), *tl, *pts, *p, *items[3];
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db.sqlite", dir);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_dataset_create(st, "d", "medqa", &ds), 0);
	for (int i = 0; i < 3; i++)
		items[i] = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "id", i == 0 ? "a" : i == 1 ? "b" : "c",
				     "question", "Q?", "options", "A", "x", "B", "y", "answer", "A");
	assert_int_equal(store_items_insert(st, ds, 0, items, 3, NULL), 0);
	assert_int_equal(store_dataset_finish(st, ds, 3, NULL), 0);
	for (int i = 0; i < 3; i++)
		json_decref(items[i]);
	assert_int_equal(store_job_insert(st, "j", "stage1", ds, spec, NULL, &job), 0);
	json_decref(spec);
	call_at(st, job, 1000.5, 10, 0.25);
	call_at(st, job, 1004.0, 20, 0.5);
	call_at(st, job, 1099.9, 30, 1.0);
	call_at(st, job, 5000.0, 40, 2.0); /* outside the job's span: left out */
	assert_int_equal(store_tasks_insert_pending(st, job, "screen", seq, 3), 3);
	assert_int_equal(store_task_put(st, job, "screen", 0, STORE_TASK_DONE, 1, NULL), 0);
	assert_int_equal(store_task_put(st, job, "screen", 1, STORE_TASK_DONE, 1, NULL), 0);
	assert_int_equal(store_task_put(st, job, "screen", 2, STORE_TASK_FAILED, 1, NULL), 0);
	exec(st, "UPDATE tasks SET updated_at = 1005 WHERE item_seq < 2");
	exec(st, "UPDATE jobs SET created_at = 1000, updated_at = 1100, state = 'done'");

	/* 10 s buckets: 1000..1100, 11 points */
	assert_int_equal(store_job_timeline(st, job, 10, 500, &tl), 0);
	assert_int_equal(json_integer_value(json_object_get(tl, "bucket_s")), 10);
	pts = json_object_get(tl, "points");
	assert_int_equal(json_array_size(pts), 11);
	p = json_array_get(pts, 0);
	assert_int_equal(json_integer_value(json_object_get(p, "t")), 1000);
	assert_int_equal(json_integer_value(json_object_get(p, "calls")), 2);
	assert_int_equal(json_integer_value(json_object_get(p, "tokens_in")), 30);
	assert_true(json_real_value(json_object_get(p, "cost_usd")) == 0.75);
	assert_int_equal(json_integer_value(json_object_get(p, "items_done")), 2);
	p = json_array_get(pts, 5);
	assert_int_equal(json_integer_value(json_object_get(p, "t")), 1050);
	assert_int_equal(json_integer_value(json_object_get(p, "calls")), 0);
	p = json_array_get(pts, 9);
	assert_int_equal(json_integer_value(json_object_get(p, "calls")), 1);
	assert_int_equal(json_integer_value(json_object_get(p, "tokens_out")), 1);
	json_decref(tl);

	/* automatic: 100 s fits in 1 s buckets, 101 points */
	assert_int_equal(store_job_timeline(st, job, 0, 500, &tl), 0);
	assert_int_equal(json_integer_value(json_object_get(tl, "bucket_s")), 1);
	assert_int_equal(json_array_size(json_object_get(tl, "points")), 101);
	json_decref(tl);

	/* a long job: never more than 500 points, whatever is asked */
	exec(st, "UPDATE jobs SET updated_at = 1000 + 86400 * 30");
	assert_int_equal(store_job_timeline(st, job, 1, 500, &tl), 0);
	assert_true(json_array_size(json_object_get(tl, "points")) <= 500);
	assert_true(json_integer_value(json_object_get(tl, "bucket_s")) >= 86400 * 30 / 499);
	json_decref(tl);

	assert_int_equal(store_job_timeline(st, 999, 0, 500, &tl), -ENOENT);
	assert_null(tl);
	store_close(st);
	unlink(path);
	{
		char wal[160];

		snprintf(wal, sizeof(wal), "%s-wal", path);
		unlink(wal);
		snprintf(wal, sizeof(wal), "%s-shm", path);
		unlink(wal);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_choice),
		cmocka_unit_test(test_job_timeline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
