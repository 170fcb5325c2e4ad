/* medthink-sim: the refer tasks (tests/sim/refer.h). A SIMULATOR. */
#include "tests/sim/refer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count_images(json_t *msgs)
{
	size_t i, j;
	json_t *m, *part;
	int n = 0;

	json_array_foreach(msgs, i, m) {
		json_array_foreach(json_object_get(m, "content"), j, part) {
			const char *t = json_string_value(json_object_get(part, "type"));

			n += t && strcmp(t, "image_url") == 0;
		}
	}
	return n;
}

static const char *ord(int n, char *buf, size_t len)
{
	const char *suf = (n % 100 >= 11 && n % 100 <= 13) ? "th"
			  : n % 10 == 1			   ? "st"
			  : n % 10 == 2			   ? "nd"
			  : n % 10 == 3			   ? "rd"
							   : "th";

	if (n == 1)
		snprintf(buf, len, "the largest");
	else
		snprintf(buf, len, "the %d%s largest", n, suf);
	return buf;
}

/* "position: P; size rank: R of N" at s: P into pos, R and N. */
static int parse_brief(const char *s, char *pos, size_t poslen, int *r, int *n)
{
	const char *p = strstr(s, "position: "), *semi;

	if (!p)
		return -1;
	p += 10;
	semi = strchr(p, ';');
	if (!semi)
		return -1;
	snprintf(pos, poslen, "%.*s", (int)(semi - p), p);
	p = strstr(semi, "size rank: ");
	if (!p || sscanf(p + 11, "%d of %d", r, n) != 2)
		return -1;
	return 0;
}

static char *refer_write(const char *text, int images)
{
	char pos[32], o1[32], o2[32], e[5][200];
	const char *attr = strstr(text, "Attributes: ");
	int k = 0, r = 0, n = 0;
	json_t *list = json_array(), *o;
	char *s;

	if (images >= 2 && attr && sscanf(text, "### Task: refer\nWrite %d", &k) == 1 &&
	    parse_brief(attr, pos, sizeof(pos), &r, &n) == 0) {
		snprintf(e[0], sizeof(e[0]), "%s lesion, in the %s part of the image", ord(r, o1, sizeof(o1)), pos);
		snprintf(e[1], sizeof(e[1]), "the lesion in the %s part of the image", pos);
		snprintf(e[2], sizeof(e[2]), "%s lesion of the slice", ord(r % n + 1, o2, sizeof(o2)));
		snprintf(e[3], sizeof(e[3]), "of the %d lesions, %s one, in the %s part of the image", n,
			 ord(r, o1, sizeof(o1)), pos);
		snprintf(e[4], sizeof(e[4]), "%s finding, lying in the %s part of the image",
			 ord(r, o1, sizeof(o1)), pos);
		for (int i = 0; i < k && i < 5; i++)
			json_array_append_new(list, json_string(e[i]));
	}
	o = json_pack("{s:o}", "expressions", list);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* The size rank an expression names ("the largest", "the 2nd largest"), or 0. */
static int said_rank(const char *e)
{
	const char *p = strstr(e, " largest");
	int r = 0;

	if (!p)
		return 0;
	if (p - e >= 3 && strncmp(p - 3, "the", 3) == 0)
		return 1;
	while (p > e && p[-1] != ' ')
		p--;
	return sscanf(p, "%d", &r) == 1 ? r : 0;
}

static char *refer_check(const char *text)
{
	const char *c = strstr(text, "\nCandidates:"), *eb = strstr(text, "<<<\n"), *ee;
	char expr[600], said_pos[40] = "";
	int pick = 0, matches = 0, rank;
	json_t *o;
	char *s;

	if (!c || !eb || !(ee = strstr(eb, "\n>>>")))
		return strdup("{\"region\":null,\"unique\":false,\"reason\":\"no candidates or expression\"}");
	snprintf(expr, sizeof(expr), "%.*s", (int)(ee - eb - 4), eb + 4);
	{
		const char *p = strstr(expr, "in the "), *q = p ? strstr(p, " part of the image") : NULL;

		if (p && q)
			snprintf(said_pos, sizeof(said_pos), "%.*s", (int)(q - p - 7), p + 7);
	}
	rank = said_rank(expr);
	for (const char *l = strchr(c + 1, '\n'); l && l < eb; l = strchr(l + 1, '\n')) {
		char pos[32];
		int num, r, n;

		if (sscanf(l + 1, "%d: ", &num) != 1 || parse_brief(l + 1, pos, sizeof(pos), &r, &n))
			continue;
		if ((said_pos[0] && strcmp(said_pos, pos) != 0) || (rank && rank != r))
			continue;
		if (!said_pos[0] && !rank)
			continue;
		matches++;
		pick = num;
	}
	if (matches == 1)
		o = json_pack("{s:i, s:b, s:s}", "region", pick, "unique", 1, "reason",
			      "the only candidate that fits (simulated)");
	else
		o = json_pack("{s:n, s:b, s:s}", "region", "unique", 0, "reason",
			      matches ? "several candidates fit (simulated)" : "no candidate fits (simulated)");
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

char *sim_refer_reply(const char *task, const char *text, json_t *msgs)
{
	if (strcmp(task, "refer") == 0)
		return refer_write(text, count_images(msgs));
	if (strcmp(task, "refer_check") == 0)
		return count_images(msgs) >= 2 ? refer_check(text)
					       : strdup("{\"region\":null,\"unique\":false}");
	return NULL;
}
