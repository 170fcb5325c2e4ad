/* layers: teacher_clients common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "teacher_clients/pool.h"

/* The clock is a plain double the tests move by hand: nothing sleeps. */

static void cfg_base(struct limits_cfg *c, int conc)
{
	memset(c, 0, sizeof(*c));
	c->max_concurrency = conc;
	c->rpm = 1000000; /* a fixed window, not the adaptive one */
	c->max_retries = 3;
	c->seed = 7;
}

static void pool3(struct pool *p, int conc)
{
	struct limits_cfg c;

	cfg_base(&c, conc);
	assert_int_equal(pool_init(p, "http://a:1/v1 http://b:2/v1\thttp://c:3/v1", &c, 2.0, 0), 0);
	assert_int_equal(p->n, 3);
}

static void test_parse(void **state)
{
	struct limits_cfg c;
	struct pool p;
	char many[64 * (POOL_MAX_REPLICAS + 2)];
	size_t n = 0;

	(void)state;
	cfg_base(&c, 4);
	assert_int_equal(pool_url_count(""), 0);
	assert_int_equal(pool_url_count("   "), 0);
	assert_int_equal(pool_url_count("http://a/v1"), 1);
	assert_int_equal(pool_url_count("  http://a/v1   http://b/v1 "), 2);
	assert_int_equal(pool_init(&p, " ", &c, 0, 0), -EINVAL);
	assert_int_equal(pool_init(&p, " http://a/v1/  http://b/v1 ", &c, 0, 0), 0);
	assert_string_equal(p.r[0].base_url, "http://a/v1/");
	assert_string_equal(p.r[1].base_url, "http://b/v1");
	assert_true(p.check_s == POOL_CHECK_S);
	pool_free(&p);
	for (int i = 0; i <= POOL_MAX_REPLICAS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "http://h%d/v1 ", i);
	assert_int_equal(pool_init(&p, many, &c, 0, 0), -EINVAL);
}

/* Fewest outstanding first; ties take turns. */
static void test_pick_least_outstanding(void **state)
{
	struct pool p;
	struct limits_ticket t[8];
	double w;
	int got[8], count[3] = { 0 };

	(void)state;
	pool3(&p, 4);
	for (int i = 0; i < 6; i++) {
		got[i] = pool_pick(&p, 1, 10, -1, &t[i], &w);
		assert_true(got[i] >= 0);
		count[got[i]]++;
	}
	/* Six picks over three idle replicas: two each. */
	assert_int_equal(count[0], 2);
	assert_int_equal(count[1], 2);
	assert_int_equal(count[2], 2);
	/* Free two on replica 1: it has the fewest outstanding now. */
	for (int i = 0, freed = 0; i < 6 && freed < 2; i++) {
		if (got[i] == 1) {
			pool_release(&p, 1, 2, &t[i], LIMITS_SUCCESS, 200, 10, false, NULL);
			freed++;
		}
	}
	assert_int_equal(pool_pick(&p, 3, 10, -1, &t[6], &w), 1);
	assert_int_equal(pool_pick(&p, 3, 10, -1, &t[7], &w), 1);
	assert_int_equal(p.r[1].ok, 2);
	pool_free(&p);
}

/* The replica a call just failed on is asked last, but still asked when
 * it is the only one that can send. */
static void test_pick_avoid_and_full(void **state)
{
	struct pool p;
	struct limits_ticket t[8];
	double w = 0;

	(void)state;
	pool3(&p, 1);
	assert_int_equal(pool_pick(&p, 1, 10, 0, &t[0], &w), 1); /* 0 avoided; 1 next in turn */
	assert_int_equal(pool_pick(&p, 1, 10, 2, &t[1], &w), 0); /* 2 avoided; 0 is free */
	assert_int_equal(pool_pick(&p, 1, 10, 2, &t[2], &w), 2); /* only 2 left: avoided but asked */
	/* Each replica's own concurrency cap is full: nothing, wait for a release. */
	assert_int_equal(pool_pick(&p, 1, 10, -1, &t[3], &w), -1);
	assert_true(w == -1.0);
	pool_release(&p, 0, 2, &t[1], LIMITS_SUCCESS, 200, 10, false, NULL);
	assert_int_equal(pool_pick(&p, 2, 10, -1, &t[3], &w), 0);
	pool_free(&p);
}

/* Refused: out at once. Other failures: out after POOL_OUT_AFTER in a row;
 * an answer below 500 (429 too) resets the count. A single replica is
 * never taken out. */
