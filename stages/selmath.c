#include "stages/selmath.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/hash.h"

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int selmath_percentile(const double *v, size_t n, double p, double *out)
{
	double *s, rank, frac;
	size_t lo;

	if (!v || !out || n == 0 || !(p >= 0 && p <= 100))
		return -EINVAL;
	s = malloc(n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), dbl_cmp);
	rank = p / 100.0 * (double)(n - 1);
	lo = (size_t)floor(rank);
	frac = rank - (double)lo;
	*out = lo + 1 < n ? s[lo] + (s[lo + 1] - s[lo]) * frac : s[lo];
	free(s);
	return 0;
}

int selmath_quadrant(double d, double dcut, double f, double fcut)
{
	bool hd = d >= dcut, hf = f >= fcut;

	if (hd && hf)
		return 1;
	if (hf)
		return 2;
	if (hd)
		return 3;
	return 4;
}

static int diq_cmp(const void *a, const void *b)
{
	const struct selmath_diq *x = a, *y = b;

	if (x->quadrant != y->quadrant)
		return x->quadrant - y->quadrant;
	if (x->influence != y->influence)
		return x->influence > y->influence ? -1 : 1;
	if (x->difficulty != y->difficulty)
		return x->difficulty > y->difficulty ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void selmath_diq_sort(struct selmath_diq *c, size_t n)
{
	if (c && n > 1)
		qsort(c, n, sizeof(*c), diq_cmp);
}

double selmath_cosine(const double *a, const double *b, size_t dim)
{
	double dot = 0, na = 0, nb = 0;

	for (size_t i = 0; i < dim; i++) {
		dot += a[i] * b[i];
		na += a[i] * a[i];
		nb += b[i] * b[i];
	}
	if (na <= 0 || nb <= 0)
		return 0;
	return dot / (sqrt(na) * sqrt(nb));
}

void selmath_centroid_add(double *sum, const double *v, size_t dim)
{
	for (size_t i = 0; i < dim; i++)
		sum[i] += v[i];
}

void selmath_centroid_finish(double *sum, size_t n, size_t dim)
{
	for (size_t i = 0; n > 0 && i < dim; i++)
		sum[i] /= (double)n;
}

/* Function words of English and Chinese. The 3DS paper weights tokens by
 * attention, which servers do not expose; content tokens get equal weight
 * instead, and these get none. Sorted for bsearch (strcmp order). */
static const char *const stop_en[] = {
	"a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
	"been", "before", "being", "between", "both", "but", "by", "can", "could", "did", "do",
	"does", "doing", "during", "each", "for", "from", "further", "had", "has", "have", "having",
	"he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its",
	"itself", "may", "me", "more", "most", "my", "no", "nor", "not", "of", "off", "on", "once",
	"only", "or", "other", "our", "out", "over", "own", "s", "same", "she", "should", "so",
	"some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they",
	"this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we",
	"were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with",
	"would", "you", "your",
};

static const char *const stop_zh[] = {
	"一个", "上", "不", "与", "为", "么", "之", "也", "了", "于", "从", "他", "以", "们", "会", "但",
	"你", "其", "则", "及", "可", "吗", "吧", "呢", "和", "啊", "因为", "在", "地", "她", "它", "对",
	"就", "并", "很", "得", "我", "或", "所以", "把", "是", "有", "此", "的", "着", "给", "而", "被",
	"过", "还", "这", "那", "都",
};

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_ascii_punct(unsigned char c)
{
	return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
	       (c >= 0x7B && c <= 0x7E);
}

/* CJK punctuation and full-width forms that carry no content. */
static size_t cjk_punct_len(const char *p)
{
	static const char *const marks[] = { "，", "。", "、", "；", "：", "？", "！", "“", "”",
					     "‘", "’", "（", "）", "《", "》", "【", "】", "…",
					     "\u3000" };

	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		size_t l = strlen(marks[i]);

		if (strncmp(p, marks[i], l) == 0)
			return l;
	}
	return 0;
}

