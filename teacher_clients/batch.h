#ifndef MT_BATCH_H
#define MT_BATCH_H
/* The batch lane: teacher calls of a job with "teacher_mode":"batch" go
 * through the provider's Batch API instead of one HTTP request each.
 *
 *   client.c hands a request (its body, its cache key) to the lane ->
 *   the lane gathers requests per endpoint and job for a moment, splits them
 *   under the provider's limits (requests, bytes per batch), writes the batch
 *   and its requests (custom ids) to the store, then uploads and submits ->
 *   polls the batch -> when it has ended, downloads the results and hands
 *   each one back (to the waiting call, which validates and stores it as its
 *   call row exactly as an online reply, or, when nobody waits any more,
 *   stores the call row itself so the cache answers the next asker).
 *
 * A request whose key is in an open batch is never submitted again: a
 * second asker (a restart re-dispatching the same task) waits for the same
 * result. A restart reloads unfinished batches from the store and polls
 * them. Only requests that errored or expired are submitted again, by their
 * callers' retries, never a whole batch.
 *
 * The wire formats are rows (struct batch_api): batch_openai.c (files +
 * batches) and batch_anthropic.c (message batches); a provider row names its
 * batch row (provider.batch). The lane's HTTP goes through an engine of its
 * own on the caller's loop (results files are large); it never blocks.
 *
 * Threads: the loop thread only. Keys: the endpoint's auth header lines are
 * sent and never logged or stored. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"

struct store;
struct provider;

/* ---- the rows -------------------------------------------------------------- */

/* One HTTP request a row asks for. Strings owned by the struct
 * (batch_http_clear). */
struct batch_http {
	char *method;        /* "GET" or "POST" */
	char *url;
	char *content_type;  /* NULL: application/json */
	char *body;          /* NULL for GET */
	size_t body_len;
};

/* What a poll found. */
struct batch_poll {
	bool ended;          /* no more progress: results can be fetched */
	char status[32];     /* the provider's own state name */
	int64_t total, done, failed; /* request counts (0 when not told) */
	/* Result documents to download (JSONL) once ended; "" when none. */
	char result_url[2][512];
};

enum batch_result_kind { BATCH_SUCCEEDED = 0, BATCH_ERRORED, BATCH_EXPIRED, BATCH_CANCELED };

/* One result line. body points into scratch owned by the caller's struct
 * (batch_result_clear). */
struct batch_result {
	char custom_id[80];
	enum batch_result_kind kind;
	long status;         /* the request's HTTP status when told (errored: 0 when not) */
	char *body;          /* succeeded: the reply body as the provider's online API sends it */
	char code[64];       /* errored: the error's code or type */
	char msg[200];       /* errored/expired: what happened */
};

struct batch_api {
	const char *name;
	size_t max_requests, max_bytes;
	/* Appends one request line for the upload (custom_id, the provider
	 * path of the online API e.g. "/v1/chat/completions", body the request
	 * as the online API takes it) to out. Its byte count is measured by
	 * the lane against max_bytes. 0 or a negative errno. */
	int (*line_append)(struct buf *out, const char *custom_id, const char *path, const char *body);
	/* The submission's step number step (0 first) for the upload in lines
	 * (n request lines, each ending in '\n'), base the endpoint's base URL,
	 * path the online API's path under the host.
	 * prev_body is the reply to the previous step (NULL for step 0). Fills
	 * req and returns 1 when there is a request to send, 0 when the batch
	 * is submitted (its id in id), or a negative errno with err. */
	int (*submit_step)(int step, const char *base, const char *path, const struct buf *lines, size_t n,
			   const char *prev_body,
			   struct batch_http *req, char *id, size_t idlen, char *err, size_t errlen);
	/* The poll request of batch id. 0 or -ENOMEM. */
	int (*poll_req)(const char *base, const char *id, struct batch_http *req);
	/* Reads a poll reply. 0, or -EBADMSG with err. */
	int (*poll_parse)(const char *base, const char *body, size_t len, struct batch_poll *p, char *err,
			  size_t errlen);
	/* The cancel request of batch id. */
	int (*cancel_req)(const char *base, const char *id, struct batch_http *req);
	/* Parses one JSONL result line into r. 0, or -EBADMSG (the line is
	 * skipped and logged). */
	int (*result_parse)(const char *line, size_t len, struct batch_result *r);
};

extern const struct batch_api batch_openai;
extern const struct batch_api batch_anthropic;

