#ifndef MT_SELECT_SCORES_H
#define MT_SELECT_SCORES_H
/* What the DIQ-like and 3DS strategies read back of a job's scoring
 * artifacts: rows by item seq (in seq order, found by binary search) and
 * the embeddings as plain doubles (a JSON number costs ten times the
 * memory). Loop thread; private to stages/select_*.c. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct sel_rows {
	int64_t *seq;
	json_t **a;    /* one reference each */
	size_t n, cap;
};

/* Every artifact of kind of job, in seq order. 0 or a negative errno. */
int sel_rows_load(struct store *st, int64_t job, const char *kind, struct sel_rows *r);
/* The artifact of seq (borrowed), or NULL. */
json_t *sel_rows_find(const struct sel_rows *r, int64_t seq);
void sel_rows_free(struct sel_rows *r);

struct sel_vecs {
	int64_t *seq;
	double *v;       /* n * dim, row-major */
	bool *validation;
	size_t n, cap, dim;
	size_t skipped;  /* embeddings of another dimension than the first */
};

/* Every "embedding" artifact of job, in seq order. 0 or a negative errno. */
int sel_vecs_load(struct store *st, int64_t job, struct sel_vecs *v);
/* The vector of seq (borrowed), or NULL. */
const double *sel_vecs_find(const struct sel_vecs *v, int64_t seq);
void sel_vecs_free(struct sel_vecs *v);

/* A number field of an artifact, or dflt. */
double sel_num(json_t *a, const char *key, double dflt);

#endif
