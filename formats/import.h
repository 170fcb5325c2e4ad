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
 *    "mask":{...}?, "meta":{...}?}
 * "mask" (one lesion of a mask, for the refer job) is described in
 * formats/import_masks.c and docs/refer.md.
 * With "options" the item is multiple-choice and "answer" is one of its keys;
 * without, it is open-ended and "answer" is the answer text. Strings are
 * valid UTF-8. "id" is unique within one parser's input; when the input has
 * none it is derived from the content (import_item_id). docs/formats.md
 * describes every layout and its mapping.
 *
 * Formats are rows of a table (struct import_format below, one file each:
 * formats/import_<name>.c; the table is in formats/import.c). A row's kind
 * says how its bytes are framed: JSON Lines (parsed line by line as bytes
 * arrive: native, medqa, medmcqa), csv (RFC 4180, record by record), or one
 * JSON document (buffered up to max_doc_bytes and parsed by
 * import_parser_finish: pubmedqa, sharegpt). A UTF-8 byte order mark at the
 * start of the input is skipped for every format. `medthink formats` and
 * GET /v1/formats list the rows.
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
struct import_csv_record; /* formats/import_impl.h */
struct import_format;

/* Telling the layout of a file from its first bytes, when no format is
 * given (import_format_sniff). */
enum import_sniff_verdict {
	IMPORT_SNIFF_NO = 0, /* not this layout */
	IMPORT_SNIFF_MAYBE,  /* the start fits, nothing proves it */
	IMPORT_SNIFF_YES,    /* the first record reads as this layout */
};

struct import_sniff {
	const char *head; /* the first bytes of the input, a UTF-8 BOM skipped */
	size_t len;
	bool all;         /* head is the whole input */
	char first;       /* the first byte that is not blank, or 0 */
	const char *line; /* the line holding it (up to its '\n' or the head's end) */
	size_t line_len;
};

/* Bytes of the head import_format_sniff would like (64 KiB: many records of
 * any layout), and the most it is ever given (a line may be longer). */
#define IMPORT_SNIFF_WANT ((size_t)64 << 10)
#define IMPORT_SNIFF_MAX IMPORT_MAX_LINE_DEFAULT

enum import_kind {
	IMPORT_JSON_LINES, /* one JSON object a line, parsed as each line completes */
	IMPORT_CSV,        /* RFC 4180 records, parsed as each record completes */
	IMPORT_DOCUMENT,   /* one JSON document, parsed by import_parser_finish */
};

/* One input layout. A new importer is one file holding its row and its
 * parse function, and one line in the table in formats/import.c. The parse
 * functions build a candidate item and hand it to import_emit, or report
 * the record (formats/import_impl.h). */
struct import_format {
	const char *name;        /* ?format= and --format, exact and lower case */
	const char *description; /* one line, for GET /v1/formats */
	enum import_kind kind;
	/* The source names of the question and the answer, for the reasons
	 * "missing \"KEY\"" and "\"KEY\" is empty". */
	const char *question_key, *answer_key;
	/* IMPORT_DOCUMENT: what the document must be, for "expected WHAT,
	 * found ..." ("a JSON array of conversations"). */
	const char *doc_what;
	/* IMPORT_DOCUMENT: NULL when the records are an array's elements; else
	 * they are an object's members and this names their keys in reasons
	 * ("PMID": "record 3 (PMID 123): ..."). */
	const char *doc_key;
	/* IMPORT_JSON_LINES and IMPORT_DOCUMENT: one record, an object
	 * (borrowed), at line (JSON Lines) or record index (documents); key is
	 * its member name in a keyed document, else NULL. */
	void (*parse_json)(struct import_parser *p, const char *key, json_t *rec, long line);
	/* IMPORT_CSV: one record (borrowed). */
	void (*parse_csv)(struct import_parser *p, const struct import_csv_record *rec);
	/* Frees the state a row kept in import_parser_state; NULL: none kept. */
	void (*state_free)(void *state);
	/* Says whether the start of an input is in this layout (any thread, no
	 * side effects). import_sniff_records serves the line and record
	 * layouts: a trial parse of the head. NULL: never picked unasked. */
	enum import_sniff_verdict (*sniff)(const struct import_format *f, const struct import_sniff *s);
};

extern const struct import_format import_format_native, import_format_medqa,
	import_format_medmcqa, import_format_pubmedqa, import_format_sharegpt, import_format_csv;
extern const struct import_format import_format_masks; /* formats/import_masks.c */
extern const struct import_format import_format_medvlm;

/* The row named name (exact, lower case), or NULL (name NULL included). */
const struct import_format *import_format_find(const char *name);
/* The i-th row of the table, in listing order; NULL past the end. */
const struct import_format *import_format_at(size_t i);
/* The names joined by ", ": "native, medqa, ..., csv" (static string,
 * built once from the table; any thread). */
const char *import_format_list(void);
/* True when name names a row (import_format_find != NULL). */
bool import_format_known(const char *name);

/* True when head (len bytes, the start of an input) is enough to sniff:
 * IMPORT_SNIFF_WANT bytes with a line end after the first non-blank byte,
 * or IMPORT_SNIFF_MAX bytes. At the input's end it is always enough. */
bool import_sniff_enough(const char *head, size_t len);
/* The layout of an input from its start (len bytes of head; all: the whole
 * input), when no format is given. Asks every row's sniff: native when the
 * first record reads as native (it stays the default); else the one row
 * that says YES, or failing that the one that says MAYBE; native when none
 * does (its errors then say what is wrong, line by line). When two or more
 * rows fit equally, returns NULL with err naming them ("it could be medqa
 * or medmcqa"). Any thread. */
const struct import_format *import_format_sniff(const char *head, size_t len, bool all, char *err,
                                                size_t errlen);
/* The sniff of a line or record layout: parses the head's complete lines
 * (all of it when s->all) with f and says YES when the first record it
 * meets is an item, NO when it is rejected or there is none. */
enum import_sniff_verdict import_sniff_records(const struct import_format *f, const struct import_sniff *s);

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
