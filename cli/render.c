#include "cli/render.h"
#include "cli/evalreport.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int render_bar(char *out, size_t outlen, uint64_t done, uint64_t total, int width)
{
	int fill = 0, i, n = 0;

	if (width < 1 || outlen < (size_t)width + 3) {
		if (outlen)
			out[0] = '\0';
		return 0;
	}
	if (total > 0) {
		if (done > total)
			done = total;
		/* floor, so a bar is only full when the step is */
		fill = (int)((long double)done * width / total);
	}
	out[n++] = '[';
	for (i = 0; i < width; i++)
		out[n++] = i < fill ? '#' : '-';
	out[n++] = ']';
	out[n] = '\0';
	return n;
}

void render_duration(char *out, size_t outlen, double secs)
{
	unsigned long long s;

	if (!isfinite(secs) || secs < 0 || secs > 1e10) {
		snprintf(out, outlen, "-");
		return;
	}
	s = (unsigned long long)(secs + 0.5);
	if (s < 60)
		snprintf(out, outlen, "%llus", s);
	else if (s < 3600)
		snprintf(out, outlen, "%llum%02llus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, outlen, "%lluh%02llum", s / 3600, s % 3600 / 60);
	else
		snprintf(out, outlen, "%llud%02lluh", s / 86400, s % 86400 / 3600);
}

static uint64_t get_u64(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
	if (json_is_real(v))
		return json_real_value(v) > 0 ? (uint64_t)json_real_value(v) : 0;
	return 0;
}

/* Reads a number that may be absent: returns false then. */
static bool get_num(const json_t *o, const char *key, double *out)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return true;
}

