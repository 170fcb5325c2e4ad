#ifndef MT_FORMATS_H
#define MT_FORMATS_H
/* The catalogue of the two format tables (formats/import.h and
 * formats/export.h), for listing them: GET /v1/formats and the names in
 * error messages. Pure; any thread. */

#include <jansson.h>
#include <stddef.h>

/* Writes the n names joined by sep, with last before the last one ("a, b
 * or c" with ", " and " or "), into out (outlen bytes, always
 * NUL-terminated; a list that does not fit is cut and ends "..."). */
void formats_names_join(char *out, size_t outlen, const char *const *names, size_t n,
                        const char *sep, const char *last);

/* {"import":[{"name","description"},...],"export":[...]}, rows in table
 * order, as a new object (caller decrefs); NULL on ENOMEM. */
json_t *formats_catalog(void);

#endif
