#ifndef MT_API_ROUTES_H
#define MT_API_ROUTES_H
/* Internal to the daemon: the socket API's route table (daemon/api.c), open
 * to the unit tests. One row per route of SPEC 6; a new route is one row and
 * one handler. */

#include <stddef.h>
#include <stdint.h>

#define API_ROUTE_PARAMS_MAX 4
/* A path segment caught by {name} is cut to API_ROUTE_PARAM_BYTES - 1 bytes. */
#define API_ROUTE_PARAM_BYTES 128

struct api;
struct http_req;
struct api_route_match;

/* What a route does with the request body. */
enum api_route_body {
	API_BODY_NONE,     /* the handler runs when the headers are in; any body is discarded */
	API_BODY_BUFFERED, /* the handler runs once the whole body is buffered (1 MiB cap) */
	API_BODY_STREAMED, /* the handler runs when the headers are in and installs a body sink */
};

/* flags */
#define API_ROUTE_JOB 0x1 /* {id} names a job: resolved into m->job (404 when unknown)
			     before the handler runs */

struct api_route {
	const char *method;  /* "GET", "POST" */
	const char *pattern; /* "/v1/jobs/{id}/export": literal segments and {name} segments */
	void (*handler)(struct api *a, struct http_req *req, const struct api_route_match *m);
	enum api_route_body body;
	unsigned flags;      /* API_ROUTE_* */
};

struct api_route_match {
	const struct api_route *route;
	/* The {name} segments of the path, in order. */
	int nparams;
	char params[API_ROUTE_PARAMS_MAX][API_ROUTE_PARAM_BYTES];
	/* When the path is known but not the method: the methods it takes,
	 * "GET, POST" (the Allow header). */
	char allow[64];
	/* API_BODY_BUFFERED: the body (owned by the request), set by the
	 * dispatcher; NULL and 0 otherwise. */
	const char *body;
	size_t body_len;
	/* API_ROUTE_JOB: the job, set by the dispatcher; 0 otherwise. */
	int64_t job;
};

/* Finds the row for method and path (path without the query string, not
 * percent-decoded). Segments are compared one by one: leading slashes and one
 * trailing slash are ignored ("/v1/jobs/" is "/v1/jobs"), an empty segment
 * inside the path is a segment ("/v1/jobs//pause" has the id ""), {name}
 * takes any segment. Pure: no allocation, no state.
 * Returns 0 with m->route and m->params filled; -ENOENT when no row has
 * this path (404); -EPERM when rows have this path but not this method
 * (405), with m->allow filled. */
int api_route_match(const char *method, const char *path, struct api_route_match *m);

/* Runs a matched row (m from api_route_match, API_BODY_NONE) for req as
 * the socket API does: a job id is resolved first (404 when unknown). For
 * the dashboard's listener (daemon/web.c), which checks its token first. */
void api_route_serve(struct api *a, struct http_req *req, struct api_route_match *m);

/* The table itself (for tests that walk every row). */
extern const struct api_route api_routes[];
extern const size_t api_routes_count;

#endif
