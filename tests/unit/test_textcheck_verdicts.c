/* layers: stages store common */
/* Verdicts of the reply screening pinned before its algorithms were made
 * cheaper (issue 17): every case below states the exact verdict and reason
 * the screening gave, at and around each threshold, on Chinese text,
 * invalid bytes and the echo of a prompt; and test_golden screens the real
 * replies of ../shared/data (MedThink and the answers sets), plain and
 * mutated (passages repeated, prompt lines pasted in, two replies joined and
 * cut), against tests/unit/textcheck_golden.txt: per set, how many texts each
 * check caught and a digest of every verdict and reason. A change of the
 * screening that moves any verdict or reason fails here.
 * TEXTCHECK_GOLDEN_WRITE=1 rewrites the golden file (only when a verdict is
 * meant to change: say so in the commit); TEXTCHECK_GOLDEN_DUMP=path writes
 * one line per text (index, kind, reason hash) to compare two builds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/utf8.h"
#include "stages/prompts.h"
#include "stages/steps.h"
#include "stages/textcheck.h"
#include "tests/unit/medthink_data.h"

#define GOLDEN_PATH "tests/unit/textcheck_golden.txt"
#define ANSWERS_DIR "../shared/data/answers/"

/* Screens text (every check, max_tokens 1500); the kind that fired or -1,
 * and the reason. */
static int run(json_t *item, json_t *prompt, const char *quotable, const char *text, char *reason)
{
	struct textcheck_input in = { .text = text, .item = item, .prompt = prompt,
				      .quotable = quotable, .max_tokens = 1500,
				      .checks = TEXTCHECK_ALL };
	struct textcheck_result r;
	int rc = textcheck_run(&in, &r);

	assert_true(rc == 0 || rc == 1);
	assert_int_equal(utf8_check(r.reason, strlen(r.reason)), strlen(r.reason));
	if (reason)
		strcpy(reason, r.reason);
	return rc ? r.kind : -1;
}

static void expect(json_t *item, json_t *prompt, const char *quotable, const char *text, int kind,
		   const char *reason)
{
	char got[256];
	int k = run(item, prompt, quotable, text, got);

	if (k != kind || strcmp(got, reason) != 0)
		print_message("text: %.120s\nwant %d \"%s\"\ngot  %d \"%s\"\n", text, kind, reason, k,
			      got);
	assert_int_equal(k, kind);
	assert_string_equal(got, reason);
}

static uint64_t rng_next(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* n bytes of lower-case words that repeat nothing: no loop, no repeated
 * n-gram, no repeated line. */
static void filler(char *dst, size_t n, uint64_t seed)
{
	size_t i = 0;

	while (i < n) {
		size_t w = 3 + rng_next(&seed) % 6;

		for (size_t k = 0; k < w && i < n; k++)
			dst[i++] = (char)('a' + rng_next(&seed) % 26);
		if (i < n)
			dst[i++] = ' ';
	}
	dst[n] = '\0';
}

/* Like filler, with a word of the English item every fourth word: on topic. */
static void filler_on(char *dst, size_t n, uint64_t seed)
{
	static const char *const words[] = { "epigastric", "pain", "relieved", "food", "treatment",
					     "man", "year", "best" };
	size_t i = 0, w = 0;

	while (i < n) {
		const char *x = words[rng_next(&seed) % 8];
		size_t len = 3 + rng_next(&seed) % 6;

		if (w % 4 == 3)
			for (size_t k = 0; x[k] && i < n; k++)
				dst[i++] = x[k];
		else
			for (size_t k = 0; k < len && i < n; k++)
				dst[i++] = (char)('a' + rng_next(&seed) % 26);
		if (i < n)
			dst[i++] = ' ';
		w++;
	}
	dst[n] = '\0';
}

/* n Han characters, no repeats to speak of. */
static void filler_han(char *dst, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t c = 0x4E00 + (uint32_t)(rng_next(&seed) % 8000);

		dst[3 * i] = (char)(0xE0 | (c >> 12));
		dst[3 * i + 1] = (char)(0x80 | ((c >> 6) & 0x3F));
		dst[3 * i + 2] = (char)(0x80 | (c & 0x3F));
	}
	dst[3 * n] = '\0';
}

static char *repeat(char *dst, const char *unit, int times)
{
	for (int i = 0; i < times; i++)
		strcat(dst, unit);
	return dst;
}

static json_t *en_item(void)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s}", "id", "e1", "question",
			 "A 36-year-old man has epigastric pain relieved by food. Best treatment?",
			 "options", "A", "Omeprazole plus antibiotics", "B", "Surgery", "C",
			 "Metoclopramide", "D", "Observation", "answer", "A");
}

