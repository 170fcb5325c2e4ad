/* layers: common */
/* Unit tests of the CLI's pure parts. The CLI is not an archive, so its
 * modules are included here directly (h2o style). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../cli/args.c"
#include "../../cli/http.c"
#include "../../cli/images.c"
#include "../../cli/evalreport.c"
#include "../../cli/render.c"
#include "../../cli/sse.c"

/* ---- args ---- */

static const struct args_opt t_export_opts[] = {
	{"set", 0, true},
	{"format", 'f', true},
	{"output", 'o', true},
	{"no-ids", 0, false},
	{NULL, 0, false},
};

static void test_args_global(void **state)
{
	char *argv[] = {"medthink", "--json", "-s", "/tmp/s.sock", "status", "job_1", NULL};
	char *argv2[] = {"medthink", "--socket=/a", "-s/b", "--version", NULL};
	char *argv3[] = {"medthink", "--frob", "list", NULL};
	char *argv4[] = {"medthink", "-s", NULL};
	struct args a;
	int ci;
	(void)state;

	args_init(&a);
	assert_int_equal(args_parse_global(&a, 6, argv, &ci), 0);
	assert_true(a.json);
	assert_string_equal(a.socket, "/tmp/s.sock");
	assert_int_equal(ci, 4);

	args_init(&a);
	assert_int_equal(args_parse_global(&a, 4, argv2, &ci), 0);
	assert_string_equal(a.socket, "/b"); /* the last one wins */
	assert_true(a.version);
	assert_int_equal(ci, 4); /* no command */

	args_init(&a);
	assert_int_equal(args_parse_global(&a, 3, argv3, &ci), -EINVAL);
	assert_non_null(strstr(a.err, "--frob"));

	args_init(&a);
	assert_int_equal(args_parse_global(&a, 2, argv4, &ci), -EINVAL);
	assert_non_null(strstr(a.err, "needs a value"));
}

static void test_args_command(void **state)
{
	char *argv[] = {"job_3", "--set", "2", "--format=openai", "-oout.jsonl", "--no-ids", "--json", NULL};
	char *argv2[] = {"-f", "grpo", "job_3", "--set=1", "--", "--not-an-option", NULL};
	struct args a;
	(void)state;

	args_init(&a);
	assert_int_equal(args_parse(&a, t_export_opts, 7, argv), 0);
	assert_int_equal(a.npos, 1);
	assert_string_equal(a.pos[0], "job_3");
	assert_string_equal(args_get(&a, t_export_opts, "set"), "2");
	assert_string_equal(args_get(&a, t_export_opts, "format"), "openai");
	assert_string_equal(args_get(&a, t_export_opts, "output"), "out.jsonl");
	assert_string_equal(args_get(&a, t_export_opts, "no-ids"), "1");
	assert_null(args_get(&a, t_export_opts, "nothing"));
	assert_true(a.json);

	args_init(&a);
	assert_int_equal(args_parse(&a, t_export_opts, 6, argv2), 0);
	assert_int_equal(a.npos, 2);
	assert_string_equal(a.pos[1], "--not-an-option");
	assert_string_equal(args_get(&a, t_export_opts, "format"), "grpo");
	assert_string_equal(args_get(&a, t_export_opts, "set"), "1");
	assert_null(args_get(&a, t_export_opts, "no-ids"));
}

