/* medthink-sim: a SIMULATOR of an OpenAI-compatible server for tests, the
 * demo and benchmarks. It returns fake, deterministic replies (replies.c)
 * and injects faults on demand. Single libuv thread; latency via timers. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/utf8.h"
#include "daemon/http.h"
#include "tests/sim/refer.h"
#include "tests/sim/r1.h"
#include "tests/sim/replies.h"
#include "tests/sim/selection.h"
#include "tests/sim/sim_batch.h"

#define SIM_MAX_BODY (32u * 1024 * 1024)
#define BODY_TABLE_MAX (1u << 20)
#define GOLD_TABLE_MAX (1u << 18)
#define WINDOW_MS 60000u
#define TPM_RING_MAX (1u << 20)
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(8))

/* ---------------------------------------------------------------- options */

struct opts {
	char host[64];
	int port;
	double latency_ms, jitter_ms;
	double rpm, tpm;
	double fail_500, fail_429, malformed, truncated, timeout, error_in_200, quota;
	double seed;
	double student_accuracy, drop_rate, contradict_rate;
	double hold_after;
	double no_prompt_logprobs, embed_dim;
	char require_key[256];
	char replica_id[64];  /* --replica-id: which instance of a pool this is */
};

enum otype { O_PROB, O_NUM, O_STR };

static const struct optdef {
	const char *name;
	enum otype type;
	size_t off;
	const char *help;
} optdefs[] = {
	{ "latency-ms", O_NUM, offsetof(struct opts, latency_ms), "mean reply latency (ms)" },
	{ "latency-jitter-ms", O_NUM, offsetof(struct opts, jitter_ms), "uniform +- jitter (ms)" },
	{ "rpm", O_NUM, offsetof(struct opts, rpm), "requests per minute enforced (0 = off)" },
	{ "tpm", O_NUM, offsetof(struct opts, tpm), "tokens per minute enforced (0 = off)" },
	{ "fail-500", O_PROB, offsetof(struct opts, fail_500), "P of a 500" },
	{ "fail-429", O_PROB, offsetof(struct opts, fail_429), "P of a random 429 (regardless of limits)" },
	{ "malformed", O_PROB, offsetof(struct opts, malformed), "P of a 200 with non-JSON or no choices" },
	{ "truncated", O_PROB, offsetof(struct opts, truncated), "P of a body shorter than Content-Length, then close" },
	{ "timeout", O_PROB, offsetof(struct opts, timeout), "P of never answering (the connection is held)" },
	{ "error-in-200", O_PROB, offsetof(struct opts, error_in_200), "P of {\"error\":...} with status 200" },
	{ "quota", O_PROB, offsetof(struct opts, quota), "P of a 429 insufficient_quota" },
	{ "seed", O_NUM, offsetof(struct opts, seed), "seed for replies and faults" },
	{ "student-accuracy", O_PROB, offsetof(struct opts, student_accuracy), "P the student is right when the sim knows the gold (0.6)" },
	{ "drop-rate", O_PROB, offsetof(struct opts, drop_rate), "teacher screen drop rate (0.1)" },
	{ "contradict-rate", O_PROB, offsetof(struct opts, contradict_rate), "P an explanation ends in a wrong answer (0.05)" },
	{ "hold-after", O_NUM, offsetof(struct opts, hold_after), "answer N more replies, then hold the rest until set again (0 = off; tests pace work by it)" },
	{ "no-prompt-logprobs", O_PROB, offsetof(struct opts, no_prompt_logprobs), "1: act like an engine without prompt logprobs (echo gives no logprobs of the prompt)" },
	{ "embed-dim", O_NUM, offsetof(struct opts, embed_dim), "dimension of /v1/embeddings vectors without a sim-emb= marker (8)" },
	{ "require-key", O_STR, offsetof(struct opts, require_key), "reply 401 unless Authorization: Bearer VALUE" },
};
#define NOPTDEFS (sizeof(optdefs) / sizeof(optdefs[0]))

static const struct optdef *optdef_find(const char *name)
{
	char norm[64];
	size_t i;

	snprintf(norm, sizeof(norm), "%s", name);
	for (char *c = norm; *c; c++)
		if (*c == '_')
			*c = '-';
	for (i = 0; i < NOPTDEFS; i++)
		if (strcmp(optdefs[i].name, norm) == 0)
			return &optdefs[i];
	return NULL;
}

/* Sets one option from text; returns 0 or -EINVAL with err filled. */
static int opt_set(struct opts *o, const struct optdef *d, const char *val, char *err, size_t errlen)
{
	char *end;
	double v;

	if (d->type == O_STR) {
		if (strlen(val) >= sizeof(o->require_key)) {
			snprintf(err, errlen, "%s: value too long", d->name);
			return -EINVAL;
		}
		snprintf((char *)o + d->off, sizeof(o->require_key), "%s", val);
		return 0;
	}
	errno = 0;
	v = strtod(val, &end);
	if (errno || end == val || *end || !isfinite(v) || v < 0) {
		snprintf(err, errlen, "%s: \"%s\" is not a non-negative number", d->name, val);
		return -EINVAL;
	}
	if (d->type == O_PROB && v > 1) {
		snprintf(err, errlen, "%s: %s is not a probability in [0,1]", d->name, val);
		return -EINVAL;
	}
	*(double *)((char *)o + d->off) = v;
	return 0;
}

static json_t *opts_json(const struct opts *o)
{
	json_t *j = json_object();
	char addr[96];
	size_t i;

	snprintf(addr, sizeof(addr), "%s:%d", o->host, o->port);
	json_object_set_new(j, "listen", json_string(addr));
	for (i = 0; i < NOPTDEFS; i++) {
		const struct optdef *d = &optdefs[i];
		if (d->type == O_STR)
			/* never echo the key itself */
			json_object_set_new(j, d->name, json_boolean(((const char *)o + d->off)[0] != 0));
		else {
			double v = *(const double *)((const char *)o + d->off);
			json_object_set_new(j, d->name,
					    v == floor(v) && v < 9e15 ? json_integer((json_int_t)v)
								      : json_real(v));
		}
	}
	return j;
}

/* ------------------------------------------------------------------ state */

struct body_table {
	uint64_t *keys;
	uint32_t *counts;
	size_t cap, used;
	uint32_t max_count;
	uint64_t duplicates, untracked;
};

struct gold_entry {
	uint64_t key;
	char gold[48];
};

struct gold_table {
	struct gold_entry *e;
	size_t cap, used;
};

struct tpm_ent {
	uint64_t ts;
	uint64_t tokens;
};

struct sim {
	uv_loop_t *loop;
	struct http_server *srv;
	uv_signal_t sigint, sigterm;
	struct opts o;
	uint64_t rng;
	/* rate windows */
	uint64_t *rpm_ring;
	size_t rpm_cap, rpm_head, rpm_len;
	struct tpm_ent *tpm_ring;
	size_t tpm_cap, tpm_head, tpm_len;
	uint64_t tpm_sum;
	/* stats */
	uint64_t total, sent_429, limited_429, random_429, quota_429, held;
	uint64_t prompt_tokens, completion_tokens;
	uint64_t by_status[600];
	json_t *by_path;
	struct body_table bodies;
	struct gold_table golds;
	uint64_t seq;
	/* hold-after: replies left before the gate closes; gated replies wait
	 * here, oldest first, until the option is set again */
	uint64_t gate_left;
	struct pending *gate_head, *gate_tail;
	uint64_t gated;
};

