/* Anthropic Message Batches as a batch row: POST /messages/batches
 * {requests:[{custom_id, params}]} (the params are a /messages body),
 * polled with GET /messages/batches/{id} until processing_status is
 * "ended", then its results_url (JSONL, one result per request:
 * succeeded, errored, canceled or expired) is read. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "teacher_clients/batch.h"

/* The documented caps of one batch. */
#define ANTHROPIC_BATCH_MAX_REQUESTS 100000
#define ANTHROPIC_BATCH_MAX_BYTES (256u * 1024 * 1024)

static const char *json_str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int line_append(struct buf *out, const char *custom_id, const char *path, const char *body)
{
	json_t *s = json_string(custom_id);
	char *cid = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
	int rc = -ENOMEM;

	(void)path;
	json_decref(s);
	if (cid)
		rc = buf_printf(out, "{\"custom_id\":%s,\"params\":%s}\n", cid, body);
	free(cid);
	return rc;
}

static int submit_step(int step, const char *base, const char *path, const struct buf *lines, size_t n,
		       const char *prev_body, struct batch_http *req, char *id, size_t idlen, char *err,
		       size_t errlen)
{
	char url[1024];
	json_t *j;
	const char *got;
	int rc;

	(void)path;
	if (step == 0) {
		/* The lines joined into one JSON array. */
		struct buf b;
		size_t i;

		buf_init(&b, ANTHROPIC_BATCH_MAX_BYTES + 64);
		rc = buf_printf(&b, "{\"requests\":[");
		if (rc == 0 && lines->len)
			rc = buf_append(&b, lines->base, lines->len);
		for (i = 0; rc == 0 && i + 1 < b.len; i++)
			if (b.base[i] == '\n')
				b.base[i] = ',';
		if (rc == 0 && b.len && b.base[b.len - 1] == '\n')
			b.len--;
		if (rc == 0)
			rc = buf_printf(&b, "]}");
		snprintf(url, sizeof(url), "%s/messages/batches", base);
		if (rc == 0)
			rc = batch_http_set(req, "POST", url, NULL, b.base, b.len);
		buf_free(&b);
		(void)n;
		return rc < 0 ? rc : 1;
	}
	j = prev_body ? json_loads(prev_body, 0, NULL) : NULL;
	got = json_str(j, "id");
	if (!got || strlen(got) >= idlen || strlen(got) > 200) {
		const char *m = json_str(json_object_get(j, "error"), "message");

		utf8_copy(err, errlen, m ? m : "no id in the reply", "...");
		json_decref(j);
		return -EBADMSG;
	}
	snprintf(id, idlen, "%s", got);
	json_decref(j);
	return 0;
}

static int poll_req(const char *base, const char *id, struct batch_http *req)
{
	char url[1024];

	snprintf(url, sizeof(url), "%s/messages/batches/%s", base, id);
	return batch_http_set(req, "GET", url, NULL, NULL, 0);
}

static int poll_parse(const char *base, const char *body, size_t len, struct batch_poll *p, char *err, size_t errlen)
{
	json_t *j = json_loadb(body, len, 0, NULL), *rc;
	const char *st = json_str(j, "processing_status"), *url = json_str(j, "results_url");
	int64_t proc, ok, bad, canc, exp;

	(void)base;
	memset(p, 0, sizeof(*p));
	if (!st) {
		snprintf(err, errlen, "batch reply without a processing_status");
		json_decref(j);
		return -EBADMSG;
	}
	utf8_copy(p->status, sizeof(p->status), st, NULL);
	rc = json_object_get(j, "request_counts");
	proc = json_integer_value(json_object_get(rc, "processing"));
	ok = json_integer_value(json_object_get(rc, "succeeded"));
	bad = json_integer_value(json_object_get(rc, "errored"));
	canc = json_integer_value(json_object_get(rc, "canceled"));
	exp = json_integer_value(json_object_get(rc, "expired"));
	p->total = proc + ok + bad + canc + exp;
	p->done = ok + bad + canc + exp;
	p->failed = bad + canc + exp;
	p->ended = strcmp(st, "ended") == 0;
	if (p->ended && url && strlen(url) < sizeof(p->result_url[0]))
		snprintf(p->result_url[0], sizeof(p->result_url[0]), "%s", url);
	json_decref(j);
	return 0;
}

static int cancel_req(const char *base, const char *id, struct batch_http *req)
{
	char url[1024];

	snprintf(url, sizeof(url), "%s/messages/batches/%s/cancel", base, id);
	return batch_http_set(req, "POST", url, NULL, "{}", 2);
}

static int result_parse(const char *line, size_t len, struct batch_result *r)
{
	json_t *j = json_loadb(line, len, 0, NULL), *res, *e;
	const char *cid = json_str(j, "custom_id"), *type;
	int rc = -EBADMSG;

	memset(r, 0, sizeof(*r));
	res = json_object_get(j, "result");
	type = json_str(res, "type");
	if (!cid || !cid[0] || strlen(cid) >= sizeof(r->custom_id) || !type)
		goto out;
	snprintf(r->custom_id, sizeof(r->custom_id), "%s", cid);
	rc = 0;
	if (strcmp(type, "succeeded") == 0 && json_is_object(json_object_get(res, "message"))) {
		r->kind = BATCH_SUCCEEDED;
		r->status = 200;
		r->body = json_dumps(json_object_get(res, "message"), JSON_COMPACT);
		rc = r->body ? 0 : -ENOMEM;
	} else if (strcmp(type, "expired") == 0) {
		r->kind = BATCH_EXPIRED;
		snprintf(r->msg, sizeof(r->msg), "the batch expired before this request ran");
	} else if (strcmp(type, "canceled") == 0) {
		r->kind = BATCH_CANCELED;
		snprintf(r->msg, sizeof(r->msg), "the batch was canceled before this request ran");
	} else {
		const char *code, *msg;

		r->kind = BATCH_ERRORED;
		/* {"type":"error","error":{"type":"...","message":"..."}} */
		e = json_object_get(res, "error");
		if (json_is_object(json_object_get(e, "error")))
			e = json_object_get(e, "error");
		code = json_str(e, "type");
		msg = json_str(e, "message");
		utf8_copy(r->code, sizeof(r->code), code ? code : "", NULL);
		utf8_copy(r->msg, sizeof(r->msg), msg ? msg : "request failed in the batch", "...");
	}
out:
	json_decref(j);
	return rc;
}

const struct batch_api batch_anthropic = {
	.name = "anthropic",
	.max_requests = ANTHROPIC_BATCH_MAX_REQUESTS,
	.max_bytes = ANTHROPIC_BATCH_MAX_BYTES,
	.line_append = line_append,
	.submit_step = submit_step,
	.poll_req = poll_req,
	.poll_parse = poll_parse,
	.cancel_req = cancel_req,
	.result_parse = result_parse,
};
