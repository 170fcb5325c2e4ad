#include "stages/story.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "stages/runner_int.h"
#include "store/calls.h"
#include "store/store.h"
#include "store/story.h"
#include "store/work.h"

/* What a job's stored row says about its item space: the dataset and kind. */
struct job_ref {
	int64_t dataset;
	const struct job_kind_def *kind;
	json_t *row;
};

static int job_ref_load(struct runner *r, int64_t job, struct job_ref *jr, struct mt_err *err)
{
	const char *kind;
	int k;

	memset(jr, 0, sizeof(*jr));
	jr->row = store_job_get(r->st, job);
	if (!jr->row)
		return mt_err_set(err, -ENOENT, "not_found", NULL, "no job job_%" PRId64, job);
	kind = json_string_value(json_object_get(jr->row, "kind"));
	k = job_kind_parse(kind ? kind : "");
	if (k < 0 || store_dataset_resolve(r->st,
					   json_string_value(json_object_get(jr->row, "dataset")),
					   &jr->dataset) != 0) {
		json_decref(jr->row);
		jr->row = NULL;
		return mt_err_set(err, -EIO, "internal", NULL,
				  "job_%" PRId64 ": its stored kind or dataset is unreadable", job);
	}
	jr->kind = job_kind_def((enum job_kind)k);
	return 0;
}

static bool kind_has_step(const struct job_kind_def *k, enum step s)
{
	for (int i = 0; i < k->nphases; i++)
		if (k->phases[i] == step_def(s)->phase)
			return true;
	return false;
}

static int item_resolve(struct runner *r, int64_t job, const struct job_ref *jr, const char *ref,
			int64_t *seq, struct mt_err *err)
{
	int rc = store_item_find(r->st, jr->dataset, ref, seq);

	if (rc == -ENOENT || rc == -EINVAL)
		return mt_err_set(err, -ENOENT, "not_found", "item",
				  "job_%" PRId64 " has no item \"%s\" (neither an item id nor a seq "
				  "of its dataset %s)",
				  job, ref ? ref : "",
				  json_string_value(json_object_get(jr->row, "dataset")));
	if (rc < 0)
		return mt_err_set(err, -EIO, "internal", NULL, "cannot read the items: %s",
				  store_last_error(r->st));
	return 0;
}

int runner_item_story(struct runner *r, int64_t job, const char *ref, json_t **out,
		      struct mt_err *err)
{
	struct job_ref jr;
	json_t *item = NULL, *tasks = NULL, *arts = NULL, *steps = NULL, *story = NULL;
	int64_t seq;
	int rc;

	*out = NULL;
	rc = job_ref_load(r, job, &jr, err);
	if (rc)
		return rc;
	rc = item_resolve(r, job, &jr, ref, &seq, err);
	if (rc)
		goto out;
	item = store_item_get(r->st, jr.dataset, seq);
	tasks = store_item_tasks(r->st, job, seq);
	arts = store_item_artifacts(r->st, job, seq);
	steps = json_array();
	if (!item || !tasks || !arts || !steps) {
		rc = mt_err_set(err, -EIO, "internal", NULL, "cannot read item %" PRId64 " of job_%" PRId64
				": %s", seq, job, store_last_error(r->st));
		goto out;
	}
	for (int s = 0; s < STEP__N; s++) {
		const struct step_def *d = step_def((enum step)s);
		json_t *task, *art, *call = json_null(), *row;

		if (!kind_has_step(jr.kind, (enum step)s))
			continue;
		task = json_object_get(tasks, d->name);
		art = json_object_get(arts, d->writes);
		if (!task && !art)
			continue; /* the item never reached this step */
		if (art && json_is_integer(json_object_get(art, "call_id"))) {
			json_t *c = store_call_get(r->st,
						   json_integer_value(json_object_get(art, "call_id")));

			if (c)
				call = c;
		}
		row = json_pack("{s:s, s:s, s:O, s:s, s:O, s:o}", "step", d->name, "phase",
				phase_name(d->phase), "task", task ? task : json_null(),
				"artifact_kind", d->writes, "artifact",
				art ? json_object_get(art, "content") : json_null(), "call", call);
		if (!row || json_array_append_new(steps, row) != 0) {
			rc = mt_err_set(err, -ENOMEM, "internal", NULL, "out of memory");
			goto out;
		}
	}
	story = json_pack("{s:s, s:s, s:I, s:s, s:O, s:O}", "job",
			  json_string_value(json_object_get(jr.row, "id")), "kind", jr.kind->name,
			  "seq", (json_int_t)seq, "state",
			  json_string_value(json_object_get(jr.row, "state")), "item", item, "steps",
			  steps);
	if (!story) {
		rc = mt_err_set(err, -ENOMEM, "internal", NULL, "out of memory");
		goto out;
	}
	*out = story;
	rc = 0;
out:
	json_decref(item);
	json_decref(tasks);
	json_decref(arts);
	json_decref(steps);
	json_decref(jr.row);
	return rc;
}

