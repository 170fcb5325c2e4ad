#include "store/work.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/store.h"

static bool task_state_valid(const char *state)
{
	static const char *const states[] = { STORE_TASK_PENDING, STORE_TASK_DONE,
	                                      STORE_TASK_FAILED, STORE_TASK_DROPPED };

	for (size_t i = 0; state && i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(state, states[i]) == 0)
			return true;
	return false;
}

static int bind_text(sqlite3_stmt *s, int i, const char *t)
{
	return t ? sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

/* Steps a write statement and resets it. */
static int step_write(struct store *st, sqlite3_stmt *s, int bind_rc, const char *what)
{
	int rc = bind_rc == SQLITE_OK ? sqlite3_step(s) : bind_rc;
	int err = rc == SQLITE_DONE ? 0 : store_err(st, rc, what);

	sqlite3_reset(s);
	return err;
}

int store_task_put(struct store *st, int64_t job, const char *step, int64_t item_seq,
                   const char *state, int attempts, const char *reason)
{
	static const char sql[] =
		"INSERT OR REPLACE INTO tasks(job_id, step, item_seq, state, attempts, reason, "
		"updated_at) VALUES(?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *s;
	int rc;

	if (!step || !*step || !task_state_valid(state) || attempts < 0)
		return -EINVAL;
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	rc = sqlite3_bind_int64(s, 1, job);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 2, step, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, item_seq);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 4, state, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 5, attempts);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 6, reason);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_double(s, 7, store_now());
	return step_write(st, s, rc, "storing a task");
}

int store_tasks_insert_pending(struct store *st, int64_t job, const char *step,
                               const int64_t *seqs, size_t n)
{
	static const char sql[] =
		"INSERT OR IGNORE INTO tasks(job_id, step, item_seq, state, attempts, updated_at) "
		"VALUES(?, ?, ?, 'pending', 0, ?)";
	sqlite3_stmt *s;
	int rc, added = 0;

	if (!step || !*step || (n && !seqs))
		return -EINVAL;
	if (n == 0)
		return 0;
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	rc = store_begin(st);
	if (rc < 0)
		return rc;
	/* Bindings 1, 2 and 4 stay bound across the resets. */
	rc = sqlite3_bind_int64(s, 1, job);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 2, step, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_double(s, 4, store_now());
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		rc = sqlite3_bind_int64(s, 3, seqs[i]);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		if (rc == SQLITE_DONE) {
			rc = SQLITE_OK;
			added += sqlite3_changes(store_db(st));
		}
		sqlite3_reset(s);
	}
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_OK) {
		rc = store_err(st, rc, "inserting tasks");
		store_rollback(st);
		return rc;
	}
	rc = store_commit(st);
	return rc < 0 ? rc : added;
}

int store_tasks_each(struct store *st, int64_t job, const char *step, const char *state,
                     int64_t after_seq, int limit,
                     int (*cb)(void *ud, int64_t seq, const char *state, int attempts,
                               const char *reason),
                     void *ud)
{
	/* Both are served by an index: the primary key, or tasks_state, which
	 * on a WITHOUT ROWID table ends with item_seq. */
	static const char sql_any[] =
		"SELECT item_seq, state, attempts, reason FROM tasks "
		"WHERE job_id = ? AND step = ? AND item_seq > ? ORDER BY item_seq LIMIT ?";
	static const char sql_state[] =
		"SELECT item_seq, state, attempts, reason FROM tasks "
		"WHERE job_id = ? AND step = ? AND item_seq > ? AND state = ? "
		"ORDER BY item_seq LIMIT ?";
	sqlite3_stmt *s;
	int rc;

	if (!step || !cb)
		return -EINVAL;
	s = store_stmt(st, state ? sql_state : sql_any);
	if (!s)
		return -EIO;
	rc = sqlite3_bind_int64(s, 1, job);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 2, step, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, after_seq);
	if (rc == SQLITE_OK && state)
		rc = sqlite3_bind_text(s, 4, state, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, state ? 5 : 4, limit > 0 ? limit : -1);
	if (rc != SQLITE_OK) {
		rc = store_err(st, rc, "reading tasks");
		goto out;
	}
	for (;;) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE) {
			rc = 0;
			break;
		}
		if (rc != SQLITE_ROW) {
			rc = store_err(st, rc, "reading tasks");
			break;
		}
		rc = cb(ud, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
		        sqlite3_column_int(s, 2), (const char *)sqlite3_column_text(s, 3));
		if (rc != 0)
			break;
	}
out:
	sqlite3_reset(s);
	return rc;
}

json_t *store_task_counts(struct store *st, int64_t job)
{
	static const char sql[] =
		"SELECT step, state, count(*) FROM tasks WHERE job_id = ? GROUP BY step, state";
	sqlite3_stmt *s = store_stmt(st, sql);
	json_t *out = json_object();
	int rc;

	if (!s || !out)
		goto fail;
	rc = sqlite3_bind_int64(s, 1, job);
	if (rc != SQLITE_OK) {
		store_err(st, rc, "counting tasks");
		goto fail;
	}
	for (;;) {
		const char *step, *state;
		json_t *per;

		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		step = (const char *)sqlite3_column_text(s, 0);
		state = (const char *)sqlite3_column_text(s, 1);
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
	if (rc != SQLITE_DONE) {
		store_err(st, rc, "counting tasks");
		goto fail;
	}
	sqlite3_reset(s);
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
	char *text = NULL;
	int rc;

	if (!kind || !*kind || !content)
		return -EINVAL;
	text = json_dumps(content, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return -EINVAL;
	s = store_stmt(st, sql);
	if (!s) {
		free(text);
		return -EIO;
	}
	rc = sqlite3_bind_int64(s, 1, job);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, item_seq);
	if (rc == SQLITE_OK)
		rc = call_id ? sqlite3_bind_int64(s, 4, call_id) : sqlite3_bind_null(s, 4);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 5, text, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_double(s, 6, store_now());
	rc = step_write(st, s, rc, "storing an artifact");
	sqlite3_clear_bindings(s); /* text is freed next */
	free(text);
	return rc;
}

static json_t *content_parse(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);
	json_error_t e;
	json_t *j;

	if (!t)
		return NULL;
	j = json_loadb(t, (size_t)sqlite3_column_bytes(s, col), JSON_DECODE_ANY, &e);
	if (!j)
		log_error("store: damaged JSON in artifacts.content: %s at byte %d", e.text, e.position);
	return j;
}

json_t *store_artifact_get(struct store *st, int64_t job, const char *kind, int64_t item_seq)
{
	static const char sql[] =
		"SELECT content FROM artifacts WHERE job_id = ? AND kind = ? AND item_seq = ?";
	sqlite3_stmt *s;
	json_t *j = NULL;
	int rc;

	if (!kind)
		return NULL;
	s = store_stmt(st, sql);
	if (!s)
		return NULL;
	rc = sqlite3_bind_int64(s, 1, job);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, item_seq);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		j = content_parse(s, 0);
	else if (rc != SQLITE_DONE)
		store_err(st, rc, "reading an artifact");
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
	rc = sqlite3_bind_int64(s, 1, job);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, after_seq);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 4, limit > 0 ? limit : -1);
	if (rc != SQLITE_OK) {
		rc = store_err(st, rc, "reading artifacts");
		goto out;
	}
	for (;;) {
		json_t *content;

		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE) {
			rc = 0;
			break;
		}
		if (rc != SQLITE_ROW) {
			rc = store_err(st, rc, "reading artifacts");
			break;
		}
		content = content_parse(s, 1);
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