struct pending {
	uv_timer_t timer;
	struct http_req *req;
	struct sim *sim;
	int status;
	char *body;
	size_t len;
	bool raw;   /* body is a whole raw response */
	bool sse;   /* send as a chat.completion.chunk stream */
	bool held;  /* never answered */
	bool gated; /* waiting behind the hold-after gate */
	double ms;  /* its latency, applied when the gate lets it go */
	struct pending *gnext, *gprev;
};

static uint64_t rng_next(struct sim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rng_u01(struct sim *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }

static bool chance(struct sim *s, double p) { return p > 0 && rng_u01(s) < p; }

static void body_table_note(struct body_table *t, uint64_t h)
{
	size_t i;

	if (h == 0)
		h = 1;
	if (t->used * 2 >= t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 1024, j;
		uint64_t *nk;
		uint32_t *nc;
		if (ncap > BODY_TABLE_MAX)
			goto lookup_only;
		nk = calloc(ncap, sizeof(*nk));
		nc = calloc(ncap, sizeof(*nc));
		if (!nk || !nc) {
			free(nk);
			free(nc);
			goto lookup_only;
		}
		for (j = 0; j < t->cap; j++) {
			if (!t->keys[j])
				continue;
			i = t->keys[j] & (ncap - 1);
			while (nk[i])
				i = (i + 1) & (ncap - 1);
			nk[i] = t->keys[j];
			nc[i] = t->counts[j];
		}
		free(t->keys);
		free(t->counts);
		t->keys = nk;
		t->counts = nc;
		t->cap = ncap;
	}
lookup_only:
	if (!t->cap) {
		t->untracked++;
		return;
	}
	i = h & (t->cap - 1);
	while (t->keys[i] && t->keys[i] != h)
		i = (i + 1) & (t->cap - 1);
	if (!t->keys[i]) {
		if ((t->used + 1) * 10 > t->cap * 9) {
			t->untracked++;
			return;
		}
		t->keys[i] = h;
		t->used++;
	}
	t->counts[i]++;
	if (t->counts[i] == 2)
		t->duplicates++;
	if (t->counts[i] > t->max_count)
		t->max_count = t->counts[i];
}

static void body_table_clear(struct body_table *t)
{
	free(t->keys);
	free(t->counts);
	memset(t, 0, sizeof(*t));
}

static struct gold_entry *gold_slot(struct gold_table *t, uint64_t key)
{
	size_t i;

	if (!t->cap)
		return NULL;
	i = key & (t->cap - 1);
	while (t->e[i].key && t->e[i].key != key)
		i = (i + 1) & (t->cap - 1);
	return &t->e[i];
}

static void gold_learn(struct gold_table *t, uint64_t key, const char *gold)
{
	struct gold_entry *e;

	if (!key)
		key = 1;
	if (t->used * 2 >= t->cap && t->cap < GOLD_TABLE_MAX) {
		size_t ncap = t->cap ? t->cap * 2 : 1024, j;
		struct gold_table n = { calloc(ncap, sizeof(struct gold_entry)), ncap, 0 };
		if (n.e) {
			for (j = 0; j < t->cap; j++)
				if (t->e[j].key) {
					*gold_slot(&n, t->e[j].key) = t->e[j];
					n.used++;
				}
			free(t->e);
			*t = n;
		}
	}
	e = gold_slot(t, key);
	if (!e)
		return;
	if (!e->key) {
		if ((t->used + 1) * 10 > t->cap * 9)
			return; /* full: stop learning */
		e->key = key;
		t->used++;
	}
	utf8_copy(e->gold, sizeof(e->gold), gold, ""); /* an answer text may be Chinese */
}

static const char *gold_lookup(struct gold_table *t, uint64_t key)
{
	struct gold_entry *e = gold_slot(t, key ? key : 1);
	return e && e->key ? e->gold : NULL;
}

/* ----------------------------------------------------------- rate limits */

static void windows_reset(struct sim *s)
{
	free(s->rpm_ring);
	free(s->tpm_ring);
	s->rpm_ring = NULL;
	s->tpm_ring = NULL;
	s->rpm_cap = s->rpm_head = s->rpm_len = 0;
	s->tpm_cap = s->tpm_head = s->tpm_len = 0;
	s->tpm_sum = 0;
	if (s->o.rpm >= 1) {
		s->rpm_cap = (size_t)s->o.rpm;
		if (s->rpm_cap > 10000000)
			s->rpm_cap = 10000000;
		s->rpm_ring = calloc(s->rpm_cap, sizeof(uint64_t));
		if (!s->rpm_ring)
			s->rpm_cap = 0;
	}
}

static void windows_purge(struct sim *s, uint64_t now)
{
	while (s->rpm_len && s->rpm_ring[s->rpm_head] + WINDOW_MS <= now) {
		s->rpm_head = (s->rpm_head + 1) % s->rpm_cap;
		s->rpm_len--;
	}
	while (s->tpm_len && s->tpm_ring[s->tpm_head].ts + WINDOW_MS <= now) {
		s->tpm_sum -= s->tpm_ring[s->tpm_head].tokens;
		s->tpm_head = (s->tpm_head + 1) % s->tpm_cap;
		s->tpm_len--;
	}
}

static void tpm_push(struct sim *s, uint64_t now, uint64_t tokens)
{
	if (s->tpm_len == s->tpm_cap) {
		size_t ncap = s->tpm_cap ? s->tpm_cap * 2 : 1024, i;
		struct tpm_ent *n;
		if (ncap > TPM_RING_MAX)
			return;
		n = malloc(ncap * sizeof(*n));
		if (!n)
			return;
		for (i = 0; i < s->tpm_len; i++)
			n[i] = s->tpm_ring[(s->tpm_head + i) % s->tpm_cap];
		free(s->tpm_ring);
		s->tpm_ring = n;
		s->tpm_cap = ncap;
		s->tpm_head = 0;
	}
	s->tpm_ring[(s->tpm_head + s->tpm_len) % s->tpm_cap] = (struct tpm_ent){ now, tokens };
	s->tpm_len++;
	s->tpm_sum += tokens;
}

static void fmt_duration(char *out, size_t n, uint64_t ms)
{
	if (ms < 1000)
		snprintf(out, n, "%llums", (unsigned long long)ms);
	else
		snprintf(out, n, "%.3fs", (double)ms / 1000.0);
}

/* Applies rpm/tpm to a request of `tokens`. Returns 0 when admitted, else
 * the Retry-After in seconds. Adds the x-ratelimit-* headers either way. */
static unsigned limits_check(struct sim *s, struct http_req *req, uint64_t tokens)
{
	uint64_t now = uv_now(s->loop);
	uint64_t wait_ms = 0;
	char v[64];

	if (s->o.rpm < 1 && s->o.tpm < 1)
		return 0;
	windows_purge(s, now);
	if (s->rpm_cap && s->rpm_len >= s->rpm_cap)
		wait_ms = s->rpm_ring[s->rpm_head] + WINDOW_MS - now;
	if (s->o.tpm >= 1 && s->tpm_sum + tokens > (uint64_t)s->o.tpm) {
		uint64_t freed = 0, w = WINDOW_MS;
		size_t i;
		if (tokens <= (uint64_t)s->o.tpm) {
			for (i = 0; i < s->tpm_len; i++) {
				const struct tpm_ent *e = &s->tpm_ring[(s->tpm_head + i) % s->tpm_cap];
				freed += e->tokens;
				if (s->tpm_sum - freed + tokens <= (uint64_t)s->o.tpm) {
					w = e->ts + WINDOW_MS - now;
					break;
				}
			}
		}
		if (w > wait_ms)
			wait_ms = w;
	}
	if (!wait_ms) {
		if (s->rpm_cap) {
			s->rpm_ring[(s->rpm_head + s->rpm_len) % s->rpm_cap] = now;
			s->rpm_len++;
		}
		if (s->o.tpm >= 1)
			tpm_push(s, now, tokens);
	}
	if (s->rpm_cap) {
		snprintf(v, sizeof(v), "%zu", s->rpm_cap);
		http_req_add_header(req, "x-ratelimit-limit-requests", v);
		snprintf(v, sizeof(v), "%zu", s->rpm_cap - s->rpm_len);
		http_req_add_header(req, "x-ratelimit-remaining-requests", v);
		fmt_duration(v, sizeof(v), s->rpm_len ? s->rpm_ring[s->rpm_head] + WINDOW_MS - now : 0);
		http_req_add_header(req, "x-ratelimit-reset-requests", v);
	}
	if (s->o.tpm >= 1) {
		uint64_t lim = (uint64_t)s->o.tpm;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)lim);
		http_req_add_header(req, "x-ratelimit-limit-tokens", v);
		snprintf(v, sizeof(v), "%llu",
			 (unsigned long long)(s->tpm_sum >= lim ? 0 : lim - s->tpm_sum));
		http_req_add_header(req, "x-ratelimit-remaining-tokens", v);
		fmt_duration(v, sizeof(v),
			     s->tpm_len ? s->tpm_ring[s->tpm_head].ts + WINDOW_MS - now : 0);
		http_req_add_header(req, "x-ratelimit-reset-tokens", v);
	}
	if (!wait_ms)
		return 0;
	return (unsigned)((wait_ms + 999) / 1000);
}

