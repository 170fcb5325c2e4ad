#ifndef MT_STEPS_H
#define MT_STEPS_H
/* The MedThink method, one step at a time: what each step asks a model and
 * what its reply means for the item. Pure functions over jansson (prompts
 * from stages/prompts.h, grading from stages/grade.h); no I/O, so the job
 * runner (stages/runner.c) owns every side effect and these are unit-tested
 * on their own.
 *
 * An item moves through the steps of a phase:
 *   stage one:  screen -> explain                    (SFT set 1: explanations)
 *   stage two:  answer -> [judge] -> correct         (SFT set 2: chains)
 *   eval:       eval -> [eval_judge]                 (accuracy report)
 * and the same eval steps at a pipeline's earlier checkpoints:
 *   eval_baseline -> [eval_baseline_judge], eval_stage1 -> [eval_stage1_judge]
 * judge steps run only when the rules cannot grade an answer. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "stages/kinds.h"
#include "stages/rl.h"

enum step {
	STEP_SCREEN = 0,
	STEP_EXPLAIN,
	STEP_ANSWER,
	STEP_JUDGE,
	STEP_CORRECT,
	STEP_EVAL,
	STEP_EVAL_JUDGE,
	/* the DIQ-like and 3DS selections' scoring (stages/steps_select.c) */
	STEP_DIQ_EMBED,
	STEP_DIQ_RATE,
	STEP_DIQ_LOSS,
	STEP_S3_RATE,
	STEP_S3_PROBE,
	STEP_S3_GREEDY,
	STEP_S3_EMBED,
	/* eval and eval_judge at the earlier checkpoints of a pipeline */
	STEP_EVAL_BASE,
	STEP_EVAL_BASE_JUDGE,
	STEP_EVAL1,
	STEP_EVAL1_JUDGE,
	/* refer (stages/refer.c): the teacher writes the region's expressions,
	 * then each is screened by its own call, expression i by check i */
	STEP_REFER,
	STEP_REFER_CHECK1,
	STEP_REFER_CHECK2,
	STEP_REFER_CHECK3,
	STEP_REFER_CHECK4,
	STEP_REFER_CHECK5,
	STEP_RL_SAMPLE,
	STEP__N
};

/* How many times a step is asked for one item before it gives up: an
 * explanation that contradicts the gold answer, or a chain that does not end
 * in it, is re-asked; a malformed reply is re-asked too. Teacher text that
 * fails screening (stages/textcheck.h: cut, degenerate, another language,
 * an echo of the prompt, a runaway tail) is re-asked with the reason in the
 * next prompt, and on the last attempt the item is dropped with it. */
#define STEP_MAX_ATTEMPTS 3

/* A student reply cut by the token limit (finish_reason "length") with no
 * explicit answer is re-asked with this many times the step's max_tokens;
 * still cut on the last attempt, it is recorded ungraded. */
#define STEP_CUT_TOKENS_FACTOR 4
#define STEP_CUT_REASON "the reply was cut by the token limit (finish_reason length)"

/* "screen", "explain", ... ; step_parse returns -1 for an unknown name. */
const char *step_name(enum step s);
int step_parse(const char *name);
/* True for the steps answered by the student (answer, eval). */
bool step_is_student(enum step s);

struct step_def;
struct step_ctx;
struct step_outcome;
struct step_request;

/* What a reply to the step of row d means (see step_reply_judge). */
typedef void (*step_reply_fn)(const struct step_def *d, const struct step_ctx *ctx,
			      const char *content, json_t *json, struct step_outcome *out);

/* One step of the method. The runner reads these rows and never switches on
 * a step: a new step is a new enum value, a row and its reply function. */
struct step_def {
	const char *name;          /* in task rows and status counts */
	const char *template_name; /* the prompt template it renders */
	enum phase phase;          /* the phase whose items it works on */
	bool student;              /* answered by the student, else by the teacher */
	bool screens;              /* its verdict is what a selection strategy chooses from */
	bool wants_json;           /* the reply is a JSON object ... */
	json_t *(*schema)(void);   /* ... of this JSON Schema (new reference), or NULL */
	const char *schema_name;
	int64_t max_tokens;
	const char *reads;         /* the artifact kind it reads as ctx->prior, or NULL */
	const char *writes;        /* the artifact kind it writes */
	int next;                  /* what follows when the item needs more: a kept
				    * screen, a wrong answer; -1: nothing */
	int next_unclear;          /* what follows when the rules cannot grade; -1 */
	step_reply_fn reply;
	bool embedder;             /* answered by the job's embedder */
	/* A /v1/completions (or, for the embedder, /v1/embeddings) step: the
	 * text it sends, a new string (NULL with err set when the item has
	 * none); template_name is then only its label. */
	char *(*text)(const struct step_ctx *ctx, char *err, size_t errlen);
	int logprobs;              /* completion: logprobs asked for */
	bool echo;                 /* completion: the prompt's logprobs too */
	/* Builds the request itself instead of rendering template_name (the
	 * refer steps: images drawn for the request); NULL for most rows. */
	int (*build)(const struct step_def *d, const struct step_ctx *ctx, struct step_request *req,
		     char *err, size_t errlen);
	int index; /* the refer checks: which expression (1-based) */
	/* Sampled (rl): asked rl.num_generations times at rl.temperature, each
	 * time with the next seed and never with a re-ask note; every reply is
	 * kept in the artifact it reads back. */
	bool samples;
};

