/* layers: stages common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "stages/grade.h"

#define CORPUS "tests/data/extract_corpus.jsonl"

/* Every line of the corpus: {"reply","options","expect"}; expect is the key,
 * "none" or "ambiguous". Prints every mismatch, then fails if any. */
static void test_corpus(void **state)
{
	FILE *f = fopen(CORPUS, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, total = 0, bad = 0;

	(void)state;
	assert_non_null(f);
	while ((n = getline(&line, &cap, f)) > 0) {
		json_error_t jerr;
		json_t *c;
		struct grade_result r;
		const char *expect, *got;

		lineno++;
		c = json_loadb(line, (size_t)n, 0, &jerr);
		if (!c) {
			fail_msg("%s:%d: %s", CORPUS, lineno, jerr.text);
		}
		expect = json_string_value(json_object_get(c, "expect"));
		assert_non_null(expect);
		assert_int_equal(grade_extract_choice(json_string_value(json_object_get(c, "reply")),
		                                      json_object_get(c, "options"), &r),
		                 0);
		assert_non_null(r.rule);
		got = r.verdict == GRADE_FOUND ? r.answer : grade_verdict_name(r.verdict);
		if (strcmp(got, expect) != 0) {
			bad++;
			printf("corpus line %d: expected %s, got %s (rule %s)\n  reply: %.160s\n", lineno,
			       expect, got, r.rule, json_string_value(json_object_get(c, "reply")));
		}
		total++;
		json_decref(c);
	}
	free(line);
	fclose(f);
	printf("corpus: %d cases, %d mismatches\n", total, bad);
	assert_true(total >= 150);
	assert_int_equal(bad, 0);
}

static json_t *opts_abcd(void)
{
	return json_pack("{s:s,s:s,s:s,s:s}", "A", "Metformin", "B", "Insulin glargine", "C",
	                 "Glipizide", "D", "Pioglitazone");
}

static void expect_choice(json_t *opts, const char *reply, enum grade_verdict v, const char *key,
                          const char *rule)
{
	struct grade_result r;

	assert_int_equal(grade_extract_choice(reply, opts, &r), 0);
	if (r.verdict != v || (key && strcmp(r.answer, key) != 0) || (rule && strcmp(r.rule, rule) != 0))
		fail_msg("reply \"%s\": got %s \"%s\" by %s", reply, grade_verdict_name(r.verdict),
		         r.answer, r.rule);
}

/* Which rule fires is part of the contract: callers log it. */
static void test_rules(void **state)
{
	json_t *o = opts_abcd();

	(void)state;
	expect_choice(o, "<answer>C</answer>", GRADE_FOUND, "C", "answer_tag");
	expect_choice(o, "{\"answer\": \"B\"}", GRADE_FOUND, "B", "json_answer");
	expect_choice(o, "so \\boxed{D}", GRADE_FOUND, "D", "boxed");
	expect_choice(o, "Final answer: A", GRADE_FOUND, "A", "final_answer");
	expect_choice(o, "The answer is C.", GRADE_FOUND, "C", "answer_phrase");
	expect_choice(o, "Option C is correct.", GRADE_FOUND, "C", "key_is_correct");
	expect_choice(o, "I would go with D", GRADE_FOUND, "D", "choose_phrase");
	expect_choice(o, "Analysis...\n\n(B)\n", GRADE_FOUND, "B", "standalone");
	expect_choice(o, "Glipizide", GRADE_FOUND, "C", "text_exact");
	expect_choice(o, "Start pioglitazone today.", GRADE_FOUND, "D", "text_contains");

	expect_choice(o, "I think C.", GRADE_FOUND, "C", "last_sentence");
	expect_choice(o, "Reasoning about renal dosing... option B seems safest overall given the "
	                 "kidney function and the hypoglycemia risk of the alternatives.",
	              GRADE_FOUND, "B", "mention");
	expect_choice(o, "A or B", GRADE_AMBIGUOUS, "", "short_reply");
	expect_choice(o, "No idea.", GRADE_NONE, "", "no_answer");
	json_decref(o);
}

/* The last decisive statement wins, and final answers outrank asides. */
static void test_last_statement(void **state)
{
	json_t *o = opts_abcd();

	(void)state;
	expect_choice(o, "The answer is A. On reflection, the answer is C.", GRADE_FOUND, "C", NULL);
	expect_choice(o, "Final answer: B\n\nSome might think the correct answer is A.", GRADE_FOUND,
	              "B", "final_answer");
	expect_choice(o, "<think>answer is A</think>\nThe answer is D.", GRADE_FOUND, "D", NULL);
	expect_choice(o, "<think>Answer: B</think>", GRADE_FOUND, "B", NULL);
	json_decref(o);
}

/* Paraphrase scoring: a close restatement of one option's text. */
static void test_paraphrase(void **state)
{
	json_t *o = json_pack("{s:s,s:s,s:s}", "A",
	                      "Disclose the error to the patient but leave it out of the operative report",
	                      "B", "Disclose the error to the patient and put it in the operative report",
	                      "C", "Report the physician to the ethics committee");
	(void)state;
	expect_choice(o, "Answer: the resident must disclose the error to the patient and put it into "
	                 "the operative reports",
	              GRADE_FOUND, "B", NULL);
	expect_choice(o, "Answer: Disclose the error to the patient but leave it", GRADE_FOUND, "A",
	              "answer_phrase_text");
	expect_choice(o, "He should report the physician to the ethics committee immediately.",
	              GRADE_FOUND, "C", NULL);
	json_decref(o);
}

/* The error classes of issue 10, one wording each; the corpus has more. */
static void test_issue10_rules(void **state)
{
	json_t *o = opts_abcd();
	json_t *t = json_pack("{s:s,s:s,s:s,s:s}", "A", "Basal cell carcinoma", "B",
	                      "Squamous cell carcinoma", "C", "Melanoma", "D", "Actinic keratosis");
	json_t *p = json_pack("{s:s,s:s,s:s}", "A", "yes", "B", "no", "C", "maybe");

	(void)state;
	expect_choice(o, "<think>Metformin is first line, but option B", GRADE_NONE, "",
	              "unfinished_think");
	expect_choice(o, "<think>a</think><think>The answer is C? Or", GRADE_NONE, "",
	              "unfinished_think");
	expect_choice(p, "Is it effective?\n\nA) yes\nB) no\nC) maybe", GRADE_NONE, "", "no_answer");
	expect_choice(o, "The answer is C. Wait, actually, it's B.", GRADE_FOUND, "B",
	              "self_correction");
	expect_choice(o, "The answer is glipizide (B).", GRADE_AMBIGUOUS, "", "letter_text_conflict");
	expect_choice(o, "The correct answer is B) Glipizide.", GRADE_AMBIGUOUS, "",
	              "letter_text_conflict");
	expect_choice(o, "The answer is metformin, glipizide or pioglitazone.", GRADE_AMBIGUOUS, "",
	              "answer_list");
	expect_choice(o, "So the answer is none of the above.", GRADE_NONE, "", "none_of_the_above");
	expect_choice(o, "If renal function is poor, the answer would be (C). If not, the answer "
	                 "would be (A).",
	              GRADE_AMBIGUOUS, "", "hedged_options");
	expect_choice(t, "Let's eliminate.\nA: unlikely, it grows slowly.\nC: ruled out, not "
	                 "pigmented.\nD: does not ulcerate.",
	              GRADE_FOUND, "B", "elimination");
	expect_choice(t, "The answer is SCC.", GRADE_FOUND, "B", "answer_phrase_text");
	expect_choice(o, "It could be A or D. Given the kidneys, D is more likely.", GRADE_FOUND, "D",
	              "key_is_correct");
	json_decref(o);
	json_decref(t);
	json_decref(p);
}

/* A reply cut by the token limit: statements count, fallbacks do not. */
static void test_truncated(void **state)
{
	json_t *o = opts_abcd();
	json_t *item = json_pack("{s:s,s:s}", "question", "Q", "answer", "acute pancreatitis");
	struct grade_opts cut = { .truncated = 1 };
	struct grade_result r;
	const char *mid = "Renal function matters here. Metformin is contraindicated below an eGFR "
	                  "of 30, so option B seems";

	(void)state;
	/* without the flag the fallbacks read the option under discussion */
	assert_int_equal(grade_extract_choice(mid, o, &r), 0);
	assert_int_equal(r.verdict, GRADE_FOUND);
	assert_int_equal(grade_extract_choice_opts(mid, o, &cut, &r), 0);
	assert_int_equal(r.verdict, GRADE_NONE);
	assert_string_equal(r.rule, "truncated");
	assert_int_equal(grade_extract_choice_opts("Final answer: C\n\nBecause glipizide is", o, &cut,
	                                           &r),
	                 0);
	assert_int_equal(r.verdict, GRADE_FOUND);
	assert_string_equal(r.answer, "C");
	assert_int_equal(grade_extract_choice_opts("<think>answer is A</think>\nThe patient has", o,
	                                           &cut, &r),
	                 0);
	assert_int_equal(r.verdict, GRADE_NONE);
	assert_string_equal(r.rule, "truncated");
	assert_int_equal(grade_extract_choice_opts("<think>x</think>\nThe answer is D. The", o, &cut,
	                                           &r),
	                 0);
	assert_string_equal(r.answer, "D");
	/* NULL opts is a complete reply */
	assert_int_equal(grade_extract_choice_opts("The answer is A.", o, NULL, &r), 0);
	assert_string_equal(r.answer, "A");
	/* open-ended */
	assert_int_equal(grade_item_opts(item, "The pain radiates to the back and lipase is", &cut, &r),
	                 0);
	assert_int_equal(r.verdict, GRADE_NONE);
	assert_string_equal(r.rule, "truncated");
	assert_int_equal(grade_item_opts(item, "Final answer: acute pancreatitis\n\nThe", &cut, &r), 0);
	assert_int_equal(r.verdict, GRADE_CORRECT);
	assert_int_equal(grade_item(item, "<think>maybe acute pancreatitis", &r), 0);
	assert_int_equal(r.verdict, GRADE_NONE);
	assert_string_equal(r.rule, "unfinished_think");
	json_decref(o);
	json_decref(item);
}

static void test_extract_errors(void **state)
{
	struct grade_result r;
	json_t *o = opts_abcd(), *empty = json_object(), *bad = json_pack("{s:i}", "A", 1);
	char *big;

	(void)state;
	assert_int_equal(grade_extract_choice(NULL, o, &r), -EINVAL);
	assert_int_equal(grade_extract_choice("A", NULL, &r), -EINVAL);
	assert_int_equal(grade_extract_choice("A", empty, &r), -EINVAL);
	assert_int_equal(grade_extract_choice("A", bad, &r), -EINVAL);
	big = malloc(GRADE_REPLY_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', GRADE_REPLY_MAX + 1);
	big[GRADE_REPLY_MAX + 1] = '\0';
	assert_int_equal(grade_extract_choice(big, o, &r), -E2BIG);
	assert_int_equal(grade_open(big, "x", &r), -E2BIG);
	free(big);
	/* invalid UTF-8 is read, not rejected */
	expect_choice(o, "Answer: \xff\xfe C", GRADE_FOUND, "C", NULL);
	json_decref(o);
	json_decref(empty);
	json_decref(bad);
}

static void expect_open(const char *reply, const char *gold, enum grade_verdict v, const char *rule)
{
	struct grade_result r;

	assert_int_equal(grade_open(reply, gold, &r), 0);
	if (r.verdict != v || (rule && strcmp(r.rule, rule) != 0))
		fail_msg("open reply \"%s\" gold \"%s\": got %s by %s (answer \"%s\")", reply, gold,
		         grade_verdict_name(r.verdict), r.rule, r.answer);
}

static void test_open(void **state)
{
	struct grade_result r;

	(void)state;
	expect_open("答案：肠鸣音活跃\n\n以下是针对腹部闭合性损伤的医学知识要点：……", "肠鸣音活跃",
	            GRADE_CORRECT, "final_answer_exact");
	expect_open("答案：肠鸣音活跃。", "肠鸣音活跃", GRADE_CORRECT, NULL);
	expect_open("答案：（肠鸣音　活跃）", "肠鸣音活跃", GRADE_CORRECT, NULL);
	expect_open("答案：腹膜刺激征\n\n解析……", "肠鸣音活跃", GRADE_NEEDS_JUDGE, NULL);
	expect_open("Metformin", "metformin", GRADE_CORRECT, "exact");
	expect_open("ＭＥＴＦＯＲＭＩＮ！", "Metformin", GRADE_CORRECT, NULL);
	expect_open("Final answer: Acute pancreatitis.", "acute pancreatitis", GRADE_CORRECT, NULL);
	expect_open("Final answer: the most likely diagnosis is acute pancreatitis", "Acute pancreatitis",
	            GRADE_CORRECT, "final_answer_contains");
	expect_open("Final answer: not acute pancreatitis", "Acute pancreatitis", GRADE_NEEDS_JUDGE, NULL);
	expect_open("Answer: beta-blocker", "beta blocker", GRADE_CORRECT, NULL);
	expect_open("Long reasoning here.\nSo the diagnosis is Crohn disease.", "Crohn disease",
	            GRADE_CORRECT, "last_line_contains");
	expect_open("It is probably an autoimmune process of some kind.", "Crohn disease",
	            GRADE_NEEDS_JUDGE, "no_match");
	expect_open("最终答案：幽门螺杆菌感染\n\n其他……答案：胃酸", "幽门螺杆菌感染", GRADE_CORRECT, NULL);
	expect_open("   \n ", "x", GRADE_NONE, NULL);
	assert_int_equal(grade_open("Answer: x", "y", &r), 0);
	assert_string_equal(r.answer, "x");
	assert_int_equal(grade_open(NULL, "y", &r), -EINVAL);
}

static void test_item(void **state)
{
	struct grade_result r;
	json_t *mc = json_pack("{s:s,s:s,s:{s:s,s:s},s:s}", "id", "q1", "question", "Which?", "options",
	                       "A", "Yes", "B", "No", "answer", "B");
	json_t *open = json_pack("{s:s,s:s,s:s}", "id", "q2", "question", "腹部闭合性损伤时……",
	                         "answer", "肠鸣音活跃");
	json_t *noans = json_pack("{s:s}", "question", "Q");

	(void)state;
	assert_int_equal(grade_item(mc, "Answer: B", &r), 0);
	assert_int_equal(r.verdict, GRADE_CORRECT);
	assert_string_equal(r.answer, "B");
	assert_int_equal(grade_item(mc, "Answer: A", &r), 0);
	assert_int_equal(r.verdict, GRADE_WRONG);
	assert_string_equal(r.answer, "A");
	assert_int_equal(grade_item(mc, "no clue", &r), 0);
	assert_int_equal(r.verdict, GRADE_NONE);
	assert_int_equal(grade_item(mc, "A or B", &r), 0);
	assert_int_equal(r.verdict, GRADE_AMBIGUOUS);
	assert_int_equal(grade_item(open, "答案：肠鸣音活跃", &r), 0);
	assert_int_equal(r.verdict, GRADE_CORRECT);
	assert_int_equal(grade_item(open, "答案：血压下降", &r), 0);
	assert_int_equal(r.verdict, GRADE_NEEDS_JUDGE);
	assert_int_equal(grade_item(noans, "x", &r), -EINVAL);
	assert_int_equal(grade_item(NULL, "x", &r), -EINVAL);
	json_decref(mc);
	json_decref(open);
	json_decref(noans);
}

static void test_normalize(void **state)
{
	char *s;

	(void)state;
	s = grade_normalize("  Ｈｅｌｌｏ，　World！「测试」… ");
	assert_string_equal(s, "helloworld测试");
	free(s);
	s = grade_normalize("ÉCOLE—vitamin B₁₂");
	assert_non_null(s);
	free(s);
	assert_null(grade_normalize(NULL));
	assert_string_equal(grade_verdict_name(GRADE_NEEDS_JUDGE), "needs_judge");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_last_statement),
		cmocka_unit_test(test_paraphrase),
		cmocka_unit_test(test_issue10_rules),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_extract_errors),
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_item),
		cmocka_unit_test(test_normalize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
