/* Selection strategy "teacher_screen": the teacher screens every item (keep,
 * quality, difficulty); with a selection budget the explanations wait until
 * every item is screened, and then the best budget x (items screened) of
 * those the teacher kept go on. */
#include "stages/select.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/work.h"

static void screen_on_screened(double budget, struct step_outcome *out)
{
	if (budget > 0 && out->next == STEP_EXPLAIN)
		out->next = -1;
}

struct cand {
	int64_t seq;
	int quality, difficulty;
};

struct cands {
	struct cand *c;
	size_t n, cap;
};

static int cand_collect(void *ud, int64_t seq, json_t *v)
{
	struct cands *x = ud;

	if (!json_is_true(json_object_get(v, "keep")))
		return 0;
	if (x->n == x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : 1024;
		struct cand *nc = realloc(x->c, ncap * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		x->c = nc;
		x->cap = ncap;
	}
	x->c[x->n].seq = seq;
	x->c[x->n].quality = (int)json_integer_value(json_object_get(v, "quality"));
	x->c[x->n].difficulty = (int)json_integer_value(json_object_get(v, "difficulty"));
	x->n++;
	return 0;
}

/* Best first: higher quality, then harder (more to learn), then file order. */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->quality != y->quality)
		return y->quality - x->quality;
	if (x->difficulty != y->difficulty)
		return y->difficulty - x->difficulty;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int screen_choose(struct select_ctx *c)
{
	struct cands x = { 0 };
	int64_t keep = (int64_t)(c->budget * (double)c->screened + 0.999999);
	int64_t *seqs = NULL;
	size_t nkeep;
	char reason[160];
	int rc;

	if (c->budget <= 0)
		return 0;
	rc = store_artifacts_each(c->st, c->job, "verdict", -1, 0, cand_collect, &x);
	if (rc)
		goto out;
	qsort(x.c, x.n, sizeof(*x.c), cand_cmp);
	rc = -ENOMEM;
	seqs = malloc((x.n ? x.n : 1) * sizeof(*seqs));
	if (!seqs)
		goto out;
	for (size_t i = 0; i < x.n; i++)
		seqs[i] = x.c[i].seq;
	nkeep = x.n < (size_t)keep ? x.n : (size_t)keep;
	snprintf(reason, sizeof(reason),
		 "not selected: selection budget %.3g keeps the %" PRId64 " best of %" PRId64
		 " screened items",
		 c->budget, keep, c->screened);
	rc = c->apply(c, seqs, nkeep, seqs + nkeep, x.n - nkeep, reason);
	if (rc)
		goto out;
	c->log(c, "selection: %zu kept by the teacher, the best %" PRId64 " go on", x.n,
	       x.n < (size_t)keep ? (int64_t)x.n : keep);
out:
	free(seqs);
	free(x.c);
	return rc;
}

const struct select_strategy select_teacher_screen = {
	.name = "teacher_screen",
	.first_step = STEP_SCREEN,
	.on_screened = screen_on_screened,
	.choose = screen_choose,
};
