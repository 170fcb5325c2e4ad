/* The batch lane (batch.h): gather -> store -> submit -> poll -> results. */
#include "teacher_clients/batch.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/hash.h"
#include "common/log.h"
#include "store/batches.h"
#include "store/calls.h"
#include "store/store.h"
#include "teacher_clients/engine.h"
#include "teacher_clients/provider.h"

#define LANE_MAX_ENDPOINTS 128
#define NBUCKETS 8192
/* A results file is read whole; the providers' input caps bound it. */
#define RESULTS_MAX (512u * 1024 * 1024)
/* Submission attempts of one batch before its requests are failed back. */
#define SUBMIT_TRIES 5
#define HTTP_TIMEOUT_MS 600000L

enum bstate { B_WRITING, B_SUBMITTING, B_CONFIRMING, B_SUBMITTED, B_POLLING, B_FETCHING, B_DONE };

struct bep;
struct bbatch;

struct batch_waiter {
	struct breq *r;
	batch_cb cb;
	void *ud;
	struct batch_waiter *next;
};

struct breq {
	struct bep *ep;
	struct bbatch *b;     /* NULL while queued */
	char cid[80];
	char key[65];
	char *body;
	int64_t job_id;
	struct batch_waiter *waiters;
	struct breq *next;    /* in the endpoint's queue or its batch */
	struct breq *knext, *cnext; /* key and custom id chains */
	bool resolved, in_tables;
};

struct bbatch {
	struct batch_lane *l;
	struct bep *ep;
	int64_t id;           /* store row (0 without a store) */
	int64_t job_id;
	char pid[256];        /* the provider's batch id */
	enum bstate state;
	struct breq *reqs;
	size_t n;
	int step, tries;
	struct buf lines;
	char *prev;           /* the last submit step's reply */
	struct batch_poll poll;
	int url_i;
	int poll_fails;       /* polls refused in a row (4xx): the batch is gone */
	double due;           /* loop seconds: next poll / submit try */
	double submitted_at;  /* wall seconds */
	bool busy;            /* an HTTP request or a store write is out */
	struct bbatch *next;
};

struct bep {
	struct batch_lane *l;
	char *name, *base, *model, *auth, *path;
	const struct batch_api *api;
	const struct provider *prov;
	double price_in, price_out;
	struct breq *qhead, *qtail;
	size_t nq;
	double gather_due;    /* 0: nothing queued */
};

struct jstat {
	int64_t job_id;
	int64_t requests, done, failed, resubmitted;
	struct jstat *next;
};

struct batch_lane {
	uv_loop_t *loop;
	struct store *st;
	struct engine *eng;
	struct batch_settings s;
	struct bep *eps[LANE_MAX_ENDPOINTS];
	size_t neps;
	struct bbatch *batches;
	struct breq *bykey[NBUCKETS], *bycid[NBUCKETS];
	struct jstat *jobs;
	uv_timer_t timer;
	uint64_t nonce, seq;
	size_t writes;        /* store writes queued with the lane's data: freed after them */
	bool closing, engine_gone, timer_closed;
	void (*closed)(void *ud);
	void *closed_ud;
};

static void lane_arm(struct batch_lane *l);
static void maybe_free(struct batch_lane *l);

/* Queues a store write of the lane; its done must call write_done(). */
static int lane_write(struct batch_lane *l, store_apply_fn apply, store_done_fn done, void *ud)
{
	int rc = store_batch_add(l->st, apply, done, ud);

	if (rc == 0)
		l->writes++;
	return rc;
}

static void write_done(struct batch_lane *l)
{
	l->writes--;
	if (l->closing)
		maybe_free(l);
}
static void batch_step(struct bbatch *b);

static double now_s(const struct batch_lane *l)
{
	return (double)uv_now(l->loop) / 1000.0;
}

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- helpers for rows ---------------------------------------------------- */

void batch_http_clear(struct batch_http *h)
{
	if (!h)
		return;
	free(h->method);
	free(h->url);
	free(h->content_type);
	free(h->body);
	memset(h, 0, sizeof(*h));
}

