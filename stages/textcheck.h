#ifndef MT_TEXTCHECK_H
#define MT_TEXTCHECK_H
/* Screening of teacher text before it enters a set: a reply that is cut,
 * degenerate, in the wrong language, an echo of its prompt, or a runaway
 * that goes on about other things is caught here, and the step re-asks it
 * (stages/steps.c). Pure functions, no I/O; thread-safe.
 *
 * The checks are rows of a table, run in order; the first that fires names
 * the problem. Every threshold is a named constant below; docs/prompts.md
 * explains them and tests/unit/test_textcheck.c measures them on the real
 * MedThink data (../shared/data/medthink). Lengths are in bytes of UTF-8;
 * "terms" are CJK character bigrams (within runs of Han characters) and
 * Latin words of three letters or more, lower-cased. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* too_long: a reply longer than max_tokens * this many bytes cannot have
 * come from the request (a CJK character is 3 bytes and at least ~0.6
 * token; English is ~4 bytes a token): the endpoint ignored the limit or
 * looped. */
#define TEXTCHECK_BYTES_PER_TOKEN 6

/* repetition, loop: a unit of 1..LOOP_UNIT_MAX bytes (not all white space)
 * repeated back to back at least LOOP_MIN_REPEATS times over at least
 * LOOP_MIN_BYTES ("; ; ; ; ...", "哈哈哈哈..."). */
#define TEXTCHECK_LOOP_UNIT_MAX   64
#define TEXTCHECK_LOOP_MIN_REPEATS 8
#define TEXTCHECK_LOOP_MIN_BYTES  64

/* repetition, n-grams: the share of the text covered by GRAM_BYTES-byte
 * n-grams that occur GRAM_MIN_COUNT times or more; at least GRAM_MIN_SHARE
 * percent and GRAM_MIN_BYTES covered is degenerate. */
#define TEXTCHECK_GRAM_BYTES      30
#define TEXTCHECK_GRAM_MIN_COUNT  3
#define TEXTCHECK_GRAM_MIN_SHARE  30
#define TEXTCHECK_GRAM_MIN_BYTES  240

/* repetition, lines: one line of at least LINE_MIN_BYTES (trimmed) that
 * occurs LINE_MIN_REPEATS times (a header the model keeps re-emitting). */
#define TEXTCHECK_LINE_MIN_BYTES  18
#define TEXTCHECK_LINE_MIN_REPEATS 3

/* echo: lines of the rendered prompt of at least ECHO_LINE_MIN_BYTES that
 * are template text (not part of the item's question, options, gold or
 * reference explanation), found verbatim in the reply, ECHO_MIN_BYTES in
 * all; or a chat-template token ("<|im_end|>", ...) in the reply. */
#define TEXTCHECK_ECHO_LINE_MIN_BYTES 24
#define TEXTCHECK_ECHO_MIN_BYTES      40

/* language: the CJK share of letters (Han, kana, hangul over those plus
 * Latin letters). An item with at least LANG_MIN_LETTERS letters is CJK at
 * LANG_ITEM_CJK percent or more, Latin at LANG_ITEM_LATIN or less; a reply
 * with at least LANG_MIN_LETTERS letters is in another language when it is
 * under LANG_REPLY_CJK_MIN percent for a CJK item, or over
 * LANG_REPLY_LATIN_MAX percent for a Latin one. */
#define TEXTCHECK_LANG_MIN_LETTERS   20
#define TEXTCHECK_LANG_ITEM_CJK      30
#define TEXTCHECK_LANG_ITEM_LATIN    5
#define TEXTCHECK_LANG_REPLY_CJK_MIN 20
#define TEXTCHECK_LANG_REPLY_LATIN_MAX 50

/* off_topic (a runaway tail): a run of whole lines at the end of the reply
 * holding TOPIC_TAIL_SHARE percent of its terms or more (and at least
 * TOPIC_MIN_TERMS), of which at most TOPIC_MAX_SHARE percent occur in the
 * item (question, options, gold) or in the reply before that run: the reply
 * went on about something else (the MedThink garbage records paste
 * unrelated exam questions after the answer). Split points are tried at
 * the first TOPIC_SPLITS_MAX line starts. */
#define TEXTCHECK_TOPIC_MAX_SHARE  2
#define TEXTCHECK_TOPIC_MIN_TERMS  40
#define TEXTCHECK_TOPIC_TAIL_SHARE 75
#define TEXTCHECK_TOPIC_SPLITS_MAX 256

/* The checks, in the order they run. */
enum textcheck_kind {
	TEXTCHECK_TRUNCATED = 0, /* finish_reason "length" */
	TEXTCHECK_TOO_LONG,
	TEXTCHECK_REPETITION,
	TEXTCHECK_ECHO,
	TEXTCHECK_NEW_TASK,      /* the reply sets itself a new question */
	TEXTCHECK_LANGUAGE,
	TEXTCHECK_OFF_TOPIC,
	TEXTCHECK__N
};

#define TEXTCHECK_BIT(k) (1u << (k))
#define TEXTCHECK_ALL ((1u << TEXTCHECK__N) - 1u)

/* Texts are analysed up to this many bytes (a longer one is too long for
 * every step anyway). */
#define TEXTCHECK_SCAN_MAX ((size_t)256 << 10)

/* What to screen (all borrowed). */
struct textcheck_input {
	const char *text;     /* the reply text (UTF-8; invalid bytes count as
	                         non-letters) */
	json_t *item;         /* normalized item: language and topic reference,
	                         and the text the reply may quote */
	json_t *prompt;       /* the rendered messages (string content or content
	                         parts, whose text is read), or NULL: no echo
	                         check */
	const char *quotable; /* more text the reply may quote (the student's
	                         reply a correction discusses), or NULL */
	bool length_cut;      /* the reply stopped at max_tokens */
	int64_t max_tokens;   /* the request's limit; 0: no length check */
	unsigned checks;      /* TEXTCHECK_BIT()s of the checks to run */
};

/* What the screening found. */
struct textcheck_result {
	int kind;             /* the enum textcheck_kind that fired, or -1 */
	char reason[200];     /* "check: detail", valid UTF-8; "" when clean */
};

/* "truncated", "too_long", ...; "?" for anything else. */
const char *textcheck_name(int kind);

/* Screens in->text. Returns 1 when a check fired (out->kind and
 * out->reason say which and why), 0 when the text is clean, -EINVAL (no
 * text), -ENOMEM. Only the first TEXTCHECK_SCAN_MAX bytes of a longer
 * text are analysed. Thread-safe. */
int textcheck_run(const struct textcheck_input *in, struct textcheck_result *out);

/* The CJK share of letters of s, in percent, and the letter count (may be
 * NULL): 0 when s has no letters. Exposed for tests and reports. */
int textcheck_cjk_share(const char *s, size_t *letters);

#endif
