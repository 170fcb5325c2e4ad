/* layers: teacher_clients common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>
#include <time.h>

#include "teacher_clients/limits.h"

/* The clock is a plain double the tests move by hand: nothing sleeps. */

static void cfg_base(struct limits_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->max_concurrency = 4;
	c->max_retries = 3;
	c->seed = 42;
}

static void test_concurrency_cap(void **state)
{
	struct limits_cfg c;
	struct limits l;
	struct limits_ticket t[5];
	int i;

	(void)state;
	cfg_base(&c);
	c.rpm = 100000; /* not adaptive */
	limits_init(&l, &c, 0);
	for (i = 0; i < 4; i++)
		assert_true(limits_acquire(&l, 1.0 + i, 10, &t[i]) == 0);
	assert_true(limits_acquire(&l, 10, 10, &t[4]) == -1.0);
	limits_release(&l, 10, &t[0], LIMITS_SUCCESS, 200, 10);
	assert_true(limits_acquire(&l, 10, 10, &t[4]) == 0);
	assert_int_equal(l.in_flight, 4);
}

static void test_rpm_bucket(void **state)
{
	struct limits_cfg c;
	struct limits l;
	struct limits_ticket t;
	double now = 0, d;
	int sent = 0;

	(void)state;
	cfg_base(&c);
	c.max_concurrency = 1000;
	c.rpm = 600; /* 10 per second */
	limits_init(&l, &c, 0);
	/* Simulate a dispatcher that waits exactly as told, for 60 s. */
	while (now < 60.0) {
		d = limits_acquire(&l, now, 10, &t);
		if (d == 0) {
			sent++;
			limits_release(&l, now, &t, LIMITS_SUCCESS, 200, 10);
			continue;
		}
		assert_true(d > 0);
		now += d;
	}
	/* Never more than 600 in the minute (a provider's sliding window), and
	 * no less than 99% of it. */
	assert_true(sent >= 594 && sent <= 600);
}

static void test_tpm_bucket_and_reconcile(void **state)
{
	struct limits_cfg c;
	struct limits l;
	struct limits_ticket t;
	double d;

	(void)state;
	cfg_base(&c);
	c.max_concurrency = 100;
	c.tpm = 6000; /* 100 tokens per second, bucket of 100 */
	limits_init(&l, &c, 0);
	assert_true(limits_acquire(&l, 0, 60, &t) == 0);
	d = limits_acquire(&l, 0, 60, &t);
	assert_true(d > 0.19 && d < 0.21); /* 40 left, 20 missing at 100/s */
	/* usage says the first one cost 10, not 60: 50 come back */
	limits_release(&l, 0, &t, LIMITS_SUCCESS, 200, 10);
	assert_true(limits_acquire(&l, 0, 60, &t) == 0);
	/* a request larger than the bucket goes once the bucket is full */
	d = limits_acquire(&l, 0, 1000, &t);
	assert_true(d > 0);
	assert_true(limits_acquire(&l, 1.5, 1000, &t) == 0);
	assert_true(limits_acquire(&l, 1.5, 1, &t) > 8.0); /* deep in debt */
	assert_int_equal(limits_estimate(400, 100), 200);
}

static void test_headers(void **state)
{
	struct limits_cfg c;
	struct limits l;
	struct limits_ticket t;
	double d;

	(void)state;
	cfg_base(&c);
	limits_init(&l, &c, 0);
	limits_note_headers(&l, 10, "0", NULL, "1.5s", NULL);
	d = limits_acquire(&l, 10, 1, &t);
	assert_true(fabs(d - 1.5) < 1e-9);
	assert_true(limits_acquire(&l, 11.6, 1, &t) == 0);
	limits_note_headers(&l, 20, "5", "100", "1s", "6m0s");
	assert_true(limits_acquire(&l, 20, 80, &t) == 0);
	d = limits_acquire(&l, 20, 80, &t); /* only 20 tokens left per the server */
	assert_true(fabs(d - 360) < 1e-9);
	assert_true(fabs(limits_duration_parse("1h2m3.5s") - 3723.5) < 1e-9);
	assert_true(fabs(limits_duration_parse("250ms") - 0.25) < 1e-9);
	assert_true(fabs(limits_duration_parse("12.345s") - 12.345) < 1e-9);
	assert_true(limits_duration_parse("soon") < 0);
}

