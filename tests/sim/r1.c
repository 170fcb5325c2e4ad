/* medthink-sim: replies to MedVLM-R1 prompts (tests/sim/r1.h). */
#include "tests/sim/r1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "tests/sim/replies.h"

#define R1_MARK1 "Your task:"
#define R1_MARK2 "inside <answer>...</answer> tags"
#define R1_MAX_OPTS 10

bool sim_r1_is_prompt(const char *text)
{
	return text && strstr(text, R1_MARK1) && strstr(text, R1_MARK2) && strstr(text, "<think>");
}

/* The option keys of the problem: lines "K) text" with K in A-J. */
static int r1_keys(const char *text, char *keys)
{
	const char *l = text;
	int n = 0;

	while (*l && n < R1_MAX_OPTS) {
		const char *s = l;

		while (*s == ' ' || *s == '\t')
			s++;
		if (s[0] >= 'A' && s[0] <= 'J' && s[1] == ')' && s[2] == ' ')
			keys[n++] = s[0];
		l = strchr(l, '\n');
		if (!l)
			break;
		l++;
	}
	return n;
}

char *sim_r1_reply(const char *text, int64_t seed, uint64_t sim_seed, const char *known_gold)
{
	static const double confidence[] = { 0.0, 0.25, 0.5, 0.75, 1.0, 0.5 };
	char keys[R1_MAX_OPTS], ans, fav;
	const char *body = strstr(text, R1_MARK1);
	uint64_t item = sim_hash(text, body ? (size_t)(body - text) : strlen(text), sim_seed);
	uint64_t h = sim_hash(&seed, sizeof(seed), item);
	int n = r1_keys(text, keys), favi;
	double conf, form = sim_u01(h, 3);
	struct buf b;

	if (n == 0) {
		keys[0] = 'A';
		n = 1;
	}
	favi = (int)(sim_u01(item, 1) * n);
	fav = known_gold && known_gold[0] >= 'A' && known_gold[0] <= 'J' && !known_gold[1]
		      ? known_gold[0]
		      : keys[favi];
	conf = confidence[(int)(sim_u01(item, 2) * (sizeof(confidence) / sizeof(confidence[0])))];
	ans = fav;
	if (sim_u01(h, 4) >= conf) /* a guess among all the options */
		ans = keys[(int)(sim_u01(h, 5) * n)];
	buf_init(&b, 4096);
	/* about one sample in six is malformed, one of five ways */
	if (form < 0.06)
		buf_printf(&b, "The findings point to option %c.\n<answer>%c</answer>", ans, ans);
	else if (form < 0.10)
		buf_printf(&b, "<think>Reviewing the image and the options.\n<answer>%c</answer>", ans);
	else if (form < 0.13)
		buf_printf(&b, "<think>Reviewing the image.</think>\n<answer>%c</answer>\nHope this helps.", ans);
	else if (form < 0.15)
		buf_printf(&b, "<think>Reviewing the image.</think>\n<answer>Option %c</answer>", ans);
	else if (form < 0.17)
		buf_printf(&b, "<think>Reviewing the image.</think>\n<answer>%c.</answer>", ans);
	else
		buf_printf(&b,
			   "<think>\nThe image shows the relevant structure. Weighing each option against "
			   "the findings, option %c fits best (sample %lld).\n</think>\n<answer>%c</answer>",
			   ans, (long long)seed, ans);
	return buf_take(&b);
}
