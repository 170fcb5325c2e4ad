/* Per-endpoint limits: buckets, concurrency window, breaker, retry rules.
 * Pure logic; the caller supplies the clock. */
#include "teacher_clients/limits.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cfg_or(double v, double dflt)
{
	return v > 0 ? v : dflt;
}

void limits_init(struct limits *l, const struct limits_cfg *cfg, double now)
{
	memset(l, 0, sizeof(*l));
	l->cfg = *cfg;
	if (l->cfg.max_concurrency < 1)
		l->cfg.max_concurrency = 1;
	if (l->cfg.max_retries < 0)
		l->cfg.max_retries = 0;
	l->cfg.backoff_base_s = cfg_or(cfg->backoff_base_s, 0.5);
	l->cfg.backoff_max_s = cfg_or(cfg->backoff_max_s, 60.0);
	l->cfg.breaker_failures = cfg->breaker_failures > 0 ? cfg->breaker_failures : 5;
	l->cfg.breaker_cooldown_s = cfg_or(cfg->breaker_cooldown_s, 30.0);
	l->window = l->cfg.max_concurrency;
	/* The rpm bucket starts with one request, not a full burst, so a run's
	 * measured rate is the configured one from its first second on. */
	l->rq_tokens = 1.0;
	l->rq_at = now;
	l->tk_tokens = l->cfg.tpm > 0 ? (double)l->cfg.tpm / 60.0 : 0;
	l->tk_at = now;
	l->rng = cfg->seed ? cfg->seed : 0x9e3779b97f4a7c15ull;
}

int64_t limits_estimate(uint64_t prompt_bytes, int64_t max_tokens)
{
	return (int64_t)(prompt_bytes / 4) + (max_tokens > 0 ? max_tokens : 0);
}

static bool adaptive(const struct limits *l)
{
	return l->cfg.rpm <= 0 && l->cfg.tpm <= 0;
}

/* Burst sizes: a tenth of a second of requests, a second of tokens. */
static double rq_cap(const struct limits *l)
{
	double c = l->cfg.rpm / 600.0;
	return c < 1.0 ? 1.0 : c;
}

static double tk_cap(const struct limits *l)
{
	return (double)l->cfg.tpm / 60.0;
}

/* Refill rates: a bucket of capacity cap refilled at r per second lets
 * cap + 60 r requests into any 60 s window, and providers count sliding
 * 60 s windows; so r = (limit - cap) / 60, less 0.3% for the provider's
 * clock and the network's jitter, and no window holds more than the limit
 * (the price: the long-run rate is about limit - cap a minute). */
#define LIMIT_MARGIN 0.997

static double rq_rate(const struct limits *l)
{
	double r = (LIMIT_MARGIN * l->cfg.rpm - rq_cap(l)) / 60.0;
	return r > 0 ? r : l->cfg.rpm / 60.0;
}

static double tk_rate(const struct limits *l)
{
	double r = (LIMIT_MARGIN * (double)l->cfg.tpm - tk_cap(l)) / 60.0;
	return r > 0 ? r : (double)l->cfg.tpm / 60.0;
}

static void refill(struct limits *l, double now)
{
	if (l->cfg.rpm > 0 && now > l->rq_at) {
		l->rq_tokens += (now - l->rq_at) * rq_rate(l);
		if (l->rq_tokens > rq_cap(l))
			l->rq_tokens = rq_cap(l);
	}
	l->rq_at = now > l->rq_at ? now : l->rq_at;
	if (l->cfg.tpm > 0 && now > l->tk_at) {
		l->tk_tokens += (now - l->tk_at) * tk_rate(l);
		if (l->tk_tokens > tk_cap(l))
			l->tk_tokens = tk_cap(l);
	}
	l->tk_at = now > l->tk_at ? now : l->tk_at;
}

