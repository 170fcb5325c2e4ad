/* layers: teacher_clients store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "teacher_clients/provider.h"

/* The anthropic provider row: request bodies, auth, replies, errors and
 * the anthropic-ratelimit-* headers. */

static char *dump(json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

static void test_anthropic_request_build(void **state)
{
	const struct provider *p = &provider_anthropic;
	json_t *msgs = json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content", "be brief", "role", "user",
				 "content", "which drug?");
	struct provider_req q = { .op = PROVIDER_CHAT, .model = "claude", .messages = msgs, .temperature = 0.5,
				  .max_tokens = 16 };
	json_t *body, *img;
	char *s;

	(void)state;
	assert_ptr_equal(provider_find("anthropic"), p);
	assert_string_equal(p->path[PROVIDER_CHAT], "/messages");
	assert_null(p->path[PROVIDER_COMPLETION]);
	assert_non_null(p->batch);
	body = p->request_build(&q);
	s = dump(body);
	assert_string_equal(s, "{\"max_tokens\":16,\"messages\":[{\"content\":\"which drug?\",\"role\":\"user\"}],"
			       "\"model\":\"claude\",\"system\":\"be brief\",\"temperature\":0.5}");
	free(s);
	/* the repair turns go after the messages */
	assert_int_equal(p->turns_append(body, "not json", "only JSON"), 0);
	assert_int_equal(json_array_size(json_object_get(body, "messages")), 3);
	json_decref(body);

	/* max_tokens is required by the API: a default when the step sets none */
	q.max_tokens = 0;
	q.temperature = -1;
	body = p->request_build(&q);
	assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 4096);
	assert_null(json_object_get(body, "temperature"));
	json_decref(body);
	json_decref(msgs);

	/* images: data: URLs become base64 blocks, others url blocks */
	img = json_pack("[{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}}, {s:s, s:{s:s}}]}]", "role", "user", "content", "type",
			"text", "text", "what is this?", "type", "image_url", "image_url", "url",
			"data:image/png;base64,iVBORw0KGgo=", "type", "image_url", "image_url", "url",
			"https://example.org/x.jpg");
	q.messages = img;
	body = p->request_build(&q);
	s = dump(json_object_get(body, "messages"));
	assert_string_equal(s, "[{\"content\":[{\"text\":\"what is this?\",\"type\":\"text\"},{\"source\":{\"data\":"
			       "\"iVBORw0KGgo=\",\"media_type\":\"image/png\",\"type\":\"base64\"},\"type\":\"image\"},"
			       "{\"source\":{\"type\":\"url\",\"url\":\"https://example.org/x.jpg\"},\"type\":\"image\"}],"
			       "\"role\":\"user\"}]");
	free(s);
	json_decref(body);
	json_decref(img);

	/* a bad data URL, a bad role, no turns: refused */
	img = json_pack("[{s:s, s:[{s:s, s:{s:s}}]}]", "role", "user", "content", "type", "image_url", "image_url",
			"url", "data:image/png,notbase64");
	q.messages = img;
	assert_null(p->request_build(&q));
	json_decref(img);
	img = json_pack("[{s:s, s:s}]", "role", "tool", "content", "x");
	q.messages = img;
	assert_null(p->request_build(&q));
	json_decref(img);
	img = json_pack("[{s:s, s:s}]", "role", "system", "content", "x");
	q.messages = img;
	assert_null(p->request_build(&q));
	json_decref(img);
	q.op = PROVIDER_COMPLETION;
	assert_null(p->request_build(&q));
}

static void test_anthropic_auth_headers(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(provider_anthropic.auth_headers("sk-ant-1", &b), 0);
	assert_string_equal(b.base, "x-api-key: sk-ant-1\nanthropic-version: 2023-06-01\n");
	buf_reset(&b);
	assert_int_equal(provider_anthropic.auth_headers("", &b), 0);
	assert_string_equal(b.base, "anthropic-version: 2023-06-01\n");
	buf_free(&b);
}

static int parse(const char *body, struct provider_reply *r)
{
	return provider_anthropic.reply_parse(body, strlen(body), PROVIDER_CHAT, r);
}

