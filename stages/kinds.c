/* The names of the runner's enums (stages/kinds.h): phases, job kinds with
 * their phase lists, train modes and job states. Pure tables. */
#include "stages/kinds.h"

#include <string.h>

static const char *const phase_names[PHASE__N] = { "stage1", "train1", "stage2", "train2", "eval",
						  "eval_baseline", "eval_stage1", "refer", "rl" };

static const struct job_kind_def kinds[JOB_KIND__N] = {
	/* The student is evaluated at every checkpoint: before stage one,
	 * after each retrain (stages/checkpoints.c). */
	[JOB_KIND_PIPELINE] = { "pipeline",
				{ PHASE_EVAL_BASE, PHASE_STAGE1, PHASE_TRAIN1, PHASE_EVAL1, PHASE_STAGE2,
				  PHASE_TRAIN2, PHASE_EVAL },
				7, true, true, false, PHASE_STAGE1 },
	[JOB_KIND_STAGE1] = { "stage1", { PHASE_STAGE1 }, 1, true, false, false, PHASE_STAGE1 },
	[JOB_KIND_STAGE2] = { "stage2", { PHASE_STAGE2 }, 1, true, true, false, PHASE_STAGE1 },
	/* An eval job may go without a teacher: answers the rules cannot
	 * grade are then left ungraded. */
	[JOB_KIND_EVAL] = { "eval", { PHASE_EVAL }, 1, false, true, false, PHASE_STAGE1 },
	/* Referring expressions for the lesions of mask items (docs/refer.md). */
	[JOB_KIND_REFER] = { "refer", { PHASE_REFER }, 1, true, false, false, PHASE_STAGE1 },
	/* MedVLM-R1 prompt sets: the student samples, the rewards score. */
	[JOB_KIND_RL] = { "rl", { PHASE_RL }, 1, false, true, true, PHASE_RL },
};

static const char *const train_names[TRAIN__N] = { "hook", "manual", "none" };

static const char *const state_names[JOB_STATE__N] = { "queued", "running", "paused",
						       "done",   "failed",  "cancelled" };

static int name_index(const char *const *names, int n, const char *name)
{
	for (int i = 0; name && i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

const char *phase_name(enum phase p)
{
	return (p >= 0 && p < PHASE__N) ? phase_names[p] : "done";
}

const struct job_kind_def *job_kind_def(enum job_kind k)
{
	return &kinds[(k >= 0 && k < JOB_KIND__N) ? k : JOB_KIND_EVAL];
}

int job_kind_parse(const char *name)
{
	for (int i = 0; name && i < JOB_KIND__N; i++)
		if (strcmp(kinds[i].name, name) == 0)
			return i;
	return -1;
}

const char *train_mode_name(enum train_mode t)
{
	return (t >= 0 && t < TRAIN__N) ? train_names[t] : "?";
}

int train_mode_parse(const char *name) { return name_index(train_names, TRAIN__N, name); }

const char *job_state_name(enum job_state s)
{
	return (s >= 0 && s < JOB_STATE__N) ? state_names[s] : "?";
}

int job_state_parse(const char *name) { return name_index(state_names, JOB_STATE__N, name); }

bool job_state_finished(enum job_state s)
{
	return s == JOB_DONE || s == JOB_FAILED || s == JOB_CANCELLED;
}
