#ifndef MT_STORE_WORK_H
#define MT_STORE_WORK_H
/* Per-item work of a job: the state of each item in each step (table tasks)
 * and the stage outputs (table artifacts). Used by the job runner.
 *
 * Same rules as store/store.h: the loop thread only, 0 or a negative errno
 * (-EINVAL bad argument, -ENOENT no such row or job, -EBUSY locked, -EIO),
 * json_t* parameters borrowed, returned json_t* are new references.
 * Every write here is one statement (or, for the bulk insert, one nested
 * transaction) and may run inside a store_begin or a batched apply. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* Task states kept in the store ("in_flight" lives in memory only). */
#define STORE_TASK_PENDING "pending"
#define STORE_TASK_DONE "done"
#define STORE_TASK_FAILED "failed"
#define STORE_TASK_DROPPED "dropped"

/* Sets the item's state in a step (insert or replace), updated_at = now.
 * state is one of pending|done|failed|dropped; reason may be NULL. */
int store_task_put(struct store *st, int64_t job, const char *step, int64_t item_seq,
                   const char *state, int attempts, const char *reason);
/* Adds n pending tasks for the given item seqs; existing ones are left as
 * they are (INSERT OR IGNORE). One transaction (nested when one is open;
 * for one seq, the single statement). A transaction of its own commits
 * with synchronous=NORMAL (no fsync, as the group commit): pending rows are
 * derived from the items and inserted again by a seeding that did not
 * finish, and whatever marks the seeding finished commits FULL after them.
 * Returns how many rows were added (>= 0), or a negative errno. */
int store_tasks_insert_pending(struct store *st, int64_t job, const char *step,
                               const int64_t *seqs, size_t n);
/* Calls cb for the step's tasks with item_seq > after_seq, in item_seq
 * order, at most limit of them (limit <= 0: all), only those in state when
 * state is non-NULL. Stops when cb returns non-zero and returns that value;
 * otherwise 0. The strings passed to cb live for the call only. cb may use
 * the store, writes included (rows are read in chunks, a chunk in one read
 * transaction of its own when none is open, and no statement or read is
 * open while cb runs). Page through many rows by
 * passing the last seq seen as after_seq. */
int store_tasks_each(struct store *st, int64_t job, const char *step, const char *state,
                     int64_t after_seq, int limit,
                     int (*cb)(void *ud, int64_t seq, const char *state, int attempts,
                               const char *reason),
                     void *ud);
/* {"STEP":{"pending":N,"done":N,"failed":N,"dropped":N}, ...} for every
 * step the job has tasks in (all four keys present); {} when none. NULL on
 * error. */
json_t *store_task_counts(struct store *st, int64_t job);

/* Stores a stage output (insert or replace). call_id 0 stores no call.
 * content is any JSON value (borrowed). */
int store_artifact_put(struct store *st, int64_t job, const char *kind, int64_t item_seq,
                       int64_t call_id, json_t *content);
/* The stored content, or NULL when there is none. */
json_t *store_artifact_get(struct store *st, int64_t job, const char *kind, int64_t item_seq);
/* Like store_tasks_each for artifacts of one kind; content is borrowed for
 * the call (json_incref to keep it). */
int store_artifacts_each(struct store *st, int64_t job, const char *kind, int64_t after_seq,
                         int limit, int (*cb)(void *ud, int64_t seq, json_t *content), void *ud);

#endif
