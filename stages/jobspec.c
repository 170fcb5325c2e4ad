#include "stages/jobspec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static const char *const known_keys[] = {
	"name", "dataset", "kind", "teacher", "student", "eval_fraction", "seed",
	"selection", "train", "budget_usd", "max_items",
};

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
	bool needs_teacher, needs_student;

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
	rc = get_string(spec, "kind", js->kind, sizeof(js->kind), true, err);
	if (rc)
		return rc;
	if (strcmp(js->kind, "pipeline") && strcmp(js->kind, "stage1") && strcmp(js->kind, "stage2") &&
	    strcmp(js->kind, "eval"))
		return mt_err_set(err, -EINVAL, "invalid_spec", "kind", "kind must be pipeline, stage1, stage2 or eval, not \"%s\"",
			    js->kind);
	rc = get_string(spec, "dataset", js->dataset, sizeof(js->dataset), true, err);
	if (rc)
		return rc;
	rc = get_string(spec, "name", js->name, sizeof(js->name), false, err);
	if (rc)
		return rc;
	if (!js->name[0])
		snprintf(js->name, sizeof(js->name), "%.100s-%.15s", js->dataset, js->kind);
	/* The student answers in stage two and eval; the teacher screens,
	 * explains, judges and corrects. An eval job may go without a teacher:
	 * answers the rules cannot grade are then left ungraded. */
	needs_teacher = strcmp(js->kind, "eval") != 0;
	needs_student = strcmp(js->kind, "stage1") != 0;
	rc = endpoint_name(spec, "teacher", js->teacher, sizeof(js->teacher), needs_teacher, err);
	if (rc)
		return rc;
	rc = endpoint_name(spec, "student", js->student, sizeof(js->student), needs_student, err);
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
	snprintf(js->strategy, sizeof(js->strategy), "teacher_screen");
	sel = json_object_get(spec, "selection");
	if (sel && !json_is_null(sel)) {
		json_t *s;

		if (!json_is_object(sel))
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection", "selection must be an object");
		json_object_foreach(sel, key, v)
			if (strcmp(key, "strategy") && strcmp(key, "budget"))
				return mt_err_set(err, -EINVAL, "invalid_spec", "selection", "unknown key \"%s\" in selection", key);
		s = json_object_get(sel, "strategy");
		if (s && !json_is_string(s))
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.strategy", "selection.strategy must be a string");
		if (s)
			snprintf(js->strategy, sizeof(js->strategy), "%s", json_string_value(s));
		if (strcmp(js->strategy, "diq") == 0 || strcmp(js->strategy, "3ds") == 0)
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.strategy",
				    "selection strategy %s is not available in this version; use "
				    "teacher_screen or none",
				    js->strategy);
		if (strcmp(js->strategy, "teacher_screen") && strcmp(js->strategy, "none"))
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.strategy",
				    "selection.strategy must be teacher_screen, diq, 3ds or none");
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
		if (!json_is_string(v) || (strcmp(json_string_value(v), "hook") &&
					   strcmp(json_string_value(v), "manual") &&
					   strcmp(json_string_value(v), "none")))
			return mt_err_set(err, -EINVAL, "invalid_spec", "train", "train must be hook, manual or none");
		snprintf(js->train, sizeof(js->train), "%s", json_string_value(v));
		js->train_given = true;
	} else {
		snprintf(js->train, sizeof(js->train), "manual");
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
	return 0;
}

json_t *jobspec_to_json(const struct jobspec *js)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:I, s:{s:s, s:f}, s:s}", "name", js->name,
			      "dataset", js->dataset, "kind", js->kind, "eval_fraction",
			      js->eval_fraction, "seed", (json_int_t)js->seed, "selection",
			      "strategy", js->strategy, "budget", js->selection_budget, "train",
			      js->train);

	if (!o)
		return NULL;
	json_object_set_new(o, "teacher", js->teacher[0] ? json_string(js->teacher) : json_null());
	json_object_set_new(o, "student", js->student[0] ? json_string(js->student) : json_null());
	json_object_set_new(o, "budget_usd", js->budget_usd > 0 ? json_real(js->budget_usd) : json_null());
	json_object_set_new(o, "max_items",
			    js->max_items > 0 ? json_integer(js->max_items) : json_null());
	return o;
}

void jobspec_clear(struct jobspec *js) { (void)js; }
