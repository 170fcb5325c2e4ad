/* The evaluation at a job's checkpoints: a pipeline evaluates its student on
 * the held-out split before stage one (baseline), after the first retrain
 * (stage1) and after the second (stage2), with the same prompts and grading
 * (the eval steps of stages/steps.c, one pair per checkpoint, each writing
 * its own artifact). The report (j->eval, the status's "eval") gives each
 * checkpoint's accuracy overall and by topic with its Wilson 95% interval,
 * and the change from the baseline over the same items with Newcombe's
 * paired interval (stages/evalstats.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "stages/evalstats.h"
#include "stages/runner_int.h"
#include "store/store.h"
#include "store/evalround.h"
#include "store/work.h"

/* One row per checkpoint phase: its name in the report, the artifact its
 * eval steps write, and those steps. */
static const struct checkpoint_def checkpoints[] = {
	{ PHASE_EVAL_BASE, "baseline", "eval_baseline", STEP_EVAL_BASE, STEP_EVAL_BASE_JUDGE },
	{ PHASE_EVAL1, "stage1", "eval_stage1", STEP_EVAL1, STEP_EVAL1_JUDGE },
	{ PHASE_EVAL, "stage2", "eval", STEP_EVAL, STEP_EVAL_JUDGE },
};
#define NCHECKPOINTS (sizeof(checkpoints) / sizeof(checkpoints[0]))

const struct checkpoint_def *job_checkpoint_of(enum phase p)
{
	for (size_t i = 0; i < NCHECKPOINTS; i++)
		if (checkpoints[i].phase == p)
			return &checkpoints[i];
	return NULL;
}

/* The train phase of j's kind last before phase p, or PHASE__N. */
static enum phase train_before(const struct job *j, enum phase p)
{
	enum phase last = PHASE__N;

	for (int i = 0; i < j->kind->nphases && j->kind->phases[i] != p; i++)
		if (j->kind->phases[i] == PHASE_TRAIN1 || j->kind->phases[i] == PHASE_TRAIN2)
			last = j->kind->phases[i];
	return last;
}

const char *job_cache_tag(const struct job *j, enum step s, char *buf, size_t len)
{
	enum phase p = step_def(s)->phase;
	enum phase t;

	/* Only the student's answers at a checkpoint after a retrain: the
	 * engine may serve the new weights under the same URL and model name,
	 * and the cache would hand back the old model's answers. */
	if (!step_is_student(s) || !job_checkpoint_of(p) || j->js.train == TRAIN_NONE)
		return NULL;
	t = train_before(j, p);
	if (t == PHASE__N)
		return NULL;
	snprintf(buf, len, "job_%" PRId64 "/after_%s", j->id, phase_name(t));
	return buf;
}

/* ---- the report -------------------------------------------------------- */

struct ck_acc {
	struct job *j;
	int8_t *outcome;     /* by seq: -1 not graded here, 0 not correct, 1 correct */
	int32_t *topic;      /* by seq: index into topic_names, -1 not read yet */
	json_t *topic_names; /* array of strings */
	json_t *topics;      /* name -> {total, correct, ungraded} */
	json_t *rules;       /* the rule (or "judge") that decided each answer -> count */
	int64_t total, correct, wrong, ungraded, judged;
};

static void obj_add(json_t *o, const char *k, int64_t n)
{
	json_object_set_new(o, k, json_integer(json_integer_value(json_object_get(o, k)) + n));
}

static int32_t topic_of(struct ck_acc *a, int64_t seq)
{
	json_t *item, *v;
	const char *topic;
	size_t i;

	if (a->topic[seq] >= 0)
		return a->topic[seq];
	item = store_item_get(a->j->r->st, a->j->dataset, seq);
	topic = json_string_value(json_object_get(item, "topic"));
	if (!topic || !*topic)
		topic = "(none)";
	json_array_foreach(a->topic_names, i, v)
		if (strcmp(json_string_value(v), topic) == 0)
			break;
	if (i == json_array_size(a->topic_names))
		json_array_append_new(a->topic_names, json_string(topic));
	json_decref(item);
	a->topic[seq] = (int32_t)i;
	return a->topic[seq];
}

