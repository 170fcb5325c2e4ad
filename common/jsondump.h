#ifndef MT_JSONDUMP_H
#define MT_JSONDUMP_H
/* The canonical text of a request body: exactly the bytes of jansson's
 * json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS), which the cache keys of
 * every stored call were made from, written in one pass into one buffer
 * (jansson's dump checks each container against a hash set of parents,
 * calls back per chunk and copies the result once more: about a third of
 * the client's CPU per request). */

#include <jansson.h>
#include <stddef.h>

/* The compact, key-sorted JSON text of v (an object or an array, as
 * json_dumps without JSON_ENCODE_ANY), as a new NUL-terminated string
 * (caller frees); *len (may be NULL) gets its length. NULL where json_dumps
 * gives NULL (v NULL or not a container, a string that is not valid UTF-8,
 * out of memory) and for nesting deeper than JSONDUMP_MAX_DEPTH (jansson
 * would refuse a cycle; no body nests that deep). Pure; any thread. */
char *jsondump_sorted(const json_t *v, size_t *len);

#define JSONDUMP_MAX_DEPTH 512

/* The stored text of v: exactly json_dumpb(v, .., JSON_COMPACT |
 * JSON_ENCODE_ANY), keys in insertion order, any value, written in one pass
 * into the caller's buffer *buf of *cap bytes (*buf may be NULL), which is
 * grown with realloc as needed (the caller keeps and frees it, updated even
 * on an error). On 0 the text is in *buf, NUL-terminated, *len bytes.
 * Errors: -EINVAL where jansson gives no text (v NULL, a string that is not
 * valid UTF-8) or nesting deeper than JSONDUMP_MAX_DEPTH, -ENOMEM. Pure;
 * any thread. */
int jsondump_compact_into(const json_t *v, char **buf, size_t *cap, size_t *len);

/* Pieces of a key-sorted text written without a tree (a request body whose
 * members are known): each appends to the caller's buffer *buf of *cap
 * bytes holding *len (*buf may be NULL; grown with realloc, the caller
 * keeps and frees it, updated even on an error), NUL-terminated on 0.
 * Errors: -EINVAL where jsondump_sorted gives no text for the same value,
 * -ENOMEM. Pure; any thread. */
/* n bytes of s as they are (JSON the caller has written). */
int jsondump_raw_append(const char *s, size_t n, char **buf, size_t *cap, size_t *len);
/* The string s (n bytes) as JSON text, escaped as jsondump_sorted does;
 * -EINVAL when it is not valid UTF-8. */
int jsondump_string_append(const char *s, size_t n, char **buf, size_t *cap, size_t *len);
/* The integer v as jsondump_sorted writes a JSON integer. */
int jsondump_int_append(json_int_t v, char **buf, size_t *cap, size_t *len);
/* The real d as jsondump_sorted writes json_real(d); -EINVAL where
 * json_real gives no value (not finite). */
int jsondump_real_append(double d, char **buf, size_t *cap, size_t *len);
/* v (any value) as jsondump_sorted writes it as a member of an object or
 * an array of the text. */
int jsondump_member_append(const json_t *v, char **buf, size_t *cap, size_t *len);

#endif
