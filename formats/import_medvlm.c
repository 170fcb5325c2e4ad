/* medvlm: the MedVLM-R1 / OmniMedVQA layout, a JSON array of
 * {"image":[path...], "problem", "solution", "question", "options":[text...],
 * "answer", "dataset", "subset"}: problem is the question with "K) option"
 * lines, solution the gold letter (or "<answer> K </answer>"), answer the
 * gold option's text. The CLI reads the image paths relative to the dataset
 * file and sends data: URLs in their place (cli/images.h); a path that
 * reaches the daemon is refused, never opened. */

#include <string.h>

#include "formats/import_impl.h"

#define MEDVLM_MAX_OPTS 10 /* A-J, as the published rewards read them */

static bool url_ok(const char *s)
{
	return strncmp(s, "data:image/", 11) == 0 || strncmp(s, "https://", 8) == 0 ||
	       strncmp(s, "http://", 7) == 0;
}

/* The images: "image" (or "images"), an array of URLs or one URL. */
static int medvlm_images(struct import_parser *p, long idx, json_t *rec, json_t *cand)
{
	json_t *v = json_object_get(rec, "image"), *e, *one = NULL;
	const char *key = "image";
	char ex[IMPORT_EXCERPT_BUF];
	size_t i;
	int rc = -1;

	if (!v || json_is_null(v)) {
		v = json_object_get(rec, "images");
		key = "images";
	}
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		one = json_pack("[O]", v);
		if (!one) {
			import_oom(p);
			return -1;
		}
		v = one;
	}
	if (!json_is_array(v)) {
		import_report(p, idx, "\"%s\" must be an array of strings, found %s", key,
			      import_json_kind(v));
		goto out;
	}
	json_array_foreach(v, i, e) {
		const char *s = json_string_value(e);

		if (!s || import_str_blank(e)) {
			import_report(p, idx, "\"%s\"[%zu] must be a non-empty string", key, i);
			goto out;
		}
		if (!url_ok(s)) {
			import_report(p, idx,
				      "\"%s\"[%zu] \"%s\" is a file path, which the daemon never opens: "
				      "import the file with `medthink import FILE --format medvlm`, "
				      "which reads it relative to the dataset file and sends a data: URL",
				      key, i, import_excerpt(s, ex, sizeof(ex)));
			goto out;
		}
	}
	if (json_array_size(v))
		json_object_set(cand, "images", v);
	rc = 0;
out:
	json_decref(one);
	return rc;
}

/* An option line of a problem: "K) text" with K in A-J. */
static bool option_line(const char *l)
{
	return l[0] >= 'A' && l[0] <= 'J' && l[1] == ')' && l[2] == ' ';
}

/* Options from the "K) text" lines of problem (when the record has no
 * "options" array): the question is the text before the first. */
static int medvlm_from_problem(struct import_parser *p, long idx, const char *problem,
			       json_t *cand, json_t *opts)
{
	const char *l = problem, *first = NULL;

	while (l && *l) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);

		if (option_line(l)) {
			char key[2] = { l[0], 0 };

			if (!first)
				first = l;
			while (n > 3 && (l[n - 1] == '\r' || l[n - 1] == ' '))
				n--;
			if (json_object_get(opts, key)) {
				import_report(p, idx, "\"problem\" lists option %s twice", key);
				return -1;
			}
			json_object_set_new(opts, key, json_stringn(l + 3, n - 3));
		}
		l = nl ? nl + 1 : NULL;
	}
	if (!first) {
		json_object_set_new(cand, "question", json_string(problem));
		return 0;
	}
	while (first > problem && (first[-1] == '\n' || first[-1] == '\r' || first[-1] == ' '))
		first--;
	json_object_set_new(cand, "question", json_stringn(problem, (size_t)(first - problem)));
	return 0;
}

/* The gold letter of "solution": K, or <answer> K </answer>, white space
 * ignored; 0 when it is not one letter A-J. */
static char solution_letter(const char *s)
{
	const char *a = strstr(s, "<answer>"), *e;
	char k = 0;

	if (a && (e = strstr(a, "</answer>")) != NULL)
		s = a + 8;
	else
		e = s + strlen(s);
	for (; s < e; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			continue;
		if (k)
			return 0;
		k = *s >= 'a' && *s <= 'j' ? (char)(*s - 'a' + 'A') : *s;
	}
	return k >= 'A' && k <= 'J' ? k : 0;
}

