#ifndef MT_SIM_BATCH_H
#define MT_SIM_BATCH_H
/* medthink-sim (a SIMULATOR, not a model): the Anthropic Messages API and
 * the two providers' batch APIs, beside sim.c's OpenAI chat:
 *   POST /v1/messages                        Anthropic Messages
 *   POST /v1/files, GET /v1/files/ID/content OpenAI files (purpose batch)
 *   POST /v1/batches, GET /v1/batches/ID, POST /v1/batches/ID/cancel
 *   POST /v1/messages/batches, GET /v1/messages/batches/ID[/results],
 *   POST /v1/messages/batches/ID/cancel
 *   GET /sim/batches                         counts (custom ids, bodies)
 *   POST /sim/batch-config                   {"hold":bool, "expire_next":N,
 *        "error_next":N, "slow_finalizing":bool, "overloaded_next":N,
 *        "rate_limited_next":N}
 * Batches move one state per poll (hold keeps them in progress). */

#include <stdbool.h>
#include <stddef.h>

#include "daemon/http.h"
#include "tests/sim/replies.h"

struct sim_batch_env {
	struct sim_knobs knobs;
	const char *require_key; /* "" none */
	const char *host;
	int port;
};

/* Handles the request when its path is one of the above: true when it
 * answered. */
bool sim_batch_route(const struct sim_batch_env *env, struct http_req *req, const char *method, const char *path,
		     const char *body, size_t len);

#endif