/* An item with no letters: the language and topic checks have nothing to
 * compare with, so only the check under test can fire. */
static json_t *bare_item(void)
{
	return json_pack("{s:s, s:s}", "id", "b1", "question", "?");
}

static json_t *zh_item(void)
{
	return json_pack("{s:s, s:s, s:s}", "id", "z1", "question",
			 "男，36岁，间断上腹痛5年，空腹时出现，Hp阳性。最佳治疗方案是", "answer",
			 "奥美拉唑＋CBS＋抗生素治疗");
}

/* A unit repeated back to back, at and below each threshold. */
static void test_loop_thresholds(void **state)
{
	json_t *en = bare_item(), *zh = bare_item();
	char t[4096], a[128], b[128];
	(void)state;
	filler(a, 40, 1);
	filler(b, 40, 2);
	/* period 2: 64 bytes is a loop, 63 is not */
	snprintf(t, sizeof(t), "%s. ", a), repeat(t, "ab", 32), strcat(t, " ."), strcat(t, b);
	expect(en, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: a runaway loop: \"ab\" repeated 32 times");
	snprintf(t, sizeof(t), "%s. ", a), repeat(t, "ab", 31), strcat(t, "a ."), strcat(t, b);
	expect(en, NULL, NULL, t, -1, "");
	/* period 16: 8 repeats is a loop, 7 are not */
	snprintf(t, sizeof(t), "%s. ", a), repeat(t, "0123456789abcdef", 8), strcat(t, " ."),
		strcat(t, b);
	expect(en, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: a runaway loop: \"0123456789abcdef\" repeated 8 times");
	snprintf(t, sizeof(t), "%s. ", a), repeat(t, "0123456789abcdef", 7), strcat(t, " ."),
		strcat(t, b);
	expect(en, NULL, NULL, t, -1, "");
	/* period 64 is the longest unit; 65 is not a loop (but a degenerate text) */
	{
		char u[80];

		filler(u, 64, 3);
		snprintf(t, sizeof(t), "%s. ", a), repeat(t, u, 8), strcat(t, " ."), strcat(t, b);
		expect(en, NULL, NULL, t, TEXTCHECK_REPETITION,
		       "repetition: a runaway loop: \"dbhizm wkajidw ypy autn jszdq rdgrkj qspknky "
		       "rbki hffkd dqcj...\" repeated 8 times");
		filler(u, 65, 3);
		snprintf(t, sizeof(t), "%s. ", a), repeat(t, u, 8), strcat(t, " ."), strcat(t, b);
		expect(en, NULL, NULL, t, TEXTCHECK_REPETITION,
		       "repetition: degenerate text: 86% of it is passages repeated 3 times or more");
	}
	/* CJK: "哈" is 3 bytes, so 22 (66 bytes) is a loop and 21 (63) is not */
	filler_han(a, 20, 4);
	filler_han(b, 20, 5);
	snprintf(t, sizeof(t), "%s", a), repeat(t, "哈", 22), strcat(t, b);
	expect(zh, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: a runaway loop: \"哈\" repeated 22 times");
	snprintf(t, sizeof(t), "%s", a), repeat(t, "哈", 21), strcat(t, b);
	expect(zh, NULL, NULL, t, -1, "");
	/* the run starts where the text starts repeating, even inside a
	 * character: the excerpt then begins with a replaced byte */
	snprintf(t, sizeof(t), "%s好", a), repeat(t, "的好", 11), strcat(t, b);
	expect(zh, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: a runaway loop: \"好的\" repeated 11 times");
	/* a blank loop is no loop; a later one of the same period is */
	filler(a, 40, 1);
	snprintf(t, sizeof(t), "%s\n", a), repeat(t, "-=", 40), strcat(t, "\n"), strcat(t, b),
		repeat(t, "x;", 33);
	expect(en, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: a runaway loop: \"x;\" repeated 33 times");
	snprintf(t, sizeof(t), "%s", a), repeat(t, " ", 200), strcat(t, "end.");
	expect(en, NULL, NULL, t, -1, "");
	/* the smallest period wins over an earlier loop of a longer one */
	snprintf(t, sizeof(t), "%s ", a), repeat(t, "abcd", 20), strcat(t, " mid "), repeat(t, "xyz", 25);
	expect(en, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: a runaway loop: \"xyz\" repeated 25 times");
	/* a loop that runs to the very end of the text */
	snprintf(t, sizeof(t), "%s ", a), repeat(t, "qrs", 30);
	expect(en, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: a runaway loop: \"qrs\" repeated 30 times");
	json_decref(en);
	json_decref(zh);
}

