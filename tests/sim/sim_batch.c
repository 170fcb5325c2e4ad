/* medthink-sim: Anthropic Messages and the batch APIs (sim_batch.h). */
#include "tests/sim/sim_batch.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"

#define MAX_FILES 4096
#define MAX_BATCHES 4096
#define DUMP (JSON_COMPACT)

enum rkind { SR_OK = 0, SR_ERR, SR_EXPIRED, SR_CANCELED };

struct sreq {
	char *cid;
	char *reply;   /* JSON of the reply body (SR_OK) */
	enum rkind kind;
};

struct sbatch {
	char id[48];
	bool anthropic;
	char input_file[48];
	int phase;     /* openai: 0 validating 1 in_progress 2 finalizing 3 ended; anthropic: 0 in_progress 3 ended */
	bool cancel, failed;
	char fail_msg[200];
	struct sreq *reqs;
	size_t n;
	char *output, *errors; /* result documents once ended */
	char out_id[48], err_id[48];
};

static struct {
	char *files[MAX_FILES];
	size_t nfiles;
	struct sbatch *batches[MAX_BATCHES];
	size_t nbatches;
	json_t *cids;     /* custom_id -> times submitted */
	json_t *bodies;   /* body hash -> times submitted */
	int64_t requests, cancels, max_cid, max_body, messages;
	bool hold, slow_finalizing;
	int64_t expire_next, error_next, overloaded_next, rate_limited_next;
} S;

static void respond(struct http_req *req, int status, json_t *j)
{
	char *b = j ? json_dumps(j, DUMP) : NULL;

	json_decref(j);
	if (!b) {
		http_respond_error(req, 500, "internal", "simulator out of memory", NULL);
		return;
	}
	http_respond(req, status, "application/json", b, strlen(b));
	free(b);
}

static void anth_error(struct http_req *req, int status, const char *type, const char *msg)
{
	respond(req, status, json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type, "message", msg));
}

static bool key_ok(const struct sim_batch_env *env, struct http_req *req, bool anthropic)
{
	const char *v;

	if (!env->require_key[0])
		return true;
	if (anthropic) {
		v = http_req_header(req, "x-api-key");
		if (v && strcmp(v, env->require_key) == 0)
			return true;
		anth_error(req, 401, "authentication_error", "invalid x-api-key (simulated by medthink-sim)");
		return false;
	}
	v = http_req_header(req, "Authorization");
	if (v && strncmp(v, "Bearer ", 7) == 0 && strcmp(v + 7, env->require_key) == 0)
		return true;
	respond(req, 401, json_pack("{s:{s:s, s:s}}", "error", "message", "Incorrect API key (simulated)", "code",
				    "invalid_api_key"));
	return false;
}

/* The text of the last user turn (string or text parts). */
static char *last_user(json_t *msgs)
{
	json_t *m, *c, *part;
	size_t i, k;
	char *out = NULL;

	json_array_foreach(msgs, i, m)
	{
		const char *role = json_string_value(json_object_get(m, "role"));
		struct buf b;

		if (!role || strcmp(role, "user") != 0)
			continue;
		c = json_object_get(m, "content");
		free(out);
		if (json_is_string(c)) {
			out = strdup(json_string_value(c));
			continue;
		}
		buf_init(&b, 32u << 20);
		json_array_foreach(c, k, part)
		{
			const char *t = json_string_value(json_object_get(part, "text"));

			if (t) {
				if (b.len)
					buf_puts(&b, "\n");
				buf_puts(&b, t);
			}
		}
		out = b.base ? buf_take(&b) : strdup("");
	}
	return out;
}

/* The reply text for a chat body (either wire format), as sim.c's teacher. */
static char *reply_text(const struct sim_batch_env *env, json_t *body, bool json_mode, size_t *ptok)
{
	char *u = last_user(json_object_get(body, "messages"));
	struct sim_prompt pr;
	bool is_json;
	char *content;

	if (!u)
		return NULL;
	sim_prompt_parse(u, &pr);
	content = sim_reply(&pr, sim_hash(u, strlen(u), env->knobs.seed), &env->knobs, NULL, json_mode, &is_json);
	sim_prompt_free(&pr);
	*ptok = strlen(u) / 4 + 1;
	free(u);
	return content;
}

