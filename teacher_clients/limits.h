#ifndef MT_LIMITS_H
#define MT_LIMITS_H
/* Per-endpoint send limits, as pure logic over an injected clock: every
 * function takes `now` (seconds, any monotonic origin) and never sleeps or
 * reads a clock itself, so the unit tests run without waiting.
 *
 *  - concurrency: at most max_concurrency in flight; when rpm and tpm are
 *    both 0 (unset) an adaptive window (AIMD) below that: cut by a quarter on
 *    a burst of 429s, +1 after a run of `window` successes.
 *  - rpm / tpm token buckets refilled continuously; a request's tokens are
 *    estimated before sending (prompt bytes / 4 + max_tokens) and reconciled
 *    with the reply's usage afterwards.
 *  - x-ratelimit-remaining-* / reset-* headers, when a reply carries them.
 *  - retry rules with exponential backoff + full jitter, Retry-After honoured.
 *  - a circuit breaker: after breaker_failures consecutive failures no sends
 *    for breaker_cooldown_s, then one probe; its success closes the breaker.
 * One struct limits per endpoint; used from one thread. */

#include <stdbool.h>
#include <stdint.h>

struct limits_cfg {
	int max_concurrency;      /* >= 1 */
	int rpm;                  /* 0: unlimited */
	int64_t tpm;              /* 0: unlimited */
	int max_retries;          /* retries after the first attempt */
	double backoff_base_s;    /* 0: 0.5 s */
	double backoff_max_s;     /* 0: 60 s */
	int breaker_failures;     /* 0: 5 */
	double breaker_cooldown_s; /* 0: 30 s */
	uint64_t seed;            /* jitter RNG seed; 0: fixed default */
};

/* The longest Retry-After honoured, seconds. */
#define LIMITS_RETRY_AFTER_MAX 600.0

enum limits_breaker { LIMITS_CLOSED = 0, LIMITS_OPEN, LIMITS_HALF_OPEN };

struct limits {
	struct limits_cfg cfg;
	int in_flight;
	int window;               /* current concurrency cap (AIMD or max_concurrency) */
	int ok_run;               /* successes since the window last moved */
	uint64_t sent_seq;        /* tickets issued */
	uint64_t cut_seq;         /* sent_seq at the last AIMD cut */
	double rq_tokens, rq_at;  /* rpm bucket */
	double tk_tokens, tk_at;  /* tpm bucket */
	double hdr_req_until;     /* server said: no requests left until then */
	int64_t hdr_tok_left;     /* server said: tokens left ... */
	double hdr_tok_until;     /* ... until then (0: nothing known) */
	enum limits_breaker breaker;
	int fails;                /* consecutive failures */
	double open_until;
	bool probe_out;           /* the half-open probe is in flight */
	uint64_t rng;
};

/* What limits_acquire decided. */
struct limits_ticket {
	uint64_t seq;
	int64_t est_tokens;
	bool probe;
};

/* How an attempt ended, for limits_release() and limits_retry(). */
enum limits_outcome {
	LIMITS_SUCCESS = 0,
	LIMITS_NET,        /* connection failure, reset, timeout */
	LIMITS_HTTP,       /* an HTTP status other than 2xx */
	LIMITS_BAD_REPLY,  /* a 2xx whose body did not validate */
	LIMITS_CANCELLED,  /* never counted anywhere */
};

/* Starts l from cfg at time now (max_concurrency < 1 is taken as 1). */
void limits_init(struct limits *l, const struct limits_cfg *cfg, double now);
/* Estimated tokens of a request: prompt_bytes / 4 + max_tokens. */
int64_t limits_estimate(uint64_t prompt_bytes, int64_t max_tokens);
/* Asks to send a request of est_tokens now. Returns 0 and fills t (the
 * request is then counted in flight and charged to the buckets) or:
 * a positive number of seconds to wait before asking again (rate, server
 * headers or breaker cool-down), or -1.0 when only the concurrency cap blocks
 * (ask again after a limits_release()). */
double limits_acquire(struct limits *l, double now, int64_t est_tokens, struct limits_ticket *t);
/* Ends the attempt of ticket t: status is the HTTP status (0 for none),
 * actual_tokens the usage (prompt + completion; <= 0 when unknown). Moves
 * the breaker, the AIMD window and reconciles the token bucket. */
void limits_release(struct limits *l, double now, const struct limits_ticket *t, enum limits_outcome o,
		    long status, int64_t actual_tokens);
/* Reply headers x-ratelimit-remaining-requests/-tokens and
 * x-ratelimit-reset-requests/-tokens (each may be NULL). Durations like
 * "1s", "6m0s", "250ms", or plain seconds. */
void limits_note_headers(struct limits *l, double now, const char *rem_req, const char *rem_tok,
			 const char *reset_req, const char *reset_tok);

/* Whether an attempt that ended so may be retried at all (ignoring the
 * count): network failures, 408, 409, 429 (but not insufficient_quota:
 * billing, not load), 5xx and invalid 2xx replies. error_code is the
 * provider's error.code (may be NULL). */
bool limits_retryable(enum limits_outcome o, long status, const char *error_code);
/* The delay before retry number `attempt` (1 = first retry): the Retry-After
 * value when given (retry_after_s >= 0, capped at LIMITS_RETRY_AFTER_MAX), else full
 * jitter: uniform in [0, min(backoff_max_s, backoff_base_s * 2^(attempt-1))]. */
double limits_backoff(struct limits *l, int attempt, double retry_after_s);
/* Parses a Retry-After value: delay-seconds or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime), relative to wall_now (unix seconds). Returns seconds
 * (>= 0) or -1 when absent or unparsable. */
double limits_retry_after_parse(const char *v, double wall_now);
/* Parses a duration "1h2m3.5s", "250ms", "6m0s" or "12" (seconds); -1 when invalid. */
double limits_duration_parse(const char *v);

#endif
