#include "tests/sim/replies.h"
#include "tests/sim/selection.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/utf8.h"

#define REPLY_MAX (1024u * 1024u)

/* ---------------------------------------------------------------- hashing */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t sim_hash(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return mix64(h ^ mix64(seed));
}

double sim_u01(uint64_t h, uint64_t salt)
{
	return (double)(mix64(h ^ mix64(salt + 0x51ed)) >> 11) / 9007199254740992.0;
}

static unsigned pick(uint64_t h, uint64_t salt, unsigned n)
{
	return n ? (unsigned)(mix64(h ^ mix64(salt * 7919 + 17)) % n) : 0;
}

/* ---------------------------------------------------------------- parsing */

static char *dup_range(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static char *dup_trim(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return dup_range(s, n);
}

/* A line like "Student answer:" or "Context:" alone: a section header. */
static bool is_header_line(const char *l, size_t n)
{
	size_t i;

	while (n && isspace((unsigned char)l[n - 1]))
		n--;
	if (n < 2 || n > 48 || l[n - 1] != ':' || !isupper((unsigned char)l[0]))
		return false;
	for (i = 0; i + 1 < n; i++)
		if (!isalpha((unsigned char)l[i]) && l[i] != ' ' && l[i] != '\'' && l[i] != '-')
			return false;
	return true;
}

static bool starts_ci(const char *l, size_t n, const char *pfx)
{
	size_t k = strlen(pfx);
	return n >= k && strncasecmp(l, pfx, k) == 0;
}

/* "A. text" / "B) text": returns the key length (1) or 0. */
static int option_line(const char *l, size_t n)
{
	if (n >= 3 && isupper((unsigned char)l[0]) && (l[1] == '.' || l[1] == ')') && l[2] == ' ')
		return 1;
	return 0;
}

void sim_prompt_parse(const char *text, struct sim_prompt *p)
{
	const char *l = text, *q_start = NULL, *q_end = NULL;
	enum { NONE, QUESTION, OPTIONS, STUDENT } sect = NONE;
	const char *st_start = NULL;
	bool first = true;

	memset(p, 0, sizeof(*p));
	while (*l) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		size_t tn = n;
		while (tn && (l[tn - 1] == '\r'))
			tn--;

		if (first && starts_ci(l, tn, "### Task:")) {
			char *t = dup_trim(l + 9, tn - 9);
			if (t) {
				snprintf(p->task, sizeof(p->task), "%s", t);
				for (char *c = p->task; *c; c++)
					*c = (char)tolower((unsigned char)*c);
				free(t);
			}
		} else if (starts_ci(l, tn, "Gold answer:")) {
			if (sect == QUESTION)
				q_end = l;
			if (sect == STUDENT && !p->student)
				p->student = dup_trim(st_start, (size_t)(l - st_start));
			free(p->gold);
			p->gold = dup_trim(l + 12, tn - 12);
			sect = NONE;
		} else if (starts_ci(l, tn, "Question:")) {
			if (sect == STUDENT && !p->student)
				p->student = dup_trim(st_start, (size_t)(l - st_start));
			sect = QUESTION;
			q_start = l + 9;
			q_end = NULL;
		} else if (tn >= 8 && strncasecmp(l, "Options:", 8) == 0) {
			if (sect == QUESTION)
				q_end = l;
			if (sect == STUDENT && !p->student)
				p->student = dup_trim(st_start, (size_t)(l - st_start));
			sect = OPTIONS;
		} else if (sect == OPTIONS && option_line(l, tn) && p->nopt < SIM_MAX_OPTS) {
			p->keys[p->nopt][0] = l[0];
			p->keys[p->nopt][1] = '\0';
			p->opts[p->nopt] = dup_trim(l + 3, tn - 3);
			p->nopt++;
		} else if (tn >= 7 && strncasecmp(l, "Student", 7) == 0 && memchr(l, ':', tn)) {
			const char *colon = memchr(l, ':', tn);
			if (sect == QUESTION)
				q_end = l;
			sect = STUDENT;
			st_start = colon + 1;
		} else if (is_header_line(l, tn) || starts_ci(l, tn, "###")) {
			if (sect == QUESTION)
				q_end = l;
			if (sect == STUDENT && !p->student)
				p->student = dup_trim(st_start, (size_t)(l - st_start));
			sect = NONE;
		} else if (sect == OPTIONS && tn > 0) {
			sect = NONE;
		}
		first = false;
		l += n;
		if (*l == '\n')
			l++;
	}
	if (sect == QUESTION && !q_end)
		q_end = l;
	if (q_start && q_end && q_end > q_start)
		p->question = dup_trim(q_start, (size_t)(q_end - q_start));
	if (sect == STUDENT && !p->student && st_start)
		p->student = dup_trim(st_start, (size_t)(l - st_start));
}