static json_t *anth_message(const struct sim_batch_env *env, json_t *params)
{
	size_t ptok = 0;
	char *t = reply_text(env, params, false, &ptok);
	json_t *m;

	if (!t)
		return NULL;
	m = json_pack("{s:s, s:s, s:s, s:s?, s:[{s:s, s:s}], s:s, s:{s:I, s:I}}", "id", "msg_sim", "type", "message",
		      "role", "assistant", "model", json_string_value(json_object_get(params, "model")), "content",
		      "type", "text", "text", t, "stop_reason", "end_turn", "usage", "input_tokens", (json_int_t)ptok,
		      "output_tokens", (json_int_t)(strlen(t) / 4 + 1));
	free(t);
	return m;
}

static json_t *oai_completion(const struct sim_batch_env *env, json_t *body)
{
	const char *rft = json_string_value(json_object_get(json_object_get(body, "response_format"), "type"));
	size_t ptok = 0;
	char *t = reply_text(env, body, rft != NULL, &ptok);
	json_t *m;

	if (!t)
		return NULL;
	m = json_pack("{s:s, s:s, s:s?, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:I, s:I, s:I}}", "id", "chatcmpl-sim-batch",
		      "object", "chat.completion", "model", json_string_value(json_object_get(body, "model")), "choices",
		      "index", 0, "message", "role", "assistant", "content", t, "finish_reason", "stop", "usage",
		      "prompt_tokens", (json_int_t)ptok, "completion_tokens", (json_int_t)(strlen(t) / 4 + 1),
		      "total_tokens", (json_int_t)(ptok + strlen(t) / 4 + 1));
	free(t);
	return m;
}

/* ---- counts ----------------------------------------------------------------- */

static void count(json_t *table, const char *k, int64_t *max)
{
	int64_t n = json_integer_value(json_object_get(table, k)) + 1;

	json_object_set_new(table, k, json_integer(n));
	if (n > *max)
		*max = n;
}

static void count_request(const char *cid, json_t *body)
{
	char *b = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	char h[32];

	S.requests++;
	count(S.cids, cid, &S.max_cid);
	snprintf(h, sizeof(h), "%016" PRIx64, b ? sim_hash(b, strlen(b), 0) : 0);
	count(S.bodies, h, &S.max_body);
	free(b);
}

static enum rkind draw_kind(void)
{
	if (S.expire_next > 0) {
		S.expire_next--;
		return SR_EXPIRED;
	}
	if (S.error_next > 0) {
		S.error_next--;
		return SR_ERR;
	}
	return SR_OK;
}

/* ---- Anthropic Messages --------------------------------------------------------- */

static void handle_messages(const struct sim_batch_env *env, struct http_req *req, const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL), *m;

	S.messages++;
	http_req_add_header(req, "anthropic-ratelimit-requests-remaining", "1000");
	http_req_add_header(req, "anthropic-ratelimit-tokens-remaining", "1000000");
	if (S.overloaded_next > 0) {
		S.overloaded_next--;
		json_decref(j);
		anth_error(req, 529, "overloaded_error", "Overloaded (simulated by medthink-sim)");
		return;
	}
	if (S.rate_limited_next > 0) {
		S.rate_limited_next--;
		json_decref(j);
		http_req_add_header(req, "retry-after", "0");
		anth_error(req, 429, "rate_limit_error", "Rate limited (simulated by medthink-sim)");
		return;
	}
	if (!json_is_object(j) || !json_is_array(json_object_get(j, "messages")) ||
	    !json_is_integer(json_object_get(j, "max_tokens"))) {
		json_decref(j);
		anth_error(req, 400, "invalid_request_error", "messages and max_tokens are required");
		return;
	}
	m = anth_message(env, j);
	json_decref(j);
	if (!m) {
		anth_error(req, 400, "invalid_request_error", "no user message");
		return;
	}
	respond(req, 200, m);
}

/* ---- batches ---------------------------------------------------------------------- */

