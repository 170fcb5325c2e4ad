/* layers: stages store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "stages/textcheck.h"
#include "tests/unit/medthink_data.h"

/* Screens text for item with every check; returns the kind that fired or -1. */
static int screen(json_t *item, json_t *prompt, const char *text, bool cut, char *reason)
{
	struct textcheck_input in = { .text = text, .item = item, .prompt = prompt,
				      .length_cut = cut, .max_tokens = 1500,
				      .checks = TEXTCHECK_ALL };
	struct textcheck_result r;
	int rc = textcheck_run(&in, &r);

	assert_true(rc == 0 || rc == 1);
	assert_int_equal(utf8_check(r.reason, strlen(r.reason)), strlen(r.reason));
	if (reason)
		strcpy(reason, r.reason);
	return rc ? r.kind : -1;
}

static json_t *zh_item(void)
{
	return json_pack("{s:s, s:s, s:s}", "id", "z1", "question",
			 "男，36岁，间断上腹痛5年，空腹时出现，Hp阳性。最佳治疗方案是", "answer",
			 "奥美拉唑＋CBS＋抗生素治疗");
}

static const char zh_ok[] =
	"1. 患者为青年男性，间断上腹痛5年，空腹时出现，提示十二指肠溃疡。\n"
	"2. Hp阳性说明幽门螺杆菌感染是溃疡的主要病因，根除Hp可以降低复发。\n"
	"3. 治疗采用质子泵抑制剂奥美拉唑抑制胃酸，加铋剂（CBS）和两种抗生素，即四联疗法。\n"
	"4. 单用抑酸药物可以愈合溃疡，但停药后复发率高。\n"
	"Final answer: 奥美拉唑＋CBS＋抗生素治疗";

static void test_clean(void **state)
{
	json_t *item = zh_item();
	(void)state;
	assert_int_equal(screen(item, NULL, zh_ok, false, NULL), -1);
	assert_int_equal(screen(item, NULL, "", false, NULL), -1);
	json_decref(item);
}

static void test_truncated_and_long(void **state)
{
	json_t *item = zh_item();
	char reason[256], *big;
	(void)state;
	assert_int_equal(screen(item, NULL, zh_ok, true, reason), TEXTCHECK_TRUNCATED);
	assert_string_equal(reason,
			    "truncated: the reply was cut at the token limit (finish_reason length)");
	big = malloc(1500 * TEXTCHECK_BYTES_PER_TOKEN + 200);
	assert_non_null(big);
	big[0] = '\0';
	while (strlen(big) <= 1500 * TEXTCHECK_BYTES_PER_TOKEN)
		strcat(big, "胃溃疡");
	assert_int_equal(screen(item, NULL, big, false, reason), TEXTCHECK_TOO_LONG);
	free(big);
	json_decref(item);
}

static void test_repetition(void **state)
{
	json_t *item = zh_item();
	char reason[256], text[4096];
	(void)state;
	/* a runaway tail repeating a phrase */
	snprintf(text, sizeof(text), "%s\n", zh_ok);
	for (int i = 0; i < 40; i++)
		strcat(text, "; ");
	assert_int_equal(screen(item, NULL, text, false, reason), TEXTCHECK_REPETITION);
	assert_non_null(strstr(reason, "runaway loop"));
	/* a header line re-emitted */
	snprintf(text, sizeof(text), "%s\n", zh_ok);
	for (int i = 0; i < 3; i++)
		strcat(text, "\n以下是一道新的考试题，请作答。\n某题目内容不同" ), text[strlen(text) - 1] = (char)('0' + i);
	assert_int_equal(screen(item, NULL, text, false, reason), TEXTCHECK_REPETITION);
	assert_non_null(strstr(reason, "repeats 3 times"));
	/* long passages repeated */
	text[0] = '\0';
	for (int i = 0; i < 4; i++) {
		char line[200];

		snprintf(line, sizeof(line), "第%d点：奥美拉唑抑制胃酸分泌并且促进溃疡愈合，疗效确切可靠", i);
		strcat(text, line);
		strcat(text, "。");
	}
	assert_int_equal(screen(item, NULL, text, false, reason), TEXTCHECK_REPETITION);
	assert_non_null(strstr(reason, "degenerate text"));
	json_decref(item);
}

