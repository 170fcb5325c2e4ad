#include "store/work.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

static bool task_state_valid(const char *state)
{
	static const char *const states[] = { STORE_TASK_PENDING, STORE_TASK_DONE,
	                                      STORE_TASK_FAILED, STORE_TASK_DROPPED };

	for (size_t i = 0; state && i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(state, states[i]) == 0)
			return true;
	return false;
}

int store_task_put(struct store *st, int64_t job, const char *step, int64_t item_seq,
                   const char *state, int attempts, const char *reason)
{
	/* Nearly always the row is there (seeded pending): an UPDATE rewrites
	 * it in place, where INSERT OR REPLACE deletes and inserts it again in
	 * the table and in tasks_state. */
	static const char sql_update[] =
		"UPDATE tasks SET state = ?4, attempts = ?5, reason = ?6, updated_at = ?7 "
		"WHERE job_id = ?1 AND step = ?2 AND item_seq = ?3";
	static const char sql[] =
		"INSERT OR REPLACE INTO tasks(job_id, step, item_seq, state, attempts, reason, "
		"updated_at) VALUES(?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *s;
	double now = store_now();
	int rc;

	if (!step || !*step || !task_state_valid(state) || attempts < 0)
		return -EINVAL;
	s = store_stmt(st, sql_update);
	if (!s)
		return -EIO;
	rc = store_bind(st, s, "itititd", job, step, item_seq, state, (int64_t)attempts, reason, now);
	if (rc == 0)
		rc = store_step_done(st, s, "storing a task");
	if (rc < 0 || sqlite3_changes(store_db(st)) > 0)
		return rc;
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	rc = store_bind(st, s, "itititd", job, step, item_seq, state, (int64_t)attempts, reason, now);
	if (rc == 0)
		rc = store_step_done(st, s, "storing a task");
	return rc;
}

/* Seqs inserted by one statement (its JSON text at most ~21 KB). */
#define TASKS_INSERT_MANY 1000

