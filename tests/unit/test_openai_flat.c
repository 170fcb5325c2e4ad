/* layers: teacher_clients common */
/* The flat reply path (openai_reply_parse_flat over common/jsonload.h's pull
 * reader) against the tree path (openai_reply_parse): the same return, err,
 * msg, error_code, content, finish_reason, length_cut and tokens over many
 * bodies, their every truncation and many one-byte changes; and the pull
 * reader against json_loadb: a document it reads to the end is one jansson
 * loads into the same values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/jsonload.h"
#include "teacher_clients/openai.h"
#include "tests/jsonpull_tree.h"

static size_t flat_taken; /* valid replies the flat path read without a tree */

static void same_str(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

/* Both paths on body (len bytes) as kind; they must agree. */
static void compare(const char *body, size_t len, enum openai_kind kind)
{
	struct openai_reply t, f;
	int rt, rf;

	rt = openai_reply_parse(body, len, kind, &t);
	rf = openai_reply_parse_flat(body, len, kind, &f);
	assert_int_equal(rt, rf);
	assert_int_equal(t.err, f.err);
	assert_string_equal(t.msg, f.msg);
	assert_string_equal(t.error_code, f.error_code);
	same_str(t.content, f.content);
	same_str(t.finish_reason, f.finish_reason);
	assert_int_equal(t.length_cut, f.length_cut);
	assert_int_equal(t.tokens_in, f.tokens_in);
	assert_int_equal(t.tokens_out, f.tokens_out);
	if (rf == 0 && !f.root) {
		flat_taken++;
		assert_non_null(f.own);
		assert_ptr_equal(f.content, f.own);
		assert_null(f.logprobs);
		/* a completion's logprobs are only in a tree */
		assert_true(t.logprobs == NULL || json_is_null(t.logprobs));
	} else {
		assert_null(f.own);
		assert_true(rf != 0 || f.root != NULL);
	}
	openai_reply_clear(&t);
	openai_reply_clear(&f);
	assert_null(f.own);
}

/* ---- the pull reader against jansson ---- */

static size_t pull_read; /* documents the pull reader read to the end */

/* A document the pull reader reads to END loads in jansson to equal values. */
static void pull_check(const char *buf, size_t len)
{
	struct jsonpull j;
	json_t *v, *ref;
	bool dup = false;

	jsonpull_init(&j, buf, len);
	v = jsonpull_tree(&j, jsonpull_next(&j), 0, &dup);
	assert_false(dup); /* the reader stops at a repeated key */
	if (v && jsonpull_next(&j) == JSONPULL_END) {
		pull_read++;
		ref = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
		assert_non_null(ref);
		assert_true(json_equal(v, ref));
		json_decref(ref);
	}
	json_decref(v);
	jsonpull_done(&j);
}

/* ---- bodies ---- */

static const char *const bodies[] = {
	/* valid replies */
	"{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
	"\"Final answer: C\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":12,"
	"\"completion_tokens\":5,\"total_tokens\":17}}",
	"{\"choices\":[{\"text\":\"Q: 2+2? 4\",\"logprobs\":{\"tokens\":[\"Q\"],"
	"\"token_logprobs\":[null]},\"finish_reason\":\"stop\"}]}",
	"{\"choices\":[{\"text\":\"Q: 2+2? 4\",\"logprobs\":null,\"finish_reason\":\"stop\"}]}",
	"{\"choices\":[{\"message\":{\"content\":\"B\"},\"finish_reason\":\"length\"}],"
	"\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}",
	" \n\t{ \"choices\" : [ { \"message\" : { \"content\" : \"x\" } , \"finish_reason\" : null } ] ,"
	" \"usage\" : null , \"error\" : null } \r\n",
	"{\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"prompt_tokens_details\":{\"cached_tokens\":0}},"
	"\"choices\":[{\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\",\"content\":\"late\"}},"
	"{\"message\":{\"content\":\"second\"}},7,null,[1,{\"a\":[]}]]}",
	/* escapes, surrogate pairs, Chinese */
	"{\"choices\":[{\"message\":{\"content\":\"line 1\\nline 2\\t\\\"q\\\" \\\\ \\/ \\b\\f\\r\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"\\u00e9\\u4e2d\\ud83d\\ude00 \\u0041\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"答案：C。患者出现发热、咳嗽，考虑肺炎。\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"<think>\\n嗯，\\u60a3\\u8005\\n</think>\\n答案：B\"},"
	"\"finish_reason\":\"stop\"}],\"model\":\"测试\"}",
	"{\"choices\":[{\"message\":{\"content\":\"\\ud83d\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"\\ude00\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"a\\u0000b\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"bad \\x escape\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"ctl \x01 byte\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"bad \xc3\x28 utf8\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"overlong \xc0\xaf\"}}]}",
	"{\"ch\\u006fices\":[{\"message\":{\"content\":\"escaped key\"}}]}",
	"{\"choices\":[{\"message\":{\"c\\u006fntent\":\"escaped key\"}}]}",
	/* error objects */
	"{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
	"\"code\":\"insufficient_quota\"}}",
	"{\"error\":\"plain\"}",
	"{\"error\":{\"code\":429}}",
	"{\"error\":{},\"choices\":[{\"message\":{\"content\":\"x\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"error\":false}",
	/* shapes and types */
	"<html><body>502 Bad Gateway</body></html>",
	"",
	"   ",
	"[1,2]",
	"\"text\"",
	"42",
	"null",
	"{}",
	"{\"id\":\"x\"}",
	"{\"choices\":[]}",
	"{\"choices\":null}",
	"{\"choices\":{}}",
	"{\"choices\":[7]}",
	"{\"choices\":[{}]}",
	"{\"choices\":[null]}",
	"{\"choices\":[{\"message\":\"hi\"}]}",
	"{\"choices\":[{\"message\":null}]}",
	"{\"choices\":[{\"message\":{}}]}",
	"{\"choices\":[{\"message\":{\"content\":null}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":42}}]}",
	"{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":3}]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"\"}]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":"
	"\"a finish reason that is much longer than sixty-four bytes, which the flat path leaves\"}]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"\\u006cength\"}]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":\"9\"}}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":7}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":[]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":1.0}}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":-1}}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"completion_tokens\":null}}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":9223372036854775807,"
	"\"completion_tokens\":0}}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":9223372036854775808}}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":-9223372036854775808}}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":"
	"123456789012345678901234567890123456789012345678901234567890123456789}}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"n\":1e999}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"n\":-0.5e-3,\"m\":1E+2,\"k\":0}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"n\":01}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"n\":1.}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"n\":-}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"t\":tru}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"t\":[true,false,null]}",
	"{\"choices\":[{\"text\":null}]}",
	"{\"choices\":[{\"text\":\"\"}]}",
	"{\"choices\":[{\"text\":5}]}",
	/* duplicate keys, at each depth and in skipped values */
	"{\"a\":1,\"a\":2}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"choices\":[]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\",\"content\":\"y\"}}]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"stop\",\"finish_reason\":null}]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":1,\"prompt_tokens\":2}}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}},{\"z\":1,\"z\":1}]}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"meta\":{\"deep\":{\"k\":1,\"k\":2}}}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"meta\":[{\"k\":1},{\"k\":2}],\"k\":3}",
	"{\"choices\":[{\"message\":{\"content\":\"x\",\"c\\u006fntent\":\"y\"}}]}",
	/* trailing bytes, truncation */
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}]} x",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}]}{}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}}],}",
	"{\"choices\":[{\"message\":{\"content\":\"x\"}},]}",
	"{\"choices\":[{\"message\":{\"content\":\"hel",
	"{\"choices\":[",
	"\xef\xbb\xbf{\"choices\":[{\"message\":{\"content\":\"bom\"}}]}",
};

