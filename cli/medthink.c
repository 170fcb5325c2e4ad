/* medthink: the command-line client of medthinkd. It talks to the daemon only
 * through the socket API (HTTP/1.1 over a Unix socket, JSON bodies; SPEC 6).
 * Commands are rows of one table, git.c style. Exit codes: 0 success,
 * 1 failure (one line on stderr), 2 usage error. */

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/evalreport.h"
#include "cli/http.h"
#include "cli/images.h"
#include "cli/plot.h"
#include "cli/masks.h"
#include "cli/render.h"
#include "cli/sse.h"
#include "common/buf.h"
#include "common/utf8.h"

#ifndef MEDTHINK_VERSION
#define MEDTHINK_VERSION "0.1.0"
#endif

#define DEFAULT_SOCKET "./var/medthinkd.sock"
#define START_HINT "medthinkd -c conf/medthinkd.conf"
#define MAX_REPLY (64u * 1024 * 1024) /* a buffered JSON reply */
#define MAX_ERROR_BODY (64u * 1024)   /* an error reply to a streamed request */
#define MAX_SPEC (1024u * 1024)       /* a job spec file */
#define CALL_TIMEOUT_S 120            /* ordinary calls; streams have none */
#define WATCH_INTERVAL_NS 500000000L
#define EXIT_USAGE 2
#define STREAM_STOP 1                 /* a sink's "enough, not an error" */

/* The temp file of an export in progress, removed if we are interrupted. */
static char export_tmp[4096];

struct cmd;

struct ctx {
	const char *sock;
	bool json;
	const struct cmd *cmd;
	struct args *args;
};

struct cmd {
	const char *name;
	int (*fn)(struct ctx *c);
	const struct args_opt *opts;
	int min_pos, max_pos;
	const char *usage; /* after "medthink " */
	const char *help;  /* a few lines on what it does */
};

/* ---- small helpers ---- */

static void print_json(const json_t *v, bool compact);

/* --json: every error the CLI prints is also a JSON object on stdout, the
 * daemon's own {"error":{...}} when it sent one, else one of ours. */
static bool json_errors;

/* Prints {"error":{"code":CODE,"message":MSG}} (with "status" when > 0). */
static void json_error_print(const char *code, const char *msg, int status)
{
	json_t *o;

	if (!json_errors)
		return;
	o = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
	if (o && status > 0)
		json_object_set_new(json_object_get(o, "error"), "status", json_integer(status));
	if (o)
		print_json(o, false);
	json_decref(o);
	fflush(stdout);
}

/* The error line on stderr, "medthink: CMD: MESSAGE"; with --json also as
 * an object with code (unless code is NULL: the daemon's object is out). */
static void report(const char *cmd, const char *code, int status, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fflush(stdout);
	fprintf(stderr, "medthink: %s%s%s\n", cmd ? cmd : "", cmd ? ": " : "", msg);
	if (code)
		json_error_print(code, msg, status);
}

static void say(const char *cmd, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(const char *cmd, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(cmd, code, 0, fmt, ap);
	va_end(ap);
}

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(c->cmd->name, "failed", 0, fmt, ap);
	va_end(ap);
	return 1;
}

/* fail without the JSON object: the daemon's own was printed. */
static int fail_text(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_text(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(c->cmd->name, NULL, 0, fmt, ap);
	va_end(ap);
	return 1;
}

static int usage_error(const struct cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const struct cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(cmd ? cmd->name : NULL, "usage", 0, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "usage: medthink %s\n", cmd->usage);
	else
		fprintf(stderr, "usage: medthink [-s SOCKET] [--json] COMMAND [ARGS]; see 'medthink help'\n");
	return EXIT_USAGE;
}

/* The reader of stdout went away (`medthink export ... | head`): leave as
 * cat does, killed by SIGPIPE (status 141 in a shell), with no message. */
static void stdout_check(void)
{
	struct pollfd pfd = {STDOUT_FILENO, POLLOUT, 0};
	int e = errno;

	if (!ferror(stdout))
		return;
	if (e == EPIPE || (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR))) {
		if (export_tmp[0])
			unlink(export_tmp);
		signal(SIGPIPE, SIG_DFL);
		raise(SIGPIPE);
		_exit(128 + SIGPIPE);
	}
}

static void print_json(const json_t *v, bool compact)
{
	json_dumpf(v, stdout, compact ? JSON_COMPACT : JSON_INDENT(2));
	fputc('\n', stdout);
}

/* "3" -> "job_3"; anything else as given, escaped for a path segment. */
static int job_path(struct buf *out, const char *job, const char *suffix)
{
	bool digits = job[0] != '\0';
	int rc;

	for (const char *p = job; *p; p++)
		if (*p < '0' || *p > '9')
			digits = false;
	rc = buf_puts(out, digits ? "/v1/jobs/job_" : "/v1/jobs/");
	if (!rc)
		rc = http_query_escape(out, job);
	if (!rc && suffix)
		rc = buf_puts(out, suffix);
	return rc;
}

/* ---- talking to the daemon ---- */

struct reply {
	int status;
	struct buf body;
	struct buf errbody;         /* error reply of a streamed request */
	int (*on_data)(void *ctx, const char *p, size_t n);
	void *data_ctx;
	char partial[512];          /* X-Medthink-Partial: an export still being made */
};

static int reply_header(void *ctx, const char *name, const char *value)
{
	struct reply *r = ctx;

	if (strcasecmp(name, "X-Medthink-Partial") == 0)
		snprintf(r->partial, sizeof(r->partial), "%s", value);
	return 0;
}

static int reply_head(void *ctx, int status, const char *ctype)
{
	struct reply *r = ctx;

	(void)ctype;
	r->status = status;
	return 0;
}

static int reply_body(void *ctx, const char *p, size_t n)
{
	struct reply *r = ctx;

	if (r->on_data && r->status < 300)
		return r->on_data(r->data_ctx, p, n);
	if (r->on_data) {
		/* keep what fits of an error reply, it is only shown */
		size_t room = r->errbody.max - r->errbody.len;

		buf_append(&r->errbody, p, n < room ? n : room);
		return 0;
	}
	return buf_append(&r->body, p, n);
}

static void reply_init(struct reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, MAX_REPLY);
	buf_init(&r->errbody, MAX_ERROR_BODY);
}

static void reply_free(struct reply *r)
{
	buf_free(&r->body);
	buf_free(&r->errbody);
}

static int unreachable(struct ctx *c, int rc, const char *err)
{
	if (rc == -ENAMETOOLONG)
		say(NULL, "unreachable", "socket path %s is too long (at most 107 bytes)", c->sock);
	else
		say(NULL, "unreachable", "cannot reach medthinkd at %s (%s); is it running? start it with: %s", c->sock,
				   err[0] ? err : strerror(-rc), START_HINT);
	return 1;
}

/* Reports a non-2xx reply: the daemon's error object as
 * "CMD: FIELD: MESSAGE (STATUS)", or the start of the body. The daemon
 * validates format names (the CLI keeps no list of them): its bad_format
 * is a usage error, exit 2 with the usage line. */