static void test_echo(void **state)
{
	json_t *item = zh_item(), *prompt;
	char reason[256], text[2048];
	(void)state;
	prompt = json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content",
			   "You are an expert physician and medical teacher.", "role", "user",
			   "content",
			   "### Task: explain\nWrite a teaching explanation for the question below.\n"
			   "Question:\n男，36岁，间断上腹痛5年，空腹时出现，Hp阳性。最佳治疗方案是\n"
			   "Keep it under 350 words. Write in the language of the question.");
	/* quoting the question is fine */
	snprintf(text, sizeof(text), "男，36岁，间断上腹痛5年，空腹时出现，Hp阳性。最佳治疗方案是\n%s",
		 zh_ok);
	assert_int_equal(screen(item, prompt, text, false, NULL), -1);
	/* echoing the instructions is not */
	snprintf(text, sizeof(text),
		 "Write a teaching explanation for the question below.\nKeep it under 350 words. "
		 "Write in the language of the question.\n%s", zh_ok);
	assert_int_equal(screen(item, prompt, text, false, reason), TEXTCHECK_ECHO);
	assert_non_null(strstr(reason, "echoes"));
	snprintf(text, sizeof(text), "%s\n<|im_end|>\n<|im_start|>assistant", zh_ok);
	assert_int_equal(screen(item, NULL, text, false, reason), TEXTCHECK_ECHO);
	assert_non_null(strstr(reason, "chat-template token <|im_start|>"));
	json_decref(prompt);
	json_decref(item);
}

static void test_new_task(void **state)
{
	json_t *item = zh_item();
	char reason[256], text[2048];
	(void)state;
	snprintf(text, sizeof(text), "%s\n\n以下是中国关于工程考试的主观题，请写出正确答案。\n"
		 "【判断题】某判断 正确", zh_ok);
	assert_int_equal(screen(item, NULL, text, false, reason), TEXTCHECK_NEW_TASK);
	snprintf(text, sizeof(text), "%s\n\n好的，那么请再回答一个问题。慢性肾病如何控制饮食？", zh_ok);
	assert_int_equal(screen(item, NULL, text, false, reason), TEXTCHECK_NEW_TASK);
	assert_non_null(strstr(reason, "answers a turn of its own"));
	/* a reply may open with an acknowledgement */
	snprintf(text, sizeof(text), "好的，请看以下解释：\n%s", zh_ok);
	assert_int_equal(screen(item, NULL, text, false, NULL), -1);
	json_decref(item);
}

static void test_language(void **state)
{
	json_t *item = zh_item(), *en;
	char reason[256];
	(void)state;
	assert_int_equal(screen(item, NULL,
				"The patient most likely has a duodenal ulcer with H. pylori "
				"infection; treat with a proton pump inhibitor plus bismuth and two "
				"antibiotics.\nFinal answer: 奥美拉唑＋CBS＋抗生素治疗",
				false, reason),
			 TEXTCHECK_LANGUAGE);
	assert_non_null(strstr(reason, "Chinese"));
	en = json_pack("{s:s, s:s, s:s}", "id", "e1", "question",
		       "A 36-year-old man has epigastric pain relieved by food. Best treatment?",
		       "answer", "PPI plus antibiotics");
	assert_int_equal(screen(en, NULL, zh_ok, false, reason), TEXTCHECK_LANGUAGE);
	assert_int_equal(screen(en, NULL,
				"Epigastric pain relieved by food suggests a duodenal ulcer (十二指肠溃疡); "
				"H. pylori eradication with a PPI plus antibiotics heals it.",
				false, NULL),
			 -1);
	assert_int_equal(textcheck_cjk_share("abc胃", NULL), 25);
	json_decref(en);
	json_decref(item);
}

static void test_off_topic(void **state)
{
	json_t *item = zh_item();
	char reason[256], text[4096];
	(void)state;
	snprintf(text, sizeof(text),
		 "答案：奥美拉唑＋CBS＋抗生素治疗\n\n"
		 "在Word中，可以利用文本框实现文字的横排和竖排，页面设置对话框有四个选项卡。\n"
		 "软件生存周期包括需求分析、总体设计、详细设计、编码、测试和运行维护等阶段。\n"
		 "国家对药品不良反应实行逐级、定期报告制度，资产类账户和负债类账户可以互相转化。\n"
		 "计算机内部用来传送、存储、加工处理的数据或指令都是以二进制形式进行的。\n");
	assert_int_equal(screen(item, NULL, text, false, reason), TEXTCHECK_OFF_TOPIC);
	assert_non_null(strstr(reason, "runaway tail"));
	json_decref(item);
}

