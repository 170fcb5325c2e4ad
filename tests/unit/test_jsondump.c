/* layers: teacher_clients common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsondump.h"
#include "teacher_clients/openai.h"

/* The cache keys of stored calls were made from jansson's text: the writer
 * must give the same bytes for everything a body can hold. */
static void same_as_jansson(const json_t *v)
{
	char *want = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	size_t len = 0;
	char *got = jsondump_sorted(v, &len);

	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(len, strlen(want));
	free(want);
	free(got);
}

static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Text of every kind a string may hold: ASCII, the characters that are
 * escaped, other control characters, 2-, 3- and 4-byte UTF-8, NUL. */
static json_t *rnd_string(size_t maxlen)
{
	static const char *const pieces[] = { "a", "Z", " ", "\"", "\\", "/", "\b", "\f", "\n", "\r",
					      "\t", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe4\xb8\xad",
					      "\xf0\x9f\x98\x80", "{", "}", ":", ",", "0", "<", "&" };
	char buf[512];
	size_t n = 0, want = (size_t)(rnd() % maxlen);

	while (n < want) {
		const char *p = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
		size_t pl = strlen(p);

		if (n + pl + 2 > sizeof(buf))
			break;
		if (rnd() % 40 == 0) {
			buf[n++] = '\0'; /* a NUL inside a string: "\u0000" */
			continue;
		}
		memcpy(buf + n, p, pl);
		n += pl;
	}
	return json_stringn(buf, n);
}

