/* The calls table over prepared statements. */
#include "store/calls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

int store_call_insert(struct store *st, const struct store_call *c, int64_t *id)
{
	static const char sql[] =
		"INSERT INTO calls(hash, job_id, endpoint, model, request, reply, status, attempts, "
		"latency_ms, tokens_in, tokens_out, cost_usd, error, created_at) "
		"VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)";
	sqlite3_stmt *s;
	int rc;

	if (!c || !c->hash || !c->endpoint || !c->model || !c->request)
		return -EINVAL;
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	bind_text(s, 1, c->hash);
	if (c->job_id > 0)
		sqlite3_bind_int64(s, 2, c->job_id);
	else
		sqlite3_bind_null(s, 2);
	bind_text(s, 3, c->endpoint);
	bind_text(s, 4, c->model);
	bind_text(s, 5, c->request);
	bind_text(s, 6, c->reply);
	sqlite3_bind_int(s, 7, c->status);
	sqlite3_bind_int(s, 8, c->attempts);
	sqlite3_bind_double(s, 9, c->latency_ms);
	sqlite3_bind_int64(s, 10, c->tokens_in);
	sqlite3_bind_int64(s, 11, c->tokens_out);
	sqlite3_bind_double(s, 12, c->cost_usd);
	bind_text(s, 13, c->error);
	sqlite3_bind_double(s, 14, c->created_at > 0 ? c->created_at : store_now());
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		rc = store_err(st, rc, "inserting a call");
		sqlite3_reset(s);
		return rc;
	}
	if (id)
		*id = sqlite3_last_insert_rowid(store_db(st));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return 0;
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
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		rc = -ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		rc = store_err(st, rc, "finding a call");
		goto out;
	}
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
