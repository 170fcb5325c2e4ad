/* layers: store common */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/unit/tmpdb.h"
#include "store/check.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/work.h"

struct fx {
	struct tmpdb db;
	struct store *st;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f)
		return -1;
	if (tmpdb_make(&f->db, "store") != 0)
		return -1;
	if (store_open(f->db.path, &f->st, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->st);
	store_clock_set(NULL);
	tmpdb_remove(&f->db);
	free(f);
	return 0;
}

static json_t *make_item(const char *id, const char *topic, const char *q)
{
	json_t *it = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "id", id, "question", q, "options",
	                       "A", "yes", "B", "no", "answer", "A");
	if (topic)
		json_object_set_new(it, "topic", json_string(topic));
	return it;
}

/* Creates a dataset with n items "NAME-i" and finishes it. */
static int64_t make_dataset(struct store *st, const char *name, size_t n)
{
	json_t **items = calloc(n ? n : 1, sizeof(*items));
	int64_t id = 0;
	char buf[64];

	assert_non_null(items);
	assert_int_equal(store_dataset_create(st, name, "medqa", &id), 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%s-%zu", name, i);
		items[i] = make_item(buf, i % 2 ? "cardiology" : NULL, "Q?");
	}
	assert_int_equal(store_items_insert(st, id, 0, items, n, NULL), 0);
	assert_int_equal(store_dataset_finish(st, id, (int64_t)n, NULL), 0);
	for (size_t i = 0; i < n; i++)
		json_decref(items[i]);
	free(items);
	return id;
}

/* ---- open, schema, migrations ---------------------------------------- */

