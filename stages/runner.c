/* The job runner (stages/runner.h): jobs and items as persistent state
 * machines. Loading and the split, the pump and dispatch, outcomes, state
 * changes and the public API live here; phases in stages/phases.c, reports
 * in stages/report.c. */
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
#include "common/utf8.h"
#include "stages/prompts.h"
#include "stages/runner_int.h"
#include "stages/trainhook.h"
#include "store/counts.h"
#include "store/store.h"
#include "store/totals.h"
#include "store/work.h"
#include "teacher_clients/client.h"

#define SEED_PAGE 500     /* items split and queued per loop turn (a short turn) */
#define SEED_FIRST 64     /* the first page: the first calls wait for it */
#define SEL_VALIDATION_MAX 100000 /* items of a DIQ validation dataset */
#define SCAN_PAGE 512     /* pending tasks read per scan */
#define SCAN_PAGE_MIN 8   /* the least a scan's page asks for */
#define SCAN_TURN (8 * SCAN_PAGE) /* rows a pump turn's scan of a step visits at most */
/* Calls dispatched per pump turn: the loop hands them to curl (and answers
 * the API) between turns, so the first calls of a job go out while the
 * rest of its window is still being built. */
#define DISPATCH_TURN 128

/* One item in one step, while its call is out. */
struct task {
	struct job *job;
	enum step step;
	const struct step_def *def;
	int64_t seq;
	int attempt;
	json_t *item;
	json_t *prior;
	json_t *messages; /* the request's rendered messages, for screening the reply */
	struct step_outcome out;
	int64_t call_id;
	char fail_reason[300];
	bool canceled;
	struct task *hnext; /* held: its outcome waits for the store */
};

/* A job state or event the store refused, kept in order until it takes it. */
struct held_write {
	struct held_write *next;
	int64_t job;
	char *state;   /* a state change (with reason), or NULL: an event */
	char *reason;
	char *type;    /* the event's type */
	json_t *data;  /* the event's data */
};

static void job_pump(struct job *j);
static void runner_store_failed(struct runner *r, int err);
static void runner_store_ok(struct runner *r);
static void runner_on_hold(uv_timer_t *h);

/* ---- small helpers ------------------------------------------------------ */

