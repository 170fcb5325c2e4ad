#ifndef MT_SIM_R1_H
#define MT_SIM_R1_H
/* medthink-sim (a SIMULATOR, not a model): replies to MedVLM-R1 prompts
 * (the rl job's r1 template: a problem with "K) option" lines, then the
 * <think>/<answer> instructions). Deterministic per prompt and sampling
 * seed: each item has a favourite option and a confidence drawn from its
 * text, each sample answers from them, and some samples are malformed
 * (missing tags, text outside them, a word in the answer tag), so pass
 * rates differ across items and samples. Pure functions, any thread. */

#include <stdbool.h>
#include <stdint.h>

/* True when text (a user message's text) is an R1 prompt. */
bool sim_r1_is_prompt(const char *text);

/* The completion for R1 prompt text, sample seed (the request's "seed", 0
 * when absent), simulator seed sim_seed; known_gold (may be NULL) is the
 * item's gold when the simulator learned it. malloc'd, NULL on ENOMEM. */
char *sim_r1_reply(const char *text, int64_t seed, uint64_t sim_seed, const char *known_gold);

#endif
