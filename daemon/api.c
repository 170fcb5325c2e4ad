#include "daemon/api.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "daemon/api_routes.h"
#include "daemon/front.h"
#include "daemon/http.h"
#include "daemon/snapshot.h"
#include "daemon/upload.h"
#include "daemon/web.h"
#include "formats/export.h"
#include "stages/refer_export.h"
#include "formats/formats.h"
#include "formats/import.h"
#include "stages/kinds.h"
#include "stages/runner.h"
#include "stages/sets.h"
#include "stages/score.h"
#include "stages/story.h"
#include "store/search.h"
#include "store/store.h"
#include "store/timeline.h"
#include "teacher_clients/client.h"

#define EXPORT_PAGE 256        /* records formatted per turn */
#define EVENTS_PAGE 200         /* stored events read per query */

struct stream;

struct api {
	uv_loop_t *loop;
	struct store *st;
	struct runner *runner;
	struct client *cl;
	struct http_server *srv;
	struct api_config cfg;
	struct stream *streams; /* open /events and /export streams */
	uint64_t requests;
	uint64_t uploads_items;
	char *degraded; /* why /v1/health says "degraded", or NULL */
	struct web *web; /* the dashboard's listener, or NULL */
	struct http_server_config hc;
	/* The front thread answers status, list, metrics and health from
	 * snapshots (daemon/front.h); a->srv serves what it hands over. */
	struct snapshot *snap;
	struct snap_pub *pub;
	struct front *front;
	int closing;     /* servers still closing */
	void (*close_cb)(void *);
	void *close_ud;
};

/* ---- helpers ------------------------------------------------------------- */

