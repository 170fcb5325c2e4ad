/* The rl phase's report (stages/rl.h): summed over the items' artifacts at
 * the end of the phase, kept in the job's runtime and its status. */
#include <inttypes.h>
#include <stdio.h>

#include "stages/runner_int.h"
#include "store/work.h"

static int rl_one(void *ud, int64_t seq, json_t *content)
{
	(void)seq;
	rl_report_add(ud, content);
	return 0;
}

void job_rl_report(struct job *j)
{
	struct rl_report r = { 0 };
	json_t *h;

	store_artifacts_each(j->r->st, j->id, "rl", -1, 0, rl_one, &r);
	json_decref(j->rl);
	j->rl = rl_report_json(&r, &j->js.rl);
	h = json_object_get(j->rl, "pass_rate_histogram");
	job_log(j, "rl",
		"rl done: %ld items sampled %d times (%ld samples, %ld format failures, %ld cut); "
		"pass rate 0: %" JSON_INTEGER_FORMAT ", (0,0.25]: %" JSON_INTEGER_FORMAT
		", (0.25,0.5]: %" JSON_INTEGER_FORMAT ", (0.5,1): %" JSON_INTEGER_FORMAT
		", 1: %" JSON_INTEGER_FORMAT "; keep %s: %ld items for the grpo export",
		r.items, j->js.rl.num_generations, r.samples, r.format_failures, r.cut,
		json_integer_value(json_object_get(h, "0")),
		json_integer_value(json_object_get(h, "(0,0.25]")),
		json_integer_value(json_object_get(h, "(0.25,0.5]")),
		json_integer_value(json_object_get(h, "(0.5,1)")),
		json_integer_value(json_object_get(h, "1")), j->js.rl.keep->name, r.kept);
	job_save_runtime(j);
}
