#include "store/totals.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

int store_job_totals(struct store *st, int64_t job, struct store_totals *out)
{
	static const char sql[] = "SELECT count(*), coalesce(sum(tokens_in),0), "
				  "coalesce(sum(tokens_out),0), coalesce(sum(cost_usd),0) "
				  "FROM calls WHERE job_id = ?1";
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	memset(out, 0, sizeof(*out));
	rc = s ? store_bind(st, s, "i", job) : -EIO;
	if (rc == 0)
		rc = store_step_row(st, s, "job totals");
	if (rc == 0)
		rc = -EIO; /* an aggregate always has its row */
	if (rc < 0)
		return rc;
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
	char *text = store_json_dump(spec);
	int rc;

	if (!s || !text) {
		free(text);
		return s ? -ENOMEM : -EIO;
	}
	rc = store_bind(st, s, "tdi", text, store_now(), job);
	if (rc == 0)
		rc = store_step_done(st, s, "job spec update");
	if (rc == 0 && sqlite3_changes(store_db(st)) == 0)
		rc = -ENOENT;
	sqlite3_clear_bindings(s); /* text is freed next */
	free(text);
	return rc;
}