void batch_result_clear(struct batch_result *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int batch_http_set(struct batch_http *h, const char *method, const char *url, const char *content_type,
		   const char *body, size_t body_len)
{
	batch_http_clear(h);
	h->method = strdup(method);
	h->url = strdup(url);
	h->content_type = content_type ? strdup(content_type) : NULL;
	if (body) {
		h->body = malloc(body_len + 1);
		if (h->body) {
			memcpy(h->body, body, body_len);
			h->body[body_len] = '\0';
		}
		h->body_len = body_len;
	}
	if (!h->method || !h->url || (content_type && !h->content_type) || (body && !h->body)) {
		batch_http_clear(h);
		return -ENOMEM;
	}
	return 0;
}

/* ---- tables --------------------------------------------------------------- */

static size_t bucket(const char *s)
{
	return (size_t)(fnv1a64(0, s, strlen(s)) % NBUCKETS);
}

static void tables_add(struct batch_lane *l, struct breq *r)
{
	size_t k = bucket(r->key), c = bucket(r->cid);

	r->knext = l->bykey[k];
	l->bykey[k] = r;
	r->cnext = l->bycid[c];
	l->bycid[c] = r;
	r->in_tables = true;
}

static void tables_remove(struct batch_lane *l, struct breq *r)
{
	struct breq **pp;

	if (!r->in_tables)
		return;
	for (pp = &l->bykey[bucket(r->key)]; *pp; pp = &(*pp)->knext)
		if (*pp == r) {
			*pp = r->knext;
			break;
		}
	for (pp = &l->bycid[bucket(r->cid)]; *pp; pp = &(*pp)->cnext)
		if (*pp == r) {
			*pp = r->cnext;
			break;
		}
	r->in_tables = false;
}

static struct breq *find_key(struct batch_lane *l, const struct bep *ep, const char *key)
{
	for (struct breq *r = l->bykey[bucket(key)]; r; r = r->knext)
		if (r->ep == ep && !r->resolved && strcmp(r->key, key) == 0)
			return r;
	return NULL;
}

static struct breq *find_cid(struct batch_lane *l, const char *cid)
{
	for (struct breq *r = l->bycid[bucket(cid)]; r; r = r->cnext)
		if (strcmp(r->cid, cid) == 0)
			return r;
	return NULL;
}

static struct jstat *jstat_get(struct batch_lane *l, int64_t job_id)
{
	struct jstat *j;

	for (j = l->jobs; j; j = j->next)
		if (j->job_id == job_id)
			return j;
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->job_id = job_id;
	j->next = l->jobs;
	l->jobs = j;
	return j;
}

static struct bep *ep_find(const struct batch_lane *l, const char *name)
{
	for (size_t i = 0; name && i < l->neps; i++)
		if (strcmp(l->eps[i]->name, name) == 0)
			return l->eps[i];
	return NULL;
}

static void breq_free(struct breq *r)
{
	struct batch_waiter *w, *next;

	for (w = r->waiters; w; w = next) {
		next = w->next;
		free(w);
	}
	free(r->body);
	free(r);
}

/* ---- outcomes -------------------------------------------------------------- */

struct noone {
	struct batch_lane *l;
	struct breq *r;       /* borrowed fields copied below */
	char cid[80], key[65];
	char *request, *reply, *endpoint, *model, *error;
	int64_t job_id, tin, tout;
	double cost;
	bool ok;
};

static void noone_free(struct noone *x)
{
	free(x->request);
	free(x->reply);
	free(x->endpoint);
	free(x->model);
	free(x->error);
	free(x);
}

static int noone_apply(struct store *st, void *ud)
{
	struct noone *x = ud;
	struct store_call row;
	int rc = 0;

	if (x->ok) {
		memset(&row, 0, sizeof(row));
		row.hash = x->key;
		row.job_id = x->job_id;
		row.endpoint = x->endpoint;
		row.model = x->model;
		row.request = x->request;
		row.reply = x->reply;
		row.status = 200;
		row.attempts = 1;
		row.tokens_in = x->tin;
		row.tokens_out = x->tout;
		row.cost_usd = x->cost;
		row.error = x->error;
		rc = store_call_insert(st, &row, NULL);
	}
	if (rc == 0) {
		rc = store_batch_req_set(st, x->cid, x->ok && !x->error ? "applied" : "failed");
		if (rc == -EALREADY || rc == -ENOENT)
			rc = 0;
	}
	return rc;
}

static void noone_done(void *ud, int status)
{
	struct noone *x = ud;
	struct batch_lane *l = x->l;

	if (status < 0 && status != -ECANCELED)
		log_warn("batch: the result of %s could not be stored (%s); it will be asked again", x->cid,
			 strerror(-status));
	noone_free(x);
	write_done(l);
}

/* Stores what nobody waits for: a success as its call row (the cache
 * answers the next asker), anything else as the request's state. */
static void store_unwaited(struct batch_lane *l, struct breq *r, const struct batch_outcome *o)
{
	struct noone *x;
	struct provider_reply pr;

	if (!l->st)
		return;
	x = calloc(1, sizeof(*x));
	if (!x)
		return;
	x->l = l;
	snprintf(x->cid, sizeof(x->cid), "%s", r->cid);
	snprintf(x->key, sizeof(x->key), "%s", r->key);
	x->job_id = r->job_id;
	x->ok = o->kind == BATCH_SUCCEEDED;
	if (x->ok) {
		x->request = strdup(r->body);
		x->reply = strndup(o->body, o->body_len);
		x->endpoint = strdup(r->ep->name);
		x->model = strdup(r->ep->model);
		if (r->ep->prov->reply_parse(o->body, o->body_len, PROVIDER_CHAT, &pr) == 0) {
			x->tin = pr.tokens_in;
			x->tout = pr.tokens_out;
			x->cost = (double)x->tin * r->ep->price_in / 1e6 + (double)x->tout * r->ep->price_out / 1e6;
		} else {
			x->error = strdup(pr.msg[0] ? pr.msg : "invalid reply");
		}
		provider_reply_clear(&pr);
		if (!x->request || !x->reply || !x->endpoint || !x->model) {
			noone_free(x);
			return;
		}
	}
	if (lane_write(l, noone_apply, noone_done, x) < 0)
		noone_free(x);
}

/* r's result is in: to its waiters, else to the store. r leaves the key
 * table (a later asker submits it again if this was a failure). */
static void breq_resolve(struct batch_lane *l, struct breq *r, const struct batch_outcome *in)
{
	struct batch_outcome o = *in;
	struct batch_waiter *w = r->waiters, *next;
	struct jstat *js = jstat_get(l, r->job_id);

	if (r->resolved)
		return;
	r->resolved = true;
	tables_remove(l, r);
	o.custom_id = r->cid;
	if (r->b && r->b->submitted_at > 0)
		o.waited_ms = (wall_s() - r->b->submitted_at) * 1000.0;
	if (js) {
		js->done++;
		if (o.kind != BATCH_SUCCEEDED)
			js->failed++;
	}
	r->waiters = NULL;
	if (!w)
		store_unwaited(l, r, &o);
	else if (o.kind != BATCH_SUCCEEDED && l->st)
		store_unwaited(l, r, &o); /* marks it failed */
	for (; w; w = next) {
		next = w->next;
		w->cb(w->ud, &o);
		o.shared = true; /* one request, paid once */
		free(w);
	}
}

static void fail_all(struct batch_lane *l, struct breq *list, enum batch_result_kind kind, const char *msg)
{
	struct batch_outcome o;

	memset(&o, 0, sizeof(o));
	o.kind = kind;
	o.code = "";
	o.msg = msg;
	for (struct breq *r = list; r; r = r->next)
		if (!r->resolved)
			breq_resolve(l, r, &o);
}

/* ---- HTTP -------------------------------------------------------------------- */

struct xfer {
	struct bbatch *b;
	struct batch_http h;
	void (*done)(struct bbatch *b, const struct engine_resp *r);
};

static void xfer_cb(void *ud, const struct engine_resp *r)
{
	struct xfer *x = ud;
	struct bbatch *b = x->b;

	b->busy = false;
	if (!b->l->closing)
		x->done(b, r);
	batch_http_clear(&x->h);
	free(x);
	if (!b->l->closing)
		lane_arm(b->l);
}

/* Sends h (taken) for b; done runs with the response. */
static int send_http(struct bbatch *b, struct batch_http *h, void (*done)(struct bbatch *, const struct engine_resp *))
{
	struct xfer *x = calloc(1, sizeof(*x));
	struct engine_req q;
	int rc;

	if (!x) {
		batch_http_clear(h);
		return -ENOMEM;
	}
	x->b = b;
	x->h = *h;
	memset(h, 0, sizeof(*h));
	x->done = done;
	memset(&q, 0, sizeof(q));
	q.url = x->h.url;
	q.method = x->h.method;
	q.content_type = x->h.content_type;
	q.body = x->h.body;
	q.body_len = x->h.body_len;
	q.headers = b->ep->auth;
	q.timeout_ms = HTTP_TIMEOUT_MS;
	b->busy = true;
	rc = engine_send(b->l->eng, &q, xfer_cb, x);
	if (rc < 0) {
		b->busy = false;
		batch_http_clear(&x->h);
		free(x);
	}
	return rc;
}

static bool http_ok(const struct engine_resp *r)
{
	return r->err == 0 && r->status >= 200 && r->status < 300;
}

static void http_why(const struct engine_resp *r, char *out, size_t n)
{
	if (r->err)
		snprintf(out, n, "%s", r->errmsg && *r->errmsg ? r->errmsg : strerror(-r->err));
	else
		snprintf(out, n, "HTTP %ld: %.160s", r->status, r->body);
}

/* ---- store writes of a batch ------------------------------------------------ */

static int written_apply(struct store *st, void *ud)
{
	struct bbatch *b = ud;
	int rc = store_batch_insert(st, b->ep->name, b->job_id, (int64_t)b->n, &b->id);

	for (struct breq *r = b->reqs; rc == 0 && r; r = r->next)
		rc = store_batch_req_insert(st, b->id, r->cid, r->job_id, r->key, r->body);
	return rc;
}

static void written_done(void *ud, int status)
{
	struct bbatch *b = ud;

	b->busy = false;
	if (b->l->closing) {
		write_done(b->l); /* may free b */
		return;
	}
	write_done(b->l);
	if (status < 0) {
		/* Nothing was submitted: the callers may ask again. */
		log_warn("batch: %s: a batch could not be stored (%s); its requests are failed back", b->ep->name,
			 strerror(-status));
		fail_all(b->l, b->reqs, BATCH_ERRORED, "the batch could not be stored");
		b->state = B_DONE;
	} else {
		b->state = B_SUBMITTING;
		b->step = 0;
		b->due = now_s(b->l);
	}
	lane_arm(b->l);
}

static int confirmed_apply(struct store *st, void *ud)
{
	struct bbatch *b = ud;

	return store_batch_submitted(st, b->id, b->pid);
}

static void confirmed_done(void *ud, int status)
{
	struct bbatch *b = ud;

	b->busy = false;
	if (b->l->closing) {
		write_done(b->l); /* may free b */
		return;
	}
	write_done(b->l);
	if (status < 0)
		log_error("batch: %s: batch %s was submitted but its id could not be stored (%s)", b->ep->name,
			  b->pid, strerror(-status));
	b->state = B_SUBMITTED;
	b->due = now_s(b->l) + b->l->s.poll_s;
	lane_arm(b->l);
}

static int state_apply(struct store *st, void *ud)
{
	struct bbatch *b = ud;

	return store_batch_set_state(st, b->id, b->state == B_DONE ? "done" : "submitted", b->poll.status);
}

static void state_done(void *ud, int status)
{
	struct bbatch *b = ud;

	b->busy = false;
	if (b->l->closing) {
		write_done(b->l); /* may free b */
		return;
	}
	write_done(b->l);
	if (status < 0)
		log_warn("batch: %s: the state of batch %s could not be stored (%s)", b->ep->name, b->pid,
			 strerror(-status));
	if (!b->l->closing)
		lane_arm(b->l);
}

/* ---- submission ---------------------------------------------------------------- */

static void submit_reply(struct bbatch *b, const struct engine_resp *r);

static void submit_fail(struct bbatch *b, const char *why)
{
	if (++b->tries >= SUBMIT_TRIES) {
		log_error("batch: %s: giving up on submitting a batch of %zu requests: %s", b->ep->name, b->n, why);
		fail_all(b->l, b->reqs, BATCH_ERRORED, "the batch could not be submitted");
		b->state = B_DONE;
		if (b->l->st && lane_write(b->l, state_apply, state_done, b) == 0)
			b->busy = true;
		return;
	}
	log_warn("batch: %s: submitting a batch failed (%s); trying again in %.0f s", b->ep->name, why,
		 b->l->s.poll_s);
	b->step = 0;
	b->due = now_s(b->l) + b->l->s.poll_s;
}

static void submit_go(struct bbatch *b)
{
	struct batch_http h;
	char err[200] = "", id[256] = "";
	int rc;

	memset(&h, 0, sizeof(h));
	rc = b->ep->api->submit_step(b->step, b->ep->base, b->ep->path, &b->lines, b->n, b->prev, &h, id,
				     sizeof(id), err, sizeof(err));
	if (rc == 1) {
		if (send_http(b, &h, submit_reply) < 0)
			submit_fail(b, "could not start the request");
		return;
	}
	batch_http_clear(&h);
	if (rc < 0) {
		submit_fail(b, err[0] ? err : strerror(-rc));
		return;
	}
	snprintf(b->pid, sizeof(b->pid), "%s", id);
	b->submitted_at = wall_s();
	buf_free(&b->lines);
	log_info("batch: %s: submitted batch %s (%zu requests)", b->ep->name, b->pid, b->n);
	b->state = B_CONFIRMING;
	if (b->l->st && lane_write(b->l, confirmed_apply, confirmed_done, b) == 0) {
		b->busy = true;
		return;
	}
	b->state = B_SUBMITTED;
	b->due = now_s(b->l) + b->l->s.poll_s;
}

static void submit_reply(struct bbatch *b, const struct engine_resp *r)
{
	char why[256];

	if (!http_ok(r)) {
		http_why(r, why, sizeof(why));
		submit_fail(b, why);
		return;
	}
	free(b->prev);
	b->prev = strndup(r->body, r->body_len);
	b->step++;
	submit_go(b);
}

/* ---- polling and results --------------------------------------------------------- */

static void fetch_next(struct bbatch *b);

static void apply_lines(struct bbatch *b, const char *body, size_t len)
{
	const char *p = body, *end = body + len, *nl;

	for (; p < end; p = nl + 1) {
		struct batch_result res;
		struct batch_outcome o;
		struct breq *r;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl - p < 2)
			continue;
		if (b->ep->api->result_parse(p, (size_t)(nl - p), &res) < 0) {
			log_warn("batch: %s: batch %s: a result line could not be read; skipped", b->ep->name, b->pid);
			batch_result_clear(&res);
			continue;
		}
		r = find_cid(b->l, res.custom_id);
		if (r && r->b == b && !r->resolved) {
			memset(&o, 0, sizeof(o));
			o.kind = res.kind;
			o.status = res.kind == BATCH_SUCCEEDED ? 200 : res.status;
			o.body = res.body;
			o.body_len = res.body ? strlen(res.body) : 0;
			o.code = res.code;
			o.msg = res.msg;
			breq_resolve(b->l, r, &o);
		}
		batch_result_clear(&res);
	}
}