static const char *get_str(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A time given as a string (printed as is) or as Unix seconds/ms. */
static void fmt_time(const json_t *v, char *out, size_t outlen)
{
	out[0] = '\0';
	if (json_is_string(v)) {
		snprintf(out, outlen, "%s", json_string_value(v));
	} else if (json_is_number(v)) {
		double t = json_number_value(v);
		time_t tt;
		struct tm tm;

		if (t > 1e11)
			t /= 1000; /* milliseconds */
		tt = (time_t)t;
		if (gmtime_r(&tt, &tm))
			strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
}

void render_step_counts(const json_t *c, struct render_step *st)
{
	memset(st, 0, sizeof(*st));
	if (!json_is_object(c))
		return;
	st->pending = get_u64(c, "pending");
	st->in_flight = get_u64(c, "in_flight");
	st->done = get_u64(c, "done");
	st->failed = get_u64(c, "failed");
	st->dropped = get_u64(c, "dropped");
	st->total = st->pending + st->in_flight + st->done + st->failed + st->dropped;
	st->finished = st->done + st->failed + st->dropped;
}

bool render_state_final(const char *state)
{
	return state && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
			 strcmp(state, "cancelled") == 0);
}

/* The phases of a job kind that runs more than one, in order, and the
 * phase each step works in (the daemon's tables, stages/kinds.c and
 * stages/steps.c, as the status object names them). The CLI needs them for
 * one thing: a job's overall percentage must count the phases still to come,
 * whose steps are not in "counts" yet. A kind or step not listed here falls
 * back to the counts alone. */
static const struct {
	const char *kind;
	const char *phases[8];
} kind_phases[] = {
	{"pipeline", {"eval_baseline", "stage1", "train1", "eval_stage1", "stage2", "train2", "eval", NULL}},
};

static const struct {
	const char *step, *phase;
} step_phases[] = {
	{"screen", "stage1"}, {"explain", "stage1"}, {"answer", "stage2"},   {"judge", "stage2"},
	{"correct", "stage2"}, {"eval", "eval"},     {"eval_judge", "eval"},
	{"eval_baseline", "eval_baseline"}, {"eval_baseline_judge", "eval_baseline"},
	{"eval_stage1", "eval_stage1"}, {"eval_stage1_judge", "eval_stage1"},
};

static const char *step_phase(const char *step)
{
	for (size_t i = 0; i < sizeof(step_phases) / sizeof(step_phases[0]); i++)
		if (strcmp(step_phases[i].step, step) == 0)
			return step_phases[i].phase;
	return NULL;
}

static bool phase_has_steps(const char *phase)
{
	for (size_t i = 0; i < sizeof(step_phases) / sizeof(step_phases[0]); i++)
		if (strcmp(step_phases[i].phase, phase) == 0)
			return true;
	return false;
}

/* The finished/total of counts' steps of one phase (all steps when phase is
 * NULL). */
static void counts_sum(const json_t *counts, const char *phase, uint64_t *finished, uint64_t *total)
{
	const char *k;
	json_t *v;

	*finished = *total = 0;
	if (!json_is_object(counts))
		return;
	json_object_foreach((json_t *)counts, k, v) {
		struct render_step st;
		const char *p = step_phase(k);

		if (phase && (!p || strcmp(p, phase) != 0))
			continue;
		render_step_counts(v, &st);
		*finished += st.finished;
		*total += st.total;
	}
}

bool render_job_percent(const json_t *job, double *pct)
{
	const json_t *counts = json_object_get(job, "counts");
	const char *kind = get_str(job, "kind"), *phase = get_str(job, "phase");
	uint64_t finished, total;

	for (size_t i = 0; kind && phase && i < sizeof(kind_phases) / sizeof(kind_phases[0]); i++) {
		const char *const *ph = kind_phases[i].phases;
		int cur = -1, nwork = 0;
		double sum = 0;

		if (strcmp(kind_phases[i].kind, kind) != 0)
			continue;
		for (int k = 0; ph[k]; k++)
			if (strcmp(ph[k], phase) == 0)
				cur = k;
		if (cur < 0)
			break; /* "done" or a phase we do not know: the counts say it */
		for (int k = 0; ph[k]; k++) {
			if (!phase_has_steps(ph[k]))
				continue; /* a train phase: no items of its own */
			nwork++;
			if (k < cur) {
				sum += 1.0;
			} else if (k == cur) {
				counts_sum(counts, ph[k], &finished, &total);
				if (total)
					sum += (double)finished / (double)total;
			}
		}
		if (!nwork)
			break;
		*pct = 100.0 * sum / nwork;
		return true;
	}
	counts_sum(counts, NULL, &finished, &total);
	if (!total)
		return false;
	*pct = 100.0 * (double)finished / (double)total;
	return true;
}

static void fmt_cost(char *out, size_t outlen, double usd)
{
	if (usd > 0 && usd < 0.01)
		snprintf(out, outlen, "$%.4f", usd);
	else
		snprintf(out, outlen, "$%.2f", usd);
}

/* Percent from correct/total when given, else from "accuracy" (a fraction
 * 0..1, or a percentage when above 1). Returns false when neither is there. */
static bool accuracy_pct(const json_t *o, double *pct)
{
	double correct, total, acc;

	if (get_num(o, "correct", &correct) && get_num(o, "total", &total) && total > 0) {
		*pct = 100.0 * correct / total;
		return true;
	}
	if (get_num(o, "accuracy", &acc)) {
		*pct = acc <= 1.0 ? acc * 100.0 : acc;
		return true;
	}
	return false;
}

static int render_eval(struct buf *out, const json_t *ev)
{
	const json_t *topics = json_object_get(ev, "by_topic");
	double pct;
	int rc = 0;

	if (!accuracy_pct(ev, &pct))
		return 0;
	rc = buf_printf(out, "eval      accuracy %.1f%%", pct);
	if (!rc && json_object_get(ev, "total"))
		rc = buf_printf(out, " (%llu/%llu correct", (unsigned long long)get_u64(ev, "correct"),
				(unsigned long long)get_u64(ev, "total"));
	if (!rc && json_object_get(ev, "total"))
		rc = json_object_get(ev, "ungraded")
			     ? buf_printf(out, ", %llu ungraded)", (unsigned long long)get_u64(ev, "ungraded"))
			     : buf_puts(out, ")");
	if (!rc)
		rc = buf_puts(out, "\n");
	if (!rc && json_is_object(topics) && json_object_size(topics) > 0) {
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)topics, k, v) {
			double tp;

			if (json_is_number(v)) {
				tp = json_number_value(v);
				tp = tp <= 1.0 ? tp * 100.0 : tp;
			} else if (!json_is_object(v) || !accuracy_pct(v, &tp)) {
				continue;
			}
			rc = buf_printf(out, "  %-24s %5.1f%%", k, tp);
			if (!rc && json_is_object(v) && json_object_get(v, "total"))
				rc = buf_printf(out, " (%llu/%llu)", (unsigned long long)get_u64(v, "correct"),
						(unsigned long long)get_u64(v, "total"));
			if (!rc)
				rc = buf_puts(out, "\n");
			if (rc)
				break;
		}
	}
	return rc;
}