static int ck_one(void *ud, int64_t seq, json_t *content)
{
	struct ck_acc *a = ud;
	const char *verdict = json_string_value(json_object_get(content, "verdict"));
	const char *by = json_string_value(json_object_get(content, "graded_by"));
	const char *rule = json_string_value(json_object_get(content, "rule"));
	const char *topic;
	json_t *tp;

	if (!verdict || strcmp(verdict, "unclear") == 0 || seq < 0 || seq >= a->j->n_items)
		return 0; /* still waiting for its judge */
	topic = json_string_value(json_array_get(a->topic_names, (size_t)topic_of(a, seq)));
	tp = json_object_get(a->topics, topic);
	if (!tp) {
		tp = json_pack("{s:i, s:i, s:i}", "total", 0, "correct", 0, "ungraded", 0);
		json_object_set_new(a->topics, topic, tp);
	}
	a->total++;
	obj_add(tp, "total", 1);
	a->outcome[seq] = 0;
	if (strcmp(verdict, "correct") == 0) {
		a->correct++;
		a->outcome[seq] = 1;
		obj_add(tp, "correct", 1);
	} else if (strcmp(verdict, "ungraded") == 0) {
		a->ungraded++;
		obj_add(tp, "ungraded", 1);
	} else {
		a->wrong++;
	}
	if (by && strcmp(by, "judge") == 0)
		a->judged++;
	obj_add(a->rules, by && strcmp(by, "judge") == 0 ? "judge" : rule && *rule ? rule : "(none)",
		1);
	return 0;
}

static json_t *ci_json(double lo, double hi) { return json_pack("[f, f]", lo, hi); }

static json_t *change_json(const char *from, const struct evalstats_pairs *t)
{
	double d, lo, hi;

	evalstats_paired_diff(t, EVALSTATS_Z95, &d, &lo, &hi);
	return json_pack("{s:s, s:f, s:o, s:I, s:I, s:I}", "from", from, "delta", d, "ci95",
			 ci_json(lo, hi), "pairs",
			 (json_int_t)(t->both + t->base_only + t->new_only + t->neither), "gained",
			 (json_int_t)t->new_only, "lost", (json_int_t)t->base_only);
}

static void pairs_add(struct evalstats_pairs *t, int8_t base, int8_t now)
{
	if (base > 0 && now > 0)
		t->both++;
	else if (base > 0)
		t->base_only++;
	else if (now > 0)
		t->new_only++;
	else
		t->neither++;
}

/* What one row of the report is read from: a pipeline's checkpoint, or a
 * round of an eval job over several students. */
struct ck_src {
	const struct checkpoint_def *def;
	char name[100];
	char artifact[200];
	const char *student;
	int64_t failed;
};

/* The checkpoint's object; base (by seq, or NULL) is the baseline's
 * outcomes the change is measured from. */
static json_t *ck_json(struct ck_acc *a, const struct ck_src *src, const int8_t *base,
		       const char *base_name)
{
	struct job *j = a->j;
	const struct checkpoint_def *c = src->def;
	const char *key;
	json_t *tp, *o;
	double lo, hi;
	int64_t failed = src->failed;
	size_t ntopics = json_array_size(a->topic_names);
	struct evalstats_pairs all = { 0 }, *by = calloc(ntopics + 1, sizeof(*by));

	if (base && by)
		for (int64_t s = 0; s < j->n_items; s++)
			if (base[s] >= 0 && a->outcome[s] >= 0) {
				pairs_add(&all, base[s], a->outcome[s]);
				pairs_add(&by[a->topic[s]], base[s], a->outcome[s]);
			}
	json_object_foreach(a->topics, key, tp)
	{
		int64_t tot = json_integer_value(json_object_get(tp, "total"));
		int64_t cor = json_integer_value(json_object_get(tp, "correct"));
		size_t ti;
		json_t *v;

		evalstats_wilson(cor, tot, EVALSTATS_Z95, &lo, &hi);
		json_object_set_new(tp, "accuracy", json_real(tot > 0 ? (double)cor / (double)tot : 0));
		json_object_set_new(tp, "ci95", ci_json(lo, hi));
		if (!base || !by)
			continue;
		json_array_foreach(a->topic_names, ti, v)
			if (strcmp(json_string_value(v), key) == 0)
				json_object_set_new(tp, "change", change_json(base_name, &by[ti]));
	}
	/* accuracy counts an ungraded answer as not correct (as a benchmark
	 * would); accuracy_graded leaves them out. */
	evalstats_wilson(a->correct, a->total, EVALSTATS_Z95, &lo, &hi);
	o = json_pack("{s:s, s:s, s:s, s:f, s:f, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:O, s:O}",
		      "name", src->name, "phase", phase_name(c->phase), "student", src->student,
		      "accuracy",
		      a->total > 0 ? (double)a->correct / (double)a->total : 0.0, "accuracy_graded",
		      a->total - a->ungraded > 0 ? (double)a->correct / (double)(a->total - a->ungraded)
						 : 0.0,
		      "ci95", ci_json(lo, hi), "total", (json_int_t)a->total, "correct",
		      (json_int_t)a->correct, "wrong", (json_int_t)a->wrong, "ungraded",
		      (json_int_t)a->ungraded, "judged", (json_int_t)a->judged, "failed",
		      (json_int_t)failed, "by_topic", a->topics, "by_rule", a->rules);
	if (o && base && by)
		json_object_set_new(o, "change", change_json(base_name, &all));
	if (o && c->phase != PHASE_EVAL_BASE && j->kind->phases[0] == PHASE_EVAL_BASE)
		json_object_set_new(o, "same_model_as_baseline", json_boolean(j->js.train == TRAIN_NONE));
	free(by);
	return o;
}

