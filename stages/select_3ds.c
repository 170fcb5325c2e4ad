/* Selection strategy "3ds" (after Decomposed Difficulty Data Selection,
 * arXiv 2410.10901). Stage A: the student rates each item 0-100 on the
 * paper's five criteria and items under rating_threshold are dropped.
 * Stage B: three difficulties from the student's own token probabilities
 * (instruction understanding = perplexity of the prompt; response
 * correctness = mean loss on the gold answer; response confidence = mean
 * loss on its own greedy answer; uniform weights over non-stop-word tokens,
 * where the paper weights by attention); items inside the percentile
 * window on all three go to a seeded k-center greedy over their embeddings,
 * down to the budget. */
#include "stages/select.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/select_scores.h"
#include "stages/selmath.h"

static int s3_opts_parse(json_t *sel, struct select_opts *o, struct mt_err *err)
{
	const char *key;
	json_t *v;

	o->rating_threshold = 85;
	o->pct_lo = 25;
	o->pct_hi = 75;
	json_object_foreach(sel, key, v)
	{
		if (strcmp(key, "strategy") == 0 || strcmp(key, "budget") == 0)
			continue;
		if (strcmp(key, "rating_threshold") == 0) {
			if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 100))
				return mt_err_set(err, -EINVAL, "invalid_spec", "selection.rating_threshold",
						  "selection.rating_threshold must be a number from 0 to 100");
			o->rating_threshold = json_number_value(v);
		} else if (strcmp(key, "percentiles") == 0) {
			json_t *lo = json_array_get(v, 0), *hi = json_array_get(v, 1);

			if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_number(lo) ||
			    !json_is_number(hi) || !(json_number_value(lo) >= 0) ||
			    !(json_number_value(hi) <= 100) ||
			    !(json_number_value(lo) < json_number_value(hi)))
				return mt_err_set(err, -EINVAL, "invalid_spec", "selection.percentiles",
						  "selection.percentiles must be [LO, HI] with 0 <= LO < HI <= 100");
			o->pct_lo = json_number_value(lo);
			o->pct_hi = json_number_value(hi);
		} else {
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection",
					  "unknown key \"%s\" in selection (3ds takes budget, "
					  "rating_threshold, percentiles)",
					  key);
		}
	}
	return 0;
}

static void s3_opts_json(const struct select_opts *o, json_t *sel)
{
	json_object_set_new(sel, "rating_threshold", json_real(o->rating_threshold));
	json_object_set_new(sel, "percentiles", json_pack("[f, f]", o->pct_lo, o->pct_hi));
}

#define S3_METRICS 3
static const char *const metric_names[S3_METRICS] = { "ppl", "correctness", "confidence" };