/* ---------------------------------------------------------------- replies */

static void count_path(struct sim *s, const char *path)
{
	const char *key = path;
	json_t *n;

	if (json_object_size(s->by_path) >= 64 && !json_object_get(s->by_path, path))
		key = "(other)";
	n = json_object_get(s->by_path, key);
	json_object_set_new(s->by_path, key, json_integer(n ? json_integer_value(n) + 1 : 1));
}

static void pending_free_cb(uv_handle_t *h)
{
	struct pending *p = h->data;
	free(p->body);
	free(p);
}

static void pending_release(struct pending *p)
{
	uv_close((uv_handle_t *)&p->timer, pending_free_cb);
}

static void gate_unlink(struct sim *s, struct pending *p)
{
	if (p->gprev)
		p->gprev->gnext = p->gnext;
	else
		s->gate_head = p->gnext;
	if (p->gnext)
		p->gnext->gprev = p->gprev;
	else
		s->gate_tail = p->gprev;
	p->gnext = p->gprev = NULL;
	p->gated = false;
	s->gated--;
}

static void pending_abort(void *ctx, struct http_req *req)
{
	struct pending *p = ctx;
	(void)req;
	if (p->held)
		p->sim->held--;
	if (p->gated)
		gate_unlink(p->sim, p);
	pending_release(p);
}

static void sse_event(struct http_req *req, json_t *ev)
{
	char *s = ev ? json_dumps(ev, JSON_COMPACT) : NULL;

	if (s) {
		http_stream_write(req, "data: ", 6);
		http_stream_write(req, s, strlen(s));
		http_stream_write(req, "\n\n", 2);
		free(s);
	}
	json_decref(ev);
}

/* Sends a chat.completion body as an SSE stream: one delta, a final chunk
 * with finish_reason and usage, then [DONE]. */
static void send_sse(struct pending *p)
{
	json_t *full = json_loadb(p->body, p->len, 0, NULL);
	json_t *c0 = json_array_get(json_object_get(full, "choices"), 0);
	const char *content = json_string_value(json_object_get(json_object_get(c0, "message"), "content"));
	const char *fr = json_string_value(json_object_get(c0, "finish_reason"));

	http_stream_start(p->req, 200, "text/event-stream");
	if (full) {
		sse_event(p->req, json_pack("{s:O?,s:s,s:O?,s:O?,s:[{s:i,s:{s:s,s:s},s:n}]}", "id",
					    json_object_get(full, "id"), "object",
					    "chat.completion.chunk", "created",
					    json_object_get(full, "created"), "model",
					    json_object_get(full, "model"), "choices", "index", 0,
					    "delta", "role", "assistant", "content",
					    content ? content : "", "finish_reason"));
		sse_event(p->req, json_pack("{s:O?,s:s,s:O?,s:O?,s:[{s:i,s:{},s:s}],s:O?}", "id",
					    json_object_get(full, "id"), "object",
					    "chat.completion.chunk", "created",
					    json_object_get(full, "created"), "model",
					    json_object_get(full, "model"), "choices", "index", 0,
					    "delta", "finish_reason", fr ? fr : "stop", "usage",
					    json_object_get(full, "usage")));
		json_decref(full);
	}
	http_stream_write(p->req, "data: [DONE]\n\n", 14);
	http_stream_end(p->req);
}

static void pending_send(struct pending *p)
{
	if (p->raw)
		http_respond_raw(p->req, p->body, p->len);
	else if (p->sse && p->status == 200)
		send_sse(p);
	else
		http_respond(p->req, p->status, "application/json", p->body, p->len);
	pending_release(p);
}

static void on_pending_timer(uv_timer_t *t) { pending_send(t->data); }

