/* OpenAI-compatible request bodies and reply validation. */
#include "teacher_clients/openai.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teacher_clients/extract.h"
#include "common/jsondump.h"
#include "common/jsonload.h"

#define OPENAI_REPLY_MAX ((size_t)64 << 20)

const char *openai_err_name(enum openai_err e)
{
	switch (e) {
	case OPENAI_OK: return "ok";
	case OPENAI_E_NOT_JSON: return "reply_not_json";
	case OPENAI_E_TRUNCATED: return "reply_truncated";
	case OPENAI_E_NOT_OBJECT: return "reply_not_object";
	case OPENAI_E_ERROR_OBJECT: return "reply_error";
	case OPENAI_E_NO_CHOICES: return "reply_no_choices";
	case OPENAI_E_BAD_TYPE: return "reply_bad_type";
	case OPENAI_E_EMPTY_CONTENT: return "reply_empty_content";
	case OPENAI_E_TOO_LARGE: return "reply_too_large";
	}
	return "reply_invalid";
}

static int opts_apply(json_t *body, const struct openai_opts *o)
{
	int rc = 0;

	if (!o)
		return 0;
	if (o->temperature >= 0)
		rc |= json_object_set_new(body, "temperature", json_real(o->temperature));
	if (o->max_tokens > 0)
		rc |= json_object_set_new(body, "max_tokens", json_integer(o->max_tokens));
	if (o->seed > 0)
		rc |= json_object_set_new(body, "seed", json_integer(o->seed));
	return rc;
}

json_t *openai_chat_body(const char *model, json_t *messages, const struct openai_opts *o)
{
	json_t *body = NULL, *rf = NULL;
	int rc = 0;

	if (!model || !json_is_array(messages))
		return NULL;
	body = json_object();
	if (!body)
		return NULL;
	rc |= json_object_set_new(body, "model", json_string(model));
	rc |= json_object_set(body, "messages", messages);
	rc |= opts_apply(body, o);
	if (o && o->schema && o->use_schema) {
		rf = json_pack("{s:s, s:{s:s, s:O, s:b}}", "type", "json_schema", "json_schema", "name",
			       o->schema_name ? o->schema_name : "reply", "schema", o->schema, "strict", 1);
		rc |= rf ? json_object_set_new(body, "response_format", rf) : -1;
	} else if (o && o->json_object) {
		rc |= json_object_set_new(body, "response_format", json_pack("{s:s}", "type", "json_object"));
	}
	if (rc) {
		json_decref(body);
		return NULL;
	}
	return body;
}

char *openai_chat_body_text(const char *model, json_t *messages, const struct openai_opts *o,
			    size_t *len)
{
	char *b = NULL;
	size_t cap = 0, n = 0;
	int rc = 0;

	if (!model || !json_is_array(messages) ||
	    (o && ((o->schema && o->use_schema) || o->json_object)))
		return NULL;
	/* openai_chat_body's members in sorted order: max_tokens, messages,
	 * model, seed, temperature (opts_apply's conditions) */
	rc = jsondump_raw_append("{", 1, &b, &cap, &n);
	if (!rc && o && o->max_tokens > 0) {
		rc = jsondump_raw_append("\"max_tokens\":", 13, &b, &cap, &n);
		if (!rc)
			rc = jsondump_int_append(o->max_tokens, &b, &cap, &n);
		if (!rc)
			rc = jsondump_raw_append(",", 1, &b, &cap, &n);
	}
	if (!rc)
		rc = jsondump_raw_append("\"messages\":", 11, &b, &cap, &n);
	if (!rc)
		rc = jsondump_member_append(messages, &b, &cap, &n);
	if (!rc)
		rc = jsondump_raw_append(",\"model\":", 9, &b, &cap, &n);
	if (!rc)
		rc = jsondump_string_append(model, strlen(model), &b, &cap, &n);
	if (!rc && o && o->seed > 0) {
		rc = jsondump_raw_append(",\"seed\":", 8, &b, &cap, &n);
		if (!rc)
			rc = jsondump_int_append(o->seed, &b, &cap, &n);
	}
	if (!rc && o && o->temperature >= 0) {
		rc = jsondump_raw_append(",\"temperature\":", 15, &b, &cap, &n);
		if (!rc)
			rc = jsondump_real_append(o->temperature, &b, &cap, &n);
	}
	if (!rc)
		rc = jsondump_raw_append("}", 1, &b, &cap, &n);
	if (rc) {
		free(b);
		return NULL;
	}
	if (len)
		*len = n;
	return b;
}