/* Passages of 30+ bytes occurring 3 times: 240 bytes and 30% of the text. */
static void test_gram_thresholds(void **state)
{
	json_t *en = bare_item(), *zh = bare_item();
	char t[8192], p[256], f[2048];
	(void)state;
	filler(p, 80, 11);
	/* 3 x 80 = 240 bytes covered in an 800-byte text: degenerate */
	filler(f, 800 - 240, 12);
	snprintf(t, sizeof(t), "%.180s%s%.190s%s%.190s%s", f, p, f + 180, p, f + 370, p);
	assert_int_equal(strlen(t), 800);
	expect(en, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: degenerate text: 30% of it is passages repeated 3 times or more");
	/* one byte more text: under 30% */
	filler(f, 801 - 240, 12);
	snprintf(t, sizeof(t), "%.180s%s%.190s%s%.191s%s", f, p, f + 180, p, f + 370, p);
	assert_int_equal(strlen(t), 801);
	expect(en, NULL, NULL, t, -1, "");
	/* a 79-byte passage covers 237 bytes: under 240 */
	filler(f, 700, 13);
	p[79] = '\0';
	snprintf(t, sizeof(t), "%.100s%s%.100s%s%.100s%s", f, p, f + 100, p, f + 200, p);
	expect(en, NULL, NULL, t, -1, "");
	/* twice is not three times */
	filler(p, 200, 14);
	snprintf(t, sizeof(t), "%.100s%s%.100s%s", f, p, f + 100, p);
	expect(en, NULL, NULL, t, -1, "");
	/* Chinese passages: windows start on characters only */
	filler_han(p, 30, 15);
	filler_han(f, 120, 16);
	snprintf(t, sizeof(t), "%.90s%s%.90s%s%.90s%s", f, p, f + 90, p, f + 180, p);
	expect(zh, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: degenerate text: 50% of it is passages repeated 3 times or more");
	/* blank passages do not count */
	snprintf(t, sizeof(t), "%.200s\n%s\n", f, "- - - - - - - - - - - - - - - - - - - - - - - -");
	strcat(t, "- - - - - - - - - - - - - - - - - - - - - - - - -\n");
	strcat(t, "- - - - - - - - - - - - - - - - - - - - - - - - - -\n");
	expect(zh, NULL, NULL, t, -1, "");
	json_decref(en);
	json_decref(zh);
}

/* One line of 18+ bytes (trimmed) three times. */
static void test_line_thresholds(void **state)
{
	json_t *en = bare_item();
	char t[4096], a[256];
	(void)state;
	filler(a, 200, 21);
	snprintf(t, sizeof(t), "%.60s\n## Step: reasoning\n%.60s\n  ## Step: reasoning\r\n%.60s\n"
		 "## Step: reasoning\t\n", a, a + 60, a + 120);
	expect(en, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: the line \"## Step: reasoning\" repeats 3 times");
	snprintf(t, sizeof(t), "%.60s\n## Step: reasonin\n%.60s\n## Step: reasonin\n%.60s\n"
		 "## Step: reasonin\n", a, a + 60, a + 120);
	expect(en, NULL, NULL, t, -1, "");
	snprintf(t, sizeof(t), "%.60s\n## Step: reasoning\n%.60s\n## Step: reasoning\n%.60s\n", a,
		 a + 60, a + 120);
	expect(en, NULL, NULL, t, -1, "");
	/* Chinese lines, and the count covers every copy */
	snprintf(t, sizeof(t), "%.60s\n以下是正确答案：\n%.60s\n以下是正确答案：\n%.60s\n以下是正确答案：\n"
		 "以下是正确答案：", a, a + 60, a + 120);
	expect(en, NULL, NULL, t, TEXTCHECK_REPETITION,
	       "repetition: the line \"以下是正确答案：\" repeats 4 times");
	json_decref(en);
}

static json_t *prompt_of(const char *system, const char *user)
{
	return json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content", system, "role",
			 "user", "content", user);
}

/* Prompt lines of 24+ bytes, 40 bytes in all; item text and quotable text
 * are not echoes; chat-template tokens. */
static void test_echo_thresholds(void **state)
{
	json_t *en = en_item(), *zh = zh_item(), *pr, *parts;
	char t[4096], reply[1024];
	const char *user =
		"### Task: explain\n"
		"Explain it to a student ab.\n"          /* 27 bytes */
		"Keep it under 300 words.\n"             /* 24 bytes */
		"Use plain words only.\n"                /* 22 bytes: too short to count */
		"Question: A 36-year-old man has epigastric pain relieved by food. Best treatment?\n"
		"A. Omeprazole plus antibiotics (first line)\n" /* holds an option */
		"C. Metoclopramide\n"
		"D. Observation is never the right answer here\n"; /* "Observation" is 11 bytes */
	(void)state;
	filler_on(reply, 300, 31);
	pr = prompt_of("You are an expert physician and medical teacher.", user);
	/* 27 + 24 = 51 bytes: an echo */
	snprintf(t, sizeof(t), "Explain it to a student ab.\n%s\nKeep it under 300 words.", reply);
	expect(en, pr, NULL, t, TEXTCHECK_ECHO,
	       "echo: the reply echoes 51 bytes of the prompt template (\"Explain it to a student "
	       "ab.\")");
	/* 27 alone is under 40; the 22-byte line does not count */
	snprintf(t, sizeof(t), "Explain it to a student ab.\n%s\nUse plain words only.", reply);
	expect(en, pr, NULL, t, -1, "");
	/* the system line is prompt text too: 49 bytes */
	snprintf(t, sizeof(t), "You are an expert physician and medical teacher.\n%s", reply);
	expect(en, pr, NULL, t, TEXTCHECK_ECHO,
	       "echo: the reply echoes 48 bytes of the prompt template (\"You are an expert "
	       "physician and medical teacher.\")");
	/* lines holding the question or an option are the item's */
	snprintf(t, sizeof(t),
		 "Question: A 36-year-old man has epigastric pain relieved by food. Best treatment?\n"
		 "A. Omeprazole plus antibiotics (first line)\n%s\n"
		 "D. Observation is never the right answer here", reply);
	expect(en, pr, NULL, t, -1, "");
	/* an echoed line inside a longer reply line, and the quotable text */
	snprintf(t, sizeof(t), "%s I said: Explain it to a student ab. And Keep it under 300 words. ok",
		 reply);
	expect(en, pr, NULL, t, TEXTCHECK_ECHO,
	       "echo: the reply echoes 51 bytes of the prompt template (\"Explain it to a student "
	       "ab.\")");
	expect(en, pr, "Explain it to a student ab.", t, -1, "");
	/* content parts (an item with images) are read the same way */
	parts = json_pack("[{s:s, s:s}, {s:s, s:[{s:s, s:s}, {s:s, s:{s:s}}]}]", "role", "system",
			  "content", "You are an expert physician and medical teacher.", "role",
			  "user", "content", "type", "text", "text", user, "type", "image_url",
			  "image_url", "url", "data:image/png;base64,AAAA");
	snprintf(t, sizeof(t), "Explain it to a student ab.\n%s\nKeep it under 300 words.", reply);
	expect(en, parts, NULL, t, TEXTCHECK_ECHO,
	       "echo: the reply echoes 51 bytes of the prompt template (\"Explain it to a student "
	       "ab.\")");
	/* chat tokens: not when the item's question holds it; yes when only
	 * its reference explanation does */
	snprintf(t, sizeof(t), "%s\n[INST] next", reply);
	expect(en, NULL, NULL, t, TEXTCHECK_ECHO,
	       "echo: the reply holds the chat-template token [INST]");
	json_object_set_new(en, "explanation", json_string("see [INST] here"));
	expect(en, NULL, NULL, t, TEXTCHECK_ECHO,
	       "echo: the reply holds the chat-template token [INST]");
	json_object_set_new(en, "question", json_string("What does [INST] mean in a prompt?"));
	expect(en, NULL, NULL, t, -1, "");
	/* Chinese prompt lines */
	json_decref(pr);
	pr = prompt_of("你是一名资深的医学教师。", "### 任务\n请用中文写出详细的解题思路。\n问题：\n"
		       "男，36岁，间断上腹痛5年，空腹时出现，Hp阳性。最佳治疗方案是\n");
	snprintf(t, sizeof(t), "男，36岁，间断上腹痛5年，空腹时出现，Hp阳性。"
		 "最佳治疗方案是\n奥美拉唑＋CBS＋抗生素治疗，理由如下：幽门螺杆菌阳性需要根除治疗。");
	expect(zh, pr, NULL, t, -1, "");
	snprintf(t, sizeof(t), "请用中文写出详细的解题思路。\n你是一名资深的医学教师。\n"
		 "奥美拉唑＋CBS＋抗生素治疗，理由如下：幽门螺杆菌阳性需要根除治疗。");
	expect(zh, pr, NULL, t, TEXTCHECK_ECHO,
	       "echo: the reply echoes 78 bytes of the prompt template (\"你是一名资深的医学教师。\")");
	json_decref(parts);
	json_decref(pr);
	json_decref(en);
	json_decref(zh);
}

/* A new task the reply sets itself, and the phrases the prompt asks. */
static void test_new_task_prompt(void **state)
{
	json_t *zh = zh_item(), *pr;
	char t[2048];
	(void)state;
	snprintf(t, sizeof(t), "奥美拉唑＋CBS＋抗生素治疗，幽门螺杆菌阳性需要根除治疗。\n"
		 "下面请回答：慢性胃炎的病因是什么");
	expect(zh, NULL, NULL, t, TEXTCHECK_NEW_TASK,
	       "new_task: the reply sets itself a new task: \"下面请回答：慢性胃炎的病因是什么\"");
	/* the template asks it: not a new task */
	pr = prompt_of("你是一名资深的医学教师。", "下面请回答这道题。\n男，36岁");
	expect(zh, pr, NULL, t, -1, "");
	/* unless the item's reference explanation holds it too */
	json_object_set_new(zh, "explanation", json_string("……下面请回答另一题"));
	expect(zh, pr, NULL, t, TEXTCHECK_NEW_TASK,
	       "new_task: the reply sets itself a new task: \"下面请回答：慢性胃炎的病因是什么\"");
	/* an acknowledgement on a later line with a question */
	json_object_del(zh, "explanation");
	snprintf(t, sizeof(t), "奥美拉唑＋CBS＋抗生素治疗。\nOkay, what about this one?");
	expect(zh, NULL, NULL, t, TEXTCHECK_NEW_TASK,
	       "new_task: the reply answers a turn of its own: \"Okay, what about this one?\"");
	snprintf(t, sizeof(t), "Okay, what about this one?\n奥美拉唑＋CBS＋抗生素治疗。");
	expect(zh, NULL, NULL, t, -1, "");
	json_decref(pr);
	json_decref(zh);
}

/* The language shares at their thresholds, 4-byte characters, bad bytes. */
static void test_language_thresholds(void **state)
{
	json_t *en = en_item(), *zh = zh_item();
	(void)state;
	/* 4 Han of 20 letters is 20%: Chinese enough; 4 of 21 is 19% */
	expect(zh, NULL, NULL, "胃溃疡病 abcd efgh ijkl mnop", -1, "");
	expect(zh, NULL, NULL, "胃溃疡病 abcd efgh ijkl mnopq", TEXTCHECK_LANGUAGE,
	       "language: the item is in Chinese (CJK 86% of letters) but the reply is not (CJK "
	       "19%)");
	/* a Latin item: 50% CJK is fine, 51% is not */
	expect(en, NULL, NULL, "胃溃疡病胃溃疡病胃溃 abcde fghij", -1, "");
	expect(en, NULL, NULL, "胃溃疡病胃溃疡病胃溃疡 abcde fghij", TEXTCHECK_LANGUAGE,
	       "language: the item is in a Latin-script language (CJK 0% of letters) but the reply "
	       "is in CJK script (52%)");
	/* CJK extension B (4 bytes) is Han; invalid bytes are no letters */
	expect(zh, NULL, NULL, "𠀀𠀁𠀂𠀃 abcd efgh ijkl mnop", -1, "");
	expect(zh, NULL, NULL, "\xe8\x83\xe8\x83\xe8\x83\xe8\x83 abcd efgh ijkl mnop qrst",
	       TEXTCHECK_LANGUAGE,
	       "language: the item is in Chinese (CJK 86% of letters) but the reply is not (CJK "
	       "0%)");
	/* accented Latin letters count as Latin, the multiplication sign not */
	expect(en, NULL, NULL, "胃溃疡病胃溃疡病胃溃疡病 ÀÉÎÕÜ ××××× abc", TEXTCHECK_LANGUAGE,
	       "language: the item is in a Latin-script language (CJK 0% of letters) but the reply "
	       "is in CJK script (60%)");
	json_decref(en);
	json_decref(zh);
}

/* A runaway tail of whole lines off the question. */
static void test_off_topic_tail(void **state)
{
	json_t *zh = zh_item();
	char t[8192], f[2048];
	(void)state;
	filler_han(f, 200, 41);
	/* the answer line, then a tail of unrelated Han text */
	snprintf(t, sizeof(t), "答案：奥美拉唑＋CBS＋抗生素治疗\n%.150s\n%.150s\n%.150s\n", f, f + 150,
		 f + 300);
	expect(zh, NULL, NULL, t, TEXTCHECK_OFF_TOPIC,
	       "off_topic: a runaway tail off the question: the last 94% of the reply shares 0 of "
	       "its 147 terms with the item and what precedes it");
	/* the same tail after an answer that is most of the reply: under 75% */
	snprintf(t, sizeof(t), "答案：奥美拉唑＋CBS＋抗生素治疗\n男性患者间断上腹痛，空腹时出现，提示十二指肠溃疡。\n"
		 "Hp阳性说明幽门螺杆菌感染，最佳治疗方案是根除治疗。\n奥美拉唑抑制胃酸，抗生素根除Hp。\n"
		 "%.60s\n", f);
	expect(zh, NULL, NULL, t, -1, "");
	json_decref(zh);
}

/* ---- the golden verdicts on the real data --------------------------------- */

struct golden_set {
	char name[64];
	size_t n, kinds[TEXTCHECK__N + 1]; /* kinds[TEXTCHECK__N]: clean */
	uint64_t digest;
};

struct golden {
	struct golden_set sets[64];
	size_t n;
	FILE *dump;
	json_t *prompts;
	size_t same; /* texts screened against the request's messages too */
};

static struct golden_set *golden_set(struct golden *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->sets[i].name, name) == 0)
			return &g->sets[i];
	assert_true(g->n < sizeof(g->sets) / sizeof(g->sets[0]));
	memset(&g->sets[g->n], 0, sizeof(g->sets[0]));
	snprintf(g->sets[g->n].name, sizeof(g->sets[0].name), "%s", name);
	g->sets[g->n].digest = FNV1A64_INIT;
	return &g->sets[g->n++];
}

