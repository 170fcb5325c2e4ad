/* layers: common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonload.h"

static uint64_t rnd_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* The fast reader and jansson agree: both refuse, or both give the same
 * values in the same key order (and, refusing, the same error). */
static int same_as_jansson(const char *text, size_t len, size_t flags)
{
	json_error_t e1, e2;
	json_t *want = json_loadb(text, len, flags, &e1);
	json_t *got = jsonload_buf(text, len, flags, &e2);

	if (!want) {
		assert_null(got);
		assert_string_equal(e1.text, e2.text);
		assert_int_equal(e1.position, e2.position);
		return 0;
	}
	assert_non_null(got);
	assert_true(json_equal(want, got));
	{
		char *a = json_dumps(want, JSON_ENCODE_ANY), *b = json_dumps(got, JSON_ENCODE_ANY);

		assert_non_null(a);
		assert_non_null(b);
		assert_string_equal(a, b); /* key order, -0.0, integer or real */
		free(a);
		free(b);
	}
	json_decref(want);
	json_decref(got);
	return 1;
}

struct gen {
	char *p;
	size_t len, cap;
};

static void g_put(struct gen *g, const char *s, size_t n)
{
	if (g->len + n + 1 > g->cap) {
		g->cap = (g->len + n + 1) * 2;
		g->p = realloc(g->p, g->cap);
	}
	memcpy(g->p + g->len, s, n);
	g->len += n;
	g->p[g->len] = '\0';
}

static void g_str(struct gen *g, const char *s)
{
	g_put(g, s, strlen(s));
}

static void g_ws(struct gen *g)
{
	static const char *const ws[] = { "", "", "", " ", "\n", "\t", "\r\n  " };

	g_str(g, ws[rnd() % 7]);
}

static void g_string(struct gen *g)
{
	static const char *const pieces[] = {
		"a", "Key", " ", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0041",
		"\\u00e9", "\\u4E2D", "\\ud83d\\ude00", "\\uD83D\\uDE00", "\xc3\xa9", "\xe4\xb8\xad",
		"\xf0\x9f\x98\x80", "\x7f", "/", "{", "]", ":", ",",
	};
	size_t n = rnd() % 12;

	g_str(g, "\"");
	for (size_t i = 0; i < n; i++)
		g_str(g, pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))]);
	g_str(g, "\"");
}

static void g_number(struct gen *g)
{
	static const char *const nums[] = {
		"0", "-0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "-9223372036854775809", "123456789012345678901234567890",
		"0.5", "-0.0", "1e3", "1E-3", "2.5e+10", "1e308", "1e309", "-1e400", "1e-400",
		"3.141592653589793238462643383279", "0.1", "100.000", "7e0",
	};
	g_str(g, nums[rnd() % (sizeof(nums) / sizeof(nums[0]))]);
}

static void g_value(struct gen *g, int depth)
{
	switch (rnd() % (depth > 4 ? 5 : 7)) {
	case 0: g_str(g, "null"); break;
	case 1: g_str(g, rnd() & 1 ? "true" : "false"); break;
	case 2: g_number(g); break;
	case 3:
	case 4: g_string(g); break;
	case 5: {
		size_t n = rnd() % 5;

		g_str(g, "[");
		for (size_t i = 0; i < n; i++) {
			if (i)
				g_str(g, ",");
			g_ws(g);
			g_value(g, depth + 1);
			g_ws(g);
		}
		g_str(g, "]");
		break;
	}
	default: {
		size_t n = rnd() % 6;

		g_str(g, "{");
		for (size_t i = 0; i < n; i++) {
			char k[24];

			if (i)
				g_str(g, ",");
			g_ws(g);
			/* few distinct keys: duplicates happen */
			snprintf(k, sizeof(k), "\"k%d\"", (int)(rnd() % 8));
			g_str(g, k);
			g_ws(g);
			g_str(g, ":");
			g_ws(g);
			g_value(g, depth + 1);
		}
		g_ws(g);
		g_str(g, "}");
		break;
	}
	}
}

