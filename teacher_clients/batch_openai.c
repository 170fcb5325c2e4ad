/* The OpenAI Batch API as a batch row: the requests are a JSONL file
 * uploaded with POST /files (purpose "batch", multipart), then
 * POST /batches {input_file_id, endpoint, completion_window:"24h"}; a batch
 * is polled with GET /batches/{id} and its output and error files are read
 * from GET /files/{id}/content. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "teacher_clients/batch.h"

/* The documented caps of one input file. */
#define OPENAI_BATCH_MAX_REQUESTS 50000
#define OPENAI_BATCH_MAX_BYTES (200u * 1024 * 1024)
#define BOUNDARY "medthink-batch-7f3c9a1e5b2d4c68"

static int line_append(struct buf *out, const char *custom_id, const char *path, const char *body)
{
	json_t *a = json_string(custom_id), *b = json_string(path);
	char *cid = a ? json_dumps(a, JSON_ENCODE_ANY) : NULL;
	char *url = b ? json_dumps(b, JSON_ENCODE_ANY) : NULL;
	int rc = -ENOMEM;

	json_decref(a);
	json_decref(b);
	/* The body is already the canonical JSON text: spliced, not re-parsed. */
	if (cid && url)
		rc = buf_printf(out, "{\"custom_id\":%s,\"method\":\"POST\",\"url\":%s,\"body\":%s}\n", cid, url, body);
	free(cid);
	free(url);
	return rc;
}

static const char *json_str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void error_text(const char *body, char *err, size_t errlen)
{
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	const char *m = json_str(json_object_get(j, "error"), "message");

	utf8_copy(err, errlen, m ? m : "no id in the reply", "...");
	json_decref(j);
}

