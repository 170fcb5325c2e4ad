/* The Anthropic Messages API (/v1/messages) as a provider row.
 *
 * The client speaks OpenAI-shaped messages everywhere above this row; the
 * row turns them into a Messages body: system turns go to the top-level
 * "system" field, image_url parts become image blocks (base64 for data:
 * URLs, url sources otherwise), max_tokens is always sent (the API requires
 * it). Replies are the text blocks of "content"; errors are
 * {"type":"error","error":{"type","message"}}; the limiter's inputs come
 * from the anthropic-ratelimit-* headers, whose resets are RFC 3339 times
 * converted here to seconds from now. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/utf8.h"
#include "teacher_clients/batch.h"
#include "common/jsonload.h"
#include "teacher_clients/limits.h"
#include "teacher_clients/openai.h"
#include "teacher_clients/provider.h"

#define ANTHROPIC_VERSION "2023-06-01"
/* Sent when a step sets no max_tokens: the API refuses a body without it. */
#define ANTHROPIC_DEFAULT_MAX_TOKENS 4096
/* Replies bigger than this are refused before parsing (as openai.c). */
#define REPLY_MAX (64u * 1024 * 1024)

static const char *const rate_headers[] = {
	"retry-after",
	"anthropic-ratelimit-requests-remaining",
	"anthropic-ratelimit-tokens-remaining",
	"anthropic-ratelimit-requests-reset",
	"anthropic-ratelimit-tokens-reset",
	"anthropic-ratelimit-input-tokens-remaining",
	"anthropic-ratelimit-input-tokens-reset",
	NULL,
};

/* ---- requests ------------------------------------------------------------ */

/* An image block from an OpenAI image_url; NULL when url is not usable. */
static json_t *image_block(const char *url)
{
	const char *semi, *comma;
	char media[64];

	if (!url)
		return NULL;
	if (strncmp(url, "data:", 5) != 0)
		return json_pack("{s:s, s:{s:s, s:s}}", "type", "image", "source", "type", "url", "url", url);
	semi = strchr(url + 5, ';');
	comma = strchr(url + 5, ',');
	if (!semi || !comma || semi > comma || strncmp(semi, ";base64,", 8) != 0 ||
	    (size_t)(semi - (url + 5)) >= sizeof(media))
		return NULL;
	memcpy(media, url + 5, (size_t)(semi - (url + 5)));
	media[semi - (url + 5)] = '\0';
	return json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "image", "source", "type", "base64", "media_type",
			 media, "data", comma + 1);
}

/* A message's content as Messages content: a string stays a string; parts
 * become blocks. NULL on a part it cannot carry. */
static json_t *content_convert(json_t *content)
{
	json_t *out, *part, *blk;
	size_t i;

	if (json_is_string(content))
		return json_incref(content);
	if (!json_is_array(content))
		return NULL;
	out = json_array();
	json_array_foreach(content, i, part)
	{
		const char *type = json_string_value(json_object_get(part, "type"));

		blk = NULL;
		if (type && strcmp(type, "text") == 0 && json_is_string(json_object_get(part, "text")))
			blk = json_pack("{s:s, s:O}", "type", "text", "text", json_object_get(part, "text"));
		else if (type && strcmp(type, "image_url") == 0)
			blk = image_block(json_string_value(json_object_get(json_object_get(part, "image_url"), "url")));
		else if (type && strcmp(type, "image") == 0)
			blk = json_deep_copy(part); /* already a Messages block */
		if (!blk || json_array_append_new(out, blk)) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* The text of a system turn (string or text parts), appended to sys. */
static int system_append(json_t *content, char **sys)
{
	const char *t = json_string_value(content);
	json_t *part;
	size_t i;

	if (!t && json_is_array(content)) {
		json_array_foreach(content, i, part)
		{
			if (system_append(json_object_get(part, "text"), sys) < 0)
				return -EINVAL;
		}
		return 0;
	}
	if (!t)
		return -EINVAL;
	if (*sys) {
		size_t a = strlen(*sys), b = strlen(t);
		char *n = realloc(*sys, a + b + 3);

		if (!n)
			return -ENOMEM;
		memcpy(n + a, "\n\n", 2);
		memcpy(n + a + 2, t, b + 1);
		*sys = n;
	} else {
		*sys = strdup(t);
		if (!*sys)
			return -ENOMEM;
	}
	return 0;
}

static json_t *request_build(const struct provider_req *q)
{
	json_t *body = NULL, *msgs, *m, *content;
	char *sys = NULL;
	size_t i;

	if (q->op != PROVIDER_CHAT || !q->model || !json_is_array(q->messages))
		return NULL;
	msgs = json_array();
	json_array_foreach(q->messages, i, m)
	{
		const char *role = json_string_value(json_object_get(m, "role"));

		if (!role)
			goto fail;
		if (strcmp(role, "system") == 0) {
			if (system_append(json_object_get(m, "content"), &sys) < 0)
				goto fail;
			continue;
		}
		if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
			goto fail;
		content = content_convert(json_object_get(m, "content"));
		if (!content || json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role, "content", content)))
			goto fail;
	}
	if (json_array_size(msgs) == 0)
		goto fail;
	body = json_pack("{s:s, s:o, s:I}", "model", q->model, "messages", msgs, "max_tokens",
			 (json_int_t)(q->max_tokens > 0 ? q->max_tokens : ANTHROPIC_DEFAULT_MAX_TOKENS));
	msgs = NULL;
	if (!body)
		goto fail;
	if (sys && json_object_set_new(body, "system", json_string(sys)))
		goto fail;
	if (q->temperature >= 0 && json_object_set_new(body, "temperature", json_real(q->temperature)))
		goto fail;
	free(sys);
	return body;
fail:
	json_decref(msgs);
	json_decref(body);
	free(sys);
	return NULL;
}

