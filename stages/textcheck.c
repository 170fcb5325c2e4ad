#include "stages/textcheck.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "common/hash.h"
#include "common/utf8.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define TC_FIELDS_MAX 40
#define TC_PIECES_LOG2 14
#define TC_PIECES_BITS ((size_t)1 << TC_PIECES_LOG2)

/* What every check sees: the input, the text cut to the scan size, and what
 * more than one check reads, worked out once (this runs on every teacher
 * reply on the loop thread: issue 17). */
struct tc {
	const struct textcheck_input *in;
	const char *s;
	size_t n, len; /* the text cut to the scan size; its whole length */
	struct textcheck_result *out;
	/* the item's quotable fields without its explanation (item_fields) */
	bool have_fields;
	const char *f[TC_FIELDS_MAX];
	size_t nf;
	const char *ctx; /* the item's context, one of f, or NULL */
	/* the reply's 4-byte pieces by hash (in_reply) */
	bool have_pieces;
	uint64_t pieces[TC_PIECES_BITS / 64];
	/* the reply's line count (check_lines, else tc_scan) */
	bool have_lines;
	size_t lines;
	/* the reply's letters and terms (tc_scan) */
	bool scanned;
	size_t cjk, latin;
	struct term_list *tl;
	/* the item's (tc_item_scan) */
	struct item_scan *is;
};

typedef int (*textcheck_fn)(struct tc *t);

struct textcheck_rule {
	const char *name;
	textcheck_fn check; /* 1: fired (reason set), 0: clean, < 0: error */
};

static void tc_reason(struct tc *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tc_reason(struct tc *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->out->reason, sizeof(t->out->reason), fmt, ap);
	va_end(ap);
	/* vsnprintf cuts by bytes: put the cut back on a character boundary */
	t->out->reason[utf8_prefix(t->out->reason, strlen(t->out->reason),
				   sizeof(t->out->reason) - 1)] = '\0';
	utf8_sanitize(t->out->reason);
}

/* An excerpt of s[0..n) for a reason (dst at most 128 bytes), cut on a
 * character boundary and marked "..." when cut. */
static const char *excerpt(const char *s, size_t n, char *dst, size_t dstlen)
{
	char tmp[130];
	size_t k = n < dstlen ? n : dstlen; /* > dstlen - 1 when cut: utf8_copy marks it */

	if (k > sizeof(tmp) - 1)
		k = sizeof(tmp) - 1;
	memcpy(tmp, s, k);
	tmp[k] = '\0';
	utf8_copy(dst, dstlen, tmp, "...");
	return dst;
}

/* ---- code points ------------------------------------------------------- */

/* The length of the valid UTF-8 sequence that starts s[0..n) (a lead byte
 * of 0x80 or more), or 0 when it is not one: utf8_check's rules for one
 * character (no overlong, surrogate or code point past U+10FFFF). */
