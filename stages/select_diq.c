/* Selection strategy "diq": DIQ-like (after the Difficulty-Influence
 * Quadrant of arXiv 2508.01450, without gradients). Each item is embedded,
 * rated by the teacher on three 1-5 difficulty axes, and scored by the
 * student's loss on the gold answer (prompt logprobs); its influence proxy
 * is that loss times the cosine similarity of its embedding to the centroid
 * of a validation share held out by seed. Items are split at a difficulty
 * percentile and the influence median and the budget is filled from Q1
 * (hard, influential), then Q2, Q3, Q4; within a quadrant by influence,
 * then difficulty. docs/selection.md says how this differs from the paper. */
#include "stages/select.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/select_scores.h"
#include "stages/selmath.h"

static const char *const axis_names[] = { "overall", "knowledge", "reasoning" };

static int diq_opts_parse(json_t *sel, struct select_opts *o, struct mt_err *err)
{
	const char *key;
	json_t *v;

	o->difficulty_percentile = 50;
	o->axis = SELECT_AXIS_OVERALL;
	o->validation_fraction = 0.05;
	json_object_foreach(sel, key, v)
	{
		if (strcmp(key, "strategy") == 0 || strcmp(key, "budget") == 0)
			continue;
		if (strcmp(key, "difficulty_percentile") == 0) {
			if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 100))
				return mt_err_set(err, -EINVAL, "invalid_spec", "selection.difficulty_percentile",
						  "selection.difficulty_percentile must be a number from 0 to 100");
			o->difficulty_percentile = json_number_value(v);
		} else if (strcmp(key, "axis") == 0) {
			int a = -1;

			for (int i = 0; i < 3 && json_is_string(v); i++)
				if (strcmp(json_string_value(v), axis_names[i]) == 0)
					a = i;
			if (a < 0)
				return mt_err_set(err, -EINVAL, "invalid_spec", "selection.axis",
						  "selection.axis must be overall, knowledge or reasoning");
			o->axis = (enum select_axis)a;
		} else if (strcmp(key, "validation") == 0) {
			json_t *f = json_object_get(v, "fraction"), *ds = json_object_get(v, "dataset");

			if (json_is_object(v) && json_object_size(v) == 1 && ds) {
				/* a separate imported dataset: resolved at submit */
				if (!json_is_string(ds) || json_string_length(ds) == 0 ||
				    json_string_length(ds) >= sizeof(o->validation_dataset))
					return mt_err_set(err, -EINVAL, "invalid_spec",
							  "selection.validation.dataset",
							  "selection.validation.dataset must be a dataset id "
							  "or name of 1 to %zu bytes",
							  sizeof(o->validation_dataset) - 1);
				snprintf(o->validation_dataset, sizeof(o->validation_dataset), "%s",
					 json_string_value(ds));
				o->validation_fraction = 0;
				continue;
			}
			if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_number(f) ||
			    !(json_number_value(f) > 0 && json_number_value(f) < 1))
				return mt_err_set(err, -EINVAL, "invalid_spec", "selection.validation",
						  "selection.validation must be {\"fraction\":F} with 0 < F < 1 "
						  "or {\"dataset\":\"ID or name\"}");
			o->validation_fraction = json_number_value(f);
			o->validation_dataset[0] = '\0';
		} else {
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection",
					  "unknown key \"%s\" in selection (diq takes budget, "
					  "difficulty_percentile, axis, validation)",
					  key);
		}
	}
	return 0;
}

static void diq_opts_json(const struct select_opts *o, json_t *sel)
{
	json_object_set_new(sel, "difficulty_percentile", json_real(o->difficulty_percentile));
	json_object_set_new(sel, "axis", json_string(axis_names[o->axis]));
	if (o->validation_dataset[0])
		json_object_set_new(sel, "validation",
				    json_pack("{s:s}", "dataset", o->validation_dataset));
	else
		json_object_set_new(sel, "validation",
				    json_pack("{s:f}", "fraction", o->validation_fraction));
}