static json_t *rnd_value(int depth)
{
	switch (rnd() % (depth > 3 ? 6 : 8)) {
	case 0: return json_null();
	case 1: return rnd() & 1 ? json_true() : json_false();
	case 2: {
		static const json_int_t ints[] = { 0, 1, -1, 9, 10, 64, 1024, -987654321, INT64_MAX, INT64_MIN };
		return json_integer(rnd() & 1 ? ints[rnd() % 10] : (json_int_t)rnd());
	}
	case 3: {
		static const double reals[] = { 0.0, -0.0, 1.0, 0.7, 0.5, 1e-7, 1e300, -2.5e-300, 3.141592653589793,
						100.0, 2.0, -3.0, 123456789012345.0, 999999999999999.0, 1e15, 1e16,
						-4503599627370496.0, 0.1, 1.5 };
		return json_real(reals[rnd() % (sizeof(reals) / sizeof(reals[0]))]);
	}
	case 4:
	case 5: return rnd_string(rnd() % 4 ? 24 : 300);
	case 6: {
		json_t *a = json_array();
		size_t n = rnd() % 5;

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, rnd_value(depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		size_t n = rnd() % 20;

		for (size_t i = 0; i < n; i++) {
			json_t *k = rnd_string(8);

			json_object_setn_new(o, json_string_value(k), json_string_length(k), rnd_value(depth + 1));
			json_decref(k);
		}
		return o;
	}
	}
}

static void test_random_values(void **state)
{
	(void)state;
	for (int i = 0; i < 3000; i++) {
		json_t *v = rnd() & 1 ? json_object() : json_array();
		size_t n = rnd() % 8;

		for (size_t k = 0; k < n; k++) {
			if (json_is_object(v)) {
				char key[16];

				snprintf(key, sizeof(key), "k%llu", (unsigned long long)(rnd() % 50));
				json_object_set_new(v, key, rnd_value(1));
			} else {
				json_array_append_new(v, rnd_value(1));
			}
		}
		same_as_jansson(v);
		json_decref(v);
	}
}

static void test_bodies(void **state)
{
	json_t *msgs = json_array(), *body, *schema;
	struct openai_opts o = { .temperature = 0.0, .max_tokens = 1024, .seed = 3 };
	char *s;

	(void)state;
	json_array_append_new(msgs, openai_message("system", "You are a careful \"medical\" tutor.\n\tBe brief."));
	json_array_append_new(msgs, openai_message("user", "### Task: explain\n患者 45岁 😀 A/B \\ end"));
	body = openai_chat_body("sim-teacher", msgs, &o);
	same_as_jansson(body);
	json_decref(body);
	schema = json_pack("{s:s, s:{s:{s:s}}, s:[s]}", "type", "object", "properties", "keep", "type",
			   "boolean", "required", "keep");
	o.temperature = 0.7;
	o.schema = schema;
	o.use_schema = true;
	body = openai_chat_body("sim-teacher", msgs, &o);
	same_as_jansson(body);
	json_decref(body);
	json_decref(schema);
	json_decref(msgs);
	/* empty containers, and the keys ordered by bytes then length */
	body = json_pack("{s:{}, s:[], s:i, s:i, s:i, s:i}", "b", "a", "ab", 1, "a\xc3\xa9", 2, "aa", 3, "B", 4);
	same_as_jansson(body);
	s = jsondump_sorted(body, NULL);
	assert_string_equal(s, "{\"B\":4,\"a\":[],\"aa\":3,\"ab\":1,\"a\xc3\xa9\":2,\"b\":{}}");
	free(s);
	json_decref(body);
}

/* openai_chat_body_text (the body's text without its tree) is the dumped
 * body, byte for byte, or NULL (the client then dumps the tree): every
 * option a chat body takes, models and messages that need escapes or are
 * refused, messages past the writer's first buffer. */
static void same_as_tree(const char *model, json_t *msgs, const struct openai_opts *o)
{
	json_t *body = openai_chat_body(model, msgs, o);
	char *want = body ? jsondump_sorted(body, NULL) : NULL;
	size_t len = 0;
	char *got = openai_chat_body_text(model, msgs, o, &len);

	if (o && ((o->schema && o->use_schema) || o->json_object)) {
		assert_null(got); /* response_format: the tree's */
	} else if (!want) {
		assert_null(got);
	} else {
		if (!got)
			fail_msg("no text for %s", want);
		assert_string_equal(got, want);
		assert_int_equal(len, strlen(want));
	}
	free(got);
	free(want);
	json_decref(body);
}

static void test_chat_body_text(void **state)
{
	static const double temps[] = { -1, 0.0, -0.0, 0.7, 1.0, 2.0, 0.1, 1e15, 1e20, 1.0 / 0.0 };
	static const int64_t maxes[] = { 0, 1, 1500, 6000, INT64_MAX };
	static const int64_t seeds[] = { 0, 1, 42 };
	static const char *const models[] = { "sim-teacher", "gpt-4o-mini", "m\"o/d\\el\n\xc3\xa9", "",
					      "bad \xff model" };
	json_t *msgs[4], *schema = json_pack("{s:s}", "type", "object");
	char *big = malloc(20001);

	(void)state;
	assert_non_null(big);
	for (size_t k = 0; k < 20000; k++)
		big[k] = k % 9 == 0 ? '\n' : (char)('a' + k % 26);
	big[20000] = '\0';
	msgs[0] = json_array();
	json_array_append_new(msgs[0], openai_message("system", "You are a careful \"medical\" tutor.\n\tBe brief."));
	json_array_append_new(msgs[0], openai_message("user", "### Task: explain\n患者 45岁 😀 A/B \\ end"));
	msgs[1] = json_array();
	json_array_append_new(msgs[1], openai_message("user", big));
	msgs[2] = json_array(); /* refused: invalid UTF-8 that got in unchecked */
	json_array_append_new(msgs[2], json_pack("{s:s, s:o}", "role", "user", "content",
						 json_stringn_nocheck("x \xc3", 3)));
	msgs[3] = json_pack("[{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}}]}]", "role", "user", "content",
			    "type", "text", "text", "look", "type", "image_url", "image_url", "url",
			    "data:image/png;base64,AAAA");
	free(big);
	for (size_t m = 0; m < sizeof(models) / sizeof(models[0]); m++)
		for (size_t i = 0; i < 4; i++)
			for (size_t t = 0; t < sizeof(temps) / sizeof(temps[0]); t++)
				for (size_t x = 0; x < sizeof(maxes) / sizeof(maxes[0]); x++)
					for (size_t sd = 0; sd < sizeof(seeds) / sizeof(seeds[0]); sd++) {
						struct openai_opts o = { .temperature = temps[t],
									 .max_tokens = maxes[x],
									 .seed = seeds[sd] };

						same_as_tree(models[m], msgs[i], &o);
					}
	{
		struct openai_opts o = { .temperature = 0, .schema = schema, .use_schema = true };

		same_as_tree("sim-teacher", msgs[0], &o);
		o.use_schema = false; /* a schema not used: no response_format */
		same_as_tree("sim-teacher", msgs[0], &o);
		o.json_object = true;
		same_as_tree("sim-teacher", msgs[0], &o);
	}
	same_as_tree("sim-teacher", msgs[0], NULL);
	assert_null(openai_chat_body_text(NULL, msgs[0], NULL, NULL));
	assert_null(openai_chat_body_text("m", schema, NULL, NULL)); /* not an array */
	for (size_t i = 0; i < 4; i++)
		json_decref(msgs[i]);
	json_decref(schema);
}

/* Bodies past the writer's stack start (8 KiB): the same text. */
static void test_long_bodies(void **state)
{
	size_t sizes[] = { 8000, 8180, 8192, 8200, 20000, 100000 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *t = malloc(sizes[i] + 1);
		json_t *v;

		assert_non_null(t);
		for (size_t k = 0; k < sizes[i]; k++)
			t[k] = k % 9 == 0 ? '\n' : (char)('a' + k % 26);
		t[sizes[i]] = '\0';
		v = json_pack("{s:s, s:[s, i]}", "text", t, "more", "x", 1);
		same_as_jansson(v);
		json_decref(v);
		free(t);
	}
}

static void test_refused(void **state)
{
	json_t *v;

	(void)state;
	assert_null(jsondump_sorted(NULL, NULL));
	v = json_string("x");
	assert_null(jsondump_sorted(v, NULL)); /* not a container, as json_dumps */
	json_decref(v);
	/* invalid UTF-8 that got in unchecked: jansson refuses to write it */
	v = json_array();
	json_array_append_new(v, json_stringn_nocheck("ok \xc3", 4));
	same_as_jansson(v);
	json_decref(v);
	v = json_array();
	json_array_append_new(v, json_stringn_nocheck("\xed\xa0\x80", 3)); /* a surrogate */
	same_as_jansson(v);
	json_decref(v);
	v = json_array();
	json_array_append_new(v, json_stringn_nocheck("\xe0\x80\xaf", 3)); /* overlong */
	same_as_jansson(v);
	json_decref(v);
}

/* Long plain runs (read 16 or 8 bytes a step) with a character that needs
 * a look at every offset around the steps, and at the very end: the same
 * bytes as jansson's, or refused alike. */
static void test_plain_runs(void **state)
{
	static const char *const odd[] = { "\"", "\\", "\n", "\x01", "\x1f", "\x7f", "/",
					   "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80",
					   "\xc3", "\xed\xa0\x80", "\xff" };
	char buf[96];

	(void)state;
	for (size_t k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
		for (size_t at = 0; at < 48; at++) {
			for (size_t tail = 0; tail < 20; tail += 7) {
				size_t ol = strlen(odd[k]), n = at + ol + tail;
				json_t *v = json_array();

				memset(buf, 'p', sizeof(buf));
				memcpy(buf + at, odd[k], ol);
				json_array_append_new(v, json_stringn_nocheck(buf, n));
				same_as_jansson(v);
				json_decref(v);
			}
		}
	}
}

/* The stored text (store_json_text): json_dumpb(JSON_COMPACT |
 * JSON_ENCODE_ANY), keys in insertion order, any value, into one buffer
 * the caller keeps across calls. */
static void compact_same_as_jansson(const json_t *v, char **buf, size_t *cap)
{
	char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t len = 0;
	int rc = jsondump_compact_into(v, buf, cap, &len);

	if (!want) {
		assert_int_equal(rc, -EINVAL);
		return;
	}
	assert_int_equal(rc, 0);
	assert_non_null(*buf);
	assert_true(*cap > len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(*buf, want, len + 1);
	free(want);
}

static void test_compact(void **state)
{
	char *buf = NULL, *small;
	size_t cap = 0, len = 0;
	json_t *v;

	(void)state;
	for (int i = 0; i < 3000; i++) {
		v = rnd_value(i % 3);
		compact_same_as_jansson(v, &buf, &cap);
		json_decref(v);
	}
	/* insertion order, not sorted */
	v = json_pack("{s:s, s:s, s:b}", "text", "x\n\"y\"", "final_answer", "C", "verified", 1);
	assert_int_equal(jsondump_compact_into(v, &buf, &cap, &len), 0);
	assert_string_equal(buf, "{\"text\":\"x\\n\\\"y\\\"\",\"final_answer\":\"C\",\"verified\":true}");
	json_decref(v);
	/* scalars, as JSON_ENCODE_ANY */
	v = json_real(0.25);
	compact_same_as_jansson(v, &buf, &cap);
	json_decref(v);
	v = json_string("\xe4\xb8\xad");
	compact_same_as_jansson(v, &buf, &cap);
	json_decref(v);
	free(buf);
	/* a caller's small buffer grows; refused values leave it the caller's */
	small = malloc(4);
	cap = 4;
	v = json_pack("[s,i]", "a longer text than four bytes", 7);
	compact_same_as_jansson(v, &small, &cap);
	json_decref(v);
	v = json_array();
	json_array_append_new(v, json_stringn_nocheck("ok \xc3", 4));
	assert_int_equal(jsondump_compact_into(v, &small, &cap, &len), -EINVAL);
	assert_int_equal(jsondump_compact_into(NULL, &small, &cap, &len), -EINVAL);
	json_decref(v);
	free(small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_values),
		cmocka_unit_test(test_plain_runs),
		cmocka_unit_test(test_chat_body_text),
		cmocka_unit_test(test_bodies),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_compact),
		cmocka_unit_test(test_long_bodies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
