#ifndef MT_JOBSPEC_H
#define MT_JOBSPEC_H
/* Job specs (SPEC 6): parsing and validation of what a user submits, into a
 * fixed struct, and back to the normalized JSON a job stores. Pure. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "stages/kinds.h"
#include "stages/rl.h"
#include "stages/select.h"

/* At most this many students in an eval job's "students". */
#define JOBSPEC_MAX_STUDENTS 16

struct jobspec {
	char name[128];
	char dataset[128];    /* id or name as given */
	enum job_kind kind;   /* pipeline | stage1 | stage2 | eval */
	char teacher[96];     /* endpoint name "teacher.NAME", or "" */
	char student[96];     /* endpoint name "student.NAME", or "" */
	double eval_fraction; /* [0, 1) */
	int64_t seed;
	enum select_id strategy; /* a row of stages/select.h: teacher_screen | none */
	double selection_budget; /* fraction of items to keep, 0: no cap */
	enum train_mode train; /* hook | manual | none */
	bool train_given;
	double budget_usd;    /* 0: no budget */
	int64_t max_items;    /* 0: all */
	bool fail_on_down;    /* on_endpoint_down "fail" (default "pause") */
	char embedder[96];    /* endpoint name "embedder.NAME", or "" */
	struct select_opts sel; /* the strategy's own selection options */
	/* An eval job's "students": the endpoints it evaluates one after the
	 * other on the same split ("student.NAME"; student is the first).
	 * nstudents 0 when the spec names one student. */
	char students[JOBSPEC_MAX_STUDENTS][96];
	int nstudents;
	int refer_expressions; /* kind refer: expressions_per_region (1..5) */
	struct rl_opts rl;    /* "rl" (kind rl; defaults otherwise) */
	bool teacher_batch;   /* teacher_mode "batch" (default "online"): teacher calls go
	                         through the provider's Batch API */
};

/* Parses spec (borrowed) into js. Unknown keys, wrong types and values out of
 * range are errors: returns -EINVAL with err filled (the field named); a
 * spec that is not an object is -EBADMSG. */
int jobspec_parse(json_t *spec, struct jobspec *js, struct mt_err *err);
/* The normalized spec: every field present, defaults filled. New reference. */
json_t *jobspec_to_json(const struct jobspec *js);
/* Nothing to free today; kept so callers do not care. */
void jobspec_clear(struct jobspec *js);

#endif
