#ifndef MT_GRADE_H
#define MT_GRADE_H
/* Grading of model replies against gold answers: pure functions, no I/O.
 *
 * Multiple choice: grade_extract_choice finds which option a free-form reply
 * chose. Rules, strongest first (within a tier the LAST statement wins, so a
 * restated answer after hedging counts):
 *   1. structure: <answer>X</answer>, {"answer":"X"}, \boxed{X}
 *   2. "Final answer: X", "最终答案：X"
 *   3. explicit statements: "The (correct|best) answer is (C)", "Answer: C",
 *      "答案：C", "故选C", "I would choose C", "Option C is correct",
 *      "C. <option text>" or "(C)" / "**C.**" alone on a line
 *   4. the option's text instead of its key, in the last line or a short
 *      reply (exact, contained, or a close paraphrase by token overlap)
 *   5. a leading "Yes,"/"No." for word keys (PubMedQA); a bare key letter in
 *      a very short reply
 *   6. mentions ("option C", "(C)", "选项C") not in a negative context: one
 *      distinct key -> that key; several -> ambiguous
 * Letters that are not answers ("Vitamin A", "type B", "a patient") are
 * skipped. Keys may be letters (matched case-insensitively in explicit
 * patterns) or words such as yes/no/maybe (matched as words).
 *
 * Open-ended: grade_open compares the reply's final answer (after "答案：",
 * "Final answer:", "Answer:", else the whole reply) with the gold text after
 * normalization (ASCII case folded, full-width forms folded, punctuation and
 * whitespace incl. CJK punctuation removed). Equal, or the gold contained in
 * the final-answer line, is correct; anything else needs a judge. */

#include <jansson.h>
#include <stddef.h>

#define GRADE_ANSWER_MAX 256            /* bytes of an extracted answer, with NUL */
#define GRADE_REPLY_MAX  ((size_t)1 << 20) /* longest reply graded */
#define GRADE_OPTIONS_MAX 32            /* most options an item may have */

enum grade_verdict {
	GRADE_NONE = 0,    /* no answer found */
	GRADE_FOUND,       /* extraction only: an option key was found */
	GRADE_AMBIGUOUS,   /* several different answers, none decisive */
	GRADE_CORRECT,
	GRADE_WRONG,
	GRADE_NEEDS_JUDGE, /* open-ended, no mechanical match: ask a judge */
};

struct grade_result {
	enum grade_verdict verdict;
	/* The extracted option key (as spelled in options) or final-answer text
	 * (truncated on a UTF-8 boundary); "" when none. */
	char answer[GRADE_ANSWER_MAX];
	/* Static name of the rule that decided, e.g. "final_answer",
	 * "answer_tag", "text_contains", "mention", "no_answer". */
	const char *rule;
};

/* "none", "found", "ambiguous", "correct", "wrong", "needs_judge". */
const char *grade_verdict_name(enum grade_verdict v);

/* Extracts the chosen option from reply. options: borrowed JSON object
 * key -> option text (1..GRADE_OPTIONS_MAX keys, string values). out gets
 * verdict GRADE_FOUND (answer = the key), GRADE_NONE or GRADE_AMBIGUOUS.
 * Returns 0, -EINVAL (NULL argument, options not a non-empty object of
 * strings), -E2BIG (reply over GRADE_REPLY_MAX), -ENOMEM. Thread-safe. */
int grade_extract_choice(const char *reply, json_t *options, struct grade_result *out);

/* Grades an open-ended reply against gold (UTF-8 text). out gets
 * GRADE_CORRECT, GRADE_NEEDS_JUDGE, or GRADE_NONE for an empty reply;
 * answer = the extracted final answer. Returns 0, -EINVAL, -E2BIG, -ENOMEM.
 * Thread-safe. */
int grade_open(const char *reply, const char *gold, struct grade_result *out);

/* Grades reply for a normalized item (borrowed; see formats/import.h): with
 * "options", extracts the key and compares it with "answer" (GRADE_CORRECT,
 * GRADE_WRONG, GRADE_NONE, GRADE_AMBIGUOUS); without, grade_open.
 * Returns 0, -EINVAL (item without question/answer strings, bad options),
 * -E2BIG, -ENOMEM. Thread-safe. */
int grade_item(json_t *item, const char *reply, struct grade_result *out);

/* Normalizes s for comparison as grade_open does, into a new string the
 * caller frees. NULL on allocation failure or s == NULL. */
char *grade_normalize(const char *s);

#endif
