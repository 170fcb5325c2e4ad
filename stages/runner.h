#ifndef MT_RUNNER_H
#define MT_RUNNER_H
/* The job runner: a persistent state machine per job and per item, driven by
 * the event loop. It creates jobs from specs, splits their dataset into
 * train and eval items, walks every item through the steps of each phase
 * (stages/steps.h), calls the models through teacher_clients/client.h and
 * keeps every state change in the store, so a restarted daemon resumes each
 * unfinished job where it stood.
 *
 * Phases of a job by kind:
 *   stage1:   stage1
 *   stage2:   stage2
 *   eval:     eval
 *   pipeline: stage1, train1, stage2, train2, eval
 * A train phase runs the [train] hook, pauses with reason "awaiting retrain"
 * (train "manual") until resumed, or passes straight on (train "none").
 *
 * Threads: the loop thread only. Errors: 0 or a negative errno. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"

struct store;
struct client;
struct runner;

/* A model endpoint the runner may name in a job: "teacher.NAME" or
 * "student.NAME" as configured; concurrency sizes a job's window. */
struct runner_endpoint {
	const char *name;
	int max_concurrency;
	const char *model_path; /* students: {model_path} of the train hook */
	double price_in_per_mtok;  /* USD per million tokens: the dry-run estimate */
	double price_out_per_mtok;
};

struct runner_config {
	const char *state_dir;   /* where train hook outputs go (jobs/job_N/) */
	const char *prompts_dir; /* templates copied into each job at submission */
	const struct runner_endpoint *endpoints;
	size_t nendpoints;
	char *const *train_argv; /* NULL-terminated template, or NULL: no hook */
	int train_timeout_s;
	int train_kill_grace_s;  /* SIGKILL to the hook's group this long after SIGTERM; 0: 10 */
	/* Environment names the hook must not see (every endpoint's api_key_env;
	 * common/childenv.h adds the provider names). Borrowed; outlive the runner. */
	const char *const *child_env_hide;
	size_t n_child_env_hide;
	int max_window;          /* most items in flight per job; 0: 2048 */
	/* Restarts a student's inference engine on a new model after a train
	 * hook (the daemon's supervisor); NULL when no student has a command.
	 * model_path NULL keeps the current one. Returns 0 and calls
	 * ready(cbud, status) later from the loop, or -ENOENT when that student
	 * has no command (nothing to restart). */
	int (*restart_student)(void *ud, const char *endpoint, const char *model_path,
			       void (*ready)(void *cbud, int status), void *cbud);
	void *restart_ud;
};

/* Creates a runner on loop over st (borrowed) calling models through cl
 * (borrowed). cfg is copied. Nothing runs until runner_start. */
int runner_new(uv_loop_t *loop, struct store *st, struct client *cl,
	       const struct runner_config *cfg, struct runner **out);

/* Resumes every unfinished job of the store (queued, running: run again;
 * paused: loaded, waiting for resume). Returns the number resumed or a
 * negative errno. */
int runner_start(struct runner *r);

/* Validates spec (borrowed) and creates a queued job that starts at once.
 * On a bad spec returns -EINVAL with err filled (the field named; -EBADMSG
 * when spec is not an object); an unknown dataset is -EINVAL on field
 * "dataset"; -EIO when the job cannot be stored. */
int runner_job_submit(struct runner *r, json_t *spec, int64_t *id, struct mt_err *err);

/* What a probed submit came to: rc 0 and the new job id, or a negative
 * errno with err filled (as runner_job_submit). */
typedef void (*runner_submit_cb)(void *ud, int rc, int64_t id, const struct mt_err *err);
/* runner_job_submit for specs whose selection needs an engine capability
 * (stages/probe.c): the spec is validated, then the student is probed with
 * one /v1/completions call (echo, logprobs 1, max_tokens 1, never answered
 * from the cache); a student that gives no prompt logprobs fails the submit
 * with -EINVAL, code "missing_capability", naming the engine and the
 * capability. Returns 1 when the probe is on its way (cb runs later, from
 * the loop, exactly once; ud must live until then), else what
 * runner_job_submit returns (cb is not called). */
int runner_job_submit_probed(struct runner *r, json_t *spec, int64_t *id, struct mt_err *err,
			     runner_submit_cb cb, void *ud);

/* What submitting spec (borrowed) would do, creating nothing: the spec is
 * validated exactly as runner_job_submit does (same errors), then *out (new
 * reference) holds the estimate: items of the split, calls per step, prompt
 * and completion tokens and cost (docs/api.md, POST /v1/jobs?dry_run=1).
 * Reads the store (the dataset's items) on the loop thread. */
int runner_job_estimate(struct runner *r, json_t *spec, json_t **out, struct mt_err *err);

/* action: "cancel", "pause" or "resume". -ENOENT unknown job or action,
 * -EALREADY when the state does not allow it, with err filled. */
int runner_job_action(struct runner *r, int64_t id, const char *action, struct mt_err *err);

/* Pauses every queued or running job with reason (copied; e.g. a damaged
 * store), as a pause by request would. Returns how many were paused. */
int runner_pause_all(struct runner *r, const char *reason);

/* Sets a job's budget_usd (a raised budget lets a paused job go on when
 * resumed). -ENOENT for a job not loaded. */
int runner_job_set_budget(struct runner *r, int64_t id, double budget_usd);

/* The status object of SPEC 6 (new reference), or NULL for an unknown job. */
json_t *runner_job_status(struct runner *r, int64_t id);
/* Every job's status object, oldest first. */
json_t *runner_job_list(struct runner *r);

/* What a status publisher needs to know of a loaded job, cheaply. */
struct runner_job_brief {
	int64_t id;
	bool active;      /* queued or running, or calls still in flight */
	bool finished;    /* done, failed or cancelled, with nothing in flight */
	uint64_t version; /* changes whenever the counters of its status may have */
};

/* The loaded jobs (every job this daemon runs or ran since it started), at
 * most max of them into out (NULL when max is 0). Returns how many are
 * loaded; *busy = whether any is active. Loop thread. */
size_t runner_job_briefs(struct runner *r, struct runner_job_brief *out, size_t max, bool *busy);

/* True when the job is finished (done, failed or cancelled). */
int runner_job_finished(struct runner *r, int64_t id);

/* Progress and state-change notifications for /events subscribers:
 * fn(ud, job, type, data) on the loop thread; data is borrowed. One
 * listener (the API fans out). */
void runner_set_listener(struct runner *r,
			 void (*fn)(void *ud, int64_t job, const char *type, json_t *data),
			 void *ud);

/* Prometheus lines for the runner's gauges and counters, appended to b. */
struct buf;
void runner_metrics(struct runner *r, struct buf *b);

/* Stops dispatching, waits for nothing (in-flight calls are dropped by the
 * client's close and re-sent after restart), closes the timer and calls
 * cb(ud) from the loop. Call once; then runner_free. */
void runner_close(struct runner *r, void (*cb)(void *ud), void *ud);
void runner_free(struct runner *r);

#endif