static inline size_t seq_len(const unsigned char *u, size_t n)
{
	unsigned c = u[0];
	size_t k;
	uint32_t cp, min;

	if (c >= 0xC2 && c <= 0xDF) {
		k = 1;
		cp = c & 0x1F;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		k = 2;
		cp = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		k = 3;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < 4 && n - 1 < k)
		return 0;
	for (size_t i = 1; i <= k; i++) {
		if ((u[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (u[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return k + 1;
}

/* Decodes the code point at s[0..n); *len gets its length (1 for an
 * invalid byte, which decodes as U+FFFD). */
static inline uint32_t cp_at(const char *s, size_t n, size_t *len)
{
	const unsigned char *u = (const unsigned char *)s;

	if (u[0] < 0x80) {
		*len = 1;
		return u[0];
	}
	if (seq_len(u, n) == 0) {
		*len = 1;
		return 0xFFFD;
	}
	if ((u[0] & 0xE0) == 0xC0) {
		*len = 2;
		return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
	}
	if ((u[0] & 0xF0) == 0xE0) {
		*len = 3;
		return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
	}
	*len = 4;
	return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
	       ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
}

static bool cp_han(uint32_t c)
{
	return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
	       (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2FFFF);
}

static bool cp_cjk(uint32_t c)
{
	return cp_han(c) || (c >= 0x3040 && c <= 0x30FF) || (c >= 0xAC00 && c <= 0xD7AF);
}

static bool cp_latin(uint32_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7);
}

static bool ascii_letter(unsigned char c)
{
	return (unsigned)((c | 0x20) - 'a') < 26;
}

static void letters_count(const char *s, size_t n, size_t *cjk, size_t *latin)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, l;

	while (i < n) {
		uint32_t c;

		if (u[i] < 0x80) { /* most of the text: no decoding */
			*latin += ascii_letter(u[i]);
			i++;
			continue;
		}
		c = cp_at(s + i, n - i, &l);
		if (cp_cjk(c))
			(*cjk)++;
		else if (cp_latin(c))
			(*latin)++;
		i += l;
	}
}

int textcheck_cjk_share(const char *s, size_t *letters)
{
	size_t cjk = 0, latin = 0;

	if (s)
		letters_count(s, strlen(s), &cjk, &latin);
	if (letters)
		*letters = cjk + latin;
	return cjk + latin ? (int)(cjk * 100 / (cjk + latin)) : 0;
}

/* ---- hash sets of 64-bit keys with counts ------------------------------ */

struct hset {
	uint64_t *key;
	uint32_t *cnt;
	size_t mask;
	unsigned shift; /* a key's slot: the high bits of key * HSET_K */
	bool heap; /* key and cnt are the caller's, else allocated */
};

#define HSET_K UINT64_C(0x9E3779B97F4A7C15)

/* Sized for n adds: in the caller's key[cap] and cnt[cap] when they are
 * enough (no allocation per reply), else allocated. The counts do not
 * depend on the size. */
static int hset_init(struct hset *h, size_t n, uint64_t *key, uint32_t *cnt, size_t cap)
{
	size_t want = 64;

	while (want < n * 2)
		want *= 2;
	h->mask = want - 1;
	h->shift = 64 - (unsigned)__builtin_ctzll(want);
	if (key && want <= cap) {
		h->key = key;
		h->cnt = cnt;
		h->heap = false;
		memset(key, 0, want * sizeof(*key));
		memset(cnt, 0, want * sizeof(*cnt));
		return 0;
	}
	h->heap = true;
	h->key = calloc(want, sizeof(*h->key));
	h->cnt = calloc(want, sizeof(*h->cnt));
	if (!h->key || !h->cnt) {
		free(h->key);
		free(h->cnt);
		h->key = NULL;
		h->cnt = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void hset_free(struct hset *h)
{
	if (h->heap) {
		free(h->key);
		free(h->cnt);
	}
	h->key = NULL;
	h->cnt = NULL;
}

/* The slot of k, not 0 (0 is the empty key: the callers store 0 as 1).
 * The keys are hashes already: one multiply spreads them (where a key
 * lands does not change any count). */
static inline __attribute__((always_inline)) size_t hset_slot(const struct hset *h, uint64_t k)
{
	size_t i;

	for (i = (size_t)((k * HSET_K) >> h->shift); h->key[i] && h->key[i] != k; i = (i + 1) & h->mask)
		;
	return i;
}

/* Adds one to k's count (the set is sized for every add); the new count. */
static inline __attribute__((always_inline)) uint32_t hset_add(struct hset *h, uint64_t k)
{
	size_t i;

	k = k ? k : 1;
	i = hset_slot(h, k);
	h->key[i] = k;
	return ++h->cnt[i];
}

static inline __attribute__((always_inline)) uint32_t hset_get(const struct hset *h, uint64_t k)
{
	return h->cnt[hset_slot(h, k ? k : 1)];
}

/* ---- terms ------------------------------------------------------------- */

/* The hash of s[0..n) for equality (terms, lines; nothing outside this
 * file sees it): 8 bytes a multiply, ASCII letters lower-cased with
 * lower = 0x20 in every byte (a term starting with an ASCII byte is a
 * word: all letters), and one-to-one for n <= 8 (the length seeds it, and
 * (h ^ w) * odd is a bijection of w). Reads nothing outside s[0..n). */
#define LOWER8 UINT64_C(0x2020202020202020)
#define CHUNK_K UINT64_C(0x9E3779B97F4A7C15)

static inline uint64_t chunk_hash(const char *s, size_t n, uint64_t lower)
{
	const unsigned char *u = (const unsigned char *)s;
	uint64_t h = CHUNK_K ^ n, w;
	size_t i = 0, r;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		h = (h ^ (w | lower)) * CHUNK_K;
	}
	r = n - i;
	if (r == 0)
		return h;
	if (n >= 8) { /* the last 8 bytes, shifted down to the r left */
		memcpy(&w, s + n - 8, 8);
		w >>= (8 - r) * 8;
	} else if (r >= 4) {
		uint32_t lo, hi;

		memcpy(&lo, s, 4);
		memcpy(&hi, s + r - 4, 4);
		w = lo | (uint64_t)hi << ((r - 4) * 8);
	} else {
		w = u[0] | (uint64_t)u[r / 2] << (r / 2 * 8) | (uint64_t)u[r - 1] << ((r - 1) * 8);
	}
	return (h ^ (w | (lower >> ((8 - r) * 8)))) * CHUNK_K;
}

/* A term's hash: of a CJK bigram's bytes, or of a Latin word's letters
 * lower-cased. */
static inline uint64_t term_hash(const char *s, size_t len)
{
	return chunk_hash(s, len, (unsigned char)s[0] < 0x80 ? LOWER8 : 0);
}

/* Counts the letters of one character at u[0..n) (a lead byte of 0x80 or
 * more) into *cjk / *latin and returns its length; *han tells whether it
 * is a Han character (a bigram's half). The decoding of letters_count and
 * of the term scans, in one place. */
static inline __attribute__((always_inline)) size_t
char_letters(const char *s, size_t n, size_t *cjk, size_t *latin, bool *han)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t l;
	uint32_t c;

	/* most of it: a valid 3-byte character (Han, kana, hangul, CJK
	 * punctuation), decoded once (cp_at's rules: not overlong, not a
	 * surrogate) */
	if ((u[0] & 0xF0) == 0xE0 && n >= 3 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80) {
		c = ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
		if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) {
			*han = (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
			       (c >= 0xF900 && c <= 0xFAFF);
			if (*han || (c >= 0x3040 && c <= 0x30FF) || (c >= 0xAC00 && c <= 0xD7AF))
				(*cjk)++;
			/* no 3-byte character is a Latin letter (those end at U+024F) */
			return 3;
		}
	}
	c = cp_at(s, n, &l);

	*han = cp_han(c);
	if (*han || cp_cjk(c))
		(*cjk)++;
	else if (cp_latin(c))
		(*latin)++;
	return l;
}

/* The end of the run of ASCII letters from u[j], at most n: 8 bytes at a
 * time while they are all letters. */
static inline size_t letter_run(const unsigned char *u, size_t j, size_t n)
{
	const uint64_t ones = UINT64_C(0x0101010101010101), high = ones * 0x80;

	while (j + 8 <= n) {
		uint64_t w, y, letters;

		memcpy(&w, u + j, 8);
		y = (w | ones * 0x20) & ~high;
		/* high bit of a byte: (c | 0x20) in 'a'..'z' and c < 0x80 */
		letters = (y + ones * (0x80 - 'a')) & ~(y + ones * (0x80 - 'z' - 1)) & ~w & high;
		if (letters != high)
			return j + (size_t)__builtin_ctzll(~letters & high) / 8;
		j += 8;
	}
	while (j < n && ascii_letter(u[j]))
		j++;
	return j;
}

/* The 64 bytes at u as bit masks (bit k for u[k]): ASCII letters in *l and
 * line ends in *nl; false (and no masks) when one of them is not ASCII.
 * 8 bytes at a time, each byte's test exact (no carry crosses a byte). */
#define ONES8 UINT64_C(0x0101010101010101)
#define HIGH8 (ONES8 * 0x80)

static inline __attribute__((unused)) uint64_t high_bits_gather(uint64_t m)
{
	/* the high bit of byte j to bit j */
	return ((m >> 7) * UINT64_C(0x0102040810204080)) >> 56;
}

static inline __attribute__((always_inline)) bool block_masks(const unsigned char *u, uint64_t *l,
							       uint64_t *nl)
{
#ifdef __SSE2__
	__m128i v[4];
	uint64_t lm = 0, nm = 0;
	int hi = 0;

	for (int q = 0; q < 4; q++) {
		v[q] = _mm_loadu_si128((const __m128i *)(const void *)(u + q * 16));
		hi |= _mm_movemask_epi8(v[q]);
	}
	if (hi)
		return false;
	for (int q = 0; q < 4; q++) {
		/* all bytes under 0x80: the signed compares are the unsigned ones */
		__m128i y = _mm_or_si128(v[q], _mm_set1_epi8(0x20));
		__m128i letters = _mm_and_si128(_mm_cmpgt_epi8(y, _mm_set1_epi8('a' - 1)),
						_mm_cmplt_epi8(y, _mm_set1_epi8('z' + 1)));

		lm |= (uint64_t)(unsigned)_mm_movemask_epi8(letters) << (q * 16);
		nm |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v[q], _mm_set1_epi8('\n')))
		      << (q * 16);
	}
	*l = lm;
	*nl = nm;
	return true;
#else
	uint64_t w[8], any = 0, lm = 0, nm = 0;

	memcpy(w, u, 64);
	for (int q = 0; q < 8; q++)
		any |= w[q];
	if (any & HIGH8)
		return false;
	for (int q = 0; q < 8; q++) {
		uint64_t y = w[q] | ONES8 * 0x20, x = w[q] ^ ONES8 * '\n', letters, ends;

		letters = (y + ONES8 * (0x80 - 'a')) & ~(y + ONES8 * (0x80 - 'z' - 1)) & HIGH8;
		ends = ~(((x & ~HIGH8) + ~HIGH8) | x) & HIGH8;
		lm |= high_bits_gather(letters) << (q * 8);
		nm |= high_bits_gather(ends) << (q * 8);
	}
	*l = lm;
	*nl = nm;
	return true;
#endif
}

/* The length of the run of letters at bit b of the block's mask l: up to
 * the block's end, and then on in u from there (ASCII letters, at most n). */
static inline size_t block_run(uint64_t l, unsigned b)
{
	uint64_t r = ~(l >> b);

	return r ? (size_t)__builtin_ctzll(r) : 64;
}

/* The item's fields in one pass each: their letters (the language check,
 * every field) and the hashes of their terms (the topic check, every field
 * but the context): CJK bigrams within runs of Han characters, Latin words
 * of 3+ letters, as terms_each and term_hash found them. */
#define TC_ITEM_TERMS_STACK 1024

struct item_scan {
	bool done;
	size_t cjk, latin;
	uint64_t *h; /* the terms' hashes */
	size_t n, cap;
	uint64_t h_stack[TC_ITEM_TERMS_STACK];
};

static void field_scan(const char *s, size_t n, struct item_scan *is, bool terms)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, prev_len = 0;
	const char *prev = NULL;
	size_t stop = 0; /* the end of a block with a non-ASCII byte */
	/* in registers (a store to h[] could alias is's counts) */
	size_t cjk = is->cjk, latin = is->latin, hn = is->n, cap = terms ? is->cap : 0;
	uint64_t *h = is->h;

	while (i < n) {
		bool han;
		size_t l;
		uint64_t lm, nm;

		/* 64 ASCII bytes at once, entered only between words */
		if (i >= stop && n - i >= 64 && (i == 0 || !ascii_letter(u[i - 1]))) {
			if (block_masks(u + i, &lm, &nm)) {
				uint64_t st = lm & ~(lm << 1);
				size_t next = i + 64;

				while (st) {
					unsigned b = (unsigned)__builtin_ctzll(st);
					size_t len = block_run(lm, b);

					st &= st - 1;
					if (b + len == 64) { /* the word goes on past the block */
						next = letter_run(u, i + 64, n);
						len = next - (i + b);
					}
					latin += len;
					if (len >= 3 && hn < cap)
						h[hn++] = chunk_hash(s + i + b, len, LOWER8);
				}
				prev = NULL;
				i = next;
				continue;
			}
			stop = i + 64;
		}
		if (u[i] < 0x80) {
			size_t j;

			prev = NULL;
			if (!ascii_letter(u[i])) {
				i++;
				continue;
			}
			j = letter_run(u, i + 1, n);
			latin += j - i;
			if (j - i >= 3 && hn < cap)
				h[hn++] = chunk_hash(s + i, j - i, LOWER8);
			i = j;
			continue;
		}
		l = char_letters(s + i, n - i, &cjk, &latin, &han);
		if (han) {
			if (prev && hn < cap)
				h[hn++] = chunk_hash(prev, prev_len + l, 0);
			prev = s + i;
			prev_len = l;
		} else {
			prev = NULL;
		}
		i += l;
	}
	is->cjk = cjk;
	is->latin = latin;
	is->n = hn;
}

/* The item's text fields that a reply may quote: question, options,
 * gold, context, explanation (NULL-terminated, borrowed). */
static size_t item_fields(json_t *item, const char **f, size_t max, bool with_explanation,
			  const char **ctx)
{
	static const char *const keys[] = { "question", "answer", "context", "explanation" };
	json_t *opts = json_object_get(item, "options"), *v;
	const char *k;
	size_t n = 0;

	*ctx = NULL;
	/* json_string_value: NULL for what is not a string */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) - !with_explanation && n + 1 < max;
	     i++) {
		const char *x = json_string_value(json_object_get(item, keys[i]));

		if (x) {
			if (i == 2)
				*ctx = x;
			f[n++] = x;
		}
	}
	json_object_foreach(opts, k, v)
	{
		if (n + 1 < max && json_is_string(v))
			f[n++] = json_string_value(v);
	}
	f[n] = NULL;
	return n;
}