static void golden_add(struct golden *g, const char *set, const char *variant, size_t idx,
		       json_t *item, json_t *prompt, const char *text)
{
	char name[64], reason[256];
	struct golden_set *s;
	int k;
	uint64_t rh;

	snprintf(name, sizeof(name), "%s/%s", set, variant);
	s = golden_set(g, name);
	k = run(item, prompt, NULL, text, reason);
	rh = fnv1a64(FNV1A64_INIT, reason, strlen(reason));
	s->n++;
	s->kinds[k < 0 ? TEXTCHECK__N : k]++;
	s->digest = fnv1a64(s->digest, &idx, sizeof(idx));
	s->digest = fnv1a64(s->digest, &k, sizeof(k));
	s->digest = fnv1a64(s->digest, reason, strlen(reason));
	if (g->dump)
		fprintf(g->dump, "%s %zu %d %016llx\n", name, idx, k, (unsigned long long)rh);
}

/* A character boundary at or before off. */
static size_t boundary(const char *s, size_t off)
{
	while (off > 0 && ((unsigned char)s[off] & 0xC0) == 0x80)
		off--;
	return off;
}

/* The text of the user message of the rendered explain prompt. */
static const char *prompt_user(json_t *prompt)
{
	return json_string_value(
		json_object_get(json_array_get(prompt, json_array_size(prompt) - 1), "content"));
}