static void finish(struct bbatch *b)
{
	fail_all(b->l, b->reqs, BATCH_ERRORED, "the batch ended without a result for this request");
	log_info("batch: %s: batch %s %s: %" PRId64 " of %zu requests done", b->ep->name, b->pid, b->poll.status,
		 b->poll.done, b->n);
	b->state = B_DONE;
	if (b->l->st && lane_write(b->l, state_apply, state_done, b) == 0)
		b->busy = true;
}

static void fetch_reply(struct bbatch *b, const struct engine_resp *r)
{
	char why[256];

	if (!http_ok(r)) {
		http_why(r, why, sizeof(why));
		log_warn("batch: %s: results of batch %s could not be read (%s); trying again", b->ep->name, b->pid, why);
		b->state = B_SUBMITTED;
		b->due = now_s(b->l) + b->l->s.poll_s;
		return;
	}
	apply_lines(b, r->body, r->body_len);
	b->url_i++;
	fetch_next(b);
}

static void fetch_next(struct bbatch *b)
{
	struct batch_http h;

	memset(&h, 0, sizeof(h));
	while (b->url_i < 2 && !b->poll.result_url[b->url_i][0])
		b->url_i++;
	if (b->url_i >= 2) {
		finish(b);
		return;
	}
	b->state = B_FETCHING;
	if (batch_http_set(&h, "GET", b->poll.result_url[b->url_i], NULL, NULL, 0) < 0 ||
	    send_http(b, &h, fetch_reply) < 0) {
		b->state = B_SUBMITTED;
		b->due = now_s(b->l) + b->l->s.poll_s;
	}
}

