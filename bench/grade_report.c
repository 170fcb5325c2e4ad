/* Measures the answer extractor (stages/grade.c) on real model answers with
 * published reference grades (issue 10): for each file in DIR (default
 * ../shared/data/answers) the rows, how often grade_extract_choice agrees
 * with the reference, the share it leaves to a judge (GRADE_NONE or
 * GRADE_AMBIGUOUS), and the agreement once the reference errors documented
 * in bench/grade_ref_errors.tsv are counted as ours. docs/grading.md says
 * what the reference is for each file and why.
 *
 *   build/bench/grade_report [--dir DIR] [--errors TSV] [--show] [--judged]
 *                            [--only NAME] [--rules]
 *
 * --show prints every disagreement (row, gold, reference, ours, rule, the
 * tail of the reply); --judged every answer left to the judge; --rules the
 * count of answers per rule. Exit status 0; 2 on a missing or unreadable
 * file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "stages/grade.h"

#define ROWS_MAX  100000
#define ERRS_MAX  4096
#define RULES_MAX 128

/* One row as the report reads it: borrowed from the loaded JSON. */
struct row {
	const char *reply;
	json_t *options;
	const char *gold;   /* gold key */
	int ref_correct;    /* the reference says the answer is right */
	const char *ref_key; /* the reference's own extraction, or NULL */
	/* A reference error found mechanically (few-shot: the reply's
	 * "Answer: <text>" is exactly one option's text), the right key; or
	 * NULL. */
	const char *fixed_key;
};

struct source;
/* Fills r from the JSON row j; 0, or -EINVAL for a row to skip. */
typedef int (*row_read_fn)(const struct source *s, json_t *j, struct row *r);

struct source {
	const char *name;  /* file name in DIR */
	int jsonl;         /* one object a line; else one JSON array */
	row_read_fn read;
	int answer_text;   /* replies say "Answer: <option text>": fix the reference */
	const char *reference; /* what the reference is, for the header */
};

/* vlievin/medical-reasoning: correct_flag is the page's check mark. */
static int read_vlievin(const struct source *s, json_t *j, struct row *r)
{
	json_t *flag = json_object_get(j, "correct_flag");

	(void)s;
	r->reply = json_string_value(json_object_get(j, "raw_response"));
	r->options = json_object_get(j, "options");
	r->gold = json_string_value(json_object_get(j, "gold"));
	r->ref_key = NULL;
	r->fixed_key = NULL;
	if (!r->reply || !r->gold || !json_is_boolean(flag))
		return -EINVAL;
	r->ref_correct = json_is_true(flag);
	return 0;
}

/* Lower-cased ASCII letters and digits, every other run one space, into
 * out (cap bytes). Deliberately simpler than grade_normalize: the check it
 * serves must not share the extractor's code. */
static void ref_norm(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	int gap = 0;

	for (size_t i = 0; i < n && o + 2 < cap; i++) {
		int c = (unsigned char)s[i];

		if (c >= 'A' && c <= 'Z')
			c += 32;
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			if (gap && o)
				out[o++] = ' ';
			gap = 0;
			out[o++] = (char)c;
		} else {
			gap = 1;
		}
	}
	out[o] = '\0';
}

/* The option whose text is exactly the value of the reply's last line that
 * opens with "Answer:" (markdown stars and spaces before it skipped), or
 * NULL when there is none or it names no option or several. */
static const char *answer_text_key(const char *reply, json_t *options)
{
	char want[1024], have[1024];
	const char *v = NULL, *e, *key, *found = NULL;
	json_t *val;
	int n = 0;

	for (const char *ls = reply; ls; ls = strchr(ls, '\n')) {
		const char *p = ls;

		while (*p == '\n' || *p == ' ' || *p == '*')
			p++;
		if (strncasecmp(p, "answer:", 7) == 0)
			v = p + 7;
		ls = *ls == '\n' ? ls + 1 : strchr(ls, '\n');
		if (!ls)
			break;
	}
	if (!v)
		return NULL;
	e = strchr(v, '\n');
	if (!e)
		e = v + strlen(v);
	ref_norm(v, (size_t)(e - v), want, sizeof want);
	if (!want[0])
		return NULL;
	json_object_foreach(options, key, val) {
		const char *t = json_string_value(val);

		if (!t)
			continue;
		ref_norm(t, strlen(t), have, sizeof have);
		if (strcmp(have, want) == 0) {
			found = key;
			n++;
		}
	}
	return n == 1 ? found : NULL;
}

/* medagents-benchmark: predicted_answer (their extraction) against
 * answer_idx (gold). */
static int read_medagents(const struct source *s, json_t *j, struct row *r)
{
	(void)s;
	r->reply = json_string_value(json_object_get(j, "raw_response"));
	r->options = json_object_get(j, "options");
	r->gold = json_string_value(json_object_get(j, "answer_idx"));
	r->ref_key = json_string_value(json_object_get(j, "predicted_answer"));
	if (!r->reply || !r->gold)
		return -EINVAL;
	r->ref_correct = r->ref_key && strcmp(r->ref_key, r->gold) == 0;
	r->fixed_key = NULL;
	if (s->answer_text && json_is_object(r->options)) {
		r->fixed_key = answer_text_key(r->reply, r->options);
		if (r->fixed_key && r->ref_key && strcmp(r->fixed_key, r->ref_key) == 0)
			r->fixed_key = NULL; /* the reference was right */
	}
	return 0;
}