/* The row of step s (a valid enum value). */
const struct step_def *step_def(enum step s);

/* What a step needs to build its request and judge its reply (all borrowed).
 * prior: the artifact the step reads (its row's reads), or NULL: the
 * student's answer artifact ({"reply":...}) for judge, correct and eval_judge. */
struct select_opts;

struct step_ctx {
	json_t *item;     /* normalized item */
	json_t *prompts;  /* the job's prompt snapshot */
	json_t *prior;
	int attempt;      /* 0 for the first ask */
	const char *last_problem; /* why the previous attempt was re-asked, or NULL */
	bool length_cut;  /* the reply stopped at max_tokens (finish_reason
	                     "length"; the runner sets it from the client result) */
	json_t *reply;    /* the whole reply body (logprobs, embeddings), or NULL */
	const struct select_opts *sel; /* the job's selection options, or NULL */
	int64_t seed;     /* the job's seed */
	json_t *spec;     /* the job's normalized spec, or NULL */
	const struct rl_opts *rl; /* the job's rl options (sampled steps), or NULL */
	bool validation_item; /* item is of the DIQ validation dataset, not the job's */
	json_t *messages; /* the messages the request sent (step_request_build), or
	                     NULL: the screening reads them instead of rendering
	                     the prompt again */
};

/* A request to make: the messages (new reference) and how to ask. */
struct step_request {
	json_t *messages;
	bool expect_json;
	json_t *schema;        /* new reference or NULL: JSON Schema of the reply */
	const char *schema_name;
	double temperature;
	int64_t max_tokens;
	/* a completion or embedding step (its row's text): sent instead of
	 * messages (NULL then) */
	char *prompt;
	int logprobs;
	bool echo;
	bool embed;
	int64_t seed;          /* sent as "seed" when > 0 (sampled steps) */
};

/* Builds the request for step s. Returns 0, or -EINVAL with err set (a
 * template that does not render). The caller releases req with
 * step_request_clear(). */
int step_request_build(enum step s, const struct step_ctx *ctx, struct step_request *req,
		       char *err, size_t errlen);
void step_request_clear(struct step_request *req);

enum step_result {
	STEP_DONE,    /* the step is done; next says what follows */
	STEP_DROPPED, /* the item leaves the set, with a reason (screening) */
	STEP_RETRY,   /* ask again (attempt + 1) for the reason given */
	STEP_FAILED,  /* the step gave up on this item, with a reason */
};

/* What a reply means. artifact (new reference or NULL) is stored under
 * artifact_kind; next is the step that follows, or -1 when the item is
 * finished for this phase. */
struct step_outcome {
	enum step_result result;
	char reason[256];
	const char *artifact_kind;
	json_t *artifact;
	int next;
	/* eval / grading outcomes, for counters */
	bool judged;       /* a judge step decided */
	bool ungraded;     /* nobody could grade the answer */
};

/* Interprets a model reply to step s: content is the reply text, json the
 * object taken from it when the step expects JSON (NULL when none could be
 * taken). Never fails: a reply that makes no sense becomes STEP_RETRY (or
 * STEP_FAILED on the last attempt) with the reason. Release with
 * step_outcome_clear(). */
void step_reply_judge(enum step s, const struct step_ctx *ctx, const char *content, json_t *json,
		      struct step_outcome *out);
void step_outcome_clear(struct step_outcome *out);

/* The SFT target text of an artifact: for an "explanation" its text, for a
 * "chain" the reasoning ending with the final answer line. A new string the
 * caller frees, or NULL when the artifact has no usable text. */
char *step_sft_output(const char *kind, json_t *artifact, json_t *item);

/* The reply rule of the rl sampling step (stages/steps_rl.c): every reply is
 * a sample, scored and appended to the item's "rl" artifact; STEP_RETRY asks
 * for the next sample, STEP_DONE comes with the last (ctx->rl's
 * num_generations). */
void step_reply_rl(const struct step_def *d, const struct step_ctx *ctx, const char *content,
		   json_t *json, struct step_outcome *out);

#endif