static int respond_err(struct http_req *req, int status, const char *code, const char *field,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int respond_err(struct http_req *req, int status, const char *code, const char *field,
		       const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return http_respond_error(req, status, code, msg, field);
}

/* The one place an errno from the layers below becomes an HTTP status
 * (common/err.h has the table). */
static int api_status_of(int rc)
{
	switch (rc) {
	case -EBADMSG:
		return 400;
	case -ENOENT:
		return 404;
	case -EALREADY:
		return 409;
	case -E2BIG:
		return 413;
	case -EINVAL:
	case -ENOTSUP:
		return 422;
	default:
		return 500;
	}
}

/* Sends e as the error object; extra (borrowed, may be NULL) adds its
 * members beside "error" (the rejected lines of a dataset). */
static int respond_mt_err(struct http_req *req, int rc, const struct mt_err *e, json_t *extra)
{
	const char *code = e->code[0] ? e->code : "internal";
	const char *msg = e->message[0] ? e->message : strerror(rc < 0 ? -rc : rc);
	json_t *body, *err;
	int r;

	if (!extra)
		return http_respond_error(req, api_status_of(rc), code, msg,
					  e->field[0] ? e->field : NULL);
	err = json_pack("{s:s, s:s}", "code", code, "message", msg);
	if (err && e->field[0])
		json_object_set_new(err, "field", json_string(e->field));
	body = json_pack("{s:o}", "error", err);
	if (body)
		json_object_update(body, extra);
	r = http_respond_json(req, api_status_of(rc), body);
	json_decref(body);
	return r;
}

static void respond_json_take(struct http_req *req, int status, json_t *j)
{
	http_respond_json(req, status, j);
	json_decref(j);
}

/* ---- dataset upload: the body is piped into daemon/upload.c -------------- */

static void upload_on_abort(void *ctx, struct http_req *req)
{
	(void)req;
	upload_abort(ctx);
}

static void upload_on_data(void *ctx, struct http_req *req, const char *data, size_t len)
{
	(void)req;
	(void)upload_feed(ctx, data, len); /* a failed feed is reported by upload_finish */
}

static void upload_on_end(void *ctx, struct http_req *req)
{
	struct mt_err err = { 0 };
	json_t *res = NULL;
	int rc = upload_finish(ctx, &res, &err);

	upload_free(ctx);
	if (rc)
		respond_mt_err(req, rc, &err, res);
	else
		http_respond_json(req, 201, res);
	json_decref(res);
}

static void route_dataset_upload(struct api *a, struct http_req *req,
				 const struct api_route_match *m)
{
	const char *skip = http_req_query(req, "skip_invalid");
	const char *uniq = http_req_query(req, "unique");
	struct upload_caps caps = { .items_read = &a->uploads_items };
	struct mt_err err = { 0 };
	struct upload *u = NULL;
	int rc;

	(void)m;
	rc = upload_new(a->st, http_req_query(req, "name"), http_req_query(req, "format"),
			skip && (strcmp(skip, "1") == 0 || strcmp(skip, "true") == 0 ||
				 strcmp(skip, "yes") == 0),
			uniq && (strcmp(uniq, "1") == 0 || strcmp(uniq, "true") == 0), &caps, &u, &err);
	if (rc) {
		respond_mt_err(req, rc, &err, NULL);
		return;
	}
	http_req_on_abort(req, upload_on_abort, u);
	http_req_stream_body(req, upload_on_data, upload_on_end, u);
}

/* ---- streams: /events and /export ---------------------------------------- */

enum stream_kind { STREAM_EVENTS, STREAM_EXPORT };

/* Records per export query: a turn stops at the connection's high-water
 * mark (http_stream_full), overshooting it by at most this many records. */
#define EXPORT_STEP 16

struct stream {
	struct api *a;
	struct stream *next;
	struct http_req *req;
	enum stream_kind kind;
	int64_t job;
	/* events */
	int64_t last_event;
	bool follow;
	bool snapshot_sent;    /* the backlog and the first status snapshot are out */
	bool progress_pending; /* a live progress was skipped while backed up */
	bool finish_pending;   /* the job ended: end once the log is out */
	/* export */
	int64_t dataset;
	int set;
	const struct export_format *format;
	bool ids;
	int64_t cursor;
	uv_idle_t idle; /* export: produce the next page from the loop */
	bool idle_on;
	bool ending;
};

static void stream_unlink(struct stream *s)
{
	struct stream **pp = &s->a->streams;

	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
}

static void stream_idle_closed(uv_handle_t *h)
{
	free(h->data);
}

static void stream_free(struct stream *s)
{
	stream_unlink(s);
	if (s->kind == STREAM_EXPORT) {
		uv_close((uv_handle_t *)&s->idle, stream_idle_closed);
		return;
	}
	free(s);
}

static void stream_abort(void *ctx, struct http_req *req)
{
	(void)req;
	stream_free(ctx);
}

static void stream_end(struct stream *s)
{
	http_stream_end(s->req);
	stream_free(s);
}

static int sse_write(struct stream *s, int64_t id, const char *type, json_t *data)
{
	char *text = json_dumps(data, JSON_COMPACT);
	struct buf b;
	ssize_t n;

	if (!text)
		return -ENOMEM;
	buf_init(&b, (size_t)16 << 20);
	if (id > 0)
		buf_printf(&b, "id: %" PRId64 "\n", id);
	buf_printf(&b, "event: %s\ndata: %s\n\n", type, text);
	free(text);
	n = http_stream_write(s->req, b.base, b.len);
	buf_free(&b);
	return n < 0 ? (int)n : 0;
}

/* Sends stored events after last_event while the connection takes them, a
 * page at a time: returns 1 once caught up with the store, 0 when the
 * connection is full (its drain callback resumes), or a negative errno. The
 * store is the subscriber's queue: however long the log and however slow the
 * client, no more than the high-water mark waits in memory. */
static int events_backlog(struct stream *s)
{
	for (;;) {
		json_t *evs, *e;
		size_t i, n;

		if (http_stream_full(s->req))
			return 0;
		evs = store_events_since(s->a->st, s->job, s->last_event, EVENTS_PAGE);
		if (!evs)
			return -EIO;
		n = json_array_size(evs);
		json_array_foreach(evs, i, e)
		{
			/* Flat: {"at":..., "message":...} or {"at":..., "state":..., "reason":...} */
			json_t *out;
			int rc;

			if (http_stream_full(s->req)) {
				json_decref(evs);
				return 0;
			}
			out = json_deep_copy(json_object_get(e, "data"));
			if (!json_is_object(out)) {
				json_decref(out);
				out = json_pack("{s:O}", "data", json_object_get(e, "data"));
			}
			json_object_set(out, "at", json_object_get(e, "at"));

			s->last_event = json_integer_value(json_object_get(e, "id"));
			rc = sse_write(s, s->last_event, json_string_value(json_object_get(e, "type")), out);
			json_decref(out);
			if (rc < 0) {
				json_decref(evs);
				return rc;
			}
		}
		json_decref(evs);
		if (n < EVENTS_PAGE)
			return 1;
	}
}

/* Moves an events stream on: the stored log first; once caught up, a status
 * snapshot (the first time, or for progress skipped while backed up), and
 * the end when the stream does not follow or the job is over. */
static void stream_events_pump(struct stream *s)
{
	struct api *a = s->a;
	bool first = !s->snapshot_sent, finished;
	int rc = events_backlog(s);

	if (rc < 0) {
		if (rc != -EPIPE)
			log_warn("events of job_%" PRId64 " stopped: %s", s->job, strerror(-rc));
		stream_end(s);
		return;
	}
	if (rc == 0)
		return;
	finished = s->finish_pending || (first && runner_job_finished(a->runner, s->job));
	if (first || s->progress_pending || finished) {
		json_t *st = runner_job_status(a->runner, s->job);

		if (st) {
			char at[40];

			/* When it was sent, as every progress event carries. */
			store_iso_time(store_now(), at, sizeof(at));
			json_object_set_new(st, "at", json_string(at));
			sse_write(s, 0, "progress", st);
		}
		json_decref(st);
		s->progress_pending = false;
	}
	s->snapshot_sent = true;
	if (!s->follow || finished) {
		if (s->follow) {
			json_t *d = json_pack("{s:b}", "finished", 1);

			sse_write(s, 0, "end", d);
			json_decref(d);
		}
		stream_end(s);
	}
}

static void stream_events_on_drain(void *ctx, struct http_req *req)
{
	(void)req;
	stream_events_pump(ctx);
}

static void route_events(struct api *a, struct http_req *req, int64_t job)
{
	struct stream *s = calloc(1, sizeof(*s));
	const char *follow = http_req_query(req, "follow");
	const char *after = http_req_query(req, "after");
	const char *last = http_req_header(req, "Last-Event-ID");

	if (!s) {
		respond_err(req, 500, "oom", NULL, "out of memory");
		return;
	}
	s->a = a;
	s->req = req;
	s->kind = STREAM_EVENTS;
	s->job = job;
	s->follow = !(follow && (strcmp(follow, "0") == 0 || strcmp(follow, "false") == 0));
	if (last)
		s->last_event = strtoll(last, NULL, 10);
	else if (after)
		s->last_event = strtoll(after, NULL, 10);
	http_req_add_header(req, "Cache-Control", "no-cache");
	if (http_stream_start(req, 200, "text/event-stream") != 0) {
		free(s);
		return;
	}
	/* Listed at once: events that happen while the backlog is paced out
	 * are picked up from the store, and the job's end is not missed. */
	s->next = a->streams;
	a->streams = s;
	http_req_on_abort(req, stream_abort, s);
	http_stream_on_drain(req, stream_events_on_drain, s);
	stream_events_pump(s);
}

static void api_on_runner_event(void *ud, int64_t job, const char *type, json_t *data)
{
	struct api *a = ud;
	struct stream *s, *next;

	/* Published before any subscriber hears of it: a client that reads
	 * "state" here and asks for the status gets the new one. */
	if (strcmp(type, "progress") == 0)
		snap_pub_kick(a->pub);
	else
		snap_pub_job(a->pub, job);
	for (s = a->streams; s; s = next) {
		next = s->next;
		if (s->kind != STREAM_EVENTS || s->job != job)
			continue;
		if (strcmp(type, "progress") == 0) {
			/* Coalesced: a subscriber still reading the backlog gets its
			 * snapshot at the end of it; a backed-up one gets one fresh
			 * status once it drains, not every progress in between. */
			if (!s->snapshot_sent)
				continue;
			if (http_stream_full(s->req))
				s->progress_pending = true;
			else
				sse_write(s, 0, type, data);
			continue;
		}
		if (strcmp(type, "state") == 0 && runner_job_finished(a->runner, job))
			s->finish_pending = true;
		/* Stored events carry ids: read them from the store so a
		 * reconnecting client can resume with Last-Event-ID, and a slow
		 * one catches up from there instead of queueing them. */
		stream_events_pump(s);
	}
}

static int export_emit(void *ud, const char *line, size_t len)
{
	struct stream *s = ud;
	ssize_t n = http_stream_write(s->req, line, len);

	return n < 0 ? (int)n : 0;
}

static void export_pump(struct stream *s);

static void export_on_idle(uv_idle_t *h)
{
	struct stream *s = h->data;

	uv_idle_stop(h);
	s->idle_on = false;
	export_pump(s);
}

static void export_on_drain(void *ctx, struct http_req *req)
{
	struct stream *s = ctx;

	(void)req;
	if (!s->idle_on && !s->ending) {
		s->idle_on = true;
		uv_idle_start(&s->idle, export_on_idle);
	}
}

/* Formats one page, then yields to the loop: the next page comes from an
 * idle callback, or from the drain callback when the client reads slowly. */
static void export_pump(struct stream *s)
{
	int done = 0;

	while (done < EXPORT_PAGE && !http_stream_full(s->req)) {
		int n = sets_export_page(s->a->st, s->job, s->dataset, s->set, s->format, s->ids,
					 &s->cursor, EXPORT_STEP, export_emit, s);

		if (n <= 0) {
			if (n < 0)
				log_warn("export of job_%" PRId64 " stopped: %s", s->job, strerror(-n));
			s->ending = true;
			stream_end(s);
			return;
		}
		done += n;
	}
	if (!http_stream_full(s->req)) {
		s->idle_on = true;
		uv_idle_start(&s->idle, export_on_idle);
	}
	/* else: wait for the drain callback */
}

/* Whether set n of a job can be exported yet, from the job's kind, phase and
 * state. A set that cannot exist yet (or ever) is a 409 naming the phase
 * that makes it; a set still being made (the job is in that phase and not
 * done) is exported as it stands, with an X-Medthink-Partial header saying
 * so. Returns 0 to go on, -1 when it responded. */
static int export_readiness(struct api *a, struct http_req *req, int64_t job, int set)
{
	/* the phase each set is made in */
	static const enum phase set_phase[] = { PHASE__N, PHASE_STAGE1, PHASE_STAGE2 };
	json_t *st = runner_job_status(a->runner, job);
	const char *kind = json_string_value(json_object_get(st, "kind"));
	const char *phase = json_string_value(json_object_get(st, "phase"));
	const char *state = json_string_value(json_object_get(st, "state"));
	const struct job_kind_def *def;
	enum phase want = set_phase[set == 2 ? 2 : 1];
	int k, cur = -1, at = -1, rc = 0;
	bool final;
	char note[256];

	if (!st || job_kind_parse(kind) < 0 || !phase || !state) {
		json_decref(st);
		return 0; /* nothing to judge by: export what there is */
	}
	def = job_kind_def((enum job_kind)job_kind_parse(kind));
	if (set != 2 && def->set1_phase != PHASE_STAGE1)
		want = def->set1_phase; /* an rl job's set 1: its kept prompts */
	final = job_state_parse(state) >= 0 && job_state_finished((enum job_state)job_state_parse(state));
	for (k = 0; k < def->nphases; k++) {
		if (def->phases[k] == want)
			at = k;
		if (strcmp(phase_name(def->phases[k]), phase) == 0)
			cur = k;
	}
	if (at < 0) {
		respond_err(req, 409, "set_not_made", "set",
			    "set %d is made in %s; job_%" PRId64 " is a%s %s job, which has no %s", set,
			    phase_name(want), job, kind[0] == 'e' ? "n" : "", kind, phase_name(want));
		rc = -1;
	} else if (cur >= 0 && cur < at) {
		if (final)
			respond_err(req, 409, "set_not_made", "set",
				    "set %d is made in %s; job_%" PRId64 " was %s in %s, before it", set,
				    phase_name(want), job, state, phase);
		else
			respond_err(req, 409, "set_not_ready", "set",
				    "set %d is made in %s; job_%" PRId64 " is in %s (%s)", set,
				    phase_name(want), job, phase, state);
		rc = -1;
	} else if (cur == at && strcmp(state, "done") != 0) {
		if (final)
			snprintf(note, sizeof(note), "job_%" PRId64 " was %s in %s: set %d is incomplete", job,
				 state, phase, set);
		else
			snprintf(note, sizeof(note),
				 "job_%" PRId64 " is %s in %s: set %d is still being made; this is what there is so far",
				 job, state, phase, set);
		http_req_add_header(req, "X-Medthink-Partial", note);
	}
	json_decref(st);
	return rc;
}

/* A whole-document format (the refer job's refcoco and lvit): built from
 * the job's regions at once and sent as one body (docs/refer.md). */
static void route_export_document(struct api *a, struct http_req *req, int64_t job,
				  const struct export_format *fmt)
{
	json_t *row = store_job_get(a->st, job), *regions = NULL;
	int64_t ds = 0;
	char *doc = NULL;
	size_t len = 0;
	int rc;

	if (!row) {
		respond_err(req, 404, "not_found", NULL, "no job job_%" PRId64, job);
		return;
	}
	if (store_dataset_resolve(a->st, json_string_value(json_object_get(row, "dataset")), &ds) != 0 ||
	    refer_export_regions(a->st, job, ds, json_object_get(row, "spec"), &regions) != 0) {
		respond_err(req, 500, "export_failed", NULL, "cannot read the regions of job_%" PRId64, job);
		goto out;
	}
	if (json_array_size(regions) == 0) {
		respond_err(req, 409, "set_not_made", "format",
			    "format %s exports a refer job's expressions; job_%" PRId64 " has none", fmt->name,
			    job);
		goto out;
	}
	{
		/* a job still running exports what there is, and says so */
		json_t *st = runner_job_status(a->runner, job);
		const char *state = json_string_value(json_object_get(st, "state"));
		char note[160];

		if (state && strcmp(state, "done") != 0) {
			if (job_state_parse(state) >= 0 && job_state_finished((enum job_state)job_state_parse(state)))
				snprintf(note, sizeof(note), "job_%" PRId64 " was %s: its expressions are incomplete",
					 job, state);
			else
				snprintf(note, sizeof(note), "job_%" PRId64 " is %s: its expressions are still being "
					 "made; this is what there is so far", job, state);
			http_req_add_header(req, "X-Medthink-Partial", note);
		}
		json_decref(st);
	}
	rc = fmt->document(regions, &doc, &len);
	if (rc) {
		respond_err(req, rc == -E2BIG ? 413 : 500, "export_failed", "format",
			    "cannot build the %s document of job_%" PRId64 ": %s", fmt->name, job, strerror(-rc));
		goto out;
	}
	http_respond(req, 200, fmt->content_type ? fmt->content_type : "application/json", doc, len);
out:
	free(doc);
	json_decref(regions);
	json_decref(row);
}

static void route_export(struct api *a, struct http_req *req, int64_t job)
{
	const char *set = http_req_query(req, "set");
	const char *format = http_req_query(req, "format");
	const char *ids = http_req_query(req, "ids");
	const struct export_format *fmt;
	char names[256];
	json_t *row;
	struct stream *s;

	if (format && export_format_find(format) && export_format_find(format)->document) {
		route_export_document(a, req, job, export_format_find(format));
		return;
	}
	if (!set || (strcmp(set, "1") != 0 && strcmp(set, "2") != 0)) {
		respond_err(req, 400, "bad_set", "set", "set must be 1 or 2");
		return;
	}
	if (!format)
		format = "openai";
	fmt = export_format_find(format);
	if (!fmt) {
		export_format_names(names, sizeof(names), ", ", " or ");
		respond_err(req, 400, "bad_format", "format", "format must be %s, not \"%s\"", names,
			    format);
		return;
	}
	row = store_job_get(a->st, job);
	if (!row) {
		respond_err(req, 404, "not_found", NULL, "no job job_%" PRId64, job);
		return;
	}
	if (export_readiness(a, req, job, atoi(set)) != 0) {
		json_decref(row);
		return;
	}
	if (fmt->needs_output && job_kind_parse(json_string_value(json_object_get(row, "kind"))) >= 0 &&
	    job_kind_def((enum job_kind)job_kind_parse(json_string_value(json_object_get(row, "kind"))))
			    ->set1_phase == PHASE_RL) {
		respond_err(req, 400, "bad_format", "format",
			    "job_%" PRId64 " is an rl job: its set is a prompt set with no SFT text; "
			    "export it with format grpo",
			    job);
		json_decref(row);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		json_decref(row);
		respond_err(req, 500, "oom", NULL, "out of memory");
		return;
	}
	s->a = a;
	s->req = req;
	s->kind = STREAM_EXPORT;
	s->job = job;
	s->set = atoi(set);
	s->format = fmt;
	s->ids = !(ids && (strcmp(ids, "0") == 0 || strcmp(ids, "false") == 0));
	s->cursor = -1;
	store_dataset_resolve(a->st, json_string_value(json_object_get(row, "dataset")), &s->dataset);
	json_decref(row);
	uv_idle_init(a->loop, &s->idle);
	s->idle.data = s;
	if (http_stream_start(req, 200, "application/x-ndjson") != 0) {
		uv_close((uv_handle_t *)&s->idle, stream_idle_closed);
		return;
	}
	s->next = a->streams;
	a->streams = s;
	http_req_on_abort(req, stream_abort, s);
	http_stream_on_drain(req, export_on_drain, s);
	export_pump(s);
}

/* ---- routes ----------------------------------------------------------------- */

/* Per-endpoint client counters in Prometheus text. The text format wants
 * each family's samples together under its HELP and TYPE, so every family
 * loops over the endpoints on its own (promtool check metrics: the
 * tests/promlint.py checker). One value per endpoint: one row here. */
enum metric_val { MV_U64, MV_INT, MV_DBL };

struct client_metric {
	const char *name, *type, *help;
	size_t off; /* into struct client_stats */
	enum metric_val kind;
};

#define CS_OFF(f) offsetof(struct client_stats, f)
static const struct client_metric client_metric_rows[] = {
	{ "medthink_model_requests_total", "counter",
	  "HTTP requests sent to models (retries and repairs included).", CS_OFF(requests), MV_U64 },
	{ "medthink_model_retries_total", "counter", "Retried requests.", CS_OFF(retries), MV_U64 },
	{ "medthink_model_429_total", "counter", "Replies with HTTP status 429 (rate limited).",
	  CS_OFF(http_429), MV_U64 },
	{ "medthink_model_in_flight", "gauge", "Requests on the wire.", CS_OFF(in_flight), MV_INT },
	{ "medthink_model_queued", "gauge",
	  "Calls waiting for a slot (concurrency window, rpm, tpm or breaker).", CS_OFF(queued), MV_INT },
	{ "medthink_model_window", "gauge", "Current concurrency cap (adaptive window).",
	  CS_OFF(window), MV_INT },
	{ "medthink_model_breaker_open", "gauge", "Circuit breaker: 0 closed, 1 open, 2 half-open.",
	  CS_OFF(breaker), MV_INT },
	{ "medthink_model_cost_usd_total", "counter", "Spend in USD at the configured prices.",
	  CS_OFF(cost_usd), MV_DBL },
};

static void metric_head(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void client_latency_metrics(const struct client_stats *cs, struct buf *b)
{
	uint64_t cum = 0;

	for (int k = 0; k < CLIENT_LATENCY_BUCKETS; k++) {
		cum += cs->latency_bucket[k];
		buf_printf(b, "medthink_model_latency_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %" PRIu64 "\n",
			   cs->name, client_latency_le_s[k], cum);
	}
	buf_printf(b, "medthink_model_latency_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
		      "medthink_model_latency_seconds_sum{endpoint=\"%s\"} %.6f\n"
		      "medthink_model_latency_seconds_count{endpoint=\"%s\"} %" PRIu64 "\n",
		   cs->name, cs->latency_count, cs->name, cs->latency_ms_sum / 1000.0, cs->name,
		   cs->latency_count);
}

/* Per-replica counters of the pools (a student base_url listing several
 * URLs), labelled endpoint and replica (its URL). One row per family. */
struct replica_metric {
	const char *name, *type, *help;
	size_t off; /* into struct client_replica_stats */
	enum metric_val kind;
};

#define RS_OFF(f) offsetof(struct client_replica_stats, f)
static const struct replica_metric replica_metric_rows[] = {
	{ "medthink_model_replica_up", "gauge", "1 while the replica is in its pool, 0 while taken out.",
	  RS_OFF(up), MV_INT },
	{ "medthink_model_replica_requests_total", "counter", "Attempts sent to the replica.",
	  RS_OFF(requests), MV_U64 },
	{ "medthink_model_replica_ok_total", "counter", "Attempts the replica answered.", RS_OFF(ok), MV_U64 },
	{ "medthink_model_replica_failures_total", "counter",
	  "Attempts that failed at the replica (network, timeout, 5xx, broken reply).", RS_OFF(failures),
	  MV_U64 },
	{ "medthink_model_replica_taken_out_total", "counter", "Times the replica was taken out of its pool.",
	  RS_OFF(taken_out), MV_U64 },
	{ "medthink_model_replica_in_flight", "gauge", "Requests on the wire to the replica.",
	  RS_OFF(in_flight), MV_INT },
	{ "medthink_model_replica_window", "gauge", "The replica's concurrency cap (adaptive window).",
	  RS_OFF(window), MV_INT },
};

static void replica_metrics(struct client *cl, struct buf *b)
{
	struct client_replica_stats rs;
	struct client_stats cs;
	size_t n = client_endpoint_count(cl);
	bool any = false;

	for (size_t i = 0; i < n; i++)
		any |= client_replica_count(cl, i) > 1;
	if (!any)
		return;
	for (size_t m = 0; m < sizeof(replica_metric_rows) / sizeof(replica_metric_rows[0]); m++) {
		const struct replica_metric *row = &replica_metric_rows[m];

		metric_head(b, row->name, row->type, row->help);
		for (size_t i = 0; i < n; i++) {
			size_t nr = client_replica_count(cl, i);

			if (nr < 2 || client_stats_at(cl, i, &cs) != 0)
				continue;
			for (size_t r = 0; r < nr; r++) {
				const char *v;

				if (client_replica_stats_at(cl, i, r, &rs) != 0)
					continue;
				v = (const char *)&rs + row->off;
				buf_printf(b, "%s{endpoint=\"%s\",replica=\"", row->name, cs.name);
				/* A URL may hold a quote or a backslash: escaped as the text
				 * format wants. */
				for (const char *u = rs.url; *u; u++)
					buf_printf(b, "%s%c", *u == '"' || *u == '\\' ? "\\" : "", *u);
				buf_puts(b, "\"} ");
				if (row->kind == MV_U64)
					buf_printf(b, "%" PRIu64 "\n", *(const uint64_t *)(const void *)v);
				else
					buf_printf(b, "%d\n", *(const int *)(const void *)v);
			}
		}
	}
}

static void client_metrics(struct client *cl, struct buf *b)
{
	struct client_stats cs;
	size_t n = client_endpoint_count(cl);

	metric_head(b, "medthink_model_calls_total", "counter", "Model calls by endpoint and outcome.");
	for (size_t i = 0; i < n; i++) {
		if (client_stats_at(cl, i, &cs) != 0)
			continue;
		buf_printf(b, "medthink_model_calls_total{endpoint=\"%s\",outcome=\"ok\"} %" PRIu64 "\n"
			      "medthink_model_calls_total{endpoint=\"%s\",outcome=\"cached\"} %" PRIu64 "\n",
			   cs.name, cs.ok, cs.name, cs.cached);
		for (int k = 0; k < CLIENT_ERRC_N; k++)
			buf_printf(b, "medthink_model_calls_total{endpoint=\"%s\",outcome=\"%s\"} %" PRIu64 "\n",
				   cs.name, client_err_class_name((enum client_err_class)k), cs.errors[k]);
	}
	for (size_t r = 0; r < sizeof(client_metric_rows) / sizeof(client_metric_rows[0]); r++) {
		const struct client_metric *m = &client_metric_rows[r];

		metric_head(b, m->name, m->type, m->help);
		for (size_t i = 0; i < n; i++) {
			const char *v;

			if (client_stats_at(cl, i, &cs) != 0)
				continue;
			v = (const char *)&cs + m->off;
			if (m->kind == MV_U64)
				buf_printf(b, "%s{endpoint=\"%s\"} %" PRIu64 "\n", m->name, cs.name,
					   *(const uint64_t *)(const void *)v);
			else if (m->kind == MV_INT)
				buf_printf(b, "%s{endpoint=\"%s\"} %d\n", m->name, cs.name,
					   *(const int *)(const void *)v);
			else
				buf_printf(b, "%s{endpoint=\"%s\"} %.6f\n", m->name, cs.name,
					   *(const double *)(const void *)v);
		}
	}
	metric_head(b, "medthink_model_tokens_total", "counter", "Tokens by endpoint and direction.");
	for (size_t i = 0; i < n; i++)
		if (client_stats_at(cl, i, &cs) == 0)
			buf_printf(b, "medthink_model_tokens_total{endpoint=\"%s\",dir=\"in\"} %" PRId64 "\n"
				      "medthink_model_tokens_total{endpoint=\"%s\",dir=\"out\"} %" PRId64 "\n",
				   cs.name, cs.tokens_in, cs.name, cs.tokens_out);
	metric_head(b, "medthink_model_latency_seconds", "histogram",
		    "Answered calls by latency, first send to final reply (retries included).");
	for (size_t i = 0; i < n; i++)
		if (client_stats_at(cl, i, &cs) == 0)
			client_latency_metrics(&cs, b);
	replica_metrics(cl, b);
}

/* The whole /metrics text, appended to b (also the front's snapshot). */
static void api_metrics_render(void *ud, struct buf *b)
{
	struct api *a = ud;

	buf_printf(b,
		   "# HELP medthink_up 1 while the daemon runs.\n# TYPE medthink_up gauge\n"
		   "medthink_up 1\n"
		   "# HELP medthink_api_requests_total Socket API requests.\n"
		   "# TYPE medthink_api_requests_total counter\nmedthink_api_requests_total %" PRIu64 "\n"
		   "# HELP medthink_api_connections Open socket API connections.\n"
		   "# TYPE medthink_api_connections gauge\nmedthink_api_connections %u\n"
		   "# HELP medthink_import_items_total Items read by dataset uploads.\n"
		   "# TYPE medthink_import_items_total counter\nmedthink_import_items_total %" PRIu64 "\n"
		   "# HELP medthink_store_batch_pending Writes waiting for the next group commit.\n"
		   "# TYPE medthink_store_batch_pending gauge\nmedthink_store_batch_pending %zu\n",
		   a->requests + front_requests(a->front),
		   http_server_connection_count(a->srv) + front_connections(a->front), a->uploads_items,
		   store_batch_pending(a->st));
	runner_metrics(a->runner, b);
	client_metrics(a->cl, b);
}

static void route_metrics(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	struct buf b;

	(void)m;
	buf_init(&b, (size_t)8 << 20);
	api_metrics_render(a, &b);
	http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.base, b.len);
	buf_free(&b);
}

static int64_t parse_job(struct api *a, struct http_req *req, const char *id)
{
	int64_t job;

	if (store_job_resolve(a->st, id, &job) != 0) {
		respond_err(req, 404, "not_found", NULL, "no job \"%s\"", id);
		return -1;
	}
	return job;
}

/* A submit waiting for its capability probe (stages/probe.c). */
struct submit_wait {
	struct api *a;
	struct http_req *req; /* NULL once the client went away */
};

static void submit_wait_abort(void *ctx, struct http_req *req)
{
	(void)req;
	((struct submit_wait *)ctx)->req = NULL;
}

static void submit_probed(void *ud, int rc, int64_t id, const struct mt_err *err)
{
	struct submit_wait *w = ud;

	if (w->req) {
		http_req_on_abort(w->req, NULL, NULL);
		if (rc != 0)
			respond_mt_err(w->req, rc, err, NULL);
		else
			respond_json_take(w->req, 201, runner_job_status(w->a->runner, id));
	}
	free(w);
}

static void route_job_submit(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	json_error_t jerr;
	json_t *spec = json_loadb(m->body, m->body_len, 0, &jerr), *st;
	struct mt_err err = { 0 };
	const char *dry;
	int64_t id;
	int rc;

	if (!spec) {
		respond_err(req, 400, "malformed_json", "body", "job spec is not valid JSON: %s (line %d, column %d)",
			    jerr.text, jerr.line, jerr.column);
		return;
	}
	dry = http_req_query(req, "dry_run");
	if (dry && (strcmp(dry, "1") == 0 || strcmp(dry, "true") == 0)) {
		/* validated as a submit is, then estimated; nothing is created */
		rc = runner_job_estimate(a->runner, spec, &st, &err);
		json_decref(spec);
		if (rc != 0)
			respond_mt_err(req, rc, &err, NULL);
		else
			respond_json_take(req, 200, st);
		return;
	}
	{
		struct submit_wait *w = calloc(1, sizeof(*w));

		if (!w) {
			json_decref(spec);
			respond_err(req, 500, "internal", NULL, "out of memory");
			return;
		}
		w->a = a;
		w->req = req;
		rc = runner_job_submit_probed(a->runner, spec, &id, &err, submit_probed, w);
		if (rc == 1) {
			/* the student is probed first: the reply comes with the probe */
			http_req_on_abort(req, submit_wait_abort, w);
			json_decref(spec);
			return;
		}
		free(w);
	}
	if (rc != 0) {
		json_decref(spec);
		respond_mt_err(req, rc, &err, NULL);
		return;
	}
	json_decref(spec);
	st = runner_job_status(a->runner, id);
	respond_json_take(req, 201, st);
}

static void route_job_action(struct api *a, struct http_req *req, int64_t job, const char *action,
			     const char *body, size_t len)
{
	struct mt_err err = { 0 };
	int rc;

	if (strcmp(action, "resume") == 0 && len > 0) {
		/* resume may raise the budget: {"budget_usd": 40} */
		json_error_t jerr;
		json_t *b = json_loadb(body, len, 0, &jerr), *v;

		if (!b || !json_is_object(b)) {
			json_decref(b);
			respond_err(req, 400, "malformed_json", "body", "resume body must be a JSON object");
			return;
		}
		v = json_object_get(b, "budget_usd");
		if (v && (!json_is_number(v) || json_number_value(v) < 0)) {
			json_decref(b);
			respond_err(req, 422, "invalid", "budget_usd", "budget_usd must be a number >= 0");
			return;
		}
		if (v) {
			json_t *row = store_job_get(a->st, job);
			const char *state = json_string_value(json_object_get(row, "state"));

			if (!state || strcmp(state, "paused") != 0) {
				respond_err(req, 409, "conflict", NULL,
					    "job_%" PRId64 " is %s; only a paused job can be resumed", job,
					    state ? state : "unknown");
				json_decref(row);
				json_decref(b);
				return;
			}
			json_decref(row);
			runner_job_set_budget(a->runner, job, json_number_value(v));
		}
		json_decref(b);
	}
	rc = runner_job_action(a->runner, job, action, &err);
	if (rc != 0) {
		respond_mt_err(req, rc, &err, NULL);
		return;
	}
	respond_json_take(req, 200, runner_job_status(a->runner, job));
}

/* cancel, pause and resume: the action is the last segment of the row. */
static void route_job_action_row(struct api *a, struct http_req *req,
				 const struct api_route_match *m)
{
	route_job_action(a, req, m->job, strrchr(m->route->pattern, '/') + 1, m->body, m->body_len);
}

static void route_job_events(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	route_events(a, req, m->job);
}

static void route_job_export(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	route_export(a, req, m->job);
}

/* A path segment percent-decoded into out (item ids may hold any byte but '/'
 * and NUL); false for a bad escape or a decoded NUL. */
static bool segment_decode(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *in && o + 1 < outlen; in++) {
		unsigned v;

		if (*in != '%') {
			out[o++] = *in;
			continue;
		}
		if (!isxdigit((unsigned char)in[1]) || !isxdigit((unsigned char)in[2]) ||
		    sscanf(in + 1, "%2x", &v) != 1 || v == 0)
			return false;
		out[o++] = (char)v;
		in += 2;
	}
	out[o] = '\0';
	return true;
}

