/* What the runner reports: status objects (SPEC 6), step counts, rate and
 * ETA and the Prometheus lines (the eval report: stages/checkpoints.c). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"
#include "stages/runner_int.h"
#include "store/store.h"
#include "store/totals.h"
#include "store/work.h"
#include "teacher_clients/batch.h"
#include "teacher_clients/client.h"

double job_run_clock(const struct job *j)
{
	return (j->clock_stopped ? j->stopped_at : store_now()) - j->stopped_total;
}

void job_run_clock_state(struct job *j, enum job_state s)
{
	double now = store_now();

	if (s == JOB_RUNNING && j->clock_stopped) {
		j->stopped_total += now - j->stopped_at;
		j->clock_stopped = false;
	} else if (s != JOB_RUNNING && !j->clock_stopped) {
		j->stopped_at = now;
		j->clock_stopped = true;
	}
}

void job_rate_note(struct job *j)
{
	int64_t now = (int64_t)job_run_clock(j);

	if (now != j->rate_sec) {
		int64_t gap = now - j->rate_sec;

		for (int64_t i = 1; i <= gap && i <= RATE_WINDOW; i++)
			j->rate_buckets[(j->rate_sec + i) % RATE_WINDOW] = 0;
		j->rate_sec = now;
	}
	j->rate_buckets[now % RATE_WINDOW]++;
}

json_t *job_counts_json(const struct job *j)
{
	json_t *c = json_object();

	for (int s = 0; s < STEP__N; s++) {
		const struct step_stat *ss = &j->st[s];

		if (!ss->pending && !ss->done && !ss->failed && !ss->dropped &&
		    step_def((enum step)s)->phase != job_phase(j))
			continue;
		json_object_set_new(c, step_name((enum step)s),
				    json_pack("{s:I, s:I, s:I, s:I, s:I}", "pending",
					      (json_int_t)(ss->pending > ss->in_flight ? ss->pending - ss->in_flight : 0), "in_flight",
					      (json_int_t)ss->in_flight, "done", (json_int_t)ss->done,
					      "failed", (json_int_t)ss->failed, "dropped",
					      (json_int_t)ss->dropped));
	}
	return c;
}

double job_rate(const struct job *j)
{
	double clock = job_run_clock(j);
	int64_t now = (int64_t)clock, sum = 0;

	if (now - j->rate_sec >= RATE_WINDOW)
		return 0;
	for (int64_t i = 0; i < RATE_WINDOW; i++) {
		int64_t sec = now - i;

		if (sec > j->rate_sec)
			continue; /* buckets after the last completion are empty */
		if (j->rate_sec - sec >= RATE_WINDOW)
			break;
		sum += j->rate_buckets[sec % RATE_WINDOW];
	}
	{
		double span = clock - j->loaded_at;

		if (span > RATE_WINDOW)
			span = RATE_WINDOW;
		if (span < 1)
			span = 1;
		return (double)sum / span;
	}
}

void runner_on_tick(uv_timer_t *h)
{
	struct runner *r = h->data;

	for (struct job *j = r->jobs; j; j = j->next) {
		char at[40];
		json_t *st;

		if (!j->progress_dirty)
			continue;
		j->progress_dirty = false;
		st = runner_job_status(r, j->id);
		if (!st)
			continue;
		/* When it was sent: a log orders its lines by it (created_at is the job's). */
		store_iso_time(store_now(), at, sizeof(at));
		json_object_set_new(st, "at", json_string(at));
		job_emit(j, "progress", st);
		json_decref(st);
	}
	runner_pump_soon(r);
}

/* A pool's replicas, [{"url","state":"in|out","last_error"}], or NULL for
 * a plain endpoint. */
static json_t *replicas_json(struct client *cl, const char *name)
{
	struct client_replica_stats rs;
	struct client_stats cs;
	size_t n = client_endpoint_count(cl);
	json_t *a;

	for (size_t i = 0; i < n; i++) {
		if (client_stats_at(cl, i, &cs) != 0 || strcmp(cs.name, name) != 0)
			continue;
		if (client_replica_count(cl, i) < 2)
			return NULL;
		a = json_array();
		for (size_t r = 0; r < client_replica_count(cl, i); r++)
			if (client_replica_stats_at(cl, i, r, &rs) == 0)
				json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I}", "url", rs.url, "state",
								   rs.out ? "out" : "in", "last_error",
								   rs.last_error ? rs.last_error : "", "requests",
								   (json_int_t)rs.requests));
		return a;
	}
	return NULL;
}

/* "endpoints": the health of the job's endpoints, while one of them is not
 * well (its breaker open or half-open, or down, or a replica of its pool
 * taken out). */