static void poll_reply(struct bbatch *b, const struct engine_resp *r)
{
	char why[256];
	struct batch_poll p;

	b->state = B_SUBMITTED;
	b->due = now_s(b->l) + b->l->s.poll_s;
	if (!http_ok(r)) {
		http_why(r, why, sizeof(why));
		log_warn("batch: %s: polling batch %s failed (%s)", b->ep->name, b->pid, why);
		/* A batch the provider keeps refusing (404: another account, deleted)
		 * never ends: its requests are failed back to be asked again. */
		if (r->err == 0 && r->status >= 400 && r->status < 500 && r->status != 429 && r->status != 408 &&
		    ++b->poll_fails >= 5) {
			snprintf(b->poll.status, sizeof(b->poll.status), "unknown");
			finish(b);
		}
		return;
	}
	b->poll_fails = 0;
	if (b->ep->api->poll_parse(b->ep->base, r->body, r->body_len, &p, why, sizeof(why)) < 0) {
		log_warn("batch: %s: batch %s: %s", b->ep->name, b->pid, why);
		return;
	}
	if (strcmp(p.status, b->poll.status) != 0)
		log_info("batch: %s: batch %s is %s (%" PRId64 "/%" PRId64 ")", b->ep->name, b->pid, p.status, p.done,
			 p.total);
	b->poll = p;
	if (p.ended) {
		b->url_i = 0;
		fetch_next(b);
	}
}