/* The selection summary of a DIQ-like or 3DS job (status "selection"). */
static int render_selection(struct buf *out, const json_t *sl)
{
	const char *label = get_str(sl, "label");
	json_t *q = json_object_get(sl, "quadrants"), *w = json_object_get(sl, "windows");
	double v;
	int rc;

	rc = buf_printf(out, "selection %s:", label ? label : "?");
	if (!rc && json_is_object(q)) {
		rc = buf_printf(out, " %llu of %llu scored items selected",
				(unsigned long long)get_u64(sl, "selected"),
				(unsigned long long)get_u64(sl, "candidates"));
		for (int i = 1; !rc && i <= 4; i++) {
			char k[16];
			json_t *x;

			snprintf(k, sizeof(k), "Q%d", i);
			x = json_object_get(q, k);
			rc = buf_printf(out, "%s %s %llu (%llu selected)", i == 1 ? ";" : ",", k,
					(unsigned long long)get_u64(x, "items"),
					(unsigned long long)get_u64(x, "selected"));
		}
		if (!rc)
			rc = buf_printf(out, "; validation %llu items",
					(unsigned long long)get_u64(sl, "validation_items"));
		/* where the validation items came from: another dataset or a share */
		if (!rc && get_str(json_object_get(sl, "validation"), "dataset"))
			rc = buf_printf(out, " from dataset %s",
					get_str(json_object_get(sl, "validation"), "dataset"));
		else if (!rc && get_num(json_object_get(sl, "validation"), "fraction", &v))
			rc = buf_printf(out, " (fraction %g held out)", v);
	} else if (!rc) {
		rc = buf_printf(out, " %llu rated, %llu kept by the rating, %llu inside the percentile "
				"window, %llu selected by k-center",
				(unsigned long long)get_u64(sl, "rated"),
				(unsigned long long)get_u64(sl, "kept_by_rating"),
				(unsigned long long)get_u64(sl, "in_window"),
				(unsigned long long)get_u64(sl, "selected"));
	}
	if (!rc && get_num(sl, "budget", &v))
		rc = buf_printf(out, " (budget %g = %llu items)", v,
				(unsigned long long)get_u64(sl, "budget_items"));
	if (!rc && json_is_object(w)) {
		const char *k;
		json_t *x;

		rc = buf_puts(out, "\n          windows:");
		json_object_foreach(w, k, x)
			if (!rc)
				rc = buf_printf(out, " %s %.4g-%.4g", k,
						json_number_value(json_array_get(x, 0)),
						json_number_value(json_array_get(x, 1)));
	}
	if (!rc)
		rc = buf_puts(out, "\n");
	return rc;
}

/* An rl job's report: kept items, pass-rate histogram, format failures. */
static int render_rl(struct buf *out, const json_t *rl)
{
	const json_t *h = json_object_get(rl, "pass_rate_histogram");
	const char *k;
	json_t *v;
	int rc;

	rc = buf_printf(out, "rl        %llu items, %llu samples, %llu format failures; keep %s: %llu kept\n"
			     "  pass rate",
			(unsigned long long)get_u64(rl, "items"), (unsigned long long)get_u64(rl, "samples"),
			(unsigned long long)get_u64(rl, "format_failures"), get_str(rl, "keep"),
			(unsigned long long)get_u64(rl, "kept"));
	json_object_foreach((json_t *)h, k, v)
		if (!rc)
			rc = buf_printf(out, " %s: %lld", k, (long long)json_integer_value(v));
	if (!rc)
		rc = buf_puts(out, "\n");
	return rc;
}

/* The "endpoints" of a status (present while one is not well): its state,
 * and for a pool the replicas taken out with their last error. */
static int render_endpoints(struct buf *out, const json_t *eps)
{
	const char *name;
	json_t *e;
	int rc = 0;

	json_object_foreach((json_t *)eps, name, e) {
		const json_t *reps = json_object_get(e, "replicas"), *r;
		const char *st = get_str(e, "state"), *err = get_str(e, "last_error");
		size_t i;

		rc = buf_printf(out, "endpoint  %s: %s", name, st ? st : "?");
		if (!rc && json_is_array(reps))
			rc = buf_printf(out, ", replicas %llu of %zu in",
					(unsigned long long)get_u64(e, "replicas_in"), json_array_size(reps));
		if (!rc && err && err[0] && !json_is_array(reps))
			rc = buf_printf(out, " (%s)", err);
		if (!rc)
			rc = buf_puts(out, "\n");
		json_array_foreach((json_t *)reps, i, r) {
			const char *rs = get_str(r, "state"), *re = get_str(r, "last_error");

			if (rc || !rs || strcmp(rs, "out") != 0)
				continue;
			rc = buf_printf(out, "          out: %s%s%s%s\n", get_str(r, "url") ? get_str(r, "url") : "?",
					re && re[0] ? " (" : "", re && re[0] ? re : "", re && re[0] ? ")" : "");
		}
		if (rc)
			break;
	}
	return rc;
}