/* Takes body. Counts the status, applies the latency, responds. */
static void reply_take(struct sim *s, struct http_req *req, int status, char *body, size_t len,
		       bool raw, bool sse, bool delay)
{
	struct pending *p = calloc(1, sizeof(*p));
	double ms = s->o.latency_ms;

	if (status >= 100 && status < 600)
		s->by_status[status]++;
	if (status == 429)
		s->sent_429++;
	if (!p) {
		free(body);
		http_respond_error(req, 500, "internal", "simulator out of memory", NULL);
		return;
	}
	p->req = req;
	p->sim = s;
	p->status = status;
	p->body = body;
	p->len = len;
	p->raw = raw;
	p->sse = sse;
	uv_timer_init(s->loop, &p->timer);
	p->timer.data = p;
	if (s->o.jitter_ms > 0)
		ms += (rng_u01(s) * 2 - 1) * s->o.jitter_ms;
	if (delay && s->o.hold_after > 0) {
		if (s->gate_left == 0) {
			/* The gate is closed: the reply waits for the next hold-after. */
			p->ms = ms;
			p->gated = true;
			p->gprev = s->gate_tail;
			if (s->gate_tail)
				s->gate_tail->gnext = p;
			else
				s->gate_head = p;
			s->gate_tail = p;
			s->gated++;
			http_req_on_abort(req, pending_abort, p);
			return;
		}
		s->gate_left--;
	}
	if (!delay || ms < 0.5) {
		pending_send(p);
		return;
	}
	http_req_on_abort(req, pending_abort, p);
	uv_timer_start(&p->timer, on_pending_timer, (uint64_t)llround(ms), 0);
}

/* A new hold-after value: N more replies may go (the waiting ones first);
 * 0 opens the gate for good. */
static void gate_reset(struct sim *s)
{
	s->gate_left = (uint64_t)s->o.hold_after;
	while (s->gate_head && (s->o.hold_after <= 0 || s->gate_left > 0)) {
		struct pending *p = s->gate_head;

		gate_unlink(s, p);
		if (s->o.hold_after > 0)
			s->gate_left--;
		uv_timer_start(&p->timer, on_pending_timer, p->ms < 0.5 ? 0 : (uint64_t)llround(p->ms), 0);
	}
}

static void reply_json_take(struct sim *s, struct http_req *req, int status, json_t *j, bool delay)
{
	char *b = json_dumps(j, DUMP_FLAGS);
	json_decref(j);
	if (!b) {
		http_respond_error(req, 500, "internal", "simulator out of memory", NULL);
		return;
	}
	reply_take(s, req, status, b, strlen(b), false, false, delay);
}

/* An OpenAI-shaped error. */
static void reply_oai_error(struct sim *s, struct http_req *req, int status, const char *type,
			    const char *code, const char *message, const char *param)
{
	json_t *e = json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", message, "type", type,
			      "param", param, "code", code);
	reply_json_take(s, req, status, e, true);
}

static char *content_text(json_t *content)
{
	struct buf b;
	size_t i;
	json_t *part;

	if (json_is_string(content))
		return strdup(json_string_value(content));
	buf_init(&b, SIM_MAX_BODY);
	json_array_foreach(content, i, part)
	{
		const char *t = json_string_value(json_object_get(part, "text"));
		if (t) {
			if (b.len)
				buf_puts(&b, "\n");
			buf_puts(&b, t);
		}
	}
	if (!b.base)
		return strdup("");
	return buf_take(&b);
}

static size_t approx_tokens(size_t bytes) { return bytes ? (bytes + 3) / 4 : 0; }

/* Cuts content to about max_tokens (4 bytes a token) on a UTF-8 boundary. */
static bool truncate_tokens(char *content, json_t *req_json)
{
	json_t *mt = json_object_get(req_json, "max_completion_tokens");
	size_t cut;

	if (!json_is_integer(mt))
		mt = json_object_get(req_json, "max_tokens");
	if (!json_is_integer(mt) || json_integer_value(mt) < 0)
		return false;
	cut = (size_t)json_integer_value(mt) * 4;
	if (strlen(content) <= cut)
		return false;
	while (cut && ((unsigned char)content[cut] & 0xC0) == 0x80)
		cut--;
	content[cut] = '\0';
	return true;
}

/* The chaos that applies before a normal reply; returns true when handled. */
static bool inject_faults(struct sim *s, struct http_req *req, const char *model)
{
	if (chance(s, s->o.fail_429)) {
		s->random_429++;
		http_req_add_header(req, "Retry-After", "1");
		reply_oai_error(s, req, 429, "requests", "rate_limit_exceeded",
				"Rate limit reached (simulated by medthink-sim). Please try again in 1s.",
				NULL);
		return true;
	}
	if (chance(s, s->o.quota)) {
		s->quota_429++;
		reply_oai_error(s, req, 429, "insufficient_quota", "insufficient_quota",
				"You exceeded your current quota (simulated by medthink-sim).", NULL);
		return true;
	}
	if (chance(s, s->o.fail_500)) {
		reply_oai_error(s, req, 500, "server_error", NULL,
				"The server had an error while processing your request (simulated).",
				NULL);
		return true;
	}
	if (chance(s, s->o.timeout)) {
		struct pending *p = calloc(1, sizeof(*p));
		if (p) {
			p->req = req;
			p->sim = s;
			p->held = true;
			uv_timer_init(s->loop, &p->timer);
			p->timer.data = p;
			http_req_on_abort(req, pending_abort, p);
			s->held++;
			log_debug("sim: holding a request without answer (timeout fault)");
			return true;
		}
	}
	if (chance(s, s->o.error_in_200)) {
		reply_oai_error(s, req, 200, "server_error", "server_error",
				"The model produced an invalid response (simulated error in a 200).",
				NULL);
		return true;
	}
	if (chance(s, s->o.malformed)) {
		static const char *bad[] = {
			"<html><body><h1>502 Bad Gateway</h1></body></html>",
			"{\"id\":\"chatcmpl-sim-broken\",\"object\":\"chat.completion\",\"choi",
		};
		unsigned k = (unsigned)(rng_next(s) % 3);
		if (k < 2) {
			reply_take(s, req, 200, strdup(bad[k]), strlen(bad[k]), false, false, true);
		} else {
			json_t *j = json_pack("{s:s,s:s,s:s,s:{s:i,s:i,s:i}}", "id",
					      "chatcmpl-sim-nochoices", "object", "chat.completion",
					      "model", model ? model : "sim", "usage", "prompt_tokens", 1,
					      "completion_tokens", 0, "total_tokens", 1);
			reply_json_take(s, req, 200, j, true);
		}
		return true;
	}
	return false;
}

/* Wraps a finished JSON body as a truncated raw response when that fault hits. */
static bool maybe_truncate(struct sim *s, struct http_req *req, char *body)
{
	struct buf b;
	size_t len = strlen(body);

	if (!chance(s, s->o.truncated))
		return false;
	buf_init(&b, len + 512);
	buf_printf(&b,
		   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		   "Connection: close\r\n\r\n",
		   len + 64);
	buf_append(&b, body, len / 2);
	free(body);
	len = b.len;
	reply_take(s, req, 200, buf_take(&b), len, true, false, true);
	return true;
}

static bool check_key(struct sim *s, struct http_req *req)
{
	const char *auth;

	if (!s->o.require_key[0])
		return true;
	auth = http_req_header(req, "Authorization");
	if (auth && strncmp(auth, "Bearer ", 7) == 0 && strcmp(auth + 7, s->o.require_key) == 0)
		return true;
	reply_oai_error(s, req, 401, "invalid_request_error", "invalid_api_key",
			"Incorrect API key provided (simulated by medthink-sim).", NULL);
	return false;
}