/* Moves b along when it is due and idle. */
static void batch_step(struct bbatch *b)
{
	struct batch_http h;

	if (b->busy || b->state == B_DONE || b->due > now_s(b->l))
		return;
	if (b->state == B_SUBMITTING) {
		submit_go(b);
	} else if (b->state == B_SUBMITTED) {
		memset(&h, 0, sizeof(h));
		b->state = B_POLLING;
		if (b->ep->api->poll_req(b->ep->base, b->pid, &h) < 0 || send_http(b, &h, poll_reply) < 0) {
			b->state = B_SUBMITTED;
			b->due = now_s(b->l) + b->l->s.poll_s;
		}
	}
}

/* ---- gathering --------------------------------------------------------------------- */

static struct bbatch *batch_new(struct batch_lane *l, struct bep *ep, int64_t job_id)
{
	struct bbatch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->l = l;
	b->ep = ep;
	b->job_id = job_id;
	buf_init(&b->lines, ep->api->max_bytes);
	b->next = l->batches;
	l->batches = b;
	return b;
}

/* Cuts the endpoint's queue into batches: one job per batch, each under the
 * row's request and byte caps; writes them to the store, then submits. */
static void gather(struct bep *ep)
{
	struct batch_lane *l = ep->l;

	while (ep->qhead) {
		int64_t job = ep->qhead->job_id;
		struct bbatch *b = batch_new(l, ep, job);
		struct breq **pp = &ep->qhead, *r, *tail = NULL;

		if (!b)
			return;
		while ((r = *pp)) {
			size_t before = b->lines.len;

			if (r->job_id != job) {
				pp = &r->next;
				continue;
			}
			if (b->n >= ep->api->max_requests)
				break;
			if (ep->api->line_append(&b->lines, r->cid, ep->path, r->body) < 0 ||
			    b->lines.len > ep->api->max_bytes - 64 * 1024) {
				b->lines.len = before;
				if (b->n == 0) {
					/* One request over the cap: it can never go. */
					struct batch_outcome o = { .kind = BATCH_ERRORED, .code = "", .msg = "request too large for a batch" };

					*pp = r->next;
					ep->nq--;
					r->next = NULL;
					breq_resolve(l, r, &o);
					breq_free(r);
					continue;
				}
				break;
			}
			*pp = r->next;
			ep->nq--;
			r->next = NULL;
			r->b = b;
			if (tail)
				tail->next = r;
			else
				b->reqs = r;
			tail = r;
			b->n++;
		}
		ep->qtail = NULL;
		for (r = ep->qhead; r; r = r->next)
			ep->qtail = r;
		if (b->n == 0) {
			b->state = B_DONE;
			continue;
		}
		if (l->st) {
			b->state = B_WRITING;
			if (lane_write(l, written_apply, written_done, b) == 0) {
				b->busy = true;
				continue;
			}
			fail_all(l, b->reqs, BATCH_ERRORED, "the batch could not be stored");
			b->state = B_DONE;
			continue;
		}
		b->state = B_SUBMITTING;
		b->due = now_s(l);
	}
	ep->gather_due = 0;
}