static void test_args_errors(void **state)
{
	char *missing[] = {"job", "--set", NULL};
	char *flagval[] = {"--no-ids=1", NULL};
	char *unknown[] = {"--colour", NULL};
	char *ushort[] = {"-x", NULL};
	char *many[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", NULL};
	char *help[] = {"-h", NULL};
	struct args a;
	(void)state;

	args_init(&a);
	assert_int_equal(args_parse(&a, t_export_opts, 2, missing), -EINVAL);
	assert_string_equal(a.err, "option --set needs a value");
	args_init(&a);
	assert_int_equal(args_parse(&a, t_export_opts, 1, flagval), -EINVAL);
	assert_non_null(strstr(a.err, "takes no value"));
	args_init(&a);
	assert_int_equal(args_parse(&a, t_export_opts, 1, unknown), -EINVAL);
	assert_string_equal(a.err, "unknown option --colour");
	args_init(&a);
	assert_int_equal(args_parse(&a, NULL, 1, ushort), -EINVAL);
	args_init(&a);
	assert_int_equal(args_parse(&a, NULL, 9, many), -EINVAL);
	args_init(&a);
	assert_int_equal(args_parse(&a, NULL, 1, help), 0);
	assert_true(a.help);
}

/* ---- HTTP response parser ---- */

struct collect {
	int status;
	int heads;
	char ctype[128];
	struct buf body;
	int stop_after; /* on_body returns 7 once body reaches this many bytes */
	int nheaders;
	char partial[128]; /* X-Medthink-Partial */
};

static int c_header(void *ctx, const char *name, const char *value)
{
	struct collect *c = ctx;

	assert_int_equal(c->heads, 0); /* before on_head */
	c->nheaders++;
	if (strcasecmp(name, "x-medthink-partial") == 0)
		snprintf(c->partial, sizeof(c->partial), "%s", value);
	return 0;
}

static int c_head(void *ctx, int status, const char *ctype)
{
	struct collect *c = ctx;

	c->status = status;
	c->heads++;
	snprintf(c->ctype, sizeof(c->ctype), "%s", ctype);
	return 0;
}

static int c_body(void *ctx, const char *p, size_t n)
{
	struct collect *c = ctx;

	assert_true(n > 0);
	assert_int_equal(buf_append(&c->body, p, n), 0);
	if (c->stop_after && c->body.len >= (size_t)c->stop_after)
		return 7;
	return 0;
}

/* Parses raw split into pieces at cut1 and cut2; returns feed/eof status. */
static int parse_split(const char *raw, size_t len, size_t cut1, size_t cut2, struct collect *c, bool eof)
{
	struct http_sink sink = {c_head, c_body, c, c_header};
	struct http_resp *r = calloc(1, sizeof(*r));
	int rc;

	assert_non_null(r);
	memset(c, 0, sizeof(*c));
	buf_init(&c->body, 1 << 20);
	http_resp_init(r, "GET", &sink);
	rc = http_resp_feed(r, raw, cut1);
	if (!rc)
		rc = http_resp_feed(r, raw + cut1, cut2 - cut1);
	if (!rc)
		rc = http_resp_feed(r, raw + cut2, len - cut2);
	if (!rc && eof)
		rc = http_resp_eof(r);
	else if (!rc && !http_resp_done(r))
		rc = -EAGAIN;
	free(r);
	return rc;
}

static void test_http_content_length(void **state)
{
	static const char raw[] = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
				  "content-length: 11\r\n\r\n{\"id\":\"x\"}\nTRAILING-GARBAGE";
	size_t len = strlen(raw);
	struct collect c;
	(void)state;

	for (size_t i = 0; i <= len; i++) {
		assert_int_equal(parse_split(raw, len, i, i, &c, false), 0);
		assert_int_equal(c.status, 201);
		assert_int_equal(c.heads, 1);
		assert_string_equal(c.ctype, "application/json");
		assert_string_equal(c.body.base, "{\"id\":\"x\"}\n");
		buf_free(&c.body);
	}
}

static const char chunked_raw[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
				  "5\r\nhello\r\n"
				  "1;ext=1\r\n \r\n"
				  "A\r\n0123456789\r\n"
				  "00006\r\n world\r\n"
				  "0\r\nX-Trailer: yes\r\n\r\n";

/* Header fields of the final response reach on_header, trimmed, before on_head. */
static void test_http_headers(void **state)
{
	static const char raw[] = "HTTP/1.1 100 Continue\r\nX-Medthink-Partial: interim\r\n\r\n"
				  "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
				  "X-Medthink-Partial:   job_3 is running in stage1: set 1 is still being made  \r\n"
				  "Content-Length: 3\r\n\r\n{}\n";
	size_t len = strlen(raw);
	struct collect c;
	(void)state;

	for (size_t i = 0; i <= len; i += 7) {
		assert_int_equal(parse_split(raw, len, i, i, &c, false), 0);
		assert_int_equal(c.status, 200);
		assert_int_equal(c.nheaders, 3);
		assert_string_equal(c.partial, "job_3 is running in stage1: set 1 is still being made");
		buf_free(&c.body);
	}
}

static void test_http_chunked_every_split(void **state)
{
	size_t len = strlen(chunked_raw);
	struct collect c;
	(void)state;

	/* every pair of cut points: each byte boundary, and every 3-piece split */
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			int rc = parse_split(chunked_raw, len, i, j, &c, false);

			if (rc)
				fail_msg("split %zu/%zu: rc %d", i, j, rc);
			assert_int_equal(c.status, 200);
			assert_int_equal(c.heads, 1);
			assert_string_equal(c.body.base, "hello 0123456789 world");
			buf_free(&c.body);
		}
	}
}

static void test_http_chunked_bytewise(void **state)
{
	struct collect c;
	struct http_sink sink = {c_head, c_body, &c, NULL};
	struct http_resp *r = calloc(1, sizeof(*r));
	size_t len = strlen(chunked_raw);
	(void)state;

	memset(&c, 0, sizeof(c));
	buf_init(&c.body, 1 << 20);
	http_resp_init(r, "GET", &sink);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(http_resp_feed(r, chunked_raw + i, 1), 0);
	assert_true(http_resp_done(r));
	assert_int_equal(http_resp_eof(r), 0);
	assert_string_equal(c.body.base, "hello 0123456789 world");
	buf_free(&c.body);
	free(r);
}

