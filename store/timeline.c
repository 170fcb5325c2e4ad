#include "store/timeline.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

int64_t store_timeline_bucket(double span_s, int64_t bucket_s, int max_points)
{
	static const int64_t nice[] = { 1,   2,   5,    10,   15,   30,    60,    120,
					300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400 };
	int64_t need;

	if (max_points <= 1 || max_points > STORE_TIMELINE_MAX_POINTS)
		max_points = STORE_TIMELINE_MAX_POINTS;
	if (!(span_s >= 0) || span_s > 1e12)
		span_s = span_s > 1e12 ? 1e12 : 0;
	/* n buckets cover a span of up to (n - 1) * S seconds past the first
	 * bucket's start, whatever the phase of the start in its bucket */
	need = (int64_t)ceil(span_s / (double)(max_points - 1));
	if (need < 1)
		need = 1;
	if (bucket_s > 0)
		return bucket_s >= need ? bucket_s : need;
	for (size_t i = 0; i < sizeof(nice) / sizeof(nice[0]); i++)
		if (nice[i] >= need)
			return nice[i];
	return (need + 86399) / 86400 * 86400;
}

static int job_span(struct store *st, int64_t job, double *from, double *to)
{
	static const char sql[] = "SELECT created_at, updated_at, state FROM jobs WHERE id = ?1";
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc = s ? store_bind(st, s, "i", job) : -EIO;
	const char *state;

	if (rc == 0)
		rc = store_step_row(st, s, "job span");
	if (rc <= 0)
		return rc == 0 ? -ENOENT : rc;
	*from = sqlite3_column_double(s, 0);
	*to = sqlite3_column_double(s, 1);
	state = store_col_text(s, 2);
	/* a job that has not finished runs until now */
	if (!state || (strcmp(state, "done") && strcmp(state, "failed") && strcmp(state, "cancelled")))
		*to = store_now();
	sqlite3_reset(s);
	if (*to < *from)
		*to = *from;
	return 0;
}

static json_t *point_at(json_t *points, int64_t b0, int64_t b)
{
	return b >= b0 ? json_array_get(points, (size_t)(b - b0)) : NULL;
}

int store_job_timeline(struct store *st, int64_t job, int64_t bucket_s, int max_points,
		       json_t **out)
{
	static const char calls_sql[] =
		"SELECT CAST(created_at / ?2 AS INTEGER) AS b, count(*), coalesce(sum(tokens_in),0), "
		"coalesce(sum(tokens_out),0), coalesce(sum(cost_usd),0) FROM calls "
		"WHERE job_id = ?1 GROUP BY b";
	static const char tasks_sql[] =
		"SELECT CAST(updated_at / ?2 AS INTEGER) AS b, count(*) FROM tasks "
		"WHERE job_id = ?1 AND state = 'done' GROUP BY b";
	double from = 0, to = 0;
	int64_t S, b0, b1;
	json_t *points = NULL, *p;
	sqlite3_stmt *s;
	int rc;

	*out = NULL;
	rc = job_span(st, job, &from, &to);
	if (rc)
		return rc;
	S = store_timeline_bucket(to - from, bucket_s, max_points);
	b0 = (int64_t)floor(from / (double)S);
	b1 = (int64_t)floor(to / (double)S);
	if (b1 - b0 >= STORE_TIMELINE_MAX_POINTS) /* rounding at the ends: never more */
		b0 = b1 - STORE_TIMELINE_MAX_POINTS + 1;
	points = json_array();
	for (int64_t b = b0; points && b <= b1; b++)
		if (json_array_append_new(points, json_pack("{s:I, s:i, s:i, s:i, s:f, s:i}", "t",
							    (json_int_t)(b * S), "calls", 0,
							    "tokens_in", 0, "tokens_out", 0,
							    "cost_usd", 0.0, "items_done", 0)))
			rc = -ENOMEM;
	if (!points || rc)
		goto fail;
	s = store_stmt(st, calls_sql);
	rc = s ? store_bind(st, s, "ii", job, S) : -EIO;
	while (rc == 0 && (rc = store_step_row(st, s, "job timeline")) == 1) {
		rc = 0;
		/* a call stamped outside the job's span (clock steps) is left out */
		p = point_at(points, b0, sqlite3_column_int64(s, 0));
		if (!p)
			continue;
		json_object_set_new(p, "calls", json_integer(sqlite3_column_int64(s, 1)));
		json_object_set_new(p, "tokens_in", json_integer(sqlite3_column_int64(s, 2)));
		json_object_set_new(p, "tokens_out", json_integer(sqlite3_column_int64(s, 3)));
		json_object_set_new(p, "cost_usd", json_real(sqlite3_column_double(s, 4)));
	}
	if (rc < 0)
		goto fail;
	s = store_stmt(st, tasks_sql);
	rc = s ? store_bind(st, s, "ii", job, S) : -EIO;
	while (rc == 0 && (rc = store_step_row(st, s, "job timeline")) == 1) {
		rc = 0;
		p = point_at(points, b0, sqlite3_column_int64(s, 0));
		if (p)
			json_object_set_new(p, "items_done", json_integer(sqlite3_column_int64(s, 1)));
	}
	if (rc < 0)
		goto fail;
	*out = json_pack("{s:I, s:o}", "bucket_s", (json_int_t)S, "points", points);
	return *out ? 0 : -ENOMEM;
fail:
	json_decref(points);
	return rc ? rc : -ENOMEM;
}