/* The daemon screens a first ask's reply against the messages its request
 * sent (step_request_build: content parts when the item has images) instead
 * of the prompt rendered again: the same verdict and reason, with and
 * without images. */
static void same_as_request(struct golden *g, json_t *item, json_t *prompt, const char *text)
{
	struct step_ctx ctx = { .item = item, .prompts = g->prompts };
	struct step_request req;
	char err[200], want[256], got[256];
	json_t *img;
	int k;

	if (!prompt)
		return;
	img = json_deep_copy(item);
	k = run(item, prompt, NULL, text, want);
	assert_int_equal(step_request_build(STEP_EXPLAIN, &ctx, &req, err, sizeof(err)), 0);
	assert_int_equal(run(item, req.messages, NULL, text, got), k);
	assert_string_equal(got, want);
	step_request_clear(&req);
	json_object_set_new(img, "images", json_pack("[s]", "data:image/png;base64,AAAA"));
	ctx.item = img;
	assert_int_equal(step_request_build(STEP_EXPLAIN, &ctx, &req, err, sizeof(err)), 0);
	assert_true(json_is_array(json_object_get(
		json_array_get(req.messages, json_array_size(req.messages) - 1), "content")));
	assert_int_equal(run(item, req.messages, NULL, text, got), k);
	assert_string_equal(got, want);
	g->same++;
	step_request_clear(&req);
	json_decref(img);
}

