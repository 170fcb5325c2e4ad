#ifndef MT_REWARDS_H
#define MT_REWARDS_H
/* Rule rewards for RL prompt sets (MedVLM-R1, arXiv 2502.19634): a format
 * reward and an accuracy reward per completion, as a table of named rule
 * sets. Pure code over byte strings (UTF-8 expected; an invalid byte is
 * taken as one character that is neither a letter nor a space), no I/O,
 * thread-safe. docs/rewards.md documents every rule and quirk.
 *
 * "r1" reproduces the published rewards exactly, quirks included:
 *   format   1.0 when the WHOLE completion matches
 *            <think>.*?</think>\s*<answer>.*?</answer> (dot matches newlines,
 *            tags case-sensitive, \s = Unicode white space), else 0.0;
 *   accuracy the first <answer>...</answer> (tags case-insensitive, the
 *            closing tag the first after the opening one), its content
 *            stripped of white space; the letters A-J of its upper-cased
 *            text are collected (a letter inside a word counts); exactly one
 *            letter equal to the gold gives 1.0 when nothing else is left in
 *            the tag and 0.5 when other text is, anything else 0.0.
 * "strict" never rewards what r1 rewards by accident:
 *   format   r1's format and each of the four tags exactly once;
 *   accuracy exactly one answer tag pair whose stripped content is one
 *            letter A-J (either case) equal to the gold: 1.0, else 0.0. */

#include <stddef.h>

/* Largest completion scored; longer text is refused by the callers
 * (POST /v1/score) with a clear error. */
#define REWARDS_TEXT_MAX ((size_t)1 << 20)

/* One rule set: its name and its two rewards. text is len bytes (no NUL
 * needed); gold is the gold option key ("C"; a gold written as
 * "<answer> C </answer>" is read as its content, white space removed). */
struct reward_rules {
	const char *name;
	const char *summary; /* one line for listings and docs */
	double (*format)(const char *text, size_t len);
	double (*accuracy)(const char *text, size_t len, const char *gold);
};

/* The rule set named name ("r1", "strict"), or NULL. NULL or "" names the
 * default, "r1". */
const struct reward_rules *rewards_find(const char *name);

/* The i-th rule set (0-based), or NULL past the last. */
const struct reward_rules *rewards_at(size_t i);

#endif
