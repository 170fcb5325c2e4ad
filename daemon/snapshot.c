#include "daemon/snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "stages/runner.h"
#include "store/store.h"

/* The job list and the metrics text are capped like the API's own. */
#define SNAP_TEXT_MAX ((size_t)64 << 20)

struct snap_text {
	atomic_int refs;
	size_t len;
	char data[];
};

struct snap_job {
	int64_t id;
	struct snap_text *t;
};

struct snapshot {
	pthread_mutex_t mu;
	struct snap_job *jobs; /* sorted by id */
	size_t njobs, cap;
	struct snap_text *kind[SNAP__N];
	atomic_uint_fast64_t wanted[SNAP__N]; /* uv_hrtime() / 1e6 of the last ask */
	bool waiting;                         /* a get waits for the next publish */
	void (*notify)(void *ud);
	void *notify_ud;
};

struct snap_pub {
	uv_loop_t *loop;
	struct snapshot *s;
	struct runner *r;
	struct store *st;
	struct snap_pub_ops ops;
	uv_timer_t timer;
	bool timer_on;
	bool full_next; /* the next tick renders every job (the first one) */
	struct runner_job_brief *jobs; /* loaded jobs, scratch */
	int64_t *ids;                  /* their ids, sorted for the list */
	size_t ids_cap;
	struct pub_seen { int64_t id; uint64_t version; } *seen; /* rendered, sorted */
	size_t nseen, seen_cap;
	/* The list's texts of the jobs that are not loaded (read from the
	 * store once; static while nothing but this daemon changes them). */
	struct snap_job *nl;
	size_t nnl;
	bool nl_valid;
	void (*close_cb)(void *);
	void *close_ud;
};

/* ---- texts ---- */

static struct snap_text *text_new(const char *data, size_t len)
{
	struct snap_text *t = malloc(sizeof(*t) + len);

	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	t->len = len;
	memcpy(t->data, data, len);
	return t;
}

static struct snap_text *text_ref(struct snap_text *t)
{
	if (t)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

const char *snap_text_data(const struct snap_text *t, size_t *len)
{
	*len = t->len;
	return t->data;
}

void snap_text_unref(struct snap_text *t)
{
	if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		free(t);
}

static bool text_same(const struct snap_text *t, const char *data, size_t len)
{
	return t && t->len == len && memcmp(t->data, data, len) == 0;
}

/* ---- the shared store ---- */

int snapshot_new(struct snapshot **out)
{
	struct snapshot *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return -ENOMEM;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return -ENOMEM;
	}
	for (int k = 0; k < SNAP__N; k++)
		atomic_init(&s->wanted[k], 0);
	*out = s;
	return 0;
}

void snapshot_free(struct snapshot *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->njobs; i++)
		snap_text_unref(s->jobs[i].t);
	for (int k = 0; k < SNAP__N; k++)
		snap_text_unref(s->kind[k]);
	free(s->jobs);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Index of id in a sorted array, or where it would go (*found false). */
static size_t jobs_find(const struct snap_job *a, size_t n, int64_t id, bool *found)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < n && a[lo].id == id;
	return lo;
}

struct snap_text *snapshot_job(struct snapshot *s, int64_t id)
{
	struct snap_text *t = NULL;
	bool found;
	size_t i;

	pthread_mutex_lock(&s->mu);
	i = jobs_find(s->jobs, s->njobs, id, &found);
	if (found)
		t = text_ref(s->jobs[i].t);
	pthread_mutex_unlock(&s->mu);
	return t;
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

struct snap_text *snapshot_get(struct snapshot *s, enum snap_kind k, bool wait)
{
	struct snap_text *t;

