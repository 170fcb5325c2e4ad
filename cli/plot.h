#ifndef MT_CLI_PLOT_H
#define MT_CLI_PLOT_H
/* SVG charts for `medthink plot`, written by this code (no library): a
 * job's progress over time, its evaluation per checkpoint and per topic,
 * and its funnel. Pure: builds a standalone SVG document (UTF-8, valid XML)
 * into a capped buffer, no I/O. Every text from the data is XML-escaped and
 * stripped of characters XML cannot hold; long labels are cut on UTF-8
 * character boundaries; numbers that are not finite are drawn as 0. */

#include <jansson.h>
#include <stddef.h>

#include "common/buf.h"

/* Calls and finished item steps per time bucket, from a timeline object
 * ({"bucket_s":S,"points":[{"t","calls","tokens_in","tokens_out","cost_usd",
 * "items_done"}]}, GET /v1/jobs/{id}/timeline); title is escaped. */
int plot_progress_svg(struct buf *out, const json_t *timeline, const char *title);

/* Accuracy per checkpoint with 95% interval whiskers, overall and per
 * topic, from a status object's "eval" (its "checkpoints"). -EINVAL when the
 * job has no eval report. */
int plot_eval_svg(struct buf *out, const json_t *job);

/* The funnel from a status object's counts: screened -> kept -> explained;
 * answered -> wrong -> corrected. */
int plot_funnel_svg(struct buf *out, const json_t *job);

/* Writes text into dst (dstlen > 0) cut to at most max_chars characters on
 * a character boundary ("..." marks a cut), invalid UTF-8 replaced with '?'.
 * Returns dst. */
char *plot_label(char *dst, size_t dstlen, const char *text, int max_chars);

/* Appends s XML-escaped (& < > " ' as entities; control characters other
 * than tab and newline, which XML 1.0 cannot hold, as spaces). 0 or a buf
 * error. */
int plot_xml_text(struct buf *out, const char *s);

#endif
