#ifndef MT_STORE_COUNTS_H
#define MT_STORE_COUNTS_H
/* A job's task counts and call totals, read off the loop thread. Summing a
 * million task rows and a million calls takes most of a second: a restarted
 * daemon must not wait for it before its first call. So the loop thread
 * opens a connection of its own and pins its read snapshot (what the store
 * holds at that moment), a worker thread reads the sums from that snapshot,
 * and the loop adds them to whatever it counted itself since the pin.
 *
 * Thread: store_counts_open and store_counts_close on the loop thread (the
 * one that writes the store); store_counts_run on any one thread between
 * them. */

#include <stdint.h>

#include "store/totals.h"

#define STORE_COUNTS_ROWS 64

struct store_counts_row {
	char step[32];
	char state[16];
	int64_t n;
};

struct store_counts {
	void *db;     /* the connection (sqlite3 *; internal) */
	int64_t job;
	/* Results of store_counts_run: */
	struct store_counts_row rows[STORE_COUNTS_ROWS];
	int nrows;
	struct store_totals tot;
	char err[200];
};

/* Opens a read-only connection to the database at path and pins its
 * snapshot: store_counts_run later counts exactly what was committed
 * before this call, nothing committed after. Call it on the thread that
 * writes the store, between its transactions. 0 or -EIO (err in *out, when
 * allocated) / -ENOMEM; *out is NULL on -ENOMEM only. */
int store_counts_open(const char *path, int64_t job, struct store_counts **out);
/* Counts the job's tasks by (step, state) and sums its calls (as
 * store_task_counts and store_job_totals do) in the pinned snapshot.
 * Blocking: a worker thread. 0 or -EIO (c->err says why). */
int store_counts_run(struct store_counts *c);
/* Ends the read and closes the connection. NULL is a no-op. */
void store_counts_close(struct store_counts *c);

#endif
