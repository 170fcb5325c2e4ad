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
#include <stdbool.h>
#include <stddef.h>

/* The same result as json_loadb(buf, len, flags, err): a new value (caller
 * json_decrefs) with the same types, values and key order, or NULL with
 * err (may be NULL) filled by jansson. flags: 0, JSON_REJECT_DUPLICATES,
 * JSON_DECODE_ANY; others are passed to json_loadb as they are. Pure; any
 * thread. */
json_t *jsonload_buf(const char *buf, size_t len, size_t flags, json_error_t *err);

/* ---- the pull reader ------------------------------------------------------
 * The same reader without the tree: jsonpull_next hands out one token at a
 * time, for callers that want a few fields of a document (a reply's text)
 * and not the cost of building and freeing all of it. Strings and numbers
 * are read by the same code as jsonload_buf's. It stops (JSONPULL_STOP) on
 * invalid JSON, on a key repeated in one object, and on what it leaves to
 * jansson (\u0000, numbers out of range, nesting past JSONPULL_DEPTH, keys
 * with escapes, more than JSONPULL_KEYS keys in the open objects). A
 * document read to JSONPULL_END is one that jsonload_buf(...,
 * JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, ...) loads into the same
 * values; after a STOP the caller learns the why from jsonload_buf. */

enum jsonpull_tok {
	JSONPULL_STOP = 0, /* an error, or not read here; every later call STOPs too */
	JSONPULL_END,      /* the document's one value was read and only space follows */
	JSONPULL_OBJ,      /* '{' */
	JSONPULL_OBJ_END,  /* '}' */
	JSONPULL_ARR,      /* '[' */
	JSONPULL_ARR_END,  /* ']' */
	JSONPULL_KEY,      /* an object key: s, len (its value comes next) */
	JSONPULL_STR,      /* a string: s, len (decoded; valid UTF-8, no NUL) */
	JSONPULL_INT,      /* an integer: i */
	JSONPULL_REAL,     /* a real: d */
	JSONPULL_TRUE,
	JSONPULL_FALSE,
	JSONPULL_NULL,
};

#define JSONPULL_DEPTH 32    /* open objects and arrays */
#define JSONPULL_KEYS 128    /* keys of the open objects, for the duplicate check */
#define JSONPULL_SCRATCH 4096

/* The reader's state (private to jsonload.c). */
struct jsonload_rd {
	const unsigned char *p, *end;
	size_t flags;
	char *scratch;      /* decoded strings with escapes */
	size_t scap;
	char *stack;        /* the first scratch (not freed) */
};

struct jsonpull {
	/* the last token's value: KEY/STR text (not NUL-terminated; in the
	 * input or in the reader's scratch, valid until the next call), INT,
	 * REAL */
	const char *s;
	size_t len;
	json_int_t i;
	double d;
	/* private */
	struct jsonload_rd rd;
	int depth, want;
	unsigned char open[JSONPULL_DEPTH];      /* '{' or '[' */
	unsigned kbase[JSONPULL_DEPTH];          /* first key of each open object */
	const char *kp[JSONPULL_KEYS];
	size_t kl[JSONPULL_KEYS];
	unsigned nkeys;
	char scratch[JSONPULL_SCRATCH];
};

/* Starts reading buf (len bytes, borrowed: it must outlive j's use). j is
 * released with jsonpull_done. Never fails. Any thread. */
void jsonpull_init(struct jsonpull *j, const char *buf, size_t len);
/* The next token (see enum jsonpull_tok). */
enum jsonpull_tok jsonpull_next(struct jsonpull *j);
/* Skips the rest of the value whose first token t was just read (nothing
 * for a scalar). false when the reader stopped. */
bool jsonpull_skip(struct jsonpull *j, enum jsonpull_tok t);
/* Frees what j allocated (a large scratch); j may be reused with init. */
void jsonpull_done(struct jsonpull *j);

#endif