/* The item's fields without its explanation, looked up once a run. */
static const char *const *tc_fields(struct tc *t)
{
	if (!t->have_fields) {
		t->nf = item_fields(t->in->item, t->f, TC_FIELDS_MAX, false, &t->ctx);
		t->have_fields = true;
	}
	return t->f;
}

/* The reply's terms in order, and where each line's terms start: lo[k] is
 * the first term of line k (lines as split at '\n', the last one possibly
 * empty), lo[lines] the count. In the caller's buffers when they are
 * enough. */
#define TC_TERMS_STACK 1024
#define TC_LINES_STACK 256

struct term_list {
	const char *text;
	uint64_t *v; /* each term's offset in text << 32 | its length */
	size_t n, cap;
	size_t *lo;
	size_t lines;
	bool heap_v, heap_lo;
	/* each term's hash once it was asked (hv[j], valid when bit j of known
	 * is set): the topic check asks for the same terms at every split */
	uint64_t *hv, *known;
	uint64_t v_stack[TC_TERMS_STACK];
	uint64_t hv_stack[TC_TERMS_STACK];
	uint64_t known_stack[TC_TERMS_STACK / 64 + 1];
	size_t lo_stack[TC_LINES_STACK + 1];
};

/* The hash of the reply's term j (hashed when asked: the topic check
 * looks at few of them in most replies). */
static inline uint64_t term_at(struct term_list *l, size_t j)
{
	uint64_t bit = UINT64_C(1) << (j % 64);

	if (!(l->known[j / 64] & bit)) {
		l->hv[j] = term_hash(l->text + (l->v[j] >> 32), (size_t)(l->v[j] & UINT32_MAX));
		l->known[j / 64] |= bit;
	}
	return l->hv[j];
}

static void term_list_free(struct term_list *l)
{
	if (l->heap_v) {
		free(l->v);
		free(l->hv);
		free(l->known);
	}
	if (l->heap_lo)
		free(l->lo);
}

/* One pass over the reply for the checks that read it by character: its
 * letters (language) and its terms by line (off_topic). -ENOMEM. */
static int tc_scan(struct tc *t)
{
	struct term_list *tl = t->tl;
	const char *s = t->s, *end = s + t->n, *p, *prev = NULL;
	const unsigned char *u = (const unsigned char *)s;
	size_t lines = 1, k = 0, i = 0, n = t->n, prev_len = 0, cjk = 0, latin = 0;
	size_t stop = 0; /* the end of a block with a non-ASCII byte */

	if (t->scanned)
		return 0;
	if (t->have_lines)
		lines = t->lines;
	else
		for (p = s; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
			lines++;
	memset(tl, 0, offsetof(struct term_list, v_stack));
	tl->text = s;
	/* a term holds 3 bytes of its own at least (a Han character, or a
	 * word's three letters) */
	tl->cap = t->n / 3 + 1;
	tl->v = tl->v_stack;
	tl->hv = tl->hv_stack;
	tl->known = tl->known_stack;
	if (tl->cap > TC_TERMS_STACK) {
		tl->v = malloc(tl->cap * sizeof(*tl->v));
		tl->hv = malloc(tl->cap * sizeof(*tl->hv));
		tl->known = malloc((tl->cap / 64 + 1) * sizeof(*tl->known));
		tl->heap_v = true;
	}
	tl->lo = tl->lo_stack;
	if (lines > TC_LINES_STACK) {
		tl->lo = malloc((lines + 1) * sizeof(*tl->lo));
		tl->heap_lo = true;
	}
	if (!tl->v || !tl->hv || !tl->known || !tl->lo) {
		term_list_free(tl);
		return -ENOMEM;
	}
	memset(tl->known, 0, (tl->cap / 64 + 1) * sizeof(*tl->known));
	tl->lines = lines;
	tl->lo[0] = 0;
	/* in registers (a store to v[] or lo[] could alias tl's counts) */
	uint64_t *v = tl->v;
	size_t *lo = tl->lo, tn = 0, cap = tl->cap;

	/* a line end is ASCII and no character or term crosses it: the whole
	 * text at once is the same as line by line */
	while (i < n) {
		bool han;
		size_t l;
		uint64_t lm, nm;

		/* 64 ASCII bytes at once, entered only between words: the line
		 * ends and word starts in order */
		if (i >= stop && n - i >= 64 && (i == 0 || !ascii_letter(u[i - 1]))) {
			if (block_masks(u + i, &lm, &nm)) {
				uint64_t st = lm & ~(lm << 1), ev = st | nm;
				size_t next = i + 64;

				while (ev) {
					unsigned b = (unsigned)__builtin_ctzll(ev);
					size_t len;

					ev &= ev - 1;
					if ((nm >> b) & 1) {
						lo[++k] = tn;
						continue;
					}
					len = block_run(lm, b);
					if (b + len == 64) { /* the word goes on past the block */
						next = letter_run(u, i + 64, n);
						len = next - (i + b);
					}
					latin += len;
					if (len >= 3 && tn < cap)
						v[tn++] = (uint64_t)(i + b) << 32 | len;
				}
				prev = NULL;
				i = next;
				continue;
			}
			stop = i + 64;
		}
		if (u[i] < 0x80) {
			size_t j = i;

			prev = NULL;
			if (!ascii_letter(u[i])) {
				if (u[i] == '\n')
					lo[++k] = tn;
				i++;
				continue;
			}
			j = letter_run(u, i + 1, n);
			latin += j - i;
			if (j - i >= 3 && tn < cap)
				v[tn++] = (uint64_t)i << 32 | (j - i);
			i = j;
			continue;
		}
		l = char_letters(s + i, n - i, &cjk, &latin, &han);
		if (han) {
			if (prev && tn < cap)
				v[tn++] = (uint64_t)(prev - s) << 32 | (prev_len + l);
			prev = s + i;
			prev_len = l;
		} else {
			prev = NULL;
		}
		i += l;
	}
	lo[++k] = tn;
	tl->n = tn;
	t->cjk = cjk;
	t->latin = latin;
	t->scanned = true;
	return 0;
}

/* The item's letters and terms (item_scan), once a run. -ENOMEM. */
static int tc_item_scan(struct tc *t)
{
	struct item_scan *is = t->is;
	const char *const *f = tc_fields(t), *ctx;
	size_t len[TC_FIELDS_MAX], bytes = 0;
	/* the terms only for the topic check (a screening of a short field
	 * asks for the language alone) */
	bool terms = t->in->checks & TEXTCHECK_BIT(TEXTCHECK_OFF_TOPIC);

	if (is->done)
		return 0;
	ctx = t->ctx;
	for (size_t i = 0; i < t->nf; i++) {
		len[i] = strlen(f[i]);
		if (terms && f[i] != ctx)
			bytes += len[i] / 3 + 1;
	}
	is->cjk = is->latin = is->n = 0;
	is->cap = bytes;
	is->h = is->h_stack;
	if (bytes > TC_ITEM_TERMS_STACK) {
		is->h = malloc(bytes * sizeof(*is->h));
		if (!is->h)
			return -ENOMEM;
	}
	for (size_t i = 0; i < t->nf; i++)
		field_scan(f[i], len[i], is, terms && f[i] != ctx);
	is->done = true;
	return 0;
}

/* ---- the checks -------------------------------------------------------- */

static int check_truncated(struct tc *t)
{
	if (!t->in->length_cut)
		return 0;
	tc_reason(t, "the reply was cut at the token limit (finish_reason length)");
	return 1;
}

static int check_too_long(struct tc *t)
{
	size_t len = t->len;
	uint64_t max = (uint64_t)t->in->max_tokens * TEXTCHECK_BYTES_PER_TOKEN;

	if (t->in->max_tokens <= 0 || len <= max)
		return 0;
	tc_reason(t, "the reply is %zu bytes, more than the %llu its %lld-token limit allows", len,
		  (unsigned long long)max, (long long)t->in->max_tokens);
	return 1;
}

static inline bool byte_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '-' || c == '=' || c == '_' ||
	       c == '*';
}

