/* layers: daemon stages teacher_clients store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/config.h"
#include "daemon/http.h"
#include "daemon/web.h"

/* ================================================================ token */

static void test_token_equal(void **state)
{
	(void)state;
	assert_true(web_token_equal("abc123", "abc123"));
	assert_false(web_token_equal("abc123", "abc124"));
	assert_false(web_token_equal("abc123", "abc12"));
	assert_false(web_token_equal("abc123", "abc1234"));
	assert_false(web_token_equal("abc123", ""));
	assert_false(web_token_equal("abc123", NULL));
	assert_false(web_token_equal("abc123", "ABC123"));
}

static void test_request_token(void **state)
{
	(void)state;
	assert_string_equal(web_request_token("Bearer tok", NULL), "tok");
	assert_string_equal(web_request_token("bearer   tok", "q"), "tok");
	/* a header of another scheme is no token, even with ?token= beside it */
	assert_null(web_request_token("Basic dG9r", "tok"));
	assert_string_equal(web_request_token(NULL, "qtok"), "qtok");
	assert_null(web_request_token(NULL, NULL));
}

/* ================================================================ assets */

static void test_asset_find(void **state)
{
	const unsigned char *data;
	const char *type;
	size_t len;

	(void)state;
	assert_int_equal(web_asset_find("/", &data, &len, &type), 0);
	assert_string_equal(type, "text/html; charset=utf-8");
	assert_non_null(strstr((const char *)data, "__TOKEN__"));
	assert_int_equal(strlen((const char *)data), len);
	assert_int_equal(web_asset_find("/index.html", &data, &len, &type), 0);
	assert_int_equal(web_asset_find("/app.js", &data, &len, &type), 0);
	assert_string_equal(type, "text/javascript; charset=utf-8");
	/* the page never parses data as markup */
	assert_null(strstr((const char *)data, "innerHTML"));
	assert_int_equal(web_asset_find("/app.css", &data, &len, &type), 0);
	assert_string_equal(type, "text/css; charset=utf-8");
	assert_int_equal(web_asset_find("/nope.js", &data, &len, &type), -ENOENT);
	assert_int_equal(web_asset_find("/../app.js", &data, &len, &type), -ENOENT);
	assert_int_equal(web_asset_find("/x/app.js", &data, &len, &type), -ENOENT);
	assert_int_equal(web_asset_find("app.js", &data, &len, &type), -ENOENT);
	assert_int_equal(web_asset_find("/assets.sh", &data, &len, &type), -ENOENT);
}

/* ================================================================ server */

struct client {
	int port;
	char token[2 * WEB_TOKEN_BYTES + 1];
	uv_async_t *done;
	char *replies[16];
	int n;
};

static const char *const requests[] = {
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"GET /app.js?token=%s0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
	"GET /app.js?token=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"GET /?token=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
	"GET /no-such.css HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n",
	"GET /v1/jobs/1/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n",
};
#define NREQ (sizeof(requests) / sizeof(requests[0]))

static char *roundtrip(int port, const char *req)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	size_t cap = 1 << 20, len = 0;
	char *out = calloc(1, cap + 1);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t r;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return out;
	}
	while (len < cap && (r = read(fd, out + len, cap - len)) > 0)
		len += (size_t)r;
	close(fd);
	return out;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	char req[1024];

	for (size_t i = 0; i < NREQ; i++) {
		snprintf(req, sizeof(req), requests[i], c->token);
		c->replies[c->n++] = roundtrip(c->port, req);
	}
	uv_async_send(c->done);
	return NULL;
}

static void on_web_closed(void *ud)
{
	(void)ud;
}

/* The client is done: close the async and the server, so uv_run returns. */
static void on_done(uv_async_t *a)
{
	uv_close((uv_handle_t *)a, NULL);
	web_close(a->data, on_web_closed, NULL);
}

static int status_of(const char *reply)
{
	int st = 0;

	sscanf(reply, "HTTP/1.1 %d", &st);
	return st;
}