static void test_http_lf_and_close_delimited(void **state)
{
	static const char raw[] = "HTTP/1.0 200 OK\nContent-Type: text/plain\n\nline one\nline two\n";
	static const char cut[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
	static const char cutlen[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel";
	static const char empty[] = "";
	struct collect c;
	(void)state;

	assert_int_equal(parse_split(raw, strlen(raw), 10, 50, &c, true), 0);
	assert_string_equal(c.body.base, "line one\nline two\n");
	buf_free(&c.body);

	/* a stream cut off before its end is an error, not a short success */
	assert_int_equal(parse_split(cut, strlen(cut), 0, 0, &c, true), -EPROTO);
	buf_free(&c.body);
	assert_int_equal(parse_split(cutlen, strlen(cutlen), 0, 0, &c, true), -EPROTO);
	buf_free(&c.body);
	assert_int_equal(parse_split(empty, 0, 0, 0, &c, true), -EPROTO);
	buf_free(&c.body);
}

static void test_http_interim_and_no_body(void **state)
{
	static const char raw[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n";
	static const char zero[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct collect c;
	(void)state;

	assert_int_equal(parse_split(raw, strlen(raw), 3, 30, &c, false), 0);
	assert_int_equal(c.status, 204);
	assert_int_equal(c.heads, 1);
	assert_int_equal(c.body.len, 0);
	buf_free(&c.body);
	assert_int_equal(parse_split(zero, strlen(zero), 0, 0, &c, false), 0);
	assert_int_equal(c.status, 200);
	buf_free(&c.body);
}

static void test_http_malformed(void **state)
{
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nNoColonHere\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY\r\n",
	};
	struct collect c;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse_split(bad[i], strlen(bad[i]), 0, 0, &c, false);

		if (rc != -EPROTO)
			fail_msg("case %zu: rc %d", i, rc);
		buf_free(&c.body);
	}
}

static void test_http_caps_and_stop(void **state)
{
	static const char stop[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
	struct collect c;
	struct buf big;
	(void)state;

	/* a head over the cap */
	buf_init(&big, 1 << 20);
	assert_int_equal(buf_puts(&big, "HTTP/1.1 200 OK\r\n"), 0);
	while (big.len < HTTP_MAX_HEAD + 100)
		assert_int_equal(buf_puts(&big, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"), 0);
	assert_int_equal(parse_split(big.base, big.len, 0, 0, &c, false), -E2BIG);
	buf_free(&c.body);
	buf_reset(&big);
	/* an endless chunk-size line */
	assert_int_equal(buf_puts(&big, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
	for (int i = 0; i < 300; i++)
		assert_int_equal(buf_puts(&big, "0"), 0);
	assert_int_equal(parse_split(big.base, big.len, 0, 0, &c, false), -E2BIG);
	buf_free(&c.body);
	buf_free(&big);

	/* a sink's non-zero return stops the parse and comes back */
	memset(&c, 0, sizeof(c));
	{
		struct http_sink sink = {c_head, c_body, &c, NULL};
		struct http_resp *r = calloc(1, sizeof(*r));

		buf_init(&c.body, 1024);
		c.stop_after = 4;
		http_resp_init(r, "GET", &sink);
		assert_int_equal(http_resp_feed(r, stop, strlen(stop)), 7);
		buf_free(&c.body);
		free(r);
	}
}

static void test_http_head_method(void **state)
{
	static const char raw[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
	struct collect c;
	struct http_sink sink = {c_head, c_body, &c, NULL};
	struct http_resp r;
	(void)state;

	memset(&c, 0, sizeof(c));
	buf_init(&c.body, 64);
	http_resp_init(&r, "HEAD", &sink);
	assert_int_equal(http_resp_feed(&r, raw, strlen(raw)), 0);
	assert_true(http_resp_done(&r));
	buf_free(&c.body);
}

static void test_http_query_escape(void **state)
{
	struct buf b;
	(void)state;

	buf_init(&b, 256);
	assert_int_equal(http_query_escape(&b, "my set/1&x=é~_.-"), 0);
	assert_string_equal(b.base, "my%20set%2F1%26x%3D%C3%A9~_.-");
	buf_free(&b);
	buf_init(&b, 4);
	assert_int_equal(http_query_escape(&b, "a b"), -ENOBUFS);
	buf_free(&b);
}

static void test_http_connect_missing(void **state)
{
	char longp[200];
	(void)state;

	assert_int_equal(http_connect("/nonexistent/dir/medthinkd.sock"), -ENOENT);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(http_connect(longp), -ENAMETOOLONG);
}

/* ---- SSE ---- */

struct events {
	struct buf log;
	int n;
};

static int ev_collect(void *ctx, const char *event, const char *data, size_t len)
{
	struct events *e = ctx;

	assert_int_equal(strlen(data), len);
	e->n++;
	return buf_printf(&e->log, "[%s|%s]", event, data);
}

static void test_sse_every_split(void **state)
{
	static const char raw[] = ": keep-alive\n\nevent: state\ndata: {\"state\":\"running\"}\n\n"
				  "event: progress\r\ndata: a\r\ndata:b\r\n\r\n"
				  "data: plain\rid: 7\r\rretry: 10\n\n"
				  "event: partial\ndata: never dispatched";
	static const char want[] = "[state|{\"state\":\"running\"}][progress|a\nb][message|plain]";
	size_t len = strlen(raw);
	(void)state;

	for (size_t i = 0; i <= len; i++) {
		struct events e;
		struct sse s;

		memset(&e, 0, sizeof(e));
		buf_init(&e.log, 4096);
		sse_init(&s, ev_collect, &e);
		assert_int_equal(sse_feed(&s, raw, i), 0);
		assert_int_equal(sse_feed(&s, raw + i, len - i), 0);
		if (strcmp(e.log.base, want) != 0)
			fail_msg("split %zu: got %s", i, e.log.base);
		assert_int_equal(e.n, 3);
		sse_free(&s);
		buf_free(&e.log);
	}
}

static int ev_stop(void *ctx, const char *event, const char *data, size_t len)
{
	(void)ctx;
	(void)event;
	(void)data;
	(void)len;
	return 1;
}

static void test_sse_stop_and_cap(void **state)
{
	struct sse s;
	char *big;
	(void)state;

	sse_init(&s, ev_stop, NULL);
	assert_int_equal(sse_feed(&s, "data: x\n\ndata: y\n\n", 18), 1);
	sse_free(&s);

	big = malloc(SSE_MAX_EVENT + 16);
	memset(big, 'a', SSE_MAX_EVENT + 16);
	memcpy(big, "data: ", 6);
	sse_init(&s, ev_stop, NULL);
	assert_int_equal(sse_feed(&s, big, SSE_MAX_EVENT + 16), -ENOBUFS);
	sse_free(&s);
	free(big);
}

/* ---- images / data: URLs ---- */

static void test_base64(void **state)
{
	static const char *const vec[][2] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
	};
	char out[64];
	unsigned char bin[] = {0xfb, 0xff, 0xbf};
	(void)state;

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		size_t n = strlen(vec[i][0]);

		assert_int_equal(base64_encode((const unsigned char *)vec[i][0], n, out), strlen(vec[i][1]));
		assert_string_equal(out, vec[i][1]);
		assert_int_equal(base64_len(n), strlen(vec[i][1]));
	}
	base64_encode(bin, 3, out);
	assert_string_equal(out, "+/+/");
}

static void test_mime(void **state)
{
	(void)state;
	assert_string_equal(images_mime("a/b.png"), "image/png");
	assert_string_equal(images_mime("x.JPG"), "image/jpeg");
	assert_string_equal(images_mime("x.jpeg"), "image/jpeg");
	assert_string_equal(images_mime("x.gif"), "image/gif");
	assert_string_equal(images_mime("x.webp"), "image/webp");
	assert_string_equal(images_mime("x.bmp"), "image/bmp");
	assert_null(images_mime("x.tiff"));
	assert_null(images_mime("x"));
	assert_null(images_mime("dir.png/x"));
	assert_null(images_mime("x."));
}

struct tmpdir {
	char path[64];
};

static void tmp_make(struct tmpdir *t)
{
	snprintf(t->path, sizeof(t->path), "/tmp/test_cli.XXXXXX");
	assert_non_null(mkdtemp(t->path));
}

static void tmp_write(const struct tmpdir *t, const char *name, const void *p, size_t n)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->path, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void tmp_remove(const struct tmpdir *t)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->path);
	assert_int_equal(system(cmd), 0);
}

static int buf_sink(void *ctx, const void *p, size_t n) { return buf_append(ctx, p, n); }

/* Small files that are images by their first bytes. */
static const char PNG[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
#define PNG_LEN (sizeof(PNG) - 1)
static const char JPEG[] = "\xff\xd8\xff\xe0\0\x10JFIF";
#define JPEG_LEN (sizeof(JPEG) - 1)
static const char GIF[] = "GIF89a\x01\0\x01\0";
#define GIF_LEN (sizeof(GIF) - 1)

/* "data:MIME;base64,..." of n bytes of p, in a static buffer. */
static const char *data_url_of(const char *mime, const void *p, size_t n)
{
	static char out[512];
	int k = snprintf(out, sizeof(out), "data:%s;base64,", mime);

	assert_true(base64_len(n) + (size_t)k < sizeof(out));
	base64_encode(p, n, out + k);
	return out;
}

static void test_data_url(void **state)
{
	struct tmpdir t;
	char path[256], err[512];
	char *url;
	(void)state;

	tmp_make(&t);
	tmp_write(&t, "i.png", PNG, PNG_LEN);
	tmp_write(&t, "i.txt", PNG, PNG_LEN);
	snprintf(path, sizeof(path), "%s/i.png", t.path);
	url = images_data_url(path, 1024, err, sizeof(err));
	assert_non_null(url);
	assert_string_equal(url, data_url_of("image/png", PNG, PNG_LEN));
	free(url);
	assert_null(images_data_url(path, 5, err, sizeof(err)));
	assert_non_null(strstr(err, "over the 5 byte limit"));
	snprintf(path, sizeof(path), "%s/i.txt", t.path);
	assert_null(images_data_url(path, 1024, err, sizeof(err)));
	assert_non_null(strstr(err, "unsupported type"));
	tmp_remove(&t);
}

static void test_magic(void **state)
{
	unsigned char bmp[18] = {'B', 'M', 0, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0};
	(void)state;

	assert_string_equal(images_magic_mime((const unsigned char *)PNG, PNG_LEN), "image/png");
	assert_string_equal(images_magic_mime((const unsigned char *)JPEG, JPEG_LEN), "image/jpeg");
	assert_string_equal(images_magic_mime((const unsigned char *)GIF, GIF_LEN), "image/gif");
	assert_string_equal(images_magic_mime((const unsigned char *)"RIFF\x10\0\0\0WEBPVP8 ", 16), "image/webp");
	assert_string_equal(images_magic_mime(bmp, sizeof(bmp)), "image/bmp");
	bmp[14] = 41; /* not a DIB header size */
	assert_null(images_magic_mime(bmp, sizeof(bmp)));
	assert_null(images_magic_mime((const unsigned char *)PNG, 7)); /* cut short */
	assert_null(images_magic_mime((const unsigned char *)"RIFF\x10\0\0\0WAVEfmt ", 16));
	assert_null(images_magic_mime((const unsigned char *)"root:x:0:0:root", 15));
	assert_null(images_magic_mime((const unsigned char *)"", 0));
}

/* Streams text through images_stream with images in dir; returns rc. */
static int stream_text(const char *text, const char *dir, uint64_t max, struct buf *out, struct images_stats *st,
		       char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	struct images_stats dry;
	int rc;

	assert_non_null(f);
	rc = images_stream(f, dir, max, false, NULL, NULL, NULL, &dry, err, errlen);
	if (rc == 0) {
		rewind(f);
		rc = images_stream(f, dir, max, false, NULL, buf_sink, out, st, err, errlen);
		/* the dry run announces exactly what the real run sends */
		assert_int_equal(rc, 0);
		assert_int_equal(dry.bytes, st->bytes);
		assert_int_equal(st->bytes, out->len);
	}
	fclose(f);
	return rc;
}

static void test_images_stream(void **state)
{
	struct tmpdir t;
	struct buf out;
	struct images_stats st;
	char err[512], want[4096], text[1024], jpeg[512], png[512], gif[512];
	const char *nl;
	(void)state;

	snprintf(jpeg, sizeof(jpeg), "%s", data_url_of("image/jpeg", JPEG, JPEG_LEN));
	snprintf(png, sizeof(png), "%s", data_url_of("image/png", PNG, PNG_LEN));
	snprintf(gif, sizeof(gif), "%s", data_url_of("image/gif", GIF, GIF_LEN));
	snprintf(text, sizeof(text),
		 "{\"id\":\"1\",\"question\":\"Q\",\"answer\":\"A\",\"images\":[\"a.png\",\"%s\"]}\n"
		 "{\"id\":\"2\",  \"question\":\"no images here\" , \"answer\":\"B\"}\n"
		 "not json but says \"images\"\n"
		 "\n"
		 "{\"question\":\"q\\u00e9\",\"answer\":\"x\",\"images\":[\"sub/b.gif\",\"a.png\"],\"meta\":{\"n\":1}}",
		 jpeg);
	tmp_make(&t);
	tmp_write(&t, "a.png", PNG, PNG_LEN);
	assert_int_equal(mkdir(strcat(strcpy(want, t.path), "/sub"), 0700), 0);
	tmp_write(&t, "sub/b.gif", GIF, GIF_LEN);
	buf_init(&out, 1 << 20);
	assert_int_equal(stream_text(text, t.path, 1024, &out, &st, err, sizeof(err)), 0);
	assert_int_equal(st.lines, 5);
	assert_int_equal(st.images, 3);
	snprintf(want, sizeof(want),
		 "{\"id\":\"1\",\"question\":\"Q\",\"answer\":\"A\",\"images\":[\"%s\",\"%s\"]}\n"
		 "{\"id\":\"2\",  \"question\":\"no images here\" , \"answer\":\"B\"}\n"
		 "not json but says \"images\"\n"
		 "\n"
		 "{\"question\":\"q\xc3\xa9\",\"answer\":\"x\",\"images\":[\"%s\",\"%s\"],\"meta\":{\"n\":1}}",
		 png, jpeg, gif, png);
	assert_string_equal(out.base, want);
	/* the line count is kept, so the daemon's line numbers are the file's */
	nl = out.base;
	for (int n = 0; n < 4; n++) {
		nl = strchr(nl, '\n');
		assert_non_null(nl);
		nl++;
	}
	assert_null(strchr(nl, '\n'));
	buf_free(&out);
	tmp_remove(&t);
}

/* One line with images [IMG] through images_stream in dir: returns rc. */
static int stream_one(const char *dir, const char *img, uint64_t max, char *err, size_t errlen)
{
	char text[1024];
	struct buf out;
	struct images_stats st;
	int rc;

	snprintf(text, sizeof(text), "{\"id\":\"q-7\",\"question\":\"q\",\"answer\":\"A\",\"images\":[\"%s\"]}\n", img);
	buf_init(&out, 1 << 20);
	rc = stream_text(text, dir, max, &out, &st, err, errlen);
	buf_free(&out);
	return rc;
}

static void test_images_errors(void **state)
{
	struct tmpdir t;
	struct buf out;
	struct images_stats st;
	char err[512];
	(void)state;

	tmp_make(&t);
	tmp_write(&t, "big.webp", "RIFF\x10\0\0\0WEBPVP8 ", 16);
	buf_init(&out, 1 << 20);

	assert_int_equal(stream_text("{\"a\":1}\n{\"question\":\"q\",\"images\":[\"gone.png\"]}\n", t.path, 1024, &out,
				     &st, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "line 2: item without \"id\": image \"gone.png\": No such file or directory");

	assert_int_equal(stream_text("{\"images\":[\"big.webp\"]}\n", t.path, 9, &out, &st, err, sizeof(err)),
			 -EFBIG);
	assert_non_null(strstr(err, "line 1: item without \"id\": image"));
	assert_non_null(strstr(err, "big.webp\": 16 bytes, over the 9 byte limit"));

	assert_int_equal(stream_text("{\"images\":[\"x.tiff\"]}", t.path, 1024, &out, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 1: item without \"id\": image \"x.tiff\": unsupported type"));

	assert_int_equal(mkdir(strcat(strcpy(err, t.path), "/sub.png"), 0700), 0);
	assert_int_equal(stream_text("{\"images\":[\"sub.png\"]}", t.path, 1024, &out, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));

	/* a marker-like byte sequence in the data is refused, not misplaced */
	assert_int_equal(stream_text("{\"q\":\"\x7fmtimg:0\x7f\",\"images\":[\"big.webp\"]}", t.path, 1024, &out,
				     &st, err, sizeof(err)),
			 -EINVAL);

	/* images that are not a list of strings go as they are; the daemon judges them */
	buf_reset(&out);
	assert_int_equal(stream_text("{\"images\":\"x.png\"}\n{\"images\":[1]}\n", t.path, 1024, &out, &st, err,
				     sizeof(err)),
			 0);
	assert_string_equal(out.base, "{\"images\":\"x.png\"}\n{\"images\":[1]}\n");
	assert_int_equal(st.images, 0);
	buf_free(&out);
	tmp_remove(&t);
}

/* The path rules (issue 9): a dataset cannot make the CLI send a file from
 * outside its folder, nor a file that is not an image. */
static void test_images_paths(void **state)
{
	struct tmpdir t, outside;
	char err[512], path[256], target[256], big[4096];
	(void)state;

	tmp_make(&t);
	tmp_make(&outside);
	tmp_write(&outside, "secret.png", PNG, PNG_LEN); /* even an image: it is not the dataset's */
	tmp_write(&outside, "secret.txt", "API_KEY=sk-1\n", 13);
	tmp_write(&t, "ok.png", PNG, PNG_LEN);
	tmp_write(&t, "photo.jpg", JPEG, JPEG_LEN);
	tmp_write(&t, "text.png", "just some text, not an image\n", 29);
	memcpy(big, PNG, PNG_LEN);
	memset(big + PNG_LEN, 'x', sizeof(big) - PNG_LEN);
	tmp_write(&t, "big.png", big, sizeof(big));
	snprintf(path, sizeof(path), "%s/sub", t.path);
	assert_int_equal(mkdir(path, 0700), 0);

	/* valid PNG and JPEG */
	assert_int_equal(stream_one(t.path, "ok.png", 1024, err, sizeof(err)), 0);
	assert_int_equal(stream_one(t.path, "photo.jpg", 1024, err, sizeof(err)), 0);
	assert_int_equal(stream_one(t.path, "sub/../ok.png", 1024, err, sizeof(err)), 0);

	/* an absolute path, even to a file inside the folder */
	snprintf(path, sizeof(path), "%s/ok.png", t.path);
	assert_int_equal(stream_one(t.path, path, 1024, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "line 1: item \"q-7\": image \""));
	assert_non_null(strstr(err, "an absolute path"));

	/* a ../ escape */
	snprintf(path, sizeof(path), "../%s/secret.png", strrchr(outside.path, '/') + 1);
	assert_int_equal(stream_one(t.path, path, 1024, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "line 1: item \"q-7\": image \"../"));
	assert_non_null(strstr(err, "outside the dataset's folder"));

	/* a symlink pointing outside the folder, to an image or a secret */
	snprintf(target, sizeof(target), "%s/secret.png", outside.path);
	snprintf(path, sizeof(path), "%s/leak.png", t.path);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(stream_one(t.path, "leak.png", 1024, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "line 1: item \"q-7\": image \"leak.png\": resolves to "));
	assert_non_null(strstr(err, "outside the dataset's folder"));
	snprintf(target, sizeof(target), "%s/secret.txt", outside.path);
	snprintf(path, sizeof(path), "%s/sub/leak2.png", t.path);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(stream_one(t.path, "sub/leak2.png", 1024, err, sizeof(err)), -EPERM);
	/* a symlinked folder out of the tree */
	snprintf(path, sizeof(path), "%s/out", t.path);
	assert_int_equal(symlink(outside.path, path), 0);
	assert_int_equal(stream_one(t.path, "out/secret.png", 1024, err, sizeof(err)), -EPERM);

	/* a symlink inside the folder to a valid image is fine */
	snprintf(path, sizeof(path), "%s/sub/alias.png", t.path);
	assert_int_equal(symlink("../ok.png", path), 0);
	assert_int_equal(stream_one(t.path, "sub/alias.png", 1024, err, sizeof(err)), 0);

	/* a text file named x.png */
	assert_int_equal(stream_one(t.path, "text.png", 1024, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1: item \"q-7\": image \"text.png\": not a PNG, JPEG, GIF, WebP or BMP image "
				 "(by its first bytes)");

	/* an oversized file */
	assert_int_equal(stream_one(t.path, "big.png", 1024, err, sizeof(err)), -EFBIG);
	assert_string_equal(err, "line 1: item \"q-7\": image \"big.png\": 4096 bytes, over the 1024 byte limit");

	/* empty, and a dangling symlink */
	assert_int_equal(stream_one(t.path, "", 1024, err, sizeof(err)), -EINVAL);
	snprintf(path, sizeof(path), "%s/dangling.png", t.path);
	assert_int_equal(symlink("nowhere.png", path), 0);
	assert_int_equal(stream_one(t.path, "dangling.png", 1024, err, sizeof(err)), -ENOENT);
	tmp_remove(&t);
	tmp_remove(&outside);
}

/* The MIME type of the data: URL comes from the bytes, not the name. */
static void test_images_mime_by_magic(void **state)
{
	struct tmpdir t;
	char text[256], want[1024];
	struct buf out;
	struct images_stats st;
	char err[512];
	(void)state;

	tmp_make(&t);
	tmp_write(&t, "really-a-jpeg.png", JPEG, JPEG_LEN);
	snprintf(text, sizeof(text), "{\"id\":\"m\",\"images\":[\"really-a-jpeg.png\"]}");
	buf_init(&out, 1 << 20);
	assert_int_equal(stream_text(text, t.path, 1024, &out, &st, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "{\"id\":\"m\",\"images\":[\"%s\"]}", data_url_of("image/jpeg", JPEG, JPEG_LEN));
	assert_string_equal(out.base, want);
	buf_free(&out);
	tmp_remove(&t);
}

/* data: URLs in the dataset are checked by their decoded bytes. */
static void test_images_data_urls(void **state)
{
	char err[512], url[600];
	(void)state;

	assert_int_equal(stream_one("/tmp", data_url_of("image/png", PNG, PNG_LEN), 1024, err, sizeof(err)), 0);
	assert_int_equal(stream_one("/tmp", data_url_of("image/jpg", JPEG, JPEG_LEN), 1024, err, sizeof(err)), 0);
	/* text dressed as a PNG */
	assert_int_equal(stream_one("/tmp", data_url_of("image/png", "API_KEY=sk-12345", 16), 1024, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "line 1: item \"q-7\": image \"data:image/png;base64,"));
	assert_non_null(strstr(err, "not a PNG, JPEG, GIF, WebP or BMP image"));
	/* a declared type the bytes do not have */
	assert_int_equal(stream_one("/tmp", data_url_of("image/png", JPEG, JPEG_LEN), 1024, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "declares image/png but the data is image/jpeg"));
	/* over the cap */
	assert_int_equal(stream_one("/tmp", data_url_of("image/png", PNG, PNG_LEN), 8, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "over the 8 byte limit"));
	/* not base64 */
	assert_int_equal(stream_one("/tmp", "data:image/png,plain", 1024, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "must be data:image/TYPE;base64,DATA"));
	snprintf(url, sizeof(url), "%s", data_url_of("image/png", PNG, PNG_LEN));
	url[30] = '*';
	assert_int_equal(stream_one("/tmp", url, 1024, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid base64"));
	assert_int_equal(stream_one("/tmp", "data:image/png;base64,iVBORw0", 1024, err, sizeof(err)), -EINVAL);
	/* http(s) URLs go as they are */
	assert_int_equal(stream_one("/tmp", "https://example.org/x.png", 1024, err, sizeof(err)), 0);
}

/* --skip-invalid: a refused item goes as a blank line and is reported like
 * the daemon's rejected lines; the other lines go on. */
static void test_images_skip_invalid(void **state)
{
	struct tmpdir t;
	char text[512], want[1024], err[512];
	struct buf out;
	struct images_stats st, dry;
	json_t *rej = json_array();
	FILE *f;
	(void)state;

	tmp_make(&t);
	tmp_write(&t, "ok.png", PNG, PNG_LEN);
	tmp_write(&t, "text.png", "hello", 5);
	snprintf(text, sizeof(text),
		 "{\"id\":\"a\",\"images\":[\"ok.png\"]}\n"
		 "{\"id\":\"b\",\"images\":[\"/etc/passwd.png\"]}\n"
		 "{\"id\":\"c\",\"images\":[\"text.png\"]}\n"
		 "{\"id\":\"d\"}\n");
	f = fmemopen(text, strlen(text), "r");
	assert_non_null(f);
	buf_init(&out, 1 << 20);
	assert_int_equal(images_stream(f, t.path, 1024, true, rej, NULL, NULL, &dry, err, sizeof(err)), 0);
	rewind(f);
	assert_int_equal(images_stream(f, t.path, 1024, true, NULL, buf_sink, &out, &st, err, sizeof(err)), 0);
	fclose(f);
	assert_int_equal(dry.bytes, st.bytes);
	assert_int_equal(st.bytes, out.len);
	assert_int_equal(st.rejected, 2);
	assert_int_equal(st.images, 1);
	snprintf(want, sizeof(want), "{\"id\":\"a\",\"images\":[\"%s\"]}\n\n\n{\"id\":\"d\"}\n",
		 data_url_of("image/png", PNG, PNG_LEN));
	assert_string_equal(out.base, want);
	assert_int_equal(json_array_size(rej), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rej, 0), "line")), 2);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(rej, 0), "reason")),
			       "item \"b\": image \"/etc/passwd.png\": an absolute path"));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rej, 1), "line")), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rej, 1), "reason")),
			    "item \"c\": image \"text.png\": not a PNG, JPEG, GIF, WebP or BMP image (by its first bytes)");
	json_decref(rej);
	buf_free(&out);
	tmp_remove(&t);
}

