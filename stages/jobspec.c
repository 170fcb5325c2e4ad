#include "common/utf8.h"
#include "stages/jobspec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "formats/formats.h"
#include "stages/refer.h"


static const char *const known_keys[] = {
	"name", "dataset", "kind", "teacher", "student", "eval_fraction", "seed",
	"selection", "train", "budget_usd", "max_items", "on_endpoint_down",
	"embedder",
	"students",
	"refer",
	"rl",
	"teacher_mode",
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

/* "students": an eval job's list of student endpoints, evaluated one after
 * the other on the same split (stages/checkpoints.c). "student", when given
 * too, must be the first of them. */
static int parse_students(json_t *spec, struct jobspec *js, struct mt_err *err)
{
	json_t *v = json_object_get(spec, "students"), *one;
	size_t i;
	int rc;

	if (!v || json_is_null(v))
		return 0;
	if (js->kind != JOB_KIND_EVAL)
		return mt_err_set(err, -EINVAL, "invalid_spec", "students",
				  "students is for eval jobs; a %s job has one student",
				  job_kind_def(js->kind)->name);
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > JOBSPEC_MAX_STUDENTS)
		return mt_err_set(err, -EINVAL, "invalid_spec", "students",
				  "students must be an array of 1 to %d endpoint names",
				  JOBSPEC_MAX_STUDENTS);
	json_array_foreach(v, i, one)
	{
		json_t *wrap = json_pack("{s:O}", "student", one);

		rc = wrap ? endpoint_name(wrap, "student", js->students[i], sizeof(js->students[i]),
					  true, err)
			  : -ENOMEM;
		json_decref(wrap);
		if (rc) {
			snprintf(err->field, sizeof(err->field), "students");
			return rc;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(js->students[k], js->students[i]) == 0)
				return mt_err_set(err, -EINVAL, "invalid_spec", "students",
						  "students names %s twice", js->students[i]);
	}
	js->nstudents = (int)json_array_size(v);
	v = json_object_get(spec, "student");
	if (v && !json_is_null(v)) {
		rc = endpoint_name(spec, "student", js->student, sizeof(js->student), true, err);
		if (rc)
			return rc;
		if (strcmp(js->student, js->students[0]) != 0)
			return mt_err_set(err, -EINVAL, "invalid_spec", "student",
					  "student must be the first of students (or left out)");
	}
	snprintf(js->student, sizeof(js->student), "%s", js->students[0]);
	return 0;
}

/* "refer":{"expressions_per_region":K} (SPEC 9), for kind refer only;
 * K in 1..REFER_MAX_EXPRESSIONS, default REFER_DEFAULT_EXPRESSIONS. */
