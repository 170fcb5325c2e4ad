/* layers: stages formats common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stages/select.h"
#include "stages/selmath.h"
#include "stages/steps.h"
#include "stages/steps_select.h"

static json_t *item(void)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "id", "q1", "question", "Which organ?",
			 "options", "A", "Liver", "B", "Pancreas", "answer", "B");
}

static void test_texts(void **state)
{
	json_t *it = item();
	struct step_ctx ctx = { .item = it };
	char err[120];
	char *p = steps_sel_text_prompt(&ctx, err, sizeof(err));
	char *g = steps_sel_text_gold(&ctx, err, sizeof(err));
	char *e = steps_sel_text_embed(&ctx, err, sizeof(err));

	(void)state;
	assert_string_equal(p, "Question: Which organ?\nA. Liver\nB. Pancreas\nAnswer:");
	assert_string_equal(g, "Question: Which organ?\nA. Liver\nB. Pancreas\nAnswer: B. Pancreas");
	assert_string_equal(e, "Which organ?\nA. Liver\nB. Pancreas");
	assert_int_equal(steps_sel_prompt_len(it), (long)strlen(p));
	free(p);
	free(g);
	free(e);
	json_decref(it);
}

/* "...Answer:" then " B", ".", " Pancreas" and one generated token: the
 * prompt's content tokens are "Question" (null logprob: skipped), "Which"
 * (a stop word), " organ", ... */
static void test_gold_loss(void **state)
{
	json_t *it = item();
	const char *full = "Question: Which organ?\nA. Liver\nB. Pancreas\nAnswer: B. Pancreas";
	long plen = steps_sel_prompt_len(it);
	json_t *reply = json_pack(
		"{s:[{s:s, s:{s:[s,s,s,s,s,s], s:[n,f,f,f,f,f], s:[I,I,I,I,I,I]}}]}", "choices",
		"text", full, "logprobs", "tokens", "Question", " organ", " Liver", " B", " Pancreas",
		"!", "token_logprobs", -1.0, -3.0, -0.5, -2.0, -4.0, "text_offset", (json_int_t)0,
		(json_int_t)15, (json_int_t)26, (json_int_t)plen, (json_int_t)(plen + 3),
		(json_int_t)strlen(full));
	struct select_opts so = { 0 };
	struct step_ctx ctx = { .item = it, .reply = reply, .sel = &so };
	struct step_outcome out;

	(void)state;
	step_reply_judge(STEP_DIQ_LOSS, &ctx, full, NULL, &out);
	assert_int_equal(out.result, STEP_DONE);
	assert_string_equal(out.artifact_kind, "gold_loss");
	/* prompt: organ 1.0, Liver 3.0 -> 2.0; answer: the key "B" (content)
	 * 0.5 and Pancreas 2.0 -> 1.25; the generated "!" is past the text */
	assert_true(fabs(json_real_value(json_object_get(out.artifact, "prompt_loss")) - 2.0) < 1e-9);
	assert_true(fabs(json_real_value(json_object_get(out.artifact, "ppl")) - exp(2.0)) < 1e-6);
	assert_true(fabs(json_real_value(json_object_get(out.artifact, "answer_loss")) - 1.25) < 1e-9);
	assert_int_equal(json_integer_value(json_object_get(out.artifact, "answer_tokens")), 2);
	assert_int_equal(out.next, STEP_EXPLAIN);
	step_outcome_clear(&out);
	/* an engine that gives no logprobs: the item fails at once, no re-ask */
	json_decref(reply);
	reply = json_pack("{s:[{s:s, s:n}]}", "choices", "text", "x", "logprobs");
	ctx.reply = reply;
	step_reply_judge(STEP_S3_PROBE, &ctx, "x", NULL, &out);
	assert_int_equal(out.result, STEP_FAILED);
	assert_non_null(strstr(out.reason, "no token logprobs"));
	step_outcome_clear(&out);
	json_decref(reply);
	json_decref(it);
}

static void test_rating_and_difficulty(void **state)
{
	json_t *it = item(), *j;
	struct select_opts so = { .rating_threshold = 85 };
	struct step_ctx ctx = { .item = it, .sel = &so };
	struct step_outcome out;

	(void)state;
	step_reply_judge(STEP_S3_RATE, &ctx, "Score: 92", NULL, &out);
	assert_int_equal(out.result, STEP_DONE);
	assert_int_equal(out.next, STEP_S3_PROBE);
	assert_true(json_is_true(json_object_get(out.artifact, "keep")));
	step_outcome_clear(&out);
	step_reply_judge(STEP_S3_RATE, &ctx, "84.5", NULL, &out);
	assert_int_equal(out.result, STEP_DROPPED);
	assert_string_equal(out.reason, "the student's rating 84.5 is below the threshold 85");
	assert_false(json_is_true(json_object_get(out.artifact, "keep")));
	step_outcome_clear(&out);
	step_reply_judge(STEP_S3_RATE, &ctx, "excellent", NULL, &out);
	assert_int_equal(out.result, STEP_RETRY);
	step_outcome_clear(&out);
	j = json_pack("{s:i, s:i, s:i}", "knowledge", 2, "reasoning", 5, "overall", 4);
	step_reply_judge(STEP_DIQ_RATE, &ctx, "", j, &out);
	assert_int_equal(out.result, STEP_DONE);
	assert_int_equal(json_integer_value(json_object_get(out.artifact, "reasoning")), 5);
	assert_int_equal(out.next, STEP_DIQ_LOSS);
	step_outcome_clear(&out);
	json_object_set_new(j, "overall", json_integer(7));
	step_reply_judge(STEP_DIQ_RATE, &ctx, "", j, &out);
	assert_int_equal(out.result, STEP_RETRY);
	assert_string_equal(out.reason, "difficulty reply: \"overall\" is not an integer from 1 to 5");
	step_outcome_clear(&out);
	json_decref(j);
	json_decref(it);
}

static void test_embed_and_validation(void **state)
{
	json_t *it = item();
	json_t *reply = json_pack("{s:[{s:[f,f]}]}", "data", "embedding", 0.5, -0.5);
	struct select_opts so = { .validation_fraction = 0.5 };
	struct step_ctx ctx = { .item = it, .reply = reply, .sel = &so, .seed = 1 };
	struct step_outcome out;
	int held = 0;
	char id[16];

	(void)state;
	step_reply_judge(STEP_S3_EMBED, &ctx, "", NULL, &out);
	assert_int_equal(out.result, STEP_DONE);
	assert_int_equal(json_integer_value(json_object_get(out.artifact, "dim")), 2);
	{
		double v[4];

		assert_int_equal(selmath_vec_decode(json_string_value(json_object_get(
							    out.artifact, "embedding_f32")),
						    v, 4),
				 2);
		assert_true(v[0] == 0.5 && v[1] == -0.5);
	}
	assert_null(json_object_get(out.artifact, "validation")); /* 3ds holds none out */
	step_outcome_clear(&out);
	/* the validation share is a pure function of seed and id, about the fraction */
	for (int i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "it%d", i);
		held += steps_sel_is_validation(1, id, 0.5);
		assert_int_equal(steps_sel_is_validation(1, id, 0.5), steps_sel_is_validation(1, id, 0.5));
	}
	assert_true(held > 430 && held < 570);
	assert_false(steps_sel_is_validation(1, "x", 0));
	json_decref(reply);
	json_decref(it);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_texts),
		cmocka_unit_test(test_gold_loss),
		cmocka_unit_test(test_rating_and_difficulty),
		cmocka_unit_test(test_embed_and_validation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
