#ifndef MT_CLIENT_H
#define MT_CLIENT_H
/* The model client: every teacher and student call of the pipeline.
 *
 *   client_chat() -> canonical request JSON -> SHA-256 -> cached in the store?
 *   yes: answered from the stored reply on the next loop turn (no send).
 *   no:  queued per endpoint -> a replica (the pool's least busy one that is
 *        in; one for a plain endpoint) -> its limiter (concurrency, rpm, tpm, server
 *        headers, breaker) -> engine (curl on the loop) -> reply validated ->
 *        JSON extracted when asked (one repair request if that fails) ->
 *        retries with backoff for the retryable failures -> the call row is
 *        written through the store's group commit -> after the COMMIT the
 *        callback runs. A reply whose row cannot be committed is held in
 *        memory and its row retried with backoff (never sent again; a call
 *        with the same hash meanwhile waits for it).
 *
 * The wire format (paths, bodies, auth headers, reply and error parsing,
 * rate-limit headers) is the endpoint's provider row (provider.h); the
 * client calls it only through the row.
 *
 * Threads: the loop thread only. Keys: the api_key given in the endpoint
 * config is sent in the provider's auth headers (OpenAI: Authorization)
 * and nowhere else: never logged, stored, hashed or put in an error
 * message. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct client;
struct provider;
struct store;

/* Endpoints per client, teachers and students together. The daemon's config
 * refuses more than this (CONFIG_MAX_ENDPOINTS), so what --check-config
 * accepts also starts. */
#define CLIENT_MAX_ENDPOINTS 128

enum client_kind { CLIENT_TEACHER = 0, CLIENT_STUDENT = 1 };

/* One endpoint, as read from a [teacher.NAME] / [student.NAME] section.
 * Strings are copied by client_endpoint_add. 0 means "default" where said. */
struct client_endpoint_cfg {
	const char *name;          /* section name, e.g. "teacher.gpt4o" (unique) */
	enum client_kind kind;
	const char *base_url;      /* e.g. "https://api.openai.com/v1" (no trailing path);
	                              several URLs separated by spaces: a pool of replicas
	                              of the same model (pool.h), at most POOL_MAX_REPLICAS */
	const char *model;
	const char *api_key;       /* resolved from api_key_env by the daemon; NULL/"" none */
	int max_concurrency;       /* 0: 16 */
	int rpm;                   /* 0: unlimited (then adaptive concurrency) */
	int64_t tpm;               /* 0: unlimited */
	double timeout_s;          /* per attempt; 0: 120 */
	int max_retries;           /* -1: 0 retries; 0: 6 */
	double price_in_per_mtok;  /* USD per million prompt tokens */
	double price_out_per_mtok; /* USD per million completion tokens */
	/* Prices of calls sent through the provider's Batch API (client_opts
	 * batch); < 0: half the online price (the daemon passes them resolved). */
	double batch_price_in_per_mtok, batch_price_out_per_mtok;
	bool json_schema;          /* send response_format json_schema when a schema is given */
	const struct provider *provider; /* the wire format (provider.h); NULL: openai */
	/* Tuning, mostly for tests (0: defaults 0.5 s, 60 s, 5, 30 s). */
	double backoff_base_s, backoff_max_s;
	int breaker_failures;
	double breaker_cooldown_s;
	/* An endpoint whose every attempt has failed for this long (no success
	 * in between) is reported down to the listener; 0: 120 s. */
	double down_after_s;
	/* A pool: seconds between the health checks of a replica taken out
	 * (0: POOL_CHECK_S). */
	double replica_check_s;
};

/* Client-wide settings; NULL in client_new means all defaults. */
struct client_settings {
	long max_host_connections; /* curl's per-host connection cap; 0: 256 */
	size_t reply_max;          /* reply body cap; 0: 8 MiB */
	double batch_gather_s;     /* batch lane: gathering before a batch goes; 0: 1 s */
	double batch_poll_s;       /* batch lane: between polls of a batch; 0: 30 s */
};

