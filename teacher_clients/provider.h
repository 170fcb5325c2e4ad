#ifndef MT_PROVIDER_H
#define MT_PROVIDER_H
/* Model providers as a table of rows. The client (client.c) owns the flow
 * (cache, queues, limiter, retries, JSON extraction, the store); a row owns
 * everything about one provider's wire format: where a request goes, its
 * body, its auth headers, what a reply and an error reply mean, and which
 * response headers feed the limiter. The client calls a provider only
 * through its row and never switches on a name.
 *
 * To add a provider: one file (provider_NAME.c) defining
 * `const struct provider provider_NAME`, one line in the table in
 * provider.c. The rows are constant; lookups are safe from any thread. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "teacher_clients/engine.h"

/* What a request is for; the index of provider.path. */
enum provider_op { PROVIDER_CHAT = 0, PROVIDER_COMPLETION, PROVIDER_EMBEDDING, PROVIDER_OP_N };

/* One request, everything borrowed for the call to request_build. */
struct batch_api;

struct provider_req {
	enum provider_op op;
	const char *model;
	json_t *messages;      /* chat: [{"role","content"}...] */
	const char *prompt;    /* completion */
	double temperature;    /* < 0: not sent */
	int64_t max_tokens;    /* 0: not sent */
	int64_t seed;          /* > 0: sent as the sampling seed */
	json_t *schema;        /* JSON Schema of the reply, or NULL */
	bool use_schema;       /* the endpoint takes schemas (json_schema = true) */
	int logprobs;          /* completion: 0 not sent */
	bool echo;             /* completion: echo the prompt */
};

/* A 2xx reply as the client uses it. content, finish_reason and logprobs
 * point into root or own, which the reply owns (provider_reply_clear). A row
 * may leave root NULL for an op whose callers read no more than these
 * fields (openai chat: no tree is built). */
struct provider_reply {
	const char *err;       /* NULL when valid, else a stable code "reply_*"
	                          (a static string: it outlives the reply) */
	char msg[256];         /* human message for err (names the field) */
	char error_code[64];   /* the provider's code when the body is an error */
	bool quota;            /* that error is billing/quota, not load: no retry */
	json_t *root;          /* the parsed body (NULL when not JSON) */
	const char *content;   /* the reply text */
	const char *finish_reason; /* may be NULL */
	bool length_cut;       /* stopped at max_tokens: noted, not an error */
	int64_t tokens_in, tokens_out; /* usage; 0 when absent */
	json_t *logprobs;      /* completion: the token logprobs, or NULL */
	char *own;             /* the text when root is NULL, or NULL */
};

/* A non-2xx reply, classified. */
struct provider_error {
	char code[64];         /* the provider's error code/type ("" when none) */
	char msg[200];         /* its message, printable ASCII ("" when none) */
	bool quota;            /* billing/quota exhausted: not load, never retried */
	bool retryable;        /* load or a transient fault: may be retried */
};

/* The limiter's inputs read from a response's headers; each NULL when not
 * known. Values in limits.h's formats (limits_note_headers and
 * limits_retry_after_parse); they point into the response or into scratch. */
struct provider_rate {
	const char *retry_after;
	const char *remaining_requests, *remaining_tokens;
	const char *reset_requests, *reset_tokens;
	char scratch[128];     /* for rows that must convert a value */
};

struct provider {
	const char *name;      /* "openai" */
	/* Appended to the endpoint's base_url; NULL: the op is not offered.
	 * The path is part of the cache key. */
	const char *path[PROVIDER_OP_N];
	/* Response headers rate_read needs (NULL-terminated, at most
	 * ENGINE_CAPTURE_MAX); the engine keeps only these. */
	const char *const *rate_headers;

	/* A new request body for q, or NULL when q is not valid for this
	 * provider (bad arguments, op not offered) or out of memory. The client
	 * dumps it compact with sorted keys: that text is sent, hashed and
	 * stored. */
	json_t *(*request_build)(const struct provider_req *q);
	/* Optional: that dumped text of request_build(q) itself, written
	 * without the tree (a new string, caller frees; *len its length), or
	 * NULL: the client builds the tree and dumps it. */
	char *(*request_text)(const struct provider_req *q, size_t *len);
	/* Appends to body (a request as sent, parsed again: it owns all its
	 * parts) the model's reply text and a user turn ask: the JSON repair.
	 * 0, -EINVAL (body has no turns to extend) or -ENOMEM. */
	int (*turns_append)(json_t *body, const char *reply_text, const char *ask);
	/* Appends to out the header lines ("Name: value\n") that authenticate
	 * with api_key (never NULL; "" when the endpoint has none). The key
	 * goes nowhere else. 0, or -ENOBUFS / -ENOMEM. */
	int (*auth_headers)(const char *api_key, struct buf *out);
	/* Parses and validates a 2xx body of len bytes for op into r. 0 when
	 * valid, else -EBADMSG with r->err and r->msg set. r is released with
	 * provider_reply_clear either way. Never crashes on any input. */
	int (*reply_parse)(const char *body, size_t len, enum provider_op op, struct provider_reply *r);
	/* Classifies a non-2xx reply (status, body of len bytes; body may be
	 * NULL) into e. Never fails. */
	void (*error_parse)(long status, const char *body, size_t len, struct provider_error *e);
	/* Reads the limiter's inputs from r's captured headers into out. */
	void (*rate_read)(const struct engine_resp *r, struct provider_rate *out);
	/* The provider's Batch API (batch.h), or NULL: teacher_mode "batch"
	 * then sends online. */
	const struct batch_api *batch;
};

/* The OpenAI-compatible API (/chat/completions, /completions, /embeddings). */
extern const struct provider provider_openai;
/* The Anthropic Messages API (/messages; x-api-key, anthropic-version). */
extern const struct provider provider_anthropic;

/* The row named name, or NULL. Names are compared exactly. */
const struct provider *provider_find(const char *name);
/* The default row (openai). */
const struct provider *provider_default(void);
/* Releases r's reference to its body and its text; r is zeroed and
 * reusable. r may be NULL. */
void provider_reply_clear(struct provider_reply *r);

#endif
