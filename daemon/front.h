#ifndef MT_FRONT_H
#define MT_FRONT_H
/* The front thread: its own libuv loop owns the socket API's listener,
 * accepts, checks the peer and reads each request's first line. Requests
 * for a snapshot (daemon/snapshot.h) are answered there and never wait for
 * the main loop's turn:
 *   GET /v1/jobs/job_N  (a loaded job)   GET /v1/jobs
 *   GET /metrics                         GET /v1/health
 * Any other request hands its connection over to the main loop's server
 * for good (a dup of the fd plus the bytes already read, through
 * http_server_adopt), where daemon/api.c serves it exactly as before. */

#include <stdint.h>

#include <uv.h>

struct http_server;
struct http_server_config;
struct snapshot;

struct front;

/* Listens on socket_path (as http_server_listen_unix: 0600, stale socket
 * replaced, -EADDRINUSE for a live daemon) with limits hc, and starts the
 * thread. Handed-over connections go to main_srv on main_loop; want(ud)
 * runs on main_loop when the front waits for a list or metrics text that
 * is not published. Everything borrowed must outlive the front.
 * Returns 0 or a negative errno / UV_E*. Main loop thread. */
int front_start(uv_loop_t *main_loop, struct http_server *main_srv, struct snapshot *snap,
		const char *socket_path, const struct http_server_config *hc,
		void (*want)(void *ud), void *ud, struct front **out);

/* Requests answered by the front, and its open connections (for metrics).
 * Any thread. */
uint64_t front_requests(const struct front *f);
unsigned front_connections(const struct front *f);

/* Stops the listener and every front connection (waiting requests get their
 * abort), joins the thread, closes connections still queued for the main
 * loop, and calls cb(ud) from the main loop once its handles are closed.
 * Call once; then front_free. Main loop thread. */
void front_stop(struct front *f, void (*cb)(void *ud), void *ud);
void front_free(struct front *f);

#endif
