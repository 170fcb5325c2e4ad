/* The rl sampling step's reply rule (stages/steps.h, stages/rl.h). */
#include "stages/steps.h"

#include <stdio.h>
#include <string.h>

void step_reply_rl(const struct step_def *d, const struct step_ctx *ctx, const char *content,
		   json_t *json, struct step_outcome *out)
{
	struct rl_opts dflt;
	const struct rl_opts *o = ctx->rl;
	bool complete = false;
	json_t *art;
	int n;

	(void)json;
	if (!o) {
		rl_opts_default(&dflt);
		o = &dflt;
	}
	/* Every reply is a sample, a malformed one too: its format reward says
	 * so, and GRPO learns from it. */
	art = rl_artifact_add(o, ctx->prior, content ? content : "",
			      json_string_value(json_object_get(ctx->item, "answer")), ctx->length_cut,
			      &complete);
	if (!art) {
		out->result = STEP_FAILED;
		snprintf(out->reason, sizeof(out->reason), "out of memory scoring a sample");
		return;
	}
	out->artifact = art;
	out->artifact_kind = d->writes;
	n = rl_samples(art);
	if (complete) {
		out->result = STEP_DONE;
		out->next = -1;
		return;
	}
	out->result = STEP_RETRY;
	snprintf(out->reason, sizeof(out->reason), "sample %d of %d stored", n, o->num_generations);
}