void sim_prompt_free(struct sim_prompt *p)
{
	int i;

	free(p->question);
	free(p->gold);
	free(p->student);
	for (i = 0; i < p->nopt; i++)
		free(p->opts[i]);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------- extraction */

static int key_index(const struct sim_prompt *p, char ch)
{
	int i;

	for (i = 0; i < p->nopt; i++)
		if (toupper((unsigned char)ch) == p->keys[i][0])
			return i;
	return -1;
}

/* After marker at s: skip spaces, '(', '*', '"', '[' and read one key that is
 * followed by a non-alphanumeric character. */
static int key_after(const char *s, const struct sim_prompt *p)
{
	while (*s == ' ' || *s == '(' || *s == '*' || *s == '"' || *s == '[' || *s == '\t' ||
	       *s == ':')
		s++;
	if (!isalpha((unsigned char)*s) || isalnum((unsigned char)s[1]))
		return -1;
	return key_index(p, *s);
}

/* The last occurrence of marker (case-insensitive) that is followed by a key. */
static int last_marker(const char *text, const char *marker, const struct sim_prompt *p)
{
	size_t mlen = strlen(marker);
	const char *s = text;
	int found = -1;

	while ((s = strcasestr(s, marker))) {
		int k = key_after(s + mlen, p);
		if (k >= 0)
			found = k;
		s += mlen;
	}
	return found;
}

int sim_extract_answer(const char *text, const struct sim_prompt *p)
{
	static const char *markers[] = { "<answer>",      "\"answer\":",   "\"answer\" :",
					 "final answer:", "final answer is", "answer is",
					 "answer:",       "correct option:" };
	const char *s, *last_line;
	size_t i;
	int k;

	if (!text || p->nopt == 0)
		return -1;
	for (i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
		k = last_marker(text, markers[i], p);
		if (k >= 0)
			return k;
	}
	/* **C.** text */
	for (s = text; (s = strstr(s, "**")); s += 2) {
		k = key_index(p, s[2]);
		if (k >= 0 && (s[3] == '.' || s[3] == ')' || s[3] == '*'))
			return k;
	}
	/* the option text alone on the last non-empty line */
	last_line = text;
	for (s = text; *s; s++)
		if (*s == '\n' && s[1] && !isspace((unsigned char)s[1]))
			last_line = s + 1;
	for (i = 0; i < (size_t)p->nopt; i++) {
		size_t ol = strlen(p->opts[i]);
		if (ol && strncasecmp(last_line, p->opts[i], ol) == 0 &&
		    (last_line[ol] == '\0' || last_line[ol] == '\n' || last_line[ol] == '.'))
			return (int)i;
	}
	return -1;
}

/* --------------------------------------------------------------- replies */

static const char *topic_of(const char *q)
{
	static const struct {
		const char *words, *topic;
	} t[] = {
		{ "liver|hepat|cirrho|biliar|jaundice|gallbladder", "hepatology" },
		{ "stomach|gastr|ulcer|pylori|esophag|bowel|colon|crohn|colitis|pancrea|duoden|celiac",
		  "gastroenterology" },
		{ "heart|cardi|myocard|arrhythm|coronary|valve", "cardiology" },
		{ "lung|pulmon|asthma|pneumon|bronch|copd", "pulmonology" },
		{ "kidney|renal|nephr|urin", "nephrology" },
		{ "diabet|thyroid|insulin|endocrin|adrenal|pituitar", "endocrinology" },
		{ "infect|bacter|viral|virus|antibiot|sepsis|fung", "infectious disease" },
		{ "child|infant|pediatr|neonat", "pediatrics" },
		{ "pregnan|obstet|gestation|uter", "obstetrics" },
		{ "drug|dose|pharmac|adverse effect", "pharmacology" },
		{ "neuro|seizure|stroke|brain|nerve", "neurology" },
	};
	size_t i;

	if (!q)
		return "general medicine";
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char words[128], *save = NULL, *w;
		snprintf(words, sizeof(words), "%s", t[i].words);
		for (w = strtok_r(words, "|", &save); w; w = strtok_r(NULL, "|", &save))
			if (strcasestr(q, w))
				return t[i].topic;
	}
	return "general medicine";
}

