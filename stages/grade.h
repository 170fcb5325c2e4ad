#ifndef MT_GRADE_H
#define MT_GRADE_H
/* Grading of model replies against gold answers: pure functions, no I/O.
 * docs/grading.md has the measured figures and the reasons.
 *
 * Multiple choice: grade_extract_choice finds which option a free-form reply
 * chose. Before the rules: a reply still inside an open <think> is no
 * answer; an option list the reply echoes ("A) yes / B) no / C) maybe") is
 * blanked out; after a </think>, the text that follows is read first.
 * Rules, strongest first (within a tier the LAST statement wins, so a
 * restated answer after hedging counts):
 *   1. structure: <answer>X</answer>, {"answer":"X"}, \boxed{X}
 *   2. "Final answer: X", "最终答案：X"
 *   3. explicit statements: "The (correct|best) answer is (C)", "Answer: C",
 *      "答案：C", "故选C", "I would choose C", "Option C is correct",
 *      "D is more likely", "C. <option text>" or "(C)" / "**C.**" alone on a
 *      line. A statement inside a hypothetical ("if ..., the answer would
 *      be C") decides nothing. What a statement names is read as: a key; an
 *      option's text or its initials ("SCC"); "C or D" or a list of texts
 *      (ambiguous); "none of the above" (no answer); "not D" (a rejection);
 *      a key whose text names another option, "riboflavin (B)" where
 *      riboflavin is C (ambiguous). A correction after the deciding
 *      statement ("Wait, actually ... it's B") overrides it.
 *   4. elimination: every option but one rejected ("A is unlikely", "C is
 *      ruled out", "the answer is not D") -> the one left
 *   5. a key in the last clause ("..., so C."), unless that sentence is a
 *      hypothetical; two hypothetical answers and nothing else -> ambiguous
 *   6. the option's text instead of its key, in the last clause, sentence or
 *      line or a short reply (exact, contained, or a close paraphrase by
 *      token overlap), unless negated ("it is not X")
 *   7. a leading "Yes,"/"No." for word keys (PubMedQA); a bare key letter in
 *      a very short reply
 *   8. mentions ("option C", "(C)", "C:" opening a line, "选项C") not in a
 *      negative context: one distinct key -> that key; several -> ambiguous
 * Letters that are not answers ("Vitamin A", "type B", "a patient") are
 * skipped. Keys may be letters (matched case-insensitively in explicit
 * patterns) or words such as yes/no/maybe (matched as words). A reply cut by
 * the token limit (grade_opts.truncated) is read by rules 1-3 only.
 *
 * grade_result.rule names the rule that decided; the names are stable (the
 * eval report counts answers per rule):
 *   found:     answer_tag, answer_tag_text, json_answer, json_answer_text,
 *              boxed, boxed_text, final_answer, final_answer_text,
 *              answer_phrase, answer_phrase_text, choose_phrase,
 *              key_is_correct, standalone, key_with_text, self_correction,
 *              elimination, last_sentence, text_exact, text_contains,
 *              text_overlap, leading_word, short_reply, mention, text_keyword
 *              (*_text: the statement named the option by its text)
 *   ambiguous: letter_text_conflict, answer_list, hedged_options, mentions,
 *              text_several, short_reply, and a statement's own rule for
 *              "C or D"
 *   none:      no_answer, none_of_the_above, unfinished_think, truncated
 *   open-ended (grade_open): final_answer_exact, exact,
 *              final_answer_contains, last_line_contains, no_match, empty,
 *              unfinished_think, truncated
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

/* How the reply came back, for the grader. Zeroed = a complete reply. */
struct grade_opts {
	/* The reply was cut by the token limit (finish_reason "length"): only an
	 * explicit statement counts, none of the fallbacks (rule "truncated"
	 * when there is none). */
	int truncated;
};

/* "none", "found", "ambiguous", "correct", "wrong", "needs_judge". */
const char *grade_verdict_name(enum grade_verdict v);

/* Extracts the chosen option from reply. options: borrowed JSON object
 * key -> option text (1..GRADE_OPTIONS_MAX keys, string values). out gets
 * verdict GRADE_FOUND (answer = the key), GRADE_NONE or GRADE_AMBIGUOUS.
 * Returns 0, -EINVAL (NULL argument, options not a non-empty object of
 * strings), -E2BIG (reply over GRADE_REPLY_MAX), -ENOMEM. Thread-safe. */
int grade_extract_choice(const char *reply, json_t *options, struct grade_result *out);

/* As grade_extract_choice, with opts (borrowed, NULL = all zero). */
int grade_extract_choice_opts(const char *reply, json_t *options, const struct grade_opts *opts,
                              struct grade_result *out);

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

/* As grade_item, with opts (borrowed, NULL = all zero): pass truncated
 * when the model stopped at its token limit. */
int grade_item_opts(json_t *item, const char *reply, const struct grade_opts *opts,
                    struct grade_result *out);

/* Normalizes s for comparison as grade_open does, into a new string the
 * caller frees. NULL on allocation failure or s == NULL. */
char *grade_normalize(const char *s);

#endif
