/* RL prompt sets (stages/rl.h). */
#include "stages/rl.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "stages/rewards.h"

static bool keep_mixed(double p) { return p > 0.0 && p < 1.0; }
static bool keep_all(double p)
{
	(void)p;
	return true;
}

static const struct rl_keep_rule keep_rules[] = {
	{ "mixed", "items some samples solve and some do not (0 < pass rate < 1)", keep_mixed },
	{ "all", "every item that got all its samples", keep_all },
};

const struct rl_keep_rule *rl_keep_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(keep_rules) / sizeof(keep_rules[0]); i++)
		if (strcmp(keep_rules[i].name, name) == 0)
			return &keep_rules[i];
	return NULL;
}

void rl_opts_default(struct rl_opts *o)
{
	o->num_generations = 4;
	o->temperature = 1.0;
	o->keep = &keep_rules[0];
	o->rewards = rewards_find(NULL)->name;
}

int rl_opts_parse(json_t *v, struct rl_opts *o, struct mt_err *err)
{
	const char *key;
	json_t *x;

	rl_opts_default(o);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return mt_err_set(err, -EINVAL, "invalid_spec", "rl", "rl must be an object");
	json_object_foreach(v, key, x) {
		if (strcmp(key, "num_generations") == 0) {
			if (!json_is_integer(x) || json_integer_value(x) < 1 ||
			    json_integer_value(x) > RL_GENERATIONS_MAX)
				return mt_err_set(err, -EINVAL, "invalid_spec", "rl.num_generations",
						  "rl.num_generations must be an integer from 1 to %d",
						  RL_GENERATIONS_MAX);
			o->num_generations = (int)json_integer_value(x);
		} else if (strcmp(key, "temperature") == 0) {
			if (!json_is_number(x) || !isfinite(json_number_value(x)) ||
			    json_number_value(x) < 0 || json_number_value(x) > 2)
				return mt_err_set(err, -EINVAL, "invalid_spec", "rl.temperature",
						  "rl.temperature must be a number from 0 to 2");
			o->temperature = json_number_value(x);
		} else if (strcmp(key, "keep") == 0) {
			o->keep = rl_keep_find(json_string_value(x));
			if (!o->keep)
				return mt_err_set(err, -EINVAL, "invalid_spec", "rl.keep",
						  "rl.keep must be mixed or all");
		} else if (strcmp(key, "rewards") == 0) {
			const struct reward_rules *rr = rewards_find(json_string_value(x));

			if (!json_is_string(x) || !rr)
				return mt_err_set(err, -EINVAL, "invalid_spec", "rl.rewards",
						  "rl.rewards must be r1 or strict");
			o->rewards = rr->name;
		} else {
			return mt_err_set(err, -EINVAL, "invalid_spec", "rl",
					  "unknown key \"%s\" in rl (num_generations, temperature, "
					  "keep, rewards)",
					  key);
		}
	}
	return 0;
}

json_t *rl_opts_json(const struct rl_opts *o)
{
	return json_pack("{s:i, s:f, s:s, s:s}", "num_generations", o->num_generations,
			 "temperature", o->temperature, "keep", o->keep->name, "rewards", o->rewards);
}

int rl_samples(json_t *artifact)
{
	return (int)json_array_size(json_object_get(artifact, "samples"));
}

json_t *rl_artifact_add(const struct rl_opts *o, json_t *prior, const char *completion,
			const char *gold, bool length_cut, bool *complete)
{
	const struct reward_rules *rr = rewards_find(o->rewards);
	json_t *art, *samples, *s;
	size_t len = completion ? strlen(completion) : 0, i;
	double f, a, sum = 0, sq = 0, mean;
	long pass = 0, fmt_fail = 0, n;

	*complete = false;
	if (!rr)
		rr = rewards_find(NULL);
	if (len > REWARDS_TEXT_MAX)
		len = REWARDS_TEXT_MAX; /* scored on its first bytes; a reply is capped well below */
	f = rr->format(completion ? completion : "", len);
	a = rr->accuracy(completion ? completion : "", len, gold);
	samples = json_deep_copy(json_object_get(prior, "samples"));
	if (!json_is_array(samples)) {
		json_decref(samples);
		samples = json_array();
	}
	s = json_pack("{s:s, s:f, s:f, s:b}", "completion", completion ? completion : "",
		      "format_reward", f, "accuracy_reward", a, "length_cut", length_cut);
	if (!samples || !s || json_array_append_new(samples, s)) {
		json_decref(samples);
		return NULL;
	}
	art = json_pack("{s:o, s:s}", "samples", samples, "rewards", rr->name);
	if (!art)
		return NULL;
	n = (long)json_array_size(samples);
	if (n < o->num_generations)
		return art;
	json_array_foreach(samples, i, s) {
		double r = json_number_value(json_object_get(s, "format_reward")) +
			   json_number_value(json_object_get(s, "accuracy_reward"));

		sum += r;
		sq += r * r;
		pass += json_number_value(json_object_get(s, "accuracy_reward")) == 1.0;
		fmt_fail += json_number_value(json_object_get(s, "format_reward")) != 1.0;
	}
	mean = sum / (double)n;
	json_object_set_new(art, "pass_rate", json_real((double)pass / (double)n));
	json_object_set_new(art, "reward_mean", json_real(mean));
	json_object_set_new(art, "reward_std",
			    json_real(sqrt(fmax(0.0, sq / (double)n - mean * mean))));
	json_object_set_new(art, "format_failures", json_integer(fmt_fail));
	json_object_set_new(art, "keep_rule", json_string(o->keep->name));
	json_object_set_new(art, "kept", json_boolean(o->keep->keep((double)pass / (double)n)));
	*complete = true;
	return art;
}

static int hist_bin(double p)
{
	if (p <= 0.0)
		return 0;
	if (p >= 1.0)
		return RL_HIST_BINS - 1;
	return p <= 0.25 ? 1 : p <= 0.5 ? 2 : 3;
}

void rl_report_add(struct rl_report *r, json_t *artifact)
{
	json_t *pr = json_object_get(artifact, "pass_rate");
	json_t *s;
	size_t i;

	if (!json_is_number(pr))
		return; /* not complete */
	r->items++;
	r->kept += json_is_true(json_object_get(artifact, "kept"));
	r->pass_sum += json_number_value(pr);
	r->hist[hist_bin(json_number_value(pr))]++;
	r->format_failures += (long)json_integer_value(json_object_get(artifact, "format_failures"));
	json_array_foreach(json_object_get(artifact, "samples"), i, s) {
		r->samples++;
		r->cut += json_is_true(json_object_get(s, "length_cut"));
	}
}

json_t *rl_report_json(const struct rl_report *r, const struct rl_opts *o)
{
	static const char *const bins[RL_HIST_BINS] = { "0", "(0,0.25]", "(0.25,0.5]", "(0.5,1)", "1" };
	json_t *h = json_object(), *out;

	for (int i = 0; h && i < RL_HIST_BINS; i++)
		json_object_set_new(h, bins[i], json_integer(r->hist[i]));
	out = json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:f, s:o}", "items",
			(json_int_t)r->items, "kept", (json_int_t)r->kept, "keep", o->keep->name,
			"rewards", o->rewards, "samples", (json_int_t)r->samples, "format_failures",
			(json_int_t)r->format_failures, "length_cut", (json_int_t)r->cut,
			"mean_pass_rate", r->items ? r->pass_sum / (double)r->items : 0.0,
			"pass_rate_histogram", h);
	return out;
}
