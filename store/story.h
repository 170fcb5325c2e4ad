#ifndef MT_STORE_STORY_H
#define MT_STORE_STORY_H
/* One item's story inside a job (medthink show, retry, prompt-preview): its
 * tasks, its artifacts with the calls behind them, and the reset of a job's
 * failed tasks. Same rules as store/store.h: the loop thread only, 0 or a
 * negative errno, returned json_t* are new references. */

#include <jansson.h>
#include <stdint.h>

struct store;

/* Resolves an item of dataset by its id (the item's "id") or, when no item
 * has that id and ref is all digits, by its seq. 0 with *seq set, -ENOENT
 * when neither names an item, -EINVAL for an empty ref. */
int store_item_find(struct store *st, int64_t dataset, const char *ref, int64_t *seq);

/* {"STEP":{"state","attempts","reason"(string or null),"updated_at":"ISO"}}
 * for every task of the item in the job; {} when none, NULL on error. */
json_t *store_item_tasks(struct store *st, int64_t job, int64_t seq);

/* {"KIND":{"call_id":N or null,"content":...,"created_at":"ISO"}} for every
 * artifact of the item in the job; {} when none, NULL on error. */
json_t *store_item_artifacts(struct store *st, int64_t job, int64_t seq);

/* The call row id as {"id","endpoint","model","request" (the JSON body),
 * "reply" (JSON when it parses, else the text, or null),"status","attempts",
 * "latency_ms","tokens_in","tokens_out","cost_usd","error","created_at"},
 * or NULL when there is no such row. */
json_t *store_call_get(struct store *st, int64_t id);

/* Sets every failed task of the job back to pending with attempts 0 and no
 * reason, in one transaction (nested when one is open). *counts (new
 * reference) gets {"STEP":N} of the tasks reset per step ({} when none).
 * 0 or a negative errno (nothing changed). */
int store_tasks_retry_failed(struct store *st, int64_t job, json_t **counts);

#endif
