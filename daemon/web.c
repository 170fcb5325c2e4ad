#include "daemon/web.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "daemon/api_routes.h"
#include "daemon/http.h"

/* build/gen/web_assets.c (web/assets.sh) */
extern const char *const web_asset_name[];
extern const unsigned char *const web_asset_data[];
extern const size_t web_asset_len[];

struct web {
	struct http_server *srv;
	struct api *api;
	char token[2 * WEB_TOKEN_BYTES + 1];
	void (*close_cb)(void *);
	void *close_ud;
	bool discard; /* failed to start: frees itself once closed */
};

static void web_closed(void *ud);

/* Content types by file name ending. */
static const struct {
	const char *ext;
	const char *type;
} web_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
};

/* The API routes the dashboard may read (patterns of daemon/api.c's table):
 * GET only, and not the export (bulk data is for the socket). A pattern
 * that is not (yet) in the table is a 404 like any unknown path. */
static const char *const web_api_patterns[] = {
	"/v1/health",
	"/v1/formats",
	"/v1/datasets",
	"/v1/datasets/{id}",
	"/v1/jobs",
	"/v1/jobs/{id}",
	"/v1/jobs/{id}/events",
	"/v1/jobs/{id}/items",
	"/v1/jobs/{id}/items/{item}",
	"/v1/jobs/{id}/reasons",
	"/v1/jobs/{id}/timeline",
	"/v1/jobs/{id}/prompt-preview",
	"/metrics",
};

/* Said to a browser that came without the token: how to get in, no data. */
static const char login_page[] =
	"<!doctype html><html><head><meta charset=\"utf-8\"><title>medthink: token required</title>"
	"</head><body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">"
	"<h1>medthink dashboard</h1><p>This page needs the token medthinkd printed at start "
	"(also in <code>STATE_DIR/web.token</code>).</p>"
	"<form method=\"get\" action=\"/\"><input name=\"token\" size=\"70\" autocomplete=\"off\" "
	"autofocus> <button>Open</button></form></body></html>\n";

/* Headers on everything the dashboard serves: nothing is loaded from
 * elsewhere, nothing is cached, no Referer carries the token out. */