static void job_endpoints_json(const struct job *j, json_t *row)
{
	const char *names[2] = { j->js.teacher, j->js.student };
	struct client_stats st[2];
	bool ok[2] = { false, false }, show = false;
	json_t *o;

	for (int i = 0; i < 2; i++) {
		ok[i] = names[i][0] && client_stats_get(j->r->cl, names[i], &st[i]) == 0;
		show |= ok[i] && (st[i].down || st[i].breaker != 0 || st[i].replicas_in < st[i].replicas);
	}
	if (!show)
		return;
	o = json_object();
	for (int i = 0; i < 2; i++) {
		json_t *e, *reps;

		if (!ok[i])
			continue;
		e = json_pack("{s:s, s:s}", "state", st[i].down ? "down" : st[i].breaker ? "open" : "ok",
			      "last_error", st[i].last_error ? st[i].last_error : "");
		reps = st[i].replicas > 1 ? replicas_json(j->r->cl, names[i]) : NULL;
		if (reps) {
			json_object_set_new(e, "replicas_in", json_integer(st[i].replicas_in));
			json_object_set_new(e, "replicas", reps);
		}
		json_object_set_new(o, names[i], e);
	}
	json_object_set_new(row, "endpoints", o);
}

json_t *runner_job_status(struct runner *r, int64_t id)
{
	struct job *j = job_find(r, id);
	json_t *row;
	json_t *counts;
	double rate;
	int64_t left = 0;

	if (j) {
		double now = store_now();

		if (!j->row_cache || j->row_stale || now - j->row_at > 1.0 || now < j->row_at) {
			json_decref(j->row_cache);
			j->row_cache = store_job_get(r->st, id);
			json_object_del(j->row_cache, "runtime");
			j->row_at = now;
			j->row_stale = false;
		}
		/* A shallow copy: only its top-level keys are set below. */
		row = json_copy(j->row_cache);
	} else {
		row = store_job_get(r->st, id);
	}
	if (!row)
		return NULL;
	json_object_del(row, "runtime");
	if (!j) {
		/* A finished job from an earlier run: counts from the store. */
		struct store_totals tot = { 0 };
		json_t *rt = NULL, *full = store_job_get(r->st, id);
		json_t *c = store_task_counts(r->st, id), *v;
		const char *key;

		json_object_foreach(c, key, v)
			json_object_set_new(v, "in_flight", json_integer(0));
		json_object_set_new(row, "counts", c ? c : json_object());
		store_job_totals(r->st, id, &tot);
		json_object_set_new(row, "tokens", json_pack("{s:I, s:I}", "in", (json_int_t)tot.tokens_in,
							     "out", (json_int_t)tot.tokens_out));
		json_object_set_new(row, "cost_usd", json_real(tot.cost_usd));
		json_object_set_new(row, "calls", json_pack("{s:I}", "total", (json_int_t)tot.calls));
		rt = json_object_get(full, "runtime");
		if (json_object_get(rt, "eval"))
			json_object_set(row, "eval", json_object_get(rt, "eval"));
		if (json_object_get(rt, "selection"))
			json_object_set(row, "selection", json_object_get(rt, "selection"));
		if (json_object_get(rt, "rl"))
			json_object_set(row, "rl", json_object_get(rt, "rl"));
		json_object_set_new(row, "phase", json_string(json_is_string(json_object_get(rt, "phase"))
								      ? json_string_value(json_object_get(rt, "phase"))
								      : "done"));
		json_decref(full);
		return row;
	}
	/* The job's state as it stands: the stored row lags while the store
	 * refuses writes (its state is stored once it takes them again). */
	json_object_set_new(row, "state", json_string(job_state_name(j->state)));
	if (j->reason[0])
		json_object_set_new(row, "reason", json_string(j->reason));
	else
		json_object_del(row, "reason");
	counts = job_counts_json(j);
	json_object_set_new(row, "counts", counts);
	job_endpoints_json(j, row);
	json_object_set_new(row, "phase", json_string(phase_name(job_phase(j))));
	json_object_set_new(row, "tokens", json_pack("{s:I, s:I}", "in", (json_int_t)j->tok_in, "out",
						     (json_int_t)j->tok_out));
	json_object_set_new(row, "cost_usd", json_real(j->spent));
	json_object_set_new(row, "calls", json_pack("{s:I, s:I}", "total", (json_int_t)j->calls,
						    "cached", (json_int_t)j->cached));
	json_object_set_new(row, "judged",
			    json_integer(j->st[STEP_JUDGE].done + j->st[STEP_JUDGE].failed +
					 j->st[STEP_EVAL_JUDGE].done + j->st[STEP_EVAL_JUDGE].failed +
					 j->st[STEP_EVAL_BASE_JUDGE].done + j->st[STEP_EVAL_BASE_JUDGE].failed +
					 j->st[STEP_EVAL1_JUDGE].done + j->st[STEP_EVAL1_JUDGE].failed));
	rate = job_rate(j);
	json_object_set_new(row, "rate_per_s", json_real(rate));
	for (int s = 0; s < STEP__N; s++)
		if (step_def((enum step)s)->phase == job_phase(j))
			left += j->st[s].pending;
	if (j->seeding)
		left += j->n_items + j->val_n - j->seed_cursor;
	if (rate > 0 && j->state == JOB_RUNNING)
		json_object_set_new(row, "eta_s", json_real((double)left / rate));
	if (j->js.teacher_batch) {
		/* teacher_mode batch: the provider batches' progress and the
		 * slowest open batch's ETA. */
		struct batch_job_stats bs;

		client_batch_job_stats(r->cl, j->id, &bs);
		json_object_set_new(row, "batch",
				    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "batches", (json_int_t)bs.batches,
					      "batches_open", (json_int_t)bs.batches_open, "requests",
					      (json_int_t)bs.requests, "done", (json_int_t)bs.done, "failed",
					      (json_int_t)bs.failed, "queued", (json_int_t)bs.queued, "resubmitted",
					      (json_int_t)bs.resubmitted, "status", bs.status));
		if (bs.eta_s >= 0)
			json_object_set_new(json_object_get(row, "batch"), "eta_s", json_real(bs.eta_s));
	}
	if (j->eval)
		json_object_set(row, "eval", j->eval);
	if (j->selection)
		json_object_set(row, "selection", j->selection);
	if (j->rl)
		json_object_set(row, "rl", j->rl);
	return row;
}

