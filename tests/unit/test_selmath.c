/* layers: stages common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stages/selmath.h"

static void test_percentile(void **state)
{
	double v[] = { 5, 1, 4, 2, 3 }, out;
	double four[] = { 10, 20, 30, 40 };

	(void)state;
	assert_int_equal(selmath_percentile(v, 5, 50, &out), 0);
	assert_true(out == 3.0);
	assert_int_equal(selmath_percentile(v, 5, 25, &out), 0);
	assert_true(out == 2.0);
	assert_int_equal(selmath_percentile(v, 5, 0, &out), 0);
	assert_true(out == 1.0);
	assert_int_equal(selmath_percentile(v, 5, 100, &out), 0);
	assert_true(out == 5.0);
	/* rank 0.75 * 3 = 2.25: 30 + 0.25 * 10 */
	assert_int_equal(selmath_percentile(four, 4, 75, &out), 0);
	assert_true(fabs(out - 32.5) < 1e-12);
	/* rank 0.5 * 3 = 1.5: between 20 and 30 */
	assert_int_equal(selmath_percentile(four, 4, 50, &out), 0);
	assert_true(fabs(out - 25.0) < 1e-12);
	assert_int_equal(selmath_percentile(v, 1, 40, &out), 0);
	assert_true(out == 5.0);
	assert_int_equal(selmath_percentile(v, 0, 50, &out), -EINVAL);
	assert_int_equal(selmath_percentile(v, 5, 101, &out), -EINVAL);
	assert_int_equal(selmath_percentile(v, 5, NAN, &out), -EINVAL);
	/* v untouched */
	assert_true(v[0] == 5 && v[4] == 3);
}

static void test_quadrant_order(void **state)
{
	struct selmath_diq c[] = {
		{ .seq = 1, .difficulty = 2, .influence = 0.9 }, /* Q2 */
		{ .seq = 2, .difficulty = 4, .influence = 0.1 }, /* Q3 */
		{ .seq = 3, .difficulty = 4, .influence = 0.5 }, /* Q1 */
		{ .seq = 4, .difficulty = 5, .influence = 0.5 }, /* Q1, harder */
		{ .seq = 5, .difficulty = 1, .influence = 0.0 }, /* Q4 */
		{ .seq = 6, .difficulty = 3, .influence = 0.8 }, /* Q1, more influence */
		{ .seq = 0, .difficulty = 4, .influence = 0.5 }, /* Q1, ties seq 3 */
	};
	int64_t want[] = { 6, 4, 0, 3, 1, 2, 5 };

	(void)state;
	/* cuts: difficulty 3, influence 0.5 */
	assert_int_equal(selmath_quadrant(3, 3, 0.5, 0.5), 1);
	assert_int_equal(selmath_quadrant(2.9, 3, 0.5, 0.5), 2);
	assert_int_equal(selmath_quadrant(3, 3, 0.49, 0.5), 3);
	assert_int_equal(selmath_quadrant(1, 3, 0.1, 0.5), 4);
	for (size_t i = 0; i < 7; i++)
		c[i].quadrant = selmath_quadrant(c[i].difficulty, 3, c[i].influence, 0.5);
	selmath_diq_sort(c, 7);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(c[i].seq, want[i]);
}

static void test_cosine_centroid(void **state)
{
	double a[] = { 1, 0 }, b[] = { 0, 1 }, c[] = { 1, 1 }, z[] = { 0, 0 }, sum[2] = { 0 };

	(void)state;
	assert_true(fabs(selmath_cosine(a, b, 2)) < 1e-12);
	assert_true(fabs(selmath_cosine(a, a, 2) - 1) < 1e-12);
	assert_true(fabs(selmath_cosine(a, c, 2) - 1 / sqrt(2)) < 1e-12);
	assert_true(selmath_cosine(a, z, 2) == 0);
	selmath_centroid_add(sum, a, 2);
	selmath_centroid_add(sum, b, 2);
	selmath_centroid_finish(sum, 2, 2);
	assert_true(sum[0] == 0.5 && sum[1] == 0.5);
}

static void test_stopwords(void **state)
{
	(void)state;
	assert_true(selmath_stopword("the"));
	assert_true(selmath_stopword(" The"));
	assert_true(selmath_stopword("\xC4\xA0of"));     /* "Ġof" */
	assert_true(selmath_stopword("\xE2\x96\x81is")); /* "▁is" */
	assert_true(selmath_stopword(" ,"));
	assert_true(selmath_stopword(""));
	assert_true(selmath_stopword("的"));
	assert_true(selmath_stopword("。"));
	assert_true(selmath_stopword("所以"));
	assert_false(selmath_stopword(" heart"));
	assert_false(selmath_stopword("Aspirin"));
	assert_false(selmath_stopword("心"));
	assert_false(selmath_stopword("theory"));
}