/* Screens text as it is and mutated (seeded by idx): a passage of it
 * repeated, prompt lines pasted in, and joined with other (another reply)
 * and cut. */
static void golden_text(struct golden *g, const char *set, size_t idx, json_t *item,
			const char *text, const char *other)
{
	json_t *prompt = NULL;
	char err[200];
	size_t n = strlen(text), cap = 3 * n + 8192;
	char *t = malloc(cap);
	uint64_t seed = idx * 7919 + 17;

	assert_non_null(t);
	if (prompts_render(g->prompts, "explain", item, NULL, &prompt, err, sizeof(err)) != 0)
		prompt = NULL;
	golden_add(g, set, "plain", idx, item, prompt, text);
	same_as_request(g, item, prompt, text);
	/* a passage repeated */
	if (n > 0) {
		size_t a = boundary(text, rng_next(&seed) % n), len, at, k, sep;

		len = 1 + rng_next(&seed) % 120;
		if (a + len > n)
			len = n - a;
		len = boundary(text, a + len) - a;
		if (len == 0)
			len = n - a < 3 ? n - a : 3;
		k = 2 + rng_next(&seed) % 12;
		sep = rng_next(&seed) % 3;
		at = boundary(text, rng_next(&seed) % (n + 1));
		memcpy(t, text, at);
		t[at] = '\0';
		for (size_t i = 0; i < k && strlen(t) + len + 2 < cap - n; i++) {
			strncat(t, text + a, len);
			if (sep == 1)
				strcat(t, "\n");
			else if (sep == 2)
				strcat(t, " ");
		}
		strcat(t, text + at);
		golden_add(g, set, "repeat", idx, item, prompt, t);
	}
	/* lines of the prompt pasted in */
	if (prompt_user(prompt)) {
		const char *u = prompt_user(prompt);
		size_t un = strlen(u), at = boundary(text, n ? rng_next(&seed) % (n + 1) : 0);
		size_t a = boundary(u, rng_next(&seed) % (un + 1)), len = rng_next(&seed) % 400;

		if (a + len > un)
			len = un - a;
		len = boundary(u, a + len) - a;
		if (len > 4096)
			len = 4096;
		memcpy(t, text, at);
		memcpy(t + at, u + a, len);
		strcpy(t + at + len, text + at);
		golden_add(g, set, "echo", idx, item, prompt, t);
		same_as_request(g, item, prompt, t);
	}
	/* joined with another reply, cut */
	if (other) {
		size_t on = strlen(other), cut;

		if (on > n + 4096)
			on = boundary(other, n + 4096);
		memcpy(t, text, n);
		t[n] = '\n';
		memcpy(t + n + 1, other, on);
		cut = boundary(t, n + 1 + (on ? rng_next(&seed) % (on + 1) : 0));
		t[cut] = '\0';
		golden_add(g, set, "joined", idx, item, prompt, t);
	}
	json_decref(prompt);
	free(t);
}

