/* layers: stages common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "stages/prompts.h"

#define PROMPT_DIR "conf/prompts"

static json_t *mc_item(void)
{
	return json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:s},s:s,s:s,s:s}", "id", "mq-1", "question",
	                 "A 45-year-old man has melena and epigastric pain relieved by food. "
	                 "Which test comes first?",
	                 "options", "A", "Upper GI endoscopy", "B", "Colonoscopy", "C",
	                 "Barium swallow", "D", "CT abdomen", "answer", "A", "explanation",
	                 "Endoscopy is diagnostic and therapeutic.", "topic", "gastroenterology");
}

static json_t *open_item(void)
{
	return json_pack("{s:s,s:s,s:s}", "id", "identity_0", "question",
	                 "腹部闭合性损伤时，不支持腹腔内脏损伤诊断的是", "answer", "肠鸣音活跃");
}

static json_t *load(void)
{
	json_t *snap = NULL;
	char err[512] = "";
	int rc = prompts_load_dir(PROMPT_DIR, &snap, err, sizeof err);

	if (rc)
		fail_msg("prompts_load_dir: %d %s", rc, err);
	return snap;
}

static void test_load_real(void **state)
{
	json_t *snap = load();
	char err[256];

	(void)state;
	for (size_t i = 0; prompts_required[i]; i++) {
		json_t *t = json_object_get(snap, prompts_required[i]);

		assert_non_null(t);
		assert_int_equal(json_integer_value(json_object_get(t, "version")), 1);
		assert_true(strlen(json_string_value(json_object_get(t, "system"))) > 50);
		assert_true(strlen(json_string_value(json_object_get(t, "user"))) > 100);
	}
	/* a snapshot survives a trip through the store as JSON text */
	{
		char *text = json_dumps(snap, JSON_COMPACT);
		json_t *back = json_loads(text, 0, NULL);

		assert_int_equal(prompts_check(back, err, sizeof err), 0);
		assert_true(json_equal(back, snap));
		json_decref(back);
		free(text);
	}
	json_decref(snap);
}

static const char *content(json_t *msgs, size_t i)
{
	return json_string_value(json_object_get(json_array_get(msgs, i), "content"));
}

/* Common checks on one rendering: roles, the task line, nothing left
 * unrendered, no runs of blank lines. */
static void check_render(json_t *msgs, const char *name)
{
	const char *sys, *user;
	char task[64];

	assert_true(json_is_array(msgs));
	assert_int_equal(json_array_size(msgs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "system");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "role")), "user");
	sys = content(msgs, 0);
	user = content(msgs, 1);
	snprintf(task, sizeof task, "### Task: %s\n", name);
	assert_memory_equal(user, task, strlen(task));
	assert_null(strstr(user, "{question}"));
	assert_null(strstr(user, "{gold"));
	assert_null(strstr(user, "{#"));
	assert_null(strstr(user, "{/"));
	assert_null(strstr(sys, "{#"));
	assert_null(strstr(user, "\n\n\n"));
	assert_true(user[strlen(user) - 1] != '\n');
	assert_non_null(strstr(user, "\nQuestion:\n"));
}

static void test_render_mc(void **state)
{
	json_t *snap = load(), *item = mc_item();
	json_t *vars = json_pack("{s:s}", "student_reply", "I think colonoscopy.\nAnswer: B");
	char err[256] = "";

	(void)state;
	for (size_t i = 0; prompts_required[i]; i++) {
		const char *name = prompts_required[i];
		json_t *msgs = NULL;
		const char *user;
		int uses_reply = strcmp(name, "judge") == 0 || strcmp(name, "correct") == 0;

		assert_int_equal(prompts_render(snap, name, item, uses_reply ? vars : NULL, &msgs, err,
		                                sizeof err),
		                 0);
		check_render(msgs, name);
		user = content(msgs, 1);
		assert_non_null(strstr(user, "\nQuestion:\nA 45-year-old man has melena"));
		assert_non_null(strstr(user, "\nOptions:\nA. Upper GI endoscopy\nB. Colonoscopy\n"
		                             "C. Barium swallow\nD. CT abdomen\n"));
		if (strcmp(name, "answer") == 0) {
			assert_null(strstr(user, "Gold answer"));
			assert_null(strstr(user, "Endoscopy is diagnostic")); /* no rationale */
			assert_non_null(strstr(user, "Answer: X"));
		} else {
			assert_non_null(strstr(user, "\nGold answer: A\n"));
			assert_non_null(strstr(user, "\nGold answer text: Upper GI endoscopy"));
		}
		if (uses_reply)
			assert_non_null(strstr(user, "<<<\nI think colonoscopy.\nAnswer: B\n>>>"));
		if (strcmp(name, "explain") == 0) {
			assert_non_null(strstr(user, "Distractors"));
			assert_non_null(strstr(user, "\nFinal answer: A"));
			assert_non_null(strstr(user, "Endoscopy is diagnostic and therapeutic."));
		}
		if (strcmp(name, "screen") == 0)
			assert_non_null(strstr(user, "Dataset topic label: gastroenterology"));
		json_decref(msgs);
	}
	json_decref(vars);
	json_decref(item);
	json_decref(snap);
}

