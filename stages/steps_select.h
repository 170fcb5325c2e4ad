#ifndef MT_STEPS_SELECT_H
#define MT_STEPS_SELECT_H
/* The scoring steps of the DIQ-like and 3DS selections, as step-table
 * functions (rows in stages/steps.c): the texts sent to /v1/completions and
 * /v1/embeddings, and what their replies mean. Pure over jansson (the math
 * is stages/selmath.h); private to stages/. */

#include <jansson.h>
#include <stddef.h>

#include "stages/steps.h"

/* The completion texts: the item as a prompt ("Question: ...\nAnswer:"),
 * and that prompt followed by " " and the gold answer; the embedding text:
 * the question with its options. New strings, or NULL with err set. */
char *steps_sel_text_prompt(const struct step_ctx *ctx, char *err, size_t errlen);
char *steps_sel_text_gold(const struct step_ctx *ctx, char *err, size_t errlen);
char *steps_sel_text_embed(const struct step_ctx *ctx, char *err, size_t errlen);
/* The byte length of steps_sel_text_prompt's text for item (where the
 * gold answer starts in steps_sel_text_gold's), or -1. */
long steps_sel_prompt_len(json_t *item);

json_t *steps_sel_schema_difficulty(void);
void steps_sel_reply_embed(const struct step_def *d, const struct step_ctx *ctx,
			   const char *content, json_t *json, struct step_outcome *out);
void steps_sel_reply_difficulty(const struct step_def *d, const struct step_ctx *ctx,
				const char *content, json_t *json, struct step_outcome *out);
void steps_sel_reply_gold(const struct step_def *d, const struct step_ctx *ctx,
			  const char *content, json_t *json, struct step_outcome *out);
void steps_sel_reply_greedy(const struct step_def *d, const struct step_ctx *ctx,
			    const char *content, json_t *json, struct step_outcome *out);
void steps_sel_reply_rating(const struct step_def *d, const struct step_ctx *ctx,
			    const char *content, json_t *json, struct step_outcome *out);

/* True when the item with id ext_id is in the DIQ validation share
 * (fraction of the train split) of a job with seed: a pure function of
 * both, independent of the eval split's hash. */
bool steps_sel_is_validation(int64_t seed, const char *ext_id, double fraction);

#endif