static void test_open_pragmas(void **state)
{
	struct fx *f = *state;
	sqlite3_stmt *s = NULL;

	assert_int_equal(tmpdb_sql_int(f->st, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(tmpdb_sql_int(f->st, "PRAGMA foreign_keys"), 1);
	assert_int_equal(tmpdb_sql_int(f->st, "PRAGMA synchronous"), 2); /* FULL */
	assert_int_equal(tmpdb_sql_int(f->st, "PRAGMA cache_size"), -16000);
	assert_int_equal(tmpdb_sql_int(f->st, "PRAGMA busy_timeout"), 0);
	assert_int_equal(sqlite3_prepare_v2(store_db(f->st), "PRAGMA journal_mode", -1, &s, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	assert_int_equal(access(f->db.path, F_OK), 0);
}

/* The embedded migrations must give store/schema.sql.txt exactly. */
static void test_schema_matches_file(void **state)
{
	struct fx *f = *state;
	static const char q[] =
		"SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') "
		"FROM sqlite_master ORDER BY name";
	sqlite3 *mem = NULL;
	sqlite3_stmt *a = NULL, *b = NULL;
	char *text = NULL;
	FILE *fp = fopen("store/schema.sql.txt", "r");
	long len;
	int ra, rb, rows = 0;

	if (!fp) {
		skip(); /* run from the repository root to check this */
		return;
	}
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	assert_int_equal(sqlite3_open(":memory:", &mem), SQLITE_OK);
	assert_int_equal(sqlite3_exec(mem, text, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(mem, q, -1, &a, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(store_db(f->st), q, -1, &b, NULL), SQLITE_OK);
	for (;;) {
		ra = sqlite3_step(a);
		rb = sqlite3_step(b);
		assert_int_equal(ra, rb);
		if (ra != SQLITE_ROW)
			break;
		assert_string_equal(sqlite3_column_text(a, 0), sqlite3_column_text(b, 0));
		rows++;
	}
	assert_true(rows >= 12);
	sqlite3_finalize(a);
	sqlite3_finalize(b);
	sqlite3_close(mem);
	free(text);
}

static void test_refuse_newer_schema(void **state)
{
	struct fx *f = *state;
	struct store *st2 = NULL;
	sqlite3 *db = NULL;
	char err[256];
	char want[400];

	store_close(f->st);
	f->st = NULL;
	assert_int_equal(sqlite3_open(f->db.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->db.path, &st2, err, sizeof(err)), -EPROTO);
	assert_null(st2);
	snprintf(want, sizeof(want),
	         "store %s has schema version 99, this medthinkd knows up to %d; upgrade medthinkd",
	         f->db.path, STORE_SCHEMA_VERSION);
	assert_string_equal(err, want);
	/* err may be NULL */
	assert_int_equal(store_open(f->db.path, &st2, NULL, 0), -EPROTO);
}

static void test_reopen_persists(void **state)
{
	struct fx *f = *state;
	int64_t ds, job;
	json_t *j, *spec = json_pack("{s:s}", "teacher", "gpt");
	char err[256];

	ds = make_dataset(f->st, "persist", 5);
	assert_int_equal(store_job_insert(f->st, "run", "pipeline", ds, spec, NULL, &job), 0);
	assert_int_equal(store_artifact_put(f->st, job, "verdict", 2, 0, spec), 0);
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(f->db.path, &f->st, err, sizeof(err)), 0);
	assert_int_equal(tmpdb_sql_int(f->st, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(store_dataset_count(f->st, ds), 5);
	j = store_job_get(f->st, job);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "queued");
	json_decref(j);
	j = store_artifact_get(f->st, job, "verdict", 2);
	assert_true(json_equal(j, spec));
	json_decref(j);
	json_decref(spec);
}

static void test_open_bad_path(void **state)
{
	struct store *st = NULL;
	char err[256];

	(void)state;
	assert_int_equal(store_open("/nonexistent-dir/x/medthink.db", &st, err, sizeof(err)), -EIO);
	assert_null(st);
	assert_non_null(strstr(err, "/nonexistent-dir/x/medthink.db"));
	assert_int_equal(store_open("", &st, err, sizeof(err)), -EINVAL);
	store_close(NULL);
}

static void test_open_not_a_database(void **state)
{
	struct fx *f = *state;
	struct store *st = NULL;
	char err[256];
	FILE *fp;

	store_close(f->st);
	f->st = NULL;
	unlink(f->db.path);
	fp = fopen(f->db.path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 100; i++)
		fputs("this is not an SQLite database, just text\n", fp);
	fclose(fp);
	assert_int_equal(store_open(f->db.path, &st, err, sizeof(err)), -EIO);
	assert_null(st);
	assert_non_null(strstr(err, f->db.path));
	assert_non_null(strstr(err, "not a database"));
}


/* ---- damaged files ------------------------------------------------------- */

static void test_open_empty_file(void **state)
{
	struct fx *f = *state;
	struct store *st = NULL;
	struct stat sb;
	char err[512];
	FILE *fp;

	store_close(f->st);
	f->st = NULL;
	unlink(f->db.path);
	fp = fopen(f->db.path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(store_open(f->db.path, &st, err, sizeof(err)), -EIO);
	assert_null(st);
	assert_non_null(strstr(err, f->db.path));
	assert_non_null(strstr(err, "empty (0 bytes)"));
	assert_non_null(strstr(err, "docs/operations.md"));
	/* Refused, and left as it was: not made into a new store. */
	assert_int_equal(stat(f->db.path, &sb), 0);
	assert_int_equal(sb.st_size, 0);
	assert_int_equal(store_file_check(f->db.path, err, sizeof(err)), -EUCLEAN);
	/* A missing file is a new store. */
	unlink(f->db.path);
	assert_int_equal(store_file_check(f->db.path, err, sizeof(err)), 0);
}

/* A store with enough items to fill a few hundred pages, closed (so its WAL
 * is checkpointed away); returns the file's size in pages of 4096. */
static long fill_and_close(struct fx *f)
{
	struct stat sb;

	make_dataset(f->st, "big", 3000);
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(stat(f->db.path, &sb), 0);
	return (long)(sb.st_size / 4096);
}

static void test_open_truncated(void **state)
{
	struct fx *f = *state;
	struct store *st = NULL;
	char err[512];
	long pages = fill_and_close(f);

	assert_true(pages > 20);
	assert_int_equal(truncate(f->db.path, (off_t)(pages / 2) * 4096), 0);
	assert_int_equal(store_open(f->db.path, &st, err, sizeof(err)), -EIO);
	assert_null(st);
	assert_non_null(strstr(err, f->db.path));
	assert_non_null(strstr(err, "cut short"));
}

static void test_check_finds_damage_mid_file(void **state)
{
	struct fx *f = *state;
	struct store_check *c = NULL;
	char err[512], first[256], junk[4096];
	long pages = fill_and_close(f);
	FILE *fp;

	/* Sound: both levels say so. */
	assert_int_equal(store_check_open(f->db.path, &c, err, sizeof(err)), 0);
	assert_int_equal(store_check_run(c, 0, first, sizeof(first), err, sizeof(err)), 0);
	assert_int_equal(store_check_run(c, 1, first, sizeof(first), err, sizeof(err)), 0);
	store_check_close(c);
	/* One page in the middle overwritten: the header and the schema are
	 * intact, so the store still opens; the page check finds it. */
	memset(junk, 0xa5, sizeof(junk));
	fp = fopen(f->db.path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (pages / 2) * 4096, SEEK_SET), 0);
	assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
	fclose(fp);
	assert_int_equal(store_open(f->db.path, &f->st, err, sizeof(err)), 0);
	assert_int_equal(store_check_open(f->db.path, &c, err, sizeof(err)), 0);
	assert_int_equal(store_check_run(c, 0, first, sizeof(first), err, sizeof(err)), -EUCLEAN);
	assert_true(first[0] != '\0');
	assert_null(strchr(first, '\n'));
	assert_non_null(strstr(err, f->db.path));
	assert_non_null(strstr(err, "is damaged: "));
	assert_non_null(strstr(err, first));
	assert_int_equal(store_check_run(c, 1, NULL, 0, err, sizeof(err)), -EUCLEAN);
	store_check_close(c);
	store_check_close(NULL);
	assert_int_equal(store_check_open("/nonexistent-dir/medthink.db", &c, err, sizeof(err)),
			 -ENOENT);
	assert_null(c);
}

/* ---- small pieces ------------------------------------------------------ */

static double fixed_clock(void) { return 1796011528.123; }

static void test_iso_time_and_clock(void **state)
{
	char buf[40];

	(void)state;
	store_iso_time(1796011528.123, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-30T04:05:28.123Z");
	store_iso_time(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	store_iso_time(59.9996, buf, sizeof(buf)); /* rounds into the next second */
	assert_string_equal(buf, "1970-01-01T00:01:00.000Z");
	assert_true(store_now() > 1.7e9);
	store_clock_set(fixed_clock);
	assert_true(store_now() == 1796011528.123);
	store_clock_set(NULL);
	assert_true(store_now() != 1796011528.123);
}

static void test_nested_transactions(void **state)
{
	struct fx *f = *state;
	int64_t a, b, c;

	assert_int_equal(store_commit(f->st), -EINVAL);
	assert_int_equal(store_rollback(f->st), -EINVAL);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_dataset_create(f->st, "outer", "csv", &a), 0);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_dataset_create(f->st, "inner", "csv", &b), 0);
	assert_int_equal(store_rollback(f->st), 0);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_dataset_create(f->st, "inner2", "csv", &c), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM datasets"), 2);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM datasets WHERE name = 'inner'"), 0);
	assert_int_equal(sqlite3_get_autocommit(store_db(f->st)), 1);

	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_dataset_create(f->st, "gone", "csv", &a), 0);
	assert_int_equal(store_rollback(f->st), 0);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM datasets"), 2);
}

/* ---- datasets and items ------------------------------------------------ */

static int collect_seq(void *ud, int64_t seq, json_t *item)
{
	json_t *arr = ud;

	assert_true(json_is_object(item));
	json_array_append_new(arr, json_integer(seq));
	return json_array_size(arr) == 3 ? 7 : 0;
}

static void test_datasets(void **state)
{
	struct fx *f = *state;
	json_t *items[6], *j, *rej, *list;
	int64_t ds, ds2, ds3, got;
	size_t n = sizeof(items) / sizeof(items[0]);
	char buf[32];

	assert_int_equal(store_dataset_create(f->st, "gastro", "medqa", &ds), 0);
	assert_int_equal(store_dataset_create(f->st, NULL, "medqa", &ds2), -EINVAL);
	for (size_t i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "q%zu", i);
		items[i] = make_item(buf, i == 1 ? "gastro" : NULL, "What?");
	}
	assert_int_equal(store_items_insert(f->st, ds, 0, items, 4, NULL), 0);
	assert_int_equal(store_items_insert(f->st, ds, 4, items + 4, 2, NULL), 0);

	/* importing: invisible */
	assert_null(store_dataset_get(f->st, ds));
	snprintf(buf, sizeof(buf), "ds_%lld", (long long)ds);
	assert_int_equal(store_dataset_resolve(f->st, buf, &got), -ENOENT);
	assert_int_equal(store_dataset_resolve(f->st, "gastro", &got), -ENOENT);
	list = store_dataset_list(f->st);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);

	rej = json_pack("[{s:i, s:s}]", "line", 9, "reason", "no question");
	assert_int_equal(store_dataset_finish(f->st, ds, 6, rej), 0);
	assert_int_equal(store_dataset_finish(f->st, ds, 6, rej), -ENOENT); /* not importing */
	j = store_dataset_get(f->st, ds);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "id")), buf);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "gastro");
	assert_string_equal(json_string_value(json_object_get(j, "format")), "medqa");
	assert_int_equal(json_integer_value(json_object_get(j, "items")), 6);
	assert_true(json_equal(json_object_get(j, "rejected"), rej));
	assert_int_equal(strlen(json_string_value(json_object_get(j, "created_at"))), 24);
	json_decref(j);
	json_decref(rej);

	assert_int_equal(store_dataset_resolve(f->st, buf, &got), 0);
	assert_int_equal(got, ds);
	snprintf(buf, sizeof(buf), "%lld", (long long)ds);
	got = 0;
	assert_int_equal(store_dataset_resolve(f->st, buf, &got), 0);
	assert_int_equal(got, ds);
	assert_int_equal(store_dataset_resolve(f->st, "gastro", &got), 0);
	assert_int_equal(got, ds);
	assert_int_equal(store_dataset_resolve(f->st, "ds_999", &got), -ENOENT);
	assert_int_equal(store_dataset_resolve(f->st, "", &got), -EINVAL);

	/* newest ready of a name wins; one still importing does not count */
	ds2 = make_dataset(f->st, "gastro", 2);
	assert_int_equal(store_dataset_create(f->st, "gastro", "medqa", &ds3), 0);
	assert_int_equal(store_dataset_resolve(f->st, "gastro", &got), 0);
	assert_int_equal(got, ds2);
	list = store_dataset_list(f->st);
	assert_int_equal(json_array_size(list), 2);
	assert_int_equal(json_array_size(json_object_get(json_array_get(list, 1), "rejected")), 0);
	json_decref(list);

	/* items */
	assert_int_equal(store_dataset_count(f->st, ds), 6);
	j = store_item_get(f->st, ds, 1);
	assert_true(json_equal(j, items[1]));
	json_decref(j);
	assert_null(store_item_get(f->st, ds, 6));
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM items WHERE topic = 'gastro'"), 1);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM items WHERE ext_id = 'q5'"), 1);
	list = json_array();
	assert_int_equal(store_items_each(f->st, ds, 1, 2, collect_seq, list), 0);
	assert_int_equal(json_array_size(list), 2);
	assert_int_equal(json_integer_value(json_array_get(list, 0)), 1);
	assert_int_equal(json_integer_value(json_array_get(list, 1)), 2);
	json_array_clear(list);
	assert_int_equal(store_items_each(f->st, ds, 0, INT64_MAX, collect_seq, list), 7);
	assert_int_equal(json_array_size(list), 3);
	json_decref(list);

	/* abort: only an importing dataset, items go with it */
	assert_int_equal(store_items_insert(f->st, ds3, 0, items, 3, NULL), 0);
	assert_int_equal(store_dataset_count(f->st, ds3), 3);
	assert_int_equal(store_dataset_abort(f->st, ds3), 0);
	assert_int_equal(store_dataset_count(f->st, ds3), 0);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM datasets WHERE state = 'importing'"), 0);
	assert_int_equal(store_dataset_abort(f->st, ds3), -ENOENT);
	assert_int_equal(store_dataset_abort(f->st, ds), -ENOENT); /* ready: kept */
	assert_int_equal(store_dataset_count(f->st, ds), 6);
	for (size_t i = 0; i < n; i++)
		json_decref(items[i]);
}