/* The first n words of s, as a short quote (outlen >= 8). Cut on a
 * character boundary: a question without spaces (Chinese) is one long
 * "word", and half a character would make the reply invalid JSON text. */
static void first_words(const char *s, int n, char *out, size_t outlen)
{
	size_t i, keep;
	int words = 0;
	bool in_word = false;

	if (!s) {
		snprintf(out, outlen, "the clinical scenario");
		return;
	}
	for (i = 0; s[i]; i++) {
		bool sp = isspace((unsigned char)s[i]);
		if (sp && in_word && ++words >= n)
			break;
		in_word = !sp;
	}
	keep = utf8_prefix(s, i, outlen - 4);
	for (i = 0; i < keep; i++)
		out[i] = isspace((unsigned char)s[i]) ? ' ' : s[i];
	if (s[keep]) {
		memcpy(out + keep, "...", 3);
		keep += 3;
	}
	out[keep] = '\0';
}

static int gold_index(const struct sim_prompt *p, const char *gold)
{
	if (!gold || !gold[0])
		return -1;
	if (!gold[1] || (!isalnum((unsigned char)gold[1])))
		return key_index(p, gold[0]);
	for (int i = 0; i < p->nopt; i++)
		if (strcasecmp(p->opts[i], gold) == 0)
			return i;
	return -1;
}

static const char *wrong_reasons[] = {
	"it describes a different condition whose typical presentation does not match the stem",
	"it ignores the key finding in the history",
	"it would be appropriate only after first-line management has failed",
	"its mechanism does not explain the laboratory findings",
	"it is a common distractor that confuses association with causation",
	"it is contraindicated in this setting",
	"the timing of the symptoms argues against it",
};

static const char *fact_sentences[] = {
	"The decisive clue is the combination of the presenting symptoms with the laboratory pattern.",
	"Current guidelines favour the option that addresses the underlying mechanism first.",
	"The epidemiology and the patient's risk factors make one diagnosis far more likely.",
	"The pathophysiology links the key finding directly to the correct choice.",
	"A careful reading of the stem shows which finding is primary and which are incidental.",
};

static void explain_text(struct buf *b, const struct sim_prompt *p, uint64_t h,
			 const struct sim_knobs *k)
{
	char q[200];
	int g = gold_index(p, p->gold);
	const char *topic = topic_of(p->question);

	first_words(p->question, 14, q, sizeof(q));
	buf_printf(b, "Key knowledge (%s): %s ", topic, fact_sentences[pick(h, 1, 5)]);
	buf_printf(b, "The question (\"%s\") turns on recognising the central mechanism. ", q);
	if (p->nopt && g >= 0) {
		buf_printf(b, "Option %s (%s) is correct because it is the finding that best explains "
			      "the presentation and is consistent with standard practice. ",
			   p->keys[g], p->opts[g]);
		for (int i = 0; i < p->nopt; i++) {
			if (i == g)
				continue;
			buf_printf(b, "Option %s (%s) is wrong because %s. ", p->keys[i], p->opts[i],
				   wrong_reasons[pick(h, 100 + (uint64_t)i, 7)]);
		}
	} else if (p->gold) {
		buf_printf(b, "The expected answer, %s, follows from these facts. ", p->gold);
	}
	buf_puts(b, "\n\n");
	if (sim_u01(h, 2) < k->contradict_rate && p->nopt > 1 && g >= 0) {
		int w = (g + 1 + (int)pick(h, 3, (unsigned)p->nopt - 1)) % p->nopt;
		buf_printf(b, "Final answer: %s", p->keys[w]);
	} else if (sim_u01(h, 2) < k->contradict_rate && !p->nopt) {
		buf_puts(b, "Final answer: cannot be determined");
	} else {
		buf_printf(b, "Final answer: %s", g >= 0 ? p->keys[g] : (p->gold ? p->gold : "unknown"));
	}
}

