/* The calls table over prepared statements. */
#include "store/calls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

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