static int http_failure(struct ctx *c, int status, const char *body, size_t len)
{
	json_t *root = json_loadb(body ? body : "", len, 0, NULL);
	json_t *e = json_object_get(root, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *field = json_string_value(json_object_get(e, "field"));
	const char *code = json_string_value(json_object_get(e, "code"));

	if (c->json && json_is_object(e))
		print_json(root, false);
	if (msg && field && field[0])
		fail_text(c, "%s: %s (%d)", field, msg, status);
	else if (msg)
		fail_text(c, "%s (%d)", msg, status);
	else if (code)
		fail_text(c, "%s (%d)", code, status);
	if (!msg && !code) {
		int n = 0;
		char line[512];

		while ((size_t)n < len && n < 200 && body[n] != '\n' && body[n] != '\r')
			n++;
		snprintf(line, sizeof(line), "the daemon answered %d%s%.*s", status, n ? ": " : "",
			 body ? (int)utf8_prefix(body, len, (size_t)n) : 0, body ? body : "");
		fail_text(c, "%s", line);
		json_error_print("http_error", line, status);
	}
	if (status == 400 && code && strcmp(code, "bad_format") == 0) {
		fprintf(stderr, "usage: medthink %s\n", c->cmd->usage);
		json_decref(root);
		return EXIT_USAGE;
	}
	json_decref(root);
	return 1;
}

/* One request with a buffered JSON reply. Returns 0 with *out set (a JSON
 * value, or NULL for an empty body) or 1 after printing why. */
static int api_call(struct ctx *c, struct http_req *req, json_t **out)
{
	struct http_sink sink = {reply_head, reply_body, NULL, reply_header};
	struct reply r;
	char err[256];
	bool connected;
	int rc, ret = 1;

	*out = NULL;
	reply_init(&r);
	sink.ctx = &r;
	if (!req->timeout_s)
		req->timeout_s = CALL_TIMEOUT_S;
	rc = http_exchange(c->sock, req, &sink, &connected, err, sizeof(err));
	if (rc && !connected) {
		ret = unreachable(c, rc, err);
		goto out;
	}
	if (rc == -ENOBUFS) {
		fail(c, "the daemon's reply is larger than %u bytes", MAX_REPLY);
		goto out;
	}
	if (rc) {
		fail(c, "%s", err[0] ? err : strerror(-rc));
		goto out;
	}
	if (r.status >= 300) {
		ret = http_failure(c, r.status, r.body.base, r.body.len);
		goto out;
	}
	if (r.body.len) {
		json_error_t jerr;

		*out = json_loadb(r.body.base, r.body.len, JSON_DECODE_ANY, &jerr);
		if (!*out) {
			fail(c, "the daemon's reply is not JSON: %s", jerr.text);
			goto out;
		}
	}
	ret = 0;
out:
	reply_free(&r);
	return ret;
}

static int api_get(struct ctx *c, const char *target, json_t **out)
{
	struct http_req req = {.method = "GET", .target = target};

	return api_call(c, &req, out);
}

/* A GET whose 2xx body goes to on_data as it arrives (export, events).
 * Returns 0 when the body ended (or on_data said STREAM_STOP), 1 after
 * printing why. *data_err lets on_data report its own failure. */
static int api_stream(struct ctx *c, const char *target, int (*on_data)(void *, const char *, size_t),
		      void *data_ctx, const char **data_err, char *partial, size_t partial_len)
{
	struct http_sink sink = {reply_head, reply_body, NULL, reply_header};
	struct http_req req = {.method = "GET", .target = target};
	struct reply r;
	char err[256];
	bool connected;
	int rc, ret = 1;

	reply_init(&r);
	r.on_data = on_data;
	r.data_ctx = data_ctx;
	sink.ctx = &r;
	rc = http_exchange(c->sock, &req, &sink, &connected, err, sizeof(err));
	if (rc && !connected) {
		ret = unreachable(c, rc, err);
		goto out;
	}
	if (rc == STREAM_STOP) {
		ret = 0;
		goto out;
	}
	if (rc) {
		if (data_err && *data_err)
			fail(c, "%s", *data_err);
		else
			fail(c, "%s", err[0] ? err : strerror(rc < 0 ? -rc : EIO));
		goto out;
	}
	if (r.status >= 300) {
		ret = http_failure(c, r.status, r.errbody.base, r.errbody.len);
		goto out;
	}
	if (partial && partial_len)
		snprintf(partial, partial_len, "%s", r.partial);
	ret = 0;
out:
	reply_free(&r);
	return ret;
}

/* A list reply: an array, or an object holding one under key. */
static json_t *list_of(json_t *reply, const char *key)
{
	if (json_is_array(reply))
		return reply;
	if (json_is_array(json_object_get(reply, key)))
		return json_object_get(reply, key);
	if (json_is_array(json_object_get(reply, "items")))
		return json_object_get(reply, "items");
	return NULL;
}

static const char *id_of(const json_t *o)
{
	const char *id = json_string_value(json_object_get(o, "id"));

	return id ? id : "?";
}

/* ---- health ---- */

/* One line per student pool, and one per replica taken out. */
static void health_pools_print(json_t *pools)
{
	const char *name;
	json_t *p, *r;
	size_t i;

	json_object_foreach(pools, name, p) {
		printf("  %s: %lld of %lld replicas in\n", name, (long long)json_integer_value(json_object_get(p, "in")),
		       (long long)json_integer_value(json_object_get(p, "replicas")));
		json_array_foreach(json_object_get(p, "out"), i, r) {
			const char *u = json_string_value(json_object_get(r, "url"));
			const char *e = json_string_value(json_object_get(r, "last_error"));

			printf("    out: %s%s%s%s\n", u ? u : "?", e && *e ? " (" : "", e && *e ? e : "", e && *e ? ")" : "");
		}
	}
}

static int cmd_health(struct ctx *c)
{
	json_t *r = NULL;
	const char *st, *ver;

	if (api_get(c, "/v1/health", &r))
		return 1;
	if (c->json) {
		print_json(r, false);
	} else {
		st = json_string_value(json_object_get(r, "status"));
		ver = json_string_value(json_object_get(r, "version"));
		printf("medthinkd %s%s%s at %s\n", st ? st : "ok", ver ? ", version " : "", ver ? ver : "", c->sock);
		health_pools_print(json_object_get(r, "pools"));
	}
	json_decref(r);
	return 0;
}

/* ---- formats ---- */

/* Prints one list of GET /v1/formats as "  NAME  DESCRIPTION" lines. */
static void formats_print(json_t *list, const char *title)
{
	int w = 0;
	size_t i;
	json_t *f;

	json_array_foreach(list, i, f) {
		const char *name = json_string_value(json_object_get(f, "name"));

		if (name && (int)strlen(name) > w)
			w = (int)strlen(name);
	}
	printf("%s\n", title);
	json_array_foreach(list, i, f) {
		const char *name = json_string_value(json_object_get(f, "name"));
		const char *desc = json_string_value(json_object_get(f, "description"));

		printf("  %-*s  %s\n", w, name ? name : "?", desc ? desc : "");
	}
}

static int cmd_formats(struct ctx *c)
{
	json_t *r = NULL;

	if (api_get(c, "/v1/formats", &r))
		return 1;
	if (c->json) {
		print_json(r, false);
	} else {
		formats_print(json_object_get(r, "import"), "import formats (medthink import --format F):");
		formats_print(json_object_get(r, "export"), "\nexport formats (medthink export --format F):");
	}
	json_decref(r);
	return 0;
}

/* ---- import ---- */

static const struct args_opt import_opts[] = {
	{"name", 'n', true},
	{"format", 'f', true},
	{"skip-invalid", 0, false},
	{NULL, 0, false},
};

/* Buffers the request body on its way to the socket and makes sure it never
 * exceeds the Content-Length announced. */
struct sender {
	int fd;
	uint64_t sent, limit;
	size_t len;
	char buf[65536];
};

static int sender_flush(struct sender *s)
{
	int rc = http_write_all(s->fd, s->buf, s->len);

	s->len = 0;
	return rc;
}

static int sender_write(void *ctx, const void *p, size_t n)
{
	struct sender *s = ctx;

	if (n > s->limit - s->sent)
		return -EMSGSIZE;
	s->sent += n;
	if (s->len + n > sizeof(s->buf)) {
		int rc = sender_flush(s);

		if (rc)
			return rc;
		if (n >= sizeof(s->buf))
			return http_write_all(s->fd, p, n);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

/* The largest MedVLM-R1 document the CLI rewrites (the daemon's document
 * cap, formats/import.h). */
#define MEDVLM_DOC_MAX ((uint64_t)256 << 20)

struct import_src {
	FILE *f;
	const char *path;
	char *basedir;
	bool rewrite;          /* native: inline images */
	bool skip;             /* --skip-invalid: refused items go as blank lines */
	uint64_t length;       /* Content-Length */
	char err[512];
};

static int import_body(void *ctx, int fd)
{
	struct import_src *src = ctx;
	struct sender *s = NULL;
	struct images_stats st;
	int rc;

	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = fd;
	s->sent = 0;
	s->len = 0;
	s->limit = src->length;
	rewind(src->f);
	if (src->rewrite) {
		rc = images_stream(src->f, src->basedir, IMAGES_MAX_FILE, src->skip, NULL, sender_write, s, &st,
				   src->err, sizeof(src->err));
	} else {
		char chunk[16384];
		size_t got = 1;

		rc = 0;
		while (!rc && got > 0) {
			got = fread(chunk, 1, sizeof(chunk), src->f);
			if (got)
				rc = sender_write(s, chunk, got);
		}
		if (!rc && ferror(src->f)) {
			rc = -EIO;
			snprintf(src->err, sizeof(src->err), "%s: read error", src->path);
		}
	}
	if (!rc)
		rc = sender_flush(s);
	if ((rc == -EMSGSIZE || (!rc && s->sent != s->limit)) && !src->err[0]) {
		snprintf(src->err, sizeof(src->err), "%s changed while it was being sent", src->path);
		rc = -EMSGSIZE;
	}
	free(s);
	return rc;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* Default dataset name: the file's base name without its extension. */
static int default_name(struct buf *out, const char *path)
{
	const char *base = strrchr(path, '/');
	const char *dot;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	return buf_append(out, base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
}

static int reject_cmp(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "line"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "line"));

	return (x > y) - (x < y);
}

/* Orders a "rejected" array by line. */
static void rejects_sort(json_t *rej)
{
	size_t n = json_array_size(rej);
	json_t **v = n ? calloc(n, sizeof(*v)) : NULL;

	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(rej, i));
	qsort(v, n, sizeof(*v), reject_cmp);
	json_array_clear(rej);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(rej, v[i]);
	free(v);
}

#define IMPORT_ERRORS_SHOWN 20 /* bad lines listed when an atomic import fails */

/* A failed import: the bad lines, the daemon's and those the CLI refused
 * (local, may be NULL), by line and named by the file, the first
 * IMPORT_ERRORS_SHOWN and a count of the rest; then what to do (and the
 * layout the daemon read, when it was detected). A reply
 * that is not the daemon's invalid_dataset goes to http_failure. */
static int import_failure(struct ctx *c, const char *file, bool detected, json_t *local, int status,
			  const char *body, size_t len)
{
	json_t *root = json_loadb(body ? body : "", len, 0, NULL);
	const char *fmt = json_string_value(json_object_get(root, "format"));
	json_t *e = json_object_get(root, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	json_t *rej = json_object_get(root, "rejected"), *all = json_array(), *v;
	json_int_t total;
	size_t i;
	int ret = 1;

	if (!code || strcmp(code, "invalid_dataset") != 0 || !all) {
		json_array_foreach(local, i, v)
			say("import", NULL, "%s: line %lld: %s", file,
			    (long long)json_integer_value(json_object_get(v, "line")),
			    json_string_value(json_object_get(v, "reason")));
		ret = http_failure(c, status, body, len);
		goto out;
	}
	if (json_is_array(rej))
		json_array_extend(all, rej);
	if (local)
		json_array_extend(all, local);
	rejects_sort(all);
	total = json_integer_value(json_object_get(root, "rejected_count"));
	if (total < (json_int_t)json_array_size(rej))
		total = (json_int_t)json_array_size(rej);
	total += (json_int_t)json_array_size(local);
	if (c->json)
		print_json(root, false);
	fflush(stdout);
	json_array_foreach(all, i, v) {
		const char *why = json_string_value(json_object_get(v, "reason"));

		if (i == IMPORT_ERRORS_SHOWN)
			break;
		fprintf(stderr, "medthink: import: %s: line %lld: %s\n", file,
			(long long)json_integer_value(json_object_get(v, "line")), why ? why : "rejected");
	}
	if (total > IMPORT_ERRORS_SHOWN)
		fprintf(stderr, "medthink: import: %s: ... and %lld more bad lines\n", file,
			(long long)(total - IMPORT_ERRORS_SHOWN));
	if (json_array_size(all) == 0) /* no list: the message is all there is */
		fprintf(stderr, "medthink: import: %s: %s\n", file,
			json_string_value(json_object_get(e, "message")) ? json_string_value(json_object_get(e, "message"))
									  : "rejected");
	fprintf(stderr,
		"medthink: import: %s: nothing stored: %lld bad line%s%s%s%s (%d); fix %s, or --skip-invalid "
		"stores the good ones\n",
		file, (long long)total, total == 1 ? "" : "s", detected && fmt ? " read as " : "",
		detected && fmt ? fmt : "", detected && fmt ? " (no --format given)" : "", status,
		total == 1 ? "it" : "them");
out:
	json_decref(all);
	json_decref(root);
	return ret;
}

/* --format masks: the folder or JSONL file at *file becomes a temporary
 * body file in src->f (cli/masks.h); a trailing slash is dropped from *file
 * so the dataset's default name is the folder's. 0, or 1 when it failed
 * (said). */
static int import_masks_body(struct ctx *c, struct import_src *src, const char **file)
{
	static char trimmed[4096];
	uint64_t pairs = 0;
	size_t n = strlen(*file);

	while (n > 1 && (*file)[n - 1] == '/')
		n--;
	snprintf(trimmed, sizeof(trimmed), "%.*s", (int)n, *file);
	*file = trimmed;
	src->path = trimmed;
	src->f = tmpfile();
	if (!src->f) {
		fail(c, "cannot create a temporary file: %s", strerror(errno));
		return 1;
	}
	if (masks_build(trimmed, src->f, &pairs, src->err, sizeof(src->err)) != 0 || fflush(src->f) != 0) {
		fail(c, "%s: %s; nothing stored", trimmed, src->err[0] ? src->err : strerror(errno));
		return 1;
	}
	return 0;
}

static int cmd_import(struct ctx *c)
{
	struct args *a = c->args;
	const char *file = a->pos[0];
	const char *name = args_get(a, import_opts, "name");
	const char *format = args_get(a, import_opts, "format");
	bool skip = args_get(a, import_opts, "skip-invalid") != NULL;
	struct import_src src;
	struct http_sink sink = {reply_head, reply_body, NULL, reply_header};
	struct http_req req = {.method = "POST", .content_type = "application/x-ndjson"};
	struct buf target, dname;
	struct reply r;
	struct stat sb;
	json_t *res = NULL, *rej, *local_rej = NULL;
	char err[256];
	bool connected;
	int rc, ret = 1;

	memset(&src, 0, sizeof(src));
	buf_init(&target, 8192);
	buf_init(&dname, 4096);
	reply_init(&r);
	if (format && !format[0]) {
		ret = usage_error(c->cmd, "--format must not be empty");
		goto out;
	}
	if (name && !name[0]) {
		ret = usage_error(c->cmd, "--name must not be empty");
		goto out;
	}
	src.path = file;
	/* masks: the pairs are read and checked here, into a body of data */
	if (format && strcmp(format, "masks") == 0 && import_masks_body(c, &src, &file) != 0)
		goto out;
	if (!src.f)
		src.f = fopen(file, "rb");
	if (!src.f) {
		fail(c, "%s: %s", file, strerror(errno));
		goto out;
	}
	if (fstat(fileno(src.f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		fail(c, "%s: not a regular file", file);
		goto out;
	}
	src.length = (uint64_t)sb.st_size;
	if (!format || strcmp(format, "native") == 0) {
		struct images_stats st;

		src.basedir = dir_of(file);
		if (!src.basedir) {
			fail(c, "out of memory");
			goto out;
		}
		/* Dry run: checks every image and counts the body's bytes; a
		 * refused image refuses the import before anything is sent. */
		src.skip = skip;
		local_rej = json_array();
		if (!local_rej) {
			fail(c, "out of memory");
			goto out;
		}
		rc = images_stream(src.f, src.basedir, IMAGES_MAX_FILE, skip, local_rej, NULL, NULL, &st, src.err,
				   sizeof(src.err));
		if (rc) {
			fail(c, "%s: %s", file, src.err);
			goto out;
		}
		src.rewrite = st.images > 0 || st.rejected > 0;
		if (src.rewrite)
			src.length = st.bytes;
	} else if (strcmp(format, "medvlm") == 0) {
		/* MedVLM-R1 / OmniMedVQA: the image paths are read here, relative
		 * to the file, and sent as data: URLs in a rewritten copy. */
		struct images_stats st;
		FILE *tmp = tmpfile();

		src.basedir = dir_of(file);
		if (!src.basedir || !tmp) {
			if (tmp)
				fclose(tmp);
			fail(c, "cannot make a temporary file: %s", strerror(errno));
			goto out;
		}
		rc = images_medvlm(src.f, src.basedir, IMAGES_MAX_FILE, MEDVLM_DOC_MAX, tmp, &st, src.err,
				   sizeof(src.err));
		if (rc) {
			fclose(tmp);
			fail(c, "%s: %s", file, src.err);
			goto out;
		}
		fclose(src.f);
		src.f = tmp;
		src.length = st.bytes;
	}

	if (!name) {
		if (default_name(&dname, file)) {
			fail(c, "file name too long");
			goto out;
		}
	}
	rc = buf_puts(&target, "/v1/datasets?name=");
	if (!rc)
		rc = http_query_escape(&target, name ? name : dname.base ? dname.base : "dataset");
	/* a default name is made unique by the daemon; a given one must be */
	if (!rc && !name)
		rc = buf_puts(&target, "&unique=1");
	if (!rc && format) {
		rc = buf_puts(&target, "&format=");
		if (!rc)
			rc = http_query_escape(&target, format);
	}
	if (!rc && skip)
		rc = buf_puts(&target, "&skip_invalid=1");
	if (rc) {
		fail(c, "--name too long");
		goto out;
	}
	req.target = target.base;
	req.body_len = src.length;
	req.body_fn = import_body;
	req.body_ctx = &src;
	sink.ctx = &r;
	rc = http_exchange(c->sock, &req, &sink, &connected, err, sizeof(err));
	if (rc && !connected) {
		ret = unreachable(c, rc, err);
		goto out;
	}
	if (rc) {
		fail(c, "%s", src.err[0] ? src.err : err[0] ? err : strerror(-rc));
		goto out;
	}
	if (r.status >= 300) {
		ret = import_failure(c, file, !format, local_rej, r.status, r.body.base, r.body.len);
		goto out;
	}
	res = json_loadb(r.body.base ? r.body.base : "", r.body.len, 0, NULL);
	if (!json_is_object(res)) {
		fail(c, "the daemon's reply is not a JSON object");
		goto out;
	}
	rej = json_object_get(res, "rejected");
	if (json_array_size(local_rej) > 0) {
		/* The items the CLI refused are listed with the daemon's, by line. */
		if (!json_is_array(rej)) {
			rej = json_array();
			json_object_set_new(res, "rejected", rej);
		}
		json_array_extend(rej, local_rej);
		rejects_sort(rej);
	}
	if (json_is_array(rej) && json_array_size(rej) > 0) {
		size_t i;
		json_t *v;

		fflush(stdout);
		json_array_foreach(rej, i, v) {
			const char *why = json_string_value(json_object_get(v, "reason"));

			fprintf(stderr, "medthink: import: %s: line %lld: %s\n", file,
				(long long)json_integer_value(json_object_get(v, "line")), why ? why : "rejected");
		}
		fprintf(stderr, "medthink: import: %lld items stored, %zu lines rejected\n",
			(long long)json_integer_value(json_object_get(res, "items")), json_array_size(rej));
	}
	if (!format && json_is_string(json_object_get(res, "format")) &&
	    strcmp(json_string_value(json_object_get(res, "format")), "native") != 0) {
		fflush(stdout);
		fprintf(stderr, "medthink: import: %s: read as %s (no --format given)\n", file,
			json_string_value(json_object_get(res, "format")));
	}
	if (!name && dname.base && json_is_string(json_object_get(res, "name")) &&
	    strcmp(json_string_value(json_object_get(res, "name")), dname.base) != 0) {
		fflush(stdout);
		fprintf(stderr, "medthink: import: a dataset named %s exists; this one is %s\n", dname.base,
			json_string_value(json_object_get(res, "name")));
	}
	if (c->json)
		print_json(res, false);
	else
		printf("%s\n", id_of(res));
	ret = 0;
out:
	json_decref(res);
	json_decref(local_rej);
	if (src.f)
		fclose(src.f);
	free(src.basedir);
	buf_free(&target);
	buf_free(&dname);
	reply_free(&r);
	return ret;
}

/* ---- submit ---- */

static const struct args_opt submit_opts[] = {
	{"dry-run", 'n', false},
	{NULL, 0, false},
};

/* The estimate of POST /v1/jobs?dry_run=1 as a table. */
static void estimate_print(json_t *e)
{
	json_t *items = json_object_get(e, "items"), *tot = json_object_get(e, "total");
	json_t *as = json_object_get(e, "assumptions"), *st;
	size_t i;

	printf("dry run of %s (%s) on %s: nothing was created\n",
	       json_string_value(json_object_get(e, "name")),
	       json_string_value(json_object_get(e, "kind")),
	       json_string_value(json_object_get(e, "dataset")));
	printf("items     %lld in the dataset: %lld train (%lld used), %lld eval\n",
	       (long long)json_integer_value(json_object_get(items, "dataset")),
	       (long long)json_integer_value(json_object_get(items, "train")),
	       (long long)json_integer_value(json_object_get(items, "train_used")),
	       (long long)json_integer_value(json_object_get(items, "eval")));
	printf("%-11s %-18s %8s %14s %18s %12s\n", "step", "endpoint", "calls", "prompt tok",
	       "completion tok max", "cost max");
	json_array_foreach(json_object_get(e, "steps"), i, st)
		printf("%-11s %-18s %8lld %14lld %18lld %12s$%.4f\n",
		       json_string_value(json_object_get(st, "step")),
		       json_string_value(json_object_get(st, "endpoint")),
		       (long long)json_integer_value(json_object_get(st, "calls")),
		       (long long)json_integer_value(json_object_get(st, "prompt_tokens")),
		       (long long)json_integer_value(json_object_get(st, "completion_tokens_max")), "",
		       json_number_value(json_object_get(st, "cost_usd_max")));
	printf("%-11s %-18s %8lld %14lld %18lld %12s$%.4f\n", "total", "",
	       (long long)json_integer_value(json_object_get(tot, "calls")),
	       (long long)json_integer_value(json_object_get(tot, "prompt_tokens")),
	       (long long)json_integer_value(json_object_get(tot, "completion_tokens_max")), "",
	       json_number_value(json_object_get(tot, "cost_usd_max")));
	printf("assumed   kept share %.2f (%s), judge share %.2f, wrong share %.2f\n",
	       json_number_value(json_object_get(as, "kept_share")),
	       json_string_value(json_object_get(as, "kept_share_from")),
	       json_number_value(json_object_get(as, "judge_share")),
	       json_number_value(json_object_get(as, "wrong_share")));
	printf("bounds    completion tokens and cost are upper bounds (every call at its step's "
	       "max_tokens); re-asks and cached replies are not counted\n");
}

static int cmd_submit(struct ctx *c)
{
	const char *file = c->args->pos[0];
	bool dry = args_get(c->args, submit_opts, "dry-run") != NULL;
	struct http_req req = {.method = "POST", .target = dry ? "/v1/jobs?dry_run=1" : "/v1/jobs",
			       .content_type = "application/json"};
	struct buf spec;
	json_t *parsed = NULL, *res = NULL;
	json_error_t jerr;
	FILE *f = NULL;
	char chunk[8192];
	size_t got;
	int rc = 0, ret = 1;

	buf_init(&spec, MAX_SPEC);
	f = fopen(file, "rb");
	if (!f) {
		fail(c, "%s: %s", file, strerror(errno));
		goto out;
	}
	do {
		got = fread(chunk, 1, sizeof(chunk), f);
		rc = buf_append(&spec, chunk, got);
	} while (!rc && got > 0);
	if (rc || ferror(f)) {
		fail(c, "%s: %s", file, rc == -ENOBUFS ? "larger than 1 MiB" : "read error");
		goto out;
	}
	/* Only a syntax check, for a line:column message; the daemon judges it. */
	parsed = json_loadb(spec.base ? spec.base : "", spec.len, 0, &jerr);
	if (!json_is_object(parsed)) {
		if (parsed)
			fail(c, "%s: the job spec must be a JSON object", file);
		else
			fail(c, "%s:%d:%d: %s", file, jerr.line, jerr.column, jerr.text);
		goto out;
	}
	req.body = spec.base;
	req.body_len = spec.len;
	if (api_call(c, &req, &res))
		goto out;
	if (c->json)
		print_json(res, false);
	else if (dry)
		estimate_print(res);
	else
		printf("%s\n", id_of(res));
	ret = 0;
out:
	if (f)
		fclose(f);
	json_decref(parsed);
	json_decref(res);
	buf_free(&spec);
	return ret;
}

/* ---- status ---- */

static const struct args_opt status_opts[] = {
	{"watch", 'w', false},
	{NULL, 0, false},
};

static int term_bar_width(void)
{
	struct winsize ws;
	int w = 30;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		w = ws.ws_col - 62;
		if (w > 40)
			w = 40;
		if (w < 10)
			w = 10;
	}
	return w;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

static int status_all(struct ctx *c)
{
	json_t *res = NULL, *jobs;
	struct buf out;
	size_t i;
	json_t *v;
	int ret = 1;

	buf_init(&out, MAX_REPLY);
	if (api_get(c, "/v1/jobs", &res))
		goto out;
	if (c->json) {
		print_json(res, false);
		ret = 0;
		goto out;
	}
	jobs = list_of(res, "jobs");
	if (!jobs) {
		fail(c, "the daemon's job list is not an array");
		goto out;
	}
	json_array_foreach(jobs, i, v) {
		if (render_job_line(&out, v)) {
			fail(c, "output too large");
			goto out;
		}
	}
	if (json_array_size(jobs) == 0)
		fprintf(stderr, "medthink: status: no jobs\n");
	fputs(out.base ? out.base : "", stdout);
	ret = 0;
out:
	json_decref(res);
	buf_free(&out);
	return ret;
}

static int status_watch(struct ctx *c, const char *target)
{
	bool tty = isatty(STDOUT_FILENO);
	int prev_lines = 0, ret = 1;
	struct buf out, last;
	json_t *job = NULL;

	buf_init(&out, 1024 * 1024);
	buf_init(&last, 1024 * 1024);
	for (;;) {
		const char *state, *reason;
		struct timespec ts = {0, WATCH_INTERVAL_NS};

		if (api_get(c, target, &job))
			goto out;
		buf_reset(&out);
		state = json_string_value(json_object_get(job, "state"));
		if (c->json) {
			char *s = json_dumps(job, JSON_COMPACT);

			if (s && buf_puts(&out, s) == 0 && buf_puts(&out, "\n") == 0 &&
			    (!last.base || strcmp(out.base, last.base) != 0))
				fputs(out.base, stdout);
			free(s);
		} else if (tty) {
			time_t now = time(NULL);
			char hhmmss[16];
			struct tm tm;

			strftime(hhmmss, sizeof(hhmmss), "%H:%M:%S", localtime_r(&now, &tm));
			if (render_job(&out, job, term_bar_width()) == 0 &&
			    (render_state_final(state) ||
			     buf_printf(&out, "%s (Ctrl-C stops watching; the job keeps running)\n", hhmmss) == 0)) {
				if (prev_lines)
					printf("\x1b[%dA\x1b[J", prev_lines);
				fputs(out.base, stdout);
				prev_lines = count_lines(out.base);
			}
		} else if (render_job_progress_line(&out, job) == 0 &&
			   (!last.base || strcmp(out.base, last.base) != 0)) {
			fputs(out.base, stdout);
		}
		fflush(stdout);
		stdout_check();
		buf_reset(&last);
		if (out.base)
			buf_puts(&last, out.base);
		if (!state || render_state_final(state)) {
			reason = json_string_value(json_object_get(job, "reason"));
			if (state && strcmp(state, "done") == 0)
				ret = 0;
			else if (!state)
				fail(c, "the daemon's status object has no state");
			else
				fail(c, "%s %s%s%s", id_of(job), state, reason ? ": " : "", reason ? reason : "");
			goto out;
		}
		json_decref(job);
		job = NULL;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
out:
	json_decref(job);
	buf_free(&out);
	buf_free(&last);
	return ret;
}

static int cmd_status(struct ctx *c)
{
	struct args *a = c->args;
	bool watch = args_get(a, status_opts, "watch") != NULL;
	struct buf target, out;
	json_t *job = NULL;
	int ret = 1;

	if (a->npos == 0) {
		if (watch)
			return usage_error(c->cmd, "--watch needs a JOB");
		return status_all(c);
	}
	buf_init(&target, 4096);
	buf_init(&out, 1024 * 1024);
	if (job_path(&target, a->pos[0], NULL)) {
		fail(c, "job id too long");
		goto out;
	}
	if (watch) {
		ret = status_watch(c, target.base);
		goto out;
	}
	if (api_get(c, target.base, &job))
		goto out;
	if (c->json) {
		print_json(job, false);
	} else {
		if (render_job(&out, job, 30)) {
			fail(c, "status too large to show");
			goto out;
		}
		fputs(out.base ? out.base : "", stdout);
	}
	ret = 0;
out:
	json_decref(job);
	buf_free(&target);
	buf_free(&out);
	return ret;
}

/* ---- list ---- */

static int cmd_list(struct ctx *c)
{
	json_t *ds = NULL, *jobs = NULL, *dl, *jl, *v;
	struct buf out;
	size_t i;
	int ret = 1;

	buf_init(&out, MAX_REPLY);
	if (api_get(c, "/v1/datasets", &ds) || api_get(c, "/v1/jobs", &jobs))
		goto out;
	dl = list_of(ds, "datasets");
	jl = list_of(jobs, "jobs");
	if (!dl || !jl) {
		fail(c, "the daemon's %s list is not an array", dl ? "job" : "dataset");
		goto out;
	}
	if (c->json) {
		json_t *both = json_pack("{sOsO}", "datasets", dl, "jobs", jl);

		print_json(both, false);
		json_decref(both);
		ret = 0;
		goto out;
	}
	json_array_foreach(dl, i, v) {
		if (render_dataset_line(&out, v))
			break;
	}
	json_array_foreach(jl, i, v) {
		if (render_job_line(&out, v))
			break;
	}
	fputs(out.base ? out.base : "", stdout);
	ret = 0;
out:
	json_decref(ds);
	json_decref(jobs);
	buf_free(&out);
	return ret;
}

/* ---- cancel / pause / resume ---- */

static const struct args_opt resume_opts[] = {
	{"budget-usd", 'b', true},
	{NULL, 0, false},
};

static int job_action(struct ctx *c, const char *action, const char *past)
{
	struct http_req req = {.method = "POST", .content_type = "application/json"};
	struct buf target;
	json_t *res = NULL;
	const char *state;
	char body[64];
	int ret = 1;

	buf_init(&target, 4096);
	if (job_path(&target, c->args->pos[0], action)) {
		fail(c, "job id too long");
		goto out;
	}
	req.target = target.base;
	if (strcmp(action, "/resume") == 0) {
		/* resume --budget-usd N raises the budget of a job paused by it */
		const char *b = args_get(c->args, resume_opts, "budget-usd");
		char *end = NULL;
		double v;

		if (b) {
			v = strtod(b, &end);
			if (!*b || *end || v < 0) {
				say("resume", "usage", "--budget-usd takes a number >= 0, not \"%s\"", b);
				ret = 2;
				goto out;
			}
			snprintf(body, sizeof(body), "{\"budget_usd\":%.6f}", v);
			req.body = body;
			req.body_len = strlen(body);
		}
	}
	if (api_call(c, &req, &res))
		goto out;
	if (c->json) {
		if (res)
			print_json(res, false);
		else
			printf("{}\n");
	} else {
		state = json_string_value(json_object_get(res, "state"));
		if (state)
			printf("%s %s\n", json_object_get(res, "id") ? id_of(res) : c->args->pos[0], state);
		else
			printf("%s %s\n", c->args->pos[0], past);
	}
	ret = 0;
out:
	json_decref(res);
	buf_free(&target);
	return ret;
}

static int cmd_cancel(struct ctx *c) { return job_action(c, "/cancel", "cancel requested"); }
static int cmd_pause(struct ctx *c) { return job_action(c, "/pause", "pause requested"); }
static int cmd_resume(struct ctx *c) { return job_action(c, "/resume", "resume requested"); }

/* ---- export ---- */

static const struct args_opt export_opts[] = {
	{"set", 0, true},
	{"format", 'f', true},
	{"output", 'o', true},
	{"no-ids", 0, false},
	{NULL, 0, false},
};


static void on_signal(int sig)
{
	if (export_tmp[0])
		unlink(export_tmp);
	signal(sig, SIG_DFL);
	raise(sig);
}

struct export_out {
	FILE *f;
	uint64_t bytes, records;
	int last; /* last byte written */
	const char *err;
	char errbuf[256];
};

static int export_data(void *ctx, const char *p, size_t n)
{
	struct export_out *o = ctx;

	if (fwrite(p, 1, n, o->f) != n) {
		if (o->f == stdout)
			stdout_check();
		snprintf(o->errbuf, sizeof(o->errbuf), "writing the export: %s", strerror(errno));
		o->err = o->errbuf;
		return -EIO;
	}
	o->bytes += n;
	for (size_t i = 0; i < n; i++)
		o->records += p[i] == '\n';
	o->last = (unsigned char)p[n - 1];
	return 0;
}

static int cmd_export(struct ctx *c)
{
	struct args *a = c->args;
	const char *set = args_get(a, export_opts, "set");
	const char *format = args_get(a, export_opts, "format");
	const char *file = args_get(a, export_opts, "output");
	bool no_ids = args_get(a, export_opts, "no-ids") != NULL;
	struct export_out o;
	struct buf target;
	char partial[512] = "";
	int fd = -1, rc, ret = 1;

	memset(&o, 0, sizeof(o));
	buf_init(&target, 4096);
	if (!set || !format) {
		ret = usage_error(c->cmd, "--set and --format are required");
		goto out;
	}
	if (strcmp(set, "1") != 0 && strcmp(set, "2") != 0) {
		ret = usage_error(c->cmd, "--set must be 1 or 2, not \"%s\"", set);
		goto out;
	}
	if (!format[0]) {
		ret = usage_error(c->cmd, "--format must not be empty");
		goto out;
	}
	if (file && !file[0]) {
		ret = usage_error(c->cmd, "-o needs a file name");
		goto out;
	}
	if (job_path(&target, a->pos[0], "/export?set=") || buf_puts(&target, set) ||
	    buf_puts(&target, "&format=") || http_query_escape(&target, format) ||
	    buf_puts(&target, no_ids ? "&ids=0" : "")) {
		fail(c, "job id too long");
		goto out;
	}
	if (file) {
		mode_t um;

		if (snprintf(export_tmp, sizeof(export_tmp), "%s.tmp.XXXXXX", file) >= (int)sizeof(export_tmp)) {
			export_tmp[0] = '\0';
			fail(c, "%s: name too long", file);
			goto out;
		}
		fd = mkstemp(export_tmp);
		if (fd < 0) {
			fail(c, "%s: cannot create a temporary file next to it: %s", file, strerror(errno));
			export_tmp[0] = '\0';
			goto out;
		}
		um = umask(0);
		umask(um);
		fchmod(fd, 0666 & ~um);
		o.f = fdopen(fd, "wb");
		if (!o.f) {
			fail(c, "%s: %s", export_tmp, strerror(errno));
			goto out;
		}
		fd = -1;
	} else {
		o.f = stdout;
	}
	rc = api_stream(c, target.base, export_data, &o, &o.err, partial, sizeof(partial));
	if (rc) {
		ret = rc; /* 2 when the daemon refused the format */
		goto out;
	}
	if (o.bytes && o.last != '\n')
		o.records++;
	if (file) {
		if (fflush(o.f) != 0 || fsync(fileno(o.f)) != 0) {
			fail(c, "%s: %s", export_tmp, strerror(errno));
			goto out;
		}
		if (fclose(o.f) != 0) {
			o.f = NULL;
			fail(c, "%s: %s", export_tmp, strerror(errno));
			goto out;
		}
		o.f = NULL;
		if (rename(export_tmp, file) != 0) {
			fail(c, "%s: %s", file, strerror(errno));
			goto out;
		}
		export_tmp[0] = '\0';
		if (c->json) {
			json_t *info = json_pack("{sssIsI}", "file", file, "records", (json_int_t)o.records, "bytes",
						 (json_int_t)o.bytes);

			if (partial[0])
				json_object_set_new(info, "partial", json_string(partial));
			print_json(info, true);
			json_decref(info);
		} else
			fprintf(stderr, "medthink: export: wrote %llu records to %s\n", (unsigned long long)o.records,
				file);
	}
	if (partial[0]) {
		/* exit 0: what was asked for was sent, but it is not the whole set */
		fflush(stdout);
		fprintf(stderr, "medthink: export: warning: %s (%llu records)\n", partial,
			(unsigned long long)o.records);
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (o.f && o.f != stdout)
		fclose(o.f);
	if (export_tmp[0]) {
		unlink(export_tmp);
		export_tmp[0] = '\0';
	}
	buf_free(&target);
	return ret;
}

/* ---- logs ---- */

static const struct args_opt logs_opts[] = {
	{"follow", 'f', false},
	{NULL, 0, false},
};

struct logs_state {
	struct ctx *c;
	struct sse sse;
	bool follow;
	struct buf line;
	const char *err;
	char errbuf[128];
};

static int logs_event(void *ctx, const char *event, const char *data, size_t len)
{
	struct logs_state *ls = ctx;
	json_t *d = json_loadb(data, len, JSON_DECODE_ANY, NULL);
	const char *state = json_string_value(json_object_get(d, "state"));
	bool end = ls->follow && (render_state_final(state) || strcmp(event, "end") == 0);
	int rc = 0;

	if (ls->c->json) {
		json_t *o = json_pack("{ssso}", "event", event, "data", d ? json_incref(d) : json_stringn(data, len));

		if (o)
			print_json(o, true);
		json_decref(o);
	} else {
		buf_reset(&ls->line);
		if (render_event(&ls->line, event, data) == 0)
			fputs(ls->line.base, stdout);
	}
	fflush(stdout);
	if (ferror(stdout)) {
		stdout_check();
		snprintf(ls->errbuf, sizeof(ls->errbuf), "writing stdout: %s", strerror(errno));
		ls->err = ls->errbuf;
		rc = -EIO;
	}
	json_decref(d);
	return rc ? rc : end ? STREAM_STOP : 0;
}

static int logs_data(void *ctx, const char *p, size_t n)
{
	struct logs_state *ls = ctx;
	int rc = sse_feed(&ls->sse, p, n);

	if (rc == -ENOBUFS && !ls->err) {
		snprintf(ls->errbuf, sizeof(ls->errbuf), "an event is larger than %d bytes", SSE_MAX_EVENT);
		ls->err = ls->errbuf;
	}
	return rc;
}

static int cmd_logs(struct ctx *c)
{
	struct logs_state ls;
	struct buf target;
	int ret = 1;

	memset(&ls, 0, sizeof(ls));
	ls.c = c;
	ls.follow = args_get(c->args, logs_opts, "follow") != NULL;
	sse_init(&ls.sse, logs_event, &ls);
	buf_init(&ls.line, 2 * SSE_MAX_EVENT);
	buf_init(&target, 4096);
	if (job_path(&target, c->args->pos[0], ls.follow ? "/events" : "/events?follow=0")) {
		fail(c, "job id too long");
		goto out;
	}
	ret = api_stream(c, target.base, logs_data, &ls, &ls.err, NULL, 0);
out:
	sse_free(&ls.sse);
	buf_free(&ls.line);
	buf_free(&target);
	return ret;
}

/* ---- show / retry / prompt-preview ---- */

/* s cut to at most max bytes on a character boundary, on one line. */
static void print_text(const char *label, const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0, cut = n > max ? utf8_prefix(s, n, max) : n;

	printf("%s", label);
	for (size_t i = 0; i < cut; i++)
		putchar(s[i] == '\n' || s[i] == '\r' ? ' ' : s[i]);
	printf("%s\n", cut < n ? " ..." : "");
}

static void print_value(const char *label, const json_t *v, size_t max)
{
	char *t;

	if (json_is_string(v)) {
		print_text(label, json_string_value(v), max);
		return;
	}
	t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	print_text(label, t ? t : "?", max);
	free(t);
}

/* The messages of a request, one line each: [role] content. */
static void print_messages(const char *indent, const json_t *msgs, size_t max)
{
	size_t i;
	json_t *m;
	char label[64];

	json_array_foreach(msgs, i, m)
	{
		snprintf(label, sizeof(label), "%s[%s] ", indent,
			 json_string_value(json_object_get(m, "role")) ? json_string_value(json_object_get(m, "role")) : "?");
		print_value(label, json_object_get(m, "content"), max);
	}
}

static void print_story_step(const json_t *st)
{
	const json_t *task = json_object_get(st, "task"), *call = json_object_get(st, "call");
	const json_t *reply, *content;
	const char *reason = json_string_value(json_object_get(task, "reason"));
	json_int_t att = json_integer_value(json_object_get(task, "attempts"));
	char label[80];

	printf("%s (%s): %s", json_string_value(json_object_get(st, "step")),
	       json_string_value(json_object_get(st, "phase")),
	       json_is_object(task) ? json_string_value(json_object_get(task, "state")) : "no task");
	if (json_is_object(task))
		printf(", %" JSON_INTEGER_FORMAT " attempt%s", att, att == 1 ? "" : "s");
	printf("\n");
	if (reason)
		print_text("  reason: ", reason, 300);
	if (!json_is_null(json_object_get(st, "artifact"))) {
		snprintf(label, sizeof(label), "  %s: ", json_string_value(json_object_get(st, "artifact_kind")));
		print_value(label, json_object_get(st, "artifact"), 600);
	}
	if (!json_is_object(call))
		return;
	printf("  call %" JSON_INTEGER_FORMAT ": %s %s, %" JSON_INTEGER_FORMAT " in + %" JSON_INTEGER_FORMAT
	       " out tokens, $%.6f, %.0f ms\n",
	       json_integer_value(json_object_get(call, "id")),
	       json_string_value(json_object_get(call, "endpoint")),
	       json_string_value(json_object_get(call, "model")),
	       json_integer_value(json_object_get(call, "tokens_in")),
	       json_integer_value(json_object_get(call, "tokens_out")),
	       json_number_value(json_object_get(call, "cost_usd")),
	       json_number_value(json_object_get(call, "latency_ms")));
	print_messages("  prompt ", json_object_get(json_object_get(call, "request"), "messages"), 300);
	reply = json_object_get(call, "reply");
	content = json_object_get(json_object_get(json_array_get(json_object_get(reply, "choices"), 0),
						  "message"),
				  "content");
	print_value("  reply: ", content ? content : reply, 600);
}

static int cmd_show(struct ctx *c)
{
	struct buf target;
	json_t *story = NULL, *item, *opts, *v, *st;
	const char *k;
	size_t i;
	int ret = 1;

	buf_init(&target, 4096);
	if (job_path(&target, c->args->pos[0], "/items/") || http_query_escape(&target, c->args->pos[1])) {
		fail(c, "job or item id too long");
		goto out;
	}
	if (api_get(c, target.base, &story))
		goto out;
	if (c->json) {
		print_json(story, false);
		ret = 0;
		goto out;
	}
	item = json_object_get(story, "item");
	printf("%s item %s (seq %" JSON_INTEGER_FORMAT "), %s job %s\n",
	       json_string_value(json_object_get(story, "job")),
	       json_string_value(json_object_get(item, "id")),
	       json_integer_value(json_object_get(story, "seq")),
	       json_string_value(json_object_get(story, "kind")),
	       json_string_value(json_object_get(story, "state")));
	print_value("question: ", json_object_get(item, "question"), 2000);
	opts = json_object_get(item, "options");
	json_object_foreach(opts, k, v)
	{
		char label[80];

		snprintf(label, sizeof(label), "  %.40s. ", k);
		print_value(label, v, 300);
	}
	if (json_object_get(item, "answer"))
		print_value("gold: ", json_object_get(item, "answer"), 300);
	json_array_foreach(json_object_get(story, "steps"), i, st)
		print_story_step(st);
	ret = 0;
out:
	json_decref(story);
	buf_free(&target);
	return ret;
}

static const struct args_opt retry_opts[] = {
	{"failed", 0, false},
	{NULL, 0, false},
};

static int cmd_retry(struct ctx *c)
{
	struct http_req req = {.method = "POST", .content_type = "application/json"};
	struct buf target;
	json_t *res = NULL;
	int ret = 1;

	if (!args_get(c->args, retry_opts, "failed"))
		return usage_error(c->cmd, "say what to retry: --failed (the failed tasks)");
	buf_init(&target, 4096);
	if (job_path(&target, c->args->pos[0], "/retry?failed=1")) {
		fail(c, "job id too long");
		goto out;
	}
	req.target = target.base;
	if (api_call(c, &req, &res))
		goto out;
	if (c->json)
		print_json(res, false);
	else
		printf("%s %s: %" JSON_INTEGER_FORMAT " failed task%s set back to pending\n", id_of(res),
		       json_string_value(json_object_get(res, "state")),
		       json_integer_value(json_object_get(res, "retried")),
		       json_integer_value(json_object_get(res, "retried")) == 1 ? "" : "s");
	ret = 0;
out:
	json_decref(res);
	buf_free(&target);
	return ret;
}

static const struct args_opt preview_opts[] = {
	{"step", 0, true},
	{"item", 0, true},
	{NULL, 0, false},
};

static int cmd_prompt_preview(struct ctx *c)
{
	const char *step = args_get(c->args, preview_opts, "step");
	const char *item = args_get(c->args, preview_opts, "item");
	struct buf target;
	json_t *pv = NULL, *m;
	size_t i;
	int ret = 1;

	if (!step || !item)
		return usage_error(c->cmd, "%s is required", step ? "--item ITEM" : "--step STEP");
	buf_init(&target, 4096);
	if (job_path(&target, c->args->pos[0], "/prompt-preview?step=") ||
	    http_query_escape(&target, step) || buf_puts(&target, "&item=") ||
	    http_query_escape(&target, item)) {
		fail(c, "job, step or item too long");
		goto out;
	}
	if (api_get(c, target.base, &pv))
		goto out;
	if (c->json) {
		print_json(pv, false);
		ret = 0;
		goto out;
	}
	printf("# %s step %s, item %s (seq %" JSON_INTEGER_FORMAT "), template %s, max_tokens %"
	       JSON_INTEGER_FORMAT "%s\n",
	       json_string_value(json_object_get(pv, "job")), json_string_value(json_object_get(pv, "step")),
	       json_string_value(json_object_get(json_object_get(pv, "item"), "id")),
	       json_integer_value(json_object_get(json_object_get(pv, "item"), "seq")),
	       json_string_value(json_object_get(pv, "template")),
	       json_integer_value(json_object_get(pv, "max_tokens")),
	       json_is_true(json_object_get(pv, "expect_json")) ? ", JSON reply" : "");
	json_array_foreach(json_object_get(pv, "messages"), i, m)
	{
		const json_t *ct = json_object_get(m, "content");
		char *t = json_is_string(ct) ? NULL : json_dumps(ct, JSON_COMPACT | JSON_ENCODE_ANY);

		printf("--- %s\n%s\n", json_string_value(json_object_get(m, "role")),
		       json_is_string(ct) ? json_string_value(ct) : (t ? t : ""));
		free(t);
	}
	ret = 0;
out:
	json_decref(pv);
	buf_free(&target);
	return ret;
}

/* ---- score ---- */

static const struct args_opt score_opts[] = {
	{"dataset", 'd', true},
	{"rules", 0, true},
	{NULL, 0, false},
};

/* The daemon buffers at most 1 MiB of a request: the file goes in batches
 * of whole lines below that. */
#define SCORE_BATCH ((size_t)960 << 10)

static const char *const score_counts[] = { "completions", "format_rewarded", "format_failures",
					    "accuracy_1", "accuracy_0_5", "accuracy_0", NULL };

/* Adds a batch's summary into sum (counts add; means weighted by count). */
static void score_sum_add(json_t *sum, json_t *part)
{
	double n0 = (double)json_integer_value(json_object_get(sum, "completions"));
	double n1 = (double)json_integer_value(json_object_get(part, "completions"));
	static const char *const means[] = { "mean_format_reward", "mean_accuracy_reward" };

	for (int i = 0; i < 2; i++) {
		double m0 = json_number_value(json_object_get(sum, means[i]));
		double m1 = json_number_value(json_object_get(part, means[i]));

		json_object_set_new(sum, means[i],
				    json_real(n0 + n1 > 0 ? (m0 * n0 + m1 * n1) / (n0 + n1) : 0.0));
	}
	for (int i = 0; score_counts[i]; i++)
		json_object_set_new(sum, score_counts[i],
				    json_integer(json_integer_value(json_object_get(sum, score_counts[i])) +
						 json_integer_value(json_object_get(part, score_counts[i]))));
}

/* Sends one batch; appends its results to all and its summary to sum. */
static int score_batch(struct ctx *c, const char *target, struct buf *b, json_t *all, json_t *sum,
		       json_t **head)
{
	struct http_req req = {.method = "POST", .target = target, .content_type = "application/x-ndjson"};
	json_t *res = NULL;
	int ret;

	req.body = b->base ? b->base : "";
	req.body_len = b->len;
	ret = api_call(c, &req, &res);
	if (ret == 0) {
		json_array_extend(all, json_object_get(res, "results"));
		score_sum_add(sum, json_object_get(res, "summary"));
		if (!*head)
			*head = json_incref(res);
	}
	json_decref(res);
	b->len = 0;
	return ret;
}

static int cmd_score(struct ctx *c)
{
	const char *file = c->args->pos[0];
	const char *ds = args_get(c->args, score_opts, "dataset");
	const char *rules = args_get(c->args, score_opts, "rules");
	json_t *all = json_array(), *sum = json_object(), *head = NULL, *v;
	struct buf target, batch;
	char *line = NULL;
	size_t cap = 0, i;
	ssize_t n;
	long lineno = 0;
	FILE *f = NULL;
	int ret = 1;

	buf_init(&target, 4096);
	buf_init(&batch, SCORE_BATCH + 1);
	if (!ds || !ds[0]) {
		ret = usage_error(c->cmd, "--dataset ID is required (the dataset holding the gold answers)");
		goto out;
	}
	if (!all || !sum || buf_puts(&target, "/v1/score?dataset=") || http_query_escape(&target, ds) ||
	    (rules && (buf_puts(&target, "&rules=") || http_query_escape(&target, rules)))) {
		fail(c, "out of memory or --dataset too long");
		goto out;
	}
	f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	if (!f) {
		fail(c, "%s: %s", file, strerror(errno));
		goto out;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		if ((size_t)n > SCORE_BATCH) {
			fail(c, "%s:%ld: line of %zd bytes, over the %zu-byte limit", file, lineno, n,
			     SCORE_BATCH);
			goto out;
		}
		if (batch.len + (size_t)n > SCORE_BATCH &&
		    score_batch(c, target.base, &batch, all, sum, &head))
			goto out;
		if (buf_append(&batch, line, (size_t)n) ||
		    (line[n - 1] != '\n' && buf_append(&batch, "\n", 1))) {
			fail(c, "out of memory");
			goto out;
		}
	}
	if (ferror(f)) {
		fail(c, "%s: read error", file);
		goto out;
	}
	if ((batch.len || !head) && score_batch(c, target.base, &batch, all, sum, &head))
		goto out;
	if (c->json) {
		json_object_set(head, "results", all);
		json_object_set(head, "summary", sum);
		print_json(head, false);
	} else {
		json_array_foreach(all, i, v)
			print_json(v, true);
		fprintf(stderr,
			"%lld completions (rules %s): format reward 1 on %lld, 0 on %lld; accuracy 1 on "
			"%lld, 0.5 on %lld, 0 on %lld; mean format %.3f, mean accuracy %.3f\n",
			(long long)json_integer_value(json_object_get(sum, "completions")),
			json_string_value(json_object_get(head, "rules")),
			(long long)json_integer_value(json_object_get(sum, "format_rewarded")),
			(long long)json_integer_value(json_object_get(sum, "format_failures")),
			(long long)json_integer_value(json_object_get(sum, "accuracy_1")),
			(long long)json_integer_value(json_object_get(sum, "accuracy_0_5")),
			(long long)json_integer_value(json_object_get(sum, "accuracy_0")),
			json_number_value(json_object_get(sum, "mean_format_reward")),
			json_number_value(json_object_get(sum, "mean_accuracy_reward")));
	}
	ret = 0;
out:
	if (f && f != stdin)
		fclose(f);
	free(line);
	json_decref(all);
	json_decref(sum);
	json_decref(head);
	buf_free(&target);
	buf_free(&batch);
	return ret;
}

/* ---- help and the table ---- */

static int cmd_help(struct ctx *c);

/* ---- eval-report, plot ---- */

/* Writes text to stdout, or to file (a temporary file renamed when it is
 * complete). 0, or 1 after printing why. */
static int write_output(struct ctx *c, const char *file, const char *text, size_t len)
{
	char tmp[4096];
	FILE *f;
	int fd;

	if (!file || strcmp(file, "-") == 0) {
		if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)
			return fail(c, "stdout: %s", strerror(errno));
		return 0;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", file) >= (int)sizeof(tmp))
		return fail(c, "%s: the name is too long", file);
	fd = mkstemp(tmp);
	if (fd < 0)
		return fail(c, "%s: %s", tmp, strerror(errno));
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return fail(c, "%s: %s", tmp, strerror(errno));
	}
	fchmod(fd, 0644);
	if (fwrite(text, 1, len, f) != len || fclose(f) != 0) {
		unlink(tmp);
		return fail(c, "%s: %s", file, strerror(errno));
	}
	if (rename(tmp, file) != 0) {
		unlink(tmp);
		return fail(c, "%s: %s", file, strerror(errno));
	}
	return 0;
}

static const struct args_opt eval_report_opts[] = {
	{"format", 'f', true},
	{"output", 'o', true},
	{NULL, 0, false},
};

static int cmd_eval_report(struct ctx *c)
{
	const char *format = args_get(c->args, eval_report_opts, "format");
	struct buf target, out;
	json_t *job = NULL;
	char err[256];
	int ret = 1;

	if (!format)
		format = "md";
	buf_init(&target, 4096);
	buf_init(&out, (size_t)64 << 20);
	if (job_path(&target, c->args->pos[0], NULL)) {
		fail(c, "job id too long");
		goto out;
	}
	if (api_get(c, target.base, &job))
		goto out;
	if (evalreport_render(&out, job, format, err, sizeof(err))) {
		if (strncmp(err, "--format", 8) == 0)
			ret = usage_error(c->cmd, "%s", err);
		else
			fail(c, "%s", err);
		goto out;
	}
	ret = write_output(c, args_get(c->args, eval_report_opts, "output"), out.base ? out.base : "",
			   out.len);
out:
	json_decref(job);
	buf_free(&target);
	buf_free(&out);
	return ret;
}

static const struct args_opt plot_opts[] = {
	{"what", 0, true},
	{"output", 'o', true},
	{"bucket", 0, true},
	{NULL, 0, false},
};

static int cmd_plot(struct ctx *c)
{
	const char *what = args_get(c->args, plot_opts, "what");
	const char *file = args_get(c->args, plot_opts, "output");
	const char *bucket = args_get(c->args, plot_opts, "bucket");
	struct buf target, out;
	json_t *job = NULL, *tl = NULL;
	int ret = 1, rc;

	if (!what || (strcmp(what, "progress") && strcmp(what, "eval") && strcmp(what, "funnel")))
		return usage_error(c->cmd, "--what must be progress, eval or funnel");
	if (!file)
		return usage_error(c->cmd, "-o FILE.svg is required");
	buf_init(&target, 4096);
	buf_init(&out, (size_t)16 << 20);
	if (job_path(&target, c->args->pos[0], NULL)) {
		fail(c, "job id too long");
		goto out;
	}
	if (api_get(c, target.base, &job))
		goto out;
	if (strcmp(what, "progress") == 0) {
		char title[200];

		if (buf_puts(&target, "/timeline") || (bucket && (buf_puts(&target, "?bucket=") ||
								   http_query_escape(&target, bucket)))) {
			fail(c, "job id too long");
			goto out;
		}
		if (api_get(c, target.base, &tl))
			goto out;
		snprintf(title, sizeof(title), "Progress: %.60s %.100s",
			 json_string_value(json_object_get(job, "id")) ? json_string_value(json_object_get(job, "id")) : "",
			 json_string_value(json_object_get(job, "name")) ? json_string_value(json_object_get(job, "name")) : "");
		title[utf8_prefix(title, strlen(title), sizeof(title) - 1)] = '\0';
		rc = plot_progress_svg(&out, tl, title);
	} else if (strcmp(what, "eval") == 0) {
		rc = plot_eval_svg(&out, job);
		if (rc == -EINVAL) {
			fail(c, "%s has no eval report yet (it comes at the end of a checkpoint)",
			     c->args->pos[0]);
			goto out;
		}
	} else {
		rc = plot_funnel_svg(&out, job);
	}
	if (rc) {
		fail(c, "the plot is too large");
		goto out;
	}
	ret = write_output(c, file, out.base, out.len);
out:
	json_decref(job);
	json_decref(tl);
	buf_free(&target);
	buf_free(&out);
	return ret;
}

static const struct cmd commands[] = {
	{"import", cmd_import, import_opts, 1, 1, "import FILE [--name NAME] [--format F] [--skip-invalid]",
	 "Streams a dataset file to the daemon and prints the new dataset id.\n"
	 "F is the dataset's layout, native by default; see `medthink formats` for the others.\n"
	 "--name defaults to the file name without extension. Image paths in a native file are\n"
	 "read relative to it and sent as data: URLs. --skip-invalid stores the good lines and\n"
	 "lists the bad ones on stderr."},
	{"submit", cmd_submit, submit_opts, 1, 1, "submit JOB.json [--dry-run]",
	 "Sends a job spec (SPEC 6) to the daemon and prints the new job id. --dry-run\n"
	 "validates it and prints the estimate (items, calls per step, tokens, cost);\n"
	 "it creates nothing."},
	{"status", cmd_status, status_opts, 0, 1, "status [JOB] [--watch]",
	 "Shows one job (counts per step, rate, ETA, tokens, cost, state, eval accuracy) or, with\n"
	 "no JOB, one line per job. --watch redraws progress bars every 0.5 s until the job is\n"
	 "done, failed or cancelled (plain lines when stdout is not a terminal); it exits 0 when\n"
	 "the job is done and 1 when it failed or was cancelled."},
	{"list", cmd_list, NULL, 0, 0, "list", "Lists datasets and jobs, one a line."},
	{"cancel", cmd_cancel, NULL, 1, 1, "cancel JOB", "Cancels a job."},
	{"pause", cmd_pause, NULL, 1, 1, "pause JOB", "Pauses a job; calls in flight finish."},
	{"resume", cmd_resume, resume_opts, 1, 1, "resume JOB [--budget-usd N]",
	 "Resumes a paused job (e.g. after a manual retrain). --budget-usd raises the budget of a "
	 "job that stopped at it."},
	{"export", cmd_export, export_opts, 1, 1,
	 "export JOB --set 1|2 --format F [-o FILE] [--no-ids]",
	 "Streams SFT set 1 or 2 of a job as JSONL to stdout, or to FILE (written to a temporary\n"
	 "file and renamed when complete); F is the record layout, see `medthink formats`.\n"
	 "--no-ids leaves out the per-record \"id\" field."},
	{"logs", cmd_logs, logs_opts, 1, 1, "logs JOB [--follow]",
	 "Prints the job's events; --follow keeps streaming until the job ends."},
	{"show", cmd_show, NULL, 2, 2, "show JOB ITEM",
	 "One item's whole story in a job: the item (question, options, gold) and, for each step\n"
	 "it reached, the task's state, attempts and reason, the artifact it wrote and the call\n"
	 "behind it (prompt, reply, tokens, cost, latency). ITEM is the item's id or its seq."},
	{"retry", cmd_retry, retry_opts, 1, 1, "retry JOB --failed",
	 "Sets the job's failed tasks back to pending (attempts reset) and runs the job again\n"
	 "from the earliest phase that had one; a done, failed or paused job becomes running.\n"
	 "A cancelled job cannot be retried."},
	{"prompt-preview", cmd_prompt_preview, preview_opts, 1, 1,
	 "prompt-preview JOB --step STEP --item ITEM",
	 "Prints the messages STEP would send for ITEM, rendered from the job's prompt snapshot\n"
	 "as a first attempt; nothing is called or stored."},
	{"eval-report", cmd_eval_report, eval_report_opts, 1, 1,
	 "eval-report JOB [--format md|json|csv] [-o FILE]",
	 "Writes the job's evaluation table to stdout, or to FILE: accuracy at each checkpoint\n"
	 "(baseline, stage1, stage2) overall and by topic with its 95% interval, the change from\n"
	 "the baseline with its paired 95% interval, and the ungraded, judged and failed counts\n"
	 "(docs/evaluation.md). F is md (default), json or csv."},
	{"plot", cmd_plot, plot_opts, 1, 1, "plot JOB --what progress|eval|funnel -o FILE.svg [--bucket S]",
	 "Draws an SVG chart of the job: progress (calls and finished item steps over time, from\n"
	 "the timeline route; --bucket S seconds per point), eval (accuracy per checkpoint and per\n"
	 "topic with 95% interval whiskers) or funnel (screened -> kept -> explained; answered ->\n"
	 "wrong -> corrected)."},
	{"formats", cmd_formats, NULL, 0, 0, "formats",
	 "Lists the import and export formats the daemon knows, with a line on each (--json: the\n"
	 "daemon's JSON). The daemon checks --format against these."},
	{"health", cmd_health, NULL, 0, 0, "health", "Checks that the daemon answers."},
	{"score", cmd_score, score_opts, 1, 1, "score FILE --dataset ID [--rules r1|strict]",
	 "Scores completions (JSONL lines {\"id\":ITEM,\"completion\":TEXT}; FILE - reads stdin)\n"
	 "against the gold answers of dataset ID with the rule rewards (r1: MedVLM-R1's, the\n"
	 "default; strict). Prints {\"id\",\"format_reward\",\"accuracy_reward\"} per line and a\n"
	 "summary on stderr (--json: one object with results and summary)."},
	{"help", cmd_help, NULL, 0, 1, "help [COMMAND]", "Shows the commands, or one command's help."},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cmd *cmd_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void print_overview(FILE *f)
{
	fprintf(f, "usage: medthink [-s SOCKET] [--json] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  medthink %s\n", commands[i].usage);
	fprintf(f, "\noptions (anywhere on the line):\n"
		   "  -s, --socket PATH  the daemon's socket (default: $MEDTHINK_SOCKET, else %s)\n"
		   "  --json             print the daemon's JSON objects instead of text\n"
		   "  -h, --help         help; with a command, that command's help\n"
		   "  --version          print the version\n"
		   "\nexit codes: 0 success, 1 failure, 2 usage error\n",
		DEFAULT_SOCKET);
}

static void print_cmd_help(const struct cmd *cmd)
{
	printf("usage: medthink %s\n\n%s\n", cmd->usage, cmd->help);
}

static int cmd_help(struct ctx *c)
{
	const struct cmd *cmd;

	if (c->args->npos == 0) {
		print_overview(stdout);
		return 0;
	}
	cmd = cmd_find(c->args->pos[0]);
	if (!cmd)
		return usage_error(c->cmd, "unknown command \"%s\"", c->args->pos[0]);
	print_cmd_help(cmd);
	return 0;
}

int main(int argc, char **argv)
{
	struct args a;
	struct ctx c;
	const struct cmd *cmd;
	const char *env;
	int ci, ret;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	args_init(&a);
	/* --json anywhere on the line makes even a usage error JSON */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		json_errors = json_errors || strcmp(argv[i], "--json") == 0;
	if (args_parse_global(&a, argc, argv, &ci))
		return usage_error(NULL, "%s", a.err);
	if (a.version) {
		printf("medthink %s\n", MEDTHINK_VERSION);
		return 0;
	}
	if (ci >= argc) {
		if (a.help) {
			print_overview(stdout);
			return 0;
		}
		print_overview(stderr);
		json_error_print("usage", "no command given", 0);
		return EXIT_USAGE;
	}
	cmd = cmd_find(argv[ci]);
	if (!cmd)
		return usage_error(NULL, "unknown command \"%s\"", argv[ci]);
	if (args_parse(&a, cmd->opts, argc - ci - 1, argv + ci + 1))
		return usage_error(cmd, "%s", a.err);
	if (a.help) {
		print_cmd_help(cmd);
		return 0;
	}
	if (a.npos < cmd->min_pos) {
		/* name the missing operand from the usage line: "export JOB ..." */
		const char *u = cmd->usage + strlen(cmd->name);
		int n;

		while (*u == ' ')
			u++;
		for (int k = 0; k < a.npos && *u; k++) {
			u = strchr(u, ' ');
			u = u ? u + 1 : "";
		}
		n = (int)strcspn(u, " ");
		return usage_error(cmd, "missing %.*s", n ? n : 8, n ? u : "argument");
	}
	if (a.npos > cmd->max_pos)
		return usage_error(cmd, "unexpected argument \"%s\"", a.pos[cmd->max_pos]);

	env = getenv("MEDTHINK_SOCKET");
	c.sock = a.socket ? a.socket : env && env[0] ? env : DEFAULT_SOCKET;
	c.json = a.json;
	c.cmd = cmd;
	c.args = &a;
	ret = cmd->fn(&c);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		stdout_check();
		if (ret == 0)
			fprintf(stderr, "medthink: %s: writing stdout: %s\n", cmd->name, strerror(errno));
		ret = ret ? ret : 1;
	}
	return ret;
}