/* Per-call options (borrowed for the duration of the client_chat call). */
struct client_opts {
	int64_t job_id;        /* 0: none; used by client_cancel_job and stored */
	double temperature;    /* < 0: not sent */
	int64_t max_tokens;    /* 0: not sent */
	int64_t seed;          /* > 0: sent as "seed" (a sampled call: each seed is its
	                          own request, so its own cache entry) */
	json_t *schema;        /* JSON Schema of the reply or NULL (sent only where the
	                          endpoint has json_schema) */
	bool expect_json;      /* extract a JSON object from the reply text */
	/* NULL: none. Else mixed into the cache key (and so into the stored
	 * hash): a request asked under another tag is sent again, for a model
	 * retrained behind the same URL and model name. */
	const char *cache_tag;
	/* client_complete only */
	int logprobs;          /* 0: not sent */
	bool echo;
	/* Not answered from the store even when a committed reply has the same
	 * hash (a capability probe must reach the engine as it is now); its
	 * call row is still stored. */
	bool no_cache;
	/* teacher_mode "batch": send through the provider's Batch API (batch.h)
	 * when the endpoint's provider has one; the call ends when the batch
	 * has its result (hours, not seconds). */
	bool batch;
};

/* Final-failure classes, for the per-endpoint error counters. */
enum client_err_class {
	CLIENT_ERRC_NETWORK = 0, /* connect / reset / TLS */
	CLIENT_ERRC_TIMEOUT,
	CLIENT_ERRC_HTTP_4XX,    /* a non-retryable 4xx */
	CLIENT_ERRC_RATE_LIMIT,  /* 429 after all retries */
	CLIENT_ERRC_QUOTA,       /* insufficient_quota: billing, not load */
	CLIENT_ERRC_HTTP_5XX,
	CLIENT_ERRC_REPLY,       /* malformed 2xx reply */
	CLIENT_ERRC_JSON,        /* no JSON object in the reply, after the repair */
	CLIENT_ERRC_CANCELLED,
	CLIENT_ERRC_STORE,
	CLIENT_ERRC_N
};

/* What a call came to; valid only during the callback (copy or incref). */
struct client_result {
	int err;               /* 0, or negative errno: -ETIMEDOUT, -ECONNREFUSED,
	                          -ECONNRESET, -EHOSTUNREACH, -EPROTO (HTTP 4xx or TLS), -EAGAIN
	                          (429 after retries), -EDQUOT (insufficient_quota),
	                          -EREMOTEIO (5xx after retries), -EBADMSG (invalid reply or
	                          no JSON), -EMSGSIZE, -ECANCELED, -ESHUTDOWN, -EIO (store) */
	const char *code;      /* stable short name: "ok", "timeout", "network",
	                          "http_error", "rate_limited", "insufficient_quota",
	                          "server_error", "reply_*" (the provider's reply
	                          checks; openai.h for openai), "json_extract",
	                          "cancelled", "store" */
	const char *message;   /* one line naming endpoint and cause ("" when ok) */
	const char *content;   /* the reply text (NULL on error) */
	json_t *json;          /* with expect_json: the extracted object (borrowed) */
	json_t *reply;         /* the whole parsed reply body (borrowed; logprobs live here);
	                          NULL for a chat reply read without a tree */
	bool length_cut;       /* finish_reason was "length" */
	long status;           /* HTTP status of the last attempt (0: none) */
	int64_t tokens_in, tokens_out; /* this call's new usage (0 when cached) */
	double cost_usd;       /* new spend: tokens * price / 1e6 (0 when cached) */
	double latency_ms;     /* first send to final reply (0 when cached) */
	int attempts;          /* HTTP requests sent for this call (0 when cached) */
	bool cached;           /* answered from the store, nothing sent */
	int64_t call_id;       /* the calls row (the cached one when cached; 0: none) */
};

typedef void (*client_cb)(void *ud, const struct client_result *r);

/* Per-endpoint counters for /metrics. */
/* Upper bounds, in seconds, of the latency histogram's buckets (ascending;
 * the +Inf bucket is latency_count). */
#define CLIENT_LATENCY_BUCKETS 12
extern const double client_latency_le_s[CLIENT_LATENCY_BUCKETS];