/* ---- rendering ---- */

static void test_render_bar(void **state)
{
	char b[64];
	(void)state;

	assert_int_equal(render_bar(b, sizeof(b), 0, 0, 10), 12);
	assert_string_equal(b, "[----------]");
	render_bar(b, sizeof(b), 5, 10, 10);
	assert_string_equal(b, "[#####-----]");
	render_bar(b, sizeof(b), 99, 100, 10);
	assert_string_equal(b, "[#########-]"); /* full only when complete */
	render_bar(b, sizeof(b), 100, 100, 10);
	assert_string_equal(b, "[##########]");
	render_bar(b, sizeof(b), 150, 100, 4);
	assert_string_equal(b, "[####]");
	render_bar(b, sizeof(b), UINT64_MAX / 2, UINT64_MAX, 4);
	assert_string_equal(b, "[#---]");
	assert_int_equal(render_bar(b, 5, 1, 2, 10), 0); /* too small */
	assert_string_equal(b, "");
}

static void test_render_duration(void **state)
{
	char d[32];
	(void)state;

	render_duration(d, sizeof(d), 42);
	assert_string_equal(d, "42s");
	render_duration(d, sizeof(d), 185);
	assert_string_equal(d, "3m05s");
	render_duration(d, sizeof(d), 7380);
	assert_string_equal(d, "2h03m");
	render_duration(d, sizeof(d), 86400 * 4 + 7200);
	assert_string_equal(d, "4d02h");
	render_duration(d, sizeof(d), -1);
	assert_string_equal(d, "-");
	render_duration(d, sizeof(d), NAN);
	assert_string_equal(d, "-");
}

