#ifndef MT_JSONLOAD_H
#define MT_JSONLOAD_H
/* json_loadb for replies, faster: jansson's reader moves every byte through
 * a per-character stream and buffer (about 150 instructions a byte: the
 * largest cost of handling a reply). This one reads the usual document in
 * one pass into the same jansson values; whatever it does not take on
 * (any error, \u0000, numbers out of range, deep nesting, flags other
 * than the two below) goes to json_loadb itself, so errors, their texts
 * and positions are jansson's. */

#include <jansson.h>
#include <stddef.h>

/* The same result as json_loadb(buf, len, flags, err): a new value (caller
 * json_decrefs) with the same types, values and key order, or NULL with
 * err (may be NULL) filled by jansson. flags: 0, JSON_REJECT_DUPLICATES,
 * JSON_DECODE_ANY; others are passed to json_loadb as they are. Pure; any
 * thread. */
json_t *jsonload_buf(const char *buf, size_t len, size_t flags, json_error_t *err);

#endif