static bool unit_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!byte_blank(s[i]))
			return false;
	return true;
}

/* A unit repeated back to back: "; ; ; ;", "好的好的好的". */
static bool loop_hit(size_t run, size_t p)
{
	return run + p >= TEXTCHECK_LOOP_MIN_BYTES && (run + p) / p >= TEXTCHECK_LOOP_MIN_REPEATS;
}

/* The shortest run that counts, over every period: the least of
 * max(MIN_BYTES - p, (MIN_REPEATS - 1) * p), 56 bytes. With these
 * thresholds it is always over 8 (at least MIN_BYTES * (MIN_REPEATS - 1) /
 * MIN_REPEATS). */
_Static_assert(TEXTCHECK_LOOP_MIN_BYTES >= 16 && TEXTCHECK_LOOP_MIN_REPEATS >= 3,
	       "check_loop probes 8 bytes inside every run that counts");

static size_t loop_run_min(void)
{
	size_t best = SIZE_MAX;

	for (size_t p = 1; p <= TEXTCHECK_LOOP_UNIT_MAX; p++) {
		size_t r = (TEXTCHECK_LOOP_MIN_REPEATS - 1) * p;

		if (p < TEXTCHECK_LOOP_MIN_BYTES && TEXTCHECK_LOOP_MIN_BYTES - p > r)
			r = TEXTCHECK_LOOP_MIN_BYTES - p;
		best = r < best ? r : best;
	}
	return best;
}

/* A run of period p is a stretch where s[i] == s[i + p]. For each period,
 * the runs in order; the first that counts and whose unit is not blank is
 * reported, for the shortest period that has one. Every run that counts is
 * at least loop_run_min() bytes long, so an 8-byte probe every
 * loop_run_min() - 8 bytes lies inside each of them; a probe that matches
 * is grown to its whole run byte by byte (each run once). That is about 1.3
 * word compares a byte for the 64 periods, where comparing every byte was
 * 8. */
/* Period p at probe i (its first bytes may match): grows the run it is in
 * (each run once: until[p]) and tells whether it is reported, setting
 * *best_lo and *best_hi. */
static inline __attribute__((always_inline)) bool loop_try(const char *s, size_t n, size_t i,
							    size_t p, uint64_t a, size_t *until,
							    size_t *best_lo, size_t *best_hi)
{
	size_t lo, hi;
	uint64_t b;

	if (i < until[p])
		return false;
	memcpy(&b, s + i + p, 8);
	if (a != b)
		return false;
	lo = i;
	hi = i + 8;
	while (lo > 0 && s[lo - 1] == s[lo - 1 + p])
		lo--;
	while (hi + p < n && s[hi] == s[hi + p])
		hi++;
	until[p] = hi;
	if (!loop_hit(hi - lo, p) || unit_blank(s + lo, p))
		return false;
	*best_lo = lo;
	*best_hi = hi;
	return true;
}

static int check_loop(struct tc *t)
{
	const char *s = t->s;
	const unsigned char *u = (const unsigned char *)s;
	size_t n = t->n, stride = loop_run_min() - 8;
	size_t until[TEXTCHECK_LOOP_UNIT_MAX + 1] = { 0 }; /* per period: the end of its last run grown */
	size_t best_p = TEXTCHECK_LOOP_UNIT_MAX + 1, best_lo = 0, best_hi = 0;
	char ex[64];

	/* Each period's probes and runs as before, the periods of one probe
	 * together: a period whose first byte differs cannot match (found 8 at
	 * a time; with SSE2, the first two bytes, 16 at a time), and a period
	 * at or above the least one found so far cannot be reported. */
	for (size_t i = 0; i + 9 <= n && best_p > 1; i += stride) {
		size_t pmax = best_p - 1 < n - i - 8 ? best_p - 1 : n - i - 8;
		uint64_t a, ones = UINT64_C(0x0101010101010101), hi7 = UINT64_C(0x7F7F7F7F7F7F7F7F);
		uint64_t c8 = ones * u[i];
		bool done = false;

		memcpy(&a, s + i, 8);
#ifdef __SSE2__
		_Static_assert(TEXTCHECK_LOOP_UNIT_MAX == 64, "one probe's periods are 64 bits");
		if (i + 2 + TEXTCHECK_LOOP_UNIT_MAX <= n) {
			/* bit p - 1: s[i + p] == s[i] and s[i + p + 1] == s[i + 1] */
			__m128i c1 = _mm_set1_epi8((char)u[i]), c2 = _mm_set1_epi8((char)u[i + 1]);
			uint64_t mm = 0;

			for (int q = 0; q < 4; q++) {
				const char *x = s + i + 1 + q * 16;
				__m128i e = _mm_and_si128(
					_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)x), c1),
					_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(x + 1)),
						       c2));

				mm |= (uint64_t)(unsigned)_mm_movemask_epi8(e) << (q * 16);
			}
			if (pmax < 64)
				mm &= (UINT64_C(1) << pmax) - 1;
			while (mm) {
				size_t p = 1 + (size_t)__builtin_ctzll(mm);

				mm &= mm - 1;
				if (loop_try(s, n, i, p, a, until, &best_lo, &best_hi)) {
					best_p = p;
					break;
				}
			}
			done = true;
		}
#endif
		for (size_t w = 0; !done && w * 8 < pmax; w++) {
			size_t p0 = 1 + w * 8; /* the period of the word's first byte */
			uint64_t m = 0;

			if (i + p0 + 8 <= n) {
				uint64_t x;

				memcpy(&x, s + i + p0, 8);
				x ^= c8;
				m = ~(((x & hi7) + hi7) | x) & ~hi7; /* 0x80 where a byte is equal */
			} else {
				for (size_t k = 0; k < 8 && i + p0 + k < n; k++)
					if (u[i + p0 + k] == u[i])
						m |= (uint64_t)0x80 << (k * 8);
			}
			if (pmax - p0 + 1 < 8)
				m &= ((uint64_t)1 << ((pmax - p0 + 1) * 8)) - 1;
			while (m) {
				size_t p = p0 + (size_t)__builtin_ctzll(m) / 8;

				m &= m - 1;
				if (loop_try(s, n, i, p, a, until, &best_lo, &best_hi)) {
					best_p = p;
					pmax = 0; /* the rest are longer periods */
					break;
				}
			}
		}
	}
	if (best_p > TEXTCHECK_LOOP_UNIT_MAX)
		return 0;
	tc_reason(t, "a runaway loop: \"%s\" repeated %zu times",
		  excerpt(s + best_lo, best_p, ex, sizeof(ex)), (best_hi - best_lo + best_p) / best_p);
	return 1;
}

#define LINES_STACK 512

