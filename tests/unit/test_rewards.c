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

#include "stages/prompts.h"
#include "stages/rewards.h"
#include "stages/rl.h"

#define CORPUS "tests/data/rewards_corpus.jsonl"

/* Every line of the corpus: {"case","completion","gold","format","accuracy",
 * "strict_format","strict_accuracy"}, the expected rewards written from the
 * published rules. Prints every mismatch, then fails if any. */
static void test_corpus(void **state)
{
	const struct reward_rules *r1 = rewards_find("r1"), *st = rewards_find("strict");
	FILE *f = fopen(CORPUS, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, total = 0, bad = 0;

	(void)state;
	assert_non_null(f);
	assert_non_null(r1);
	assert_non_null(st);
	while ((n = getline(&line, &cap, f)) > 0) {
		json_error_t jerr;
		json_t *c;
		const char *text, *gold, *name;
		size_t len;
		double got[4], want[4];
		static const char *const keys[4] = { "format", "accuracy", "strict_format",
						     "strict_accuracy" };

		lineno++;
		c = json_loadb(line, (size_t)n, 0, &jerr);
		if (!c)
			fail_msg("%s:%d: %s", CORPUS, lineno, jerr.text);
		text = json_string_value(json_object_get(c, "completion"));
		len = json_string_length(json_object_get(c, "completion"));
		gold = json_string_value(json_object_get(c, "gold"));
		name = json_string_value(json_object_get(c, "case"));
		assert_non_null(text);
		assert_non_null(gold);
		got[0] = r1->format(text, len);
		got[1] = r1->accuracy(text, len, gold);
		got[2] = st->format(text, len);
		got[3] = st->accuracy(text, len, gold);
		for (int i = 0; i < 4; i++) {
			json_t *w = json_object_get(c, keys[i]);

			assert_true(json_is_number(w));
			want[i] = json_number_value(w);
			if (got[i] != want[i]) {
				bad++;
				printf("corpus line %d (%s): %s expected %.1f, got %.1f\n", lineno,
				       name ? name : "?", keys[i], want[i], got[i]);
			}
		}
		total++;
		json_decref(c);
	}
	free(line);
	fclose(f);
	printf("corpus: %d completions, %d mismatches\n", total, bad);
	assert_true(total >= 60);
	assert_int_equal(bad, 0);
}

/* Sizes and bytes the corpus cannot hold: cut sequences, invalid bytes,
 * NUL inside the text, a long completion; nothing reads past len. */
static void test_bytes(void **state)
{
	const struct reward_rules *r1 = rewards_find(NULL);
	static const char cut[] = "<think>x</think><answer>C \xE2\x80</answer>";
	static const char nul[] = "<think>a\0b</think><answer>C</answer>";
	char *big;
	size_t n = (size_t)1 << 20;

	(void)state;
	assert_string_equal(r1->name, "r1");
	assert_null(rewards_find("nope"));
	assert_non_null(rewards_at(1));
	assert_null(rewards_at(2));
	assert_true(r1->format(cut, sizeof(cut) - 1) == 1.0);
	assert_true(r1->accuracy(cut, sizeof(cut) - 1, "C") == 0.5);
	assert_true(r1->format(nul, sizeof(nul) - 1) == 1.0);
	assert_true(r1->accuracy(nul, sizeof(nul) - 1, "C") == 1.0);
	/* only the first len bytes count */
	assert_true(r1->format(nul, 10) == 0.0);
	assert_true(r1->accuracy("<answer>C</answer>", 17, "C") == 0.0);
	assert_true(r1->accuracy("<answer>C</answer>", 18, "") == 0.0);
	assert_true(r1->accuracy("<answer>C</answer>", 18, NULL) == 0.0);
	assert_true(r1->format(NULL, 0) == 0.0);
	big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "<think>", 7);
	memcpy(big + n - 30, "</think>\n<answer>C</answer>", 27);
	memcpy(big + n - 3, "   ", 3);
	assert_true(r1->format(big, n) == 0.0);      /* trailing spaces: no full match */
	assert_true(r1->accuracy(big, n, "c") == 1.0);
	assert_true(r1->format(big, n - 3) == 1.0);
	free(big);
}

/* The R1 template renders MedVLM-R1's user text byte for byte: the problem
 * (question, then "K) option" lines), then the published instructions with
 * their indentation, and no system message. */
