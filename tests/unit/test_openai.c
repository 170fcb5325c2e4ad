/* layers: teacher_clients common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "teacher_clients/openai.h"

static void test_sha256_vectors(void **state)
{
	char hex[65], *big;
	struct sha256 s;
	uint8_t d[32];
	size_t i;

	(void)state;
	sha256_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* one million 'a', fed in odd-sized pieces */
	big = malloc(1000000);
	memset(big, 'a', 1000000);
	sha256_init(&s);
	for (i = 0; i < 1000000; i += 997)
		sha256_update(&s, big + i, 1000000 - i < 997 ? 1000000 - i : 997);
	sha256_final(&s, d);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	sha256_hex(big, 1000000, hex);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	/* the one-shot (libcrypto) and the incremental (portable) agree on every
	 * length around the block and padding edges, and on bytes of all values */
	for (i = 0; i < 1000000; i++)
		big[i] = (char)(i * 131 + (i >> 7));
	for (size_t n = 0; n < 300 || n % 4096 != 1; n = n < 300 ? n + 1 : n + 997) {
		char one[65], inc[65];

		sha256_hex(big, n, one);
		sha256_init(&s);
		sha256_update(&s, big, n / 3);
		sha256_update(&s, big + n / 3, n - n / 3);
		sha256_final(&s, d);
		for (size_t k = 0; k < 32; k++)
			snprintf(inc + 2 * k, 3, "%02x", d[k]);
		assert_string_equal(one, inc);
		if (n > 200000)
			break;
	}
	free(big);
}

static void test_chat_body(void **state)
{
	json_t *msgs = json_array(), *body, *schema;
	const char *urls[1] = { "data:image/png;base64,AAAA" };
	struct openai_opts o = { .temperature = 0.0, .max_tokens = 64 };
	char *s;

	(void)state;
	json_array_append_new(msgs, openai_message("system", "be brief"));
	json_array_append_new(msgs, openai_message_images("user", "what is this?", urls, 1));
	body = openai_chat_body("gpt-4o", msgs, &o);
	s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"max_tokens\":64,\"messages\":[{\"content\":\"be brief\",\"role\":\"system\"},"
			       "{\"content\":[{\"text\":\"what is this?\",\"type\":\"text\"},{\"image_url\":"
			       "{\"url\":\"data:image/png;base64,AAAA\"},\"type\":\"image_url\"}],\"role\":\"user\"}],"
			       "\"model\":\"gpt-4o\",\"temperature\":0.0}");
	free(s);
	json_decref(body);

	schema = json_pack("{s:s}", "type", "object");
	o.temperature = -1;
	o.max_tokens = 0;
	o.schema = schema;
	o.use_schema = true;
	body = openai_chat_body("m", msgs, &o);
	assert_string_equal(json_string_value(json_object_get(json_object_get(body, "response_format"), "type")),
			    "json_schema");
	assert_non_null(json_object_get(json_object_get(json_object_get(body, "response_format"), "json_schema"),
					"schema"));
	assert_null(json_object_get(body, "temperature"));
	json_decref(body);
	o.use_schema = false; /* endpoint without the switch: no response_format */
	body = openai_chat_body("m", msgs, &o);
	assert_null(json_object_get(body, "response_format"));
	json_decref(body);
	assert_null(openai_chat_body("m", schema, &o)); /* messages must be an array */
	json_decref(schema);
	json_decref(msgs);

	o = (struct openai_opts){ .temperature = -1, .max_tokens = 0, .logprobs = 5, .echo = true };
	body = openai_completion_body("student", "Q: 2+2?", &o);
	s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"echo\":true,\"logprobs\":5,\"model\":\"student\",\"prompt\":\"Q: 2+2?\"}");
	free(s);
	json_decref(body);
}

static enum openai_err parse_err(const char *body, enum openai_kind k)
{
	struct openai_reply r;
	enum openai_err e;

	openai_reply_parse(body, strlen(body), k, &r);
	e = r.err;
	if (e)
		assert_true(strlen(r.msg) > 0);
	openai_reply_clear(&r);
	return e;
}

