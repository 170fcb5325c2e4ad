/* layers: store common */
/* The group commit on the store's writer thread (store_writer_start): the
 * same contract as store_batch_flush, with apply on the writer's own
 * connection and done on the caller's thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/tmpdb.h"
#include "store/calls.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/work.h"

struct fx {
	struct tmpdb db;
	struct store *st;
	atomic_int wakes;
};

static void wake(void *ud)
{
	struct fx *f = ud;

	atomic_fetch_add(&f->wakes, 1);
}

/* Waits until wake was called n times (a hang guard of 10 s, not a pace). */
static void wakes_reach(struct fx *f, int n)
{
	struct timespec ts = { 0, 1000 * 1000 };

	for (int i = 0; i < 10000 && atomic_load(&f->wakes) < n; i++)
		nanosleep(&ts, NULL);
	assert_int_equal(atomic_load(&f->wakes), n);
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f)
		return -1;
	if (tmpdb_make(&f->db, "writer") != 0)
		return -1;
	if (store_open(f->db.path, &f->st, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	if (store_writer_start(f->st, wake, f) != 0)
		return -1;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->st);
	tmpdb_remove(&f->db);
	free(f);
	return 0;
}

static int64_t named(struct store *st, const char *name)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM datasets WHERE name = '%s'", name);
	return tmpdb_sql_int(st, sql);
}

/* A gate an apply can wait at, so the writer is busy for as long as a
 * test needs it. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool entered, open;
};

static struct gate gate_new(void)
{
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false };
	return g;
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void gate_wait_entered(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	while (!g->entered)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

struct wr {
	struct store *st;
	const char *name;
	bool fail;
	int status;
	int done_calls;
	int order;
	struct wr *requeue;   /* queued again from done */
	struct gate *gate;    /* apply waits here */
	bool orphan;          /* insert a row the deferred foreign key refuses */
	pthread_t apply_thread, done_thread;
};

static int order_counter;

static int wr_apply(struct store *st, void *ud)
{
	struct wr *w = ud;
	int64_t id;
	int rc;

	w->apply_thread = pthread_self();
	if (w->gate) {
		pthread_mutex_lock(&w->gate->mu);
		w->gate->entered = true;
		pthread_cond_broadcast(&w->gate->cv);
		while (!w->gate->open)
			pthread_cond_wait(&w->gate->cv, &w->gate->mu);
		pthread_mutex_unlock(&w->gate->mu);
	}
	if (w->orphan)
		return sqlite3_exec(store_db(st), "INSERT INTO orphans VALUES(987654)", NULL, NULL,
				    NULL) == SQLITE_OK ? 0 : -EIO;
	rc = store_dataset_create(st, w->name, "csv", &id);
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
	w->done_thread = pthread_self();
	if (w->requeue)
		assert_int_equal(store_batch_add(w->st, wr_apply, wr_done, w->requeue), 0);
}

static struct wr wr_make(struct store *st, const char *name)
{
	struct wr w;

	memset(&w, 0, sizeof(w));
	w.st = st;
	w.name = name;
	w.status = 1;
	return w;
}

/* Order of done callbacks, a failing write isolated, apply on the writer
 * and done on this thread, writes queued from done in the next batch. */
static void test_writer_batch(void **state)
{
	struct fx *f = *state;
	struct wr later = wr_make(f->st, "later");
	struct wr w[3] = { wr_make(f->st, "first"), wr_make(f->st, "failing"), wr_make(f->st, "third") };

	w[0].requeue = &later;
	w[1].fail = true;
	order_counter = 0;
	assert_int_equal(store_batch_submit(f->st), 0); /* nothing queued */
	assert_false(store_batch_busy(f->st));
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &w[i]), 0);
	assert_int_equal(store_batch_submit(f->st), 3);
	assert_true(store_batch_busy(f->st));
	assert_int_equal(store_batch_pending(f->st), 0);
	assert_int_equal(store_batch_wait(f->st), 2);
	assert_false(store_batch_busy(f->st));
	/* wake comes after the batch is marked finished (a wake before it
	 * could find nothing to reap and be lost): it may still be on its way */
	wakes_reach(f, 1);
	assert_int_equal(w[0].status, 0);
	assert_int_equal(w[1].status, -EINVAL);
	assert_int_equal(w[2].status, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(w[i].done_calls, 1);
		assert_int_equal(w[i].order, i + 1);
		assert_false(pthread_equal(w[i].apply_thread, pthread_self()));
		assert_true(pthread_equal(w[i].done_thread, pthread_self()));
	}
	/* committed, and seen by this thread's connection */
	assert_int_equal(named(f->st, "first"), 1);
	assert_int_equal(named(f->st, "failing"), 0);
	assert_int_equal(named(f->st, "third"), 1);
	/* queued from done: the next batch */
	assert_int_equal(later.done_calls, 0);
	assert_int_equal(named(f->st, "later"), 0);
	assert_int_equal(store_batch_pending(f->st), 1);
	assert_int_equal(store_batch_reap(f->st), 0); /* nothing with the writer */
	assert_int_equal(store_batch_submit(f->st), 1);
	assert_int_equal(store_batch_wait(f->st), 1);
	assert_int_equal(later.done_calls, 1);
	assert_int_equal(later.status, 0);
	assert_int_equal(named(f->st, "later"), 1);
	assert_int_equal(sqlite3_get_autocommit(store_db(f->st)), 1);
}