double limits_acquire(struct limits *l, double now, int64_t est_tokens, struct limits_ticket *t)
{
	bool probe = false;
	double need;

	if (est_tokens < 0)
		est_tokens = 0;
	if (l->breaker == LIMITS_OPEN) {
		if (now < l->open_until)
			return l->open_until - now;
		l->breaker = LIMITS_HALF_OPEN;
	}
	if (l->breaker == LIMITS_HALF_OPEN) {
		if (l->probe_out)
			return -1.0;
		probe = true;
	}
	if (l->in_flight >= l->window)
		return -1.0;
	if (now < l->hdr_req_until)
		return l->hdr_req_until - now;
	if (now < l->hdr_tok_until && est_tokens > l->hdr_tok_left)
		return l->hdr_tok_until - now;
	refill(l, now);
	/* The epsilons keep a caller that waits exactly as told from looping
	 * on rounding leftovers. */
	if (l->cfg.rpm > 0 && l->rq_tokens < 1.0 - 1e-9)
		return (1.0 - l->rq_tokens) * 60.0 / l->cfg.rpm;
	if (l->cfg.tpm > 0) {
		/* A request bigger than the bucket goes when the bucket is full. */
		need = (double)est_tokens < tk_cap(l) ? (double)est_tokens : tk_cap(l);
		if (l->tk_tokens < need - 1e-6)
			return (need - l->tk_tokens) * 60.0 / (double)l->cfg.tpm;
		l->tk_tokens -= (double)est_tokens;
	}
	if (l->cfg.rpm > 0)
		l->rq_tokens -= 1.0;
	if (now < l->hdr_tok_until)
		l->hdr_tok_left -= est_tokens;
	l->in_flight++;
	l->sent_seq++;
	if (probe)
		l->probe_out = true;
	t->seq = l->sent_seq;
	t->est_tokens = est_tokens;
	t->probe = probe;
	return 0;
}

/* Whether an outcome says the endpoint itself is failing (breaker). A 4xx
 * other than 408 proves the server is up; a 429 is load, handled by backoff. */
static bool endpoint_failure(enum limits_outcome o, long status)
{
	if (o == LIMITS_NET || o == LIMITS_BAD_REPLY)
		return true;
	if (o == LIMITS_HTTP)
		return status >= 500 || status == 408;
	return false;
}

void limits_release(struct limits *l, double now, const struct limits_ticket *t, enum limits_outcome o,
		    long status, int64_t actual_tokens)
{
	bool fail = endpoint_failure(o, status);

	if (l->in_flight > 0)
		l->in_flight--;
	if (t->probe)
		l->probe_out = false;
	if (o == LIMITS_CANCELLED)
		return;
	if (l->cfg.tpm > 0 && actual_tokens > 0) {
		refill(l, now);
		l->tk_tokens -= (double)(actual_tokens - t->est_tokens);
		if (l->tk_tokens > tk_cap(l))
			l->tk_tokens = tk_cap(l);
	}
	if (fail) {
		l->fails++;
		if (t->probe || (l->breaker == LIMITS_CLOSED && l->fails >= l->cfg.breaker_failures)) {
			l->breaker = LIMITS_OPEN;
			l->open_until = now + l->cfg.breaker_cooldown_s;
		}
	} else {
		l->fails = 0;
		if (t->probe || o == LIMITS_SUCCESS)
			l->breaker = LIMITS_CLOSED;
	}
	if (!adaptive(l))
		return;
	if (o == LIMITS_HTTP && status == 429) {
		/* One cut per burst: only a request sent after the last cut can
		 * cut again (the others saw the old window). */
		if (t->seq > l->cut_seq) {
			int cut = l->window / 4;
			l->window -= cut > 0 ? cut : 1;
			if (l->window < 1)
				l->window = 1;
			l->cut_seq = l->sent_seq;
		}
		l->ok_run = 0;
	} else if (o == LIMITS_SUCCESS) {
		if (++l->ok_run >= l->window) {
			if (l->window < l->cfg.max_concurrency)
				l->window++;
			l->ok_run = 0;
		}
	}
}

