/* layers: store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/counts.h"
#include "store/store.h"
#include "store/work.h"

/* store/counts.h: the sums read on another connection are those of the
 * snapshot pinned at open, whatever the store's own connection commits
 * after; and a dataset's count is read from its row. */

static int64_t row_n(const struct store_counts *c, const char *step, const char *state)
{
	for (int i = 0; i < c->nrows; i++)
		if (strcmp(c->rows[i].step, step) == 0 && strcmp(c->rows[i].state, state) == 0)
			return c->rows[i].n;
	return 0;
}

static void test_counts_pinned(void **state)
{
	char dir[64], path[128], err[256], p[160];
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	struct store *st = NULL;
	struct store_counts *c = NULL;
	json_t *items[5], *spec = json_pack("{s:s}", "name", "j");
	int64_t ds = 0, job = 0, seqs[5] = { 0, 1, 2, 3, 4 };
	char id[16];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/medthink-counts-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/medthink.db", dir);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_dataset_create(st, "d", "medqa", &ds), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "q%d", i);
		items[i] = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "id", id, "question", "Q?",
				     "options", "A", "yes", "B", "no", "answer", "A");
	}
	assert_int_equal(store_items_insert(st, ds, 0, items, 5, NULL), 0);
	/* importing: counted from the items */
	assert_int_equal(store_dataset_count(st, ds), 5);
	assert_int_equal(store_dataset_finish(st, ds, 5, NULL), 0);
	assert_int_equal(store_dataset_count(st, ds), 5);
	assert_int_equal(store_dataset_count(st, 4242), 0);
	assert_int_equal(store_job_insert(st, "j", "stage1", ds, spec, NULL, &job), 0);
	assert_int_equal(store_tasks_insert_pending(st, job, "explain", seqs, 5), 5);
	assert_int_equal(store_task_put(st, job, "explain", 0, STORE_TASK_DONE, 1, NULL), 0);

	assert_int_equal(store_counts_open(path, job, &c), 0);
	/* committed after the pin: not in the sums */
	assert_int_equal(store_task_put(st, job, "explain", 1, STORE_TASK_DONE, 1, NULL), 0);
	assert_int_equal(store_task_put(st, job, "explain", 2, STORE_TASK_FAILED, 1, "x"), 0);
	assert_int_equal(store_counts_run(c), 0);
	assert_int_equal(row_n(c, "explain", STORE_TASK_PENDING), 4);
	assert_int_equal(row_n(c, "explain", STORE_TASK_DONE), 1);
	assert_int_equal(row_n(c, "explain", STORE_TASK_FAILED), 0);
	assert_int_equal(c->tot.calls, 0);
	store_counts_close(c);

	/* a new pin sees them */
	assert_int_equal(store_counts_open(path, job, &c), 0);
	assert_int_equal(store_counts_run(c), 0);
	assert_int_equal(row_n(c, "explain", STORE_TASK_PENDING), 2);
	assert_int_equal(row_n(c, "explain", STORE_TASK_DONE), 2);
	assert_int_equal(row_n(c, "explain", STORE_TASK_FAILED), 1);
	store_counts_close(c);

	/* no such database: an error, never a crash */
	snprintf(p, sizeof(p), "%s/none/x.db", dir);
	assert_int_equal(store_counts_open(p, job, &c), -EIO);
	assert_non_null(c);
	assert_true(c->err[0] != '\0');
	assert_int_equal(store_counts_run(c), -EIO);
	store_counts_close(c);
	store_counts_close(NULL);

	for (int i = 0; i < 5; i++)
		json_decref(items[i]);
	json_decref(spec);
	store_close(st);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		unlink(p);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_pinned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
