/* The batches and batch_requests tables over prepared statements. */
#include "store/batches.h"

#include <errno.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS batches(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  endpoint TEXT NOT NULL,\n"
	"  job_id INTEGER,\n"
	"  provider_id TEXT,\n"
	"  state TEXT NOT NULL,\n"
	"  status TEXT,\n"
	"  total INTEGER NOT NULL,\n"
	"  created_at REAL NOT NULL,\n"
	"  submitted_at REAL,\n"
	"  ended_at REAL);\n"
	"CREATE TABLE IF NOT EXISTS batch_requests(\n"
	"  custom_id TEXT PRIMARY KEY,\n"
	"  batch_id INTEGER NOT NULL REFERENCES batches(id),\n"
	"  job_id INTEGER,\n"
	"  key TEXT NOT NULL,\n"
	"  request TEXT NOT NULL,\n"
	"  state TEXT NOT NULL);\n"
	"CREATE INDEX IF NOT EXISTS batch_requests_batch ON batch_requests(batch_id, state);\n"
	"CREATE INDEX IF NOT EXISTS batch_requests_key ON batch_requests(key);\n";

int store_batches_init(struct store *st)
{
	char *msg = NULL;
	int rc = sqlite3_exec(store_db(st), schema, NULL, NULL, &msg);

	sqlite3_free(msg);
	return rc == SQLITE_OK ? 0 : store_err(st, rc, "creating the batch tables");
}

int store_batch_insert(struct store *st, const char *endpoint, int64_t job_id, int64_t total, int64_t *id)
{
	static const char sql[] = "INSERT INTO batches(endpoint, job_id, state, total, created_at) "
				  "VALUES(?1, ?2, 'submitting', ?3, ?4)";
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	rc = store_bind(st, s, "tIid", endpoint, job_id, total, store_now());
	if (rc == 0)
		rc = store_step_done(st, s, "inserting a batch");
	if (rc == 0 && id)
		*id = sqlite3_last_insert_rowid(store_db(st));
	sqlite3_clear_bindings(s);
	return rc;
}

int store_batch_req_insert(struct store *st, int64_t batch_id, const char *custom_id, int64_t job_id,
			   const char *key, const char *request)
{
	static const char sql[] = "INSERT INTO batch_requests(custom_id, batch_id, job_id, key, request, state) "
				  "VALUES(?1, ?2, ?3, ?4, ?5, 'open')";
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	rc = store_bind(st, s, "tiItt", custom_id, batch_id, job_id, key, request);
	if (rc == 0)
		rc = store_step_done(st, s, "inserting a batch request");
	sqlite3_clear_bindings(s);
	return rc;
}

int store_batch_submitted(struct store *st, int64_t id, const char *provider_id)
{
	static const char sql[] = "UPDATE batches SET state = 'submitted', provider_id = ?2, submitted_at = ?3 "
				  "WHERE id = ?1";
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	rc = store_bind(st, s, "itd", id, provider_id, store_now());
	if (rc == 0)
		rc = store_step_done(st, s, "marking a batch submitted");
	sqlite3_clear_bindings(s);
	return rc;
}

int store_batch_set_state(struct store *st, int64_t id, const char *state, const char *status)
{
	static const char sql[] = "UPDATE batches SET state = ?2, status = coalesce(?3, status), "
				  "ended_at = CASE WHEN ?2 IN ('done','lost') THEN ?4 ELSE ended_at END "
				  "WHERE id = ?1";
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	rc = store_bind(st, s, "ittd", id, state, status, store_now());
	if (rc == 0)
		rc = store_step_done(st, s, "setting a batch's state");
	sqlite3_clear_bindings(s);
	return rc;
}

int store_batch_req_set(struct store *st, const char *custom_id, const char *state)
{
	static const char sql[] = "UPDATE batch_requests SET state = ?2 WHERE custom_id = ?1 AND state = 'open'";
	static const char probe[] = "SELECT 1 FROM batch_requests WHERE custom_id = ?1";
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	rc = store_bind(st, s, "tt", custom_id, state);
	if (rc == 0)
		rc = store_step_done(st, s, "setting a batch request's state");
	sqlite3_clear_bindings(s);
	if (rc == 0 && sqlite3_changes(store_db(st)) == 0) {
		s = store_stmt(st, probe);
		if (!s)
			return -EIO;
		rc = store_bind(st, s, "t", custom_id);
		if (rc == 0)
			rc = store_step_row(st, s, "finding a batch request");
		sqlite3_clear_bindings(s);
		if (rc == 1)
			sqlite3_reset(s);
		rc = rc == 1 ? -EALREADY : rc == 0 ? -ENOENT : rc;
	}
	return rc;
}

int store_batches_load(struct store *st, int (*batch)(void *ud, const struct store_batch_row *b),
		       int (*req)(void *ud, const struct store_batch_row *b, const struct store_batch_req_row *r),
		       void *ud)
{
	/* Separate statement objects: the request walk runs inside the batch walk. */
	static const char sqlb[] = "SELECT id, endpoint, job_id, provider_id, state, total, coalesce(submitted_at, 0) "
				   "FROM batches WHERE state IN ('submitting','submitted') ORDER BY id";
	static const char sqlr[] = "SELECT custom_id, key, request, coalesce(job_id, 0) FROM batch_requests "
				   "WHERE batch_id = ?1 AND state = 'open' ORDER BY custom_id";
	sqlite3_stmt *sb = store_stmt(st, sqlb), *sr;
	int rc, stop = 0;

	if (!sb)
		return -EIO;
	while (!stop && (rc = store_step_row(st, sb, "reading batches")) == 1) {
		struct store_batch_row b;

		memset(&b, 0, sizeof(b));
		b.id = sqlite3_column_int64(sb, 0);
		b.endpoint = store_col_text(sb, 1);
		b.job_id = sqlite3_column_int64(sb, 2);
		b.provider_id = store_col_text(sb, 3);
		b.state = store_col_text(sb, 4);
		b.total = sqlite3_column_int64(sb, 5);
		b.submitted_at = sqlite3_column_double(sb, 6);
		stop = batch(ud, &b);
		sr = stop ? NULL : store_stmt(st, sqlr);
		if (!stop && !sr) {
			stop = -EIO;
			break;
		}
		if (!stop && (rc = store_bind(st, sr, "i", b.id)) < 0)
			stop = rc;
		while (!stop && (rc = store_step_row(st, sr, "reading batch requests")) == 1) {
			struct store_batch_req_row r;

			r.custom_id = store_col_text(sr, 0);
			r.key = store_col_text(sr, 1);
			r.request = store_col_text(sr, 2);
			r.job_id = sqlite3_column_int64(sr, 3);
			stop = req(ud, &b, &r);
		}
		if (sr) {
			sqlite3_reset(sr);
			if (!stop && rc < 0)
				stop = rc;
		}
	}
	sqlite3_reset(sb);
	if (stop)
		return stop;
	return rc < 0 ? rc : 0;
}

int64_t store_batch_key_count(struct store *st, const char *key)
{
	static const char sql[] = "SELECT count(*) FROM batch_requests WHERE key = ?1";
	sqlite3_stmt *s = store_stmt(st, sql);
	int64_t n = 0;

	if (!s || store_bind(st, s, "t", key) < 0)
		return -EIO;
	if (store_step_row(st, s, "counting batch requests") == 1)
		n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}