/* No statement of the connection is left stepping, and no transaction is
 * open: nothing holds a WAL read snapshot. */
static void assert_no_read_open(struct store *st)
{
	sqlite3 *db = store_db(st);

	for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s))
		assert_false(sqlite3_stmt_busy(s));
	assert_true(sqlite3_get_autocommit(db));
}

static void test_items_get(void **state)
{
	struct fx *f = *state;
	int64_t ds = make_dataset(f->st, "many", 40);
	int64_t dense[] = { 1, 2, 4, 7 }, tail[] = { 38, 39, 40 }, sparse[] = { 0, 20, 39, 1000 };
	int64_t bad[] = { 3, 3 }, one[] = { 5 }, dmg[] = { 8, 9, 10 };
	json_t *out[4], *want;

	/* dense: one range, gaps skipped */
	assert_int_equal(store_items_get(f->st, ds, dense, 4, out), 4);
	for (int i = 0; i < 4; i++) {
		want = store_item_get(f->st, ds, dense[i]);
		assert_non_null(want);
		assert_true(json_equal(out[i], want));
		json_decref(want);
		json_decref(out[i]);
	}
	assert_no_read_open(f->st);
	/* a seq past the end: NULL */
	assert_int_equal(store_items_get(f->st, ds, tail, 3, out), 2);
	assert_non_null(out[0]);
	assert_non_null(out[1]);
	assert_null(out[2]);
	json_decref(out[0]);
	json_decref(out[1]);
	/* sparse: by value */
	assert_int_equal(store_items_get(f->st, ds, sparse, 4, out), 3);
	for (int i = 0; i < 3; i++) {
		want = store_item_get(f->st, ds, sparse[i]);
		assert_true(json_equal(out[i], want));
		json_decref(want);
		json_decref(out[i]);
	}
	assert_null(out[3]);
	assert_no_read_open(f->st);
	/* another dataset's items are not this one's */
	assert_int_equal(store_items_get(f->st, ds + 1, one, 1, out), 0);
	assert_null(out[0]);
	/* arguments */
	assert_int_equal(store_items_get(f->st, ds, one, 0, out), 0);
	out[0] = json_true();
	assert_int_equal(store_items_get(f->st, ds, bad, 2, out), -EINVAL);
	assert_null(out[0]);
	assert_int_equal(store_items_get(f->st, ds, one, STORE_ITEMS_GET_MAX + 1, out), -EINVAL);
	assert_int_equal(store_items_get(f->st, ds, NULL, 1, out), -EINVAL);
	/* a damaged body: NULL, as store_item_get, the others read */
	assert_int_equal(sqlite3_exec(store_db(f->st),
				      "UPDATE items SET body = '{bad' WHERE seq = 9", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(store_items_get(f->st, ds, dmg, 3, out), 2);
	assert_non_null(out[0]);
	assert_null(out[1]);
	assert_non_null(out[2]);
	assert_null(store_item_get(f->st, ds, 9));
	json_decref(out[0]);
	json_decref(out[2]);
	assert_no_read_open(f->st);
	/* an error mid-read: every out NULL, nothing left open */
	assert_int_equal(sqlite3_exec(store_db(f->st), "DROP TABLE items", NULL, NULL, NULL),
			 SQLITE_OK);
	out[0] = out[1] = out[2] = out[3] = NULL;
	assert_true(store_items_get(f->st, ds, dense, 4, out) < 0);
	assert_true(store_items_get(f->st, ds, sparse, 4, out) < 0);
	for (int i = 0; i < 4; i++)
		assert_null(out[i]);
	assert_no_read_open(f->st);
}

static void test_items_duplicate(void **state)
{
	struct fx *f = *state;
	json_t *items[5];
	size_t dup = 99;
	int64_t ds;

	assert_int_equal(store_dataset_create(f->st, "dups", "csv", &ds), 0);
	items[0] = make_item("a", NULL, "1");
	items[1] = make_item("b", NULL, "2");
	items[2] = make_item("c", NULL, "3");
	items[3] = make_item("b", NULL, "4");
	items[4] = make_item("e", NULL, "5");
	assert_int_equal(store_items_insert(f->st, ds, 0, items, 5, &dup), -EEXIST);
	assert_int_equal(dup, 3);
	assert_int_equal(store_dataset_count(f->st, ds), 0); /* all or nothing */
	/* a duplicate of an earlier batch */
	assert_int_equal(store_items_insert(f->st, ds, 0, items, 3, &dup), 0);
	assert_int_equal(store_items_insert(f->st, ds, 3, items + 2, 1, &dup), -EEXIST);
	assert_int_equal(dup, 0);
	assert_int_equal(store_items_insert(f->st, ds, 3, items + 2, 1, NULL), -EEXIST);
	assert_int_equal(store_dataset_count(f->st, ds), 3);
	/* an item without an id */
	json_object_del(items[4], "id");
	assert_int_equal(store_items_insert(f->st, ds, 3, items + 4, 1, &dup), -EINVAL);
	/* an integer id is stored as text */
	json_object_set_new(items[4], "id", json_integer(42));
	assert_int_equal(store_items_insert(f->st, ds, 3, items + 4, 1, &dup), 0);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT seq FROM items WHERE ext_id = '42'"), 3);
	assert_int_equal(sqlite3_get_autocommit(store_db(f->st)), 1);
	for (size_t i = 0; i < 5; i++)
		json_decref(items[i]);
}

static void test_abort_stale(void **state)
{
	struct fx *f = *state;
	json_t *it = make_item("x", NULL, "q");
	int64_t a, b, ready;
	int n = -1;

	ready = make_dataset(f->st, "ok", 2);
	assert_int_equal(store_dataset_create(f->st, "crashed1", "csv", &a), 0);
	assert_int_equal(store_items_insert(f->st, a, 0, &it, 1, NULL), 0);
	assert_int_equal(store_dataset_create(f->st, "crashed2", "csv", &b), 0);
	assert_int_equal(store_dataset_abort_stale(f->st, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM datasets"), 1);
	assert_int_equal(store_dataset_count(f->st, a), 0);
	assert_int_equal(store_dataset_count(f->st, ready), 2);
	json_decref(it);
}

static void test_items_insert_speed(void **state)
{
	struct fx *f = *state;
	enum { BATCH = 1000, TOTAL = 100000 };
	json_t **items = calloc(TOTAL, sizeof(*items));
	struct timespec t0, t1;
	int64_t ds;
	char buf[32];
	double secs;

	assert_non_null(items);
	for (size_t i = 0; i < TOTAL; i++) {
		snprintf(buf, sizeof(buf), "item-%zu", i);
		items[i] = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s, s:s}", "id", buf,
		                     "question",
		                     "A 45-year-old man presents with epigastric pain radiating to "
		                     "the back after a heavy meal. Which enzyme is most specific?",
		                     "options", "A", "Amylase", "B", "Lipase", "C", "ALT", "D", "AST",
		                     "answer", "B", "topic", "gastroenterology");
	}
	assert_int_equal(store_dataset_create(f->st, "big", "medqa", &ds), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < TOTAL; i += BATCH)
		assert_int_equal(store_items_insert(f->st, ds, (int64_t)i, items + i, BATCH, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("store_items_insert: %d items in batches of %d: %.3f s, %.0f items/s\n", TOTAL, BATCH,
	       secs, TOTAL / secs);
	assert_int_equal(store_dataset_count(f->st, ds), TOTAL);
	for (size_t i = 0; i < TOTAL; i++)
		json_decref(items[i]);
	free(items);
}

/* ---- jobs and events --------------------------------------------------- */

static void test_jobs(void **state)
{
	struct fx *f = *state;
	json_t *spec = json_pack("{s:s, s:s, s:f}", "name", "run1", "teacher", "gpt", "budget_usd", 2.5);
	json_t *prompts = json_pack("{s:s}", "screen", "### Task: screen");
	json_t *j, *rt, *list;
	int64_t ds, j1, j2, j3, got;
	char buf[32];

	store_clock_set(fixed_clock);
	ds = make_dataset(f->st, "d", 1);
	assert_int_equal(store_job_insert(f->st, "run1", "pipeline", ds, spec, prompts, &j1), 0);
	assert_int_equal(store_job_insert(f->st, "run1", "eval", ds, spec, NULL, &j2), 0);
	assert_int_equal(store_job_insert(f->st, "other", "stage1", ds, spec, NULL, &j3), 0);
	assert_int_equal(store_job_insert(f->st, "bad", "stage1", 9999, spec, NULL, &got), -ENOENT);
	assert_int_equal(store_job_insert(f->st, "bad", "stage1", ds, NULL, NULL, &got), -EINVAL);

	j = store_job_get(f->st, j1);
	assert_non_null(j);
	snprintf(buf, sizeof(buf), "job_%lld", (long long)j1);
	assert_string_equal(json_string_value(json_object_get(j, "id")), buf);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "run1");
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "pipeline");
	snprintf(buf, sizeof(buf), "ds_%lld", (long long)ds);
	assert_string_equal(json_string_value(json_object_get(j, "dataset")), buf);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "queued");
	assert_null(json_object_get(j, "reason"));
	assert_true(json_equal(json_object_get(j, "spec"), spec));
	assert_int_equal(json_object_size(json_object_get(j, "runtime")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "created_at")),
	                    "2026-11-30T04:05:28.123Z");
	assert_string_equal(json_string_value(json_object_get(j, "updated_at")),
	                    "2026-11-30T04:05:28.123Z");
	json_decref(j);
	assert_null(store_job_get(f->st, 4242));

	j = store_job_prompts(f->st, j1);
	assert_true(json_equal(j, prompts));
	json_decref(j);
	j = store_job_prompts(f->st, j2);
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);

	/* state and reason */
	store_clock_set(NULL);
	assert_int_equal(store_job_set_state(f->st, j1, "paused", "awaiting retrain"), 0);
	j = store_job_get(f->st, j1);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "paused");
	assert_string_equal(json_string_value(json_object_get(j, "reason")), "awaiting retrain");
	assert_string_not_equal(json_string_value(json_object_get(j, "updated_at")),
	                        "2026-11-30T04:05:28.123Z");
	json_decref(j);
	assert_int_equal(store_job_set_state(f->st, j1, "running", NULL), 0);
	j = store_job_get(f->st, j1);
	assert_null(json_object_get(j, "reason"));
	json_decref(j);
	assert_int_equal(store_job_set_state(f->st, j1, "sleeping", NULL), -EINVAL);
	assert_int_equal(store_job_set_state(f->st, 4242, "done", NULL), -ENOENT);
	assert_int_equal(store_job_set_state(f->st, j2, "done", NULL), 0);

	/* runtime merges */
	rt = json_pack("{s:s, s:i}", "phase", "screen", "spent", 1);
	assert_int_equal(store_job_set_runtime(f->st, j1, rt), 0);
	json_decref(rt);
	rt = json_pack("{s:i, s:{s:f}}", "spent", 2, "eval", "accuracy", 0.5);
	assert_int_equal(store_job_set_runtime(f->st, j1, rt), 0);
	json_decref(rt);
	assert_int_equal(store_job_set_runtime(f->st, 4242, spec), -ENOENT);
	assert_int_equal(store_job_set_runtime(f->st, j1, json_array_get(spec, 0)), -EINVAL);
	assert_int_equal(sqlite3_get_autocommit(store_db(f->st)), 1);
	j = store_job_get(f->st, j1);
	rt = json_object_get(j, "runtime");
	assert_string_equal(json_string_value(json_object_get(rt, "phase")), "screen");
	assert_int_equal(json_integer_value(json_object_get(rt, "spent")), 2);
	assert_true(json_real_value(json_object_get(json_object_get(rt, "eval"), "accuracy")) == 0.5);
	json_decref(j);

	/* resolve */
	snprintf(buf, sizeof(buf), "job_%lld", (long long)j2);
	assert_int_equal(store_job_resolve(f->st, buf, &got), 0);
	assert_int_equal(got, j2);
	snprintf(buf, sizeof(buf), "%lld", (long long)j3);
	assert_int_equal(store_job_resolve(f->st, buf, &got), 0);
	assert_int_equal(got, j3);
	assert_int_equal(store_job_resolve(f->st, "run1", &got), 0);
	assert_int_equal(got, j2);
	assert_int_equal(store_job_resolve(f->st, "nope", &got), -ENOENT);
	assert_int_equal(store_job_resolve(f->st, "job_77", &got), -ENOENT);

	/* list and unfinished */
	list = store_job_list(f->st);
	assert_int_equal(json_array_size(list), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "name")),
	                    "other");
	json_decref(list);
	list = store_job_unfinished(f->st);
	assert_int_equal(json_array_size(list), 2);
	assert_int_equal(json_integer_value(json_array_get(list, 0)), j1);
	assert_int_equal(json_integer_value(json_array_get(list, 1)), j3);
	json_decref(list);

	json_decref(spec);
	json_decref(prompts);
}