/* One line re-emitted again and again (a header the model loops on). */
static int check_lines(struct tc *t)
{
	struct hset h;
	const char *s = t->s, *end = s + t->n, *p = s, *q;
	char ex[80];
	int rc = 0;
	size_t lines = 1;
	uint64_t key[LINES_STACK];
	uint32_t cnt[LINES_STACK];

	for (q = s; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
		lines++;
	t->lines = lines; /* for tc_scan */
	t->have_lines = true;
	if (hset_init(&h, lines, key, cnt, LINES_STACK))
		return -ENOMEM;
	while (p < end && rc == 0) {
		const char *e = memchr(p, '\n', (size_t)(end - p)), *a = p, *b;

		e = e ? e : end;
		b = e;
		while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		if ((size_t)(b - a) >= TEXTCHECK_LINE_MIN_BYTES &&
		    hset_add(&h, chunk_hash(a, (size_t)(b - a), 0)) >=
			    TEXTCHECK_LINE_MIN_REPEATS) {
			size_t count = 0;

			/* count them all, for the reason */
			for (q = s; q < end;) {
				const char *qe = memchr(q, '\n', (size_t)(end - q)), *qa = q, *qb;

				qe = qe ? qe : end;
				qb = qe;
				while (qa < qb && (*qa == ' ' || *qa == '\t' || *qa == '\r'))
					qa++;
				while (qb > qa && (qb[-1] == ' ' || qb[-1] == '\t' || qb[-1] == '\r'))
					qb--;
				count += qb - qa == b - a && memcmp(qa, a, (size_t)(b - a)) == 0;
				q = qe + 1;
			}
			tc_reason(t, "the line \"%s\" repeats %zu times",
				  excerpt(a, (size_t)(b - a), ex, sizeof(ex)), count);
			rc = 1;
		}
		p = e + 1;
	}
	hset_free(&h);
	return rc;
}

/* Many long n-grams occurring again and again: a degenerate text. */

/* The windows of GRAM_BYTES bytes of s, in order, each with a rolling
 * polynomial hash (O(1) a window, not O(GRAM_BYTES)). A window that starts
 * inside a character or is all blank does not count. */
struct grams {
	const char *s;
	size_t n, i;      /* the current window is s[i .. i + GRAM_BYTES) */
	uint64_t h, top;  /* its hash; B^(w-1), the weight of the byte leaving */
	size_t nonblank;  /* its bytes that are not blank */
};

#define GRAM_B UINT64_C(0x100000001b3)

static inline void grams_start(struct grams *g, const char *s, size_t n)
{
	g->s = s;
	g->n = n;
	g->i = 0;
	g->h = 0;
	g->top = 1;
	g->nonblank = 0;
	for (size_t k = 1; k < TEXTCHECK_GRAM_BYTES; k++)
		g->top *= GRAM_B;
	for (size_t k = 0; k < TEXTCHECK_GRAM_BYTES; k++) {
		g->h = g->h * GRAM_B + (unsigned char)s[k];
		g->nonblank += !byte_blank(s[k]);
	}
}

static inline bool grams_counts(const struct grams *g)
{
	return ((unsigned char)g->s[g->i] & 0xC0) != 0x80 && g->nonblank > 0;
}

/* Moves to the next window; false past the last. */
static inline bool grams_next(struct grams *g)
{
	const unsigned char *u = (const unsigned char *)g->s;
	size_t i = g->i, w = TEXTCHECK_GRAM_BYTES;

	if (i + w >= g->n)
		return false;
	g->h = (g->h - u[i] * g->top) * GRAM_B + u[i + w];
	g->nonblank += !byte_blank((char)u[i + w]);
	g->nonblank -= !byte_blank((char)u[i]);
	g->i = i + 1;
	return true;
}

/* The window's key for the exact count: never 0. */
static inline uint64_t grams_key(const struct grams *g)
{
	uint64_t m = hash_mix64(g->h);

	return m ? m : 1;
}

/* The filter's table: 2-bit saturating counters, 32 a word, about 32 a
 * window (so that texts without repeats rarely get past it), at most
 * 2^GRAM_FILTER_BITS. */
#define GRAM_FILTER_BITS 16
#define GRAM_FLAGGED_STACK 512

static inline size_t gram_bucket(uint64_t h, unsigned bits)
{
	return (size_t)((h * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - bits));
}

static inline unsigned gram_counter(const uint64_t *tab, size_t b)
{
	return (unsigned)(tab[b >> 5] >> ((b & 31) * 2)) & 3u;
}

/* Exactly: the bytes covered by windows whose content occurs
 * GRAM_MIN_COUNT (3) times or more, as the union of those windows. In
 * passes that are cheap for a text that repeats little: (1) saturating
 * counters by window hash (starting inside a character or not), which can
 * only count too much, never too little; the windows in buckets that reached
 * 3 bound the coverage from above (30 bytes each): under the thresholds, the
 * text is clean; (2) the union of just those windows, a tighter bound;
 * (3) the exact count of just those windows by their 64-bit key. Sets
 * *covered, or returns -ENOMEM. */
static bool window_nonblank(const char *s)
{
	for (size_t k = 0; k < TEXTCHECK_GRAM_BYTES; k++)
		if (!byte_blank(s[k]))
			return true;
	return false;
}

/* Pass (1) of grams_covered for the nw windows of u: sizes (*bits) and
 * clears tab, counts each window that starts a character (the rolling hash
 * inline, the blank test left to pass 2), and returns the bound on the
 * coverage in bytes. With hs, each window's hash is kept there. Inlined in
 * both callers, so the copy without hs has no test for it. */
static inline __attribute__((always_inline)) size_t grams_pass1(const unsigned char *u, size_t nw,
								 uint64_t *tab, unsigned *bits, uint64_t *hs)
{
	uint64_t hh = 0, top = 1;
	size_t inb = 0;

	while (*bits < GRAM_FILTER_BITS && ((size_t)1 << *bits) < nw * 32)
		(*bits)++;
	memset(tab, 0, ((size_t)1 << *bits) / 4);
	for (size_t k = 1; k < TEXTCHECK_GRAM_BYTES; k++)
		top *= GRAM_B;
	for (size_t k = 0; k < TEXTCHECK_GRAM_BYTES; k++)
		hh = hh * GRAM_B + u[k];
	for (size_t i = 0;; i++) {
		if (hs)
			hs[i] = hh;
		if ((u[i] & 0xC0) != 0x80) {
			size_t b = gram_bucket(hh, *bits);
			unsigned sh = (unsigned)(b & 31) * 2, c = (unsigned)(tab[b >> 5] >> sh) & 3u;

			if (c < 3)
				tab[b >> 5] += (uint64_t)1 << sh;
			inb += c == 2 ? 3 : c == 3 ? 1 : 0;
		}
		if (i + 1 >= nw)
			break;
		hh = (hh - u[i] * top) * GRAM_B + u[i + TEXTCHECK_GRAM_BYTES];
	}
	return inb * TEXTCHECK_GRAM_BYTES;
}

/* grams_covered for a text of at most GRAM_HS_MAX windows, by anchors. A
 * window that occurs 3 times holds, at one of its first ANCHOR_STRIDE
 * offsets, an anchor: the GRAM_PIECE bytes at a multiple of ANCHOR_STRIDE
 * (GRAM_PIECE + ANCHOR_STRIDE - 1 = GRAM_BYTES); and those bytes occur 3
 * times too (in each copy of the window). So (1) the anchors' pieces are
 * counted at every offset of the text (a bit set of them rules out most
 * offsets with one probe; a count can only come out too high, never too
 * low), and every counted window lies within ANCHOR_STRIDE - 1 bytes before
 * a hot anchor (one whose piece occurs 3 times or more) to GRAM_BYTES after
 * it: under the thresholds, the text is clean; (2) every copy of a counted
 * window holds a hot anchor in its first ANCHOR_STRIDE offsets, so the exact
 * count of the windows that do (by the same 64-bit keys as grams_covered)
 * is the count over the whole text for every window that reaches
 * GRAM_MIN_COUNT. */
#define GRAM_HS_MAX 4096
#define GRAM_PIECE 16
_Static_assert(GRAM_HS_MAX + TEXTCHECK_GRAM_BYTES <= 65536, "window offsets fit 16 bits");
#define ANCHOR_STRIDE (TEXTCHECK_GRAM_BYTES - GRAM_PIECE + 1)
#define ANCHOR_MAX ((GRAM_HS_MAX + TEXTCHECK_GRAM_BYTES) / ANCHOR_STRIDE + 1)
#define ANCHOR_SLOTS_MAX 1024 /* a power of two, at least 2 * ANCHOR_MAX */
#define ANCHOR_MAP_MAX 2048 /* the map of anchor hashes: a power of two */

_Static_assert(ANCHOR_STRIDE >= 1 && GRAM_PIECE >= 8 && GRAM_PIECE <= 16,
	       "an anchor's piece is read as two overlapping 8-byte words");
_Static_assert(ANCHOR_SLOTS_MAX >= 2 * ANCHOR_MAX, "the anchors' table is at most half full");

/* The hash of the GRAM_PIECE bytes at u (one multiply: pieces that
 * collide only count too much); a key of it is h | 1 (0 is the empty
 * slot). */
static inline uint64_t piece_hash(const unsigned char *u)
{
	uint64_t a, b;

	memcpy(&a, u, 8);
	memcpy(&b, u + GRAM_PIECE - 8, 8);
	return (a ^ ((b << 29) | (b >> 35))) * UINT64_C(0x9E3779B97F4A7C15);
}

/* Counts the piece of hash k when it is an anchor's (or shares its key). */
static inline __attribute__((always_inline)) void anchor_count(uint64_t k, const unsigned char *amap,
								unsigned mshift, const uint32_t *akey,
								uint16_t *acnt, size_t slots)
{
	uint32_t key1;
	size_t i;

	if (!amap[k >> mshift])
		return;
	key1 = (uint32_t)(k >> 32) | 1;
	for (i = (size_t)(k * UINT64_C(0xC2B2AE3D27D4EB4F) >> 40) & (slots - 1);
	     akey[i] && akey[i] != key1; i = (i + 1) & (slots - 1))
		;
	acnt[i] += akey[i] != 0;
}

static inline uint64_t rolled_hash(const unsigned char *u)
{
	uint64_t h = 0;

	for (size_t k = 0; k < TEXTCHECK_GRAM_BYTES; k++)
		h = h * GRAM_B + u[k];
	return h;
}

static int grams_covered_small(const char *s, size_t n, size_t *covered)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t nw = n - TEXTCHECK_GRAM_BYTES + 1, na = (n - GRAM_PIECE) / ANCHOR_STRIDE + 1;
	size_t slots = 64, nmap = 1024, bound = 0, until = 0, ncand = 0;
	uint32_t akey[ANCHOR_SLOTS_MAX]; /* a piece's hash, the high half | 1 */
	unsigned char amap[ANCHOR_MAP_MAX];
	uint16_t acnt[ANCHOR_SLOTS_MAX];
	uint16_t aslot[ANCHOR_MAX];
	unsigned mshift;
	uint64_t ck[GRAM_HS_MAX]; /* (2): the candidate windows' keys */
	uint16_t cpos[GRAM_HS_MAX];
	uint64_t hh = 0, m, top = 1;
	size_t hpos = SIZE_MAX;
	uint64_t key[2 * GRAM_FLAGGED_STACK];
	uint32_t cnt[2 * GRAM_FLAGGED_STACK];
	struct hset h;
	int rc = 0;

	*covered = 0;
	for (size_t k = 1; k < TEXTCHECK_GRAM_BYTES; k++)
		top *= GRAM_B;
	/* (1) the anchors in a table at most half full, by the high half of
	 * their hash (pieces that share it count together: too much, never
	 * too little), and a map of their hashes, up to 32 bytes an anchor
	 * (one load an offset rules most out) */
	while (slots < 2 * na)
		slots *= 2;
	while (nmap < 32 * na && nmap < ANCHOR_MAP_MAX)
		nmap *= 2;
	mshift = 64 - (unsigned)__builtin_ctzll(nmap);
	memset(akey, 0, slots * sizeof(*akey));
	memset(acnt, 0, slots * sizeof(*acnt));
	memset(amap, 0, nmap);
	for (size_t j = 0; j < na; j++) {
		uint64_t k = piece_hash(u + j * ANCHOR_STRIDE);
		uint32_t key1 = (uint32_t)(k >> 32) | 1;
		size_t i = (size_t)(k * UINT64_C(0xC2B2AE3D27D4EB4F) >> 40) & (slots - 1);

		while (akey[i] && akey[i] != key1)
			i = (i + 1) & (slots - 1);
		akey[i] = key1;
		aslot[j] = (uint16_t)i;
		amap[k >> mshift] = 1;
	}
	/* four offsets a round: most rounds are one test of four map bytes */
	{
		size_t p = 0, np = n - GRAM_PIECE + 1;

		for (; p + 4 <= np; p += 4) {
			uint64_t k0 = piece_hash(u + p), k1 = piece_hash(u + p + 1);
			uint64_t k2 = piece_hash(u + p + 2), k3 = piece_hash(u + p + 3);

			if (!(amap[k0 >> mshift] | amap[k1 >> mshift] | amap[k2 >> mshift] |
			      amap[k3 >> mshift]))
				continue;
			anchor_count(k0, amap, mshift, akey, acnt, slots);
			anchor_count(k1, amap, mshift, akey, acnt, slots);
			anchor_count(k2, amap, mshift, akey, acnt, slots);
			anchor_count(k3, amap, mshift, akey, acnt, slots);
		}
		for (; p < np; p++)
			anchor_count(piece_hash(u + p), amap, mshift, akey, acnt, slots);
	}
	for (size_t j = 0; j < na; j++) {
		size_t p = j * ANCHOR_STRIDE, lo, hi;

		if (acnt[aslot[j]] < TEXTCHECK_GRAM_MIN_COUNT)
			continue;
		lo = p >= ANCHOR_STRIDE - 1 ? p - (ANCHOR_STRIDE - 1) : 0;
		hi = p + TEXTCHECK_GRAM_BYTES < n ? p + TEXTCHECK_GRAM_BYTES : n;
		bound += hi - (lo > until ? lo : until);
		until = hi;
	}
	if (bound < TEXTCHECK_GRAM_MIN_BYTES || bound * 100 < n * TEXTCHECK_GRAM_MIN_SHARE)
		return 0;
	/* (2) the windows that hold a hot anchor in their first ANCHOR_STRIDE
	 * offsets, in order, with their keys (rolled along a stretch of them) */
	until = 0;
	for (size_t j = 0; j < na; j++) {
		size_t p = j * ANCHOR_STRIDE, lo, hi;

		if (acnt[aslot[j]] < TEXTCHECK_GRAM_MIN_COUNT)
			continue;
		lo = p >= ANCHOR_STRIDE - 1 ? p - (ANCHOR_STRIDE - 1) : 0;
		hi = p + 1 < nw ? p + 1 : nw;
		for (size_t i = lo > until ? lo : until; i < hi; i++) {
			hh = i && i == hpos + 1 ? (hh - u[i - 1] * top) * GRAM_B + u[i - 1 + TEXTCHECK_GRAM_BYTES]
						: rolled_hash(u + i);
			hpos = i;
			if ((u[i] & 0xC0) == 0x80 || !window_nonblank(s + i))
				continue;
			m = hash_mix64(hh);
			ck[ncand] = m ? m : 1;
			cpos[ncand++] = (uint16_t)i;
		}
		until = hi > until ? hi : until;
	}
	if (hset_init(&h, ncand, key, cnt, 2 * GRAM_FLAGGED_STACK))
		return -ENOMEM;
	for (size_t k = 0; k < ncand; k++)
		hset_add(&h, ck[k]);
	/* the union of the windows that occur often enough, in order */
	until = 0;
	for (size_t k = 0; k < ncand; k++) {
		size_t e = cpos[k] + TEXTCHECK_GRAM_BYTES;

		if (hset_get(&h, ck[k]) < TEXTCHECK_GRAM_MIN_COUNT)
			continue;
		*covered += e - (cpos[k] > until ? cpos[k] : until);
		until = e;
	}
	hset_free(&h);
	return rc;
}