static void test_render_open(void **state)
{
	json_t *snap = load(), *item = open_item();
	json_t *vars = json_pack("{s:s,s:s}", "student_reply", "答案：腹膜刺激征", "explanation",
	                         "肠鸣音活跃提示肠道功能良好。");
	char err[256] = "";

	(void)state;
	for (size_t i = 0; prompts_required[i]; i++) {
		const char *name = prompts_required[i];
		json_t *msgs = NULL;
		const char *user;
		int uses_reply = strcmp(name, "judge") == 0 || strcmp(name, "correct") == 0;

		assert_int_equal(prompts_render(snap, name, item, uses_reply ? vars : NULL, &msgs, err,
		                                sizeof err),
		                 0);
		check_render(msgs, name);
		user = content(msgs, 1);
		assert_non_null(strstr(user, "\nQuestion:\n腹部闭合性损伤时"));
		assert_null(strstr(user, "Options:"));
		assert_null(strstr(user, "Gold answer text:"));
		assert_null(strstr(user, "Dataset topic label"));
		assert_null(strstr(user, "Context:"));
		if (strcmp(name, "answer") == 0) {
			assert_null(strstr(user, "Gold answer"));
			assert_null(strstr(user, "肠鸣音活跃"));
		} else {
			assert_non_null(strstr(user, "\nGold answer: 肠鸣音活跃\n"));
		}
		if (strcmp(name, "correct") == 0)
			assert_non_null(strstr(user, "肠鸣音活跃提示肠道功能良好。"));
		json_decref(msgs);
	}
	json_decref(vars);
	json_decref(item);
	json_decref(snap);
}

static void test_render_context(void **state)
{
	json_t *snap = load(), *msgs = NULL;
	json_t *item = json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:s,s:[s,s]}", "id", "21645374", "question",
	                         "Do mitochondria play a role in remodelling lace plant leaves?",
	                         "options", "yes", "yes", "no", "no", "maybe", "maybe", "answer", "yes",
	                         "context", "Programmed cell death (PCD) is regulated.",
	                         "Mitochondrial dynamics were delineated.");
	char err[256] = "";

	(void)state;
	assert_int_equal(prompts_render(snap, "answer", item, NULL, &msgs, err, sizeof err), 0);
	check_render(msgs, "answer");
	assert_non_null(strstr(content(msgs, 1), "\nContext:\nProgrammed cell death (PCD) is regulated."
	                                         "\n\nMitochondrial dynamics were delineated.\n"));
	assert_non_null(strstr(content(msgs, 1), "\nOptions:\nyes. yes\nno. no\nmaybe. maybe\n"));
	json_decref(msgs);
	json_decref(item);
	json_decref(snap);
}

