#include "cli/evalreport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static long long int_of(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static double num_of(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static double ci_of(const json_t *o, size_t i)
{
	return json_number_value(json_array_get(json_object_get(o, "ci95"), i));
}

/* The checkpoints of ev (new reference): its "checkpoints", or for a report
 * from before there were checkpoints, one made of its top-level numbers. */
static json_t *checkpoints_of(const json_t *ev)
{
	json_t *l = json_object_get(ev, "checkpoints"), *one;

	if (json_is_array(l) && json_array_size(l) > 0)
		return json_incref(l);
	one = json_deep_copy(ev);
	if (!one)
		return NULL;
	json_object_set_new(one, "name", json_string("eval"));
	return json_pack("[o]", one);
}

/* A Markdown table cell: no pipe, newline or HTML markup from the text. */
static int md_cell(struct buf *b, const char *s)
{
	int rc = 0;

	for (; *s && !rc; s++) {
		switch (*s) {
		case '|': rc = buf_puts(b, "\\|"); break;
		case '\\': rc = buf_puts(b, "\\\\"); break;
		case '<': rc = buf_puts(b, "&lt;"); break;
		case '>': rc = buf_puts(b, "&gt;"); break;
		case '&': rc = buf_puts(b, "&amp;"); break;
		case '\n':
		case '\r':
		case '\t': rc = buf_puts(b, " "); break;
		default: rc = buf_append(b, s, 1); break;
		}
	}
	return rc;
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or line end. */
static int csv_field(struct buf *b, const char *s)
{
	int rc;

	if (!strpbrk(s, ",\"\r\n"))
		return buf_puts(b, s);
	rc = buf_puts(b, "\"");
	for (; *s && !rc; s++)
		rc = *s == '"' ? buf_puts(b, "\"\"") : buf_append(b, s, 1);
	return rc ? rc : buf_puts(b, "\"");
}

static int md_change(struct buf *b, const json_t *ch)
{
	if (!json_is_object(ch))
		return buf_puts(b, " - | - |");
	return buf_printf(b, " %+.1f pts | %+.1f to %+.1f |", 100 * num_of(ch, "delta"),
			  100 * ci_of(ch, 0), 100 * ci_of(ch, 1));
}

static int render_md(struct buf *b, const json_t *job, const json_t *ev, const json_t *cks)
{
	const json_t *c, *last = json_array_get(cks, json_array_size(cks) - 1);
	json_t *topics = json_object();
	const char *k;
	json_t *v;
	size_t i;
	int rc;

	rc = buf_puts(b, "# Evaluation of ");
	rc = rc ? rc : md_cell(b, str_of(job, "id"));
	rc = rc ? rc : buf_puts(b, " (");
	rc = rc ? rc : md_cell(b, str_of(job, "name"));
	rc = rc ? rc : buf_printf(b, ", %s)\n\n", str_of(job, "kind")[0] ? str_of(job, "kind") : "?");
	if (!rc && str_of(last, "student")[0]) {
		rc = buf_puts(b, "Student: ");
		rc = rc ? rc : md_cell(b, str_of(last, "student"));
		rc = rc ? rc : buf_printf(b, "; held-out items: %lld; train: %s.\n\n", int_of(last, "total"),
					  str_of(ev, "train")[0] ? str_of(ev, "train") : "-");
	}
	if (!rc && str_of(ev, "note")[0])
		rc = buf_printf(b, "Note: %s.\n\n", str_of(ev, "note"));
	rc = rc ? rc : buf_puts(b, "| checkpoint | accuracy | 95% CI | correct / total | ungraded | judged "
				   "| failed | change from baseline | 95% CI of the change |\n"
				   "|---|---:|---|---:|---:|---:|---:|---:|---|\n");
	json_array_foreach(cks, i, c)
	{
		if (rc)
			break;
		rc = buf_puts(b, "| ");
		rc = rc ? rc : md_cell(b, str_of(c, "name"));
		rc = rc ? rc : buf_printf(b, " | %.1f%% | %.1f to %.1f%% | %lld / %lld | %lld | %lld | %lld |",
					  100 * num_of(c, "accuracy"), 100 * ci_of(c, 0), 100 * ci_of(c, 1),
					  int_of(c, "correct"), int_of(c, "total"), int_of(c, "ungraded"),
					  int_of(c, "judged"), int_of(c, "failed"));
		rc = rc ? rc : md_change(b, json_object_get(c, "change"));
		rc = rc ? rc : buf_puts(b, "\n");
		json_object_foreach(json_object_get(c, "by_topic"), k, v)
			json_object_set(topics, k, json_true());
	}
	if (!rc && json_object_size(topics) > 0) {
		rc = buf_puts(b, "\n## By topic\n\n| topic |");
		json_array_foreach(cks, i, c)
		{
			rc = rc ? rc : buf_puts(b, " ");
			rc = rc ? rc : md_cell(b, str_of(c, "name"));
			rc = rc ? rc : buf_puts(b, " |");
		}
		rc = rc ? rc : buf_puts(b, " change from baseline (");
		rc = rc ? rc : md_cell(b, str_of(last, "name"));
		rc = rc ? rc : buf_puts(b, ") | 95% CI of the change |\n|---|");
		for (i = 0; !rc && i < json_array_size(cks); i++)
			rc = buf_puts(b, "---:|");
		rc = rc ? rc : buf_puts(b, "---:|---|\n");
		json_object_foreach(topics, k, v)
		{
			const json_t *t = NULL;

			if (rc)
				break;
			rc = buf_puts(b, "| ");
			rc = rc ? rc : md_cell(b, k);
			rc = rc ? rc : buf_puts(b, " |");
			json_array_foreach(cks, i, c)
			{
				t = json_object_get(json_object_get(c, "by_topic"), k);
				if (rc)
					break;
				rc = json_is_object(t)
					     ? buf_printf(b, " %.1f%% (%lld/%lld; %.1f to %.1f) |",
							  100 * num_of(t, "accuracy"), int_of(t, "correct"),
							  int_of(t, "total"), 100 * ci_of(t, 0), 100 * ci_of(t, 1))
					     : buf_puts(b, " - |");
			}
			t = json_object_get(json_object_get(last, "by_topic"), k);
			rc = rc ? rc : md_change(b, json_object_get(t, "change"));
			rc = rc ? rc : buf_puts(b, "\n");
		}
	}
	if (!rc)
		rc = buf_printf(b, "\nAccuracy counts an ungraded answer as not correct. Intervals: %s.\n",
				str_of(ev, "interval")[0] ? str_of(ev, "interval") : "Wilson score, 95%");
	json_decref(topics);
	return rc;
}

static int csv_row(struct buf *b, const char *ck, const char *topic, const json_t *o)
{
	const json_t *ch = json_object_get(o, "change");
	int rc = csv_field(b, ck);

	rc = rc ? rc : buf_puts(b, ",");
	rc = rc ? rc : csv_field(b, topic);
	rc = rc ? rc : buf_printf(b, ",%lld,%lld,%lld,%lld,%.6f,%.6f,%.6f", int_of(o, "total"),
				  int_of(o, "correct"), int_of(o, "ungraded"), int_of(o, "judged"),
				  num_of(o, "accuracy"), ci_of(o, 0), ci_of(o, 1));
	if (!rc && json_is_object(ch)) {
		rc = buf_puts(b, ",");
		rc = rc ? rc : csv_field(b, str_of(ch, "from"));
		rc = rc ? rc : buf_printf(b, ",%.6f,%.6f,%.6f\n", num_of(ch, "delta"), ci_of(ch, 0),
					  ci_of(ch, 1));
	} else if (!rc) {
		rc = buf_puts(b, ",,,,\n");
	}
	return rc;
}

static int render_csv(struct buf *b, const json_t *cks)
{
	const json_t *c, *t;
	const char *k;
	size_t i;
	int rc = buf_puts(b, "checkpoint,topic,total,correct,ungraded,judged,accuracy,ci95_lo,ci95_hi,"
			     "change_from,delta,delta_ci95_lo,delta_ci95_hi\n");

	json_array_foreach(cks, i, c)
	{
		if (rc)
			break;
		/* the overall row has an empty topic ("(none)" is an item without one) */
		rc = csv_row(b, str_of(c, "name"), "", c);
		json_object_foreach(json_object_get(c, "by_topic"), k, t)
		{
			if (rc)
				break;
			rc = csv_row(b, str_of(c, "name"), k, t);
		}
	}
	return rc;
}

int evalreport_render(struct buf *out, const json_t *job, const char *format, char *err,
		      size_t errlen)
{
	const json_t *ev = json_object_get(job, "eval");
	json_t *cks;
	int rc;

	if (!format || (strcmp(format, "md") && strcmp(format, "json") && strcmp(format, "csv"))) {
		snprintf(err, errlen, "--format must be md, json or csv");
		return -EINVAL;
	}
	if (!json_is_object(ev)) {
		snprintf(err, errlen, "%s has no eval report yet (it comes at the end of a checkpoint)",
			 str_of(job, "id")[0] ? str_of(job, "id") : "the job");
		return -EINVAL;
	}
	cks = checkpoints_of(ev);
	if (!cks) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (strcmp(format, "json") == 0) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O}", "job", str_of(job, "id"), "name",
				      str_of(job, "name"), "kind", str_of(job, "kind"), "state",
				      str_of(job, "state"), "checkpoints", cks, "eval", ev);
		char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

		rc = s ? buf_puts(out, s) : -ENOMEM;
		rc = rc ? rc : buf_puts(out, "\n");
		free(s);
		json_decref(o);
	} else if (strcmp(format, "csv") == 0) {
		rc = render_csv(out, cks);
	} else {
		rc = render_md(out, job, ev, cks);
	}
	json_decref(cks);
	if (rc)
		snprintf(err, errlen, "the report is too large");
	return rc;
}