static void screen_json(json_t *o, const struct sim_prompt *p, uint64_t h,
			const struct sim_knobs *k)
{
	bool keep = sim_u01(h, 10) >= k->drop_rate;
	static const char *noisy[] = { "noisy: the options overlap and two could be defended",
				       "noisy: the answer key looks inconsistent with the stem",
				       "noisy: the stem is truncated" };

	json_object_set_new(o, "keep", json_boolean(keep));
	if (keep)
		json_object_set_new(o, "reason",
				    json_string("clear, answerable item with a single best option"));
	else if (pick(h, 11, 2) == 0)
		json_object_set_new(o, "reason",
				    json_string("redundant: it repeats a fact covered by many other items"));
	else
		json_object_set_new(o, "reason", json_string(noisy[pick(h, 12, 3)]));
	json_object_set_new(o, "quality", json_integer(keep ? 3 + pick(h, 13, 3) : 1 + pick(h, 13, 2)));
	json_object_set_new(o, "difficulty", json_integer(1 + pick(h, 14, 5)));
	json_object_set_new(o, "topic", json_string(topic_of(p->question)));
}

static void judge_json(json_t *o, const struct sim_prompt *p)
{
	int a = sim_extract_answer(p->student, p);
	int g = gold_index(p, p->gold);

	if (p->nopt == 0) {
		/* open-ended: correct when the gold text appears in the reply */
		bool ok = p->gold && p->student && strcasestr(p->student, p->gold);
		json_object_set_new(o, "answer", p->student ? json_string(ok ? p->gold : "other")
							    : json_null());
		json_object_set_new(o, "correct", json_boolean(ok));
		json_object_set_new(o, "reason", json_string(ok ? "the reply states the expected answer"
								: "the reply does not state the expected answer"));
		return;
	}
	json_object_set_new(o, "answer", a >= 0 ? json_string(p->keys[a]) : json_null());
	json_object_set_new(o, "correct", json_boolean(a >= 0 && a == g));
	json_object_set_new(o, "reason",
			    json_string(a < 0 ? "no final answer could be found in the reply"
				       : a == g ? "the stated answer matches the gold answer"
						: "the stated answer differs from the gold answer"));
}

static void correct_json(json_t *o, const struct sim_prompt *p, uint64_t h)
{
	int g = gold_index(p, p->gold);
	const char *gk = g >= 0 ? p->keys[g] : (p->gold ? p->gold : "unknown");
	char r[2048];

	json_object_set_new(o, "missing_knowledge",
			    json_string(fact_sentences[pick(h, 20, 5)]));
	json_object_set_new(o, "critique",
			    json_string("The reasoning fixed on an incidental finding and did not weigh "
					"the decisive clue against the alternatives."));
	snprintf(r, sizeof(r),
		 "Start from the key finding in the stem (%s). It points to the underlying mechanism. "
		 "%s%s%s Weighing the remaining options against it rules them out. Therefore the answer "
		 "is %s.",
		 topic_of(p->question), g >= 0 ? "Option " : "", g >= 0 ? p->keys[g] : "",
		 g >= 0 ? " explains every element of the presentation." : "", gk);
	r[utf8_prefix(r, strlen(r), sizeof(r) - 1)] = '\0';
	json_object_set_new(o, "reasoning", json_string(r));
	json_object_set_new(o, "final_answer", json_string(gk));
}