static int diq_choose(struct select_ctx *c)
{
	struct sel_vecs vecs = { 0 };
	struct sel_rows diff = { 0 }, loss = { 0 };
	struct selmath_diq *cand = NULL;
	struct select_score *scores = NULL;
	double *centroid = NULL, *dv = NULL, *fv = NULL, dcut = 0, fcut = 0;
	int64_t *keep = NULL;
	size_t n = 0, nval = 0, k, q[5] = { 0 }, qsel[5] = { 0 };
	const char *axis = axis_names[c->opts->axis];
	char reason[200];
	int rc;

	rc = sel_vecs_load(c->st, c->job, &vecs);
	if (rc == 0)
		rc = sel_rows_load(c->st, c->job, "difficulty", &diff);
	if (rc == 0)
		rc = sel_rows_load(c->st, c->job, "gold_loss", &loss);
	if (rc)
		goto out;
	rc = -ENOMEM;
	cand = calloc(loss.n + 1, sizeof(*cand));
	scores = calloc(loss.n + 1, sizeof(*scores));
	keep = calloc(loss.n + 1, sizeof(*keep));
	centroid = calloc(vecs.dim + 1, sizeof(*centroid));
	dv = calloc(loss.n + 1, sizeof(*dv));
	fv = calloc(loss.n + 1, sizeof(*fv));
	if (!cand || !scores || !keep || !centroid || !dv || !fv)
		goto out;
	for (size_t i = 0; i < vecs.n; i++)
		if (vecs.validation[i]) {
			selmath_centroid_add(centroid, vecs.v + i * vecs.dim, vecs.dim);
			nval++;
		}
	if (nval == 0) {
		/* a set too small to hold one validation item: the candidates'
		 * own centroid (said in the log and the summary) */
		for (size_t i = 0; i < vecs.n; i++)
			selmath_centroid_add(centroid, vecs.v + i * vecs.dim, vecs.dim);
		selmath_centroid_finish(centroid, vecs.n, vecs.dim);
	} else {
		selmath_centroid_finish(centroid, nval, vecs.dim);
	}
	/* the candidates: items with every score (a failed step leaves one out) */
	for (size_t i = 0; i < loss.n; i++) {
		int64_t seq = loss.seq[i];
		json_t *d = sel_rows_find(&diff, seq);
		const double *e = sel_vecs_find(&vecs, seq);
		double l = sel_num(loss.a[i], "answer_loss", 0);
		double sim;

		if (!d || !e)
			continue;
		sim = selmath_cosine(e, centroid, vecs.dim);
		cand[n].seq = seq;
		cand[n].difficulty = sel_num(d, axis, 3);
		cand[n].influence = l * sim;
		dv[n] = cand[n].difficulty;
		fv[n] = cand[n].influence;
		n++;
	}
	if (n > 0) {
		rc = selmath_percentile(dv, n, c->opts->difficulty_percentile, &dcut);
		if (rc == 0)
			rc = selmath_percentile(fv, n, 50, &fcut);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		cand[i].quadrant = selmath_quadrant(cand[i].difficulty, dcut, cand[i].influence, fcut);
		q[cand[i].quadrant]++;
	}
	selmath_diq_sort(cand, n);
	k = selmath_budget_count(c->budget, n);
	for (size_t i = 0; i < n; i++) {
		json_t *d = sel_rows_find(&diff, cand[i].seq), *l = sel_rows_find(&loss, cand[i].seq);
		const double *e = sel_vecs_find(&vecs, cand[i].seq);

		keep[i] = cand[i].seq;
		if (i < k)
			qsel[cand[i].quadrant]++;
		scores[i].seq = cand[i].seq;
		scores[i].score = json_pack(
			"{s:s, s:s, s:{s:O, s:O, s:O}, s:s, s:f, s:f, s:f, s:f, s:i, s:I, s:b}",
			"strategy", "diq", "label", "DIQ-like", "difficulty", "knowledge",
			json_object_get(d, "knowledge"), "reasoning", json_object_get(d, "reasoning"),
			"overall", json_object_get(d, "overall"), "axis", axis, "loss",
			sel_num(l, "answer_loss", 0), "similarity", selmath_cosine(e, centroid, vecs.dim),
			"influence", cand[i].influence, "difficulty_score", cand[i].difficulty,
			"quadrant", cand[i].quadrant, "rank", (json_int_t)(i + 1), "selected", i < k);
		if (!scores[i].score) {
			rc = -ENOMEM;
			goto out;
		}
	}
	c->scores = scores;
	c->nscores = n;
	c->summary = json_pack(
		"{s:s, s:s, s:f, s:I, s:I, s:I, s:b, s:s, s:f, s:f, s:f,"
		" s:{s:{s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}}}",
		"strategy", "diq", "label", "DIQ-like", "budget", c->budget, "budget_items",
		(json_int_t)k, "candidates", (json_int_t)n, "validation_items", (json_int_t)nval,
		"centroid_from_candidates", nval == 0, "axis", axis, "difficulty_percentile",
		c->opts->difficulty_percentile, "difficulty_cut", dcut, "influence_cut", fcut,
		"quadrants", "Q1", "items", (json_int_t)q[1], "selected", (json_int_t)qsel[1], "Q2",
		"items", (json_int_t)q[2], "selected", (json_int_t)qsel[2], "Q3", "items",
		(json_int_t)q[3], "selected", (json_int_t)qsel[3], "Q4", "items", (json_int_t)q[4],
		"selected", (json_int_t)qsel[4]);
	json_object_set_new(c->summary, "selected", json_integer((json_int_t)k));
	/* where the centroid came from: the job's own share or another dataset */
	if (c->opts->validation_dataset[0])
		json_object_set_new(c->summary, "validation",
				    json_pack("{s:s}", "dataset", c->opts->validation_dataset));
	else
		json_object_set_new(c->summary, "validation",
				    json_pack("{s:f}", "fraction", c->opts->validation_fraction));
	snprintf(reason, sizeof(reason),
		 "not selected: the DIQ-like selection keeps %zu of %zu scored items (budget %g)", k,
		 n, c->budget);
	rc = c->apply(c, keep, k, keep + k, n - k, reason);
	if (rc)
		goto out;
	c->log(c,
	       "selection (DIQ-like): %zu scored, %zu validation%s; Q1 %zu, Q2 %zu, Q3 %zu, Q4 %zu; "
	       "%zu selected (Q1 %zu, Q2 %zu, Q3 %zu, Q4 %zu)",
	       n, nval, nval == 0 ? " (centroid of the candidates)" : "", q[1], q[2], q[3], q[4], k,
	       qsel[1], qsel[2], qsel[3], qsel[4]);
out:
	for (size_t i = 0; scores && i < n; i++)
		json_decref(scores[i].score);
	json_decref(c->summary);
	c->summary = NULL;
	c->scores = NULL;
	c->nscores = 0;
	free(scores);
	free(cand);
	free(keep);
	free(centroid);
	free(dv);
	free(fv);
	sel_vecs_free(&vecs);
	sel_rows_free(&diff);
	sel_rows_free(&loss);
	return rc;
}

const struct select_strategy select_diq = {
	.name = "diq",
	.first_step = STEP_DIQ_EMBED,
	.on_screened = select_hold_scored,
	.choose = diq_choose,
	.then = STEP_EXPLAIN,
	.needs_embedder = true,
	.needs_logprobs = true,
	.budget_counts = true,
	.opts_parse = diq_opts_parse,
	.opts_json = diq_opts_json,
};
