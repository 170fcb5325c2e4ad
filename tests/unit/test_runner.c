/* layers: daemon stages teacher_clients store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/http.h"
#include "stages/kinds.h"
#include "stages/runner.h"
#include "stages/select.h"
#include "stages/steps.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/work.h"
#include "teacher_clients/client.h"

/* The runner's phase transitions, driven for real: a runner on a uv loop
 * over a temp SQLite store, calling through the real client a fake model
 * served in-process (daemon/http.h on loopback, same loop). The fake reads
 * what each item wants from its question: "q=Q d=D" (the screen's quality
 * and difficulty) or "drop" (the teacher drops it); every explanation and
 * every student answer ends in the gold answer B. No test waits on a clock:
 * the loop runs until the job reaches the state under test (a turn cap and
 * an alarm only guard against hangs). */

static char dbdir[64];

/* ---- the fake model ---- */

enum { T_SCREEN, T_EXPLAIN, T_ANSWER, T_OTHER, T__N };

struct fake {
	struct http_server *srv;
	int port;
	int requests[T__N];
};

static const char *last_content(json_t *body)
{
	json_t *msgs = json_object_get(body, "messages");
	json_t *c = json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "content");

	if (json_is_array(c)) /* content parts: the text comes first */
		c = json_object_get(json_array_get(c, 0), "text");
	return json_string_value(c);
}

