#ifndef MT_STORE_TOTALS_H
#define MT_STORE_TOTALS_H
/* Per-job sums over the calls table, and spec updates (a raised budget).
 * Same rules as store/store.h. */

#include <jansson.h>
#include <stdint.h>

struct store;

struct store_totals {
	int64_t calls;      /* rows: successful and failed calls */
	int64_t tokens_in, tokens_out;
	double cost_usd;
};

/* Sums every call the job made. 0 or a negative errno. */
int store_job_totals(struct store *st, int64_t job, struct store_totals *out);
/* Replaces the stored spec of a job (borrowed JSON). */
int store_job_set_spec(struct store *st, int64_t job, json_t *spec);

#endif
