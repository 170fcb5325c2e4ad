/* A one-pass JSON reader into jansson values for well-formed documents;
 * anything else is left to json_loadb (jansson 2.14's load.c rules: only
 * " \t\n\r" as space, no control characters or invalid UTF-8 in strings,
 * surrogate pairs in \u escapes, integers in json_int_t, reals by strtod). */
#include "common/jsonload.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

/* Deeper documents are read by jansson (its limit is 2048). */
#define FAST_MAX_DEPTH 64
/* Longest number text read here. */
#define NUM_MAX 64

/* The scratch for decoded strings starts on the stack: a reply's text with
 * escapes (newlines, quotes) grew a heap one from 256 bytes, in 2-4 reallocs
 * a call, and large ones each cost malloc a consolidation pass. */
#define SCRATCH_STACK 4096


static void skip_ws(struct jsonload_rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
		r->p++;
}

/* The UTF-8 sequence at s (lead byte >= 0x80): its length, 0 when invalid. */
static inline size_t utf8_seq(const unsigned char *s, size_t left)
{
	return utf8_seq_len((const char *)s, left);
}

static int hex4(const unsigned char *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static bool scratch_put(struct jsonload_rd *r, size_t *n, const void *s, size_t len)
{
	if (len == 0)
		return true;
	if (*n + len > r->scap) {
		size_t cap = r->scap ? r->scap : 256;
		char *q;

		while (cap < *n + len)
			cap *= 2;
		if (r->scratch == r->stack) {
			q = malloc(cap);
			if (q && *n)
				memcpy(q, r->scratch, *n);
		} else {
			q = realloc(r->scratch, cap);
		}
		if (!q)
			return false;
		r->scratch = q;
		r->scap = cap;
	}
	memcpy(r->scratch + *n, s, len);
	*n += len;
	return true;
}

/* Reads a string at r->p (on the opening quote). The text (s, len) is either
 * in the input (no escapes; *escaped false) or in r->scratch. false: leave
 * it to jansson. */
static bool read_string(struct jsonload_rd *r, const char **s, size_t *len, bool *escaped)
{
	const unsigned char *p = r->p + 1, *run = p;
	size_t n = 0;
	bool esc = false;

	while (p < r->end) {
		unsigned char c;

		p = utf8_json_skip_plain(p, r->end);
		if (p >= r->end)
			break;
		c = *p;
		if (c == '"')
			break;
		if (c < 0x20)
			return false;
		if (c >= 0x80) {
			size_t k;

			/* three bytes (CJK text) without the call */
			if ((c & 0xF0) == 0xE0 && r->end - p >= 3 && (p[1] & 0xC0) == 0x80 &&
			    (p[2] & 0xC0) == 0x80) {
				uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) |
					      (uint32_t)(p[2] & 0x3F);

				if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
					p += 3;
					continue;
				}
			}
			k = utf8_seq(p, (size_t)(r->end - p));

			if (!k)
				return false;
			p += k;
			continue;
		}
		if (c != '\\') {
			p++;
			continue;
		}
		/* an escape: what came before it goes to the scratch text */
		if (!scratch_put(r, &n, run, (size_t)(p - run)))
			return false;
		esc = true;
		if (p + 1 >= r->end)
			return false;
		c = p[1];
		if (c == 'u') {
			uint32_t cp, lo;
			unsigned char u[4];
			size_t ul;

			if (r->end - p < 6 || hex4(p + 2, &cp))
				return false;
			p += 6;
			if (cp == 0)
				return false; /* \u0000: jansson's error without JSON_ALLOW_NUL */
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (r->end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) ||
				    lo < 0xDC00 || lo > 0xDFFF)
					return false;
				p += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				return false;
			}
			if (cp < 0x80) {
				u[0] = (unsigned char)cp;
				ul = 1;
			} else if (cp < 0x800) {
				u[0] = (unsigned char)(0xC0 | (cp >> 6));
				u[1] = (unsigned char)(0x80 | (cp & 0x3F));
				ul = 2;
			} else if (cp < 0x10000) {
				u[0] = (unsigned char)(0xE0 | (cp >> 12));
				u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
				u[2] = (unsigned char)(0x80 | (cp & 0x3F));
				ul = 3;
			} else {
				u[0] = (unsigned char)(0xF0 | (cp >> 18));
				u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
				u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
				u[3] = (unsigned char)(0x80 | (cp & 0x3F));
				ul = 4;
			}
			if (!scratch_put(r, &n, u, ul))
				return false;
		} else {
			char o;

			switch (c) {
			case '"': o = '"'; break;
			case '\\': o = '\\'; break;
			case '/': o = '/'; break;
			case 'b': o = '\b'; break;
			case 'f': o = '\f'; break;
			case 'n': o = '\n'; break;
			case 'r': o = '\r'; break;
			case 't': o = '\t'; break;
			default: return false;
			}
			if (!scratch_put(r, &n, &o, 1))
				return false;
			p += 2;
		}
		run = p;
	}
	if (p >= r->end)
		return false;
	if (esc) {
		if (!scratch_put(r, &n, run, (size_t)(p - run)))
			return false;
		*s = r->scratch ? r->scratch : "";
		*len = n;
	} else {
		*s = (const char *)(r->p + 1);
		*len = (size_t)(p - (r->p + 1));
	}
	*escaped = esc;
	r->p = p + 1;
	return true;
}

