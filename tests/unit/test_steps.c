/* layers: stages store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stages/jobspec.h"
#include "stages/prompts.h"
#include "stages/steps.h"

static json_t *prompts;

static int setup(void **state)
{
	char err[256];
	(void)state;
	return prompts_load_dir("conf/prompts", &prompts, err, sizeof(err));
}

static int teardown(void **state)
{
	(void)state;
	json_decref(prompts);
	return 0;
}

static json_t *mc_item(void)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s, s:s}", "id", "gi-1", "question",
			 "A 50-year-old man has dysphagia to solids and liquids. Most likely diagnosis?",
			 "options", "A", "Esophageal cancer", "B", "Achalasia", "C", "GERD", "D",
			 "Zenker diverticulum", "answer", "B", "topic", "esophagus");
}

static void judge(enum step s, json_t *item, json_t *prior, int attempt, const char *content,
		  struct step_outcome *out)
{
	struct step_ctx ctx = { .item = item, .prompts = prompts, .prior = prior, .attempt = attempt };
	json_t *j = content ? json_loads(content, 0, NULL) : NULL;

	step_reply_judge(s, &ctx, content, j, out);
	json_decref(j);
}

static void test_names(void **state)
{
	(void)state;
	for (int s = 0; s < STEP__N; s++)
		assert_int_equal(step_parse(step_name((enum step)s)), s);
	assert_int_equal(step_parse("nope"), -1);
	assert_true(step_is_student(STEP_ANSWER));
	assert_true(step_is_student(STEP_EVAL));
	assert_false(step_is_student(STEP_JUDGE));
}

static void test_screen(void **state)
{
	json_t *item = mc_item();
	struct step_outcome o;
	(void)state;

	judge(STEP_SCREEN, item, NULL, 0,
	      "{\"keep\":true,\"reason\":\"clear\",\"quality\":4,\"difficulty\":9,\"topic\":\"esophagus\"}", &o);
	assert_int_equal(o.result, STEP_DONE);
	assert_int_equal(o.next, STEP_EXPLAIN);
	assert_string_equal(o.artifact_kind, "verdict");
	assert_int_equal(json_integer_value(json_object_get(o.artifact, "difficulty")), 5);
	step_outcome_clear(&o);

	judge(STEP_SCREEN, item, NULL, 0, "{\"keep\":false,\"reason\":\"redundant with gi-2\"}", &o);
	assert_int_equal(o.result, STEP_DROPPED);
	assert_string_equal(o.reason, "redundant with gi-2");
	assert_int_equal(o.next, -1);
	step_outcome_clear(&o);

	judge(STEP_SCREEN, item, NULL, 0, "{\"reason\":\"x\"}", &o);
	assert_int_equal(o.result, STEP_RETRY);
	assert_string_equal(o.reason, "screening reply: \"keep\" is not a boolean");
	step_outcome_clear(&o);

	judge(STEP_SCREEN, item, NULL, STEP_MAX_ATTEMPTS - 1, NULL, &o);
	assert_int_equal(o.result, STEP_FAILED);
	assert_string_equal(o.reason, "screening reply has no JSON object (after 3 attempts)");
	step_outcome_clear(&o);
	json_decref(item);
}

static void test_explain(void **state)
{
	json_t *item = mc_item();
	struct step_outcome o;
	(void)state;

	judge(STEP_EXPLAIN, item, NULL, 0,
	      "Achalasia causes dysphagia to solids and liquids from the onset; cancer starts with "
	      "solids.\nFinal answer: B", &o);
	assert_int_equal(o.result, STEP_DONE);
	assert_string_equal(o.artifact_kind, "explanation");
	assert_true(json_is_true(json_object_get(o.artifact, "verified")));
	step_outcome_clear(&o);

	judge(STEP_EXPLAIN, item, NULL, 0, "It is reflux disease.\nFinal answer: C", &o);
	assert_int_equal(o.result, STEP_RETRY);
	assert_string_equal(o.reason, "explanation concludes C, which contradicts the gold answer B");
	assert_null(o.artifact);
	step_outcome_clear(&o);

	judge(STEP_EXPLAIN, item, NULL, 2, "It is reflux disease.\nFinal answer: C", &o);
	assert_int_equal(o.result, STEP_DROPPED);
	assert_non_null(strstr(o.reason, "after 3 attempts"));
	step_outcome_clear(&o);
	json_decref(item);
}

static void test_student_and_judge(void **state)
{
	json_t *item = mc_item(), *prior;
	struct step_outcome o;
	(void)state;

	judge(STEP_ANSWER, item, NULL, 0, "Dysphagia to both suggests a motility problem.\nAnswer: B", &o);
	assert_int_equal(o.result, STEP_DONE);
	assert_int_equal(o.next, -1);
	assert_string_equal(json_string_value(json_object_get(o.artifact, "verdict")), "correct");
	step_outcome_clear(&o);

	judge(STEP_ANSWER, item, NULL, 0, "Answer: A", &o);
	assert_int_equal(o.next, STEP_CORRECT);
	assert_string_equal(json_string_value(json_object_get(o.artifact, "verdict")), "wrong");
	step_outcome_clear(&o);

	judge(STEP_ANSWER, item, NULL, 0, "I am not sure; it depends on the manometry.", &o);
	assert_int_equal(o.next, STEP_JUDGE);
	step_outcome_clear(&o);

	judge(STEP_EVAL, item, NULL, 0, "I cannot tell.", &o);
	assert_string_equal(o.artifact_kind, "eval");
	assert_int_equal(o.next, STEP_EVAL_JUDGE);
	step_outcome_clear(&o);

	prior = json_pack("{s:s}", "reply", "maybe cancer, maybe achalasia; I'd go with cancer");
	judge(STEP_JUDGE, item, prior, 0, "{\"answer\":\"A\",\"correct\":true,\"reason\":\"said cancer\"}", &o);
	/* the judge names the choice; right or wrong is decided against the gold key */
	assert_string_equal(json_string_value(json_object_get(o.artifact, "verdict")), "wrong");
	assert_int_equal(o.next, STEP_CORRECT);
	assert_true(o.judged);
	step_outcome_clear(&o);

	judge(STEP_JUDGE, item, prior, 0, "{\"answer\":null,\"correct\":false}", &o);
	assert_true(o.ungraded);
	assert_int_equal(o.next, -1);
	step_outcome_clear(&o);

	judge(STEP_JUDGE, item, prior, 0, "{\"answer\":\"Q\",\"correct\":false}", &o);
	assert_int_equal(o.result, STEP_RETRY);
	step_outcome_clear(&o);
	json_decref(prior);
	json_decref(item);
}