/* The rows of j's report so far, into src (room for n); returns how many. */
static size_t ck_sources(const struct job *j, struct ck_src *src, size_t n)
{
	const struct checkpoint_def *ev = job_checkpoint_of(PHASE_EVAL);
	json_t *old = json_object_get(j->eval, "checkpoints");
	size_t k = 0;

	if (j->js.nstudents > 0) {
		/* an eval job over several students: one row per round so far;
		 * a finished round's rows were moved aside under "eval@STUDENT" */
		for (int r = 0; r <= j->round && k < n; r++, k++) {
			src[k].def = ev;
			snprintf(src[k].name, sizeof(src[k].name), "%s", j->js.students[r]);
			if (r < j->round)
				snprintf(src[k].artifact, sizeof(src[k].artifact), "%s@%s", ev->artifact,
					 j->js.students[r]);
			else
				snprintf(src[k].artifact, sizeof(src[k].artifact), "%s", ev->artifact);
			src[k].student = j->js.students[r];
			/* a finished round's failed count is in its report: its
			 * tasks are no longer the step's */
			src[k].failed = r < j->round ? (int64_t)json_integer_value(json_object_get(
							       json_array_get(old, (size_t)r), "failed"))
						     : j->st[ev->ask].failed + j->st[ev->judge].failed;
		}
		return k;
	}
	for (int i = 0; i <= j->phase_idx && i < j->kind->nphases && k < n; i++) {
		const struct checkpoint_def *c = job_checkpoint_of(j->kind->phases[i]);

		if (!c)
			continue;
		src[k].def = c;
		snprintf(src[k].name, sizeof(src[k].name), "%s",
			 j->js.kind == JOB_KIND_PIPELINE ? c->name : "eval");
		snprintf(src[k].artifact, sizeof(src[k].artifact), "%s", c->artifact);
		src[k].student = j->js.student;
		src[k].failed = j->st[c->ask].failed + j->st[c->judge].failed;
		k++;
	}
	return k;
}

