#ifndef MT_SETS_H
#define MT_SETS_H
/* The SFT sets of a job as export records: set 1 = the kept stage-one items
 * with their explanations, set 2 = the corrected stage-two errors with their
 * reasoning chains. Read from the store page by page so a million-record
 * export streams in bounded memory. Loop thread (short reads). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct export_format;
struct store;

/* Formats records of set (1 or 2) of job over dataset, for items with seq >
 * *cursor, at most limit of them, calling emit(ud, line, len) for each
 * (one JSON line with its newline). format is a row of the export table
 * (formats/export.h), borrowed. *cursor moves to the last item seq read. Returns the
 * number of artifacts read (0 at the end), or a negative errno (emit's
 * non-zero return stops the page and is returned). */
int sets_export_page(struct store *st, int64_t job, int64_t dataset, int set,
		     const struct export_format *format, bool ids,
		     int64_t *cursor, int limit, int (*emit)(void *ud, const char *line, size_t len),
		     void *ud);

/* The artifact kind behind a set: "explanation" or "chain"; NULL otherwise. */
const char *sets_kind(int set);

#endif
