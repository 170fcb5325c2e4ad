/* sharegpt: the MedThink data, a JSON array of {"id", "conversations":
 * [user turn, assistant turn], "system"?, "images"?} whose assistant turn
 * starts with the answer ("答案：ANSWER", "答案:" or "Answer:") and goes on
 * with the explanation. */

#include <string.h>

#include "formats/import_impl.h"

static const char *skip_space(const char *s)
{
	for (;;) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		else if (!strncmp(s, "\u3000", 3)) /* ideographic space */
			s += 3;
		else
			return s;
	}
}

/* Length of s[0..n) without trailing white space. */
static size_t trim_end(const char *s, size_t n)
{
	for (;;) {
		if (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
			n--;
		else if (n >= 3 && !memcmp(s + n - 3, "\u3000", 3))
			n -= 3;
		else
			return n;
	}
}

/* The MedThink assistant turn: "答案：ANSWER\n\nexplanation". */
static int sharegpt_answer(struct import_parser *p, long idx, const char *val, json_t *cand)
{
	static const char *const pfx[] = {"\u7b54\u6848\uff1a", "\u7b54\u6848:", "Answer:"};
	const char *s = skip_space(val), *nl;
	size_t i, n;

	for (i = 0; i < 3; i++)
		if (!strncmp(s, pfx[i], strlen(pfx[i])))
			break;
	if (i == 3) {
		import_report(p, idx, "the assistant turn does not start with \"%s\", \"%s\" or \"%s\"", pfx[0],
		       pfx[1], pfx[2]);
		return -1;
	}
	s += strlen(pfx[i]);
	while (*s == ' ' || *s == '\t' || !strncmp(s, "\u3000", 3))
		s += *s == ' ' || *s == '\t' ? 1 : 3;
	nl = strchr(s, '\n');
	n = trim_end(s, nl ? (size_t)(nl - s) : strlen(s));
	if (!n) {
		import_report(p, idx, "empty answer after \"%s\"", pfx[i]);
		return -1;
	}
	json_object_set_new(cand, "answer", json_stringn(s, n));
	if (nl) {
		s = skip_space(nl);
		n = trim_end(s, strlen(s));
		if (n)
			json_object_set_new(cand, "explanation", json_stringn(s, n));
	}
	return 0;
}

static void sharegpt_parse(struct import_parser *p, const char *rec_key, json_t *rec, long idx)
{
	json_t *cand = json_object(), *conv, *turn, *q = NULL, *a = NULL, *sys = NULL, *v;
	size_t i;

	(void)rec_key; /* an array's element */
	if (!cand) {
		import_oom(p);
		return;
	}
	if (import_copy_id(p, idx, rec, cand) < 0)
		goto out;
	conv = json_object_get(rec, "conversations");
	if (!json_is_array(conv)) {
		if (conv)
			import_report(p, idx, "\"conversations\" must be an array, found %s", import_json_kind(conv));
		else
			import_report(p, idx, "missing \"conversations\"");
		goto out;
	}
	json_array_foreach(conv, i, turn) {
		const char *from = json_string_value(json_object_get(turn, "from"));
		json_t *val = json_object_get(turn, "value");
		char ex[IMPORT_EXCERPT_BUF];

		if (!from || !json_is_string(val)) {
			import_report(p, idx, "turn %zu needs string \"from\" and \"value\"", i + 1);
			goto out;
		}
		if (!strcmp(from, "user") || !strcmp(from, "human")) {
			if (q) {
				import_report(p, idx, "more than one user turn");
				goto out;
			}
			q = val;
		} else if (!strcmp(from, "assistant") || !strcmp(from, "gpt")) {
			if (a) {
				import_report(p, idx, "more than one assistant turn");
				goto out;
			}
			if (!q) {
				import_report(p, idx, "the assistant turn comes before the user turn");
				goto out;
			}
			a = val;
		} else if (!strcmp(from, "system")) {
			sys = val;
		} else {
			import_report(p, idx, "turn %zu has an unknown role \"%s\"", i + 1,
			       import_excerpt(from, ex, sizeof(ex)));
			goto out;
		}
	}
	if (!q || !a) {
		import_report(p, idx, "no %s turn", q ? "assistant" : "user");
		goto out;
	}
	if (import_str_blank(q)) {
		import_report(p, idx, "the user turn is empty");
		goto out;
	}
	json_object_set(cand, "question", q);
	if (sharegpt_answer(p, idx, json_string_value(a), cand) < 0)
		goto out;
	if (!sys && json_is_string(json_object_get(rec, "system")))
		sys = json_object_get(rec, "system");
	if (sys && !import_str_blank(sys))
		json_object_set_new(cand, "meta", json_pack("{sO}", "system", sys));
	v = json_object_get(rec, "images");
	if (v && import_copy_images(p, idx, v, cand) < 0)
		goto out;
	v = json_object_get(rec, "image");
	if (json_is_string(v) && !import_str_blank(v) && !json_object_get(cand, "images"))
		json_object_set_new(cand, "images", json_pack("[O]", v));
	import_emit(p, cand, idx);
	return;
out:
	json_decref(cand);
}

/* A JSON array (no JSON Lines file starts with "["); proven by a
 * "conversations" key in the head. */
static enum import_sniff_verdict sharegpt_sniff(const struct import_format *f, const struct import_sniff *s)
{
	(void)f;
	if (s->first != '[')
		return IMPORT_SNIFF_NO;
	return memmem(s->head, s->len, "\"conversations\"", 15) ? IMPORT_SNIFF_YES : IMPORT_SNIFF_MAYBE;
}

const struct import_format import_format_sharegpt = {
	.name = "sharegpt",
	.description = "MedThink ShareGPT: a JSON array of conversations, the answer first "
	               "in the reply",
	.kind = IMPORT_DOCUMENT,
	.question_key = "question",
	.answer_key = "answer",
	.doc_what = "a JSON array of conversations",
	.parse_json = sharegpt_parse,
	.sniff = sharegpt_sniff,
};
