/* A pool of replicas behind one endpoint: pick, take out, put back. */
#include "teacher_clients/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEP " \t"

size_t pool_url_count(const char *base_urls)
{
	size_t n = 0;
	const char *s = base_urls;

	while (s && *s) {
		s += strspn(s, SEP);
		if (!*s)
			break;
		n++;
		s += strcspn(s, SEP);
	}
	return n;
}

int pool_init(struct pool *p, const char *base_urls, const struct limits_cfg *lc, double check_s, double now)
{
	size_t n = pool_url_count(base_urls), i = 0;
	const char *s = base_urls;

	memset(p, 0, sizeof(*p));
	if (n == 0 || n > POOL_MAX_REPLICAS)
		return -EINVAL;
	p->r = calloc(n, sizeof(*p->r));
	if (!p->r)
		return -ENOMEM;
	p->n = n;
	p->check_s = check_s > 0 ? check_s : POOL_CHECK_S;
	while (i < n) {
		struct limits_cfg c = *lc;
		size_t len;

		s += strspn(s, SEP);
		len = strcspn(s, SEP);
		p->r[i].base_url = strndup(s, len);
		if (!p->r[i].base_url) {
			pool_free(p);
			return -ENOMEM;
		}
		/* Independent jitter per replica. */
		c.seed = lc->seed + (uint64_t)i * 0x9e3779b97f4a7c15ull;
		limits_init(&p->r[i].lim, &c, now);
		s += len;
		i++;
	}
	return 0;
}

void pool_free(struct pool *p)
{
	for (size_t i = 0; p->r && i < p->n; i++) {
		free(p->r[i].base_url);
		for (size_t k = 0; k < PROVIDER_OP_N; k++)
			free(p->r[i].url[k]);
	}
	free(p->r);
	memset(p, 0, sizeof(*p));
}

size_t pool_in_count(const struct pool *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n; i++)
		n += !p->r[i].out;
	return n;
}

/* Whether replica i should be asked before best: any replica before the
 * avoided one, then fewer outstanding. */
static bool better(const struct pool *p, int i, int best, int avoid)
{
	if ((i == avoid) != (best == avoid))
		return best == avoid;
	return p->r[i].outstanding < p->r[best].outstanding;
}

int pool_pick(struct pool *p, double now, int64_t est_tokens, int avoid, struct limits_ticket *t, double *wait)
{
	/* Candidates in order of fewest outstanding, the avoided one last; each
	 * is asked in turn, since its own limits may refuse it. At most
	 * POOL_MAX_REPLICAS, so a selection pass per pick is cheap. */
	bool tried[POOL_MAX_REPLICAS] = { false };
	double best_wait = -1.0;

	for (size_t round = 0; round < p->n; round++) {
		int best = -1;

		for (size_t k = 0; k < p->n; k++) {
			size_t i = (p->cursor + k) % p->n;
			const struct pool_replica *r = &p->r[i];

			if (tried[i] || r->out)
				continue;
			if (best < 0 || better(p, (int)i, best, avoid))
				best = (int)i;
		}
		if (best < 0)
			break;
		tried[best] = true;
		double d = limits_acquire(&p->r[best].lim, now, est_tokens, t);
		if (d == 0) {
			p->r[best].outstanding++;
			p->r[best].requests++;
			p->cursor = ((size_t)best + 1) % p->n;
			return best;
		}
		if (d > 0 && (best_wait < 0 || d < best_wait))
			best_wait = d;
	}
	*wait = best_wait;
	return -1;
}

static void take_out(struct pool *p, struct pool_replica *r, double now)
{
	r->out = true;
	r->taken_out++;
	r->check_at = now + p->check_s;
}

bool pool_release(struct pool *p, size_t i, double now, const struct limits_ticket *t, enum limits_outcome o,
		  long status, int64_t actual_tokens, bool refused, const char *err)
{
	struct pool_replica *r;
	bool sick;

	if (i >= p->n)
		return false;
	r = &p->r[i];
	if (r->outstanding > 0)
		r->outstanding--;
	limits_release(&r->lim, now, t, o, status, actual_tokens);
	if (o == LIMITS_CANCELLED)
		return false;
	sick = o == LIMITS_NET || o == LIMITS_BAD_REPLY || (o == LIMITS_HTTP && status >= 500);
	if (!sick) {
		r->fails = 0;
		if (o == LIMITS_SUCCESS) {
			r->ok++;
			r->last_error[0] = '\0';
		}
		return false;
	}
	r->failures++;
	r->fails++;
	snprintf(r->last_error, sizeof(r->last_error), "%s", err ? err : "failed");
	if (p->n < 2 || r->out || (!refused && r->fails < POOL_OUT_AFTER))
		return false;
	take_out(p, r, now);
	return true;
}

int pool_check_due(struct pool *p, double now, double *next_at)
{
	double next = 0;

	for (size_t i = 0; i < p->n; i++) {
		struct pool_replica *r = &p->r[i];

		if (!r->out || r->checking)
			continue;
		if (r->check_at <= now) {
			r->checking = true;
			r->checks++;
			return (int)i;
		}
		if (next == 0 || r->check_at < next)
			next = r->check_at;
	}
	*next_at = next;
	return -1;
}

bool pool_check_done(struct pool *p, size_t i, double now, bool alive)
{
	struct pool_replica *r;

	if (i >= p->n)
		return false;
	r = &p->r[i];
	r->checking = false;
	if (!r->out)
		return false;
	if (!alive) {
		r->check_at = now + p->check_s;
		return false;
	}
	r->out = false;
	r->fails = 0;
	/* Judged afresh: its old failures are the outage that is over. */
	r->lim.breaker = LIMITS_CLOSED;
	r->lim.fails = 0;
	r->lim.probe_out = false;
	r->lim.open_until = 0;
	return true;
}

void pool_check_now(struct pool *p, double now)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->r[i].out)
			p->r[i].check_at = now;
}