static char *screen_reply(const char *text)
{
	const char *q = strstr(text, "q=");
	int quality = 3, difficulty = 3;
	json_t *o;
	char *s;

	if (q)
		sscanf(q, "q=%d d=%d", &quality, &difficulty);
	o = json_pack("{s:b, s:s, s:i, s:i}", "keep", strstr(text, "drop") == NULL, "reason",
		      "test verdict", "quality", quality, "difficulty", difficulty);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static void fake_on_body(void *ud, struct http_req *req, const char *body, size_t len)
{
	struct fake *f = ud;
	json_t *in = json_loadb(body, len, 0, NULL), *out;
	const char *text = last_content(in);
	char *content;

	if (!text)
		text = "";
	if (strstr(text, "### Task: screen")) {
		f->requests[T_SCREEN]++;
		content = screen_reply(text);
	} else if (strstr(text, "### Task: explain")) {
		f->requests[T_EXPLAIN]++;
		content = strdup("Achalasia fits the dysphagia.\n\nFinal answer: B");
	} else if (strstr(text, "### Task: answer")) {
		f->requests[T_ANSWER]++;
		content = strdup("Final answer: B");
	} else {
		f->requests[T_OTHER]++;
		content = strdup("{}");
	}
	out = json_pack("{s:s, s:s, s:i, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:i, s:i, s:i}}",
			"id", "fake-1", "object", "chat.completion", "created", 0, "model", "m",
			"choices", "index", 0, "message", "role", "assistant", "content", content,
			"finish_reason", "stop", "usage", "prompt_tokens", 10, "completion_tokens", 5,
			"total_tokens", 15);
	http_respond_json(req, 200, out);
	json_decref(out);
	json_decref(in);
	free(content);
}

/* ---- one runner on one loop ---- */

struct env {
	uv_loop_t loop;
	uv_prepare_t commit;
	struct store *st;
	struct client *cl;
	struct runner *r;
	struct fake fake;
	int64_t ds;
	int closing;
	char events[4096]; /* "phase:stage1 state:paused ..." */
	char messages[8192];
	char progress_at[40], progress_created[40]; /* of the last progress event */
};

static void on_commit(uv_prepare_t *p)
{
	struct env *e = p->data;

	for (int i = 0; i < 4 && store_batch_pending(e->st) > 0; i++)
		store_batch_flush(e->st);
}

static void append(char *buf, size_t cap, const char *a, const char *b)
{
	size_t n = strlen(buf);

	snprintf(buf + n, cap - n, "%s%s%s", n ? " " : "", a, b);
}

static void on_event(void *ud, int64_t job, const char *type, json_t *data)
{
	struct env *e = ud;
	const char *v;

	(void)job;
	if (strcmp(type, "phase") == 0 && (v = json_string_value(json_object_get(data, "phase"))))
		append(e->events, sizeof(e->events), "phase:", v);
	else if (strcmp(type, "state") == 0)
		append(e->events, sizeof(e->events), "state:",
		       json_string_value(json_object_get(data, "state")));
	if (strcmp(type, "progress") == 0) {
		snprintf(e->progress_at, sizeof(e->progress_at), "%s",
			 (v = json_string_value(json_object_get(data, "at"))) ? v : "none");
		snprintf(e->progress_created, sizeof(e->progress_created), "%s",
			 (v = json_string_value(json_object_get(data, "created_at"))) ? v : "none");
	}
	if ((v = json_string_value(json_object_get(data, "message"))))
		append(e->messages, sizeof(e->messages), "|", v);
}

/* USD per million prompt tokens of the fake endpoints (a test that spends sets it). */
static double price_in;

static void add_endpoint(struct env *e, const char *name, enum client_kind kind, const char *url)
{
	struct client_endpoint_cfg c = { .name = name, .kind = kind, .base_url = url, .model = "m",
					 .max_concurrency = 4, .backoff_base_s = 0.01,
					 .backoff_max_s = 0.05, .price_in_per_mtok = price_in };

	assert_int_equal(client_endpoint_add(e->cl, &c), 0);
}

static const struct runner_endpoint endpoints[] = {
	{ "teacher.t", 4, NULL, 0, 0 },
	{ "student.s", 4, NULL, 0, 0 },
};

/* A store with one dataset of the given questions (gold B of A-D). */
static void env_open(struct env *e, const char *const *questions, size_t n)
{
	static int seq;
	struct http_handler h = { .on_body = fake_on_body, .ud = &e->fake };
	struct runner_config rc = { .state_dir = dbdir, .prompts_dir = "conf/prompts",
				    .endpoints = endpoints, .nendpoints = 2 };
	char path[128], err[128], url[64];
	json_t **items = calloc(n, sizeof(*items));

	memset(e, 0, sizeof(*e));
	assert_int_equal(uv_loop_init(&e->loop), 0);
	snprintf(path, sizeof(path), "%s/db%d.sqlite", dbdir, seq++);
	assert_int_equal(store_open(path, &e->st, err, sizeof(err)), 0);
	assert_int_equal(store_dataset_create(e->st, "d", "medqa", &e->ds), 0);
	for (size_t i = 0; i < n; i++) {
		char id[32];

		snprintf(id, sizeof(id), "it-%zu", i);
		items[i] = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s, s:s}", "id", id,
				     "question", questions[i], "options", "A", "Esophageal cancer",
				     "B", "Achalasia", "C", "GERD", "D", "Zenker diverticulum",
				     "answer", "B", "topic", "esophagus");
	}
	assert_int_equal(store_items_insert(e->st, e->ds, 0, items, n, NULL), 0);
	assert_int_equal(store_dataset_finish(e->st, e->ds, (int64_t)n, NULL), 0);
	for (size_t i = 0; i < n; i++)
		json_decref(items[i]);
	free(items);

	e->fake.srv = http_server_new(&h, NULL);
	assert_non_null(e->fake.srv);
	assert_int_equal(http_server_listen_tcp(e->fake.srv, &e->loop, "127.0.0.1", 0), 0);
	e->fake.port = http_server_port(e->fake.srv);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", e->fake.port);

	assert_int_equal(client_new(&e->loop, e->st, NULL, &e->cl), 0);
	add_endpoint(e, "teacher.t", CLIENT_TEACHER, url);
	add_endpoint(e, "student.s", CLIENT_STUDENT, url);
	uv_prepare_init(&e->loop, &e->commit);
	e->commit.data = e;
	uv_prepare_start(&e->commit, on_commit);
	assert_int_equal(runner_new(&e->loop, e->st, e->cl, &rc, &e->r), 0);
	runner_set_listener(e->r, on_event, e);
	assert_int_equal(runner_start(e->r), 0);
}

static void part_closed(void *ud)
{
	((struct env *)ud)->closing--;
}

