#ifndef MT_STORE_EVALROUND_H
#define MT_STORE_EVALROUND_H
/* An eval job over several students evaluates them one after the other on
 * the same split, each round with the same eval steps; a finished round is
 * moved aside under its own names so the next starts afresh and the report
 * can still read it. Same rules as store/store.h. */

#include <stdint.h>

struct store;

/* Renames the job's artifacts of kind `kind` to "kind@suffix" and its tasks
 * of each step in steps (NULL-terminated) to "step@suffix", replacing rows
 * already under those names. One transaction (nested when one is open).
 * 0 or a negative errno (-EINVAL for empty names or a name over 200 bytes). */
int store_eval_round_archive(struct store *st, int64_t job, const char *kind,
			     const char *const *steps, const char *suffix);

#endif
