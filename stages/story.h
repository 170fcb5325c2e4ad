#ifndef MT_STORY_H
#define MT_STORY_H
/* What a user asks of one job's items after (or while) it runs: one item's
 * whole story (medthink show), the rendered prompt of a step for an item
 * without calling anything (medthink prompt-preview), and re-running the
 * failed tasks (medthink retry --failed). docs/api.md has the objects.
 *
 * Threads: the loop thread only. Errors: 0 or a negative errno with err
 * set: -ENOENT an unknown job, item or artifact (the message names it),
 * -EINVAL a bad argument (field named), -EALREADY a job state that does not
 * allow it, -EIO the store. */

#include <jansson.h>
#include <stdint.h>

#include "common/err.h"

struct runner;

/* The story of item ref (its id, or its seq when no item has that id) in
 * job: the item, and for each step of the job's kind its task (state,
 * attempts, reason), the artifact it wrote and the call behind that
 * artifact (prompt, reply, tokens, cost, latency). *out is a new reference. */
int runner_item_story(struct runner *r, int64_t job, const char *ref, json_t **out,
		      struct mt_err *err);

/* The request step (a step name) would send for item ref in job, built from
 * the job's prompt snapshot and the artifact the step reads, as a first
 * attempt; nothing is called or stored. *out is a new reference:
 * {"job","step","item":{"id","seq"},"messages":[...],"expect_json",
 * "schema_name","temperature","max_tokens"}. */
int runner_prompt_preview(struct runner *r, int64_t job, const char *step, const char *ref,
			  json_t **out, struct mt_err *err);

/* Sets the job's failed tasks back to pending with attempts 0 (one store
 * transaction), fixes the counts and runs the job again from the earliest
 * phase that had a failed task (docs/api.md has the rules). A done, failed
 * or paused job becomes running; a queued or running one goes on; a
 * cancelled one is -EALREADY. *reset (may be NULL) gets how many tasks were
 * reset; with none the job is left as it is. */
int runner_job_retry_failed(struct runner *r, int64_t job, int64_t *reset, struct mt_err *err);

#endif
