/* layers: stages store common */
/* Differential test of the reply screening (stages/textcheck.c): the
 * screening as it was before it was made cheaper for issue 17 (commit
 * 6ef89da), kept below ONLY as this test's reference, and the current one
 * must give exactly the same return code, kind and reason for every input:
 * the real replies and items of ../shared/data (MedThink, the answers sets,
 * MedQA, PubMedQA with its contexts; read at test time, skipped with a
 * message when absent), mutated (passages repeated, prompt lines pasted in,
 * two replies joined, cut inside a character, another language, invalid
 * bytes), each with every check and with each check alone, and generated
 * texts (empty, blank, mixed scripts, invalid UTF-8, token soup, texts past
 * TEXTCHECK_SCAN_MAX). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/hash.h"
#include "common/utf8.h"
#include "stages/prompts.h"
#include "stages/textcheck.h"
#include "tests/unit/medthink_data.h"

/* ==== REFERENCE ONLY ======================================================
 * stages/textcheck.c as of commit 6ef89da, verbatim but for its includes and
 * the names of its three exported functions (ref_...). The oracle of this
 * test; not used anywhere else. Do not "fix" it: it defines the verdicts. */
#define textcheck_name ref_textcheck_name
#define textcheck_run ref_textcheck_run
#define textcheck_cjk_share ref_textcheck_cjk_share
static const char *textcheck_name(int kind);
static int textcheck_run(const struct textcheck_input *in, struct textcheck_result *out);
static int textcheck_cjk_share(const char *s, size_t *letters);



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
	/* the reply's 4-byte pieces by hash (in_reply) */
	bool have_pieces;
	uint64_t pieces[TC_PIECES_BITS / 64];
	/* the reply's letters and terms (tc_scan) */
	bool scanned;
	size_t cjk, latin;
	struct term_list *tl;
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

static int textcheck_cjk_share(const char *s, size_t *letters)
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
	bool heap; /* key and cnt are the caller's, else allocated */
};

/* Sized for n adds: in the caller's key[cap] and cnt[cap] when they are
 * enough (no allocation per reply), else allocated. The counts do not
 * depend on the size. */
static int hset_init(struct hset *h, size_t n, uint64_t *key, uint32_t *cnt, size_t cap)
{
	size_t want = 64;

	while (want < n * 2)
		want *= 2;
	h->mask = want - 1;
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

/* The slot of k (0 is the empty key, so 0 is stored as 1). */
static size_t hset_slot(const struct hset *h, uint64_t k)
{
	size_t i;

	k = k ? k : 1;
	for (i = (size_t)hash_mix64(k) & h->mask; h->key[i] && h->key[i] != k; i = (i + 1) & h->mask)
		;
	return i;
}

/* Adds one to k's count (the set is sized for every add); the new count. */
static uint32_t hset_add(struct hset *h, uint64_t k)
{
	size_t i = hset_slot(h, k);

	h->key[i] = k ? k : 1;
	return ++h->cnt[i];
}

static uint32_t hset_get(const struct hset *h, uint64_t k)
{
	return h->cnt[hset_slot(h, k)];
}

/* ---- terms ------------------------------------------------------------- */

/* A term: s[0..len) of the text, hashed by term_hash. */
typedef void (*term_fn)(void *ud, const char *s, size_t len);

/* FNV-1a 64 of the ASCII letters s[0..n), lower-cased (in chunks, one call
 * each: the same value as byte by byte). */
static uint64_t word_hash(const char *s, size_t n)
{
	uint64_t h = FNV1A64_INIT;
	char lc[64];

	while (n > 0) {
		size_t k = n < sizeof(lc) ? n : sizeof(lc);

		for (size_t i = 0; i < k; i++)
			lc[i] = (char)(s[i] | 0x20);
		h = fnv1a64(h, lc, k);
		s += k;
		n -= k;
	}
	return h;
}

/* A term's hash: FNV-1a 64 of a CJK bigram's bytes, or of a Latin word's
 * letters lower-cased (a term starting with an ASCII byte is a word). */
static uint64_t term_hash(const char *s, size_t len)
{
	return (unsigned char)s[0] < 0x80 ? word_hash(s, len) : fnv1a64(FNV1A64_INIT, s, len);
}

/* Calls fn for each term of s[0..n): CJK bigrams within runs of Han
 * characters, Latin words of 3+ letters (ASCII case folded). Returns the
 * number of terms. */
static size_t terms_each(const char *s, size_t n, term_fn fn, void *ud)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, l, count = 0, prev_len = 0;
	const char *prev = NULL;

	while (i < n) {
		uint32_t c;

		if (u[i] < 0x80) {
			size_t j = i;

			prev = NULL;
			if (!ascii_letter(u[i])) {
				i++;
				continue;
			}
			while (j < n && ascii_letter(u[j]))
				j++;
			if (j - i >= 3) {
				if (fn)
					fn(ud, s + i, j - i);
				count++;
			}
			i = j;
			continue;
		}
		c = cp_at(s + i, n - i, &l);
		if (cp_han(c)) {
			if (prev) {
				if (fn)
					fn(ud, prev, prev_len + l);
				count++;
			}
			prev = s + i;
			prev_len = l;
			i += l;
			continue;
		}
		prev = NULL;
		i += l;
	}
	return count;
}