static void test_events(void **state)
{
	struct fx *f = *state;
	json_t *spec = json_object(), *d, *evs;
	int64_t ds, job, e1, e2, e3;

	ds = make_dataset(f->st, "d", 1);
	assert_int_equal(store_job_insert(f->st, "j", "eval", ds, spec, NULL, &job), 0);
	d = json_pack("{s:s}", "state", "running");
	assert_int_equal(store_event_add(f->st, job, "state", d, &e1), 0);
	assert_int_equal(store_event_add(f->st, job, "progress", NULL, &e2), 0);
	assert_int_equal(store_event_add(f->st, job, "progress", d, &e3), 0);
	assert_int_equal(store_event_add(f->st, 777, "progress", d, NULL), -ENOENT);
	assert_int_equal(store_event_add(f->st, job, NULL, d, NULL), -EINVAL);
	assert_true(e1 < e2 && e2 < e3);

	evs = store_events_since(f->st, job, 0, 0);
	assert_int_equal(json_array_size(evs), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(evs, 0), "id")), e1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 0), "type")),
	                    "state");
	assert_true(json_equal(json_object_get(json_array_get(evs, 0), "data"), d));
	assert_int_equal(json_object_size(json_object_get(json_array_get(evs, 1), "data")), 0);
	assert_non_null(json_object_get(json_array_get(evs, 0), "at"));
	json_decref(evs);
	evs = store_events_since(f->st, job, e1, 1);
	assert_int_equal(json_array_size(evs), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(evs, 0), "id")), e2);
	json_decref(evs);
	evs = store_events_since(f->st, job, e3, 10);
	assert_int_equal(json_array_size(evs), 0);
	json_decref(evs);
	json_decref(d);
	json_decref(spec);
}