static int grams_covered(const char *s, size_t n, size_t *covered)
{
	uint64_t tab[((size_t)1 << GRAM_FILTER_BITS) / 32];
	size_t nw = n - TEXTCHECK_GRAM_BYTES + 1, bound = 0, until = 0, nflag = 0;
	size_t flag_stack[GRAM_FLAGGED_STACK], *flag = flag_stack;
	uint64_t key[2 * GRAM_FLAGGED_STACK];
	uint32_t cnt[2 * GRAM_FLAGGED_STACK];
	const unsigned char *u = (const unsigned char *)s;
	unsigned bits = 10;
	struct hset h;
	struct grams g;
	int rc = 0;

	if (nw <= GRAM_HS_MAX)
		return grams_covered_small(s, n, covered);
	*covered = 0;
	bound = grams_pass1(u, nw, tab, &bits, NULL);
	if (bound < TEXTCHECK_GRAM_MIN_BYTES || bound * 100 < n * TEXTCHECK_GRAM_MIN_SHARE)
		return 0;
	/* (2) */
	bound = 0;
	grams_start(&g, s, n);
	do {
		if (grams_counts(&g) && gram_counter(tab, gram_bucket(g.h, bits)) >= 3) {
			size_t e = g.i + TEXTCHECK_GRAM_BYTES;

			bound += e - (g.i > until ? g.i : until);
			until = e;
			nflag++;
		}
	} while (grams_next(&g));
	if (bound < TEXTCHECK_GRAM_MIN_BYTES || bound * 100 < n * TEXTCHECK_GRAM_MIN_SHARE)
		return 0;
	/* (3) */
	if (nflag > GRAM_FLAGGED_STACK) {
		flag = malloc(nflag * sizeof(*flag));
		if (!flag)
			return -ENOMEM;
	}
	if (hset_init(&h, nflag, key, cnt, 2 * GRAM_FLAGGED_STACK)) {
		rc = -ENOMEM;
		goto out;
	}
	nflag = 0;
	grams_start(&g, s, n);
	do {
		if (grams_counts(&g) && gram_counter(tab, gram_bucket(g.h, bits)) >= 3) {
			flag[nflag++] = g.i;
			hset_add(&h, grams_key(&g));
		}
	} while (grams_next(&g));
	/* the union of the windows that occur often enough, in order */
	until = 0;
	grams_start(&g, s, n);
	for (size_t k = 0; k < nflag; k++) {
		size_t e = flag[k] + TEXTCHECK_GRAM_BYTES;

		while (g.i < flag[k])
			grams_next(&g);
		if (hset_get(&h, grams_key(&g)) < TEXTCHECK_GRAM_MIN_COUNT)
			continue;
		*covered += e - (flag[k] > until ? flag[k] : until);
		until = e;
	}
	hset_free(&h);
out:
	if (flag != flag_stack)
		free(flag);
	return rc;
}

