#ifndef MT_KINDS_H
#define MT_KINDS_H
/* The names the runner works with, as enums inside and names only at the
 * edges (store rows, status JSON, job specs): the phases of a job, the kinds
 * of job with the phases each runs, the train gate's modes and the states of
 * a job. Pure tables; the phase logic itself is private to the runner
 * (stages/phases.c, stages/runner_int.h); these tables live in stages/kinds.c. */

#include <stdbool.h>

enum phase {
	PHASE_STAGE1 = 0,
	PHASE_TRAIN1,
	PHASE_STAGE2,
	PHASE_TRAIN2,
	PHASE_EVAL,
	/* the checkpoints before stage one and after the first retrain
	 * (stages/checkpoints.c); PHASE_EVAL is the one after the second */
	PHASE_EVAL_BASE,
	PHASE_EVAL1,
	PHASE_REFER, /* referring expressions for mask regions (stages/refer.c) */
	PHASE_RL,
	PHASE__N
};

/* "stage1", "train1", ...; "done" for PHASE__N (past the last phase). */
const char *phase_name(enum phase p);

enum job_kind {
	JOB_KIND_PIPELINE = 0,
	JOB_KIND_STAGE1,
	JOB_KIND_STAGE2,
	JOB_KIND_EVAL,
	JOB_KIND_REFER,
	JOB_KIND_RL,
	JOB_KIND__N
};

/* One kind of job: its name in specs and store rows, the phases it runs in
 * order, and which endpoints a spec of this kind must name. */
struct job_kind_def {
	const char *name;
	enum phase phases[PHASE__N];
	int nphases;
	bool needs_teacher;
	bool needs_student;
	/* Jobs of this kind work on every item: eval_fraction defaults to 0. */
	bool no_eval_split;
	/* The phase that makes export set 1 (PHASE_STAGE1 when not set). */
	enum phase set1_phase;
};

/* The row of kind k (a valid enum value). */
const struct job_kind_def *job_kind_def(enum job_kind k);
/* The kind named name, or -1. */
int job_kind_parse(const char *name);

/* What a train phase does: run the [train] hook, pause until the user
 * resumes ("awaiting retrain"), or pass straight on. */
enum train_mode { TRAIN_HOOK = 0, TRAIN_MANUAL, TRAIN_NONE, TRAIN__N };

const char *train_mode_name(enum train_mode t);
int train_mode_parse(const char *name);

enum job_state {
	JOB_QUEUED = 0,
	JOB_RUNNING,
	JOB_PAUSED,
	JOB_DONE,
	JOB_FAILED,
	JOB_CANCELLED,
	JOB_STATE__N
};

/* "queued", "running", ...; job_state_parse returns -1 for an unknown name. */
const char *job_state_name(enum job_state s);
int job_state_parse(const char *name);
/* True for done, failed and cancelled. */
bool job_state_finished(enum job_state s);

#endif
