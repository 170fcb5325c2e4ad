#ifndef MT_STORE_H
#define MT_STORE_H
/* The store: every dataset, item, job, model call and artifact of medthink,
 * in one SQLite database (WAL). store/ knows SQLite and jansson, nothing of
 * HTTP, curl or libuv.
 *
 * Threads: a struct store is used from one thread only (the daemon's loop
 * thread). Every function here is a short transaction or part of one; long
 * work (imports) is cut into batches by the caller. The one exception is
 * the group commit's writer thread (store_writer_start): it runs the queued
 * apply functions on a connection of its own.
 *
 * Errors: 0 or a negative errno: -ENOENT (no such row), -EEXIST (unique key),
 * -EINVAL (bad argument), -EBUSY (database locked; try again), -EIO (any other
 * SQLite failure; the detail is logged once), -ENOMEM.
 *
 * JSON: functions returning json_t* hand a new reference to the caller
 * (json_decref it); json_t* parameters are borrowed unless the name says _take.
 *
 * Ids are int64 row ids. The API shows them as "ds_N" and "job_N".
 *
 * SQLite stays inside store/: the modules of store/ share their statement
 * cache, binders and row builders through store/store_int.h. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define STORE_SCHEMA_VERSION 3

struct store;

/* Opens the database at path, creating it only when the file is missing,
 * applies pending migrations, sets WAL, synchronous=FULL, foreign_keys. A
 * database whose user_version is newer than STORE_SCHEMA_VERSION is refused
 * (-EPROTO) with a message in err naming both versions. A file that is
 * empty, not SQLite, shorter than its header says, or whose schema cannot
 * be read is refused as damaged (-EIO, the message names the file, the
 * problem and docs/operations.md); these checks cost microseconds, the
 * page-by-page check is store/check.h. Every failure leaves a one-line
 * message in err; err may be NULL (then the message is logged instead). */
int store_open(const char *path, struct store **out, char *err, size_t errlen);
/* Finalizes every statement and closes the database. NULL is a no-op. */
void store_close(struct store *st);

/* The path the store was opened on (never NULL). */
const char *store_path(const struct store *st);
/* SQLite's message for the last failure store_err saw ("database or disk is
 * full"), or "unknown error"; for messages only. Borrowed until the next
 * store call. */
const char *store_last_error(const struct store *st);

/* Explicit transactions, nestable: the outermost is BEGIN IMMEDIATE (so
 * -EBUSY comes at begin, not mid-way), inner ones are savepoints. A failed
 * COMMIT rolls the transaction back. -EINVAL on commit/rollback without a
 * begin. */
int store_begin(struct store *st);
int store_commit(struct store *st);
int store_rollback(struct store *st);

/* Wall clock, unix seconds with fractions; tests may replace it. */
double store_now(void);
/* Makes store_now() return now() instead (tests); NULL restores the real
 * clock. Process-wide, not thread-safe: set it before opening stores. */
void store_clock_set(double (*now)(void));

/* ---- Group commit -------------------------------------------------------
 * Writes that must be durable before something moves on (a model reply
 * before its item advances) are queued here and committed together: the
 * daemon calls store_batch_flush() once per loop iteration (uv_prepare).
 * apply runs inside the transaction; if one fails, only its own writes are
 * lost: the transaction is rolled back and the batch applied again with
 * each apply in a savepoint of its own. So apply may run twice in a flush
 * (and again in a later one after a failed COMMIT): it writes the store and
 * sets only what every run sets again (a row id). done then runs after the COMMIT with
 * apply's status (0 committed; negative otherwise), or with -EIO for all of
 * them if the COMMIT itself fails (-ENOSPC when the disk is full). done may
 * queue more writes. */
typedef int (*store_apply_fn)(struct store *st, void *ud);
typedef void (*store_done_fn)(void *ud, int status);
/* Most writes the queue holds; store_batch_add fails with -ENOBUFS past it. */
#define STORE_BATCH_MAX 262144
/* Queues a write (apply required, done may be NULL). -ENOBUFS when the
 * queue is full, -ECANCELED while the store is closing; then nothing is
 * queued and done never runs. Once queued, done runs exactly once: after a
 * flush, or from store_close with -ECANCELED. Writes queued from inside a
 * done callback go to the next flush. */