static int check_grams(struct tc *t)
{
	size_t n = t->n, covered;
	int rc;

	if (n < TEXTCHECK_GRAM_BYTES * 2 || n < TEXTCHECK_GRAM_MIN_BYTES)
		return 0;
	rc = grams_covered(t->s, n, &covered);
	if (rc < 0)
		return rc;
	if (covered < TEXTCHECK_GRAM_MIN_BYTES || covered * 100 < n * TEXTCHECK_GRAM_MIN_SHARE)
		return 0;
	tc_reason(t, "degenerate text: %zu%% of it is passages repeated %d times or more",
		  covered * 100 / n, TEXTCHECK_GRAM_MIN_COUNT);
	return 1;
}

static int check_repetition(struct tc *t)
{
	int rc = check_loop(t);

	if (rc == 0)
		rc = check_lines(t);
	if (rc == 0)
		rc = check_grams(t);
	return rc;
}

/* Chat-template tokens: the model wrote its own turn delimiters. */
static const char *const chat_tokens[] = {
	"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>",
	"<|end_header_id|>", "[INST]", "[/INST]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
	NULL
};

static bool in_any(const char *const *f, const char *needle)
{
	for (size_t i = 0; f[i]; i++)
		if (strstr(f[i], needle))
			return true;
	return false;
}

/* A prompt line the reply may legitimately repeat: part of the item's
 * text, or a line holding an item text (the gold, an option). */
static bool line_is_item(const char *const *f, const char *line)
{
	if (in_any(f, line))
		return true;
	for (size_t i = 0; f[i]; i++)
		if (strlen(f[i]) >= 6 && strstr(line, f[i]))
			return true;
	return false;
}

static inline size_t piece_bit(const char *s)
{
	uint32_t w;

	memcpy(&w, s, 4);
	return (size_t)((w * UINT32_C(0x9E3779B1)) >> (32 - TC_PIECES_LOG2));
}

/* Where s[0..n) first occurs in the reply, or NULL. The prompt's lines and
 * the phrases are searched in every reply and are mostly not there: a set
 * of the reply's 4-byte pieces (by hash, built once a run) rules most of
 * them out without a search, since a text with a piece the reply does not
 * have cannot be in it. */
#define PIECE_STRIDE 4

static const char *in_reply(struct tc *t, const char *s, size_t n)
{
	if (n >= 4 && t->n >= n) {
		bool maybe = false;

		/* the pieces at offsets of the reply that are multiples of
		 * PIECE_STRIDE: a text found at offset o has its pieces at
		 * offsets d with o + d a multiple there, so it is ruled out when
		 * every residue of d has a piece the set lacks */
		if (!t->have_pieces) {
			memset(t->pieces, 0, sizeof(t->pieces));
			for (size_t i = 0; i + 4 <= t->n; i += PIECE_STRIDE) {
				size_t b = piece_bit(t->s + i);

				t->pieces[b / 64] |= UINT64_C(1) << (b % 64);
			}
			t->have_pieces = true;
		}
		for (size_t r = 0; r < PIECE_STRIDE && !maybe; r++) {
			bool all = true;

			for (size_t i = r; i + 4 <= n && all; i += PIECE_STRIDE) {
				size_t b = piece_bit(s + i);

				all = (t->pieces[b / 64] >> (b % 64)) & 1;
			}
			maybe = all;
		}
		if (!maybe)
			return NULL;
	}
	return memmem(t->s, t->n, s, n);
}

/* The fields a prompt line may come from: the item's (with its
 * explanation) and the quotable text; looked up at the first prompt line
 * found in the reply (most replies have none). */
struct echo_fields {
	bool have;
	const char *f[TC_FIELDS_MAX];
};

static const char *const *echo_fields(struct tc *t, struct echo_fields *ef)
{
	if (!ef->have) {
		const char *ctx;
		size_t nf = item_fields(t->in->item, ef->f, TC_FIELDS_MAX - 1, true, &ctx);

		ef->f[nf] = t->in->quotable;
		if (ef->f[nf])
			ef->f[nf + 1] = NULL;
		ef->have = true;
	}
	return ef->f;
}

static int echo_content(struct tc *t, struct echo_fields *ef, const char *content, size_t *echoed,
			char *first, size_t firstlen)
{
	const char *p = content;
	char line[1024];

	while (*p) {
		const char *e = strchr(p, '\n'), *a = p, *b;
		size_t len;

		e = e ? e : p + strlen(p);
		b = e;
		while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		len = (size_t)(b - a);
		/* most prompt lines are not in the reply: that search first, and
		 * the item's fields (long) only for a line that is */
		if (len >= TEXTCHECK_ECHO_LINE_MIN_BYTES && len < sizeof(line) && in_reply(t, a, len)) {
			memcpy(line, a, len);
			line[len] = '\0';
			if (!line_is_item(echo_fields(t, ef), line)) {
				if (!*echoed)
					excerpt(line, len, first, firstlen);
				*echoed += len;
			}
		}
		p = *e ? e + 1 : e;
	}
	return 0;
}

static int check_echo(struct tc *t)
{
	struct echo_fields ef = { .have = false };
	size_t echoed = 0, i;
	json_t *m;
	char first[80] = "";

	/* the item's own question and gold may hold a token; its reference
	 * explanation is teacher text like this reply and may not. Every
	 * token starts with '<' or '[': most replies have neither. */
	if (memchr(t->s, '<', t->n) || memchr(t->s, '[', t->n)) {
		for (i = 0; chat_tokens[i]; i++) {
			if (in_reply(t, chat_tokens[i], strlen(chat_tokens[i])) &&
			    !in_any(tc_fields(t), chat_tokens[i])) {
				tc_reason(t, "the reply holds the chat-template token %s", chat_tokens[i]);
				return 1;
			}
		}
	}
	if (!t->in->prompt)
		return 0;
	json_array_foreach(t->in->prompt, i, m)
	{
		json_t *c = json_object_get(m, "content"), *part;
		size_t k;

		if (json_is_string(c))
			echo_content(t, &ef, json_string_value(c), &echoed, first, sizeof(first));
		json_array_foreach(c, k, part)
		{
			const char *txt = json_string_value(json_object_get(part, "text"));

			if (txt)
				echo_content(t, &ef, txt, &echoed, first, sizeof(first));
		}
	}
	if (echoed < TEXTCHECK_ECHO_MIN_BYTES)
		return 0;
	tc_reason(t, "the reply echoes %zu bytes of the prompt template (\"%s\")", echoed, first);
	return 1;
}

/* Lines that read as a new task the model set itself: it went on as if it
 * were the user (the MedThink garbage records start each pasted exam
 * question with such a line). */
static const char *const new_task_phrases[] = {
	"请写出正确答案", "请选出其中的正确答案", "请选出正确答案", "接下来我会给你",
	"请再回答", "那么请再", "那请再", "再回答一个问题", "下面请回答",
	"Answer the following question", "Here is another question", "Next question:",
	"Now answer the following", NULL
};

/* An acknowledgement opening a later line that goes on with a request or
 * a question: the model answers a user turn it wrote itself ("好的，那么请再
 * 回答一个问题。..."). Not on the first line, and not "好的，以下是...", which a
 * reply may legitimately open with. */
static const char *const ack_openers[] = { "好的，", "好的。", "好的,", "Sure, ", "Okay, ", NULL };

static int check_ack(struct tc *t)
{
	const char *p = t->s, *end = t->s + t->n;
	bool first = true;
	char ex[80];

	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p)), *a = p;

		e = e ? e : end;
		while (a < e && (*a == ' ' || *a == '\t' || *a == '\r'))
			a++;
		if (a < e) {
			for (size_t i = 0; !first && ack_openers[i]; i++) {
				size_t l;

				if (*a != ack_openers[i][0]) /* most lines: no opener */
					continue;
				l = strlen(ack_openers[i]);
				if ((size_t)(e - a) >= l && memcmp(a, ack_openers[i], l) == 0 &&
				    (memmem(a, (size_t)(e - a), "请", strlen("请")) ||
				     memmem(a, (size_t)(e - a), "？", strlen("？")) ||
				     memmem(a, (size_t)(e - a), "?", 1) ||
				     memmem(a, (size_t)(e - a), "please", 6))) {
					tc_reason(t, "the reply answers a turn of its own: \"%s\"",
						  excerpt(a, (size_t)(e - a), ex, sizeof(ex)));
					return 1;
				}
			}
			first = false;
		}
		p = e + 1;
	}
	return 0;
}

