/* medthink retry JOB --failed: the job's failed tasks back to pending and
 * the job running again (stages/story.h). */
#include "stages/story.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common/log.h"
#include "stages/runner_int.h"
#include "store/store.h"
#include "store/story.h"
#include "teacher_clients/client.h"

/* The index in the job's phases of the earliest phase with a reset task,
 * or -1 when counts names none of its steps. */
static int earliest_phase(const struct job *j, json_t *counts)
{
	for (int i = 0; i < j->kind->nphases; i++)
		for (int s = 0; s < STEP__N; s++)
			if (step_def((enum step)s)->phase == j->kind->phases[i] &&
			    json_integer_value(json_object_get(counts, step_name((enum step)s))) > 0)
				return i;
	return -1;
}

int runner_job_retry_failed(struct runner *r, int64_t id, int64_t *reset, struct mt_err *err)
{
	struct job *j = job_find(r, id);
	json_t *row = NULL, *counts = NULL, *v;
	const char *key, *state;
	int64_t n = 0;
	int rc, first;

	if (reset)
		*reset = 0;
	if (!j) {
		row = store_job_get(r->st, id);
		if (!row)
			return mt_err_set(err, -ENOENT, "not_found", NULL, "no job job_%" PRId64, id);
		state = json_string_value(json_object_get(row, "state"));
		rc = job_state_parse(state ? state : "");
		json_decref(row);
		if (rc < 0)
			return mt_err_set(err, -EIO, "internal", NULL, "job_%" PRId64 ": unreadable state",
					  id);
		if (rc == JOB_CANCELLED)
			return mt_err_set(err, -EALREADY, "conflict", NULL,
					  "job_%" PRId64 " is cancelled; a cancelled job does not run again",
					  id);
	} else if (j->state == JOB_CANCELLED) {
		return mt_err_set(err, -EALREADY, "conflict", NULL,
				  "job_%" PRId64 " is cancelled; a cancelled job does not run again", id);
	} else if (j->training) {
		return mt_err_set(err, -EALREADY, "conflict", NULL,
				  "job_%" PRId64 " is running its train hook; retry when it is over", id);
	}
	rc = store_tasks_retry_failed(r->st, id, &counts);
	if (rc < 0)
		return mt_err_set(err, -EIO, "internal", NULL,
				  "job_%" PRId64 ": cannot reset the failed tasks: %s", id,
				  store_last_error(r->st));
	json_object_foreach(counts, key, v)
		n += json_integer_value(v);
	if (reset)
		*reset = n;
	if (n == 0)
		goto out; /* nothing failed: the job is left as it is */
	if (!j) {
		/* finished before this daemon started: loaded with the new counts */
		rc = job_load(r, id, &j);
		if (rc) {
			mt_err_set(err, rc == -ENOENT ? -ENOENT : -EIO, "internal", NULL,
				   "job_%" PRId64 ": cannot load it to run again", id);
			goto out;
		}
		runner_add_job(r, j);
	} else {
		json_object_foreach(counts, key, v)
		{
			int s = step_parse(key);

			if (s < 0)
				continue;
			j->st[s].failed -= json_integer_value(v);
			j->st[s].pending += json_integer_value(v);
		}
	}
	for (int s = 0; s < STEP__N; s++)
		j->st[s].cursor = -1;
	first = earliest_phase(j, counts);
	if (first >= 0 && first < j->phase_idx) {
		/* That phase was seeded when it ran; the later ones seed again
		 * as they start (adding only items they lack). */
		j->phase_idx = first;
		j->seeding = false;
		json_decref(j->eval);
		j->eval = NULL;
		job_save_runtime(j);
	}
	job_log(j, "retry", "%" PRId64 " failed task%s set back to pending; running again from %s",
		n, n == 1 ? "" : "s", phase_name(job_phase(j)));
	if (j->state != JOB_RUNNING && j->state != JOB_QUEUED)
		job_set_state(j, JOB_RUNNING, NULL);
	if (j->js.teacher[0])
		client_endpoint_rearm(r->cl, j->js.teacher);
	if (j->js.student[0])
		client_endpoint_rearm(r->cl, j->js.student);
	runner_pump_soon(r);
	rc = 0;
out:
	json_decref(counts);
	return rc;
}