static void web_headers(struct http_req *req)
{
	http_req_add_header(req, "X-Content-Type-Options", "nosniff");
	http_req_add_header(req, "Referrer-Policy", "no-referrer");
	http_req_add_header(req, "X-Frame-Options", "DENY");
	http_req_add_header(req, "Content-Security-Policy",
			    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
			    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
}

bool web_token_equal(const char *want, const char *got)
{
	size_t n = strlen(want), m = got ? strlen(got) : 0;
	unsigned char d = (unsigned char)(n != m);

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(want[i] ^ (i < m ? got[i] : 0));
	return d == 0;
}

const char *web_request_token(const char *authorization, const char *query_token)
{
	if (authorization) {
		while (*authorization == ' ')
			authorization++;
		if (strncasecmp(authorization, "Bearer ", 7) != 0)
			return NULL;
		authorization += 7;
		while (*authorization == ' ')
			authorization++;
		return authorization;
	}
	return query_token;
}

int web_asset_find(const char *path, const unsigned char **data, size_t *len,
		   const char **content_type)
{
	const char *name;

	if (path[0] != '/')
		return -ENOENT;
	name = path[1] ? path + 1 : "index.html";
	if (strchr(name, '/'))
		return -ENOENT;
	for (size_t i = 0; web_asset_name[i]; i++) {
		size_t nl = strlen(web_asset_name[i]);

		if (strcmp(web_asset_name[i], name) != 0)
			continue;
		*data = web_asset_data[i];
		*len = web_asset_len[i];
		*content_type = "application/octet-stream";
		for (size_t k = 0; k < sizeof(web_types) / sizeof(web_types[0]); k++) {
			size_t el = strlen(web_types[k].ext);

			if (nl > el && strcmp(web_asset_name[i] + nl - el, web_types[k].ext) == 0)
				*content_type = web_types[k].type;
		}
		return 0;
	}
	return -ENOENT;
}

static bool web_api_allowed(const struct api_route *r)
{
	if (strcmp(r->method, "GET") != 0 || r->body != API_BODY_NONE)
		return false;
	for (size_t i = 0; i < sizeof(web_api_patterns) / sizeof(web_api_patterns[0]); i++)
		if (strcmp(r->pattern, web_api_patterns[i]) == 0)
			return true;
	return false;
}

/* An HTML page with its placeholder WEB_TOKEN_MARK replaced by the token,
 * so the page's own script and style requests carry it (a browser sends no
 * Authorization header for those); only a client that sent the token gets
 * it back. */
#define WEB_TOKEN_MARK "__TOKEN__"
static void web_respond_page(struct web *w, struct http_req *req, const unsigned char *data,
			     size_t len, const char *type)
{
	const char *p = (const char *)data, *end = p + len, *hit;
	struct buf b;

	buf_init(&b, len + 64 * sizeof(w->token));
	while ((hit = memmem(p, (size_t)(end - p), WEB_TOKEN_MARK, sizeof(WEB_TOKEN_MARK) - 1))) {
		if (buf_append(&b, p, (size_t)(hit - p)) != 0 || buf_puts(&b, w->token) != 0)
			break;
		p = hit + sizeof(WEB_TOKEN_MARK) - 1;
	}
	if (hit || buf_append(&b, p, (size_t)(end - p)) != 0)
		http_respond_error(req, 500, "internal", "the page does not fit its buffer", NULL);
	else
		http_respond(req, 200, type, b.base, b.len);
	buf_free(&b);
}

static void web_on_request(void *ud, struct http_req *req)
{
	struct web *w = ud;
	const char *path = http_req_path(req);
	const char *tok = web_request_token(http_req_header(req, "Authorization"),
					    http_req_query(req, "token"));
	struct api_route_match m;
	const unsigned char *data;
	const char *type;
	size_t len;

	web_headers(req);
	http_req_add_header(req, "Cache-Control", "no-store");
	/* The token first: without it nothing is told, not even what exists. */
	if (!web_token_equal(w->token, tok)) {
		http_req_add_header(req, "WWW-Authenticate", "Bearer realm=\"medthink\"");
		if (strcmp(http_req_method(req), "GET") == 0 && strcmp(path, "/") == 0)
			http_respond(req, 401, "text/html; charset=utf-8", login_page,
				     sizeof(login_page) - 1);
		else
			http_respond_error(req, 401, "unauthorized",
					   "the dashboard needs its token: ?token= or Authorization: Bearer "
					   "(STATE_DIR/web.token)",
					   NULL);
		return;
	}
	if (strcmp(http_req_method(req), "GET") != 0) {
		http_req_add_header(req, "Allow", "GET");
		http_respond_error(req, 405, "method_not_allowed", "the dashboard is read-only: GET only",
				   NULL);
		return;
	}
	if (strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/metrics") == 0) {
		if (api_route_match("GET", path, &m) != 0 || !web_api_allowed(m.route)) {
			http_respond_error(req, 404, "not_found", "no such route on the dashboard", NULL);
			return;
		}
		api_route_serve(w->api, req, &m);
		return;
	}
	if (web_asset_find(path, &data, &len, &type) != 0) {
		http_respond_error(req, 404, "not_found", "no such page", NULL);
		return;
	}
	if (strncmp(type, "text/html", 9) == 0) {
		web_respond_page(w, req, data, len, type);
		return;
	}
	http_respond(req, 200, type, data, len);
}

/* A body on a GET was answered in on_request; nothing waits for it. */
static void web_on_body(void *ud, struct http_req *req, const char *body, size_t len)
{
	(void)ud, (void)req, (void)body, (void)len;
}

/* Writes the token 0600 through a temporary file renamed over the old one,
 * so a reader never sees half a token and no other user ever could. */
static int web_token_write(const char *state_dir, const char *token)
{
	char path[4096], tmp[4200];
	size_t n = strlen(token);
	int fd, rc = 0;

	if (snprintf(path, sizeof(path), "%s/%s", state_dir, WEB_TOKEN_FILE) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	errno = 0;
	if (fchmod(fd, 0600) != 0 || write(fd, token, n) != (ssize_t)n || write(fd, "\n", 1) != 1)
		rc = errno ? -errno : -EIO;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static int web_token_make(char *out)
{
	unsigned char raw[WEB_TOKEN_BYTES];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		got += (size_t)r;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

int web_start(uv_loop_t *loop, struct api *a, const struct web_config *cfg,
	      const struct http_server_config *hc, struct web **out)
{
	struct web *w = calloc(1, sizeof(*w));
	struct http_handler h = { web_on_request, web_on_body, NULL };
	int rc;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->api = a;
	h.ud = w;
	rc = web_token_make(w->token);
	if (rc) {
		log_error("web: cannot make a token: %s", strerror(-rc));
		goto fail;
	}
	rc = web_token_write(cfg->state_dir, w->token);
	if (rc) {
		log_error("web: cannot write %s/%s: %s", cfg->state_dir, WEB_TOKEN_FILE, strerror(-rc));
		goto fail;
	}
	w->srv = http_server_new(&h, hc);
	if (!w->srv) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = http_server_listen_tcp(w->srv, loop, cfg->host, cfg->port);
	if (rc) {
		log_error("web: cannot listen on %s:%d: %s", cfg->host, cfg->port, uv_strerror(rc));
		/* the listener handle may be open: it goes from the loop */
		w->discard = true;
		http_server_close(w->srv, web_closed, w);
		return rc;
	}
	log_info("dashboard at http://%s%s%s:%d/?token=%s (token also in %s/%s)",
		 strchr(cfg->host, ':') ? "[" : "", cfg->host, strchr(cfg->host, ':') ? "]" : "",
		 http_server_port(w->srv), w->token, cfg->state_dir, WEB_TOKEN_FILE);
	*out = w;
	return 0;
fail:
	explicit_bzero(w->token, sizeof(w->token));
	free(w);
	return rc;
}

int web_port(const struct web *w)
{
	return http_server_port(w->srv);
}

const char *web_token(const struct web *w)
{
	return w->token;
}

static void web_closed(void *ud)
{
	struct web *w = ud;

	if (w->discard) {
		web_free(w);
		return;
	}
	if (w->close_cb)
		w->close_cb(w->close_ud);
}

void web_close(struct web *w, void (*cb)(void *ud), void *ud)
{
	w->close_cb = cb;
	w->close_ud = ud;
	http_server_close(w->srv, web_closed, w);
}

void web_free(struct web *w)
{
	if (!w)
		return;
	http_server_free(w->srv);
	explicit_bzero(w->token, sizeof(w->token));
	free(w);
}
