#include "stages/evalstats.h"

#include <math.h>

void evalstats_wilson(int64_t k, int64_t n, double z, double *lo, double *hi)
{
	double p, z2n, den, centre, half;

	if (n <= 0) {
		*lo = 0;
		*hi = 1;
		return;
	}
	if (k < 0)
		k = 0;
	if (k > n)
		k = n;
	p = (double)k / (double)n;
	z2n = z * z / (double)n;
	den = 1 + z2n;
	centre = (p + z2n / 2) / den;
	half = z * sqrt(p * (1 - p) / (double)n + z2n / (4 * (double)n)) / den;
	*lo = centre - half < 0 ? 0 : centre - half;
	*hi = centre + half > 1 ? 1 : centre + half;
	/* At k = 0 or n one end is exact, not off by rounding. */
	if (k == 0)
		*lo = 0;
	if (k == n)
		*hi = 1;
}

static double nonneg(int64_t v) { return v > 0 ? (double)v : 0; }

void evalstats_paired_diff(const struct evalstats_pairs *t, double z, double *delta, double *lo,
			   double *hi)
{
	double a = nonneg(t->both), b = nonneg(t->base_only), c = nonneg(t->new_only);
	double d = nonneg(t->neither), n = a + b + c + d;
	double p1, p2, l1, u1, l2, u2, den, phi, dl, du, x;

	if (n <= 0) {
		*delta = 0;
		*lo = -1;
		*hi = 1;
		return;
	}
	p1 = (a + b) / n;
	p2 = (a + c) / n;
	evalstats_wilson((int64_t)(a + b), (int64_t)n, z, &l1, &u1);
	evalstats_wilson((int64_t)(a + c), (int64_t)n, z, &l2, &u2);
	den = (a + b) * (c + d) * (a + c) * (b + d);
	/* phi is 0 when a margin is empty (the table has no correlation to use) */
	phi = den > 0 ? (a * d - b * c) / sqrt(den) : 0;
	*delta = p2 - p1;
	x = (p2 - l2) * (p2 - l2) - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) * (u1 - p1);
	dl = sqrt(x > 0 ? x : 0);
	x = (u2 - p2) * (u2 - p2) - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) * (p1 - l1);
	du = sqrt(x > 0 ? x : 0);
	*lo = *delta - dl < -1 ? -1 : *delta - dl;
	*hi = *delta + du > 1 ? 1 : *delta + du;
}