/* Reads a number at r->p into *iv (*real false) or *dv (*real true).
 * false: not a number, or one left to jansson (too long, out of range). */
static bool scan_number(struct jsonload_rd *r, bool *real_out, json_int_t *iv, double *dv)
{
	const unsigned char *p = r->p, *start = p;
	bool real = false, neg = false;
	char num[NUM_MAX + 1];
	size_t n;

	if (p < r->end && *p == '-') {
		neg = true;
		p++;
	}
	if (p >= r->end)
		return false;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < r->end && *p >= '0' && *p <= '9')
			p++;
	} else {
		return false;
	}
	if (p < r->end && *p == '.') {
		real = true;
		p++;
		if (p >= r->end || *p < '0' || *p > '9')
			return false;
		while (p < r->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < r->end && (*p == 'e' || *p == 'E')) {
		real = true;
		p++;
		if (p < r->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= r->end || *p < '0' || *p > '9')
			return false;
		while (p < r->end && *p >= '0' && *p <= '9')
			p++;
	}
	n = (size_t)(p - start);
	if (n > NUM_MAX)
		return false;
	r->p = p;
	*real_out = real;
	if (!real) {
		/* in unsigned arithmetic, out of range left to jansson */
		unsigned long long v = 0, lim = neg ? (unsigned long long)INT64_MAX + 1 : INT64_MAX;

		for (const unsigned char *d = start + neg; d < p; d++) {
			unsigned dig = (unsigned)(*d - '0');

			if (v > (lim - dig) / 10)
				return false;
			v = v * 10 + dig;
		}
		if (sizeof(json_int_t) < sizeof(long long) && v > (unsigned long long)INT32_MAX)
			return false;
		*iv = neg ? (json_int_t)(0 - v) : (json_int_t)v;
		return true;
	}
	memcpy(num, start, n);
	num[n] = '\0';
	{
		double d;

		errno = 0;
		d = strtod(num, NULL);
		if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE)
			return false;
		*dv = d;
		return true;
	}
}

static json_t *read_number(struct jsonload_rd *r)
{
	bool real;
	json_int_t iv = 0;
	double dv = 0;

	if (!scan_number(r, &real, &iv, &dv))
		return NULL;
	return real ? json_real(dv) : json_integer(iv);
}

static json_t *read_value(struct jsonload_rd *r, int depth);

static json_t *read_object(struct jsonload_rd *r, int depth)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return o;
	}
	for (;;) {
		const char *k;
		size_t kl;
		json_t *v;
		char stack[128], *key = stack;
		bool esc;

		if (r->p >= r->end || *r->p != '"' || !read_string(r, &k, &kl, &esc))
			goto fail;
		/* the key's text may be in the scratch, which the value reuses */
		if (kl >= sizeof(stack)) {
			key = malloc(kl + 1);
			if (!key)
				goto fail;
		}
		memcpy(key, k, kl);
		key[kl] = '\0';
		skip_ws(r);
		if (r->p >= r->end || *r->p != ':' ||
		    ((r->flags & JSON_REJECT_DUPLICATES) && json_object_getn(o, key, kl))) {
			if (key != stack)
				free(key);
			goto fail;
		}
		r->p++;
		skip_ws(r);
		v = read_value(r, depth + 1);
		if (!v || json_object_setn_new_nocheck(o, key, kl, v)) {
			if (key != stack)
				free(key);
			goto fail;
		}
		if (key != stack)
			free(key);
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			skip_ws(r);
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return o;
		}
		goto fail;
	}