/* ---- group commit ------------------------------------------------------ */

struct wr {
	struct store *st;
	const char *name;
	bool fail;
	int status;
	int done_calls;
	int order;
	struct wr *requeue; /* queued again from done */
};

static int order_counter;

static int wr_apply(struct store *st, void *ud)
{
	struct wr *w = ud;
	int64_t id;
	int rc = store_dataset_create(st, w->name, "csv", &id);

	if (rc < 0)
		return rc;
	return w->fail ? -EINVAL : 0;
}

static void wr_done(void *ud, int status)
{
	struct wr *w = ud;

	w->status = status;
	w->done_calls++;
	w->order = ++order_counter;
	if (w->requeue)
		assert_int_equal(store_batch_add(w->st, wr_apply, wr_done, w->requeue), 0);
}

static void test_batch(void **state)
{
	struct fx *f = *state;
	struct wr later = { f->st, "later", false, 1, 0, 0, NULL };
	struct wr w[3] = {
		{ f->st, "first", false, 1, 0, 0, &later },
		{ f->st, "failing", true, 1, 0, 0, NULL },
		{ f->st, "third", false, 1, 0, 0, NULL },
	};

	assert_int_equal(store_batch_flush(f->st), 0); /* empty */
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &w[i]), 0);
	assert_int_equal(store_batch_add(f->st, NULL, wr_done, &w[0]), -EINVAL);
	assert_int_equal(store_batch_pending(f->st), 3);
	assert_int_equal(store_batch_flush(f->st), 2);
	assert_int_equal(w[0].status, 0);
	assert_int_equal(w[1].status, -EINVAL);
	assert_int_equal(w[2].status, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(w[i].done_calls, 1);
		assert_int_equal(w[i].order, i + 1);
	}
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM datasets WHERE name = 'first'"), 1);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM datasets WHERE name = 'failing'"), 0);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM datasets WHERE name = 'third'"), 1);
	/* queued from done: not run in the same flush */
	assert_int_equal(later.done_calls, 0);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM datasets WHERE name = 'later'"), 0);
	assert_int_equal(store_batch_pending(f->st), 1);
	assert_int_equal(store_batch_flush(f->st), 1);
	assert_int_equal(later.done_calls, 1);
	assert_int_equal(later.status, 0);
	assert_int_equal(store_batch_pending(f->st), 0);
	assert_int_equal(sqlite3_get_autocommit(store_db(f->st)), 1);

	/* not inside an open transaction */
	assert_int_equal(store_batch_add(f->st, wr_apply, NULL, &w[2]), 0);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_batch_flush(f->st), -EINVAL);
	assert_int_equal(store_rollback(f->st), 0);
	assert_int_equal(store_batch_flush(f->st), 1);
}

