#include "store/search.h"

#include <string.h>

#include "common/utf8.h"
#include "store/store_int.h"

#define QUESTION_SHOWN 200

static json_t *search_row(struct store *st, sqlite3_stmt *s, int64_t job)
{
	static const char tasks_sql[] =
		"SELECT step, state FROM tasks WHERE job_id = ? AND item_seq = ?";
	const char *q = store_col_text(s, 3);
	int64_t seq = sqlite3_column_int64(s, 1);
	sqlite3_stmt *t;
	json_t *tasks = json_object(), *row;
	size_t qn = q ? strlen(q) : 0;

	t = store_stmt(st, tasks_sql);
	if (t && tasks && store_bind(st, t, "ii", job, seq) == 0) {
		while (sqlite3_step(t) == SQLITE_ROW)
			json_object_set_new(tasks, store_col_text(t, 0), json_string(store_col_text(t, 1)));
	}
	if (t)
		sqlite3_reset(t);
	row = json_pack("{s:s, s:I, s:o, s:s%, s:o}", "id", store_col_text(s, 0), "seq",
			(json_int_t)seq, "topic",
			store_col_text(s, 2) ? json_string(store_col_text(s, 2)) : json_null(),
			"question", q ? q : "", q ? utf8_prefix(q, qn, QUESTION_SHOWN) : (size_t)0,
			"tasks", tasks ? tasks : json_object());
	return row;
}

json_t *store_items_search(struct store *st, int64_t dataset, int64_t job, const char *q,
			   int64_t from, int limit)
{
	static const char exact_sql[] =
		"SELECT ext_id, seq, topic, json_extract(body, '$.question') FROM items "
		"WHERE dataset_id = ? AND ext_id = ?";
	/* lower() folds ASCII only; instr() needs no LIKE escaping. */
	static const char scan_sql[] =
		"SELECT ext_id, seq, topic, json_extract(body, '$.question'), "
		"  (?3 = '' OR instr(ext_id, ?3) = 1 OR instr(lower(body), lower(?3)) > 0) "
		"FROM items WHERE dataset_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?4";
	json_t *out = json_object(), *items = json_array(), *row;
	sqlite3_stmt *s;
	int64_t scanned = 0, last = -1, exact = -1;
	int rc;

	if (!out || !items)
		goto fail;
	if (limit < 1)
		limit = 1;
	if (limit > STORE_SEARCH_LIMIT_MAX)
		limit = STORE_SEARCH_LIMIT_MAX;
	if (from < 0)
		from = 0;
	if (q[0] && from == 0) {
		s = store_stmt(st, exact_sql);
		if (!s || store_bind(st, s, "it", dataset, q) != 0)
			goto fail;
		rc = store_step_row(st, s, "searching items by id");
		if (rc < 0)
			goto fail;
		if (rc == 1) {
			exact = sqlite3_column_int64(s, 1);
			row = search_row(st, s, job);
			sqlite3_reset(s);
			if (!row || json_array_append_new(items, row) != 0)
				goto fail;
		}
	}
	s = store_stmt(st, scan_sql);
	if (!s || store_bind(st, s, "iiti", dataset, from, q, (int64_t)STORE_SEARCH_SCAN) != 0)
		goto fail;
	rc = SQLITE_DONE;
	while ((int)json_array_size(items) < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		scanned++;
		last = sqlite3_column_int64(s, 1);
		if (!sqlite3_column_int(s, 4) || last == exact)
			continue;
		row = search_row(st, s, job);
		if (!row || json_array_append_new(items, row) != 0) {
			sqlite3_reset(s);
			goto fail;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_err(st, rc, "searching items");
		sqlite3_reset(s);
		goto fail;
	}
	sqlite3_reset(s);
	/* More may follow when the scan stopped early (limit or the row cap). */
	if (last >= 0 && ((int)json_array_size(items) >= limit || scanned == STORE_SEARCH_SCAN))
		json_object_set_new(out, "next", json_integer(last + 1));
	else
		json_object_set_new(out, "next", json_null());
	json_object_set_new(out, "items", items);
	return out;
fail:
	json_decref(items);
	json_decref(out);
	return NULL;
}

json_t *store_task_reasons(struct store *st, int64_t job)
{
	static const char sql[] =
		"SELECT step, state, reason, count(*) AS n FROM tasks "
		"WHERE job_id = ? AND state IN ('failed', 'dropped') "
		"GROUP BY step, state, reason ORDER BY n DESC, step, reason LIMIT ?";
	sqlite3_stmt *s = store_stmt(st, sql);
	json_t *arr = json_array();
	int rc = SQLITE_DONE;

	if (!s || !arr || store_bind(st, s, "ii", job, (int64_t)STORE_REASONS_MAX) != 0)
		goto fail;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *reason = store_col_text(s, 2);
		json_t *row = json_pack("{s:s, s:s, s:o, s:I}", "step", store_col_text(s, 0), "state",
					store_col_text(s, 1), "reason",
					reason ? json_string(reason) : json_null(), "count",
					(json_int_t)sqlite3_column_int64(s, 3));

		if (!row || json_array_append_new(arr, row) != 0) {
			sqlite3_reset(s);
			goto fail;
		}
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_err(st, rc, "grouping task reasons");
		goto fail;
	}
	return json_pack("{s:o}", "reasons", arr);
fail:
	json_decref(arr);
	return NULL;
}