static void route_job_item(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	struct mt_err err = { 0 };
	char ref[API_ROUTE_PARAM_BYTES];
	json_t *story;
	int rc;

	if (!segment_decode(m->params[1], ref, sizeof(ref))) {
		respond_err(req, 400, "invalid", "item", "item \"%s\" has a bad %%-escape", m->params[1]);
		return;
	}
	rc = runner_item_story(a->runner, m->job, ref, &story, &err);
	if (rc != 0)
		respond_mt_err(req, rc, &err, NULL);
	else
		respond_json_take(req, 200, story);
}

/* The item browser: GET /v1/jobs/{id}/items?q=TEXT&limit=N&from=SEQ */
static void route_job_items(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	const char *q = http_req_query(req, "q"), *lim = http_req_query(req, "limit");
	const char *from = http_req_query(req, "from");
	json_t *row = store_job_get(a->st, m->job), *res;
	int64_t ds = -1;
	char *end;
	long n = 50, f = 0;

	if (row && store_dataset_resolve(a->st, json_string_value(json_object_get(row, "dataset")),
					 &ds) != 0)
		ds = -1;
	json_decref(row);
	if (ds < 0) {
		respond_err(req, 500, "internal", NULL, "cannot read job_%" PRId64 "'s dataset", m->job);
		return;
	}
	if (q && strlen(q) > STORE_SEARCH_QUERY_MAX) {
		respond_err(req, 422, "invalid", "q", "q is %zu bytes; at most %d", strlen(q),
			    STORE_SEARCH_QUERY_MAX);
		return;
	}
	if (lim && ((n = strtol(lim, &end, 10)) < 1 || *end || n > STORE_SEARCH_LIMIT_MAX)) {
		respond_err(req, 422, "invalid", "limit", "limit must be 1..%d", STORE_SEARCH_LIMIT_MAX);
		return;
	}
	if (from && ((f = strtol(from, &end, 10)) < 0 || *end)) {
		respond_err(req, 422, "invalid", "from", "from must be an item seq >= 0");
		return;
	}
	res = store_items_search(a->st, ds, m->job, q ? q : "", f, (int)n);
	if (!res)
		respond_err(req, 500, "internal", NULL, "item search failed: %s", store_last_error(a->st));
	else
		respond_json_take(req, 200, res);
}

