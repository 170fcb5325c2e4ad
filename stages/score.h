#ifndef MT_SCORE_H
#define MT_SCORE_H
/* Scores completions against a dataset's gold answers with the rule rewards
 * of stages/rewards.h: what POST /v1/score (and so `medthink score`) runs,
 * and the numbers an rl job stores per item. Loop thread only (reads the
 * store). */

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"

struct store;

/* Most completion lines one request scores. */
#define SCORE_LINES_MAX 20000

/* Scores body, JSONL lines {"id":"<item id>","completion":"..."} (blank
 * lines skipped), against dataset (an id "ds_N" or a name) with the rule
 * set rules (NULL: "r1"). *out (new reference) is
 *   {"dataset":"ds_N","rules":"r1",
 *    "results":[{"id","format_reward","accuracy_reward"},...],
 *    "summary":{...score_summary...}}
 * Errors, with err naming the line and the key: -EBADMSG (a line that is
 * not a JSON object, or lacks a string id or completion), -ENOENT (no such
 * dataset), -EINVAL (unknown rule set, an id the dataset does not hold, a
 * completion over REWARDS_TEXT_MAX bytes), -E2BIG (over SCORE_LINES_MAX
 * lines), -EIO, -ENOMEM. Nothing is stored. */
int score_completions(struct store *st, const char *dataset, const char *rules,
		      const char *body, size_t len, json_t **out, struct mt_err *err);

/* A running summary of rewards. */
struct score_tally {
	long n;
	long format_ok;          /* format reward 1 */
	long acc_full, acc_half; /* accuracy 1 and 0.5 */
	double format_sum, acc_sum;
};

void score_tally_add(struct score_tally *t, double format, double accuracy);
/* {"completions":N,"format_rewarded":N,"format_failures":N,
 *  "accuracy_1":N,"accuracy_0_5":N,"accuracy_0":N,
 *  "mean_format_reward":x,"mean_accuracy_reward":x} (new reference). */
json_t *score_tally_json(const struct score_tally *t);

#endif