struct opener {
	struct gate *g;
};

static void *open_later(void *arg)
{
	struct opener *o = arg;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	gate_wait_entered(o->g);
	nanosleep(&ts, NULL); /* the loop's write below waits meanwhile */
	gate_open(o->g);
	return NULL;
}

/* While the writer is busy, new writes wait for the next batch; the
 * loop's own transaction waits for the writer's instead of -EBUSY. */
static void test_writer_busy_accumulates(void **state)
{
	struct fx *f = *state;
	struct gate g = gate_new();
	struct wr slow = wr_make(f->st, "slow");
	struct wr a = wr_make(f->st, "a"), b = wr_make(f->st, "b");
	struct opener o = { &g };
	pthread_t th;
	int64_t id;

	slow.gate = &g;
	order_counter = 0;
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &slow), 0);
	assert_int_equal(store_batch_submit(f->st), 1);
	gate_wait_entered(&g); /* the writer holds its transaction open */
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &a), 0);
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &b), 0);
	assert_int_equal(store_batch_submit(f->st), 0); /* busy: they stay queued */
	assert_int_equal(store_batch_pending(f->st), 2);
	assert_int_equal(store_batch_reap(f->st), 0);   /* not finished yet */
	assert_int_equal(slow.done_calls, 0);
	assert_int_equal(pthread_create(&th, NULL, open_later, &o), 0);
	/* a direct write on this thread's connection waits, then succeeds */
	assert_int_equal(store_dataset_create(f->st, "direct", "csv", &id), 0);
	pthread_join(th, NULL);
	assert_int_equal(store_batch_wait(f->st), 1);
	assert_int_equal(slow.status, 0);
	assert_int_equal(store_batch_submit(f->st), 2);
	assert_int_equal(store_batch_wait(f->st), 2);
	assert_int_equal(slow.order, 1);
	assert_int_equal(a.order, 2);
	assert_int_equal(b.order, 3);
	assert_int_equal(a.status, 0);
	assert_int_equal(b.status, 0);
	assert_int_equal(named(f->st, "direct"), 1);
	assert_int_equal(named(f->st, "b"), 1);
}

/* A COMMIT that fails fails every write of the batch with -EIO. */
static void test_writer_commit_fails(void **state)
{
	struct fx *f = *state;
	struct wr w[3] = { wr_make(f->st, "c1"), wr_make(f->st, "c2"), wr_make(f->st, "c3") };
	int rc;

	/* A deferred foreign key passes each statement and fails the COMMIT. */
	assert_int_equal(sqlite3_exec(store_db(f->st),
				      "CREATE TABLE orphans(ds INTEGER REFERENCES datasets(id) "
				      "DEFERRABLE INITIALLY DEFERRED)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	w[1].orphan = true;
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &w[i]), 0);
	assert_int_equal(store_batch_submit(f->st), 3);
	rc = store_batch_wait(f->st);
	assert_true(rc < 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(w[i].done_calls, 1);
		assert_int_equal(w[i].status, -EIO);
	}
	assert_int_equal(named(f->st, "c1"), 0);
	assert_int_equal(named(f->st, "c3"), 0);
	assert_int_equal(tmpdb_sql_int(f->st, "SELECT count(*) FROM orphans"), 0);
	/* the writer goes on */
	w[1].orphan = false;
	w[1].done_calls = 0;
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &w[1]), 0);
	assert_int_equal(store_batch_submit(f->st), 1);
	assert_int_equal(store_batch_wait(f->st), 1);
	assert_int_equal(w[1].status, 0);
	assert_int_equal(named(f->st, "c2"), 1);
}

/* The writer cannot begin (another process holds the lock): nothing is
 * applied, no done runs, the writes go back in front of the queue. */