/* ---- the timer ------------------------------------------------------------------- */

static void tick(uv_timer_t *t)
{
	struct batch_lane *l = t->data;
	double now = now_s(l);
	struct bbatch **pp, *b;

	if (l->closing)
		return;
	for (size_t i = 0; i < l->neps; i++)
		if (l->eps[i]->gather_due > 0 && l->eps[i]->gather_due <= now)
			gather(l->eps[i]);
	for (b = l->batches; b; b = b->next)
		batch_step(b);
	/* Finished batches leave; their requests with them. */
	for (pp = &l->batches; (b = *pp);) {
		if (b->state != B_DONE || b->busy) {
			pp = &b->next;
			continue;
		}
		*pp = b->next;
		for (struct breq *r = b->reqs, *next; r; r = next) {
			next = r->next;
			tables_remove(l, r);
			breq_free(r);
		}
		buf_free(&b->lines);
		free(b->prev);
		free(b);
	}
	lane_arm(l);
}

static void lane_arm(struct batch_lane *l)
{
	double now = now_s(l), due = -1;

	if (l->closing)
		return;
	for (size_t i = 0; i < l->neps; i++)
		if (l->eps[i]->gather_due > 0 && (due < 0 || l->eps[i]->gather_due < due))
			due = l->eps[i]->gather_due;
	for (struct bbatch *b = l->batches; b; b = b->next) {
		double d = b->state == B_DONE ? now : b->due;

		if (b->busy)
			continue;
		if (b->state == B_DONE || b->state == B_SUBMITTING || b->state == B_SUBMITTED)
			if (due < 0 || d < due)
				due = d;
	}
	if (due < 0) {
		uv_timer_stop(&l->timer);
		return;
	}
	uv_timer_start(&l->timer, tick, due <= now ? 0 : (uint64_t)ceil((due - now) * 1000.0), 0);
}

/* ---- the API -------------------------------------------------------------------- */

int batch_lane_new(uv_loop_t *loop, struct store *st, const struct batch_settings *s, struct batch_lane **out)
{
	struct batch_lane *l = calloc(1, sizeof(*l));
	struct engine_opts eo;
	int rc;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->loop = loop;
	l->st = st;
	l->s.gather_s = s && s->gather_s > 0 ? s->gather_s : 1.0;
	l->s.poll_s = s && s->poll_s > 0 ? s->poll_s : 30.0;
	memset(&eo, 0, sizeof(eo));
	eo.max_host_connections = 8;
	eo.body_max = RESULTS_MAX;
	eo.free_max = 4;
	rc = engine_new(loop, &eo, &l->eng);
	if (rc == 0 && st)
		rc = store_batches_init(st);
	if (rc < 0) {
		if (l->eng)
			engine_close(l->eng, NULL, NULL);
		free(l);
		return rc;
	}
	l->nonce = (fnv1a64(0, &l, sizeof(l)) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(wall_s() * 1e6)) & 0xffffffffffull;
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	*out = l;
	return 0;
}

int batch_lane_endpoint_add(struct batch_lane *l, const struct batch_ep_cfg *cfg)
{
	struct bep *ep;

	if (ep_find(l, cfg->name))
		return -EEXIST;
	if (l->neps >= LANE_MAX_ENDPOINTS)
		return -ENOSPC;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	ep->l = l;
	ep->name = strdup(cfg->name);
	ep->base = strdup(cfg->base_url);
	ep->model = strdup(cfg->model);
	ep->auth = strdup(cfg->auth ? cfg->auth : "");
	ep->path = strdup(cfg->chat_path);
	ep->api = cfg->api;
	ep->prov = cfg->prov;
	ep->price_in = cfg->price_in;
	ep->price_out = cfg->price_out;
	if (!ep->name || !ep->base || !ep->model || !ep->auth || !ep->path) {
		free(ep->name);
		free(ep->base);
		free(ep->model);
		free(ep->auth);
		free(ep->path);
		free(ep);
		return -ENOMEM;
	}
	l->eps[l->neps++] = ep;
	return 0;
}

struct resume_ctx {
	struct batch_lane *l;
	struct bbatch *b;
	int64_t lost;
};

static int resume_batch(void *ud, const struct store_batch_row *row)
{
	struct resume_ctx *x = ud;
	struct bep *ep = ep_find(x->l, row->endpoint);

	x->b = NULL;
	if (!ep)
		return 0;
	if (strcmp(row->state, "submitting") == 0 || !row->provider_id) {
		/* Written but never confirmed: its requests go again when asked. */
		x->lost++;
		x->b = batch_new(x->l, ep, row->job_id);
		if (!x->b)
			return -ENOMEM;
		x->b->id = row->id;
		x->b->state = B_DONE;
		return 0;
	}
	x->b = batch_new(x->l, ep, row->job_id);
	if (!x->b)
		return -ENOMEM;
	x->b->id = row->id;
	snprintf(x->b->pid, sizeof(x->b->pid), "%s", row->provider_id);
	x->b->state = B_SUBMITTED;
	x->b->submitted_at = row->submitted_at;
	x->b->due = now_s(x->l);
	return 0;
}

