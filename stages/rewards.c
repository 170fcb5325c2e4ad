/* Rule rewards (stages/rewards.h). The published rules are written with
 * Python regular expressions over code points; this file walks UTF-8 bytes
 * by hand and keeps the same meaning, including Python's notions of white
 * space, of case-insensitive matching and of upper-casing. */
#include "stages/rewards.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- code points ---------------------------------------------------------- */

/* Decodes the code point at s[0..n) (n > 0) into *cp; returns its length.
 * An invalid or cut sequence is one byte, code point 0xFFFD. */
static size_t cp_at(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c = s[0], min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0) {
		len = 2, c &= 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3, c &= 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4, c &= 0x07, min = 0x10000;
	} else {
		*cp = 0xFFFD;
		return 1;
	}
	if (len > n)
		goto bad;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			goto bad;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		goto bad;
	*cp = c;
	return len;
bad:
	*cp = 0xFFFD;
	return 1;
}

/* Python's str.isspace() (and so \s and str.strip()). */
static bool py_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202F || c == 0x205F || c == 0x3000;
}

/* The span [*b, *e) without leading and trailing white space. */
static void strip(const char *t, size_t *b, size_t *e)
{
	uint32_t c;
	size_t l;

	while (*b < *e) {
		l = cp_at((const unsigned char *)t + *b, *e - *b, &c);
		if (!py_space(c))
			break;
		*b += l;
	}
	while (*e > *b) {
		size_t s = *e - 1;

		while (s > *b && ((unsigned char)t[s] & 0xC0) == 0x80 && *e - s < 4)
			s--;
		l = cp_at((const unsigned char *)t + s, *e - s, &c);
		if (s + l != *e) {
			/* a stray continuation byte: one non-space character */
			break;
		}
		if (!py_space(c))
			break;
		*e = s;
	}
}

/* The letters A-J that Python's str.upper() makes of code point c, written
 * to out (at most 3); returns how many. Beyond ASCII a-j, the special
 * casings whose upper case holds a letter A-J: dotless i, j with caron,
 * h with line below, a with right half ring, and the ff/fi/fl/ffi/ffl
 * ligatures. */
static int upper_letters(uint32_t c, char out[3])
{
	static const struct {
		uint32_t cp;
		const char *letters;
	} special[] = {
		{ 0x0131, "I" },  { 0x01F0, "J" },  { 0x1E96, "H" },  { 0x1E9A, "A" },
		{ 0xFB00, "FF" }, { 0xFB01, "FI" }, { 0xFB02, "F" },  { 0xFB03, "FFI" },
		{ 0xFB04, "FF" },
	};

	if (c >= 'a' && c <= 'j') {
		out[0] = (char)(c - 'a' + 'A');
		return 1;
	}
	if (c >= 'A' && c <= 'J') {
		out[0] = (char)c;
		return 1;
	}
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (special[i].cp == c) {
			size_t n = strlen(special[i].letters);

			memcpy(out, special[i].letters, n);
			return (int)n;
		}
	return 0;
}

/* True when code point c matches ASCII letter a (lower case) under
 * Python's case-insensitive matching: a's two cases, plus the extra
 * pairs Python's engine knows (i ~ dotless i and dotted capital I, s ~ long s). */
static bool ci_eq(uint32_t c, char a)
{
	if (c == (uint32_t)a || c == (uint32_t)(a - 'a' + 'A'))
		return true;
	if (a == 'i')
		return c == 0x0131 || c == 0x0130;
	if (a == 's')
		return c == 0x017F;
	return false;
}

/* Matches tag (ASCII, lower case letters) case-insensitively at t[p..e);
 * returns the length matched, or 0. */
static size_t ci_tag_at(const char *t, size_t p, size_t e, const char *tag)
{
	size_t q = p;

	for (; *tag; tag++) {
		uint32_t c;
		size_t l;

		if (q >= e)
			return 0;
		l = cp_at((const unsigned char *)t + q, e - q, &c);
		if (*tag >= 'a' && *tag <= 'z') {
			if (!ci_eq(c, *tag))
				return 0;
		} else if (c != (uint32_t)(unsigned char)*tag) {
			return 0;
		}
		q += l;
	}
	return q - p;
}

/* The first case-insensitive tag in t[from, e): its start in *at and its
 * length returned, or 0 when there is none. */
static size_t ci_find(const char *t, size_t from, size_t e, const char *tag, size_t *at)
{
	for (size_t p = from; p < e; p++) {
		size_t l;

		if (t[p] != '<')
			continue;
		l = ci_tag_at(t, p, e, tag);
		if (l) {
			*at = p;
			return l;
		}
	}
	return 0;
}

/* The content of the first <answer>...</answer> (case-insensitive), or
 * false when the completion has no such pair. */
static bool answer_span(const char *t, size_t len, size_t *b, size_t *e)
{
	size_t at, l, cat, cl;

	l = ci_find(t, 0, len, "<answer>", &at);
	if (!l)
		return false;
	cl = ci_find(t, at + l, len, "</answer>", &cat);
	if (!cl)
		return false;
	*b = at + l;
	*e = cat;
	return true;
}

/* The gold letter: the content of a <answer> pair if there is one, upper
 * cased, all white space removed (ASCII is enough for an option key). */