static const struct source sources[] = {
	{ "vlievin_usmle.jsonl", 1, read_vlievin, 0, "correct_flag" },
	{ "vlievin_medmcqa.jsonl", 1, read_vlievin, 0, "correct_flag" },
	{ "vlievin_pubmedqa.jsonl", 1, read_vlievin, 0, "correct_flag" },
	{ "medagents_cot.json", 0, read_medagents, 0, "predicted_answer == answer_idx" },
	{ "medagents_few_shot.json", 0, read_medagents, 1, "predicted_answer == answer_idx" },
};

/* A reference grade read by hand and found wrong: file, row (0-based), the
 * right verdict for the reply ("correct", "wrong" or "none"), the class. */
struct referr {
	char file[64];
	long row;
	char truth[16];
	char cls[32];
};

static struct referr referrs[ERRS_MAX];
static size_t nreferr;

static int referrs_load(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int lineno = 0;

	if (!f) {
		fprintf(stderr, "grade_report: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof line, f)) {
		struct referr *e;

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (nreferr >= ERRS_MAX) {
			fprintf(stderr, "grade_report: %s: more than %d rows\n", path, ERRS_MAX);
			break;
		}
		e = &referrs[nreferr];
		if (sscanf(line, "%63s %ld %15s %31s", e->file, &e->row, e->truth, e->cls) != 4) {
			fprintf(stderr, "grade_report: %s:%d: want FILE ROW TRUTH CLASS\n", path, lineno);
			continue;
		}
		nreferr++;
	}
	fclose(f);
	return 0;
}

static const struct referr *referr_find(const char *file, long row)
{
	for (size_t i = 0; i < nreferr; i++)
		if (referrs[i].row == row && strcmp(referrs[i].file, file) == 0)
			return &referrs[i];
	return NULL;
}

struct rulecount {
	const char *rule;
	long n;
};

struct stats {
	long rows, skipped, decided, agree, judged, referr_ours, referr_listed_unused, referr_mech;
	long ref_correct, ours_correct;
	struct rulecount rules[RULES_MAX];
	size_t nrules;
	double secs;
};

static void rule_count(struct stats *st, const char *rule)
{
	for (size_t i = 0; i < st->nrules; i++)
		if (strcmp(st->rules[i].rule, rule) == 0) {
			st->rules[i].n++;
			return;
		}
	if (st->nrules < RULES_MAX) {
		st->rules[st->nrules].rule = rule;
		st->rules[st->nrules++].n = 1;
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The last n bytes of s, on a character boundary, newlines shown as "⏎". */
static void print_tail(const char *s, size_t n)
{
	size_t len = strlen(s);
	const char *p = len > n ? s + len - n : s;

	while (((unsigned char)*p & 0xC0) == 0x80)
		p++;
	fputs("    | ", stdout);
	for (; *p; p++) {
		if (*p == '\n')
			fputs(" ⏎ ", stdout);
		else
			putchar(*p);
	}
	putchar('\n');
}

struct opts {
	const char *dir, *errors, *only;
	int show, judged, rules;
};

static int run_source(const struct source *s, const struct opts *o, struct stats *st)
{
	char path[4096];
	json_t *all = NULL;
	json_error_t jerr;
	FILE *f = NULL;
	char *line = NULL;
	size_t cap = 0;
	long idx = 0;
	int rc = 0;

	memset(st, 0, sizeof *st);
	snprintf(path, sizeof path, "%s/%s", o->dir, s->name);
	if (!s->jsonl) {
		all = json_load_file(path, 0, &jerr);
		if (!json_is_array(all)) {
			fprintf(stderr, "grade_report: %s: %s\n", path, all ? "not an array" : jerr.text);
			rc = -EINVAL;
			goto out;
		}
	} else {
		f = fopen(path, "r");
		if (!f) {
			fprintf(stderr, "grade_report: %s: %s\n", path, strerror(errno));
			rc = -errno;
			goto out;
		}
	}
	for (;; idx++) {
		json_t *j = NULL, *own = NULL;
		struct row r;
		struct grade_result g;
		const struct referr *re;
		int ours_correct, agree, judged;
		double t0;

		if (all) {
			if ((size_t)idx >= json_array_size(all) || idx >= ROWS_MAX)
				break;
			j = json_array_get(all, (size_t)idx);
		} else {
			ssize_t n = getline(&line, &cap, f);

			if (n <= 0 || idx >= ROWS_MAX)
				break;
			own = j = json_loadb(line, (size_t)n, 0, &jerr);
		}
		if (!j || s->read(s, j, &r) != 0) {
			st->skipped++;
			json_decref(own);
			continue;
		}
		t0 = now();
		rc = grade_extract_choice(r.reply, r.options, &g);
		st->secs += now() - t0;
		if (rc) {
			fprintf(stderr, "grade_report: %s row %ld: %s\n", s->name, idx, strerror(-rc));
			st->skipped++;
			rc = 0;
			json_decref(own);
			continue;
		}
		st->rows++;
		rule_count(st, g.rule);
		st->ref_correct += r.ref_correct;
		judged = g.verdict != GRADE_FOUND;
		ours_correct = !judged && strcmp(g.answer, r.gold) == 0;
		st->ours_correct += ours_correct;
		if (judged) {
			st->judged++;
			if (o->judged) {
				printf("  judged %s #%ld gold %s ref %s(%s) rule %s\n", s->name, idx, r.gold,
				       r.ref_key ? r.ref_key : "-", r.ref_correct ? "right" : "wrong", g.rule);
				print_tail(r.reply, 300);
			}
			json_decref(own);
			continue;
		}
		st->decided++;
		agree = ours_correct == r.ref_correct;
		re = referr_find(s->name, idx);
		if (agree) {
			st->agree++;
			if (re)
				st->referr_listed_unused++;
		} else if (r.fixed_key && (strcmp(r.fixed_key, r.gold) == 0) == ours_correct) {
			st->referr_ours++;
			st->referr_mech++;
		} else if (re && strcmp(re->truth, ours_correct ? "correct" : "wrong") == 0) {
			st->referr_ours++;
		} else if (o->show) {
			printf("  differ %s #%ld gold %s ref %s(%s) ours %s(%s) rule %s\n", s->name, idx,
			       r.gold, r.ref_key ? r.ref_key : "-", r.ref_correct ? "right" : "wrong",
			       g.answer, ours_correct ? "right" : "wrong", g.rule);
			print_tail(r.reply, 400);
		}
		json_decref(own);
	}
out:
	free(line);
	if (f)
		fclose(f);
	json_decref(all);
	return rc;
}

static int rule_cmp(const void *a, const void *b)
{
	const struct rulecount *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->rule, y->rule);
}

static double pct(long a, long b)
{
	return b ? 100.0 * (double)a / (double)b : 0.0;
}

int main(int argc, char **argv)
{
	struct opts o = { "../shared/data/answers", "bench/grade_ref_errors.tsv", NULL, 0, 0, 0 };
	struct stats st;
	long trows = 0;
	double tsecs = 0, t0 = now();
	int bad = 0;
	char notes[1024] = "";

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			o.dir = argv[++i];
		else if (strcmp(argv[i], "--errors") == 0 && i + 1 < argc)
			o.errors = argv[++i];
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			o.only = argv[++i];
		else if (strcmp(argv[i], "--show") == 0)
			o.show = 1;
		else if (strcmp(argv[i], "--judged") == 0)
			o.judged = 1;
		else if (strcmp(argv[i], "--rules") == 0)
			o.rules = 1;
		else {
			fprintf(stderr, "usage: %s [--dir DIR] [--errors TSV] [--only NAME] [--show] "
			                "[--judged] [--rules]\n", argv[0]);
			return 2;
		}
	}
	if (o.errors[0] && referrs_load(o.errors) != 0)
		return 2;
	printf("| file | rows | agree (decided) | judge share | agree (all, judge right) | "
	       "+ documented reference errors |\n|---|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
		const struct source *s = &sources[i];
		long agree_all;

		if (o.only && !strstr(s->name, o.only))
			continue;
		if (run_source(s, &o, &st) != 0) {
			bad = 1;
			continue;
		}
		agree_all = st.agree + st.judged;
		printf("| %s | %ld | %.2f%% (%ld/%ld) | %.2f%% (%ld) | %.2f%% | %.2f%% (%ld) |\n", s->name,
		       st.rows, pct(st.agree, st.decided), st.agree, st.decided, pct(st.judged, st.rows),
		       st.judged, pct(agree_all, st.rows), pct(agree_all + st.referr_ours, st.rows),
		       st.referr_ours);
		if (st.skipped) {
			size_t l = strlen(notes);

			snprintf(notes + l, sizeof notes - l, "%s: %ld rows without a gold key skipped\n",
			         s->name, st.skipped);
		}
		if (o.rules) {
			qsort(st.rules, st.nrules, sizeof st.rules[0], rule_cmp);
			printf("    rules:");
			for (size_t k = 0; k < st.nrules; k++)
				printf(" %s=%ld", st.rules[k].rule, st.rules[k].n);
			printf("\n    reference says right %ld, ours right %ld; reference errors: %ld found "
			       "mechanically, %ld listed\n", st.ref_correct, st.ours_correct, st.referr_mech,
			       st.referr_ours - st.referr_mech);
		}
		trows += st.rows;
		tsecs += st.secs;
	}
	printf("\n%s%ld answers; extraction %.3f s (%.1f us/answer); total %.3f s\n", notes, trows,
	       tsecs, trows ? tsecs * 1e6 / (double)trows : 0.0, now() - t0);
	return bad ? 2 : 0;
}
