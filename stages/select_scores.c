#include "stages/select_scores.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stages/selmath.h"
#include "store/work.h"

static int rows_one(void *ud, int64_t seq, json_t *content)
{
	struct sel_rows *r = ud;

	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 1024;
		int64_t *ns = realloc(r->seq, ncap * sizeof(*ns));
		json_t **na;

		if (!ns)
			return -ENOMEM;
		r->seq = ns;
		na = realloc(r->a, ncap * sizeof(*na));
		if (!na)
			return -ENOMEM;
		r->a = na;
		r->cap = ncap;
	}
	r->seq[r->n] = seq;
	r->a[r->n++] = json_incref(content);
	return 0;
}

int sel_rows_load(struct store *st, int64_t job, const char *kind, struct sel_rows *r)
{
	memset(r, 0, sizeof(*r));
	return store_artifacts_each(st, job, kind, -1, 0, rows_one, r);
}

static long seq_find(const int64_t *seq, size_t n, int64_t want)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (seq[mid] < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && seq[lo] == want ? (long)lo : -1;
}

json_t *sel_rows_find(const struct sel_rows *r, int64_t seq)
{
	long i = seq_find(r->seq, r->n, seq);

	return i < 0 ? NULL : r->a[i];
}

void sel_rows_free(struct sel_rows *r)
{
	for (size_t i = 0; i < r->n; i++)
		json_decref(r->a[i]);
	free(r->seq);
	free(r->a);
	memset(r, 0, sizeof(*r));
}

static int vecs_one(void *ud, int64_t seq, json_t *content)
{
	struct sel_vecs *v = ud;
	const char *enc = json_string_value(json_object_get(content, "embedding_f32"));
	json_t *e = json_object_get(content, "embedding");
	size_t dim = enc ? (size_t)json_integer_value(json_object_get(content, "dim"))
			 : json_array_size(e);

	if (dim == 0 || dim > 65536)
		return 0;
	if (v->dim == 0)
		v->dim = dim;
	if (dim != v->dim) {
		v->skipped++;
		return 0;
	}
	if (v->n == v->cap) {
		size_t ncap = v->cap ? v->cap * 2 : 1024;
		int64_t *ns = realloc(v->seq, ncap * sizeof(*ns));
		double *nv;
		bool *nb;

		if (!ns)
			return -ENOMEM;
		v->seq = ns;
		nv = realloc(v->v, ncap * dim * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		v->v = nv;
		nb = realloc(v->validation, ncap * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		v->validation = nb;
		v->cap = ncap;
	}
	if (enc) {
		if (selmath_vec_decode(enc, v->v + v->n * dim, dim) != (long)dim) {
			v->skipped++;
			return 0;
		}
	} else {
		for (size_t i = 0; i < dim; i++)
			v->v[v->n * dim + i] = json_number_value(json_array_get(e, i));
	}
	v->seq[v->n] = seq;
	v->validation[v->n] = json_is_true(json_object_get(content, "validation"));
	v->n++;
	return 0;
}

int sel_vecs_load(struct store *st, int64_t job, struct sel_vecs *v)
{
	memset(v, 0, sizeof(*v));
	return store_artifacts_each(st, job, "embedding", -1, 0, vecs_one, v);
}

const double *sel_vecs_find(const struct sel_vecs *v, int64_t seq)
{
	long i = seq_find(v->seq, v->n, seq);

	return i < 0 ? NULL : v->v + (size_t)i * v->dim;
}

void sel_vecs_free(struct sel_vecs *v)
{
	free(v->seq);
	free(v->v);
	free(v->validation);
	memset(v, 0, sizeof(*v));
}

double sel_num(json_t *a, const char *key, double dflt)
{
	json_t *x = json_object_get(a, key);

	return json_is_number(x) ? json_number_value(x) : dflt;
}