static int resume_req(void *ud, const struct store_batch_row *row, const struct store_batch_req_row *rr)
{
	struct resume_ctx *x = ud;
	struct breq *r;
	struct jstat *js;

	(void)row;
	if (!x->b || x->b->state == B_DONE)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->body = strdup(rr->request))) {
		free(r);
		return -ENOMEM;
	}
	r->ep = x->b->ep;
	r->b = x->b;
	r->job_id = rr->job_id;
	snprintf(r->cid, sizeof(r->cid), "%s", rr->custom_id);
	snprintf(r->key, sizeof(r->key), "%s", rr->key);
	r->next = x->b->reqs;
	x->b->reqs = r;
	x->b->n++;
	tables_add(x->l, r);
	js = jstat_get(x->l, r->job_id);
	if (js)
		js->requests++;
	return 0;
}

static int lost_apply(struct store *st, void *ud)
{
	struct bbatch *b = ud;

	return store_batch_set_state(st, b->id, "lost", NULL);
}

static void lost_done(void *ud, int status)
{
	struct bbatch *b = ud;

	(void)status;
	b->busy = false;
	write_done(b->l);
}

int batch_lane_resume(struct batch_lane *l)
{
	struct resume_ctx x = { l, NULL, 0 };
	int rc;

	if (!l->st)
		return 0;
	rc = store_batches_load(l->st, resume_batch, resume_req, &x);
	if (rc < 0)
		return rc;
	for (struct bbatch *b = l->batches; b; b = b->next) {
		if (b->state == B_DONE && b->id && lane_write(l, lost_apply, lost_done, b) == 0)
			b->busy = true;
		else if (b->state == B_SUBMITTED)
			log_info("batch: %s: resuming batch %s (%zu requests open)", b->ep->name, b->pid, b->n);
	}
	if (x.lost)
		log_warn("batch: %" PRId64 " batch(es) were written but never confirmed by the provider; their "
			 "requests are submitted again when asked",
			 x.lost);
	lane_arm(l);
	return 0;
}

int batch_lane_request(struct batch_lane *l, const char *endpoint, int64_t job_id, const char *key,
		       const char *body, batch_cb cb, void *ud, struct batch_waiter **wout)
{
	struct bep *ep = l ? ep_find(l, endpoint) : NULL;
	struct batch_waiter *w;
	struct breq *r;
	struct jstat *js;

	if (!ep)
		return -ENOENT;
	if (l->closing)
		return -ESHUTDOWN;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->ud = ud;
	r = find_key(l, ep, key);
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || !(r->body = strdup(body))) {
			free(r);
			free(w);
			return -ENOMEM;
		}
		r->ep = ep;
		r->job_id = job_id;
		snprintf(r->key, sizeof(r->key), "%s", key);
		snprintf(r->cid, sizeof(r->cid), "mt-%010" PRIx64 "-%" PRIu64, l->nonce, ++l->seq);
		tables_add(l, r);
		if (ep->qtail)
			ep->qtail->next = r;
		else
			ep->qhead = r;
		ep->qtail = r;
		ep->nq++;
		js = jstat_get(l, job_id);
		if (js)
			js->requests++;
		if (ep->gather_due <= 0) {
			ep->gather_due = now_s(l) + l->s.gather_s;
			lane_arm(l);
		}
	}
	w->r = r;
	w->next = r->waiters;
	r->waiters = w;
	*wout = w;
	return 0;
}