int evalreport_status_table(struct buf *out, const json_t *ev)
{
	const json_t *cks = json_object_get(ev, "checkpoints"), *c;
	size_t i;
	int rc = 0;

	if (!json_is_array(cks) || json_array_size(cks) < 2)
		return 0;
	rc = buf_puts(out, "checkpoints (accuracy, 95% interval; change from baseline, paired 95% interval)\n");
	json_array_foreach(cks, i, c)
	{
		const json_t *ch = json_object_get(c, "change");

		if (rc)
			break;
		rc = buf_printf(out, "  %-10.10s %5.1f%% [%5.1f, %5.1f]  %lld/%lld correct, %lld ungraded, %lld judged",
				str_of(c, "name"), 100 * num_of(c, "accuracy"), 100 * ci_of(c, 0),
				100 * ci_of(c, 1), int_of(c, "correct"), int_of(c, "total"),
				int_of(c, "ungraded"), int_of(c, "judged"));
		if (!rc && json_is_object(ch))
			rc = buf_printf(out, "  %+.1f [%+.1f, %+.1f]", 100 * num_of(ch, "delta"),
					100 * ci_of(ch, 0), 100 * ci_of(ch, 1));
		rc = rc ? rc : buf_puts(out, "\n");
	}
	if (!rc && str_of(ev, "note")[0])
		rc = buf_printf(out, "  note: %s\n", str_of(ev, "note"));
	return rc;
}