static void test_render_errors(void **state)
{
	json_t *snap = load(), *item = mc_item(), *msgs = NULL;
	json_t *bad_vars = json_pack("{s:s}", "question", "override");
	json_t *int_var = json_pack("{s:i}", "student_reply", 3);
	json_t *no_q = json_pack("{s:s}", "answer", "A");
	json_t *big_vars;
	char *big;
	char err[256];

	(void)state;
	err[0] = '\0';
	assert_int_equal(prompts_render(snap, "judge", item, NULL, &msgs, err, sizeof err), -EINVAL);
	assert_null(msgs);
	assert_non_null(strstr(err, "judge"));
	assert_non_null(strstr(err, "{student_reply}"));
	assert_int_equal(prompts_render(snap, "nope", item, NULL, &msgs, err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "nope"));
	assert_int_equal(prompts_render(snap, "answer", item, bad_vars, &msgs, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "question"));
	assert_int_equal(prompts_render(snap, "judge", item, int_var, &msgs, err, sizeof err), -EINVAL);
	assert_int_equal(prompts_render(snap, "answer", no_q, NULL, &msgs, err, sizeof err), -EINVAL);
	json_object_set_new(item, "answer", json_string("Z"));
	assert_int_equal(prompts_render(snap, "answer", item, NULL, &msgs, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "not one of its options"));
	json_object_set_new(item, "answer", json_string("A"));
	/* the rendered size is capped */
	big = malloc(PROMPTS_RENDER_MAX + 16);
	assert_non_null(big);
	memset(big, 'x', PROMPTS_RENDER_MAX + 15);
	big[PROMPTS_RENDER_MAX + 15] = '\0';
	big_vars = json_pack("{s:s}", "student_reply", big);
	free(big);
	assert_int_equal(prompts_render(snap, "judge", item, big_vars, &msgs, err, sizeof err), -E2BIG);
	assert_non_null(strstr(err, "judge"));
	assert_null(msgs);
	json_decref(big_vars);
	/* a value that got in unchecked with invalid UTF-8, after a long ASCII
	 * run and at the very end: refused, never sent */
	big_vars = json_pack("{s:o}", "student_reply",
			     json_stringn_nocheck("A long enough ASCII reply first, then \xc3(", 40));
	assert_int_equal(prompts_render(snap, "judge", item, big_vars, &msgs, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "UTF-8"));
	assert_null(msgs);
	json_decref(big_vars);
	big_vars = json_pack("{s:o}", "student_reply", json_stringn_nocheck("Answer: B \xed\xa0\x80", 13));
	assert_int_equal(prompts_render(snap, "judge", item, big_vars, &msgs, err, sizeof err), -EINVAL);
	json_decref(big_vars);
	json_decref(bad_vars);
	json_decref(int_var);
	json_decref(no_q);
	json_decref(item);
	json_decref(snap);
}

/* A directory holding the five required templates (minimal but valid),
 * with one of them replaced by bad_text when bad_name is set. */
static const char *const minimal[][2] = {
	{ "screen", "# medthink prompt screen v1\nS\n---user---\n### Task: screen\nQuestion:\n{question}\nGold answer: {gold}\n" },
	{ "explain", "# medthink prompt explain v1\nS\n---user---\n### Task: explain\nQuestion:\n{question}\nGold answer: {gold}\n" },
	{ "answer", "# medthink prompt answer v1\nS\n---user---\n### Task: answer\nQuestion:\n{question}\n{#mc}\nOptions:\n{options}\n{/mc}\n" },
	{ "judge", "# medthink prompt judge v1\nS\n---user---\n### Task: judge\nQuestion:\n{question}\nGold answer: {gold}\n{student_reply}\n" },
	{ "correct", "# medthink prompt correct v1\nS\n---user---\n### Task: correct\nQuestion:\n{question}\nGold answer: {gold}\n{student_reply}\n" },
};

static int load_with(const char *bad_name, const char *bad_text, char *err, size_t errlen)
{
	char dir[] = "/tmp/mt-prompts-XXXXXX";
	char path[128];
	json_t *snap = NULL;
	int rc;

	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < sizeof minimal / sizeof minimal[0]; i++) {
		const char *text = minimal[i][1];
		FILE *f;

		if (bad_name && strcmp(bad_name, minimal[i][0]) == 0)
			text = bad_text;
		if (!text)
			continue; /* left out */
		snprintf(path, sizeof path, "%s/%s.txt", dir, minimal[i][0]);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(text, f);
		fclose(f);
	}
	if (bad_name && !strstr("screen explain answer judge correct", bad_name)) {
		FILE *f;

		snprintf(path, sizeof path, "%s/%s.txt", dir, bad_name);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(bad_text, f);
		fclose(f);
	}
	err[0] = '\0';
	rc = prompts_load_dir(dir, &snap, err, errlen);
	json_decref(snap);
	for (size_t i = 0; i < sizeof minimal / sizeof minimal[0]; i++) {
		snprintf(path, sizeof path, "%s/%s.txt", dir, minimal[i][0]);
		unlink(path);
	}
	if (bad_name) {
		snprintf(path, sizeof path, "%s/%s.txt", dir, bad_name);
		unlink(path);
	}
	rmdir(dir);
	return rc;
}