struct job *job_find(struct runner *r, int64_t id)
{
	for (struct job *j = r->jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

static bool bit_get(const struct job *j, enum step s, int64_t seq)
{
	if (!j->bits[s] || seq < 0 || seq >= j->n_items + j->val_n)
		return false;
	return j->bits[s][seq >> 3] & (1u << (seq & 7));
}

static void bit_set(struct job *j, enum step s, int64_t seq, bool on)
{
	if (!j->bits[s] || seq < 0 || seq >= j->n_items + j->val_n)
		return;
	if (on)
		j->bits[s][seq >> 3] |= (uint8_t)(1u << (seq & 7));
	else
		j->bits[s][seq >> 3] &= (uint8_t)~(1u << (seq & 7));
}

/* ---- writes the store refused ------------------------------------------ */

static void held_write_free(struct held_write *w)
{
	if (!w)
		return;
	free(w->state);
	free(w->reason);
	free(w->type);
	json_decref(w->data);
	free(w);
}

static int held_write_apply(struct runner *r, const struct held_write *w)
{
	if (w->state)
		return store_job_set_state(r->st, w->job, w->state, w->reason);
	return store_event_add(r->st, w->job, w->type, w->data, NULL);
}

static void hold_arm(struct runner *r)
{
	if (!uv_is_active((uv_handle_t *)&r->hold) && !r->closing)
		uv_timer_start(&r->hold, runner_on_hold, (uint64_t)(r->hold_delay_s * 1000.0), 0);
}

/* Stores a job state (state set) or event (type and data); when the store
 * refuses it, or earlier ones still wait, it is kept in order and retried. */
static void runner_write(struct runner *r, int64_t job, const char *state, const char *reason,
			 const char *type, json_t *data)
{
	struct held_write *w;
	int rc = -EAGAIN;

	if (state) {
		struct job *j = job_find(r, job);

		if (j)
			j->row_stale = true;
	}
	if (!r->hw_head) {
		rc = state ? store_job_set_state(r->st, job, state, reason)
			   : store_event_add(r->st, job, type, data, NULL);
		if (rc == 0)
			return;
	}
	w = calloc(1, sizeof(*w));
	if (!w || (state && !(w->state = strdup(state))) || (reason && !(w->reason = strdup(reason))) ||
	    (type && !(w->type = strdup(type)))) {
		log_error("job_%" PRId64 ": out of memory keeping a write the store refused", job);
		held_write_free(w);
		return;
	}
	w->job = job;
	w->data = json_incref(data);
	if (r->hw_tail)
		r->hw_tail->next = w;
	else
		r->hw_head = w;
	r->hw_tail = w;
	if (rc != -EAGAIN)
		runner_store_failed(r, rc);
	hold_arm(r);
}

void job_emit(struct job *j, const char *type, json_t *data)
{
	if (j->r->listener)
		j->r->listener(j->r->listener_ud, j->id, type, data);
}

void job_log(struct job *j, const char *type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	job_logv(j, type, fmt, ap);
	va_end(ap);
}

void job_logv(struct job *j, const char *type, const char *fmt, va_list ap)
{
	char msg[1024];
	json_t *data;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	data = json_pack("{s:s}", "message", msg);
	runner_write(j->r, j->id, NULL, NULL, type, data);
	job_emit(j, type, data);
	json_decref(data);
	log_info("job_%" PRId64 ": %s", j->id, msg);
}

void job_save_runtime(struct job *j)
{
	json_t *rt = json_pack("{s:i, s:s, s:b, s:b}", "phase_idx", j->phase_idx, "phase",
			       phase_name(job_phase(j)),
			       "seeded", !j->seeding, "selected", j->selected);

	if (j->eval)
		json_object_set(rt, "eval", j->eval);
	if (j->selection)
		json_object_set(rt, "selection", j->selection);
	if (j->js.nstudents > 0)
		json_object_set_new(rt, "round", json_integer(j->round));
	if (j->rl)
		json_object_set(rt, "rl", j->rl);
	j->row_stale = true;
	if (store_job_set_runtime(j->r->st, j->id, rt) != 0)
		log_warn("job_%" PRId64 ": cannot store its progress", j->id);
	json_decref(rt);
}

/* ---- the split ---------------------------------------------------------- */

/* An item's split is a pure function of the seed and the item id, so it is
 * the same after a restart, on a re-import, and in a job that reproduces
 * another: FNV-1a 64 over "seed:id", mixed (FNV's high bits barely move
 * for ids that differ in their last characters). */
bool runner_split_is_eval(const struct jobspec *js, const char *ext_id)
{
	char seedbuf[32];
	uint64_t h;

	if (js->eval_fraction <= 0)
		return false;
	if (js->eval_fraction >= 1)
		return true;
	snprintf(seedbuf, sizeof(seedbuf), "%" PRId64 ":", js->seed);
	/* The start value is a digit short of FNV's offset basis; it stays, so
	 * that splits of stored jobs never change. */
	h = fnv1a64(UINT64_C(1469598103934665603), seedbuf, strlen(seedbuf));
	h = hash_mix64(fnv1a64(h, ext_id, strlen(ext_id)));
	return (double)(h >> 11) / 9007199254740992.0 < js->eval_fraction;
}

static bool item_is_eval(const struct job *j, const char *ext_id)
{
	return runner_split_is_eval(&j->js, ext_id);
}

struct seed_ctx {
	struct job *j;
	bool held_out;   /* the phase works on the eval split */
	bool kept_only;  /* the phase works on what stage one kept */
	bool all_items;  /* the phase works on both splits */
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
	if (!c->all_items && c->held_out != eval)
		return 0;
	if (c->kept_only && !job_item_kept(j, seq))
		return 0;
	c->seqs[c->n++] = seq;
	return 0;
}

/* True when max_items caps the phase being seeded. */
static bool job_capped(const struct job *j, const struct seed_ctx *c)
{
	return j->js.max_items > 0 && !c->held_out && !c->kept_only;
}

/* Queues the next page of the DIQ validation dataset's items (seqs n_items
 * + i) for the strategy's first step, after the job's own; then seeding is
 * done. Idempotent like job_seed_page. */
static void job_seed_validation_page(struct job *j, enum step first)
{
	int64_t end = j->n_items + j->val_n, n = end - j->seed_cursor, seqs[SEED_PAGE];
	int rc;

	if (n > SEED_PAGE)
		n = SEED_PAGE;
	for (int64_t i = 0; i < n; i++)
		seqs[i] = j->seed_cursor + i;
	rc = n > 0 ? store_tasks_insert_pending(j->r->st, j->id, step_name(first), seqs, (size_t)n)
		   : 0;
	if (rc < 0) {
		log_warn("job_%" PRId64 ": queuing validation items failed (%s); will retry", j->id,
			 strerror(-rc));
		return;
	}
	j->st[first].pending += rc;
	j->seed_cursor += n;
	if (j->seed_cursor >= end) {
		j->seeding = false;
		job_save_runtime(j);
	}
	j->progress_dirty = true;
}

/* Queues the next page of the phase's items as pending tasks of its first
 * step. Idempotent (INSERT OR IGNORE), so a crash mid-way only redoes pages. */
static void job_seed_page(struct job *j)
{
	struct runner *r = j->r;
	enum phase p = job_phase(j);
	enum step first = job_phase_first_step(j, p);
	struct seed_ctx c = { .j = j, .held_out = job_phase_held_out(p),
			      .kept_only = job_phase_takes_kept(j, p),
			      .all_items = job_phase_all_items(p), .last = -1 };
	int64_t limit = j->seed_cursor == 0 ? SEED_FIRST : SEED_PAGE;
	int rc;

	if (j->val_n > 0 && first == j->sel->first_step && j->seed_cursor >= j->n_items) {
		job_seed_validation_page(j, first);
		return;
	}
	if (j->counting && job_capped(j, &c))
		return; /* the cap needs the stored counts */
	c.seqs = calloc(SEED_PAGE, sizeof(*c.seqs));
	if (!c.seqs)
		return;
	rc = store_item_ids_each(r->st, j->dataset, j->seed_cursor, limit, seed_one, &c);
	if (rc == 0 && job_capped(j, &c)) {
		/* max_items caps the items a phase works on, first in file order;
		 * stage two of a pipeline takes what stage one kept, uncapped. */
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
	    (job_capped(j, &c) &&
	     j->st[first].pending + j->st[first].done + j->st[first].failed +
			     j->st[first].dropped >=
		     j->js.max_items)) {
		if (j->val_n > 0 && first == j->sel->first_step) {
			j->seed_cursor = j->n_items; /* then the validation dataset's */
		} else {
			j->seeding = false;
			job_save_runtime(j);
		}
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
	if (j->counting)
		return 0; /* the spend so far is not summed yet */
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


static const char *step_endpoint(const struct job *j, const struct step_def *d)
{
	return d->embedder ? j->js.embedder : d->student ? j->js.student : j->js.teacher;
}

static void task_free(struct task *t)
{
	if (!t)
		return;
	json_decref(t->item);
	json_decref(t->prior);
	json_decref(t->messages);
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
				.attempt = t->attempt, .length_cut = res->length_cut,
				.reply = res->reply, .sel = &j->js.sel, .seed = j->js.seed,
				.validation_item = t->seq >= j->n_items,
				.spec = j->spec, .rl = &j->js.rl, .messages = t->messages };

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
	/* Spend and tokens were counted when the reply came (runner_on_spent). */
	t->call_id = res->call_id;
	if (res->err) {
		/* The client already retried what was worth retrying. */
		step_outcome_clear(&t->out);
		t->out.result = STEP_FAILED;
		snprintf(t->out.reason, sizeof(t->out.reason), "%s call failed: %s",
			 t->def->student ? "student" : "teacher",
			 res->message && *res->message ? res->message : strerror(-res->err));
	} else {
		step_reply_judge(t->step, &ctx, res->content, res->json, &t->out);
		json_decref(t->messages); /* judged: not kept while the outcome waits */
		t->messages = NULL;
		/* The selection strategy may hold back what follows a screening
		 * until every item is screened and it has chosen. */
		if (t->def->screens && j->sel->on_screened)
			j->sel->on_screened(j->js.selection_budget, &t->out);
	}
	task_store_outcome(t);
}

/* item: the item, taken (read by a scan's page), or NULL: read here. */
static void job_dispatch(struct job *j, enum step s, int64_t seq, int attempt,
			 const char *last_problem, json_t *item)
{
	struct runner *r = j->r;
	struct task *t;
	struct step_request req = { 0 };
	struct step_ctx ctx = { 0 };
	struct client_opts o = { 0 };
	char err[256], tag[64];
	int rc;

	if (bit_get(j, s, seq)) {
		json_decref(item);
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		json_decref(item);
		return;
	}
	t->job = j;
	t->step = s;
	t->def = step_def(s);
	t->seq = seq;
	t->attempt = attempt;
	t->out.next = -1;
	bit_set(j, s, seq, true);
	j->st[s].in_flight++;
	j->in_flight++;

	t->item = item;
	if (!t->item && seq >= j->n_items) /* the DIQ validation dataset's */
		t->item = store_item_get(r->st, j->val_dataset, seq - j->n_items);
	else if (!t->item)
		t->item = store_item_get(r->st, j->dataset, seq);
	if (!t->item) {
		snprintf(t->out.reason, sizeof(t->out.reason), "item %" PRId64 " is not in the store",
			 seq);
		t->out.result = STEP_FAILED;
		task_store_outcome(t);
		return;
	}
	if (t->def->reads)
		t->prior = store_artifact_get(r->st, j->id, t->def->reads, seq);
	ctx.item = t->item;
	ctx.prompts = j->prompts;
	ctx.prior = t->prior;
	ctx.attempt = attempt;
	ctx.last_problem = last_problem;
	ctx.sel = &j->js.sel;
	ctx.seed = j->js.seed;
	ctx.validation_item = seq >= j->n_items;
	ctx.spec = j->spec;
	ctx.rl = &j->js.rl;
	rc = step_request_build(s, &ctx, &req, err, sizeof(err));
	if (rc) {
		snprintf(t->out.reason, sizeof(t->out.reason), "prompt: %.*s", (int)utf8_prefix(err, strlen(err), 240), err);
		t->out.result = STEP_FAILED;
		task_store_outcome(t);
		return;
	}
	o.job_id = j->id;
	o.temperature = req.temperature;
	o.max_tokens = req.max_tokens;
	o.schema = req.schema;
	o.expect_json = req.expect_json;
	o.logprobs = req.logprobs;
	o.echo = req.echo;
	o.cache_tag = job_cache_tag(j, s, tag, sizeof(tag));
	o.seed = req.seed;
	o.batch = j->js.teacher_batch && !t->def->student;
	t->messages = json_incref(req.messages); /* before the call: t is the callback's */
	if (req.prompt && req.embed)
		rc = client_embed(r->cl, step_endpoint(j, t->def), &o, req.prompt, task_on_reply, t);
	else if (req.prompt)
		rc = client_complete(r->cl, step_endpoint(j, t->def), &o, req.prompt, task_on_reply, t);
	else
		rc = client_chat(r->cl, step_endpoint(j, t->def), &o, req.messages, task_on_reply, t);
	step_request_clear(&req);
	if (rc) {
		snprintf(t->out.reason, sizeof(t->out.reason), "cannot call %s: %s",
			 step_endpoint(j, t->def), strerror(-rc));
		t->out.result = STEP_FAILED;
		task_store_outcome(t);
	}
}

/* ---- committing an outcome ---------------------------------------------- */

static int task_apply(struct store *st, void *ud)
{
	struct task *t = ud;
	struct job *j = t->job;
	const char *step = t->def->name;
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

	if (status != 0 && status != -ECANCELED && !r->closing) {
		/* Nothing was committed. The outcome stays in memory (the task in
		 * flight) and is retried with backoff: re-queuing the task would
		 * send its call again. */
		if (r->store_fails == 0)
			log_error("job_%" PRId64 ": storing %s of item %" PRId64 " failed: %s; holding it", j->id,
				  step_name(t->step), t->seq, strerror(-status));
		t->hnext = r->held;
		r->held = t;
		runner_store_failed(r, status);
		hold_arm(r);
		return;
	}
	task_release(t);
	if (status != 0) {
		/* The store is closing: the task is still pending in the store and
		 * is taken up again after a restart. */
		ss->cursor = -1;
		task_free(t);
		return;
	}
	runner_store_ok(r);
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
		job_rate_note(j);
		r->m_items_done++;
	}
	j->progress_dirty = true;
	if (res == STEP_RETRY) /* the re-ask's note: only it reads the reason */
		snprintf(problem, sizeof(problem), "%s", t->out.reason);
	{
		int64_t seq = t->seq;
		enum step s = t->step;
		/* the same item (items do not change): not read and parsed again */
		json_t *item = json_incref(t->item);

		task_free(t);
		/* Keep the item moving while the job may run: its next step (or its
		 * re-ask) goes out now rather than waiting for a scan. */
		if (j->state == JOB_RUNNING && !r->closing && job_room(j) > 0 &&
		    ((res == STEP_DONE && next >= 0) || res == STEP_RETRY)) {
			if (res == STEP_DONE)
				job_dispatch(j, (enum step)next, seq, 0, NULL, item);
			else
				job_dispatch(j, s, seq, attempt + 1, problem, item);
		} else {
			json_decref(item);
		}
	}
	job_phase_check(j);
	runner_pump_soon(r);
}

static void task_store_outcome(struct task *t)
{
	struct runner *r = t->job->r;
	int rc = store_batch_add(r->st, task_apply, task_done, t);

	if (rc == -ECANCELED || (rc && r->closing)) {
		task_release(t);
		task_free(t);
	} else if (rc) {
		log_error("job_%" PRId64 ": cannot queue a store write: %s; holding it", t->job->id,
			  strerror(-rc));
		t->hnext = r->held;
		r->held = t;
		hold_arm(r);
	}
}

/* ---- store failures ------------------------------------------------------ */

/* The store took a write: a failing episode is over (the paused jobs go on
 * when resumed). */
static void runner_store_ok(struct runner *r)
{
	r->store_fails = 0;
	r->hold_delay_s = HOLD_FIRST_S;
	if (r->store_trouble && !r->held && !r->hw_head) {
		r->store_trouble = false;
		log_info("store: %s takes writes again; every held write is stored", store_path(r->st));
	}
}

/* The store refuses writes: after STORE_FAILS_MAX failed rounds (or when
 * the client says so) every running job pauses with the store's error, so
 * no new call is sent while nothing can be kept. */
static void runner_store_trouble(struct runner *r, int err)
{
	char why[300], msg[120];
	int n = 0;

	if (r->pausing)
		return;
	r->pausing = true;
	/* A copy: the pauses below may fail and overwrite the store's message. */
	snprintf(msg, sizeof(msg), "%s", store_last_error(r->st));
	if (strcmp(msg, "unknown error") == 0)
		snprintf(msg, sizeof(msg), "%s", err == -ENOSPC ? "database or disk is full" : strerror(-err));
	for (struct job *j = r->jobs; j; j = j->next) {
		if (j->state != JOB_RUNNING && j->state != JOB_QUEUED)
			continue;
		snprintf(why, sizeof(why), "store: cannot write %.120s: %.80s; free space, then `medthink resume job_%" PRId64 "`",
			 store_path(r->st), msg, j->id);
		job_set_state(j, JOB_PAUSED, why);
		n++;
	}
	if (!r->store_trouble || n)
		log_error("store: cannot write %s: %s; %d job(s) paused; held writes are retried until it "
			  "takes them",
			  store_path(r->st), msg, n);
	r->store_trouble = true;
	r->pausing = false;
}

/* A write failed; failures count once per retry round. */
static void runner_store_failed(struct runner *r, int err)
{
	if (r->hold_fail_round == r->hold_round)
		return;
	r->hold_fail_round = r->hold_round;
	if (++r->store_fails >= STORE_FAILS_MAX)
		runner_store_trouble(r, err);
}

static void runner_on_hold(uv_timer_t *h)
{
	struct runner *r = h->data;
	struct task *list = r->held, *t;
	bool stored = false;

	if (r->closing)
		return;
	r->hold_round++;
	r->hold_delay_s = fmin(r->hold_delay_s * 2, HOLD_MAX_S);
	/* States and events first, in order; stop at the first refusal. */
	while (r->hw_head) {
		struct held_write *w = r->hw_head;
		int rc = held_write_apply(r, w);

		if (rc) {
			runner_store_failed(r, rc);
			break;
		}
		r->hw_head = w->next;
		if (!r->hw_head)
			r->hw_tail = NULL;
		if (!w->state) {
			struct job *j = job_find(r, w->job);

			if (j)
				job_emit(j, w->type, w->data); /* /events reads it now */
		}
		held_write_free(w);
		stored = true;
	}
	if (stored && !r->hw_head)
		runner_store_ok(r);
	r->held = NULL;
	while (list) {
		t = list;
		list = t->hnext;
		t->hnext = NULL;
		if (store_batch_add(r->st, task_apply, task_done, t) != 0) {
			t->hnext = r->held;
			r->held = t;
		}
	}
	if (r->held || r->hw_head)
		hold_arm(r);
}

/* ---- what the client tells ---------------------------------------------- */

static void runner_on_spent(void *ud, int64_t job, const char *endpoint, int64_t tin, int64_t tout,
			    double cost)
{
	struct job *j = job_find(ud, job);

	(void)endpoint;
	if (!j)
		return;
	j->spent += cost;
	j->tok_in += tin;
	j->tok_out += tout;
	j->progress_dirty = true;
}

static void runner_on_store(void *ud, bool failing, int err)
{
	struct runner *r = ud;

	if (failing)
		runner_store_trouble(r, err);
}

/* Pauses (or fails, by the job's on_endpoint_down) every running job that
 * uses endpoint. */
static void runner_on_endpoint_down(void *ud, const char *endpoint, double secs, const char *last)
{
	struct runner *r = ud;
	char why[300];

	for (struct job *j = r->jobs; j; j = j->next) {
		if (j->state != JOB_RUNNING && j->state != JOB_QUEUED)
			continue;
		if (strcmp(j->js.teacher, endpoint) != 0 && strcmp(j->js.student, endpoint) != 0)
			continue;
		if (j->js.fail_on_down) {
			snprintf(why, sizeof(why), "endpoint %s is down: every call failed for %.0f s; last error: %.160s",
				 endpoint, secs, last);
			job_set_state(j, JOB_FAILED, why);
		} else {
			snprintf(why, sizeof(why),
				 "endpoint %s is down: every call failed for %.0f s; last error: %.140s; fix it, then "
				 "`medthink resume job_%" PRId64 "`",
				 endpoint, secs, last, j->id);
			job_set_state(j, JOB_PAUSED, why);
		}
	}
}

static const struct client_listener runner_client_listener = {
	.spent = runner_on_spent,
	.store = runner_on_store,
	.endpoint_down = runner_on_endpoint_down,
};

/* ---- state changes ------------------------------------------------------- */

void job_set_state(struct job *j, enum job_state s, const char *reason)
{
	const char *state = job_state_name(s);
	json_t *data;

	runner_write(j->r, j->id, state, reason, NULL, NULL);
	j->state = s;
	job_run_clock_state(j, s);
	snprintf(j->reason, sizeof(j->reason), "%s", reason ? reason : "");
	data = json_pack("{s:s, s:s}", "state", state, "reason", reason ? reason : "");
	runner_write(j->r, j->id, NULL, NULL, "state", data);
	job_emit(j, "state", data);
	json_decref(data);
	log_info("job_%" PRId64 ": %s%s%s", j->id, state, reason ? ": " : "", reason ? reason : "");
	if (s == JOB_PAUSED || job_state_finished(s))
		client_cancel_job(j->r->cl, j->id);
	if (s == JOB_CANCELLED && j->js.teacher_batch)
		client_batch_cancel_job(j->r->cl, j->id);
}

/* ---- the pump ----------------------------------------------------------- */

/* A pending row a scan takes, dispatched once its page is read. */
struct scan_row {
	int64_t seq;
	int attempts;
	char *reason; /* the last problem (attempts > 0), or NULL */
};

struct scan_ctx {
	struct job *j;
	enum step s;
	int room;
	int visited;
	int n; /* rows taken, not yet dispatched (room <= DISPATCH_TURN) */
	struct scan_row rows[DISPATCH_TURN];
	int64_t seqs[DISPATCH_TURN];
};

/* Dispatches the rows taken, in order, with their items read first: a
 * statement for the page's items (one WAL read transaction, and for dense
 * seqs one range) instead of one per item. An item not read here (missing,
 * damaged, the read failed: -EBUSY included) is read by job_dispatch as
 * before, so it fails or goes out exactly as it did. */
static void scan_flush(struct scan_ctx *c)
{
	struct job *j = c->j;
	json_t *items[DISPATCH_TURN];
	int n = c->n;

	c->n = 0;
	for (int k = 0; k < n;) {
		bool val = c->rows[k].seq >= j->n_items; /* the DIQ validation dataset's */
		int m = 0;

		for (; k + m < n && (c->rows[k + m].seq >= j->n_items) == val; m++)
			c->seqs[m] = val ? c->rows[k + m].seq - j->n_items : c->rows[k + m].seq;
		if (store_items_get(j->r->st, val ? j->val_dataset : j->dataset, c->seqs,
				    (size_t)m, items + k) < 0) {
			for (int i = k; i < k + m; i++)
				items[i] = NULL;
		}
		k += m;
	}
	for (int i = 0; i < n; i++) {
		struct scan_row *w = &c->rows[i];

		job_dispatch(j, c->s, w->seq, w->attempts, w->reason, items[i]);
		free(w->reason);
	}
}

static int scan_one(void *ud, int64_t seq, const char *state, int attempts, const char *reason)
{
	struct scan_ctx *c = ud;
	struct scan_row *w;

	(void)state;
	c->visited++;
	c->j->st[c->s].cursor = seq;
	if (bit_get(c->j, c->s, seq))
		return 0; /* in flight: skipped without using the room */
	if (c->n == DISPATCH_TURN)
		scan_flush(c);
	w = &c->rows[c->n];
	w->seq = seq;
	w->attempts = attempts;
	w->reason = attempts > 0 && reason ? strdup(reason) : NULL;
	if (attempts > 0 && reason && !w->reason) {
		/* No memory to keep the problem: this row goes out now. */
		scan_flush(c);
		job_dispatch(c->j, c->s, seq, attempts, reason, NULL);
	} else {
		c->n++;
	}
	if (--c->room <= 0)
		return 1;
	return 0;
}

/* Rows asked for by page page (0, 1, ...) of a scan with room left. */
static int scan_page_size(int room, int page)
{
	int64_t n = (int64_t)(room > SCAN_PAGE_MIN ? room : SCAN_PAGE_MIN) << (page < 8 ? page : 8);

	return n < SCAN_PAGE ? (int)n : SCAN_PAGE;
}

static void job_pump(struct job *j)
{
	enum phase p = job_phase(j);

	if (j->state != JOB_RUNNING || j->training || p == PHASE__N)
		return;
	if (j->js.budget_usd > 0 && j->spent >= j->js.budget_usd) {
		char why[200];

		snprintf(why, sizeof(why),
			 REASON_BUDGET ": $%.4f spent of budget_usd $%.4f; raise it and resume",
			 j->spent, j->js.budget_usd);
		job_set_state(j, JOB_PAUSED, why);
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

		if (step_def((enum step)s)->phase != p ||
		    (!j->counting && ss->pending <= ss->in_flight))
			continue;
		c.room = (int)job_room(j);
		if (c.room <= 0)
			break;
		if (c.room > DISPATCH_TURN) {
			c.room = DISPATCH_TURN;
			runner_pump_soon(j->r); /* the rest of the room next turn */
		}
		/* Pages of pending rows from the cursor; rows in flight are skipped
		 * and do not count against the room. A short page is the end: the
		 * next scan starts over (rows behind the cursor may be pending
		 * again after a retry). The first page is the room's size (rows
		 * ahead of the cursor are seldom in flight: a page of 128 rows read
		 * for a room of 20 was most of the scan's SQLite time), each next
		 * one twice the last, up to SCAN_PAGE; SCAN_TURN rows at most. */
		for (int page = 0, seen = 0; seen < SCAN_TURN && c.room > 0; page++) {
			int want = scan_page_size(c.room, page);

			c.visited = 0;
			rc = store_tasks_each(j->r->st, j->id, step_name((enum step)s),
					      STORE_TASK_PENDING, ss->cursor, want, scan_one, &c);
			scan_flush(&c); /* what the page took, errors or not */
			if (rc < 0)
				break;
			if (rc == 0 && c.visited < want) {
				ss->cursor = -1;
				break;
			}
			seen += c.visited;
			if (j->state != JOB_RUNNING)
				return;
		}
		if (j->state != JOB_RUNNING)
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
	r->in_pump = true;
	for (struct job *j = r->jobs; j; j = j->next)
		job_pump(j);
	r->in_pump = false;
}

void runner_pump_soon(struct runner *r)
{
	if (r->pump_armed || r->closing)
		return;
	r->pump_armed = true;
	/* From inside the pump (the next page of a seeding, the rest of the
	 * room) 1 ms, not 0: libuv runs a timer re-armed with 0 from a timer
	 * callback again in the same pass, before any I/O, so a 0 here would
	 * seed a million items before the first call is written. */
	uv_timer_start(&r->pump, runner_on_pump, r->in_pump ? 1 : 0, 0);
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
	json_decref(j->selection);
	json_decref(j->rl);
	jobspec_clear(&j->js);
	trainhook_free(j->hook);
	store_counts_close(j->counts);
	json_decref(j->row_cache);
	free(j);
}

const struct runner_endpoint *runner_endpoint_find(const struct runner *r, const char *name)
{
	for (size_t i = 0; i < r->cfg.nendpoints; i++)
		if (strcmp(r->cfg.endpoints[i].name, name) == 0)
			return &r->cfg.endpoints[i];
	return NULL;
}

static int endpoint_concurrency(const struct runner *r, const char *name)
{
	const struct runner_endpoint *ep = runner_endpoint_find(r, name);

	return ep ? ep->max_concurrency : 8;
}

/* Builds the in-memory job from its stored row: spec, counts, spend. */
int job_load(struct runner *r, int64_t id, struct job **out)
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
	rc = job_state_parse(json_string_value(json_object_get(row, "state")));
	if (rc < 0) {
		rc = -EINVAL;
		goto out;
	}
	j->state = (enum job_state)rc;
	job_run_clock_state(j, j->state);
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
	if (j->js.sel.validation_dataset[0]) {
		rc = store_dataset_resolve(r->st, j->js.sel.validation_dataset, &j->val_dataset);
		if (rc)
			goto out;
		j->val_n = store_dataset_count(r->st, j->val_dataset);
	}
	for (int s = 0; s < STEP__N; s++) {
		j->st[s].cursor = -1;
		j->bits[s] = calloc((size_t)((j->n_items + j->val_n) / 8 + 1), 1);
		if (!j->bits[s]) {
			rc = -ENOMEM;
			goto out;
		}
	}
	j->kind = job_kind_def(j->js.kind);
	j->sel = select_get(j->js.strategy);
	rt = json_object_get(row, "runtime");
	j->phase_idx = (int)json_integer_value(json_object_get(rt, "phase_idx"));
	v = json_object_get(rt, "phase");
	if (json_is_string(v) && strcmp(json_string_value(v), phase_name(job_phase(j))) != 0) {
		/* Stored by a version whose kind had other phases (a pipeline
		 * before its checkpoints): the phase by its name. */
		for (int i = 0; i <= j->kind->nphases; i++)
			if (strcmp(json_string_value(v),
				   phase_name(i < j->kind->nphases ? j->kind->phases[i] : PHASE__N)) == 0) {
				j->phase_idx = i;
				break;
			}
	}
	j->seeding = !json_is_true(json_object_get(rt, "seeded"));
	j->selected = json_is_true(json_object_get(rt, "selected"));
	j->seed_cursor = 0;
	v = json_object_get(rt, "eval");
	if (json_is_object(v))
		j->eval = json_incref(v);
	v = json_object_get(rt, "selection");
	if (json_is_object(v))
		j->selection = json_incref(v);
	/* an eval job over several students: the one whose round it is */
	j->round = (int)json_integer_value(json_object_get(rt, "round"));
	if (j->round < 0 || j->round >= j->js.nstudents)
		j->round = 0;
	if (j->js.nstudents > 0)
		snprintf(j->js.student, sizeof(j->js.student), "%s", j->js.students[j->round]);
	v = json_object_get(rt, "rl");
	if (json_is_object(v))
		j->rl = json_incref(v);
	if (r->counts_later) {
		j->counting = true; /* job_count_start reads them */
		counts = NULL;
	} else {
		counts = store_task_counts(r->st, id);
	}
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
	if (!j->counting && store_job_totals(r->st, id, &tot) == 0) {
		j->spent = tot.cost_usd;
		j->tok_in = tot.tokens_in;
		j->tok_out = tot.tokens_out;
		j->calls = tot.calls;
	}
	/* Enough items out to keep every endpoint's connections busy, plus a
	 * margin for the turn between a reply and the next dispatch and for
	 * the outcomes waiting for their group commit (up to ~10 ms under load,
	 * daemon/main.c COMMIT_GROW_MS: ~50 items at 4,500 calls/s); more would
	 * only hold memory in the client's queue. */
	j->window = endpoint_concurrency(r, j->js.teacher[0] ? j->js.teacher : j->js.student) +
		    (j->js.student[0] && j->js.teacher[0] ? endpoint_concurrency(r, j->js.student) : 0) +
		    128;
	if (j->window > (r->cfg.max_window > 0 ? r->cfg.max_window : 2048))
		j->window = r->cfg.max_window > 0 ? r->cfg.max_window : 2048;
	/* Batch calls wait hours, not seconds: the window is the batch. */
	if (j->js.teacher_batch)
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

/* Counts from the store now, on the loop thread (the way a job is loaded
 * outside a restart): replaces whatever was counted in memory since the
 * load, which the store already holds. */
static void job_count_now(struct job *j)
{
	struct runner *r = j->r;
	json_t *counts = store_task_counts(r->st, j->id), *v;
	struct store_totals tot;
	const char *key;

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
	if (store_job_totals(r->st, j->id, &tot) == 0) {
		j->spent = tot.cost_usd;
		j->tok_in = tot.tokens_in;
		j->tok_out = tot.tokens_out;
		j->calls = tot.calls;
	}
}

static void count_work_cb(uv_work_t *w)
{
	struct job *j = w->data;

	(void)store_counts_run(j->counts);
}

static void count_after_cb(uv_work_t *w, int status)
{
	struct job *j = w->data;
	struct store_counts *c = j->counts;
	int rc = status == 0 ? (c->err[0] ? -EIO : 0) : -ECANCELED;

	if (rc == -ECANCELED || j->r->closing)
		return; /* job_free closes it */
	if (rc == 0) {
		/* The pinned snapshot plus what this daemon counted since. */
		for (int i = 0; i < c->nrows; i++) {
			int s = step_parse(c->rows[i].step);
			struct step_stat *ss;

			if (s < 0)
				continue;
			ss = &j->st[s];
			if (strcmp(c->rows[i].state, STORE_TASK_PENDING) == 0)
				ss->pending += c->rows[i].n;
			else if (strcmp(c->rows[i].state, STORE_TASK_DONE) == 0)
				ss->done += c->rows[i].n;
			else if (strcmp(c->rows[i].state, STORE_TASK_FAILED) == 0)
				ss->failed += c->rows[i].n;
			else if (strcmp(c->rows[i].state, STORE_TASK_DROPPED) == 0)
				ss->dropped += c->rows[i].n;
		}
		j->spent += c->tot.cost_usd;
		j->tok_in += c->tot.tokens_in;
		j->tok_out += c->tot.tokens_out;
		j->calls += c->tot.calls;
	} else {
		log_warn("job_%" PRId64 ": counting in the background failed (%s); counting now",
			 j->id, c->err);
		job_count_now(j);
	}
	store_counts_close(c);
	j->counts = NULL;
	j->counting = false;
	j->progress_dirty = true;
	job_phase_check(j);
	runner_pump_soon(j->r);
}

/* Starts the count of a job loaded with r->counts_later: its snapshot is
 * pinned now, before any write of this daemon, so what the worker sums and
 * what the loop counts from here on never overlap. */
static void job_count_start(struct job *j)
{
	struct runner *r = j->r;
	int rc;

	if (!j->counting)
		return;
	rc = store_counts_open(store_path(r->st), j->id, &j->counts);
	if (rc == 0) {
		j->count_work.data = j;
		rc = uv_queue_work(r->loop, &j->count_work, count_work_cb, count_after_cb);
	}
	if (rc != 0) {
		store_counts_close(j->counts);
		j->counts = NULL;
		job_count_now(j);
		j->counting = false;
	}
}

void runner_add_job(struct runner *r, struct job *j)
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
	uv_timer_init(loop, &r->hold);
	r->pump.data = r;
	r->tick.data = r;
	r->hold.data = r;
	r->open_handles = 3;
	r->hold_delay_s = HOLD_FIRST_S;
	r->hold_fail_round = -1;
	client_set_listener(cl, &runner_client_listener, r);
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
		int lrc;

		r->counts_later = true;
		lrc = job_load(r, id, &j);
		r->counts_later = false;
		if (lrc == 0)
			job_count_start(j);
		if (lrc != 0) {
			store_job_set_state(r->st, id, job_state_name(JOB_FAILED),
					    "cannot resume: stored job is invalid");
			continue;
		}
		runner_add_job(r, j);
		n++;
		if (j->state == JOB_QUEUED || j->state == JOB_RUNNING) {
			job_log(j, "resume", "resumed after restart in %s", phase_name(job_phase(j)));
			job_set_state(j, JOB_RUNNING, NULL);
			if (job_phase_is_train(j))
				job_phase_start(j);
		}
	}
	json_decref(ids);
	uv_timer_start(&r->tick, runner_on_tick, 1000, 1000);
	runner_pump_soon(r);
	return n;
}

int runner_spec_check(struct runner *r, json_t *spec, struct jobspec *js, int64_t *ds,
		      json_t **prompts, struct mt_err *err)
{
	char perr[256];
	int rc;

	rc = jobspec_parse(spec, js, err);
	if (rc)
		return rc;
	if (store_dataset_resolve(r->st, js->dataset, ds) != 0)
		return mt_err_set(err, -EINVAL, "unknown_dataset", "dataset",
				  "no dataset with id or name \"%s\"", js->dataset);
	if (js->sel.validation_dataset[0]) {
		/* DIQ's validation dataset: resolved once, stored by id */
		int64_t vds;
		int64_t vn;

		if (store_dataset_resolve(r->st, js->sel.validation_dataset, &vds) != 0)
			return mt_err_set(err, -EINVAL, "unknown_dataset", "selection.validation.dataset",
					  "no dataset with id or name \"%s\" (selection.validation.dataset)",
					  js->sel.validation_dataset);
		vn = store_dataset_count(r->st, vds);
		if (vn <= 0)
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.validation.dataset",
					  "the validation dataset \"%s\" has no items",
					  js->sel.validation_dataset);
		if (vn > SEL_VALIDATION_MAX)
			return mt_err_set(err, -EINVAL, "invalid_spec", "selection.validation.dataset",
					  "the validation dataset \"%s\" has %" PRId64 " items, over the limit "
					  "of %d", js->sel.validation_dataset, vn, SEL_VALIDATION_MAX);
		snprintf(js->sel.validation_dataset, sizeof(js->sel.validation_dataset),
			 "ds_%" PRId64, vds);
	}
	if (js->teacher[0] && !runner_endpoint_find(r, js->teacher))
		return mt_err_set(err, -EINVAL, "unknown_teacher", "teacher",
				  "no [%s] section in the daemon's configuration", js->teacher);
	if (js->student[0] && !runner_endpoint_find(r, js->student))
		return mt_err_set(err, -EINVAL, "unknown_student", "student",
				  "no [%s] section in the daemon's configuration", js->student);
	if (js->embedder[0] && !runner_endpoint_find(r, js->embedder))
		return mt_err_set(err, -EINVAL, "unknown_embedder", "embedder",
				  "no [%s] section in the daemon's configuration", js->embedder);
	for (int i = 0; i < js->nstudents; i++)
		if (!runner_endpoint_find(r, js->students[i]))
			return mt_err_set(err, -EINVAL, "unknown_student", "students",
					  "no [%s] section in the daemon's configuration",
					  js->students[i]);
	if (js->train == TRAIN_HOOK && !r->cfg.train_argv)
		return mt_err_set(err, -EINVAL, "no_train_hook", "train",
				  "train is \"hook\" but the configuration has no [train] command");
	if (!js->train_given)
		js->train = r->cfg.train_argv ? TRAIN_HOOK : TRAIN_MANUAL;
	if (prompts_load_dir(r->cfg.prompts_dir, prompts, perr, sizeof(perr)) != 0)
		return mt_err_set(err, -EIO, "prompts", NULL, "cannot load the prompt templates: %s",
				  perr);
	/* A template only some kinds use (r1) may be missing from a prompts_dir. */
	for (int s = 0; s < STEP__N; s++) {
		const struct step_def *d = step_def((enum step)s);

		if (d->text || d->build) /* builds its request without a template */
			continue;
		for (int i = 0; i < job_kind_def(js->kind)->nphases; i++)
			if (d->phase == job_kind_def(js->kind)->phases[i] &&
			    !json_object_get(*prompts, d->template_name)) {
				json_decref(*prompts);
				*prompts = NULL;
				return mt_err_set(err, -EINVAL, "prompts", "kind",
						  "a %s job needs the prompt template %s "
						  "(%s.txt in the prompts_dir)",
						  job_kind_def(js->kind)->name, d->template_name,
						  d->template_name);
			}
	}
	return 0;
}

