/* The runner's phases of a job: starting a phase, moving on, the
 * end-of-phase check with the selection strategy's choice, and the train
 * gate between the stages. Phase and kind names: stages/kinds.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "stages/runner_int.h"
#include "stages/trainhook.h"
#include "store/store.h"
#include "store/work.h"

/* ---- the runner's phases --------------------------------------------------- */

static void phase_summary_stage1(struct job *j);
static void phase_summary_stage2(struct job *j);
static void phase_summary_refer(struct job *j);

/* What the runner does in each phase. Work phases have steps (the step
 * table's phase); train phases are gates between them. */
struct phase_def {
	enum step first;       /* the step its items start with ... */
	bool selection;        /* ... unless the selection strategy says (and
				* chooses the subset at the end) */
	bool held_out;         /* works on the eval split, uncapped by max_items */
	bool takes_kept;       /* works on what stage one kept, when the job ran it */
	bool all_items;        /* works on every item, train and eval split alike */
	const char *train_set; /* a train gate: the SFT set it trains on; NULL otherwise */
	void (*summary)(struct job *j); /* logs the phase's result at its end */
};

static const struct phase_def phase_defs[PHASE__N] = {
	[PHASE_STAGE1] = { .first = STEP_SCREEN, .selection = true,
			   .summary = phase_summary_stage1 },
	[PHASE_TRAIN1] = { .train_set = "1" },
	[PHASE_STAGE2] = { .first = STEP_ANSWER, .takes_kept = true,
			   .summary = phase_summary_stage2 },
	[PHASE_TRAIN2] = { .train_set = "2" },
	[PHASE_EVAL] = { .first = STEP_EVAL, .held_out = true, .summary = job_eval_report },
	[PHASE_EVAL_BASE] = { .first = STEP_EVAL_BASE, .held_out = true, .summary = job_eval_report },
	[PHASE_EVAL1] = { .first = STEP_EVAL1, .held_out = true, .summary = job_eval_report },
	[PHASE_REFER] = { .first = STEP_REFER, .all_items = true, .summary = phase_summary_refer },
	[PHASE_RL] = { .first = STEP_RL_SAMPLE, .summary = job_rl_report },
};

enum phase job_phase(const struct job *j)
{
	return j->phase_idx < j->kind->nphases ? j->kind->phases[j->phase_idx] : PHASE__N;
}

enum step job_phase_first_step(const struct job *j, enum phase p)
{
	if (p < 0 || p >= PHASE__N)
		return STEP_EVAL;
	return phase_defs[p].selection ? j->sel->first_step : phase_defs[p].first;
}

bool job_phase_is_train(const struct job *j)
{
	enum phase p = job_phase(j);

	return p < PHASE__N && phase_defs[p].train_set;
}

bool job_phase_held_out(enum phase p) { return p < PHASE__N && phase_defs[p].held_out; }

bool job_phase_all_items(enum phase p) { return p < PHASE__N && phase_defs[p].all_items; }

bool job_phase_takes_kept(const struct job *j, enum phase p)
{
	if (p >= PHASE__N || !phase_defs[p].takes_kept)
		return false;
	for (int i = 0; i < j->kind->nphases; i++)
		if (j->kind->phases[i] == PHASE_STAGE1)
			return true;
	return false;
}

bool job_item_kept(const struct job *j, int64_t seq)
{
	/* Every step of stage one's path left its artifact: a screening that
	 * kept the item, then its explanation. An item never screened (past
	 * max_items), dropped, or whose explanation failed has a step without. */
	for (int s = j->sel->first_step; s >= 0; s = step_def((enum step)s)->next) {
		const struct step_def *d = step_def((enum step)s);
		json_t *a;
		bool ok;

		if (d->phase != PHASE_STAGE1)
			break;
		a = store_artifact_get(j->r->st, j->id, d->writes, seq);
		ok = a && (!d->screens || json_is_true(json_object_get(a, "keep")));
		json_decref(a);
		if (!ok)
			return false;
	}
	return true;
}

static void phase_summary_stage1(struct job *j)
{
	job_log(j, "phase", "stage1 done: %" PRId64 " screened (%" PRId64 " dropped, %" PRId64
			    " failed), %" PRId64 " explanations (%" PRId64 " dropped, %" PRId64
			    " failed): SFT set 1 is ready",
		j->st[STEP_SCREEN].done + j->st[STEP_SCREEN].dropped, j->st[STEP_SCREEN].dropped,
		j->st[STEP_SCREEN].failed, j->st[STEP_EXPLAIN].done, j->st[STEP_EXPLAIN].dropped,
		j->st[STEP_EXPLAIN].failed);
}

