#include "stages/runner.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"
#include "common/log.h"
#include "stages/jobspec.h"
#include "stages/prompts.h"
#include "stages/steps.h"
#include "stages/trainhook.h"
#include "store/store.h"
#include "store/totals.h"
#include "store/work.h"
#include "teacher_clients/client.h"

enum phase { PH_STAGE1, PH_TRAIN1, PH_STAGE2, PH_TRAIN2, PH_EVAL, PH__N };

static const char *const phase_names[PH__N] = { "stage1", "train1", "stage2", "train2", "eval" };

#define RATE_WINDOW 60    /* seconds of completions behind rate and ETA */
#define SEED_PAGE 2000    /* items split and queued per loop turn */
#define SCAN_PAGE 512     /* pending tasks read per scan */

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
	char name[128], kind[16], state[16], reason[300];
	json_t *spec, *prompts;
	struct jobspec js;
	enum phase phases[PH__N];
	int nphases, phase_idx;
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
	bool progress_dirty;
	bool training; /* a train hook is running */
	bool selected; /* stage one's selection budget has been applied */
	struct trainhook *hook;
	json_t *eval;  /* the eval report once computed */
};

struct runner {
	uv_loop_t *loop;
	struct store *st;
	struct client *cl;
	struct runner_config cfg;
	struct runner_endpoint *eps;
	struct job *jobs;
	uv_timer_t pump;   /* "soon": coalesces work after completions */
	uv_timer_t tick;   /* once a second: progress events, rate */
	bool pump_armed;
	bool closing;
	int open_handles;
	void (*listener)(void *, int64_t, const char *, json_t *);
	void *listener_ud;
	void (*close_cb)(void *);
	void *close_ud;
	int64_t m_calls, m_items_done, m_items_failed;
};

/* One item in one step, while its call is out. */
struct task {
	struct job *job;
	enum step step;
	int64_t seq;
	int attempt;
	json_t *item;
	json_t *prior;
	struct step_outcome out;
	int64_t call_id;
	char fail_reason[300];
	bool canceled;
};

static void job_pump(struct job *j);
static void runner_pump_soon(struct runner *r);
static void job_phase_check(struct job *j);
static void job_set_state(struct job *j, const char *state, const char *reason);

/* ---- small helpers ------------------------------------------------------ */

static bool state_is(const struct job *j, const char *s) { return strcmp(j->state, s) == 0; }

static bool job_finished(const struct job *j)
{
	return state_is(j, "done") || state_is(j, "failed") || state_is(j, "cancelled");
}