static void learn_and_hash(struct sim *s, const char *text, struct sim_prompt *pr, uint64_t *h,
			   const char **known_gold)
{
	sim_prompt_parse(text, pr);
	*h = sim_hash(text, strlen(text), (uint64_t)s->o.seed);
	*known_gold = NULL;
	if (pr->question) {
		uint64_t qk = sim_hash(pr->question, strlen(pr->question), 0);
		if (pr->gold)
			gold_learn(&s->golds, qk, pr->gold);
		else
			*known_gold = gold_lookup(&s->golds, qk);
	}
}

static void handle_chat(struct sim *s, struct http_req *req, json_t *j)
{
	json_t *msgs = json_object_get(j, "messages"), *m, *rf, *out;
	const char *model = json_string_value(json_object_get(j, "model"));
	const char *known_gold, *rft;
	char *last_user = NULL, *content, *body, id[64];
	size_t i, prompt_bytes = 0, ptok, ctok;
	struct sim_prompt pr;
	uint64_t h;
	bool is_json, json_mode, cut;
	unsigned retry;

	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		reply_oai_error(s, req, 400, "invalid_request_error", NULL,
				"'messages' must be a non-empty array", "messages");
		return;
	}
	json_array_foreach(msgs, i, m)
	{
		char *t = content_text(json_object_get(m, "content"));
		if (!t)
			continue;
		prompt_bytes += strlen(t);
		if (json_is_string(json_object_get(m, "role")) &&
		    strcmp(json_string_value(json_object_get(m, "role")), "user") == 0) {
			free(last_user);
			last_user = t;
		} else {
			free(t);
		}
	}
	if (!last_user) {
		reply_oai_error(s, req, 400, "invalid_request_error", NULL,
				"'messages' has no user message", "messages");
		return;
	}
	learn_and_hash(s, last_user, &pr, &h, &known_gold);
	rf = json_object_get(j, "response_format");
	rft = json_string_value(json_object_get(rf, "type"));
	json_mode = rft && (strcmp(rft, "json_object") == 0 || strcmp(rft, "json_schema") == 0);
	/* the refer tasks (tests/sim/refer.c), else the MedThink ones */
	content = sim_refer_reply(pr.task, last_user, msgs);
	is_json = content != NULL;
	if (!content && sim_r1_is_prompt(last_user)) /* an rl job's sample: tests/sim/r1.c */
		content = sim_r1_reply(last_user, json_integer_value(json_object_get(j, "seed")),
				       (uint64_t)s->o.seed, known_gold);
	else if (!content)
		content = sim_reply(&pr, h, &(struct sim_knobs){ (uint64_t)s->o.seed, s->o.student_accuracy,
								 s->o.drop_rate, s->o.contradict_rate },
				    known_gold, json_mode, &is_json);
	sim_prompt_free(&pr);
	free(last_user);
	if (!content) {
		reply_oai_error(s, req, 500, "server_error", NULL, "simulator out of memory", NULL);
		return;
	}
	cut = truncate_tokens(content, j);
	ptok = approx_tokens(prompt_bytes);
	if (!ptok)
		ptok = 1;
	ctok = approx_tokens(strlen(content));
	retry = limits_check(s, req, ptok + ctok);
	if (retry) {
		char v[16];
		free(content);
		s->limited_429++;
		snprintf(v, sizeof(v), "%u", retry);
		http_req_add_header(req, "Retry-After", v);
		reply_oai_error(s, req, 429, "requests", "rate_limit_exceeded",
				"Rate limit reached for requests (simulated by medthink-sim).", NULL);
		return;
	}
	if (inject_faults(s, req, model)) {
		free(content);
		return;
	}
	s->prompt_tokens += ptok;
	s->completion_tokens += ctok;
	snprintf(id, sizeof(id), "chatcmpl-sim-%016llx-%llu", (unsigned long long)h,
		 (unsigned long long)++s->seq);
	out = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:{s:I,s:I,s:I},s:s}", "id", id,
			"object", "chat.completion", "created", (json_int_t)time(NULL), "model",
			model ? model : "medthink-sim", "choices", "index", 0, "message", "role",
			"assistant", "content", content, "finish_reason", cut ? "length" : "stop",
			"usage", "prompt_tokens", (json_int_t)ptok, "completion_tokens",
			(json_int_t)ctok, "total_tokens", (json_int_t)(ptok + ctok),
			"system_fingerprint", "medthink-sim");
	free(content);
	body = out ? json_dumps(out, DUMP_FLAGS) : NULL;
	json_decref(out);
	if (!body) {
		reply_oai_error(s, req, 500, "server_error", NULL, "simulator out of memory", NULL);
		return;
	}
	if (maybe_truncate(s, req, body))
		return;
	reply_take(s, req, 200, body, strlen(body), false, json_is_true(json_object_get(j, "stream")),
		   true);
}

struct lp_ctx {
	const struct sim_lp_marks *marks;
	bool echoed;
	const char *text;
	size_t base; /* text_offset base */
	json_t *tokens, *lps, *tops, *offs;
	uint64_t seed, prev;
	bool first_null;
	bool want_top;
};

static void lp_token(void *ctx, size_t off, size_t len)
{
	struct lp_ctx *c = ctx;
	char tok[64];
	uint64_t th = sim_hash(c->text + off, len, c->seed);
	double u = sim_u01(th, c->prev), lp;

	snprintf(tok, sizeof(tok), "%.*s", (int)(len < 63 ? len : 63), c->text + off);
	lp = -(0.02 + 7.0 * u * u);
	lp = round(lp * 10000) / 10000;
	if (c->marks && !isnan(sim_lp_mark(c->marks, off, c->echoed)))
		lp = sim_lp_mark(c->marks, off, c->echoed);
	json_array_append_new(c->tokens, json_string(tok));
	json_array_append_new(c->offs, json_integer((json_int_t)(c->base + off)));
	if (c->first_null) {
		json_array_append_new(c->lps, json_null());
		if (c->want_top)
			json_array_append_new(c->tops, json_null());
		c->first_null = false;
	} else {
		json_array_append_new(c->lps, json_real(lp));
		if (c->want_top)
			json_array_append_new(c->tops, json_pack("{s:f}", tok, lp));
	}
	c->prev = th;
}

