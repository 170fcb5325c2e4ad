#ifndef MT_STORE_BATCHES_H
#define MT_STORE_BATCHES_H
/* Provider batches (teacher_mode "batch"): every batch submitted to a
 * provider's Batch API and every request in it, by custom id, so a restart
 * resumes polling and never submits a request twice. Same rules as
 * store/store.h (loop thread, 0 or negative errno).
 *
 * Tables (created by store_batches_init when missing):
 *   batches(id, endpoint, job_id, provider_id, state, status, total,
 *           created_at, submitted_at, ended_at)
 *     state: "submitting" (rows written, upload not confirmed),
 *            "submitted" (provider_id known: poll it), "done" (every result
 *            applied), "lost" (never confirmed; its requests were dropped)
 *   batch_requests(custom_id, batch_id, job_id, key, request, state)
 *     state: "open" (no result yet), "applied" (its call row is stored),
 *            "failed" (errored, expired, canceled or unusable) */

#include <stdint.h>

struct store;

/* Creates the two tables when missing. Not part of the numbered migrations:
 * a store without them simply has no batches. */
int store_batches_init(struct store *st);

/* Inserts a batch in state "submitting"; *id gets its row id. Meant for a
 * store_batch_add apply function (as are all the writes below). */
int store_batch_insert(struct store *st, const char *endpoint, int64_t job_id, int64_t total, int64_t *id);
/* Inserts an open request of batch_id. request is the body as sent. */
int store_batch_req_insert(struct store *st, int64_t batch_id, const char *custom_id, int64_t job_id,
			   const char *key, const char *request);
/* The provider accepted batch id: state "submitted", provider_id set. */
int store_batch_submitted(struct store *st, int64_t id, const char *provider_id);
/* Sets a batch's state ("done", "lost") and provider status text (NULL:
 * unchanged). */
int store_batch_set_state(struct store *st, int64_t id, const char *state, const char *status);
/* Sets a request's state ("applied", "failed"); only an open request moves
 * (a request applied once is never applied again): 0 when it moved,
 * -EALREADY when it was not open, -ENOENT when there is no such request. */
int store_batch_req_set(struct store *st, const char *custom_id, const char *state);

/* A batch to resume, as read by store_batches_load. Borrowed for the call. */
struct store_batch_row {
	int64_t id, job_id, total;
	const char *endpoint, *provider_id, *state;
	double submitted_at;
};
struct store_batch_req_row {
	const char *custom_id, *key, *request;
	int64_t job_id;
};
/* Calls batch(ud, row) for every batch not "done"/"lost", then req(ud, row,
 * r) for each of its open requests. A callback returning nonzero stops
 * the walk with that value. 0 or a negative errno. */
int store_batches_load(struct store *st, int (*batch)(void *ud, const struct store_batch_row *b),
		       int (*req)(void *ud, const struct store_batch_row *b, const struct store_batch_req_row *r),
		       void *ud);
/* How many times custom ids for key were ever written (tests, metrics). */
int64_t store_batch_key_count(struct store *st, const char *key);

#endif