static struct job *job_find(struct runner *r, int64_t id)
{
	for (struct job *j = r->jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

static enum phase job_phase(const struct job *j)
{
	return j->phase_idx < j->nphases ? j->phases[j->phase_idx] : PH__N;
}

static bool step_in_phase(enum step s, enum phase p)
{
	switch (p) {
	case PH_STAGE1:
		return s == STEP_SCREEN || s == STEP_EXPLAIN;
	case PH_STAGE2:
		return s == STEP_ANSWER || s == STEP_JUDGE || s == STEP_CORRECT;
	case PH_EVAL:
		return s == STEP_EVAL || s == STEP_EVAL_JUDGE;
	default:
		return false;
	}
}

static bool bit_get(const struct job *j, enum step s, int64_t seq)
{
	if (!j->bits[s] || seq < 0 || seq >= j->n_items)
		return false;
	return j->bits[s][seq >> 3] & (1u << (seq & 7));
}

static void bit_set(struct job *j, enum step s, int64_t seq, bool on)
{
	if (!j->bits[s] || seq < 0 || seq >= j->n_items)
		return;
	if (on)
		j->bits[s][seq >> 3] |= (uint8_t)(1u << (seq & 7));
	else
		j->bits[s][seq >> 3] &= (uint8_t)~(1u << (seq & 7));
}

static void job_emit(struct job *j, const char *type, json_t *data)
{
	if (j->r->listener)
		j->r->listener(j->r->listener_ud, j->id, type, data);
}

/* A stored event (the job's log) that is also sent to live subscribers. */
static void job_log(struct job *j, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void job_log(struct job *j, const char *type, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *data;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	data = json_pack("{s:s}", "message", msg);
	if (store_event_add(j->r->st, j->id, type, data, NULL) != 0)
		log_warn("job_%" PRId64 ": cannot store event: %s", j->id, msg);
	job_emit(j, type, data);
	json_decref(data);
	log_info("job_%" PRId64 ": %s", j->id, msg);
}

static void job_save_runtime(struct job *j)
{
	json_t *rt = json_pack("{s:i, s:s, s:b, s:b}", "phase_idx", j->phase_idx, "phase",
			       j->phase_idx < j->nphases ? phase_names[job_phase(j)] : "done",
			       "seeded", !j->seeding, "selected", j->selected);

	if (j->eval)
		json_object_set(rt, "eval", j->eval);
	if (store_job_set_runtime(j->r->st, j->id, rt) != 0)
		log_warn("job_%" PRId64 ": cannot store its progress", j->id);
	json_decref(rt);
}

/* ---- the split ---------------------------------------------------------- */

/* An item's split is a pure function of the seed and the item id, so it is
 * the same after a restart, on a re-import, and in a job that reproduces
 * another: FNV-1a 64 over "seed:id", mixed (FNV's high bits barely move
 * for ids that differ in their last characters). */
static bool item_is_eval(const struct job *j, const char *ext_id)
{
	char seedbuf[32];
	uint64_t h;

	if (j->js.eval_fraction <= 0)
		return false;
	if (j->js.eval_fraction >= 1)
		return true;
	snprintf(seedbuf, sizeof(seedbuf), "%" PRId64 ":", j->js.seed);
	/* The start value is a digit short of FNV's offset basis; it stays, so
	 * that splits of stored jobs never change. */
	h = fnv1a64(UINT64_C(1469598103934665603), seedbuf, strlen(seedbuf));
	h = hash_mix64(fnv1a64(h, ext_id, strlen(ext_id)));
	return (double)(h >> 11) / 9007199254740992.0 < j->js.eval_fraction;
}

static enum step phase_first_step(const struct job *j, enum phase p)
{
	switch (p) {
	case PH_STAGE1:
		return strcmp(j->js.strategy, "none") == 0 ? STEP_EXPLAIN : STEP_SCREEN;
	case PH_STAGE2:
		return STEP_ANSWER;
	default:
		return STEP_EVAL;
	}
}

struct seed_ctx {
	struct job *j;
	enum phase p;
	int64_t *seqs;
	size_t n;
	int64_t last;
	int64_t taken;   /* train items taken so far (for max_items) */
};

static int seed_one(void *ud, int64_t seq, const char *id)
{
	struct seed_ctx *c = ud;
	struct job *j = c->j;
	bool eval = item_is_eval(j, id ? id : "");

	c->last = seq;
	if ((c->p == PH_EVAL) != eval)
		return 0;
	if (c->p == PH_STAGE2 && strcmp(j->kind, "pipeline") == 0) {
		/* Stage two of a pipeline works on what stage one kept. */
		json_t *v = store_artifact_get(j->r->st, j->id, "verdict", seq);
		bool dropped = v && json_is_false(json_object_get(v, "keep"));

		json_decref(v);
		if (dropped)
			return 0;
	}
	c->seqs[c->n++] = seq;
	return 0;
}

/* Queues the next page of the phase's items as pending tasks of its first
 * step. Idempotent (INSERT OR IGNORE), so a crash mid-way only redoes pages. */
static void job_seed_page(struct job *j)
{
	struct runner *r = j->r;
	enum phase p = job_phase(j);
	enum step first = phase_first_step(j, p);
	struct seed_ctx c = { .j = j, .p = p, .last = -1 };
	int64_t limit = SEED_PAGE;
	int rc;

	c.seqs = calloc(SEED_PAGE, sizeof(*c.seqs));
	if (!c.seqs)
		return;
	rc = store_item_ids_each(r->st, j->dataset, j->seed_cursor, limit, seed_one, &c);
	if (rc == 0 && j->js.max_items > 0 && p != PH_EVAL) {
		/* max_items caps the items a phase works on, first in file order. */
		int64_t room = j->js.max_items - j->st[first].pending - j->st[first].done -
			       j->st[first].failed - j->st[first].dropped;

		if (room < 0)
			room = 0;
		if ((int64_t)c.n > room)
			c.n = (size_t)room;
	}
	if (rc == 0 && c.n) {
		/* Only rows not queued before a restart count (INSERT OR IGNORE). */
		rc = store_tasks_insert_pending(r->st, j->id, step_name(first), c.seqs, c.n);
		if (rc > 0)
			j->st[first].pending += rc;
		if (rc > 0)
			rc = 0;
	}
	free(c.seqs);
	if (rc) {
		log_warn("job_%" PRId64 ": queuing items failed (%s); will retry", j->id,
			 strerror(-rc));
		return;
	}
	if (c.last < 0 || c.last + 1 >= j->n_items ||
	    (j->js.max_items > 0 && p != PH_EVAL &&
	     j->st[first].pending + j->st[first].done + j->st[first].failed +
			     j->st[first].dropped >=
		     j->js.max_items)) {
		j->seeding = false;
		job_save_runtime(j);
	} else {
		j->seed_cursor = c.last + 1;
	}
	j->progress_dirty = true;
}

/* ---- dispatch ----------------------------------------------------------- */

/* How many more calls the job may have out now. With a budget, calls in
 * flight are limited to what the rest of the budget buys at the average
 * cost so far (one call to learn it), so a job stops near its budget
 * rather than a whole window past it. */
static int64_t job_room(const struct job *j)
{
	int64_t room = j->window - j->in_flight;
	double left, avg;
	int64_t paid = j->calls - j->cached;

	if (j->js.budget_usd <= 0)
		return room;
	left = j->js.budget_usd - j->spent;
	if (left <= 0)
		return 0;
	if (paid <= 0)
		return j->in_flight == 0 ? 1 : 0; /* one call to learn the price */
	if (j->spent <= 0)
		return room; /* the endpoints charge nothing */
	avg = j->spent / (double)paid;
	if ((double)j->in_flight * avg >= left)
		return 0;
	if ((double)(j->in_flight + room) * avg > left)
		room = (int64_t)(left / avg) - j->in_flight + 1;
	return room;
}


static const char *step_endpoint(const struct job *j, enum step s)
{
	return step_is_student(s) ? j->js.student : j->js.teacher;
}

static void task_free(struct task *t)
{
	if (!t)
		return;
	json_decref(t->item);
	json_decref(t->prior);
	step_outcome_clear(&t->out);
	free(t);
}

static void task_release(struct task *t)
{
	struct job *j = t->job;

	bit_set(j, t->step, t->seq, false);
	j->st[t->step].in_flight--;
	j->in_flight--;
}

static void task_store_outcome(struct task *t);

static void task_on_reply(void *ud, const struct client_result *res)
{
	struct task *t = ud;
	struct job *j = t->job;
	struct step_ctx ctx = { .item = t->item, .prompts = j->prompts, .prior = t->prior,
				.attempt = t->attempt };

	j->r->m_calls++;
	if (res->err == -ECANCELED) {
		/* Paused or cancelled before it was sent: the task stays pending. */
		task_release(t);
		task_free(t);
		job_phase_check(j);
		return;
	}
	j->calls++;
	if (res->cached)
		j->cached++;
	else
		j->spent += res->cost_usd;
	j->tok_in += res->tokens_in;
	j->tok_out += res->tokens_out;
	t->call_id = res->call_id;
	if (res->err) {
		/* The client already retried what was worth retrying. */
		step_outcome_clear(&t->out);
		t->out.result = STEP_FAILED;
		snprintf(t->out.reason, sizeof(t->out.reason), "%s call failed: %s",
			 step_is_student(t->step) ? "student" : "teacher",
			 res->message && *res->message ? res->message : strerror(-res->err));
	} else {
		step_reply_judge(t->step, &ctx, res->content, res->json, &t->out);
		/* With a selection budget, explanations wait until every item is
		 * screened and the best are chosen (job_select). */
		if (t->step == STEP_SCREEN && j->js.selection_budget > 0 && t->out.next == STEP_EXPLAIN)
			t->out.next = -1;
	}
	task_store_outcome(t);
}

static void job_dispatch(struct job *j, enum step s, int64_t seq, int attempt,
			 const char *last_problem)
{
	struct runner *r = j->r;
	struct task *t;
	struct step_request req = { 0 };
	struct step_ctx ctx = { 0 };
	struct client_opts o = { 0 };
	char err[256];
	int rc;

	if (bit_get(j, s, seq))
		return;
	t = calloc(1, sizeof(*t));
	if (!t)
		return;
	t->job = j;
	t->step = s;
	t->seq = seq;
	t->attempt = attempt;
	t->out.next = -1;
	bit_set(j, s, seq, true);
	j->st[s].in_flight++;
	j->in_flight++;

	t->item = store_item_get(r->st, j->dataset, seq);
	if (!t->item) {
		snprintf(t->out.reason, sizeof(t->out.reason), "item %" PRId64 " is not in the store",
			 seq);
		t->out.result = STEP_FAILED;
		task_store_outcome(t);
		return;
	}
	if (s == STEP_JUDGE || s == STEP_CORRECT)
		t->prior = store_artifact_get(r->st, j->id, "answer", seq);
	else if (s == STEP_EVAL_JUDGE)
		t->prior = store_artifact_get(r->st, j->id, "eval", seq);
	ctx.item = t->item;
	ctx.prompts = j->prompts;
	ctx.prior = t->prior;
	ctx.attempt = attempt;
	ctx.last_problem = last_problem;
	rc = step_request_build(s, &ctx, &req, err, sizeof(err));
	if (rc) {
		snprintf(t->out.reason, sizeof(t->out.reason), "prompt: %.240s", err);
		t->out.result = STEP_FAILED;
		task_store_outcome(t);
		return;
	}
	o.job_id = j->id;
	o.temperature = req.temperature;
	o.max_tokens = req.max_tokens;
	o.schema = req.schema;
	o.expect_json = req.expect_json;
	rc = client_chat(r->cl, step_endpoint(j, s), &o, req.messages, task_on_reply, t);
	step_request_clear(&req);
	if (rc) {
		snprintf(t->out.reason, sizeof(t->out.reason), "cannot call %s: %s",
			 step_endpoint(j, s), strerror(-rc));
		t->out.result = STEP_FAILED;
		task_store_outcome(t);
	}
}

/* ---- committing an outcome ---------------------------------------------- */

static int task_apply(struct store *st, void *ud)
{
	struct task *t = ud;
	struct job *j = t->job;
	const char *step = step_name(t->step);
	int rc = 0;

	if (t->out.artifact && t->out.artifact_kind) {
		rc = store_artifact_put(st, j->id, t->out.artifact_kind, t->seq, t->call_id,
					t->out.artifact);
		if (rc)
			return rc;
	}
	switch (t->out.result) {
	case STEP_DONE:
		rc = store_task_put(st, j->id, step, t->seq, STORE_TASK_DONE, t->attempt + 1, NULL);
		if (rc == 0 && t->out.next >= 0) {
			int64_t seq = t->seq;

			rc = store_tasks_insert_pending(st, j->id, step_name(t->out.next), &seq, 1);
			if (rc > 0)
				rc = 0;
		}
		break;
	case STEP_DROPPED:
		rc = store_task_put(st, j->id, step, t->seq, STORE_TASK_DROPPED, t->attempt + 1,
				    t->out.reason);
		break;
	case STEP_FAILED:
		rc = store_task_put(st, j->id, step, t->seq, STORE_TASK_FAILED, t->attempt + 1,
				    t->out.reason);
		break;
	case STEP_RETRY:
		rc = store_task_put(st, j->id, step, t->seq, STORE_TASK_PENDING, t->attempt + 1,
				    t->out.reason);
		break;
	}
	return rc;
}

static void rate_note(struct job *j)
{
	int64_t now = (int64_t)store_now();

	if (now != j->rate_sec) {
		int64_t gap = now - j->rate_sec;

		for (int64_t i = 1; i <= gap && i <= RATE_WINDOW; i++)
			j->rate_buckets[(j->rate_sec + i) % RATE_WINDOW] = 0;
		j->rate_sec = now;
	}
	j->rate_buckets[now % RATE_WINDOW]++;
}

static void task_done(void *ud, int status)
{
	struct task *t = ud;
	struct job *j = t->job;
	struct runner *r = j->r;
	struct step_stat *ss = &j->st[t->step];
	enum step_result res = t->out.result;
	int next = t->out.next;
	int attempt = t->attempt;
	char problem[256];

	task_release(t);
	if (status != 0) {
		/* Nothing was committed: the task is still pending in the store and
		 * will be picked up again by a later scan. */
		log_error("job_%" PRId64 ": storing %s of item %" PRId64 " failed: %s", j->id,
			  step_name(t->step), t->seq, strerror(-status));
		ss->cursor = -1;
		task_free(t);
		runner_pump_soon(r);
		return;
	}
	switch (res) {
	case STEP_DONE:
		ss->pending--;
		ss->done++;
		if (next >= 0)
			j->st[next].pending++;
		break;
	case STEP_DROPPED:
		ss->pending--;
		ss->dropped++;
		break;
	case STEP_FAILED:
		ss->pending--;
		ss->failed++;
		r->m_items_failed++;
		log_debug("job_%" PRId64 ": item %" PRId64 " failed in %s: %s", j->id, t->seq,
			  step_name(t->step), t->out.reason);
		break;
	case STEP_RETRY:
		break;
	}
	if (res != STEP_RETRY) {
		rate_note(j);
		r->m_items_done++;
	}
	j->progress_dirty = true;
	snprintf(problem, sizeof(problem), "%s", t->out.reason);
	{
		int64_t seq = t->seq;
		enum step s = t->step;

		task_free(t);
		/* Keep the item moving while the job may run: its next step (or its
		 * re-ask) goes out now rather than waiting for a scan. */
		if (state_is(j, "running") && !r->closing && job_room(j) > 0) {
			if (res == STEP_DONE && next >= 0)
				job_dispatch(j, (enum step)next, seq, 0, NULL);
			else if (res == STEP_RETRY)
				job_dispatch(j, s, seq, attempt + 1, problem);
		}
	}
	job_phase_check(j);
	runner_pump_soon(r);
}

static void task_store_outcome(struct task *t)
{
	int rc = store_batch_add(t->job->r->st, task_apply, task_done, t);

	if (rc) {
		log_error("job_%" PRId64 ": cannot queue a store write: %s", t->job->id,
			  strerror(-rc));
		task_release(t);
		task_free(t);
	}
}

/* ---- phases ------------------------------------------------------------- */

static void job_phase_start(struct job *j);

struct eval_acc {
	struct job *j;
	json_t *topics;
	int64_t total, correct, wrong, ungraded, judged;
};

static int eval_one(void *ud, int64_t seq, json_t *content)
{
	struct eval_acc *a = ud;
	const char *verdict = json_string_value(json_object_get(content, "verdict"));
	const char *by = json_string_value(json_object_get(content, "graded_by"));
	json_t *item = store_item_get(a->j->r->st, a->j->dataset, seq);
	const char *topic = json_string_value(json_object_get(item, "topic"));
	json_t *tp;

	if (!verdict || strcmp(verdict, "unclear") == 0) {
		json_decref(item);
		return 0; /* still waiting for its judge */
	}
	if (!topic || !*topic)
		topic = "(none)";
	tp = json_object_get(a->topics, topic);
	if (!tp) {
		tp = json_pack("{s:i, s:i, s:i}", "total", 0, "correct", 0, "ungraded", 0);
		json_object_set_new(a->topics, topic, tp);
	}
	a->total++;
	json_object_set_new(tp, "total", json_integer(json_integer_value(json_object_get(tp, "total")) + 1));
	if (strcmp(verdict, "correct") == 0) {
		a->correct++;
		json_object_set_new(tp, "correct",
				    json_integer(json_integer_value(json_object_get(tp, "correct")) + 1));
	} else if (strcmp(verdict, "ungraded") == 0) {
		a->ungraded++;
		json_object_set_new(tp, "ungraded",
				    json_integer(json_integer_value(json_object_get(tp, "ungraded")) + 1));
	} else {
		a->wrong++;
	}
	if (by && strcmp(by, "judge") == 0)
		a->judged++;
	json_decref(item);
	return 0;
}

/* Accuracy over the held-out split, overall and by topic. Ungraded answers
 * count in total but neither right nor wrong; accuracy is over the graded. */
static void job_eval_report(struct job *j)
{
	struct eval_acc a = { .j = j, .topics = json_object() };
	const char *key;
	json_t *tp;
	int64_t failed = j->st[STEP_EVAL].failed + j->st[STEP_EVAL_JUDGE].failed;

	store_artifacts_each(j->r->st, j->id, "eval", -1, 0, eval_one, &a);
	json_object_foreach(a.topics, key, tp)
	{
		int64_t tot = json_integer_value(json_object_get(tp, "total"));
		int64_t ung = json_integer_value(json_object_get(tp, "ungraded"));
		int64_t cor = json_integer_value(json_object_get(tp, "correct"));

		(void)ung;
		json_object_set_new(tp, "accuracy", json_real(tot > 0 ? (double)cor / (double)tot : 0));
	}
	json_decref(j->eval);
	/* accuracy counts an ungraded answer as not correct (as a benchmark
	 * would); accuracy_graded leaves them out. */
	j->eval = json_pack("{s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "accuracy",
			    a.total > 0 ? (double)a.correct / (double)a.total : 0.0, "accuracy_graded",
			    a.total - a.ungraded > 0 ? (double)a.correct / (double)(a.total - a.ungraded)
						     : 0.0,
			    "total", (json_int_t)a.total, "correct", (json_int_t)a.correct, "wrong",
			    (json_int_t)a.wrong, "ungraded", (json_int_t)a.ungraded, "judged",
			    (json_int_t)a.judged, "failed", (json_int_t)failed, "by_topic", a.topics);
	job_log(j, "eval", "eval: accuracy %.1f%% (%" PRId64 " of %" PRId64 " correct; %" PRId64
			   " ungraded, %" PRId64 " graded by the judge)",
		100.0 * json_real_value(json_object_get(j->eval, "accuracy")), a.correct, a.total,
		a.ungraded, a.judged);
}

static void job_phase_summary(struct job *j, enum phase p)
{
	switch (p) {
	case PH_STAGE1:
		job_log(j, "phase", "stage1 done: %" PRId64 " screened (%" PRId64 " dropped, %" PRId64
				    " failed), %" PRId64 " explanations (%" PRId64 " dropped, %" PRId64
				    " failed): SFT set 1 is ready",
			j->st[STEP_SCREEN].done + j->st[STEP_SCREEN].dropped,
			j->st[STEP_SCREEN].dropped, j->st[STEP_SCREEN].failed,
			j->st[STEP_EXPLAIN].done, j->st[STEP_EXPLAIN].dropped,
			j->st[STEP_EXPLAIN].failed);
		break;
	case PH_STAGE2:
		job_log(j, "phase", "stage2 done: %" PRId64 " answered, %" PRId64
				    " needed the judge, %" PRId64 " corrective chains (%" PRId64
				    " failed): SFT set 2 is ready",
			j->st[STEP_ANSWER].done, j->st[STEP_JUDGE].done + j->st[STEP_JUDGE].failed,
			j->st[STEP_CORRECT].done, j->st[STEP_CORRECT].failed);
		break;
	case PH_EVAL:
		job_eval_report(j);
		break;
	default:
		break;
	}
}

static void job_phase_next(struct job *j)
{
	j->phase_idx++;
	j->seeding = true;
	j->seed_cursor = 0;
	for (int s = 0; s < STEP__N; s++)
		j->st[s].cursor = -1;
	job_save_runtime(j);
	if (j->phase_idx >= j->nphases) {
		job_set_state(j, "done", NULL);
		return;
	}
	job_phase_start(j);
}

static void job_student_ready(void *ud, int status)
{
	struct job *j = ud;

	j->training = false;
	if (j->r->closing)
		return;
	if (status != 0) {
		char why[160];

		snprintf(why, sizeof(why), "the student engine did not come back after retraining (%s)",
			 strerror(status < 0 ? -status : status));
		job_set_state(j, "paused", why);
		return;
	}
	job_log(j, "phase", "student %s restarted on the retrained model", j->js.student);
	if (state_is(j, "running"))
		job_phase_next(j);
}

/* The hook may name the retrained model in OUT_DIR/MODEL (one line, a
 * path); the student's engine is then restarted on it. New string or NULL. */
static char *hook_model_path(struct job *j)
{
	char path[1200], line[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/jobs/job_%" PRId64 "/train%s/MODEL", j->r->cfg.state_dir,
		 j->id, job_phase(j) == PH_TRAIN1 ? "1" : "2");
	f = fopen(path, "r");
	if (!f)
		return NULL;
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	return line[0] ? strdup(line) : NULL;
}

static void job_hook_done(void *ud, int status, const char *why)
{
	struct job *j = ud;
	struct runner *r = j->r;

	j->training = false;
	trainhook_free(j->hook);
	j->hook = NULL;
	if (r->closing || job_finished(j))
		return; /* a cancelled job's hook was stopped: it stays cancelled */
	if (status != 0) {
		job_set_state(j, "paused", why);
		return;
	}
	job_log(j, "phase", "%s: train hook finished", phase_names[job_phase(j)]);
	if (!state_is(j, "running"))
		return;
	if (r->cfg.restart_student && j->js.student[0]) {
		char *model = hook_model_path(j);
		int rc = r->cfg.restart_student(r->cfg.restart_ud, j->js.student, model,
						job_student_ready, j);

		if (rc == 0)
			job_log(j, "phase", "restarting student %s%s%s", j->js.student,
				model ? " on " : "", model ? model : "");
		free(model);
		if (rc == 0) {
			j->training = true; /* waits for the engine, like a hook */
			return;
		}
		if (rc != -ENOENT) {
			job_set_state(j, "paused", "cannot restart the student engine");
			return;
		}
	}
	job_phase_next(j);
}

static void job_phase_start(struct job *j)
{
	enum phase p = job_phase(j);
	char err[300];

	{
		json_t *d = json_pack("{s:s}", "phase", phase_names[p]);

		job_emit(j, "phase", d);
		json_decref(d);
	}
	if (p == PH_TRAIN1 || p == PH_TRAIN2) {
		const char *set = p == PH_TRAIN1 ? "1" : "2";

		j->seeding = false;
		if (strcmp(j->js.train, "none") == 0) {
			job_phase_next(j);
		} else if (strcmp(j->js.train, "manual") == 0) {
			job_log(j, "phase", "SFT set %s is ready; retrain the student, then run "
					    "`medthink resume job_%" PRId64 "`",
				set, j->id);
			job_set_state(j, "paused", "awaiting retrain");
		} else {
			struct trainhook_params hp = {
				.loop = j->r->loop, .store = j->r->st, .job = j->id,
				.dataset = j->dataset, .set = set,
				.state_dir = j->r->cfg.state_dir, .argv = j->r->cfg.train_argv,
				.timeout_s = j->r->cfg.train_timeout_s,
				.kill_grace_s = j->r->cfg.train_kill_grace_s,
				.env_hide = j->r->cfg.child_env_hide,
				.n_env_hide = j->r->cfg.n_child_env_hide,
			};

			for (size_t i = 0; i < j->r->cfg.nendpoints; i++)
				if (strcmp(j->r->cfg.endpoints[i].name, j->js.student) == 0)
					hp.model_path = j->r->cfg.endpoints[i].model_path;
			if (trainhook_start(&hp, job_hook_done, j, &j->hook, err, sizeof(err)) != 0) {
				job_set_state(j, "paused", err);
				return;
			}
			j->training = true;
			job_log(j, "phase", "SFT set %s is ready; train hook started", set);
		}
		return;
	}
	job_log(j, "phase", "%s started", phase_names[p]);
	j->seeding = true;
	runner_pump_soon(j->r);
}

struct cand {
	int64_t seq;
	int quality, difficulty;
};

struct select_ctx {
	struct cand *c;
	size_t n, cap;
};

static int select_collect(void *ud, int64_t seq, json_t *v)
{
	struct select_ctx *x = ud;

	if (!json_is_true(json_object_get(v, "keep")))
		return 0;
	if (x->n == x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : 1024;
		struct cand *nc = realloc(x->c, ncap * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		x->c = nc;
		x->cap = ncap;
	}
	x->c[x->n].seq = seq;
	x->c[x->n].quality = (int)json_integer_value(json_object_get(v, "quality"));
	x->c[x->n].difficulty = (int)json_integer_value(json_object_get(v, "difficulty"));
	x->n++;
	return 0;
}

/* Best first: higher quality, then harder (more to learn), then file order. */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->quality != y->quality)
		return y->quality - x->quality;
	if (x->difficulty != y->difficulty)
		return y->difficulty - x->difficulty;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The selection budget of stage one: of the items the teacher kept, the
 * best budget x (items screened) go on to their explanation; the others
 * are dropped with the reason. One transaction with the runtime flag, so a
 * crash never selects twice. */
static int job_select(struct job *j)
{
	struct store *st = j->r->st;
	struct select_ctx x = { 0 };
	int64_t screened = j->st[STEP_SCREEN].done + j->st[STEP_SCREEN].dropped +
			   j->st[STEP_SCREEN].failed;
	int64_t keep = (int64_t)(j->js.selection_budget * (double)screened + 0.999999);
	char reason[160];
	int rc;

	rc = store_artifacts_each(st, j->id, "verdict", -1, 0, select_collect, &x);
	if (rc)
		goto out;
	qsort(x.c, x.n, sizeof(*x.c), cand_cmp);
	snprintf(reason, sizeof(reason),
		 "not selected: selection budget %.3g keeps the %" PRId64 " best of %" PRId64
		 " screened items",
		 j->js.selection_budget, keep, screened);
	rc = store_begin(st);
	if (rc)
		goto out;
	for (size_t i = 0; i < x.n && rc == 0; i++) {
		if ((int64_t)i < keep)
			rc = store_tasks_insert_pending(st, j->id, "explain", &x.c[i].seq, 1) < 0 ? -EIO : 0;
		else
			rc = store_task_put(st, j->id, "screen", x.c[i].seq, STORE_TASK_DROPPED, 1,
					    reason);
	}
	if (rc == 0) {
		j->selected = true;
		job_save_runtime(j);
		rc = store_commit(st);
	} else {
		store_rollback(st);
	}
	if (rc) {
		j->selected = false;
		goto out;
	}
	for (size_t i = 0; i < x.n; i++) {
		if ((int64_t)i < keep) {
			j->st[STEP_EXPLAIN].pending++;
		} else {
			j->st[STEP_SCREEN].done--;
			j->st[STEP_SCREEN].dropped++;
		}
	}
	job_log(j, "phase", "selection: %zu kept by the teacher, the best %" PRId64 " go on",
		x.n, x.n < (size_t)keep ? (int64_t)x.n : keep);
	j->st[STEP_EXPLAIN].cursor = -1;
	runner_pump_soon(j->r);
out:
	free(x.c);
	if (rc)
		log_error("job_%" PRId64 ": selection failed: %s", j->id, strerror(-rc));
	return rc;
}

/* Moves a job on when its phase has nothing pending and nothing in flight. */
static void job_phase_check(struct job *j)
{
	enum phase p = job_phase(j);

	if (!state_is(j, "running") || j->seeding || j->training || j->in_flight > 0 ||
	    p == PH__N || p == PH_TRAIN1 || p == PH_TRAIN2)
		return;
	for (int s = 0; s < STEP__N; s++)
		if (step_in_phase((enum step)s, p) && j->st[s].pending > 0)
			return;
	if (p == PH_STAGE1 && j->js.selection_budget > 0 && !j->selected &&
	    strcmp(j->js.strategy, "teacher_screen") == 0) {
		/* On failure the next pump tries again. */
		if (job_select(j) != 0 || j->st[STEP_EXPLAIN].pending > 0)
			return;
	}
	job_phase_summary(j, p);
	job_phase_next(j);
}

/* ---- state changes ------------------------------------------------------- */

static void job_set_state(struct job *j, const char *state, const char *reason)
{
	json_t *data;

	if (store_job_set_state(j->r->st, j->id, state, reason) != 0)
		log_error("job_%" PRId64 ": cannot store state %s", j->id, state);
	snprintf(j->state, sizeof(j->state), "%s", state);
	snprintf(j->reason, sizeof(j->reason), "%s", reason ? reason : "");
	data = json_pack("{s:s, s:s}", "state", state, "reason", reason ? reason : "");
	store_event_add(j->r->st, j->id, "state", data, NULL);
	job_emit(j, "state", data);
	json_decref(data);
	log_info("job_%" PRId64 ": %s%s%s", j->id, state, reason ? ": " : "", reason ? reason : "");
	if (strcmp(state, "paused") == 0 || job_finished(j))
		client_cancel_job(j->r->cl, j->id);
}

/* ---- the pump ----------------------------------------------------------- */

struct scan_ctx {
	struct job *j;
	enum step s;
	int room;
	int visited;
};

static int scan_one(void *ud, int64_t seq, const char *state, int attempts, const char *reason)
{
	struct scan_ctx *c = ud;

	(void)state;
	c->visited++;
	c->j->st[c->s].cursor = seq;
	if (bit_get(c->j, c->s, seq))
		return 0; /* in flight: skipped without using the room */
	job_dispatch(c->j, c->s, seq, attempts, attempts > 0 ? reason : NULL);
	if (--c->room <= 0)
		return 1;
	return 0;
}

static void job_pump(struct job *j)
{
	enum phase p = job_phase(j);

	if (!state_is(j, "running") || j->training || p == PH__N)
		return;
	if (j->js.budget_usd > 0 && j->spent >= j->js.budget_usd) {
		char why[200];

		snprintf(why, sizeof(why),
			 "budget reached: $%.4f spent of budget_usd $%.4f; raise it and resume",
			 j->spent, j->js.budget_usd);
		job_set_state(j, "paused", why);
		return;
	}
	if (j->seeding) {
		job_seed_page(j);
		runner_pump_soon(j->r);
	}
	/* Later steps first: finishing items frees memory and yields records. */
	for (int s = STEP__N - 1; s >= 0; s--) {
		struct step_stat *ss = &j->st[s];
		struct scan_ctx c = { .j = j, .s = (enum step)s };
		int rc;

		if (!step_in_phase((enum step)s, p) || ss->pending <= ss->in_flight)
			continue;
		c.room = (int)job_room(j);
		if (c.room <= 0)
			break;
		/* Pages of pending rows from the cursor; rows in flight are skipped
		 * and do not count against the room. A short page is the end: the
		 * next scan starts over (rows behind the cursor may be pending
		 * again after a retry). */
		for (int page = 0; page < 8 && c.room > 0; page++) {
			c.visited = 0;
			rc = store_tasks_each(j->r->st, j->id, step_name((enum step)s),
					      STORE_TASK_PENDING, ss->cursor, SCAN_PAGE, scan_one, &c);
			if (rc < 0)
				break;
			if (rc == 0 && c.visited < SCAN_PAGE) {
				ss->cursor = -1;
				break;
			}
			if (!state_is(j, "running"))
				return;
		}
		if (!state_is(j, "running"))
			return;
	}
	job_phase_check(j);
}

static void runner_on_pump(uv_timer_t *h)
{
	struct runner *r = h->data;

	r->pump_armed = false;
	if (r->closing)
		return;
	for (struct job *j = r->jobs; j; j = j->next)
		job_pump(j);
}

static void runner_pump_soon(struct runner *r)
{
	if (r->pump_armed || r->closing)
		return;
	r->pump_armed = true;
	uv_timer_start(&r->pump, runner_on_pump, 0, 0);
}

static json_t *job_counts_json(const struct job *j)
{
	json_t *c = json_object();

	for (int s = 0; s < STEP__N; s++) {
		const struct step_stat *ss = &j->st[s];

		if (!ss->pending && !ss->done && !ss->failed && !ss->dropped &&
		    !step_in_phase((enum step)s, job_phase(j)))
			continue;
		json_object_set_new(c, step_name((enum step)s),
				    json_pack("{s:I, s:I, s:I, s:I, s:I}", "pending",
					      (json_int_t)(ss->pending - ss->in_flight), "in_flight",
					      (json_int_t)ss->in_flight, "done", (json_int_t)ss->done,
					      "failed", (json_int_t)ss->failed, "dropped",
					      (json_int_t)ss->dropped));
	}
	return c;
}

static double job_rate(const struct job *j)
{
	int64_t now = (int64_t)store_now(), sum = 0;

	if (now - j->rate_sec >= RATE_WINDOW)
		return 0;
	for (int64_t i = 0; i < RATE_WINDOW; i++) {
		int64_t sec = now - i;

		if (sec > j->rate_sec)
			continue; /* buckets after the last completion are empty */
		if (j->rate_sec - sec >= RATE_WINDOW)
			break;
		sum += j->rate_buckets[sec % RATE_WINDOW];
	}
	{
		double span = store_now() - j->loaded_at;

		if (span > RATE_WINDOW)
			span = RATE_WINDOW;
		if (span < 1)
			span = 1;
		return (double)sum / span;
	}
}

static void runner_on_tick(uv_timer_t *h)
{
	struct runner *r = h->data;

	for (struct job *j = r->jobs; j; j = j->next) {
		json_t *st;

		if (!j->progress_dirty)
			continue;
		j->progress_dirty = false;
		st = runner_job_status(r, j->id);
		job_emit(j, "progress", st);
		json_decref(st);
	}
	runner_pump_soon(r);
}

/* ---- loading jobs -------------------------------------------------------- */

static void job_free(struct job *j)
{
	if (!j)
		return;
	for (int s = 0; s < STEP__N; s++)
		free(j->bits[s]);
	json_decref(j->spec);
	json_decref(j->prompts);
	json_decref(j->eval);
	jobspec_clear(&j->js);
	trainhook_free(j->hook);
	free(j);
}

static int endpoint_concurrency(const struct runner *r, const char *name)
{
	for (size_t i = 0; i < r->cfg.nendpoints; i++)
		if (strcmp(r->cfg.endpoints[i].name, name) == 0)
			return r->cfg.endpoints[i].max_concurrency;
	return 8;
}

/* Builds the in-memory job from its stored row: spec, counts, spend. */
static int job_load(struct runner *r, int64_t id, struct job **out)
{
	json_t *row = store_job_get(r->st, id), *rt, *counts, *v;
	struct job *j = NULL;
	struct mt_err e;
	const char *key;
	struct store_totals tot;
	int rc = -ENOMEM;

	if (!row)
		return -ENOENT;
	j = calloc(1, sizeof(*j));
	if (!j)
		goto out;
	j->r = r;
	j->id = id;
	j->loaded_at = store_now();
	snprintf(j->name, sizeof(j->name), "%s", json_string_value(json_object_get(row, "name")));
	snprintf(j->kind, sizeof(j->kind), "%s", json_string_value(json_object_get(row, "kind")));
	snprintf(j->state, sizeof(j->state), "%s", json_string_value(json_object_get(row, "state")));
	v = json_object_get(row, "reason");
	snprintf(j->reason, sizeof(j->reason), "%s", json_is_string(v) ? json_string_value(v) : "");
	j->spec = json_incref(json_object_get(row, "spec"));
	j->prompts = store_job_prompts(r->st, id);
	rc = store_dataset_resolve(r->st, json_string_value(json_object_get(row, "dataset")),
				   &j->dataset);
	if (rc)
		goto out;
	rc = jobspec_parse(j->spec, &j->js, &e);
	if (rc) {
		log_error("job_%" PRId64 ": stored spec no longer valid: %s", id, e.message);
		goto out;
	}
	j->n_items = store_dataset_count(r->st, j->dataset);
	for (int s = 0; s < STEP__N; s++) {
		j->st[s].cursor = -1;
		j->bits[s] = calloc((size_t)(j->n_items / 8 + 1), 1);
		if (!j->bits[s]) {
			rc = -ENOMEM;
			goto out;
		}
	}
	j->nphases = 0;
	if (strcmp(j->kind, "pipeline") == 0) {
		enum phase all[] = { PH_STAGE1, PH_TRAIN1, PH_STAGE2, PH_TRAIN2, PH_EVAL };

		for (size_t i = 0; i < 5; i++)
			j->phases[j->nphases++] = all[i];
	} else if (strcmp(j->kind, "stage1") == 0) {
		j->phases[j->nphases++] = PH_STAGE1;
	} else if (strcmp(j->kind, "stage2") == 0) {
		j->phases[j->nphases++] = PH_STAGE2;
	} else {
		j->phases[j->nphases++] = PH_EVAL;
	}
	rt = json_object_get(row, "runtime");
	j->phase_idx = (int)json_integer_value(json_object_get(rt, "phase_idx"));
	j->seeding = !json_is_true(json_object_get(rt, "seeded"));
	j->selected = json_is_true(json_object_get(rt, "selected"));
	j->seed_cursor = 0;
	v = json_object_get(rt, "eval");
	if (json_is_object(v))
		j->eval = json_incref(v);
	counts = store_task_counts(r->st, id);
	json_object_foreach(counts, key, v)
	{
		int s = step_parse(key);

		if (s < 0)
			continue;
		j->st[s].pending = json_integer_value(json_object_get(v, "pending"));
		j->st[s].done = json_integer_value(json_object_get(v, "done"));
		j->st[s].failed = json_integer_value(json_object_get(v, "failed"));
		j->st[s].dropped = json_integer_value(json_object_get(v, "dropped"));
	}
	json_decref(counts);
	if (store_job_totals(r->st, id, &tot) == 0) {
		j->spent = tot.cost_usd;
		j->tok_in = tot.tokens_in;
		j->tok_out = tot.tokens_out;
		j->calls = tot.calls;
	}
	/* Enough items out to keep every endpoint's connections busy, plus a
	 * margin for the turn between a reply and the next dispatch; more would
	 * only hold memory in the client's queue. */
	j->window = endpoint_concurrency(r, j->js.teacher[0] ? j->js.teacher : j->js.student) +
		    (j->js.student[0] && j->js.teacher[0] ? endpoint_concurrency(r, j->js.student) : 0) +
		    64;
	if (j->window > (r->cfg.max_window > 0 ? r->cfg.max_window : 2048))
		j->window = r->cfg.max_window > 0 ? r->cfg.max_window : 2048;
	rc = 0;
out:
	json_decref(row);
	if (rc) {
		job_free(j);
		j = NULL;
	}
	*out = j;
	return rc;
}

static void runner_add_job(struct runner *r, struct job *j)
{
	struct job **pp = &r->jobs;

	while (*pp)
		pp = &(*pp)->next;
	*pp = j;
}

/* ---- public API ------------------------------------------------------------ */

int runner_new(uv_loop_t *loop, struct store *st, struct client *cl,
	       const struct runner_config *cfg, struct runner **out)
{
	struct runner *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->st = st;
	r->cl = cl;
	r->cfg = *cfg;
	uv_timer_init(loop, &r->pump);
	uv_timer_init(loop, &r->tick);
	r->pump.data = r;
	r->tick.data = r;
	r->open_handles = 2;
	*out = r;
	return 0;
}

int runner_start(struct runner *r)
{
	json_t *ids = store_job_unfinished(r->st);
	size_t i;
	json_t *v;
	int n = 0;

	if (!ids)
		return -EIO;
	json_array_foreach(ids, i, v)
	{
		struct job *j;
		int64_t id = json_integer_value(v);

		if (job_load(r, id, &j) != 0) {
			store_job_set_state(r->st, id, "failed", "cannot resume: stored job is invalid");
			continue;
		}
		runner_add_job(r, j);
		n++;
		if (state_is(j, "queued") || state_is(j, "running")) {
			job_log(j, "resume", "resumed after restart in %s",
				j->phase_idx < j->nphases ? phase_names[job_phase(j)] : "done");
			job_set_state(j, "running", NULL);
			if (job_phase(j) == PH_TRAIN1 || job_phase(j) == PH_TRAIN2)
				job_phase_start(j);
		}
	}
	json_decref(ids);
	uv_timer_start(&r->tick, runner_on_tick, 1000, 1000);
	runner_pump_soon(r);
	return n;
}

int runner_job_submit(struct runner *r, json_t *spec, int64_t *id, struct mt_err *err)
{
	struct jobspec js = { 0 };
	json_t *norm = NULL, *prompts = NULL;
	struct job *j = NULL;
	int64_t ds;
	char perr[256];
	int rc;

	rc = jobspec_parse(spec, &js, err);
	if (rc)
		goto out;
	rc = -EINVAL;
	if (store_dataset_resolve(r->st, js.dataset, &ds) != 0) {
		rc = mt_err_set(err, -EINVAL, "unknown_dataset", "dataset", "no dataset with id or name \"%s\"",
		     js.dataset);
		goto out;
	}
	if (js.teacher[0] && endpoint_concurrency(r, js.teacher) == 8) {
		bool found = false;

		for (size_t i = 0; i < r->cfg.nendpoints; i++)
			found |= strcmp(r->cfg.endpoints[i].name, js.teacher) == 0;
		if (!found) {
			rc = mt_err_set(err, -EINVAL, "unknown_teacher", "teacher",
			     "no [%s] section in the daemon's configuration", js.teacher);
			goto out;
		}
	}
	if (js.student[0]) {
		bool found = false;

		for (size_t i = 0; i < r->cfg.nendpoints; i++)
			found |= strcmp(r->cfg.endpoints[i].name, js.student) == 0;
		if (!found) {
			rc = mt_err_set(err, -EINVAL, "unknown_student", "student",
			     "no [%s] section in the daemon's configuration", js.student);
			goto out;
		}
	}
	if (strcmp(js.train, "hook") == 0 && !r->cfg.train_argv) {
		rc = mt_err_set(err, -EINVAL, "no_train_hook", "train",
		     "train is \"hook\" but the configuration has no [train] command");
		goto out;
	}
	if (!js.train_given)
		snprintf(js.train, sizeof(js.train), "%s", r->cfg.train_argv ? "hook" : "manual");
	if (prompts_load_dir(r->cfg.prompts_dir, &prompts, perr, sizeof(perr)) != 0) {
		rc = mt_err_set(err, -EIO, "prompts", NULL, "cannot load the prompt templates: %s", perr);
		goto out;
	}
	norm = jobspec_to_json(&js);
	{
		char dsid[32];

		snprintf(dsid, sizeof(dsid), "ds_%" PRId64, ds);
		json_object_set_new(norm, "dataset", json_string(dsid));
	}
	rc = store_job_insert(r->st, js.name, js.kind, ds, norm, prompts, id);
	if (rc) {
		rc = mt_err_set(err, -EIO, "store", NULL, "cannot store the job: %s", strerror(-rc));
		goto out;
	}
	rc = job_load(r, *id, &j);
	if (rc) {
		rc = mt_err_set(err, -EIO, "store", NULL, "cannot load the new job: %s", strerror(-rc));
		goto out;
	}
	runner_add_job(r, j);
	job_log(j, "submit", "submitted: %s on ds_%" PRId64 " (%" PRId64 " items)", js.kind, ds,
		j->n_items);
	job_set_state(j, "running", NULL);
	job_phase_start(j);
	rc = 0;
out:
	jobspec_clear(&js);
	json_decref(norm);
	json_decref(prompts);
	return rc;
}

int runner_job_action(struct runner *r, int64_t id, const char *action, struct mt_err *err)
{
	struct job *j = job_find(r, id);

	if (!j) {
		json_t *row = store_job_get(r->st, id);

		if (!row) {
			mt_err_set(err, -ENOENT, "not_found", NULL, "no job job_%" PRId64, id);
			return -ENOENT;
		}
		mt_err_set(err, -EALREADY, "conflict", NULL, "job_%" PRId64 " is %s; it cannot %s", id,
		     json_string_value(json_object_get(row, "state")), action);
		json_decref(row);
		return -EALREADY;
	}
	if (strcmp(action, "cancel") == 0) {
		if (job_finished(j)) {
			mt_err_set(err, -EALREADY, "conflict", NULL, "job_%" PRId64 " is already %s", id, j->state);
			return -EALREADY;
		}
		trainhook_kill(j->hook);
		job_set_state(j, "cancelled", "cancelled by request");
		return 0;
	}
	if (strcmp(action, "pause") == 0) {
		if (!state_is(j, "running") && !state_is(j, "queued")) {
			mt_err_set(err, -EALREADY, "conflict", NULL, "job_%" PRId64 " is %s; only a running job can be paused",
			     id, j->state);
			return -EALREADY;
		}
		job_set_state(j, "paused", "paused by request");
		return 0;
	}
	if (strcmp(action, "resume") == 0) {
		bool retrain = strcmp(j->reason, "awaiting retrain") == 0;

		if (!state_is(j, "paused")) {
			mt_err_set(err, -EALREADY, "conflict", NULL, "job_%" PRId64 " is %s; only a paused job can be resumed",
			     id, j->state);
			return -EALREADY;
		}
		job_set_state(j, "running", NULL);
		for (int s = 0; s < STEP__N; s++)
			j->st[s].cursor = -1;
		if (retrain) {
			job_log(j, "phase", "resumed after retraining");
			job_phase_next(j);
		} else if (job_phase(j) == PH_TRAIN1 || job_phase(j) == PH_TRAIN2) {
			job_phase_start(j); /* the hook failed before: run it again */
		}
		runner_pump_soon(r);
		return 0;
	}
	mt_err_set(err, -ENOENT, "not_found", NULL, "no action %s", action);
	return -ENOENT;
}

int runner_job_set_budget(struct runner *r, int64_t id, double budget)
{
	struct job *j = job_find(r, id);

	if (!j)
		return -ENOENT;
	j->js.budget_usd = budget;
	json_object_set_new(j->spec, "budget_usd", json_real(budget));
	return store_job_set_spec(r->st, id, j->spec);
}

json_t *runner_job_status(struct runner *r, int64_t id)
{
	struct job *j = job_find(r, id);
	json_t *row = store_job_get(r->st, id);
	json_t *counts;
	double rate;
	int64_t left = 0;

	if (!row)
		return NULL;
	json_object_del(row, "runtime");
	if (!j) {
		/* A finished job from an earlier run: counts from the store. */
		struct store_totals tot = { 0 };
		json_t *rt = NULL, *full = store_job_get(r->st, id);
		json_t *c = store_task_counts(r->st, id), *v;
		const char *key;

		json_object_foreach(c, key, v)
			json_object_set_new(v, "in_flight", json_integer(0));
		json_object_set_new(row, "counts", c ? c : json_object());
		store_job_totals(r->st, id, &tot);
		json_object_set_new(row, "tokens", json_pack("{s:I, s:I}", "in", (json_int_t)tot.tokens_in,
							     "out", (json_int_t)tot.tokens_out));
		json_object_set_new(row, "cost_usd", json_real(tot.cost_usd));
		json_object_set_new(row, "calls", json_pack("{s:I}", "total", (json_int_t)tot.calls));
		rt = json_object_get(full, "runtime");
		if (json_object_get(rt, "eval"))
			json_object_set(row, "eval", json_object_get(rt, "eval"));
		json_object_set_new(row, "phase", json_string(json_is_string(json_object_get(rt, "phase"))
								      ? json_string_value(json_object_get(rt, "phase"))
								      : "done"));
		json_decref(full);
		return row;
	}
	counts = job_counts_json(j);
	json_object_set_new(row, "counts", counts);
	json_object_set_new(row, "phase", json_string(j->phase_idx < j->nphases
							      ? phase_names[job_phase(j)]
							      : "done"));
	json_object_set_new(row, "tokens", json_pack("{s:I, s:I}", "in", (json_int_t)j->tok_in, "out",
						     (json_int_t)j->tok_out));
	json_object_set_new(row, "cost_usd", json_real(j->spent));
	json_object_set_new(row, "calls", json_pack("{s:I, s:I}", "total", (json_int_t)j->calls,
						    "cached", (json_int_t)j->cached));
	json_object_set_new(row, "judged",
			    json_integer(j->st[STEP_JUDGE].done + j->st[STEP_JUDGE].failed +
					 j->st[STEP_EVAL_JUDGE].done + j->st[STEP_EVAL_JUDGE].failed));
	rate = job_rate(j);
	json_object_set_new(row, "rate_per_s", json_real(rate));
	for (int s = 0; s < STEP__N; s++)
		if (step_in_phase((enum step)s, job_phase(j)))
			left += j->st[s].pending;
	if (j->seeding)
		left += j->n_items - j->seed_cursor;
	if (rate > 0 && state_is(j, "running"))
		json_object_set_new(row, "eta_s", json_real((double)left / rate));
	if (j->eval)
		json_object_set(row, "eval", j->eval);
	return row;
}

json_t *runner_job_list(struct runner *r)
{
	json_t *rows = store_job_list(r->st), *out = json_array(), *v;
	size_t i;

	json_array_foreach(rows, i, v)
	{
		int64_t id = 0;
		json_t *s;

		if (store_job_resolve(r->st, json_string_value(json_object_get(v, "id")), &id) != 0)
			continue;
		s = runner_job_status(r, id);
		if (s)
			json_array_append_new(out, s);
	}
	json_decref(rows);
	return out;
}

int runner_job_finished(struct runner *r, int64_t id)
{
	struct job *j = job_find(r, id);
	json_t *row;
	int fin;

	if (j)
		return job_finished(j);
	row = store_job_get(r->st, id);
	if (!row)
		return 1;
	fin = strcmp(json_string_value(json_object_get(row, "state")), "done") == 0 ||
	      strcmp(json_string_value(json_object_get(row, "state")), "failed") == 0 ||
	      strcmp(json_string_value(json_object_get(row, "state")), "cancelled") == 0;
	json_decref(row);
	return fin;
}

void runner_set_listener(struct runner *r,
			 void (*fn)(void *ud, int64_t job, const char *type, json_t *data),
			 void *ud)
{
	r->listener = fn;
	r->listener_ud = ud;
}

void runner_metrics(struct runner *r, struct buf *b)
{
	static const char *const states[] = { "queued", "running", "paused",
					      "done",   "failed",  "cancelled" };

	buf_puts(b, "# HELP medthink_jobs Jobs loaded in this daemon by state.\n"
		    "# TYPE medthink_jobs gauge\n");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		int n = 0;

		for (struct job *j = r->jobs; j; j = j->next)
			n += state_is(j, states[i]);
		buf_printf(b, "medthink_jobs{state=\"%s\"} %d\n", states[i], n);
	}
	buf_printf(b,
		   "# HELP medthink_item_steps_total Item steps finished (done, dropped or failed).\n"
		   "# TYPE medthink_item_steps_total counter\n"
		   "medthink_item_steps_total %" PRId64 "\n"
		   "# HELP medthink_item_steps_failed_total Item steps that failed.\n"
		   "# TYPE medthink_item_steps_failed_total counter\n"
		   "medthink_item_steps_failed_total %" PRId64 "\n",
		   r->m_items_done, r->m_items_failed);
	buf_puts(b, "# HELP medthink_job_in_flight Item steps in flight per job.\n"
		    "# TYPE medthink_job_in_flight gauge\n");
	for (struct job *j = r->jobs; j; j = j->next)
		if (!job_finished(j))
			buf_printf(b, "medthink_job_in_flight{job=\"job_%" PRId64 "\"} %" PRId64 "\n",
				   j->id, j->in_flight);
	buf_puts(b, "# HELP medthink_job_cost_usd Spend per job.\n"
		    "# TYPE medthink_job_cost_usd gauge\n");
	for (struct job *j = r->jobs; j; j = j->next)
		buf_printf(b, "medthink_job_cost_usd{job=\"job_%" PRId64 "\"} %.6f\n", j->id,
			   j->spent);
}

static void runner_handle_closed(uv_handle_t *h)
{
	struct runner *r = h->data;

	if (--r->open_handles == 0 && r->close_cb)
		r->close_cb(r->close_ud);
}

void runner_close(struct runner *r, void (*cb)(void *ud), void *ud)
{
	r->closing = true;
	r->close_cb = cb;
	r->close_ud = ud;
	for (struct job *j = r->jobs; j; j = j->next)
		trainhook_kill(j->hook);
	uv_close((uv_handle_t *)&r->pump, runner_handle_closed);
	uv_close((uv_handle_t *)&r->tick, runner_handle_closed);
}

void runner_free(struct runner *r)
{
	struct job *j, *next;

	if (!r)
		return;
	for (j = r->jobs; j; j = next) {
		next = j->next;
		job_free(j);
	}
	free(r);
}