static void test_batch_busy(void **state)
{
	struct fx *f = *state;
	struct wr w = { f->st, "blocked", false, 1, 0, 0, NULL };
	sqlite3 *other = NULL;
	struct timespec t0, t1;

	assert_int_equal(sqlite3_open(f->db.path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &w), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(store_batch_flush(f->st), -EBUSY);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 1); /* no busy_timeout sleep */
	assert_int_equal(w.done_calls, 0);
	assert_int_equal(store_batch_pending(f->st), 1);
	assert_int_equal(store_begin(f->st), -EBUSY);
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(store_batch_flush(f->st), 1);
	assert_int_equal(w.done_calls, 1);
	assert_int_equal(w.status, 0);
}

static void test_batch_close_cancels(void **state)
{
	struct fx *f = *state;
	struct wr w = { f->st, "never", false, 1, 0, 0, NULL };

	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &w), 0);
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(w.done_calls, 1);
	assert_int_equal(w.status, -ECANCELED);
}

/* ---- tasks and artifacts ----------------------------------------------- */

struct seen {
	int64_t seqs[64];
	char states[64][16];
	int attempts[64];
	int n;
	int stop_at;
};

static int task_cb(void *ud, int64_t seq, const char *state, int attempts, const char *reason)
{
	struct seen *s = ud;

	(void)reason;
	s->seqs[s->n] = seq;
	snprintf(s->states[s->n], sizeof(s->states[0]), "%s", state);
	s->attempts[s->n] = attempts;
	s->n++;
	return s->stop_at && s->n == s->stop_at ? 5 : 0;
}

static int task_cb_noop(void *ud, int64_t seq, const char *state, int attempts,
			const char *reason)
{
	(void)ud, (void)seq, (void)state, (void)attempts, (void)reason;
	return 0;
}

static int art_cb(void *ud, int64_t seq, json_t *content)
{
	struct seen *s = ud;

	assert_non_null(content);
	s->seqs[s->n++] = seq;
	return 0;
}