struct client_stats {
	const char *name;      /* borrowed from the client */
	enum client_kind kind;
	uint64_t calls;        /* submitted */
	uint64_t cached;       /* answered from the store */
	uint64_t ok;           /* answered by the endpoint */
	uint64_t requests;     /* HTTP attempts sent (incl. retries and repairs) */
	uint64_t retries;
	uint64_t repairs;
	uint64_t http_429;
	uint64_t errors[CLIENT_ERRC_N];
	int in_flight, queued;
	int window;            /* current concurrency cap */
	int breaker;           /* 0 closed, 1 open, 2 half-open */
	int64_t tokens_in, tokens_out;
	double cost_usd;
	double latency_ms_sum; /* over answered calls */
	uint64_t latency_count;
	bool down;             /* every attempt failed for down_after_s */
	const char *last_error; /* the last failed attempt's message while failing
	                           ("" when the last attempt succeeded); borrowed */
	uint64_t held;         /* replies received but not yet stored (held in memory) */
	/* answered calls by latency: [b] counts those in (le[b-1], le[b]]
	 * (not cumulative); slower than the last bound only in latency_count */
	uint64_t latency_bucket[CLIENT_LATENCY_BUCKETS];
	int replicas;          /* URLs behind the endpoint (1: a plain endpoint; more: a pool) */
	int replicas_in;       /* of them, those not taken out */
};

/* One replica of an endpoint (a plain endpoint has one), for /metrics and
 * the status. Strings are borrowed from the client. */
struct client_replica_stats {
	const char *url;       /* its base URL */
	bool out;              /* taken out of the pool (failing; health-checked) */
	int up;                /* !out, as a number for /metrics */
	int in_flight;
	int window;            /* its concurrency cap */
	int breaker;           /* 0 closed, 1 open, 2 half-open */
	uint64_t requests;     /* attempts sent to it */
	uint64_t ok;           /* attempts it answered */
	uint64_t failures;     /* attempts that failed there (network, timeout, 5xx, broken reply) */
	uint64_t taken_out;    /* times it was taken out */
	uint64_t checks;       /* health checks sent while out */
	const char *last_error; /* its last failure since its last success ("" none) */
};

/* What the client tells its owner (the runner), on the loop thread. Any
 * member may be NULL. */
struct client_listener {
	/* A reply was received and billed: its tokens and cost count now, before
	 * its call row is committed (the result's counts repeat them). */
	void (*spent)(void *ud, int64_t job_id, const char *endpoint, int64_t tokens_in,
		      int64_t tokens_out, double cost_usd);
	/* The store refused call rows CLIENT_STORE_FAILS times in a row (failing
	 * true, err the last error: -ENOSPC, -EIO...), or took one again
	 * (failing false). While failing no new request is sent; received
	 * replies are held in memory and their rows retried with backoff. */
	void (*store)(void *ud, bool failing, int err);
	/* endpoint has failed every attempt for failing_s >= down_after_s;
	 * last_error names the cause. Repeated every down_after_s while it stays
	 * down and has calls waiting. */
	void (*endpoint_down)(void *ud, const char *endpoint, double failing_s, const char *last_error);
};

/* Failed commits (retry rounds) of a held reply before the listener hears
 * that the store is failing; the backoff between rounds. */
#define CLIENT_STORE_FAILS 3
#define CLIENT_HOLD_FIRST_S 0.05
#define CLIENT_HOLD_MAX_S 5.0

/* Creates a client on loop; st may be NULL (no cache, nothing stored: for
 * tests and tools). Both are borrowed and must outlive the client.
 * Returns 0 and *out, or -ENOMEM / -EIO. */
int client_new(uv_loop_t *loop, struct store *st, const struct client_settings *s, struct client **out);
/* Registers an endpoint (copies cfg; cfg->provider is borrowed and must
 * outlive the client). -EEXIST for a duplicate name, -EINVAL for a missing
 * name/base_url/model, a negative limit, a provider row missing a function
 * or a key too long for its header, -ENOSPC past
 * CLIENT_MAX_ENDPOINTS, -ENOMEM. */