/* A realistic 1-2 KB chat reply. */
static char *realistic(void)
{
	const char *text = "<think>\\n\\u60a3\\u8005 presents with fever and cough; chest X-ray shows "
			   "consolidation.\\nDifferential: pneumonia, TB, malignancy. Sputum culture \\\"pending\\\".\\n"
			   "</think>\\n答案：C。社区获得性肺炎，首选阿莫西林。Final answer: C";
	char *b = malloc(4096);

	snprintf(b, 4096,
		 "{\"id\":\"chatcmpl-9f8e7d6c5b4a\",\"object\":\"chat.completion\",\"created\":1733600000,"
		 "\"model\":\"deepseek-r1\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,"
		 "\"message\":{\"role\":\"assistant\",\"content\":\"%s %s\",\"refusal\":null},"
		 "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":412,"
		 "\"completion_tokens\":96,\"total_tokens\":508,\"prompt_tokens_details\":{\"cached_tokens\":0},"
		 "\"completion_tokens_details\":{\"reasoning_tokens\":64}}}",
		 text, text);
	return b;
}

static void test_flat_bodies(void **state)
{
	size_t i, before;

	(void)state;
	before = flat_taken;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		compare(bodies[i], strlen(bodies[i]), OPENAI_CHAT);
		compare(bodies[i], strlen(bodies[i]), OPENAI_COMPLETION);
		compare(bodies[i], strlen(bodies[i]), OPENAI_EMBEDDING);
		pull_check(bodies[i], strlen(bodies[i]));
	}
	compare(NULL, 0, OPENAI_CHAT);
	/* the valid chat and completion replies above went the flat way */
	assert_true(flat_taken - before >= 14);
}

