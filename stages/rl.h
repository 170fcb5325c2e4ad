#ifndef MT_RL_H
#define MT_RL_H
/* RL prompt sets (MedVLM-R1): the options of an "rl" job, what its sampling
 * step makes of each reply, which items the export keeps, and the job's
 * report. Pure code over jansson (rewards from stages/rewards.h); the runner
 * owns every side effect.
 *
 * An rl job asks the student num_generations times per item with the r1
 * template (stages/prompts.h) at the given temperature, each sample with its
 * own "seed" (1, 2, ...) so that each is its own request: its reply is
 * stored as it comes and never asked for again (a restart finds it in the
 * cache). Each sample gets the format and accuracy rewards; when the last
 * has come the item's pass rate (share of samples with accuracy reward 1),
 * reward mean and spread (population standard deviation of format +
 * accuracy) are stored, and the keep rule says whether the export keeps it. */

#include <jansson.h>
#include <stdbool.h>

#include "common/err.h"

#define RL_GENERATIONS_MAX 64
#define RL_HIST_BINS 5 /* pass-rate histogram: 0, (0,.25], ..., (.75,1) and 1 */

struct rl_keep_rule {
	const char *name;
	const char *summary;
	bool (*keep)(double pass_rate);
};

struct rl_opts {
	int num_generations;        /* default 4 */
	double temperature;         /* default 1.0 */
	const struct rl_keep_rule *keep; /* default "mixed" */
	const char *rewards;        /* a rule set of stages/rewards.h; default "r1" */
};

/* The defaults (also for jobs of other kinds). */
void rl_opts_default(struct rl_opts *o);
/* Parses the spec's "rl" object (v, borrowed; NULL or null: defaults).
 * -EINVAL with err naming the field ("rl.keep") for unknown keys, wrong
 * types and values out of range. */
int rl_opts_parse(json_t *v, struct rl_opts *o, struct mt_err *err);
/* {"num_generations","temperature","keep","rewards"} (new reference). */
json_t *rl_opts_json(const struct rl_opts *o);
/* The keep rule named name, or NULL. */
const struct rl_keep_rule *rl_keep_find(const char *name);

/* The item's RL artifact after one more reply: prior (borrowed, NULL for
 * the first sample) is {"samples":[{"completion","format_reward",
 * "accuracy_reward","length_cut"}...]}; the new artifact (new reference)
 * appends this reply scored against gold, and once it holds o's
 * num_generations samples adds "pass_rate", "reward_mean", "reward_std",
 * "format_failures" and "kept" (o's keep rule). *complete says whether it
 * does. NULL on ENOMEM. */
json_t *rl_artifact_add(const struct rl_opts *o, json_t *prior, const char *completion,
			const char *gold, bool length_cut, bool *complete);
/* How many samples an artifact holds (0 for NULL). */
int rl_samples(json_t *artifact);

/* The job's report, summed over its items' complete artifacts. */
struct rl_report {
	long items, kept, samples, format_failures, cut;
	long hist[RL_HIST_BINS];
	double pass_sum;
};

void rl_report_add(struct rl_report *r, json_t *artifact);
/* {"items","kept","keep","samples","format_failures","length_cut",
 *  "mean_pass_rate","pass_rate_histogram":{"0":N,"(0,0.25]":N,"(0.25,0.5]":N,"(0.5,1)":N,"1":N}}
 * (new reference). */
json_t *rl_report_json(const struct rl_report *r, const struct rl_opts *o);

#endif