static void env_close(struct env *e)
{
	e->closing = 3;
	runner_close(e->r, part_closed, e);
	client_close(e->cl, part_closed, e);
	http_server_close(e->fake.srv, part_closed, e);
	while (e->closing > 0)
		uv_run(&e->loop, UV_RUN_ONCE);
	on_commit(&e->commit);
	uv_close((uv_handle_t *)&e->commit, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	http_server_free(e->fake.srv);
	runner_free(e->r);
	store_close(e->st);
}

static int64_t submit(struct env *e, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	json_t *spec;
	struct mt_err err = { 0 };
	int64_t id = 0;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	spec = json_loads(text, 0, NULL);
	assert_non_null(spec);
	if (runner_job_submit(e->r, spec, &id, &err) != 0)
		fail_msg("submit: %s", err.message);
	json_decref(spec);
	return id;
}

/* The job's status (new reference). */
static json_t *status(struct env *e, int64_t id)
{
	json_t *s = runner_job_status(e->r, id);

	assert_non_null(s);
	return s;
}

static bool state_now(struct env *e, int64_t id, const char *state)
{
	json_t *s = status(e, id);
	bool is = strcmp(json_string_value(json_object_get(s, "state")), state) == 0;

	json_decref(s);
	return is;
}

/* Runs the loop until the job is in state (done, paused, ...). */
static void run_until(struct env *e, int64_t id, const char *state)
{
	for (int turns = 0; !state_now(e, id, state); turns++) {
		if (turns > 200000)
			fail_msg("job_%lld never became %s", (long long)id, state);
		uv_run(&e->loop, UV_RUN_ONCE);
	}
}

static int64_t count(json_t *st, const char *step, const char *what)
{
	return json_integer_value(json_object_get(json_object_get(json_object_get(st, "counts"), step), what));
}

static const char *str(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

/* ---- tests ---- */

static const char *const plain[] = { "q=3 d=3 dysphagia 1", "q=3 d=3 dysphagia 2",
				     "q=3 d=3 dysphagia 3", "q=3 d=3 dysphagia 4" };

/* Strategy none: no screening; stage one explains every item, then done. */
static void test_stage1_none(void **state)
{
	struct env e;
	int64_t id;
	json_t *s;
	(void)state;

	env_open(&e, plain, 4);
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"eval_fraction\":0,"
			"\"selection\":{\"strategy\":\"none\"}}");
	run_until(&e, id, "done");
	s = status(&e, id);
	assert_string_equal(str(s, "phase"), "done");
	assert_null(json_object_get(json_object_get(s, "counts"), "screen"));
	assert_int_equal(count(s, "explain", "done"), 4);
	assert_int_equal(e.fake.requests[T_SCREEN], 0);
	assert_int_equal(e.fake.requests[T_EXPLAIN], 4);
	assert_string_equal(e.events, "state:running phase:stage1 state:done");
	assert_non_null(strstr(e.messages, "|stage1 done: 0 screened (0 dropped, 0 failed), "
					   "4 explanations (0 dropped, 0 failed): SFT set 1 is ready"));
	json_decref(s);
	env_close(&e);
}

/* teacher_screen with a selection budget: explanations wait for the whole
 * screening, then the best half of the screened items go on. By hand:
 * 6 screened, budget 0.5 keeps ceil(3.0) = 3; the teacher keeps 0,1,2,3,5
 * (4 is dropped); best first by quality, then difficulty, then file order:
 * 3 (q5 d3), 1 (q5 d1), 2 (q4 d4), 5 (q4 d4), 0 (q3 d5): items 1, 2, 3. */
static void test_stage1_selection(void **state)
{
	static const char *const qs[] = { "q=3 d=5 item", "q=5 d=1 item", "q=4 d=4 item",
					  "q=5 d=3 item", "drop this item", "q=4 d=4 item" };
	struct env e;
	int64_t id;
	json_t *s, *a;
	(void)state;

	env_open(&e, qs, 6);
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"eval_fraction\":0,"
			"\"selection\":{\"strategy\":\"teacher_screen\",\"budget\":0.5}}");
	run_until(&e, id, "done");
	s = status(&e, id);
	assert_int_equal(count(s, "screen", "done"), 3);
	assert_int_equal(count(s, "screen", "dropped"), 3);
	assert_int_equal(count(s, "explain", "done"), 3);
	assert_int_equal(e.fake.requests[T_SCREEN], 6);
	assert_int_equal(e.fake.requests[T_EXPLAIN], 3);
	for (int64_t seq = 0; seq < 6; seq++) {
		a = store_artifact_get(e.st, id, "explanation", seq);
		if (seq >= 1 && seq <= 3)
			assert_non_null(a);
		else
			assert_null(a);
		json_decref(a);
	}
	assert_non_null(strstr(e.messages, "|selection: 5 kept by the teacher, the best 3 go on"));
	assert_non_null(strstr(e.messages, "|stage1 done: 6 screened (3 dropped, 0 failed), "
					   "3 explanations (0 dropped, 0 failed)"));
	json_decref(s);
	env_close(&e);
}