json_t *openai_completion_body(const char *model, const char *prompt, const struct openai_opts *o)
{
	json_t *body = NULL;
	int rc = 0;

	if (!model || !prompt)
		return NULL;
	body = json_object();
	if (!body)
		return NULL;
	rc |= json_object_set_new(body, "model", json_string(model));
	rc |= json_object_set_new(body, "prompt", json_string(prompt));
	rc |= opts_apply(body, o);
	if (o && o->logprobs > 0)
		rc |= json_object_set_new(body, "logprobs", json_integer(o->logprobs));
	if (o && o->echo)
		rc |= json_object_set_new(body, "echo", json_true());
	if (rc) {
		json_decref(body);
		return NULL;
	}
	return body;
}

json_t *openai_embedding_body(const char *model, const char *input)
{
	if (!model || !input)
		return NULL;
	return json_pack("{s:s, s:s}", "model", model, "input", input);
}

json_t *openai_message(const char *role, const char *text)
{
	if (!role || !text)
		return NULL;
	return json_pack("{s:s, s:s}", "role", role, "content", text);
}

json_t *openai_message_images(const char *role, const char *text, const char *const *urls, size_t n)
{
	json_t *parts = NULL, *msg = NULL;
	size_t i;

	if (!role || !text || (n && !urls))
		return NULL;
	parts = json_array();
	if (!parts || json_array_append_new(parts, json_pack("{s:s, s:s}", "type", "text", "text", text)))
		goto fail;
	for (i = 0; i < n; i++) {
		json_t *p = json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url",
				      urls[i] ? urls[i] : "");
		if (json_array_append_new(parts, p))
			goto fail;
	}
	msg = json_pack("{s:s, s:o}", "role", role, "content", parts);
	return msg;
fail:
	json_decref(parts);
	return NULL;
}

