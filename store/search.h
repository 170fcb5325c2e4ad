#ifndef MT_STORE_SEARCH_H
#define MT_STORE_SEARCH_H
/* The dashboard's item browser: items of a dataset found by id or text, with
 * their task states in one job. Same rules as store/store.h: the loop thread
 * only, returned json_t* are new references. */

#include <jansson.h>
#include <stdint.h>

struct store;

/* Rows scanned per search call at most: a text search over a large dataset
 * goes on from "next" in another call instead of holding the loop. */
#define STORE_SEARCH_SCAN 20000
#define STORE_SEARCH_LIMIT_MAX 200
#define STORE_SEARCH_QUERY_MAX 256 /* bytes of q */

/* Items of dataset whose id equals q (first, from the index), then, scanning
 * from seq `from` on in order for at most STORE_SEARCH_SCAN rows, those whose
 * id starts with q or whose question or body holds q (case-insensitive for
 * ASCII). q "" lists the items in order. limit is clamped to
 * 1..STORE_SEARCH_LIMIT_MAX. Returns {"items":[{"id","seq","topic",
 * "question" (at most 200 bytes, cut on a character boundary),"tasks":
 * {"STEP":"STATE"}}], "next":SEQ or null} where next is where a further call
 * would go on (null: the dataset is done). NULL on error (logged). */
json_t *store_items_search(struct store *st, int64_t dataset, int64_t job, const char *q,
			   int64_t from, int limit);

/* The job's failed and dropped tasks grouped by step, state and reason,
 * largest group first, at most STORE_REASONS_MAX groups:
 * {"reasons":[{"step","state","reason" (string or null),"count"}]}.
 * NULL on error (logged). */
#define STORE_REASONS_MAX 100
json_t *store_task_reasons(struct store *st, int64_t job);

#endif