fail:
	json_decref(o);
	return NULL;
}

static json_t *read_array(struct jsonload_rd *r, int depth)
{
	json_t *a = json_array();

	if (!a)
		return NULL;
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return a;
	}
	for (;;) {
		json_t *v = read_value(r, depth + 1);

		if (!v || json_array_append_new(a, v))
			goto fail;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			skip_ws(r);
			continue;
		}
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return a;
		}
		goto fail;
	}
fail:
	json_decref(a);
	return NULL;
}

static bool word(struct jsonload_rd *r, const char *w, size_t n)
{
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
		return false;
	r->p += n;
	return true;
}

static json_t *read_value(struct jsonload_rd *r, int depth)
{
	const char *s;
	size_t len;
	bool esc;

	if (r->p >= r->end || depth > FAST_MAX_DEPTH)
		return NULL;
	switch (*r->p) {
	case '{':
		return read_object(r, depth);
	case '[':
		return read_array(r, depth);
	case '"':
		return read_string(r, &s, &len, &esc) ? json_stringn_nocheck(s, len) : NULL;
	case 't':
		return word(r, "true", 4) ? json_true() : NULL;
	case 'f':
		return word(r, "false", 5) ? json_false() : NULL;
	case 'n':
		return word(r, "null", 4) ? json_null() : NULL;
	default:
		return read_number(r);
	}
}

json_t *jsonload_buf(const char *buf, size_t len, size_t flags, json_error_t *err)
{
	char stack[SCRATCH_STACK];
	struct jsonload_rd r = { .scratch = stack, .scap = sizeof(stack), .stack = stack };
	json_t *v = NULL;

	if (buf && !(flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY))) {
		r.p = (const unsigned char *)buf;
		r.end = r.p + len;
		r.flags = flags;
		skip_ws(&r);
		if (r.p < r.end && ((flags & JSON_DECODE_ANY) || *r.p == '{' || *r.p == '['))
			v = read_value(&r, 1);
		skip_ws(&r);
		if (v && r.p != r.end) {
			json_decref(v);
			v = NULL;
		}
		if (r.scratch != stack)
			free(r.scratch);
	}
	if (v) {
		if (err)
			memset(err, 0, sizeof(*err));
		return v;
	}
	return json_loadb(buf, len, flags, err);
}

/* ---- the pull reader ------------------------------------------------------ */

/* What the next token may be. */
enum { W_VALUE, W_VALUE_OR_CLOSE, W_KEY, W_KEY_OR_CLOSE, W_AFTER, W_DONE, W_STOP };

void jsonpull_init(struct jsonpull *j, const char *buf, size_t len)
{
	j->s = NULL;
	j->len = 0;
	j->i = 0;
	j->d = 0;
	j->rd.p = (const unsigned char *)(buf ? buf : "");
	j->rd.end = j->rd.p + (buf ? len : 0);
	j->rd.flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
	j->rd.scratch = j->scratch;
	j->rd.scap = sizeof(j->scratch);
	j->rd.stack = j->scratch;
	j->depth = 0;
	j->want = W_VALUE;
	j->nkeys = 0;
}

void jsonpull_done(struct jsonpull *j)
{
	if (!j)
		return;
	if (j->rd.scratch != j->rd.stack)
		free(j->rd.scratch);
	j->rd.scratch = j->rd.stack;
	j->rd.scap = sizeof(j->scratch);
	j->want = W_STOP;
}

static enum jsonpull_tok pull_stop(struct jsonpull *j)
{
	j->want = W_STOP;
	return JSONPULL_STOP;
}

static enum jsonpull_tok pull_open(struct jsonpull *j, unsigned char c)
{
	if (j->depth >= JSONPULL_DEPTH)
		return pull_stop(j);
	j->open[j->depth] = c;
	j->kbase[j->depth] = j->nkeys;
	j->depth++;
	j->rd.p++;
	j->want = c == '{' ? W_KEY_OR_CLOSE : W_VALUE_OR_CLOSE;
	return c == '{' ? JSONPULL_OBJ : JSONPULL_ARR;
}