static int submit_step(int step, const char *base, const char *path, const struct buf *lines, size_t n,
		       const char *prev_body, struct batch_http *req, char *id, size_t idlen, char *err,
		       size_t errlen)
{
	char url[1024];
	json_t *j = NULL;
	const char *got;
	int rc = -EBADMSG;

	(void)n;
	if (step == 0) {
		struct buf b;

		buf_init(&b, OPENAI_BATCH_MAX_BYTES + 4096);
		rc = buf_printf(&b,
				"--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
				"--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"file\"; "
				"filename=\"medthink-batch.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n");
		if (rc == 0)
			rc = buf_append(&b, lines->base, lines->len);
		if (rc == 0)
			rc = buf_printf(&b, "\r\n--" BOUNDARY "--\r\n");
		snprintf(url, sizeof(url), "%s/files", base);
		if (rc == 0)
			rc = batch_http_set(req, "POST", url, "multipart/form-data; boundary=" BOUNDARY, b.base, b.len);
		buf_free(&b);
		return rc < 0 ? rc : 1;
	}
	j = prev_body ? json_loads(prev_body, 0, NULL) : NULL;
	got = json_str(j, "id");
	if (!got || strlen(got) >= idlen || strlen(got) > 200) {
		error_text(prev_body, err, errlen);
		goto out;
	}
	if (step == 1) {
		json_t *q = json_pack("{s:s, s:s, s:s}", "input_file_id", got, "endpoint", path, "completion_window",
				      "24h");
		char *s = q ? json_dumps(q, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

		json_decref(q);
		snprintf(url, sizeof(url), "%s/batches", base);
		rc = s ? batch_http_set(req, "POST", url, NULL, s, strlen(s)) : -ENOMEM;
		free(s);
		rc = rc < 0 ? rc : 1;
		goto out;
	}
	snprintf(id, idlen, "%s", got);
	rc = 0;
out:
	json_decref(j);
	return rc;
}

static int poll_req(const char *base, const char *id, struct batch_http *req)
{
	char url[1024];

	snprintf(url, sizeof(url), "%s/batches/%s", base, id);
	return batch_http_set(req, "GET", url, NULL, NULL, 0);
}

static int poll_parse(const char *base, const char *body, size_t len, struct batch_poll *p, char *err, size_t errlen)
{
	json_t *j = json_loadb(body, len, 0, NULL), *rc;
	const char *st = json_str(j, "status"), *out_id, *err_id;

	memset(p, 0, sizeof(*p));
	if (!st) {
		snprintf(err, errlen, "batch reply without a status");
		json_decref(j);
		return -EBADMSG;
	}
	utf8_copy(p->status, sizeof(p->status), st, NULL);
	rc = json_object_get(j, "request_counts");
	p->total = json_integer_value(json_object_get(rc, "total"));
	p->done = json_integer_value(json_object_get(rc, "completed"));
	p->failed = json_integer_value(json_object_get(rc, "failed"));
	p->ended = strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 || strcmp(st, "expired") == 0 ||
		   strcmp(st, "cancelled") == 0;
	out_id = json_str(j, "output_file_id");
	err_id = json_str(j, "error_file_id");
	if (out_id && strlen(out_id) < 200)
		snprintf(p->result_url[0], sizeof(p->result_url[0]), "%s/files/%s/content", base, out_id);
	if (err_id && strlen(err_id) < 200)
		snprintf(p->result_url[1], sizeof(p->result_url[1]), "%s/files/%s/content", base, err_id);
	json_decref(j);
	return 0;
}

static int cancel_req(const char *base, const char *id, struct batch_http *req)
{
	char url[1024];

	snprintf(url, sizeof(url), "%s/batches/%s/cancel", base, id);
	return batch_http_set(req, "POST", url, NULL, "{}", 2);
}

static int result_parse(const char *line, size_t len, struct batch_result *r)
{
	json_t *j = json_loadb(line, len, 0, NULL), *resp, *e, *b;
	const char *cid = json_str(j, "custom_id");
	int rc = -EBADMSG;

	memset(r, 0, sizeof(*r));
	if (!cid || !cid[0] || strlen(cid) >= sizeof(r->custom_id))
		goto out;
	snprintf(r->custom_id, sizeof(r->custom_id), "%s", cid);
	resp = json_object_get(j, "response");
	e = json_object_get(j, "error");
	b = json_object_get(resp, "body");
	r->status = (long)json_integer_value(json_object_get(resp, "status_code"));
	if (json_is_object(e)) {
		const char *code = json_str(e, "code"), *msg = json_str(e, "message");

		utf8_copy(r->code, sizeof(r->code), code ? code : "", NULL);
		utf8_copy(r->msg, sizeof(r->msg), msg ? msg : "error", "...");
		r->kind = code && strcmp(code, "batch_expired") == 0 ? BATCH_EXPIRED
			: code && strcmp(code, "batch_cancelled") == 0 ? BATCH_CANCELED
								       : BATCH_ERRORED;
		rc = 0;
		goto out;
	}
	if (r->status >= 200 && r->status < 300 && json_is_object(b)) {
		r->kind = BATCH_SUCCEEDED;
		r->body = json_dumps(b, JSON_COMPACT);
		rc = r->body ? 0 : -ENOMEM;
		goto out;
	}
	r->kind = BATCH_ERRORED;
	{
		json_t *be = json_object_get(b, "error");
		const char *code = json_str(be, "code") ? json_str(be, "code") : json_str(be, "type");
		const char *msg = json_str(be, "message");

		utf8_copy(r->code, sizeof(r->code), code ? code : "", NULL);
		utf8_copy(r->msg, sizeof(r->msg), msg ? msg : "request failed in the batch", "...");
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

const struct batch_api batch_openai = {
	.name = "openai",
	.max_requests = OPENAI_BATCH_MAX_REQUESTS,
	.max_bytes = OPENAI_BATCH_MAX_BYTES,
	.line_append = line_append,
	.submit_step = submit_step,
	.poll_req = poll_req,
	.poll_parse = poll_parse,
	.cancel_req = cancel_req,
	.result_parse = result_parse,
};
