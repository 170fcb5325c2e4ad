/* The dry run of a submit (runner_job_estimate, stages/runner.h): what a job
 * would cost, from the dataset's split, the job's phases, the prompts
 * rendered for a sample of items and the endpoints' prices. Creates
 * nothing; reads the store on the loop thread. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/runner_int.h"
#include "store/store.h"
#include "teacher_clients/client.h"

#define EST_SAMPLE 16       /* items whose prompts are rendered per step */
#define EST_PAGE 4096       /* item ids read per query */
/* Shares no spec says, from what the method usually does; reported in the
 * estimate's "assumptions" so nobody mistakes them for measurements. */
#define EST_JUDGE_SHARE 0.10 /* answers the rules cannot grade */
#define EST_WRONG_SHARE 0.40 /* student answers that are wrong in stage two */

/* Which share of a phase's items reaches a step (the step table's order:
 * an item starts at its phase's first step and moves to next/next_unclear). */
enum est_share { SHARE_ALL, SHARE_KEPT, SHARE_JUDGE, SHARE_WRONG };

static const enum est_share est_shares[STEP__N] = {
	[STEP_SCREEN] = SHARE_ALL,     [STEP_EXPLAIN] = SHARE_KEPT, [STEP_ANSWER] = SHARE_ALL,
	[STEP_JUDGE] = SHARE_JUDGE,    [STEP_CORRECT] = SHARE_WRONG, [STEP_EVAL] = SHARE_ALL,
	[STEP_EVAL_JUDGE] = SHARE_JUDGE,
	[STEP_EVAL_BASE] = SHARE_ALL,  [STEP_EVAL_BASE_JUDGE] = SHARE_JUDGE,
	[STEP_EVAL1] = SHARE_ALL,      [STEP_EVAL1_JUDGE] = SHARE_JUDGE,
};

/* Whether step s is on the path of phase p's items: from its first step on
 * in the step table's order, except that the selection's phase follows
 * the strategy's chain (its scoring steps, then the step it sends the
 * chosen items to). */
static bool est_on_path(const struct job *j, enum phase p, enum step first, int s)
{
	int then;

	if (p != PHASE_STAGE1)
		return s >= (int)first;
	then = select_then(j->sel);
	for (int x = first; x >= 0 && x != then; x = step_def((enum step)x)->next)
		if (x == s)
			return true;
	return then >= 0 && s == then;
}

struct est_split {
	const struct jobspec *js;
	int64_t train, eval;
	int64_t train_seq[EST_SAMPLE], eval_seq[EST_SAMPLE];
	int ntrain_seq, neval_seq;
	int64_t last;
};

static int est_split_one(void *ud, int64_t seq, const char *id)
{
	struct est_split *s = ud;

	s->last = seq;
	if (runner_split_is_eval(s->js, id ? id : "")) {
		if (s->neval_seq < EST_SAMPLE)
			s->eval_seq[s->neval_seq++] = seq;
		s->eval++;
	} else {
		if (s->ntrain_seq < EST_SAMPLE)
			s->train_seq[s->ntrain_seq++] = seq;
		s->train++;
	}
	return 0;
}

/* Mean prompt bytes of step s over the sample (0 when nothing renders).
 * Steps that read the student's reply get one of the answer step's
 * max_tokens (4 bytes a token): the longest it can be. */