int store_batch_add(struct store *st, store_apply_fn apply, store_done_fn done, void *ud);
/* Commits everything queued; returns the number of writes committed, or a
 * negative errno (-EBUSY: nothing was applied, the queue is kept; -EINVAL:
 * called inside an open store_begin transaction). With a writer running it
 * first waits for the writer's batch and runs its done callbacks, then
 * commits what is queued on the calling thread. */
int store_batch_flush(struct store *st);
size_t store_batch_pending(const struct store *st);

/* ---- The writer thread (asynchronous group commit) ----------------------
 * Like redis's bio: a thread that owns a second connection to the same
 * file (same VFS and PRAGMAs, synchronous=NORMAL) commits the queued
 * writes, so the loop thread runs neither their SQL nor the COMMIT. The
 * contract above holds unchanged: the same isolated retry of a failing
 * write, the same statuses, done callbacks only on the caller's (loop)
 * thread, in queue order, after the COMMIT; writes queued from done go to
 * the next batch. apply runs on the writer thread with that thread's struct
 * store: it may read only its own ud (owned by the write until its done
 * runs) and data nobody changes meanwhile. Once started, both connections
 * wait (a busy handler, short sleeps) for the other's transaction instead
 * of failing with -EBUSY; a write transaction on the loop thread may wait
 * for one slice (at most 1024 writes) of the writer's.
 *
 * Starts the writer: wake(ud) is called on the writer thread each time a
 * batch is finished (make it uv_async_send: thread-safe, nothing else).
 * -ENOTSUP for an in-memory database, -EALREADY when running, -EINVAL
 * (no wake, closing, inside a transaction), -EIO/-ENOMEM opening the
 * connection, or pthread_create's error. Loop thread. */
int store_writer_start(struct store *st, void (*wake)(void *ud), void *ud);
/* Waits for the batch with the writer and runs its done callbacks, stops
 * and joins the thread, closes its connection. What done callbacks queue
 * stays queued (store_batch_flush commits it on this thread, store_close
 * cancels it). No-op without a writer or for NULL. store_close calls it.
 * Loop thread, outside a store_begin transaction (the writer would wait for
 * it). */
void store_writer_stop(struct store *st);
/* Hands every queued write to the writer when it is idle. Returns how many
 * were handed over; 0 when nothing is queued or the writer is busy (they
 * stay queued for the next submit); -EINVAL without a writer. */
int store_batch_submit(struct store *st);
/* Runs the done callbacks of the batch the writer finished, if it has.
 * Returns the number committed, 0 when no batch was finished (or none was
 * given), a negative errno when a COMMIT failed (the dones got it, as from
 * store_batch_flush), or -EBUSY when the writer could not begin a
 * transaction: nothing was applied, no done ran, and the writes are queued
 * again in front of the rest. Loop thread; call it when wake came. */
int store_batch_reap(struct store *st);
/* store_batch_reap after waiting for the writer's batch to finish. */
int store_batch_wait(struct store *st);
/* Whether a batch is with the writer (handed over, not yet reaped). */
bool store_batch_busy(const struct store *st);

/* ---- Datasets and items ---------------------------------------------- */
/* A dataset is created in state "importing", filled by batches, then
 * finished ("ready") or aborted (deleted with its items). Only ready
 * datasets are listed or found. */
int store_dataset_create(struct store *st, const char *name, const char *format, int64_t *id);
/* Inserts n items (normalized item objects, see formats/import.h) with seq
 * numbers first_seq.. in one transaction. A duplicate "id" within the dataset
 * fails the whole call with -EEXIST and sets *dup_index to the offending
 * index in items (dup_index may be NULL). */
int store_items_insert(struct store *st, int64_t dataset, int64_t first_seq,
                       json_t *const *items, size_t n, size_t *dup_index);
/* rejected: array of {"line":N,"reason":"..."} (borrowed; may be NULL). */
int store_dataset_finish(struct store *st, int64_t dataset, int64_t nitems, json_t *rejected);
/* Deletes a dataset still importing, with its items; -ENOENT when there is
 * no importing dataset with that id (a ready dataset is never deleted). */
int store_dataset_abort(struct store *st, int64_t dataset);
/* Aborts every dataset left "importing" by a crash; call once at startup,
 * before any import begins. *n (may be NULL) gets how many. */
int store_dataset_abort_stale(struct store *st, int *n);
/* {"id":"ds_N","name","format","items","rejected":[...],"created_at":"ISO"}
 * or NULL when there is no ready dataset with that id. */
