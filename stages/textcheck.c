#include "stages/textcheck.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "common/hash.h"
#include "common/utf8.h"

/* What every check sees: the input, and the text cut to the scan size. */
struct tc {
	const struct textcheck_input *in;
	const char *s;
	size_t n;
	struct textcheck_result *out;
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

/* Decodes the code point at s[0..n); *len gets its length (1 for an
 * invalid byte, which decodes as U+FFFD). */
static uint32_t cp_at(const char *s, size_t n, size_t *len)
{
	size_t k = utf8_check(s, n < 4 ? n : 4);
	const unsigned char *u = (const unsigned char *)s;

	if (u[0] < 0x80) {
		*len = 1;
		return u[0];
	}
	if (k == 0) {
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

static void letters_count(const char *s, size_t n, size_t *cjk, size_t *latin)
{
	size_t i = 0, l;

	while (i < n) {
		uint32_t c = cp_at(s + i, n - i, &l);

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
};

static int hset_init(struct hset *h, size_t n)
{
	size_t cap = 64;

	while (cap < n * 2)
		cap *= 2;
	h->key = calloc(cap, sizeof(*h->key));
	h->cnt = calloc(cap, sizeof(*h->cnt));
	h->mask = cap - 1;
	if (!h->key || !h->cnt) {
		free(h->key);
		free(h->cnt);
		return -ENOMEM;
	}
	return 0;
}

static void hset_free(struct hset *h)
{
	free(h->key);
	free(h->cnt);
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

typedef void (*term_fn)(void *ud, uint64_t term);

/* Calls fn for each term of s[0..n): CJK bigrams within runs of Han
 * characters, Latin words of 3+ letters (ASCII case folded). Returns the
 * number of terms. */
static size_t terms_each(const char *s, size_t n, term_fn fn, void *ud)
{
	size_t i = 0, l, count = 0, prev_len = 0;
	const char *prev = NULL;

	while (i < n) {
		uint32_t c = cp_at(s + i, n - i, &l);

		if (cp_han(c)) {
			if (prev) {
				uint64_t h = fnv1a64(FNV1A64_INIT, prev, prev_len + l);

				if (fn)
					fn(ud, h);
				count++;
			}
			prev = s + i;
			prev_len = l;
			i += l;
			continue;
		}
		prev = NULL;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			size_t j = i;
			uint64_t h = FNV1A64_INIT;

			while (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) {
				char lc = (char)(s[j] | 0x20);

				h = fnv1a64(h, &lc, 1);
				j++;
			}
			if (j - i >= 3) {
				if (fn)
					fn(ud, h);
				count++;
			}
			i = j;
			continue;
		}
		i += l;
	}
	return count;
}

static void term_add(void *ud, uint64_t term)
{
	hset_add(ud, term);
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
	size_t len = strlen(t->in->text);
	uint64_t max = (uint64_t)t->in->max_tokens * TEXTCHECK_BYTES_PER_TOKEN;

	if (t->in->max_tokens <= 0 || len <= max)
		return 0;
	tc_reason(t, "the reply is %zu bytes, more than the %llu its %lld-token limit allows", len,
		  (unsigned long long)max, (long long)t->in->max_tokens);
	return 1;
}

static bool byte_blank(char c)
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

/* Reports the run of period p whose last matching byte is at e (s[e] ==
 * s[e + p]) and which is run bytes long; 0 when its unit is blank. */
static int loop_report(struct tc *t, size_t p, size_t e, size_t run)
{
	const char *s = t->s;
	size_t n = t->n;
	const char *u = s + e + 1 - run;
	char ex[64];

	if (unit_blank(u, p))
		return 0;
	/* report the whole run */
	while (e + p + 1 < n && s[e + 1] == s[e + 1 + p]) {
		e++;
		run++;
	}
	tc_reason(t, "a runaway loop: \"%s\" repeated %zu times", excerpt(u, p, ex, sizeof(ex)),
		  (run + p) / p);
	return 1;
}

/* For each period p, the runs of s[i] == s[i + p]. This runs on every
 * teacher reply on the loop thread, so it compares eight bytes at a time: a
 * run long enough to count is at least 56 bytes (max(MIN_BYTES - p,
 * (MIN_REPEATS - 1) * p)), so no stretch inside one word can be one, and
 * checking at the first mismatch of each word finds every run that counts. */
static int check_loop(struct tc *t)
{
	const char *s = t->s;
	size_t n = t->n;

	for (size_t p = 1; p <= TEXTCHECK_LOOP_UNIT_MAX && p < n; p++) {
		size_t run = 0, i = 0;

		while (i + p < n) {
			uint64_t a, b, x;

			if (i + p + 8 > n) { /* the tail, byte by byte */
				if (s[i] != s[i + p]) {
					run = 0;
				} else if (loop_hit(++run, p) && loop_report(t, p, i, run)) {
					return 1;
				}
				i++;
				continue;
			}
			memcpy(&a, s + i, 8);
			memcpy(&b, s + i + p, 8);
			x = a ^ b;
			if (x == 0) {
				run += 8;
				if (loop_hit(run, p) && loop_report(t, p, i + 7, run))
					return 1;
				i += 8;
				continue;
			}
			{
				/* bytes in memory order: the lowest set byte of x is the
				 * first mismatch on little-endian, the highest on big */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
				size_t first = (size_t)__builtin_ctzll(x) / 8;
				size_t last = 7 - (size_t)__builtin_clzll(x) / 8;
#else
				size_t first = (size_t)__builtin_clzll(x) / 8;
				size_t last = 7 - (size_t)__builtin_ctzll(x) / 8;
#endif
				if (first > 0 && loop_hit(run + first, p) &&
				    loop_report(t, p, i + first - 1, run + first))
					return 1;
				run = 7 - last;
				i += 8;
			}
		}
	}
	return 0;
}

/* One line re-emitted again and again (a header the model loops on). */
static int check_lines(struct tc *t)
{
	struct hset h;
	const char *s = t->s, *end = s + t->n, *p = s;
	char ex[80];
	int rc = 0;
	size_t lines = 1;

	for (const char *q = s; q < end; q++)
		lines += *q == '\n';
	if (hset_init(&h, lines))
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
			for (const char *q = s; q < end;) {
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
/* The hash of every GRAM_BYTES window of s, or 0 for a window that starts
 * inside a character or is all blank: a rolling polynomial hash (this runs
 * on every teacher reply on the loop thread, so each window costs O(1), not
 * O(GRAM_BYTES)), mixed for the hash set. New array of n - GRAM_BYTES + 1
 * entries, or NULL. */
static uint64_t *gram_hashes(const char *s, size_t n)
{
	const uint64_t B = UINT64_C(0x100000001b3);
	size_t w = TEXTCHECK_GRAM_BYTES, nw = n - w + 1, nonblank = 0;
	uint64_t *hv = malloc(nw * sizeof(*hv)), h = 0, top = 1;

	if (!hv)
		return NULL;
	for (size_t k = 1; k < w; k++)
		top *= B; /* B^(w-1): the weight of the byte leaving the window */
	for (size_t k = 0; k < w; k++) {
		h = h * B + (unsigned char)s[k];
		nonblank += !byte_blank(s[k]);
	}
	for (size_t i = 0;; i++) {
		uint64_t m = hash_mix64(h);

		hv[i] = ((unsigned char)s[i] & 0xC0) == 0x80 || nonblank == 0 ? 0 : (m ? m : 1);
		if (i + 1 >= nw)
			break;
		h = (h - (unsigned char)s[i] * top) * B + (unsigned char)s[i + w];
		nonblank += !byte_blank(s[i + w]);
		nonblank -= !byte_blank(s[i]);
	}
	return hv;
}

static int check_grams(struct tc *t)
{
	const char *s = t->s;
	size_t n = t->n, covered = 0, until = 0, nw;
	uint64_t *hv;
	struct hset h;

	if (n < TEXTCHECK_GRAM_BYTES * 2 || n < TEXTCHECK_GRAM_MIN_BYTES)
		return 0;
	nw = n - TEXTCHECK_GRAM_BYTES + 1;
	hv = gram_hashes(s, n);
	if (!hv)
		return -ENOMEM;
	if (hset_init(&h, n)) {
		free(hv);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nw; i++)
		if (hv[i])
			hset_add(&h, hv[i]);
	for (size_t i = 0; i < nw; i++) {
		size_t e = i + TEXTCHECK_GRAM_BYTES;

		if (!hv[i] || hset_get(&h, hv[i]) < TEXTCHECK_GRAM_MIN_COUNT)
			continue;
		covered += e - (i > until ? i : until);
		until = e;
	}
	hset_free(&h);
	free(hv);
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

static int echo_content(struct tc *t, const char *const *f, const char *content, size_t *echoed,
			char *first, size_t firstlen)
{
	const char *p = content;
	char line[1024];

	while (*p) {
		const char *e = strchr(p, '\n'), *a = p, *b;

		e = e ? e : p + strlen(p);
		b = e;
		while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		if ((size_t)(b - a) >= TEXTCHECK_ECHO_LINE_MIN_BYTES && (size_t)(b - a) < sizeof(line)) {
			memcpy(line, a, (size_t)(b - a));
			line[b - a] = '\0';
			if (!line_is_item(f, line) && memmem(t->s, t->n, line, (size_t)(b - a))) {
				if (!*echoed)
					excerpt(line, (size_t)(b - a), first, firstlen);
				*echoed += (size_t)(b - a);
			}
		}
		p = *e ? e + 1 : e;
	}
	return 0;
}

static int check_echo(struct tc *t)
{
	const char *f[40];
	size_t echoed = 0, i;
	json_t *m;
	char first[80] = "";

	/* the item's own question and gold may hold a token; its reference
	 * explanation is teacher text like this reply and may not */
	item_fields(t->in->item, f, sizeof(f) / sizeof(f[0]), false);
	for (i = 0; chat_tokens[i]; i++) {
		if (memmem(t->s, t->n, chat_tokens[i], strlen(chat_tokens[i])) &&
		    !in_any(f, chat_tokens[i])) {
			tc_reason(t, "the reply holds the chat-template token %s", chat_tokens[i]);
			return 1;
		}
	}
	{
		size_t nf = item_fields(t->in->item, f, sizeof(f) / sizeof(f[0]) - 1, true);

		f[nf] = t->in->quotable;
		if (f[nf])
			f[nf + 1] = NULL;
	}
	json_array_foreach(t->in->prompt, i, m)
	{
		json_t *c = json_object_get(m, "content"), *part;
		size_t k;

		if (json_is_string(c))
			echo_content(t, f, json_string_value(c), &echoed, first, sizeof(first));
		json_array_foreach(c, k, part)
		{
			const char *txt = json_string_value(json_object_get(part, "text"));

			if (txt)
				echo_content(t, f, txt, &echoed, first, sizeof(first));
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

static int check_new_task(struct tc *t)
{
	const char *f[40];
	char ex[80];

	if (check_ack(t))
		return 1;
	item_fields(t->in->item, f, sizeof(f) / sizeof(f[0]), false);
	for (size_t i = 0; new_task_phrases[i]; i++) {
		const char *ph = new_task_phrases[i], *at = memmem(t->s, t->n, ph, strlen(ph)), *ls;
		json_t *m;
		size_t k;
		bool in_prompt = false;

		if (!at || in_any(f, ph))
			continue;
		json_array_foreach(t->in->prompt, k, m)
		{
			const char *c = json_string_value(json_object_get(m, "content"));

			in_prompt |= c && strstr(c, ph);
		}
		/* the template asks it; but the item's reference explanation is
		 * rendered into the prompt too, and is teacher text like this */
		if (in_prompt && !in_explanation(t->in->item, ph))
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
	const char *f[40];
	size_t cjk = 0, latin = 0, rc = 0, rl = 0, n;
	int item_share, reply_share;

	n = item_fields(t->in->item, f, sizeof(f) / sizeof(f[0]), false);
	for (size_t i = 0; i < n; i++)
		letters_count(f[i], strlen(f[i]), &cjk, &latin);
	letters_count(t->s, t->n, &rc, &rl);
	if (cjk + latin < TEXTCHECK_LANG_MIN_LETTERS || rc + rl < TEXTCHECK_LANG_MIN_LETTERS)
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

/* A tail of whole lines that shares (almost) no terms with the item and
 * with the reply before it: the reply went on about something else. */
struct term_list {
	uint64_t *v;
	size_t n, cap;
};

static void term_push(void *ud, uint64_t term)
{
	struct term_list *l = ud;

	if (l->n < l->cap)
		l->v[l->n++] = term;
}

static int check_off_topic(struct tc *t)
{
	const char *f[40], *s = t->s, *end = s + t->n, *ctx;
	struct hset ref = { 0 };
	struct term_list tl = { 0 };
	size_t nf, nterms = 0, lines = 1, k = 0, *lo = NULL;
	size_t best_m = 0, best_t = 0;
	int rc = -ENOMEM;

	nf = item_fields(t->in->item, f, sizeof(f) / sizeof(f[0]), false);
	ctx = json_string_value(json_object_get(t->in->item, "context"));
	for (size_t i = 0; i < nf; i++)
		if (f[i] != ctx)
			nterms += terms_each(f[i], strlen(f[i]), NULL, NULL);
	if (nterms == 0)
		return 0; /* nothing to compare with */
	tl.cap = terms_each(s, t->n, NULL, NULL);
	for (const char *q = s; q < end; q++)
		lines += *q == '\n';
	tl.v = malloc((tl.cap + 1) * sizeof(*tl.v));
	lo = malloc((lines + 1) * sizeof(*lo));
	if (!tl.v || !lo || hset_init(&ref, nterms + tl.cap))
		goto out;
	for (size_t i = 0; i < nf; i++)
		if (f[i] != ctx)
			terms_each(f[i], strlen(f[i]), term_add, &ref);
	/* lo[k]: the first term of line k */
	for (const char *p = s; p <= end && k < lines; k++) {
		const char *e = memchr(p, '\n', (size_t)(end - p));

		e = e ? e : end;
		lo[k] = tl.n;
		terms_each(p, (size_t)(e - p), term_push, &tl);
		p = e + 1;
	}
	lo[k] = tl.n;
	rc = 0;
	/* Split before line i: the tail is lines i.., compared with the item
	 * and the head (lines before i). Only tails that are most of the reply
	 * count, so a legitimate closing remark never fires. */
	for (size_t i = 0; i < k && i < TEXTCHECK_TOPIC_SPLITS_MAX; i++) {
		size_t tail = tl.n - lo[i], m = 0;

		if (tail * 100 < tl.n * TEXTCHECK_TOPIC_TAIL_SHARE)
			break;
		if (tail >= TEXTCHECK_TOPIC_MIN_TERMS) {
			for (size_t j = lo[i]; j < tl.n; j++)
				m += hset_get(&ref, tl.v[j]) != 0;
			if (m * 100 <= tail * TEXTCHECK_TOPIC_MAX_SHARE && (!rc || tail > best_t)) {
				rc = 1;
				best_t = tail;
				best_m = m;
			}
		}
		for (size_t j = lo[i]; j < lo[i + 1]; j++)
			hset_add(&ref, tl.v[j]);
	}
	if (rc)
		tc_reason(t, "a runaway tail off the question: the last %zu%% of the reply shares "
			  "%zu of its %zu terms with the item and what precedes it",
			  best_t * 100 / (tl.n ? tl.n : 1), best_m, best_t);
out:
	if (ref.key)
		hset_free(&ref);
	free(tl.v);
	free(lo);
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
	struct tc t = { .in = in, .out = out };

	out->kind = -1;
	out->reason[0] = '\0';
	if (!in || !in->text)
		return -EINVAL;
	t.s = in->text;
	t.n = strlen(in->text);
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
			return rc;
		}
		if (rc > 0) {
			out->kind = k;
			memcpy(detail, out->reason, sizeof(detail));
			tc_reason(&t, "%s: %s", rules[k].name, detail);
			return 1;
		}
	}
	return 0;
}