static void phase_summary_stage2(struct job *j)
{
	job_log(j, "phase", "stage2 done: %" PRId64 " answered, %" PRId64
			    " needed the judge, %" PRId64 " corrective chains (%" PRId64
			    " failed): SFT set 2 is ready",
		j->st[STEP_ANSWER].done, j->st[STEP_JUDGE].done + j->st[STEP_JUDGE].failed,
		j->st[STEP_CORRECT].done, j->st[STEP_CORRECT].failed);
}

static void phase_summary_refer(struct job *j)
{
	int64_t checked = 0;

	for (int s = STEP_REFER_CHECK1; s <= STEP_REFER_CHECK5; s++)
		checked += j->st[s].done;
	job_log(j, "phase", "refer done: %" PRId64 " regions written for (%" PRId64 " failed), %" PRId64
			    " expressions screened (%" PRId64 " failed); the kept ones are in the refcoco "
			    "and lvit exports",
		j->st[STEP_REFER].done, j->st[STEP_REFER].failed, checked,
		j->st[STEP_REFER_CHECK1].failed + j->st[STEP_REFER_CHECK2].failed +
			j->st[STEP_REFER_CHECK3].failed + j->st[STEP_REFER_CHECK4].failed +
			j->st[STEP_REFER_CHECK5].failed);
}

void job_phase_next(struct job *j)
{
	j->phase_idx++;
	j->seeding = true;
	j->seed_cursor = 0;
	for (int s = 0; s < STEP__N; s++)
		j->st[s].cursor = -1;
	job_save_runtime(j);
	if (j->phase_idx >= j->kind->nphases) {
		job_set_state(j, JOB_DONE, NULL);
		return;
	}
	job_phase_start(j);
}

/* ---- the train gate ------------------------------------------------------ */

static void job_student_ready(void *ud, int status)
{
	struct job *j = ud;

	j->training = false;
	if (j->r->closing)
		return;
	if (status != 0) {
		char why[160];

		snprintf(why, sizeof(why), "the student engine did not come back after retraining (%s)",
			 strerror(status < 0 ? -status : status));
		job_set_state(j, JOB_PAUSED, why);
		return;
	}
	job_log(j, "phase", "student %s restarted on the retrained model", j->js.student);
	if (j->state == JOB_RUNNING)
		job_phase_next(j);
}

/* The hook may name the retrained model in OUT_DIR/MODEL (one line, a
 * path); the student's engine is then restarted on it. New string or NULL. */
static char *hook_model_path(struct job *j)
{
	char path[1200], line[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/jobs/job_%" PRId64 "/train%s/MODEL", j->r->cfg.state_dir,
		 j->id, phase_defs[job_phase(j)].train_set);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	return line[0] ? strdup(line) : NULL;
}

static void job_hook_done(void *ud, int status, const char *why)
{
	struct job *j = ud;
	struct runner *r = j->r;

	j->training = false;
	trainhook_free(j->hook);
	j->hook = NULL;
	if (r->closing || job_state_finished(j->state))
		return; /* a cancelled job's hook was stopped: it stays cancelled */
	if (status != 0) {
		job_set_state(j, JOB_PAUSED, why);
		return;
	}
	job_log(j, "phase", "%s: train hook finished", phase_name(job_phase(j)));
	if (j->state != JOB_RUNNING)
		return;
	if (r->cfg.restart_student && j->js.student[0]) {
		char *model = hook_model_path(j);
		int rc = r->cfg.restart_student(r->cfg.restart_ud, j->js.student, model,
						job_student_ready, j);

		if (rc == 0)
			job_log(j, "phase", "restarting student %s%s%s", j->js.student,
				model ? " on " : "", model ? model : "");
		free(model);
		if (rc == 0) {
			j->training = true; /* waits for the engine, like a hook */
			return;
		}
		if (rc != -ENOENT) {
			job_set_state(j, JOB_PAUSED, "cannot restart the student engine");
			return;
		}
	}
	job_phase_next(j);
}

static void job_train_gate(struct job *j, const char *set)
{
	char err[300];
	struct trainhook_params hp = {
		.loop = j->r->loop, .store = j->r->st, .job = j->id,
		.dataset = j->dataset, .set = set,
		.state_dir = j->r->cfg.state_dir, .argv = j->r->cfg.train_argv,
		.timeout_s = j->r->cfg.train_timeout_s,
		.kill_grace_s = j->r->cfg.train_kill_grace_s,
		.env_hide = j->r->cfg.child_env_hide,
		.n_env_hide = j->r->cfg.n_child_env_hide,
	};
	const struct runner_endpoint *ep;

	j->seeding = false;
	switch (j->js.train) {
	case TRAIN_NONE:
		job_phase_next(j);
		return;
	case TRAIN_MANUAL:
		job_log(j, "phase", "SFT set %s is ready; retrain the student, then run "
				    "`medthink resume job_%" PRId64 "`",
			set, j->id);
		job_set_state(j, JOB_PAUSED, REASON_RETRAIN);
		return;
	default:
		break;
	}
	ep = runner_endpoint_find(j->r, j->js.student);
	if (ep)
		hp.model_path = ep->model_path;
	if (trainhook_start(&hp, job_hook_done, j, &j->hook, err, sizeof(err)) != 0) {
		job_set_state(j, JOB_PAUSED, err);
		return;
	}
	j->training = true;
	job_log(j, "phase", "SFT set %s is ready; train hook started", set);
}

