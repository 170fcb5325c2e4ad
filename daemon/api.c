#include "daemon/api.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "daemon/http.h"
#include "formats/export.h"
#include "formats/formats.h"
#include "formats/import.h"
#include "stages/runner.h"
#include "stages/sets.h"
#include "store/store.h"
#include "teacher_clients/client.h"

#define UPLOAD_BATCH 1000      /* items per insert transaction */
#define REJECTED_MAX 1000      /* rejected lines kept and reported */
#define EXPORT_PAGE 256        /* records formatted per turn */
#define STREAM_HIGH_WATER (1 << 20)
#define EVENTS_PAGE 1000

struct upload;
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

static int respond_mt_err(struct http_req *req, int rc, const struct mt_err *e)
{
	return http_respond_error(req, api_status_of(rc), e->code[0] ? e->code : "internal",
				  e->message[0] ? e->message : strerror(rc < 0 ? -rc : rc),
				  e->field[0] ? e->field : NULL);
}

static void respond_json_take(struct http_req *req, int status, json_t *j)
{
	http_respond_json(req, status, j);
	json_decref(j);
}

/* Splits "/v1/jobs/job_3/export" into parts; returns how many. */
static int path_split(const char *path, char parts[][128], int max)
{
	int n = 0;
	const char *p = path;

	while (*p == '/')
		p++;
	while (*p && n < max) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len >= 128)
			len = 127;
		memcpy(parts[n], p, len);
		parts[n][len] = '\0';
		n++;
		if (!e)
			break;
		p = e + 1;
	}
	return n;
}

static bool is_method(struct http_req *req, const char *m)
{
	return strcmp(http_req_method(req), m) == 0;
}

/* ---- dataset upload (streamed: the body never sits in memory) ------------ */

struct upload {
	struct api *a;
	struct http_req *req;
	struct import_parser *parser;
	int64_t dataset;
	bool skip_invalid;
	bool failed;        /* atomic import hit a bad record: store nothing more */
	int store_error;
	json_t *batch[UPLOAD_BATCH];
	size_t nbatch;
	int64_t next_seq;
	json_t *rejected;
	int64_t nrejected;
	long first_bad_line;
	char first_bad[IMPORT_REASON_MAX];
	char name[200];
	char format[32];
};

static int upload_flush(struct upload *u)
{
	size_t dup = 0;
	int rc = 0;

	if (!u->nbatch)
		return 0;
	if (!u->failed && !u->store_error) {
		rc = store_items_insert(u->a->st, u->dataset, u->next_seq, u->batch, u->nbatch, &dup);
		if (rc == -EEXIST) {
			u->failed = true;
			snprintf(u->first_bad, sizeof(u->first_bad), "duplicate id \"%s\"",
				 json_string_value(json_object_get(u->batch[dup], "id")));
		} else if (rc) {
			u->store_error = rc;
		}
	}
	u->next_seq += (int64_t)u->nbatch;
	u->a->uploads_items += u->nbatch;
	for (size_t i = 0; i < u->nbatch; i++)
		json_decref(u->batch[i]);
	u->nbatch = 0;
	return rc;
}

static int upload_on_item(void *ud, json_t *item, long line)
{
	struct upload *u = ud;

	(void)line;
	if (u->failed) {
		json_decref(item);
		return 0;
	}
	u->batch[u->nbatch++] = item;
	if (u->nbatch == UPLOAD_BATCH)
		upload_flush(u);
	return 0;
}

static int upload_on_error(void *ud, long line, const char *reason)
{
	struct upload *u = ud;

	if (u->nrejected == 0) {
		u->first_bad_line = line;
		snprintf(u->first_bad, sizeof(u->first_bad), "%s", reason);
	}
	u->nrejected++;
	if (u->nrejected <= REJECTED_MAX)
		json_array_append_new(u->rejected,
				      json_pack("{s:i, s:s}", "line", (int)line, "reason", reason));
	if (!u->skip_invalid)
		u->failed = true; /* keep reading to report more lines, store nothing */
	return 0;
}

static void upload_free(struct upload *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->nbatch; i++)
		json_decref(u->batch[i]);
	import_parser_free(u->parser);
	json_decref(u->rejected);
	free(u);
}

static void upload_abort(void *ctx, struct http_req *req)
{
	struct upload *u = ctx;

	(void)req;
	log_warn("dataset upload %s aborted by the client; nothing stored", u->name);
	store_dataset_abort(u->a->st, u->dataset);
	upload_free(u);
}

