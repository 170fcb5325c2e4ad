#ifndef MT_CLI_RENDER_H
#define MT_CLI_RENDER_H
/* Text rendering of the daemon's objects for the medthink CLI: progress
 * bars, job status blocks, one-line summaries, log events. Pure: builds text
 * into a capped buffer, no I/O. Tolerant: a missing or mistyped optional
 * field is left out, never an error. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

/* Writes "[####----]" with width inner cells for done of total into out
 * (outlen >= width + 3). total 0 draws an empty bar. Returns the length. */
int render_bar(char *out, size_t outlen, uint64_t done, uint64_t total, int width);

/* Formats a duration as "42s", "3m05s", "2h03m" or "4d02h" ("-" when
 * negative or not finite). */
void render_duration(char *out, size_t outlen, double secs);

/* Per-step progress of a status object's counts entry. */
struct render_step {
	uint64_t pending, in_flight, done, failed, dropped;
	uint64_t total;    /* all five */
	uint64_t finished; /* done + failed + dropped */
};
void render_step_counts(const json_t *counts_entry, struct render_step *st);

/* True for the states a job does not leave: done, failed, cancelled. */
bool render_state_final(const char *state);

/* Appends the full status block of one job (steps with bars, rate, ETA,
 * tokens, cost, state and reason, eval accuracy). Returns 0 or a buf
 * error. */
int render_job(struct buf *out, const json_t *job, int bar_width);
/* A job's overall progress in percent into *pct: for a kind of several
 * phases (pipeline) each phase with items weighs the same, the phases before
 * the job's "phase" count as finished and those after it as not started, so
 * a pipeline paused before eval is not 100%; otherwise finished/total over
 * every step in "counts". false when there is nothing to count. */
bool render_job_percent(const json_t *job, double *pct);
/* Appends one line (with '\n') summing a job up: id, state, name, kind,
 * overall percent, cost. */
int render_job_line(struct buf *out, const json_t *job);
/* Appends one line (with '\n') of a job's progress for logs and non-terminal
 * --watch output: id, state, reason, per-step finished/total, ETA, cost. */
int render_job_progress_line(struct buf *out, const json_t *job);
/* Appends one line (with '\n') for a dataset: id, name, format, items. */
int render_dataset_line(struct buf *out, const json_t *ds);
/* Appends one line (with '\n') for an event of a job's event stream. */
int render_event(struct buf *out, const char *event, const char *data);

#endif