void job_phase_start(struct job *j)
{
	enum phase p = job_phase(j);
	json_t *d = json_pack("{s:s}", "phase", phase_name(p));

	job_emit(j, "phase", d);
	json_decref(d);
	if (p < PHASE__N && phase_defs[p].train_set) {
		job_train_gate(j, phase_defs[p].train_set);
		return;
	}
	job_log(j, "phase", "%s started", phase_name(p));
	j->seeding = true;
	runner_pump_soon(j->r);
}

/* ---- the end of a phase ---------------------------------------------------- */

static void select_log(struct select_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	job_logv(c->ud, "phase", fmt, ap);
	va_end(ap);
}

/* The strategy's choice: kept items go on to the step after its first, the
 * others are dropped with the reason. One transaction with the runtime
 * flag, so a crash never selects twice. */
static int select_apply(struct select_ctx *c, const int64_t *keep, size_t nkeep,
			const int64_t *drop, size_t ndrop, const char *reason)
{
	struct job *j = c->ud;
	struct store *st = j->r->st;
	enum step first = j->sel->first_step;
	int next = select_then(j->sel);
	int rc;

	if (next < 0)
		return -EINVAL;
	rc = store_begin(st);
	if (rc)
		return rc;
	for (size_t i = 0; i < nkeep && rc == 0; i++)
		rc = store_tasks_insert_pending(st, j->id, step_name((enum step)next), &keep[i], 1) < 0
			     ? -EIO
			     : 0;
	for (size_t i = 0; i < ndrop && rc == 0; i++)
		rc = store_task_put(st, j->id, step_name(first), drop[i], STORE_TASK_DROPPED, 1, reason);
	/* every item's scores and the summary, with the choice */
	for (size_t i = 0; i < c->nscores && rc == 0; i++)
		rc = store_artifact_put(st, j->id, "selection", c->scores[i].seq, 0, c->scores[i].score);
	if (rc == 0 && c->summary) {
		json_decref(j->selection);
		j->selection = json_incref(c->summary);
	}
	if (rc == 0) {
		j->selected = true;
		job_save_runtime(j);
		rc = store_commit(st);
	} else {
		store_rollback(st);
	}
	if (rc) {
		j->selected = false;
		return rc;
	}
	j->st[next].pending += (int64_t)nkeep;
	j->st[first].done -= (int64_t)ndrop;
	j->st[first].dropped += (int64_t)ndrop;
	j->st[next].cursor = -1;
	runner_pump_soon(j->r);
	return 0;
}

static int job_select(struct job *j)
{
	const struct step_stat *fs = &j->st[j->sel->first_step];
	struct select_ctx c = {
		.st = j->r->st, .job = j->id, .budget = j->js.selection_budget,
		.screened = fs->done + fs->dropped + fs->failed, .ud = j,
		.opts = &j->js.sel, .seed = j->js.seed,
		.apply = select_apply, .log = select_log,
	};
	int rc = j->sel->choose(&c);

	if (rc)
		log_error("job_%" PRId64 ": selection failed: %s", j->id, strerror(-rc));
	return rc;
}

static bool job_phase_pending(const struct job *j, enum phase p)
{
	for (int s = 0; s < STEP__N; s++)
		if (step_def((enum step)s)->phase == p && j->st[s].pending > 0)
			return true;
	return false;
}

void job_phase_check(struct job *j)
{
	enum phase p = job_phase(j);

	if (j->state != JOB_RUNNING || j->seeding || j->training || j->in_flight > 0 ||
	    j->counting || p == PHASE__N || phase_defs[p].train_set)
		return;
	if (job_phase_pending(j, p))
		return;
	if (phase_defs[p].selection && j->sel->choose && !j->selected) {
		/* On failure the next pump tries again. */
		if (job_select(j) != 0 || job_phase_pending(j, p))
			return;
	}
	if (phase_defs[p].summary)
		phase_defs[p].summary(j);
	if (job_eval_next_round(j))
		return;
	job_phase_next(j);
}
