#ifndef MT_SNAPSHOT_H
#define MT_SNAPSHOT_H
/* What the front thread (daemon/front.c) answers without the main loop:
 * immutable, refcounted response bodies that the main loop publishes.
 *
 * struct snapshot is shared by the two threads: the main loop swaps texts
 * in under a mutex; the front thread takes a reference, writes the bytes
 * and drops it. One text per loaded job (GET /v1/jobs/{id}) and one per
 * kind below. A job's text is never removed while the daemon runs (jobs
 * stay loaded), so "the snapshot has job N" stays true once it is.
 *
 * struct snap_pub is the main-loop side: it renders the texts from the
 * runner (stages/report.c) and the API (metrics, health) and publishes
 * them synchronously when a client could notice (before every response the
 * main loop writes, on every job state or phase change) and every
 * SNAP_PERIOD_MS while a job is queued or running or has calls in flight
 * (SNAP_IDLE_MS while one is paused). The job list and the
 * metrics are rendered only while someone asks for them (SNAP_WANTED_MS
 * after the last request); otherwise their text is withdrawn and the front
 * thread waits for the next publish. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#define SNAP_PERIOD_MS 15
#define SNAP_IDLE_MS 200
#define SNAP_WANTED_MS 5000

struct buf;
struct runner;
struct store;

enum snap_kind { SNAP_LIST, SNAP_METRICS, SNAP_HEALTH, SNAP__N };

/* ---- the texts (any thread) ---- */

struct snap_text;

/* The bytes (not NUL-terminated) and their length. */
const char *snap_text_data(const struct snap_text *t, size_t *len);
/* Drops a reference (NULL is a no-op). Any thread. */
void snap_text_unref(struct snap_text *t);

/* ---- the shared store ---- */

struct snapshot;

/* 0 or -ENOMEM. snapshot_free once neither thread uses it. */
int snapshot_new(struct snapshot **out);
void snapshot_free(struct snapshot *s);

/* A reference to job id's status text (snap_text_unref it), or NULL when
 * none was published. Any thread. */
struct snap_text *snapshot_job(struct snapshot *s, int64_t id);

/* A reference to the text of kind k, or NULL when it is withdrawn; either
 * way k counts as wanted now. When NULL and wait is true, the next publish
 * calls the notify callback (see snapshot_set_notify). Any thread. */
struct snap_text *snapshot_get(struct snapshot *s, enum snap_kind k, bool wait);

/* fn(ud) is called (on the publishing thread, under the snapshot's lock:
 * keep it to a uv_async_send) after a publish that a snapshot_get(.., true)
 * waited for. NULL removes it. */
void snapshot_set_notify(struct snapshot *s, void (*fn)(void *ud), void *ud);

/* ---- the publisher (main loop thread) ---- */

struct snap_pub_ops {
	/* Appends the whole /metrics text to b. */
	void (*metrics)(void *ud, struct buf *b);
	/* The /v1/health object (new reference) or NULL. */
	json_t *(*health)(void *ud);
	void *ud;
};

struct snap_pub;

/* A publisher into s for runner r (store st for the job list), on loop.
 * Everything borrowed must outlive it. 0 or -ENOMEM / UV_E*. */
int snap_pub_new(uv_loop_t *loop, struct snapshot *s, struct runner *r, struct store *st,
		 const struct snap_pub_ops *ops, struct snap_pub **out);

/* Renders and publishes everything now: every loaded job's status, the
 * health, the list and metrics when wanted; starts the periodic publish
 * while a job is queued or running (which renders only the queued and
 * running jobs). */
void snap_pub_now(struct snap_pub *p);

/* The same for one job's status (a state or phase change) and the rest. */
void snap_pub_job(struct snap_pub *p, int64_t job);

/* Makes sure the periodic publish runs (a job made progress). The first
 * tick after snap_pub_new renders every loaded job. */
void snap_pub_kick(struct snap_pub *p);

/* Forgets what the job list holds for jobs that are not loaded (after a
 * request that may have changed stored jobs); the next list render reads
 * them from the store again. */
void snap_pub_forget(struct snap_pub *p);

/* Closes the timer; cb(ud) from the loop once closed. Then snap_pub_free. */
void snap_pub_close(struct snap_pub *p, void (*cb)(void *ud), void *ud);
void snap_pub_free(struct snap_pub *p);

#endif
