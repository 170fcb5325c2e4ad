/* The OpenAI-compatible API as a provider row, over openai.c's bodies and
 * reply checks. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "teacher_clients/batch.h"
#include "teacher_clients/limits.h"
#include "teacher_clients/openai.h"
#include "teacher_clients/provider.h"

static const char *const rate_headers[] = {
	"retry-after",
	"x-ratelimit-remaining-requests",
	"x-ratelimit-remaining-tokens",
	"x-ratelimit-reset-requests",
	"x-ratelimit-reset-tokens",
	NULL,
};

static void req_opts(const struct provider_req *q, struct openai_opts *o_out);

static json_t *request_build(const struct provider_req *q)
{
	struct openai_opts o;

	req_opts(q, &o);
	if (q->op == PROVIDER_CHAT)
		return openai_chat_body(q->model, q->messages, &o);
	if (q->op == PROVIDER_COMPLETION)
		return openai_completion_body(q->model, q->prompt, &o);
	if (q->op == PROVIDER_EMBEDDING)
		return openai_embedding_body(q->model, q->prompt);
	return NULL;
}

/* A chat body's text without its tree (the others: NULL, the tree). */
static char *request_text(const struct provider_req *q, size_t *len)
{
	struct openai_opts o;

	if (q->op != PROVIDER_CHAT)
		return NULL;
	req_opts(q, &o);
	return openai_chat_body_text(q->model, q->messages, &o, len);
}

static void req_opts(const struct provider_req *q, struct openai_opts *o_out)
{
	struct openai_opts o;

	memset(&o, 0, sizeof(o));
	o.temperature = q->temperature;
	o.max_tokens = q->max_tokens;
	o.seed = q->seed;
	o.schema = q->schema;
	o.use_schema = q->use_schema && q->schema;
	o.logprobs = q->logprobs;
	o.echo = q->echo;
	*o_out = o;
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
	if (!api_key || !*api_key)
		return 0;
	return buf_printf(out, "Authorization: Bearer %s\n", api_key);
}

static int reply_parse(const char *body, size_t len, enum provider_op op, struct provider_reply *r)
{
	struct openai_reply o;
	int rc;

	memset(r, 0, sizeof(*r));
	if (op != PROVIDER_CHAT && op != PROVIDER_COMPLETION && op != PROVIDER_EMBEDDING) {
		r->err = "reply_invalid";
		snprintf(r->msg, sizeof(r->msg), "no reply parser for this request kind");
		return -EBADMSG;
	}
	/* Chat callers read only the text and usage: no tree (client.h's
	 * result->reply is NULL for chat). Completions and embeddings keep
	 * theirs: stages read logprobs, the model and the vector there. */
	if (op == PROVIDER_CHAT)
		rc = openai_reply_parse_flat(body, len, OPENAI_CHAT, &o);
	else
		rc = openai_reply_parse(body, len,
					op == PROVIDER_COMPLETION ? OPENAI_COMPLETION : OPENAI_EMBEDDING, &o);
	r->root = o.root; /* taken: o is not cleared */
	r->own = o.own;
	r->content = o.content;
	r->finish_reason = o.finish_reason;
	r->length_cut = o.length_cut;
	r->tokens_in = o.tokens_in;
	r->tokens_out = o.tokens_out;
	r->logprobs = o.logprobs;
	if (rc < 0) {
		r->err = openai_err_name(o.err);
		snprintf(r->msg, sizeof(r->msg), "%s", o.msg);
		snprintf(r->error_code, sizeof(r->error_code), "%s", o.error_code);
		r->quota = o.err == OPENAI_E_ERROR_OBJECT && strcmp(o.error_code, "insufficient_quota") == 0;
	}
	return rc;
}

static void error_parse(long status, const char *body, size_t len, struct provider_error *e)
{
	memset(e, 0, sizeof(*e));
	openai_error_parse(body, len, e->code, sizeof(e->code), e->msg, sizeof(e->msg));
	/* A 429 for billing is not load: waiting does not help. */
	e->quota = status == 429 && strcmp(e->code, "insufficient_quota") == 0;
	e->retryable = limits_retryable(LIMITS_HTTP, status, e->code);
}

static void rate_read(const struct engine_resp *r, struct provider_rate *out)
{
	out->retry_after = engine_resp_header(r, rate_headers[0]);
	out->remaining_requests = engine_resp_header(r, rate_headers[1]);
	out->remaining_tokens = engine_resp_header(r, rate_headers[2]);
	out->reset_requests = engine_resp_header(r, rate_headers[3]);
	out->reset_tokens = engine_resp_header(r, rate_headers[4]);
}

const struct provider provider_openai = {
	.name = "openai",
	.path = { [PROVIDER_CHAT] = "/chat/completions",
		  [PROVIDER_COMPLETION] = "/completions",
		  [PROVIDER_EMBEDDING] = "/embeddings" },
	.rate_headers = rate_headers,
	.request_build = request_build,
	.request_text = request_text,
	.turns_append = turns_append,
	.auth_headers = auth_headers,
	.reply_parse = reply_parse,
	.error_parse = error_parse,
	.rate_read = rate_read,
	.batch = &batch_openai,
};