static int refer_parse(json_t *spec, struct jobspec *js, struct mt_err *err)
{
	json_t *v = json_object_get(spec, "refer"), *k;
	const char *key;
	json_t *x;

	if (js->kind == JOB_KIND_REFER)
		js->refer_expressions = REFER_DEFAULT_EXPRESSIONS;
	if (!v || json_is_null(v))
		return 0;
	if (js->kind != JOB_KIND_REFER)
		return mt_err_set(err, -EINVAL, "invalid_spec", "refer", "refer applies to kind refer only");
	if (!json_is_object(v))
		return mt_err_set(err, -EINVAL, "invalid_spec", "refer", "refer must be an object");
	json_object_foreach(v, key, x)
		if (strcmp(key, "expressions_per_region") != 0)
			return mt_err_set(err, -EINVAL, "invalid_spec", "refer", "unknown key \"%s\" in refer", key);
	k = json_object_get(v, "expressions_per_region");
	if (k && !json_is_null(k)) {
		if (!json_is_integer(k) || json_integer_value(k) < 1 ||
		    json_integer_value(k) > REFER_MAX_EXPRESSIONS)
			return mt_err_set(err, -EINVAL, "invalid_spec", "refer.expressions_per_region",
					  "refer.expressions_per_region must be an integer from 1 to %d",
					  REFER_MAX_EXPRESSIONS);
		js->refer_expressions = (int)json_integer_value(k);
	}
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
	if (rc < 0) {
		/* the names from the kind table (stages/kinds.c) */
		const char *names[JOB_KIND__N];
		char list[160];

		for (int i = 0; i < JOB_KIND__N; i++)
			names[i] = job_kind_def((enum job_kind)i)->name;
		formats_names_join(list, sizeof(list), names, JOB_KIND__N, ", ", " or ");
		return mt_err_set(err, -EINVAL, "invalid_spec", "kind", "kind must be %s, not \"%s\"", list,
				  kind);
	}
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
	rc = parse_students(spec, js, err);
	if (rc)
		return rc;
	if (!js->nstudents)
		rc = endpoint_name(spec, "student", js->student, sizeof(js->student),
				   kd->needs_student, err);
	if (rc)
		return rc;
	rc = get_number(spec, "eval_fraction", &js->eval_fraction, kd->no_eval_split ? 0.0 : 0.1,
			err);
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
		s = json_object_get(sel, "strategy");
		/* a strategy with options checks its own keys (its row's opts_parse) */
		if (!(json_is_string(s) && select_parse(json_string_value(s)) >= 0 &&
		      select_get((enum select_id)select_parse(json_string_value(s)))->opts_parse))
			json_object_foreach(sel, key, v)
				if (strcmp(key, "strategy") && strcmp(key, "budget"))
					return mt_err_set(err, -EINVAL, "invalid_spec", "selection", "unknown key \"%s\" in selection", key);
		if (s && !json_is_string(s))
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.strategy", "selection.strategy must be a string");
		name = s ? json_string_value(s) : select_get(js->strategy)->name;
		rc = select_parse(name);
		if (rc < 0)
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.strategy",
				    "selection.strategy must be teacher_screen, diq, 3ds or none");
		js->strategy = (enum select_id)rc;
		rc = get_number(sel, "budget", &js->selection_budget, 0, err);
		if (rc) {
			snprintf(err->field, sizeof(err->field), "selection.budget");
			return rc;
		}
		if (select_get(js->strategy)->budget_counts) {
			/* < 1 a fraction of the items, >= 1 a count */
			if (!(js->selection_budget > 0))
				return mt_err_set(err, -EINVAL, "invalid_spec", "selection.budget",
						  "selection.budget is required for %s: a fraction of the items "
						  "(< 1) or a count (>= 1)",
						  select_get(js->strategy)->name);
		} else if (js->selection_budget < 0 || js->selection_budget > 1)
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.budget", "selection.budget must be in [0, 1]");
		if (select_get(js->strategy)->opts_parse) {
			rc = select_get(js->strategy)->opts_parse(sel, &js->sel, err);
			if (rc)
				return rc;
		}
	}
	rc = endpoint_name(spec, "embedder", js->embedder, sizeof(js->embedder),
			   select_get(js->strategy)->needs_embedder, err);
	if (rc) {
		if (!json_object_get(spec, "embedder"))
			snprintf(err->message, sizeof(err->message),
				 "embedder is required for selection strategy %s: name an "
				 "[embedder.NAME] section (served at /v1/embeddings)",
				 select_get(js->strategy)->name);
		return rc;
	}
	if (js->embedder[0] && !select_get(js->strategy)->needs_embedder)
		return mt_err_set(err, -EINVAL, "invalid_spec", "embedder",
				  "embedder is only used by the diq and 3ds selections");
	if (select_get(js->strategy)->needs_logprobs && !js->student[0])
		return mt_err_set(err, -EINVAL, "invalid_spec", "student",
				  "selection strategy %s needs a student (its prompt logprobs)",
				  select_get(js->strategy)->name);
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
	rc = refer_parse(spec, js, err);
	if (rc)
		return rc;
	v = json_object_get(spec, "rl");
	if (v && !json_is_null(v) && js->kind != JOB_KIND_RL)
		return mt_err_set(err, -EINVAL, "invalid_spec", "rl", "rl is for jobs of kind rl");
	rc = rl_opts_parse(v, &js->rl, err);
	if (rc)
		return rc;
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
	if (js->embedder[0])
		json_object_set_new(o, "embedder", json_string(js->embedder));
	if (select_get(js->strategy)->opts_json)
		select_get(js->strategy)->opts_json(&js->sel, json_object_get(o, "selection"));
	if (js->nstudents > 0) {
		json_t *a = json_array();

		for (int i = 0; i < js->nstudents; i++)
			json_array_append_new(a, json_string(js->students[i]));
		json_object_set_new(o, "students", a);
	}
	if (js->kind == JOB_KIND_REFER)
		json_object_set_new(o, "refer", json_pack("{s:i}", "expressions_per_region",
							  js->refer_expressions));
	if (js->kind == JOB_KIND_RL)
		json_object_set_new(o, "rl", rl_opts_json(&js->rl));
	json_object_set_new(o, "teacher_mode", json_string(js->teacher_batch ? "batch" : "online"));
	return o;
}

void jobspec_clear(struct jobspec *js) { (void)js; }