static struct sbatch *batch_find(const char *id)
{
	for (size_t i = 0; i < S.nbatches; i++)
		if (strcmp(S.batches[i]->id, id) == 0)
			return S.batches[i];
	return NULL;
}

static struct sbatch *batch_add(bool anthropic)
{
	struct sbatch *b;

	if (S.nbatches >= MAX_BATCHES || !(b = calloc(1, sizeof(*b))))
		return NULL;
	b->anthropic = anthropic;
	snprintf(b->id, sizeof(b->id), "%s%zu", anthropic ? "msgbatch_sim_" : "batch_sim_", S.nbatches + 1);
	S.batches[S.nbatches++] = b;
	return b;
}

static bool req_add(struct sbatch *b, const char *cid, char *reply, enum rkind k)
{
	struct sreq *v = realloc(b->reqs, (b->n + 1) * sizeof(*v));

	if (!v)
		return false;
	b->reqs = v;
	v[b->n].cid = strdup(cid);
	v[b->n].reply = reply;
	v[b->n].kind = k;
	b->n++;
	return true;
}

/* The result documents, built when the batch ends. */
static void batch_end(struct sbatch *b)
{
	struct buf out, err;
	size_t i;

	buf_init(&out, 512u << 20);
	buf_init(&err, 512u << 20);
	for (i = 0; i < b->n; i++) {
		struct sreq *r = &b->reqs[i];
		enum rkind k = b->cancel && r->kind == SR_OK ? SR_CANCELED : r->kind;

		if (b->anthropic) {
			if (k == SR_OK)
				buf_printf(&out, "{\"custom_id\":\"%s\",\"result\":{\"type\":\"succeeded\",\"message\":%s}}\n",
					   r->cid, r->reply);
			else if (k == SR_ERR)
				buf_printf(&out,
					   "{\"custom_id\":\"%s\",\"result\":{\"type\":\"errored\",\"error\":{\"type\":"
					   "\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"simulated error\"}}}}\n",
					   r->cid);
			else
				buf_printf(&out, "{\"custom_id\":\"%s\",\"result\":{\"type\":\"%s\"}}\n", r->cid,
					   k == SR_EXPIRED ? "expired" : "canceled");
			continue;
		}
		if (k == SR_OK)
			buf_printf(&out,
				   "{\"id\":\"batch_req_%zu\",\"custom_id\":\"%s\",\"response\":{\"status_code\":200,"
				   "\"request_id\":\"req_sim\",\"body\":%s},\"error\":null}\n",
				   i, r->cid, r->reply);
		else if (k == SR_ERR)
			buf_printf(&err,
				   "{\"id\":\"batch_req_%zu\",\"custom_id\":\"%s\",\"response\":{\"status_code\":500,"
				   "\"body\":{\"error\":{\"message\":\"simulated error\",\"type\":\"server_error\"}}},"
				   "\"error\":null}\n",
				   i, r->cid);
		else if (k == SR_EXPIRED)
			buf_printf(&err,
				   "{\"id\":\"batch_req_%zu\",\"custom_id\":\"%s\",\"response\":null,\"error\":{\"code\":"
				   "\"batch_expired\",\"message\":\"This request could not be executed before the "
				   "completion window expired.\"}}\n",
				   i, r->cid);
	}
	if (!b->anthropic) {
		if (out.len && S.nfiles < MAX_FILES) {
			S.files[S.nfiles++] = buf_take(&out);
			snprintf(b->out_id, sizeof(b->out_id), "file-sim-%zu", S.nfiles);
		}
		if (err.len && S.nfiles < MAX_FILES) {
			S.files[S.nfiles++] = buf_take(&err);
			snprintf(b->err_id, sizeof(b->err_id), "file-sim-%zu", S.nfiles);
		}
	} else {
		b->output = out.base ? buf_take(&out) : strdup("");
	}
	buf_free(&out);
	buf_free(&err);
	b->phase = 3;
}