static void test_reply_valid(void **state)
{
	const char *ok = "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
			 "\"Final answer: C\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":12,"
			 "\"completion_tokens\":5,\"total_tokens\":17}}";
	const char *comp = "{\"choices\":[{\"text\":\"Q: 2+2? 4\",\"logprobs\":{\"tokens\":[\"Q\"],"
			   "\"token_logprobs\":[null]},\"finish_reason\":\"stop\"}]}";
	struct openai_reply r;

	(void)state;
	assert_int_equal(openai_reply_parse(ok, strlen(ok), OPENAI_CHAT, &r), 0);
	assert_string_equal(r.content, "Final answer: C");
	assert_true(r.length_cut);
	assert_int_equal(r.tokens_in, 12);
	assert_int_equal(r.tokens_out, 5);
	openai_reply_clear(&r);
	assert_int_equal(openai_reply_parse(comp, strlen(comp), OPENAI_COMPLETION, &r), 0);
	assert_string_equal(r.content, "Q: 2+2? 4");
	assert_non_null(r.logprobs);
	assert_false(r.length_cut);
	assert_int_equal(r.tokens_in, 0);
	openai_reply_clear(&r);
}

static void test_reply_malformed(void **state)
{
	struct openai_reply r;

	(void)state;
	assert_int_equal(parse_err("<html><body>502 Bad Gateway</body></html>", OPENAI_CHAT), OPENAI_E_NOT_JSON);
	assert_int_equal(parse_err("", OPENAI_CHAT), OPENAI_E_NOT_JSON);
	assert_int_equal(parse_err("{\"choices\":[{\"message\":{\"content\":\"hel", OPENAI_CHAT), OPENAI_E_TRUNCATED);
	assert_int_equal(parse_err("{\"choices\":[", OPENAI_CHAT), OPENAI_E_TRUNCATED);
	assert_int_equal(parse_err("[1,2]", OPENAI_CHAT), OPENAI_E_NOT_OBJECT);
	assert_int_equal(parse_err("\"text\"", OPENAI_CHAT), OPENAI_E_NOT_OBJECT);
	assert_int_equal(parse_err("{\"id\":\"x\"}", OPENAI_CHAT), OPENAI_E_NO_CHOICES);
	assert_int_equal(parse_err("{\"choices\":[]}", OPENAI_CHAT), OPENAI_E_NO_CHOICES);
	assert_int_equal(parse_err("{\"choices\":null}", OPENAI_CHAT), OPENAI_E_NO_CHOICES);
	assert_int_equal(parse_err("{\"choices\":{}}", OPENAI_CHAT), OPENAI_E_BAD_TYPE);
	assert_int_equal(parse_err("{\"choices\":[7]}", OPENAI_CHAT), OPENAI_E_BAD_TYPE);
	assert_int_equal(parse_err("{\"choices\":[{}]}", OPENAI_CHAT), OPENAI_E_NO_CHOICES);
	assert_int_equal(parse_err("{\"choices\":[{\"message\":\"hi\"}]}", OPENAI_CHAT), OPENAI_E_BAD_TYPE);
	assert_int_equal(parse_err("{\"choices\":[{\"message\":{\"content\":null}}]}", OPENAI_CHAT),
			 OPENAI_E_EMPTY_CONTENT);
	assert_int_equal(parse_err("{\"choices\":[{\"message\":{\"content\":\"\"}}]}", OPENAI_CHAT),
			 OPENAI_E_EMPTY_CONTENT);
	assert_int_equal(parse_err("{\"choices\":[{\"message\":{\"content\":42}}]}", OPENAI_CHAT),
			 OPENAI_E_BAD_TYPE);
	assert_int_equal(parse_err("{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":3}]}",
				   OPENAI_CHAT),
			 OPENAI_E_BAD_TYPE);
	assert_int_equal(parse_err("{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":\"9\"}}",
				   OPENAI_CHAT),
			 OPENAI_E_BAD_TYPE);
	assert_int_equal(parse_err("{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":7}", OPENAI_CHAT),
			 OPENAI_E_BAD_TYPE);
	assert_int_equal(parse_err("{\"choices\":[{\"text\":null}]}", OPENAI_COMPLETION), OPENAI_E_EMPTY_CONTENT);
	assert_int_equal(parse_err("{\"a\":1,\"a\":2}", OPENAI_CHAT), OPENAI_E_NOT_JSON);

	/* an error object inside a 200 */
	{
		const char *b = "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
				"\"code\":\"insufficient_quota\"}}";
		assert_int_equal(openai_reply_parse(b, strlen(b), OPENAI_CHAT, &r), -EBADMSG);
		assert_int_equal(r.err, OPENAI_E_ERROR_OBJECT);
		assert_string_equal(r.error_code, "insufficient_quota");
		assert_non_null(strstr(r.msg, "exceeded your current quota"));
		openai_reply_clear(&r);
	}
	assert_string_equal(openai_err_name(OPENAI_E_TRUNCATED), "reply_truncated");
	/* NULL body with length never crashes */
	assert_int_equal(openai_reply_parse(NULL, 0, OPENAI_CHAT, &r), -EBADMSG);
	openai_reply_clear(&r);
}

