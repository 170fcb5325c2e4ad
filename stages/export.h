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
 * non-ASCII text is written as UTF-8, not escaped. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define EXPORT_RECORD_MAX ((size_t)4 << 20) /* longest record line */

#define EXPORT_SYSTEM_PROMPT                                                                      \
	"You are a medical expert. Answer the medical question: reason step by step from the key " \
	"findings and the relevant medical knowledge, then state the final answer."

enum export_format { EXPORT_OPENAI = 0, EXPORT_SHAREGPT, EXPORT_ALPACA, EXPORT_GRPO };

struct export_opts {
	bool no_ids;        /* leave out the top-level "id" (--no-ids, ids=0) */
	const char *system; /* NULL: EXPORT_SYSTEM_PROMPT */
};

/* "openai", "sharegpt", "alpaca", "grpo" -> the enum value (>= 0), or
 * -EINVAL for anything else (NULL included). */
int export_format_parse(const char *s);
/* The name of a format; "?" for an invalid value. */
const char *export_format_name(enum export_format f);
/* "openai|sharegpt|alpaca|grpo", for error messages. */
const char *export_format_list(void);

/* Builds one record for item (a normalized item, borrowed) and output (the
 * set's text; may be NULL for grpo, which does not use it) into *line_out:
 * a new NUL-terminated string holding compact JSON and a trailing '\n'
 * (caller frees). opts may be NULL (ids on, default system prompt).
 * Errors: -EINVAL (unknown format; item without "question"/"answer"
 * strings, or without a string "id" while ids are on; a multiple-choice
 * answer that is not an option key; missing output; invalid UTF-8), -E2BIG
 * (record over EXPORT_RECORD_MAX), -ENOMEM. Pure; thread-safe. */
int export_record(enum export_format fmt, json_t *item, const char *output,
                  const struct export_opts *opts, char **line_out);

/* The user turn U described above, as a new string (caller frees); NULL for
 * an item without a question string, or on ENOMEM. */
char *export_user_text(json_t *item);

#endif
