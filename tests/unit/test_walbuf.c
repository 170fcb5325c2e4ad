/* layers: store common */
/* The WAL write buffer (store/walbuf.c): a commit is in the file when it
 * returns, whatever the size of the transaction, seen by another
 * connection at once and kept across a kill without close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/tmpdb.h"
#include "store/calls.h"
#include "store/checkpoint.h"
#include "store/store.h"
#include "store/store_int.h"

static int fx_setup(void **state)
{
	return tmpdb_setup(state, "walbuf");
}

/* Another connection, on SQLite's default VFS, as the checkpointer and
 * any other process open it. */
static long long count_other(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	long long n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

/* n call rows with bodies of len bytes, each row its own commit when
 * per_tx is 1, else all in one transaction. */
static void insert_calls(struct store *st, int first, int n, size_t len, int per_tx)
{
	char *body = malloc(len + 1);
	char hash[65];

	assert_non_null(body);
	for (size_t i = 0; i < len; i++)
		body[i] = (char)('a' + (i * 7 + (size_t)first) % 26);
	body[len] = '\0';
	if (!per_tx)
		assert_int_equal(store_begin(st), 0);
	for (int i = first; i < first + n; i++) {
		struct store_call c = { 0 };

		snprintf(hash, sizeof(hash), "%064d", i);
		c.hash = hash;
		c.endpoint = "teacher.t";
		c.model = "m";
		c.request = body;
		c.reply = body;
		c.attempts = 1;
		assert_int_equal(store_call_insert(st, &c, NULL), 0);
	}
	if (!per_tx)
		assert_int_equal(store_commit(st), 0);
	free(body);
}

/* As the group commit runs: no sync at commit, so nothing but the buffer's
 * own writes puts the frames in the file. */
static void open_normal(const char *path, struct store **st)
{
	assert_int_equal(store_open(path, st, NULL, 0), 0);
	store_set_autocheckpoint(*st, 0);
	assert_int_equal(sqlite3_exec(store_db(*st), "PRAGMA synchronous=NORMAL", NULL, NULL, NULL),
			 SQLITE_OK);
}

static void test_commit_seen_by_another_connection(void **state)
{
	struct tmpdb *f = *state;
	struct store *st = NULL;

	open_normal(f->path, &st);
	insert_calls(st, 0, 50, 3000, 1);
	assert_int_equal(count_other(f->path, "SELECT count(*) FROM calls"), 50);
	/* About 5 MiB in one transaction: the pages spill from the cache and
	 * go out in several writes; the commit still lands whole. */
	insert_calls(st, 50, 600, 4000, 0);
	assert_int_equal(count_other(f->path, "SELECT count(*) FROM calls"), 650);
	assert_int_equal(count_other(f->path, "SELECT sum(length(request)) FROM calls WHERE id > 50"),
			 600LL * 4000);
	/* A checkpoint by another connection, then more commits after the WAL
	 * starts over. */
	{
		struct store_ckpt *ck = NULL;

		int first = -1, again = -1;

		assert_int_equal(store_ckpt_open(f->path, &ck), 0);
		/* The checkpoint sees the WAL (SQLite 3.40 on a connection that
		 * never read reports -1 and copies nothing)... */
		assert_int_equal(store_ckpt_run(ck, &first), 0);
		assert_true(first > 1000);
		insert_calls(st, 650, 30, 2000, 1);
		/* ...and, every frame copied, the next commit starts the WAL over. */
		assert_int_equal(store_ckpt_run(ck, &again), 0);
		assert_true(again > 0 && again < first);
		store_ckpt_close(ck);
	}
	assert_int_equal(count_other(f->path, "SELECT count(*) FROM calls"), 680);
	store_close(st);
	assert_int_equal(count_other(f->path, "SELECT count(*) FROM calls"), 680);
}

static void test_commit_survives_kill(void **state)
{
	struct tmpdb *f = *state;
	pid_t pid = fork();
	int status = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *st = NULL;

		open_normal(f->path, &st);
		insert_calls(st, 0, 40, 3000, 1);
		insert_calls(st, 40, 300, 4000, 0);
		store_begin(st); /* left open, as a kill mid-transaction leaves it */
		insert_calls(st, 1000, 20, 100, 1);
		_exit(0); /* no close, no checkpoint: as kill -9 */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_other(f->path, "SELECT count(*) FROM calls"), 340);
	assert_int_equal(count_other(f->path, "SELECT count(*) FROM calls WHERE length(reply) = 4000"),
			 300);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_seen_by_another_connection, fx_setup,
						tmpdb_teardown),
		cmocka_unit_test_setup_teardown(test_commit_survives_kill, fx_setup, tmpdb_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