static void golden_medthink(struct golden *g)
{
	struct medthink_set s;

	if (medthink_load(MEDTHINK_ALL, &s)) {
		print_message("skipped medthink: %s is not there\n", MEDTHINK_ALL);
		return;
	}
	for (size_t i = 0; i < s.n; i++)
		golden_text(g, "medthink", i, s.r[i].item, s.r[i].reply,
			    s.r[(i * 37 + 11) % s.n].reply);
	medthink_free(&s);
}

/* An answers row as an item: question, options, gold. */
static json_t *answers_item(json_t *row, const char *qkey, const char *gkey)
{
	json_t *item = json_object();

	json_object_set(item, "question", json_object_get(row, qkey));
	if (json_is_object(json_object_get(row, "options")))
		json_object_set(item, "options", json_object_get(row, "options"));
	if (json_is_string(json_object_get(row, gkey)))
		json_object_set(item, "answer", json_object_get(row, gkey));
	return item;
}

/* every: only every n-th row (the vlievin sets ask each question 30 times). */
static void golden_answers(struct golden *g, const char *file, const char *set, const char *qkey,
			   const char *gkey, size_t every)
{
	char path[256];
	json_t *rows = NULL;
	size_t n;

	snprintf(path, sizeof(path), ANSWERS_DIR "%s", file);
	if (strstr(file, ".jsonl")) {
		FILE *f = fopen(path, "r");
		char *line = NULL;
		size_t cap = 0;

		if (!f) {
			print_message("skipped %s: not there\n", path);
			return;
		}
		rows = json_array();
		while (getline(&line, &cap, f) > 0)
			json_array_append_new(rows, json_loads(line, 0, NULL));
		free(line);
		fclose(f);
	} else {
		rows = json_load_file(path, 0, NULL);
		if (!json_is_array(rows)) {
			print_message("skipped %s: not there\n", path);
			json_decref(rows);
			return;
		}
	}
	n = json_array_size(rows);
	for (size_t i = 0; i < n; i += every) {
		json_t *row = json_array_get(rows, i), *item;
		const char *text = json_string_value(json_object_get(row, "raw_response"));
		const char *other = json_string_value(
			json_object_get(json_array_get(rows, (i * 37 + 11) % n), "raw_response"));

		if (!text || !json_is_string(json_object_get(row, qkey)))
			continue;
		item = answers_item(row, qkey, gkey);
		golden_text(g, set, i, item, text, other);
		json_decref(item);
	}
	json_decref(rows);
}