static void test_anthropic_reply_parse(void **state)
{
	struct provider_reply r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
			       "\"Final answer: C\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":12,"
			       "\"output_tokens\":5}}",
			       &r),
			 0);
	assert_string_equal(r.content, "Final answer: C");
	assert_string_equal(r.finish_reason, "end_turn");
	assert_false(r.length_cut);
	assert_int_equal(r.tokens_in, 12);
	assert_int_equal(r.tokens_out, 5);
	provider_reply_clear(&r);

	/* several text blocks are one reply; other blocks are skipped */
	assert_int_equal(parse("{\"content\":[{\"type\":\"text\",\"text\":\"ab\"},{\"type\":\"thinking\",\"thinking\":"
			       "\"x\"},{\"type\":\"text\",\"text\":\"cd\"}],\"stop_reason\":\"max_tokens\"}",
			       &r),
			 0);
	assert_string_equal(r.content, "abcd");
	assert_true(r.length_cut);
	provider_reply_clear(&r);

	assert_int_equal(parse("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}", &r),
			 -EBADMSG);
	assert_string_equal(r.err, "reply_error");
	assert_string_equal(r.error_code, "overloaded_error");
	assert_false(r.quota);
	provider_reply_clear(&r);
	assert_int_equal(parse("{\"type\":\"error\",\"error\":{\"type\":\"billing_error\",\"message\":\"no credit\"}}", &r),
			 -EBADMSG);
	assert_true(r.quota);
	provider_reply_clear(&r);
	assert_int_equal(parse("<html>", &r), -EBADMSG);
	assert_string_equal(r.err, "reply_not_json");
	provider_reply_clear(&r);
	assert_int_equal(parse("{\"content\":[{\"type\":\"text\",\"te", &r), -EBADMSG);
	assert_string_equal(r.err, "reply_truncated");
	provider_reply_clear(&r);
	assert_int_equal(parse("[1]", &r), -EBADMSG);
	assert_string_equal(r.err, "reply_not_object");
	provider_reply_clear(&r);
	assert_int_equal(parse("{\"content\":[]}", &r), -EBADMSG);
	assert_string_equal(r.err, "reply_no_content");
	provider_reply_clear(&r);
	assert_int_equal(parse("{\"content\":[{\"type\":\"text\",\"text\":\"\"}]}", &r), -EBADMSG);
	assert_string_equal(r.err, "reply_empty_content");
	provider_reply_clear(&r);
	assert_int_equal(parse("{\"content\":[{\"type\":\"text\",\"text\":7}]}", &r), -EBADMSG);
	assert_string_equal(r.err, "reply_bad_type");
	provider_reply_clear(&r);
	assert_int_equal(provider_anthropic.reply_parse(NULL, 0, PROVIDER_CHAT, &r), -EBADMSG);
	provider_reply_clear(&r);
}

static void test_anthropic_error_parse(void **state)
{
	struct provider_error e;
	const char *ov = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
	const char *rl = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}";
	const char *bad = "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"max_tokens\"}}";
	const char *bill = "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"Your credit "
			   "balance is too low\"}}";

	(void)state;
	provider_anthropic.error_parse(529, ov, strlen(ov), &e);
	assert_string_equal(e.code, "overloaded_error");
	assert_string_equal(e.msg, "Overloaded");
	assert_true(e.retryable);
	assert_false(e.quota);
	provider_anthropic.error_parse(429, rl, strlen(rl), &e);
	assert_string_equal(e.code, "rate_limit_error");
	assert_true(e.retryable);
	provider_anthropic.error_parse(400, bad, strlen(bad), &e);
	assert_false(e.retryable);
	provider_anthropic.error_parse(400, bill, strlen(bill), &e);
	assert_true(e.quota);
	assert_false(e.retryable);
	provider_anthropic.error_parse(502, "Bad Gateway", 11, &e);
	assert_true(e.retryable);
	provider_anthropic.error_parse(500, NULL, 0, &e);
	assert_true(e.retryable);
}

static void test_anthropic_rate_read(void **state)
{
	const struct provider *p = &provider_anthropic;
	struct engine_resp r;
	struct provider_rate rate;
	char reset[64];
	time_t t = time(NULL) + 30;
	struct tm tm;
	size_t n;

	(void)state;
	for (n = 0; p->rate_headers[n]; n++)
		;
	assert_true(n <= ENGINE_CAPTURE_MAX);
	gmtime_r(&t, &tm);
	strftime(reset, sizeof(reset), "%Y-%m-%dT%H:%M:%SZ", &tm);
	memset(&r, 0, sizeof(r));
	r.hdr_names = p->rate_headers;
	r.hdr_values[0] = "3";
	r.hdr_values[1] = "0";
	r.hdr_values[2] = "5000";
	r.hdr_values[3] = reset;
	r.hdr_values[4] = "1970-01-01T00:00:00Z";
	p->rate_read(&r, &rate);
	assert_string_equal(rate.retry_after, "3");
	assert_string_equal(rate.remaining_requests, "0");
	assert_string_equal(rate.remaining_tokens, "5000");
	/* an RFC 3339 time becomes seconds from now; a past one 0 */
	assert_non_null(rate.reset_requests);
	assert_true(atof(rate.reset_requests) > 20 && atof(rate.reset_requests) <= 31);
	assert_string_equal(rate.reset_tokens, "0.000");

	/* split input/output limits: the input form is read */
	memset(&r, 0, sizeof(r));
	r.hdr_names = p->rate_headers;
	r.hdr_values[5] = "700";
	r.hdr_values[6] = "garbage";
	p->rate_read(&r, &rate);
	assert_string_equal(rate.remaining_tokens, "700");
	assert_null(rate.reset_tokens);
	assert_null(rate.retry_after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_anthropic_request_build), cmocka_unit_test(test_anthropic_auth_headers),
		cmocka_unit_test(test_anthropic_reply_parse),   cmocka_unit_test(test_anthropic_error_parse),
		cmocka_unit_test(test_anthropic_rate_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