static void expect_bad(const char *name, const char *text, int want, const char *needle1,
                       const char *needle2)
{
	char err[512];
	int rc = load_with(name, text, err, sizeof err);

	if (rc != want || (needle1 && !strstr(err, needle1)) || (needle2 && !strstr(err, needle2)))
		fail_msg("template %s: rc %d (want %d), err \"%s\"", name, rc, want, err);
}

/* A render walks its template once (the check's walk is its own), and a
 * faulty template gives the check's error first, as when the check ran
 * in full before the render: before the item's faults and before a
 * placeholder with no value that comes earlier in the text. */
static void test_render_checks_first(void **state)
{
	json_t *snap = json_object(), *item = mc_item(), *no_q = json_pack("{s:s}", "answer", "A");
	json_t *msgs = NULL;
	char err[256];

	(void)state;
	json_object_set_new(snap, "explain",
			    json_pack("{s:i,s:s,s:s}", "version", 1, "system", "Be brief.", "user",
				      "### Task: explain\n{student_reply}\nGold answer: {gold}\n{bogus}"));
	json_object_set_new(snap, "screen",
			    json_pack("{s:i,s:s,s:s}", "version", 1, "system", "{#mc}open", "user",
				      "### Task: screen\nGold answer: {gold}"));
	json_object_set_new(snap, "judge",
			    json_pack("{s:i,s:s,s:s}", "version", 1, "system", "S", "user",
				      "### Task: judge\n{question}\n{student_reply}"));
	json_object_set_new(snap, "correct",
			    json_pack("{s:i,s:s,s:s}", "version", 1, "system", "S", "user",
				      "### Task: correct\n{question}\nGold answer: {gold}\n{student_reply}"));
	assert_int_equal(prompts_render(snap, "explain", item, NULL, &msgs, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "unknown placeholder {bogus}"));
	assert_int_equal(prompts_render(snap, "explain", no_q, NULL, &msgs, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "unknown placeholder {bogus}"));
	assert_int_equal(prompts_render(snap, "screen", no_q, NULL, &msgs, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "never closed"));
	/* the walk's fault comes before the missing gold line, as in the check */
	json_object_set_new(json_object_get(snap, "judge"), "user",
			    json_string("### Task: judge\n{#mc}\n{question}"));
	assert_int_equal(prompts_render(snap, "judge", item, NULL, &msgs, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "never closed"));
	/* a sound template: the render's own errors */
	assert_int_equal(prompts_render(snap, "correct", item, NULL, &msgs, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "{student_reply} has no value"));
	assert_int_equal(prompts_render(snap, "correct", no_q, NULL, &msgs, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "needs \"question\""));
	assert_null(msgs);
	json_decref(no_q);
	json_decref(item);
	json_decref(snap);
}

/* The render's buffers are kept between renders: the same text after a
 * render that grew them past what is kept and one that failed. */
static void test_render_reuse(void **state)
{
	json_t *snap = load(), *item = mc_item(), *msgs = NULL, *big_vars;
	char err[256], *first, *again, *big;
	size_t n = 200000;

	(void)state;
	assert_int_equal(prompts_render(snap, "explain", item, NULL, &msgs, err, sizeof err), 0);
	first = json_dumps(msgs, JSON_COMPACT);
	json_decref(msgs);
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'y', n);
	big[n] = '\0';
	big_vars = json_pack("{s:s}", "student_reply", big);
	free(big);
	assert_int_equal(prompts_render(snap, "judge", item, big_vars, &msgs, err, sizeof err), 0);
	assert_true(json_string_length(json_object_get(json_array_get(msgs, 1), "content")) > n);
	json_decref(msgs);
	json_decref(big_vars);
	assert_int_equal(prompts_render(snap, "judge", item, NULL, &msgs, err, sizeof err), -EINVAL);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(prompts_render(snap, "explain", item, NULL, &msgs, err, sizeof err), 0);
		again = json_dumps(msgs, JSON_COMPACT);
		assert_string_equal(first, again);
		free(again);
		json_decref(msgs);
	}
	free(first);
	json_decref(item);
	json_decref(snap);
}

/* A render from a template compiled by an earlier render (kept by the
 * thread) gives what the first render of that template gives: the same
 * messages, or the same error in the same words. The reference renders run
 * on a new thread each, which has compiled nothing. */
struct ref_render {
	json_t *snap, *item, *vars;
	const char *name;
	int rc;
	char *text; /* the messages' compact text */
	char err[256];
};

