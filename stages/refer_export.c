/* A refer job's regions for the document exporters (stages/refer_export.h). */
#include "stages/refer_export.h"

#include <errno.h>
#include <stdio.h>

#include "common/err.h"
#include "stages/jobspec.h"
#include "stages/refer.h"
#include "stages/runner_int.h"
#include "store/store.h"
#include "store/work.h"

struct collect {
	struct store *st;
	int64_t job, dataset;
	struct jobspec js;
	json_t *out;
};

static int collect_one(void *ud, int64_t seq, json_t *content)
{
	struct collect *c = ud;
	json_t *item = store_item_get(c->st, c->dataset, seq), *exprs = json_array(), *e;
	const char *image_id;
	size_t i;
	int rc = 0;

	if (!item || !exprs) {
		rc = item ? -ENOMEM : 0; /* an item gone from the store: skipped */
		goto out;
	}
	json_array_foreach(json_object_get(content, "expressions"), i, e) {
		char kind[32];
		json_t *chk;

		snprintf(kind, sizeof(kind), "refer_check%zu", i + 1);
		chk = store_artifact_get(c->st, c->job, kind, seq);
		json_array_append_new(exprs, json_pack("{s:O, s:b, s:s}", "text", e, "kept",
						       json_is_true(json_object_get(chk, "kept")), "reason",
						       json_string_value(json_object_get(chk, "reason"))
							       ? json_string_value(json_object_get(chk, "reason"))
							       : "not screened"));
		json_decref(chk);
	}
	image_id = json_string_value(json_object_get(json_object_get(item, "mask"), "image_id"));
	json_array_append_new(c->out, json_pack("{s:O, s:s, s:O}", "item", item, "split",
						runner_split_is_eval(&c->js, image_id ? image_id : "") ? "val"
												      : "train",
						"expressions", exprs));
out:
	json_decref(item);
	json_decref(exprs);
	return rc;
}

int refer_export_regions(struct store *st, int64_t job, int64_t dataset, json_t *spec, json_t **out)
{
	struct collect c = { .st = st, .job = job, .dataset = dataset };
	struct mt_err e;
	int rc;

	*out = NULL;
	if (jobspec_parse(spec, &c.js, &e) != 0)
		return -EINVAL;
	c.out = json_array();
	if (!c.out)
		return -ENOMEM;
	rc = store_artifacts_each(st, job, "refer_expressions", -1, 0, collect_one, &c);
	if (rc) {
		json_decref(c.out);
		return rc;
	}
	*out = c.out;
	return 0;
}