static void medvlm_parse(struct import_parser *p, const char *rec_key, json_t *rec, long idx)
{
	json_t *cand = json_object(), *opts = json_object(), *meta = json_object(), *v, *o;
	json_t *question = NULL, *problem = NULL, *solution = NULL, *answer = NULL;
	char ex[IMPORT_EXCERPT_BUF], ex2[IMPORT_EXCERPT_BUF], gold[2] = { 0, 0 };
	size_t i;

	(void)rec_key;
	if (!cand || !opts || !meta) {
		import_oom(p);
		goto out;
	}
	if (import_copy_id(p, idx, rec, cand) < 0 ||
	    import_get_str(p, idx, rec, "question", &question) < 0 ||
	    import_get_str(p, idx, rec, "problem", &problem) < 0 ||
	    import_get_str(p, idx, rec, "solution", &solution) < 0 ||
	    import_get_str(p, idx, rec, "answer", &answer) < 0)
		goto out;
	v = json_object_get(rec, "options");
	if (v && !json_is_null(v)) {
		if (!json_is_array(v)) {
			import_report(p, idx, "\"options\" must be an array of strings, found %s",
				      import_json_kind(v));
			goto out;
		}
		if (json_array_size(v) > MEDVLM_MAX_OPTS) {
			import_report(p, idx, "%zu options, more than %d (A-J)", json_array_size(v),
				      MEDVLM_MAX_OPTS);
			goto out;
		}
		json_array_foreach(v, i, o) {
			char key[2] = { (char)('A' + i), 0 };

			if (!json_is_string(o)) {
				import_report(p, idx, "\"options\"[%zu] must be a string", i);
				goto out;
			}
			json_object_set(opts, key, o);
		}
		if (question && !import_str_blank(question))
			json_object_set(cand, "question", question);
		else if (problem && !import_str_blank(problem))
			json_object_set(cand, "question", problem);
	} else if (problem && !import_str_blank(problem)) {
		if (medvlm_from_problem(p, idx, json_string_value(problem), cand, opts) < 0)
			goto out;
	} else if (question && !import_str_blank(question)) {
		json_object_set(cand, "question", question);
	}
	if (!json_object_get(cand, "question") || import_str_blank(json_object_get(cand, "question"))) {
		import_report(p, idx, "missing \"problem\" (or \"question\")");
		goto out;
	}
	if (solution && !import_str_blank(solution)) {
		gold[0] = solution_letter(json_string_value(solution));
		if (!gold[0]) {
			import_report(p, idx, "\"solution\" \"%s\" is not one option letter A-J",
				      import_excerpt(json_string_value(solution), ex, sizeof(ex)));
			goto out;
		}
		if (json_object_size(opts) && !json_object_get(opts, gold)) {
			import_report(p, idx, "\"solution\" %s is not one of the %zu options", gold,
				      json_object_size(opts));
			goto out;
		}
		o = json_object_get(opts, gold);
		if (o && answer && !import_str_blank(answer) &&
		    strcmp(json_string_value(o), json_string_value(answer)) != 0) {
			import_report(p, idx, "\"solution\" %s is \"%s\" but \"answer\" is \"%s\"", gold,
				      import_excerpt(json_string_value(o), ex, sizeof(ex)),
				      import_excerpt(json_string_value(answer), ex2, sizeof(ex2)));
			goto out;
		}
	} else if (answer && !import_str_blank(answer) && json_object_size(opts)) {
		const char *k;

		json_object_foreach(opts, k, o)
			if (!gold[0] && strcmp(json_string_value(o), json_string_value(answer)) == 0)
				gold[0] = k[0];
		if (!gold[0]) {
			import_report(p, idx, "\"answer\" \"%s\" is none of the options (and no \"solution\")",
				      import_excerpt(json_string_value(answer), ex, sizeof(ex)));
			goto out;
		}
	} else {
		import_report(p, idx, "missing \"solution\"");
		goto out;
	}
	json_object_set_new(cand, "answer", json_string(gold));
	if (json_object_size(opts))
		json_object_set(cand, "options", opts);
	v = json_object_get(rec, "subset");
	if (json_is_string(v) && !import_str_blank(v))
		json_object_set(cand, "topic", v);
	if (medvlm_images(p, idx, rec, cand) < 0)
		goto out;
	if (problem)
		json_object_set(meta, "problem", problem);
	v = json_object_get(rec, "dataset");
	if (json_is_string(v))
		json_object_set(meta, "dataset", v);
	if (json_object_size(meta))
		json_object_set(cand, "meta", meta);
	import_emit(p, cand, idx);
	cand = NULL;
out:
	json_decref(cand);
	json_decref(opts);
	json_decref(meta);
}

/* A JSON array whose head names "problem" and "solution". */
static enum import_sniff_verdict medvlm_sniff(const struct import_format *f,
					      const struct import_sniff *s)
{
	(void)f;
	if (s->first != '[')
		return IMPORT_SNIFF_NO;
	return memmem(s->head, s->len, "\"problem\"", 9) && memmem(s->head, s->len, "\"solution\"", 10)
		       ? IMPORT_SNIFF_YES
		       : IMPORT_SNIFF_NO;
}

const struct import_format import_format_medvlm = {
	.name = "medvlm",
	.description = "MedVLM-R1 / OmniMedVQA: a JSON array of image, problem, solution, "
		       "options (images read by the CLI)",
	.kind = IMPORT_DOCUMENT,
	.question_key = "problem",
	.answer_key = "solution",
	.doc_what = "a JSON array of VQA records",
	.parse_json = medvlm_parse,
	.sniff = medvlm_sniff,
};
