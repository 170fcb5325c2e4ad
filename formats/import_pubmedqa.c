/* pubmedqa: the PubMedQA document, one JSON object keyed by PMID whose
 * records hold QUESTION, CONTEXTS (joined by blank lines into "context"),
 * final_decision (yes, no or maybe: the options are those three),
 * LONG_ANSWER, MESHES, YEAR and LABELS. */

#include <string.h>

#include "common/buf.h"
#include "formats/import_impl.h"

static void pubmedqa_parse(struct import_parser *p, const char *pmid, json_t *rec, long idx)
{
	static const char *const yn[] = {"yes", "no", "maybe"};
	json_t *cand = json_object(), *meta = json_object(), *v, *e;
	struct buf ctx;
	size_t i;

	buf_init(&ctx, (size_t)-1);
	if (!cand || !meta) {
		import_oom(p);
		goto out;
	}
	json_object_set_new(cand, "id", json_string(pmid));
	if (import_get_str(p, idx, rec, "QUESTION", &v) < 0)
		goto out;
	if (v)
		json_object_set(cand, "question", v);
	v = json_object_get(rec, "CONTEXTS");
	if (v && !json_is_array(v) && !json_is_null(v)) {
		import_report(p, idx, "\"CONTEXTS\" must be an array of strings, found %s", import_json_kind(v));
		goto out;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e)) {
			import_report(p, idx, "\"CONTEXTS\"[%zu] must be a string, found %s", i, import_json_kind(e));
			goto out;
		}
		if ((ctx.len && buf_puts(&ctx, "\n\n")) || buf_puts(&ctx, json_string_value(e))) {
			import_oom(p);
			goto out;
		}
	}
	if (ctx.len && !import_blank(ctx.base, ctx.len))
		json_object_set_new(cand, "context", json_stringn(ctx.base, ctx.len));
	v = json_object();
	for (i = 0; i < 3; i++)
		json_object_set_new(v, yn[i], json_string(yn[i]));
	json_object_set_new(cand, "options", v);
	if (import_get_str(p, idx, rec, "final_decision", &v) < 0)
		goto out;
	if (v)
		json_object_set(cand, "answer", v);
	if (import_copy_str(p, idx, rec, "LONG_ANSWER", cand, "explanation") < 0)
		goto out;
	v = json_object_get(rec, "MESHES");
	if (json_is_array(v) && json_is_string(json_array_get(v, 0)) &&
	    !import_str_blank(json_array_get(v, 0)))
		json_object_set(cand, "topic", json_array_get(v, 0));
	if (json_object_get(rec, "YEAR"))
		json_object_set(meta, "year", json_object_get(rec, "YEAR"));
	if (json_object_get(rec, "LABELS"))
		json_object_set(meta, "labels", json_object_get(rec, "LABELS"));
	if (json_array_size(v))
		json_object_set(meta, "meshes", v);
	if (json_object_size(meta))
		json_object_set(cand, "meta", meta);
	import_emit(p, cand, idx);
	cand = NULL;
out:
	buf_free(&ctx);
	json_decref(meta);
	json_decref(cand);
}

/* An object whose first member is an object with "QUESTION". The document
 * is parsed whole only at the end, so from its start: on one line (compact)
 * it is parsed; pretty-printed, its first line is a lone "{" and the first
 * record's keys are in the head. */
static enum import_sniff_verdict pubmedqa_sniff(const struct import_format *f, const struct import_sniff *s)
{
	json_t *doc;
	const char *k;
	json_t *v;
	enum import_sniff_verdict r = IMPORT_SNIFF_NO;

	(void)f;
	if (s->first != '{')
		return IMPORT_SNIFF_NO;
	if (import_blank(s->line + 1, s->line_len - 1))
		return memmem(s->head, s->len, "\"QUESTION\"", 10) ? IMPORT_SNIFF_YES : IMPORT_SNIFF_MAYBE;
	doc = json_loadb(s->line, s->line_len, 0, NULL);
	json_object_foreach(doc, k, v) {
		if (json_is_object(v) && json_object_get(v, "QUESTION"))
			r = IMPORT_SNIFF_YES;
		break;
	}
	json_decref(doc);
	return r;
}

const struct import_format import_format_pubmedqa = {
	.name = "pubmedqa",
	.description = "PubMedQA: one JSON object keyed by PMID, answers yes/no/maybe",
	.kind = IMPORT_DOCUMENT,
	.question_key = "QUESTION",
	.answer_key = "final_decision",
	.doc_what = "a JSON object keyed by PMID",
	.doc_key = "PMID",
	.parse_json = pubmedqa_parse,
	.sniff = pubmedqa_sniff,
};