bool selmath_stopword(const char *token)
{
	char w[64];
	size_t n = 0;
	const char *p = token, *key = w;

	if (!token)
		return true;
	while (*p) {
		unsigned char c = (unsigned char)*p;
		size_t l;

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || is_ascii_punct(c)) {
			p++;
		} else if (strncmp(p, "\xC4\xA0", 2) == 0 || strncmp(p, "\xC4\x8A", 2) == 0) {
			p += 2; /* byte-level BPE's space and newline marks */
		} else if (strncmp(p, "\xE2\x96\x81", 3) == 0) {
			p += 3; /* sentencepiece's space mark */
		} else if ((l = cjk_punct_len(p)) != 0) {
			p += l;
		} else {
			if (n + 1 >= sizeof(w))
				return false; /* a long token is content */
			w[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
			p++;
		}
	}
	w[n] = '\0';
	if (n == 0)
		return true;
	return bsearch(&key, stop_en, sizeof(stop_en) / sizeof(stop_en[0]), sizeof(stop_en[0]),
		       str_cmp) != NULL ||
	       bsearch(&key, stop_zh, sizeof(stop_zh) / sizeof(stop_zh[0]), sizeof(stop_zh[0]),
		       str_cmp) != NULL;
}

int selmath_span_loss(const char *const *tokens, const double *logprobs, const int64_t *offsets,
		      size_t n, int64_t from, int64_t to, double *mean, size_t *count)
{
	double sum = 0;
	size_t k = 0;
	int64_t at = 0;

	if ((n && (!tokens || !logprobs)) || !mean || !count || from > to)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int64_t start = offsets ? offsets[i] : at;

		at = start + (int64_t)(tokens[i] ? strlen(tokens[i]) : 0);
		if (start < from || start >= to || isnan(logprobs[i]) || selmath_stopword(tokens[i]))
			continue;
		sum += -logprobs[i];
		k++;
	}
	*mean = k ? sum / (double)k : 0;
	*count = k;
	return 0;
}

double selmath_perplexity(double mean_loss)
{
	double p = exp(mean_loss);

	return isfinite(p) && p < 1e12 ? p : 1e12;
}

int selmath_kcenter(const double *pts, size_t n, size_t dim, size_t k, uint64_t seed,
		    size_t *order)
{
	double *mind;
	size_t cur;

	if (k > n || (k && (!pts || !order || dim == 0)))
		return -EINVAL;
	if (k == 0)
		return 0;
	mind = malloc(n * sizeof(*mind));
	if (!mind)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		mind[i] = INFINITY;
	cur = (size_t)(hash_mix64(seed) % n);
	for (size_t c = 0; c < k; c++) {
		const double *cp = pts + cur * dim;
		size_t best = 0;
		double bestd = -1;

		order[c] = cur;
		mind[cur] = -1; /* chosen */
		for (size_t i = 0; i < n; i++) {
			double d = 0;

			if (mind[i] < 0)
				continue;
			for (size_t t = 0; t < dim; t++) {
				double x = pts[i * dim + t] - cp[t];

				d += x * x;
			}
			if (d < mind[i])
				mind[i] = d;
			if (mind[i] > bestd) {
				bestd = mind[i];
				best = i;
			}
		}
		cur = best;
	}
	free(mind);
	return 0;
}

size_t selmath_budget_count(double budget, size_t n)
{
	double k;

	if (!(budget > 0))
		return 0;
	k = budget < 1 ? ceil(budget * (double)n - 1e-9) : floor(budget);
	return k >= (double)n ? n : (size_t)k;
}

char *selmath_vec_encode(const double *v, size_t n)
{
	size_t bytes = n * 4;
	char *out = malloc(base64_len(bytes) + 1);
	unsigned char *raw = malloc(bytes + 1);

	if (!out || !raw) {
		free(out);
		free(raw);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		float f = (float)v[i];
		uint32_t u;

		memcpy(&u, &f, 4);
		for (int b = 0; b < 4; b++)
			raw[i * 4 + (size_t)b] = (unsigned char)(u >> (8 * b));
	}
	base64_encode(raw, bytes, out);
	free(raw);
	return out;
}

long selmath_vec_decode(const char *text, double *out, size_t max)
{
	size_t len = text ? strlen(text) : 0, n;
	unsigned char *raw;
	long got;

	if (len == 0 || len % 4 != 0)
		return -1;
	raw = malloc(len / 4 * 3 + 1);
	if (!raw)
		return -1;
	got = base64_decode(text, len, raw, NULL);
	if (got < 0 || got % 4 != 0) {
		free(raw);
		return -1;
	}
	n = (size_t)got / 4;
	for (size_t i = 0; i < n && i < max; i++) {
		uint32_t u = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
			     (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
		float f;

		memcpy(&f, &u, 4);
		out[i] = f;
	}
	free(raw);
	return (long)(n < max ? n : max);
}