/* Failures and drops grouped by reason: GET /v1/jobs/{id}/reasons */
static void route_job_reasons(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	json_t *res = store_task_reasons(a->st, m->job);

	if (!res)
		respond_err(req, 500, "internal", NULL, "cannot read the reasons: %s", store_last_error(a->st));
	else
		respond_json_take(req, 200, res);
}

static void route_job_retry(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	struct mt_err err = { 0 };
	const char *failed = http_req_query(req, "failed");
	json_t *st;
	int64_t n;
	int rc;

	if (!failed || (strcmp(failed, "1") != 0 && strcmp(failed, "true") != 0)) {
		respond_err(req, 422, "invalid", "failed",
			    "retry re-runs failed tasks only: ask POST /v1/jobs/{id}/retry?failed=1");
		return;
	}
	rc = runner_job_retry_failed(a->runner, m->job, &n, &err);
	if (rc != 0) {
		respond_mt_err(req, rc, &err, NULL);
		return;
	}
	st = runner_job_status(a->runner, m->job);
	if (st)
		json_object_set_new(st, "retried", json_integer(n));
	respond_json_take(req, 200, st);
}

static void route_job_preview(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	struct mt_err err = { 0 };
	const char *step = http_req_query(req, "step"), *item = http_req_query(req, "item");
	json_t *pv;
	int rc;

	if (!step || !item) {
		respond_err(req, 422, "invalid", step ? "item" : "step",
			    "prompt-preview needs ?step=STEP&item=ITEM (%s is missing)",
			    step ? "item" : "step");
		return;
	}
	rc = runner_prompt_preview(a->runner, m->job, step, item, &pv, &err);
	if (rc != 0)
		respond_mt_err(req, rc, &err, NULL);
	else
		respond_json_take(req, 200, pv);
}