static void *ref_render_main(void *arg)
{
	struct ref_render *r = arg;
	json_t *msgs = NULL;

	r->err[0] = '\0';
	r->rc = prompts_render(r->snap, r->name, r->item, r->vars, &msgs, r->err, sizeof r->err);
	r->text = msgs ? json_dumps(msgs, JSON_COMPACT) : NULL;
	json_decref(msgs);
	return NULL;
}

static void same_as_first(json_t *snap, const char *name, json_t *item, json_t *vars)
{
	struct ref_render r = { .snap = snap, .item = item, .vars = vars, .name = name };
	json_t *msgs = NULL;
	pthread_t th;
	char err[256] = "";
	char *text;
	int rc;

	assert_int_equal(pthread_create(&th, NULL, ref_render_main, &r), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	rc = prompts_render(snap, name, item, vars, &msgs, err, sizeof err);
	text = msgs ? json_dumps(msgs, JSON_COMPACT) : NULL;
	if (rc != r.rc || (rc && strcmp(err, r.err) != 0) ||
	    (!text) != (!r.text) || (text && strcmp(text, r.text) != 0))
		fail_msg("template %s: rc %d \"%s\" %s, first render rc %d \"%s\" %s", name, rc, err,
			 text ? text : "-", r.rc, r.err, r.text ? r.text : "-");
	free(text);
	free(r.text);
	json_decref(msgs);
}

static void test_render_compiled(void **state)
{
	json_t *snap = load(), *other = json_object(), *msgs = NULL;
	json_t *items[6], *vars[3];
	const char *name;
	json_t *t;
	char err[256];

	(void)state;
	items[0] = mc_item();
	items[1] = open_item();
	items[2] = json_pack("{s:s,s:s,s:[s,s],s:s}", "question", "Q?", "answer", "yes", "contexts",
			     "first context", "second context", "topic", "");
	items[3] = json_pack("{s:s,s:s,s:s,s:{s:s,s:s}}", "question", "Q2 {x} }{", "answer", "B",
			     "context", "ctx\n\n\n  with blank lines  ", "options", "A", "one", "B",
			     "two");
	items[4] = json_pack("{s:s}", "answer", "A"); /* no question: an error */
	items[5] = mc_item();
	json_object_set_new(items[5], "answer", json_string("Z")); /* not an option */
	vars[0] = NULL;
	vars[1] = json_pack("{s:s}", "student_reply", "I think B.\n\nFinal answer: B");
	vars[2] = json_pack("{s:s,s:s}", "student_reply", "", "topic", "override");
	/* sections inline and alone (with spaces, CR), nested, literal braces,
	 * a missing line end, a value at the very start */
	json_object_set_new(other, "explain",
			    json_pack("{s:i,s:s,s:s}", "version", 2, "system",
				      "{question} {#mc}MC{/mc}{#open}OPEN{/open} {not a tag} {",
				      "user",
				      "### Task: explain\n  {#context}  \r\nC: {context}\n{/context}\n"
				      "{#mc}\n{#topic}\nT={topic}\n{/topic}\n{options}\n{/mc}\n"
				      "Gold answer: {gold}\n{#student_reply}R={student_reply}{/student_reply}"
				      "\n\n\n\nend {gold_text}   \t"));
	json_object_set_new(other, "r1",
			    json_pack("{s:i,s:s,s:s}", "version", 1, "system", "", "user",
				      "{problem}\n\n\n  kept as written  \n"));
	json_object_set_new(other, "judge",
			    json_pack("{s:i,s:s,s:s}", "version", 1, "system", "S", "user",
				      "### Task: judge\n{question}\nGold answer: {gold}\n{student_reply}"));
	for (int pass = 0; pass < 2; pass++) {
		json_t *sn = pass ? other : snap;

		json_object_foreach(sn, name, t) {
			/* compiled by the first render, then every item and vars */
			if (prompts_render(sn, name, items[0], vars[1], &msgs, err, sizeof err))
				fail_msg("template %s: %s", name, err);
			json_decref(msgs);
			msgs = NULL;
			for (int i = 0; i < 6; i++)
				for (int v = 0; v < 3; v++)
					same_as_first(sn, name, items[i], vars[v]);
		}
	}
	/* the same name with other text is not the kept one */
	same_as_first(snap, "explain", items[0], NULL);
	same_as_first(other, "explain", items[0], NULL);
	json_object_set_new(json_object_get(other, "judge"), "user",
			    json_string("### Task: judge\n{question}!\nGold answer: {gold}\n{student_reply}"));
	same_as_first(other, "judge", items[0], vars[1]);
	assert_int_equal(prompts_render(other, "judge", items[0], vars[1], &msgs, err, sizeof err), 0);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
			       "?!"));
	json_decref(msgs);
	for (int i = 0; i < 6; i++)
		json_decref(items[i]);
	json_decref(vars[1]);
	json_decref(vars[2]);
	json_decref(other);
	json_decref(snap);
}