static void test_r1_prompt(void **state)
{
	static const char want[] =
		"\n        What is apparent in this image?\nA) Hemorrhage\nB) Acute infarct \n"
		"        Your task: \n"
		"        1. Think through the question step by step, enclose your reasoning process "
		"in <think>...</think> tags. \n"
		"        2. Then provide the correct single-letter choice (A, B, C, D,...) inside "
		"<answer>...</answer> tags.\n"
		"        3. No extra information or text outside of these tags.\n"
		"        ";
	json_t *snap = NULL, *msgs = NULL, *item;
	char err[256];

	(void)state;
	assert_int_equal(prompts_load_dir(NULL, &snap, err, sizeof(err)), 0);
	item = json_pack("{s:s, s:{s:s, s:s}, s:s}", "question", "What is apparent in this image?",
			 "options", "A", "Hemorrhage", "B", "Acute infarct", "answer", "B");
	assert_int_equal(prompts_render(snap, "r1", item, NULL, &msgs, err, sizeof(err)), 0);
	assert_int_equal(json_array_size(msgs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "user");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "content")), want);
	json_decref(msgs);
	json_decref(item);
	json_decref(snap);
}

/* rl options, the artifact after each sample, the keep rule and the report. */
static void test_rl(void **state)
{
	struct rl_opts o;
	struct mt_err err = { 0 };
	struct rl_report rep = { 0 };
	json_t *art = NULL, *next, *spec, *rj;
	static const char *const replies[4] = {
		"<think>a</think><answer>C</answer>", "<think>b</think><answer>B</answer>",
		"<answer>C</answer>", "<think>d</think><answer>C.</answer>"
	};
	bool complete;

	(void)state;
	assert_int_equal(rl_opts_parse(NULL, &o, &err), 0);
	assert_int_equal(o.num_generations, 4);
	assert_true(o.temperature == 1.0);
	assert_string_equal(o.keep->name, "mixed");
	assert_string_equal(o.rewards, "r1");
	spec = json_pack("{s:i}", "num_generations", 0);
	assert_int_equal(rl_opts_parse(spec, &o, &err), -EINVAL);
	assert_string_equal(err.field, "rl.num_generations");
	json_decref(spec);
	spec = json_pack("{s:s}", "keep", "some");
	assert_int_equal(rl_opts_parse(spec, &o, &err), -EINVAL);
	assert_string_equal(err.field, "rl.keep");
	json_decref(spec);
	spec = json_pack("{s:s}", "colour", "red");
	assert_int_equal(rl_opts_parse(spec, &o, &err), -EINVAL);
	json_decref(spec);
	spec = json_pack("{s:i, s:f, s:s, s:s}", "num_generations", 4, "temperature", 0.7, "keep",
			 "mixed", "rewards", "r1");
	assert_int_equal(rl_opts_parse(spec, &o, &err), 0);
	json_decref(spec);
	rj = rl_opts_json(&o);
	assert_int_equal(json_integer_value(json_object_get(rj, "num_generations")), 4);
	json_decref(rj);
	for (int i = 0; i < 4; i++) {
		next = rl_artifact_add(&o, art, replies[i], "C", false, &complete);
		assert_non_null(next);
		assert_int_equal(rl_samples(next), i + 1);
		assert_int_equal(complete, i == 3);
		json_decref(art);
		art = next;
	}
	/* accuracy 1, 0, 1, 0.5: pass rate 0.5; format 1, 1, 0, 1 */
	assert_true(json_real_value(json_object_get(art, "pass_rate")) == 0.5);
	assert_int_equal(json_integer_value(json_object_get(art, "format_failures")), 1);
	assert_true(json_real_value(json_object_get(art, "reward_mean")) == (2 + 1 + 1 + 1.5) / 4);
	assert_true(json_real_value(json_object_get(art, "reward_std")) > 0.35);
	assert_true(json_is_true(json_object_get(art, "kept")));
	rl_report_add(&rep, art);
	rl_report_add(&rep, json_object_get(art, "samples")); /* not an artifact: ignored */
	rj = rl_report_json(&rep, &o);
	assert_int_equal(json_integer_value(json_object_get(rj, "items")), 1);
	assert_int_equal(json_integer_value(json_object_get(rj, "kept")), 1);
	assert_int_equal(json_integer_value(json_object_get(rj, "samples")), 4);
	assert_int_equal(json_integer_value(
				 json_object_get(json_object_get(rj, "pass_rate_histogram"), "(0.25,0.5]")),
			 1);
	json_decref(rj);
	json_decref(art);
	/* every sample right: not kept by mixed, kept by all */
	assert_false(rl_keep_find("mixed")->keep(1.0));
	assert_false(rl_keep_find("mixed")->keep(0.0));
	assert_true(rl_keep_find("all")->keep(0.0));
	assert_null(rl_keep_find(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_r1_prompt),
		cmocka_unit_test(test_rl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