static int first_reason(void *ud, int64_t seq, const char *st, int attempts, const char *reason)
{
	(void)seq;
	(void)st;
	(void)attempts;
	if (!((char *)ud)[0])
		snprintf(ud, 200, "%s", reason ? reason : "");
	return 0;
}

/* The items the strategy left out keep the reason on their screen task. */
static void test_selection_reason(void **state)
{
	static const char *const qs[] = { "q=5 d=5 a", "q=1 d=1 b" };
	struct env e;
	int64_t id;
	char reason[200] = "";
	(void)state;

	env_open(&e, qs, 2);
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"eval_fraction\":0,"
			"\"selection\":{\"budget\":0.5}}");
	run_until(&e, id, "done");
	assert_int_equal(store_tasks_each(e.st, id, "screen", STORE_TASK_DROPPED, -1, 10, first_reason,
					  reason),
			 0);
	assert_string_equal(reason, "not selected: selection budget 0.5 keeps the 1 best of 2 "
				    "screened items");
	env_close(&e);
}

/* A pipeline with train none passes both train gates straight through. */
static void test_pipeline_train_none(void **state)
{
	struct env e;
	int64_t id;
	json_t *s, *ev;
	(void)state;

	env_open(&e, plain, 4);
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"pipeline\",\"teacher\":\"t\",\"student\":\"s\","
			"\"eval_fraction\":0.5,\"seed\":1,\"train\":\"none\"}");
	run_until(&e, id, "done");
	/* (the checkpoints eval_baseline and eval_stage1 are new phases) */
	assert_string_equal(e.events, "state:running phase:eval_baseline phase:stage1 phase:train1 "
				      "phase:eval_stage1 phase:stage2 phase:train2 phase:eval state:done");
	s = status(&e, id);
	assert_string_equal(str(s, "phase"), "done");
	ev = json_object_get(s, "eval");
	assert_non_null(ev);
	/* every held-out item answered B, the gold answer */
	assert_int_equal(json_integer_value(json_object_get(ev, "total")), count(s, "eval", "done"));
	assert_int_equal(json_integer_value(json_object_get(ev, "correct")), count(s, "eval", "done"));
	assert_int_equal(count(s, "answer", "done") + count(s, "eval", "done"), 4);
	assert_null(strstr(e.messages, "awaiting"));
	/* the three checkpoints, the same model (train none): no change */
	{
		json_t *cks = json_object_get(ev, "checkpoints");
		static const char *const names[] = { "baseline", "stage1", "stage2" };

		assert_int_equal(json_array_size(cks), 3);
		for (size_t i = 0; i < 3; i++) {
			json_t *c = json_array_get(cks, i);

			assert_string_equal(str(c, "name"), names[i]);
			assert_int_equal(json_integer_value(json_object_get(c, "total")),
					 count(s, "eval", "done"));
			assert_int_equal(json_array_size(json_object_get(c, "ci95")), 2);
			if (i == 0)
				continue;
			assert_true(json_is_true(json_object_get(c, "same_model_as_baseline")));
			assert_true(json_real_value(json_object_get(json_object_get(c, "change"),
								    "delta")) == 0);
		}
		assert_int_equal(count(s, "eval_baseline", "done"), count(s, "eval", "done"));
		assert_non_null(strstr(str(ev, "note"), "same model"));
	}
	json_decref(s);
	env_close(&e);
}

/* train manual: each train gate pauses the job "awaiting retrain"; resume
 * moves it on to the next phase. */