static void test_retry_rules(void **state)
{
	(void)state;
	assert_true(limits_retryable(LIMITS_NET, 0, NULL));
	assert_true(limits_retryable(LIMITS_BAD_REPLY, 200, NULL));
	assert_true(limits_retryable(LIMITS_HTTP, 408, NULL));
	assert_true(limits_retryable(LIMITS_HTTP, 409, NULL));
	assert_true(limits_retryable(LIMITS_HTTP, 429, "rate_limit_exceeded"));
	assert_true(limits_retryable(LIMITS_HTTP, 500, NULL));
	assert_true(limits_retryable(LIMITS_HTTP, 503, NULL));
	assert_false(limits_retryable(LIMITS_HTTP, 429, "insufficient_quota"));
	assert_false(limits_retryable(LIMITS_HTTP, 400, NULL));
	assert_false(limits_retryable(LIMITS_HTTP, 401, NULL));
	assert_false(limits_retryable(LIMITS_HTTP, 404, NULL));
	assert_false(limits_retryable(LIMITS_HTTP, 422, NULL));
	assert_false(limits_retryable(LIMITS_SUCCESS, 200, NULL));
	assert_false(limits_retryable(LIMITS_CANCELLED, 0, NULL));
}

static void test_backoff_full_jitter(void **state)
{
	struct limits_cfg c;
	struct limits l;
	int a, i;

	(void)state;
	cfg_base(&c);
	c.backoff_base_s = 0.5;
	c.backoff_max_s = 8;
	limits_init(&l, &c, 0);
	for (a = 1; a <= 8; a++) {
		double cap = fmin(8.0, 0.5 * pow(2, a - 1)), lo = 1e9, hi = -1, sum = 0;
		for (i = 0; i < 2000; i++) {
			double d = limits_backoff(&l, a, -1);
			assert_true(d >= 0 && d <= cap);
			lo = fmin(lo, d);
			hi = fmax(hi, d);
			sum += d;
		}
		/* full jitter: spread over the whole [0, cap] range */
		assert_true(lo < cap * 0.05);
		assert_true(hi > cap * 0.95);
		assert_true(fabs(sum / 2000 - cap / 2) < cap * 0.05);
	}
	/* Retry-After wins over the jitter */
	assert_true(limits_backoff(&l, 1, 3.0) == 3.0);
	assert_true(limits_backoff(&l, 5, 0.0) == 0.0);
	assert_true(limits_backoff(&l, 1, 1e6) == LIMITS_RETRY_AFTER_MAX);
	assert_true(limits_backoff(&l, 1, 30.0) == 30.0); /* above backoff_max_s: still honoured */
}

