#ifndef MT_STORE_CALLS_H
#define MT_STORE_CALLS_H
/* The calls table: one row per model call with its outcome. A row with
 * error NULL is a cache entry: the same request hash is answered from it and
 * never sent again. Same rules as store/store.h (loop thread, 0 or negative
 * errno). */

#include <stdint.h>

struct store;

/* A call row. For store_call_insert every pointer is borrowed; for
 * store_call_find the strings are owned by the struct (store_call_clear). */
struct store_call {
	int64_t id;
	char *hash;        /* sha256 hex of the canonical request (64 chars) */
	int64_t job_id;    /* 0: none (stored as NULL) */
	char *endpoint;    /* config section name, e.g. "teacher.gpt4o" */
	char *model;
	char *request;     /* request body JSON; never any key */
	char *reply;       /* reply body as received; may be NULL */
	int status;        /* HTTP status of the last attempt (0: none) */
	int attempts;
	double latency_ms;
	int64_t tokens_in, tokens_out;
	double cost_usd;
	char *error;       /* NULL on success */
	double created_at; /* 0: store_now() */
};

/* Inserts a row; *id (may be NULL) gets its row id. hash, endpoint, model,
 * request are required (-EINVAL). Meant to run inside a store_batch_add()
 * apply function. */
int store_call_insert(struct store *st, const struct store_call *c, int64_t *id);
/* Finds the newest successful call (error NULL) with this hash and fills out
 * with owned copies. -ENOENT when none. out is zeroed first; release it with
 * store_call_clear() after a 0 return. */
int store_call_find(struct store *st, const char *hash, struct store_call *out);
/* Frees the strings of a row filled by store_call_find; zeroes it. */
void store_call_clear(struct store_call *c);

#endif