int runner_job_submit(struct runner *r, json_t *spec, int64_t *id, struct mt_err *err)
{
	struct jobspec js = { 0 };
	json_t *norm = NULL, *prompts = NULL;
	struct job *j = NULL;
	int64_t ds;
	int rc;

	rc = runner_spec_check(r, spec, &js, &ds, &prompts, err);
	if (rc)
		goto out;
	norm = jobspec_to_json(&js);
	{
		char dsid[32];

		snprintf(dsid, sizeof(dsid), "ds_%" PRId64, ds);
		json_object_set_new(norm, "dataset", json_string(dsid));
	}
	rc = store_job_insert(r->st, js.name, job_kind_def(js.kind)->name, ds, norm, prompts, id);
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
	job_log(j, "submit", "submitted: %s on ds_%" PRId64 " (%" PRId64 " items)", j->kind->name,
		ds, j->n_items);
	job_set_state(j, JOB_RUNNING, NULL);
	job_phase_start(j);
	rc = 0;
out:
	jobspec_clear(&js);
	json_decref(norm);
	json_decref(prompts);
	return rc;
}

static int action_cancel(struct job *j, struct mt_err *err)
{
	if (job_state_finished(j->state))
		return mt_err_set(err, -EALREADY, "conflict", NULL, "job_%" PRId64 " is already %s",
				  j->id, job_state_name(j->state));
	trainhook_kill(j->hook);
	job_set_state(j, JOB_CANCELLED, "cancelled by request");
	return 0;
}