static void handle_completions(struct sim *s, struct http_req *req, json_t *j)
{
	json_t *pj = json_object_get(j, "prompt"), *lpj = json_object_get(j, "logprobs"), *out,
	       *choice, *mt;
	const char *model = json_string_value(json_object_get(j, "model"));
	const char *prompt, *known_gold;
	bool echo = json_is_true(json_object_get(j, "echo")), is_json, cut = false;
	struct sim_lp_marks marks;
	char *completion = NULL, *text = NULL, *body, id[64];
	struct sim_prompt pr;
	uint64_t h;
	size_t ptok, ctok;
	unsigned retry;

	if (json_is_array(pj))
		pj = json_array_get(pj, 0);
	prompt = json_string_value(pj);
	if (!prompt) {
		reply_oai_error(s, req, 400, "invalid_request_error", NULL,
				"'prompt' must be a string", "prompt");
		return;
	}
	mt = json_object_get(j, "max_tokens");
	sim_lp_marks_parse(prompt, &marks);
	/* an engine like llama.cpp's server or Ollama: no prompt logprobs */
	if (s->o.no_prompt_logprobs > 0)
		echo = false;
	learn_and_hash(s, prompt, &pr, &h, &known_gold);
	if (json_is_integer(mt) && json_integer_value(mt) == 0) {
		completion = strdup("");
	} else {
		completion = sim_reply(&pr, h,
				       &(struct sim_knobs){ (uint64_t)s->o.seed, s->o.student_accuracy,
							    s->o.drop_rate, s->o.contradict_rate },
				       known_gold, false, &is_json);
		if (completion)
			cut = truncate_tokens(completion, j);
	}
	sim_prompt_free(&pr);
	if (!completion) {
		reply_oai_error(s, req, 500, "server_error", NULL, "simulator out of memory", NULL);
		return;
	}
	ptok = approx_tokens(strlen(prompt));
	if (!ptok)
		ptok = 1;
	ctok = approx_tokens(strlen(completion));
	retry = limits_check(s, req, ptok + ctok);
	if (retry) {
		char v[16];
		free(completion);
		s->limited_429++;
		snprintf(v, sizeof(v), "%u", retry);
		http_req_add_header(req, "Retry-After", v);
		reply_oai_error(s, req, 429, "requests", "rate_limit_exceeded",
				"Rate limit reached for requests (simulated by medthink-sim).", NULL);
		return;
	}
	if (inject_faults(s, req, model)) {
		free(completion);
		return;
	}
	s->prompt_tokens += ptok;
	s->completion_tokens += ctok;
	if (echo) {
		size_t pl = strlen(prompt), cl = strlen(completion);
		text = malloc(pl + cl + 1);
		if (text) {
			memcpy(text, prompt, pl);
			memcpy(text + pl, completion, cl + 1);
		}
		free(completion);
	} else {
		text = completion;
	}
	if (!text) {
		reply_oai_error(s, req, 500, "server_error", NULL, "simulator out of memory", NULL);
		return;
	}
	choice = json_pack("{s:i,s:s,s:s}", "index", 0, "text", text, "finish_reason",
			   cut ? "length" : "stop");
	if (json_is_integer(lpj) && json_integer_value(lpj) >= 0) {
		struct lp_ctx c = { &marks, echo, text, 0, json_array(), json_array(), json_array(),
				    json_array(), (uint64_t)s->o.seed, 0, echo,
				    json_integer_value(lpj) > 0 };
		sim_tokenize(text, lp_token, &c);
		json_object_set_new(choice, "logprobs",
				    json_pack("{s:o,s:o,s:o,s:o}", "tokens", c.tokens, "token_logprobs",
					      c.lps, "top_logprobs",
					      c.want_top ? c.tops : json_null(), "text_offset", c.offs));
		if (!c.want_top)
			json_decref(c.tops);
	} else {
		json_object_set_new(choice, "logprobs", json_null());
	}
	free(text);
	snprintf(id, sizeof(id), "cmpl-sim-%016llx-%llu", (unsigned long long)h,
		 (unsigned long long)++s->seq);
	out = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:{s:I,s:I,s:I}}", "id", id, "object",
			"text_completion", "created", (json_int_t)time(NULL), "model",
			model ? model : "medthink-sim", "choices", choice, "usage", "prompt_tokens",
			(json_int_t)ptok, "completion_tokens", (json_int_t)ctok, "total_tokens",
			(json_int_t)(ptok + ctok));
	body = out ? json_dumps(out, DUMP_FLAGS) : NULL;
	json_decref(out);
	if (!body) {
		reply_oai_error(s, req, 500, "server_error", NULL, "simulator out of memory", NULL);
		return;
	}
	if (maybe_truncate(s, req, body))
		return;
	reply_take(s, req, 200, body, strlen(body), false, false, true);
}

/* /v1/embeddings: one vector per input (a string or an array of strings),
 * deterministic (tests/sim/selection.h). */
static void handle_embeddings(struct sim *s, struct http_req *req, json_t *j)
{
	json_t *in = json_object_get(j, "input"), *data, *out;
	const char *model = json_string_value(json_object_get(j, "model"));
	size_t n = json_is_array(in) ? json_array_size(in) : 1, ptok = 0;
	size_t dim = s->o.embed_dim >= 1 && s->o.embed_dim <= 4096 ? (size_t)s->o.embed_dim : 8;
	double v[4096];

	if (!json_is_string(in) && !(json_is_array(in) && n > 0)) {
		reply_oai_error(s, req, 400, "invalid_request_error", NULL,
				"'input' must be a string or an array of strings", "input");
		return;
	}
	if (inject_faults(s, req, model))
		return;
	data = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *t = json_string_value(json_is_array(in) ? json_array_get(in, i) : in);
		json_t *e = json_array();
		size_t k;

		if (!t) {
			json_decref(e);
			json_decref(data);
			reply_oai_error(s, req, 400, "invalid_request_error", NULL,
					"'input' must be a string or an array of strings", "input");
			return;
		}
		k = sim_embedding(t, (uint64_t)s->o.seed, dim, v, sizeof(v) / sizeof(v[0]));
		for (size_t d = 0; d < k; d++)
			json_array_append_new(e, json_real(v[d]));
		json_array_append_new(data, json_pack("{s:s,s:i,s:o}", "object", "embedding", "index",
						      (int)i, "embedding", e));
		ptok += approx_tokens(strlen(t));
	}
	s->prompt_tokens += ptok;
	out = json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model",
			model ? model : "medthink-sim", "usage", "prompt_tokens", (json_int_t)ptok,
			"total_tokens", (json_int_t)ptok);
	reply_json_take(s, req, 200, out, true);
}

static void handle_models(struct sim *s, struct http_req *req)
{
	json_t *j = json_pack("{s:s,s:[{s:s,s:s,s:i,s:s},{s:s,s:s,s:i,s:s}]}", "object", "list",
			      "data", "id", "sim-teacher", "object", "model", "created", 0,
			      "owned_by", "medthink-sim", "id", "sim-student", "object", "model",
			      "created", 0, "owned_by", "medthink-sim");
	reply_json_take(s, req, 200, j, true);
}

