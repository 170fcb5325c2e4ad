#ifndef MT_REFER_H
#define MT_REFER_H
/* The refer job's steps (docs/refer.md): for each lesion item (a mask
 * region, formats/import_masks.c) the teacher sees the image, an overlay
 * with that region outlined and the region's attributes, and writes k
 * referring expressions (step refer); then each expression i is screened by
 * a call of its own (step refer_check<i>) that sees the image with every
 * candidate region outlined and numbered, and the expression alone, and
 * must pick the region. An expression is kept when the pick is the region
 * and unique; else it is dropped with the reason. Rows of the step table
 * (stages/steps.c); pure like the rest of the steps: images are decoded,
 * drawn and encoded in memory (formats/overlay.h). */

#include <jansson.h>
#include <stddef.h>

#include "stages/steps.h"

#define REFER_MAX_EXPRESSIONS 5     /* expressions_per_region: 1..5 */
#define REFER_DEFAULT_EXPRESSIONS 3
#define REFER_EXPRESSION_MAX 400    /* bytes of one expression */

/* The job's expressions_per_region (spec "refer"), or the default. */
int refer_expressions_per_region(json_t *spec);

json_t *refer_schema_write(void);
json_t *refer_schema_check(void);

/* Request builders of the rows (struct step_def.build): 0, or -EINVAL with
 * err naming the problem (an item without a usable mask or image). */
int refer_build_write(const struct step_def *d, const struct step_ctx *ctx, struct step_request *req,
		      char *err, size_t errlen);
int refer_build_check(const struct step_def *d, const struct step_ctx *ctx, struct step_request *req,
		      char *err, size_t errlen);

/* Reply judges of the rows (step_reply_fn). */
void refer_reply_write(const struct step_def *d, const struct step_ctx *ctx, const char *content,
		       json_t *json, struct step_outcome *out);
void refer_reply_check(const struct step_def *d, const struct step_ctx *ctx, const char *content,
		       json_t *json, struct step_outcome *out);

#endif