int store_tasks_insert_pending(struct store *st, int64_t job, const char *step,
                               const int64_t *seqs, size_t n)
{
	static const char sql[] =
		"INSERT OR IGNORE INTO tasks(job_id, step, item_seq, state, attempts, updated_at) "
		"VALUES(?, ?, ?, 'pending', 0, ?)";
	/* Many rows by one statement: its cursors stay open from row to row
	 * (15k -> 6k instructions a row, a seeding page of 500 a turn). */
	static const char sql_many[] =
		"INSERT OR IGNORE INTO tasks(job_id, step, item_seq, state, attempts, updated_at) "
		"SELECT ?1, ?2, value, 'pending', 0, ?3 FROM json_each(?4)";
	sqlite3_stmt *s;
	double now = store_now();
	int rc, added = 0;
	bool own;

	if (!step || !*step || (n && !seqs))
		return -EINVAL;
	if (n == 0)
		return 0;
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	if (n == 1) {
		/* One statement is atomic by itself: no savepoint (an item's next
		 * step, queued in every group commit of a pipeline). */
		rc = store_bind(st, s, "itid", job, step, seqs[0], now);
		if (rc == 0)
			rc = store_step_done(st, s, "inserting tasks");
		if (rc == 0)
			added = sqlite3_changes(store_db(st));
		sqlite3_clear_bindings(s);
		return rc < 0 ? rc : added;
	}
	/* A fsync per seeding page stood between a submit and its first call. */
	own = sqlite3_get_autocommit(store_db(st)) &&
	      sqlite3_exec(store_db(st), "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) == SQLITE_OK;
	rc = store_begin(st);
	if (rc == 0) {
		for (size_t i = 0; i < n && rc == 0; i += TASKS_INSERT_MANY) {
			size_t k = n - i < TASKS_INSERT_MANY ? n - i : TASKS_INSERT_MANY;
			char *list = store_seqs_json(seqs + i, k);

			s = list ? store_stmt(st, sql_many) : NULL;
			rc = !list ? -ENOMEM : !s ? -EIO
			     : store_bind(st, s, "itdt", job, step, now, list);
			if (rc == 0)
				rc = store_step_done(st, s, "inserting tasks");
			if (rc == 0)
				added += sqlite3_changes(store_db(st));
			if (s)
				sqlite3_clear_bindings(s);
			free(list);
		}
		rc = store_tx_end(st, rc);
	}
	if (own)
		sqlite3_exec(store_db(st), "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	return rc < 0 ? rc : added;
}

/* Rows copied per query (see store_tasks_each). */
#define TASKS_CHUNK 128

/* A task row copied out of a statement (see store_tasks_each). */
struct task_row {
	int64_t seq;
	int attempts;
	char state[16];
	char *reason;
};

/* Both are served by an index: the primary key, or tasks_state, which on a
 * WITHOUT ROWID table ends with item_seq. The planner, with no statistics,
 * takes the primary key for the second as well and walks every done row
 * before the first pending one: 780,000 of them (0.8 s, 8,000 pages) before
 * a restarted job's first call. Hence INDEXED BY. */
static const char sql_tasks_any[] =
	"SELECT item_seq, state, attempts, reason FROM tasks "
	"WHERE job_id = ? AND step = ? AND item_seq > ? ORDER BY item_seq LIMIT ?";
static const char sql_tasks_state[] =
	"SELECT item_seq, state, attempts, reason FROM tasks INDEXED BY tasks_state "
	"WHERE job_id = ? AND step = ? AND item_seq > ? AND state = ? "
	"ORDER BY item_seq LIMIT ?";

/* Copies the current row of s (item_seq, state, attempts, reason) to w. */
static int task_row_copy(struct task_row *w, sqlite3_stmt *s)
{
	const char *stt = store_col_text(s, 1), *why = store_col_text(s, 3);

	w->seq = sqlite3_column_int64(s, 0);
	w->attempts = sqlite3_column_int(s, 2);
	/* a state is a few bytes: cut to the field like snprintf did */
	memset(w->state, 0, sizeof(w->state));
	if (stt)
		memcpy(w->state, stt, strnlen(stt, sizeof(w->state) - 1));
	w->reason = why ? strdup(why) : NULL;
	return why && !w->reason ? -ENOMEM : 0;
}

/* Copies up to want rows of s (bound) to rows, *n of them; resets s. */
static int tasks_copy(struct store *st, sqlite3_stmt *s, int64_t want, struct task_row *rows,
		      int *n)
{
	int rc = 0;

	*n = 0;
	while (*n < want) {
		rc = store_step_row(st, s, "reading tasks");
		if (rc != 1)
			break;
		rc = task_row_copy(&rows[*n], s);
		(*n)++;
		if (rc)
			break;
	}
	sqlite3_reset(s);
	return rc < 0 ? rc : 0;
}

/* The rows of the seqs (ascending, m of them, found in one state by the
 * index) by one range of the primary key: 1 with rows[0..m) filled, 0 when
 * a seq has no row there (rows left empty), or a negative errno. */
static int tasks_by_range(struct store *st, int64_t job, const char *step, const int64_t *seqs,
			  int m, struct task_row *rows)
{
	static const char sql[] =
		"SELECT item_seq, state, attempts, reason FROM tasks "
		"WHERE job_id = ? AND step = ? AND item_seq >= ? AND item_seq <= ?";
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc, k = 0;

	rc = s ? store_bind(st, s, "itii", job, step, seqs[0], seqs[m - 1]) : -EIO;
	while (rc == 0 && k < m) {
		int64_t q;

		rc = store_step_row(st, s, "reading tasks");
		if (rc != 1)
			break;
		rc = 0;
		q = sqlite3_column_int64(s, 0);
		if (q > seqs[k])
			break; /* a seq without its row */
		if (q == seqs[k])
			rc = task_row_copy(&rows[k++], s);
	}
	if (s)
		sqlite3_reset(s);
	if (rc >= 0 && k == m)
		return 1;
	for (int i = 0; i < k; i++)
		free(rows[i].reason);
	return rc < 0 ? rc : 0;
}

/* A chunk of the rows in state: their seqs from tasks_state alone (the
 * index holds item_seq: no lookup of the row), then, when they are dense,
 * their rows by one range of the primary key; sparse, by the one query
 * that looks each row up. Inside one read transaction of its own (when
 * none is open), ended before it returns: the two reads see one state of
 * the table, and no read stays open while the callbacks run. */
static int tasks_chunk_state(struct store *st, int64_t job, const char *step, const char *state,
			     int64_t after_seq, int64_t want, struct task_row *rows, int *n)
{
	static const char sql_seqs[] =
		"SELECT item_seq FROM tasks INDEXED BY tasks_state "
		"WHERE job_id = ? AND step = ? AND state = ? AND item_seq > ? "
		"ORDER BY item_seq LIMIT ?";
	static const char sql_begin[] = "BEGIN";
	static const char sql_commit[] = "COMMIT";
	static const char sql_rollback[] = "ROLLBACK";
	int64_t seqs[TASKS_CHUNK];
	bool own = sqlite3_get_autocommit(store_db(st));
	sqlite3_stmt *s;
	int rc = 0, m = 0;

	*n = 0;
	if (own) {
		s = store_stmt(st, sql_begin);
		rc = s ? store_step_done(st, s, "beginning a read of tasks") : -EIO;
		if (rc < 0)
			return rc;
	}
	s = store_stmt(st, sql_seqs);
	rc = s ? store_bind(st, s, "ittii", job, step, state, after_seq, want) : -EIO;
	while (rc == 0 && m < want) {
		rc = store_step_row(st, s, "reading tasks");
		if (rc != 1)
			break;
		rc = 0;
		seqs[m++] = sqlite3_column_int64(s, 0);
	}
	if (s)
		sqlite3_reset(s);
	if (rc > 0)
		rc = 0;
	if (rc == 0 && m > 0 && (uint64_t)seqs[m - 1] - (uint64_t)seqs[0] < 4 * (uint64_t)m) {
		rc = tasks_by_range(st, job, step, seqs, m, rows);
		if (rc == 1)
			*n = m;
		rc = rc < 0 ? rc : 0;
	}
	if (rc == 0 && m > 0 && *n == 0) {
		s = store_stmt(st, sql_tasks_state);
		rc = s ? store_bind(st, s, "ititi", job, step, after_seq, state, want) : -EIO;
		if (rc == 0)
			rc = tasks_copy(st, s, want, rows, n);
	}
	if (own && !sqlite3_get_autocommit(store_db(st))) {
		int erc;

		s = store_stmt(st, sql_commit);
		erc = s ? store_step_done(st, s, "ending a read of tasks") : -EIO;
		if (erc < 0 && !sqlite3_get_autocommit(store_db(st))) {
			s = store_stmt(st, sql_rollback);
			if (s)
				store_step_done(st, s, "ending a read of tasks");
		}
		if (rc == 0 && erc < 0)
			rc = erc;
	}
	if (rc < 0) {
		for (int i = 0; i < *n; i++)
			free(rows[i].reason);
		*n = 0;
	}
	return rc;
}

int store_tasks_each(struct store *st, int64_t job, const char *step, const char *state,
                     int64_t after_seq, int limit,
                     int (*cb)(void *ud, int64_t seq, const char *state, int attempts,
                               const char *reason),
                     void *ud)
{
	struct task_row rows[TASKS_CHUNK];
	int64_t left = limit > 0 ? limit : INT64_MAX;
	int rc = 0;

	if (!step || !cb)
		return -EINVAL;
	/* A chunk of rows is copied and the statement reset before any cb
	 * runs: cb may write, and a write on a connection whose read began
	 * before the writer thread's last COMMIT fails at once with
	 * SQLITE_BUSY_SNAPSHOT (no busy handler runs for it). */
	while (rc == 0 && left > 0) {
		int64_t want = left < TASKS_CHUNK ? left : TASKS_CHUNK;
		int n = 0;

		if (state) {
			rc = tasks_chunk_state(st, job, step, state, after_seq, want, rows, &n);
		} else {
			sqlite3_stmt *s = store_stmt(st, sql_tasks_any);

			rc = s ? store_bind(st, s, "itii", job, step, after_seq, want) : -EIO;
			if (rc == 0)
				rc = tasks_copy(st, s, want, rows, &n);
		}
		for (int i = 0; i < n; i++) {
			if (rc == 0)
				rc = cb(ud, rows[i].seq, rows[i].state, rows[i].attempts, rows[i].reason);
			free(rows[i].reason);
		}
		if (n < want)
			break;
		left -= n;
		after_seq = rows[n - 1].seq;
	}
	return rc;
}

json_t *store_task_counts(struct store *st, int64_t job)
{
	static const char sql[] =
		"SELECT step, state, count(*) FROM tasks WHERE job_id = ? GROUP BY step, state";
	sqlite3_stmt *s = store_stmt(st, sql);
	json_t *out = json_object();
	int rc;

	if (!s || !out || store_bind(st, s, "i", job) < 0)
		goto fail;
	for (;;) {
		const char *step, *state;
		json_t *per;

		rc = store_step_row(st, s, "counting tasks");
		if (rc < 0)
			goto fail;
		if (rc == 0)
			break;
		step = store_col_text(s, 0);
		state = store_col_text(s, 1);
		per = json_object_get(out, step);
		if (!per) {
			per = json_pack("{s:i, s:i, s:i, s:i}", STORE_TASK_PENDING, 0, STORE_TASK_DONE, 0,
			                STORE_TASK_FAILED, 0, STORE_TASK_DROPPED, 0);
			if (!per || json_object_set_new(out, step, per) < 0)
				goto fail;
		}
		if (json_object_set_new(per, state, json_integer(sqlite3_column_int64(s, 2))) < 0)
			goto fail;
	}
	return out;
fail:
	if (s)
		sqlite3_reset(s);
	json_decref(out);
	return NULL;
}

int store_artifact_put(struct store *st, int64_t job, const char *kind, int64_t item_seq,
                       int64_t call_id, json_t *content)
{
	static const char sql[] =
		"INSERT OR REPLACE INTO artifacts(job_id, kind, item_seq, call_id, content, created_at) "
		"VALUES(?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *s;
	const char *text;
	char *owned = NULL;
	size_t len = 0;
	int rc;

	if (!kind || !*kind || !content)
		return -EINVAL;
	text = store_json_text(st, content, &len, &owned);
	if (!text)
		return -EINVAL;
	s = store_stmt(st, sql);
	rc = s ? store_bind(st, s, "itiInd", job, kind, item_seq, call_id, store_now()) : -EIO;
	if (rc == 0 && sqlite3_bind_text(s, 5, text, (int)len, SQLITE_STATIC) != SQLITE_OK)
		rc = store_err(st, sqlite3_errcode(store_db(st)), "storing an artifact");
	if (rc == 0)
		rc = store_step_done(st, s, "storing an artifact");
	if (s)
		sqlite3_clear_bindings(s); /* text is the scratch's, or freed next */
	free(owned);
	return rc;
}

json_t *store_artifact_get(struct store *st, int64_t job, const char *kind, int64_t item_seq)
{
	static const char sql[] =
		"SELECT content FROM artifacts WHERE job_id = ? AND kind = ? AND item_seq = ?";
	sqlite3_stmt *s;
	json_t *j = NULL;

	if (!kind)
		return NULL;
	s = store_stmt(st, sql);
	if (!s || store_bind(st, s, "iti", job, kind, item_seq) < 0)
		return NULL;
	if (store_step_row(st, s, "reading an artifact") == 1)
		j = store_col_json(s, 0, "artifacts.content");
	sqlite3_reset(s);
	return j;
}

int store_artifacts_each(struct store *st, int64_t job, const char *kind, int64_t after_seq,
                         int limit, int (*cb)(void *ud, int64_t seq, json_t *content), void *ud)
{
	static const char sql[] =
		"SELECT item_seq, content FROM artifacts WHERE job_id = ? AND kind = ? AND item_seq > ? "
		"ORDER BY item_seq LIMIT ?";
	sqlite3_stmt *s;
	int rc;

	if (!kind || !cb)
		return -EINVAL;
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	rc = store_bind(st, s, "itii", job, kind, after_seq, (int64_t)(limit > 0 ? limit : -1));
	if (rc < 0)
		goto out;
	for (;;) {
		json_t *content;

		rc = store_step_row(st, s, "reading artifacts");
		if (rc != 1)
			break;
		content = store_col_json(s, 1, "artifacts.content");
		if (!content) {
			rc = -EIO;
			break;
		}
		rc = cb(ud, sqlite3_column_int64(s, 0), content);
		json_decref(content);
		if (rc != 0)
			break;
	}
out:
	sqlite3_reset(s);
	return rc;
}