static void test_error_parse(void **state)
{
	char code[64], msg[128];
	const char *b = "{\"error\":{\"message\":\"Invalid model\\nname\",\"type\":\"invalid_request_error\",\"code\":null}}";

	(void)state;
	openai_error_parse(b, strlen(b), code, sizeof(code), msg, sizeof(msg));
	assert_string_equal(code, "invalid_request_error");
	assert_string_equal(msg, "Invalid model name");
	openai_error_parse("Service Unavailable", 19, code, sizeof(code), msg, sizeof(msg));
	assert_string_equal(code, "");
	assert_string_equal(msg, "Service Unavailable");
	openai_error_parse(NULL, 0, code, sizeof(code), msg, sizeof(msg));
	assert_string_equal(msg, "");
}

static void expect_json(const char *text, const char *key, const char *val)
{
	json_t *j = NULL;
	char err[128];

	assert_int_equal(openai_json_extract(text, &j, err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(j, key)), val);
	json_decref(j);
}

static void test_json_extract(void **state)
{
	json_t *j = NULL;
	char err[128];

	(void)state;
	expect_json("{\"answer\":\"C\"}", "answer", "C");
	expect_json("  {\"answer\":\"C\"}\n", "answer", "C");
	expect_json("Here you go:\n```json\n{\"answer\":\"B\"}\n```\nThanks", "answer", "B");
	expect_json("```\n{\"answer\":\"D\"}\n```", "answer", "D");
	expect_json("```python\nx=1\n```\nthen ```json\n{\"answer\":\"A\"}\n```", "answer", "A");
	expect_json("The verdict is {\"correct\":true,\"reason\":\"a } in a string {\",\"answer\":\"E\"} ok",
		    "answer", "E");
	expect_json("first {not json} then {\"answer\":\"F\"}", "answer", "F");
	expect_json("{\"outer\":{\"answer\":\"x\"},\"answer\":\"G\"}", "answer", "G");
	expect_json("esc {\"answer\":\"say \\\"hi\\\" }\"}", "answer", "say \"hi\" }");
	assert_int_equal(openai_json_extract("no json here", &j, err, sizeof(err)), -EBADMSG);
	assert_null(j);
	assert_non_null(strstr(err, "no JSON object"));
	assert_int_equal(openai_json_extract("{\"answer\": \"C\"", &j, err, sizeof(err)), -EBADMSG);
	assert_int_equal(openai_json_extract("[1,2,3]", &j, err, sizeof(err)), -EBADMSG);
	assert_int_equal(openai_json_extract(NULL, &j, err, sizeof(err)), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors), cmocka_unit_test(test_chat_body),
		cmocka_unit_test(test_reply_valid),    cmocka_unit_test(test_reply_malformed),
		cmocka_unit_test(test_error_parse),    cmocka_unit_test(test_json_extract),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