static const char job_json[] =
	"{\"id\":\"job_3\",\"name\":\"gastro-run1\",\"kind\":\"pipeline\",\"state\":\"paused\","
	"\"reason\":\"awaiting retrain\",\"created_at\":\"2024-05-01T10:00:00Z\",\"updated_at\":1714557600,"
	"\"counts\":{\"screen\":{\"pending\":0,\"in_flight\":0,\"done\":90,\"failed\":0,\"dropped\":10},"
	"\"explain\":{\"pending\":40,\"in_flight\":5,\"done\":44,\"failed\":1,\"dropped\":0}},"
	"\"tokens\":{\"in\":1200,\"out\":340},\"cost_usd\":1.5,\"rate_per_s\":2.25,\"eta_s\":125,"
	"\"eval\":{\"accuracy\":0.75,\"correct\":3,\"total\":4,\"ungraded\":1,"
	"\"by_topic\":{\"cardio\":{\"accuracy\":0.5,\"correct\":1,\"total\":2},\"gi\":1.0}}}";

static void test_render_job(void **state)
{
	json_t *job = json_loads(job_json, 0, NULL);
	struct buf out;
	(void)state;

	assert_non_null(job);
	buf_init(&out, 1 << 16);
	assert_int_equal(render_job(&out, job, 10), 0);
	assert_non_null(strstr(out.base, "job_3  gastro-run1  (pipeline)  paused: awaiting retrain\n"));
	assert_non_null(strstr(out.base, "  screen     [##########]    100/100    100.0%  done 90, dropped 10\n"));
	assert_non_null(strstr(out.base, "  explain    [#####-----]     45/90      50.0%  done 44, in flight 5, failed 1\n"));
	assert_non_null(strstr(out.base, "rate 2.25 items/s  ETA 2m05s"));
	assert_non_null(strstr(out.base, "tokens in 1200, out 340, cost $1.50"));
	assert_non_null(strstr(out.base, "accuracy 75.0% (3/4 correct, 1 ungraded)"));
	assert_non_null(strstr(out.base, "cardio                    50.0% (1/2)"));
	assert_non_null(strstr(out.base, "gi                       100.0%"));
	assert_non_null(strstr(out.base, "created 2024-05-01T10:00:00Z, updated 2024-05-01T10:00:00Z"));
	/* the screen step comes first, as the daemon sent it */
	assert_true(strstr(out.base, "screen") < strstr(out.base, "explain"));

	buf_reset(&out);
	assert_int_equal(render_job_line(&out, job), 0);
	assert_non_null(strstr(out.base, "job_3"));
	assert_non_null(strstr(out.base, "paused"));
	assert_non_null(strstr(out.base, "76.3%")); /* (100 + 45) / (100 + 90) */
	assert_non_null(strstr(out.base, "(awaiting retrain)"));

	buf_reset(&out);
	assert_int_equal(render_job_progress_line(&out, job), 0);
	assert_string_equal(out.base,
			    "job_3 paused (awaiting retrain) screen 100/100 explain 45/90 eta 2m05s cost $1.50\n");
	json_decref(job);
	buf_free(&out);
}