static void upload_data(void *ctx, struct http_req *req, const char *data, size_t len)
{
	struct upload *u = ctx;

	(void)req;
	import_parser_feed(u->parser, data, len);
}

static void upload_end(void *ctx, struct http_req *req)
{
	struct upload *u = ctx;
	json_t *ds;
	long items = 0;

	import_parser_finish(u->parser);
	upload_flush(u);
	import_parser_counts(u->parser, &items, NULL);
	if (u->store_error) {
		store_dataset_abort(u->a->st, u->dataset);
		respond_err(req, 500, "store", NULL, "cannot store the dataset: %s",
			    strerror(-u->store_error));
	} else if (u->failed || (items == 0 && u->nrejected > 0)) {
		json_t *body;
		char msg[IMPORT_REASON_MAX + 64];

		store_dataset_abort(u->a->st, u->dataset);
		if (u->first_bad_line > 0)
			snprintf(msg, sizeof(msg), "line %ld: %s", u->first_bad_line, u->first_bad);
		else
			snprintf(msg, sizeof(msg), "%s", u->first_bad);
		body = json_pack("{s:{s:s, s:s, s:s}, s:O, s:I}", "error", "code", "invalid_dataset",
				 "message", msg, "field", "body", "rejected", u->rejected,
				 "rejected_count", (json_int_t)u->nrejected);
		respond_json_take(req, 422, body);
	} else if (store_dataset_finish(u->a->st, u->dataset, items, u->rejected) != 0) {
		store_dataset_abort(u->a->st, u->dataset);
		respond_err(req, 500, "store", NULL, "cannot finish the dataset import");
	} else {
		ds = store_dataset_get(u->a->st, u->dataset);
		if (ds)
			json_object_set_new(ds, "rejected_count", json_integer(u->nrejected));
		log_info("dataset ds_%" PRId64 " (%s, %s): %ld items, %" PRId64 " rejected", u->dataset,
			 u->name, u->format, items, u->nrejected);
		upload_free(u);
		u = NULL;
		/* A large import leaves a large heap (the parser's id set); hand it
		 * back to the system rather than carry it through the next job. */
		if (items > 100000)
			malloc_trim(0);
		respond_json_take(req, 201, ds);
	}
	upload_free(u);
}

static void route_dataset_upload(struct api *a, struct http_req *req)
{
	const char *name = http_req_query(req, "name");
	const char *format = http_req_query(req, "format");
	const char *skip = http_req_query(req, "skip_invalid");
	struct import_cb cb = { upload_on_item, upload_on_error, NULL };
	struct upload *u;
	char err[256];
	int rc;

	if (!format || !*format)
		format = "native";
	if (!import_format_known(format)) {
		respond_err(req, 400, "bad_format", "format", "unknown format \"%s\"; expected one of: %s",
			    format, import_format_list());
		return;
	}
	if (name && strlen(name) >= 200) {
		respond_err(req, 400, "bad_name", "name", "name is longer than 199 bytes");
		return;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		respond_err(req, 500, "oom", NULL, "out of memory");
		return;
	}
	u->a = a;
	u->req = req;
	u->skip_invalid = skip && (strcmp(skip, "1") == 0 || strcmp(skip, "true") == 0 ||
				   strcmp(skip, "yes") == 0);
	snprintf(u->name, sizeof(u->name), "%s", name && *name ? name : "unnamed");
	snprintf(u->format, sizeof(u->format), "%s", format);
	u->rejected = json_array();
	cb.ud = u;
	u->parser = import_parser_new(format, NULL, &cb, err, sizeof(err));
	if (!u->parser) {
		upload_free(u);
		respond_err(req, 400, "bad_format", "format", "%s", err);
		return;
	}
	rc = store_dataset_create(a->st, u->name, format, &u->dataset);
	if (rc) {
		upload_free(u);
		respond_err(req, 500, "store", NULL, "cannot create the dataset: %s", strerror(-rc));
		return;
	}
	http_req_on_abort(req, upload_abort, u);
	http_req_stream_body(req, upload_data, upload_end, u);
}

/* ---- streams: /events and /export ---------------------------------------- */

enum stream_kind { STREAM_EVENTS, STREAM_EXPORT };

