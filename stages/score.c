/* Scoring completions over a dataset (stages/score.h). */
#include "stages/score.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "stages/rewards.h"
#include "store/store.h"
#include "store/story.h"

void score_tally_add(struct score_tally *t, double format, double accuracy)
{
	t->n++;
	t->format_ok += format == 1.0;
	t->acc_full += accuracy == 1.0;
	t->acc_half += accuracy == 0.5;
	t->format_sum += format;
	t->acc_sum += accuracy;
}

json_t *score_tally_json(const struct score_tally *t)
{
	double n = t->n > 0 ? (double)t->n : 1.0;

	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}", "completions",
			 (json_int_t)t->n, "format_rewarded", (json_int_t)t->format_ok,
			 "format_failures", (json_int_t)(t->n - t->format_ok), "accuracy_1",
			 (json_int_t)t->acc_full, "accuracy_0_5", (json_int_t)t->acc_half,
			 "accuracy_0", (json_int_t)(t->n - t->acc_full - t->acc_half),
			 "mean_format_reward", t->format_sum / n, "mean_accuracy_reward",
			 t->acc_sum / n);
}

/* The gold of the item with id ref in dataset ds: a new reference to the
 * item, or NULL when the dataset holds no item with exactly that id. */
static json_t *item_by_id(struct store *st, int64_t ds, const char *ref)
{
	int64_t seq;
	json_t *item;
	const char *id;

	if (store_item_find(st, ds, ref, &seq) != 0)
		return NULL;
	item = store_item_get(st, ds, seq);
	id = json_string_value(json_object_get(item, "id"));
	if (!id || strcmp(id, ref) != 0) {
		/* store_item_find falls back to a seq: an id must name the item */
		json_decref(item);
		return NULL;
	}
	return item;
}

int score_completions(struct store *st, const char *dataset, const char *rules,
		      const char *body, size_t len, json_t **out, struct mt_err *err)
{
	const struct reward_rules *rr = rewards_find(rules);
	json_t *results = NULL, *res = NULL;
	struct score_tally tally = { 0 };
	const char *p = body, *end = body + len;
	int64_t ds;
	long line = 0;
	char dsname[32];
	int rc;

	*out = NULL;
	if (!rr)
		return mt_err_set(err, -EINVAL, "invalid", "rules",
				  "unknown reward rules \"%s\" (known: r1, strict)", rules);
	if (!dataset || !*dataset)
		return mt_err_set(err, -EINVAL, "invalid", "dataset",
				  "scoring needs ?dataset=ID (the dataset holding the gold answers)");
	if (store_dataset_resolve(st, dataset, &ds) != 0)
		return mt_err_set(err, -ENOENT, "not_found", "dataset", "no dataset \"%s\"",
				  dataset);
	results = json_array();
	if (!results)
		return mt_err_set(err, -ENOMEM, "internal", NULL, "out of memory");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		json_error_t jerr;
		json_t *rec, *item, *cv;
		const char *id, *gold;
		double f, a;
		size_t clen;

		line++;
		if (le - p == 0 || (le - p == 1 && *p == '\r')) {
			p = le + (nl != NULL);
			continue;
		}
		if (json_array_size(results) >= SCORE_LINES_MAX) {
			rc = mt_err_set(err, -E2BIG, "too_large", "body",
					"more than %d completions in one request (line %ld)",
					SCORE_LINES_MAX, line);
			goto fail;
		}
		rec = json_loadb(p, (size_t)(le - p), 0, &jerr);
		p = le + (nl != NULL);
		if (!json_is_object(rec)) {
			json_decref(rec);
			rc = mt_err_set(err, -EBADMSG, "malformed_json", "body",
					"line %ld: not a JSON object%s%s", line, rec ? "" : ": ",
					rec ? "" : jerr.text);
			goto fail;
		}
		id = json_string_value(json_object_get(rec, "id"));
		cv = json_object_get(rec, "completion");
		if (!id || !json_is_string(cv)) {
			json_decref(rec);
			rc = mt_err_set(err, -EBADMSG, "invalid", id ? "completion" : "id",
					"line %ld: needs a string \"%s\"", line,
					id ? "completion" : "id");
			goto fail;
		}
		clen = json_string_length(cv);
		if (clen > REWARDS_TEXT_MAX) {
			rc = mt_err_set(err, -EINVAL, "invalid", "completion",
					"line %ld: completion of %zu bytes is over the %zu-byte limit",
					line, clen, REWARDS_TEXT_MAX);
			json_decref(rec);
			goto fail;
		}
		item = item_by_id(st, ds, id);
		if (!item) {
			rc = mt_err_set(err, -EINVAL, "invalid", "id",
					"line %ld: dataset ds_%" PRId64 " has no item \"%.80s\"", line,
					ds, id);
			json_decref(rec);
			goto fail;
		}
		gold = json_string_value(json_object_get(item, "answer"));
		f = rr->format(json_string_value(cv), clen);
		a = rr->accuracy(json_string_value(cv), clen, gold);
		score_tally_add(&tally, f, a);
		json_array_append_new(results, json_pack("{s:s, s:f, s:f}", "id", id,
							 "format_reward", f, "accuracy_reward", a));
		json_decref(item);
		json_decref(rec);
	}
	snprintf(dsname, sizeof(dsname), "ds_%" PRId64, ds);
	res = json_pack("{s:s, s:s, s:O, s:o}", "dataset", dsname, "rules", rr->name, "results",
			results, "summary", score_tally_json(&tally));
	if (!res) {
		rc = mt_err_set(err, -ENOMEM, "internal", NULL, "out of memory");
		goto fail;
	}
	json_decref(results);
	*out = res;
	return 0;
fail:
	json_decref(results);
	return rc;
}
