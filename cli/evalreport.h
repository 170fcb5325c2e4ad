#ifndef MT_CLI_EVALREPORT_H
#define MT_CLI_EVALREPORT_H
/* The evaluation table of a job (its status object's "eval": the
 * checkpoints baseline, stage1, stage2 with accuracy, 95% intervals and the
 * change from the baseline) as Markdown, JSON or CSV, and the short table
 * `medthink status` prints. Pure: builds text into a capped buffer, no I/O.
 * Tolerant of missing optional fields; topic names are escaped for the
 * format (Markdown table cells, CSV quoting). */

#include <jansson.h>
#include <stddef.h>

#include "common/buf.h"

/* Appends the report of job (a status object) in format "md", "json" or
 * "csv". Returns 0; -EINVAL with err set for an unknown format or a job
 * without an eval report yet; a buf error when out is full. */
int evalreport_render(struct buf *out, const json_t *job, const char *format, char *err,
		      size_t errlen);

/* Appends the checkpoint table for `medthink status` when ev (a status's
 * "eval") has more than one checkpoint; nothing otherwise. 0 or a buf error. */
int evalreport_status_table(struct buf *out, const json_t *ev);

#endif