struct stream {
	struct api *a;
	struct stream *next;
	struct http_req *req;
	enum stream_kind kind;
	int64_t job;
	/* events */
	int64_t last_event;
	bool follow;
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

/* Sends stored events after last_event; returns how many. */
static int events_backlog(struct stream *s)
{
	json_t *evs = store_events_since(s->a->st, s->job, s->last_event, EVENTS_PAGE), *e;
	size_t i;
	int n = 0;

	json_array_foreach(evs, i, e)
	{
		/* Flat: {"at":..., "message":...} or {"at":..., "state":..., "reason":...} */
		json_t *out = json_deep_copy(json_object_get(e, "data"));

		if (!json_is_object(out)) {
			json_decref(out);
			out = json_pack("{s:O}", "data", json_object_get(e, "data"));
		}
		json_object_set(out, "at", json_object_get(e, "at"));

		s->last_event = json_integer_value(json_object_get(e, "id"));
		sse_write(s, s->last_event, json_string_value(json_object_get(e, "type")), out);
		json_decref(out);
		n++;
	}
	json_decref(evs);
	return n;
}

static void route_events(struct api *a, struct http_req *req, int64_t job)
{
	struct stream *s = calloc(1, sizeof(*s));
	const char *follow = http_req_query(req, "follow");
	const char *after = http_req_query(req, "after");
	const char *last = http_req_header(req, "Last-Event-ID");
	json_t *status;

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
	while (events_backlog(s) == EVENTS_PAGE)
		;
	/* A status snapshot first, so a watcher can draw at once. */
	status = runner_job_status(a->runner, job);
	if (status)
		sse_write(s, 0, "progress", status);
	json_decref(status);
	if (!s->follow || runner_job_finished(a->runner, job)) {
		if (s->follow) {
			json_t *d = json_pack("{s:b}", "finished", 1);

			sse_write(s, 0, "end", d);
			json_decref(d);
		}
		http_stream_end(req);
		free(s);
		return;
	}
	s->next = a->streams;
	a->streams = s;
	http_req_on_abort(req, stream_abort, s);
}

static void api_on_runner_event(void *ud, int64_t job, const char *type, json_t *data)
{
	struct api *a = ud;
	struct stream *s, *next;

	for (s = a->streams; s; s = next) {
		next = s->next;
		if (s->kind != STREAM_EVENTS || s->job != job)
			continue;
		if (strcmp(type, "progress") == 0) {
			sse_write(s, 0, type, data);
		} else {
			/* Stored events carry ids: read them from the store so a
			 * reconnecting client can resume with Last-Event-ID. */
			events_backlog(s);
		}
		if (strcmp(type, "state") == 0 && runner_job_finished(a->runner, job)) {
			json_t *st = runner_job_status(a->runner, job), *d = json_pack("{s:b}", "finished", 1);

			if (st)
				sse_write(s, 0, "progress", st);
			sse_write(s, 0, "end", d);
			json_decref(st);
			json_decref(d);
			stream_end(s);
		}
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
	int n = sets_export_page(s->a->st, s->job, s->dataset, s->set, s->format, s->ids, &s->cursor,
				 EXPORT_PAGE, export_emit, s);
	ssize_t queued;

	if (n <= 0) {
		if (n < 0)
			log_warn("export of job_%" PRId64 " stopped: %s", s->job, strerror(-n));
		s->ending = true;
		stream_end(s);
		return;
	}
	queued = http_stream_write(s->req, "", 0);
	if (queued >= 0 && queued < STREAM_HIGH_WATER) {
		s->idle_on = true;
		uv_idle_start(&s->idle, export_on_idle);
	}
	/* else: wait for the drain callback */
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

/* Per-endpoint client counters in Prometheus text. */
static void client_metrics(struct client *cl, struct buf *b)
{
	struct client_stats cs;
	size_t n = client_endpoint_count(cl);

	buf_puts(b, "# HELP medthink_model_calls_total Model calls by endpoint and outcome.\n"
		    "# TYPE medthink_model_calls_total counter\n");
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
	buf_puts(b, "# HELP medthink_model_requests_total HTTP requests sent to models (retries and repairs included).\n"
		    "# TYPE medthink_model_requests_total counter\n");
	for (size_t i = 0; i < n; i++)
		if (client_stats_at(cl, i, &cs) == 0)
			buf_printf(b, "medthink_model_requests_total{endpoint=\"%s\"} %" PRIu64 "\n", cs.name, cs.requests);
	buf_puts(b, "# HELP medthink_model_retries_total Retried requests.\n# TYPE medthink_model_retries_total counter\n");
	for (size_t i = 0; i < n; i++)
		if (client_stats_at(cl, i, &cs) == 0)
			buf_printf(b, "medthink_model_retries_total{endpoint=\"%s\"} %" PRIu64 "\n"
				      "medthink_model_429_total{endpoint=\"%s\"} %" PRIu64 "\n",
				   cs.name, cs.retries, cs.name, cs.http_429);
	buf_puts(b, "# HELP medthink_model_in_flight Requests on the wire.\n# TYPE medthink_model_in_flight gauge\n");
	for (size_t i = 0; i < n; i++)
		if (client_stats_at(cl, i, &cs) == 0)
			buf_printf(b, "medthink_model_in_flight{endpoint=\"%s\"} %d\n"
				      "medthink_model_queued{endpoint=\"%s\"} %d\n"
				      "medthink_model_window{endpoint=\"%s\"} %d\n"
				      "medthink_model_breaker_open{endpoint=\"%s\"} %d\n",
				   cs.name, cs.in_flight, cs.name, cs.queued, cs.name, cs.window, cs.name,
				   cs.breaker);
	buf_puts(b, "# HELP medthink_model_tokens_total Tokens by endpoint and direction.\n# TYPE medthink_model_tokens_total counter\n");
	for (size_t i = 0; i < n; i++)
		if (client_stats_at(cl, i, &cs) == 0)
			buf_printf(b, "medthink_model_tokens_total{endpoint=\"%s\",dir=\"in\"} %" PRId64 "\n"
				      "medthink_model_tokens_total{endpoint=\"%s\",dir=\"out\"} %" PRId64 "\n"
				      "medthink_model_cost_usd_total{endpoint=\"%s\"} %.6f\n"
				      "medthink_model_latency_ms_sum{endpoint=\"%s\"} %.3f\n"
				      "medthink_model_latency_ms_count{endpoint=\"%s\"} %" PRIu64 "\n",
				   cs.name, cs.tokens_in, cs.name, cs.tokens_out, cs.name, cs.cost_usd, cs.name,
				   cs.latency_ms_sum, cs.name, cs.latency_count);
}

static void route_metrics(struct api *a, struct http_req *req)
{
	struct buf b;

	buf_init(&b, (size_t)8 << 20);
	buf_printf(&b,
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
		   a->requests, http_server_connection_count(a->srv), a->uploads_items,
		   store_batch_pending(a->st));
	runner_metrics(a->runner, &b);
	client_metrics(a->cl, &b);
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

static void route_job_submit(struct api *a, struct http_req *req, const char *body, size_t len)
{
	json_error_t jerr;
	json_t *spec = json_loadb(body, len, 0, &jerr), *st;
	struct mt_err err = { 0 };
	int64_t id;
	int rc;

	if (!spec) {
		respond_err(req, 400, "malformed_json", "body", "job spec is not valid JSON: %s (line %d, column %d)",
			    jerr.text, jerr.line, jerr.column);
		return;
	}
	rc = runner_job_submit(a->runner, spec, &id, &err);
	if (rc != 0) {
		json_decref(spec);
		respond_mt_err(req, rc, &err);
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
		respond_mt_err(req, rc, &err);
		return;
	}
	respond_json_take(req, 200, runner_job_status(a->runner, job));
}

static void api_on_body(void *ud, struct http_req *req, const char *body, size_t len)
{
	struct api *a = ud;
	char parts[6][128];
	int n = path_split(http_req_path(req), parts, 6);
	int64_t id;

	/* Every other method was answered in on_request, or is streaming its
	 * response (events, export): on_body still fires for those. */
	if (!is_method(req, "POST"))
		return;
	if (n == 2 && strcmp(parts[1], "jobs") == 0 && is_method(req, "POST")) {
		route_job_submit(a, req, body, len);
		return;
	}
	if (n == 4 && strcmp(parts[1], "jobs") == 0 && is_method(req, "POST")) {
		id = parse_job(a, req, parts[2]);
		if (id >= 0)
			route_job_action(a, req, id, parts[3], body, len);
		return;
	}
	respond_err(req, 404, "not_found", NULL, "no route %s %s", http_req_method(req),
		    http_req_path(req));
}

static void api_on_request(void *ud, struct http_req *req)
{
	struct api *a = ud;
	const char *path = http_req_path(req);
	char parts[6][128];
	int n = path_split(path, parts, 6);
	int64_t id;

	a->requests++;
	if (strcmp(path, "/metrics") == 0) {
		if (!is_method(req, "GET"))
			respond_err(req, 405, "method_not_allowed", NULL, "use GET /metrics");
		else
			route_metrics(a, req);
		return;
	}
	if (n < 2 || strcmp(parts[0], "v1") != 0) {
		respond_err(req, 404, "not_found", NULL, "no route %s %s", http_req_method(req), path);
		return;
	}
	if (n == 2 && strcmp(parts[1], "health") == 0) {
		if (!is_method(req, "GET")) {
			respond_err(req, 405, "method_not_allowed", NULL, "use GET /v1/health");
			return;
		}
		respond_json_take(req, 200, json_pack("{s:s, s:s}", "status", "ok", "version",
						      a->cfg.version));
		return;
	}
	if (n == 2 && strcmp(parts[1], "formats") == 0) {
		if (!is_method(req, "GET"))
			respond_err(req, 405, "method_not_allowed", NULL, "use GET /v1/formats");
		else
			respond_json_take(req, 200, formats_catalog());
		return;
	}
	if (strcmp(parts[1], "datasets") == 0) {
		if (n == 2 && is_method(req, "POST")) {
			route_dataset_upload(a, req);
		} else if (n == 2 && is_method(req, "GET")) {
			respond_json_take(req, 200, json_pack("{s:o}", "datasets",
							      store_dataset_list(a->st)));
		} else if (n == 3 && is_method(req, "GET")) {
			json_t *ds = NULL;

			if (store_dataset_resolve(a->st, parts[2], &id) == 0)
				ds = store_dataset_get(a->st, id);
			if (!ds)
				respond_err(req, 404, "not_found", NULL, "no dataset \"%s\"", parts[2]);
			else
				respond_json_take(req, 200, ds);
		} else {
			respond_err(req, n <= 3 ? 405 : 404, n <= 3 ? "method_not_allowed" : "not_found",
				    NULL, "no route %s %s", http_req_method(req), path);
		}
		return;
	}
	if (strcmp(parts[1], "jobs") == 0) {
		if (n == 2 && is_method(req, "GET")) {
			respond_json_take(req, 200, json_pack("{s:o}", "jobs", runner_job_list(a->runner)));
			return;
		}
		if (n == 2 && is_method(req, "POST"))
			return; /* the spec body arrives in api_on_body */
		if (n == 3 && is_method(req, "GET")) {
			id = parse_job(a, req, parts[2]);
			if (id >= 0)
				respond_json_take(req, 200, runner_job_status(a->runner, id));
			return;
		}
		if (n == 4 && is_method(req, "GET") && strcmp(parts[3], "events") == 0) {
			id = parse_job(a, req, parts[2]);
			if (id >= 0)
				route_events(a, req, id);
			return;
		}
		if (n == 4 && is_method(req, "GET") && strcmp(parts[3], "export") == 0) {
			id = parse_job(a, req, parts[2]);
			if (id >= 0)
				route_export(a, req, id);
			return;
		}
		if (n == 4 && is_method(req, "POST") &&
		    (strcmp(parts[3], "cancel") == 0 || strcmp(parts[3], "pause") == 0 ||
		     strcmp(parts[3], "resume") == 0))
			return; /* api_on_body */
		if (n >= 3 && n <= 4) {
			bool known = n == 3 || strcmp(parts[3], "events") == 0 ||
				     strcmp(parts[3], "export") == 0 || strcmp(parts[3], "cancel") == 0 ||
				     strcmp(parts[3], "pause") == 0 || strcmp(parts[3], "resume") == 0;

			respond_err(req, known ? 405 : 404, known ? "method_not_allowed" : "not_found",
				    NULL, "no route %s %s", http_req_method(req), path);
			return;
		}
	}
	respond_err(req, 404, "not_found", NULL, "no route %s %s", http_req_method(req), path);
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
	a->srv = http_server_new(&h, &hc);
	if (!a->srv) {
		free(a);
		return -ENOMEM;
	}
	rc = http_server_listen_unix(a->srv, loop, cfg->socket_path);
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

	if (a->close_cb)
		a->close_cb(a->close_ud);
}

void api_close(struct api *a, void (*cb)(void *ud), void *ud)
{
	a->close_cb = cb;
	a->close_ud = ud;
	runner_set_listener(a->runner, NULL, NULL);
	http_server_close(a->srv, api_server_closed, a);
}

void api_free(struct api *a)
{
	if (!a)
		return;
	http_server_free(a->srv);
	free(a);
}