static void test_pipeline_train_manual(void **state)
{
	struct env e;
	struct mt_err err = { 0 };
	int64_t id;
	json_t *s;
	(void)state;

	env_open(&e, plain, 4);
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"pipeline\",\"teacher\":\"t\",\"student\":\"s\","
			"\"eval_fraction\":0.5,\"seed\":1,\"train\":\"manual\"}");
	run_until(&e, id, "paused");
	s = status(&e, id);
	assert_string_equal(str(s, "phase"), "train1");
	assert_string_equal(str(s, "reason"), "awaiting retrain");
	/* the student has answered only the baseline's held-out items (the
	 * baseline checkpoint is new; it replaces "no answer yet") */
	assert_int_equal(e.fake.requests[T_ANSWER], count(s, "eval_baseline", "done"));
	json_decref(s);

	assert_int_equal(runner_job_action(e.r, id, "resume", &err), 0);
	s = status(&e, id);
	assert_string_equal(str(s, "phase"), "eval_stage1");
	json_decref(s);
	run_until(&e, id, "paused");
	s = status(&e, id);
	assert_string_equal(str(s, "phase"), "train2");
	assert_string_equal(str(s, "reason"), "awaiting retrain");
	json_decref(s);

	assert_int_equal(runner_job_action(e.r, id, "resume", &err), 0);
	run_until(&e, id, "done");
	assert_string_equal(e.events, "state:running phase:eval_baseline phase:stage1 phase:train1 "
				      "state:paused state:running phase:eval_stage1 phase:stage2 "
				      "phase:train2 state:paused state:running phase:eval state:done");
	assert_non_null(strstr(e.messages, "|resumed after retraining"));
	env_close(&e);
}

static void expect_conflict(struct env *e, int64_t id, const char *action, const char *msg)
{
	struct mt_err err = { 0 };

	assert_int_equal(runner_job_action(e->r, id, action, &err), -EALREADY);
	assert_string_equal(err.code, "conflict");
	assert_string_equal(err.message, msg);
}

/* pause, resume and cancel refuse what the state does not allow. */
static void test_action_conflicts(void **state)
{
	struct env e;
	struct mt_err err = { 0 };
	char msg[128];
	int64_t id;
	(void)state;

	env_open(&e, plain, 4);
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\"}");
	snprintf(msg, sizeof(msg), "job_%lld is running; only a paused job can be resumed", (long long)id);
	expect_conflict(&e, id, "resume", msg);
	assert_int_equal(runner_job_action(e.r, id, "pause", &err), 0);
	snprintf(msg, sizeof(msg), "job_%lld is paused; only a running job can be paused", (long long)id);
	expect_conflict(&e, id, "pause", msg);
	assert_int_equal(runner_job_action(e.r, id, "cancel", &err), 0);
	assert_true(runner_job_finished(e.r, id));
	snprintf(msg, sizeof(msg), "job_%lld is already cancelled", (long long)id);
	expect_conflict(&e, id, "cancel", msg);
	snprintf(msg, sizeof(msg), "job_%lld is cancelled; only a paused job can be resumed", (long long)id);
	expect_conflict(&e, id, "resume", msg);

	memset(&err, 0, sizeof(err));
	assert_int_equal(runner_job_action(e.r, id, "explode", &err), -ENOENT);
	assert_string_equal(err.message, "no action explode");
	assert_int_equal(runner_job_action(e.r, 999, "pause", &err), -ENOENT);
	assert_string_equal(err.message, "no job job_999");
	assert_string_equal(e.events, "state:running phase:stage1 state:paused state:cancelled");
	env_close(&e);
}

