#ifndef MT_SELECT_H
#define MT_SELECT_H
/* Selection strategies of stage one: which items go on to their explanation.
 * One row per strategy (like curl's Curl_handler), each in a file of its own
 * (stages/select_<name>.c); the runner calls through the row and never
 * switches on a strategy. A new strategy is one file, one enum value and one
 * row in the table of stages/select.c.
 *
 * A strategy sees a job only through struct select_ctx: it reads what it
 * needs from the store and hands its choice back to the runner, which writes
 * it in one transaction. Loop thread only. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#include "stages/steps.h"

struct store;

enum select_id { SELECT_TEACHER_SCREEN = 0, SELECT_NONE, SELECT_DIQ, SELECT_3DS, SELECT__N };

/* A strategy's own options (job spec "selection"), parsed by its row;
 * zero for strategies without options. */
enum select_axis { SELECT_AXIS_OVERALL = 0, SELECT_AXIS_KNOWLEDGE, SELECT_AXIS_REASONING };
struct select_opts {
	double difficulty_percentile; /* diq: the difficulty split, 0-100 (50) */
	enum select_axis axis;        /* diq: the rating axis that drives it */
	double validation_fraction;   /* diq: share of the train split held out by seed
				       * as the validation set (0.05; 0 with a dataset) */
	char validation_dataset[128]; /* diq: "validation":{"dataset":...}, the id or
				       * name as given ("ds_N" once submitted), or "" */
	double rating_threshold;      /* 3ds: stage A keeps ratings >= this (85) */
	double pct_lo, pct_hi;        /* 3ds: the percentile window (25, 75) */
};

/* One item's scores, written by the runner as its "selection" artifact in
 * the transaction of the choice (owned by the strategy). */
struct select_score {
	int64_t seq;
	json_t *score;
};

/* What a strategy may see and do of one job at the end of its screening.
 * Filled by the runner; every pointer borrowed for the call. */
struct select_ctx {
	struct store *st;    /* read the job's artifacts (verdicts) */
	int64_t job;
	double budget;       /* selection.budget: the fraction of screened items to keep */
	int64_t screened;    /* items screened: done, dropped or failed */
	const struct select_opts *opts; /* the job's selection options */
	int64_t seed;        /* the job's seed */
	void *ud;            /* the runner's */
	/* Set by choose before it calls apply (owned by choose): every item's
	 * scores and the summary (status "selection"), stored with the choice. */
	const struct select_score *scores;
	size_t nscores;
	json_t *summary;
	/* Writes the choice in one transaction with the job's "selected" flag:
	 * each of keep[] (item seqs, in the order given) goes on to the step
	 * after the strategy's first step; each of drop[] leaves the set with
	 * reason. 0, or a negative errno with nothing written. */
	int (*apply)(struct select_ctx *c, const int64_t *keep, size_t nkeep, const int64_t *drop,
		     size_t ndrop, const char *reason);
	/* A line in the job's log (stored and sent to subscribers). */
	void (*log)(struct select_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
};

struct select_strategy {
	const char *name;      /* selection.strategy in a job spec */
	enum step first_step;  /* the step stage one starts with */
	/* An item's screening reply was judged (out borrowed): the strategy may
	 * hold back what follows (out->next = -1) until it chooses. budget is
	 * selection.budget. Hot path: no store access. NULL: nothing to do. */
	void (*on_screened)(double budget, struct step_outcome *out);
	/* Every item is screened: choose the subset through c->apply. Returns 0
	 * (also when there was nothing to choose) or a negative errno; the
	 * runner tries again on its next pass. NULL: nothing to choose. */
	int (*choose)(struct select_ctx *c);
	/* Where the chosen items go; 0 (STEP_SCREEN, never a target): the
	 * step after first_step. */
	enum step then;
	bool needs_embedder;   /* the job spec must name "embedder" */
	bool needs_logprobs;   /* the student must give prompt logprobs (probed at submit) */
	bool budget_counts;    /* budget > 0 required; >= 1 is a count of items */
	/* Parses the strategy's own keys of sel (the job spec's "selection",
	 * borrowed) into o, with the defaults; every other key but strategy
	 * and budget is an error naming it. NULL: the strategy has none. */
	int (*opts_parse)(json_t *sel, struct select_opts *o, struct mt_err *err);
	/* Adds o's keys to sel (the normalized spec). */
	void (*opts_json)(const struct select_opts *o, json_t *sel);
};

extern const struct select_strategy select_teacher_screen;
extern const struct select_strategy select_none;
extern const struct select_strategy select_diq;
extern const struct select_strategy select_3ds;

/* The step chosen items go on to (the row's then, or first_step's next). */
int select_then(const struct select_strategy *s);
/* Holds back an item whose scoring chain would go on to s's then step until
 * every item is scored and the strategy has chosen (an on_screened). */
void select_hold_scored(double budget, struct step_outcome *out);

/* The row of strategy id (a valid enum value). */
const struct select_strategy *select_get(enum select_id id);
/* The strategy named name, or -1. */
int select_parse(const char *name);

#endif
