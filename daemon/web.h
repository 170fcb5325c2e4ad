#ifndef MT_WEB_H
#define MT_WEB_H
/* The read-only web dashboard (docs/dashboard.md, SPEC 9): a second
 * listener of daemon/http.c on TCP ([web] listen), serving the static files
 * of web/ (compiled in by web/assets.sh) and the GET routes of the socket
 * API's table that the dashboard reads. Every request needs the token first
 * (?token= or Authorization: Bearer), else 401 and nothing else is said;
 * then anything but GET is 405. Loop thread only. */

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

struct api;
struct web;
struct http_server_config;

#define WEB_TOKEN_BYTES 32 /* random bytes; the token is their hex, 64 characters */
#define WEB_TOKEN_FILE "web.token"

struct web_config {
	const char *host;      /* IP literal, no brackets (config_web.host) */
	int port;              /* 0 = ephemeral */
	const char *state_dir; /* the token is written to STATE_DIR/web.token */
};

/* Makes a fresh token (getrandom), writes it 0600 to STATE_DIR/web.token
 * (replacing the file), listens on host:port with the limits of hc (copied;
 * NULL for the defaults) and logs the URL with the token. Requests to API
 * routes go to api_route_serve(a, ...). Everything borrowed must outlive
 * the web server. Returns 0 or a negative errno / UV_E* (logged). */
int web_start(uv_loop_t *loop, struct api *a, const struct web_config *cfg,
	      const struct http_server_config *hc, struct web **out);

/* The bound TCP port. */
int web_port(const struct web *w);

/* The token (64 hex characters, owned by w). */
const char *web_token(const struct web *w);

/* Stops listening and ends every request and stream; cb(ud) once closed.
 * Then web_free. */
void web_close(struct web *w, void (*cb)(void *ud), void *ud);
void web_free(struct web *w);

/* ---- pure parts, open to the unit tests ---- */

/* Whether got (may be NULL) equals want, in time that depends only on
 * want's length. */
bool web_token_equal(const char *want, const char *got);

/* The token a request carries: the value after "Bearer " (scheme
 * case-insensitive) of the Authorization header when there is one, else the
 * ?token= parameter; NULL when neither. Both borrowed. */
const char *web_request_token(const char *authorization, const char *query_token);

/* The static file for a request path ("/" is index.html): 0 with *data,
 * *len and *content_type set (all static), -ENOENT when there is none. */
int web_asset_find(const char *path, const unsigned char **data, size_t *len,
		   const char **content_type);

#endif
