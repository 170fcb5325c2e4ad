#ifndef MT_RUNNER_INT_H
#define MT_RUNNER_INT_H
/* The runner's private declarations, shared by its files only:
 *   runner.c  jobs and items as state machines: loading, the split, the
 *             pump, dispatch and outcomes, state changes, the public API;
 *   phases.c  the phases of a job: start, next, the end-of-phase check,
 *             selection at the end of stage one, the train gate;
 *   report.c  status objects, counts, rate and ETA, metrics, the eval report.
 * Nothing outside these files includes this header (the runner's unit test
 * aside, which checks the tables). Loop thread only. */

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "stages/jobspec.h"
#include "stages/kinds.h"
#include "stages/runner.h"
#include "stages/select.h"
#include "stages/steps.h"

#define RATE_WINDOW 60 /* seconds of completions behind rate and ETA */

/* The pause reason of a manual train gate; resuming such a job moves it on
 * to its next phase. Kept in the job row, so it survives a restart. */
#define REASON_RETRAIN "awaiting retrain"

/* The start of the pause reason of a job that reached its budget_usd;
 * resume refuses such a job until the budget is raised. */
#define REASON_BUDGET "budget reached"

struct trainhook;
struct task;
struct held_write;
struct store_counts;

/* Failed commit rounds before the jobs pause with the store's error, and
 * the backoff between rounds (runner.c). */
#define STORE_FAILS_MAX 3
#define HOLD_FIRST_S 0.05
#define HOLD_MAX_S 5.0

struct step_stat {
	int64_t pending; /* in the store as pending, including those in flight */
	int64_t in_flight;
	int64_t done, failed, dropped;
	int64_t cursor;  /* scan position (item seq) for pending rows */
};

struct job {
	struct runner *r;
	struct job *next;
	int64_t id, dataset, n_items;
	/* DIQ "validation":{"dataset":...}: its items are queued for the
	 * strategy's first step after the job's own, as seqs n_items + i */
	int64_t val_dataset, val_n;
	char name[128], reason[300];
	enum job_state state;
	json_t *spec, *prompts;
	struct jobspec js;
	const struct job_kind_def *kind;     /* js.kind's row: the phases it runs */
	const struct select_strategy *sel;   /* js.strategy's row */
	int phase_idx;
	bool seeding;
	int64_t seed_cursor;
	struct step_stat st[STEP__N];
	uint8_t *bits[STEP__N]; /* in-flight bitmap per step, by item seq */
	int64_t in_flight;
	int window;
	double spent;
	int64_t tok_in, tok_out, calls, cached;
	int64_t rate_buckets[RATE_WINDOW];
	int64_t rate_sec;
	double loaded_at; /* when this daemon took the job up: the rate's window starts here */
	/* The running clock of rate and ETA: wall time less the spans the job
	 * was not running (paused, queued), so a pause does not thin the rate. */
	bool clock_stopped;
	double stopped_at, stopped_total;
	bool progress_dirty;
	bool training; /* a train hook is running */
	bool selected; /* stage one's selection budget has been applied */
	struct trainhook *hook;
	json_t *eval;  /* the eval report once computed */
	json_t *selection; /* the selection summary once chosen (diq, 3ds) */
	int round;     /* an eval job over several students: the index of the
			* one being evaluated (js.student is that one) */
	json_t *rl;    /* the rl report once computed (stages/rl.h) */
	/* Loaded after a restart, its stored task counts and call totals are
	 * read on a worker thread (store/counts.h) while the job already runs:
	 * until they are in, st[] and the totals hold only what changed since
	 * (pending may be negative), and nothing that needs the whole count
	 * runs (the end of a phase, max_items, a budget's room). */
	bool counting;
	struct store_counts *counts;
	uv_work_t count_work;
	/* The stored job row (less its runtime) behind the status: read again
	 * after this daemon writes the row (row_stale) or once it is a second
	 * old, so 50 clients polling the status do not each read the store. */
	json_t *row_cache;
	double row_at;
	bool row_stale;
};

struct runner {
	uv_loop_t *loop;
	struct store *st;
	struct client *cl;
	struct runner_config cfg;
	struct job *jobs;
	uv_timer_t pump;   /* "soon": coalesces work after completions */
	uv_timer_t tick;   /* once a second: progress events, rate */
	bool pump_armed;
	bool closing;
	int open_handles;
	/* Writes the store refused, kept and retried with backoff: item
	 * outcomes (never re-queued: their calls would be sent again) and job
	 * states and events (in order). */
	struct task *held;
	struct held_write *hw_head, *hw_tail;
	uv_timer_t hold;
	double hold_delay_s;
	int hold_round, hold_fail_round, store_fails;
	bool store_trouble; /* the jobs were paused for the store */
	bool pausing;       /* inside runner_store_trouble (its writes fail too) */
	void (*listener)(void *, int64_t, const char *, json_t *);
	void *listener_ud;
	void (*close_cb)(void *);
	void *close_ud;
	int64_t m_calls, m_items_done, m_items_failed;
	bool counts_later; /* job_load leaves the counts to a worker (runner_start) */
	bool in_pump;      /* inside runner_on_pump */
};

