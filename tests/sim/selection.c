/* medthink-sim: the selection tasks, logprob markers and embeddings (a
 * simulator: nothing here is a model). */
#include "tests/sim/selection.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The number after marker in text (e.g. "sim-rate=" -> 90), or false. */
static bool marker_num(const char *text, const char *marker, double *v)
{
	const char *p = text ? strstr(text, marker) : NULL;
	char *end;

	if (!p)
		return false;
	*v = strtod(p + strlen(marker), &end);
	return end != p + strlen(marker);
}

bool sim_select_reply(struct buf *b, const struct sim_prompt *p, const char *text, uint64_t h)
{
	if (strcmp(p->task, "diq_rate") == 0) {
		const char *m = text ? strstr(text, "sim-diff=") : NULL;
		int k, r, o;

		if (!m || sscanf(m, "sim-diff=%d/%d/%d", &k, &r, &o) != 3) {
			k = 1 + (int)(sim_u01(h, 61) * 5);
			r = 1 + (int)(sim_u01(h, 62) * 5);
			o = (k + r + 1) / 2;
		}
		buf_printf(b, "{\"knowledge\": %d, \"reasoning\": %d, \"overall\": %d}", k, r, o);
		return true;
	}
	if (strcmp(p->task, "s3_rate") == 0) {
		double v;

		if (!marker_num(text, "sim-rate=", &v))
			v = 60 + floor(sim_u01(h, 63) * 41);
		buf_printf(b, "%g", v);
		return true;
	}
	return false;
}

void sim_lp_marks_parse(const char *prompt, struct sim_lp_marks *m)
{
	const char *a = NULL;

	memset(m, 0, sizeof(*m));
	m->has_p = marker_num(prompt, "sim-lp=", &m->p);
	m->has_a = marker_num(prompt, "sim-la=", &m->a);
	m->has_g = marker_num(prompt, "sim-lg=", &m->g);
	m->prompt_len = strlen(prompt);
	for (const char *q = strstr(prompt, "Answer:"); q; q = strstr(q + 1, "Answer:"))
		a = q;
	m->answer_at = a ? (size_t)(a - prompt) + strlen("Answer:") : m->prompt_len;
}

double sim_lp_mark(const struct sim_lp_marks *m, size_t off, bool echo)
{
	if (!echo || off >= m->prompt_len)
		return m->has_g ? -m->g : NAN;
	if (off >= m->answer_at)
		return m->has_a ? -m->a : NAN;
	return m->has_p ? -m->p : NAN;
}

size_t sim_embedding(const char *input, uint64_t seed, size_t dim, double *out, size_t max)
{
	const char *m = strstr(input, "sim-emb=");
	size_t n = 0;

	if (m) {
		const char *p = m + strlen("sim-emb=");

		while (n < max) {
			char *end;
			double v = strtod(p, &end);

			if (end == p)
				break;
			out[n++] = v;
			if (*end != ',')
				break;
			p = end + 1;
		}
		if (n > 0)
			return n;
	}
	for (n = 0; n < dim && n < max; n++)
		out[n] = sim_u01(sim_hash(input, strlen(input), seed), 70 + n) * 2 - 1;
	return n;
}