static void test_correct(void **state)
{
	json_t *item = mc_item();
	struct step_outcome o;
	char *sft;
	(void)state;

	judge(STEP_CORRECT, item, NULL, 0,
	      "{\"missing_knowledge\":\"achalasia affects solids and liquids\",\"critique\":\"you "
	      "assumed cancer\",\"reasoning\":\"Dysphagia to both from the start points to a motility "
	      "disorder.\",\"final_answer\":\"B\"}", &o);
	assert_int_equal(o.result, STEP_DONE);
	assert_string_equal(o.artifact_kind, "chain");
	sft = step_sft_output("chain", o.artifact, item);
	assert_non_null(strstr(sft, "Final answer: B"));
	free(sft);
	step_outcome_clear(&o);

	judge(STEP_CORRECT, item, NULL, 0,
	      "{\"missing_knowledge\":\"x\",\"critique\":\"y\",\"reasoning\":\"z\",\"final_answer\":\"C\"}", &o);
	assert_int_equal(o.result, STEP_RETRY);
	assert_string_equal(o.reason, "corrective chain ends in C, not the gold answer B");
	step_outcome_clear(&o);

	judge(STEP_CORRECT, item, NULL, 0, "{\"missing_knowledge\":\"x\"}", &o);
	assert_int_equal(o.result, STEP_RETRY);
	assert_string_equal(o.reason, "correction reply: \"critique\" is missing or empty");
	step_outcome_clear(&o);
	json_decref(item);
}

static void test_request(void **state)
{
	json_t *item = mc_item();
	struct step_ctx ctx = { .item = item, .prompts = prompts };
	struct step_request req;
	char err[256];
	const char *user;
	(void)state;

	assert_int_equal(step_request_build(STEP_SCREEN, &ctx, &req, err, sizeof(err)), 0);
	assert_true(req.expect_json);
	assert_non_null(req.schema);
	user = json_string_value(json_object_get(json_array_get(req.messages, 1), "content"));
	assert_memory_equal(user, "### Task: screen", 16);
	assert_non_null(strstr(user, "Gold answer: B"));
	step_request_clear(&req);

	assert_int_equal(step_request_build(STEP_ANSWER, &ctx, &req, err, sizeof(err)), 0);
	assert_false(req.expect_json);
	user = json_string_value(json_object_get(json_array_get(req.messages, 1), "content"));
	assert_null(strstr(user, "Gold answer"));
	step_request_clear(&req);

	ctx.attempt = 1;
	ctx.last_problem = "explanation concludes C";
	assert_int_equal(step_request_build(STEP_EXPLAIN, &ctx, &req, err, sizeof(err)), 0);
	user = json_string_value(json_object_get(json_array_get(req.messages, 1), "content"));
	assert_memory_equal(user, "### Task: explain", 17);
	assert_non_null(strstr(user, "attempt 2"));
	assert_non_null(strstr(user, "explanation concludes C"));
	step_request_clear(&req);

	/* images become content parts after the text; a path is never sent */
	json_object_set_new(item, "images", json_pack("[s,s]", "data:image/png;base64,iVBORw0KGgo=",
						      "/etc/passwd"));
	ctx.attempt = 0;
	ctx.last_problem = NULL;
	assert_int_equal(step_request_build(STEP_ANSWER, &ctx, &req, err, sizeof(err)), 0);
	{
		json_t *parts = json_object_get(json_array_get(req.messages, 1), "content");

		assert_true(json_is_array(parts));
		assert_int_equal(json_array_size(parts), 2);
		assert_string_equal(json_string_value(json_object_get(json_array_get(parts, 0), "type")),
				    "text");
		assert_string_equal(json_string_value(json_object_get(
					    json_object_get(json_array_get(parts, 1), "image_url"), "url")),
				    "data:image/png;base64,iVBORw0KGgo=");
	}
	step_request_clear(&req);
	json_decref(item);
}