static void test_invalid_input(void **state)
{
	json_t *item = zh_item();
	struct textcheck_input in = { 0 };
	struct textcheck_result r;
	char text[256];
	(void)state;
	assert_int_equal(textcheck_run(&in, &r), -EINVAL);
	/* invalid bytes and emoji never crash, and reasons stay valid UTF-8 */
	snprintf(text, sizeof(text), "\xff\xfe😀😀 %s", "胃\xe8\x83");
	for (int i = 0; i < 30; i++)
		strcat(text, "😀");
	assert_int_equal(screen(item, NULL, text, false, NULL), TEXTCHECK_REPETITION);
	json_decref(item);
}

/* The MedThink stage-one set, every record's published teacher text screened
 * as the reply to its question. The 17 runaway-garbage records (the
 * teacher pasting exam questions after its answer, each behind a line
 * "以下是中国...考试的...题，请写出正确答案。") must all be caught. Reading every
 * record the checks flag found more garbage of other kinds (exam dumps
 * without that header, hallucinated user turns, loops, chat tokens): those
 * are listed too. A flag on any other record is a false positive; the one
 * known (identity_73: a muddled but on-topic record) is documented in
 * docs/prompts.md. */
static const char *const garbage17[] = {
	"identity_9", "identity_33", "identity_129", "identity_197", "identity_274", "identity_296",
	"identity_453", "identity_584", "identity_708", "identity_712", "identity_750",
	"identity_778", "identity_796", "identity_801", "identity_835", "identity_887",
	"identity_949", NULL
};
static const char *const garbage_other[] = {
	"identity_5", "identity_10", "identity_18", "identity_32", "identity_38", "identity_46",
	"identity_48", "identity_60", "identity_77", "identity_83", "identity_115", "identity_130",
	"identity_167", "identity_174", "identity_185", "identity_198", "identity_203",
	"identity_220", "identity_233", "identity_237", "identity_241", "identity_247",
	"identity_254", "identity_319", "identity_331", "identity_347", "identity_360",
	"identity_366", "identity_368", "identity_373", "identity_382", "identity_389",
	"identity_419", "identity_433", "identity_477", "identity_526", "identity_539",
	"identity_556", "identity_599", "identity_601", "identity_611", "identity_633",
	"identity_635", "identity_660", "identity_724", "identity_731", "identity_746",
	"identity_790", "identity_805", "identity_811", "identity_826", "identity_844",
	"identity_864", "identity_879", "identity_883", "identity_906", NULL
};
#define MEDTHINK_FP_MAX 1

static void test_medthink_garbage(void **state)
{
	struct medthink_set s;
	size_t caught = 0, other = 0, fp = 0, n17 = 0;
	(void)state;
	if (medthink_load(MEDTHINK_ALL, &s)) {
		print_message("skipped: %s is not there\n", MEDTHINK_ALL);
		skip();
		return;
	}
	assert_int_equal(s.n, 955);
	for (size_t i = 0; garbage17[i]; i++)
		n17++;
	for (size_t i = 0; i < s.n; i++) {
		char reason[256];
		int k = screen(s.r[i].item, NULL, s.r[i].reply, false, reason);
		bool g17 = medthink_in(garbage17, s.r[i].id);

		if (g17 && k < 0)
			print_message("missed %s\n", s.r[i].id);
		if (k < 0)
			continue;
		if (g17)
			caught++;
		else if (medthink_in(garbage_other, s.r[i].id))
			other++;
		else {
			fp++;
			print_message("false positive %s: %s\n", s.r[i].id, reason);
		}
	}
	print_message("medthink: %zu/%zu runaway-garbage records caught, %zu other garbage "
		      "records caught, %zu false positives in %zu\n",
		      caught, n17, other, fp, s.n);
	assert_int_equal(caught, n17);
	assert_true(fp <= MEDTHINK_FP_MAX);
	medthink_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_truncated_and_long),
		cmocka_unit_test(test_repetition),
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_new_task),
		cmocka_unit_test(test_language),
		cmocka_unit_test(test_off_topic),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_medthink_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