static void term_add(void *ud, const char *s, size_t len)
{
	hset_add(ud, term_hash(s, len));
}

/* The item's text fields that a reply may quote: question, options,
 * gold, context, explanation (NULL-terminated, borrowed). */
static size_t item_fields(json_t *item, const char **f, size_t max, bool with_explanation)
{
	static const char *const keys[] = { "question", "answer", "context", "explanation" };
	json_t *opts = json_object_get(item, "options"), *v;
	const char *k;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && n + 1 < max; i++) {
		if (!with_explanation && strcmp(keys[i], "explanation") == 0)
			continue;
		if (json_is_string(json_object_get(item, keys[i])))
			f[n++] = json_string_value(json_object_get(item, keys[i]));
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
		t->nf = item_fields(t->in->item, t->f, TC_FIELDS_MAX, false);
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
	uint64_t v_stack[TC_TERMS_STACK];
	size_t lo_stack[TC_LINES_STACK + 1];
};

static void term_push(void *ud, const char *s, size_t len)
{
	struct term_list *l = ud;

	if (l->n < l->cap)
		l->v[l->n++] = (uint64_t)(s - l->text) << 32 | len;
}

/* The hash of the reply's term j (hashed when asked: the topic check
 * looks at few of them in most replies). */
static uint64_t term_at(const struct term_list *l, size_t j)
{
	return term_hash(l->text + (l->v[j] >> 32), (size_t)(l->v[j] & UINT32_MAX));
}

static void term_list_free(struct term_list *l)
{
	if (l->heap_v)
		free(l->v);
	if (l->heap_lo)
		free(l->lo);
}

/* One pass over the reply for the checks that read it by character: its
 * letters (language) and its terms by line (off_topic). -ENOMEM. */