static void spec_err(const char *text, const char *field, const char *msg)
{
	json_t *spec = json_loads(text, 0, NULL);
	struct jobspec js;
	struct mt_err e = { 0 };

	assert_non_null(spec);
	assert_int_equal(jobspec_parse(spec, &js, &e), -EINVAL);
	assert_string_equal(e.code, "invalid_spec"); /* -EINVAL: 422 at the API */
	assert_string_equal(e.field, field);
	assert_string_equal(e.message, msg);
	json_decref(spec);
}

static void test_jobspec(void **state)
{
	json_t *spec = json_loads("{\"dataset\":\"ds_1\",\"kind\":\"pipeline\",\"teacher\":\"gpt\","
				  "\"student\":\"local\",\"seed\":7,\"budget_usd\":20,"
				  "\"selection\":{\"strategy\":\"teacher_screen\",\"budget\":0.1}}", 0, NULL);
	struct jobspec js;
	struct mt_err e = { 0 };
	json_t *norm;
	(void)state;

	assert_int_equal(jobspec_parse(spec, &js, &e), 0);
	assert_string_equal(js.teacher, "teacher.gpt");
	assert_string_equal(js.student, "student.local");
	assert_true(js.eval_fraction > 0.099 && js.eval_fraction < 0.101);
	assert_string_equal(js.name, "ds_1-pipeline");
	norm = jobspec_to_json(&js);
	json_decref(spec);
	/* the normalized spec parses back to the same thing */
	assert_int_equal(jobspec_parse(norm, &js, &e), 0);
	assert_string_equal(js.teacher, "teacher.gpt");
	json_decref(norm);
	/* Regression (found by the fuzzer, tests/fuzz/regress/jobspec/): a name
	 * that fits only without its "teacher." prefix was accepted, and the
	 * stored normalized spec was then refused when the job was reloaded. */
	{
		char text[512], name[100];

		memset(name, 'n', sizeof(name));
		name[87] = '\0'; /* the longest: "teacher." + 87 + NUL = 96 */
		snprintf(text, sizeof(text),
			 "{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"%s\"}", name);
		spec = json_loads(text, 0, NULL);
		assert_int_equal(jobspec_parse(spec, &js, &e), 0);
		json_decref(spec);
		norm = jobspec_to_json(&js);
		assert_int_equal(jobspec_parse(norm, &js, &e), 0);
		assert_int_equal(strlen(js.teacher), 95);
		json_decref(norm);
		name[87] = 'n';
		name[88] = '\0';
		snprintf(text, sizeof(text),
			 "{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"%s\"}", name);
		spec_err(text, "teacher", "teacher is longer than 87 bytes");
	}

	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"colour\":1}", "colour",
		 "unknown key \"colour\" in the job spec");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage9\",\"teacher\":\"t\"}", "kind",
		 "kind must be pipeline, stage1, stage2 or eval, not \"stage9\"");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\"}", "teacher", "teacher is required");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage2\",\"teacher\":\"t\"}", "student",
		 "student is required");
	spec_err("{\"kind\":\"stage1\",\"teacher\":\"t\"}", "dataset", "dataset is required");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"eval_fraction\":1.5}",
		 "eval_fraction", "eval_fraction must be between 0 and 1");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"max_items\":0}",
		 "max_items", "max_items must be a positive integer or null");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"train\":\"later\"}",
		 "train", "train must be hook, manual or none");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"selection\":{\"strategy\":\"diq\"}}",
		 "selection.strategy",
		 "selection strategy diq is not available in this version; use teacher_screen or none");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":5}", "teacher",
		 "teacher must be a string");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),	    cmocka_unit_test(test_screen),
		cmocka_unit_test(test_explain),	    cmocka_unit_test(test_student_and_judge),
		cmocka_unit_test(test_correct),	    cmocka_unit_test(test_request),
		cmocka_unit_test(test_jobspec),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
