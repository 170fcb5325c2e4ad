#ifndef MT_PROMPTS_H
#define MT_PROMPTS_H
/* Prompt templates: built in (conf/prompts/NAME.txt at build time) or
 * loaded from a prompts_dir's NAME.txt files into a JSON snapshot
 * (which a job stores at submission, so a job always renders with the
 * templates it started with), and rendered into OpenAI chat messages.
 * docs/prompts.md describes the file format.
 *
 * File: first line "# medthink prompt NAME vN" (NAME = the file name
 * without .txt, N >= 1), then the system part, a line "---user---", then
 * the user part, whose first line must be "### Task: NAME".
 *
 * Template syntax: {name} is a placeholder; {#name}...{/name} is a section
 * kept only when its condition holds; a section tag alone on a line removes
 * that line. Any other brace is literal text (JSON examples are fine).
 * Placeholders: question, options ("A. text" lines), gold (option key, or
 * the answer text of an open item), gold_text (the gold option's text, or
 * the answer text), student_reply, explanation, context, topic, problem
 * (MedVLM-R1's problem text: the question, then one "A) text" line per
 * option).
 * Sections: mc, open, context, explanation, topic, student_reply (the last
 * four: the value is non-empty).
 *
 * Gold rules, checked at load: the answer template never mentions the gold
 * answer; screen, explain, judge and correct hold a line "Gold answer: {gold}".
 *
 * Snapshot: {"NAME":{"version":N,"system":"...","user":"..."},...}. */

#include <jansson.h>
#include <stddef.h>

#define PROMPTS_FILE_MAX   ((size_t)64 << 10)  /* largest template file */
#define PROMPTS_RENDER_MAX ((size_t)512 << 10) /* largest rendered message */
#define PROMPTS_MAX        32                  /* most templates in a directory */

/* The templates every snapshot must hold (NULL-terminated). */
extern const char *const prompts_required[];

/* Loads every *.txt in dir into a new snapshot (*snapshot, caller
 * json_decrefs); dir NULL loads the built-in templates instead (conf/prompts
 * as compiled into the binary by stages/prompts_builtin.sh), so no file is
 * read. Every file is parsed and checked (header, separator, task
 * line, placeholders, sections, gold rules); the required templates must
 * all be present. Errors: -ENOENT (dir or a required template missing),
 * -EINVAL (a bad template), -EFBIG (a file over PROMPTS_FILE_MAX), -EMFILE
 * (over PROMPTS_MAX files), -EIO, -ENOMEM; err (may be NULL) names the file,
 * line and problem. Blocking file reads: call at startup or off the loop. */
int prompts_load_dir(const char *dir, json_t **snapshot, char *err, size_t errlen);

/* Checks a snapshot (e.g. read back from the store) as prompts_load_dir
 * checks files. Returns 0 or -EINVAL with err set. */
int prompts_check(json_t *snapshot, char *err, size_t errlen);

/* Renders template name for item (a normalized item, borrowed) into a new
 * messages array [{"role":"system","content":...},{"role":"user",...}]
 * (*messages_out, caller json_decrefs; the system message is left out when
 * empty). vars (borrowed, may be NULL) is an object of string values for
 * student_reply, explanation, context, topic (overriding the item's).
 * Errors, with err naming the template and the placeholder or key:
 * -ENOENT (no such template), -EINVAL (bad item, unknown placeholder or var,
 * a placeholder whose value is missing such as student_reply), -E2BIG
 * (rendered message over PROMPTS_RENDER_MAX), -ENOMEM. Pure; thread-safe. */
int prompts_render(json_t *snapshot, const char *name, json_t *item, json_t *vars,
                   json_t **messages_out, char *err, size_t errlen);

/* The "A. text" lines of an options object (keys in stored order, joined by
 * '\n', no trailing newline), as a new string; NULL for a non-object or on
 * ENOMEM. The same text as the exports' (formats/item.h). */
char *prompts_options_text(json_t *options);

/* MedVLM-R1's "problem": question, then "\nK) text" for each option of
 * options (an object, keys in stored order; NULL or empty: none), as a new
 * string; NULL on ENOMEM or over PROMPTS_RENDER_MAX. */
char *prompts_problem_text(const char *question, json_t *options);

#endif
