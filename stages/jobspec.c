#include "common/utf8.h"
#include "stages/jobspec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static const char *const known_keys[] = {
	"name", "dataset", "kind", "teacher", "student", "eval_fraction", "seed",
	"selection", "train", "budget_usd", "max_items", "on_endpoint_down",
	"teacher_mode",
};

/* Strategies the spec names but this version does not have yet: refused
 * with their own message until they become rows of stages/select.c. */
static const char *const planned_strategies[] = { "diq", "3ds" };

static int get_string(json_t *spec, const char *key, char *out, size_t outlen, bool required,
		      struct mt_err *err)
{
	json_t *v = json_object_get(spec, key);

	out[0] = '\0';
	if (!v || json_is_null(v)) {
		if (required)
			return mt_err_set(err, -EINVAL, "invalid_spec", key, "%s is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return mt_err_set(err, -EINVAL, "invalid_spec", key, "%s must be a string", key);
	if (json_string_length(v) == 0)
		return mt_err_set(err, -EINVAL, "invalid_spec", key, "%s must not be empty", key);
	if (json_string_length(v) >= outlen)
		return mt_err_set(err, -EINVAL, "invalid_spec", key, "%s is longer than %zu bytes", key, outlen - 1);
	snprintf(out, outlen, "%s", json_string_value(v));
	return 0;
}

/* "NAME" or "teacher.NAME" -> "teacher.NAME". The result must parse again
 * (jobspec_to_json stores it and a restart re-reads it), so both spellings
 * are limited by what fits in out. */
static int endpoint_name(json_t *spec, const char *key, char *out, size_t outlen, bool required,
			 struct mt_err *err)
{
	char name[sizeof(((struct jobspec *)0)->teacher)];
	int rc = get_string(spec, key, name, outlen < sizeof(name) ? outlen : sizeof(name), required, err);
	size_t klen = strlen(key);

	if (rc || !name[0]) {
		out[0] = '\0';
		return rc;
	}
	if (strncmp(name, key, klen) == 0 && name[klen] == '.') {
		snprintf(out, outlen, "%s", name);
	} else {
		size_t nlen = strlen(name);

		if (klen + 1 + nlen >= outlen) {
			out[0] = '\0';
			return mt_err_set(err, -EINVAL, "invalid_spec", key, "%s is longer than %zu bytes",
					  key, outlen - 2 - klen);
		}
		memcpy(out, key, klen);
		out[klen] = '.';
		memcpy(out + klen + 1, name, nlen + 1);
	}
	return 0;
}

static int get_number(json_t *spec, const char *key, double *out, double dflt, struct mt_err *err)
{
	json_t *v = json_object_get(spec, key);

	*out = dflt;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return mt_err_set(err, -EINVAL, "invalid_spec", key, "%s must be a number", key);
	*out = json_number_value(v);
	if (!isfinite(*out))
		return mt_err_set(err, -EINVAL, "invalid_spec", key, "%s must be finite", key);
	return 0;
}

int jobspec_parse(json_t *spec, struct jobspec *js, struct mt_err *err)
{
	const char *key;
	json_t *v, *sel;
	double d;
	int rc;
	char kind[16];
	const struct job_kind_def *kd;

	memset(js, 0, sizeof(*js));
	if (!json_is_object(spec))
		return mt_err_set(err, -EBADMSG, "malformed", NULL, "the job spec must be a JSON object");
	json_object_foreach(spec, key, v)
	{
		bool known = false;

		for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
			known |= strcmp(key, known_keys[i]) == 0;
		if (!known)
			return mt_err_set(err, -EINVAL, "invalid_spec", key, "unknown key \"%s\" in the job spec", key);
	}
	rc = get_string(spec, "kind", kind, sizeof(kind), true, err);
	if (rc)
		return rc;
	rc = job_kind_parse(kind);
	if (rc < 0)
		return mt_err_set(err, -EINVAL, "invalid_spec", "kind", "kind must be pipeline, stage1, stage2 or eval, not \"%s\"",
			    kind);
	js->kind = (enum job_kind)rc;
	kd = job_kind_def(js->kind);
	rc = get_string(spec, "dataset", js->dataset, sizeof(js->dataset), true, err);
	if (rc)
		return rc;
	rc = get_string(spec, "name", js->name, sizeof(js->name), false, err);
	if (rc)
		return rc;
	if (!js->name[0])
		snprintf(js->name, sizeof(js->name), "%.*s-%.15s", (int)utf8_prefix(js->dataset, strlen(js->dataset), 100), js->dataset, kd->name);
	/* The student answers in stage two and eval; the teacher screens,
	 * explains, judges and corrects (the kind's row says which it needs). */
	rc = endpoint_name(spec, "teacher", js->teacher, sizeof(js->teacher), kd->needs_teacher, err);
	if (rc)
		return rc;
	rc = endpoint_name(spec, "student", js->student, sizeof(js->student), kd->needs_student, err);
	if (rc)
		return rc;
	rc = get_number(spec, "eval_fraction", &js->eval_fraction, 0.1, err);
	if (rc)
		return rc;
	/* 1 holds out everything: an eval job over a separately imported test set. */
	if (js->eval_fraction < 0 || js->eval_fraction > 1)
		return mt_err_set(err, -EINVAL, "invalid_spec", "eval_fraction", "eval_fraction must be between 0 and 1");
	v = json_object_get(spec, "seed");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v))
			return mt_err_set(err, -EINVAL, "invalid_spec", "seed", "seed must be an integer");
		js->seed = json_integer_value(v);
	}
	js->strategy = SELECT_TEACHER_SCREEN;
	sel = json_object_get(spec, "selection");
	if (sel && !json_is_null(sel)) {
		json_t *s;
		const char *name;

		if (!json_is_object(sel))
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection", "selection must be an object");
		json_object_foreach(sel, key, v)
			if (strcmp(key, "strategy") && strcmp(key, "budget"))
				return mt_err_set(err, -EINVAL, "invalid_spec", "selection", "unknown key \"%s\" in selection", key);
		s = json_object_get(sel, "strategy");
		if (s && !json_is_string(s))
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.strategy", "selection.strategy must be a string");
		name = s ? json_string_value(s) : select_get(js->strategy)->name;
		rc = select_parse(name);
		for (size_t i = 0; rc < 0 && i < sizeof(planned_strategies) / sizeof(planned_strategies[0]); i++)
			if (strcmp(name, planned_strategies[i]) == 0)
				return mt_err_set(err, -EINVAL, "invalid_spec", "selection.strategy",
					    "selection strategy %s is not available in this version; use "
					    "teacher_screen or none",
					    name);
		if (rc < 0)
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.strategy",
				    "selection.strategy must be teacher_screen, diq, 3ds or none");
		js->strategy = (enum select_id)rc;
		rc = get_number(sel, "budget", &js->selection_budget, 0, err);
		if (rc) {
			snprintf(err->field, sizeof(err->field), "selection.budget");
			return rc;
		}
		if (js->selection_budget < 0 || js->selection_budget > 1)
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.budget", "selection.budget must be in [0, 1]");
	}
	v = json_object_get(spec, "train");
	if (v && !json_is_null(v)) {
		rc = train_mode_parse(json_string_value(v)); /* NULL for a non-string: -1 */
		if (rc < 0)
			return mt_err_set(err, -EINVAL, "invalid_spec", "train", "train must be hook, manual or none");
		js->train = (enum train_mode)rc;
		js->train_given = true;
	} else {
		js->train = TRAIN_MANUAL;
	}
	rc = get_number(spec, "budget_usd", &d, 0, err);
	if (rc)
		return rc;
	if (d < 0)
		return mt_err_set(err, -EINVAL, "invalid_spec", "budget_usd", "budget_usd must not be negative");
	js->budget_usd = d;
	v = json_object_get(spec, "max_items");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0)
			return mt_err_set(err, -EINVAL, "invalid_spec", "max_items", "max_items must be a positive integer or null");
		js->max_items = json_integer_value(v);
	}
	v = json_object_get(spec, "on_endpoint_down");
	if (v && !json_is_null(v)) {
		const char *m = json_string_value(v);

		if (!m || (strcmp(m, "pause") != 0 && strcmp(m, "fail") != 0))
			return mt_err_set(err, -EINVAL, "invalid_spec", "on_endpoint_down",
					  "on_endpoint_down must be pause or fail");
		js->fail_on_down = strcmp(m, "fail") == 0;
	}
	v = json_object_get(spec, "teacher_mode");
	if (v && !json_is_null(v)) {
		const char *m = json_string_value(v);

		if (!m || (strcmp(m, "online") != 0 && strcmp(m, "batch") != 0))
			return mt_err_set(err, -EINVAL, "invalid_spec", "teacher_mode",
					  "teacher_mode must be online or batch");
		js->teacher_batch = strcmp(m, "batch") == 0;
	}
	return 0;
}

json_t *jobspec_to_json(const struct jobspec *js)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:I, s:{s:s, s:f}, s:s}", "name", js->name,
			      "dataset", js->dataset, "kind", job_kind_def(js->kind)->name, "eval_fraction",
			      js->eval_fraction, "seed", (json_int_t)js->seed, "selection",
			      "strategy", select_get(js->strategy)->name, "budget",
			      js->selection_budget, "train", train_mode_name(js->train));

	if (!o)
		return NULL;
	json_object_set_new(o, "teacher", js->teacher[0] ? json_string(js->teacher) : json_null());
	json_object_set_new(o, "student", js->student[0] ? json_string(js->student) : json_null());
	json_object_set_new(o, "budget_usd", js->budget_usd > 0 ? json_real(js->budget_usd) : json_null());
	json_object_set_new(o, "max_items",
			    js->max_items > 0 ? json_integer(js->max_items) : json_null());
	json_object_set_new(o, "on_endpoint_down", json_string(js->fail_on_down ? "fail" : "pause"));
	json_object_set_new(o, "teacher_mode", json_string(js->teacher_batch ? "batch" : "online"));
	return o;
}

void jobspec_clear(struct jobspec *js) { (void)js; }
