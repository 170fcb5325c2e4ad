#include "store/totals.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int store_job_totals(struct store *st, int64_t job, struct store_totals *out)
{
	static const char sql[] = "SELECT count(*), coalesce(sum(tokens_in),0), "
				  "coalesce(sum(tokens_out),0), coalesce(sum(cost_usd),0) "
				  "FROM calls WHERE job_id = ?1";
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, job);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = store_err(st, rc, "job totals");
		sqlite3_reset(s);
		return rc;
	}
	out->calls = sqlite3_column_int64(s, 0);
	out->tokens_in = sqlite3_column_int64(s, 1);
	out->tokens_out = sqlite3_column_int64(s, 2);
	out->cost_usd = sqlite3_column_double(s, 3);
	sqlite3_reset(s);
	return 0;
}

int store_job_set_spec(struct store *st, int64_t job, json_t *spec)
{
	static const char sql[] = "UPDATE jobs SET spec = ?1, updated_at = ?2 WHERE id = ?3";
	sqlite3_stmt *s = store_stmt(st, sql);
	char *text = json_dumps(spec, JSON_COMPACT);
	int rc;

	if (!s || !text) {
		free(text);
		return s ? -ENOMEM : -EIO;
	}
	sqlite3_bind_text(s, 1, text, -1, free);
	sqlite3_bind_double(s, 2, store_now());
	sqlite3_bind_int64(s, 3, job);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_err(st, rc, "job spec update");
	return sqlite3_changes(store_db(st)) ? 0 : -ENOENT;
}