void batch_http_clear(struct batch_http *h);
void batch_result_clear(struct batch_result *r);
/* Helpers for rows: fill h (strings copied). 0 or -ENOMEM. */
int batch_http_set(struct batch_http *h, const char *method, const char *url, const char *content_type,
		   const char *body, size_t body_len);

/* ---- the lane -------------------------------------------------------------- */

struct batch_lane;
struct batch_waiter;

/* What a request came to, for its waiter. */
struct batch_outcome {
	enum batch_result_kind kind;
	long status;          /* 200 for succeeded */
	const char *body;     /* succeeded: the reply body (borrowed for the call) */
	size_t body_len;
	const char *code;     /* errored: the provider's code ("" when none) */
	const char *msg;      /* errored/expired/canceled: what happened */
	const char *custom_id; /* the request's custom id (mark it applied with the call row) */
	double waited_ms;     /* from the request's submission to its result */
	bool shared;          /* another waiter of the same request got it first: this
	                         one is not billed again (its call row carries no tokens) */
};
typedef void (*batch_cb)(void *ud, const struct batch_outcome *o);

/* An endpoint of the lane. Strings copied. */
struct batch_ep_cfg {
	const char *name;       /* the client's endpoint name */
	const char *base_url;
	const char *model;
	const char *auth;       /* header lines (hold the key) */
	const char *chat_path;  /* the online chat path under the host, e.g. "/v1/chat/completions" */
	const struct batch_api *api;
	const struct provider *prov; /* to read tokens of a result nobody waits for */
	double price_in, price_out;  /* batch prices per million tokens */
};

struct batch_settings {
	double gather_s;        /* how long requests gather before a batch goes; 0: 1 s */
	double poll_s;          /* between polls of a batch; 0: 30 s */
};

/* Creates the lane (st may be NULL: then nothing is remembered across
 * restarts). Creates the batch tables. 0, -ENOMEM or -EIO. */
int batch_lane_new(uv_loop_t *loop, struct store *st, const struct batch_settings *s, struct batch_lane **out);
/* Adds an endpoint. 0, -EEXIST, -ENOMEM. */
int batch_lane_endpoint_add(struct batch_lane *l, const struct batch_ep_cfg *cfg);
/* Loads the unfinished batches from the store and starts polling them
 * (after every endpoint was added). Requests of endpoints no longer
 * configured are left as they are. 0 or a negative errno. */
int batch_lane_resume(struct batch_lane *l);
/* Asks for key's result: joins the open request with that key when there
 * is one (nothing is submitted), else queues body for the next batch.
 * cb(ud, outcome) runs exactly once later on the loop unless the waiter
 * is detached first. 0 and *w, or -ENOENT (no such endpoint), -ESHUTDOWN,
 * -ENOMEM. */
int batch_lane_request(struct batch_lane *l, const char *endpoint, int64_t job_id, const char *key,
		       const char *body, batch_cb cb, void *ud, struct batch_waiter **w);
/* Stops waiting: cb never runs. The request itself stays (it is paid for
 * once submitted; its result is stored for the cache). w may be NULL. */
void batch_waiter_detach(struct batch_waiter *w);
/* Cancels job_id's batches at the provider and drops its requests that
 * were not submitted yet (their waiters are called with BATCH_CANCELED).
 * Returns how many batches were asked to cancel. */
int batch_lane_cancel_job(struct batch_lane *l, int64_t job_id);

/* Counts a request of job_id that goes again after an error or expiry
 * (its caller's retry), for the job's progress. */
void batch_lane_note_resubmit(struct batch_lane *l, int64_t job_id);

/* A job's batch progress. */
struct batch_job_stats {
	int64_t batches, batches_open;
	int64_t requests, done, failed, queued; /* queued: not submitted yet */
	int64_t resubmitted;    /* requests sent again after an error or expiry (this run) */
	double eta_s;           /* < 0: unknown */
	char status[32];        /* the provider status of its newest open batch ("" none) */
};
void batch_lane_job_stats(const struct batch_lane *l, int64_t job_id, struct batch_job_stats *out);
/* Closes the lane: waiters are dropped without a call (the client fails
 * its calls itself), transfers are aborted; closed(ud) (may be NULL) runs
 * when every handle is closed and the lane is freed. l may be NULL. */
void batch_lane_close(struct batch_lane *l, void (*closed)(void *ud), void *ud);

#endif