static void advance(struct sbatch *b)
{
	if (b->phase >= 3)
		return;
	if (b->failed) {
		b->phase = 3;
		return;
	}
	if (b->cancel) {
		batch_end(b);
		return;
	}
	if (b->anthropic) {
		if (!S.hold)
			batch_end(b);
		return;
	}
	if (b->phase == 0)
		b->phase = 1;
	else if (b->phase == 1 && !S.hold)
		b->phase = S.slow_finalizing ? 2 : 3;
	else if (b->phase == 2)
		b->phase = 3;
	if (b->phase == 3)
		batch_end(b);
}

static json_t *batch_json(const struct sim_batch_env *env, struct sbatch *b)
{
	int64_t ok = 0, bad = 0, exp = 0, canc = 0;
	bool any_exp = false;

	for (size_t i = 0; i < b->n && b->phase == 3; i++) {
		enum rkind k = b->cancel && b->reqs[i].kind == SR_OK ? SR_CANCELED : b->reqs[i].kind;

		ok += k == SR_OK;
		bad += k == SR_ERR;
		exp += k == SR_EXPIRED;
		canc += k == SR_CANCELED;
		any_exp |= k == SR_EXPIRED;
	}
	if (b->anthropic) {
		char url[256];

		snprintf(url, sizeof(url), "http://%s:%d/v1/messages/batches/%s/results", env->host, env->port, b->id);
		return json_pack("{s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:s?}", "id", b->id, "type",
				 "message_batch", "processing_status",
				 b->phase == 3 ? "ended" : b->cancel ? "canceling" : "in_progress", "request_counts",
				 "processing", (json_int_t)(b->phase == 3 ? 0 : (int64_t)b->n), "succeeded", (json_int_t)ok,
				 "errored", (json_int_t)bad, "canceled", (json_int_t)canc, "expired", (json_int_t)exp,
				 "results_url", b->phase == 3 ? url : NULL);
	}
	{
		static const char *const names[] = { "validating", "in_progress", "finalizing", "completed" };
		const char *st = names[b->phase];

		if (b->phase == 3 && b->failed)
			st = "failed";
		else if (b->phase == 3 && b->cancel)
			st = "cancelled";
		else if (b->phase < 3 && b->cancel)
			st = "cancelling";
		else if (b->phase == 3 && any_exp)
			st = "expired";
		return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:{s:I, s:I, s:I}}", "id", b->id, "object",
				 "batch", "endpoint", "/v1/chat/completions", "input_file_id", b->input_file,
				 "completion_window", "24h", "status", st, "output_file_id",
				 b->out_id[0] ? b->out_id : NULL, "error_file_id", b->err_id[0] ? b->err_id : NULL,
				 "request_counts", "total", (json_int_t)b->n, "completed",
				 (json_int_t)(b->phase == 3 ? ok : 0), "failed", (json_int_t)(bad + exp));
	}
}

static void handle_file_upload(struct http_req *req, const char *body, size_t len)
{
	const char *ct = http_req_header(req, "Content-Type"), *bd, *p, *start, *end;
	char boundary[128];
	size_t bl;

	if (!ct || !(bd = strstr(ct, "boundary="))) {
		respond(req, 400, json_pack("{s:{s:s}}", "error", "message", "multipart body expected"));
		return;
	}
	snprintf(boundary, sizeof(boundary), "\r\n--%s", bd + 9);
	bl = strlen(boundary);
	p = memmem(body, len, "name=\"purpose\"", 14);
	if (!p || !memmem(p, len - (size_t)(p - body), "batch", 5)) {
		respond(req, 400, json_pack("{s:{s:s}}", "error", "message", "purpose must be batch"));
		return;
	}
	p = memmem(body, len, "name=\"file\"", 11);
	start = p ? memmem(p, len - (size_t)(p - body), "\r\n\r\n", 4) : NULL;
	if (!start) {
		respond(req, 400, json_pack("{s:{s:s}}", "error", "message", "no file part"));
		return;
	}
	start += 4;
	end = memmem(start, len - (size_t)(start - body), boundary, bl);
	if (!end || S.nfiles >= MAX_FILES) {
		respond(req, 400, json_pack("{s:{s:s}}", "error", "message", "unterminated file part"));
		return;
	}
	S.files[S.nfiles++] = strndup(start, (size_t)(end - start));
	{
		char id[48];

		snprintf(id, sizeof(id), "file-sim-%zu", S.nfiles);
		respond(req, 200, json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "file", "bytes",
					    (json_int_t)(end - start), "purpose", "batch"));
	}
}

