#ifndef MT_EVALSTATS_H
#define MT_EVALSTATS_H
/* The arithmetic of the evaluation report: the 95% interval of an accuracy
 * and of the change in accuracy between two checkpoints graded on the same
 * items. Pure functions, no I/O, no allocation; any thread.
 *
 * Intervals: Wilson's score interval for one proportion, and Newcombe's
 * hybrid score interval for a difference of paired proportions (Newcombe
 * 1998, "Improved confidence intervals for the difference between binomial
 * proportions based on paired data", method 10): the two Wilson intervals
 * combined with the phi correlation of the 2x2 table of paired outcomes.
 * Deterministic (no resampling), so a report reads the same every time. */

#include <stdint.h>

/* z of a two-sided 95% interval. */
#define EVALSTATS_Z95 1.959963984540054

/* Wilson score interval of k successes out of n at z (k clamped to
 * [0, n]); n <= 0 gives [0, 1] (nothing is known). */
void evalstats_wilson(int64_t k, int64_t n, double z, double *lo, double *hi);

/* The paired outcomes of the same items at two checkpoints, "base" (e.g.
 * the baseline) and "new": */
struct evalstats_pairs {
	int64_t both;      /* correct at both */
	int64_t base_only; /* correct at base, not at new (lost) */
	int64_t new_only;  /* correct at new, not at base (gained) */
	int64_t neither;   /* correct at neither */
};

/* The change new - base in accuracy over the paired items (*delta), with
 * Newcombe's method-10 interval at z in [*lo, *hi] (within [-1, 1]). No
 * pairs: delta 0 and [-1, 1]. Negative counts count as 0. */
void evalstats_paired_diff(const struct evalstats_pairs *t, double z, double *delta, double *lo,
			   double *hi);

#endif
