/* The calls table over prepared statements. */
#include "store/calls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "store/callfilter.h"
#include "store/store.h"
#include "store/store_int.h"

/* ---- the filter of stored request hashes ---------------------------------
 *
 * store_call_find is asked once per dispatched request, and a new job's
 * requests are all new: each lookup was a random probe into calls_hash,
 * whose leaf pages (64-char keys, ~75 bytes an entry) outgrow the page
 * cache at a few hundred thousand calls, so most probes read a page from
 * the WAL or the file. The filter answers "not stored" without SQLite.
 *
 * It must hold every hash of a row with error NULL that the lookup could
 * see: rows stored before the open are read by a builder thread on a
 * read-only connection of its own (the filter is only consulted once it
 * has read them all); rows inserted afterwards are added by
 * store_call_insert before they are written. One filter per database file
 * in the process (by device and inode), shared by every struct store open
 * on it, so a second connection's inserts reach the first's lookups. No
 * other process writes calls while the daemon runs (common/pidlock.h). */

#define CF_BYTES_MIN ((size_t)1 << 20)  /* ~8 bits a key for 1M calls */
#define CF_BYTES_MAX ((size_t)16 << 20) /* past ~16M stored calls it only thins out */
#define CF_STOP_EVERY 4096              /* rows between looks at the stop flag */

struct store_calls_filter {
	struct store_calls_filter *next;
	bool shared; /* in cf_list (the file could be stat'ed) */
	pid_t pid;   /* a child forked without exec neither shares nor joins it */
	dev_t dev;
	ino_t ino;
	int refs;
	struct store_cfilter *f;
	char *path;
	pthread_t th;
	bool th_on;
	atomic_bool ready; /* every row stored before the open is in f */
	atomic_bool stop;
};

static pthread_mutex_t cf_mu = PTHREAD_MUTEX_INITIALIZER;
static struct store_calls_filter *cf_list;

static void cf_free(struct store_calls_filter *cf)
{
	if (!cf)
		return;
	if (cf->th_on && cf->pid == getpid()) {
		atomic_store(&cf->stop, true);
		pthread_join(cf->th, NULL);
	}
	store_cfilter_free(cf->f);
	free(cf->path);
	free(cf);
}

