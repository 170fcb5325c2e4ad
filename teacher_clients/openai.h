#ifndef MT_OPENAI_H
#define MT_OPENAI_H
/* The OpenAI-compatible wire format: building /v1/chat/completions and
 * /v1/completions request bodies, validating replies field by field into
 * typed errors, and pulling a JSON object out of a model's reply text.
 * Pure functions over jansson; no I/O, any thread. Nothing here crashes on
 * any input: every malformed reply becomes an enum openai_err. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum openai_kind { OPENAI_CHAT = 0, OPENAI_COMPLETION = 1, OPENAI_EMBEDDING = 2 };

/* What a reply was found to be. Stable names via openai_err_name(). */
enum openai_err {
	OPENAI_OK = 0,
	OPENAI_E_NOT_JSON,      /* "reply_not_json": body is not JSON at all */
	OPENAI_E_TRUNCATED,     /* "reply_truncated": JSON cut off before its end */
	OPENAI_E_NOT_OBJECT,    /* "reply_not_object": JSON, but not an object */
	OPENAI_E_ERROR_OBJECT,  /* "reply_error": {"error":{...}} (also inside a 200) */
	OPENAI_E_NO_CHOICES,    /* "reply_no_choices": choices missing or [] */
	OPENAI_E_BAD_TYPE,      /* "reply_bad_type": a field of the wrong JSON type */
	OPENAI_E_EMPTY_CONTENT, /* "reply_empty_content": content/text null or "" */
	OPENAI_E_TOO_LARGE,     /* "reply_too_large": over the size limit */
};

/* Request options. temperature < 0 leaves it out; max_tokens 0 leaves it out.
 * schema (borrowed, may be NULL) is a JSON Schema object: with use_schema it
 * is sent as response_format {"type":"json_schema",...}; without, and when
 * json_object is set, response_format {"type":"json_object"} is sent. */
struct openai_opts {
	double temperature;
	int64_t max_tokens;
	int64_t seed; /* > 0: "seed" */
	json_t *schema;
	const char *schema_name; /* NULL: "reply" */
	bool use_schema;
	bool json_object;
	/* /v1/completions only */
	int logprobs;  /* 0: leave out */
	bool echo;
};

/* The stable short name of e ("ok", "reply_truncated", ...). */
const char *openai_err_name(enum openai_err e);

/* A new chat request body {"model","messages",...}; messages is borrowed
 * (incref'd into the body). NULL on bad arguments (model or messages not an
 * array) or out of memory. The caller json_decref's the result. */
json_t *openai_chat_body(const char *model, json_t *messages, const struct openai_opts *o);
/* The text the client sends for openai_chat_body(model, messages, o):
 * jsondump_sorted's text of that body, byte for byte, written without the
 * body's tree (a new string, caller frees; *len, may be NULL, its length).
 * NULL when it cannot say, and the caller builds the tree: a body with a
 * response_format (not written here), bad arguments, a value jsondump
 * refuses (invalid UTF-8, a temperature that is not finite) or no memory. */
char *openai_chat_body_text(const char *model, json_t *messages, const struct openai_opts *o,
			    size_t *len);
/* A new /v1/completions body {"model","prompt",...} with logprobs/echo from
 * o. NULL on bad arguments. */
json_t *openai_completion_body(const char *model, const char *prompt, const struct openai_opts *o);
/* A new /v1/embeddings body {"model","input"} for one input text. NULL on
 * bad arguments or out of memory. */
json_t *openai_embedding_body(const char *model, const char *input);
/* A new message {"role":role,"content":text}. */
json_t *openai_message(const char *role, const char *text);
/* A new vision message: content parts [{"type":"text","text":text},
 * {"type":"image_url","image_url":{"url":url}}...] for n image URLs
 * (data: URLs from the dataset; never file paths). */
json_t *openai_message_images(const char *role, const char *text, const char *const *urls, size_t n);

/* A validated reply. content/finish_reason point into root or own and live
 * as long as the reply; root is a reference owned by the reply, own a
 * buffer it owns. */
struct openai_reply {
	enum openai_err err;
	char msg[256];          /* human message for err (names the field) */
	char error_code[64];    /* provider's error.code/type when err is ERROR_OBJECT */
	json_t *root;           /* the parsed body (NULL when not JSON) */
	const char *content;    /* chat: choices[0].message.content; completion: choices[0].text;
	                           embedding: "" (the vector is data[0].embedding in root) */
	const char *finish_reason; /* may be NULL */
	bool length_cut;        /* finish_reason == "length": noted, not an error */
	int64_t tokens_in, tokens_out; /* usage; 0 when absent */
	json_t *logprobs;       /* choices[0].logprobs when present (borrowed from root) */
	char *own;              /* openai_reply_parse_flat's text, or NULL */
};

/* Parses and validates a 2xx reply body of len bytes. Returns 0 when valid,
 * or -EBADMSG with r->err / r->msg set. r must be released with
 * openai_reply_clear() either way. Bodies over 64 MiB are refused. */
int openai_reply_parse(const char *body, size_t len, enum openai_kind kind, struct openai_reply *r);
/* The same result as openai_reply_parse (return, err, msg, error_code,
 * content, finish_reason, length_cut, tokens) without building a tree for
 * a valid chat or completion reply: then root is NULL, logprobs NULL (a
 * completion whose choices[0].logprobs is not null is read into a tree) and
 * content and finish_reason live in r->own. Everything else (an invalid
 * reply, an embedding, what common/jsonload.h's pull reader leaves to
 * jansson) is openai_reply_parse's, with root. Released with
 * openai_reply_clear. Pure; any thread. */
int openai_reply_parse_flat(const char *body, size_t len, enum openai_kind kind, struct openai_reply *r);
/* Releases r's reference and text; r is zeroed and reusable. */
void openai_reply_clear(struct openai_reply *r);

/* Reads a provider error body ({"error":{"message","code","type"}} or plain
 * text) into code (error.code, else error.type; "" when none) and msg (the
 * message, else the body's first bytes, sanitized). Never fails. */
void openai_error_parse(const char *body, size_t len, char *code, size_t codelen, char *msg,
			size_t msglen);

/* extract_json_object() (extract.h) under its old name. */
int openai_json_extract(const char *text, json_t **out, char *err, size_t errlen);

#endif