static void test_flat_realistic(void **state)
{
	char *b = realistic();
	struct openai_reply r;
	size_t n = strlen(b);

	(void)state;
	assert_true(n > 900 && n < 2048);
	assert_int_equal(openai_reply_parse_flat(b, n, OPENAI_CHAT, &r), 0);
	assert_null(r.root);
	assert_non_null(strstr(r.content, "\n患者 presents"));
	assert_non_null(strstr(r.content, "\"pending\""));
	assert_string_equal(r.finish_reason, "stop");
	assert_int_equal(r.tokens_in, 412);
	assert_int_equal(r.tokens_out, 96);
	openai_reply_clear(&r);
	compare(b, n, OPENAI_CHAT);
	free(b);
}

/* Every truncation and many one-byte changes of a realistic reply. */
static void test_flat_mutations(void **state)
{
	static const char subst[] = { '"', '\\', '}', ']', ',', ':', 'x', '1', ' ', '\x80', '\0', '{' };
	char *b = realistic();
	size_t n = strlen(b), i, k;
	char *m = malloc(n + 1);

	(void)state;
	for (i = 0; i <= n; i++) {
		compare(b, i, OPENAI_CHAT);
		pull_check(b, i);
	}
	for (i = 0; i < n; i++) {
		for (k = 0; k < sizeof(subst); k++) {
			if (b[i] == subst[k])
				continue;
			memcpy(m, b, n + 1);
			m[i] = subst[k];
			compare(m, n, OPENAI_CHAT);
			if (k % 3 == 0)
				compare(m, n, OPENAI_COMPLETION);
			pull_check(m, n);
		}
	}
	assert_true(pull_read > 100);
	free(m);
	free(b);
}

static void test_pull_tokens(void **state)
{
	const char *doc = "{\"a\":[1,-2.5,\"s\\n\",true,false,null,{}],\"b\":{\"c\":[]}}";
	static const enum jsonpull_tok want[] = {
		JSONPULL_OBJ,  JSONPULL_KEY,   JSONPULL_ARR,     JSONPULL_INT,     JSONPULL_REAL,
		JSONPULL_STR,  JSONPULL_TRUE,  JSONPULL_FALSE,   JSONPULL_NULL,    JSONPULL_OBJ,
		JSONPULL_OBJ_END, JSONPULL_ARR_END, JSONPULL_KEY, JSONPULL_OBJ,    JSONPULL_KEY,
		JSONPULL_ARR,  JSONPULL_ARR_END, JSONPULL_OBJ_END, JSONPULL_OBJ_END, JSONPULL_END,
	};
	struct jsonpull j;
	char deep[200];
	size_t i;

	(void)state;
	jsonpull_init(&j, doc, strlen(doc));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		enum jsonpull_tok t = jsonpull_next(&j);

		assert_int_equal(t, want[i]);
		if (i == 3)
			assert_int_equal(j.i, 1);
		if (i == 4)
			assert_true(j.d == -2.5);
		if (i == 5) {
			assert_int_equal(j.len, 2);
			assert_memory_equal(j.s, "s\n", 2);
		}
	}
	assert_int_equal(jsonpull_next(&j), JSONPULL_END);
	jsonpull_done(&j);

	/* a duplicate key stops, and stays stopped */
	jsonpull_init(&j, "{\"k\":1,\"k\":2}", 13);
	assert_int_equal(jsonpull_next(&j), JSONPULL_OBJ);
	assert_int_equal(jsonpull_next(&j), JSONPULL_KEY);
	assert_int_equal(jsonpull_next(&j), JSONPULL_INT);
	assert_int_equal(jsonpull_next(&j), JSONPULL_STOP);
	assert_int_equal(jsonpull_next(&j), JSONPULL_STOP);
	jsonpull_done(&j);
	/* the same key in sibling objects is no duplicate */
	pull_check("[{\"k\":1},{\"k\":2}]", 17);
	assert_int_equal(pull_read > 0, 1);

	/* nesting past JSONPULL_DEPTH is left to jansson */
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	jsonpull_init(&j, deep, sizeof(deep));
	for (i = 0; i < JSONPULL_DEPTH; i++)
		assert_int_equal(jsonpull_next(&j), JSONPULL_ARR);
	assert_int_equal(jsonpull_next(&j), JSONPULL_STOP);
	jsonpull_done(&j);

	/* a long escaped string goes to a heap scratch, freed by done */
	{
		size_t n = 3 * JSONPULL_SCRATCH;
		char *s = malloc(n + 3);

		s[0] = '"';
		for (i = 1; i + 1 < n; i += 2)
			memcpy(s + i, "\\n", 2);
		s[i++] = '"';
		jsonpull_init(&j, s, i);
		assert_int_equal(jsonpull_next(&j), JSONPULL_STR);
		assert_int_equal(j.len, (i - 2) / 2);
		assert_int_equal(jsonpull_next(&j), JSONPULL_END);
		jsonpull_done(&j);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pull_tokens),
		cmocka_unit_test(test_flat_bodies),
		cmocka_unit_test(test_flat_realistic),
		cmocka_unit_test(test_flat_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
