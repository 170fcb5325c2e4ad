#ifndef MT_ERR_H
#define MT_ERR_H
/* Errors that carry a message and the field at fault up from the layers
 * below the daemon, without any transport in them. A function that fails
 * returns a negative errno and fills a struct mt_err; only the HTTP glue
 * (daemon/api.c) turns the errno into a status code:
 *
 *   -EBADMSG   the request itself is malformed (not JSON, not an object)  400
 *   -ENOENT    no such job, dataset or action                             404
 *   -EALREADY  the object's state does not allow it                       409
 *   -E2BIG     too large                                                  413
 *   -EINVAL    well-formed but invalid (a spec key, an unknown dataset)   422
 *   -ENOTSUP   valid, but this daemon cannot do it (missing capability)   422
 *   anything else: the daemon's own fault                                 500
 *
 * code is a stable short name for scripts ("invalid_spec", "conflict"),
 * message one line for people, field the spec key at fault or "". */

#include <stddef.h>

struct mt_err {
	char code[32];
	char message[256];
	char field[64];
};

/* Fills e (may be NULL) and returns rc, so callers can write
 * `return mt_err_set(e, -EINVAL, "invalid_spec", "kind", "...")`.
 * field may be NULL. The message is cut on a UTF-8 character boundary. */
int mt_err_set(struct mt_err *e, int rc, const char *code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