static double est_prompt_bytes(struct store *st, int64_t ds, json_t *prompts, enum step s,
			       const int64_t *seqs, int n)
{
	const struct step_def *d = step_def(s);
	size_t reply_len = (size_t)step_def(STEP_ANSWER)->max_tokens * 4;
	char *reply = malloc(reply_len + 1);
	json_t *prior = NULL;
	double sum = 0;
	int got = 0;

	if (!reply)
		return 0;
	memset(reply, 'x', reply_len);
	reply[reply_len] = '\0';
	if (d->reads)
		prior = json_pack("{s:s, s:s}", "reply", reply, "answer", "A");
	for (int i = 0; i < n; i++) {
		json_t *item = store_item_get(st, ds, seqs[i]), *m;
		struct step_ctx ctx = { .item = item, .prompts = prompts, .prior = prior };
		struct step_request req = { 0 };
		char err[128];
		size_t k;

		if (!item)
			continue;
		if (step_request_build(s, &ctx, &req, err, sizeof(err)) == 0) {
			json_array_foreach(req.messages, k, m) {
				json_t *part;
				size_t pi;

				sum += (double)strlen(json_string_value(json_object_get(m, "content"))
							  ? json_string_value(json_object_get(m, "content"))
							  : "");
				/* content parts (images): their text only */
				json_array_foreach(json_object_get(m, "content"), pi, part)
					sum += (double)json_string_length(json_object_get(part, "text"));
			}
			if (req.prompt) /* a completion or embedding step */
				sum += (double)strlen(req.prompt);
			got++;
		}
		step_request_clear(&req);
		json_decref(item);
	}
	json_decref(prior);
	free(reply);
	return got ? sum / got : 0;
}