static void test_bad_templates(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(load_with(NULL, NULL, err, sizeof err), 0);
	expect_bad("judge",
	           "# medthink prompt judge v1\nS\n---user---\n### Task: judge\n{question}\n"
	           "Gold answer: {gold}\n{studnet_reply}\n",
	           -EINVAL, "template judge", "{studnet_reply}");
	expect_bad("screen", "# medthink prompt screen v1\nS\n### Task: screen\n", -EINVAL, "---user---",
	           "screen.txt");
	expect_bad("screen", "# prompt screen\nS\n---user---\n### Task: screen\nGold answer: {gold}\n",
	           -EINVAL, "screen.txt:1", NULL);
	expect_bad("screen", "# medthink prompt explain v1\nS\n---user---\n### Task: screen\n", -EINVAL,
	           "explain", "screen.txt");
	expect_bad("screen", "# medthink prompt screen v1\nS\n---user---\nQuestion: {question}\n", -EINVAL,
	           "### Task: screen", NULL);
	expect_bad("answer",
	           "# medthink prompt answer v1\nS\n---user---\n### Task: answer\n{question}\n"
	           "Gold answer: {gold}\n",
	           -EINVAL, "template answer", "gold");
	expect_bad("explain", "# medthink prompt explain v1\nS\n---user---\n### Task: explain\n{question}\n",
	           -EINVAL, "Gold answer: {gold}", NULL);
	expect_bad("answer",
	           "# medthink prompt answer v1\nS\n---user---\n### Task: answer\n{#mc}\n{options}\n",
	           -EINVAL, "never closed", NULL);
	expect_bad("answer",
	           "# medthink prompt answer v1\nS\n---user---\n### Task: answer\n{#mcq}x{/mcq}\n",
	           -EINVAL, "unknown section", NULL);
	expect_bad("answer", NULL, -ENOENT, "answer.txt is missing", NULL);
	/* an extra template is loaded and checked like the others */
	expect_bad("extra", "# medthink prompt extra v2\nS\n---user---\n### Task: extra\n{nope}\n",
	           -EINVAL, "{nope}", NULL);
	assert_int_equal(load_with("extra", "# medthink prompt extra v2\n---user---\n### Task: extra\n"
	                                    "{\"json\": {\"literal\": 1}} {question}\n",
	                           err, sizeof err),
	                 0);
	/* a missing directory */
	{
		json_t *snap = NULL;

		assert_int_equal(prompts_load_dir("/nonexistent/prompts", &snap, err, sizeof err), -ENOENT);
		assert_null(snap);
		assert_non_null(strstr(err, "/nonexistent/prompts"));
	}
}

/* No prompts_dir: the templates compiled in, the same as conf/prompts. */
static void test_load_builtin(void **state)
{
	json_t *dir = load(), *builtin = NULL;
	char err[512] = "";

	(void)state;
	assert_int_equal(prompts_load_dir(NULL, &builtin, err, sizeof err), 0);
	assert_non_null(builtin);
	assert_int_equal(prompts_check(builtin, err, sizeof err), 0);
	assert_true(json_equal(builtin, dir));
	json_decref(builtin);
	json_decref(dir);
	assert_int_equal(prompts_load_dir(NULL, NULL, err, sizeof err), -EINVAL);
}

static void test_options_text(void **state)
{
	json_t *o = json_pack("{s:s,s:s}", "A", "甲", "B", "Two words");
	char *s = prompts_options_text(o);

	(void)state;
	assert_string_equal(s, "A. 甲\nB. Two words");
	free(s);
	assert_null(prompts_options_text(NULL));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_real),
		cmocka_unit_test(test_render_mc),
		cmocka_unit_test(test_render_open),
		cmocka_unit_test(test_render_context),
		cmocka_unit_test(test_render_errors),
		cmocka_unit_test(test_render_checks_first),
		cmocka_unit_test(test_render_reuse),
		cmocka_unit_test(test_render_compiled),
		cmocka_unit_test(test_bad_templates),
		cmocka_unit_test(test_load_builtin),
		cmocka_unit_test(test_options_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