/* A pipeline paused before eval is not 100%: the phases to come count. */
static void test_render_percent_phases(void **state)
{
	json_t *train1 = json_loads("{\"id\":\"job_3\",\"kind\":\"pipeline\",\"state\":\"paused\","
				    "\"phase\":\"train1\",\"reason\":\"awaiting retrain\",\"counts\":{"
				    "\"screen\":{\"done\":90,\"dropped\":10},\"explain\":{\"done\":90}}}",
				    0, NULL);
	json_t *stage2 = json_loads("{\"kind\":\"pipeline\",\"state\":\"running\",\"phase\":\"stage2\","
				    "\"counts\":{\"screen\":{\"done\":100},\"explain\":{\"done\":100},"
				    "\"answer\":{\"done\":40,\"pending\":50},\"correct\":{\"done\":5,\"pending\":5}}}",
				    0, NULL);
	json_t *train2 = json_loads("{\"kind\":\"pipeline\",\"state\":\"paused\",\"phase\":\"train2\","
				    "\"counts\":{\"screen\":{\"done\":100},\"answer\":{\"done\":100}}}",
				    0, NULL);
	json_t *done = json_loads("{\"kind\":\"pipeline\",\"state\":\"done\",\"phase\":\"done\","
				  "\"counts\":{\"screen\":{\"done\":10},\"eval\":{\"done\":5}}}",
				  0, NULL);
	json_t *one = json_loads("{\"kind\":\"stage1\",\"state\":\"running\",\"phase\":\"stage1\","
				 "\"counts\":{\"screen\":{\"done\":30,\"pending\":70}}}",
				 0, NULL);
	struct buf out;
	double pct = -1;
	(void)state;

	/* A pipeline's work phases are eval_baseline, stage1, eval_stage1,
	 * stage2 and eval (the checkpoints are new: 5 phases, not 3). */
	assert_true(render_job_percent(train1, &pct));
	assert_true(pct > 39.9 && pct < 40.1); /* 2 / 5 */
	buf_init(&out, 1 << 16);
	assert_int_equal(render_job_line(&out, train1), 0);
	assert_non_null(strstr(out.base, " 40.0%"));
	assert_null(strstr(out.base, "100.0%"));
	assert_true(render_job_percent(stage2, &pct));
	assert_true(pct > 68.9 && pct < 69.1); /* (3 + 45/100) / 5 */
	assert_true(render_job_percent(train2, &pct));
	assert_true(pct > 79.9 && pct < 80.1); /* 4 / 5 */
	assert_true(render_job_percent(done, &pct));
	assert_true(pct > 99.9);
	assert_true(render_job_percent(one, &pct));
	assert_true(pct > 29.9 && pct < 30.1);
	json_decref(train1);
	json_decref(stage2);
	json_decref(train2);
	json_decref(done);
	json_decref(one);
	buf_free(&out);
}