static void test_retry_after_parse(void **state)
{
	struct tm tm;
	time_t base;

	(void)state;
	assert_true(limits_retry_after_parse("7", 0) == 7.0);
	assert_true(limits_retry_after_parse(" 120 ", 0) == 120.0);
	assert_true(limits_retry_after_parse(NULL, 0) < 0);
	assert_true(limits_retry_after_parse("", 0) < 0);
	assert_true(limits_retry_after_parse("-3", 0) < 0);
	assert_true(limits_retry_after_parse("soon", 0) < 0);
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = 115; /* 2015-10-21 07:28:00 GMT */
	tm.tm_mon = 9;
	tm.tm_mday = 21;
	tm.tm_hour = 7;
	tm.tm_min = 28;
	base = timegm(&tm);
	assert_true(limits_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", (double)base - 30) == 30.0);
	assert_true(limits_retry_after_parse("Wednesday, 21-Oct-15 07:28:00 GMT", (double)base - 5) == 5.0);
	assert_true(limits_retry_after_parse("Wed Oct 21 07:28:00 2015", (double)base - 2) == 2.0);
	/* a date in the past means now */
	assert_true(limits_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", (double)base + 100) == 0.0);
	assert_true(limits_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT junk", (double)base) < 0);
}

static void test_breaker(void **state)
{
	struct limits_cfg c;
	struct limits l;
	struct limits_ticket t, t2;
	int i;

	(void)state;
	cfg_base(&c);
	c.max_concurrency = 10;
	c.breaker_failures = 3;
	c.breaker_cooldown_s = 30;
	limits_init(&l, &c, 0);
	/* 4xx proves the server is up: no trip */
	for (i = 0; i < 5; i++) {
		assert_true(limits_acquire(&l, 1, 1, &t) == 0);
		limits_release(&l, 1, &t, LIMITS_HTTP, 400, 0);
	}
	assert_int_equal(l.breaker, LIMITS_CLOSED);
	for (i = 0; i < 3; i++) {
		assert_true(limits_acquire(&l, 2, 1, &t) == 0);
		limits_release(&l, 2, &t, i == 1 ? LIMITS_HTTP : LIMITS_NET, 503, 0);
	}
	assert_int_equal(l.breaker, LIMITS_OPEN);
	assert_true(fabs(limits_acquire(&l, 12, 1, &t) - 20.0) < 1e-9); /* no sends */
	/* after the cool-down: exactly one probe */
	assert_true(limits_acquire(&l, 32, 1, &t) == 0);
	assert_true(t.probe);
	assert_true(limits_acquire(&l, 32, 1, &t2) == -1.0);
	/* the probe fails: open again for a full cool-down */
	limits_release(&l, 33, &t, LIMITS_NET, 0, 0);
	assert_int_equal(l.breaker, LIMITS_OPEN);
	assert_true(fabs(limits_acquire(&l, 33, 1, &t) - 30.0) < 1e-9);
	/* the next probe succeeds: closed, sends flow */
	assert_true(limits_acquire(&l, 63, 1, &t) == 0);
	assert_true(t.probe);
	limits_release(&l, 64, &t, LIMITS_SUCCESS, 200, 1);
	assert_int_equal(l.breaker, LIMITS_CLOSED);
	assert_true(limits_acquire(&l, 64, 1, &t) == 0);
	assert_true(limits_acquire(&l, 64, 1, &t2) == 0);
	assert_false(t2.probe);
}

static void test_aimd(void **state)
{
	struct limits_cfg c;
	struct limits l;
	struct limits_ticket t[64];
	int i;

	(void)state;
	cfg_base(&c);
	c.max_concurrency = 32; /* rpm = tpm = 0: adaptive */
	limits_init(&l, &c, 0);
	assert_int_equal(l.window, 32);
	for (i = 0; i < 32; i++)
		assert_true(limits_acquire(&l, 0, 1, &t[i]) == 0);
	/* a burst of 429s from requests of one window: one cut by a quarter */
	for (i = 0; i < 10; i++)
		limits_release(&l, 1, &t[i], LIMITS_HTTP, 429, 0);
	assert_int_equal(l.window, 24);
	for (i = 10; i < 32; i++)
		limits_release(&l, 1, &t[i], LIMITS_SUCCESS, 200, 1);
	/* a 429 of a request sent after the cut cuts again */
	assert_true(limits_acquire(&l, 2, 1, &t[0]) == 0);
	limits_release(&l, 2, &t[0], LIMITS_HTTP, 429, 0);
	assert_int_equal(l.window, 18);
	/* +1 after a run of `window` successes, never above the max */
	for (i = 0; i < 18; i++) {
		assert_true(limits_acquire(&l, 3, 1, &t[0]) == 0);
		limits_release(&l, 3, &t[0], LIMITS_SUCCESS, 200, 1);
	}
	assert_int_equal(l.window, 19);
	for (i = 0; i < 2000; i++) {
		assert_true(limits_acquire(&l, 4, 1, &t[0]) == 0);
		limits_release(&l, 4, &t[0], LIMITS_SUCCESS, 200, 1);
	}
	assert_int_equal(l.window, 32);
	/* never below one */
	for (i = 0; i < 40; i++) {
		assert_true(limits_acquire(&l, 5, 1, &t[0]) == 0);
		limits_release(&l, 5, &t[0], LIMITS_HTTP, 429, 0);
	}
	assert_int_equal(l.window, 1);
	/* with an rpm set the window stays at max_concurrency */
	c.rpm = 6000;
	limits_init(&l, &c, 0);
	assert_true(limits_acquire(&l, 0, 1, &t[0]) == 0);
	limits_release(&l, 0, &t[0], LIMITS_HTTP, 429, 0);
	assert_int_equal(l.window, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrency_cap), cmocka_unit_test(test_rpm_bucket),
		cmocka_unit_test(test_tpm_bucket_and_reconcile), cmocka_unit_test(test_headers),
		cmocka_unit_test(test_retry_rules), cmocka_unit_test(test_backoff_full_jitter),
		cmocka_unit_test(test_retry_after_parse), cmocka_unit_test(test_breaker),
		cmocka_unit_test(test_aimd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
