#include "stages/grade.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

/* ---- Small character helpers (ASCII only: every byte >= 0x80 is "other") */

static int c_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int c_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int c_alnum(int c)
{
	return c_alpha(c) || c_digit(c);
}

static int c_upper(int c)
{
	return c >= 'A' && c <= 'Z';
}

static int c_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int c_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Decodes one UTF-8 sequence; invalid bytes decode as U+FFFD of length 1. */
static size_t u8_dec(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c;
	size_t len, i;

	if (n == 0) {
		*cp = 0;
		return 0;
	}
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xE0) == 0xC0) {
		len = 2;
		c = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3;
		c = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		*cp = 0xFFFD;
		return 1;
	}
	if (len > n) {
		*cp = 0xFFFD;
		return 1;
	}
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80) {
			*cp = 0xFFFD;
			return 1;
		}
		c = (c << 6) | (s[i] & 0x3F);
	}
	*cp = c;
	return len;
}

static size_t u8_enc(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xC0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xE0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		out[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	out[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/* Folds full-width ASCII forms and a few look-alikes to ASCII; returns c
 * unchanged otherwise. */
static uint32_t fold_cp(uint32_t c)
{
	if (c >= 0xFF01 && c <= 0xFF5E)
		return c - 0xFEE0;
	switch (c) {
	case 0x3000: case 0x00A0: case 0x2002: case 0x2003: case 0x2009: case 0x200B:
		return ' ';
	case 0x3001: return ',';
	case 0x3002: case 0xFF61: return '.';
	case 0x3010: case 0x3014: case 0x300A: return '[';
	case 0x3011: case 0x3015: case 0x300B: return ']';
	case 0x300C: case 0x300D: case 0x300E: case 0x300F:
	case 0x201C: case 0x201D: return '"';
	case 0x2018: case 0x2019: return '\'';
	case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2212: return '-';
	default: return c;
	}
}

/* Unicode punctuation (beyond ASCII) that never carries an answer. */
static int cp_punct(uint32_t c)
{
	return (c >= 0x00A1 && c <= 0x00BF && c != 0x00B5 && c != 0x00B2 && c != 0x00B3 && c != 0x00B9 &&
	        c != 0x00BC && c != 0x00BD && c != 0x00BE) ||
	       c == 0x00D7 || c == 0x00F7 || (c >= 0x2000 && c <= 0x206F) ||
	       (c >= 0x2190 && c <= 0x21FF) || (c >= 0x2500 && c <= 0x27BF) ||
	       (c >= 0x2E00 && c <= 0x2E7F) || (c >= 0x3000 && c <= 0x303F) ||
	       (c >= 0xFE10 && c <= 0xFE1F) || (c >= 0xFE30 && c <= 0xFE4F) ||
	       (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
	       (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) ||
	       c == 0xFFFD || (c >= 0x1F300 && c <= 0x1FAFF);
}

/* Lower-cases ASCII and Latin-1 capitals. */
static uint32_t lower_cp(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
		return c + 32;
	return c;
}

/* Normalizes text for comparison: full-width folded, lower-cased, every
 * punctuation or space run turned into one space (keep_spaces) or dropped.
 * Returns a new string or NULL on ENOMEM. */
static char *norm_text(const char *s, size_t n, int keep_spaces)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(n + 1);
	size_t i = 0, o = 0;
	int pend = 0;

	if (!out)
		return NULL;
	while (i < n) {
		uint32_t c;
		size_t l = u8_dec(p + i, n - i, &c);

		i += l;
		c = lower_cp(fold_cp(c));
		if ((c < 0x80 && !c_alnum((int)c)) || cp_punct(c)) {
			pend = 1;
			continue;
		}
		if (pend && keep_spaces && o > 0)
			out[o++] = ' ';
		pend = 0;
		o += u8_enc(c, out + o);
	}
	out[o] = '\0';
	return out;
}

char *grade_normalize(const char *s)
{
	if (!s)
		return NULL;
	return norm_text(s, strlen(s), 0);
}

/* The reply as the extractor reads it: full-width forms folded to ASCII,
 * markdown emphasis and code ticks dropped, CR dropped. Never longer. */
static char *prep_text(const char *s, size_t n, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(n + 1);
	size_t i = 0, o = 0;

	if (!out)
		return NULL;
	while (i < n) {
		uint32_t c;
		size_t l = u8_dec(p + i, n - i, &c);
		uint32_t f;

		if (c == 0xFFFD && l == 1) { /* keep invalid bytes out */
			i++;
			out[o++] = ' ';
			continue;
		}
		f = fold_cp(c);
		i += l;
		if (f == '*' || f == '`' || f == '\r')
			continue;
		if (f == '\t')
			f = ' ';
		if (f != c) {
			o += u8_enc(f, out + o);
		} else {
			memcpy(out + o, p + i - l, l);
			o += l;
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* ---- Extraction context ------------------------------------------------ */

struct opt {
	const char *key;
	size_t keylen;
	int letter;  /* key is one ASCII letter */
	char *norm;  /* option text, normalized with spaces */
	int keytext; /* the text is the key itself (yes/no/maybe) */
	char acro[8]; /* initials of a text of 2..6 words ("scc"), or "" */
};

struct ctx {
	const char *t; /* prepared text */
	size_t n;
	struct opt opt[GRADE_OPTIONS_MAX];
	size_t nopt;
};

enum { TIER_MENTION = 1, TIER_EXPLICIT = 3, TIER_FINAL = 4, TIER_STRUCT = 5 };

struct best {
	int have;
	int tier;
	size_t pos;
	int key; /* option index, -1 for an ambiguous statement, KEY_NONE_OF */
	const char *rule;
	uint32_t hedged;   /* keys named only in hypothetical statements */
	uint32_t rejected; /* keys rejected by "the answer is not X" */
};

#define KEY_NONE_OF (-2) /* "the answer is none of the above" */

static void best_consider(struct best *b, int tier, size_t pos, int key, const char *rule)
{
	if (b->have && (tier < b->tier || (tier == b->tier && pos < b->pos)))
		return;
	b->have = 1;
	b->tier = tier;
	b->pos = pos;
	b->key = key;
	b->rule = rule;
}

/* Case-insensitive match of the ASCII/UTF-8 literal lit at p (bytes >= 0x80
 * compare exactly). Returns the length matched or 0. */
static size_t lit_at(const char *p, const char *end, const char *lit)
{
	size_t i;

	for (i = 0; lit[i]; i++) {
		if (p + i >= end)
			return 0;
		if (c_lower((unsigned char)p[i]) != c_lower((unsigned char)lit[i]))
			return 0;
	}
	return i;
}

/* As lit_at, and the match must end at a word boundary (for ASCII words). */
static size_t word_at(const char *p, const char *end, const char *lit)
{
	size_t l = lit_at(p, end, lit);

	if (!l)
		return 0;
	if (c_alpha((unsigned char)lit[l - 1]) && p + l < end && c_alnum((unsigned char)p[l]))
		return 0;
	return l;
}

static int left_boundary(const struct ctx *x, const char *p)
{
	return p == x->t || !c_alnum((unsigned char)p[-1]);
}

enum { K_STRICT_UPPER = 1, K_VALUE = 2 };

/* The option whose key starts at p (with word boundaries), or -1; *len gets
 * the token length. K_VALUE: right after an explicit phrase (lower-case
 * letters allowed unless they read as an article). K_STRICT_UPPER: a bare
 * letter must be upper case. */
static int key_at(const struct ctx *x, const char *p, const char *end, int flags, size_t *len)
{
	size_t i;
	int best = -1;
	size_t bestlen = 0;

	if (p >= end || !left_boundary(x, p))
		return -1;
	for (i = 0; i < x->nopt; i++) {
		const struct opt *o = &x->opt[i];

		if (o->letter) {
			int c = (unsigned char)p[0];
			const char *q = p + 1;

			if (c_lower(c) != c_lower((unsigned char)o->key[0]))
				continue;
			if (q < end && c_alnum((unsigned char)*q))
				continue;
			/* A's, C-section, B-cell, e.g., U.S. */
			if (q + 1 < end && (*q == '\'' || *q == '-' || *q == '.') &&
			    c_alnum((unsigned char)q[1]))
				continue;
			if (!c_upper(c)) {
				if (!(flags & K_VALUE))
					continue;
				/* "a patient", "i think": an article or pronoun, not a key */
				if ((c == 'a' || c == 'i') && q + 1 < end && *q == ' ' &&
				    c_alpha((unsigned char)q[1]))
					continue;
			}
			if ((flags & K_STRICT_UPPER) && !c_upper(c))
				continue;
			if (bestlen < 1) {
				best = (int)i;
				bestlen = 1;
			}
		} else {
			size_t l = word_at(p, end, o->key);

			if (l && l > bestlen) {
				best = (int)i;
				bestlen = l;
			}
		}
	}
	if (best >= 0 && len)
		*len = bestlen;
	return best;
}

/* Words before a letter that make it part of a name, not an answer. */
static const char *const qualifiers[] = {
	"vitamin", "vitamins", "type", "types", "hepatitis", "hep", "group", "class", "grade", "stage",
	"factor", "protein", "complex", "phase", "zone", "wave", "waves", "lead", "cell", "cells",
	"site", "plan", "part", "section", "schedule", "step", "subunit", "chain", "fiber", "fibers",
	"band", "receptor", "kinase", "influenza", "cluster", "category", "level", "figure", "table",
	"panel", "exhibit", "appendix", "tier", "pattern", "toxin", "strain", "serotype", "genotype",
	"hemoglobin", "haemoglobin", "immunoglobulin", "ig", "apolipoprotein", "apo", "lamina", "area",
	"point", "mode", "region", "compartment", "list", "botulinum", "streptococcus", "strep",
	"coxsackie", "plasmodium", "blood", "antigen", "fragment", "segment", "letter", "item",
	"question", "patient", "case", "child", "mr", "ms", "mrs", "dr", "ring", "loop", "polymerase",
	"helix", "grades", "classes", "quadrant", "pouch", "disc", "line", NULL
};

/* The ASCII word that ends right before p (skipping one run of spaces),
 * lower-cased into w; "" when none. */
static void word_before(const struct ctx *x, const char *p, char *w, size_t wlen)
{
	const char *e = p, *s;
	size_t n;

	while (e > x->t && (e[-1] == ' ' || e[-1] == '('))
		e--;
	s = e;
	while (s > x->t && (c_alpha((unsigned char)s[-1]) || s[-1] == '\''))
		s--;
	n = (size_t)(e - s);
	if (n >= wlen)
		n = wlen - 1;
	for (size_t i = 0; i < n; i++)
		w[i] = (char)c_lower((unsigned char)s[i]);
	w[n] = '\0';
}

static int in_list(const char *w, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(w, list[i]) == 0)
			return 1;
	return 0;
}

static int qualified(const struct ctx *x, const char *p)
{
	char w[32];

	word_before(x, p, w, sizeof w);
	return w[0] && in_list(w, qualifiers);
}

/* ---- Text matching (an option's text instead of its key) --------------- */

struct toks {
	const char *p[256];
	size_t l[256];
	size_t n;
};

static const char *const stopwords[] = {
	"the", "a", "an", "of", "to", "in", "on", "at", "by", "for", "with", "and", "or", "is", "are",
	"be", "was", "were", "it", "its", "this", "that", "these", "those", "as", "from", "his", "her",
	"their", "which", "who", "should", "would", "will", "has", "have", "he", "she", "they", "than",
	"then", "into", "most", "answer", "option", "correct", "best", NULL
};

static int stopword(const char *p, size_t l)
{
	for (size_t i = 0; stopwords[i]; i++)
		if (strlen(stopwords[i]) == l && memcmp(stopwords[i], p, l) == 0)
			return 1;
	return 0;
}

/* Splits a normalized (spaced) string into content tokens: ASCII words
 * (a plural 's' dropped) and CJK character bigrams. */
static void toks_split(const char *s, struct toks *t)
{
	const char *p = s;

	t->n = 0;
	while (*p && t->n < 256) {
		const char *w;
		size_t l;

		while (*p == ' ')
			p++;
		w = p;
		while (*p && *p != ' ')
			p++;
		l = (size_t)(p - w);
		if (!l)
			break;
		if ((unsigned char)w[0] < 0x80) {
			if (stopword(w, l))
				continue;
			if (l > 3 && w[l - 1] == 's' && w[l - 2] != 's')
				l--;
			t->p[t->n] = w;
			t->l[t->n++] = l;
		} else {
			/* bigrams of code points; a lone character is its own token */
			const unsigned char *u = (const unsigned char *)w;
			size_t off = 0, total = l;
			uint32_t c;
			size_t l1 = u8_dec(u, total, &c), l2;

			if (l1 >= total) {
				t->p[t->n] = w;
				t->l[t->n++] = l;
				continue;
			}
			while (off + l1 < total && t->n < 256) {
				l2 = u8_dec(u + off + l1, total - off - l1, &c);
				t->p[t->n] = w + off;
				t->l[t->n++] = l1 + l2;
				off += l1;
				l1 = l2;
			}
		}
	}
}

static int toks_has(const struct toks *t, const char *p, size_t l)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->l[i] == l && memcmp(t->p[i], p, l) == 0)
			return 1;
	return 0;
}

/* needle occurs in hay at a token boundary (CJK needs none). */
static int contains_tok(const char *hay, const char *needle)
{
	size_t nl = strlen(needle);
	const char *p = hay;

	if (!nl)
		return 0;
	for (;;) {
		const char *h = strstr(p, needle);
		int lok, rok;

		if (!h)
			return 0;
		lok = h == hay || h[-1] == ' ' || (unsigned char)needle[0] >= 0x80 ||
		      (unsigned char)h[-1] >= 0x80;
		rok = h[nl] == '\0' || h[nl] == ' ' || (unsigned char)needle[nl - 1] >= 0x80 ||
		      (unsigned char)h[nl] >= 0x80;
		if (lok && rok)
			return 1;
		p = h + 1;
	}
}

/* Length of the longest common subsequence of tokens a and b. */
static size_t toks_lcs(const struct toks *a, const struct toks *b)
{
	size_t prev[257], cur[257];

	memset(prev, 0, sizeof prev);
	for (size_t i = 0; i < a->n; i++) {
		cur[0] = 0;
		for (size_t j = 0; j < b->n; j++) {
			if (a->l[i] == b->l[j] && memcmp(a->p[i], b->p[j], a->l[i]) == 0)
				cur[j + 1] = prev[j] + 1;
			else
				cur[j + 1] = cur[j] > prev[j + 1] ? cur[j] : prev[j + 1];
		}
		memcpy(prev, cur, (b->n + 1) * sizeof cur[0]);
	}
	return prev[b->n];
}

/* The token occurs in an option other than skip. */
static int tok_shared(const struct ctx *x, size_t skip, const char *p, size_t l)
{
	struct toks *t = malloc(sizeof *t);
	int shared = 0;

	if (!t)
		return 1;
	for (size_t i = 0; i < x->nopt && !shared; i++) {
		if (i == skip)
			continue;
		toks_split(x->opt[i].norm, t);
		shared = toks_has(t, p, l);
	}
	free(t);
	return shared;
}

static int negated_line(const char *s, size_t n);

/* The option whose initials a capitalised word in s spells ("SCC" for
 * "squamous cell carcinoma"): the first such word decides. -1 if none. */
static int abbrev_match(const struct ctx *x, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		char w[8];
		int found = -1, count = 0;

		if (!c_upper((unsigned char)s[i]) || (i > 0 && c_alnum((unsigned char)s[i - 1])))
			continue;
		while (j < n && c_upper((unsigned char)s[j]))
			j++;
		if (j - i < 2 || j - i > 6 || (j < n && c_alnum((unsigned char)s[j]))) {
			i = j;
			continue;
		}
		for (size_t m = 0; m < j - i; m++)
			w[m] = (char)c_lower((unsigned char)s[i + m]);
		w[j - i] = '\0';
		for (size_t k = 0; k < x->nopt; k++) {
			if (x->opt[k].acro[0] && strcmp(x->opt[k].acro, w) == 0) {
				found = (int)k;
				count++;
			}
		}
		if (count == 1)
			return found;
		i = j;
	}
	return -1;
}

enum { TM_VALUE, TM_LINE };

/* Which option's text s names. Returns the index, -1 (none) or -2
 * (ambiguous: several options named). *rule gets the rule name. */
static int text_match(const struct ctx *x, const char *s, size_t n, int mode, const char **rule)
{
	char *hay = norm_text(s, n, 1);
	int hit[GRADE_OPTIONS_MAX];
	size_t nhit = 0, i, j;
	int ret = -1;
	struct toks *ht = NULL, *ot = NULL;
	double best = 0, second = 0;
	int besti = -1;

	if (!hay)
		return -1;
	if (!hay[0] || strlen(hay) > 2000)
		goto out;
	for (i = 0; i < x->nopt; i++) {
		if (x->opt[i].norm[0] && strcmp(hay, x->opt[i].norm) == 0) {
			*rule = "text_exact";
			ret = (int)i;
			goto out;
		}
	}
	for (i = 0; i < x->nopt; i++) {
		const struct opt *o = &x->opt[i];
		size_t minlen = mode == TM_LINE ? 4 : 2;

		if (strlen(o->norm) < minlen || (mode == TM_LINE && o->keytext))
			continue;
		if (contains_tok(hay, o->norm))
			hit[nhit++] = (int)i;
	}
	/* an option named only as part of a longer option's text does not count */
	for (i = 0; i < nhit; i++) {
		for (j = 0; j < nhit; j++) {
			if (i != j && hit[i] >= 0 && hit[j] >= 0 &&
			    strlen(x->opt[hit[j]].norm) > strlen(x->opt[hit[i]].norm) &&
			    contains_tok(x->opt[hit[j]].norm, x->opt[hit[i]].norm)) {
				hit[i] = -1;
				break;
			}
		}
	}
	for (i = 0, j = 0; i < nhit; i++)
		if (hit[i] >= 0)
			hit[j++] = hit[i];
	nhit = j;
	if (nhit == 1) {
		*rule = "text_contains";
		ret = hit[0];
		goto out;
	}
	if (nhit > 1) {
		*rule = "text_several";
		ret = -2;
		goto out;
	}
	if (mode == TM_VALUE && (ret = abbrev_match(x, s, n)) >= 0) {
		*rule = "text_abbrev";
		goto out;
	}
	if (mode == TM_VALUE && strlen(hay) >= 6) {
		for (i = 0; i < x->nopt; i++) {
			if (strlen(hay) * 2 >= strlen(x->opt[i].norm) && contains_tok(x->opt[i].norm, hay)) {
				if (nhit++ == 0)
					ret = (int)i;
				else
					ret = -1;
			}
		}
		if (ret >= 0) {
			*rule = "text_prefix";
			goto out;
		}
	}
	/* paraphrase: the share of the option's content tokens that s has in
	 * the same order (longest common subsequence), so "decreased calcium,
	 * increased phosphate" tells the two orderings apart */
	ht = malloc(sizeof *ht);
	ot = malloc(sizeof *ot);
	if (!ht || !ot)
		goto out;
	toks_split(hay, ht);
	if (mode == TM_LINE && ht->n > 80)
		goto out;
	for (i = 0; i < x->nopt; i++) {
		double score;
		size_t lcs;

		toks_split(x->opt[i].norm, ot);
		if (ot->n < 2)
			continue;
		lcs = toks_lcs(ot, ht);
		score = (double)lcs / (double)ot->n;
		if (score > best) {
			second = best;
			best = score;
			besti = (int)i;
		} else if (score > second) {
			second = score;
		}
	}
	if (besti >= 0 && ((mode == TM_VALUE && best >= 0.6 && best - second >= 0.1) ||
	                   (mode == TM_LINE && best >= 0.75 && best - second >= 0.15))) {
		*rule = "text_overlap";
		ret = besti;
		goto out;
	}
out:
	free(ht);
	free(ot);
	free(hay);
	return ret;
}

/* A short reply naming a distinctive word of one option only ("listeria
 * meningitis" for "Listeria monocytogenes"): its index, or -1. */
static int text_keyword(const struct ctx *x, const char *s, size_t n)
{
	char *hay = norm_text(s, n, 1);
	struct toks *ht = malloc(sizeof *ht), *ot = malloc(sizeof *ot);
	int only = -1, count = 0;

	if (!hay || !ht || !ot)
		goto out;
	toks_split(hay, ht);
	if (ht->n > 60)
		goto out;
	for (size_t i = 0; i < x->nopt; i++) {
		int has = 0;

		toks_split(x->opt[i].norm, ot);
		for (size_t j = 0; j < ot->n && !has; j++) {
			if (ot->l[j] < 5 && (unsigned char)ot->p[j][0] < 0x80)
				continue; /* short words are too common */
			has = toks_has(ht, ot->p[j], ot->l[j]) && !tok_shared(x, i, ot->p[j], ot->l[j]);
		}
		if (has) {
			only = (int)i;
			count++;
		}
	}
out:
	free(hay);
	free(ht);
	free(ot);
	return count == 1 ? only : -1;
}

/* ---- Values after a decisive phrase ------------------------------------ */

enum { V_NONE, V_KEY, V_AMBIG, V_NONE_OF, V_NOT };

struct val {
	int status;
	int key;
	int by_text;
	const char *why; /* rule of an ambiguous or none value, or NULL */
	uint32_t rej;    /* V_NOT: the keys rejected */
};

static const char *skip_blank(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* The end of the clause that starts at p: a ',' ';' or sentence end, or a
 * word that starts a justification ("but", "because"). */
static const char *clause_end(const char *p, const char *eol, int commas)
{
	static const char *const stops[] = { " but", " because", NULL };
	const char *c = p;

	for (; c < eol; c++) {
		if ((commas && *c == ',') || *c == ';' || (*c == '.' && (c + 1 == eol || c[1] == ' ')))
			break;
		if (*c == ' ') {
			size_t i;

			for (i = 0; stops[i]; i++)
				if (word_at(c, eol, stops[i]))
					break;
			if (stops[i])
				break;
		}
	}
	return c;
}

/* After a key, the option text the reply gives with it ("B) Riboflavin"):
 * 1 when that text names another option and not the key's own. */
static int key_text_conflict(const struct ctx *x, int k, const char *q, const char *end)
{
	const char *eol, *ce, *rule = NULL;
	char *hay;
	int j, own;

	if (q >= end || !(*q == ')' || *q == ']' || *q == ':' || *q == ' ' || *q == '-'))
		return 0;
	while (q < end && (*q == ')' || *q == ']' || *q == ':' || *q == ' ' || *q == '-'))
		q++;
	eol = memchr(q, '\n', (size_t)(end - q));
	if (!eol)
		eol = end;
	if (eol - q > 300)
		eol = q + 300;
	/* the sentence, not the clause: option texts hold commas */
	ce = clause_end(q, eol, 0);
	if (ce - q < 3 || !c_alpha((unsigned char)*q))
		return 0;
	j = text_match(x, q, (size_t)(ce - q), TM_VALUE, &rule);
	if (j < 0 || j == k || (strcmp(rule, "text_exact") != 0 && strcmp(rule, "text_contains") != 0))
		return 0;
	hay = norm_text(q, (size_t)(ce - q), 1);
	own = !hay || (x->opt[k].norm[0] && contains_tok(hay, x->opt[k].norm));
	free(hay);
	return !own;
}

/* The key in "(C)" within [p, e), or -1. */
static int paren_key(const struct ctx *x, const char *p, const char *e)
{
	for (; p + 2 < e; p++) {
		size_t l = 0;
		int k;

		if (*p != '(')
			continue;
		k = key_at(x, p + 1, e, K_VALUE, &l);
		if (k >= 0 && p + 1 + l < e && p[1 + l] == ')')
			return k;
	}
	return -1;
}

/* "none of the above", "none of these", "neither": the reply says no
 * option is right (unless an option says so itself). */
static size_t none_of_at(const struct ctx *x, const char *p, const char *end)
{
	static const char *const none[] = { "none of the above", "none of these", "none of them",
		                            "none of the options", "none of the listed",
		                            "none of the choices", "none of the given", "neither",
		                            "none", NULL };
	size_t l = 0;

	for (size_t i = 0; none[i] && !l; i++)
		l = word_at(p, end, none[i]);
	if (!l)
		return 0;
	for (size_t i = 0; i < x->nopt; i++)
		if (strncmp(x->opt[i].norm, "none", 4) == 0 || strncmp(x->opt[i].norm, "neither", 7) == 0)
			return 0;
	return l;
}

/* Reads the answer starting at p (bounded by end): a key, "(C)", "C or D",
 * "not C", "none of the above", or an option's text up to the end of the
 * line. */
static struct val value_at(const struct ctx *x, const char *p, const char *end, int allow_text)
{
	struct val v = { V_NONE, -1, 0, NULL, 0 };
	const char *q, *eol;
	size_t len = 0;
	int k, k2;
	const char *rule = NULL;

	p = skip_blank(p, end);
	while (p < end && (*p == '(' || *p == '[' || *p == '{' || *p == '"' || *p == '\'' || *p == '<'))
		p++;
	if (none_of_at(x, p, end)) {
		v.status = V_NONE_OF;
		v.why = "none_of_the_above";
		return v;
	}
	/* "not D", "not A and not B": rejections, no answer */
	if ((len = word_at(p, end, "not")) != 0) {
		q = p + len;
		for (int n = 0; n < GRADE_OPTIONS_MAX; n++) {
			size_t l = 0;

			while (q < end && (*q == ' ' || *q == ',' || *q == '(' || *q == ')'))
				q++;
			if ((l = word_at(q, end, "and")) || (l = word_at(q, end, "or")) ||
			    (l = word_at(q, end, "nor")))
				q = skip_blank(q + l, end);
			if ((l = word_at(q, end, "not")) != 0)
				q = skip_blank(q + l, end);
			if ((l = word_at(q, end, "option")) != 0)
				q = skip_blank(q + l, end);
			while (q < end && *q == '(')
				q++;
			k = key_at(x, q, end, K_STRICT_UPPER, &l);
			if (k < 0 || !x->opt[k].letter)
				break;
			v.rej |= (uint32_t)1 << k;
			q += l;
		}
		if (v.rej)
			v.status = V_NOT;
		return v;
	}
	k = key_at(x, p, end, K_VALUE, &len);
	if (k >= 0) {
		q = p + len;
		if (allow_text && x->opt[k].letter && key_text_conflict(x, k, q, end)) {
			v.status = V_AMBIG;
			v.why = "letter_text_conflict";
			return v;
		}
		while (q < end && (*q == ')' || *q == ']' || *q == '}' || *q == '"' || *q == '\'' ||
		                   *q == ' '))
			q++;
		/* "C or D", "C/D", "C, D", "C和D": two answers, not one */
		{
			size_t l = 0;

			if (q < end && (*q == ',' || *q == '/' || *q == '&'))
				l = 1;
			if (!l)
				l = word_at(q, end, "or");
			if (!l)
				l = word_at(q, end, "and");
			if (!l)
				l = lit_at(q, end, "或");
			if (!l)
				l = lit_at(q, end, "和");
			if (l) {
				q = skip_blank(q + l, end);
				while (q < end && (*q == '(' || *q == '['))
					q++;
				k2 = key_at(x, q, end, K_VALUE, &len);
				if (k2 >= 0 && k2 != k) {
					v.status = V_AMBIG;
					return v;
				}
			}
		}
		v.status = V_KEY;
		v.key = k;
		return v;
	}
	if (!allow_text)
		return v;
	eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		eol = end;
	if (eol - p > 400)
		eol = p + 400;
	if (eol <= p)
		return v;
	/* a list of several options' texts ("thiamine, niacin, or riboflavin")
	 * is no single answer; then the first clause ("doxycycline (D), but
	 * azithromycin (B)..."), then the whole line (option texts may hold
	 * commas) */
	{
		const char *c = clause_end(p, eol, 1), *se = clause_end(p, eol, 0);

		k = text_match(x, p, (size_t)(se - p), TM_VALUE, &rule);
		if (k == -2 && se > c) {
			v.status = V_AMBIG;
			v.why = "answer_list";
			return v;
		}
		/* the whole sentence is one option's text */
		if (k >= 0 && strcmp(rule, "text_exact") != 0)
			k = -1;
		if (k < 0 && c < eol)
			k = text_match(x, p, (size_t)(c - p), TM_VALUE, &rule);
		/* a label over a paragraph ("Best option: Given that ...") names
		 * no option by a text somewhere in it */
		if (k < 0 && eol - p <= 200)
			k = text_match(x, p, (size_t)(eol - p), TM_VALUE, &rule);
		/* "riboflavin (B)" where riboflavin is C */
		if (k >= 0 && x->opt[k].letter) {
			int pk = paren_key(x, p, c < eol ? c + 1 : eol);

			if (pk >= 0 && pk != k) {
				v.status = V_AMBIG;
				v.why = "letter_text_conflict";
				return v;
			}
		}
	}
	if (k >= 0) {
		v.status = V_KEY;
		v.key = k;
		v.by_text = 1;
	} else if (k == -2) {
		v.status = V_AMBIG;
	}
	return v;
}

/* Skips what may stand between a phrase and its value: spaces, newlines,
 * ':' '-' '=' '|' '>' and filler words ("is", "would be", "option"...). */
static const char *skip_connect(const char *p, const char *end)
{
	static const char *const fillers[] = {
		"is", "was", "would", "will", "should", "must", "be", "probably", "likely", "most",
		"definitely", "clearly", "then", "therefore", "thus", "indeed", "option", "choice",
		"letter", "answer", "here", "therefore,", "定为", NULL
	};
	static const char *const cjk[] = { "是", "为", "為", "应该", "应", "應", "选项", "选", "就", NULL };
	const char *start = p;

	while (p < end && p - start < 80) {
		size_t l = 0;

		if (c_space((unsigned char)*p) || *p == ':' || *p == '-' || *p == '=' || *p == '|' ||
		    *p == '>' || *p == ',' || *p == '#' || *p == '~') {
			p++;
			continue;
		}
		if (c_alpha((unsigned char)*p)) {
			for (size_t i = 0; fillers[i] && !l; i++)
				l = word_at(p, end, fillers[i]);
		} else if ((unsigned char)*p >= 0x80) {
			for (size_t i = 0; cjk[i] && !l; i++)
				l = lit_at(p, end, cjk[i]);
			if (!l)
				l = lit_at(p, end, "→");
		}
		if (!l)
			break;
		p += l;
	}
	return p;
}

/* True when the sentence holding pos frames the statement as hypothetical
 * or rejected ("if the answer is A", "one might argue the answer is A"). */
static int hedged(const struct ctx *x, size_t pos)
{
	static const char *const hedges[] = {
		"if", "might", "could", "whether", "tempting", "unless", "initially", "suppose",
		"supposing", "assume", "assuming", "argue", "argued", "mistakenly", "wrongly",
		"incorrectly", "rather", "instead", "trap", "distractor", "originally", "earlier",
		"thought", "not", "isn't", "wasn't", "neither", "why", "whichever", NULL
	};
	static const char *const resets[] = {
		"but", "however", "therefore", "so", "thus", "hence", "actually", "ultimately",
		"overall", "clearly", "after", "now", "wait", "instead", "given", "considering", NULL
	};
	size_t s = pos;
	const char *p, *e;
	int hedge = 0;

	while (s > 0 && pos - s < 240) {
		char c = x->t[s - 1];

		if (c == '\n' || c == '!' || c == '?' || c == ';')
			break;
		/* a period ends a sentence unless it is "e.g." or "C." style */
		if (c == '.' && s >= 2 && !c_alpha((unsigned char)x->t[s - 2]))
			break;
		if (c == '.' && s >= 3 && c_alpha((unsigned char)x->t[s - 2]) &&
		    c_alpha((unsigned char)x->t[s - 3]))
			break;
		s--;
	}
	p = x->t + s;
	e = x->t + pos;
	while (p < e) {
		const char *w;
		char word[24];
		size_t l;

		while (p < e && !c_alpha((unsigned char)*p))
			p++;
		w = p;
		while (p < e && (c_alpha((unsigned char)*p) || *p == '\''))
			p++;
		l = (size_t)(p - w);
		if (!l || l >= sizeof word)
			continue;
		for (size_t i = 0; i < l; i++)
			word[i] = (char)c_lower((unsigned char)w[i]);
		word[l] = '\0';
		if (in_list(word, resets))
			hedge = 0;
		else if (in_list(word, hedges))
			hedge = 1;
	}
	return hedge;
}

/* ---- Rule scanners ----------------------------------------------------- */

static void take_val(struct best *b, int tier, size_t pos, struct val v, const char *rule,
                     const char *text_rule)
{
	if (v.status == V_KEY)
		best_consider(b, tier, pos, v.key, v.by_text ? text_rule : rule);
	else if (v.status == V_AMBIG)
		best_consider(b, tier, pos, -1, v.why ? v.why : rule);
	else if (v.status == V_NONE_OF)
		best_consider(b, tier, pos, KEY_NONE_OF, v.why);
	else if (v.status == V_NOT)
		b->rejected |= v.rej;
}

/* A hypothetical statement ("if it were pigmented, the answer would be C")
 * decides nothing, but two of them naming different keys are a sign of
 * indecision. */
static void note_hedged(const struct ctx *x, struct best *b, const char *vs, const char *end)
{
	struct val v = value_at(x, vs, end, 0);

	if (v.status == V_KEY)
		b->hedged |= (uint32_t)1 << v.key;
}

/* <answer>X</answer>, "answer": "X", \boxed{X} */
static void scan_struct(const struct ctx *x, struct best *b)
{
	const char *t = x->t, *end = x->t + x->n;
	const char *p;

	for (p = t; p < end; p++) {
		size_t l;

		if (*p == '<' && (l = lit_at(p, end, "<answer>")) != 0) {
			const char *s = p + l, *e = s;
			struct val v;

			while (e < end && !lit_at(e, end, "</answer>"))
				e++;
			/* the tag's content: a key, a text, or a phrase inside */
			while (s < e && c_space((unsigned char)*s))
				s++;
			v = value_at(x, s, e, 1);
			if (v.status == V_KEY) {
				take_val(b, TIER_STRUCT, (size_t)(p - t), v, "answer_tag", "answer_tag_text");
			} else if (v.status == V_AMBIG && e - s < 40) {
				take_val(b, TIER_STRUCT, (size_t)(p - t), v, "answer_tag", "answer_tag");
			}
			continue;
		}
		if (*p == '"') {
			static const char *const keys[] = { "\"answer\"", "\"final_answer\"",
				                            "\"final answer\"", "\"answer_key\"",
				                            "\"choice\"", "\"selected_option\"",
				                            "\"option\"", NULL };
			for (size_t i = 0; keys[i]; i++) {
				const char *q, *s, *e;
				struct val v;

				l = lit_at(p, end, keys[i]);
				if (!l)
					continue;
				q = p + l;
				while (q < end && c_space((unsigned char)*q))
					q++;
				if (q >= end || *q != ':')
					break;
				q++;
				while (q < end && c_space((unsigned char)*q))
					q++;
				if (q >= end || *q != '"')
					break;
				s = q + 1;
				e = s;
				while (e < end && *e != '"' && *e != '\n') {
					if (*e == '\\' && e + 1 < end)
						e++;
					e++;
				}
				v = value_at(x, s, e, 1);
				take_val(b, TIER_STRUCT, (size_t)(p - t), v, "json_answer", "json_answer_text");
				break;
			}
			continue;
		}
		if (*p == '\\' && (l = lit_at(p, end, "\\boxed{")) != 0) {
			const char *s = p + l, *e;
			int depth = 1;
			struct val v;

			for (e = s; e < end && e - s < 400; e++) {
				if (*e == '{')
					depth++;
				else if (*e == '}' && --depth == 0)
					break;
			}
			if (e >= end || depth)
				continue;
			if (lit_at(s, e, "\\text{"))
				s += 6;
			else if (lit_at(s, e, "\\mathrm{"))
				s += 8;
			else if (lit_at(s, e, "\\textbf{"))
				s += 8;
			v = value_at(x, s, e, 1);
			take_val(b, TIER_STRUCT, (size_t)(p - t), v, "boxed", "boxed_text");
		}
	}
}

static const char *const adjectives[] = {
	"correct", "best", "right", "appropriate", "likely", "final", "preferred", "my", "proper",
	"true", "accurate", "suitable", "optimal", "intended", "selected", "remaining", "only",
	"sole", NULL
};

static const char *const connectors[] = {
	":", "=", " =", " :", "|", " |", " -", " is", " would be", " will be", " should be",
	" must be", " appears to be", " seems to be", " here is", " then is", " therefore is",
	", therefore, is", ", thus, is", ", then, is", " choice is", " option is", " to this question is",
	" to the question is", " for this question is", " for this patient is", " in this case is",
	" here would be", " remains", " stays", " = ", " =>", " ->", "\n", NULL
};

static const char *const choose_verbs[] = {
	"i choose", "i'd choose", "i would choose", "i'll choose", "i will choose", "i select",
	"i'd select", "i would select", "i'll select", "i pick", "i'd pick", "i would pick",
	"i'll pick", "i'll go with", "i'd go with", "i would go with", "i will go with",
	"i'm going with", "i am going with", "going with", "we choose", "we select", "i chose",
	"i opt for", "i'd opt for", NULL
};

/* "... answer is C", "Answer: C", "best option is C", "I'd go with C",
 * "答案：C", "故选C". */
static void scan_phrases(const struct ctx *x, struct best *b)
{
	/* mode 0: any wording; 1: needs an adjective ("best option");
	 * 2: needs "final" ("final diagnosis"); 3: a label with ':' only */
	static const struct { const char *w; int mode; } nouns[] = {
		{ "answer", 0 }, { "option", 1 }, { "choice", 1 }, { "response", 1 },
		{ "selection", 1 }, { "diagnosis", 2 }, { "decision", 2 }, { "verdict", 2 },
		{ "correct", 3 }, { "conclusion", 3 }, { "answers", 3 }, { NULL, 0 }
	};
	const char *t = x->t, *end = x->t + x->n;
	const char *p;

	for (p = t; p < end; p++) {
		size_t l = 0, pos = (size_t)(p - t);
		unsigned char c = (unsigned char)*p;

		if (c_alpha(c) && left_boundary(x, p)) {
			size_t i;
			const char *q = NULL;
			char w1[24], w2[24];
			int fin = 0;

			for (i = 0; nouns[i].w && !l; i++)
				l = word_at(p, end, nouns[i].w);
			if (l) {
				int mode = nouns[i - 1].mode;

				word_before(x, p, w1, sizeof w1);
				if (mode == 1 && !in_list(w1, adjectives))
					l = 0;
				else if (mode == 2 && strcmp(w1, "final") != 0)
					l = 0;
				else if (mode == 3 && !(p + l < end && p[l] == ':'))
					l = 0;
			}
			if (l) {
				const char *w1s = p;

				while (w1s > t && (w1s[-1] == ' '))
					w1s--;
				while (w1s > t && c_alpha((unsigned char)w1s[-1]))
					w1s--;
				word_before(x, w1s, w2, sizeof w2);
				fin = strcmp(w1, "final") == 0 || strcmp(w2, "final") == 0;
				for (i = 0; connectors[i]; i++) {
					size_t cl = lit_at(p + l, end, connectors[i]);

					if (cl && (c_alpha((unsigned char)connectors[i][cl - 1]) == 0 ||
					           p + l + cl >= end ||
					           (!c_alpha((unsigned char)p[l + cl]) && p[l + cl] != '\''))) {
						q = p + l + cl;
						break;
					}
				}
				if (q && !hedged(x, pos)) {
					struct val v;
					const char *vs = skip_connect(q, end);

					/* "Final Answer\n\nThe patient..." reads no key; "answer -"
					 * must be followed by a value on the same line */
					v = value_at(x, vs, end, 1);
					take_val(b, fin ? TIER_FINAL : TIER_EXPLICIT, pos, v,
					         fin ? "final_answer" : "answer_phrase",
					         fin ? "final_answer_text" : "answer_phrase_text");
				} else if (q) {
					note_hedged(x, b, skip_connect(q, end), end);
				}
				p += l - 1;
				continue;
			}
			for (i = 0; choose_verbs[i]; i++) {
				l = word_at(p, end, choose_verbs[i]);
				if (l)
					break;
			}
			if (l) {
				if (!hedged(x, pos)) {
					const char *vs = skip_connect(p + l, end);
					struct val v = value_at(x, vs, end, 0);

					take_val(b, TIER_EXPLICIT, pos, v, "choose_phrase", "choose_phrase");
				} else {
					note_hedged(x, b, skip_connect(p + l, end), end);
				}
				p += l - 1;
			}
			continue;
		}
		if (c >= 0x80) {
			if ((l = lit_at(p, end, "答案")) != 0) {
				int fin = pos >= 6 && lit_at(p - 6, end, "最终");
				const char *vs = skip_connect(p + l, end);
				struct val v;

				if (!lit_at(p + l, end, "解析") && !lit_at(p + l, end, "不"))
					v = value_at(x, vs, end, 1);
				else
					v.status = V_NONE;
				take_val(b, fin ? TIER_FINAL : TIER_EXPLICIT, pos, v,
				         fin ? "final_answer" : "answer_phrase",
				         fin ? "final_answer_text" : "answer_phrase_text");
				p += l - 1;
				continue;
			}
			if ((l = lit_at(p, end, "选")) != 0 || (l = lit_at(p, end, "選")) != 0) {
				const char *q = p + l;
				struct val v;

				if (lit_at(q, end, "项") || lit_at(q, end, "項"))
					continue;
				if (lit_at(q, end, "择"))
					q += 3;
				q = skip_blank(q, end);
				v = value_at(x, q, end, 0);
				if (pos >= 3 && (lit_at(p - 3, end, "不") || lit_at(p - 3, end, "未")))
					continue;
				take_val(b, TIER_EXPLICIT, pos, v, "choose_phrase", "choose_phrase");
				p += l - 1;
			}
		}
	}
}

static const char *const negators[] = { "not", "nor", "neither", "no", "never", "isn't",
	                                "unlike", "except", "than", NULL };

/* "C is correct", "Option C is the best answer", "| C | correct |", "C正确". */
/* The key at k opens its line, list item or table cell, possibly after
 * "Option"/"Choice": "- C: yes", "| C | correct |", "Option C: ✅". */
static int opens_line(const struct ctx *x, const char *k)
{
	const char *s = k;
	char w[16];

	while (s > x->t && (s[-1] == ' ' || s[-1] == '(' || s[-1] == '['))
		s--;
	word_before(x, s, w, sizeof w);
	if (strcmp(w, "option") == 0 || strcmp(w, "choice") == 0 || strcmp(w, "answer") == 0) {
		while (s > x->t && c_alpha((unsigned char)s[-1]))
			s--;
	}
	while (s > x->t && (s[-1] == ' ' || s[-1] == '|' || s[-1] == '-' || s[-1] == '+' ||
	                    s[-1] == '>' || s[-1] == '#'))
		s--;
	return s == x->t || s[-1] == '\n';
}

/* "C is correct", "Option C is the best answer", "| C | correct |",
 * "- C: yes", "C正确". */
static void scan_suffix(const struct ctx *x, struct best *b)
{
	/* line: 1 when the phrase has no verb and so needs a list/table shape */
	static const struct { const char *s; int line; } suffixes[] = {
		{ " is correct", 0 }, { " is the correct", 0 }, { " is the right", 0 },
		{ " is right", 0 }, { " is the best", 0 }, { " is the answer", 0 },
		{ " is the most likely", 0 }, { " is the most appropriate", 0 },
		{ " is the most accurate", 0 }, { " is the most consistent", 0 }, { " is true", 0 },
		{ " is the true", 0 }, { " is the only correct", 0 }, { " is indeed correct", 0 },
		{ " would be correct", 0 }, { " appears to be the best", 0 },
		{ " appears to be correct", 0 }, { " appears correct", 0 },
		{ " seems to be the best", 0 }, { " seems correct", 0 }, { " seems to be correct", 0 },
		{ " would be the correct", 0 }, { " would be the best", 0 }, { " remains the best", 0 },
		{ " is the one", 0 }, { " fits best", 0 }, { " is best", 0 },
		/* the resolution of two hedged options: "D is more likely" */
		{ " is more likely", 0 }, { " is more appropriate", 0 }, { " fits better", 0 },
		{ " is a better", 0 }, { " is the better", 0 }, { " is favored", 0 },
		{ " is favoured", 0 }, { " is preferred", 0 }, { " is more consistent", 0 },
		{ " correct", 1 }, { ": correct", 1 }, { " - correct", 1 }, { "| correct", 1 },
		{ "|correct", 1 }, { " (correct)", 0 }, { ": true", 1 }, { " - true", 1 }, { "| true", 1 },
		{ ": yes", 1 }, { " - yes", 1 }, { "| yes", 1 }, { ": right", 1 }, { " - right", 1 },
		{ " ✓", 1 }, { " ✅", 1 }, { " ✔", 1 }, { "✅", 1 }, { ": ✓", 1 }, { ": ✅", 1 },
		{ ": ✔", 1 }, { "| ✓", 1 }, { "| ✅", 1 }, { "| ✔", 1 },
		{ "正确", 0 }, { "是正确", 0 }, { "项正确", 0 }, { "是对的", 0 }, { NULL, 0 }
	};
	const char *t = x->t, *end = x->t + x->n;

	for (const char *p = t; p < end; p++) {
		size_t l = 0, i;
		const char *k, *ke;
		int key;
		size_t kl = 0;
		char w[24];

		if (*p != ' ' && *p != ':' && *p != '|' && (unsigned char)*p < 0x80)
			continue;
		for (i = 0; suffixes[i].s; i++) {
			l = lit_at(p, end, suffixes[i].s);
			if (l && c_alpha((unsigned char)suffixes[i].s[l - 1]) && p + l < end &&
			    c_alpha((unsigned char)p[l]))
				l = 0;
			if (l)
				break;
		}
		if (!l)
			continue;
		/* "不正确" */
		if ((unsigned char)*p >= 0x80 && p - t >= 3 && lit_at(p - 3, end, "不"))
			continue;
		/* walk back to the key: "C", "C.", "(C)", "option C", "| C |", "C项" */
		ke = p;
		while (ke > t && (ke[-1] == ' ' || ke[-1] == ')' || ke[-1] == ']' || ke[-1] == '.' ||
		                  ke[-1] == ':' || ke[-1] == '|' || ke[-1] == '-'))
			ke--;
		if (ke - t >= 6 && lit_at(ke - 6, end, "选项"))
			ke -= 6;
		else if (ke - t >= 3 && (lit_at(ke - 3, end, "项") || lit_at(ke - 3, end, "是")))
			ke -= 3;
		k = ke;
		while (k > t && c_alpha((unsigned char)k[-1]))
			k--;
		if (k == ke)
			continue;
		key = key_at(x, k, end, K_VALUE, &kl);
		if (key < 0 || k + kl != ke)
			continue;
		word_before(x, k, w, sizeof w);
		if (x->opt[key].letter && !c_upper((unsigned char)*k) &&
		    !(k > t && k[-1] == '(') && strcmp(w, "option") != 0 && strcmp(w, "choice") != 0)
			continue;
		if (qualified(x, k) || in_list(w, negators))
			continue;
		if (suffixes[i].line && !opens_line(x, k))
			continue;
		if (hedged(x, (size_t)(k - t)))
			continue;
		best_consider(b, TIER_EXPLICIT, (size_t)(k - t), key, "key_is_correct");
	}
}

/* Lines that are only a key ("C", "(C)", "C.", "- **C**") or a key with its
 * own option text ("C. Tell the attending..."). */
static void scan_lines(const struct ctx *x, struct best *b)
{
	const char *t = x->t, *end = x->t + x->n;
	const char *ls = t;
	int textkey = -1, textkeys = 0;
	size_t textpos[64];
	size_t ntext = 0;

	while (ls < end) {
		const char *le = memchr(ls, '\n', (size_t)(end - ls));
		const char *s = ls, *e, *q;
		int key;
		size_t kl = 0;

		if (!le)
			le = end;
		e = le;
		while (s < e && (c_space((unsigned char)*s) || *s == '#' || *s == '>' || *s == '|'))
			s++;
		if (s + 1 < e && (*s == '-' || *s == '+') && s[1] == ' ')
			s += 2;
		else if (lit_at(s, e, "•"))
			s += 3;
		while (s < e && c_space((unsigned char)*s))
			s++;
		while (e > s && (c_space((unsigned char)e[-1]) || e[-1] == '|'))
			e--;
		q = s;
		if (q < e && (*q == '(' || *q == '['))
			q++;
		key = (e > q && e - s <= 600) ? key_at(x, q, e, K_VALUE, &kl) : -1;
		if (key >= 0) {
			const char *r = q + kl;

			while (r < e && (*r == ')' || *r == ']' || *r == '.' || *r == ':'))
				r++;
			if (r == e) {
				/* bare: "C", "C.", "(C)"; a lower-case "a." alone is rare
				 * enough to accept */
				if (x->opt[key].letter || e - s < 16)
					best_consider(b, TIER_EXPLICIT, (size_t)(s - t), key, "standalone");
			} else if (r > q + kl || *r == ' ') {
				char *rest = norm_text(r, (size_t)(e - r), 1);

				if (rest && rest[0] && x->opt[key].norm[0] &&
				    (strcmp(rest, x->opt[key].norm) == 0 ||
				     (strlen(rest) >= 4 && contains_tok(x->opt[key].norm, rest) &&
				      strlen(rest) * 2 >= strlen(x->opt[key].norm)))) {
					if (textkey != key)
						textkeys++;
					textkey = key;
					if (ntext < 64)
						textpos[ntext++] = (size_t)(s - t);
				}
				free(rest);
			}
		}
		ls = le + 1;
	}
	/* one key restated with its text is an answer; several are a listing */
	if (textkeys == 1 && ntext)
		best_consider(b, TIER_EXPLICIT, textpos[ntext - 1], textkey, "key_with_text");
}

static int negative_context(const struct ctx *x, const char *ks, const char *ke)
{
	static const char *const after[] = {
		"incorrect", "wrong", "not", "unlikely", "false", "excluded", "eliminated", "ruled",
		"isn't", "doesn't", "cannot", "can't", "inappropriate", "irrelevant", "untrue",
		"less", "inconsistent", "contraindicated", "would not", "does not", "unnecessary", NULL
	};
	static const char *const before[] = { "not", "eliminate", "exclude", "rule", "rather",
		                              "instead", "unlike", "except", "neither", "nor",
		                              "against", "eliminating", "excluding", NULL };
	const char *end = x->t + x->n, *p;
	char w[24];

	/* ahead, to the end of the sentence (a "C." right after the key is not
	 * an end) */
	p = ke;
	while (p < end && (*p == '.' || *p == ')' || *p == ':'))
		p++;
	for (; p < end && p - ke < 160; p++) {
		size_t l = 0;

		if (*p == '\n' || *p == ';' || *p == '?' || *p == '!' || (*p == '.' && p + 1 < end && p[1] == ' '))
			break;
		if (c_alpha((unsigned char)*p) && left_boundary(x, p)) {
			for (size_t i = 0; after[i] && !l; i++)
				l = word_at(p, end, after[i]);
			if (l)
				return 1;
		} else if (lit_at(p, end, "错误") || lit_at(p, end, "不") || lit_at(p, end, "排除")) {
			return 1;
		}
	}
	/* behind: the few words before it */
	p = ks;
	for (int n = 0; n < 4 && p > x->t; n++) {
		while (p > x->t && !c_alpha((unsigned char)p[-1]) && p[-1] != '\n' && p[-1] != '.')
			p--;
		if (p == x->t || p[-1] == '\n' || p[-1] == '.')
			break;
		word_before(x, p, w, sizeof w);
		if (in_list(w, before))
			return 1;
		while (p > x->t && c_alpha((unsigned char)p[-1]))
			p--;
	}
	if (ks - x->t >= 6 && lit_at(ks - 6, end, "排除"))
		return 1;
	return 0;
}

/* "option C", "choice C", "(C)", "C)" or "C." opening a line, "选项C",
 * "C项". Returns the number of distinct keys mentioned positively, and the
 * last such key in *key; *any gets the number mentioned at all. */
struct mentions {
	int pos_seen[GRADE_OPTIONS_MAX], all_seen[GRADE_OPTIONS_MAX];
	int npos, nall, last;
};

static void mention_add(const struct ctx *x, struct mentions *m, int k, const char *ks, size_t kl)
{
	if (x->opt[k].letter && qualified(x, ks))
		return;
	if (!m->all_seen[k]++)
		m->nall++;
	if (!negative_context(x, ks, ks + kl)) {
		if (!m->pos_seen[k]++)
			m->npos++;
		m->last = k;
	}
}

/* "A and E", "B or C", "A/B", "C, D": two bare upper-case keys joined;
 * the second key's index (and *k2s its position), or -1. */
static int key_pair(const struct ctx *x, const char *p, size_t kl, const char **k2s, size_t *k2l)
{
	const char *end = x->t + x->n, *q = p + kl;
	size_t l;
	int k2;

	while (q < end && *q == ' ')
		q++;
	if (q < end && (*q == ',' || *q == '/'))
		l = 1;
	else if (!(l = word_at(q, end, "and")))
		l = word_at(q, end, "or");
	if (!l)
		return -1;
	q = skip_blank(q + l, end);
	k2 = key_at(x, q, end, K_STRICT_UPPER, k2l);
	if (k2 < 0 || !x->opt[k2].letter)
		return -1;
	*k2s = q;
	return k2;
}

static int scan_mentions(const struct ctx *x, int *key, int *any, uint32_t *rejected)
{
	const char *t = x->t, *end = x->t + x->n;
	struct mentions m;

	memset(&m, 0, sizeof m);
	m.last = -1;

	for (const char *p = t; p < end; p++) {
		const char *ks = NULL;
		int k = -1;
		size_t kl = 0, l = 0;

		if (c_alpha((unsigned char)*p) && left_boundary(x, p)) {
			static const char *const pre[] = { "options", "option", "choices", "choice",
				                           "answer", "answers", NULL };

			for (size_t i = 0; pre[i] && !l; i++)
				l = word_at(p, end, pre[i]);
			if (l) {
				const char *q = p + l;

				while (q < end && (*q == ' ' || *q == '(' || *q == '['))
					q++;
				k = key_at(x, q, end, K_VALUE, &kl);
				if (k >= 0 && x->opt[k].letter && !c_upper((unsigned char)*q) && q[-1] != '(')
					k = -1;
				ks = q;
				p += l - 1;
			} else if (p == t || p[-1] == '\n' || (p[-1] == ' ' && (p - 1 == t || p[-2] == '\n'))) {
				k = key_at(x, p, end, K_STRICT_UPPER, &kl);
				if (k >= 0 && !(p + kl < end && (p[kl] == '.' || p[kl] == ')' || p[kl] == ':')))
					k = -1;
				ks = p;
			}
			if (k < 0) {
				const char *k2s = NULL;
				size_t k2l = 0;
				int k2;

				k = key_at(x, p, end, K_STRICT_UPPER, &kl);
				k2 = k >= 0 && x->opt[k].letter && !qualified(x, p)
					     ? key_pair(x, p, kl, &k2s, &k2l)
					     : -1;
				if (k2 >= 0) {
					mention_add(x, &m, k, p, kl);
					mention_add(x, &m, k2, k2s, k2l);
					p = k2s + k2l - 1;
				}
				continue;
			}
		} else if (*p == '(') {
			k = key_at(x, p + 1, end, K_VALUE, &kl);
			if (k >= 0 && !(p + 1 + kl < end && p[1 + kl] == ')'))
				k = -1;
			if (k >= 0 && x->opt[k].letter && p > t && c_alpha((unsigned char)p[-1]))
				k = -1;
			ks = p + 1;
		} else if ((l = lit_at(p, end, "选项")) != 0) {
			k = key_at(x, p + l, end, K_VALUE, &kl);
			ks = p + l;
		} else if (c_alpha((unsigned char)*p) && p > t && (unsigned char)p[-1] >= 0x80) {
			k = key_at(x, p, end, K_STRICT_UPPER, &kl);
			if (k >= 0 && !lit_at(p + kl, end, "项") && !lit_at(p + kl, end, "选项"))
				k = -1;
			ks = p;
		}
		if (k >= 0)
			mention_add(x, &m, k, ks, kl);
	}
	if (m.last >= 0)
		*key = m.last;
	*any = m.nall;
	*rejected = 0;
	for (size_t i = 0; i < x->nopt; i++)
		if (m.all_seen[i] && !m.pos_seen[i])
			*rejected |= (uint32_t)1 << i;
	return m.npos;
}

/* Bare key letters (upper case) and key words in [s, e): the number of
 * distinct keys, the last in *key. For a very short reply ("I think C.",
 * "A or B") or the last sentence ("So: A", "Therefore, yes."). */
static int scan_short(const struct ctx *x, const char *s, const char *e, int words, int *key)
{
	static const char *const not_article[] = { "or", "and", "nor", "is", "was", "vs", "because",
		                                   "since", "would", "could", "seems", "appears",
		                                   "looks", "fits", "then", "versus", NULL };
	int seen[GRADE_OPTIONS_MAX] = { 0 }, n = 0;

	for (const char *p = s; p < e; p++) {
		size_t kl;
		int k = key_at(x, p, e, words ? K_VALUE : K_STRICT_UPPER, &kl);

		if (k < 0)
			continue;
		if (x->opt[k].letter) {
			if (!c_upper((unsigned char)*p) || qualified(x, p))
				continue;
			/* "A 45-year-old", "I think": an article or pronoun */
			if ((*p == 'A' || *p == 'I') && p + 2 < e && p[1] == ' ' &&
			    c_alnum((unsigned char)p[2])) {
				char w[16];
				size_t wl = 0;

				while (p + 2 + wl < e && wl < sizeof w - 1 &&
				       c_alpha((unsigned char)p[2 + wl])) {
					w[wl] = (char)c_lower((unsigned char)p[2 + wl]);
					wl++;
				}
				w[wl] = '\0';
				if (!in_list(w, not_article))
					continue;
			}
		} else if (!words) {
			continue;
		}
		if (!seen[k]++)
			n++;
		*key = k;
		p += kl - 1;
	}
	return n;
}

static void set_answer(struct grade_result *out, const char *s, size_t n)
{
	n = utf8_prefix(s, n, sizeof out->answer - 1);
	memcpy(out->answer, s, n);
	out->answer[n] = '\0';
}

static void result_key(const struct ctx *x, struct grade_result *out, int key, const char *rule)
{
	out->verdict = GRADE_FOUND;
	out->rule = rule;
	set_answer(out, x->opt[key].key, x->opt[key].keylen);
}

static void result_plain(struct grade_result *out, enum grade_verdict v, const char *rule)
{
	out->verdict = v;
	out->rule = rule;
	out->answer[0] = '\0';
}

/* A key restated loosely after a correction: "it's B", "makes it B",
 * "B instead", "go with B". Returns the key of the last one in [p, end)
 * or -1. */
static int scan_weak(const struct ctx *x, const char *p, const char *end, size_t *pos)
{
	static const char *const lead[] = { "it's", "it is", "its", "it should be", "should be",
		                            "makes it", "make it", "go with", "switch to",
		                            "change to", "change my answer to", "choose", "pick",
		                            "it must be", "must be", "it would be", NULL };
	static const char *const skip[] = { "actually", "really", "definitely", "option",
		                            "choice", "the", "answer", NULL };
	int key = -1;

	for (; p < end; p++) {
		size_t l = 0, kl = 0;
		const char *q;
		int k;

		if (!c_alpha((unsigned char)*p) || !left_boundary(x, p))
			continue;
		for (size_t i = 0; lead[i] && !l; i++)
			l = word_at(p, end, lead[i]);
		if (!l) {
			/* "B instead" */
			k = key_at(x, p, end, K_STRICT_UPPER, &kl);
			if (k >= 0 && word_at(skip_blank(p + kl, end), end, "instead")) {
				key = k;
				*pos = (size_t)(p - x->t);
			}
			continue;
		}
		q = skip_blank(p + l, end);
		for (int n = 0; n < 4; n++) {
			size_t sl = 0;

			for (size_t i = 0; skip[i] && !sl; i++)
				sl = word_at(q, end, skip[i]);
			if (!sl)
				break;
			q = skip_blank(q + sl, end);
		}
		while (q < end && (*q == '(' || *q == '"'))
			q++;
		k = key_at(x, q, end, K_STRICT_UPPER, &kl);
		if (k < 0) {
			/* a word key's text: "it's actually no" */
			const char *e = q;

			while (e < end && c_alpha((unsigned char)*e))
				e++;
			for (size_t i = 0; i < x->nopt && e > q; i++)
				if (!strchr(x->opt[i].norm, ' ') && strlen(x->opt[i].norm) == (size_t)(e - q) &&
				    lit_at(q, e, x->opt[i].norm) == (size_t)(e - q))
					k = (int)i;
		}
		if (k >= 0) {
			key = k;
			*pos = (size_t)(p - x->t);
		}
		p += l - 1;
	}
	return key;
}

/* After the statement at pos, a correction ("The answer is C. Wait,
 * actually ... it's B"): the key the correction settles on, or -1. */
static int self_correction(const struct ctx *x, size_t pos)
{
	static const char *const marks[] = { "wait", "actually", "on second thought",
		                             "on reflection", "correction", "i made a mistake",
		                             "i was wrong", "my mistake", "let me reconsider",
		                             "reconsidering", "scratch that", "i misspoke",
		                             "let me correct", "hmm", NULL };
	const char *end = x->t + x->n, *p = x->t + pos;
	struct ctx y;
	struct best b2;
	size_t wpos = 0;
	int k;

	/* from the end of the statement's sentence */
	while (p < end && *p != '\n' && !((*p == '.' || *p == '!' || *p == '?') &&
	                                  (p + 1 == end || c_space((unsigned char)p[1]))))
		p++;
	for (; p < end; p++) {
		size_t l = 0;

		if (!c_alpha((unsigned char)*p) || !left_boundary(x, p))
			continue;
		for (size_t i = 0; marks[i] && !l; i++)
			l = word_at(p, end, marks[i]);
		if (l)
			break;
	}
	if (p >= end)
		return -1;
	y = *x;
	y.t = p;
	y.n = (size_t)(end - p);
	memset(&b2, 0, sizeof b2);
	b2.key = -1;
	scan_struct(&y, &b2);
	scan_phrases(&y, &b2);
	scan_suffix(&y, &b2);
	k = scan_weak(&y, y.t, end, &wpos);
	if (b2.have && b2.key >= 0 && (k < 0 || b2.pos >= wpos))
		return b2.key;
	return k;
}

static int popcount32(uint32_t v)
{
	int n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

/* The extraction proper over x->t (one region: the whole reply, or what
 * follows </think>). Returns 1 when it decided, 0 for nothing found. */
static int extract(struct ctx *x, struct grade_result *out, int fallbacks)
{
	struct best b;
	const char *ls, *le, *end = x->t + x->n;
	const char *rule = NULL;
	int k = -1, any = 0, n, ambiguous = 0, nm, km = -1;
	uint32_t rejected = 0;

	memset(&b, 0, sizeof b);
	b.key = -1;
	scan_struct(x, &b);
	scan_phrases(x, &b);
	scan_suffix(x, &b);
	scan_lines(x, &b);
	if (b.have) {
		int c = b.key != KEY_NONE_OF ? self_correction(x, b.pos) : -1;

		if (c >= 0 && c != b.key)
			result_key(x, out, c, "self_correction");
		else if (b.key == KEY_NONE_OF)
			result_plain(out, GRADE_NONE, b.rule);
		else if (b.key < 0)
			result_plain(out, GRADE_AMBIGUOUS, b.rule);
		else
			result_key(x, out, b.key, b.rule);
		return 1;
	}
	if (!fallbacks)
		return 0;
	/* elimination: every option but one rejected ("A is unlikely", "C is
	 * ruled out", "the answer is not D") */
	nm = scan_mentions(x, &km, &any, &rejected);
	rejected |= b.rejected;
	if (x->nopt >= 3 && popcount32(rejected) == (int)x->nopt - 1) {
		for (size_t i = 0; i < x->nopt; i++)
			if (!(rejected & ((uint32_t)1 << i))) {
				result_key(x, out, (int)i, "elimination");
				return 1;
			}
	}
	/* the end of the reply: a key in the last clause ("..., so C.",
	 * "Therefore, yes."), else an option's text in the last sentence, the
	 * last line, or the whole of a short reply */
	le = end;
	while (le > x->t && c_space((unsigned char)le[-1]))
		le--;
	ls = le;
	while (ls > x->t && ls[-1] != '\n')
		ls--;
	{
		const char *e = le, *s;

		while (e > x->t && (e[-1] == '.' || e[-1] == '!' || c_space((unsigned char)e[-1])))
			e--;
		s = e;
		while (s > x->t && !strchr("\n.!?;,:", s[-1]))
			s--;
		if (e > s && e - s <= 32) {
			const char *ss = s;
			int k2 = -1;

			/* "It's A, B, or C.": the clause ends a list, not a sentence */
			while (ss > x->t && !strchr("\n.!?;", ss[-1]))
				ss--;
			n = scan_short(x, s, e, 1, &k);
			if (n == 1 && scan_short(x, ss, e, 1, &k2) == 1 && !hedged(x, (size_t)(e - x->t))) {
				result_key(x, out, k, "last_sentence");
				return 1;
			}
		}
	}
	/* two hypothetical answers and no resolution */
	if (popcount32(b.hedged) >= 2) {
		result_plain(out, GRADE_AMBIGUOUS, "hedged_options");
		return 1;
	}
	{
		const char *segs[4][2];
		size_t nseg = 0;
		const char *ss = le;

		while (ss > ls && !(strchr(".!?;", ss[-1]) && ss < le - 1 && ss[0] == ' '))
			ss--;
		/* the sentence before a trailing period */
		const char *cs = le;

		/* the last clause, the last sentence, the last line, a short reply */
		while (cs > ls && cs > ss && !(strchr(",;", cs[-1]) && cs[0] == ' '))
			cs--;
		if (cs > ls && cs > ss && le - cs >= 8)
			segs[nseg][0] = cs, segs[nseg++][1] = le;
		if (ss > ls)
			segs[nseg][0] = ss, segs[nseg++][1] = le;
		if (le > ls)
			segs[nseg][0] = ls, segs[nseg++][1] = le;
		if (x->n <= 400 && ls > x->t)
			segs[nseg][0] = x->t, segs[nseg++][1] = le;
		for (size_t i = 0; i < nseg && !ambiguous; i++) {
			size_t sl = (size_t)(segs[i][1] - segs[i][0]);

			k = text_match(x, segs[i][0], sl, TM_LINE, &rule);
			/* "it is not X": a rejection names no answer, but naming
			 * several options is still a sign of indecision */
			if (k >= 0 && negated_line(segs[i][0], sl))
				k = -1;
			if (k >= 0) {
				result_key(x, out, k, rule);
				return 1;
			}
			if (k == -2)
				ambiguous = 1;
		}
	}
	/* word keys: "Yes, ..." / "No." opening the reply */
	{
		const char *p = x->t;

		while (p < end && (c_space((unsigned char)*p) || *p == '#' || *p == '"'))
			p++;
		const char *w = p;

		k = key_at(x, p, end, K_VALUE, NULL);
		if (k >= 0 && !x->opt[k].letter) {
			w = p + x->opt[k].keylen;
		} else {
			/* an option whose text is one word: "No, the association..." */
			k = -1;
			while (w < end && c_alpha((unsigned char)*w))
				w++;
			for (size_t i = 0; i < x->nopt && w > p; i++) {
				const char *on = x->opt[i].norm;

				if (strlen(on) == (size_t)(w - p) && !strchr(on, ' ') &&
				    lit_at(p, w, on) == (size_t)(w - p))
					k = (int)i;
			}
		}
		if (k >= 0 && (w >= end || *w == ',' || *w == '.' || *w == '!' || *w == ':' ||
		               *w == ';' || *w == '\n' || (*w == ' ' && !x->opt[k].letter))) {
			result_key(x, out, k, "leading_word");
			return 1;
		}
	}
	if (x->n <= 80) {
		n = scan_short(x, x->t, end, 0, &k);
		if (n == 1 && !ambiguous) {
			result_key(x, out, k, "short_reply");
			return 1;
		}
		if (n > 1) {
			result_plain(out, GRADE_AMBIGUOUS, "short_reply");
			return 1;
		}
	}
	n = nm;
	k = km;
	if (n == 1 && !ambiguous) {
		result_key(x, out, k, "mention");
		return 1;
	}
	if (n == 0 && any == 0 && !ambiguous && x->n <= 400 && !negated_line(x->t, x->n)) {
		k = text_keyword(x, x->t, x->n);
		if (k >= 0) {
			result_key(x, out, k, "text_keyword");
			return 1;
		}
	}
	if (n > 1 || any > 1 || ambiguous) {
		result_plain(out, GRADE_AMBIGUOUS, n > 1 || any > 1 ? "mentions" : "text_several");
		return 1;
	}
	return 0;
}

static void ctx_free(struct ctx *x)
{
	for (size_t i = 0; i < x->nopt; i++)
		free(x->opt[i].norm);
	x->nopt = 0;
}

static int ctx_options(struct ctx *x, json_t *options)
{
	const char *key;
	json_t *val;

	if (!json_is_object(options) || json_object_size(options) == 0 ||
	    json_object_size(options) > GRADE_OPTIONS_MAX)
		return -EINVAL;
	json_object_foreach(options, key, val) {
		struct opt *o = &x->opt[x->nopt];
		const char *txt = json_string_value(val);

		if (!txt || !key[0])
			return -EINVAL;
		o->key = key;
		o->keylen = strlen(key);
		o->letter = o->keylen == 1 && c_alpha((unsigned char)key[0]);
		o->norm = norm_text(txt, json_string_length(val), 1);
		if (!o->norm)
			return -ENOMEM;
		x->nopt++;
		{
			char *kn = norm_text(key, o->keylen, 1);

			if (!kn)
				return -ENOMEM;
			o->keytext = strcmp(kn, o->norm) == 0;
			free(kn);
		}
		{
			/* initials of a text of 2..6 words */
			size_t na = 0, words = 0;
			const char *w = o->norm;

			while (*w) {
				while (*w == ' ')
					w++;
				if (!*w)
					break;
				words++;
				if (na < sizeof o->acro - 1 && c_alnum((unsigned char)*w))
					o->acro[na++] = *w;
				while (*w && *w != ' ')
					w++;
			}
			o->acro[words >= 2 && words <= 6 && na == words ? na : 0] = '\0';
		}
	}
	return 0;
}

/* An option marker at p: "(C)", "C)", "C.", "C:" followed by a space, for
 * a letter key. Returns the key and sets *after past the marker, or -1. */
static int list_marker(const struct ctx *x, const char *p, const char *end, const char **after)
{
	const char *q = p;
	size_t l = 0;
	int k, paren = 0;

	if (q < end && (*q == '(' || *q == '[')) {
		q++;
		paren = 1;
	}
	k = key_at(x, q, end, K_STRICT_UPPER, &l);
	if (k < 0 || !x->opt[k].letter)
		return -1;
	q += l;
	if (q >= end || !(*q == ')' || *q == ']' || (!paren && (*q == '.' || *q == ':'))))
		return -1;
	q++;
	if (q >= end || *q != ' ')
		return -1;
	*after = q + 1;
	return k;
}

/* Blanks out option lists the reply echoes ("A) yes\nB) no\nC) maybe",
 * "(A) yes (B) no (C) maybe", "A) yes / B) no"): two or more items in a
 * row, each a marker and exactly that option's text, name no answer. */
static void mask_option_lists(const struct ctx *x, char *t, size_t n)
{
	const char *end = t + n;
	char *p = t;

	while (p < end) {
		char *start = NULL, *last = NULL, *q = p;
		uint32_t seen = 0;
		int items = 0;

		/* a marker must open a line or follow a space, '/' or ',' */
		if (!(p == t || p[-1] == '\n' || p[-1] == ' ' || p[-1] == '/' || p[-1] == ',' ||
		      p[-1] == '-')) {
			p++;
			continue;
		}
		for (;;) {
			const char *after = NULL, *te, *eol;
			int k = list_marker(x, q, end, &after);
			char *nt;
			int same;

			if (k < 0 || (seen & ((uint32_t)1 << k)))
				break;
			eol = memchr(after, '\n', (size_t)(end - after));
			if (!eol)
				eol = end;
			/* the item's text runs to the next marker or the line's end */
			for (te = after; te < eol; te++) {
				const char *a2;

				if ((te[-1] == ' ' || te[-1] == '/') && list_marker(x, te, eol, &a2) >= 0)
					break;
			}
			nt = norm_text(after, (size_t)(te - after), 1);
			same = nt && x->opt[k].norm[0] && strcmp(nt, x->opt[k].norm) == 0;
			free(nt);
			if (!same)
				break;
			if (!start)
				start = q;
			last = (char *)te;
			seen |= (uint32_t)1 << k;
			items++;
			q = (char *)te;
			while (q < end && (c_space((unsigned char)*q) || *q == '/' || *q == ',' ||
			                   *q == '-' || *q == '|'))
				q++;
		}
		if (items >= 2) {
			memset(start, ' ', (size_t)(last - start));
			p = last;
		} else {
			p++;
		}
	}
}

/* The reply was cut in its reasoning: a "<think>" after the last
 * "</think>". */
static int think_open(const char *text)
{
	const char *o = NULL, *c = NULL;

	for (const char *p = strstr(text, "<think>"); p; p = strstr(p + 1, "<think>"))
		o = p;
	for (const char *p = strstr(text, "</think>"); p; p = strstr(p + 1, "</think>"))
		c = p;
	return o && (!c || c < o);
}

int grade_extract_choice_opts(const char *reply, json_t *options, const struct grade_opts *opts,
                              struct grade_result *out)
{
	struct ctx x;
	char *text = NULL;
	size_t n, len = 0;
	const char *think;
	int rc, cut = opts && opts->truncated;

	memset(&x, 0, sizeof x);
	if (!reply || !options || !out)
		return -EINVAL;
	result_plain(out, GRADE_NONE, "no_answer");
	n = strlen(reply);
	if (n > GRADE_REPLY_MAX)
		return -E2BIG;
	rc = ctx_options(&x, options);
	if (rc)
		goto out;
	text = prep_text(reply, n, &len);
	if (!text) {
		rc = -ENOMEM;
		goto out;
	}
	/* cut off while still thinking: whatever it was weighing is no answer */
	if (think_open(text)) {
		result_plain(out, GRADE_NONE, "unfinished_think");
		goto out;
	}
	x.t = text;
	x.n = len;
	mask_option_lists(&x, text, len);
	/* after a reasoning block, the answer lives in what follows it */
	think = NULL;
	for (const char *p = strstr(text, "</think>"); p; p = strstr(p + 1, "</think>"))
		think = p;
	if (think) {
		x.t = think + 8;
		x.n = len - (size_t)(x.t - text);
		if (extract(&x, out, !cut))
			goto out;
		if (cut) {
			result_plain(out, GRADE_NONE, "truncated");
			goto out;
		}
	}
	x.t = text;
	x.n = len;
	/* a reply cut by the token limit: only a statement counts, never what
	 * the fallbacks would read into the text being written at the cut */
	if (!extract(&x, out, !cut))
		result_plain(out, GRADE_NONE, cut ? "truncated" : "no_answer");
out:
	ctx_free(&x);
	free(text);
	return rc;
}

int grade_extract_choice(const char *reply, json_t *options, struct grade_result *out)
{
	return grade_extract_choice_opts(reply, options, NULL, out);
}

/* ---- Open-ended -------------------------------------------------------- */

/* The text after the last final-answer marker, up to the end of its line;
 * NULL when the reply has none. */
static const char *open_marker(const char *t, size_t n, size_t *len)
{
	static const char *const markers[] = { "最终答案", "正确答案", "答案", "final answer",
		                               "correct answer", "answer", NULL };
	const char *end = t + n, *found = NULL, *v;
	int fin_seen = 0;

	for (const char *p = t; p < end; p++) {
		for (size_t i = 0; markers[i]; i++) {
			size_t l = lit_at(p, end, markers[i]);
			const char *q;

			if (!l)
				continue;
			if (c_alpha((unsigned char)markers[i][0]) && p > t && c_alpha((unsigned char)p[-1]))
				break;
			q = p + l;
			if (c_alpha((unsigned char)markers[i][0]) && q < end && c_alpha((unsigned char)*q))
				break;
			while (q < end && (*q == ' ' || *q == '\t'))
				q++;
			if (q < end && (*q == ':' || *q == '=' || lit_at(q, end, "是") || lit_at(q, end, "为") ||
			                word_at(q, end, "is"))) {
				int fin = i < 2 || i == 3;

				/* a later plain "answer" does not override a final answer */
				if (!fin_seen || fin) {
					found = q;
					fin_seen |= fin;
				}
			}
			p += l - 1;
			break;
		}
	}
	if (!found)
		return NULL;
	v = found;
	if (*v == ':' || *v == '=')
		v++;
	else if (lit_at(v, end, "是") || lit_at(v, end, "为"))
		v += 3;
	else
		v += 2;
	while (v < end && (*v == ' ' || *v == ':' || *v == '\t'))
		v++;
	{
		const char *e = memchr(v, '\n', (size_t)(end - v));

		if (!e)
			e = end;
		*len = (size_t)(e - v);
	}
	return v;
}

static size_t cp_count(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* "not X", "不是X": a containment that reads as a rejection */
static int negated_line(const char *s, size_t n)
{
	static const char *const neg[] = { "not", "isn't", "no", "rather than", "instead of",
		                           "unlikely", "excluded", NULL };
	static const char *const cjk[] = { "不是", "并非", "而非", "排除", "不考虑", NULL };
	const char *end = s + n;

	for (const char *p = s; p < end; p++) {
		for (size_t i = 0; neg[i]; i++)
			if ((p == s || !c_alpha((unsigned char)p[-1])) && word_at(p, end, neg[i]))
				return 1;
		for (size_t i = 0; cjk[i]; i++)
			if (lit_at(p, end, cjk[i]))
				return 1;
	}
	return 0;
}

static int open_grade(const char *reply, const char *gold, int cut, struct grade_result *out)
{
	char *text = NULL, *ng = NULL, *na = NULL, *nl = NULL;
	const char *ans, *ls, *le;
	size_t n, len = 0, alen = 0;
	int rc = 0, marker;

	if (!reply || !gold || !out)
		return -EINVAL;
	result_plain(out, GRADE_NONE, "empty");
	n = strlen(reply);
	if (n > GRADE_REPLY_MAX || strlen(gold) > GRADE_REPLY_MAX)
		return -E2BIG;
	text = prep_text(reply, n, &len);
	ng = grade_normalize(gold);
	if (!text || !ng) {
		rc = -ENOMEM;
		goto out;
	}
	ans = text;
	{
		/* after a reasoning block, the answer lives in what follows it */
		const char *th = NULL;

		for (const char *p = strstr(text, "</think>"); p; p = strstr(p + 1, "</think>"))
			th = p;
		if (th && th[8])
			ans = th + 8;
	}
	len -= (size_t)(ans - text);
	if (think_open(text)) {
		result_plain(out, GRADE_NONE, "unfinished_think");
		goto out;
	}
	{
		const char *m = open_marker(ans, len, &alen);

		marker = m != NULL;
		if (!m && cut) {
			result_plain(out, GRADE_NONE, "truncated");
			goto out;
		}
		if (m)
			ans = m;
		else
			alen = len;
	}
	while (alen && c_space((unsigned char)*ans)) {
		ans++;
		alen--;
	}
	while (alen && c_space((unsigned char)ans[alen - 1]))
		alen--;
	if (!alen) {
		result_plain(out, GRADE_NONE, "empty");
		goto out;
	}
	set_answer(out, ans, alen);
	na = norm_text(ans, alen, 0);
	if (!na) {
		rc = -ENOMEM;
		goto out;
	}
	if (ng[0] && strcmp(na, ng) == 0) {
		out->verdict = GRADE_CORRECT;
		out->rule = marker ? "final_answer_exact" : "exact";
		goto out;
	}
	/* containment in the final-answer line (the marked line, else the last
	 * line of the reply) */
	if (marker) {
		ls = ans;
		le = ans + alen;
	} else {
		le = ans + alen;
		ls = le;
		while (ls > ans && ls[-1] != '\n')
			ls--;
	}
	nl = norm_text(ls, (size_t)(le - ls), 0);
	if (!nl) {
		rc = -ENOMEM;
		goto out;
	}
	{
		size_t gcp = cp_count(ng);
		int cjk = (unsigned char)ng[0] >= 0x80;

		if (ng[0] && (cjk ? gcp >= 2 : gcp >= 3) && strstr(nl, ng) &&
		    !negated_line(ls, (size_t)(le - ls)) &&
		    /* a long final line naming the gold among other things is a
		     * judge's call */
		    cp_count(nl) <= gcp * 4 + 24) {
			out->verdict = GRADE_CORRECT;
			out->rule = marker ? "final_answer_contains" : "last_line_contains";
			goto out;
		}
	}
	out->verdict = GRADE_NEEDS_JUDGE;
	out->rule = "no_match";
out:
	free(text);
	free(ng);
	free(na);
	free(nl);
	return rc;
}

int grade_open(const char *reply, const char *gold, struct grade_result *out)
{
	return open_grade(reply, gold, 0, out);
}

int grade_item_opts(json_t *item, const char *reply, const struct grade_opts *opts,
                    struct grade_result *out)
{
	json_t *options;
	const char *gold;
	int rc;

	if (!json_is_object(item) || !reply || !out)
		return -EINVAL;
	gold = json_string_value(json_object_get(item, "answer"));
	if (!gold || !json_is_string(json_object_get(item, "question")))
		return -EINVAL;
	options = json_object_get(item, "options");
	if (!options || json_is_null(options))
		return open_grade(reply, gold, opts && opts->truncated, out);
	rc = grade_extract_choice_opts(reply, options, opts, out);
	if (rc)
		return rc;
	if (out->verdict == GRADE_FOUND)
		out->verdict = strcmp(out->answer, gold) == 0 ? GRADE_CORRECT : GRADE_WRONG;
	return 0;
}

int grade_item(json_t *item, const char *reply, struct grade_result *out)
{
	return grade_item_opts(item, reply, NULL, out);
}

const char *grade_verdict_name(enum grade_verdict v)
{
	switch (v) {
	case GRADE_NONE: return "none";
	case GRADE_FOUND: return "found";
	case GRADE_AMBIGUOUS: return "ambiguous";
	case GRADE_CORRECT: return "correct";
	case GRADE_WRONG: return "wrong";
	case GRADE_NEEDS_JUDGE: return "needs_judge";
	}
	return "none";
}