static const char *file_get(const char *id)
{
	size_t n;

	if (sscanf(id, "file-sim-%zu", &n) != 1 || n == 0 || n > S.nfiles)
		return NULL;
	return S.files[n - 1];
}

static void handle_oai_create(const struct sim_batch_env *env, struct http_req *req, const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *fid = json_string_value(json_object_get(j, "input_file_id")), *file, *p, *nl;
	struct sbatch *b;

	file = fid ? file_get(fid) : NULL;
	if (!file || !json_is_string(json_object_get(j, "endpoint")) ||
	    strcmp(json_string_value(json_object_get(j, "completion_window")), "24h") != 0 || !(b = batch_add(false))) {
		json_decref(j);
		respond(req, 400, json_pack("{s:{s:s}}", "error", "message", "bad batch request"));
		return;
	}
	snprintf(b->input_file, sizeof(b->input_file), "%s", fid);
	for (p = file; *p; p = nl + 1) {
		json_t *line, *rb;
		const char *cid;

		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p);
		line = json_loadb(p, (size_t)(nl - p), 0, NULL);
		cid = json_string_value(json_object_get(line, "custom_id"));
		rb = json_object_get(line, "body");
		if (!cid || !json_is_object(rb) || strcmp(json_string_value(json_object_get(line, "method")), "POST") != 0) {
			if (nl > p) {
				b->failed = true;
				snprintf(b->fail_msg, sizeof(b->fail_msg), "invalid line");
			}
		} else {
			enum rkind k = draw_kind();
			json_t *reply = k == SR_OK ? oai_completion(env, rb) : NULL;

			count_request(cid, rb);
			req_add(b, cid, reply ? json_dumps(reply, DUMP) : NULL, reply || k != SR_OK ? k : SR_ERR);
			json_decref(reply);
		}
		json_decref(line);
		if (!*nl)
			break;
	}
	json_decref(j);
	respond(req, 200, batch_json(env, b));
}

static void handle_anth_create(const struct sim_batch_env *env, struct http_req *req, const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL), *reqs = json_object_get(j, "requests"), *r;
	struct sbatch *b;
	size_t i;

	if (!json_is_array(reqs) || json_array_size(reqs) == 0 || !(b = batch_add(true))) {
		json_decref(j);
		anth_error(req, 400, "invalid_request_error", "requests must be a non-empty array");
		return;
	}
	json_array_foreach(reqs, i, r)
	{
		const char *cid = json_string_value(json_object_get(r, "custom_id"));
		json_t *params = json_object_get(r, "params");
		enum rkind k;
		json_t *reply;

		if (!cid || !json_is_object(params) || !json_is_integer(json_object_get(params, "max_tokens"))) {
			json_decref(j);
			anth_error(req, 400, "invalid_request_error", "each request needs custom_id and params.max_tokens");
			b->failed = true;
			b->phase = 3;
			return;
		}
		k = draw_kind();
		reply = k == SR_OK ? anth_message(env, params) : NULL;
		count_request(cid, params);
		req_add(b, cid, reply ? json_dumps(reply, DUMP) : NULL, reply || k != SR_OK ? k : SR_ERR);
		json_decref(reply);
	}
	json_decref(j);
	respond(req, 200, batch_json(env, b));
}

static json_t *stats(void)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:O, s:b}", "simulator", "medthink-sim batch APIs",
			 "messages_total", (json_int_t)S.messages,
			 "batches_total", (json_int_t)S.nbatches, "requests_total", (json_int_t)S.requests,
			 "max_submissions_per_custom_id", (json_int_t)S.max_cid, "max_submissions_per_body",
			 (json_int_t)S.max_body, "cancels", (json_int_t)S.cancels, "bodies", S.bodies, "hold", S.hold);
}

