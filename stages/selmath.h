#ifndef MT_SELMATH_H
#define MT_SELMATH_H
/* The arithmetic of the DIQ-like and 3DS selection strategies
 * (stages/select_diq.c, stages/select_3ds.c): percentiles, the quadrant
 * split and its order, cosine similarity and centroids, the mean loss over
 * non-stop-word tokens, perplexity and seeded k-center greedy. Pure: no
 * I/O, no allocation but where said, any thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The p-th percentile (0..100) of v[0..n), linear interpolation between the
 * closest ranks (rank p/100 * (n-1) of the sorted values, as numpy's
 * default). v is not changed. Returns 0 and *out; -EINVAL for n == 0 or p
 * outside [0, 100]; -ENOMEM. */
int selmath_percentile(const double *v, size_t n, double p, double *out);

/* The DIQ quadrant of an item of difficulty d and influence f against the
 * split points dcut (a difficulty percentile) and fcut (the influence
 * median): "high" is >= the cut. 1: high difficulty, high influence;
 * 2: low difficulty, high influence; 3: high difficulty, low influence;
 * 4: low difficulty, low influence. The budget is filled in that order. */
int selmath_quadrant(double d, double dcut, double f, double fcut);

/* One DIQ candidate; the order the budget is filled in. */
struct selmath_diq {
	int64_t seq;
	double difficulty, influence;
	int quadrant;
};
/* Sorts c[0..n) by quadrant (1 first), then influence, then difficulty
 * (both descending), then seq (ascending): a total order, so a job's choice
 * never depends on qsort. */
void selmath_diq_sort(struct selmath_diq *c, size_t n);

/* Cosine similarity of a and b (dim values each); 0 when either is zero. */
double selmath_cosine(const double *a, const double *b, size_t dim);
/* Adds v (dim values) into sum; selmath_centroid divides by n. */
void selmath_centroid_add(double *sum, const double *v, size_t dim);
void selmath_centroid_finish(double *sum, size_t n, size_t dim);

/* True for a token that carries no content: empty after stripping
 * whitespace, the tokenizers' space marks ("Ġ", "▁") and punctuation, or
 * an English or Chinese stop word (ASCII compared without case). */
bool selmath_stopword(const char *token);

/* The mean of -logprob over the tokens i in [0, n) whose text starts at a
 * byte offset in [from, to) of the text they came from, skipping stop
 * words and tokens without a logprob (NaN: the first token of an echoed
 * prompt has none). offsets may be NULL: each token then starts where the
 * previous one ended. Returns 0 with *mean and *count (the tokens counted);
 * a span with no content token gives mean 0, count 0. -EINVAL for bad
 * arguments. */
int selmath_span_loss(const char *const *tokens, const double *logprobs, const int64_t *offsets,
		      size_t n, int64_t from, int64_t to, double *mean, size_t *count);

/* exp(mean loss), capped at 1e12 so a stored score stays finite. */
double selmath_perplexity(double mean_loss);

/* Seeded k-center greedy over n points of dim values each (row-major in
 * pts): the first center is point seed % n, then each next one is the point
 * farthest (Euclidean) from its nearest center so far, ties to the lower
 * index. Writes the order the centers were picked in to order[0..k) (k <=
 * n). Scratch: one double per point, allocated here. 0, -EINVAL, -ENOMEM. */
int selmath_kcenter(const double *pts, size_t n, size_t dim, size_t k, uint64_t seed,
		    size_t *order);

/* An embedding as stored: n float32 values, little-endian, in base64 (a
 * JSON array of numbers costs ten times as much to read back). Encode:
 * a new string, or NULL on ENOMEM. Decode: how many values were written
 * to out (at most max), or -1 for text that is not such a vector. */
char *selmath_vec_encode(const double *v, size_t n);
long selmath_vec_decode(const char *text, double *out, size_t max);

/* The budget as a count of items out of n: a fraction when < 1 (rounded
 * up), a count when >= 1; never more than n. */
size_t selmath_budget_count(double budget, size_t n);

#endif