/* ---- runner.c ---- */
struct job *job_find(struct runner *r, int64_t id);
/* The configured endpoint named name ("teacher.NAME"), or NULL. */
const struct runner_endpoint *runner_endpoint_find(const struct runner *r, const char *name);
/* Sends an event to live subscribers only. */
void job_emit(struct job *j, const char *type, json_t *data);
/* A stored event (the job's log), also sent to live subscribers and logged. */
void job_log(struct job *j, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void job_logv(struct job *j, const char *type, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* Stores the job's runtime (phase, seeded, selected, eval report). */
void job_save_runtime(struct job *j);
/* Stores the new state with reason (NULL: none), logs and emits it; a
 * paused or finished job's calls are cancelled. */
void job_set_state(struct job *j, enum job_state state, const char *reason);
/* True when the item with id ext_id is in js's eval split (a pure function
 * of the seed and the id). */
bool runner_split_is_eval(const struct jobspec *js, const char *ext_id);
/* Validates spec as a submit does: parses it into js, resolves the dataset
 * (*ds), checks the endpoints and the train mode, loads the prompt templates
 * (*prompts, new reference on success). 0 or a negative errno with err set. */
int runner_spec_check(struct runner *r, json_t *spec, struct jobspec *js, int64_t *ds,
		      json_t **prompts, struct mt_err *err);
/* Arms the pump for the next loop turn (coalesced). */
void runner_pump_soon(struct runner *r);
/* Loads job id from the store into a new struct job (*out; not yet in the
 * runner's list): -ENOENT for no such job. */
int job_load(struct runner *r, int64_t id, struct job **out);
/* Appends j to the runner's jobs (it owns j from now on). */
void runner_add_job(struct runner *r, struct job *j);

/* ---- phases.c ---- */
/* The phase the job is in, or PHASE__N past its last. */
enum phase job_phase(const struct job *j);
/* The step the items of phase p start with. */
enum step job_phase_first_step(const struct job *j, enum phase p);
/* True when the job's phase is a train gate. */
bool job_phase_is_train(const struct job *j);
/* True when stage two's items are those stage one kept (the job ran it). */
bool job_phase_takes_kept(const struct job *j, enum phase p);
/* True when stage one kept the item with seq: the strategy's screening (if
 * any) kept it and it has its explanation. Stage two takes only these. */
bool job_item_kept(const struct job *j, int64_t seq);
/* True when phase p works on the held-out (eval) split. */
bool job_phase_held_out(enum phase p);
/* True when phase p works on every item, whatever its split (refer). */
bool job_phase_all_items(enum phase p);
/* Starts the job's current phase: a work phase seeds its items; a train
 * phase runs the train gate of js.train. */
void job_phase_start(struct job *j);
/* Moves on to the next phase (or done after the last). */
void job_phase_next(struct job *j);
/* Moves a job on when its phase has nothing pending and nothing in flight. */
void job_phase_check(struct job *j);

/* ---- phases_rl.c ---- */
/* Computes the rl report into j->rl from the items' artifacts and logs it. */
void job_rl_report(struct job *j);

/* ---- report.c ---- */
/* The job's running clock (seconds; store_now() less the time it was not
 * running); frozen while the job is not running. */
double job_run_clock(const struct job *j);
/* Stops or restarts the running clock for the job's new state s. */
void job_run_clock_state(struct job *j, enum job_state s);
/* Counts a finished item step for the rate. */
void job_rate_note(struct job *j);
/* Items finished per second over the last RATE_WINDOW seconds. */
double job_rate(const struct job *j);
/* The status object's "counts" (new reference). */
json_t *job_counts_json(const struct job *j);
/* The once-a-second tick: progress events of jobs that moved. */
void runner_on_tick(uv_timer_t *h);

/* ---- checkpoints.c ---- */
/* A phase that evaluates the student: its name in the report ("baseline",
 * "stage1", "stage2"), the artifact its steps write, and its two steps. */
struct checkpoint_def {
	enum phase phase;
	const char *name;
	const char *artifact;
	enum step ask, judge;
};
/* The checkpoint evaluated by phase p, or NULL. */
const struct checkpoint_def *job_checkpoint_of(enum phase p);
/* Computes the eval report of every checkpoint the job has passed into
 * j->eval (new object; its "checkpoints" array is the table) and logs the
 * latest one's lines. */
void job_eval_report(struct job *j);
/* The cache tag of step s's calls (client_opts.cache_tag), written into
 * buf, or NULL for none: a student's answers at a checkpoint after a
 * retrain are never taken from the cache of the model before it. */
const char *job_cache_tag(const struct job *j, enum step s, char *buf, size_t len);
/* At the end of an eval job's round with more students to go: moves the
 * round's artifacts and tasks aside, starts the eval phase again with the
 * next student and returns true; false otherwise (nothing done). */
bool job_eval_next_round(struct job *j);

#endif