/* The steps of counts in the order a user reads them: for a kind whose
 * phases are listed above, phase by phase (a pipeline's baseline first);
 * then every other step in the order counts has them. At most max. */
static void render_step_order(const json_t *counts, const char *kind, const char **order, size_t *n,
			      size_t max)
{
	const char *k;
	json_t *v;

	*n = 0;
	for (size_t i = 0; kind && i < sizeof(kind_phases) / sizeof(kind_phases[0]); i++) {
		if (strcmp(kind_phases[i].kind, kind) != 0)
			continue;
		for (size_t p = 0; p < 8 && kind_phases[i].phases[p]; p++)
			json_object_foreach((json_t *)counts, k, v) {
				const char *ph = step_phase(k);

				if (ph && strcmp(ph, kind_phases[i].phases[p]) == 0 && *n < max)
					order[(*n)++] = k;
			}
	}
	json_object_foreach((json_t *)counts, k, v) {
		bool seen = false;

		for (size_t i = 0; i < *n && !seen; i++)
			seen = strcmp(order[i], k) == 0;
		if (!seen && *n < max)
			order[(*n)++] = k;
	}
}

int render_job(struct buf *out, const json_t *job, int bar_width)
{
	const char *id = get_str(job, "id"), *name = get_str(job, "name"), *kind = get_str(job, "kind");
	const char *state = get_str(job, "state"), *reason = get_str(job, "reason");
	const json_t *counts = json_object_get(job, "counts");
	const json_t *tokens = json_object_get(job, "tokens");
	const json_t *ev = json_object_get(job, "eval");
	char bar[256], when[64];
	double rate = 0, eta = 0, cost = 0;
	bool has_rate, has_eta;
	int rc;

	if (bar_width > (int)sizeof(bar) - 3)
		bar_width = (int)sizeof(bar) - 3;
	rc = buf_printf(out, "%s", id ? id : "?");
	if (!rc && name)
		rc = buf_printf(out, "  %s", name);
	if (!rc && kind)
		rc = buf_printf(out, "  (%s)", kind);
	if (!rc)
		rc = buf_printf(out, "  %s", state ? state : "unknown");
	if (!rc && reason && reason[0])
		rc = buf_printf(out, ": %s", reason);
	if (!rc)
		rc = buf_puts(out, "\n");

	if (!rc && json_is_object(counts)) {
		const char *order[64], *k;
		size_t n = 0;
		int width = 10;
		json_t *v;

		render_step_order(counts, kind, order, &n, sizeof(order) / sizeof(order[0]));
		for (size_t i = 0; i < n; i++)
			if ((int)strlen(order[i]) > width && strlen(order[i]) < 40)
				width = (int)strlen(order[i]);
		for (size_t i = 0; i < n; i++) {
			struct render_step st;

			k = order[i];
			v = json_object_get(counts, k);
			render_step_counts(v, &st);
			render_bar(bar, sizeof(bar), st.finished, st.total, bar_width);
			rc = buf_printf(out, "  %-*s %s %6llu/%-6llu", width, k, bar, (unsigned long long)st.finished,
					(unsigned long long)st.total);
			if (!rc)
				rc = st.total ? buf_printf(out, " %5.1f%%",
							   100.0 * (double)st.finished / (double)st.total)
					      : buf_puts(out, "     -");
			if (!rc)
				rc = buf_printf(out, "  done %llu", (unsigned long long)st.done);
			if (!rc && st.in_flight)
				rc = buf_printf(out, ", in flight %llu", (unsigned long long)st.in_flight);
			if (!rc && st.failed)
				rc = buf_printf(out, ", failed %llu", (unsigned long long)st.failed);
			if (!rc && st.dropped)
				rc = buf_printf(out, ", dropped %llu", (unsigned long long)st.dropped);
			if (!rc)
				rc = buf_puts(out, "\n");
			if (rc)
				break;
		}
	}

	has_rate = get_num(job, "rate_per_s", &rate);
	has_eta = get_num(job, "eta_s", &eta);
	if (!rc && (has_rate || has_eta)) {
		char d[32];

		rc = buf_puts(out, "progress ");
		if (!rc && has_rate)
			rc = buf_printf(out, " rate %.2f items/s", rate);
		if (!rc && has_eta && !render_state_final(state)) {
			render_duration(d, sizeof(d), eta);
			rc = buf_printf(out, "  ETA %s", d);
		}
		if (!rc)
			rc = buf_puts(out, "\n");
	}
	if (!rc && json_is_object(json_object_get(job, "batch"))) {
		/* teacher_mode batch: the provider batches' progress */
		const json_t *b = json_object_get(job, "batch");
		const char *bst = get_str(b, "status");
		double beta;

		rc = buf_printf(out, "batch     %llu batches, %llu open%s%s%s; requests %llu: done %llu, failed %llu, "
				     "resubmitted %llu, waiting %llu",
				(unsigned long long)get_u64(b, "batches"), (unsigned long long)get_u64(b, "batches_open"),
				bst && *bst ? " (" : "", bst && *bst ? bst : "", bst && *bst ? ")" : "",
				(unsigned long long)get_u64(b, "requests"), (unsigned long long)get_u64(b, "done"),
				(unsigned long long)get_u64(b, "failed"), (unsigned long long)get_u64(b, "resubmitted"),
				(unsigned long long)get_u64(b, "queued"));
		if (!rc && get_num(b, "eta_s", &beta) && !render_state_final(state)) {
			char d[32];

			render_duration(d, sizeof(d), beta);
			rc = buf_printf(out, ", ETA %s", d);
		}
		if (!rc)
			rc = buf_puts(out, "\n");
	}
	if (!rc && (json_is_object(tokens) || json_object_get(job, "cost_usd"))) {
		rc = buf_printf(out, "usage     tokens in %llu, out %llu",
				(unsigned long long)get_u64(tokens, "in"), (unsigned long long)get_u64(tokens, "out"));
		if (!rc && get_num(job, "cost_usd", &cost)) {
			char c[32];
			double budget;

			fmt_cost(c, sizeof(c), cost);
			rc = buf_printf(out, ", cost %s", c);
			if (!rc && get_num(job, "budget_usd", &budget)) {
				fmt_cost(c, sizeof(c), budget);
				rc = buf_printf(out, " of %s", c);
			}
		}
		if (!rc)
			rc = buf_puts(out, "\n");
	}
	if (!rc && json_is_object(ev))
		rc = render_eval(out, ev);
	if (!rc && json_is_object(json_object_get(job, "selection")))
		rc = render_selection(out, json_object_get(job, "selection"));
	if (!rc && json_is_object(json_object_get(job, "endpoints")))
		rc = render_endpoints(out, json_object_get(job, "endpoints"));
	if (!rc && json_is_object(ev))
		rc = evalreport_status_table(out, ev);
	if (!rc && json_is_object(json_object_get(job, "rl")))
		rc = render_rl(out, json_object_get(job, "rl"));
	if (!rc) {
		fmt_time(json_object_get(job, "created_at"), when, sizeof(when));
		if (when[0]) {
			rc = buf_printf(out, "times     created %s", when);
			fmt_time(json_object_get(job, "updated_at"), when, sizeof(when));
			if (!rc && when[0])
				rc = buf_printf(out, ", updated %s", when);
			if (!rc)
				rc = buf_puts(out, "\n");
		}
	}
	return rc;
}

