/* json_dumps(JSON_COMPACT | JSON_SORT_KEYS), and json_dumpb(JSON_COMPACT |
 * JSON_ENCODE_ANY) with keys in insertion order, byte for byte (jansson 2.14's
 * dump.c: the same escapes, "\u%04X" upper-case for the other control
 * characters, raw UTF-8 above 0x7F, '/' not escaped, keys ordered by their
 * bytes then their length, reals as jansson prints them). */
#include "common/jsondump.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

/* jsondump_sorted writes on the stack first and allocates the text once at
 * its size (a body grew a heap buffer from 1 KiB in 2-3 reallocs). */
#define OUT_STACK 8192

struct out {
	char *p;
	char *stack; /* p's first memory, not the heap's (jsondump_sorted) */
	size_t len, cap;
	bool fail, nomem;
	bool insertion; /* keys in insertion order (jansson without JSON_SORT_KEYS) */
};

static bool reserve(struct out *o, size_t n)
{
	size_t cap;
	char *p;

	if (o->fail)
		return false;
	if (o->len + n + 1 <= o->cap)
		return true;
	cap = o->cap ? o->cap : 1024;
	while (cap < o->len + n + 1)
		cap *= 2;
	if (o->stack && o->p == o->stack) {
		p = malloc(cap);
		if (p)
			memcpy(p, o->p, o->len);
	} else {
		p = realloc(o->p, cap);
	}
	if (!p) {
		o->fail = o->nomem = true;
		return false;
	}
	o->p = p;
	o->cap = cap;
	return true;
}

static void put(struct out *o, const char *s, size_t n)
{
	if (!reserve(o, n))
		return;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void putc1(struct out *o, char c)
{
	if (!reserve(o, 1))
		return;
	o->p[o->len++] = c;
}

/* The UTF-8 sequence at s (lead byte >= 0x80): its length, 0 when invalid. */
static inline size_t utf8_seq(const unsigned char *s, size_t left)
{
	return utf8_seq_len((const char *)s, left);
}

static void put_string(struct out *o, const char *str, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)str, *run = s, *end = s + len;

	putc1(o, '"');
	while (s < end) {
		unsigned char c;
		char e[6];
		size_t elen = 2;

		s = utf8_json_skip_plain(s, end);
		if (s == end)
			break;
		c = *s;
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			s++;
			continue;
		}
		if (c >= 0x80) {
			size_t n = utf8_seq(s, (size_t)(end - s));

			if (!n) {
				o->fail = true;
				return;
			}
			s += n;
			continue;
		}
		put(o, (const char *)run, (size_t)(s - run));
		e[0] = '\\';
		switch (c) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default:
			e[1] = 'u';
			e[2] = e[3] = '0';
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			elen = 6;
			break;
		}
		put(o, e, elen);
		run = ++s;
	}
	put(o, (const char *)run, (size_t)(s - run));
	putc1(o, '"');
}

static void put_int(struct out *o, json_int_t v)
{
	char b[24], *p = b + sizeof(b);
	/* in unsigned arithmetic: the most negative value has no positive */
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	put(o, p, (size_t)(b + sizeof(b) - p));
}

/* A body holds one real or two (temperature): a whole number below 1e15 is
 * what jansson's "%.17g" makes of it plus ".0"; any other value jansson
 * prints itself. */
static void put_real(struct out *o, const json_t *v)
{
	double d = json_real_value(v);
	char *s;

	if (d == 0) {
		if (signbit(d))
			put(o, "-0.0", 4);
		else
			put(o, "0.0", 3);
		return;
	}
	if (d == floor(d) && fabs(d) < 1e15) {
		put_int(o, (json_int_t)d);
		put(o, ".0", 2);
		return;
	}
	s = json_dumps(v, JSON_ENCODE_ANY);

	if (!s) {
		o->fail = o->nomem = true;
		return;
	}
	put(o, s, strlen(s));
	free(s);
}

struct key {
	const char *s;
	size_t len;
	json_t *v;
};

static int key_cmp(const struct key *a, const struct key *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int r = memcmp(a->s, b->s, n);

	if (r)
		return r;
	return a->len < b->len ? -1 : a->len > b->len;
}

static void put_value(struct out *o, const json_t *v, int depth);

static void put_object(struct out *o, const json_t *v, int depth)
{
	struct key stack[16], *keys = stack;
	size_t n = json_object_size(v), i = 0, j;
	void *it;

	if (n > sizeof(stack) / sizeof(stack[0])) {
		keys = malloc(n * sizeof(*keys));
		if (!keys) {
			o->fail = o->nomem = true;
			return;
		}
	}
	for (it = json_object_iter((json_t *)v); it && i < n; it = json_object_iter_next((json_t *)v, it)) {
		struct key k = { json_object_iter_key(it), json_object_iter_key_len(it),
				 json_object_iter_value(it) };

		/* insertion sort: bodies have a handful of keys per object */
		for (j = i; j > 0 && !o->insertion && key_cmp(&keys[j - 1], &k) > 0; j--)
			keys[j] = keys[j - 1];
		keys[j] = k;
		i++;
	}
	putc1(o, '{');
	for (j = 0; j < i && !o->fail; j++) {
		if (j)
			putc1(o, ',');
		put_string(o, keys[j].s, keys[j].len);
		putc1(o, ':');
		put_value(o, keys[j].v, depth + 1);
	}
	putc1(o, '}');
	if (keys != stack)
		free(keys);
}