static void test_golden(void **state)
{
	struct golden *g = calloc(1, sizeof(*g));
	char err[256], line[512];
	const char *dump = getenv("TEXTCHECK_GOLDEN_DUMP");
	FILE *f;
	size_t matched = 0, want = 0;
	(void)state;
	assert_non_null(g);
	assert_int_equal(prompts_load_dir("conf/prompts", &g->prompts, err, sizeof(err)), 0);
	if (dump && *dump)
		g->dump = fopen(dump, "w");
	golden_medthink(g);
	golden_answers(g, "medagents_cot.json", "medagents_cot", "question", "answer_idx", 1);
	golden_answers(g, "medagents_few_shot.json", "medagents_few_shot", "question",
		       "answer_idx", 1);
	golden_answers(g, "vlievin_usmle.jsonl", "vlievin_usmle", "question_with_options", "gold",
		       4);
	golden_answers(g, "vlievin_medmcqa.jsonl", "vlievin_medmcqa", "question_with_options",
		       "gold", 8);
	golden_answers(g, "vlievin_pubmedqa.jsonl", "vlievin_pubmedqa", "question_with_options",
		       "gold", 4);
	if (g->dump)
		fclose(g->dump);
	print_message("%zu texts screened against the request's messages too\n", g->same);
	if (g->n == 0) {
		print_message("skipped: none of the data is there\n");
		json_decref(g->prompts);
		free(g);
		skip();
		return;
	}
	if (getenv("TEXTCHECK_GOLDEN_WRITE")) {
		f = fopen(GOLDEN_PATH, "w");
		assert_non_null(f);
		fprintf(f, "# set/variant texts truncated too_long repetition echo new_task language "
			   "off_topic clean digest (tests/unit/test_textcheck_verdicts.c)\n");
		for (size_t i = 0; i < g->n; i++) {
			struct golden_set *s = &g->sets[i];

			fprintf(f, "%s %zu", s->name, s->n);
			for (int k = 0; k <= TEXTCHECK__N; k++)
				fprintf(f, " %zu", s->kinds[k]);
			fprintf(f, " %016llx\n", (unsigned long long)s->digest);
		}
		fclose(f);
	}
	f = fopen(GOLDEN_PATH, "r");
	assert_non_null(f);
	for (size_t i = 0; i < g->n; i++) {
		struct golden_set *s = &g->sets[i];
		char mine[512];
		size_t l = 0;

		l += (size_t)snprintf(mine + l, sizeof(mine) - l, "%s %zu", s->name, s->n);
		for (int k = 0; k <= TEXTCHECK__N; k++)
			l += (size_t)snprintf(mine + l, sizeof(mine) - l, " %zu", s->kinds[k]);
		snprintf(mine + l, sizeof(mine) - l, " %016llx\n", (unsigned long long)s->digest);
		print_message("%s", mine);
		rewind(f);
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, s->name, strlen(s->name)) == 0 &&
			    line[strlen(s->name)] == ' ') {
				want++;
				if (strcmp(line, mine) == 0)
					matched++;
				else
					print_message("golden: %s", line);
			}
		}
	}
	fclose(f);
	json_decref(g->prompts);
	assert_int_equal(want, g->n);
	assert_int_equal(matched, g->n);
	free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_thresholds),
		cmocka_unit_test(test_gram_thresholds),
		cmocka_unit_test(test_line_thresholds),
		cmocka_unit_test(test_echo_thresholds),
		cmocka_unit_test(test_new_task_prompt),
		cmocka_unit_test(test_language_thresholds),
		cmocka_unit_test(test_off_topic_tail),
		cmocka_unit_test(test_golden),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