int runner_job_estimate(struct runner *r, json_t *spec, json_t **out, struct mt_err *err)
{
	struct jobspec js = { 0 };
	struct est_split sp = { .js = &js };
	struct job tmp = { 0 };
	json_t *prompts = NULL, *steps = NULL, *res = NULL;
	const char *kept_from;
	double kept, shares[4];
	int64_t ds, used, from = 0, tot_calls = 0, val_n = 0, vds;
	double tot_in = 0, tot_out = 0, tot_cost = 0;
	int rc;

	*out = NULL;
	rc = runner_spec_check(r, spec, &js, &ds, &prompts, err);
	if (rc)
		goto out;
	for (;;) {
		int64_t before = sp.last;

		rc = store_item_ids_each(r->st, ds, from, EST_PAGE, est_split_one, &sp);
		if (rc) {
			rc = mt_err_set(err, -EIO, "store", NULL, "cannot read the dataset's items");
			goto out;
		}
		if (sp.last == before || sp.last + 1 < from + EST_PAGE)
			break;
		from = sp.last + 1;
	}
	used = js.max_items > 0 && js.max_items < sp.train ? js.max_items : sp.train;
	/* DIQ's validation dataset: its items too are embedded (resolved by
	 * runner_spec_check) */
	if (js.sel.validation_dataset[0] &&
	    store_dataset_resolve(r->st, js.sel.validation_dataset, &vds) == 0)
		val_n = store_dataset_count(r->st, vds);
	tmp.kind = job_kind_def(js.kind);
	tmp.sel = select_get(js.strategy);
	tmp.js = js;
	if (js.selection_budget > 0 && tmp.sel->choose) {
		kept = js.selection_budget < 1 ? js.selection_budget
					       : (used ? js.selection_budget / (double)used : 0);
		if (kept > 1)
			kept = 1;
		kept_from = "the selection budget (an upper bound: screening may drop more)";
	} else {
		kept = 1.0;
		kept_from = "1.0, unknown before screening (an upper bound)";
	}
	shares[SHARE_ALL] = 1.0;
	shares[SHARE_KEPT] = kept;
	shares[SHARE_JUDGE] = EST_JUDGE_SHARE;
	shares[SHARE_WRONG] = EST_WRONG_SHARE;
	steps = json_array();
	for (int i = 0; i < tmp.kind->nphases; i++) {
		enum phase p = tmp.kind->phases[i];
		enum step first = job_phase_first_step(&tmp, p);
		bool held = job_phase_held_out(p);
		double base = held ? (double)sp.eval : (double)used;

		/* refer: every item, both splits, capped by max_items */
		if (job_phase_all_items(p))
			base = js.max_items > 0 && js.max_items < sp.train + sp.eval
				       ? (double)js.max_items
				       : (double)(sp.train + sp.eval);

		if (job_phase_takes_kept(&tmp, p))
			base *= kept;
		if (held && js.nstudents > 1)
			base *= js.nstudents; /* an eval job over several students: one round each */
		for (int s = 0; s < STEP__N; s++) {
			const struct step_def *d = step_def((enum step)s);
			const char *ep_name = d->embedder ? js.embedder
					      : d->student ? js.student
							   : js.teacher;
			const struct runner_endpoint *ep;
			double calls, pb, tin, tout, cost;

			if (d->phase != p || !est_on_path(&tmp, p, first, s) || !ep_name[0])
				continue;
			/* a refer check past the job's expressions_per_region */
			if (d->index > 0 && d->index > js.refer_expressions)
				continue;
			calls = base * (s == (int)first ? 1.0 : shares[est_shares[s]]);
			if (s == (int)first && first == tmp.sel->first_step)
				calls += (double)val_n;
			if (d->samples) /* one call per sample */
				calls *= js.rl.num_generations;
			ep = runner_endpoint_find(r, ep_name);
			pb = est_prompt_bytes(r->st, ds, prompts, (enum step)s,
					      held ? sp.eval_seq : sp.train_seq,
					      held ? sp.neval_seq : sp.ntrain_seq);
			/* bytes/4: the client's own estimate of a prompt (limits_estimate) */
			tin = calls * (pb / 4.0);
			tout = calls * (double)d->max_tokens;
			cost = ep ? (tin * ep->price_in_per_mtok + tout * ep->price_out_per_mtok) / 1e6
				  : 0;
			if (ep && js.teacher_batch && !d->student) {
				double bin, bout;

				if (client_endpoint_batch_prices(r->cl, ep_name, &bin, &bout) == 0)
					cost = (tin * bin + tout * bout) / 1e6;
			}
			json_array_append_new(
				steps, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:f}", "step",
						 d->name, "phase", phase_name(p), "endpoint", ep_name,
						 "calls", (json_int_t)(calls + 0.5),
						 "prompt_tokens_per_call", (json_int_t)(pb / 4.0 + 0.5),
						 "prompt_tokens", (json_int_t)(tin + 0.5),
						 "completion_tokens_max", (json_int_t)(tout + 0.5),
						 "cost_usd_max", cost));
			tot_calls += (int64_t)(calls + 0.5);
			tot_in += tin;
			tot_out += tout;
			tot_cost += cost;
		}
	}
	res = json_pack("{s:b, s:s, s:{s:I, s:I, s:I, s:I}, s:o, s:{s:I, s:I, s:I, s:f},"
			" s:{s:f, s:s, s:f, s:f, s:i, s:s},"
			" s:[s, s], s:s}",
			"dry_run", 1, "kind", tmp.kind->name,
			"items", "dataset", (json_int_t)(sp.train + sp.eval), "train",
			(json_int_t)sp.train, "eval", (json_int_t)sp.eval, "train_used",
			(json_int_t)used, "steps", steps, "total", "calls", (json_int_t)tot_calls,
			"prompt_tokens", (json_int_t)(tot_in + 0.5), "completion_tokens_max",
			(json_int_t)(tot_out + 0.5), "cost_usd_max", tot_cost, "assumptions",
			"kept_share", kept, "kept_share_from", kept_from, "judge_share",
			EST_JUDGE_SHARE, "wrong_share", EST_WRONG_SHARE, "prompt_sample",
			EST_SAMPLE, "prompt_tokens", "rendered prompts of the sample, 4 bytes a token",
			"upper_bounds", "completion_tokens_max: every call at its step's max_tokens",
			"cost_usd_max: prompt tokens at the input price plus completion_tokens_max at"
			" the output price",
			"not_counted", "re-asks (up to 3 attempts a step) and replies served from the"
			" cache (which cost nothing)");
	steps = NULL;
	if (!res) {
		rc = -ENOMEM;
		goto out;
	}
	{
		char dsid[32];

		snprintf(dsid, sizeof(dsid), "ds_%" PRId64, ds);
		json_object_set_new(res, "dataset", json_string(dsid));
		json_object_set_new(res, "name", json_string(js.name));
	}
	*out = res;
	rc = 0;
out:
	json_decref(steps);
	json_decref(prompts);
	jobspec_clear(&js);
	return rc;
}