static void route_job_get(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	respond_json_take(req, 200, runner_job_status(a->runner, m->job));
}

/* GET /v1/jobs/{id}/timeline?bucket=S: calls, tokens, cost and finished
 * item steps per S seconds (store/timeline.h; at most 500 points). */
static void route_job_timeline(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	const char *q = http_req_query(req, "bucket");
	long long bucket = 0;
	char *end = NULL;
	json_t *tl = NULL;
	int rc;

	if (q) {
		errno = 0;
		bucket = strtoll(q, &end, 10);
		if (!*q || *end || errno || bucket <= 0 || bucket > 366LL * 86400) {
			respond_err(req, 422, "invalid", "bucket",
				    "bucket must be a whole number of seconds from 1 to 31622400");
			return;
		}
	}
	rc = store_job_timeline(a->st, m->job, bucket, STORE_TIMELINE_MAX_POINTS, &tl);
	if (rc == -ENOENT)
		respond_err(req, 404, "not_found", NULL, "no job \"%s\"", m->params[0]);
	else if (rc)
		respond_err(req, 500, "internal", NULL, "the timeline cannot be read: %s", strerror(-rc));
	else
		respond_json_take(req, 200, tl);
}

static void route_job_list(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	(void)m;
	respond_json_take(req, 200, json_pack("{s:o}", "jobs", runner_job_list(a->runner)));
}

