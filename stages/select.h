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

#include <stdbool.h>
#include <stdint.h>

#include "stages/steps.h"

struct store;

enum select_id { SELECT_TEACHER_SCREEN = 0, SELECT_NONE, SELECT__N };

/* What a strategy may see and do of one job at the end of its screening.
 * Filled by the runner; every pointer borrowed for the call. */
struct select_ctx {
	struct store *st;    /* read the job's artifacts (verdicts) */
	int64_t job;
	double budget;       /* selection.budget: the fraction of screened items to keep */
	int64_t screened;    /* items screened: done, dropped or failed */
	void *ud;            /* the runner's */
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
};

extern const struct select_strategy select_teacher_screen;
extern const struct select_strategy select_none;

/* The row of strategy id (a valid enum value). */
const struct select_strategy *select_get(enum select_id id);
/* The strategy named name, or -1. */
int select_parse(const char *name);

#endif