static void test_server(void **state)
{
	char dir[] = "/tmp/medthink-webtest.XXXXXX", path[256], filetok[128] = { 0 };
	struct web_config wc = { "127.0.0.1", 0, NULL };
	struct client c = { 0 };
	struct web *w = NULL;
	uv_loop_t loop;
	uv_async_t done;
	pthread_t th;
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	wc.state_dir = dir;
	uv_loop_init(&loop);
	/* API routes are never reached here: only the token, method and asset
	 * checks, which come before them, so no API is needed. */
	assert_int_equal(web_start(&loop, NULL, &wc, NULL, &w), 0);
	c.port = web_port(w);
	assert_true(c.port > 0);
	snprintf(c.token, sizeof(c.token), "%s", web_token(w));
	assert_int_equal(strlen(c.token), 2 * WEB_TOKEN_BYTES);

	snprintf(path, sizeof(path), "%s/%s", dir, WEB_TOKEN_FILE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(filetok, sizeof(filetok), f));
	fclose(f);
	filetok[strcspn(filetok, "\n")] = '\0';
	assert_string_equal(filetok, c.token);

	uv_async_init(&loop, &done, on_done);
	done.data = w;
	c.done = &done;
	pthread_create(&th, NULL, client_main, &c);
	uv_run(&loop, UV_RUN_DEFAULT); /* until on_done closed everything */
	pthread_join(th, NULL);
	web_free(w);
	assert_int_equal(uv_loop_close(&loop), 0);

	assert_int_equal(c.n, (int)NREQ);
	/* no token: the login page, 401, with no asset in it */
	assert_int_equal(status_of(c.replies[0]), 401);
	assert_non_null(strstr(c.replies[0], "token required"));
	assert_null(strstr(c.replies[0], "app.js"));
	assert_int_equal(status_of(c.replies[1]), 401);
	assert_null(strstr(c.replies[1], "use strict"));
	assert_int_equal(status_of(c.replies[2]), 401); /* a longer token */
	assert_int_equal(status_of(c.replies[3]), 401); /* the token before the method */
	assert_int_equal(status_of(c.replies[4]), 200);
	assert_non_null(strstr(c.replies[4], "Content-Type: text/javascript"));
	assert_non_null(strstr(c.replies[4], "use strict"));
	assert_non_null(strstr(c.replies[4], "Content-Security-Policy: default-src 'none'"));
	/* the page carries the token, the placeholder is gone */
	assert_int_equal(status_of(c.replies[5]), 200);
	assert_non_null(strstr(c.replies[5], c.token));
	assert_null(strstr(c.replies[5], "__TOKEN__"));
	assert_int_equal(status_of(c.replies[6]), 405);
	assert_non_null(strstr(c.replies[6], "Allow: GET"));
	assert_int_equal(status_of(c.replies[7]), 404);
	assert_int_equal(status_of(c.replies[8]), 404); /* the export is not on the dashboard */
	for (int i = 0; i < c.n; i++)
		free(c.replies[i]);
	unlink(path);
	rmdir(dir);
}

/* A port in use: web_start fails, and the half-made server goes from the
 * loop without a leak (the sanitizer build checks). */
static void test_port_in_use(void **state)
{
	char dir[] = "/tmp/medthink-webtest.XXXXXX", path[256];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct web_config wc = { "127.0.0.1", 0, NULL };
	struct web *w = (struct web *)&sa;
	uv_loop_t loop;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_non_null(mkdtemp(dir));
	wc.state_dir = dir;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	wc.port = ntohs(sa.sin_port);
	uv_loop_init(&loop);
	assert_true(web_start(&loop, NULL, &wc, NULL, &w) < 0);
	assert_null(w);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/%s", dir, WEB_TOKEN_FILE);
	unlink(path);
	rmdir(dir);
}

/* ================================================================ config */

static int load(const char *text, struct config **cfg, char *err, size_t errlen)
{
	char path[] = "/tmp/medthink-webconf.XXXXXX";
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	rc = config_load(path, cfg, err, errlen);
	unlink(path);
	return rc;
}

static void test_config(void **state)
{
	static const struct {
		const char *listen, *extra;
		int ok;
		const char *host;
		int port;
		const char *msg;
	} cases[] = {
		{ "127.0.0.1:8765", "", 1, "127.0.0.1", 8765, NULL },
		{ "localhost:0", "", 1, "127.0.0.1", 0, NULL },
		{ "[::1]:9000", "", 1, "::1", 9000, NULL },
		{ "127.0.0.2:80", "", 1, "127.0.0.2", 80, NULL },
		{ "0.0.0.0:8765", "", 0, NULL, 0, "not a loopback address" },
		{ "10.1.2.3:8765", "", 0, NULL, 0, "allow_remote" },
		{ "10.1.2.3:8765", "allow_remote = true\n", 1, "10.1.2.3", 8765, NULL },
		{ "127.0.0.1", "", 0, NULL, 0, "HOST:PORT" },
		{ "127.0.0.1:70000", "", 0, NULL, 0, "HOST:PORT" },
		{ "example.com:80", "", 0, NULL, 0, "IP literal" },
		{ "::1:80", "", 0, NULL, 0, "IP literal" },
	};
	char text[512], err[512];
	struct config *cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		snprintf(text, sizeof(text), "[daemon]\nstate_dir = /tmp/x\n\n[web]\nlisten = %s\n%s",
			 cases[i].listen, cases[i].extra);
		err[0] = '\0';
		rc = load(text, &cfg, err, sizeof(err));
		if (!cases[i].ok) {
			if (rc == 0)
				fail_msg("[web] listen = %s: expected an error", cases[i].listen);
			if (!strstr(err, cases[i].msg) || !strstr(err, "[web] listen"))
				fail_msg("[web] listen = %s: error \"%s\" lacks \"%s\"", cases[i].listen, err,
					 cases[i].msg);
			continue;
		}
		if (rc != 0)
			fail_msg("[web] listen = %s: %s", cases[i].listen, err);
		assert_true(cfg->web.present);
		assert_string_equal(cfg->web.host, cases[i].host);
		assert_int_equal(cfg->web.port, cases[i].port);
		config_free(cfg);
	}
	/* no [web]: no dashboard */
	assert_int_equal(load("[daemon]\nstate_dir = /tmp/x\n", &cfg, err, sizeof(err)), 0);
	assert_false(cfg->web.present);
	config_free(cfg);
	/* listen is required in [web] */
	assert_int_not_equal(load("[web]\nallow_remote = false\n", &cfg, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "listen"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_equal),
		cmocka_unit_test(test_request_token),
		cmocka_unit_test(test_asset_find),
		cmocka_unit_test(test_server),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_config),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