/* The tables: names round-trip; the kinds run the phases SPEC 6 names. */
static void test_tables(void **state)
{
	static const char *const kinds[] = { "pipeline", "stage1", "stage2", "eval" };
	static const char *const states[] = { "queued", "running", "paused", "done", "failed",
					      "cancelled" };
	const struct job_kind_def *k;
	(void)state;

	for (int i = 0; i < JOB_KIND__N; i++)
		assert_int_equal(job_kind_parse(job_kind_def((enum job_kind)i)->name), i);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		assert_true(job_kind_parse(kinds[i]) >= 0);
	assert_int_equal(job_kind_parse("stage9"), -1);
	k = job_kind_def(JOB_KIND_PIPELINE);
	/* the checkpoints before stage one and after each retrain (new) */
	assert_int_equal(k->nphases, 7);
	assert_int_equal(k->phases[0], PHASE_EVAL_BASE);
	assert_int_equal(k->phases[1], PHASE_STAGE1);
	assert_int_equal(k->phases[2], PHASE_TRAIN1);
	assert_int_equal(k->phases[3], PHASE_EVAL1);
	assert_int_equal(k->phases[4], PHASE_STAGE2);
	assert_int_equal(k->phases[5], PHASE_TRAIN2);
	assert_int_equal(k->phases[6], PHASE_EVAL);
	assert_int_equal(job_kind_def(JOB_KIND_STAGE1)->phases[0], PHASE_STAGE1);
	assert_false(job_kind_def(JOB_KIND_EVAL)->needs_teacher);
	assert_false(job_kind_def(JOB_KIND_STAGE1)->needs_student);
	for (int i = 0; i < JOB_STATE__N; i++) {
		assert_string_equal(job_state_name((enum job_state)i), states[i]);
		assert_int_equal(job_state_parse(states[i]), i);
	}
	assert_int_equal(job_state_parse("sleeping"), -1);
	assert_true(job_state_finished(JOB_CANCELLED));
	assert_false(job_state_finished(JOB_PAUSED));
	for (int i = 0; i < TRAIN__N; i++)
		assert_int_equal(train_mode_parse(train_mode_name((enum train_mode)i)), i);
	assert_string_equal(phase_name(PHASE_TRAIN2), "train2");
	assert_string_equal(phase_name(PHASE__N), "done");
	for (int i = 0; i < SELECT__N; i++)
		assert_int_equal(select_parse(select_get((enum select_id)i)->name), i);
	assert_int_equal(select_parse("diq"), SELECT_DIQ);
	assert_int_equal(select_parse("3ds"), SELECT_3DS);
	assert_int_equal(select_parse("gradients"), -1);
	assert_int_equal(select_then(select_get(SELECT_DIQ)), STEP_EXPLAIN);
	assert_int_equal(select_then(select_get(SELECT_3DS)), STEP_EXPLAIN);
	assert_int_equal(select_then(select_get(SELECT_TEACHER_SCREEN)), STEP_EXPLAIN);
	assert_int_equal(select_get(SELECT_NONE)->first_step, STEP_EXPLAIN);
	assert_int_equal(select_get(SELECT_TEACHER_SCREEN)->first_step, STEP_SCREEN);
	/* the steps' rows: what each reads and which phase it is in */
	assert_string_equal(step_def(STEP_JUDGE)->reads, "answer");
	assert_string_equal(step_def(STEP_CORRECT)->reads, "answer");
	assert_string_equal(step_def(STEP_EVAL_JUDGE)->reads, "eval");
	assert_null(step_def(STEP_ANSWER)->reads);
	assert_int_equal(step_def(STEP_EXPLAIN)->phase, PHASE_STAGE1);
	assert_int_equal(step_def(STEP_CORRECT)->phase, PHASE_STAGE2);
	assert_int_equal(step_def(STEP_EVAL_JUDGE)->phase, PHASE_EVAL);
	assert_string_equal(step_def(STEP_EVAL_BASE_JUDGE)->reads, "eval_baseline");
	assert_string_equal(step_def(STEP_EVAL1_JUDGE)->reads, "eval_stage1");
	assert_int_equal(step_def(STEP_EVAL1)->phase, PHASE_EVAL1);
	assert_string_equal(phase_name(PHASE_EVAL_BASE), "eval_baseline");
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	alarm(300); /* a hang guard only */
	snprintf(dbdir, sizeof(dbdir), "/tmp/test_runner.XXXXXX");
	if (!mkdtemp(dbdir))
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dbdir);
	curl_global_cleanup();
	return system(cmd) == 0 ? 0 : -1;
}

/* The store refuses the outcomes (a full disk): they are held and retried,
 * never re-queued (no call is sent again); after a few failed rounds the job
 * pauses with the store's error; once the store takes writes the held
 * outcomes commit and resume finishes the job. */