static json_t *stats_json(struct sim *s)
{
	json_t *st = json_object(), *bs = json_object();
	char k[16];
	int i;

	for (i = 100; i < 600; i++) {
		if (!s->by_status[i])
			continue;
		snprintf(k, sizeof(k), "%d", i);
		json_object_set_new(bs, k, json_integer((json_int_t)s->by_status[i]));
	}
	if (s->held)
		json_object_set_new(bs, "held", json_integer((json_int_t)s->held));
	json_object_set_new(st, "simulator", json_string("medthink-sim (fake OpenAI-compatible server)"));
	json_object_set_new(st, "replica_id", json_string(s->o.replica_id));
	json_object_set_new(st, "requests_total", json_integer((json_int_t)s->total));
	json_object_set(st, "by_path", s->by_path);
	json_object_set_new(st, "by_status", bs);
	json_object_set_new(st, "sent_429", json_integer((json_int_t)s->sent_429));
	json_object_set_new(st, "rate_limited_429", json_integer((json_int_t)s->limited_429));
	json_object_set_new(st, "random_429", json_integer((json_int_t)s->random_429));
	json_object_set_new(st, "quota_429", json_integer((json_int_t)s->quota_429));
	json_object_set_new(st, "held_now", json_integer((json_int_t)s->held));
	json_object_set_new(st, "gate_left", json_integer((json_int_t)s->gate_left));
	json_object_set_new(st, "gated_now", json_integer((json_int_t)s->gated));
	json_object_set_new(st, "distinct_bodies", json_integer((json_int_t)s->bodies.used));
	json_object_set_new(st, "max_requests_per_body",
			    json_integer((json_int_t)s->bodies.max_count));
	json_object_set_new(st, "duplicate_bodies", json_integer((json_int_t)s->bodies.duplicates));
	json_object_set_new(st, "untracked_bodies", json_integer((json_int_t)s->bodies.untracked));
	json_object_set_new(st, "prompt_tokens", json_integer((json_int_t)s->prompt_tokens));
	json_object_set_new(st, "completion_tokens", json_integer((json_int_t)s->completion_tokens));
	json_object_set_new(st, "learned_golds", json_integer((json_int_t)s->golds.used));
	json_object_set_new(st, "connections", json_integer(http_server_connection_count(s->srv)));
	json_object_set_new(st, "config", opts_json(&s->o));
	return st;
}

static void stats_reset(struct sim *s)
{
	s->total = s->sent_429 = s->limited_429 = s->random_429 = s->quota_429 = 0;
	s->prompt_tokens = s->completion_tokens = 0;
	memset(s->by_status, 0, sizeof(s->by_status));
	json_object_clear(s->by_path);
	body_table_clear(&s->bodies);
	windows_reset(s);
}

/* http_respond_json with short reals (0.6, not 0.59999999999999998). */
static void respond_json(struct http_req *req, int status, json_t *j)
{
	char *b = j ? json_dumps(j, DUMP_FLAGS) : NULL;

	if (!b) {
		http_respond_error(req, 500, "internal", "simulator out of memory", NULL);
		return;
	}
	http_respond(req, status, "application/json", b, strlen(b));
	free(b);
}

static void handle_config(struct sim *s, struct http_req *req, const char *body, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(body, len, 0, &jerr), *v;
	struct opts next = s->o;
	const char *key;
	char err[200], val[64];
	bool gate = false;

	if (!json_is_object(j)) {
		json_decref(j);
		http_respond_error(req, 400, "bad_request", "the body must be a JSON object of options",
				   NULL);
		return;
	}
	json_object_foreach(j, key, v)
	{
		const struct optdef *d = optdef_find(key);
		const char *sv = val;
		if (!d) {
			snprintf(err, sizeof(err), "unknown option \"%s\"", key);
			http_respond_error(req, 400, "bad_request", err, key);
			json_decref(j);
			return;
		}
		if (json_is_string(v))
			sv = json_string_value(v);
		else if (json_is_integer(v))
			snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(v));
		else if (json_is_real(v))
			snprintf(val, sizeof(val), "%.17g", json_real_value(v));
		else if (json_is_null(v) && d->type == O_STR)
			sv = "";
		else {
			snprintf(err, sizeof(err), "%s: expected a number or a string", d->name);
			http_respond_error(req, 400, "bad_request", err, key);
			json_decref(j);
			return;
		}
		gate |= d->off == offsetof(struct opts, hold_after);
		if (opt_set(&next, d, sv, err, sizeof(err))) {
			http_respond_error(req, 400, "bad_request", err, key);
			json_decref(j);
			return;
		}
	}
	json_decref(j);
	if (next.rpm != s->o.rpm || next.tpm != s->o.tpm) {
		s->o = next;
		windows_reset(s);
	}
	if (next.seed != s->o.seed)
		s->rng = (uint64_t)next.seed;
	s->o = next;
	if (gate)
		gate_reset(s);
	log_info("sim: configuration changed");
	j = opts_json(&s->o);
	respond_json(req, 200, j);
	json_decref(j);
}

static void on_body(void *ud, struct http_req *req, const char *body, size_t len)
{
	struct sim *s = ud;
	const char *path = http_req_path(req), *method = http_req_method(req);
	bool post = strcmp(method, "POST") == 0;
	json_t *j;
	json_error_t jerr;

	{
		/* Anthropic Messages and the batch APIs: sim_batch.c. */
		struct sim_batch_env env = { { (uint64_t)s->o.seed, s->o.student_accuracy, s->o.drop_rate,
					       s->o.contradict_rate },
					     s->o.require_key, s->o.host, s->o.port };

		if (sim_batch_route(&env, req, method, path, body, len))
			return;
	}
	if (strncmp(path, "/sim/", 5) == 0) {
		if (strcmp(path, "/sim/stats") == 0 && strcmp(method, "GET") == 0) {
			j = stats_json(s);
			respond_json(req, 200, j);
			json_decref(j);
		} else if (strcmp(path, "/sim/reset") == 0 && post) {
			stats_reset(s);
			http_respond(req, 200, "application/json", "{\"reset\":true}", 14);
		} else if (strcmp(path, "/sim/config") == 0 && post) {
			handle_config(s, req, body, len);
		} else if (strcmp(path, "/sim/config") == 0 && strcmp(method, "GET") == 0) {
			j = opts_json(&s->o);
			respond_json(req, 200, j);
			json_decref(j);
		} else {
			http_respond_error(req, 404, "not_found", "unknown simulator endpoint", NULL);
		}
		return;
	}
	s->total++;
	count_path(s, path);
	log_debug("sim: %s %s (%zu bytes)", method, path, len);
	if (strcmp(path, "/v1/models") == 0) {
		if (!check_key(s, req))
			return;
		handle_models(s, req);
		return;
	}
	if (strcmp(path, "/v1/chat/completions") != 0 && strcmp(path, "/v1/completions") != 0 &&
	    strcmp(path, "/v1/embeddings") != 0) {
		reply_oai_error(s, req, 404, "invalid_request_error", "unknown_url",
				"Unknown request URL (medthink-sim).", NULL);
		return;
	}
	if (!post) {
		http_req_add_header(req, "Allow", "POST");
		reply_oai_error(s, req, 405, "invalid_request_error", "method_not_allowed",
				"Only POST is allowed here.", NULL);
		return;
	}
	body_table_note(&s->bodies, sim_hash(body, len, 0));
	if (!check_key(s, req))
		return;
	j = json_loadb(body, len, 0, &jerr);
	if (!json_is_object(j)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "invalid JSON body: %s (line %d)", jerr.text, jerr.line);
		json_decref(j);
		reply_oai_error(s, req, 400, "invalid_request_error", NULL, msg, NULL);
		return;
	}
	if (strcmp(path, "/v1/chat/completions") == 0)
		handle_chat(s, req, j);
	else if (strcmp(path, "/v1/embeddings") == 0)
		handle_embeddings(s, req, j);
	else
		handle_completions(s, req, j);
	json_decref(j);
}

