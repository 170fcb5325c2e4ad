#ifndef MT_SIM_REPLIES_H
#define MT_SIM_REPLIES_H
/* medthink-sim (a SIMULATOR, not a model): deterministic fake replies built
 * from the prompt convention of docs (### Task: NAME, Question:, Options:,
 * Gold answer:). Pure functions, any thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_OPTS 26

struct sim_prompt {
	char task[32];  /* "" when the first line is not "### Task: NAME" */
	char *question; /* NULL when absent */
	char *gold;     /* NULL when absent */
	int nopt;
	char keys[SIM_MAX_OPTS][4];
	char *opts[SIM_MAX_OPTS];
	char *student; /* for judge/correct: the graded reply, NULL when not found */
};

/* Parses text (borrowed) into p (all fields malloc'd; sim_prompt_free). */
void sim_prompt_parse(const char *text, struct sim_prompt *p);
void sim_prompt_free(struct sim_prompt *p);

struct sim_knobs {
	uint64_t seed;
	double student_accuracy;
	double drop_rate;
	double contradict_rate;
};

/* 64-bit FNV-1a, then mixed with seed (splitmix64). */
uint64_t sim_hash(const void *p, size_t n, uint64_t seed);
/* A uniform double in [0,1) from h and a salt. */
double sim_u01(uint64_t h, uint64_t salt);

/* The reply content for prompt p with content hash h (malloc'd).
 * known_gold: the gold answer learned from an earlier teacher prompt about
 * the same question (for the student), or NULL. json_mode: the request asked
 * for response_format json: JSON tasks get bare JSON. *is_json tells whether
 * the task is a JSON task. */
char *sim_reply(const struct sim_prompt *p, uint64_t h, const struct sim_knobs *k,
		const char *known_gold, bool json_mode, bool *is_json);

/* Finds the answer key stated in text for the options of p: "Final answer:
 * X", "Answer: X", "The answer is (X)", "<answer>X</answer>",
 * {"answer":"X"}, "**X.**", or an option's text alone on the last line.
 * Returns the index of the option, or -1. */
int sim_extract_answer(const char *text, const struct sim_prompt *p);

/* Splits text into GPT-like tokens (a word with its leading space, or one
 * other character). Calls cb(ctx, offset, len) for each. */
void sim_tokenize(const char *text, void (*cb)(void *ctx, size_t off, size_t len), void *ctx);

#endif