static void test_take_out(void **state)
{
	struct pool p, one;
	struct limits_cfg c;
	struct limits_ticket t;
	double w;
	int i;

	(void)state;
	pool3(&p, 8);
	assert_int_equal(pool_pick(&p, 1, 10, -1, &t, &w), 0);
	assert_true(pool_release(&p, 0, 1, &t, LIMITS_NET, 0, 0, true, "connection refused"));
	assert_true(p.r[0].out);
	assert_int_equal(p.r[0].taken_out, 1);
	assert_string_equal(p.r[0].last_error, "connection refused");
	assert_int_equal(pool_in_count(&p), 2);
	/* Never picked while out. */
	for (i = 0; i < 10; i++) {
		int r = pool_pick(&p, 2, 10, -1, &t, &w);
		assert_true(r == 1 || r == 2);
		pool_release(&p, (size_t)r, 2, &t, LIMITS_SUCCESS, 200, 10, false, NULL);
	}
	assert_int_equal(p.r[0].requests, 1);
	/* Replica 1: 5xx, 5xx, a 429 (busy, alive), then three 5xx. */
	long statuses[] = { 500, 502, 429, 500, 503 };
	for (i = 0; i < 5; i++) {
		p.cursor = 1;
		assert_int_equal(pool_pick(&p, 3, 10, -1, &t, &w), 1);
		assert_false(pool_release(&p, 1, 3, &t, LIMITS_HTTP, statuses[i], 0, false, "HTTP 5xx"));
	}
	assert_false(p.r[1].out);
	p.cursor = 1;
	assert_int_equal(pool_pick(&p, 3, 10, -1, &t, &w), 1);
	assert_true(pool_release(&p, 1, 3, &t, LIMITS_NET, 0, 0, false, "timeout"));
	assert_true(p.r[1].out);
	/* A 4xx is the request's fault, not the replica's. */
	for (i = 0; i < 5; i++) {
		assert_int_equal(pool_pick(&p, 4, 10, -1, &t, &w), 2);
		assert_false(pool_release(&p, 2, 4, &t, LIMITS_HTTP, 400, 0, false, "HTTP 400"));
	}
	assert_false(p.r[2].out);
	/* The last one in is taken out too: then nothing is picked until a
	 * health check puts one back. */
	assert_int_equal(pool_pick(&p, 5, 10, -1, &t, &w), 2);
	assert_true(pool_release(&p, 2, 5, &t, LIMITS_NET, 0, 0, true, "refused"));
	assert_int_equal(pool_in_count(&p), 0);
	assert_int_equal(pool_pick(&p, 5, 10, -1, &t, &w), -1);
	assert_true(w == -1.0);
	pool_free(&p);

	cfg_base(&c, 4);
	c.breaker_failures = 100;
	assert_int_equal(pool_init(&one, "http://solo/v1", &c, 0, 0), 0);
	for (i = 0; i < 10; i++) {
		assert_int_equal(pool_pick(&one, 1, 10, 0, &t, &w), 0);
		assert_false(pool_release(&one, 0, 1, &t, LIMITS_NET, 0, 0, true, "refused"));
	}
	assert_false(one.r[0].out);
	pool_free(&one);
}

/* Out -> health checks every check_s -> back in, breaker closed and its
 * failures forgotten. A cancelled attempt counts nowhere. */
static void test_put_back(void **state)
{
	struct pool p;
	struct limits_ticket t;
	double w, next = -1;

	(void)state;
	pool3(&p, 8);
	assert_int_equal(pool_check_due(&p, 0, &next), -1);
	assert_true(next == 0); /* none out */
	p.cursor = 2;
	assert_int_equal(pool_pick(&p, 10, 10, -1, &t, &w), 2);
	assert_false(pool_release(&p, 2, 10, &t, LIMITS_CANCELLED, 0, 0, true, NULL));
	assert_false(p.r[2].out);
	p.cursor = 2;
	assert_int_equal(pool_pick(&p, 10, 10, -1, &t, &w), 2);
	p.r[2].lim.breaker = LIMITS_OPEN; /* as if its breaker had tripped too */
	p.r[2].lim.open_until = 1000;
	assert_true(pool_release(&p, 2, 10, &t, LIMITS_NET, 0, 0, true, "refused"));
	/* Not due before check_s (2 s). */
	assert_int_equal(pool_check_due(&p, 11, &next), -1);
	assert_true(next == 12);
	assert_int_equal(pool_check_due(&p, 12, &next), 2);
	assert_true(p.r[2].checking);
	/* One check at a time. */
	assert_int_equal(pool_check_due(&p, 13, &next), -1);
	assert_false(pool_check_done(&p, 2, 13, false));
	assert_true(p.r[2].out);
	assert_int_equal(pool_check_due(&p, 14, &next), -1);
	assert_true(next == 15);
	assert_int_equal(pool_check_due(&p, 15, &next), 2);
	assert_true(pool_check_done(&p, 2, 15, true));
	assert_false(p.r[2].out);
	assert_int_equal(p.r[2].lim.breaker, LIMITS_CLOSED);
	assert_int_equal(p.r[2].checks, 2);
	assert_int_equal(pool_in_count(&p), 3);
	/* Back in: picked again (fewest outstanding). */
	p.cursor = 2;
	assert_int_equal(pool_pick(&p, 16, 10, -1, &t, &w), 2);
	pool_release(&p, 2, 16, &t, LIMITS_SUCCESS, 200, 10, false, NULL);
	/* pool_check_now: a rearm checks at once. */
	p.cursor = 0;
	assert_int_equal(pool_pick(&p, 20, 10, -1, &t, &w), 0);
	assert_true(pool_release(&p, 0, 20, &t, LIMITS_NET, 0, 0, true, "refused"));
	pool_check_now(&p, 20.5);
	assert_int_equal(pool_check_due(&p, 20.5, &next), 0);
	pool_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_pick_least_outstanding),
		cmocka_unit_test(test_pick_avoid_and_full),
		cmocka_unit_test(test_take_out),
		cmocka_unit_test(test_put_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