static enum jsonpull_tok pull_close(struct jsonpull *j)
{
	unsigned char c = j->open[--j->depth];

	j->nkeys = j->kbase[j->depth];
	j->rd.p++;
	j->want = j->depth ? W_AFTER : W_DONE;
	return c == '{' ? JSONPULL_OBJ_END : JSONPULL_ARR_END;
}

/* A value at rd.p; a scalar leaves the reader after it. */
static enum jsonpull_tok pull_value(struct jsonpull *j)
{
	struct jsonload_rd *r = &j->rd;
	enum jsonpull_tok t;
	bool esc, real;

	if (r->p >= r->end)
		return pull_stop(j);
	switch (*r->p) {
	case '{':
	case '[':
		return pull_open(j, *r->p);
	case '"':
		if (!read_string(r, &j->s, &j->len, &esc))
			return pull_stop(j);
		t = JSONPULL_STR;
		break;
	case 't':
		if (!word(r, "true", 4))
			return pull_stop(j);
		t = JSONPULL_TRUE;
		break;
	case 'f':
		if (!word(r, "false", 5))
			return pull_stop(j);
		t = JSONPULL_FALSE;
		break;
	case 'n':
		if (!word(r, "null", 4))
			return pull_stop(j);
		t = JSONPULL_NULL;
		break;
	default:
		if (!scan_number(r, &real, &j->i, &j->d))
			return pull_stop(j);
		t = real ? JSONPULL_REAL : JSONPULL_INT;
		break;
	}
	j->want = j->depth ? W_AFTER : W_DONE;
	return t;
}

/* A key at rd.p and its ':'; a repeated key of the same object stops (the
 * tree reader's JSON_REJECT_DUPLICATES). Keys with escapes are left to the
 * tree: their text is in the scratch, which the next string reuses. */
static enum jsonpull_tok pull_key(struct jsonpull *j)
{
	struct jsonload_rd *r = &j->rd;
	bool esc;

	if (r->p >= r->end || *r->p != '"' || !read_string(r, &j->s, &j->len, &esc) || esc ||
	    j->nkeys >= JSONPULL_KEYS)
		return pull_stop(j);
	for (unsigned k = j->kbase[j->depth - 1]; k < j->nkeys; k++)
		if (j->kl[k] == j->len && memcmp(j->kp[k], j->s, j->len) == 0)
			return pull_stop(j);
	j->kp[j->nkeys] = j->s;
	j->kl[j->nkeys] = j->len;
	j->nkeys++;
	skip_ws(r);
	if (r->p >= r->end || *r->p != ':')
		return pull_stop(j);
	r->p++;
	j->want = W_VALUE;
	return JSONPULL_KEY;
}

enum jsonpull_tok jsonpull_next(struct jsonpull *j)
{
	struct jsonload_rd *r = &j->rd;

	skip_ws(r);
	switch (j->want) {
	case W_VALUE_OR_CLOSE:
		if (r->p < r->end && *r->p == ']')
			return pull_close(j);
		/* fall through */
	case W_VALUE:
		return pull_value(j);
	case W_KEY_OR_CLOSE:
		if (r->p < r->end && *r->p == '}')
			return pull_close(j);
		/* fall through */
	case W_KEY:
		return pull_key(j);
	case W_AFTER:
		if (r->p >= r->end)
			return pull_stop(j);
		if (*r->p == ',') {
			r->p++;
			skip_ws(r);
			if (j->open[j->depth - 1] == '{')
				return pull_key(j);
			return pull_value(j);
		}
		if (*r->p == (j->open[j->depth - 1] == '{' ? '}' : ']'))
			return pull_close(j);
		return pull_stop(j);
	case W_DONE:
		if (r->p != r->end)
			return pull_stop(j);
		return JSONPULL_END;
	default:
		return JSONPULL_STOP;
	}
}

bool jsonpull_skip(struct jsonpull *j, enum jsonpull_tok t)
{
	int depth = 0;

	for (;;) {
		switch (t) {
		case JSONPULL_OBJ:
		case JSONPULL_ARR:
			depth++;
			break;
		case JSONPULL_OBJ_END:
		case JSONPULL_ARR_END:
			depth--;
			break;
		case JSONPULL_STOP:
		case JSONPULL_END:
			return false;
		default:
			break;
		}
		if (depth <= 0)
			return true;
		t = jsonpull_next(j);
	}
}
