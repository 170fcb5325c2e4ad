#ifndef MT_IMPORT_H
#define MT_IMPORT_H
/* Dataset importers: bytes of a dataset file in one of the public layouts in,
 * normalized item objects (or (line, reason) errors) out. Pure parsing: no
 * SQLite, no I/O; the caller feeds the bytes and stores what comes out.
 *
 * Normalized item (what the store keeps in items.body), keys in this order,
 * a key present only when it has a value:
 *   {"id":str, "question":str, "context":str?, "options":{"A":str,...}?,
 *    "answer":str, "explanation":str?, "topic":str?, "images":[str]?,
 *    "meta":{...}?}
 * With "options" the item is multiple-choice and "answer" is one of its keys;
 * without, it is open-ended and "answer" is the answer text. Strings are
 * valid UTF-8. "id" is unique within one parser's input; when the input has
 * none it is derived from the content (import_item_id). docs/formats.md
 * describes every layout and its mapping.
 *
 * Formats (import_format_list): native, medqa, medmcqa (JSON Lines, parsed
 * line by line as bytes arrive); csv (RFC 4180, parsed record by record);
 * pubmedqa, sharegpt (one JSON document, buffered up to max_doc_bytes and
 * parsed by import_parser_finish). A UTF-8 byte order mark at the start of
 * the input is skipped for every format.
 *
 * Errors in the input never make a call fail: each bad record is reported
 * through on_error and the parser goes on with the next one, so a caller
 * that imports with --skip-invalid can list every rejection. An atomic
 * import stops at the first one by returning non-zero from on_error.
 *
 * Line numbers: JSONL and csv report the 1-based physical line (for a csv
 * record spanning lines, the line it starts on; embedded newlines count).
 * pubmedqa and sharegpt report the 1-based record index, and their reasons
 * start with "record N: " (pubmedqa: "record N (PMID P): "); errors about the
 * document as a whole (bad JSON, too large) carry its physical line, or 0
 * when there is none, and say so in the reason.
 *
 * Threads: a parser is used from one thread at a time. Everything is bounded
 * by the caps, but import_parser_finish of a whole-document format parses
 * up to max_doc_bytes at once (the 2.5 MB PubMedQA file takes ~50 ms). */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMPORT_MAX_LINE_DEFAULT ((size_t)1 << 20)  /* 1 MiB */
#define IMPORT_MAX_DOC_DEFAULT  ((size_t)256 << 20) /* 256 MiB */
/* Reasons handed to on_error are at most this long (with the NUL). */
#define IMPORT_REASON_MAX 512

struct import_opts {
	/* Longest JSONL line or csv record, without its line end; 0 = default. */
	size_t max_line_bytes;
	/* Largest pubmedqa / sharegpt document; 0 = default. */
	size_t max_doc_bytes;
};

struct import_cb {
	/* A valid item, in input order. item is taken (json_decref it). line as
	 * described above. Return 0 to go on, non-zero to stop the parser: the
	 * feed or finish call in progress returns that value. */
	int (*on_item)(void *ud, json_t *item, long line);
	/* A rejected record. reason is borrowed, valid UTF-8, without the line
	 * number (except where it names another line). Return as on_item. */
	int (*on_error)(void *ud, long line, const char *reason);
	void *ud;
};

struct import_parser;

/* "native, medqa, medmcqa, pubmedqa, sharegpt, csv" (static string). */
const char *import_format_list(void);
/* True when name is one of the formats above (exact, lower case). */
bool import_format_known(const char *name);

/* Creates a parser for format. opts may be NULL (defaults); cb is copied,
 * both callbacks required. On error returns NULL with a message in err (may
 * be NULL): an unknown format names the valid ones. */
struct import_parser *import_parser_new(const char *format, const struct import_opts *opts,
                                        const struct import_cb *cb, char *err, size_t errlen);
/* Frees the parser; items not yet handed out are dropped. NULL is a no-op. */
void import_parser_free(struct import_parser *p);

/* Feeds the next len bytes of the input (any split: a line, a record or a
 * UTF-8 sequence may straddle calls). Fires the callbacks for every record
 * completed by these bytes, before returning. Returns 0; a callback's
 * non-zero return (the parser is then stopped and every later call returns
 * -ECANCELED); -ENOMEM; -EINVAL after import_parser_finish. */
int import_parser_feed(struct import_parser *p, const char *data, size_t len);
/* Ends the input: completes a last line without a line end, parses a
 * whole-document format, and fires the remaining callbacks. Returns as
 * import_parser_feed; calling it twice is -EINVAL. */
int import_parser_finish(struct import_parser *p);

/* Items handed out and records rejected so far (either may be NULL). */
void import_parser_counts(const struct import_parser *p, long *items, long *errors);

/* The id derived for an item without one: FNV-1a 64 over the question, the
 * options sorted by key and the answer (see import.c for the exact bytes),
 * as 16 lower-case hex digits into out (at least 17 bytes). options may be
 * NULL. Deterministic across runs and hosts. */
void import_item_id(const char *question, json_t *options, const char *answer, char out[17]);

#endif