static void test_writer_busy_kept(void **state)
{
	struct fx *f = *state;
	struct wr w1 = wr_make(f->st, "k1"), w2 = wr_make(f->st, "k2");
	sqlite3 *other = NULL;

	store_writer_busy_set(f->st, 50, 50);
	order_counter = 0;
	assert_int_equal(sqlite3_open(f->db.path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &w1), 0);
	assert_int_equal(store_batch_submit(f->st), 1);
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &w2), 0);
	assert_int_equal(store_batch_wait(f->st), -EBUSY);
	assert_int_equal(w1.done_calls, 0);
	assert_int_equal(store_batch_pending(f->st), 2);
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(store_batch_submit(f->st), 2);
	assert_int_equal(store_batch_wait(f->st), 2);
	assert_int_equal(w1.order, 1);
	assert_int_equal(w2.order, 2);
	assert_int_equal(w1.status, 0);
	assert_int_equal(w2.status, 0);
}

/* store_batch_flush with a writer: its batch first, then the queue here. */
static void test_writer_flush(void **state)
{
	struct fx *f = *state;
	struct wr a = wr_make(f->st, "fa"), b = wr_make(f->st, "fb");

	order_counter = 0;
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &a), 0);
	assert_int_equal(store_batch_submit(f->st), 1);
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &b), 0);
	assert_int_equal(store_batch_flush(f->st), 1);
	assert_false(store_batch_busy(f->st));
	assert_int_equal(a.order, 1);
	assert_int_equal(b.order, 2);
	assert_int_equal(named(f->st, "fa") + named(f->st, "fb"), 2);
}

/* Closing: the batch with the writer commits (its done gets its status),
 * what is still queued gets -ECANCELED. */
static void test_writer_close(void **state)
{
	struct fx *f = *state;
	struct wr a = wr_make(f->st, "committed"), b = wr_make(f->st, "cancelled");
	struct store *st;
	char err[256];

	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &a), 0);
	assert_int_equal(store_batch_submit(f->st), 1);
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &b), 0);
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(a.done_calls, 1);
	assert_int_equal(a.status, 0);
	assert_int_equal(b.done_calls, 1);
	assert_int_equal(b.status, -ECANCELED);
	assert_int_equal(store_open(f->db.path, &st, err, sizeof(err)), 0);
	assert_int_equal(named(st, "committed"), 1);
	assert_int_equal(named(st, "cancelled"), 0);
	f->st = st; /* closed by the teardown */
}

/* Stopping the writer leaves the store as it was: flushes run here. */
static void test_writer_stop_restart(void **state)
{
	struct fx *f = *state;
	struct wr a = wr_make(f->st, "s1"), b = wr_make(f->st, "s2");

	a.requeue = &b;
	assert_int_equal(store_writer_start(f->st, wake, f), -EALREADY);
	assert_int_equal(store_batch_add(f->st, wr_apply, wr_done, &a), 0);
	assert_int_equal(store_batch_submit(f->st), 1);
	store_writer_stop(f->st);
	assert_int_equal(a.status, 0);
	assert_int_equal(b.done_calls, 0); /* queued from done: stays queued */
	assert_int_equal(store_batch_submit(f->st), -EINVAL);
	assert_int_equal(store_batch_flush(f->st), 1);
	assert_int_equal(b.status, 0);
	assert_int_equal(store_writer_start(f->st, wake, f), 0);
}

static void test_writer_memory_refused(void **state)
{
	struct store *st = NULL;
	char err[256];

	(void)state;
	assert_int_equal(store_open(":memory:", &st, err, sizeof(err)), 0);
	assert_int_equal(store_writer_start(st, wake, NULL), -ENOTSUP);
	store_close(st);
}

/* A call row the writer's connection inserts is found by the loop's cache
 * lookup: both connections share the filter of stored hashes, else the
 * filter would answer "not stored" and the request would be sent again. */
static int call_apply(struct store *st, void *ud)
{
	struct store_call c = { 0 };

	(void)ud;
	c.hash = (char *)"h-writer-1";
	c.endpoint = (char *)"teacher";
	c.model = (char *)"m";
	c.request = (char *)"{}";
	c.reply = (char *)"{\"ok\":1}";
	c.status = 200;
	return store_call_insert(st, &c, NULL);
}

static void test_writer_call_found(void **state)
{
	struct fx *f = *state;
	struct store_call out;
	int n = 0;

	assert_int_equal(store_call_find(f->st, "h-writer-1", &out), -ENOENT);
	store_call_clear(&out);
	assert_int_equal(store_batch_add(f->st, call_apply, NULL, &n), 0);
	assert_int_equal(store_batch_submit(f->st), 1);
	wakes_reach(f, 1);
	assert_int_equal(store_batch_reap(f->st), 1);
	assert_int_equal(store_call_find(f->st, "h-writer-1", &out), 0);
	assert_string_equal(out.reply, "{\"ok\":1}");
	store_call_clear(&out);
}

/* store_tasks_each's cb may write directly (store/work.h). With the writer
 * committing between the scan's read and that write, a statement still
 * open would make the write fail at once with SQLITE_BUSY_SNAPSHOT. */
