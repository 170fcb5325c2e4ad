#include "store/counts.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int counts_fail(struct store_counts *c, const char *what)
{
	snprintf(c->err, sizeof(c->err), "%s: %s", what,
		 c->db ? sqlite3_errmsg(c->db) : "no connection");
	return -EIO;
}

int store_counts_open(const char *path, int64_t job, struct store_counts **out)
{
	struct store_counts *c = calloc(1, sizeof(*c));
	sqlite3 *db = NULL;
	int rc;

	*out = c;
	if (!c)
		return -ENOMEM;
	c->job = job;
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL);
	c->db = db;
	if (rc != SQLITE_OK)
		return counts_fail(c, "opening a counting connection");
	sqlite3_busy_timeout(db, 2000);
	/* BEGIN alone takes no snapshot; the first read does, and in WAL mode
	 * it never waits for the writer. */
	rc = sqlite3_exec(db, "BEGIN; SELECT count(*) FROM sqlite_master;", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return counts_fail(c, "pinning a read snapshot");
	return 0;
}

int store_counts_run(struct store_counts *c)
{
	static const char sql_tasks[] =
		"SELECT step, state, count(*) FROM tasks WHERE job_id = ? GROUP BY step, state";
	static const char sql_calls[] = "SELECT count(*), coalesce(sum(tokens_in),0), "
					"coalesce(sum(tokens_out),0), coalesce(sum(cost_usd),0) "
					"FROM calls WHERE job_id = ?1";
	sqlite3 *db = c->db;
	sqlite3_stmt *s = NULL;
	int rc;

	c->nrows = 0;
	memset(&c->tot, 0, sizeof(c->tot));
	if (!db)
		return counts_fail(c, "counting");
	if (sqlite3_prepare_v2(db, sql_tasks, -1, &s, NULL) != SQLITE_OK)
		return counts_fail(c, "counting tasks");
	sqlite3_bind_int64(s, 1, c->job);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_counts_row *row;
		const char *step = (const char *)sqlite3_column_text(s, 0);
		const char *state = (const char *)sqlite3_column_text(s, 1);

		if (c->nrows >= STORE_COUNTS_ROWS || !step || !state)
			continue; /* more (step, state) pairs than any kind has */
		row = &c->rows[c->nrows++];
		snprintf(row->step, sizeof(row->step), "%s", step);
		snprintf(row->state, sizeof(row->state), "%s", state);
		row->n = sqlite3_column_int64(s, 2);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return counts_fail(c, "counting tasks");
	if (sqlite3_prepare_v2(db, sql_calls, -1, &s, NULL) != SQLITE_OK)
		return counts_fail(c, "summing calls");
	sqlite3_bind_int64(s, 1, c->job);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		c->tot.calls = sqlite3_column_int64(s, 0);
		c->tot.tokens_in = sqlite3_column_int64(s, 1);
		c->tot.tokens_out = sqlite3_column_int64(s, 2);
		c->tot.cost_usd = sqlite3_column_double(s, 3);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return counts_fail(c, "summing calls");
	return 0;
}

void store_counts_close(struct store_counts *c)
{
	if (!c)
		return;
	if (c->db) {
		sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(c->db);
	}
	free(c);
}