static void test_store_failure_pauses(void **state)
{
	struct env e;
	struct mt_err err = { 0 };
	int64_t id;
	json_t *s;
	uint64_t t0;
	(void)state;

	env_open(&e, plain, 4);
	assert_int_equal(sqlite3_exec(store_db(e.st),
				      "CREATE TEMP TRIGGER full BEFORE INSERT ON artifacts "
				      "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"eval_fraction\":0,"
			"\"selection\":{\"strategy\":\"none\"}}");
	run_until(&e, id, "paused");
	s = status(&e, id);
	assert_non_null(strstr(str(s, "reason"), "store: cannot write "));
	assert_non_null(strstr(str(s, "reason"), "medthink resume job_"));
	assert_int_equal(count(s, "explain", "in_flight"), 4); /* held, not re-queued */
	json_decref(s);
	/* more retry rounds: nothing is sent again */
	for (t0 = uv_hrtime(); uv_hrtime() - t0 < 300000000ull;)
		uv_run(&e.loop, UV_RUN_ONCE);
	assert_int_equal(e.fake.requests[T_EXPLAIN], 4);
	assert_int_equal(sqlite3_exec(store_db(e.st), "DROP TRIGGER full", NULL, NULL, NULL), SQLITE_OK);
	for (int turns = 0;; turns++) {
		s = status(&e, id);
		if (count(s, "explain", "done") == 4)
			break;
		json_decref(s);
		if (turns > 200000)
			fail_msg("the held outcomes never committed");
		uv_run(&e.loop, UV_RUN_ONCE);
	}
	assert_string_equal(str(s, "state"), "paused");
	json_decref(s);
	assert_int_equal(runner_job_action(e.r, id, "resume", &err), 0);
	run_until(&e, id, "done");
	assert_int_equal(e.fake.requests[T_EXPLAIN], 4);
	env_close(&e);
}

/* max_items caps stage one only; stage two takes exactly what stage one
 * kept. 5 items, max_items 3: stage one screens 0, 1, 2, the teacher drops
 * 1; stage two answers 0 and 2, never the unscreened 3 and 4. */
/* DIQ's "validation":{"dataset":...} is resolved at submit like the job's
 * own dataset: an unknown or empty one is refused (422) naming it. */
static void submit_err(struct env *e, const char *validation, const char *code, const char *msg)
{
	char text[512];
	json_t *spec;
	struct mt_err err = { 0 };
	int64_t id = 0;

	snprintf(text, sizeof(text),
		 "{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"student\":\"s\","
		 "\"embedder\":\"e\",\"selection\":{\"strategy\":\"diq\",\"budget\":1,"
		 "\"validation\":%s}}",
		 validation);
	spec = json_loads(text, 0, NULL);
	assert_non_null(spec);
	assert_int_equal(runner_job_submit(e->r, spec, &id, &err), -EINVAL); /* 422 */
	assert_string_equal(err.code, code);
	if (strcmp(code, "unknown_embedder") != 0)
		assert_string_equal(err.field, "selection.validation.dataset");
	assert_string_equal(err.message, msg);
	json_decref(spec);
}

static void test_diq_validation_dataset(void **state)
{
	static const char *const q[] = { "q=5 d=5 one" };
	struct env e;
	int64_t empty;

	(void)state;
	env_open(&e, q, 1);
	assert_int_equal(store_dataset_create(e.st, "vempty", "medqa", &empty), 0);
	assert_int_equal(store_dataset_finish(e.st, empty, 0, NULL), 0);
	submit_err(&e, "{\"dataset\":\"nosuch\"}", "unknown_dataset",
		   "no dataset with id or name \"nosuch\" (selection.validation.dataset)");
	submit_err(&e, "{\"dataset\":\"vempty\"}", "invalid_spec",
		   "the validation dataset \"vempty\" has no items");
	/* by name or by id it resolves; the spec goes on to its next check */
	submit_err(&e, "{\"dataset\":\"d\"}", "unknown_embedder",
		   "no [embedder.e] section in the daemon's configuration");
	{
		char byid[64];

		snprintf(byid, sizeof(byid), "{\"dataset\":\"ds_%lld\"}", (long long)e.ds);
		submit_err(&e, byid, "unknown_embedder",
			   "no [embedder.e] section in the daemon's configuration");
	}
	env_close(&e);
}

static void test_stage2_takes_kept(void **state)
{
	static const char *const qs[] = { "q=3 d=3 a", "drop b", "q=3 d=3 c", "q=3 d=3 d",
					  "q=3 d=3 e" };
	struct env e;
	int64_t id;
	json_t *s, *a;
	(void)state;

	env_open(&e, qs, 5);
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"pipeline\",\"teacher\":\"t\",\"student\":\"s\","
			"\"eval_fraction\":0,\"train\":\"none\",\"max_items\":3}");
	run_until(&e, id, "done");
	s = status(&e, id);
	assert_int_equal(count(s, "screen", "done") + count(s, "screen", "dropped"), 3);
	assert_int_equal(count(s, "explain", "done"), 2);
	assert_int_equal(count(s, "answer", "done"), 2);
	assert_int_equal(e.fake.requests[T_ANSWER], 2);
	for (int64_t seq = 0; seq < 5; seq++) {
		a = store_artifact_get(e.st, id, "answer", seq);
		if (seq == 0 || seq == 2)
			assert_non_null(a);
		else
			assert_null(a);
		json_decref(a);
	}
	json_decref(s);
	env_close(&e);
}