static int action_pause(struct job *j, struct mt_err *err)
{
	if (j->state != JOB_RUNNING && j->state != JOB_QUEUED)
		return mt_err_set(err, -EALREADY, "conflict", NULL,
				  "job_%" PRId64 " is %s; only a running job can be paused", j->id,
				  job_state_name(j->state));
	job_set_state(j, JOB_PAUSED, "paused by request");
	return 0;
}

static int action_resume(struct job *j, struct mt_err *err)
{
	bool retrain = strcmp(j->reason, REASON_RETRAIN) == 0;

	if (j->state != JOB_PAUSED)
		return mt_err_set(err, -EALREADY, "conflict", NULL,
				  "job_%" PRId64 " is %s; only a paused job can be resumed", j->id,
				  job_state_name(j->state));
	/* Paused by its budget and not raised since: resumed, it would spend a
	 * call or two and pause again. (Paused for another reason, it resumes
	 * and the pump names the budget.) */
	if (strncmp(j->reason, REASON_BUDGET, strlen(REASON_BUDGET)) == 0 &&
	    j->js.budget_usd > 0 && j->spent >= j->js.budget_usd)
		return mt_err_set(err, -EALREADY, "conflict", "budget_usd",
				  "job_%" PRId64 " has reached its budget ($%.4f spent of "
				  "budget_usd $%.4f); raise it: `medthink resume job_%" PRId64
				  " --budget-usd N`",
				  j->id, j->spent, j->js.budget_usd, j->id);
	job_set_state(j, JOB_RUNNING, NULL);
	for (int s = 0; s < STEP__N; s++)
		j->st[s].cursor = -1;
	/* A down endpoint gets its probe now; still down, it pauses the job
	 * again after down_after_s. */
	if (j->js.teacher[0])
		client_endpoint_rearm(j->r->cl, j->js.teacher);
	if (j->js.student[0])
		client_endpoint_rearm(j->r->cl, j->js.student);
	if (retrain) {
		job_log(j, "phase", "resumed after retraining");
		job_phase_next(j);
	} else if (job_phase_is_train(j)) {
		job_phase_start(j); /* the hook failed before: run it again */
	}
	runner_pump_soon(j->r);
	return 0;
}

