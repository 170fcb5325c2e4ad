/* layers: stages store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "stages/jobspec.h"
#include "stages/prompts.h"
#include "stages/steps.h"
#include "tests/unit/medthink_data.h"

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

/* A student reply cut by the token limit with no answer yet is re-asked with
 * a larger limit, then recorded ungraded (no judge); an explicit answer
 * before the cut still counts. */
static void test_student_cut(void **state)
{
	json_t *item = mc_item();
	struct step_outcome o;
	struct step_request req = { 0 };
	char err[256];
	const char *cut = "<think>Dysphagia to both solids and liquids from the start suggests a motility "
			  "disorder. Option A, esophageal cancer, usually";
	(void)state;

	for (int attempt = 0; attempt < STEP_MAX_ATTEMPTS; attempt++) {
		struct step_ctx ctx = { .item = item, .prompts = prompts, .attempt = attempt,
					.length_cut = true };

		step_reply_judge(STEP_ANSWER, &ctx, cut, NULL, &o);
		if (attempt + 1 < STEP_MAX_ATTEMPTS) {
			assert_int_equal(o.result, STEP_RETRY);
			assert_non_null(strstr(o.reason, STEP_CUT_REASON));
		} else {
			assert_int_equal(o.result, STEP_DONE);
			assert_true(o.ungraded);
			assert_int_equal(o.next, -1);
			assert_string_equal(json_string_value(json_object_get(o.artifact, "verdict")),
					    "ungraded");
		}
		step_outcome_clear(&o);
	}
	/* the re-ask has room to finish */
	{
		struct step_ctx ctx = { .item = item, .prompts = prompts, .attempt = 1,
					.last_problem = STEP_CUT_REASON "; asked again" };
		struct step_ctx first = { .item = item, .prompts = prompts };
		int64_t base;

		assert_int_equal(step_request_build(STEP_ANSWER, &first, &req, err, sizeof(err)), 0);
		base = req.max_tokens;
		step_request_clear(&req);
		assert_int_equal(step_request_build(STEP_ANSWER, &ctx, &req, err, sizeof(err)), 0);
		assert_int_equal(req.max_tokens, base * STEP_CUT_TOKENS_FACTOR);
		step_request_clear(&req);
	}
	/* an explicit answer before the cut is graded */
	{
		struct step_ctx ctx = { .item = item, .prompts = prompts, .length_cut = true };

		step_reply_judge(STEP_ANSWER, &ctx, "The answer is B. Achalasia is a motility disorder that",
				 NULL, &o);
		assert_int_equal(o.result, STEP_DONE);
		assert_string_equal(json_string_value(json_object_get(o.artifact, "verdict")), "correct");
		step_outcome_clear(&o);
	}
	json_decref(item);
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

/* A verified explanation artifact is the object json_pack made (the
 * same stored text): text, final_answer, verified. */
static void expect_explanation(json_t *artifact, const char *text, const char *final)
{
	json_t *want = json_pack("{s:s, s:s, s:b}", "text", text, "final_answer", final, "verified", 1);
	char *a = json_dumps(artifact, JSON_COMPACT | JSON_ENCODE_ANY);
	char *b = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_string_equal(a, b);
	free(a);
	free(b);
	json_decref(want);
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
	expect_explanation(o.artifact,
			   "Achalasia causes dysphagia to solids and liquids from the "
			   "onset; cancer starts with solids.\nFinal answer: B", "B");
	step_outcome_clear(&o);

	/* graded (not by the final line's key), unverified, non-ASCII text */
	json_object_set_new(item, "options", NULL);
	json_object_del(item, "options");
	json_object_set_new(item, "answer", json_string("贲门失弛缓症"));
	judge(STEP_EXPLAIN, item, NULL, 0, "食管下括约肌松弛障碍。\nFinal answer: 贲门失弛缓症", &o);
	assert_int_equal(o.result, STEP_DONE);
	expect_explanation(o.artifact, "食管下括约肌松弛障碍。\nFinal answer: 贲门失弛缓症",
			   "贲门失弛缓症");
	step_outcome_clear(&o);
	json_decref(item);
	item = mc_item();

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

static bool valid_utf8(const char *s)
{
	return utf8_check(s, strlen(s)) == strlen(s);
}

/* Builds the re-ask request of step s for a problem; asserts it builds. */
static void reask_builds(enum step s, json_t *item, json_t *prior, const char *problem)
{
	struct step_ctx ctx = { .item = item, .prompts = prompts, .prior = prior, .attempt = 1,
				.last_problem = problem };
	struct step_request req;
	char err[256];

	if (step_request_build(s, &ctx, &req, err, sizeof(err)) != 0)
		fail_msg("re-ask of %s does not build: %s", step_name(s), err);
	{
		const char *user =
			json_string_value(json_object_get(json_array_get(req.messages, 1), "content"));

		assert_non_null(user);
		assert_non_null(strstr(user, "attempt 2"));
		assert_true(valid_utf8(user));
	}
	step_request_clear(&req);
}

static json_t *zh_open_item(const char *answer)
{
	return json_pack("{s:s, s:s, s:s}", "id", "zh-1", "question",
			 "腹部损伤时做诊断性腹腔穿刺，抽出不凝固血液，最可能的诊断为", "answer", answer);
}

/* The bug of issue 10: a reason quoting a Chinese answer was cut at 60
 * bytes inside a character, and the re-ask note built from it was refused
 * by jansson ("cannot add the re-ask note to template correct"). */
static void test_utf8_reasons(void **state)
{
	json_t *item = zh_open_item("实质性器官破裂"), *prior;
	struct step_outcome o;
	char reply[1024];
	(void)state;

	prior = json_pack("{s:s}", "reply", "可能是空腔脏器穿孔。答案：空腔脏器穿孔");
	/* 20 CJK characters = 60 bytes, then more: a 60-byte cut falls inside
	 * the 21st character when a 1-byte prefix shifts it */
	snprintf(reply, sizeof(reply),
		 "{\"missing_knowledge\":\"实质性器官破裂出血不凝\",\"critique\":\"学生混淆了空腔与实质脏器\","
		 "\"reasoning\":\"腹腔穿刺抽出不凝血提示腹腔内出血。\","
		 "\"final_answer\":\"x空腔脏器穿孔导致腹膜炎并且出现大量的消化液漏入腹腔引起化学性腹膜炎表现😀\"}");
	judge(STEP_CORRECT, item, prior, 0, reply, &o);
	assert_int_equal(o.result, STEP_RETRY);
	assert_non_null(strstr(o.reason, "corrective chain ends in"));
	assert_true(valid_utf8(o.reason));
	reask_builds(STEP_CORRECT, item, prior, o.reason);
	step_outcome_clear(&o);

	/* a stored reason with invalid bytes, emoji and a cut character still
	 * makes a valid note */
	reask_builds(STEP_CORRECT, item, prior, "bad \xff\xfe reply 😀 cut \xe8\x83");
	reask_builds(STEP_EXPLAIN, item, NULL, "explanation concludes 胃溃疡\xe8");
	json_decref(prior);
	json_decref(item);
}

static const char zh_runaway[] =
	"答案：实质性器官破裂\n\n"
	"1. 实质性器官如肝脾破裂后出血，血液因腹膜的去纤维作用而不凝固。\n\n"
	"以下是中国关于工程考试的主观题，请写出正确答案。\n"
	"【判断题】在Word中,可以利用文本框实现文字的横排和竖排 正确\n\n"
	"以下是中国关于工程考试的主观题，请写出正确答案。\n"
	"【判断题】资产类账户和负债类账户可以互相转化 正确\n";

static void test_screening(void **state)
{
	json_t *item = zh_open_item("实质性器官破裂");
	struct step_ctx ctx = { .item = item, .prompts = prompts };
	struct step_outcome o;
	(void)state;

	judge(STEP_EXPLAIN, item, NULL, 0, zh_runaway, &o);
	assert_int_equal(o.result, STEP_RETRY);
	assert_null(o.artifact);
	assert_non_null(strstr(o.reason, "screening explanation: new_task"));
	reask_builds(STEP_EXPLAIN, item, NULL, o.reason);
	step_outcome_clear(&o);
	judge(STEP_EXPLAIN, item, NULL, STEP_MAX_ATTEMPTS - 1, zh_runaway, &o);
	assert_int_equal(o.result, STEP_DROPPED);
	assert_null(o.artifact);
	assert_non_null(strstr(o.reason, "(after 3 attempts)"));
	step_outcome_clear(&o);

	/* cut at the token limit */
	ctx.length_cut = true;
	step_reply_judge(STEP_EXPLAIN, &ctx, "腹腔穿刺抽出不凝血，提示实质性器官破裂出血，因为", NULL, &o);
	assert_int_equal(o.result, STEP_RETRY);
	assert_non_null(strstr(o.reason, "truncated"));
	step_outcome_clear(&o);
	ctx.length_cut = false;

	/* an English explanation of a Chinese item */
	judge(STEP_EXPLAIN, item, NULL, 0,
	      "Non-clotting blood on abdominal paracentesis means bleeding from a solid organ, "
	      "because the peritoneum defibrinates it.\nFinal answer: 实质性器官破裂", &o);
	assert_int_equal(o.result, STEP_RETRY);
	assert_non_null(strstr(o.reason, "language"));
	step_outcome_clear(&o);

	/* a corrective chain that loops */
	{
		char reply[4096] = "{\"missing_knowledge\":\"实质性器官出血不凝\",\"critique\":\"混淆\","
				   "\"reasoning\":\"腹腔穿刺抽出不凝血。";
		json_t *prior = json_pack("{s:s}", "reply", "答案：空腔脏器穿孔");

		for (int i = 0; i < 60; i++)
			strcat(reply, "哈");
		strcat(reply, "\",\"final_answer\":\"实质性器官破裂\"}");
		judge(STEP_CORRECT, item, prior, 0, reply, &o);
		assert_int_equal(o.result, STEP_RETRY);
		assert_non_null(strstr(o.reason, "screening reasoning: repetition"));
		step_outcome_clear(&o);
		json_decref(prior);
	}

	/* a screening reason that echoes a chat template */
	judge(STEP_SCREEN, item, NULL, 0,
	      "{\"keep\":true,\"reason\":\"clear <|im_end|><|im_start|>assistant\"}", &o);
	assert_int_equal(o.result, STEP_RETRY);
	assert_non_null(strstr(o.reason, "screening reason: echo"));
	step_outcome_clear(&o);
	json_decref(item);
}

/* Judges a corrective chain; returns its result (reason copied to why). */
static enum step_result chain_judge(json_t *item, const char *final, const char *reasoning,
				    char *why, size_t whylen)
{
	json_t *prior = json_pack("{s:s}", "reply", "I think it is something else."), *r;
	struct step_ctx ctx = { .item = item, .prompts = prompts, .prior = prior };
	struct step_outcome o;
	enum step_result res;

	r = json_pack("{s:s, s:s, s:s, s:s}", "missing_knowledge", "the key fact", "critique",
		      "the student missed it", "reasoning", reasoning, "final_answer", final);
	step_reply_judge(STEP_CORRECT, &ctx, NULL, r, &o);
	res = o.result;
	snprintf(why, whylen, "%s", o.reason);
	step_outcome_clear(&o);
	json_decref(r);
	json_decref(prior);
	return res;
}

static void chain_done(json_t *item, const char *final, const char *reasoning)
{
	json_t *prior = json_pack("{s:s}", "reply", "I think it is something else."), *r;
	struct step_ctx ctx = { .item = item, .prompts = prompts, .prior = prior };
	struct step_outcome o;

	r = json_pack("{s:s, s:s, s:s, s:s}", "missing_knowledge", "the key fact", "critique",
		      "the student missed it", "reasoning", reasoning, "final_answer", final);
	step_reply_judge(STEP_CORRECT, &ctx, NULL, r, &o);
	if (o.result != STEP_DONE)
		fail_msg("chain ending in \"%s\" for gold \"%s\": %s", final,
			 json_string_value(json_object_get(item, "answer")), o.reason);
	step_outcome_clear(&o);
	json_decref(r);
	json_decref(prior);
}

static void test_multipart_gold(void **state)
{
	json_t *zh = zh_open_item("直肠癌 2．进一步确诊的主要方法是 答案：内镜检查+组织活检病理检查");
	json_t *zh2 = zh_open_item("1．急性阑尾炎 2．腹腔脓肿 3．抗生素治疗");
	json_t *en = json_pack("{s:s, s:s, s:s}", "id", "en-1", "question",
			       "1. Most likely diagnosis? 2. Best first test?", "answer",
			       "1. Acute cholecystitis 2. Abdominal ultrasound");
	json_t *prior = json_pack("{s:s}", "reply", "答案：结肠癌");
	struct step_outcome o;
	(void)state;

	/* the gold verbatim as the final answer (its own "答案：" used to make
	 * the check read only the last part) */
	chain_done(zh, "直肠癌 2．进一步确诊的主要方法是 答案：内镜检查+组织活检病理检查",
		   "便血、排便习惯改变提示直肠癌。\nFinal answer: 直肠癌");
	chain_done(zh, "1. 直肠癌；2. 内镜检查+组织活检病理检查", "直肠指诊后行内镜活检确诊。");
	chain_done(zh, "见上",
		   "第一步：症状提示直肠癌。\n第二步：确诊靠内镜。\n最终答案：1. 直肠癌 2. 内镜检查+组织活检病理检查");
	chain_done(zh2, "急性阑尾炎；腹腔脓肿；抗生素治疗", "右下腹痛。");
	chain_done(en, "1) acute cholecystitis; 2) abdominal ultrasound", "RUQ pain and fever.");

	/* a chain that misses a part still fails */
	judge(STEP_CORRECT, zh, prior, 0,
	      "{\"missing_knowledge\":\"x\",\"critique\":\"y\",\"reasoning\":\"症状提示直肠癌。\","
	      "\"final_answer\":\"直肠癌\"}", &o);
	assert_int_equal(o.result, STEP_RETRY);
	assert_non_null(strstr(o.reason, "corrective chain ends in"));
	step_outcome_clear(&o);

	/* the student's open answer naming every part is correct without a judge */
	judge(STEP_ANSWER, en, NULL, 0,
	      "Fever and RUQ pain.\nAnswer: acute cholecystitis, and the first test is an "
	      "abdominal ultrasound.", &o);
	assert_string_equal(json_string_value(json_object_get(o.artifact, "verdict")), "correct");
	assert_string_equal(json_string_value(json_object_get(o.artifact, "rule")), "multipart");
	assert_int_equal(o.next, -1);
	step_outcome_clear(&o);
	judge(STEP_ANSWER, en, NULL, 0, "Answer: acute cholecystitis", &o);
	assert_string_equal(json_string_value(json_object_get(o.artifact, "verdict")), "unclear");
	step_outcome_clear(&o);
	json_decref(prior);
	json_decref(en);
	json_decref(zh2);
	json_decref(zh);
}

/* The garbage records of the MedThink test split (identity_N here is
 * record 755+N of the 955; test_textcheck lists them by their ids there). */
static const char *const test_split_garbage[] = {
	/* the six runaway records */
	"identity_23", "identity_41", "identity_46", "identity_80", "identity_132", "identity_194",
	/* other garbage found by reading (see test_textcheck.c) */
	"identity_35", "identity_50", "identity_56", "identity_71", "identity_89", "identity_109",
	"identity_124", "identity_128", "identity_151", NULL
};

/* Replays the MedThink test split: every record imported as the CLI does,
 * its published teacher text judged as the explain step's reply. */
static void test_medthink_replay(void **state)
{
	struct medthink_set s;
	size_t done = 0, dropped = 0, multipart = 0, chains_screened = 0;
	(void)state;

	if (medthink_load(MEDTHINK_TEST, &s)) {
		print_message("skipped: %s is not there\n", MEDTHINK_TEST);
		skip();
		return;
	}
	assert_int_equal(s.n, 200);
	for (size_t i = 0; i < s.n; i++) {
		json_t *item = s.r[i].item;
		const char *gold = json_string_value(json_object_get(item, "answer"));
		bool garbage = medthink_in(test_split_garbage, s.r[i].id);
		struct step_outcome o;

		for (int attempt = 0; attempt < STEP_MAX_ATTEMPTS; attempt++) {
			judge(STEP_EXPLAIN, item, NULL, attempt, s.r[i].reply, &o);
			if (!valid_utf8(o.reason))
				fail_msg("%s: reason is not UTF-8", s.r[i].id);
			if (o.result == STEP_RETRY)
				reask_builds(STEP_EXPLAIN, item, NULL, o.reason);
			if (garbage) {
				if (o.result != (attempt + 1 < STEP_MAX_ATTEMPTS ? STEP_RETRY : STEP_DROPPED) ||
				    !strstr(o.reason, "screening explanation"))
					fail_msg("garbage %s not screened: %d %s", s.r[i].id, o.result,
						 o.reason);
			} else if (o.result != STEP_DONE) {
				fail_msg("%s: %s", s.r[i].id, o.reason);
			}
			if (attempt + 1 == STEP_MAX_ATTEMPTS)
				o.result == STEP_DONE ? done++ : dropped++;
			step_outcome_clear(&o);
		}
		/* the chain check with the gold as written, several parts or not */
		if (!garbage) {
			char *reasoning = NULL;

			multipart += strstr(gold, "答案") || strstr(gold, "2．") || strstr(gold, "2.");
			if (asprintf(&reasoning, "%s\n最终答案：%s",
				     json_string_value(json_object_get(item, "explanation")) ?
					     json_string_value(json_object_get(item, "explanation")) :
					     "",
				     gold) < 0)
				fail();
			{
				char why[256];

				/* a chain made of a record's text may still fail
				 * screening (identity_127: a short pasted list the
				 * explain check lets through), never the gold check */
				if (chain_judge(item, gold, reasoning, why, sizeof(why)) != STEP_DONE) {
					if (!strstr(why, "screening"))
						fail_msg("%s: %s", s.r[i].id, why);
					print_message("chain of %s screened: %s\n", s.r[i].id, why);
					chains_screened++;
				}
			}
			free(reasoning);
		}
	}
	print_message("medthink test split: %zu explanations kept, %zu dropped by screening, "
		      "%zu multi-part golds pass the chain check\n", done, dropped, multipart);
	assert_int_equal(dropped, 15);
	assert_true(chains_screened <= 1);
	assert_true(multipart >= 10); /* 12 in the file */
	medthink_free(&s);
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
		 "kind must be pipeline, stage1, stage2, eval, refer or rl, not \"stage9\"");
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
		 "selection.budget",
		 "selection.budget is required for diq: a fraction of the items (< 1) or a count (>= 1)");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"student\":\"s\","
		 "\"selection\":{\"strategy\":\"3ds\",\"budget\":5}}",
		 "embedder",
		 "embedder is required for selection strategy 3ds: name an [embedder.NAME] section "
		 "(served at /v1/embeddings)");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"embedder\":\"e\","
		 "\"selection\":{\"strategy\":\"3ds\",\"budget\":5}}",
		 "student", "selection strategy 3ds needs a student (its prompt logprobs)");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"student\":\"s\","
		 "\"embedder\":\"e\",\"selection\":{\"strategy\":\"diq\",\"budget\":0.1,\"axis\":\"x\"}}",
		 "selection.axis", "selection.axis must be overall, knowledge or reasoning");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"student\":\"s\","
		 "\"embedder\":\"e\",\"selection\":{\"strategy\":\"3ds\",\"budget\":0.1,"
		 "\"percentiles\":[75,25]}}",
		 "selection.percentiles", "selection.percentiles must be [LO, HI] with 0 <= LO < HI <= 100");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"student\":\"s\","
		 "\"embedder\":\"e\",\"selection\":{\"strategy\":\"diq\",\"budget\":0.1,"
		 "\"validation\":{\"dataset\":\"\"}}}",
		 "selection.validation.dataset",
		 "selection.validation.dataset must be a dataset id or name of 1 to 127 bytes");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"student\":\"s\","
		 "\"embedder\":\"e\",\"selection\":{\"strategy\":\"diq\",\"budget\":0.1,"
		 "\"validation\":{\"dataset\":\"v\",\"fraction\":0.1}}}",
		 "selection.validation",
		 "selection.validation must be {\"fraction\":F} with 0 < F < 1 or "
		 "{\"dataset\":\"ID or name\"}");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":\"t\",\"embedder\":\"e\"}",
		 "embedder", "embedder is only used by the diq and 3ds selections");
	spec_err("{\"dataset\":\"d\",\"kind\":\"stage1\",\"teacher\":5}", "teacher",
		 "teacher must be a string");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),	    cmocka_unit_test(test_screen),
		cmocka_unit_test(test_explain),	    cmocka_unit_test(test_student_and_judge),
		cmocka_unit_test(test_correct),	    cmocka_unit_test(test_request),
		cmocka_unit_test(test_jobspec),	    cmocka_unit_test(test_utf8_reasons),
		cmocka_unit_test(test_screening),   cmocka_unit_test(test_multipart_gold),
		cmocka_unit_test(test_medthink_replay), cmocka_unit_test(test_student_cut),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