double limits_duration_parse(const char *v)
{
	double total = 0;
	const char *p = v;
	char *end;
	bool any = false;

	if (!v)
		return -1;
	while (isspace((unsigned char)*p))
		p++;
	while (*p) {
		double n;
		errno = 0;
		n = strtod(p, &end);
		if (end == p || errno || n < 0 || !isfinite(n))
			return -1;
		p = end;
		any = true;
		if (strncmp(p, "ms", 2) == 0) {
			total += n / 1000.0;
			p += 2;
		} else if (*p == 'h') {
			total += n * 3600;
			p++;
		} else if (*p == 'm') {
			total += n * 60;
			p++;
		} else if (*p == 's') {
			total += n;
			p++;
		} else if (*p == '\0' || isspace((unsigned char)*p)) {
			total += n;
			while (isspace((unsigned char)*p))
				p++;
			if (*p)
				return -1;
		} else {
			return -1;
		}
	}
	return any ? total : -1;
}

static bool parse_long(const char *v, long long *out)
{
	char *end;

	if (!v || !*v)
		return false;
	errno = 0;
	*out = strtoll(v, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	return !errno && *end == '\0' && end != v;
}

void limits_note_headers(struct limits *l, double now, const char *rem_req, const char *rem_tok,
			 const char *reset_req, const char *reset_tok)
{
	long long n;
	double reset;

	if (parse_long(rem_req, &n) && n <= 0) {
		reset = limits_duration_parse(reset_req);
		if (reset < 0)
			reset = 1.0;
		if (now + reset > l->hdr_req_until)
			l->hdr_req_until = now + reset;
	}
	if (parse_long(rem_tok, &n)) {
		reset = limits_duration_parse(reset_tok);
		if (reset < 0)
			reset = 1.0;
		l->hdr_tok_left = n;
		l->hdr_tok_until = now + reset;
	}
}

bool limits_retryable(enum limits_outcome o, long status, const char *error_code)
{
	switch (o) {
	case LIMITS_SUCCESS:
	case LIMITS_CANCELLED:
		return false;
	case LIMITS_NET:
	case LIMITS_BAD_REPLY:
		return true;
	case LIMITS_HTTP:
		break;
	}
	if (status == 429)
		return !(error_code && strcmp(error_code, "insufficient_quota") == 0);
	return status == 408 || status == 409 || (status >= 500 && status <= 599);
}

static double rng_unit(struct limits *l)
{
	/* splitmix64 */
	uint64_t z = (l->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) / 9007199254740992.0;
}

double limits_backoff(struct limits *l, int attempt, double retry_after_s)
{
	double cap;

	if (retry_after_s >= 0) {
		/* The server knows best, within reason. */
		return retry_after_s < LIMITS_RETRY_AFTER_MAX ? retry_after_s : LIMITS_RETRY_AFTER_MAX;
	}
	if (attempt < 1)
		attempt = 1;
	cap = l->cfg.backoff_base_s * ldexp(1.0, attempt > 60 ? 60 : attempt - 1);
	if (cap > l->cfg.backoff_max_s)
		cap = l->cfg.backoff_max_s;
	return rng_unit(l) * cap;
}

double limits_retry_after_parse(const char *v, double wall_now)
{
	static const char *const fmts[] = { "%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
					    "%a %b %e %H:%M:%S %Y" };
	long long secs;
	size_t i;

	if (!v)
		return -1;
	while (isspace((unsigned char)*v))
		v++;
	if (!*v)
		return -1;
	if (parse_long(v, &secs))
		return secs < 0 ? -1 : (double)secs;
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		struct tm tm;
		const char *end;
		memset(&tm, 0, sizeof(tm));
		end = strptime(v, fmts[i], &tm);
		if (end) {
			while (isspace((unsigned char)*end))
				end++;
			if (*end == '\0') {
				double d = (double)timegm(&tm) - wall_now;
				return d > 0 ? d : 0;
			}
		}
	}
	return -1;
}