static void route_dataset_get(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	json_t *ds = NULL;
	int64_t id;

	if (store_dataset_resolve(a->st, m->params[0], &id) == 0)
		ds = store_dataset_get(a->st, id);
	if (!ds)
		respond_err(req, 404, "not_found", NULL, "no dataset \"%s\"", m->params[0]);
	else
		respond_json_take(req, 200, ds);
}

static void route_dataset_list(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	(void)m;
	respond_json_take(req, 200, json_pack("{s:o}", "datasets", store_dataset_list(a->st)));
}

static void route_formats(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	(void)a;
	(void)m;
	respond_json_take(req, 200, formats_catalog());
}

/* "pools": each student pool's replicas in and out, or NULL when there is
 * no pool. */
static json_t *health_pools(struct client *cl)
{
	struct client_replica_stats rs;
	struct client_stats cs;
	json_t *o = NULL;

	for (size_t i = 0; i < client_endpoint_count(cl); i++) {
		size_t nr = client_replica_count(cl, i);
		json_t *out;

		if (nr < 2 || client_stats_at(cl, i, &cs) != 0)
			continue;
		out = json_array();
		for (size_t r = 0; r < nr; r++)
			if (client_replica_stats_at(cl, i, r, &rs) == 0 && rs.out)
				json_array_append_new(out, json_pack("{s:s, s:s}", "url", rs.url, "last_error",
								     rs.last_error ? rs.last_error : ""));
		if (!o)
			o = json_object();
		json_object_set_new(o, cs.name, json_pack("{s:i, s:i, s:o}", "replicas", (int)nr, "in",
							  cs.replicas_in, "out", out));
	}
	return o;
}