static void test_span_loss(void **state)
{
	/* "Q: the heart" + " pumps blood" */
	const char *tok[] = { "Q", ":", " the", " heart", " pumps", " blood" };
	double lp[] = { NAN, -1.0, -0.5, -2.0, -1.0, -3.0 };
	int64_t off[] = { 0, 1, 2, 6, 12, 18 };
	double mean;
	size_t k;

	(void)state;
	/* the prompt "Q: the heart" is bytes [0, 12): "Q" has no logprob, ":"
	 * and "the" are stop tokens: only "heart" counts */
	assert_int_equal(selmath_span_loss(tok, lp, off, 6, 0, 12, &mean, &k), 0);
	assert_int_equal(k, 1);
	assert_true(fabs(mean - 2.0) < 1e-12);
	assert_true(fabs(selmath_perplexity(mean) - exp(2.0)) < 1e-9);
	/* the answer: pumps, blood -> (1 + 3) / 2 */
	assert_int_equal(selmath_span_loss(tok, lp, off, 6, 12, INT64_MAX, &mean, &k), 0);
	assert_int_equal(k, 2);
	assert_true(fabs(mean - 2.0) < 1e-12);
	/* offsets from the token lengths give the same spans */
	assert_int_equal(selmath_span_loss(tok, lp, NULL, 6, 12, INT64_MAX, &mean, &k), 0);
	assert_int_equal(k, 2);
	assert_true(fabs(mean - 2.0) < 1e-12);
	/* a span of stop words only */
	assert_int_equal(selmath_span_loss(tok, lp, off, 6, 1, 6, &mean, &k), 0);
	assert_int_equal(k, 0);
	assert_true(mean == 0);
	assert_int_equal(selmath_span_loss(tok, lp, off, 6, 5, 1, &mean, &k), -EINVAL);
	assert_true(selmath_perplexity(1e6) == 1e12);
}

static void test_kcenter(void **state)
{
	/* points on a line: 0, 1, 2, 10, 11, 20 */
	double pts[] = { 0, 1, 2, 10, 11, 20 };
	size_t order[6];
	uint64_t seed;

	(void)state;
	/* find a seed that starts at point 0, then the order is fixed: 0,
	 * farthest 20 (idx 5), then 10 (idx 3: min dist 10 vs 11's 9, 2's 2) */
	for (seed = 0; seed < 1000; seed++) {
		assert_int_equal(selmath_kcenter(pts, 6, 1, 1, seed, order), 0);
		if (order[0] == 0)
			break;
	}
	assert_true(seed < 1000);
	assert_int_equal(selmath_kcenter(pts, 6, 1, 4, seed, order), 0);
	assert_int_equal(order[0], 0);
	assert_int_equal(order[1], 5);
	assert_int_equal(order[2], 3);
	/* then: dists 1 (idx1), 2 (idx2), 1 (idx4): idx 2 */
	assert_int_equal(order[3], 2);
	/* the same seed gives the same order */
	{
		size_t again[4];

		assert_int_equal(selmath_kcenter(pts, 6, 1, 4, seed, again), 0);
		assert_memory_equal(order, again, sizeof(again));
	}
	assert_int_equal(selmath_kcenter(pts, 6, 1, 7, seed, order), -EINVAL);
	assert_int_equal(selmath_kcenter(pts, 6, 1, 0, seed, order), 0);
}

static void test_budget(void **state)
{
	(void)state;
	assert_int_equal(selmath_budget_count(0.1, 100), 10);
	assert_int_equal(selmath_budget_count(0.1, 95), 10); /* 9.5 rounds up */
	assert_int_equal(selmath_budget_count(0.5, 4), 2);
	assert_int_equal(selmath_budget_count(3, 100), 3);
	assert_int_equal(selmath_budget_count(300, 100), 100);
	assert_int_equal(selmath_budget_count(0, 100), 0);
	assert_int_equal(selmath_budget_count(1, 100), 1);
}

static void test_vec_codec(void **state)
{
	double v[] = { 0.5, -1.25, 3.0 }, out[8];
	char *e;

	(void)state;
	/* 12 bytes: 0.5f = 00 00 00 3f, -1.25f = 00 00 a0 bf, 3.0f = 00 00 40 40 */
	e = selmath_vec_encode(v, 3);
	assert_string_equal(e, "AAAAPwAAoL8AAEBA");
	assert_int_equal(selmath_vec_decode(e, out, 8), 3);
	assert_true(out[0] == 0.5 && out[1] == -1.25 && out[2] == 3.0);
	assert_int_equal(selmath_vec_decode(e, out, 2), 2);
	free(e);
	e = selmath_vec_encode(v, 1); /* 4 bytes: padding */
	assert_string_equal(e, "AAAAPw==");
	assert_int_equal(selmath_vec_decode(e, out, 8), 1);
	free(e);
	assert_int_equal(selmath_vec_decode("AAA", out, 8), -1);
	assert_int_equal(selmath_vec_decode("AA!A", out, 8), -1);
	assert_int_equal(selmath_vec_decode("AAAA", out, 8), -1); /* 3 bytes: not a float */
	assert_int_equal(selmath_vec_decode("", out, 8), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentile),    cmocka_unit_test(test_quadrant_order),
		cmocka_unit_test(test_cosine_centroid), cmocka_unit_test(test_stopwords),
		cmocka_unit_test(test_span_loss),     cmocka_unit_test(test_kcenter),
		cmocka_unit_test(test_budget),        cmocka_unit_test(test_vec_codec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