static void handle_config(struct http_req *req, const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL), *v;

	if (!json_is_object(j)) {
		json_decref(j);
		http_respond_error(req, 400, "bad_request", "a JSON object expected", NULL);
		return;
	}
	if ((v = json_object_get(j, "hold")))
		S.hold = json_is_true(v);
	if ((v = json_object_get(j, "slow_finalizing")))
		S.slow_finalizing = json_is_true(v);
	if ((v = json_object_get(j, "expire_next")))
		S.expire_next = json_integer_value(v);
	if ((v = json_object_get(j, "error_next")))
		S.error_next = json_integer_value(v);
	if ((v = json_object_get(j, "overloaded_next")))
		S.overloaded_next = json_integer_value(v);
	if ((v = json_object_get(j, "rate_limited_next")))
		S.rate_limited_next = json_integer_value(v);
	json_decref(j);
	respond(req, 200, stats());
}

bool sim_batch_route(const struct sim_batch_env *env, struct http_req *req, const char *method, const char *path,
		     const char *body, size_t len)
{
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
	char id[64], tail[32];
	struct sbatch *b;

	if (!S.cids) {
		S.cids = json_object();
		S.bodies = json_object();
	}
	if (strcmp(path, "/sim/batches") == 0 && get) {
		respond(req, 200, stats());
		return true;
	}
	if (strcmp(path, "/sim/batch-config") == 0 && post) {
		handle_config(req, body, len);
		return true;
	}
	if (strcmp(path, "/v1/messages") == 0 && post) {
		if (key_ok(env, req, true))
			handle_messages(env, req, body, len);
		return true;
	}
	if (strcmp(path, "/v1/messages/batches") == 0 && post) {
		if (key_ok(env, req, true))
			handle_anth_create(env, req, body, len);
		return true;
	}
	if (strcmp(path, "/v1/files") == 0 && post) {
		if (key_ok(env, req, false))
			handle_file_upload(req, body, len);
		return true;
	}
	if (strcmp(path, "/v1/batches") == 0 && post) {
		if (key_ok(env, req, false))
			handle_oai_create(env, req, body, len);
		return true;
	}
	tail[0] = '\0';
	if (sscanf(path, "/v1/files/%63[^/]/%31s", id, tail) == 2 && strcmp(tail, "content") == 0 && get) {
		const char *f = file_get(id);

		if (!key_ok(env, req, false))
			return true;
		if (!f)
			respond(req, 404, json_pack("{s:{s:s}}", "error", "message", "no such file"));
		else
			http_respond(req, 200, "application/jsonl", f, strlen(f));
		return true;
	}
	tail[0] = '\0';
	if (sscanf(path, "/v1/messages/batches/%63[^/]/%31s", id, tail) >= 1) {
		bool anth = true;

		if (!key_ok(env, req, anth))
			return true;
		b = batch_find(id);
		if (!b || !b->anthropic) {
			anth_error(req, 404, "not_found_error", "no such batch");
		} else if (!tail[0] && get) {
			advance(b);
			respond(req, 200, batch_json(env, b));
		} else if (strcmp(tail, "results") == 0 && get && b->phase == 3) {
			http_respond(req, 200, "application/binary", b->output, strlen(b->output));
		} else if (strcmp(tail, "cancel") == 0 && post) {
			S.cancels++;
			b->cancel = true;
			respond(req, 200, batch_json(env, b));
		} else {
			anth_error(req, 400, "invalid_request_error", "not available");
		}
		return true;
	}
	tail[0] = '\0';
	if (sscanf(path, "/v1/batches/%63[^/]/%31s", id, tail) >= 1) {
		if (!key_ok(env, req, false))
			return true;
		b = batch_find(id);
		if (!b || b->anthropic) {
			respond(req, 404, json_pack("{s:{s:s}}", "error", "message", "no such batch"));
		} else if (!tail[0] && get) {
			advance(b);
			respond(req, 200, batch_json(env, b));
		} else if (strcmp(tail, "cancel") == 0 && post) {
			S.cancels++;
			b->cancel = true;
			respond(req, 200, batch_json(env, b));
		} else {
			respond(req, 400, json_pack("{s:{s:s}}", "error", "message", "not available"));
		}
		return true;
	}
	return false;
}