struct scan_wr {
	struct fx *f;
	struct wr w;
	int n, write_rc;
};

static int scan_write_cb(void *ud, int64_t seq, const char *state, int attempts,
			 const char *reason)
{
	struct scan_wr *c = ud;
	int64_t id;

	(void)seq, (void)state, (void)attempts, (void)reason;
	if (c->n++ == 0) {
		/* a writer COMMIT after the scan began */
		assert_int_equal(store_batch_add(c->f->st, wr_apply, wr_done, &c->w), 0);
		assert_int_equal(store_batch_submit(c->f->st), 1);
		wakes_reach(c->f, 1);
		assert_int_equal(store_batch_reap(c->f->st), 1);
		/* then a direct write on this (the loop's) connection */
		c->write_rc = store_dataset_create(c->f->st, "direct", "csv", &id);
	}
	return 0;
}

static void test_writer_scan_then_write(void **state)
{
	struct fx *f = *state;
	json_t *spec = json_object();
	int64_t ds, job, seqs[100];
	struct scan_wr c = { .f = f };

	c.w = wr_make(f->st, "from-writer");
	assert_int_equal(store_dataset_create(f->st, "d", "csv", &ds), 0);
	assert_int_equal(store_job_insert(f->st, "j", "stage1", ds, spec, NULL, &job), 0);
	for (int i = 0; i < 100; i++)
		seqs[i] = i;
	assert_int_equal(store_tasks_insert_pending(f->st, job, "screen", seqs, 100), 100);
	assert_int_equal(store_tasks_each(f->st, job, "screen", "pending", -1, 0, scan_write_cb, &c),
			 0);
	assert_int_equal(c.n, 100); /* every row, across chunks */
	assert_int_equal(c.w.status, 0);
	assert_int_equal(c.write_rc, 0);
	assert_int_equal(named(f->st, "direct"), 1);
	assert_int_equal(named(f->st, "from-writer"), 1);
	json_decref(spec);
}

/* store_items_get leaves no read open: the writer commits between two
 * reads, the second sees what it wrote, and a write on the loop's
 * connection right after goes through (no SQLITE_BUSY_SNAPSHOT). */
struct items_wr {
	int64_t ds;
	int status;
};

static json_t *writer_item(int64_t i)
{
	char id[32];

	snprintf(id, sizeof(id), "q%lld", (long long)i);
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "id", id, "question", "Q?", "options",
			 "A", "yes", "B", "no", "answer", "A");
}

static int items_apply(struct store *st, void *ud)
{
	struct items_wr *w = ud;
	json_t *items[3];
	int rc;

	for (int i = 0; i < 3; i++)
		items[i] = writer_item(3 + i);
	rc = store_items_insert(st, w->ds, 3, items, 3, NULL);
	for (int i = 0; i < 3; i++)
		json_decref(items[i]);
	return rc;
}

static void items_done(void *ud, int status)
{
	((struct items_wr *)ud)->status = status;
}

static void test_writer_items_get_then_write(void **state)
{
	struct fx *f = *state;
	struct items_wr w = { .status = 1 };
	json_t *items[3], *out[6];
	int64_t seqs[6] = { 0, 1, 2, 3, 4, 5 }, id;

	assert_int_equal(store_dataset_create(f->st, "d", "csv", &w.ds), 0);
	for (int i = 0; i < 3; i++)
		items[i] = writer_item(i);
	assert_int_equal(store_items_insert(f->st, w.ds, 0, items, 3, NULL), 0);
	for (int i = 0; i < 3; i++)
		json_decref(items[i]);
	assert_int_equal(store_items_get(f->st, w.ds, seqs, 6, out), 3);
	for (int i = 0; i < 6; i++)
		json_decref(out[i]);
	/* the writer's COMMIT between two reads */
	assert_int_equal(store_batch_add(f->st, items_apply, items_done, &w), 0);
	assert_int_equal(store_batch_submit(f->st), 1);
	wakes_reach(f, 1);
	assert_int_equal(store_batch_reap(f->st), 1);
	assert_int_equal(w.status, 0);
	assert_int_equal(store_items_get(f->st, w.ds, seqs, 6, out), 6);
	for (int i = 0; i < 6; i++)
		json_decref(out[i]);
	/* and a write of the loop's own right after */
	assert_int_equal(store_dataset_create(f->st, "direct", "csv", &id), 0);
	assert_int_equal(named(f->st, "direct"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writer_batch, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_busy_accumulates, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_commit_fails, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_busy_kept, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_flush, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_close, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_stop_restart, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_call_found, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_scan_then_write, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_items_get_then_write, fx_setup, fx_teardown),
		cmocka_unit_test(test_writer_memory_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