static int tc_scan(struct tc *t)
{
	struct term_list *tl = t->tl;
	const char *s = t->s, *end = s + t->n, *p;
	size_t lines = 1, k = 0;

	if (t->scanned)
		return 0;
	for (p = s; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		lines++;
	memset(tl, 0, offsetof(struct term_list, v_stack));
	tl->text = s;
	/* a term holds 3 bytes of its own at least (a Han character, or a
	 * word's three letters) */
	tl->cap = t->n / 3 + 1;
	tl->v = tl->v_stack;
	if (tl->cap > TC_TERMS_STACK) {
		tl->v = malloc(tl->cap * sizeof(*tl->v));
		tl->heap_v = true;
	}
	tl->lo = tl->lo_stack;
	if (lines > TC_LINES_STACK) {
		tl->lo = malloc((lines + 1) * sizeof(*tl->lo));
		tl->heap_lo = true;
	}
	if (!tl->v || !tl->lo) {
		term_list_free(tl);
		return -ENOMEM;
	}
	tl->lines = lines;
	for (p = s; p <= end && k < lines; k++) {
		const char *e = memchr(p, '\n', (size_t)(end - p));

		e = e ? e : end;
		tl->lo[k] = tl->n;
		terms_each(p, (size_t)(e - p), term_push, tl);
		letters_count(p, (size_t)(e - p), &t->cjk, &t->latin);
		p = e + 1;
	}
	tl->lo[k] = tl->n;
	t->scanned = true;
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
static int check_loop(struct tc *t)
{
	const char *s = t->s;
	size_t n = t->n, stride = loop_run_min() - 8;

	for (size_t p = 1; p <= TEXTCHECK_LOOP_UNIT_MAX && p < n; p++) {
		size_t until = 0; /* the end of the last run grown for this p */

		for (size_t i = 0; i + p + 8 <= n; i += stride) {
			uint64_t a, b;
			size_t lo, hi;
			char ex[64];

			if (i < until)
				continue;
			memcpy(&a, s + i, 8);
			memcpy(&b, s + i + p, 8);
			if (a != b)
				continue;
			lo = i;
			hi = i + 8;
			while (lo > 0 && s[lo - 1] == s[lo - 1 + p])
				lo--;
			while (hi + p < n && s[hi] == s[hi + p])
				hi++;
			until = hi;
			if (!loop_hit(hi - lo, p) || unit_blank(s + lo, p))
				continue;
			tc_reason(t, "a runaway loop: \"%s\" repeated %zu times",
				  excerpt(s + lo, p, ex, sizeof(ex)), (hi - lo + p) / p);
			return 1;
		}
	}
	return 0;
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
		    hset_add(&h, fnv1a64(FNV1A64_INIT, a, (size_t)(b - a))) >=
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
static int grams_covered(const char *s, size_t n, size_t *covered)
{
	uint64_t tab[((size_t)1 << GRAM_FILTER_BITS) / 32];
	size_t nw = n - TEXTCHECK_GRAM_BYTES + 1, bound = 0, until = 0, nflag = 0, inb = 0;
	size_t flag_stack[GRAM_FLAGGED_STACK], *flag = flag_stack;
	uint64_t key[2 * GRAM_FLAGGED_STACK];
	uint32_t cnt[2 * GRAM_FLAGGED_STACK];
	const unsigned char *u = (const unsigned char *)s;
	unsigned bits = 10;
	struct hset h;
	struct grams g;
	int rc = 0;

	*covered = 0;
	while (bits < GRAM_FILTER_BITS && ((size_t)1 << bits) < nw * 32)
		bits++;
	memset(tab, 0, ((size_t)1 << bits) / 4);
	/* (1): the rolling hash inline, the blank test left to pass 2 */
	{
		uint64_t hh = 0, top = 1;

		for (size_t k = 1; k < TEXTCHECK_GRAM_BYTES; k++)
			top *= GRAM_B;
		for (size_t k = 0; k < TEXTCHECK_GRAM_BYTES; k++)
			hh = hh * GRAM_B + u[k];
		for (size_t i = 0;; i++) {
			if ((u[i] & 0xC0) != 0x80) {
				size_t b = gram_bucket(hh, bits);
				unsigned sh = (unsigned)(b & 31) * 2, c = (unsigned)(tab[b >> 5] >> sh) & 3u;

				if (c < 3)
					tab[b >> 5] += (uint64_t)1 << sh;
				inb += c == 2 ? 3 : c == 3 ? 1 : 0;
			}
			if (i + 1 >= nw)
				break;
			hh = (hh - u[i] * top) * GRAM_B + u[i + TEXTCHECK_GRAM_BYTES];
		}
	}
	bound = inb * TEXTCHECK_GRAM_BYTES;
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
static const char *in_reply(struct tc *t, const char *s, size_t n)
{
	if (n >= 4 && t->n >= n) {
		if (!t->have_pieces) {
			memset(t->pieces, 0, sizeof(t->pieces));
			for (size_t i = 0; i + 4 <= t->n; i++) {
				size_t b = piece_bit(t->s + i);

				t->pieces[b / 64] |= UINT64_C(1) << (b % 64);
			}
			t->have_pieces = true;
		}
		for (size_t i = 0; i + 4 <= n; i += 2) {
			size_t b = piece_bit(s + i);

			if (!(t->pieces[b / 64] & (UINT64_C(1) << (b % 64))))
				return NULL;
		}
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
		size_t nf = item_fields(t->in->item, ef->f, TC_FIELDS_MAX - 1, true);

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
				size_t l = strlen(ack_openers[i]);

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
	const char *const *f = tc_fields(t);
	size_t cjk = 0, latin = 0, rc, rl;
	int item_share, reply_share, err;

	for (size_t i = 0; i < t->nf; i++)
		letters_count(f[i], strlen(f[i]), &cjk, &latin);
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
	const char *const *f = tc_fields(t), *ctx;
	struct term_list *tl = t->tl;
	struct hset ref = { 0 };
	size_t nterms = 0, best_m = 0, best_t = 0;
	uint64_t key[TOPIC_REF_STACK];
	uint32_t cnt[TOPIC_REF_STACK];
	int rc;

	ctx = json_string_value(json_object_get(t->in->item, "context"));
	for (size_t i = 0; i < t->nf; i++)
		if (f[i] != ctx) {
			nterms += terms_each(f[i], strlen(f[i]), NULL, NULL);
		}
	if (nterms == 0)
		return 0; /* nothing to compare with */
	rc = tc_scan(t);
	if (rc)
		return rc;
	/* no tail can hold TOPIC_MIN_TERMS terms */
	if (tl->n < TEXTCHECK_TOPIC_MIN_TERMS)
		return 0;
	if (hset_init(&ref, nterms + tl->n, key, cnt, TOPIC_REF_STACK))
		return -ENOMEM;
	for (size_t i = 0; i < t->nf; i++)
		if (f[i] != ctx)
			terms_each(f[i], strlen(f[i]), term_add, &ref);
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

static const char *textcheck_name(int kind)
{
	return kind >= 0 && kind < TEXTCHECK__N ? rules[kind].name : "?";
}

static int textcheck_run(const struct textcheck_input *in, struct textcheck_result *out)
{
	struct term_list tl;
	struct tc t = { .in = in, .out = out, .tl = &tl };
	int ret = 0;

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
	return ret;
}
#undef textcheck_name
#undef textcheck_run
#undef textcheck_cjk_share
/* ==== END OF REFERENCE ==================================================== */

#define DATA_DIR "../shared/data/"

static json_t *prompts;
static size_t compared, data_texts;

static uint64_t rng_next(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* One input through both; every output the same. */
static void same(const struct textcheck_input *in, const char *what)
{
	struct textcheck_result a, b;
	int ra, rb;

	memset(&a, 0x5a, sizeof(a));
	memset(&b, 0xa5, sizeof(b));
	ra = ref_textcheck_run(in, &a);
	rb = textcheck_run(in, &b);
	compared++;
	if (ra != rb || a.kind != b.kind || strcmp(a.reason, b.reason) != 0 ||
	    strcmp(ref_textcheck_name(a.kind), textcheck_name(b.kind)) != 0) {
		print_message("%s (checks %#x, max_tokens %lld, cut %d): text \"%.160s\"\n"
			      "reference %d kind %d \"%s\"\nnow       %d kind %d \"%s\"\n",
			      what, in->checks, (long long)in->max_tokens, in->length_cut,
			      in->text ? in->text : "(null)", ra, a.kind, a.reason, rb, b.kind,
			      b.reason);
		fail();
	}
}

/* text for item, with every check and each check alone, with and without
 * the prompt, and with the length limits that make too_long fire or not. */
static void both(json_t *item, json_t *prompt, const char *quotable, const char *text,
		 const char *what)
{
	struct textcheck_input in = { .text = text, .item = item, .prompt = prompt,
				      .quotable = quotable, .max_tokens = 1500,
				      .checks = TEXTCHECK_ALL };
	size_t la, lb, n = text ? strlen(text) : 0;

	same(&in, what);
	for (int k = 0; k < TEXTCHECK__N; k++) {
		in.checks = TEXTCHECK_BIT(k);
		same(&in, what);
		in.checks = TEXTCHECK_ALL & ~TEXTCHECK_BIT(k);
		same(&in, what);
	}
	in.checks = TEXTCHECK_BIT(TEXTCHECK_LANGUAGE) | TEXTCHECK_BIT(TEXTCHECK_OFF_TOPIC);
	same(&in, what);
	in.checks = TEXTCHECK_ALL;
	in.prompt = NULL;
	same(&in, what);
	in.prompt = prompt;
	in.max_tokens = (int64_t)(n / TEXTCHECK_BYTES_PER_TOKEN);
	same(&in, what);
	in.max_tokens = 0;
	in.length_cut = true;
	same(&in, what);
	if (text) {
		assert_int_equal(ref_textcheck_cjk_share(text, &la), textcheck_cjk_share(text, &lb));
		assert_int_equal(la, lb);
	}
}

/* The start of the character at or before off. */
static size_t boundary(const char *s, size_t off)
{
	while (off > 0 && ((unsigned char)s[off] & 0xC0) == 0x80)
		off--;
	return off;
}

static const char *prompt_user(json_t *prompt)
{
	json_t *m;
	size_t i;

	json_array_foreach(prompt, i, m)
		if (json_is_string(json_object_get(m, "content")))
			return json_string_value(json_object_get(m, "content"));
	return NULL;
}

static const char zh_reply[] =
	"1. 患者为青年男性，间断上腹痛5年，空腹时出现，提示十二指肠溃疡。\n"
	"2. Hp阳性说明幽门螺杆菌感染是溃疡的主要病因，根除Hp可以降低复发。\n"
	"好的，那么请再回答一个问题。\n答案：C";
static const char en_reply[] =
	"The patient presents with fever, cough and consolidation on the chest radiograph, "
	"which is most consistent with community-acquired pneumonia.\nAnswer: B";

/* A real text and its mutations. */
static void one_text(json_t *item, const char *text, const char *other, uint64_t seed,
		     const char *what)
{
	json_t *prompt = NULL;
	char err[200];
	size_t n = strlen(text), on = other ? strlen(other) : 0, cap = 3 * n + on + 16384;
	char *t = malloc(cap);
	const char *u;

	assert_non_null(t);
	data_texts++;
	if (prompts_render(prompts, "explain", item, NULL, &prompt, err, sizeof(err)) != 0)
		prompt = NULL;
	both(item, prompt, NULL, text, what);
	both(item, prompt, other, text, what);
	/* a passage repeated, back to back or with a separator */
	if (n > 0) {
		size_t a = boundary(text, rng_next(&seed) % n), len = 1 + rng_next(&seed) % 120;
		size_t k = 2 + rng_next(&seed) % 12, sep = rng_next(&seed) % 3;
		size_t at = boundary(text, rng_next(&seed) % (n + 1)), w;

		if (a + len > n)
			len = n - a;
		len = boundary(text, a + len) - a;
		if (len == 0)
			len = n - a < 3 ? n - a : 3;
		memcpy(t, text, at);
		w = at;
		for (size_t i = 0; i < k && w + len + 2 + n < cap; i++) {
			memcpy(t + w, text + a, len);
			w += len;
			if (sep)
				t[w++] = sep == 1 ? '\n' : ' ';
		}
		strcpy(t + w, text + at);
		both(item, prompt, NULL, t, what);
	}
	/* lines of the prompt pasted in */
	if ((u = prompt_user(prompt)) != NULL) {
		size_t un = strlen(u), at = boundary(text, n ? rng_next(&seed) % (n + 1) : 0);
		size_t a = boundary(u, rng_next(&seed) % (un + 1)), len = rng_next(&seed) % 600;

		if (a + len > un)
			len = un - a;
		len = boundary(u, a + len) - a;
		if (len > 4096)
			len = 4096;
		memcpy(t, text, at);
		memcpy(t + at, u + a, len);
		strcpy(t + at + len, text + at);
		both(item, prompt, NULL, t, what);
		both(item, prompt, NULL, u, what); /* the whole prompt as the reply */
	}
	/* joined with another reply, cut on a boundary and inside a character */
	if (other) {
		size_t cut;

		memcpy(t, text, n);
		t[n] = '\n';
		memcpy(t + n + 1, other, on + 1);
		both(item, prompt, NULL, t, what);
		cut = n + 1 + (on ? rng_next(&seed) % (on + 1) : 0);
		t[cut] = '\0';
		both(item, prompt, NULL, t, what);
	}
	/* the other language; a new task; chat tokens */
	snprintf(t, cap, "%s\n%s", text, zh_reply);
	both(item, prompt, NULL, t, what);
	snprintf(t, cap, "%s\n%s", en_reply, text);
	both(item, prompt, NULL, t, what);
	snprintf(t, cap, "%s<|im_end|>\n[INST] Next question: %s", text, other ? other : "");
	both(item, prompt, NULL, t, what);
	/* invalid bytes */
	strcpy(t, text);
	for (size_t i = 0; n > 0 && i < 1 + n / 64; i++) {
		static const unsigned char bad[] = { 0x80, 0xBF, 0xC0, 0xC1, 0xE0, 0xED, 0xF4,
						     0xF5, 0xFF, 0xE4, 0xF0, 0xC3 };

		t[rng_next(&seed) % n] = (char)bad[rng_next(&seed) % sizeof(bad)];
	}
	both(item, prompt, NULL, t, what);
	json_decref(prompt);
	free(t);
}

/* JSON rows of path: an array, or one object a line (.jsonl); NULL when
 * not there. */
static json_t *load_rows(const char *path)
{
	json_t *rows;

	if (strstr(path, ".jsonl")) {
		FILE *f = fopen(path, "r");
		char *line = NULL;
		size_t cap = 0;

		if (!f)
			return NULL;
		rows = json_array();
		while (getline(&line, &cap, f) > 0) {
			json_t *r = json_loads(line, 0, NULL);

			if (r)
				json_array_append_new(rows, r);
		}
		free(line);
		fclose(f);
		return rows;
	}
	rows = json_load_file(path, 0, NULL);
	if (!rows) {
		return NULL;
	}
	return rows;
}

static void test_medthink(void **state)
{
	static const char *const files[] = { MEDTHINK_ALL };
	size_t done = 0;

	(void)state;
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		struct medthink_set s;

		if (medthink_load(files[f], &s)) {
			print_message("skipped %s: not there\n", files[f]);
			continue;
		}
		for (size_t i = 0; i < s.n; i += f ? 3 : 1)
			if (s.r[i].reply)
				one_text(s.r[i].item, s.r[i].reply, s.r[(i * 37 + 11) % s.n].reply,
					 i * 7919 + f, "medthink");
		done += s.n;
		medthink_free(&s);
	}
	if (!done)
		skip();
}

static void test_answers(void **state)
{
	static const struct {
		const char *file, *qkey, *gkey;
		size_t every;
	} sets[] = {
		{ "medagents_cot.json", "question", "answer_idx", 1 },
		{ "medagents_few_shot.json", "question", "answer_idx", 3 },
		{ "vlievin_usmle.jsonl", "question_with_options", "gold", 9 },
		{ "vlievin_medmcqa.jsonl", "question_with_options", "gold", 11 },
		{ "vlievin_pubmedqa.jsonl", "question_with_options", "gold", 11 },
	};
	size_t done = 0;

	(void)state;
	for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		char path[256];
		json_t *rows;
		size_t n;

		snprintf(path, sizeof(path), DATA_DIR "answers/%s", sets[s].file);
		rows = load_rows(path);
		if (!json_is_array(rows)) {
			print_message("skipped %s: not there\n", path);
			json_decref(rows);
			continue;
		}
		n = json_array_size(rows);
		for (size_t i = 0; i < n; i += sets[s].every) {
			json_t *row = json_array_get(rows, i), *item;
			const char *text = json_string_value(json_object_get(row, "raw_response"));
			const char *other = json_string_value(json_object_get(
				json_array_get(rows, (i * 37 + 11) % n), "raw_response"));

			if (!text || !json_is_string(json_object_get(row, sets[s].qkey)))
				continue;
			item = json_object();
			json_object_set(item, "question", json_object_get(row, sets[s].qkey));
			if (json_is_object(json_object_get(row, "options")))
				json_object_set(item, "options", json_object_get(row, "options"));
			if (json_is_string(json_object_get(row, sets[s].gkey)))
				json_object_set(item, "answer", json_object_get(row, sets[s].gkey));
			one_text(item, text, other, i * 131 + s, sets[s].file);
			json_decref(item);
			done++;
		}
		json_decref(rows);
	}
	if (!done)
		skip();
}

/* MedQA items (question, options, answer): their own texts as replies. */
static void test_medqa(void **state)
{
	json_t *rows = load_rows(DATA_DIR "medqa/medqa_test.jsonl");
	size_t n;

	(void)state;
	if (!json_is_array(rows) || json_array_size(rows) == 0) {
		print_message("skipped " DATA_DIR "medqa/medqa_test.jsonl: not there\n");
		json_decref(rows);
		skip();
		return;
	}
	n = json_array_size(rows);
	for (size_t i = 0; i < n; i += 2) {
		json_t *row = json_array_get(rows, i), *item = json_object();
		const char *q = json_string_value(json_object_get(row, "question"));
		const char *other = json_string_value(
			json_object_get(json_array_get(rows, (i * 37 + 11) % n), "question"));
		char *text;
		size_t cap;

		if (!q) {
			json_decref(item);
			continue;
		}
		json_object_set(item, "question", json_object_get(row, "question"));
		if (json_is_object(json_object_get(row, "options")))
			json_object_set(item, "options", json_object_get(row, "options"));
		if (json_is_string(json_object_get(row, "answer")))
			json_object_set(item, "answer", json_object_get(row, "answer"));
		cap = strlen(q) + 256;
		text = malloc(cap);
		assert_non_null(text);
		snprintf(text, cap, "The question asks: %s\nAnswer: %s", q,
			 json_string_value(json_object_get(row, "answer")) ?
				 json_string_value(json_object_get(row, "answer")) :
				 "");
		one_text(item, text, other, i, "medqa");
		free(text);
		json_decref(item);
	}
	json_decref(rows);
}

/* PubMedQA: items with a context (which the language check reads and the
 * topic check does not), the long answer as the reply. */
static void test_pubmedqa(void **state)
{
	json_t *doc = json_load_file(DATA_DIR "pubmedqa/ori_pqal.json", 0, NULL), *rec;
	const char *key, *prev = NULL;
	size_t i = 0;

	(void)state;
	if (!json_is_object(doc)) {
		print_message("skipped " DATA_DIR "pubmedqa/ori_pqal.json: not there\n");
		json_decref(doc);
		skip();
		return;
	}
	json_object_foreach(doc, key, rec)
	{
		json_t *ctxs = json_object_get(rec, "CONTEXTS"), *c, *item;
		const char *la = json_string_value(json_object_get(rec, "LONG_ANSWER"));
		char *ctx = NULL;
		size_t cl = 0, k;

		if (!la || !json_is_string(json_object_get(rec, "QUESTION")))
			continue;
		json_array_foreach(ctxs, k, c)
		{
			const char *cs = json_string_value(c);
			size_t l = cs ? strlen(cs) : 0;
			char *nc = realloc(ctx, cl + l + 2);

			assert_non_null(nc);
			ctx = nc;
			memcpy(ctx + cl, cs ? cs : "", l);
			cl += l;
			ctx[cl++] = '\n';
			ctx[cl] = '\0';
		}
		item = json_pack("{s:s, s:O, s:s}", "id", key, "question",
				 json_object_get(rec, "QUESTION"), "context", ctx ? ctx : "");
		if (json_is_string(json_object_get(rec, "final_decision")))
			json_object_set(item, "answer", json_object_get(rec, "final_decision"));
		one_text(item, la, prev, i * 7 + 3, "pubmedqa");
		if (i % 4 == 0 && ctx)
			one_text(item, ctx, la, i * 7 + 5, "pubmedqa context");
		prev = la;
		free(ctx);
		json_decref(item);
		i++;
	}
	json_decref(doc);
}

static const char *const soup[] = {
	"a", "ab", "the", "The", "patient", "PNEUMONIA", "ulcer", "pylori", "helicobacter",
	"Über", "naïve", "café", "résumé", "ÆØÅ", "x×y", "÷", "胃", "溃疡", "患者", "十二指肠",
	"幽门螺杆菌", "答案", "ひらがな", "カタカナ", "한국어", "𠀀𠀁", "豈", "，", "。", "？", "?",
	" ", " ", " ", "\n", "\n", "\t", "  \n", "\r\n", "-", "=", "*", "_", "; ", "1.", "42",
	"\x80", "\xC3", "\xE4\xB8", "\xF0\x9F", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xC0\xAF",
	"\xF0\x9F\x98\x80", "\xFF", "<|im_end|>", "<|im_start|>", "[INST]", "<", "[",
	"请选出正确答案", "Next question:", "Answer the following question", "好的，", "Sure, ",
	"please", "请", "Question: Which of the following", "A. Omeprazole", "reference explanation",
};

static json_t *gen_items(void)
{
	json_t *a = json_array();

	json_array_append_new(a, json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s}", "id", "e",
					   "question",
					   "A 45-year-old man has epigastric pain relieved by meals "
					   "and a positive urea breath test. Which of the following "
					   "is the best treatment?",
					   "options", "A", "Omeprazole alone", "B",
					   "Omeprazole, clarithromycin and amoxicillin", "C",
					   "Surgery", "D", "Antacids", "answer", "B"));
	json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "id", "z", "question",
					   "男，36岁，间断上腹痛5年，空腹时出现，Hp阳性。最佳治疗方案是",
					   "answer", "奥美拉唑＋CBS＋抗生素治疗", "explanation",
					   "好的，那么请再回答一个问题。请选出正确答案 <|im_end|>"));
	json_array_append_new(a, json_pack("{s:s}", "id", "bare"));
	json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "id", "c", "question",
					   "Does the drug work?", "context",
					   "胃溃疡患者的治疗 randomized trial of omeprazole in "
					   "patients with peptic ulcer disease 幽门螺杆菌"));
	json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "id", "t", "question",
					   "What does <|im_end|> mean? 请选出正确答案", "answer",
					   "[INST] Next question:"));
	json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "id", "k", "question",
					   "ひらがなとカタカナ 한국어 質問", "answer", "x"));
	return a;
}