void batch_waiter_detach(struct batch_waiter *w)
{
	struct batch_waiter **pp;

	if (!w)
		return;
	for (pp = &w->r->waiters; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	free(w);
}

void batch_lane_note_resubmit(struct batch_lane *l, int64_t job_id)
{
	struct jstat *js = l ? jstat_get(l, job_id) : NULL;

	if (js)
		js->resubmitted++;
}

static void cancel_cb(void *ud, const struct engine_resp *r)
{
	struct batch_http *h = ud;

	if (r->err || r->status < 200 || r->status >= 300)
		log_warn("batch: a cancel request failed: %s HTTP %ld", r->errmsg ? r->errmsg : "", r->status);
	batch_http_clear(h);
	free(h);
}

int batch_lane_cancel_job(struct batch_lane *l, int64_t job_id)
{
	struct batch_outcome o = { .kind = BATCH_CANCELED, .code = "", .msg = "the job was cancelled" };
	int n = 0;

	if (!l || l->closing)
		return 0;
	for (size_t i = 0; i < l->neps; i++) {
		struct bep *ep = l->eps[i];
		struct breq **pp = &ep->qhead, *r;

		while ((r = *pp)) {
			if (r->job_id != job_id) {
				pp = &r->next;
				continue;
			}
			*pp = r->next;
			ep->nq--;
			breq_resolve(l, r, &o);
			breq_free(r);
		}
		ep->qtail = NULL;
		for (r = ep->qhead; r; r = r->next)
			ep->qtail = r;
	}
	for (struct bbatch *b = l->batches; b; b = b->next) {
		struct batch_http h;

		if (b->job_id != job_id || b->state == B_DONE || !b->pid[0])
			continue;
		memset(&h, 0, sizeof(h));
		if (b->ep->api->cancel_req(b->ep->base, b->pid, &h) == 0) {
			struct engine_req q;

			/* Fire and forget: the polls see it end. */
			memset(&q, 0, sizeof(q));
			q.url = h.url;
			q.method = h.method;
			q.body = h.body;
			q.body_len = h.body_len;
			q.headers = b->ep->auth;
			struct batch_http *keep = malloc(sizeof(*keep));

			if (keep) {
				*keep = h;
				memset(&h, 0, sizeof(h));
				if (engine_send(l->eng, &q, cancel_cb, keep) < 0) {
					batch_http_clear(keep);
					free(keep);
				}
			}
		}
		batch_http_clear(&h);
		log_info("batch: %s: cancelling batch %s of job %" PRId64, b->ep->name, b->pid, job_id);
		b->due = now_s(l);
		n++;
	}
	lane_arm(l);
	return n;
}

void batch_lane_job_stats(const struct batch_lane *l, int64_t job_id, struct batch_job_stats *out)
{
	double now = wall_s();

	memset(out, 0, sizeof(*out));
	out->eta_s = -1;
	if (!l)
		return;
	for (struct jstat *j = l->jobs; j; j = j->next)
		if (j->job_id == job_id) {
			out->requests = j->requests;
			out->done = j->done;
			out->failed = j->failed;
			out->resubmitted = j->resubmitted;
		}
	for (size_t i = 0; i < l->neps; i++)
		for (struct breq *r = l->eps[i]->qhead; r; r = r->next)
			if (r->job_id == job_id)
				out->queued++;
	for (struct bbatch *b = l->batches; b; b = b->next) {
		if (b->job_id != job_id)
			continue;
		out->batches++;
		if (b->state == B_DONE)
			continue;
		out->batches_open++;
		snprintf(out->status, sizeof(out->status), "%s", b->poll.status[0] ? b->poll.status : "submitting");
		if (b->submitted_at > 0 && b->poll.done > 0 && b->poll.total > 0) {
			double el = now - b->submitted_at;
			double eta = el * (double)(b->poll.total - b->poll.done) / (double)b->poll.done;

			if (eta > out->eta_s)
				out->eta_s = eta;
		}
	}
}

static void lane_free(struct batch_lane *l)
{
	struct bbatch *b, *bn;
	struct jstat *j, *jn;

	for (b = l->batches; b; b = bn) {
		bn = b->next;
		for (struct breq *r = b->reqs, *next; r; r = next) {
			next = r->next;
			breq_free(r);
		}
		buf_free(&b->lines);
		free(b->prev);
		free(b);
	}
	for (size_t i = 0; i < l->neps; i++) {
		struct bep *ep = l->eps[i];

		for (struct breq *r = ep->qhead, *next; r; r = next) {
			next = r->next;
			breq_free(r);
		}
		if (ep->auth)
			memset(ep->auth, 0, strlen(ep->auth));
		free(ep->name);
		free(ep->base);
		free(ep->model);
		free(ep->auth);
		free(ep->path);
		free(ep);
	}
	for (j = l->jobs; j; j = jn) {
		jn = j->next;
		free(j);
	}
	if (l->closed)
		l->closed(l->closed_ud);
	free(l);
}

static void maybe_free(struct batch_lane *l)
{
	if (l->engine_gone && l->timer_closed && l->writes == 0)
		lane_free(l);
}

static void timer_closed(uv_handle_t *h)
{
	struct batch_lane *l = h->data;

	l->timer_closed = true;
	maybe_free(l);
}

static void engine_closed(void *ud)
{
	struct batch_lane *l = ud;

	l->engine_gone = true;
	maybe_free(l);
}

void batch_lane_close(struct batch_lane *l, void (*closed)(void *ud), void *ud)
{
	if (!l || l->closing)
		return;
	l->closing = true;
	l->closed = closed;
	l->closed_ud = ud;
	/* Waiters are dropped: the client fails its own calls. */
	for (size_t i = 0; i < l->neps; i++)
		for (struct breq *r = l->eps[i]->qhead; r; r = r->next) {
			for (struct batch_waiter *w = r->waiters, *n; w; w = n) {
				n = w->next;
				free(w);
			}
			r->waiters = NULL;
		}
	for (struct bbatch *b = l->batches; b; b = b->next)
		for (struct breq *r = b->reqs; r; r = r->next) {
			for (struct batch_waiter *w = r->waiters, *n; w; w = n) {
				n = w->next;
				free(w);
			}
			r->waiters = NULL;
		}
	uv_close((uv_handle_t *)&l->timer, timer_closed);
	engine_close(l->eng, engine_closed, l);
}
