#ifndef MT_UPLOAD_H
#define MT_UPLOAD_H
/* A dataset upload (SPEC 6, POST /v1/datasets): bytes of a dataset file in,
 * a stored dataset out. Drives the importer (store/import.h) and writes its
 * items to the store in batches as they come, so the body never sits in
 * memory. Knows nothing of HTTP: the socket API pipes the body through
 * upload_feed and maps the errors (common/err.h) to statuses.
 *
 * Atomic by default: the first rejected record makes the upload store
 * nothing (the rest is still read so that every bad line can be reported).
 * With skip_invalid the good records are stored and the bad ones listed.
 *
 * Loop thread (the store's loop-thread calls); one upload is used from one
 * thread at a time. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "formats/import.h"

#define UPLOAD_BATCH_DEFAULT 1000    /* items per insert transaction */
#define UPLOAD_REJECTED_DEFAULT 1000 /* rejected lines kept and reported */
#define UPLOAD_NAME_MAX 200          /* dataset name, with the NUL */

struct store;
struct upload;

/* Limits; a zero field takes the default. */
struct upload_caps {
	size_t batch_items;        /* items per insert transaction: UPLOAD_BATCH_DEFAULT */
	size_t rejected_max;       /* rejections listed (all are counted): UPLOAD_REJECTED_DEFAULT */
	struct import_opts import; /* the importer's line and document caps */
	/* Optional counter (borrowed, may be NULL) bumped by every batch of
	 * items read, stored or not: the daemon's import metric. */
	uint64_t *items_read;
};

/* Starts an upload of a dataset called name (at most UPLOAD_NAME_MAX - 1
 * bytes). A name a dataset already has (ready or importing) is refused with
 * -EALREADY (code "name_taken", field "name"), unless unique is set: then
 * the first free "NAME-2", "NAME-3", ... is taken. NULL or "" is "unnamed",
 * made unique so. In format (NULL or "": "native"; one of
 * import_format_list()). st is borrowed and must outlive the upload; caps may
 * be NULL (defaults) and is copied. Creates the dataset in the store (state
 * "importing", invisible until upload_finish commits it).
 * Returns 0 and *out, or with e filled: -EBADMSG (code "bad_format", field
 * "format"; "bad_name", field "name"), -EALREADY ("name_taken"), -EIO ("store": the dataset cannot be
 * created), -ENOMEM ("oom"). */
int upload_new(struct store *st, const char *name, const char *format, bool skip_invalid, bool unique,
	       const struct upload_caps *caps, struct upload **out, struct mt_err *e);

/* Feeds the next len bytes of the file (any split). Items completed by them
 * are stored a batch at a time; bad records are collected. Returns 0 or
 * -ENOMEM (the upload then fails at upload_finish). Input errors never make
 * it fail: they are reported by upload_finish. */
int upload_feed(struct upload *u, const char *data, size_t len);

/* Ends the input and commits the dataset, or drops it when anything went
 * wrong. Call once. Returns:
 *  - 0: *result (taken) is the stored dataset object of store_dataset_get
 *    with "rejected_count";
 *  - -EINVAL (code "invalid_dataset", field "body", message "line N: reason"
 *    of the first bad record or the duplicate id): nothing stored (a bad
 *    record in an atomic upload, a duplicate id, or no item at all and some
 *    rejected); *result (taken) is {"rejected":[{"line","reason"}...],
 *    "rejected_count":N,"format":F} for the error body (F the layout read,
 *    given or detected);
 *  - -EBADMSG (code "bad_format", field "format"): no format was given and
 *    the first bytes fit several layouts (import_format_sniff says which);
 *  - -EIO ("store") or -ENOMEM ("oom"): nothing stored, *result NULL.
 * The upload keeps only its name afterwards; upload_free it. */
int upload_finish(struct upload *u, json_t **result, struct mt_err *e);

/* Gives up: drops the dataset and everything stored of it (logged with the
 * name), then frees the upload. For a client that went away mid-body. */
void upload_abort(struct upload *u);

/* Frees the upload; one not finished is dropped as by upload_abort, without
 * the log line. NULL is a no-op. */
void upload_free(struct upload *u);

#endif