/* The /v1/health object (also the front's snapshot). */
static json_t *api_health_json(void *ud)
{
	struct api *a = ud;
	json_t *h, *pools = health_pools(a->cl);

	if (a->degraded)
		h = json_pack("{s:s, s:s, s:s}", "status", "degraded", "reason", a->degraded, "version",
			      a->cfg.version);
	else
		h = json_pack("{s:s, s:s}", "status", "ok", "version", a->cfg.version);
	if (h && pools)
		json_object_set_new(h, "pools", pools);
	else
		json_decref(pools);
	return h;
}

static void route_health(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	(void)m;
	respond_json_take(req, 200, api_health_json(a));
}

/* ---- the route table (SPEC 6) -------------------------------------------- */

/* POST /v1/score?dataset=ID[&rules=r1|strict]: body JSONL {"id","completion"}
 * -> the rewards of each completion and a summary (stages/score.h). */
static void route_score(struct api *a, struct http_req *req, const struct api_route_match *m)
{
	struct mt_err err = { 0 };
	json_t *res;
	int rc;

	rc = score_completions(a->st, http_req_query(req, "dataset"), http_req_query(req, "rules"),
			       m->body ? m->body : "", m->body_len, &res, &err);
	if (rc != 0)
		respond_mt_err(req, rc, &err, NULL);
	else
		respond_json_take(req, 200, res);
}

const struct api_route api_routes[] = {
	{ "GET", "/v1/health", route_health, API_BODY_NONE, 0 },
	{ "GET", "/v1/formats", route_formats, API_BODY_NONE, 0 },
	{ "GET", "/v1/datasets", route_dataset_list, API_BODY_NONE, 0 },
	{ "POST", "/v1/datasets", route_dataset_upload, API_BODY_STREAMED, 0 },
	{ "GET", "/v1/datasets/{id}", route_dataset_get, API_BODY_NONE, 0 },
	{ "GET", "/v1/jobs", route_job_list, API_BODY_NONE, 0 },
	{ "POST", "/v1/jobs", route_job_submit, API_BODY_BUFFERED, 0 },
	{ "GET", "/v1/jobs/{id}", route_job_get, API_BODY_NONE, API_ROUTE_JOB },
	{ "POST", "/v1/jobs/{id}/cancel", route_job_action_row, API_BODY_BUFFERED, API_ROUTE_JOB },
	{ "POST", "/v1/jobs/{id}/pause", route_job_action_row, API_BODY_BUFFERED, API_ROUTE_JOB },
	{ "POST", "/v1/jobs/{id}/resume", route_job_action_row, API_BODY_BUFFERED, API_ROUTE_JOB },
	{ "GET", "/v1/jobs/{id}/events", route_job_events, API_BODY_NONE, API_ROUTE_JOB },
	{ "GET", "/v1/jobs/{id}/export", route_job_export, API_BODY_NONE, API_ROUTE_JOB },
	{ "GET", "/v1/jobs/{id}/items/{item}", route_job_item, API_BODY_NONE, API_ROUTE_JOB },
	{ "POST", "/v1/jobs/{id}/retry", route_job_retry, API_BODY_BUFFERED, API_ROUTE_JOB },
	{ "GET", "/v1/jobs/{id}/prompt-preview", route_job_preview, API_BODY_NONE, API_ROUTE_JOB },
	{ "GET", "/v1/jobs/{id}/timeline", route_job_timeline, API_BODY_NONE, API_ROUTE_JOB },
	{ "GET", "/metrics", route_metrics, API_BODY_NONE, 0 },
	{ "POST", "/v1/score", route_score, API_BODY_BUFFERED, 0 },
	{ "GET", "/v1/jobs/{id}/items", route_job_items, API_BODY_NONE, API_ROUTE_JOB },
	{ "GET", "/v1/jobs/{id}/reasons", route_job_reasons, API_BODY_NONE, API_ROUTE_JOB },
};
const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);

/* The next segment at *p: its start and length; moves *p past it and its
 * slash, so one trailing slash ends the path. Returns false at the end. */
static bool path_next(const char **p, const char **seg, size_t *len)
{
	const char *s = *p;

	if (!*s)
		return false;
	*seg = s;
	*len = strcspn(s, "/");
	s += *len;
	if (*s == '/')
		s++;
	*p = s;
	return true;
}

static const char *path_start(const char *path)
{
	while (*path == '/')
		path++;
	return path;
}

/* Matches path against one pattern; fills m->params on success. */
static bool route_path_match(const char *pattern, const char *path, struct api_route_match *m)
{
	const char *p = path_start(path), *q = path_start(pattern), *ps, *qs;
	size_t plen, qlen;
	int np = 0;

	while (path_next(&q, &qs, &qlen)) {
		if (!path_next(&p, &ps, &plen))
			return false;
		if (qlen > 2 && qs[0] == '{' && qs[qlen - 1] == '}') {
			if (np == API_ROUTE_PARAMS_MAX)
				return false;
			if (plen >= API_ROUTE_PARAM_BYTES)
				plen = API_ROUTE_PARAM_BYTES - 1;
			memcpy(m->params[np], ps, plen);
			m->params[np][plen] = '\0';
			np++;
		} else if (plen != qlen || memcmp(ps, qs, plen) != 0) {
			return false;
		}
	}
	if (*p)
		return false;
	m->nparams = np;
	return true;
}