	atomic_store_explicit(&s->wanted[k], now_ms(), memory_order_relaxed);
	pthread_mutex_lock(&s->mu);
	t = text_ref(s->kind[k]);
	if (!t && wait)
		s->waiting = true;
	pthread_mutex_unlock(&s->mu);
	return t;
}

void snapshot_set_notify(struct snapshot *s, void (*fn)(void *ud), void *ud)
{
	pthread_mutex_lock(&s->mu);
	s->notify = fn;
	s->notify_ud = ud;
	pthread_mutex_unlock(&s->mu);
}

/* Publishes job id's text (taken); the old one is dropped outside the lock. */
static int snapshot_set_job(struct snapshot *s, int64_t id, const char *data, size_t len)
{
	struct snap_text *t, *old = NULL;
	bool found;
	size_t i;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	i = jobs_find(s->jobs, s->njobs, id, &found);
	if (found && text_same(s->jobs[i].t, data, len)) {
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	pthread_mutex_unlock(&s->mu);
	t = text_new(data, len);
	if (!t)
		return -ENOMEM;
	pthread_mutex_lock(&s->mu);
	/* Only this thread publishes: i and found still hold. */
	if (found) {
		old = s->jobs[i].t;
		s->jobs[i].t = t;
	} else {
		if (s->njobs == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 16;
			struct snap_job *a = realloc(s->jobs, cap * sizeof(*a));

			if (!a) {
				rc = -ENOMEM;
				old = t;
				goto out;
			}
			s->jobs = a;
			s->cap = cap;
		}
		memmove(&s->jobs[i + 1], &s->jobs[i], (s->njobs - i) * sizeof(*s->jobs));
		s->jobs[i].id = id;
		s->jobs[i].t = t;
		s->njobs++;
	}
out:
	pthread_mutex_unlock(&s->mu);
	snap_text_unref(old);
	return rc;
}

/* Publishes (data != NULL) or withdraws the text of kind k. */
static void snapshot_set(struct snapshot *s, enum snap_kind k, const char *data, size_t len)
{
	struct snap_text *t = NULL, *old;

	pthread_mutex_lock(&s->mu);
	if (data && text_same(s->kind[k], data, len)) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	pthread_mutex_unlock(&s->mu);
	if (data)
		t = text_new(data, len); /* NULL on failure: withdrawn, asked again */
	pthread_mutex_lock(&s->mu);
	old = s->kind[k];
	s->kind[k] = t;
	pthread_mutex_unlock(&s->mu);
	snap_text_unref(old);
}

static void snapshot_notify_waiters(struct snapshot *s)
{
	pthread_mutex_lock(&s->mu);
	if (s->waiting && s->notify) {
		s->waiting = false;
		s->notify(s->notify_ud);
	}
	pthread_mutex_unlock(&s->mu);
}

static bool snapshot_wanted(struct snapshot *s, enum snap_kind k)
{
	uint64_t at = atomic_load_explicit(&s->wanted[k], memory_order_relaxed);

	return at && now_ms() - at < SNAP_WANTED_MS;
}

/* ---- the publisher ---- */

static void pub_on_timer(uv_timer_t *t);

int snap_pub_new(uv_loop_t *loop, struct snapshot *s, struct runner *r, struct store *st,
		 const struct snap_pub_ops *ops, struct snap_pub **out)
{
	struct snap_pub *p = calloc(1, sizeof(*p));
	int rc;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->s = s;
	p->r = r;
	p->st = st;
	p->ops = *ops;
	rc = uv_timer_init(loop, &p->timer);
	if (rc < 0) {
		free(p);
		return rc;
	}
	p->timer.data = p;
	p->full_next = true;
	*out = p;
	return 0;
}

static void nl_clear(struct snap_pub *p)
{
	for (size_t i = 0; i < p->nnl; i++)
		snap_text_unref(p->nl[i].t);
	free(p->nl);
	p->nl = NULL;
	p->nnl = 0;
	p->nl_valid = false;
}

void snap_pub_forget(struct snap_pub *p) { nl_clear(p); }

static bool id_loaded(const int64_t *ids, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* A compact status text for job id, or NULL. */
static char *status_text(struct snap_pub *p, int64_t id)
{
	json_t *st = runner_job_status(p->r, id);
	char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;

	json_decref(st);
	return text;
}

/* Reads the jobs that are not loaded from the store: their status texts,
 * oldest first. 0 or -ENOMEM / -EIO (the list is then withdrawn). */
static int nl_load(struct snap_pub *p, const int64_t *ids, size_t nids)
{
	json_t *rows = store_job_list(p->st), *v;
	size_t i;
	int rc = 0;

	if (!rows)
		return -EIO;
	p->nl = calloc(json_array_size(rows) + 1, sizeof(*p->nl));
	if (!p->nl) {
		json_decref(rows);
		return -ENOMEM;
	}
	json_array_foreach(rows, i, v)
	{
		const char *sid = json_string_value(json_object_get(v, "id"));
		long long id;
		char *text;

		if (!sid || sscanf(sid, "job_%lld", &id) != 1 || id_loaded(ids, nids, id))
			continue;
		text = status_text(p, id);
		if (!text)
			continue;
		p->nl[p->nnl].id = id;
		p->nl[p->nnl].t = text_new(text, strlen(text));
		free(text);
		if (!p->nl[p->nnl].t) {
			rc = -ENOMEM;
			break;
		}
		p->nnl++;
	}
	json_decref(rows);
	if (rc)
		nl_clear(p);
	else
		p->nl_valid = true;
	return rc;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* {"jobs":[...]}: the loaded jobs' texts merged with the others' by id,
 * as route_job_list renders it (compact). ids must be sorted. */
static int list_render(struct snap_pub *p, const int64_t *ids, size_t nids, struct buf *b)
{
	size_t i = 0, k = 0;
	bool first = true;
	int rc = buf_puts(b, "{\"jobs\":[");

	while (!rc && (i < nids || k < p->nnl)) {
		struct snap_text *t = NULL;

		if (k < p->nnl && (i >= nids || p->nl[k].id < ids[i])) {
			t = text_ref(p->nl[k++].t);
		} else {
			if (k < p->nnl && p->nl[k].id == ids[i])
				k++; /* loaded since: its live text wins */
			t = snapshot_job(p->s, ids[i++]);
		}
		if (!t)
			continue;
		if (!first)
			rc = buf_puts(b, ",");
		if (!rc)
			rc = buf_append(b, t->data, t->len);
		first = false;
		snap_text_unref(t);
	}
	if (!rc)
		rc = buf_puts(b, "]}");
	return rc;
}

/* The loaded jobs into p->jobs and p->ids; returns how many. */
static size_t pub_load_ids(struct snap_pub *p, bool *busy, bool *settled)
{
	size_t n = runner_job_briefs(p->r, p->jobs, p->ids_cap, busy);

	if (n > p->ids_cap) {
		struct runner_job_brief *a = realloc(p->jobs, n * 2 * sizeof(*a));
		int64_t *b = a ? realloc(p->ids, n * 2 * sizeof(*b)) : NULL;

		if (a)
			p->jobs = a;
		if (b) {
			p->ids = b;
			p->ids_cap = n * 2;
		}
		n = runner_job_briefs(p->r, p->jobs, p->ids_cap, busy);
		if (n > p->ids_cap)
			n = p->ids_cap;
	}
	*settled = true;
	for (size_t i = 0; i < n; i++) {
		p->ids[i] = p->jobs[i].id;
		*settled &= p->jobs[i].finished;
	}
	return n;
}

/* True (and remembered) when job id's version differs from the last one
 * rendered. */
static bool pub_changed(struct snap_pub *p, int64_t id, uint64_t version)
{
	size_t lo = 0, hi = p->nseen;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->seen[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->nseen && p->seen[lo].id == id) {
		if (p->seen[lo].version == version)
			return false;
		p->seen[lo].version = version;
		return true;
	}
	if (p->nseen == p->seen_cap) {
		size_t cap = p->seen_cap ? p->seen_cap * 2 : 16;
		struct pub_seen *a = realloc(p->seen, cap * sizeof(*a));

		if (!a)
			return true;
		p->seen = a;
		p->seen_cap = cap;
	}
	memmove(&p->seen[lo + 1], &p->seen[lo], (p->nseen - lo) * sizeof(*p->seen));
	p->seen[lo].id = id;
	p->seen[lo].version = version;
	p->nseen++;
	return true;
}

/* One publish: the status of job `only` (> 0), of every job that is
 * active or changed since it was last rendered (only == 0, changed_only),
 * or of every loaded job; then health, and the list and metrics when
 * wanted. Returns whether a job is active; *settled = every job finished. */
static bool pub_pass(struct snap_pub *p, int64_t only, bool changed_only, bool *settled)
{
	bool busy = false;
	size_t n;
	struct buf b;

	n = pub_load_ids(p, &busy, settled);
	for (size_t i = 0; i < n; i++) {
		const struct runner_job_brief *jb = &p->jobs[i];
		bool changed = pub_changed(p, jb->id, jb->version);
		char *text;

		if ((only > 0 && jb->id != only) || (only == 0 && changed_only && !jb->active && !changed))
			continue;
		text = status_text(p, jb->id);

		if (text)
			snapshot_set_job(p->s, jb->id, text, strlen(text));
		free(text);
	}
	{
		json_t *h = p->ops.health(p->ops.ud);
		char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;

		snapshot_set(p->s, SNAP_HEALTH, text, text ? strlen(text) : 0);
		free(text);
		json_decref(h);
	}
	buf_init(&b, SNAP_TEXT_MAX);
	if (snapshot_wanted(p->s, SNAP_METRICS)) {
		p->ops.metrics(p->ops.ud, &b);
		snapshot_set(p->s, SNAP_METRICS, b.base, b.len);
	} else {
		snapshot_set(p->s, SNAP_METRICS, NULL, 0);
	}
	buf_reset(&b);
	if (snapshot_wanted(p->s, SNAP_LIST)) {
		if (n)
			qsort(p->ids, n, sizeof(*p->ids), cmp_id);
		if ((p->nl_valid || nl_load(p, p->ids, n) == 0) && list_render(p, p->ids, n, &b) == 0)
			snapshot_set(p->s, SNAP_LIST, b.base, b.len);
		else
			snapshot_set(p->s, SNAP_LIST, NULL, 0);
	} else {
		snapshot_set(p->s, SNAP_LIST, NULL, 0);
	}
	buf_free(&b);
	snapshot_notify_waiters(p->s);
	if (busy)
		snap_pub_kick(p);
	else if (!*settled && !p->timer_on && !p->close_cb) {
		p->timer_on = true;
		uv_timer_start(&p->timer, pub_on_timer, SNAP_IDLE_MS, SNAP_IDLE_MS);
	}
	return busy;
}

void snap_pub_now(struct snap_pub *p)
{
	bool settled;

	pub_pass(p, 0, false, &settled);
}

void snap_pub_job(struct snap_pub *p, int64_t job)
{
	bool settled;

	pub_pass(p, job, false, &settled);
}

/* Every SNAP_PERIOD_MS while a job is active; every SNAP_IDLE_MS while a
 * job is paused or queued behind a gate (its counters may still move: held
 * writes land, a retry); stopped once every job is finished. */
static void pub_on_timer(uv_timer_t *t)
{
	struct snap_pub *p = t->data;
	bool settled, busy;

	busy = pub_pass(p, 0, !p->full_next, &settled);
	p->full_next = false;
	if (settled) {
		uv_timer_stop(&p->timer);
		p->timer_on = false;
	} else {
		uv_timer_set_repeat(&p->timer, busy ? SNAP_PERIOD_MS : SNAP_IDLE_MS);
	}
}

void snap_pub_kick(struct snap_pub *p)
{
	if ((p->timer_on && uv_timer_get_repeat(&p->timer) == SNAP_PERIOD_MS) || p->close_cb)
		return;
	p->timer_on = true;
	uv_timer_start(&p->timer, pub_on_timer, SNAP_PERIOD_MS, SNAP_PERIOD_MS);
}

static void pub_timer_closed(uv_handle_t *h)
{
	struct snap_pub *p = h->data;

	p->close_cb(p->close_ud);
}

void snap_pub_close(struct snap_pub *p, void (*cb)(void *ud), void *ud)
{
	p->close_cb = cb;
	p->close_ud = ud;
	p->timer_on = false;
	uv_close((uv_handle_t *)&p->timer, pub_timer_closed);
}

void snap_pub_free(struct snap_pub *p)
{
	if (!p)
		return;
	nl_clear(p);
	free(p->jobs);
	free(p->ids);
	free(p->seen);
	free(p);
}