int client_endpoint_add(struct client *c, const struct client_endpoint_cfg *cfg);

/* Submits a chat completion: messages (borrowed; a JSON array of
 * {"role","content"} with string content or content parts) to the named
 * endpoint. Returns 0 and calls cb(ud, result) exactly once later from the
 * loop, never inside client_chat; or fails with -ENOENT (no such endpoint),
 * -EINVAL (bad messages/options, or the endpoint's provider has no chat),
 * -ESHUTDOWN (closing) or -ENOMEM and never
 * calls cb. The callback of a sent call runs only after its call row is
 * committed (when the client has a store). */
int client_chat(struct client *c, const char *endpoint, const struct client_opts *o, json_t *messages,
		client_cb cb, void *ud);
/* The same for /v1/completions with prompt (borrowed) and o->logprobs /
 * o->echo; result->reply holds choices[0].logprobs. */
int client_complete(struct client *c, const char *endpoint, const struct client_opts *o,
		    const char *prompt, client_cb cb, void *ud);
/* The same for /v1/embeddings of one input text (borrowed); result->reply
 * holds data[0].embedding, result->content is "". */
int client_embed(struct client *c, const char *endpoint, const struct client_opts *o,
		 const char *input, client_cb cb, void *ud);
/* Fails every call of job_id that is queued and not on the wire (also those
 * waiting to retry) with -ECANCELED; their callbacks run on the next loop
 * turn. Calls on the wire finish normally when they succeed; when they fail
 * they are not retried but end with -ECANCELED too. A received reply held
 * for its store commit is never cancelled. Returns how many were cancelled. */
int client_cancel_job(struct client *c, int64_t job_id);

/* Batch lane (batch.h). Loads the unfinished batches from the store and
 * resumes polling them; call once after every endpoint is added. 0 or a
 * negative errno. */
int client_batch_resume(struct client *c);
/* Cancels job_id's provider batches and its requests not yet submitted
 * (their calls end with -ECANCELED). Returns how many batches were asked
 * to cancel. */
int client_batch_cancel_job(struct client *c, int64_t job_id);
/* The prices of endpoint's batch calls (USD per million tokens). 0 or -ENOENT. */
int client_endpoint_batch_prices(const struct client *c, const char *endpoint, double *in, double *out);
struct batch_job_stats;
/* job_id's batch progress (batch.h). */
void client_batch_job_stats(const struct client *c, int64_t job_id, struct batch_job_stats *out);

/* Sets the listener (one; l is borrowed and must outlive the client; NULL
 * removes it). */
void client_set_listener(struct client *c, const struct client_listener *l, void *ud);
/* Re-arms a down endpoint: forgets its failures so it is judged afresh (the
 * next down report comes after down_after_s more of failures) and lets an
 * open breaker send its probe now. 0, or -ENOENT. */
int client_endpoint_rearm(struct client *c, const char *endpoint);

/* Number of endpoints, and the stats of endpoint i (0-based, in the order
 * added) or by name. Return 0, or -ENOENT. */
size_t client_endpoint_count(const struct client *c);
int client_stats_at(const struct client *c, size_t i, struct client_stats *out);
int client_stats_get(const struct client *c, const char *endpoint, struct client_stats *out);
/* Replicas of endpoint i (1 for a plain endpoint, 0 for no such endpoint),
 * and the stats of its replica r (in the order of its base_url). 0 or
 * -ENOENT. */
size_t client_replica_count(const struct client *c, size_t i);
int client_replica_stats_at(const struct client *c, size_t i, size_t r, struct client_replica_stats *out);
/* The stable name of an error class ("network", "timeout", ...). */
const char *client_err_class_name(enum client_err_class k);

/* Closes the client: queued calls fail with -ECANCELED, calls on the wire
 * are aborted (-ECANCELED), calls waiting for their store commit still get
 * it (the daemon keeps flushing, or store_close cancels them; replies held
 * for a failing store end with -EIO "store"). When every
 * callback has run and every handle is closed, closed(ud) runs (may be NULL)
 * and the client is freed. c may be NULL. */
void client_close(struct client *c, void (*closed)(void *ud), void *ud);

#endif