static int turns_append(json_t *body, const char *reply_text, const char *ask)
{
	json_t *msgs = json_object_get(body, "messages");

	if (!json_is_array(msgs))
		return -EINVAL;
	if (json_array_append_new(msgs, openai_message("assistant", reply_text)) ||
	    json_array_append_new(msgs, openai_message("user", ask)))
		return -ENOMEM;
	return 0;
}

static int auth_headers(const char *api_key, struct buf *out)
{
	int rc = 0;

	if (api_key && *api_key)
		rc = buf_printf(out, "x-api-key: %s\n", api_key);
	return rc < 0 ? rc : buf_printf(out, "anthropic-version: %s\n", ANTHROPIC_VERSION);
}

/* ---- replies ------------------------------------------------------------- */

/* error.type and error.message of an error body into code and msg. */
static void error_fields(json_t *root, char *code, size_t codelen, char *msg, size_t msglen)
{
	json_t *e = json_object_get(root, "error");
	const char *t = json_string_value(json_object_get(e, "type"));
	const char *m = json_string_value(json_object_get(e, "message"));

	if (t)
		utf8_copy(code, codelen, t, NULL);
	if (m)
		utf8_copy(msg, msglen, m, "...");
}

static bool is_quota(const char *code, const char *msg)
{
	return strcmp(code, "billing_error") == 0 || strstr(msg, "credit balance") != NULL;
}

static int bad(struct provider_reply *r, const char *err, const char *fmt, const char *field)
{
	r->err = err;
	snprintf(r->msg, sizeof(r->msg), fmt, field);
	return -EBADMSG;
}

static int reply_parse(const char *body, size_t len, enum provider_op op, struct provider_reply *r)
{
	json_error_t jerr;
	json_t *root, *content, *blk, *usage;
	const char *type, *text = NULL;
	size_t i, ntext = 0;

	memset(r, 0, sizeof(*r));
	if (op != PROVIDER_CHAT)
		return bad(r, "reply_invalid", "%s", "no reply parser for this request kind");
	if (len > REPLY_MAX)
		return bad(r, "reply_too_large", "%s", "reply over 64 MiB");
	root = body ? jsonload_buf(body, len, 0, &jerr) : NULL;
	if (!root) {
		/* JSON that runs out before its end was cut short, not garbage. */
		if (body && len && (body[0] == '{' || body[0] == '[') && (size_t)jerr.position >= len)
			return bad(r, "reply_truncated", "%s", "reply JSON ends before it is complete");
		return bad(r, "reply_not_json", "%s", "reply is not JSON");
	}
	r->root = root;
	if (!json_is_object(root))
		return bad(r, "reply_not_object", "%s", "reply is JSON but not an object");
	type = json_string_value(json_object_get(root, "type"));
	if ((type && strcmp(type, "error") == 0) || json_object_get(root, "error")) {
		char msg[150] = "";

		error_fields(root, r->error_code, sizeof(r->error_code), msg, sizeof(msg));
		r->quota = is_quota(r->error_code, msg);
		r->err = "reply_error";
		snprintf(r->msg, sizeof(r->msg), "error object in the reply: %s%s%s", r->error_code,
			 r->error_code[0] ? ": " : "", msg);
		return -EBADMSG;
	}
	content = json_object_get(root, "content");
	if (!json_is_array(content) || json_array_size(content) == 0)
		return bad(r, "reply_no_content", "%s", "content missing or empty");
	json_array_foreach(content, i, blk)
	{
		const char *bt = json_string_value(json_object_get(blk, "type"));

		if (!bt)
			return bad(r, "reply_bad_type", "%s", "content[].type is not a string");
		if (strcmp(bt, "text") != 0)
			continue;
		if (!json_is_string(json_object_get(blk, "text")))
			return bad(r, "reply_bad_type", "%s", "content[].text is not a string");
		if (!text)
			text = json_string_value(json_object_get(blk, "text"));
		ntext++;
	}
	if (ntext > 1) {
		/* Several text blocks are one reply: joined, kept beside the body. */
		size_t total = 0;
		char *joined, *p;

		json_array_foreach(content, i, blk)
			total += json_string_length(json_object_get(blk, "text"));
		joined = malloc(total + 1);
		if (!joined)
			return bad(r, "reply_invalid", "%s", "out of memory");
		p = joined;
		json_array_foreach(content, i, blk)
		{
			json_t *t = json_object_get(blk, "text");

			if (json_is_string(t)) {
				memcpy(p, json_string_value(t), json_string_length(t));
				p += json_string_length(t);
			}
		}
		*p = '\0';
		json_object_set_new(root, "medthink_text", json_string(joined));
		free(joined);
		text = json_string_value(json_object_get(root, "medthink_text"));
	}
	if (!text || !*text)
		return bad(r, "reply_empty_content", "%s", "no text in content");
	r->content = text;
	r->finish_reason = json_string_value(json_object_get(root, "stop_reason"));
	r->length_cut = r->finish_reason && strcmp(r->finish_reason, "max_tokens") == 0;
	usage = json_object_get(root, "usage");
	r->tokens_in = json_integer_value(json_object_get(usage, "input_tokens")) +
		       json_integer_value(json_object_get(usage, "cache_read_input_tokens")) +
		       json_integer_value(json_object_get(usage, "cache_creation_input_tokens"));
	r->tokens_out = json_integer_value(json_object_get(usage, "output_tokens"));
	return 0;
}