json_t *store_dataset_get(struct store *st, int64_t id);
/* Resolves "ds_N", "N" or a name (the newest ready dataset of that name). */
int store_dataset_resolve(struct store *st, const char *id_or_name, int64_t *id);
json_t *store_dataset_list(struct store *st);
/* Whether a dataset (ready, or still importing) is called name: 1 with *id
 * set to the newest such, 0 when none is, or a negative errno. */
int store_dataset_name_find(struct store *st, const char *name, int64_t *id);
/* The item with this seq, or NULL. */
json_t *store_item_get(struct store *st, int64_t dataset, int64_t seq);
/* Most seqs store_items_get takes at once. */
#define STORE_ITEMS_GET_MAX 1024
/* Reads the items seqs[0..n) of dataset in one statement (one read
 * transaction, ended before it returns): out[i] gets item seqs[i] (a new
 * reference), or NULL when there is none or its stored text is damaged
 * (logged). seqs strictly ascending, n <= STORE_ITEMS_GET_MAX. Dense seqs
 * (a span of at most 4n) are read as one range, others by their values.
 * Returns how many were found (>= 0), or a negative errno with every out[i]
 * NULL (-EINVAL bad arguments, -EBUSY, -EIO, -ENOMEM). For the loop's
 * dispatch: the same trees store_item_get returns, one statement a turn
 * instead of one (and one WAL read transaction) an item. */
int store_items_get(struct store *st, int64_t dataset, const int64_t *seqs, size_t n,
		    json_t **out);
/* Calls cb for items with seq in [from, from+limit) in order; stops early
 * when cb returns non-zero (and returns that value). item is borrowed (for
 * the call only). cb may use the store but not call store_items_each. */
int store_items_each(struct store *st, int64_t dataset, int64_t from, int64_t limit,
                     int (*cb)(void *ud, int64_t seq, json_t *item), void *ud);
/* Like store_items_each with only the item ids (no JSON is parsed): for
 * splitting a large dataset. ext_id lives for the call only. */
int store_item_ids_each(struct store *st, int64_t dataset, int64_t from, int64_t limit,
			int (*cb)(void *ud, int64_t seq, const char *ext_id), void *ud);
int64_t store_dataset_count(struct store *st, int64_t dataset);

/* ---- Jobs -------------------------------------------------------------- */
/* spec and prompts are stored as given (JSON text). state starts "queued". */
int store_job_insert(struct store *st, const char *name, const char *kind, int64_t dataset,
                     json_t *spec, json_t *prompts, int64_t *id);
/* reason may be NULL (clears it). Bumps updated_at. */
int store_job_set_state(struct store *st, int64_t id, const char *state, const char *reason);
/* Free-form per-job progress the runner keeps (phase, eval report, spend):
 * merged into the job's "runtime" JSON object. */
int store_job_set_runtime(struct store *st, int64_t id, json_t *runtime);
/* The stored row as JSON: {"id":"job_N","name","kind","dataset":"ds_N",
 * "state","reason"?,"spec":{...},"runtime":{...},"created_at","updated_at"}.
 * Counts, tokens and cost are added by the runner/API, not here. */
json_t *store_job_get(struct store *st, int64_t id);
/* The prompt snapshot of a job, or NULL. */
json_t *store_job_prompts(struct store *st, int64_t id);
int store_job_resolve(struct store *st, const char *id_or_name, int64_t *id);
/* Every job, oldest first, same objects as store_job_get. */
json_t *store_job_list(struct store *st);
/* Ids of jobs in state queued, running or paused, oldest first
 * (what a restarted daemon resumes). Returns a JSON array of integers. */
json_t *store_job_unfinished(struct store *st);

/* ---- Job events (the log behind /events and `medthink logs`) ---------- */
int store_event_add(struct store *st, int64_t job, const char *type, json_t *data, int64_t *id);
/* Events with id > after_id, at most limit (<= 0 or over 10000: 10000), as
 * an array of {"id":N,"at":"ISO","type":"...","data":{...}}. */
json_t *store_events_since(struct store *st, int64_t job, int64_t after_id, int limit);

/* ISO 8601 UTC with milliseconds into out (at least 32 bytes). */
void store_iso_time(double t, char *out, size_t outlen);

#endif