/* A job paused by its budget is not resumed until the budget is raised:
 * 409 conflict saying how; raised, it resumes and finishes. Each call costs
 * $0.01 (10 prompt tokens at $1000 per million). */
static void test_resume_budget(void **state)
{
	struct env e;
	struct mt_err err = { 0 };
	char msg[160];
	int64_t id;
	json_t *s;
	(void)state;

	price_in = 1000;
	env_open(&e, plain, 4);
	price_in = 0;
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"eval_fraction\":0,"
			"\"selection\":{\"strategy\":\"none\"},\"budget_usd\":0.015}");
	run_until(&e, id, "paused");
	s = status(&e, id);
	assert_non_null(strstr(str(s, "reason"), "budget reached"));
	json_decref(s);
	assert_int_equal(runner_job_action(e.r, id, "resume", &err), -EALREADY);
	assert_string_equal(err.code, "conflict");
	snprintf(msg, sizeof(msg), "raise it: `medthink resume job_%lld --budget-usd N`", (long long)id);
	assert_non_null(strstr(err.message, msg));
	assert_non_null(strstr(err.message, "has reached its budget"));
	assert_true(state_now(&e, id, "paused"));
	assert_int_equal(runner_job_set_budget(e.r, id, 1.0), 0);
	memset(&err, 0, sizeof(err));
	assert_int_equal(runner_job_action(e.r, id, "resume", &err), 0);
	run_until(&e, id, "done");
	assert_int_equal(e.fake.requests[T_EXPLAIN], 4);
	env_close(&e);
}

/* A settable clock for the store (rate, timestamps). */
static double fake_now;
static double fake_clock(void) { return fake_now; }

static double rate_of(struct env *e, int64_t id)
{
	json_t *s = status(e, id);
	double r = json_real_value(json_object_get(s, "rate_per_s"));

	json_decref(s);
	return r;
}

/* Rate and ETA count running time only: 30 s paused at the train gate
 * neither thin the rate while paused nor after resuming. */
static void test_rate_excludes_pause(void **state)
{
	struct env e;
	struct mt_err err = { 0 };
	double r1;
	int64_t id;
	(void)state;

	fake_now = 1000;
	store_clock_set(fake_clock);
	env_open(&e, plain, 4);
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"pipeline\",\"teacher\":\"t\",\"student\":\"s\","
			"\"eval_fraction\":0,\"train\":\"manual\"}");
	run_until(&e, id, "paused");
	r1 = rate_of(&e, id);
	assert_true(r1 > 0);
	fake_now += 30;
	assert_true(rate_of(&e, id) == r1);
	assert_int_equal(runner_job_action(e.r, id, "resume", &err), 0);
	assert_true(rate_of(&e, id) == r1);
	run_until(&e, id, "paused"); /* train2 */
	env_close(&e);
	store_clock_set(NULL);
}

/* A progress event carries the time it was sent in "at"; created_at stays
 * the job's. */
static void test_progress_at(void **state)
{
	struct env e;
	char created[40], later[40];
	int64_t id;
	(void)state;

	fake_now = 1000;
	store_clock_set(fake_clock);
	env_open(&e, plain, 4);
	id = submit(&e, "{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"eval_fraction\":0,"
			"\"selection\":{\"strategy\":\"none\"}}");
	fake_now = 2000;
	run_until(&e, id, "done");
	for (int turns = 0; !e.progress_at[0]; turns++) {
		if (turns > 200000)
			fail_msg("no progress event");
		uv_run(&e.loop, UV_RUN_ONCE);
	}
	store_iso_time(1000, created, sizeof(created));
	store_iso_time(2000, later, sizeof(later));
	assert_string_equal(e.progress_created, created);
	assert_string_equal(e.progress_at, later);
	env_close(&e);
	store_clock_set(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_stage1_none),
		cmocka_unit_test(test_stage1_selection),
		cmocka_unit_test(test_selection_reason),
		cmocka_unit_test(test_pipeline_train_none),
		cmocka_unit_test(test_pipeline_train_manual),
		cmocka_unit_test(test_action_conflicts),
		cmocka_unit_test(test_store_failure_pauses),
		cmocka_unit_test(test_stage2_takes_kept),
		cmocka_unit_test(test_diq_validation_dataset),
		cmocka_unit_test(test_resume_budget),
		cmocka_unit_test(test_rate_excludes_pause),
		cmocka_unit_test(test_progress_at),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
