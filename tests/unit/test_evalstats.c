/* layers: stages common */
/* The evaluation report's arithmetic on cases worked by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stages/evalstats.h"

#define near(x, y) assert_true(fabs((x) - (y)) < 5e-5)

static void test_wilson(void **state)
{
	double lo, hi;
	(void)state;
	/* 0 of 10: the upper end is z^2 / (n + z^2) = 3.8415 / 13.8415. */
	evalstats_wilson(0, 10, EVALSTATS_Z95, &lo, &hi);
	near(lo, 0);
	near(hi, 0.27753);
	/* 10 of 10 mirrors it. */
	evalstats_wilson(10, 10, EVALSTATS_Z95, &lo, &hi);
	near(lo, 1 - 0.27753);
	near(hi, 1);
	/* 5 of 10: centred on 0.5, half width z*sqrt(.025+.0096)/1.38415. */
	evalstats_wilson(5, 10, EVALSTATS_Z95, &lo, &hi);
	near(lo, 0.23659);
	near(hi, 0.76341);
	/* Newcombe's (1998) worked example: 81 of 263 -> 0.2553 to 0.3662. */
	evalstats_wilson(81, 263, EVALSTATS_Z95, &lo, &hi);
	near(lo, 0.25529);
	near(hi, 0.36621);
	/* nothing graded: nothing known */
	evalstats_wilson(0, 0, EVALSTATS_Z95, &lo, &hi);
	near(lo, 0);
	near(hi, 1);
	/* k out of range is clamped */
	evalstats_wilson(12, 10, EVALSTATS_Z95, &lo, &hi);
	near(hi, 1);
}

static void test_paired(void **state)
{
	double d, lo, hi;
	struct evalstats_pairs t;
	(void)state;
	/* Newcombe's paired example (36, 12, 2, 0; n = 50): the difference 0.2
	 * has the method-10 interval 0.0569 to 0.3404. Here "new" lost 12 and
	 * gained 2, so the change is -0.2 and the interval is mirrored. */
	t = (struct evalstats_pairs){ .both = 36, .base_only = 12, .new_only = 2, .neither = 0 };
	evalstats_paired_diff(&t, EVALSTATS_Z95, &d, &lo, &hi);
	near(d, -0.2);
	near(lo, -0.34043);
	near(hi, -0.05693);
	/* and the other way round */
	t = (struct evalstats_pairs){ .both = 36, .base_only = 2, .new_only = 12, .neither = 0 };
	evalstats_paired_diff(&t, EVALSTATS_Z95, &d, &lo, &hi);
	near(d, 0.2);
	near(lo, 0.05693);
	near(hi, 0.34043);
	/* The same answers at both checkpoints at 50%: phi = 1 and the two
	 * Wilson intervals are the same and symmetric, so [0, 0]. */
	t = (struct evalstats_pairs){ .both = 5, .neither = 5 };
	evalstats_paired_diff(&t, EVALSTATS_Z95, &d, &lo, &hi);
	near(d, 0);
	near(lo, 0);
	near(hi, 0);
	/* 4 of 10 at both: phi = 1, the Wilson interval of 0.4 is skewed
	 * (0.16818 to 0.68732), the difference interval is +-(0.28732-0.23182). */
	t = (struct evalstats_pairs){ .both = 4, .neither = 6 };
	evalstats_paired_diff(&t, EVALSTATS_Z95, &d, &lo, &hi);
	near(d, 0);
	near(lo, -0.05551);
	near(hi, 0.05551);
	/* 0 -> 5 of 10 (base margin empty, phi = 0): lower end
	 * 0.5 - sqrt(0.26341^2 + 0.27753^2) = 0.11737, upper end 0.5 + 0.26341. */
	t = (struct evalstats_pairs){ .new_only = 5, .neither = 5 };
	evalstats_paired_diff(&t, EVALSTATS_Z95, &d, &lo, &hi);
	near(d, 0.5);
	near(lo, 0.11737);
	near(hi, 0.76341);
	/* no pairs: nothing known */
	t = (struct evalstats_pairs){ 0 };
	evalstats_paired_diff(&t, EVALSTATS_Z95, &d, &lo, &hi);
	near(d, 0);
	near(lo, -1);
	near(hi, 1);
	/* negative counts count as 0 */
	t = (struct evalstats_pairs){ .both = -3, .new_only = 5, .neither = 5 };
	evalstats_paired_diff(&t, EVALSTATS_Z95, &d, &lo, &hi);
	near(d, 0.5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wilson),
		cmocka_unit_test(test_paired),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