static void test_render_tolerant(void **state)
{
	json_t *empty = json_object();
	json_t *odd = json_loads("{\"id\":5,\"state\":\"done\",\"counts\":{\"x\":7,\"y\":{\"done\":\"3\"}},"
				 "\"tokens\":[],\"eval\":{\"accuracy\":71.5},\"eta_s\":10}",
				 0, NULL);
	json_t *ds = json_loads("{\"id\":\"ds_2\",\"name\":\"medqa\",\"format\":\"medqa\",\"items\":1273,"
				"\"rejected\":[{\"line\":3,\"reason\":\"x\"}],\"created_at\":\"2024-01-01\"}",
				0, NULL);
	struct buf out;
	(void)state;

	buf_init(&out, 1 << 16);
	assert_int_equal(render_job(&out, empty, 20), 0);
	assert_string_equal(out.base, "?  unknown\n");
	buf_reset(&out);
	assert_int_equal(render_job(&out, odd, 20), 0);
	assert_non_null(strstr(out.base, "accuracy 71.5%"));
	assert_null(strstr(out.base, "ETA")); /* a finished job has none */
	buf_reset(&out);
	assert_int_equal(render_job_line(&out, empty), 0);
	buf_reset(&out);
	assert_int_equal(render_dataset_line(&out, ds), 0);
	assert_string_equal(out.base, "ds_2     medqa                medqa     1273 items, 1 rejected  2024-01-01\n");
	buf_reset(&out);
	assert_int_equal(render_dataset_line(&out, empty), 0);
	assert_true(render_state_final("done"));
	assert_true(render_state_final("failed"));
	assert_true(render_state_final("cancelled"));
	assert_false(render_state_final("paused"));
	assert_false(render_state_final(NULL));
	json_decref(empty);
	json_decref(odd);
	json_decref(ds);
	buf_free(&out);
}

