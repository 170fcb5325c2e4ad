#include "store/story.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"
#include "store/work.h"

static int find_by(struct store *st, const char *sql, const char *types, int64_t dataset,
		   const char *ref, int64_t n, int64_t *seq)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	rc = types[1] == 't' ? store_bind(st, s, types, dataset, ref)
			     : store_bind(st, s, types, dataset, n);
	if (rc == 0)
		rc = store_step_row(st, s, "finding an item");
	if (rc == 1) {
		*seq = sqlite3_column_int64(s, 0);
		rc = 0;
	} else if (rc == 0) {
		rc = -ENOENT;
	}
	sqlite3_reset(s);
	return rc;
}

int store_item_find(struct store *st, int64_t dataset, const char *ref, int64_t *seq)
{
	static const char by_id[] = "SELECT seq FROM items WHERE dataset_id = ? AND ext_id = ?";
	static const char by_seq[] = "SELECT seq FROM items WHERE dataset_id = ? AND seq = ?";
	char *end;
	long long n;
	int rc;

	if (!ref || !*ref)
		return -EINVAL;
	rc = find_by(st, by_id, "it", dataset, ref, 0, seq);
	if (rc != -ENOENT)
		return rc;
	if (strspn(ref, "0123456789") != strlen(ref) || strlen(ref) > 18)
		return -ENOENT;
	n = strtoll(ref, &end, 10);
	return find_by(st, by_seq, "ii", dataset, NULL, (int64_t)n, seq);
}

static json_t *iso(double t)
{
	char b[40];

	store_iso_time(t, b, sizeof(b));
	return json_string(b);
}

/* Every row of s (bound) folded into one object by row(s, obj). */
static json_t *rows_object(struct store *st, sqlite3_stmt *s, int (*row)(sqlite3_stmt *, json_t *),
			   const char *what)
{
	json_t *o = json_object();
	int rc;

	while (o && (rc = sqlite3_step(s)) == SQLITE_ROW)
		if (row(s, o) != 0) {
			json_decref(o);
			o = NULL;
		}
	if (o && rc != SQLITE_DONE && store_err(st, rc, what) < 0) {
		json_decref(o);
		o = NULL;
	}
	sqlite3_reset(s);
	return o;
}

static int task_row(sqlite3_stmt *s, json_t *o)
{
	const char *reason = store_col_text(s, 3);
	json_t *t = json_pack("{s:s, s:I, s:o, s:o}", "state", store_col_text(s, 1), "attempts",
			      (json_int_t)sqlite3_column_int64(s, 2), "reason",
			      reason ? json_string(reason) : json_null(), "updated_at",
			      iso(sqlite3_column_double(s, 4)));

	return t ? json_object_set_new(o, store_col_text(s, 0), t) : -1;
}

json_t *store_item_tasks(struct store *st, int64_t job, int64_t seq)
{
	static const char sql[] = "SELECT step, state, attempts, reason, updated_at FROM tasks "
				  "WHERE job_id = ? AND item_seq = ?";
	sqlite3_stmt *s = store_stmt(st, sql);

	if (!s || store_bind(st, s, "ii", job, seq) < 0)
		return NULL;
	return rows_object(st, s, task_row, "reading an item's tasks");
}

static int artifact_row(sqlite3_stmt *s, json_t *o)
{
	json_t *content = store_col_json(s, 2, "artifacts.content"), *a;
	int64_t call = sqlite3_column_int64(s, 1);

	a = json_pack("{s:o, s:o, s:o}", "call_id", call > 0 ? json_integer(call) : json_null(),
		      "content", content ? content : json_null(), "created_at",
		      iso(sqlite3_column_double(s, 3)));
	return a ? json_object_set_new(o, store_col_text(s, 0), a) : -1;
}

json_t *store_item_artifacts(struct store *st, int64_t job, int64_t seq)
{
	static const char sql[] = "SELECT kind, call_id, content, created_at FROM artifacts "
				  "WHERE job_id = ? AND item_seq = ?";
	sqlite3_stmt *s = store_stmt(st, sql);

	if (!s || store_bind(st, s, "ii", job, seq) < 0)
		return NULL;
	return rows_object(st, s, artifact_row, "reading an item's artifacts");
}

/* A text column as JSON when it parses, else as a string; null for NULL. */
static json_t *col_json_or_text(sqlite3_stmt *s, int i)
{
	const char *t = store_col_text(s, i);
	json_t *j;

	if (!t)
		return json_null();
	j = json_loads(t, JSON_DECODE_ANY, NULL);
	return j ? j : json_string(t);
}

json_t *store_call_get(struct store *st, int64_t id)
{
	static const char sql[] =
		"SELECT id, endpoint, model, request, reply, status, attempts, latency_ms, tokens_in, "
		"tokens_out, cost_usd, error, created_at FROM calls WHERE id = ?";
	sqlite3_stmt *s = store_stmt(st, sql);
	json_t *c = NULL;
	const char *e;

	if (!s || store_bind(st, s, "i", id) < 0)
		return NULL;
	if (store_step_row(st, s, "reading a call") == 1) {
		e = store_col_text(s, 11);
		c = json_pack("{s:I, s:s, s:s, s:o, s:o, s:I, s:I, s:f, s:I, s:I, s:f, s:o, s:o}",
			      "id", (json_int_t)sqlite3_column_int64(s, 0), "endpoint",
			      store_col_text(s, 1), "model", store_col_text(s, 2), "request",
			      col_json_or_text(s, 3), "reply", col_json_or_text(s, 4), "status",
			      (json_int_t)sqlite3_column_int64(s, 5), "attempts",
			      (json_int_t)sqlite3_column_int64(s, 6), "latency_ms",
			      sqlite3_column_double(s, 7), "tokens_in",
			      (json_int_t)sqlite3_column_int64(s, 8), "tokens_out",
			      (json_int_t)sqlite3_column_int64(s, 9), "cost_usd",
			      sqlite3_column_double(s, 10), "error", e ? json_string(e) : json_null(),
			      "created_at", iso(sqlite3_column_double(s, 12)));
	}
	sqlite3_reset(s);
	return c;
}

static int count_row(sqlite3_stmt *s, json_t *o)
{
	return json_object_set_new(o, store_col_text(s, 0), json_integer(sqlite3_column_int64(s, 1)));
}

int store_tasks_retry_failed(struct store *st, int64_t job, json_t **counts)
{
	static const char q[] = "SELECT step, count(*) FROM tasks WHERE job_id = ? AND state = '"
				STORE_TASK_FAILED "' GROUP BY step";
	static const char u[] = "UPDATE tasks SET state = '" STORE_TASK_PENDING "', attempts = 0, "
				"reason = NULL, updated_at = ? WHERE job_id = ? AND state = '"
				STORE_TASK_FAILED "'";
	sqlite3_stmt *s;
	json_t *c = NULL;
	int rc;

	*counts = NULL;
	rc = store_begin(st);
	if (rc < 0)
		return rc;
	s = store_stmt(st, q);
	rc = s ? store_bind(st, s, "i", job) : -EIO;
	if (rc == 0) {
		c = rows_object(st, s, count_row, "counting failed tasks");
		rc = c ? 0 : -EIO;
	}
	if (rc == 0) {
		s = store_stmt(st, u);
		rc = s ? store_bind(st, s, "di", store_now(), job) : -EIO;
		if (rc == 0)
			rc = store_step_done(st, s, "resetting failed tasks");
	}
	rc = store_tx_end(st, rc);
	if (rc < 0) {
		json_decref(c);
		return rc;
	}
	*counts = c;
	return 0;
}