static int reply_fail(struct openai_reply *r, enum openai_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int reply_fail(struct openai_reply *r, enum openai_err e, const char *fmt, ...)
{
	va_list ap;

	r->err = e;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	r->content = NULL;
	return -EBADMSG;
}

/* Copies s into out as printable ASCII, cut to outlen. */
static void sanitize(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;

	if (outlen == 0)
		return;
	for (i = 0; i < len && o + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
	}
	out[o] = '\0';
}

static void error_fields(json_t *err, char *code, size_t codelen, char *msg, size_t msglen)
{
	json_t *c = json_object_get(err, "code"), *t = json_object_get(err, "type");
	json_t *m = json_object_get(err, "message");

	if (json_is_string(c))
		snprintf(code, codelen, "%s", json_string_value(c));
	else if (json_is_integer(c))
		snprintf(code, codelen, "%lld", (long long)json_integer_value(c));
	else if (json_is_string(t))
		snprintf(code, codelen, "%s", json_string_value(t));
	if (json_is_string(m))
		sanitize(json_string_value(m), strlen(json_string_value(m)), msg, msglen);
	else if (json_is_string(err))
		sanitize(json_string_value(err), strlen(json_string_value(err)), msg, msglen);
}

void openai_error_parse(const char *body, size_t len, char *code, size_t codelen, char *msg,
			size_t msglen)
{
	json_t *root = NULL;

	if (codelen)
		code[0] = '\0';
	if (msglen)
		msg[0] = '\0';
	if (body && len)
		root = json_loadb(body, len, 0, NULL);
	if (json_is_object(root) && json_object_get(root, "error"))
		error_fields(json_object_get(root, "error"), code, codelen, msg, msglen);
	if (msglen && !msg[0] && body)
		sanitize(body, len > 200 ? 200 : len, msg, msglen);
	json_decref(root);
}

static int usage_read(struct openai_reply *r)
{
	json_t *u = json_object_get(r->root, "usage"), *pt, *ct;

	if (!u || json_is_null(u))
		return 0;
	if (!json_is_object(u))
		return reply_fail(r, OPENAI_E_BAD_TYPE, "reply field usage is not an object");
	pt = json_object_get(u, "prompt_tokens");
	ct = json_object_get(u, "completion_tokens");
	if ((pt && !json_is_integer(pt)) || (ct && !json_is_integer(ct)))
		return reply_fail(r, OPENAI_E_BAD_TYPE, "reply field usage.*_tokens is not an integer");
	r->tokens_in = pt ? json_integer_value(pt) : 0;
	r->tokens_out = ct ? json_integer_value(ct) : 0;
	if (r->tokens_in < 0 || r->tokens_out < 0)
		return reply_fail(r, OPENAI_E_BAD_TYPE, "reply field usage has negative tokens");
	return 0;
}

/* /v1/embeddings: {"data":[{"embedding":[numbers...]}]}; the vector stays
 * in root for the caller. */
static int embedding_check(struct openai_reply *r)
{
	json_t *data = json_object_get(r->root, "data"), *e, *x;
	size_t i;

	if (!data || json_is_null(data))
		return reply_fail(r, OPENAI_E_NO_CHOICES, "reply has no field data");
	if (!json_is_array(data) || json_array_size(data) == 0)
		return reply_fail(r, OPENAI_E_NO_CHOICES, "reply field data is not a non-empty array");
	e = json_object_get(json_array_get(data, 0), "embedding");
	if (!json_is_array(e) || json_array_size(e) == 0)
		return reply_fail(r, OPENAI_E_BAD_TYPE,
				  "reply field data[0].embedding is not a non-empty array");
	json_array_foreach(e, i, x)
		if (!json_is_number(x))
			return reply_fail(r, OPENAI_E_BAD_TYPE,
					  "reply field data[0].embedding[%zu] is not a number", i);
	r->content = "";
	r->err = OPENAI_OK;
	return 0;
}

int openai_reply_parse(const char *body, size_t len, enum openai_kind kind, struct openai_reply *r)
{
	json_error_t jerr;
	json_t *choices, *c0, *msg, *content, *fr, *err;
	size_t i;

	memset(r, 0, sizeof(*r));
	if (!body || len == 0)
		return reply_fail(r, OPENAI_E_NOT_JSON, "reply body is empty");
	if (len > OPENAI_REPLY_MAX)
		return reply_fail(r, OPENAI_E_TOO_LARGE, "reply body of %zu bytes is over the limit", len);
	r->root = jsonload_buf(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!r->root) {
		/* An error at the very end of the input means the JSON started
		 * well and was cut off: a truncated body, not a non-JSON one. */
		for (i = 0; i < len && isspace((unsigned char)body[i]); i++)
			;
		if (i < len && (body[i] == '{' || body[i] == '[') && (size_t)jerr.position >= len)
			return reply_fail(r, OPENAI_E_TRUNCATED, "reply body truncated after %zu bytes: %s",
					  len, jerr.text);
		return reply_fail(r, OPENAI_E_NOT_JSON, "reply body is not JSON (at byte %d: %s)",
				  jerr.position, jerr.text);
	}
	if (!json_is_object(r->root))
		return reply_fail(r, OPENAI_E_NOT_OBJECT, "reply body is JSON but not an object");
	err = json_object_get(r->root, "error");
	if (err && !json_is_null(err)) {
		char m[200] = "";
		error_fields(err, r->error_code, sizeof(r->error_code), m, sizeof(m));
		return reply_fail(r, OPENAI_E_ERROR_OBJECT, "reply carries an error object: %s%s%s",
				  r->error_code, r->error_code[0] ? ": " : "", m[0] ? m : "(no message)");
	}
	if (usage_read(r))
		return -EBADMSG;
	if (kind == OPENAI_EMBEDDING)
		return embedding_check(r);
	choices = json_object_get(r->root, "choices");
	if (!choices || json_is_null(choices))
		return reply_fail(r, OPENAI_E_NO_CHOICES, "reply has no field choices");
	if (!json_is_array(choices))
		return reply_fail(r, OPENAI_E_BAD_TYPE, "reply field choices is not an array");
	if (json_array_size(choices) == 0)
		return reply_fail(r, OPENAI_E_NO_CHOICES, "reply field choices is empty");
	c0 = json_array_get(choices, 0);
	if (!json_is_object(c0))
		return reply_fail(r, OPENAI_E_BAD_TYPE, "reply field choices[0] is not an object");
	fr = json_object_get(c0, "finish_reason");
	if (fr && !json_is_null(fr) && !json_is_string(fr))
		return reply_fail(r, OPENAI_E_BAD_TYPE, "reply field choices[0].finish_reason is not a string");
	r->finish_reason = json_is_string(fr) ? json_string_value(fr) : NULL;
	r->length_cut = r->finish_reason && strcmp(r->finish_reason, "length") == 0;
	if (kind == OPENAI_CHAT) {
		msg = json_object_get(c0, "message");
		if (!msg || json_is_null(msg))
			return reply_fail(r, OPENAI_E_NO_CHOICES, "reply field choices[0].message is missing");
		if (!json_is_object(msg))
			return reply_fail(r, OPENAI_E_BAD_TYPE, "reply field choices[0].message is not an object");
		content = json_object_get(msg, "content");
		if (!content || json_is_null(content))
			return reply_fail(r, OPENAI_E_EMPTY_CONTENT, "reply field choices[0].message.content is null%s",
					  r->length_cut ? " (finish_reason length)" : "");
		if (!json_is_string(content))
			return reply_fail(r, OPENAI_E_BAD_TYPE,
					  "reply field choices[0].message.content is not a string");
	} else {
		content = json_object_get(c0, "text");
		if (!content || json_is_null(content))
			return reply_fail(r, OPENAI_E_EMPTY_CONTENT, "reply field choices[0].text is null");
		if (!json_is_string(content))
			return reply_fail(r, OPENAI_E_BAD_TYPE, "reply field choices[0].text is not a string");
		r->logprobs = json_object_get(c0, "logprobs");
	}
	if (json_string_length(content) == 0)
		return reply_fail(r, OPENAI_E_EMPTY_CONTENT, "reply content is empty%s",
				  r->length_cut ? " (finish_reason length)" : "");
	r->content = json_string_value(content);
	r->err = OPENAI_OK;
	return 0;
}

/* ---- the flat path ---------------------------------------------------------
 * A valid chat or completion reply read in one pass without a tree: only
 * the fields above are taken (copied into one buffer the reply owns), the
 * rest of the document is checked and skipped. Anything but a valid reply
 * (and what the pull reader leaves to jansson) goes to openai_reply_parse,
 * so every failure, its code and its message are the tree path's. */

/* Longest finish_reason taken here (they are words: "stop", "length"). */
#define FLAT_FINISH_MAX 64

struct flat {
	struct jsonpull j;
	enum openai_kind kind;
	char *text;       /* content, NUL, room for finish_reason */
	size_t text_len;
	char fr[FLAT_FINISH_MAX];
	bool have_fr;
	int64_t tokens_in, tokens_out;
};

static bool flat_key(const struct flat *f, const char *k, size_t n)
{
	return f->j.len == n && memcmp(f->j.s, k, n) == 0;
}

#define FLAT_KEY(f, lit) flat_key((f), (lit), sizeof(lit) - 1)

/* Skips the value after a key. */
static bool flat_skip(struct flat *f)
{
	return jsonpull_skip(&f->j, jsonpull_next(&f->j));
}

/* The value after "content" / "text": a non-empty string. */
static bool flat_text(struct flat *f)
{
	if (jsonpull_next(&f->j) != JSONPULL_STR || f->j.len == 0 || f->text)
		return false;
	f->text = malloc(f->j.len + 1 + FLAT_FINISH_MAX);
	if (!f->text)
		return false;
	memcpy(f->text, f->j.s, f->j.len);
	f->text[f->j.len] = '\0';
	f->text_len = f->j.len;
	return true;
}

/* "usage": null, or an object whose *_tokens are integers >= 0. */
static bool flat_usage(struct flat *f)
{
	enum jsonpull_tok t = jsonpull_next(&f->j);

	if (t == JSONPULL_NULL)
		return true;
	if (t != JSONPULL_OBJ)
		return false;
	while ((t = jsonpull_next(&f->j)) == JSONPULL_KEY) {
		int64_t *to = FLAT_KEY(f, "prompt_tokens")       ? &f->tokens_in
			      : FLAT_KEY(f, "completion_tokens") ? &f->tokens_out
								 : NULL;

		if (!to) {
			if (!flat_skip(f))
				return false;
			continue;
		}
		if (jsonpull_next(&f->j) != JSONPULL_INT || f->j.i < 0)
			return false;
		*to = f->j.i;
	}
	return t == JSONPULL_OBJ_END;
}

/* choices[0].message: an object with a non-empty string content. */
static bool flat_message(struct flat *f)
{
	enum jsonpull_tok t;

	if (jsonpull_next(&f->j) != JSONPULL_OBJ)
		return false;
	while ((t = jsonpull_next(&f->j)) == JSONPULL_KEY) {
		if (!(FLAT_KEY(f, "content") ? flat_text(f) : flat_skip(f)))
			return false;
	}
	return t == JSONPULL_OBJ_END;
}

/* choices[0]: finish_reason, and message.content (chat) or text
 * (completion; its logprobs must be null or absent: they live only in a
 * tree). */
static bool flat_choice(struct flat *f)
{
	enum jsonpull_tok t;
	bool ok;

	if (jsonpull_next(&f->j) != JSONPULL_OBJ)
		return false;
	while ((t = jsonpull_next(&f->j)) == JSONPULL_KEY) {
		if (FLAT_KEY(f, "finish_reason")) {
			t = jsonpull_next(&f->j);
			if (t == JSONPULL_NULL)
				continue;
			if (t != JSONPULL_STR || f->j.len >= sizeof(f->fr))
				return false;
			memcpy(f->fr, f->j.s, f->j.len);
			f->fr[f->j.len] = '\0';
			f->have_fr = true;
			continue;
		}
		if (f->kind == OPENAI_CHAT && FLAT_KEY(f, "message"))
			ok = flat_message(f);
		else if (f->kind == OPENAI_COMPLETION && FLAT_KEY(f, "text"))
			ok = flat_text(f);
		else if (f->kind == OPENAI_COMPLETION && FLAT_KEY(f, "logprobs"))
			ok = jsonpull_next(&f->j) == JSONPULL_NULL;
		else
			ok = flat_skip(f);
		if (!ok)
			return false;
	}
	return t == JSONPULL_OBJ_END;
}

static bool flat_choices(struct flat *f)
{
	enum jsonpull_tok t;

	if (jsonpull_next(&f->j) != JSONPULL_ARR || !flat_choice(f))
		return false;
	while ((t = jsonpull_next(&f->j)) != JSONPULL_ARR_END)
		if (!jsonpull_skip(&f->j, t))
			return false;
	return true;
}

/* The whole document: true for a valid reply with its text taken. */
static bool flat_read(struct flat *f)
{
	enum jsonpull_tok t;
	bool ok;

	if (jsonpull_next(&f->j) != JSONPULL_OBJ)
		return false;
	while ((t = jsonpull_next(&f->j)) == JSONPULL_KEY) {
		if (FLAT_KEY(f, "error"))
			ok = jsonpull_next(&f->j) == JSONPULL_NULL;
		else if (FLAT_KEY(f, "usage"))
			ok = flat_usage(f);
		else if (FLAT_KEY(f, "choices"))
			ok = flat_choices(f);
		else
			ok = flat_skip(f);
		if (!ok)
			return false;
	}
	return t == JSONPULL_OBJ_END && jsonpull_next(&f->j) == JSONPULL_END && f->text;
}

int openai_reply_parse_flat(const char *body, size_t len, enum openai_kind kind, struct openai_reply *r)
{
	struct flat f;
	bool ok;

	if ((kind != OPENAI_CHAT && kind != OPENAI_COMPLETION) || !body || len == 0 ||
	    len > OPENAI_REPLY_MAX)
		return openai_reply_parse(body, len, kind, r);
	f.kind = kind;
	f.text = NULL;
	f.text_len = 0;
	f.have_fr = false;
	f.tokens_in = f.tokens_out = 0;
	jsonpull_init(&f.j, body, len);
	ok = flat_read(&f);
	jsonpull_done(&f.j);
	if (!ok) {
		free(f.text);
		return openai_reply_parse(body, len, kind, r);
	}
	memset(r, 0, sizeof(*r));
	r->own = f.text;
	r->content = f.text;
	if (f.have_fr) {
		char *fr = f.text + f.text_len + 1;

		memcpy(fr, f.fr, strlen(f.fr) + 1);
		r->finish_reason = fr;
		r->length_cut = strcmp(fr, "length") == 0;
	}
	r->tokens_in = f.tokens_in;
	r->tokens_out = f.tokens_out;
	r->err = OPENAI_OK;
	return 0;
}

void openai_reply_clear(struct openai_reply *r)
{
	if (!r)
		return;
	json_decref(r->root);
	free(r->own);
	memset(r, 0, sizeof(*r));
}

int openai_json_extract(const char *text, json_t **out, char *err, size_t errlen)
{
	return extract_json_object(text, out, err, errlen);
}