static void *cf_build(void *arg)
{
	static const char sql[] = "SELECT hash FROM calls INDEXED BY calls_hash WHERE error IS NULL";
	struct store_calls_filter *cf = arg;
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	long n = 0;
	int rc;

	/* A restarted daemon's loop resumes its jobs meanwhile (asking SQLite):
	 * on a small machine this yields the core to it, as checkpoints do. */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	rc = sqlite3_open_v2(cf->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		/* A worker thread may wait for a lock; the loop thread never does. */
		sqlite3_busy_timeout(db, 2000);
		/* One pass over the index: a page is read once. */
		rc = sqlite3_exec(db, "PRAGMA cache_size=-256", NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(s, 0);

		if (!h) {
			rc = SQLITE_NOMEM;
			break;
		}
		store_cfilter_add(cf->f, h, (size_t)sqlite3_column_bytes(s, 0));
		rc = SQLITE_OK;
		if (++n % CF_STOP_EVERY == 0 && atomic_load(&cf->stop))
			rc = SQLITE_INTERRUPT;
	}
	if (rc == SQLITE_DONE)
		atomic_store_explicit(&cf->ready, true, memory_order_release);
	else if (rc != SQLITE_INTERRUPT)
		log_warn("store %s: reading the stored calls' hashes: %s; every cache lookup asks "
			 "the database", cf->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return NULL;
}

/* A new filter for the database on db (path): ready at once when no call
 * is stored, else filled by a builder thread. NULL when out of memory. */
static struct store_calls_filter *cf_new(sqlite3 *db, const char *path)
{
	struct store_calls_filter *cf = calloc(1, sizeof(*cf));
	sqlite3_stmt *s = NULL;
	sqlite3_int64 rows = -1;
	size_t bytes;

	if (!cf)
		return NULL;
	/* The largest id bounds the row count and costs one descent. */
	if (sqlite3_prepare_v2(db, "SELECT max(id) FROM calls", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		rows = sqlite3_column_type(s, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	/* A byte a stored call, and room for a 1M-call job more. */
	bytes = CF_BYTES_MIN;
	if (rows > 0)
		bytes = (sqlite3_uint64)rows >= CF_BYTES_MAX - CF_BYTES_MIN ? CF_BYTES_MAX
									 : (size_t)rows + CF_BYTES_MIN;
	cf->refs = 1;
	cf->pid = getpid();
	atomic_init(&cf->ready, false);
	atomic_init(&cf->stop, false);
	if (store_cfilter_create(bytes, &cf->f) < 0 || !(cf->path = strdup(path))) {
		cf_free(cf);
		return NULL;
	}
	if (rows == 0)
		atomic_store(&cf->ready, true);
	else if (rows > 0 && pthread_create(&cf->th, NULL, cf_build, cf) == 0)
		cf->th_on = true;
	/* rows < 0 or no thread: never ready; every lookup asks SQLite. */
	return cf;
}

struct store_calls_filter *store_calls_filter_open(sqlite3 *db, const char *path)
{
	struct store_calls_filter *cf;
	struct stat sb;

	if (stat(path, &sb) != 0) /* not a file (":memory:"): a filter of its own */
		return cf_new(db, path);
	pthread_mutex_lock(&cf_mu);
	for (cf = cf_list; cf; cf = cf->next)
		if (cf->dev == sb.st_dev && cf->ino == sb.st_ino && cf->pid == getpid())
			break;
	if (cf) {
		cf->refs++;
	} else if ((cf = cf_new(db, path)) != NULL) {
		cf->shared = true;
		cf->dev = sb.st_dev;
		cf->ino = sb.st_ino;
		cf->next = cf_list;
		cf_list = cf;
	}
	pthread_mutex_unlock(&cf_mu);
	return cf;
}

void store_calls_filter_close(struct store_calls_filter *cf)
{
	if (!cf)
		return;
	if (cf->shared) {
		pthread_mutex_lock(&cf_mu);
		if (--cf->refs > 0) {
			pthread_mutex_unlock(&cf_mu);
			return;
		}
		for (struct store_calls_filter **pp = &cf_list; *pp; pp = &(*pp)->next)
			if (*pp == cf) {
				*pp = cf->next;
				break;
			}
		pthread_mutex_unlock(&cf_mu);
	}
	cf_free(cf);
}

bool store_calls_filter_ready(struct store *st)
{
	struct store_calls_filter *cf = store_calls_filter(st);

	return cf && atomic_load_explicit(&cf->ready, memory_order_acquire);
}

/* ---- rows ---------------------------------------------------------------- */

int store_call_insert(struct store *st, const struct store_call *c, int64_t *id)
{
	static const char sql[] =
		"INSERT INTO calls(hash, job_id, endpoint, model, request, reply, status, attempts, "
		"latency_ms, tokens_in, tokens_out, cost_usd, error, created_at) "
		"VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)";
	struct store_calls_filter *cf;
	sqlite3_stmt *s;
	int rc;

	if (!c || !c->hash || !c->endpoint || !c->model || !c->request)
		return -EINVAL;
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	/* Before the row can be seen: a lookup that finds the row finds the key. */
	cf = store_calls_filter(st);
	if (cf && !c->error)
		store_cfilter_add(cf->f, c->hash, strlen(c->hash));
	rc = store_bind(st, s, "tIttttiidiidtd", c->hash, c->job_id, c->endpoint, c->model,
			c->request, c->reply, (int64_t)c->status, (int64_t)c->attempts, c->latency_ms,
			c->tokens_in, c->tokens_out, c->cost_usd, c->error,
			c->created_at > 0 ? c->created_at : store_now());
	if (rc == 0)
		rc = store_step_done(st, s, "inserting a call");
	if (rc == 0 && id)
		*id = sqlite3_last_insert_rowid(store_db(st));
	sqlite3_clear_bindings(s); /* the strings are the caller's */
	return rc;
}

static char *col_dup(sqlite3_stmt *s, int i, int *oom)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	char *d;

	if (!t)
		return NULL;
	d = strdup((const char *)t);
	if (!d)
		*oom = 1;
	return d;
}

int store_call_find(struct store *st, const char *hash, struct store_call *out)
{
	static const char sql[] =
		"SELECT id, hash, job_id, endpoint, model, request, reply, status, attempts, latency_ms, "
		"tokens_in, tokens_out, cost_usd, created_at FROM calls "
		"WHERE hash = ?1 AND error IS NULL ORDER BY id DESC LIMIT 1";
	sqlite3_stmt *s;
	int rc, oom = 0;

	memset(out, 0, sizeof(*out));
	if (!hash)
		return -EINVAL;
	if (store_calls_filter_ready(st) &&
	    !store_cfilter_has(store_calls_filter(st)->f, hash, strlen(hash)))
		return -ENOENT; /* never stored: no probe */
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	rc = store_bind(st, s, "t", hash);
	if (rc == 0)
		rc = store_step_row(st, s, "finding a call");
	if (rc == 0)
		rc = -ENOENT;
	if (rc < 0)
		goto out;
	out->id = sqlite3_column_int64(s, 0);
	out->hash = col_dup(s, 1, &oom);
	out->job_id = sqlite3_column_int64(s, 2);
	out->endpoint = col_dup(s, 3, &oom);
	out->model = col_dup(s, 4, &oom);
	out->request = col_dup(s, 5, &oom);
	out->reply = col_dup(s, 6, &oom);
	out->status = sqlite3_column_int(s, 7);
	out->attempts = sqlite3_column_int(s, 8);
	out->latency_ms = sqlite3_column_double(s, 9);
	out->tokens_in = sqlite3_column_int64(s, 10);
	out->tokens_out = sqlite3_column_int64(s, 11);
	out->cost_usd = sqlite3_column_double(s, 12);
	out->created_at = sqlite3_column_double(s, 13);
	rc = 0;
	if (oom) {
		store_call_clear(out);
		rc = -ENOMEM;
	}
out:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

void store_call_clear(struct store_call *c)
{
	if (!c)
		return;
	free(c->hash);
	free(c->endpoint);
	free(c->model);
	free(c->request);
	free(c->reply);
	free(c->error);
	memset(c, 0, sizeof(*c));
}