static void test_work(void **state)
{
	struct fx *f = *state;
	json_t *spec = json_object(), *counts, *c, *a;
	int64_t seqs[10], ds, job;
	struct seen s;

	ds = make_dataset(f->st, "w", 10);
	assert_int_equal(store_job_insert(f->st, "j", "stage1", ds, spec, NULL, &job), 0);
	for (int i = 0; i < 10; i++)
		seqs[i] = 9 - i;
	assert_int_equal(store_tasks_insert_pending(f->st, job, "screen", seqs, 10), 10);
	assert_int_equal(store_tasks_insert_pending(f->st, job, "explain", seqs, 3), 3);
	assert_int_equal(store_task_put(f->st, job, "screen", 4, "done", 1, NULL), 0);
	assert_int_equal(store_task_put(f->st, job, "screen", 5, "failed", 3, "HTTP 500"), 0);
	assert_int_equal(store_task_put(f->st, job, "screen", 6, "dropped", 1, "off-topic"), 0);
	assert_int_equal(store_task_put(f->st, job, "screen", 6, "in_flight", 1, NULL), -EINVAL);
	assert_int_equal(store_task_put(f->st, 999, "screen", 6, "done", 1, NULL), -ENOENT);
	/* insert_pending leaves existing tasks alone */
	assert_int_equal(store_tasks_insert_pending(f->st, job, "screen", seqs, 10), 0); /* all there */

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_tasks_each(f->st, job, "screen", NULL, -1, 0, task_cb, &s), 0);
	assert_int_equal(s.n, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(s.seqs[i], i);
	assert_string_equal(s.states[4], "done");
	assert_string_equal(s.states[5], "failed");
	assert_int_equal(s.attempts[5], 3);
	assert_string_equal(s.states[0], "pending");

	/* paging and filtering */
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_tasks_each(f->st, job, "screen", NULL, 2, 3, task_cb, &s), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.seqs[0], 3);
	assert_int_equal(s.seqs[2], 5);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_tasks_each(f->st, job, "screen", "pending", 3, 0, task_cb, &s), 0);
	assert_int_equal(s.n, 3); /* 7 8 9 */
	assert_int_equal(s.seqs[0], 7);
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(store_tasks_each(f->st, job, "screen", "pending", -1, 0, task_cb, &s), 5);
	assert_int_equal(s.n, 2);

	counts = store_task_counts(f->st, job);
	assert_non_null(counts);
	c = json_object_get(counts, "screen");
	assert_int_equal(json_integer_value(json_object_get(c, "pending")), 7);
	assert_int_equal(json_integer_value(json_object_get(c, "done")), 1);
	assert_int_equal(json_integer_value(json_object_get(c, "failed")), 1);
	assert_int_equal(json_integer_value(json_object_get(c, "dropped")), 1);
	c = json_object_get(counts, "explain");
	assert_int_equal(json_integer_value(json_object_get(c, "pending")), 3);
	assert_non_null(json_object_get(c, "dropped"));
	assert_int_equal(json_integer_value(json_object_get(c, "dropped")), 0);
	json_decref(counts);
	counts = store_task_counts(f->st, 999);
	assert_int_equal(json_object_size(counts), 0);
	json_decref(counts);

	/* artifacts */
	a = json_pack("{s:b, s:s, s:i}", "keep", 1, "reason", "fine", "quality", 4);
	assert_int_equal(store_artifact_put(f->st, job, "verdict", 3, 0, a), 0);
	assert_int_equal(store_artifact_put(f->st, job, "verdict", 1, 0, a), 0);
	assert_int_equal(store_artifact_put(f->st, job, "explanation", 1, 0, json_object_get(a, "reason")),
	                 0);
	assert_int_equal(store_artifact_put(f->st, job, "verdict", 2, 12345, a), -ENOENT); /* no call */
	c = store_artifact_get(f->st, job, "verdict", 3);
	assert_true(json_equal(c, a));
	json_decref(c);
	c = store_artifact_get(f->st, job, "explanation", 1);
	assert_string_equal(json_string_value(c), "fine");
	json_decref(c);
	assert_null(store_artifact_get(f->st, job, "verdict", 2));
	json_object_set_new(a, "keep", json_false());
	assert_int_equal(store_artifact_put(f->st, job, "verdict", 3, 0, a), 0); /* replace */
	c = store_artifact_get(f->st, job, "verdict", 3);
	assert_true(json_is_false(json_object_get(c, "keep")));
	json_decref(c);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_artifacts_each(f->st, job, "verdict", -1, 0, art_cb, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.seqs[0], 1);
	assert_int_equal(s.seqs[1], 3);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_artifacts_each(f->st, job, "verdict", 1, 1, art_cb, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.seqs[0], 3);
	json_decref(a);
	json_decref(spec);
}

/* Paging through many tasks stays fast and correct. */
struct pager {
	int64_t last;
	int64_t n;
};

static int page_cb(void *ud, int64_t seq, const char *state, int attempts, const char *reason)
{
	struct pager *p = ud;

	(void)state;
	(void)attempts;
	(void)reason;
	assert_true(seq > p->last);
	p->last = seq;
	p->n++;
	return 0;
}

static void test_work_paging(void **state)
{
	struct fx *f = *state;
	enum { N = 20000 };
	int64_t *seqs = malloc(N * sizeof(*seqs));
	json_t *spec = json_object(), *counts;
	struct pager p = { -1, 0 };
	int64_t ds, job, prev;

	assert_non_null(seqs);
	ds = make_dataset(f->st, "p", 1);
	assert_int_equal(store_job_insert(f->st, "j", "stage1", ds, spec, NULL, &job), 0);
	for (int i = 0; i < N; i++)
		seqs[i] = i;
	assert_int_equal(store_tasks_insert_pending(f->st, job, "answer", seqs, N), N);
	for (int i = 0; i < N; i += 2)
		assert_int_equal(store_task_put(f->st, job, "answer", i, "done", 1, NULL), 0);
	do {
		prev = p.n;
		assert_int_equal(store_tasks_each(f->st, job, "answer", "pending", p.last, 1000, page_cb, &p),
		                 0);
	} while (p.n > prev);
	assert_int_equal(p.n, N / 2);
	counts = store_task_counts(f->st, job);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(counts, "answer"), "done")),
	                 N / 2);
	json_decref(counts);
	json_decref(spec);
	free(seqs);
}