/* ------------------------------------------------------------------- main */

static void on_server_closed(void *ud)
{
	struct sim *s = ud;
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct sim *s = h->data;
	log_info("medthink-sim: signal %d, stopping the simulator", signum);
	uv_signal_stop(&s->sigint);
	uv_signal_stop(&s->sigterm);
	http_server_close(s->srv, on_server_closed, s);
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"medthink-sim: a SIMULATOR of an OpenAI-compatible API server.\n"
		"It is not a model: replies are fake, deterministic text built from the prompt\n"
		"(### Task: screen|explain|answer|judge|correct), for tests, the demo and benchmarks.\n\n"
		"usage: medthink-sim [--listen HOST:PORT] [options]\n\n"
		"  --listen HOST:PORT     address (default 127.0.0.1:0; port 0 picks one and prints\n"
		"                         \"listening on HOST:PORT\" on stdout)\n");
	for (i = 0; i < NOPTDEFS; i++) {
		char flag[48];
		snprintf(flag, sizeof(flag), "%s %s", optdefs[i].name,
			 optdefs[i].type == O_PROB ? "P" : optdefs[i].type == O_NUM ? "N" : "VALUE");
		fprintf(f, "  --%-21s%s\n", flag, optdefs[i].help);
	}
	fprintf(f,
		"  --replica-id NAME      names this instance in /sim/stats (one replica of a pool)\n"
		"  --log-level LEVEL      error|warn|info|debug (default info)\n"
		"  --help                 this text\n\n"
		"Endpoints: POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings,\nGET /v1/models, "
		"GET /sim/stats, POST /sim/reset, GET|POST /sim/config (JSON with the option names).\n"
		"See tests/sim/README.md.\n");
}

static int parse_listen(struct opts *o, const char *v)
{
	const char *colon = strrchr(v, ':');
	char *end;
	long port;

	if (!colon || colon == v || (size_t)(colon - v) >= sizeof(o->host))
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	snprintf(o->host, sizeof(o->host), "%.*s", (int)(colon - v), v);
	if (o->host[0] == '[') { /* [::1] */
		memmove(o->host, o->host + 1, strlen(o->host));
		o->host[strcspn(o->host, "]")] = '\0';
	}
	if (strcmp(o->host, "localhost") == 0)
		snprintf(o->host, sizeof(o->host), "127.0.0.1");
	o->port = (int)port;
	return 0;
}

int main(int argc, char **argv)
{
	struct option lopts[NOPTDEFS + 5];
	struct sim s;
	struct http_server_config cfg = { 0 };
	struct http_handler h = { NULL, on_body, NULL };
	uv_loop_t *loop = uv_default_loop();
	char err[200];
	size_t i;
	int c, rc, idx;

	memset(&s, 0, sizeof(s));
	snprintf(s.o.host, sizeof(s.o.host), "127.0.0.1");
	s.o.student_accuracy = 0.6;
	s.o.drop_rate = 0.1;
	s.o.contradict_rate = 0.05;
	memset(lopts, 0, sizeof(lopts));
	for (i = 0; i < NOPTDEFS; i++)
		lopts[i] = (struct option){ optdefs[i].name, required_argument, NULL, 1000 + (int)i };
	lopts[NOPTDEFS] = (struct option){ "listen", required_argument, NULL, 'l' };
	lopts[NOPTDEFS + 1] = (struct option){ "log-level", required_argument, NULL, 'v' };
	lopts[NOPTDEFS + 2] = (struct option){ "help", no_argument, NULL, 'h' };
	lopts[NOPTDEFS + 3] = (struct option){ "replica-id", required_argument, NULL, 'r' };
	while ((c = getopt_long(argc, argv, "h", lopts, &idx)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		} else if (c == 'l') {
			if (parse_listen(&s.o, optarg)) {
				fprintf(stderr, "medthink-sim: --listen wants HOST:PORT, got \"%s\"\n", optarg);
				return 2;
			}
		} else if (c == 'r') {
			if (strlen(optarg) >= sizeof(s.o.replica_id)) {
				fprintf(stderr, "medthink-sim: --replica-id: over %zu bytes\n", sizeof(s.o.replica_id) - 1);
				return 2;
			}
			snprintf(s.o.replica_id, sizeof(s.o.replica_id), "%s", optarg);
		} else if (c == 'v') {
			enum log_level lvl;
			if (log_level_parse(optarg, &lvl)) {
				fprintf(stderr, "medthink-sim: --log-level: unknown level \"%s\"\n", optarg);
				return 2;
			}
			log_set_level(lvl);
		} else if (c >= 1000 && c < 1000 + (int)NOPTDEFS) {
			if (opt_set(&s.o, &optdefs[c - 1000], optarg, err, sizeof(err))) {
				fprintf(stderr, "medthink-sim: --%s\n", err);
				return 2;
			}
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "medthink-sim: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	s.loop = loop;
	s.rng = (uint64_t)s.o.seed;
	s.by_path = json_object();
	windows_reset(&s);
	cfg.max_body = SIM_MAX_BODY;
	cfg.max_connections = 4096;
	cfg.max_headers = 128;
	cfg.max_header_bytes = 64 * 1024;
	h.ud = &s;
	s.srv = http_server_new(&h, &cfg);
	if (!s.srv)
		return 1;
	rc = http_server_listen_tcp(s.srv, loop, s.o.host, s.o.port);
	if (rc < 0) {
		fprintf(stderr, "medthink-sim: cannot listen on %s:%d: %s\n", s.o.host, s.o.port,
			uv_strerror(rc));
		http_server_close(s.srv, NULL, NULL);
		uv_run(loop, UV_RUN_DEFAULT);
		http_server_free(s.srv);
		return 1;
	}
	s.o.port = http_server_port(s.srv);
	uv_signal_init(loop, &s.sigint);
	uv_signal_init(loop, &s.sigterm);
	s.sigint.data = &s;
	s.sigterm.data = &s;
	uv_signal_start(&s.sigint, on_signal, SIGINT);
	uv_signal_start(&s.sigterm, on_signal, SIGTERM);
	printf("listening on %s:%d\n", s.o.host, s.o.port);
	fflush(stdout);
	log_info("medthink-sim: SIMULATOR (fake OpenAI-compatible server, not a model) listening on "
		 "%s:%d, seed %.0f",
		 s.o.host, s.o.port, s.o.seed);
	uv_run(loop, UV_RUN_DEFAULT);
	http_server_free(s.srv);
	json_decref(s.by_path);
	body_table_clear(&s.bodies);
	free(s.golds.e);
	free(s.rpm_ring);
	free(s.tpm_ring);
	uv_loop_close(loop);
	log_info("medthink-sim: stopped");
	return 0;
}