static void put_value(struct out *o, const json_t *v, int depth)
{
	size_t i, n;

	if (o->fail)
		return;
	if (!v || depth > JSONDUMP_MAX_DEPTH) {
		o->fail = true;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_NULL:
		put(o, "null", 4);
		break;
	case JSON_TRUE:
		put(o, "true", 4);
		break;
	case JSON_FALSE:
		put(o, "false", 5);
		break;
	case JSON_INTEGER:
		put_int(o, json_integer_value(v));
		break;
	case JSON_REAL:
		put_real(o, v);
		break;
	case JSON_STRING:
		put_string(o, json_string_value(v), json_string_length(v));
		break;
	case JSON_ARRAY:
		n = json_array_size(v);
		putc1(o, '[');
		for (i = 0; i < n && !o->fail; i++) {
			if (i)
				putc1(o, ',');
			put_value(o, json_array_get(v, i), depth + 1);
		}
		putc1(o, ']');
		break;
	case JSON_OBJECT:
		put_object(o, v, depth);
		break;
	default:
		o->fail = true;
	}
}

char *jsondump_sorted(const json_t *v, size_t *len)
{
	char stack[OUT_STACK];
	struct out o = { .p = stack, .stack = stack, .cap = sizeof(stack) };
	char *text;

	if (!json_is_object(v) && !json_is_array(v))
		return NULL;
	put_value(&o, v, 0);
	if (!o.fail && !reserve(&o, 0))
		o.fail = true;
	if (o.fail) {
		if (o.p != stack)
			free(o.p);
		return NULL;
	}
	o.p[o.len] = '\0';
	if (o.p != stack) {
		text = o.p;
	} else {
		text = malloc(o.len + 1);
		if (!text)
			return NULL;
		memcpy(text, stack, o.len + 1);
	}
	if (len)
		*len = o.len;
	return text;
}

int jsondump_compact_into(const json_t *v, char **buf, size_t *cap, size_t *len)
{
	struct out o = { .p = *buf, .cap = *buf ? *cap : 0, .insertion = true };

	put_value(&o, v, 0);
	if (!o.fail)
		reserve(&o, 0);
	/* the buffer may have grown, even when the dump failed */
	*buf = o.p;
	*cap = o.cap;
	if (o.fail)
		return o.nomem ? -ENOMEM : -EINVAL;
	o.p[o.len] = '\0';
	*len = o.len;
	return 0;
}

/* ---- pieces appended to the caller's buffer ------------------------------ */

static struct out out_resume(char **buf, size_t *cap, size_t *len)
{
	struct out o = { .p = *buf, .cap = *buf ? *cap : 0, .len = *buf ? *len : 0 };

	return o;
}

static int out_finish(struct out *o, char **buf, size_t *cap, size_t *len)
{
	if (!o->fail)
		reserve(o, 0);
	*buf = o->p;
	*cap = o->cap;
	if (o->fail)
		return o->nomem ? -ENOMEM : -EINVAL;
	o->p[o->len] = '\0';
	*len = o->len;
	return 0;
}

int jsondump_raw_append(const char *s, size_t n, char **buf, size_t *cap, size_t *len)
{
	struct out o = out_resume(buf, cap, len);

	put(&o, s, n);
	return out_finish(&o, buf, cap, len);
}

int jsondump_string_append(const char *s, size_t n, char **buf, size_t *cap, size_t *len)
{
	struct out o = out_resume(buf, cap, len);

	put_string(&o, s, n);
	return out_finish(&o, buf, cap, len);
}

int jsondump_int_append(json_int_t v, char **buf, size_t *cap, size_t *len)
{
	struct out o = out_resume(buf, cap, len);

	put_int(&o, v);
	return out_finish(&o, buf, cap, len);
}

int jsondump_real_append(double d, char **buf, size_t *cap, size_t *len)
{
	struct out o = out_resume(buf, cap, len);
	json_t *v = NULL;

	if (d == 0 || (d == floor(d) && fabs(d) < 1e15)) {
		/* put_real's own cases: no value needed */
		if (d == 0)
			put(&o, signbit(d) ? "-0.0" : "0.0", signbit(d) ? 4 : 3);
		else {
			put_int(&o, (json_int_t)d);
			put(&o, ".0", 2);
		}
	} else {
		v = json_real(d);
		if (v)
			put_real(&o, v);
		else
			o.fail = true; /* not finite: json_real gives no value */
		json_decref(v);
	}
	return out_finish(&o, buf, cap, len);
}

int jsondump_member_append(const json_t *v, char **buf, size_t *cap, size_t *len)
{
	struct out o = out_resume(buf, cap, len);

	put_value(&o, v, 1);
	return out_finish(&o, buf, cap, len);
}
