/* CPU cost of the reply screening (stages/textcheck.c, issue 17) on real
 * replies: the MedThink teacher texts and the model answers of
 * ../shared/data, each screened as the daemon screens an explanation (every
 * check, the item's rendered explain prompt for the echo check), ROUNDS
 * times over the whole set. Prints, as one JSON object, the texts, their
 * mean length, microseconds per textcheck_run, and per check alone; and how
 * many texts each check caught (so two builds can be compared on the same
 * texts). Not a test: timings depend on the machine.
 *
 *   build/bench/textcheck_cost [--rounds N] [--data DIR] [--prompts DIR]
 *                              [--set medthink|medagents|usmle] [--once]
 *                              [--inputs FILE.jsonl]
 *
 * --set keeps one of the three sets (the Chinese MedThink replies, or one of
 * the English answer sets); --once screens each text once with every check
 * and prints only the counts, for `valgrind --tool=callgrind
 * --toggle-collect=textcheck_run` (instructions per run = Ir / texts).
 * --inputs screens recorded inputs instead of ../shared/data: one JSON
 * object a line with the fields of struct textcheck_input ("text", "item",
 * "prompt", "quotable", "length_cut", "max_tokens", "checks"; e.g. the
 * daemon's explain screenings of a job against bin/medthink-sim), each as
 * recorded (its own checks and max_tokens, not --once's).
 *
 * Exit status 0; 2 when no data could be read. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "stages/prompts.h"
#include "stages/textcheck.h"

#define TEXTS_MAX 40000

struct text {
	const char *s;   /* borrowed from the loaded documents */
	json_t *item;    /* owned */
	json_t *prompt;  /* owned, or NULL */
	/* recorded inputs (--inputs): their own fields, else 0 / NULL */
	const char *quotable;
	bool length_cut;
	int64_t max_tokens;
	unsigned checks;
};

struct set {
	struct text *t;
	size_t n;
	json_t *docs[8];
	size_t ndocs;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add(struct set *s, json_t *prompts, const char *text, json_t *item)
{
	char err[200];

	if (!text || s->n >= TEXTS_MAX) {
		json_decref(item);
		return;
	}
	s->t[s->n].s = text;
	s->t[s->n].item = item;
	if (prompts_render(prompts, "explain", item, NULL, &s->t[s->n].prompt, err, sizeof(err)))
		s->t[s->n].prompt = NULL;
	s->n++;
}

/* MedThink sharegpt records: the human turn as the question, the teacher's
 * reply as the text. */
static void load_medthink(struct set *s, json_t *prompts, const char *path)
{
	json_t *doc = json_load_file(path, 0, NULL), *rec;
	size_t i;

	if (!json_is_array(doc)) {
		json_decref(doc);
		return;
	}
	s->docs[s->ndocs++] = doc;
	json_array_foreach(doc, i, rec)
	{
		json_t *conv = json_object_get(rec, "conversations");
		const char *q = json_string_value(json_object_get(json_array_get(conv, 0), "value"));
		const char *a = json_string_value(json_object_get(json_array_get(conv, 1), "value"));

		if (q && a)
			add(s, prompts, a, json_pack("{s:s, s:s}", "id", "m", "question", q));
	}
}

/* Answers rows: raw_response as the text; question, options and gold. */
static void load_answers(struct set *s, json_t *prompts, const char *path, const char *qkey,
			 const char *gkey)
{
	json_t *doc = NULL, *row;
	size_t i;

	if (strstr(path, ".jsonl")) {
		FILE *f = fopen(path, "r");
		char *line = NULL;
		size_t cap = 0;

		if (!f)
			return;
		doc = json_array();
		while (getline(&line, &cap, f) > 0)
			json_array_append_new(doc, json_loads(line, 0, NULL));
		free(line);
		fclose(f);
	} else {
		doc = json_load_file(path, 0, NULL);
	}
	if (!json_is_array(doc)) {
		json_decref(doc);
		return;
	}
	s->docs[s->ndocs++] = doc;
	json_array_foreach(doc, i, row)
	{
		json_t *item;

		if (!json_is_string(json_object_get(row, qkey)))
			continue;
		item = json_object();
		json_object_set(item, "question", json_object_get(row, qkey));
		if (json_is_object(json_object_get(row, "options")))
			json_object_set(item, "options", json_object_get(row, "options"));
		if (json_is_string(json_object_get(row, gkey)))
			json_object_set(item, "answer", json_object_get(row, gkey));
		add(s, prompts, json_string_value(json_object_get(row, "raw_response")), item);
	}
}

/* Recorded inputs, one JSON object a line (--inputs). */
static void load_inputs(struct set *s, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	json_t *doc = json_array();

	if (!f) {
		json_decref(doc);
		return;
	}
	s->docs[s->ndocs++] = doc;
	while (getline(&line, &cap, f) > 0 && s->n < TEXTS_MAX) {
		json_t *o = json_loads(line, 0, NULL);
		struct text *t = &s->t[s->n];

		if (!json_is_string(json_object_get(o, "text"))) {
			json_decref(o);
			continue;
		}
		json_array_append_new(doc, o);
		t->s = json_string_value(json_object_get(o, "text"));
		t->item = json_incref(json_object_get(o, "item"));
		t->prompt = json_incref(json_object_get(o, "prompt"));
		t->quotable = json_string_value(json_object_get(o, "quotable"));
		t->length_cut = json_is_true(json_object_get(o, "length_cut"));
		t->max_tokens = json_integer_value(json_object_get(o, "max_tokens"));
		t->checks = (unsigned)json_integer_value(json_object_get(o, "checks"));
		s->n++;
	}
	free(line);
	fclose(f);
}

/* Seconds of CPU for rounds passes of textcheck_run over the set. */
static double pass(const struct set *s, unsigned checks, int rounds, size_t *caught)
{
	double t0 = now_s();

	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < s->n; i++) {
			const struct text *x = &s->t[i];
			struct textcheck_input in = { .text = x->s, .item = x->item,
						      .prompt = x->prompt, .quotable = x->quotable,
						      .length_cut = x->length_cut,
						      .max_tokens = x->checks ? x->max_tokens : 1500,
						      .checks = x->checks ? x->checks & checks : checks };
			struct textcheck_result res;

			if (textcheck_run(&in, &res) == 1 && r == 0 && caught)
				caught[res.kind]++;
		}
	return now_s() - t0;
}