static void error_parse(long status, const char *body, size_t len, struct provider_error *e)
{
	json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;

	memset(e, 0, sizeof(*e));
	if (json_is_object(root) && json_is_object(json_object_get(root, "error")))
		error_fields(root, e->code, sizeof(e->code), e->msg, sizeof(e->msg));
	else
		openai_error_parse(body, len, e->code, sizeof(e->code), e->msg, sizeof(e->msg));
	json_decref(root);
	e->quota = is_quota(e->code, e->msg);
	/* 529 overloaded_error is a 5xx; rate_limit_error a 429: both wait and
	 * retry. A billing error never does. */
	e->retryable = !e->quota && (limits_retryable(LIMITS_HTTP, status, e->code) ||
				     strcmp(e->code, "overloaded_error") == 0);
}

/* ---- rate limits --------------------------------------------------------- */

/* Seconds from wall_now to an RFC 3339 time ("2026-12-07T10:30:00Z",
 * fractions and +hh:mm offsets taken); -1 when unparsable. */
static double rfc3339_in(const char *v, double wall_now)
{
	struct tm tm;
	int y, mo, d, h, mi, n = 0;
	double s, frac = 0, off = 0;
	const char *p;
	time_t t;

	if (!v || sscanf(v, "%4d-%2d-%2dT%2d:%2d:%lf%n", &y, &mo, &d, &h, &mi, &s, &n) != 6)
		return -1;
	p = v + n;
	if (*p == '+' || *p == '-') {
		int oh, om;

		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
			return -1;
		off = (oh * 3600.0 + om * 60.0) * (*p == '+' ? 1 : -1);
	} else if (*p != 'Z' && *p != 'z') {
		return -1;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = (int)s;
	frac = s - (int)s;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	s = (double)t + frac - off - wall_now;
	return s < 0 ? 0 : s;
}

static const char *reset_text(const char *v, char *out, size_t n)
{
	struct timeval tv;
	double in;

	if (!v)
		return NULL;
	gettimeofday(&tv, NULL);
	in = rfc3339_in(v, (double)tv.tv_sec + tv.tv_usec / 1e6);
	if (in < 0)
		return NULL;
	snprintf(out, n, "%.3f", in);
	return out;
}

static void rate_read(const struct engine_resp *r, struct provider_rate *out)
{
	const char *tok_left = engine_resp_header(r, rate_headers[2]);
	const char *tok_reset = engine_resp_header(r, rate_headers[4]);

	/* Accounts with split input/output limits send only the input form. */
	if (!tok_left) {
		tok_left = engine_resp_header(r, rate_headers[5]);
		tok_reset = engine_resp_header(r, rate_headers[6]);
	}
	out->retry_after = engine_resp_header(r, rate_headers[0]);
	out->remaining_requests = engine_resp_header(r, rate_headers[1]);
	out->remaining_tokens = tok_left;
	out->reset_requests = reset_text(engine_resp_header(r, rate_headers[3]), out->scratch, 64);
	out->reset_tokens = reset_text(tok_reset, out->scratch + 64, 64);
}

const struct provider provider_anthropic = {
	.name = "anthropic",
	.path = { [PROVIDER_CHAT] = "/messages" },
	.rate_headers = rate_headers,
	.request_build = request_build,
	.turns_append = turns_append,
	.auth_headers = auth_headers,
	.reply_parse = reply_parse,
	.error_parse = error_parse,
	.rate_read = rate_read,
	.batch = &batch_anthropic,
};