/* What a user may do to a job (runner_job_action's names). */
static const struct {
	const char *name;
	int (*fn)(struct job *j, struct mt_err *err);
} actions[] = {
	{ "cancel", action_cancel },
	{ "pause", action_pause },
	{ "resume", action_resume },
};

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
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(action, actions[i].name) == 0)
			return actions[i].fn(j, err);
	mt_err_set(err, -ENOENT, "not_found", NULL, "no action %s", action);
	return -ENOENT;
}

int runner_pause_all(struct runner *r, const char *reason)
{
	int n = 0;

	for (struct job *j = r->jobs; j; j = j->next) {
		if (j->state != JOB_RUNNING && j->state != JOB_QUEUED)
			continue;
		job_set_state(j, JOB_PAUSED, reason);
		n++;
	}
	return n;
}

int runner_job_set_budget(struct runner *r, int64_t id, double budget)
{
	struct job *j = job_find(r, id);

	if (!j)
		return -ENOENT;
	j->js.budget_usd = budget;
	j->row_stale = true;
	json_object_set_new(j->spec, "budget_usd", json_real(budget));
	return store_job_set_spec(r->st, id, j->spec);
}

int runner_job_finished(struct runner *r, int64_t id)
{
	struct job *j = job_find(r, id);
	json_t *row;
	int fin;

	if (j)
		return job_state_finished(j->state);
	row = store_job_get(r->st, id);
	if (!row)
		return 1;
	fin = job_state_finished(job_state_parse(json_string_value(json_object_get(row, "state"))));
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
	uv_close((uv_handle_t *)&r->hold, runner_handle_closed);
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
	while (r->held) {
		struct task *t = r->held;

		r->held = t->hnext;
		task_free(t);
	}
	while (r->hw_head) {
		struct held_write *w = r->hw_head;

		r->hw_head = w->next;
		held_write_free(w);
	}
	free(r);
}

