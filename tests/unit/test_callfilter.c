/* layers: store common */
/* The filter of stored request hashes (store/callfilter.c) and its use in
 * front of store_call_find (store/calls.c): a stored successful call is
 * always found (fresh store, reopened store once the builder has read it,
 * another store open on the same file), a never-stored hash is -ENOENT,
 * and closing while the builder runs is clean. */
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

#include "tests/unit/tmpdb.h"
#include "store/callfilter.h"
#include "store/calls.h"
#include "store/store.h"
#include "store/store_int.h"

static int fx_setup(void **state)
{
	return tmpdb_setup(state, "cfilter");
}

static void key(char *out, const char *tag, int i)
{
	snprintf(out, 65, "%s%062d", tag, i); /* 64 characters: the length hashed */
}

static void test_filter_members(void **state)
{
	struct store_cfilter *f;
	char k[65];
	int fp = 0;

	(void)state;
	assert_int_equal(store_cfilter_create(STORE_CFILTER_MAX + 1, &f), -EINVAL);
	assert_null(f);
	assert_int_equal(store_cfilter_create(1, &f), 0);
	assert_int_equal(store_cfilter_bytes(f), 64);
	store_cfilter_free(f);
	assert_int_equal(store_cfilter_create(65000, &f), 0);
	assert_int_equal(store_cfilter_bytes(f), 65536);
	for (int i = 0; i < 20000; i++) {
		key(k, "in", i);
		assert_false(i < 100 && store_cfilter_has(f, k, 64)); /* empty so far (those) */
		store_cfilter_add(f, k, 64);
	}
	/* every key added is there */
	for (int i = 0; i < 20000; i++) {
		key(k, "in", i);
		assert_true(store_cfilter_has(f, k, 64));
	}
	/* 26 bits a key: false positives are rare (about 1 in 5000) */
	for (int i = 0; i < 20000; i++) {
		key(k, "ou", i);
		fp += store_cfilter_has(f, k, 64);
	}
	assert_true(fp < 200);
	/* the length is part of the key */
	key(k, "in", 7);
	assert_true(store_cfilter_has(f, k, 64));
	store_cfilter_free(f);
	store_cfilter_free(NULL);
}

static void put(struct store *st, const char *hash, const char *error)
{
	struct store_call c = { .hash = (char *)hash, .endpoint = "teacher.sim", .model = "m",
				.request = "{}", .reply = "{\"ok\":1}", .status = 200, .attempts = 1,
				.error = (char *)error };

	assert_int_equal(store_call_insert(st, &c, NULL), 0);
}

static int find(struct store *st, const char *hash)
{
	struct store_call row;
	int rc = store_call_find(st, hash, &row);

	if (rc == 0) {
		assert_string_equal(row.hash, hash);
		store_call_clear(&row);
	}
	return rc;
}

static void wait_ready(struct store *st)
{
	/* The builder runs at nice 10: on a loaded machine it may wait its
	 * turn for a while. 120 s is a hang guard only. */
	for (long i = 0; i < 120000 && !store_calls_filter_ready(st); i++)
		usleep(1000);
	assert_true(store_calls_filter_ready(st));
}

static void test_fresh_store(void **state)
{
	struct tmpdb *f = *state;
	struct store *st;
	char k[65];

	assert_int_equal(store_open(f->path, &st, NULL, 0), 0);
	/* no call stored: the filter holds everything from the start */
	assert_true(store_calls_filter_ready(st));
	key(k, "ok", 1);
	assert_int_equal(find(st, k), -ENOENT);
	put(st, k, NULL);
	assert_int_equal(find(st, k), 0);
	key(k, "er", 1);
	put(st, k, "HTTP 500");
	assert_int_equal(find(st, k), -ENOENT); /* a failed call is no cache entry */
	put(st, k, NULL);                       /* ... until it succeeds */
	assert_int_equal(find(st, k), 0);
	/* inside a transaction, before the commit: found on this connection */
	assert_int_equal(store_begin(st), 0);
	key(k, "tx", 1);
	put(st, k, NULL);
	assert_int_equal(find(st, k), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(find(st, k), 0);
	store_close(st);
}

static void test_reopened_store(void **state)
{
	struct tmpdb *f = *state;
	struct store *st, *other;
	char k[65];

	assert_int_equal(store_open(f->path, &st, NULL, 0), 0);
	assert_int_equal(store_begin(st), 0);
	for (int i = 0; i < 5000; i++) {
		key(k, "ok", i);
		put(st, k, i % 10 == 3 ? "timeout" : NULL);
	}
	assert_int_equal(store_commit(st), 0);
	store_close(st);

	/* stored before the open: found once the builder has read them, and
	 * found (by SQLite) before that too */
	assert_int_equal(store_open(f->path, &st, NULL, 0), 0);
	key(k, "ok", 0);
	assert_int_equal(find(st, k), 0);
	wait_ready(st);
	for (int i = 0; i < 5000; i++) {
		key(k, "ok", i);
		assert_int_equal(find(st, k), i % 10 == 3 ? -ENOENT : 0);
	}
	for (int i = 0; i < 1000; i++) {
		key(k, "no", i);
		assert_int_equal(find(st, k), -ENOENT);
	}
	/* another store on the same file shares the filter: its inserts are
	 * found here, and this one's there */
	assert_int_equal(store_open(f->path, &other, NULL, 0), 0);
	assert_true(store_calls_filter_ready(other));
	key(k, "ot", 1);
	put(other, k, NULL);
	assert_int_equal(find(st, k), 0);
	key(k, "st", 1);
	put(st, k, NULL);
	assert_int_equal(find(other, k), 0);
	store_close(other);
	key(k, "st", 2);
	put(st, k, NULL);
	assert_int_equal(find(st, k), 0);
	store_close(st);
}

static void test_close_while_building(void **state)
{
	struct tmpdb *f = *state;
	struct store *st;
	char k[65];

	assert_int_equal(store_open(f->path, &st, NULL, 0), 0);
	assert_int_equal(store_begin(st), 0);
	for (int i = 0; i < 30000; i++) {
		key(k, "ok", i);
		put(st, k, NULL);
	}
	assert_int_equal(store_commit(st), 0);
	store_close(st);
	/* closed at once, and again after a little work: the builder stops */
	for (int round = 0; round < 3; round++) {
		assert_int_equal(store_open(f->path, &st, NULL, 0), 0);
		key(k, "ok", 29999 - round);
		assert_int_equal(find(st, k), 0);
		store_close(st);
	}
	assert_int_equal(store_open(f->path, &st, NULL, 0), 0);
	wait_ready(st);
	key(k, "ok", 12345);
	assert_int_equal(find(st, k), 0);
	key(k, "ok", 30000);
	assert_int_equal(find(st, k), -ENOENT);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_members),
		cmocka_unit_test_setup_teardown(test_fresh_store, fx_setup, tmpdb_teardown),
		cmocka_unit_test_setup_teardown(test_reopened_store, fx_setup, tmpdb_teardown),
		cmocka_unit_test_setup_teardown(test_close_while_building, fx_setup, tmpdb_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