/* store_tasks_each in a state: the seqs by tasks_state, then the rows by a
 * range (dense seqs) or by the lookup query (sparse): the same rows either
 * way, and no read open while cb runs nor after, errors included. */
struct pend {
	struct store *st;
	int64_t seqs[300];
	int attempts[300];
	char reasons[300][16];
	int n;
};

static int pend_cb(void *ud, int64_t seq, const char *state, int attempts, const char *reason)
{
	struct pend *p = ud;

	assert_no_read_open(p->st);
	assert_string_equal(state, "pending");
	assert_true(p->n < 300);
	p->seqs[p->n] = seq;
	p->attempts[p->n] = attempts;
	snprintf(p->reasons[p->n], sizeof(p->reasons[0]), "%s", reason ? reason : "-");
	p->n++;
	return 0;
}

static void test_tasks_state_paths(void **state)
{
	struct fx *f = *state;
	json_t *spec = json_object();
	int64_t ds = make_dataset(f->st, "d", 1), job, seqs[1000];
	struct pend p = { .st = f->st };
	char why[16];
	int k = 0;

	assert_int_equal(store_job_insert(f->st, "j", "stage1", ds, spec, NULL, &job), 0);
	for (int i = 0; i < 1000; i++)
		seqs[i] = i;
	assert_int_equal(store_tasks_insert_pending(f->st, job, "explain", seqs, 1000), 1000);
	/* 0..299: every third done (dense: a range, done rows skipped); one
	 * re-asked with its reason */
	for (int i = 0; i < 300; i += 3)
		assert_int_equal(store_task_put(f->st, job, "explain", i, "done", 1, NULL), 0);
	assert_int_equal(store_task_put(f->st, job, "explain", 7, "pending", 2, "cut"), 0);
	/* 300..999: only every 50th still pending (sparse) */
	for (int i = 300; i < 1000; i++)
		if (i % 50)
			assert_int_equal(store_task_put(f->st, job, "explain", i, "done", 1, NULL),
					 0);
	assert_int_equal(store_tasks_each(f->st, job, "explain", "pending", -1, 0, pend_cb, &p), 0);
	for (int i = 0; i < 1000; i++) {
		if (i < 300 ? i % 3 == 0 : i % 50 != 0)
			continue;
		assert_true(k < p.n);
		assert_int_equal(p.seqs[k], i);
		assert_int_equal(p.attempts[k], i == 7 ? 2 : 0);
		snprintf(why, sizeof(why), "%s", i == 7 ? "cut" : "-");
		assert_string_equal(p.reasons[k], why);
		k++;
	}
	assert_int_equal(p.n, k);
	assert_no_read_open(f->st);
	/* paged, both paths: the same rows */
	p.n = 0;
	for (int64_t after = -1;;) {
		int before = p.n;

		assert_int_equal(store_tasks_each(f->st, job, "explain", "pending", after, 7, pend_cb,
						  &p), 0);
		if (p.n == before)
			break;
		after = p.seqs[p.n - 1];
	}
	assert_int_equal(p.n, k);
	/* inside a transaction of the caller's: read in it, left open */
	p.n = 0;
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_tasks_each(f->st, job, "explain", "pending", 100, 5, task_cb_noop,
					  NULL), 0);
	assert_false(sqlite3_get_autocommit(store_db(f->st)));
	assert_int_equal(store_commit(f->st), 0);
	/* seeding by statements of many rows: counts of what was added */
	{
		int64_t job2, many[2500];
		char q[160];

		assert_int_equal(store_job_insert(f->st, "j2", "stage1", ds, spec, NULL, &job2), 0);
		for (int i = 0; i < 2500; i++)
			many[i] = 3 * (int64_t)i;
		assert_int_equal(store_tasks_insert_pending(f->st, job2, "explain", many + 100, 2400),
				 2400);
		assert_int_equal(store_tasks_insert_pending(f->st, job2, "explain", many, 2500), 100);
		assert_int_equal(store_tasks_insert_pending(f->st, job2, "explain", many, 2500), 0);
		snprintf(q, sizeof(q), "SELECT sum(item_seq) FROM tasks WHERE job_id = %lld",
			 (long long)job2);
		assert_int_equal(tmpdb_sql_int(f->st, q), 3 * (2499LL * 2500 / 2));
		snprintf(q, sizeof(q), "SELECT count(*) FROM tasks WHERE job_id = %lld AND "
			 "state = 'pending' AND attempts = 0 AND reason IS NULL AND "
			 "typeof(item_seq) = 'integer'", (long long)job2);
		assert_int_equal(tmpdb_sql_int(f->st, q), 2500);
	}
	{
		int64_t v[] = { 0, 7, -12, 1234567890123LL, INT64_MAX, INT64_MIN };
		char *t = store_seqs_json(v, 6);

		assert_string_equal(t, "[0,7,-12,1234567890123,9223372036854775807,"
				       "-9223372036854775808]");
		free(t);
		t = store_seqs_json(v, 0);
		assert_string_equal(t, "[]");
		free(t);
	}
	/* an error: nothing left open */
	assert_int_equal(sqlite3_exec(store_db(f->st), "DROP INDEX tasks_state", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_true(store_tasks_each(f->st, job, "explain", "pending", -1, 0, pend_cb, &p) < 0);
	assert_no_read_open(f->st);
	json_decref(spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_pragmas, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_schema_matches_file, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_newer_schema, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reopen_persists, fx_setup, fx_teardown),
		cmocka_unit_test(test_open_bad_path),
		cmocka_unit_test_setup_teardown(test_open_not_a_database, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_empty_file, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_truncated, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_check_finds_damage_mid_file, fx_setup, fx_teardown),
		cmocka_unit_test(test_iso_time_and_clock),
		cmocka_unit_test_setup_teardown(test_nested_transactions, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_datasets, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_items_get, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_items_duplicate, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_abort_stale, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_items_insert_speed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_jobs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_events, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_batch, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_batch_busy, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_batch_close_cancels, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_work, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_work_paging, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_tasks_state_paths, fx_setup, fx_teardown),
	};

	log_set_level(LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