int render_job_line(struct buf *out, const json_t *job)
{
	const char *id = get_str(job, "id"), *name = get_str(job, "name"), *kind = get_str(job, "kind");
	const char *state = get_str(job, "state"), *reason = get_str(job, "reason");
	double cost, pct;
	int rc;

	rc = buf_printf(out, "%-8s %-9s %-20s %-8s", id ? id : "?", state ? state : "unknown", name ? name : "-",
			kind ? kind : "-");
	if (!rc)
		rc = render_job_percent(job, &pct) ? buf_printf(out, " %5.1f%%", pct) : buf_puts(out, "      -");
	if (!rc && get_num(job, "cost_usd", &cost)) {
		char c[32];

		fmt_cost(c, sizeof(c), cost);
		rc = buf_printf(out, "  %s", c);
	}
	if (!rc && reason && reason[0])
		rc = buf_printf(out, "  (%s)", reason);
	if (!rc)
		rc = buf_puts(out, "\n");
	return rc;
}

int render_dataset_line(struct buf *out, const json_t *ds)
{
	const char *id = get_str(ds, "id"), *name = get_str(ds, "name"), *fmt = get_str(ds, "format");
	const json_t *rej = json_object_get(ds, "rejected");
	char when[64];
	int rc;

	rc = buf_printf(out, "%-8s %-20s %-9s %llu items", id ? id : "?", name ? name : "-", fmt ? fmt : "-",
			(unsigned long long)get_u64(ds, "items"));
	if (!rc && json_is_array(rej) && json_array_size(rej) > 0)
		rc = buf_printf(out, ", %zu rejected", json_array_size(rej));
	else if (!rc && json_is_integer(rej) && json_integer_value(rej) > 0)
		rc = buf_printf(out, ", %lld rejected", (long long)json_integer_value(rej));
	fmt_time(json_object_get(ds, "created_at"), when, sizeof(when));
	if (!rc && when[0])
		rc = buf_printf(out, "  %s", when);
	if (!rc)
		rc = buf_puts(out, "\n");
	return rc;
}