void job_eval_report(struct job *j)
{
	struct ck_acc a = { .j = j };
	struct ck_src src[JOBSPEC_MAX_STUDENTS > NCHECKPOINTS ? JOBSPEC_MAX_STUDENTS : NCHECKPOINTS];
	int8_t *base = NULL;
	const char *base_name = NULL;
	json_t *list = json_array(), *last = NULL, *ev;
	size_t n = j->n_items > 0 ? (size_t)j->n_items : 1, nsrc;
	int rc = 0;

	a.topic = malloc(n * sizeof(*a.topic));
	a.outcome = malloc(n);
	a.topic_names = json_array();
	if (!a.topic || !a.outcome || !a.topic_names || !list) {
		rc = -1;
		goto out;
	}
	memset(a.topic, 0xff, n * sizeof(*a.topic));
	nsrc = ck_sources(j, src, sizeof(src) / sizeof(src[0]));
	/* Every checkpoint (or round) of the job up to the one that just ended;
	 * the first is the one the changes are measured from. */
	for (size_t i = 0; i < nsrc; i++) {
		json_t *o;

		memset(a.outcome, 0xff, n);
		a.topics = json_object();
		a.rules = json_object();
		a.total = a.correct = a.wrong = a.ungraded = a.judged = 0;
		store_artifacts_each(j->r->st, j->id, src[i].artifact, -1, 0, ck_one, &a);
		o = ck_json(&a, &src[i], base, base_name);
		json_decref(a.topics);
		json_decref(a.rules);
		if (!o)
			continue;
		json_array_append_new(list, o);
		last = o;
		if (!base && (src[i].def->phase == PHASE_EVAL_BASE || j->js.nstudents > 0)) {
			base = a.outcome;
			base_name = src[i].name;
			a.outcome = malloc(n);
			if (!a.outcome) {
				rc = -1;
				goto out;
			}
		}
	}
	if (!last)
		goto out;
	/* The latest checkpoint's numbers stay at the top (as before there
	 * were checkpoints), the table under "checkpoints". */
	ev = json_deep_copy(last);
	json_object_del(ev, "name");
	json_object_set_new(ev, "checkpoint", json_string(json_string_value(json_object_get(last, "name"))));
	json_object_set_new(ev, "interval", json_string("ci95: Wilson score interval of the accuracy; "
							"change.ci95: Newcombe's paired score interval "
							"(method 10) of the change over the same items"));
	if (json_array_size(list) > 1 && j->js.kind == JOB_KIND_PIPELINE && j->js.train == TRAIN_NONE)
		json_object_set_new(ev, "note",
				    json_string("train is none: the student was not retrained, so every "
						"checkpoint evaluates the same model"));
	json_object_set_new(ev, "train", json_string(train_mode_name(j->js.train)));
	json_object_set(ev, "checkpoints", list);
	json_decref(j->eval);
	j->eval = ev;
	job_log(j, "eval", "eval: accuracy %.1f%% (%" PRId64 " of %" PRId64 " correct; %" PRId64
			   " ungraded, %" PRId64 " graded by the judge) at checkpoint %s",
		100.0 * json_real_value(json_object_get(last, "accuracy")),
		(int64_t)json_integer_value(json_object_get(last, "correct")),
		(int64_t)json_integer_value(json_object_get(last, "total")),
		(int64_t)json_integer_value(json_object_get(last, "ungraded")),
		(int64_t)json_integer_value(json_object_get(last, "judged")),
		json_string_value(json_object_get(last, "name")));
	{
		json_t *ch = json_object_get(last, "change");

		if (ch)
			job_log(j, "eval", "eval (%s): change from %s %+.1f points, 95%% interval %+.1f to %+.1f",
				json_string_value(json_object_get(last, "name")),
				json_string_value(json_object_get(ch, "from")),
				100.0 * json_real_value(json_object_get(ch, "delta")),
				100.0 * json_real_value(json_array_get(json_object_get(ch, "ci95"), 0)),
				100.0 * json_real_value(json_array_get(json_object_get(ch, "ci95"), 1)));
	}
out:
	if (rc)
		log_error("job_%" PRId64 ": the eval report cannot be computed (out of memory)", j->id);
	json_decref(list);
	json_decref(a.topic_names);
	free(a.topic);
	free(a.outcome);
	free(base);
}

bool job_eval_next_round(struct job *j)
{
	const struct checkpoint_def *c = job_checkpoint_of(PHASE_EVAL);
	const char *steps[] = { step_name(c->ask), step_name(c->judge), NULL };
	struct store *st = j->r->st;
	int rc;

	if (j->js.nstudents < 2 || job_phase(j) != PHASE_EVAL || j->round + 1 >= j->js.nstudents)
		return false;
	/* One transaction with the runtime's round, so a crash never
	 * evaluates a student twice or archives a round twice. */
	rc = store_begin(st);
	if (rc == 0)
		rc = store_eval_round_archive(st, j->id, c->artifact, steps, j->js.students[j->round]);
	if (rc == 0) {
		j->round++;
		snprintf(j->js.student, sizeof(j->js.student), "%s", j->js.students[j->round]);
		j->seeding = true;
		j->seed_cursor = 0;
		job_save_runtime(j);
		rc = store_commit(st);
		if (rc) {
			j->round--;
			snprintf(j->js.student, sizeof(j->js.student), "%s", j->js.students[j->round]);
		}
	} else {
		store_rollback(st);
	}
	if (rc) {
		/* the next pump ends the phase again and retries */
		log_warn("job_%" PRId64 ": cannot move on to the next student: %s", j->id, strerror(-rc));
		runner_pump_soon(j->r);
		return true;
	}
	for (int i = 0; steps[i]; i++) {
		struct step_stat *ss = &j->st[step_parse(steps[i])];

		memset(ss, 0, sizeof(*ss));
		ss->cursor = -1;
	}
	job_log(j, "phase", "eval of %s done; evaluating %s (student %d of %d)",
		j->js.students[j->round - 1], j->js.student, j->round + 1, j->js.nstudents);
	job_phase_start(j);
	return true;
}
