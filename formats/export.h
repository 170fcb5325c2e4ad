#ifndef MT_EXPORT_H
#define MT_EXPORT_H
/* Export records (SPEC section 7): one training example per item, as one
 * compact JSON line. Pure: no I/O.
 *
 *   openai   {"messages":[{"role":"system","content":S},{"role":"user","content":U},
 *             {"role":"assistant","content":O}],"id":ID}
 *   sharegpt {"conversations":[{"from":"human","value":U},{"from":"gpt","value":O}],
 *             "system":S,"id":ID}
 *   alpaca   {"instruction":U,"input":"","output":O,"system":S,"id":ID}
 *   grpo     {"prompt":[{"role":"user","content":U + R1}],"answer":GOLD,"id":ID}
 *
 * S is EXPORT_SYSTEM_PROMPT (or opts->system). U is the user turn: the
 * item's context (when present, after "Context:"), its question, and for a
 * multiple-choice item a blank line and the options as "A. text" lines.
 * O is the set's output text (set 1: explanation and final answer; set 2:
 * the corrective reasoning chain), as given. R1 asks, as MedVLM-R1 does, for
 * the reasoning in <think>...</think> and the answer in <answer>...</answer>;
 * GOLD is the option key, or the answer text of an open item. "id" is the
 * item's id, left out with opts->no_ids. Keys appear in the order shown;
 * non-ASCII text is written as UTF-8, not escaped.
 *
 * Formats are rows of a table (struct export_format, one file each:
 * formats/export_<name>.c; the table is in formats/export.c).
 * `medthink formats` and GET /v1/formats list them. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define EXPORT_RECORD_MAX ((size_t)4 << 20) /* longest record line */

#define EXPORT_SYSTEM_PROMPT                                                                      \
	"You are a medical expert. Answer the medical question: reason step by step from the key " \
	"findings and the relevant medical knowledge, then state the final answer."

struct export_opts {
	bool no_ids;        /* leave out the top-level "id" (--no-ids, ids=0) */
	const char *system; /* NULL: EXPORT_SYSTEM_PROMPT */
	/* The exact user text of an RL prompt set (an rl job's r1 prompt), or
	 * NULL: grpo then writes TRL GRPOTrainer's layout, {"prompt":[{"role":
	 * "user","content":[{"type":"image"}...,{"type":"text","text":PROMPT}]}],
	 * "images":[URL...],"solution":GOLD,"answer":GOLD}. */
	const char *prompt;
};

/* What a row builds one record from, all borrowed and checked by
 * export_record: item is a normalized item whose "answer" is a string (an
 * option key when it has options); user is the user turn U; output the
 * set's text (non-empty when the row needs it, else maybe NULL); system the
 * system prompt S; answer the item's "answer". */
struct export_input {
	json_t *item;
	const char *user;
	const char *output;
	const char *system;
	const char *answer;
	const char *prompt; /* opts->prompt */
};

/* One record layout. A new exporter is one file holding its row and its
 * build function, and one line in the table in formats/export.c. */
struct export_format {
	const char *name;        /* ?format= and --format, exact and lower case */
	const char *description; /* one line, for GET /v1/formats */
	bool needs_output;       /* false: built from the item alone (grpo) */
	/* Builds the record without "id" (export_record adds it last) into
	 * *rec_out (a new object). 0 with *rec_out NULL when json_pack refused
	 * the text (invalid UTF-8): the record is -EINVAL. Errors: -E2BIG (a
	 * text over EXPORT_RECORD_MAX), -ENOMEM. */
	int (*build)(const struct export_input *in, json_t **rec_out);
	/* A whole-document format (the refer job's refcoco and lvit; build is
	 * NULL): the document of a job's regions, built at once. regions
	 * (borrowed) is an array of
	 *   {"item": a mask item (formats/import_masks.c), "split": "train"|"val",
	 *    "expressions": [{"text":S, "kept":B, "reason":S}, ...]}
	 * in item order. *out gets the document (malloc'ed, caller frees) and
	 * *len its bytes. 0, -EINVAL (an item without a usable mask), -E2BIG
	 * (over EXPORT_DOCUMENT_MAX), -ENOMEM. NULL for record formats. */
	int (*document)(json_t *regions, char **out, size_t *len);
	const char *content_type; /* of a document; NULL for record formats */
};

#define EXPORT_DOCUMENT_MAX ((size_t)256 << 20)

extern const struct export_format export_format_openai, export_format_sharegpt,
	export_format_alpaca, export_format_grpo;
/* the refer job's documents: formats/export_refcoco.c, formats/export_lvit.c */
extern const struct export_format export_format_refcoco, export_format_lvit;

/* The row named name (exact, lower case), or NULL (name NULL included). */
const struct export_format *export_format_find(const char *name);
/* The i-th row of the table, in listing order; NULL past the end. */
const struct export_format *export_format_at(size_t i);
/* The names joined by sep, with last before the last one, into out
 * (outlen bytes): "openai, sharegpt, alpaca or grpo" with ", " and " or ". */
void export_format_names(char *out, size_t outlen, const char *sep, const char *last);
/* "openai|sharegpt|alpaca|grpo" (static string, built once from the
 * table; any thread). */
const char *export_format_list(void);

/* Builds one record of format fmt (a row, borrowed) for item (a normalized
 * item, borrowed) and output (the set's text; may be NULL for a row that
 * does not need it, such as grpo) into *line_out:
 * a new NUL-terminated string holding compact JSON and a trailing '\n'
 * (caller frees). opts may be NULL (ids on, default system prompt).
 * Errors: -EINVAL (fmt NULL; item without "question"/"answer"
 * strings, or without a string "id" while ids are on; a multiple-choice
 * answer that is not an option key; missing output; invalid UTF-8), -E2BIG
 * (record over EXPORT_RECORD_MAX), -ENOMEM. Pure; thread-safe. */
int export_record(const struct export_format *fmt, json_t *item, const char *output,
                  const struct export_opts *opts, char **line_out);

/* The user turn U described above, as a new string (caller frees); NULL for
 * an item without a question string, or on ENOMEM. */
char *export_user_text(json_t *item);

#endif