static bool gold_letter(const char *gold, char *letter)
{
	size_t b = 0, e = gold ? strlen(gold) : 0, n = 0;
	char g[8];

	if (!gold)
		return false;
	if (!answer_span(gold, e, &b, &e)) {
		b = 0;
		e = strlen(gold);
	}
	for (size_t i = b; i < e; i++) {
		unsigned char c = (unsigned char)gold[i];

		if (c == ' ' || (c >= 0x09 && c <= 0x0D))
			continue;
		if (n == sizeof(g))
			return false;
		g[n++] = (char)((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
	}
	if (n != 1)
		return false; /* a gold that is not one character never equals one letter */
	*letter = g[0];
	return true;
}

static size_t count_sub(const char *t, size_t len, const char *sub)
{
	size_t n = 0, sl = strlen(sub);

	for (size_t p = 0; p + sl <= len; p++)
		if (memcmp(t + p, sub, sl) == 0)
			n++;
	return n;
}

static bool has_at(const char *t, size_t len, size_t p, const char *s)
{
	size_t sl = strlen(s);

	return p + sl <= len && memcmp(t + p, s, sl) == 0;
}

/* ---- r1: the published rules ------------------------------------------------ */

static double r1_format(const char *t, size_t len)
{
	static const char open[] = "<think>", close[] = "</think>", aopen[] = "<answer>",
			  aclose[] = "</answer>";
	size_t ol = sizeof(open) - 1, cl = sizeof(close) - 1, al = sizeof(aopen) - 1,
	       acl = sizeof(aclose) - 1;

	if (!t || len < ol + cl + al + acl || !has_at(t, len, 0, open) ||
	    !has_at(t, len, len - acl, aclose))
		return 0.0;
	/* The lazy dots can stretch over anything, so the whole text matches
	 * when some </think> after the opening tag is followed, past white
	 * space only, by an <answer> that ends before the final </answer>. */
	for (size_t p = ol; p + cl <= len - acl; p++) {
		size_t q;

		if (!has_at(t, len, p, close))
			continue;
		q = p + cl;
		while (q < len) {
			uint32_t c;
			size_t l = cp_at((const unsigned char *)t + q, len - q, &c);

			if (!py_space(c))
				break;
			q += l;
		}
		if (has_at(t, len, q, aopen) && q + al <= len - acl)
			return 1.0;
	}
	return 0.0;
}

static double r1_accuracy(const char *t, size_t len, const char *gold)
{
	size_t b, e, p, l;
	char letters[3], found = 0, gl;
	int nfound = 0, n;
	uint32_t c;

	if (!t || !gold_letter(gold, &gl) || !answer_span(t, len, &b, &e))
		return 0.0;
	strip(t, &b, &e);
	if (b == e)
		return 0.0;
	for (p = b; p < e; p += l) {
		l = cp_at((const unsigned char *)t + p, e - p, &c);
		n = upper_letters(c, letters);
		for (int i = 0; i < n; i++) {
			found = letters[i];
			nfound++;
		}
	}
	if (nfound != 1 || found != gl)
		return 0.0;
	/* Remove the first case-insensitive occurrence of the letter and see
	 * whether anything but white space is left. */
	for (p = b; p < e; p += l) {
		l = cp_at((const unsigned char *)t + p, e - p, &c);
		if (ci_eq(c, (char)(found - 'A' + 'a')))
			break;
	}
	if (p < e) {
		size_t lb = b, le = p, rb = p + l, re = e;

		strip(t, &lb, &le);
		strip(t, &rb, &re);
		return (lb == le && rb == re) ? 1.0 : 0.5;
	}
	return 0.5; /* the letter came from a special casing: its character is left */
}

/* ---- strict ---------------------------------------------------------------- */

static double strict_format(const char *t, size_t len)
{
	if (r1_format(t, len) == 0.0)
		return 0.0;
	return (count_sub(t, len, "<think>") == 1 && count_sub(t, len, "</think>") == 1 &&
		count_sub(t, len, "<answer>") == 1 && count_sub(t, len, "</answer>") == 1)
		       ? 1.0
		       : 0.0;
}

static double strict_accuracy(const char *t, size_t len, const char *gold)
{
	size_t b, e, at, n_open = 0, n_close = 0;
	char gl;
	unsigned char c;

	if (!t || !gold_letter(gold, &gl))
		return 0.0;
	for (size_t p = 0; ci_find(t, p, len, "<answer>", &at); p = at + 1)
		n_open++;
	for (size_t p = 0; ci_find(t, p, len, "</answer>", &at); p = at + 1)
		n_close++;
	if (n_open != 1 || n_close != 1 || !answer_span(t, len, &b, &e))
		return 0.0;
	strip(t, &b, &e);
	if (e - b != 1)
		return 0.0;
	c = (unsigned char)t[b];
	if (c >= 'a' && c <= 'j')
		c = (unsigned char)(c - 'a' + 'A');
	return (c >= 'A' && c <= 'J' && (char)c == gl) ? 1.0 : 0.0;
}

/* ---- the table ------------------------------------------------------------- */

static const struct reward_rules rules[] = {
	{ "r1", "MedVLM-R1's published rewards, quirks included", r1_format, r1_accuracy },
	{ "strict", "one of each tag; the answer tag holds exactly the gold letter",
	  strict_format, strict_accuracy },
};

const struct reward_rules *rewards_find(const char *name)
{
	if (!name || !*name)
		return &rules[0];
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (strcmp(rules[i].name, name) == 0)
			return &rules[i];
	return NULL;
}

const struct reward_rules *rewards_at(size_t i)
{
	return i < sizeof(rules) / sizeof(rules[0]) ? &rules[i] : NULL;
}
