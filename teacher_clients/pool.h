#ifndef MT_POOL_H
#define MT_POOL_H
/* A pool of replicas behind one endpoint: several servers of the same model
 * (a student section whose base_url lists several URLs). Pure logic over an
 * injected clock, like limits.h: every function takes `now` (seconds) and
 * never sleeps, reads a clock or does I/O; the client (client.c) sends the
 * requests and the health checks.
 *
 *  - pick: the next attempt goes to the replica with the fewest outstanding
 *    requests among those in the pool whose own limits (concurrency window,
 *    breaker) let it send now; ties rotate. A replica the call just failed
 *    on is asked last.
 *  - take out: a replica with more than one in the pool is taken out when a
 *    connection to it is refused (nothing listens) or after POOL_OUT_AFTER
 *    failed attempts in a row (network, timeout, 5xx, broken reply); an
 *    HTTP reply below 500 (429 included: busy, not sick) resets the count.
 *  - put back: a replica that is out gets a health check (GET base/models)
 *    every check_s; any HTTP answer below 500 puts it back, with its breaker
 *    closed and its failures forgotten.
 *  A pool of one replica is never taken out: it behaves as a plain endpoint
 * (its breaker and the endpoint's down_after_s do the work).
 * One struct pool per endpoint; used from one thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teacher_clients/limits.h"
#include "teacher_clients/provider.h"

/* Replicas per pool (URLs in one base_url). */
#define POOL_MAX_REPLICAS 32
/* Failed attempts in a row that take a replica out. */
#define POOL_OUT_AFTER 3
/* Seconds between the health checks of a replica that is out (default). */
#define POOL_CHECK_S 1.0

struct pool_replica {
	char *base_url;              /* one URL of the list, as written */
	char *url[PROVIDER_OP_N];    /* base_url + the provider's paths (set by the client) */
	struct limits lim;           /* its own window, breaker, buckets */
	int outstanding;             /* attempts on the wire */
	bool out;                    /* taken out of the pool */
	int fails;                   /* failed attempts in a row */
	double check_at;             /* while out: the next health check */
	bool checking;               /* a health check is on the wire */
	char last_error[240];        /* the last failure ("" when none since the last success) */
	/* counters */
	uint64_t requests, ok, failures, taken_out, checks;
};

struct pool {
	struct pool_replica *r;
	size_t n;
	size_t cursor;               /* where the next tie-break starts */
	double check_s;
};

/* Splits base_urls (URLs separated by spaces/tabs) into n replicas, each
 * with limits from lc at now (seeds differ per replica). check_s <= 0:
 * POOL_CHECK_S. Returns 0; -EINVAL for no URL or more than
 * POOL_MAX_REPLICAS; -ENOMEM. On failure p holds nothing to free. */
int pool_init(struct pool *p, const char *base_urls, const struct limits_cfg *lc, double check_s, double now);
/* Frees what pool_init and the client allocated (base_url, url[]). */
void pool_free(struct pool *p);
/* How many URLs base_urls lists (0 for none); for the config's check. */
size_t pool_url_count(const char *base_urls);

/* Picks the replica for an attempt of est_tokens; avoid is a replica to ask
 * last (-1: none). Returns its index with *t acquired from its limits (the
 * caller sends, then calls pool_release), or -1 with *wait: seconds until a
 * replica may send (> 0), or -1.0 when the replicas are full or out (ask
 * again after a release or a put-back). */
int pool_pick(struct pool *p, double now, int64_t est_tokens, int avoid, struct limits_ticket *t, double *wait);
/* Ends the attempt of ticket t on replica i (limits_release, then the
 * replica's health). refused: the connection was refused or the host
 * unreachable. err: the failure's text (NULL when ok). Returns true when
 * this attempt took the replica out. */
bool pool_release(struct pool *p, size_t i, double now, const struct limits_ticket *t, enum limits_outcome o,
		  long status, int64_t actual_tokens, bool refused, const char *err);
/* The next replica that is out and due for a health check at now (marked
 * checking), or -1 with *next_at the earliest check time (0: none out). */
int pool_check_due(struct pool *p, double now, double *next_at);
/* A health check of replica i ended: alive (an HTTP answer below 500) puts
 * it back; else the next check is check_s later. Returns true when put back. */
bool pool_check_done(struct pool *p, size_t i, double now, bool alive);
/* Replicas in the pool (not out). */
size_t pool_in_count(const struct pool *p);
/* Forces a health check of every replica that is out at now (rearm). */
void pool_check_now(struct pool *p, double now);

#endif