int main(int argc, char **argv)
{
	const char *data = "../shared/data", *pdir = "conf/prompts", *only = NULL, *inputs = NULL;
	int rounds = 5, once = 0;
	struct set s = { 0 };
	json_t *prompts = NULL;
	char err[256], path[512];
	size_t bytes = 0, caught[TEXTCHECK__N] = { 0 };
	double all;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			data = argv[++i];
		else if (strcmp(argv[i], "--prompts") == 0 && i + 1 < argc)
			pdir = argv[++i];
		else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (strcmp(argv[i], "--inputs") == 0 && i + 1 < argc)
			inputs = argv[++i];
		else if (strcmp(argv[i], "--once") == 0)
			once = 1;
		else {
			fprintf(stderr,
				"usage: %s [--rounds N] [--data DIR] [--prompts DIR] [--set NAME] "
				"[--once] [--inputs FILE.jsonl]\n",
				argv[0]);
			return 2;
		}
	}
	if (rounds < 1)
		rounds = 1;
	if (prompts_load_dir(pdir, &prompts, err, sizeof(err))) {
		fprintf(stderr, "textcheck_cost: %s\n", err);
		return 2;
	}
	s.t = calloc(TEXTS_MAX, sizeof(*s.t));
	if (!s.t)
		return 2;
	if (inputs)
		load_inputs(&s, inputs);
	snprintf(path, sizeof(path), "%s/medthink/digestive_Qwen2_72b_Instruction.json", data);
	if (!inputs && (!only || strcmp(only, "medthink") == 0))
		load_medthink(&s, prompts, path);
	snprintf(path, sizeof(path), "%s/answers/medagents_cot.json", data);
	if (!inputs && (!only || strcmp(only, "medagents") == 0))
		load_answers(&s, prompts, path, "question", "answer_idx");
	snprintf(path, sizeof(path), "%s/answers/vlievin_usmle.jsonl", data);
	if (!inputs && (!only || strcmp(only, "usmle") == 0))
		load_answers(&s, prompts, path, "question_with_options", "gold");
	if (s.n == 0) {
		fprintf(stderr, "textcheck_cost: no replies under %s\n", data);
		return 2;
	}
	for (size_t i = 0; i < s.n; i++)
		bytes += strlen(s.t[i].s);
	if (once) {
		pass(&s, TEXTCHECK_ALL, 1, caught);
		printf("{\"texts\": %zu, \"mean_bytes\": %.0f, \"caught\": {", s.n,
		       (double)bytes / (double)s.n);
		for (int k = 0; k < TEXTCHECK__N; k++)
			printf("%s\"%s\": %zu", k ? ", " : "", textcheck_name(k), caught[k]);
		printf("}}\n");
		goto out;
	}
	pass(&s, TEXTCHECK_ALL, 1, NULL); /* warm up */
	all = pass(&s, TEXTCHECK_ALL, rounds, caught);
	printf("{\"texts\": %zu, \"mean_bytes\": %.0f, \"rounds\": %d, \"us_per_run\": %.2f, "
	       "\"caught\": {",
	       s.n, (double)bytes / (double)s.n, rounds, all * 1e6 / ((double)s.n * rounds));
	for (int k = 0; k < TEXTCHECK__N; k++)
		printf("%s\"%s\": %zu", k ? ", " : "", textcheck_name(k), caught[k]);
	printf("}, \"us_per_check\": {");
	for (int k = 0; k < TEXTCHECK__N; k++)
		printf("%s\"%s\": %.2f", k ? ", " : "", textcheck_name(k),
		       pass(&s, TEXTCHECK_BIT(k), rounds, NULL) * 1e6 / ((double)s.n * rounds));
	printf("}}\n");
out:
	for (size_t i = 0; i < s.n; i++) {
		json_decref(s.t[i].item);
		json_decref(s.t[i].prompt);
	}
	for (size_t i = 0; i < s.ndocs; i++)
		json_decref(s.docs[i]);
	json_decref(prompts);
	free(s.t);
	return 0;
}