int api_route_match(const char *method, const char *path, struct api_route_match *m)
{
	bool known = false;
	size_t off = 0;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct api_route *r = &api_routes[i];

		if (!route_path_match(r->pattern, path, m))
			continue;
		if (strcmp(r->method, method) == 0) {
			m->route = r;
			return 0;
		}
		known = true;
		off += (size_t)snprintf(m->allow + off, sizeof(m->allow) - off, "%s%s",
					off ? ", " : "", r->method);
		if (off >= sizeof(m->allow))
			off = sizeof(m->allow) - 1;
	}
	m->nparams = 0;
	return known ? -EPERM : -ENOENT;
}

/* ---- dispatch ------------------------------------------------------------ */

/* Runs a matched row: a job id is resolved first (404 when unknown). */
static void route_run(struct api *a, struct http_req *req, struct api_route_match *m)
{
	if (m->route->flags & API_ROUTE_JOB) {
		m->job = parse_job(a, req, m->params[0]);
		if (m->job < 0)
			return;
	}
	m->route->handler(a, req, m);
}

void api_route_serve(struct api *a, struct http_req *req, struct api_route_match *m)
{
	a->requests++;
	route_run(a, req, m);
}

/* A buffered-body route runs here. Every other request was answered in
 * api_on_request, or is streaming its response (events, export): on_body
 * still fires for those. */
static void api_on_body(void *ud, struct http_req *req, const char *body, size_t len)
{
	struct api_route_match m;

	if (api_route_match(http_req_method(req), http_req_path(req), &m) != 0 ||
	    m.route->body != API_BODY_BUFFERED)
		return;
	m.body = body;
	m.body_len = len;
	route_run(ud, req, &m);
}

static void api_on_request(void *ud, struct http_req *req)
{
	struct api *a = ud;
	const char *path = http_req_path(req);
	struct api_route_match m;
	int rc;

	a->requests++;
	rc = api_route_match(http_req_method(req), path, &m);
	if (rc == -EPERM) {
		http_req_add_header(req, "Allow", m.allow);
		respond_err(req, 405, "method_not_allowed", NULL, "use %s %s", m.allow, path);
		return;
	}
	if (rc != 0) {
		respond_err(req, 404, "not_found", NULL, "no route %s %s", http_req_method(req), path);
		return;
	}
	if (m.route->body == API_BODY_BUFFERED)
		return; /* the handler runs in api_on_body */
	route_run(a, req, &m);
}

/* Before every response the main loop writes: whatever the request did is
 * in the snapshot before the client can ask the front for it. */
static void api_on_respond(void *ud, struct http_req *req)
{
	struct api *a = ud;
	const char *method = http_req_method(req);

	/* A GET changes no job (what moves on its own is published by the
	 * runner's events and the periodic publish). */
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		return;
	snap_pub_forget(a->pub);
	snap_pub_now(a->pub);
}

static void api_on_want(void *ud)
{
	snap_pub_now(((struct api *)ud)->pub);
}

static void api_pub_closed_free(void *ud)
{
	snap_pub_free(ud);
}

/* The snapshot, its publisher and the front thread on cfg.socket_path;
 * a->srv serves the connections it hands over. Undone on failure. */
static int api_front_start(struct api *a)
{
	struct snap_pub_ops ops = { api_metrics_render, api_health_json, a };
	int rc = snapshot_new(&a->snap);

	if (rc == 0)
		rc = snap_pub_new(a->loop, a->snap, a->runner, a->st, &ops, &a->pub);
	if (rc == 0) {
		http_server_on_respond(a->srv, api_on_respond, a);
		snap_pub_now(a->pub);
		snap_pub_kick(a->pub); /* again once the runner has loaded its jobs */
		rc = front_start(a->loop, a->srv, a->snap, a->cfg.socket_path, &a->hc, api_on_want, a,
				 &a->front);
	}
	if (rc && a->pub) {
		/* the timer never ran: close it and let the loop free it */
		snap_pub_close(a->pub, api_pub_closed_free, a->pub);
		a->pub = NULL;
	}
	if (rc) {
		snapshot_free(a->snap);
		a->snap = NULL;
	}
	return rc;
}

int api_start(uv_loop_t *loop, struct store *st, struct runner *runner, struct client *cl,
	      const struct api_config *cfg, struct api **out)
{
	struct api *a = calloc(1, sizeof(*a));
	struct http_handler h = { api_on_request, api_on_body, NULL };
	struct http_server_config hc = { 0 };
	int rc;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->st = st;
	a->runner = runner;
	a->cl = cl;
	a->cfg = *cfg;
	h.ud = a;
	hc.max_content_length = cfg->max_upload_bytes;
	hc.max_connections = cfg->max_connections;
	hc.request_timeout_ms = cfg->request_timeout_ms;
	hc.idle_timeout_ms = cfg->idle_timeout_ms;
	hc.stream_buffer = cfg->stream_buffer;
	a->hc = hc;
	a->srv = http_server_new(&h, &hc);
	if (!a->srv) {
		free(a);
		return -ENOMEM;
	}
	rc = api_front_start(a);
	if (rc) {
		http_server_free(a->srv);
		free(a);
		return rc;
	}
	runner_set_listener(runner, api_on_runner_event, a);
	*out = a;
	return 0;
}

static void api_server_closed(void *ud)
{
	struct api *a = ud;

	if (--a->closing > 0)
		return;
	if (a->close_cb)
		a->close_cb(a->close_ud);
}

void api_close(struct api *a, void (*cb)(void *ud), void *ud)
{
	a->close_cb = cb;
	a->close_ud = ud;
	runner_set_listener(a->runner, NULL, NULL);
	http_server_on_respond(a->srv, NULL, NULL);
	a->closing = 3 + (a->web != NULL);
	if (a->web)
		web_close(a->web, api_server_closed, a);
	/* The front first (joined here): nothing is handed over after it. */
	front_stop(a->front, api_server_closed, a);
	snap_pub_close(a->pub, api_server_closed, a);
	http_server_close(a->srv, api_server_closed, a);
}

int api_web_start(struct api *a, const struct web_config *wc)
{
	return web_start(a->loop, a, wc, &a->hc, &a->web);
}

int api_set_degraded(struct api *a, const char *reason)
{
	char *copy = NULL;

	if (reason) {
		copy = strdup(reason);
		if (!copy)
			return -ENOMEM;
	}
	free(a->degraded);
	a->degraded = copy;
	snap_pub_now(a->pub);
	return 0;
}

void api_free(struct api *a)
{
	if (!a)
		return;
	web_free(a->web);
	front_free(a->front);
	snap_pub_free(a->pub);
	snapshot_free(a->snap);
	http_server_free(a->srv);
	free(a->degraded);
	free(a);
}