json_t *runner_job_list(struct runner *r)
{
	json_t *rows = store_job_list(r->st), *out = json_array(), *v;
	size_t i;

	json_array_foreach(rows, i, v)
	{
		int64_t id = 0;
		json_t *s;

		if (store_job_resolve(r->st, json_string_value(json_object_get(v, "id")), &id) != 0)
			continue;
		s = runner_job_status(r, id);
		if (s)
			json_array_append_new(out, s);
	}
	json_decref(rows);
	return out;
}

size_t runner_job_briefs(struct runner *r, struct runner_job_brief *out, size_t max, bool *busy)
{
	size_t n = 0;

	*busy = false;
	for (struct job *j = r->jobs; j; j = j->next) {
		bool on = j->state == JOB_RUNNING || j->state == JOB_QUEUED || j->in_flight > 0;

		if (n < max) {
			int64_t v[] = { (int64_t)j->state, j->in_flight, j->calls, j->cached, j->tok_in,
					j->tok_out, (int64_t)(j->spent * 1e9) };
			uint64_t h = fnv1a64(FNV1A64_INIT, j->st, sizeof(j->st));

			h = fnv1a64(h, v, sizeof(v));
			out[n].id = j->id;
			out[n].active = on;
			out[n].finished = job_state_finished(j->state) && j->in_flight == 0;
			out[n].version = fnv1a64(h, j->reason, strlen(j->reason));
		}
		n++;
		*busy |= on;
	}
	return n;
}

void runner_metrics(struct runner *r, struct buf *b)
{
	buf_puts(b, "# HELP medthink_jobs Jobs loaded in this daemon by state.\n"
		    "# TYPE medthink_jobs gauge\n");
	for (int i = 0; i < JOB_STATE__N; i++) {
		int n = 0;

		for (struct job *j = r->jobs; j; j = j->next)
			n += j->state == (enum job_state)i;
		buf_printf(b, "medthink_jobs{state=\"%s\"} %d\n", job_state_name((enum job_state)i), n);
	}
	buf_printf(b,
		   "# HELP medthink_item_steps_total Item steps finished (done, dropped or failed).\n"
		   "# TYPE medthink_item_steps_total counter\n"
		   "medthink_item_steps_total %" PRId64 "\n"
		   "# HELP medthink_item_steps_failed_total Item steps that failed.\n"
		   "# TYPE medthink_item_steps_failed_total counter\n"
		   "medthink_item_steps_failed_total %" PRId64 "\n",
		   r->m_items_done, r->m_items_failed);
	buf_puts(b, "# HELP medthink_job_in_flight Item steps in flight per job.\n"
		    "# TYPE medthink_job_in_flight gauge\n");
	for (struct job *j = r->jobs; j; j = j->next)
		if (!job_state_finished(j->state))
			buf_printf(b, "medthink_job_in_flight{job=\"job_%" PRId64 "\"} %" PRId64 "\n",
				   j->id, j->in_flight);
	buf_puts(b, "# HELP medthink_job_cost_usd Spend per job.\n"
		    "# TYPE medthink_job_cost_usd gauge\n");
	for (struct job *j = r->jobs; j; j = j->next)
		buf_printf(b, "medthink_job_cost_usd{job=\"job_%" PRId64 "\"} %.6f\n", j->id,
			   j->spent);
}