static void test_random_documents(void **state)
{
	int valid = 0;

	(void)state;
	for (int i = 0; i < 4000; i++) {
		struct gen g = { 0 };
		size_t flags = (rnd() & 1 ? JSON_REJECT_DUPLICATES : 0) | (rnd() % 4 == 0 ? JSON_DECODE_ANY : 0);

		g_ws(&g);
		if (rnd() % 8 == 0)
			g_value(&g, 1);
		else if (rnd() & 1)
			g_value(&g, 4), g_str(&g, ""); /* often a container at depth 4 */
		else {
			g_str(&g, "{\"a\":");
			g_value(&g, 1);
			g_str(&g, ",\"b\":[");
			g_value(&g, 2);
			g_str(&g, "]}");
		}
		g_ws(&g);
		valid += same_as_jansson(g.p, g.len, flags);
		/* and broken: cut short, a byte changed, garbage after it */
		if (g.len > 1) {
			size_t at = (size_t)(rnd() % g.len);
			char saved = g.p[at];
			static const char junk[] = "\"\\{}[],:x0\x01\x80\xff ";

			same_as_jansson(g.p, at, flags);
			g.p[at] = junk[rnd() % (sizeof(junk) - 1)];
			same_as_jansson(g.p, g.len, flags);
			g.p[at] = saved;
			g_str(&g, rnd() & 1 ? " x" : "{}");
			same_as_jansson(g.p, g.len, flags);
		}
		free(g.p);
	}
	assert_true(valid > 1000); /* most of them are documents */
}

static void test_cases(void **state)
{
	static const char *const docs[] = {
		"{}", "[]", " { } ", "{\"a\":1,\"a\":2}", "{\"a\":\"\\u0000\"}", "{\"\\u0000\":1}",
		"[\"\\ud800\"]", "[\"\\udc00\\ud800\"]", "[\"\\ud800\\u0041\"]", "[01]", "[1.]", "[.5]",
		"[1e]", "[-]", "[+1]", "[tru]", "[nul]", "[\"a\nb\"]", "[\"\xc3\"]", "[\"\xed\xa0\x80\"]",
		"[\"\xe0\x80\xaf\"]", "[1,]", "{\"a\"}", "{\"a\":}", "{a:1}", "[1 2]", "\"x\"", "1",
		"null", "", "   ", "[\"\\x\"]", "[\"\\u12\"]", "[1]\x00", "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
		"{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
		"\"content\":\"Final answer: C\\n\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":"
		"412,\"completion_tokens\":96}}",
	};
	char deep[400];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		size_t len = strlen(docs[i]) + (strcmp(docs[i], "[1]") == 0);

		same_as_jansson(docs[i], len, 0);
		same_as_jansson(docs[i], len, JSON_REJECT_DUPLICATES);
		same_as_jansson(docs[i], len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY);
	}
	same_as_jansson("[1]\0", 4, 0);
	/* deeper than the fast reader goes: jansson reads it */
	for (i = 0; i < 150; i++)
		deep[i] = '[';
	for (; i < 300; i++)
		deep[i] = ']';
	same_as_jansson(deep, 300, 0);
	/* a flag the fast reader does not take: jansson's answer */
	same_as_jansson("[\"a\\u0000b\"]", 12, JSON_ALLOW_NUL);
	same_as_jansson("[1] [2]", 7, JSON_DISABLE_EOF_CHECK);
}

/* Texts with escapes past the reader's stack scratch (4 KiB): it moves to
 * the heap in the middle of a string, and of a key. */
static void test_long_escaped(void **state)
{
	size_t sizes[] = { 100, 4090, 4096, 4100, 9000, 70000 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], len = 0;
		char *doc = malloc(4 * n + 64);

		assert_non_null(doc);
		len += (size_t)sprintf(doc, "{\"");
		for (size_t k = 0; k < n; k++)
			doc[len++] = k % 7 == 0 ? '\\' : 'k', doc[len++] = k % 7 == 0 ? 'n' : 'x';
		len += (size_t)sprintf(doc + len, "\":[\"");
		for (size_t k = 0; k < n; k++) {
			memcpy(doc + len, k % 5 == 0 ? "\\\"" : k % 5 == 1 ? "\xc3\xa9" : "ab", 2);
			len += 2;
		}
		len += (size_t)sprintf(doc + len, "\", \"tail\\t\"]}");
		assert_int_equal(same_as_jansson(doc, len, 0), 1);
		free(doc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_documents),
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_long_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