/* " screen 50/100 explain 10/90" */
static int counts_inline(struct buf *out, const json_t *counts)
{
	const char *k;
	json_t *v;
	int rc = 0;

	if (!json_is_object(counts))
		return 0;
	json_object_foreach((json_t *)counts, k, v) {
		struct render_step st;

		render_step_counts(v, &st);
		rc = buf_printf(out, " %s %llu/%llu", k, (unsigned long long)st.finished,
				(unsigned long long)st.total);
		if (rc)
			break;
	}
	return rc;
}

int render_job_progress_line(struct buf *out, const json_t *job)
{
	const char *id = get_str(job, "id"), *state = get_str(job, "state"), *reason = get_str(job, "reason");
	double cost = 0, eta = 0;
	int rc;

	rc = buf_printf(out, "%s %s", id ? id : "?", state ? state : "unknown");
	if (!rc && reason && reason[0])
		rc = buf_printf(out, " (%s)", reason);
	if (!rc)
		rc = counts_inline(out, json_object_get(job, "counts"));
	if (!rc && get_num(job, "eta_s", &eta) && !render_state_final(state)) {
		char d[32];

		render_duration(d, sizeof(d), eta);
		rc = buf_printf(out, " eta %s", d);
	}
	if (!rc && get_num(job, "cost_usd", &cost)) {
		char c[32];

		fmt_cost(c, sizeof(c), cost);
		rc = buf_printf(out, " cost %s", c);
	}
	if (!rc)
		rc = buf_puts(out, "\n");
	return rc;
}

int render_event(struct buf *out, const char *event, const char *data)
{
	json_t *d = json_loads(data, JSON_DECODE_ANY, NULL);
	char when[64] = "";
	int rc;

	if (json_is_object(d)) {
		static const char *const tkeys[] = {"ts", "time", "at", "created_at"};

		for (size_t i = 0; i < sizeof(tkeys) / sizeof(tkeys[0]) && !when[0]; i++)
			fmt_time(json_object_get(d, tkeys[i]), when, sizeof(when));
	}
	rc = when[0] ? buf_printf(out, "%s  %-9s", when, event) : buf_printf(out, "%-9s", event);
	if (!rc && json_is_object(d)) {
		const char *msg = get_str(d, "message");
		const char *state = get_str(d, "state"), *reason = get_str(d, "reason");

		if (!msg)
			msg = get_str(d, "msg");
		if (msg) {
			rc = buf_printf(out, " %s", msg);
		} else if (state || json_object_get(d, "counts")) {
			if (state)
				rc = buf_printf(out, strcmp(event, "state") == 0 ? " %s" : " state %s", state);
			if (!rc && reason && reason[0])
				rc = buf_printf(out, " (%s)", reason);
			if (!rc)
				rc = counts_inline(out, json_object_get(d, "counts"));
		} else {
			char *s = json_dumps(d, JSON_COMPACT);

			rc = buf_printf(out, " %s", s ? s : "");
			free(s);
		}
	} else if (!rc && data[0]) {
		rc = buf_puts(out, " ");
		/* keep an event on one line */
		for (const char *p = data; !rc && *p; p++)
			rc = buf_append(out, *p == '\n' ? " " : p, 1);
	}
	if (!rc)
		rc = buf_puts(out, "\n");
	json_decref(d);
	return rc;
}