static char *soup_text(uint64_t *seed, size_t target)
{
	size_t cap = target + 256, n = 0;
	char *t = malloc(cap);

	assert_non_null(t);
	while (n < target) {
		uint64_t r = rng_next(seed);
		const char *w = soup[r % (sizeof(soup) / sizeof(soup[0]))];
		size_t l = strlen(w);

		if ((r >> 32) % 23 == 0 && n > 8) { /* repeat a stretch */
			size_t from = (r >> 40) % n, len = 1 + (r >> 48) % 40, k = 2 + (r >> 56) % 10;

			if (from + len > n)
				len = n - from;
			for (size_t i = 0; i < k && n + len < target; i++) {
				memmove(t + n, t + from, len);
				n += len;
			}
			continue;
		}
		if (n + l >= cap)
			break;
		memcpy(t + n, w, l);
		n += l;
	}
	t[n] = '\0';
	return t;
}

static void test_generated(void **state)
{
	json_t *items = gen_items(), *item, *parts;
	static const char *const edge[] = {
		"", " ", "\n", "\n\n\n\n", " \t\r\n ", "------------------------------------------"
		"----------------------------------------------------------------------------------",
		"\x80", "\xC3", "\xE4\xB8", "\xF0\x9F\x98", "\xED\xA0\x80\xED\xB0\x80", "abc",
		"胃胃", "好的，\n好的，请问？", "<|im_end|>", "[/INST]",
		"Omeprazole, clarithromycin and amoxicillin\nOmeprazole, clarithromycin and "
		"amoxicillin\nOmeprazole, clarithromycin and amoxicillin\n",
		NULL,
	};
	uint64_t seed = 12345;
	size_t k;
	char *t;
	char err[200];

	(void)state;
	json_array_foreach(items, k, item)
	{
		json_t *prompt = NULL;

		if (prompts_render(prompts, "explain", item, NULL, &prompt, err, sizeof(err)) != 0)
			prompt = NULL;
		both(item, prompt, NULL, NULL, "null text");
		for (size_t i = 0; edge[i]; i++)
			both(item, prompt, "quoted text", edge[i], "edge");
		for (size_t i = 0; i < 400; i++) {
			size_t len = (size_t)(rng_next(&seed) % (i % 10 == 0 ? 6000 : 700));

			t = soup_text(&seed, len);
			both(item, i % 3 ? prompt : NULL, i % 5 ? NULL : "幽门螺杆菌 quoted", t,
			     "soup");
			free(t);
		}
		/* the content given as parts */
		parts = json_pack("[{s:s, s:[{s:s, s:s}, {s:s}]}]", "role", "user", "content", "type",
				  "text", "text",
				  prompt_user(prompt) ? prompt_user(prompt) :
							"Explain step by step and answer the question.",
				  "type", "image_url");
		t = soup_text(&seed, 500);
		both(item, parts, NULL, t, "parts");
		free(t);
		json_decref(parts);
		json_decref(prompt);
	}
	/* past the scan size: cut on a character boundary, the rest still
	 * counted by too_long */
	for (size_t v = 0; v < 4; v++) {
		size_t n = TEXTCHECK_SCAN_MAX + 1000 * v + v, w = 0;
		static const char *const unit[] = { "pneumonia ", "胃溃疡", "a\n", "答\x80" };

		t = malloc(n + 8);
		assert_non_null(t);
		while (w + strlen(unit[v]) <= n) {
			memcpy(t + w, unit[v], strlen(unit[v]));
			w += strlen(unit[v]);
		}
		t[w] = '\0';
		both(json_array_get(items, v % 2), NULL, NULL, t, "long");
		/* a long text that is not degenerate: token soup */
		free(t);
		seed = 99 + v;
		t = soup_text(&seed, TEXTCHECK_SCAN_MAX - 2 + v * 3);
		both(json_array_get(items, v % 2), NULL, NULL, t, "long soup");
		free(t);
	}
	json_decref(items);
}

