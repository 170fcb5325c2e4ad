#ifndef MT_SIM_SELECTION_H
#define MT_SIM_SELECTION_H
/* medthink-sim (a SIMULATOR, not a model): what the DIQ-like and 3DS
 * selections ask of a server, made deterministic. Test data steer it with
 * markers in an item's text (docs: tests/sim/README.md):
 *   sim-diff=K/R/O   the teacher's difficulty rating (diq_rate)
 *   sim-rate=N       the student's 0-100 rating (s3_rate)
 *   sim-lp=P sim-la=A sim-lg=G   every prompt token / gold-answer token /
 *                    generated token gets logprob -P / -A / -G
 *   sim-emb=x,y,z    the embedding of a text that holds it
 * Without markers the values come from a hash of the text. Pure. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "tests/sim/replies.h"

/* The reply to the selection tasks (diq_rate: bare JSON; s3_rate: a
 * number) into b; false when p's task is neither. */
bool sim_select_reply(struct buf *b, const struct sim_prompt *p, const char *text, uint64_t h);

/* Logprob overrides read from a completion prompt. */
struct sim_lp_marks {
	bool has_p, has_a, has_g;
	double p, a, g;
	size_t answer_at; /* bytes of the prompt before its gold answer (after the last "Answer:") */
	size_t prompt_len;
};
void sim_lp_marks_parse(const char *prompt, struct sim_lp_marks *m);
/* The logprob of a token starting at off of the text (prompt then the
 * completion when echoed; the completion alone when not: echo false), or
 * NAN when no marker covers it. */
double sim_lp_mark(const struct sim_lp_marks *m, size_t off, bool echo);

/* The embedding of input: dim values (the marker's own count when it has
 * one). Writes at most max values to out and returns how many. */
size_t sim_embedding(const char *input, uint64_t seed, size_t dim, double *out, size_t max);

#endif