static bool in_explanation(json_t *item, const char *ph)
{
	const char *x = json_string_value(json_object_get(item, "explanation"));

	return x && strstr(x, ph);
}

/* Whether a message of the prompt holds ph (string content, or the text
 * parts of content parts: the request of an item with images). */
static bool in_prompt(json_t *prompt, const char *ph)
{
	json_t *m, *part;
	size_t k, j;

	json_array_foreach(prompt, k, m)
	{
		json_t *c = json_object_get(m, "content");

		if (json_is_string(c) && strstr(json_string_value(c), ph))
			return true;
		json_array_foreach(c, j, part)
		{
			const char *txt = json_string_value(json_object_get(part, "text"));

			if (txt && strstr(txt, ph))
				return true;
		}
	}
	return false;
}

static int check_new_task(struct tc *t)
{
	char ex[80];

	if (check_ack(t))
		return 1;
	for (size_t i = 0; new_task_phrases[i]; i++) {
		const char *ph = new_task_phrases[i], *at = in_reply(t, ph, strlen(ph)), *ls;

		if (!at || in_any(tc_fields(t), ph))
			continue;
		/* the template asks it; but the item's reference explanation is
		 * rendered into the prompt too, and is teacher text like this */
		if (in_prompt(t->in->prompt, ph) && !in_explanation(t->in->item, ph))
			continue;
		ls = at;
		while (ls > t->s && ls[-1] != '\n')
			ls--;
		{
			const char *le = memchr(at, '\n', (size_t)(t->s + t->n - at));

			le = le ? le : t->s + t->n;
			tc_reason(t, "the reply sets itself a new task: \"%s\"",
				  excerpt(ls, (size_t)(le - ls), ex, sizeof(ex)));
		}
		return 1;
	}
	return 0;
}

static int check_language(struct tc *t)
{
	size_t cjk, latin, rc, rl;
	int item_share, reply_share, err;

	err = tc_item_scan(t);
	if (err)
		return err;
	cjk = t->is->cjk;
	latin = t->is->latin;
	if (cjk + latin < TEXTCHECK_LANG_MIN_LETTERS)
		return 0;
	err = tc_scan(t);
	if (err)
		return err;
	rc = t->cjk;
	rl = t->latin;
	if (rc + rl < TEXTCHECK_LANG_MIN_LETTERS)
		return 0;
	item_share = (int)(cjk * 100 / (cjk + latin));
	reply_share = (int)(rc * 100 / (rc + rl));
	if (item_share >= TEXTCHECK_LANG_ITEM_CJK && reply_share < TEXTCHECK_LANG_REPLY_CJK_MIN) {
		tc_reason(t, "the item is in Chinese (CJK %d%% of letters) but the reply is not "
			  "(CJK %d%%)", item_share, reply_share);
		return 1;
	}
	if (item_share <= TEXTCHECK_LANG_ITEM_LATIN &&
	    reply_share > TEXTCHECK_LANG_REPLY_LATIN_MAX) {
		tc_reason(t, "the item is in a Latin-script language (CJK %d%% of letters) but the "
			  "reply is in CJK script (%d%%)", item_share, reply_share);
		return 1;
	}
	return 0;
}

#define TOPIC_REF_STACK 1024

/* A tail of whole lines that shares (almost) no terms with the item and
 * with the reply before it: the reply went on about something else. */
static int check_off_topic(struct tc *t)
{
	struct term_list *tl = t->tl;
	struct hset ref = { 0 };
	size_t nterms, best_m = 0, best_t = 0;
	uint64_t key[TOPIC_REF_STACK];
	uint32_t cnt[TOPIC_REF_STACK];
	int rc;

	rc = tc_item_scan(t);
	if (rc)
		return rc;
	nterms = t->is->n;
	if (nterms == 0)
		return 0; /* nothing to compare with */
	rc = tc_scan(t);
	if (rc)
		return rc;
	/* no tail can hold TOPIC_MIN_TERMS terms */
	if (tl->n < TEXTCHECK_TOPIC_MIN_TERMS)
		return 0;
	/* sized for what goes in: the item's terms and those of the lines
	 * before the last split tried (the counts do not depend on the size) */
	{
		size_t i = 0;

		while (i < tl->lines && i < TEXTCHECK_TOPIC_SPLITS_MAX &&
		       (tl->n - tl->lo[i]) * 100 >= tl->n * TEXTCHECK_TOPIC_TAIL_SHARE)
			i++;
		if (hset_init(&ref, nterms + tl->lo[i], key, cnt, TOPIC_REF_STACK))
			return -ENOMEM;
	}
	for (size_t i = 0; i < nterms; i++)
		hset_add(&ref, t->is->h[i]);
	/* Split before line i: the tail is lines i.., compared with the item
	 * and the head (lines before i). Only tails that are most of the reply
	 * count, so a legitimate closing remark never fires. */
	for (size_t i = 0; i < tl->lines && i < TEXTCHECK_TOPIC_SPLITS_MAX; i++) {
		size_t tail = tl->n - tl->lo[i], m = 0;

		if (tail * 100 < tl->n * TEXTCHECK_TOPIC_TAIL_SHARE)
			break;
		if (tail >= TEXTCHECK_TOPIC_MIN_TERMS) {
			/* m only grows: stop once the tail shares too much */
			for (size_t j = tl->lo[i]; j < tl->n && m * 100 <= tail * TEXTCHECK_TOPIC_MAX_SHARE;
			     j++)
				m += hset_get(&ref, term_at(tl, j)) != 0;
			if (m * 100 <= tail * TEXTCHECK_TOPIC_MAX_SHARE && (!rc || tail > best_t)) {
				rc = 1;
				best_t = tail;
				best_m = m;
			}
		}
		/* the head grows by line i only for a split measured after it
		 * (tails only shrink) */
		if (i + 1 >= tl->lines || i + 1 >= TEXTCHECK_TOPIC_SPLITS_MAX ||
		    (tl->n - tl->lo[i + 1]) * 100 < tl->n * TEXTCHECK_TOPIC_TAIL_SHARE ||
		    tl->n - tl->lo[i + 1] < TEXTCHECK_TOPIC_MIN_TERMS)
			break;
		for (size_t j = tl->lo[i]; j < tl->lo[i + 1]; j++)
			hset_add(&ref, term_at(tl, j));
	}
	if (rc)
		tc_reason(t, "a runaway tail off the question: the last %zu%% of the reply shares "
			  "%zu of its %zu terms with the item and what precedes it",
			  best_t * 100 / (tl->n ? tl->n : 1), best_m, best_t);
	hset_free(&ref);
	return rc;
}

static const struct textcheck_rule rules[TEXTCHECK__N] = {
	[TEXTCHECK_TRUNCATED] = { "truncated", check_truncated },
	[TEXTCHECK_TOO_LONG] = { "too_long", check_too_long },
	[TEXTCHECK_REPETITION] = { "repetition", check_repetition },
	[TEXTCHECK_ECHO] = { "echo", check_echo },
	[TEXTCHECK_NEW_TASK] = { "new_task", check_new_task },
	[TEXTCHECK_LANGUAGE] = { "language", check_language },
	[TEXTCHECK_OFF_TOPIC] = { "off_topic", check_off_topic },
};

const char *textcheck_name(int kind)
{
	return kind >= 0 && kind < TEXTCHECK__N ? rules[kind].name : "?";
}

int textcheck_run(const struct textcheck_input *in, struct textcheck_result *out)
{
	struct term_list tl;
	struct item_scan is;
	struct tc t = { .in = in, .out = out, .tl = &tl, .is = &is };
	int ret = 0;

	is.done = false;
	out->kind = -1;
	out->reason[0] = '\0';
	if (!in || !in->text)
		return -EINVAL;
	t.s = in->text;
	t.n = t.len = strlen(in->text);
	if (t.n > TEXTCHECK_SCAN_MAX)
		t.n = utf8_prefix(t.s, t.n, TEXTCHECK_SCAN_MAX);
	for (int k = 0; k < TEXTCHECK__N; k++) {
		int rc;
		char detail[sizeof(out->reason)];

		if (!(in->checks & TEXTCHECK_BIT(k)))
			continue;
		rc = rules[k].check(&t);
		if (rc < 0) {
			out->reason[0] = '\0';
			ret = rc;
			break;
		}
		if (rc > 0) {
			out->kind = k;
			memcpy(detail, out->reason, sizeof(detail));
			tc_reason(&t, "%s: %s", rules[k].name, detail);
			ret = 1;
			break;
		}
	}
	if (t.scanned)
		term_list_free(&tl);
	if (is.done && is.h != is.h_stack)
		free(is.h);
	return ret;
}