/* The student: picks an option, then states it in one of many formats. */
static void answer_text(struct buf *b, const struct sim_prompt *p, uint64_t h,
			const struct sim_knobs *k, const char *known_gold)
{
	int choice, g = gold_index(p, known_gold), other;
	unsigned fmt;
	const char *key, *txt;
	char q[160];

	first_words(p->question, 10, q, sizeof(q));
	buf_printf(b, "Let me think step by step. The question (\"%s\") is about %s. ", q,
		   topic_of(p->question));
	if (p->nopt == 0) {
		bool right = known_gold && sim_u01(h, 30) < k->student_accuracy;
		buf_puts(b, "Based on the typical presentation, the most likely answer follows.\n\n");
		buf_printf(b, "Answer: %s", right ? known_gold : "I would need more information");
		return;
	}
	if (g >= 0)
		choice = sim_u01(h, 30) < k->student_accuracy
				 ? g
				 : (g + 1 + (int)pick(h, 31, (unsigned)p->nopt - 1)) % p->nopt;
	else
		choice = (int)pick(h, 32, (unsigned)p->nopt);
	if (p->nopt == 1)
		choice = 0;
	key = p->keys[choice];
	txt = p->opts[choice];
	other = (choice + 1) % p->nopt;
	buf_printf(b, "%s The findings are most consistent with %s, while %s fits less well.\n\n",
		   fact_sentences[pick(h, 33, 5)], txt, p->opts[other]);
	if (sim_u01(h, 34) < 0.03) {
		buf_puts(b, "I am not confident enough to commit to a single option without more "
			    "clinical information.");
		return;
	}
	fmt = pick(h, 35, 9);
	switch (fmt) {
	case 0: buf_printf(b, "Answer: %s", key); break;
	case 1: buf_printf(b, "The answer is (%s).", key); break;
	case 2: buf_printf(b, "**%s.** %s", key, txt); break;
	case 3: buf_printf(b, "<answer>%s</answer>", key); break;
	case 4: buf_printf(b, "%s", txt); break;
	case 5:
		buf_printf(b, "At first %s (%s) looks tempting, but that does not fit all the findings. "
			      "On reflection, the final answer is %s.",
			   p->keys[other], p->opts[other], key);
		break;
	case 6: buf_printf(b, "{\"answer\": \"%s\"}", key); break;
	case 7: buf_printf(b, "<think>The key finding points to %s.</think>\n<answer>%s</answer>", txt, key); break;
	default: buf_printf(b, "Final answer: %s", key); break;
	}
}

char *sim_reply(const struct sim_prompt *p, uint64_t h, const struct sim_knobs *k,
		const char *known_gold, bool json_mode, bool *is_json)
{
	struct buf b;
	json_t *o = NULL;
	char *s;

	buf_init(&b, REPLY_MAX);
	*is_json = false;
	if (strcmp(p->task, "screen") == 0 || strcmp(p->task, "judge") == 0 ||
	    strcmp(p->task, "correct") == 0) {
		o = json_object();
		if (p->task[0] == 's')
			screen_json(o, p, h, k);
		else if (p->task[0] == 'j')
			judge_json(o, p);
		else
			correct_json(o, p, h);
		*is_json = true;
		s = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		if (!s)
			return NULL;
		if (!json_mode && sim_u01(h, 40) < 0.5) {
			buf_printf(&b, "%s\n\n```json\n%s\n```",
				   p->task[0] == 's' ? "Here is my assessment of the item:"
				   : p->task[0] == 'j' ? "Here is my judgement:"
						       : "Here is the correction:",
				   s);
			free(s);
			return buf_take(&b);
		}
		return s;
	}
	if (strcmp(p->task, "explain") == 0)
		explain_text(&b, p, h, k);
	else if (strcmp(p->task, "answer") == 0)
		answer_text(&b, p, h, k, known_gold);
	else if (sim_select_reply(&b, p, p->question, h))
		*is_json = strcmp(p->task, "diq_rate") == 0;
	else
		buf_printf(&b, "This is a simulated reply from medthink-sim (request %016llx).",
			   (unsigned long long)h);
	return buf_take(&b);
}

/* ---------------------------------------------------------------- tokens */

void sim_tokenize(const char *text, void (*cb)(void *ctx, size_t off, size_t len), void *ctx)
{
	size_t i = 0, n = strlen(text);

	while (i < n) {
		size_t start = i;
		if (text[i] == ' ' && i + 1 < n && isalnum((unsigned char)text[i + 1]))
			i++;
		if (isalnum((unsigned char)text[i])) {
			while (i < n && isalnum((unsigned char)text[i]) && i - start < 12)
				i++;
		} else {
			/* one character: a UTF-8 sequence is never split */
			i++;
			while (i < n && ((unsigned char)text[i] & 0xC0) == 0x80)
				i++;
		}
		cb(ctx, start, i - start);
	}
}
