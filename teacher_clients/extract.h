#ifndef MT_EXTRACT_H
#define MT_EXTRACT_H
/* Pulling a JSON object out of a model's reply text, whatever the provider:
 * models wrap it in prose or code fences. Pure, any thread. */

#include <jansson.h>
#include <stddef.h>

/* Extracts the JSON object from text: the whole text when it is JSON, else
 * the first ```json (or ```) fenced block, else the first balanced {...}
 * (strings and escapes respected). Returns 0 with a new reference in *out,
 * or -EBADMSG with a message in err (errlen bytes); text may be NULL. */
int extract_json_object(const char *text, json_t **out, char *err, size_t errlen);

#endif