static void test_render_event(void **state)
{
	struct buf out;
	(void)state;

	buf_init(&out, 4096);
	assert_int_equal(render_event(&out, "state", "{\"ts\":\"2024-01-01T00:00:00Z\",\"state\":\"paused\","
						      "\"reason\":\"budget\"}"),
			 0);
	assert_string_equal(out.base, "2024-01-01T00:00:00Z  state     paused (budget)\n");
	buf_reset(&out);
	render_event(&out, "log", "{\"message\":\"teacher t1: 429, retrying\"}");
	assert_string_equal(out.base, "log       teacher t1: 429, retrying\n");
	buf_reset(&out);
	render_event(&out, "progress", "{\"counts\":{\"screen\":{\"done\":2,\"pending\":3}}}");
	assert_string_equal(out.base, "progress  screen 2/5\n");
	buf_reset(&out);
	render_event(&out, "message", "two\nlines");
	assert_string_equal(out.base, "message   two lines\n");
	buf_reset(&out);
	render_event(&out, "other", "{\"a\":1}");
	assert_string_equal(out.base, "other     {\"a\":1}\n");
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args_global),
		cmocka_unit_test(test_args_command),
		cmocka_unit_test(test_args_errors),
		cmocka_unit_test(test_http_content_length),
		cmocka_unit_test(test_http_headers),
		cmocka_unit_test(test_http_chunked_every_split),
		cmocka_unit_test(test_http_chunked_bytewise),
		cmocka_unit_test(test_http_lf_and_close_delimited),
		cmocka_unit_test(test_http_interim_and_no_body),
		cmocka_unit_test(test_http_malformed),
		cmocka_unit_test(test_http_caps_and_stop),
		cmocka_unit_test(test_http_head_method),
		cmocka_unit_test(test_http_query_escape),
		cmocka_unit_test(test_http_connect_missing),
		cmocka_unit_test(test_sse_every_split),
		cmocka_unit_test(test_sse_stop_and_cap),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_mime),
		cmocka_unit_test(test_data_url),
		cmocka_unit_test(test_images_stream),
		cmocka_unit_test(test_images_errors),
		cmocka_unit_test(test_images_paths),
		cmocka_unit_test(test_images_mime_by_magic),
		cmocka_unit_test(test_images_data_urls),
		cmocka_unit_test(test_images_skip_invalid),
		cmocka_unit_test(test_magic),
		cmocka_unit_test(test_render_bar),
		cmocka_unit_test(test_render_duration),
		cmocka_unit_test(test_render_job),
		cmocka_unit_test(test_render_percent_phases),
		cmocka_unit_test(test_render_tolerant),
		cmocka_unit_test(test_render_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
