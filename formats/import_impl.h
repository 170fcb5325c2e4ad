#ifndef MT_IMPORT_IMPL_H
#define MT_IMPORT_IMPL_H
/* What the layout files (formats/import_<name>.c) share with the parser
 * core (formats/import.c): the record a csv row is handed, the reporting
 * and emitting calls, and the small checks every layout makes. For
 * formats/ only. Everything here runs on the parser's thread. The core
 * stops calling a row once the parser stopped (a callback's non-zero
 * return, ENOMEM); import_report is a no-op from then on. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "formats/import.h"

/* Quoted excerpts of input (ids, answers) in reasons are cut to this; an
 * excerpt buffer holds it, "..." and the NUL. */
#define IMPORT_EXCERPT_BYTES 60
#define IMPORT_EXCERPT_BUF (IMPORT_EXCERPT_BYTES + 4)

struct import_csv_field {
	size_t off, len;
};

/* One csv record: nf fields, field i at base + fields[i].off, fields[i].len
 * bytes and NUL-terminated (the bytes are not yet checked for UTF-8 or
 * embedded NULs). line is the physical line the record starts on. */
struct import_csv_record {
	const char *base;
	const struct import_csv_field *fields;
	size_t nf;
	long line;
};

/* Field i of rec as a C string (borrowed). */
static inline const char *import_csv_str(const struct import_csv_record *rec, size_t i)
{
	return rec->base + rec->fields[i].off;
}

/* Reports a rejected record at line through on_error; the reason gets the
 * "record N" prefix of the document formats. */
void import_report(struct import_parser *p, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Stops the parser with -ENOMEM (unless it already stopped). */
void import_oom(struct import_parser *p);
/* Validates a candidate item (normalized keys; question, answer,
 * explanation, topic, context and id are strings when present), derives
 * its id when it has none, rejects a duplicate id, and hands the item, keys
 * in the documented order, to on_item. cand is taken. */
void import_emit(struct import_parser *p, json_t *cand, long line);

/* 1 and *out = obj[key] (borrowed) when a string; 0 when absent or null;
 * -1 (reported) when of another type. */
int import_get_str(struct import_parser *p, long line, json_t *obj, const char *key, json_t **out);
/* Copies the string at obj[key] into cand[to] unless absent, null or
 * blank. 0, or -1 when reported. */
int import_copy_str(struct import_parser *p, long line, json_t *obj, const char *key, json_t *cand,
                    const char *to);
/* Copies obj["id"], a string or an integer, into cand as a string. 0 (also
 * when absent or null), or -1 when reported. */
int import_copy_id(struct import_parser *p, long line, json_t *obj, json_t *cand);
/* Copies v, an array of non-empty strings, into cand["images"] (nothing
 * for null or an empty array). 0, or -1 when reported. */
int import_copy_images(struct import_parser *p, long line, json_t *v, json_t *cand);

/* A native item's "mask" (borrowed): {"png":"data:image/png;base64,...",
 * "region":K}, checked against the item's first image (images, borrowed)
 * and stored in cand with the region's size and attributes
 * (formats/import_masks.c). 0, or -1 when reported. */
int import_mask_object(struct import_parser *p, long line, json_t *mask, json_t *images, json_t *cand);

/* True when s[0..n) is only spaces, tabs and line ends. */
bool import_blank(const char *s, size_t n);
/* import_blank over a JSON string. */
bool import_str_blank(json_t *v);
/* "an object", "a string", ... for reasons. */
const char *import_json_kind(const json_t *v);
/* s, or s cut to IMPORT_EXCERPT_BYTES on a UTF-8 boundary with "..." in
 * out (IMPORT_EXCERPT_BUF bytes); the result is borrowed from either. */
const char *import_excerpt(const char *s, char *out, size_t outlen);

/* The slot where a row keeps state across records (NULL at first); the
 * row's state_free frees it with the parser. */
void **import_parser_state(struct import_parser *p);

#endif