/* Texts built from a few phrases, so that passages recur 1 to 5 times at
 * every alignment: the repeated-passage check around its thresholds and
 * around the size where it changes method (4,096 windows), words and line
 * ends across the scans' 64-byte blocks (ASCII, CJK and both), loops that
 * end near the text's end, terms of every length. */
static void test_repeats(void **state)
{
	json_t *items = gen_items(), *prompt = NULL;
	static const char *const pool[] = {
		"The decisive clue is the combination of the presenting symptoms. ",
		"Option A (Amoxicillin) is wrong because ",
		"it describes a different condition whose typical presentation does not match. ",
		"幽门螺杆菌感染是消化性溃疡的主要病因，", "根除治疗可以降低复发。", "\n", "\n\n",
		"Final answer: C", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm",
		"xy", "; ", "胃", "Pneumonia ", "                ", "Key knowledge (cardiology): ",
		"a", "\xE4\xB8", "Omeprazole-clarithromycin-amoxicillin ",
	};
	const size_t npool = sizeof(pool) / sizeof(pool[0]);
	uint64_t seed = 777;
	size_t fired = 0; /* texts the repetition check caught: both outcomes are tried */
	char err[200];
	size_t cap = 4600;
	char *t = malloc(cap);

	(void)state;
	assert_non_null(t);
	if (prompts_render(prompts, "explain", json_array_get(items, 0), NULL, &prompt, err,
			   sizeof(err)) != 0)
		prompt = NULL;
	for (size_t r = 0; r < 1500; r++) {
		/* a small working set of phrases: few give many repeats */
		size_t set = 1 + rng_next(&seed) % 6, pick[6], n = 0;
		size_t target = r % 5 == 0 ? 4000 + rng_next(&seed) % 300 : 60 + rng_next(&seed) % 1500;

		for (size_t k = 0; k < set; k++)
			pick[k] = (size_t)(rng_next(&seed) % npool);
		while (n < target) {
			uint64_t x = rng_next(&seed);
			const char *ph = x % 4 ? pool[pick[x % set]] : pool[(x >> 8) % npool];
			size_t l = strlen(ph);

			if (x % 7 == 0) { /* a one-off word: breaks alignments */
				if (n + 32 > cap)
					break;
				n += (size_t)snprintf(t + n, 32, "w%llu ", (unsigned long long)(x >> 40));
				continue;
			}
			if (n + l + 1 > cap)
				break;
			memcpy(t + n, ph, l);
			n += l;
		}
		t[n < cap ? n : cap - 1] = '\0';
		both(json_array_get(items, r % 2), r % 3 ? prompt : NULL, NULL, t, "repeats");
		{
			struct textcheck_input in = { .text = t, .item = json_array_get(items, 0),
						      .checks = TEXTCHECK_BIT(TEXTCHECK_REPETITION) };
			struct textcheck_result res;

			fired += textcheck_run(&in, &res) == 1;
		}
		/* the same cut at every length near the window sizes */
		if (r % 50 == 0) {
			for (size_t cut = 0; cut < 80 && cut < n; cut++) {
				char c = t[n - cut];

				t[n - cut] = '\0';
				both(json_array_get(items, 0), NULL, NULL, t, "repeats cut");
				t[n - cut] = c;
			}
		}
	}
	print_message("repeats: 1500 texts, %zu degenerate\n", fired);
	assert_true(fired > 100 && fired < 1400);
	free(t);
	json_decref(prompt);
	json_decref(items);
}

static int setup(void **state)
{
	char err[256];

	(void)state;
	return prompts_load_dir("conf/prompts", &prompts, err, sizeof(err)) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	print_message("textcheck diff: %zu screenings compared, %zu real texts\n", compared,
		      data_texts);
	json_decref(prompts);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generated), cmocka_unit_test(test_medthink),
		cmocka_unit_test(test_answers),   cmocka_unit_test(test_medqa),
		cmocka_unit_test(test_pubmedqa),  cmocka_unit_test(test_repeats),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