int runner_prompt_preview(struct runner *r, int64_t job, const char *step, const char *ref,
			  json_t **out, struct mt_err *err)
{
	struct job_ref jr;
	const struct step_def *d;
	struct step_ctx ctx = { 0 };
	struct step_request req = { 0 };
	json_t *item = NULL, *prompts = NULL, *prior = NULL;
	char msg[256];
	int64_t seq;
	int s, rc;

	*out = NULL;
	rc = job_ref_load(r, job, &jr, err);
	if (rc)
		return rc;
	s = step_parse(step ? step : "");
	if (s < 0 || !kind_has_step(jr.kind, (enum step)s)) {
		rc = mt_err_set(err, -EINVAL, "invalid", "step",
				"%s \"%s\": a %s job runs the steps of its phases", s < 0 ? "no step"
				: "not a step of this job:", step ? step : "", jr.kind->name);
		goto out;
	}
	d = step_def((enum step)s);
	rc = item_resolve(r, job, &jr, ref, &seq, err);
	if (rc)
		goto out;
	item = store_item_get(r->st, jr.dataset, seq);
	prompts = store_job_prompts(r->st, job);
	if (!item || !prompts) {
		rc = mt_err_set(err, -EIO, "internal", NULL, "cannot read the item or the prompts: %s",
				store_last_error(r->st));
		goto out;
	}
	if (d->reads) {
		prior = store_artifact_get(r->st, job, d->reads, seq);
		if (!prior) {
			rc = mt_err_set(err, -ENOENT, "not_found", "item",
					"item \"%s\" has no %s artifact in job_%" PRId64
					" yet; step %s renders it into its prompt",
					ref, d->reads, job, d->name);
			goto out;
		}
	}
	ctx.item = item;
	ctx.prompts = prompts;
	ctx.prior = prior;
	rc = step_request_build((enum step)s, &ctx, &req, msg, sizeof(msg));
	if (rc) {
		rc = mt_err_set(err, -EINVAL, "invalid", "step", "step %s does not render: %s",
				d->name, msg);
		goto out;
	}
	*out = json_pack("{s:s, s:s, s:{s:O, s:I}, s:s, s:O, s:b, s:o, s:f, s:I}", "job",
			 json_string_value(json_object_get(jr.row, "id")), "step", d->name, "item",
			 "id", json_object_get(item, "id"), "seq", (json_int_t)seq, "template",
			 d->template_name, "messages", req.messages ? req.messages : json_null(),
			 "expect_json", req.expect_json,
			 "schema_name", req.schema_name ? json_string(req.schema_name) : json_null(),
			 "temperature", req.temperature, "max_tokens", (json_int_t)req.max_tokens);
	/* a completion or embedding step (the diq and 3ds scoring) sends text */
	if (*out && req.prompt)
		json_object_set_new(*out, "prompt", json_string(req.prompt));
	step_request_clear(&req);
	rc = *out ? 0 : mt_err_set(err, -ENOMEM, "internal", NULL, "out of memory");
out:
	json_decref(item);
	json_decref(prompts);
	json_decref(prior);
	json_decref(jr.row);
	return rc;
}