static int s3_choose(struct select_ctx *c)
{
	struct sel_vecs vecs = { 0 };
	struct sel_rows rating = { 0 }, gold = { 0 }, conf = { 0 };
	struct select_score *scores = NULL;
	double *m[S3_METRICS] = { NULL }, lo[S3_METRICS] = { 0 }, hi[S3_METRICS] = { 0 };
	double *pts = NULL;
	int64_t *seq = NULL, *keep = NULL;
	size_t *win = NULL, *order = NULL, *korder = NULL;
	size_t n = 0, nw = 0, k, nkeep = 0, ndrop;
	char reason[200];
	int rc;

	rc = sel_vecs_load(c->st, c->job, &vecs);
	if (rc == 0)
		rc = sel_rows_load(c->st, c->job, "rating", &rating);
	if (rc == 0)
		rc = sel_rows_load(c->st, c->job, "gold_loss", &gold);
	if (rc == 0)
		rc = sel_rows_load(c->st, c->job, "confidence", &conf);
	if (rc)
		goto out;
	rc = -ENOMEM;
	for (int t = 0; t < S3_METRICS; t++)
		if (!(m[t] = calloc(gold.n + 1, sizeof(double))))
			goto out;
	seq = calloc(gold.n + 1, sizeof(*seq));
	keep = calloc(gold.n + 1, sizeof(*keep));
	win = calloc(gold.n + 1, sizeof(*win));
	korder = calloc(gold.n + 1, sizeof(*korder));
	order = calloc(gold.n + 1, sizeof(*order));
	scores = calloc(gold.n + 1, sizeof(*scores));
	pts = calloc((gold.n + 1) * (vecs.dim + 1), sizeof(*pts));
	if (!seq || !keep || !win || !korder || !order || !scores || !pts)
		goto out;
	/* the candidates: items stage A kept that have every score */
	for (size_t i = 0; i < gold.n; i++) {
		json_t *cf = sel_rows_find(&conf, gold.seq[i]);

		if (!cf || !sel_vecs_find(&vecs, gold.seq[i]))
			continue;
		seq[n] = gold.seq[i];
		m[0][n] = sel_num(gold.a[i], "ppl", 0);
		m[1][n] = sel_num(gold.a[i], "answer_loss", 0);
		m[2][n] = sel_num(cf, "confidence_loss", 0);
		n++;
	}
	for (int t = 0; t < S3_METRICS && n > 0; t++) {
		rc = selmath_percentile(m[t], n, c->opts->pct_lo, &lo[t]);
		if (rc == 0)
			rc = selmath_percentile(m[t], n, c->opts->pct_hi, &hi[t]);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		bool in = true;

		for (int t = 0; t < S3_METRICS; t++)
			in = in && m[t][i] >= lo[t] && m[t][i] <= hi[t];
		korder[i] = 0;
		if (!in)
			continue;
		{
			/* unit vectors: Euclidean k-center orders as cosine would */
			const double *e = sel_vecs_find(&vecs, seq[i]);
			double norm = 0;

			for (size_t d = 0; d < vecs.dim; d++)
				norm += e[d] * e[d];
			norm = norm > 0 ? sqrt(norm) : 1;
			for (size_t d = 0; d < vecs.dim; d++)
				pts[nw * vecs.dim + d] = e[d] / norm;
		}
		win[nw++] = i;
	}
	/* the budget counts the items rated in stage A */
	k = selmath_budget_count(c->budget, (size_t)(c->screened > 0 ? c->screened : 0));
	if (k > nw)
		k = nw;
	rc = selmath_kcenter(pts, nw, vecs.dim ? vecs.dim : 1, k, (uint64_t)c->seed, order);
	if (rc)
		goto out;
	for (size_t r = 0; r < k; r++) {
		korder[win[order[r]]] = r + 1;
		keep[nkeep++] = seq[win[order[r]]];
	}
	ndrop = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *rt = sel_rows_find(&rating, seq[i]);
		bool in = true;

		for (int t = 0; t < S3_METRICS; t++)
			in = in && m[t][i] >= lo[t] && m[t][i] <= hi[t];
		if (!korder[i])
			keep[nkeep + ndrop++] = seq[i];
		scores[i].seq = seq[i];
		scores[i].score = json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:b, s:o, s:b}", "strategy",
					    "3ds", "label", "3DS", "rating", sel_num(rt, "score", 0),
					    "ppl", m[0][i], "correctness", m[1][i], "confidence",
					    m[2][i], "in_window", in, "kcenter_order",
					    korder[i] ? json_integer((json_int_t)korder[i]) : json_null(),
					    "selected", korder[i] != 0);
		if (!scores[i].score) {
			rc = -ENOMEM;
			goto out;
		}
	}
	c->scores = scores;
	c->nscores = n;
	c->summary = json_pack("{s:s, s:s, s:f, s:I, s:I, s:f, s:I, s:[f,f], s:{}, s:I, s:I}",
			       "strategy", "3ds", "label", "3DS", "budget", c->budget, "budget_items",
			       (json_int_t)selmath_budget_count(c->budget, (size_t)c->screened),
			       "rated", (json_int_t)c->screened, "rating_threshold",
			       c->opts->rating_threshold, "kept_by_rating", (json_int_t)n,
			       "percentiles", c->opts->pct_lo, c->opts->pct_hi, "windows",
			       "in_window", (json_int_t)nw, "selected", (json_int_t)k);
	for (int t = 0; c->summary && t < S3_METRICS; t++)
		json_object_set_new(json_object_get(c->summary, "windows"), metric_names[t],
				    json_pack("[f, f]", lo[t], hi[t]));
	snprintf(reason, sizeof(reason),
		 "not selected: 3DS keeps %zu of %zu items in the percentile window (%zu rated "
		 "items pass stage A)",
		 k, nw, n);
	rc = c->apply(c, keep, nkeep, keep + nkeep, ndrop, reason);
	if (rc)
		goto out;
	c->log(c,
	       "selection (3DS): %lld rated, %zu kept by the rating, %zu inside the %g-%g "
	       "percentile window of all three difficulties, %zu selected by k-center",
	       (long long)c->screened, n, nw, c->opts->pct_lo, c->opts->pct_hi, k);
out:
	for (size_t i = 0; scores && i < n; i++)
		json_decref(scores[i].score);
	json_decref(c->summary);
	c->summary = NULL;
	c->scores = NULL;
	c->nscores = 0;
	for (int t = 0; t < S3_METRICS; t++)
		free(m[t]);
	free(scores);
	free(seq);
	free(keep);
	free(win);
	free(korder);
	free(order);
	free(pts);
	sel_vecs_free(&vecs);
	sel_rows_free(&rating);
	sel_rows_free(&gold);
	sel_rows_free(&conf);
	return rc;
}

const struct select_strategy select_3ds = {
	.name = "3ds",
	.first_step = STEP_S3_RATE,
	.on_screened = select_hold_scored,
	.choose = s3_choose,
	.then = STEP_EXPLAIN,
	.needs_embedder = true,
	.needs_logprobs = true,
	.budget_counts = true,
	.opts_parse = s3_opts_parse,
	.opts_json = s3_opts_json,
};
