#ifndef MT_API_H
#define MT_API_H
/* The socket API (SPEC 6): routes HTTP requests from daemon/http.c to the
 * store, the importer, the job runner and the export, and fans runner events
 * out to /events subscribers. Loop thread only. */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct store;
struct runner;
struct client;
struct api;

struct api_config {
	const char *socket_path;
	uint64_t max_upload_bytes; /* dataset upload cap (413 above) */
	/* Connection limits (daemon/http.h); 0 takes the default. */
	unsigned max_connections;
	unsigned request_timeout_ms;
	unsigned idle_timeout_ms;
	size_t stream_buffer; /* per-connection output cap, bytes */
	const char *version;
};

/* Creates the API and listens on cfg->socket_path (0600, stale socket
 * replaced; a live daemon there gives -EADDRINUSE). Everything borrowed must
 * outlive the API. Returns 0 or a negative errno. */
int api_start(uv_loop_t *loop, struct store *st, struct runner *runner, struct client *cl,
	      const struct api_config *cfg, struct api **out);

struct web_config;

/* Starts the dashboard's listener (daemon/web.h) beside the socket, with
 * the socket's connection limits; api_close closes it too. 0 or a negative
 * errno / UV_E* (logged). */
int api_web_start(struct api *a, const struct web_config *wc);

/* From now on GET /v1/health answers {"status":"degraded","reason":...}
 * (reason copied; e.g. a damaged store); NULL makes it "ok" again.
 * 0 or -ENOMEM. */
int api_set_degraded(struct api *a, const char *reason);

/* Stops listening and ends every open request and stream; cb(ud) once all
 * handles are closed. Then api_free. */
void api_close(struct api *a, void (*cb)(void *ud), void *ud);
void api_free(struct api *a);

#endif
